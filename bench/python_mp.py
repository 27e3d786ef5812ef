#!/usr/bin/env python3
"""Python's multiprocessing: process start+join, Queue, Pipe and ProcessPoolExecutor; the baseline for conc's processes.

Each figure is the median of several repeats (5 unless told); a figure
stops repeating before a repeat that would take it past 20 s:

1. start+join of a process whose target does nothing, one at a time, with
   multiprocessing.get_context('fork') and get_context('spawn'): ms per process;
2. multiprocessing.Queue: a child puts N 64-byte bytes objects, the parent
   gets them: items/s;
3. multiprocessing.Pipe(duplex=False): a child sends N 64-byte messages
   with send_bytes, the parent reads them with recv_bytes; then the same
   with send/recv of a 64-byte bytes object (pickled): msgs/s; and round
   trips of 64 bytes through a duplex Pipe to a child that sends each
   back (send_bytes/recv_bytes both ways): round trips/s;
4. concurrent.futures.ProcessPoolExecutor(max_workers=2): submit N trivial
   tasks (inc, a module-level i + 1) and wait every result; then
   map(inc, range(N), chunksize=100): tasks/s.

The Queue, Pipe and pool cases use the 'fork' context (Linux's default in
3.11). Their children are started (the Queue's and Pipe's child waiting
on an Event, the pool's workers through 4 tasks) before the clock starts,
and joined after it stops, so start-up is measured only in (1).
Prints one line per figure, then the same figures as a markdown table.
Run it alone on the machine, like the Rust benches:

    python3 bench/python_mp.py              # full sizes, median of 5
    python3 bench/python_mp.py --quick      # a tenth of the work, for a check
    python3 bench/python_mp.py --repeats 3
    python3 bench/python_mp.py --only fork  # the figures whose label has "fork"
"""

import argparse
import multiprocessing
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, wait

PAYLOAD = b"x" * 64
BUDGET_S = 20.0  # no figure starts a repeat that would take it past this


def noop() -> None:
    """The target of the start+join case: does nothing."""


def inc(i: int) -> int:
    """The pool's trivial task; module-level so it pickles by name."""
    return i + 1


def start_join(method: str, processes: int) -> float:
    """ms per process: start and join `processes` no-op processes one after another."""
    ctx = multiprocessing.get_context(method)
    start = time.perf_counter()
    for _ in range(processes):
        p = ctx.Process(target=noop)
        p.start()
        p.join()
    elapsed = time.perf_counter() - start
    assert p.exitcode == 0
    return elapsed / processes * 1e3


def queue_producer(q, ready, go, items: int) -> None:
    ready.set()
    go.wait()
    put = q.put
    for _ in range(items):
        put(PAYLOAD)


def queue_rate(items: int) -> float:
    """items/s through a multiprocessing.Queue, child puts, parent gets."""
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    ready, go = ctx.Event(), ctx.Event()
    child = ctx.Process(target=queue_producer, args=(q, ready, go, items))
    child.start()
    ready.wait()
    start = time.perf_counter()
    go.set()
    get = q.get
    for _ in range(items):
        item = get()
    elapsed = time.perf_counter() - start
    assert item == PAYLOAD
    child.join()
    assert child.exitcode == 0
    return items / elapsed


def pipe_bytes_sender(conn, ready, go, items: int) -> None:
    ready.set()
    go.wait()
    send = conn.send_bytes
    for _ in range(items):
        send(PAYLOAD)
    conn.close()


def pipe_obj_sender(conn, ready, go, items: int) -> None:
    ready.set()
    go.wait()
    send = conn.send
    for _ in range(items):
        send(PAYLOAD)
    conn.close()


def pipe_rate(items: int, pickled: bool) -> float:
    """msgs/s through a one-way Pipe: send_bytes/recv_bytes, or send/recv if `pickled`."""
    ctx = multiprocessing.get_context("fork")
    reader, writer = ctx.Pipe(duplex=False)
    ready, go = ctx.Event(), ctx.Event()
    target = pipe_obj_sender if pickled else pipe_bytes_sender
    child = ctx.Process(target=target, args=(writer, ready, go, items))
    child.start()
    writer.close()  # the child holds the only write end
    ready.wait()
    recv = reader.recv if pickled else reader.recv_bytes
    start = time.perf_counter()
    go.set()
    for _ in range(items):
        msg = recv()
    elapsed = time.perf_counter() - start
    assert msg == PAYLOAD
    child.join()
    reader.close()
    assert child.exitcode == 0
    return items / elapsed


def pipe_echo(conn, other_end, ready) -> None:
    other_end.close()  # the parent's end, copied by fork: else no EOF when the parent closes it
    ready.set()
    try:
        while True:
            conn.send_bytes(conn.recv_bytes())
    except EOFError:
        pass


