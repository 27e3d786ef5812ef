#!/usr/bin/env python3
"""Python's queue.Queue(maxsize=100): one producer thread, one consumer thread, 1M items; prints items/s.

The baseline for conc's queue bench (crates/conc/benches/queue.rs), which
moves the same 1M items through conc::queue::Queue::new(100) and
crossbeam_channel::bounded(100). Run it alone on the machine, like the bench:

    python3 bench/python_queue.py            # 1M items, best of 3 runs
    python3 bench/python_queue.py 200000 1   # fewer items, one run
"""

import queue
import sys
import threading
import time


def run(items: int) -> float:
    """Moves `items` ints from a producer thread to this thread; returns items/s."""
    q = queue.Queue(maxsize=100)

    def produce() -> None:
        put = q.put  # a local name saves an attribute lookup per item
        for i in range(items):
            put(i)

    producer = threading.Thread(target=produce)
    start = time.perf_counter()
    producer.start()
    get = q.get
    total = 0
    for _ in range(items):
        total += get()
    elapsed = time.perf_counter() - start
    producer.join()
    # Every item arrived exactly once.
    assert total == items * (items - 1) // 2
    return items / elapsed


def main() -> None:
    items = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    rates = []
    for n in range(runs):
        rate = run(items)
        rates.append(rate)
        print(f"run {n + 1}: {rate:,.0f} items/s")
    print(
        f"python {sys.version.split()[0]} queue.Queue(maxsize=100), 1 producer, 1 consumer, "
        f"{items:,} items: best {max(rates):,.0f} items/s"
    )


if __name__ == "__main__":
    main()
