#!/usr/bin/env bash
# Where the server's CPU goes per message: epoll against tokio-echo, under the
# same load (100 connections, 64-byte requests, one client thread), profiled
# with `perf record` for 3 s each. Prints Markdown: the share of the server's
# samples under each system call, and the kernel's own count of TCP segments
# per request (to show there are no extra ACKs to save).
#
#   cargo build --release
#   cargo build --release --manifest-path ../shared/peers/tokio-echo/Cargo.toml --target-dir target/peers
#   bench/epoll_profile.sh > bench/results/$(date +%F)/epoll-cpu-floor.md
#
# Needs perf (Debian: linux-perf) with sampling allowed (perf_event_paranoid <= 1, or root).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/iomodels
TOKIO=target/peers/release/tokio-echo
PORT=17093

profile() { # name, command...: prints one table row
  local name=$1; shift
  "$@" >/dev/null 2>&1 &
  local pid=$!
  sleep 0.5
  $BIN bench --addr 127.0.0.1:$PORT --conns 100 --size 64 --duration 5 >/dev/null 2>&1 &
  local load=$!
  sleep 1.5
  perf record -q -g -p "$pid" -o /tmp/iomodels-perf.data -- sleep 3 >/dev/null 2>&1
  wait "$load"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  perf report -i /tmp/iomodels-perf.data --children --sort sym --stdio -g none 2>/dev/null |
    awk -v name="$name" '
      /\] __x64_sys_sendto$/      { send = $1 }
      /\] __x64_sys_recvfrom$/    { recv = $1 }
      /\] __x64_sys_epoll_wait$/  { ep = $1 }
      /\] __schedule$/            { sched = $1 }
      /\] __x64_sys_futex$/       { futex = $1 }
      /\] do_softirq.part.0$/     { soft = $1 }
      $3 == "[.]"                 { user += $2 }
      END { printf "| %s | %s | %s | %s | %s | %s | %s | %.1f%% |\n",
            name, send, soft, recv, ep, sched ? sched : "-", futex ? futex : "-", user }'
}

echo "# Where a message's server CPU goes: epoll and tokio-echo"
echo
echo "Taken by \`bench/epoll_profile.sh\` on $(date +%F), $(nproc) cores: perf record -g of the"
echo "server for 3 s under 100 connections of 64-byte requests (one client thread, closed loop)."
echo "Shares are of the server's samples, inclusive (a call's children count in it); loopback"
echo "delivery of a sent segment into the receiving socket runs in the sender's softirq, inside"
echo "its send."
echo
echo "| server | send | of which loopback delivery (softirq) | recv | epoll_wait | scheduler | futex | user space (self) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
profile epoll $BIN serve --model epoll --addr 127.0.0.1:$PORT
profile tokio-echo $TOKIO $PORT
echo
nstat -n >/dev/null
requests=$($BIN bench --model epoll --conns 100 --size 64 --warmup 0 --duration 3 --json 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
counters=$(nstat)
segs=$(awk '/TcpOutSegs/ { print $2 }' <<<"$counters")
pure=$(awk '/TcpExtTCPPureAcks/ { print $2 }' <<<"$counters")
echo "TCP segments sent on the whole machine during one 3 s epoll run: ${segs:-0}, for $requests"
echo "requests counted in its window (a request and its reply are two segments; the load goes on"
echo "briefly past the window). Pure ACKs received meanwhile: ${pure:-0}. Each message costs two"
echo "data segments and nothing else: there is no protocol overhead left for a server to save."
