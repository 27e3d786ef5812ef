#!/usr/bin/env python3
"""conc's processes against Python's multiprocessing as alternating pairs: the ratio per pair, and its median.

This machine's host moves the cost of a fork, a wake-up or a cache miss
by 2x and more from one minute to the next, so a figure taken on each
side minutes apart can say more about the host than about either side.
This script runs the two sides back to back, figure by figure, in
alternating order (Python first in odd rounds, conc first in even ones),
and reports the ratio within each pair:

    python3 bench/process_pairs.py                 # 5 rounds of every figure
    python3 bench/process_pairs.py --rounds 3 --only fork

Each side of a pair is `bench/python_mp.py --only WORD --repeats 3` and
`process_costs --only WORD --repeats 3` (the release example, built
first), each reporting the median of its 3 repeats. The ratio is conc's
speed over Python's (for start+join, Python's time over conc's), so
above 1 means conc is faster. With a C compiler present, each fork round
also runs `bench/fork_floor.c` (fork, `_exit`, `waitpid` and nothing
else): Python's time over the floor's is the most any fork could gain
over Python in that round; each send_bytes round runs
`bench/ring_floor.c` (a lock-free spinning ring in shared memory), the
most any shared-memory pipe could do in that round. Prints a line per
pair and a markdown table of the medians.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EXAMPLE = os.path.join(ROOT, "target", "release", "examples", "process_costs")

# (label word for both scripts, conc's label, Python's label, lower is better)
FIGURES = [
    ("start+join (fork)", "process start+join (fork)", "process start+join (fork)", True),
    ("start+join (spawn)", "process start+join (spawn)", "process start+join (spawn)", True),
    ("Queue", "Queue, child puts, parent gets", "Queue, child puts, parent gets", False),
    ("send_bytes", "Pipe send_bytes/recv_bytes", "Pipe send_bytes/recv_bytes", False),
    ("Pipe send/recv", "Pipe send/recv (postcard)", "Pipe send/recv (pickled)", False),
    ("round trip", "Pipe round trip", "Pipe round trip", False),
    ("submit", "ProcessPool(2) submit+wait", "ProcessPoolExecutor(2) submit+wait", False),
    ("map", "ProcessPool(2) map chunksize=100", "ProcessPoolExecutor(2) map chunksize=100", False),
]


def figure(output: str, label: str) -> float:
    """The median a script printed on the line starting with `label`."""
    for line in output.splitlines():
        if line.startswith(label + ":"):
            return float(re.match(r"[\d,.]+", line[len(label) + 2:]).group(0).replace(",", ""))
    sys.exit(f"no line {label!r} in:\n{output}")


def run(command: list) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


# The C floors beside a figure: source, arguments, the label it prints.
FLOORS = {
    "start+join (fork)": ("fork_floor.c", ["2000", "3"], "fork floor (C: fork, _exit, waitpid)"),
    "send_bytes": ("ring_floor.c", ["2000000", "3"], "ring floor (C: spin, no locks)"),
}


def floor_binary(source: str) -> str:
    """bench/`source` built into a temporary directory, or None without a C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        print(f"no C compiler: {source} is not measured", flush=True)
        return None
    out = os.path.join(tempfile.mkdtemp(prefix="floor"), source.removesuffix(".c"))
    subprocess.run([cc, "-O2", "-o", out, os.path.join(HERE, source)], check=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="pairs per figure (default 5)")
    parser.add_argument("--only", metavar="WORD", help="only the figures whose word contains WORD")
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "conc", "--example", "process_costs"],
                   cwd=ROOT, check=True)
    wanted = [f for f in FIGURES if not args.only or args.only in f[0]]
    rows, floor_lines = [], []
    for word, conc_label, py_label, lower_better in wanted:
        floor = None
        if word in FLOORS:
            source, floor_args, floor_label = FLOORS[word]
            binary = floor_binary(source)
            floor = binary and [binary, *floor_args]
        floors = []
        python = [sys.executable, os.path.join(HERE, "python_mp.py"), "--only", word, "--repeats", "3"]
        conc = [EXAMPLE, "--only", word, "--repeats", "3"]
        ratios, conc_figures, py_figures = [], [], []
        for r in range(args.rounds):
            order = [("py", python), ("conc", conc)] if r % 2 == 0 else [("conc", conc), ("py", python)]
            if floor:
                order.insert(1, ("floor", floor))
            got = {side: run(command) for side, command in order}
            c, p = figure(got["conc"], conc_label), figure(got["py"], py_label)
            ratio = p / c if lower_better else c / p
            conc_figures.append(c)
            py_figures.append(p)
            ratios.append(ratio)
            line = f"{conc_label}: round {r + 1}: conc {c:,.3f}, python {p:,.3f}, ratio {ratio:.1f}x"
            if "floor" in got:
                f = figure(got["floor"], floor_label)
                # The most any implementation could gain over Python here,
                # and how far conc is from the floor (1 = at it).
                ceiling, off = (p / f, c / f) if lower_better else (f / p, f / c)
                floors.append((f, ceiling, off))
                line += f"; floor {f:,.3f}: floor over python {ceiling:.1f}x, conc {off:.2f}x off the floor"
            print(line, flush=True)
        if floors:
            f, ceiling, off = (statistics.median(x) for x in zip(*floors))
            floor_lines.append(f"{floor_label}: {f:,.3f} (median of {len(floors)} rounds) beside "
                               f"{conc_label}; the floor over Python, per round: median {ceiling:.1f}x "
                               f"(the most any implementation could gain here); conc off the floor: "
                               f"median {off:.2f}x")
        rows.append((conc_label, statistics.median(conc_figures), statistics.median(py_figures),
                     statistics.median(ratios), min(ratios), max(ratios)))
    print()
    print(f"| figure | conc (median) | Python (median) | ratio, median of {args.rounds} pairs | range |")
    print("|---|---:|---:|---:|---:|")
    for label, c, p, ratio, low, high in rows:
        unit = " ms" if "start+join" in label else "/s"
        print(f"| {label} | {c:,.3f}{unit} | {p:,.3f}{unit} | {ratio:.1f}x | {low:.1f}-{high:.1f}x |")
    for line in floor_lines:
        print("\n" + line)

if __name__ == "__main__":
    main()
