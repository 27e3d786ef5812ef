#!/usr/bin/env python3
"""What a connection costs in each blocking-family model: start-up time and memory.

Until `iomodels bench` exists this is how the figures in the model essays were measured:

    cargo build --release && python3 bench/blocking_costs.py target/release/iomodels

For each model it starts `iomodels serve --addr 127.0.0.1:0`, then
- connect cost: N times in a row, connect, send one byte, read the reply, close;
  the time per connection, minus the same loop against the iterative model
  (which starts nothing per client), is what the model pays to start a client;
- memory: opens 500 idle connections (each answered once, so each is being
  served) and reports the growth of the server's proportional set size
  (PSS, from /proc/PID/smaps_rollup, summed over the server and its
  children) per connection.
Loopback only; bounded in count; stops by itself.
"""
import os
import socket
import subprocess
import sys
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/iomodels"
CONNECTS = 3000
IDLE = 500


def start(model):
    proc = subprocess.Popen(
        [BIN, "serve", "--model", model, "--addr", "127.0.0.1:0", "--workers", "600"],
        stderr=subprocess.PIPE, text=True)
    while True:
        line = proc.stderr.readline()
        if not line:
            raise SystemExit(f"{model} exited before listening")
        if " listening on " in line:
            host, port = line.rsplit(" ", 1)[1].strip().rsplit(":", 1)
            return proc, (host, int(port))


def pss(pid):
    """PSS in bytes of `pid` and all its descendants."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                total += next(int(l.split()[1]) for l in f if l.startswith("Pss:")) * 1024
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def connect_cost(addr):
    start = time.perf_counter()
    for _ in range(CONNECTS):
        with socket.create_connection(addr) as c:
            c.sendall(b"x")
            assert c.recv(1) == b"X"
    return (time.perf_counter() - start) / CONNECTS


def memory_per_conn(proc, addr):
    before = pss(proc.pid)
    conns = []
    for _ in range(IDLE):
        c = socket.create_connection(addr)
        c.sendall(b"x")
        assert c.recv(1) == b"X"
        conns.append(c)
    time.sleep(0.5)
    after = pss(proc.pid)
    for c in conns:
        c.close()
    return (after - before) / IDLE


def main():
    rows = {}
    for model in ["iterative", "thread", "thread-pool", "fork"]:
        proc, addr = start(model)
        try:
            connect_cost(addr)  # warm up
            cost = connect_cost(addr)
            mem = None if model == "iterative" else memory_per_conn(proc, addr)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        rows[model] = (cost, mem)
    base = rows["iterative"][0]
    print(f"# blocking-family connection costs, {CONNECTS} connects, {IDLE} idle connections")
    print(f"# machine: {os.cpu_count()} cores; client: python3 on the same machine\n")
    print("| model | us per connect+echo+close | extra us vs iterative | PSS per idle connection |")
    print("|---|---|---|---|")
    for model, (cost, mem) in rows.items():
        extra = (cost - base) * 1e6
        mem_s = "n/a (one at a time)" if mem is None else f"{mem / 1024:.0f} KiB"
        print(f"| {model} | {cost * 1e6:.1f} | {extra:+.1f} | {mem_s} |")


if __name__ == "__main__":
    main()
