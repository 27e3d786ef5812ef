#!/usr/bin/env bash
# Measures how far `iomodels bench` can be trusted, and writes the record to
# bench/results/<today>/bench-accuracy.md (or the file given as $1):
# - accuracy: the client's count against the kernel's (tcp_info via ss) at
#   1, 100 and 1000 connections;
# - headroom: one client thread against tokio-echo's best, and pipelined
#   through the thread model; the client's user/system CPU split;
# - scale: 10,000 connections.
# Loopback only; every run is bounded (1 s warm-up, 4 s measured).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results/$(date -u +%F)/bench-accuracy.md}
mkdir -p "$(dirname "$out")"
cargo build --release --quiet
cargo build --release --quiet --manifest-path ../shared/peers/tokio-echo/Cargo.toml --target-dir target/peers
B=target/release/iomodels
tokio="tokio-echo=$PWD/target/peers/release/tokio-echo {port}"

run() { # shows the command as a user would type it, then its report
    local shown=""
    for a in "$@"; do
        case $a in *" "*) shown="$shown '${a//$PWD\//}'" ;; *) shown="$shown $a" ;; esac
    done
    echo "\$ iomodels bench$shown"
    "$B" bench "$@"
    echo
}

client_split() { # user and system CPU of the bench process during a run
    "$B" bench --peer "$tokio" --conns 100 --duration 4 > /dev/null &
    sleep 2
    local pid
    pid=$(pgrep -n -f "iomodels bench --peer tokio-echo")
    python3 - "$pid" <<'PY'
import os, sys, time
pid = sys.argv[1]
def times():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]), int(f[12])
(u0, s0) = times(); time.sleep(2); (u1, s1) = times()
hz = os.sysconf("SC_CLK_TCK")
user, system = (u1 - u0) / hz, (s1 - s0) / hz
print(f"bench client over 2 s at 100 connections: user {user:.2f} s, system {system:.2f} s "
      f"({system / max(user + system, 1e-9) * 100:.0f}% in the kernel)")
PY
    wait
}

{
    echo "# iomodels bench: accuracy, headroom and scale ($(date -u +%F))"
    echo
    echo "Made by \`bench/accuracy.sh\` on a $(nproc)-core machine: release build, one client thread, 64-byte requests, 1 s warm-up, 4 s measured."
    echo
    echo "## Accuracy: the client's count against the kernel's"
    echo
    echo "The \`check\` line compares the client's count of completed requests with the growth of the kernel's \`tcp_info.bytes_sent\` over the server's sockets (read through \`ss\`), an independent count."
    echo
    echo '```'
    for c in 1 100 1000; do run --model thread --conns "$c"; done
    echo '```'
    echo
    echo "## Headroom: is the client the bottleneck?"
    echo
    echo "tokio-echo's own figures, closed loop, one request in flight per connection:"
    echo
    echo '```'
    for c in 10 100 1000; do run --peer "$tokio" --conns "$c"; done
    echo '```'
    echo
    echo "The same single client thread, pipelining, through the thread model (the fastest model that exists so far):"
    echo
    echo '```'
    for p in 8 32; do run --model thread --conns 100 --pipeline "$p"; done
    echo '```'
    echo
    echo "Where the client's CPU goes at one request in flight (sampled from /proc/PID/stat during a run against tokio-echo):"
    echo
    echo '```'
    client_split
    echo '```'
    echo
    echo "## Scale: 10,000 connections"
    echo
    echo '```'
    run --model thread --conns 10000 --timeout 5
    run --peer "$tokio" --conns 10000 --timeout 5
    echo '```'
} > "$out"
echo "wrote $out"
