#!/usr/bin/env python3
"""The `green` model beside `epoll`, `thread` and the course's gevent server: RSS per idle connection, and server CPU per request at 100 connections.

    cargo build --release && python3 bench/green_costs.py [target/release/iomodels] [ROUNDS]

- Idle connections: each server is measured twice, with 10 busy connections
  alone and beside 10,000 silent ones (`bench --silent`), and the
  difference of the two peak RSS figures, over 10,000, is what one idle
  connection costs: the server's fixed memory cancels out.
- CPU: 100 connections, 64 B, closed loop; the servers take turns, ROUNDS
  times (default 3), so a drift of the machine hits all of them alike.

gevent is `../shared/peers/seed_gevent.py` (pip install -r
../shared/peers/requirements.txt). Loopback only; every run is bounded in
time and stops by itself.
"""
import json
import os
import statistics
import subprocess
import sys

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/iomodels"
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
CROWD = 10_000
HERE = os.path.dirname(os.path.abspath(__file__))
GEVENT = os.path.join(HERE, "..", "..", "shared", "peers", "seed_gevent.py")

SERVERS = {
    "green": ["--model", "green", "--server-arg=--max-conns=19000"],
    "epoll": ["--model", "epoll", "--server-arg=--max-conns=19000"],
    "thread": ["--model", "thread", "--server-arg=--max-conns=19000"],
    "gevent": ["--peer", f"gevent=python3 {GEVENT} {{port}}"],
}


def bench(server, *args):
    out = subprocess.run(
        [BIN, "bench", *SERVERS[server], "--json", *args],
        capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"bench {server} {args} failed:\n{out.stderr}")
    return json.loads(out.stdout)


def idle_kib(server):
    alone = bench(server, "--conns", "10", "--duration", "2")
    crowd = bench(server, "--conns", "10", "--silent", str(CROWD), "--duration", "2")
    grown = crowd["server"]["peak_rss_bytes"] - alone["server"]["peak_rss_bytes"]
    return grown / CROWD / 1024, alone["requests_per_s"], crowd["requests_per_s"]


def main():
    print(f"# idle connections: 10 busy alone, then beside {CROWD} silent ones")
    print("| server | KiB RSS per idle connection | req/s alone | req/s beside the crowd |")
    print("|---|---|---|---|")
    for server in SERVERS:
        kib, alone, crowd = idle_kib(server)
        print(f"| {server} | {kib:.2f} | {alone:,.0f} | {crowd:,.0f} |", flush=True)

    print(f"\n# 100 connections, 64 B, closed loop: {ROUNDS} rounds, servers taking turns")
    cpu = {s: [] for s in SERVERS if s != "thread"}
    rate = {s: [] for s in cpu}
    for _ in range(ROUNDS):
        for server in cpu:
            r = bench(server, "--conns", "100", "--duration", "4")
            cpu[server].append(r["server"]["cpu_us_per_request"])
            rate[server].append(r["requests_per_s"])
    base = statistics.median(cpu["epoll"])
    print("| server | us CPU per request (median; runs) | x epoll | req/s (median) |")
    print("|---|---|---|---|")
    for server in cpu:
        med = statistics.median(cpu[server])
        runs = ", ".join(f"{c:.2f}" for c in cpu[server])
        print(f"| {server} | {med:.2f} ({runs}) | {med / base:.2f} | "
              f"{statistics.median(rate[server]):,.0f} |")


if __name__ == "__main__":
    main()
