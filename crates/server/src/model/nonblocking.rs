//! Non-blocking busy polling: one thread asks every socket, over and over, whether it has anything.
//!
//! **The idea.** The course's 非阻塞IO server: make the listener and every
//! client non-blocking, so no call ever waits, and loop for ever: try to
//! accept, then try to read from each client and write back to it. A call
//! with nothing to do fails at once with `EAGAIN` (Python's
//! `BlockingIOError`), and the loop moves on. One thread serves everyone,
//! with no kernel multiplexer at all.
//!
//! **Done right.** The notes' version keeps one global list of replies to
//! send and drops a reply whose `send` would block. Here each connection
//! keeps what it owes in its own session, a short write leaves the rest
//! pending for the next pass, a full buffer stops reading that client
//! (backpressure), and a reset ends that client only.
//!
//! **Its cost, which is the lesson.** The loop never sleeps, so it burns a
//! whole core whether there is work or not: with zero clients it makes
//! millions of `accept` calls a second that all say `EAGAIN`. With clients,
//! every pass makes one `read` per client, ready or not, so each message pays
//! for every idle client's failed `read`. Measured on 2 cores
//! (`bench/results/2026-11-26/readiness-costs.md`, `bench/readiness_costs.py`):
//! - **100% of a core with no clients**, 99% with 1000 connected clients
//!   that send nothing (`select`, `poll`, `epoll` and `sigio`: 0%);
//! - with 10 busy clients it keeps up with `epoll` (9.0 us of server CPU per
//!   request, 109k requests/s, since the core it burns is then doing work);
//! - with 10 busy clients beside 1000 silent ones: 95.5 us per request and
//!   10k requests/s, against `epoll`'s 8.4 us and 103k/s. Every message pays
//!   for a thousand failed reads.
//!
//! `iomodels models` shows the idle figure.
//!
//! **When to pick it.** Almost never for sockets. Busy polling pays off only
//! where latency must be the lowest possible and a core is reserved for it
//! (DPDK-style packet processing, `SO_BUSY_POLL`), and there the poll is of
//! one device queue, not one system call per socket.
//!
//! **How it fails.** It does not fail, it wastes: a core at 100% on an idle
//! server, and at a few thousand clients each pass takes milliseconds of
//! failed reads, so latency grows with the number of idle clients.

use std::io;
use std::net::TcpListener;

use crate::readiness::{Loop, Phase};
use crate::{Config, Shutdown};

/// Serves on `listener` by polling every socket in a loop until the drain is
/// over.
///
/// # Errors
///
/// Only if the listener breaks.
pub fn serve(listener: TcpListener, config: &Config, shutdown: &Shutdown) -> io::Result<()> {
    let mut server = Loop::single(listener, config, shutdown)?;
    let mut fds = Vec::new();
    loop {
        if server.phase() == Phase::Over {
            return Ok(());
        }
        // Try to accept; `EAGAIN` means no one is waiting. While descriptors
        // are exhausted the listener is left alone for the back-off period,
        // which here saves one failed call per pass, not a core: the core is
        // spent either way.
        if server.acceptor.watching() {
            server.acceptor.accept(&mut server.conns, |_| Ok(()))?;
        }
        // Ask every client: a read if its session has room, a write if it
        // owes bytes. Most of these fail with `EAGAIN`; that is the model.
        fds.clear();
        fds.extend(server.conns.iter().map(|conn| conn.fd()));
        for &fd in &fds {
            server.serve(fd, true);
        }
    }
}
