#!/usr/bin/env python3
"""How much of its stack a connection thread of `--model thread` touches: the figure its stack size is set from.

    cargo build --release && python3 bench/stack_use.py [target/release/iomodels] [CLIENTS]

Starts `iomodels serve --model thread --addr 127.0.0.1:0`, connects CLIENTS
(default 100) clients that each send 1,200 bytes and read the reply, has
the first one send 300,000 bytes more (a reply larger than the session's
buffer, so its thread goes through the full-buffer path) and read it all,
then reads the server's /proc/PID/smaps: each connection thread's stack is
one mapping of the model's stack size, and its resident pages are the ones
the thread touched. Prints their count and the least, median and most
touched. Loopback only; bounded; stops by itself.
"""
import re
import socket
import subprocess
import sys

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/iomodels"
CLIENTS = int(sys.argv[2]) if len(sys.argv) > 2 else 100
STACK_KIB = 128  # crates/server/src/model/thread.rs: STACK_SIZE


def read_exactly(sock, n):
    got = 0
    while got < n:
        chunk = sock.recv(65536)
        if not chunk:
            sys.exit("the server closed a connection early")
        got += len(chunk)


def main():
    server = subprocess.Popen(
        [BIN, "serve", "--model", "thread", "--addr", "127.0.0.1:0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = server.stderr.readline()
        if " listening on " not in ready:
            sys.exit(f"no ready line: {ready!r}")
        port = int(ready.rsplit(":", 1)[1])
        clients = []
        for _ in range(CLIENTS):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            sock.sendall(b"hello world\n" * 100)
            read_exactly(sock, 1200)
            clients.append(sock)
        clients[0].sendall(b"x" * 300_000)
        read_exactly(clients[0], 300_000)
        touched = []
        size = None
        with open(f"/proc/{server.pid}/smaps") as smaps:
            for line in smaps:
                span = re.match(r"([0-9a-f]+)-([0-9a-f]+) ", line)
                if span:
                    size = (int(span.group(2), 16) - int(span.group(1), 16)) // 1024
                elif line.startswith("Rss:") and size == STACK_KIB:
                    touched.append(int(line.split()[1]))
        if len(touched) < CLIENTS:
            sys.exit(f"found {len(touched)} stacks of {STACK_KIB} KiB for {CLIENTS} clients")
        touched.sort()
        print(
            f"{len(touched)} connection stacks of {STACK_KIB} KiB: touched "
            f"{touched[0]} KiB least, {touched[len(touched) // 2]} KiB median, {touched[-1]} KiB most"
        )
        for sock in clients:
            sock.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
