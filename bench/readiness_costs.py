#!/usr/bin/env python3
"""The course's claims about the readiness models, as numbers, side by side in one run.

    cargo build --release
    cargo build --release --manifest-path ../shared/peers/tokio-echo/Cargo.toml \
        --target-dir target/peers
    python3 bench/readiness_costs.py > bench/results/$(date +%F)/readiness-costs.md

Three measurements, all with `iomodels bench` (one client thread, closed loop,
64-byte requests, every byte checked) or /proc/PID/stat:
1. Idle CPU: each model with no client, then with 1000 connected clients that
   send nothing; the share of one core the server uses over 3 s.
2. The O(n) cost: select, poll, epoll, sigio and the busy poller at 10, 100 and
   1000 active connections, then 10 active beside 1000 silent ones
   (`--silent 1000`): server CPU per request.
3. epoll against tokio: epoll (level- and edge-triggered), reactors, sigio and
   the tokio-echo peer at 100 connections, alternated over ROUNDS rounds so
   that drift on the machine hits each alike; the median per target and the
   median of the per-round ratios to tokio-echo.
Loopback only; every run is bounded in time and stops by itself.
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import time

BIN = "target/release/iomodels"
TOKIO = "target/peers/release/tokio-echo"
ROUNDS = int(os.environ.get("ROUNDS", "5"))
SECS = os.environ.get("SECS", "3")
TICK = os.sysconf("SC_CLK_TCK")


def bench(args, conns, silent=0):
    out = subprocess.run(
        [BIN, "bench", *args, "--conns", str(conns), "--silent", str(silent),
         "--size", "64", "--duration", SECS, "--json"],
        capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def model(name, *flags):
    return ["--model", name, *[f"--server-arg={f}" for f in flags]]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def idle_share(name, clients):
    proc = subprocess.Popen([BIN, "serve", "--model", name, "--addr", "127.0.0.1:0"],
                            stderr=subprocess.PIPE, text=True)
    try:
        while True:
            line = proc.stderr.readline()
            if " listening on " in line:
                host, port = line.rsplit(" ", 1)[1].strip().rsplit(":", 1)
                break
            if not line:
                raise SystemExit(f"{name} exited before listening")
        held = [socket.create_connection((host, int(port))) for _ in range(clients)]
        time.sleep(1)
        before, start = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(3)
        share = (cpu_seconds(proc.pid) - before) / (time.monotonic() - start)
        for c in held:
            c.close()
        return share
    finally:
        proc.terminate()
        proc.wait()


def main():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    nproc = os.cpu_count()
    print(f"# Readiness models: the course's claims, measured\n")
    print(f"Taken by `bench/readiness_costs.py` on {time.strftime('%Y-%m-%d')}, "
          f"{nproc} cores, one client thread, 64-byte requests, {SECS} s per run. "
          "Compare within this file: figures drift between runs on this VM.\n")

    print("## 1. CPU with nothing to do (share of one core)\n")
    print("| model | no clients | 1000 silent clients |")
    print("|---|---:|---:|")
    for name in ["nonblocking", "select", "poll", "epoll", "reactors", "sigio"]:
        # 1000 clients and the server's own few descriptors stay below
        # select's FD_SETSIZE (1024).
        shares = [idle_share(name, n) for n in (0, 1000)]
        print(f"| {name} | {shares[0]:.0%} | {shares[1]:.0%} |")
    print()

    print("## 2. Server CPU per request (us): the O(n) of select and poll\n")
    print("| model | 10 conns | 100 conns | 1000 conns | 10 conns + 1000 silent |")
    print("|---|---:|---:|---:|---:|")
    for name in ["select", "poll", "epoll", "sigio", "nonblocking"]:
        cells = []
        for conns, silent in [(10, 0), (100, 0), (1000, 0), (10, 1000)]:
            r = bench(model(name), conns, silent)
            bad = "†" if r["errors"]["wrong_bytes"] or r["errors"]["short_replies"] else ""
            cells.append(f"{r['server']['cpu_us_per_request']:.1f} "
                         f"({r['requests_per_s'] / 1000:.0f}k/s){bad}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()

    print(f"## 3. epoll against tokio-echo, 100 connections, {ROUNDS} alternated rounds\n")
    targets = {
        "epoll": model("epoll"),
        "epoll --edge": model("epoll", "--edge"),
        "reactors": model("reactors"),
        "sigio": model("sigio"),
        "tokio-echo": ["--peer", f"tokio-echo={TOKIO} {{port}}"],
    }
    cpu = {t: [] for t in targets}
    rate = {t: [] for t in targets}
    for _ in range(ROUNDS):
        for name, args in targets.items():
            r = bench(args, 100)
            cpu[name].append(r["server"]["cpu_us_per_request"])
            rate[name].append(r["requests_per_s"])
    print("| target | server us/request, median (min-max) | ratio to tokio-echo, median of rounds | req/s, median |")
    print("|---|---:|---:|---:|")
    for name in targets:
        ratios = [a / b for a, b in zip(cpu[name], cpu["tokio-echo"])]
        print(f"| {name} | {statistics.median(cpu[name]):.2f} "
              f"({min(cpu[name]):.2f}-{max(cpu[name]):.2f}) | "
              f"{statistics.median(ratios):.2f} | {statistics.median(rate[name]) / 1000:.1f}k |")
    print()


if __name__ == "__main__":
    sys.exit(main())
