#!/usr/bin/env python3
"""Alternated rounds of one bench cell under two builds of iomodels.

Usage: bench/alternate_cells.py BEFORE_BIN AFTER_BIN ROUNDS MODEL:CONNS [MODEL:CONNS ...]

For each cell, runs `BIN bench --model MODEL --conns CONNS --json` with each
build in turn, ROUNDS times, and prints the median requests per second and
server CPU per request of each build, and their ratio. Alternating the builds
spreads the machine's drift over both.
"""

import json
import statistics
import subprocess
import sys


def one(binary, model, conns):
    out = subprocess.run(
        [binary, "bench", "--model", model, "--conns", conns, "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True,
    ).stdout
    report = json.loads(out)
    return report["requests_per_s"], report["server"]["cpu_us_per_request"]


def main():
    before, after, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print("| cell | before req/s | after req/s | after / before | before us/req | after us/req | after / before |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for cell in sys.argv[4:]:
        model, conns = cell.split(":")
        runs = {before: [], after: []}
        for _ in range(rounds):
            for binary in (before, after):
                runs[binary].append(one(binary, model, conns))
        med = lambda binary, k: statistics.median(r[k] for r in runs[binary])
        rb, ra, cb, ca = med(before, 0), med(after, 0), med(before, 1), med(after, 1)
        print(f"| {model}, {conns} conns | {rb:.0f} | {ra:.0f} | {ra / rb:.2f} | {cb:.2f} | {ca:.2f} | {ca / cb:.2f} |", flush=True)


if __name__ == "__main__":
    main()