def pipe_round_trips(trips: int) -> float:
    """Round trips/s of 64 bytes to a child that sends each message back."""
    ctx = multiprocessing.get_context("fork")
    ours, theirs = ctx.Pipe(duplex=True)
    ready = ctx.Event()
    child = ctx.Process(target=pipe_echo, args=(theirs, ours, ready))
    child.start()
    theirs.close()
    ready.wait()
    start = time.perf_counter()
    for _ in range(trips):
        ours.send_bytes(PAYLOAD)
        msg = ours.recv_bytes()
    elapsed = time.perf_counter() - start
    assert msg == PAYLOAD
    ours.close()
    child.join()
    assert child.exitcode == 0
    return trips / elapsed


def pool_rate(tasks: int, use_map: bool) -> float:
    """tasks/s through ProcessPoolExecutor(max_workers=2): submit+wait, or map(chunksize=100)."""
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
        # Both workers up and past their first task before the clock starts.
        wait([pool.submit(inc, i) for i in range(4)])
        start = time.perf_counter()
        if use_map:
            total = sum(pool.map(inc, range(tasks), chunksize=100))
        else:
            futures = [pool.submit(inc, i) for i in range(tasks)]
            wait(futures)
            total = sum(f.result() for f in futures)
        elapsed = time.perf_counter() - start
    assert total == tasks * (tasks + 1) // 2
    return tasks / elapsed


def measure(run, repeats: int) -> list:
    """Calls `run` up to `repeats` times, fewer if one more would pass BUDGET_S; returns the figures."""
    figures = []
    began = time.perf_counter()
    for done in range(1, repeats + 1):
        figures.append(run())
        spent = time.perf_counter() - began
        if spent + spent / done > BUDGET_S:  # the next repeat, at the mean so far
            break
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the work")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per figure (default 5)")
    parser.add_argument("--only", metavar="WORD", help="only the figures whose label contains WORD")
    args = parser.parse_args()
    scale = 10 if args.quick else 1

    fork_procs = 200 // scale
    spawn_procs = 20 // scale
    queue_items = 200_000 // scale
    pipe_items = 300_000 // scale
    submit_tasks = 10_000 // scale
    map_tasks = 200_000 // scale

    cases = [
        ("process start+join (fork)", f"{fork_procs} processes, one at a time", "ms",
         lambda: start_join("fork", fork_procs)),
        ("process start+join (spawn)", f"{spawn_procs} processes, one at a time", "ms",
         lambda: start_join("spawn", spawn_procs)),
        ("Queue, child puts, parent gets", f"{queue_items:,} x 64 B bytes", "items/s",
         lambda: queue_rate(queue_items)),
        ("Pipe send_bytes/recv_bytes", f"{pipe_items:,} x 64 B, one way", "msgs/s",
         lambda: pipe_rate(pipe_items, pickled=False)),
        ("Pipe send/recv (pickled)", f"{pipe_items:,} x 64 B bytes, one way", "msgs/s",
         lambda: pipe_rate(pipe_items, pickled=True)),
        ("Pipe round trip", f"{pipe_items // 10:,} x 64 B there and back", "trips/s",
         lambda: pipe_round_trips(pipe_items // 10)),
        ("ProcessPoolExecutor(2) submit+wait", f"{submit_tasks:,} tasks of inc", "tasks/s",
         lambda: pool_rate(submit_tasks, use_map=False)),
        ("ProcessPoolExecutor(2) map chunksize=100", f"{map_tasks:,} tasks of inc", "tasks/s",
         lambda: pool_rate(map_tasks, use_map=True)),
    ]
    if args.only:
        cases = [case for case in cases if args.only in case[0]]

    print(f"python {sys.version.split()[0]}, {multiprocessing.cpu_count()} cpus, "
          f"median of up to {args.repeats} repeats{' (--quick)' if args.quick else ''}")
    rows = []
    for name, work, unit, run in cases:
        began = time.perf_counter()
        figures = measure(run, args.repeats)
        spent = time.perf_counter() - began
        fmt = (lambda x: f"{x:.2f}") if unit == "ms" else (lambda x: f"{x:,.0f}")
        med, low, high = fmt(statistics.median(figures)), fmt(min(figures)), fmt(max(figures))
        per = " per process" if unit == "ms" else ""
        print(f"{name}: {med} {unit}{per} ({work}; min {low}, max {high}, "
              f"{len(figures)} repeats, {spent:.1f} s)", flush=True)
        rows.append((name, work, f"{med} {unit}{per}", f"{low} - {high}", len(figures)))

    print()
    print("| figure | work per repeat | median | min - max | repeats |")
    print("|---|---|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")

if __name__ == "__main__":
    main()
