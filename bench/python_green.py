#!/usr/bin/env python3
"""gevent's side of green's benches: spawn+join, sleep(0), Event and Queue handoffs, and RSS per greenlet blocked on one Event.

The same cases as crates/green/benches/green.rs (criterion) and
crates/green/examples/event_crowd.rs, written the way a gevent user would:

    python3 bench/python_green.py              # every case, best of 3
    python3 bench/python_green.py crowd 100000 # only the Event crowd, that many greenlets

Each timing case prints ns per operation (the best of 3 runs); the crowd
prints the RSS the greenlets added, per greenlet. gevent's memory per
greenlet holding a socket is measured with `iomodels bench --peer` on the
course's server (bench/green_costs.sh).
"""

import sys
import time

import gevent
from gevent.event import Event
from gevent.queue import Queue

BATCH = 1000


def spawn_join(rounds: int) -> float:
    """ns per greenlet: spawn BATCH greenlets that return at once, join each."""
    start = time.perf_counter()
    for _ in range(rounds):
        greenlets = [gevent.spawn(lambda i=i: i) for i in range(BATCH)]
        for g in greenlets:
            g.join()
    return (time.perf_counter() - start) / (rounds * BATCH) * 1e9


def sleep_zero(n: int) -> float:
    """ns per sleep(0), two greenlets taking turns."""

    def other() -> None:
        for _ in range(n):
            gevent.sleep(0)

    g = gevent.spawn(other)
    start = time.perf_counter()
    for _ in range(n):
        gevent.sleep(0)
    g.join()
    return (time.perf_counter() - start) / (2 * n) * 1e9


def event_handoff(n: int) -> float:
    """ns per handoff: two greenlets passing the turn with two Events."""
    ping, pong = Event(), Event()

    def other() -> None:
        for _ in range(n):
            ping.wait()
            ping.clear()
            pong.set()

    g = gevent.spawn(other)
    gevent.sleep(0)
    start = time.perf_counter()
    for _ in range(n):
        ping.set()
        pong.wait()
        pong.clear()
    g.join()
    return (time.perf_counter() - start) / (2 * n) * 1e9


def queue_handoff(n: int) -> float:
    """ns per item: a producer greenlet puts n items into Queue(100), this one gets them."""
    q = Queue(maxsize=100)

    def produce() -> None:
        for i in range(n):
            q.put(i)

    g = gevent.spawn(produce)
    start = time.perf_counter()
    total = 0
    for _ in range(n):
        total += q.get()
    elapsed = time.perf_counter() - start
    g.join()
    assert total == n * (n - 1) // 2
    return elapsed / n * 1e9


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def crowd(n: int) -> float:
    """KiB of RSS per greenlet, n greenlets blocked on one Event; then wakes them all."""
    event = Event()
    gevent.sleep(0)
    before = rss_kib()
    greenlets = [gevent.spawn(event.wait) for _ in range(n)]
    gevent.sleep(0)  # every greenlet runs up to its wait
    during = rss_kib()
    start = time.perf_counter()
    event.set()
    gevent.joinall(greenlets)
    woke = time.perf_counter() - start
    print(f"  {n} greenlets woken and joined in {woke * 1e3:.0f} ms")
    return (during - before) / n


def best(case, arg: int, runs: int = 3) -> float:
    return min(case(arg) for _ in range(runs))


def main() -> None:
    print(f"python {sys.version.split()[0]}, gevent {gevent.__version__}")
    if len(sys.argv) > 1 and sys.argv[1] == "crowd":
        n = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
        print(f"crowd: {crowd(n):.2f} KiB RSS per greenlet blocked on one Event")
        return
    print(f"spawn_join:    {best(spawn_join, 100):8.0f} ns per greenlet")
    print(f"sleep(0):      {best(sleep_zero, 200_000):8.0f} ns per sleep")
    print(f"event handoff: {best(event_handoff, 100_000):8.0f} ns per handoff")
    print(f"queue handoff: {best(queue_handoff, 200_000):8.0f} ns per item")
    print(f"crowd: {crowd(100_000):.2f} KiB RSS per greenlet blocked on one Event")


if __name__ == "__main__":
    main()
