#!/usr/bin/env python3
"""Python's ThreadPoolExecutor on the workload of crates/conc/benches/pool.rs.

Two workers; submit 200k tiny tasks (lambda i: i + 1), then read every
result in order. Prints tasks/s, to set beside criterion's elements/s for
conc::pool::ThreadPool (1M tasks there; Python is too slow for that many).

Usage: python3 bench/python_pool.py [tasks]
"""

import sys
import time
from concurrent.futures import ThreadPoolExecutor


def main() -> None:
    tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    with ThreadPoolExecutor(max_workers=2) as pool:
        pool.submit(lambda: None).result()  # start the workers off the clock
        start = time.perf_counter()
        inc = lambda i: i + 1  # noqa: E731 - the task is meant to be tiny
        futures = [pool.submit(inc, i) for i in range(tasks)]
        total = sum(f.result() for f in futures)
        elapsed = time.perf_counter() - start
    assert total == tasks * (tasks + 1) // 2
    print(f"python ThreadPoolExecutor(max_workers=2): {tasks} tasks in {elapsed:.3f} s "
          f"= {tasks / elapsed:,.0f} tasks/s")


if __name__ == "__main__":
    main()
