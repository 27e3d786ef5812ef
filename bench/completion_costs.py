#!/usr/bin/env python3
"""The completion, async and multi-process models against their yardsticks, side by side in one run.

    cargo build --release
    cargo build --release --manifest-path ../shared/peers/tokio-echo/Cargo.toml \
        --target-dir target/peers
    python3 bench/completion_costs.py > bench/results/$(date +%F)/completion-costs.md

Three measurements with `iomodels bench` (one client thread, closed loop,
every byte checked), each alternated over ROUNDS rounds so that drift on the
machine hits every target alike; medians per target, and the median of the
per-round ratios to the yardstick:
1. 100 connections, 64-byte requests: uring, the tokio model, epoll and the
   tokio-echo peer; server CPU per request against tokio-echo's.
2. 100 connections, 16 KiB requests: uring and tokio against epoll.
3. 100 connections, 64-byte requests: epoll (one thread), reactors (a thread
   per core), prefork (a process per core) and hybrid (2 processes x 2
   threads), with the cores the server and the bench's own client used.
Loopback only; every run is bounded in time and stops by itself.
"""
import json
import os
import statistics
import subprocess
import sys
import time

BIN = "target/release/iomodels"
TOKIO = "target/peers/release/tokio-echo"
ROUNDS = int(os.environ.get("ROUNDS", "5"))
SECS = os.environ.get("SECS", "3")


def bench(args, conns, size):
    out = subprocess.run(
        [BIN, "bench", *args, "--conns", str(conns), "--size", str(size),
         "--duration", SECS, "--json"],
        capture_output=True, text=True, check=True).stdout
    report = json.loads(out)
    errors = report["errors"]
    if errors["wrong_bytes"] or errors["short_replies"]:
        raise SystemExit(f"{args}: {errors}")
    return report


def model(name, *flags):
    return ["--model", name, *[f"--server-arg={f}" for f in flags]]


def alternate(targets, conns, size):
    """ROUNDS rounds over every target; the reports per target."""
    runs = {t: [] for t in targets}
    for _ in range(ROUNDS):
        for name, args in targets.items():
            runs[name].append(bench(args, conns, size))
    return runs


def median(runs, key):
    return statistics.median(key(r) for r in runs)


def server_us(r):
    return r["server"]["cpu_us_per_request"]


def compare(runs, yardstick):
    print(f"| target | server us/request, median (min-max) | ratio to {yardstick}, "
          "median of rounds | req/s, median | client us/request |")
    print("|---|---:|---:|---:|---:|")
    for name, reports in runs.items():
        cpu = [server_us(r) for r in reports]
        ratios = [a / server_us(b) for a, b in zip(cpu, runs[yardstick])]
        print(f"| {name} | {statistics.median(cpu):.2f} ({min(cpu):.2f}-{max(cpu):.2f}) | "
              f"{statistics.median(ratios):.2f} | "
              f"{median(reports, lambda r: r['requests_per_s']) / 1000:.1f}k | "
              f"{median(reports, lambda r: r['client_cpu_us_per_request']):.2f} |")
    print()


def main():
    print("# Completion, async and multi-process models, measured\n")
    print(f"Taken by `bench/completion_costs.py` on {time.strftime('%Y-%m-%d')}, "
          f"{os.cpu_count()} cores, one client thread, {SECS} s per run, {ROUNDS} "
          "alternated rounds. Compare within this file: figures drift between runs "
          "on this VM.\n")

    print("## 1. 100 connections, 64-byte requests: against tokio-echo\n")
    compare(alternate({
        "uring": model("uring"),
        "tokio": model("tokio"),
        "epoll": model("epoll"),
        "tokio-echo": ["--peer", f"tokio-echo={TOKIO} {{port}}"],
    }, 100, 64), "tokio-echo")

    print("## 2. 100 connections, 16 KiB requests: against epoll\n")
    compare(alternate({
        "uring": model("uring"),
        "tokio": model("tokio"),
        "epoll": model("epoll"),
    }, 100, 16384), "epoll")

    print("## 3. 100 connections, 64-byte requests: threads and processes "
          "against one epoll thread\n")
    runs = alternate({
        "epoll": model("epoll"),
        "reactors": model("reactors"),
        "prefork": model("prefork"),
        "hybrid": model("hybrid"),
    }, 100, 64)
    print("| target | req/s, median | ratio to epoll, median of rounds | "
          "server cores busy | client cores busy | server us/request | "
          "peak processes / threads |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, reports in runs.items():
        rate = [r["requests_per_s"] for r in reports]
        ratios = [a / b["requests_per_s"] for a, b in zip(rate, runs["epoll"])]
        server_cores = median(reports, lambda r: server_us(r) * r["requests_per_s"] / 1e6)
        client_cores = median(
            reports, lambda r: r["client_cpu_us_per_request"] * r["requests_per_s"] / 1e6)
        last = reports[-1]["server"]
        print(f"| {name} | {statistics.median(rate) / 1000:.1f}k | "
              f"{statistics.median(ratios):.2f} | {server_cores:.2f} | {client_cores:.2f} | "
              f"{median(reports, server_us):.2f} | "
              f"{last['peak_processes']} / {last['peak_threads']} |")
    print()


if __name__ == "__main__":
    sys.exit(main())
