//! Non-blocking busy polling: one thread asks every socket, over and over, whether it has anything.
//!
//! **The idea.** The course's 非阻塞IO server: make the listener and every
//! client non-blocking, so no call ever waits, and loop for ever: try to
//! accept, then try to read from each client and write back to it. It is
//! the loop of `select` and `poll` (`readiness::Loop::run_scanning`) with a
//! "wait" that does not wait: it says everything is ready. A call
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
//! (`bench/results/2026-11-26/readiness-costs.md`): 100% of a core with no
//! clients at all (every other model: 0%), and with 10 busy clients beside
//! 1000 silent ones 95.5 us of server CPU per request, against `epoll`'s
//! 8.4: every message pays for a thousand failed reads. With only busy
//! clients it keeps up with `epoll`, since the core it burns is then doing
//! work. `iomodels models` shows the idle figure.
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

use crate::readiness::{Found, Loop, Scan, fd};
use crate::{Config, Family, Model, Shutdown};

/// `--model nonblocking`.
pub const MODEL: Model = Model::new(
    "nonblocking",
    Family::NonBlocking,
    file!(),
    "one thread tries accept, read and write on every non-blocking socket in a \
     loop that never sleeps; measured: 100% of a core with no clients at all",
    serve,
)
.never_idle();

/// Serves on `listener` by polling every socket in a loop until the drain is
/// over.
///
/// # Errors
///
/// Only if the listener breaks.
pub fn serve(listener: TcpListener, config: &Config, shutdown: &Shutdown) -> io::Result<()> {
    Loop::single(listener, config, shutdown)?.run_scanning(ask_everyone, |_| Ok(()))
}

/// The "wait": none. Try to accept (`EAGAIN` means no one is waiting; while
/// descriptors are exhausted the listener is left alone for the back-off
/// period, which here saves one failed call per pass, not a core), and ask
/// every client: a read if its session has room, a write if it owes bytes.
/// Most of these fail with `EAGAIN`; that is the model.
fn ask_everyone(scan: Scan<'_>, found: &mut Found) -> io::Result<()> {
    found.accept = scan.listener.is_some();
    found.ready.extend(scan.conns.iter().map(|conn| (fd(conn), true)));
    Ok(())
}
