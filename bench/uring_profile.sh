#!/usr/bin/env bash
# Where the server's CPU goes per message: uring against epoll and tokio-echo,
# under the same load (100 connections, 64-byte requests, one client thread),
# profiled with `perf record` for 3 s each. Prints Markdown: the share of the
# server's samples inside the kernel's TCP send and receive (the same
# functions whichever way they are reached: sendto/recvfrom or io_uring),
# in the wait, in the scheduler and in user space.
#
#   cargo build --release
#   cargo build --release --manifest-path ../shared/peers/tokio-echo/Cargo.toml --target-dir target/peers
#   bench/uring_profile.sh > bench/results/$(date +%F)/uring-cpu-floor.md
#
# Needs perf (Debian: linux-perf) with sampling allowed (perf_event_paranoid <= 1, or root).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/iomodels
TOKIO=target/peers/release/tokio-echo
PORT=17094

profile() { # name, command...: prints one table row
  local name=$1; shift
  "$@" >/dev/null 2>&1 &
  local pid=$!
  sleep 0.5
  local bench
  bench=$(mktemp)
  $BIN bench --addr 127.0.0.1:$PORT --conns 100 --size 64 --duration 5 --json >"$bench" 2>/dev/null &
  local load=$!
  sleep 1.5
  perf record -q -g -p "$pid" -o /tmp/iomodels-perf.data -- sleep 3 >/dev/null 2>&1
  wait "$load"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local rate
  rate=$(python3 -c 'import json,sys; r = json.load(open(sys.argv[1])); print("%.1fk" % (r["requests_per_s"] / 1000))' "$bench")
  rm -f "$bench"
  perf report -i /tmp/iomodels-perf.data --children --sort sym --stdio -g none 2>/dev/null |
    awk -v name="$name" -v rate="$rate" '
      /\] tcp_sendmsg$/                 { send = $1 }
      /\] tcp_recvmsg$/                 { recv = $1 }
      /\] __do_sys_io_uring_enter$/      { enter = $1 }
      /\] __x64_sys_epoll_wait$/        { ep = $1 }
      /\] __schedule$/                  { sched = $1 }
      /\] __x64_sys_futex$/             { futex = $1 }
      $3 == "[.]"                       { user += $2 }
      END { printf "| %s | %s | %s | %s | %s | %s | %s | %s | %.1f%% |\n",
            name, rate, send, recv, enter ? enter : "-", ep ? ep : "-",
            sched ? sched : "-", futex ? futex : "-", user }'
}

echo "# Where a message's server CPU goes: uring, epoll and tokio-echo"
echo
echo "Taken by \`bench/uring_profile.sh\` on $(date +%F), $(nproc) cores: perf record -g of the"
echo "server for 3 s under 100 connections of 64-byte requests (one client thread, closed loop)."
echo "Shares are of the server's samples, inclusive (a function's children count in it). The"
echo "kernel's TCP send (\`tcp_sendmsg\`, which on loopback also delivers the segment into the"
echo "client's socket) and receive (\`tcp_recvmsg\`) are the same work however they are reached."
echo
echo "| server | req/s | tcp_sendmsg | tcp_recvmsg | io_uring_enter | epoll_wait | __schedule | futex | user space |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
profile uring $BIN serve --model uring --addr 127.0.0.1:$PORT
profile epoll $BIN serve --model epoll --addr 127.0.0.1:$PORT
profile tokio-echo $TOKIO $PORT
rm -f /tmp/iomodels-perf.data
