#!/usr/bin/env python3
"""Two matrix runs of `iomodels bench matrix` side by side, as Markdown.

Usage: bench/compare_matrices.py BEFORE/report.json AFTER/report.json [SIZE]

For every target and connection count at one request size (64 bytes unless
SIZE is given): requests per second and server CPU per request in each run,
and the ratio after / before. The ratios are what to read: absolute figures
drift between runs on a shared machine, so a change within the spread of the
peers' ratios (whose code did not change) is noise.
"""

import json
import statistics
import sys


def cells(path, size):
    table = {}
    for cell in json.load(open(path)):
        report = cell.get("report")
        if cell["size"] != size or not report:
            continue
        server = report.get("server") or {}
        table[(cell["target"], cell["conns"])] = (
            report["requests_per_s"],
            server.get("cpu_us_per_request"),
        )
    return table


def main():
    before, after = cells(sys.argv[1], 0), None
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    before, after = cells(sys.argv[1], size), cells(sys.argv[2], size)
    targets = list(dict.fromkeys(t for t, _ in before))
    conns = sorted({c for _, c in before})
    print(f"{size}-byte requests: thousands of requests per second before -> after (ratio), "
          "then server CPU per request in us before -> after (ratio).\n")
    print("| target | " + " | ".join(f"{c} conns" for c in conns) + " |")
    print("|---|" + "---:|" * len(conns))
    ratios = {}
    for target in targets:
        row = []
        for c in conns:
            b, a = before.get((target, c)), after.get((target, c))
            if not b or not a:
                row.append("-")
                continue
            rate = a[0] / b[0]
            ratios.setdefault(target, []).append(rate)
            cpu = ""
            if b[1] and a[1]:
                cpu = f"; {b[1]:.2f} -> {a[1]:.2f} us ({a[1] / b[1]:.2f})"
            row.append(f"{b[0] / 1000:.1f}k -> {a[0] / 1000:.1f}k ({rate:.2f}){cpu}")
        print(f"| {target} | " + " | ".join(row) + " |")
    print("\nMedian ratio of requests per second, after / before, over the connection counts:\n")
    print("| target | median ratio |")
    print("|---|---:|")
    for target in targets:
        if target in ratios:
            print(f"| {target} | {statistics.median(ratios[target]):.2f} |")


if __name__ == "__main__":
    main()
