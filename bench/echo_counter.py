#!/usr/bin/env python3
"""A second, independent count of what a server echoes, beside `iomodels bench`.

The bench counts replies on its client side and reads the server's CPU and the
kernel's TCP counters at the edges of its window. This script counts on the
server's side instead, in the kernel, on its own clock: `perf stat -a -I 20`
counts the `sock:sock_send_length` tracepoint (one event per send(2), write(2)
or io_uring send on a socket), filtered to successful sends on IPv4 sockets by
any thread but the bench's load thread (`load-0`), and prints the count every
20 ms. With 64-byte requests and one in flight per connection, every reply is
one send. From the bench's JSON report it takes only where its window lay (the
CLOCK_MONOTONIC instants it prints); nothing it counts goes through the bench's
code, its readings or its timing.

With --readings it answers the other question, whether the bench's readings
move its figures: the same server is measured alternately by `bench --peer`
(the bench reads the server's CPU, memory and tcp_info) and by `bench --addr`
against a server this script started (the bench reads nothing of it), and the
tracepoint's count over each window is compared.

For each run it prints, in replies per second:
- the bench's own rate over its window;
- the server's rate over the same window, from the tracepoint;
- the server's rate over the warm-up, and over the middle of the window, away
  from its edges, where the bench takes its readings: if the readings took CPU
  from the load, the window would run slower than these.

Usage: bench/echo_counter.py [--out FILE] [--repeat N] [BENCH ARGS...]
Default: the thread and epoll models and tokio-echo at 1, 10, 100 and 1000
connections, 3 runs each. Needs root, perf (Debian's linux-perf),
target/release/iomodels (cargo build --release) and, for tokio-echo,
target/peers/release/tokio-echo (bench/run-matrix.sh builds it).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target/release/iomodels")
TOKIO = os.path.join(ROOT, "target/peers/release/tokio-echo")
FILTER = 'family == 2 && ret > 0 && comm != "load-0"'
INTERVAL_MS = 20


def counted(perf_out, started):
    """(monotonic time, sends so far) at the end of each of perf's intervals."""
    total, points = 0, [(started, 0)]
    for line in perf_out.splitlines():
        fields = line.split(",")
        if len(fields) < 4 or not fields[1].strip().isdigit():
            continue
        total += int(fields[1])
        points.append((started + float(fields[0]), total))
    return points


def at(samples, when):
    """wchar at `when`, interpolated between the samples around it."""
    for (t0, w0), (t1, w1) in zip(samples, samples[1:]):
        if t0 <= when <= t1:
            return w0 + (w1 - w0) * (when - t0) / (t1 - t0)
    raise ValueError(f"no samples around {when}")


def run(args, size):
    perf_path = f"/tmp/echo-counter-{os.getpid()}.csv"
    started = time.monotonic()
    perf = subprocess.Popen(
        ["perf", "stat", "-a", "-x,", "-I", str(INTERVAL_MS), "-o", perf_path,
         "-e", "sock:sock_send_length", "--filter", FILTER],
        stderr=subprocess.DEVNULL,
    )
    out = subprocess.run(
        [BIN, "bench", "--json", "--size", str(size), *args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True,
    ).stdout
    # Past the window's end by a few of perf's intervals, then stop it.
    time.sleep(5 * INTERVAL_MS / 1000)
    perf.send_signal(2)
    perf.wait()
    with open(perf_path) as f:
        samples = counted(f.read(), started)
    os.unlink(perf_path)
    report = json.loads(out)
    start, end = report["window_monotonic"]
    warmup, window = report["warmup_s"], end - start
    rate = lambda a, b: (at(samples, b) - at(samples, a)) / (b - a)
    return {
        "bench": report["requests_per_s"],
        "window": rate(start, end),
        "warmup": rate(start - warmup * 0.8, start - 0.05),
        "middle": rate(start + window * 0.25, end - window * 0.25),
    }


def raise_nofile():
    """The soft descriptor limit up to the hard one, as the bench does."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def readings(conns, repeat, size):
    """Rows comparing the server's rate with the bench's readings on and off."""
    rows = []
    serve = [BIN, "serve", "--model", "thread", "--addr"]
    for i in range(repeat):
        # On: the bench starts the server as a peer and reads it.
        peer = f"thread={' '.join(serve)} 127.0.0.1:{{port}}"
        on = run(["--peer", peer, "--conns", str(conns)], size)
        # Off: the same server, started here; the bench only loads it.
        port = 17300 + i
        # With the descriptor limit the bench gives the servers it starts.
        server = subprocess.Popen(
            [*serve, f"127.0.0.1:{port}"], stderr=subprocess.PIPE, text=True,
            preexec_fn=raise_nofile,
        )
        while " listening on " not in server.stderr.readline():
            pass
        off = run(["--addr", f"127.0.0.1:{port}", "--conns", str(conns)], size)
        server.terminate()
        server.wait()
        rows.append(
            f"| thread, {conns} conns (round {i + 1}) | {on['window']:.0f} | {off['window']:.0f} | "
            f"{on['window'] / off['window']:.3f} |"
        )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="append the Markdown table to this file")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument(
        "--readings", action="store_true",
        help="compare the server's rate with the bench's readings on and off",
    )
    parser.add_argument("bench_args", nargs="*", help="one bench run's flags")
    opts = parser.parse_args()
    if opts.readings:
        lines = [
            "| run | server req/s, bench reading it | server req/s, bench not reading it | on / off |",
            "|---|---:|---:|---:|",
        ]
        print("\n".join(lines), flush=True)
        for conns in (1, 10, 100, 1000):
            for row in readings(conns, opts.repeat, opts.size):
                lines.append(row)
                print(row, flush=True)
        if opts.out:
            with open(opts.out, "a") as f:
                f.write("\n".join(lines) + "\n")
        return
    if opts.bench_args:
        plans = [(" ".join(opts.bench_args), opts.bench_args)]
    else:
        plans = []
        for conns in (1, 10, 100, 1000):
            for model in ("thread", "epoll"):
                plans.append((f"{model}, {conns} conns", ["--model", model, "--conns", str(conns)]))
            peer = f"tokio-echo={TOKIO} {{port}}"
            plans.append((f"tokio-echo, {conns} conns", ["--peer", peer, "--conns", str(conns)]))
    lines = [
        "| run | bench req/s | server req/s, same window | bench / server | "
        "server in the warm-up | server, middle of the window |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    for name, args in plans:
        for i in range(opts.repeat):
            r = run(args, opts.size)
            line = (
                f"| {name} (run {i + 1}) | {r['bench']:.0f} | {r['window']:.0f} | "
                f"{r['bench'] / r['window']:.3f} | {r['warmup']:.0f} | {r['middle']:.0f} |"
            )
            lines.append(line)
            print(line, flush=True)
    if opts.out:
        with open(opts.out, "a") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
