//! The iterative server: one client at a time, with plain blocking calls.
//!
//! **The idea.** The course's blocking I/O model (阻塞IO) in its purest form:
//! `accept` blocks until a client arrives, `read` blocks until it sends,
//! `write` blocks until the kernel takes the reply. While one client is being
//! served, the next one has finished its TCP handshake but waits in the
//! kernel's backlog; its bytes sit in its socket's receive buffer, unanswered.
//!
//! **Its cost.** Nothing at all while there is one client: no threads, no
//! wake-ups, two system calls per message. Everything as soon as there are
//! two: the second waits for the first to *leave*, not just to go quiet.
//!
//! **When to pick it.** When clients come one at a time and leave quickly
//! (a batch job, a test fixture), or to see why every other model exists.
//!
//! **How it fails.** One idle client stops the whole service: "in the
//! meantime, the thread can do no other computation and answer no other
//! request", as the notes say of `recv(1024)`. A slow reader blocks the
//! server in `write`, and with it everyone queued behind.
//!
//! The loop itself is `blocking::one_at_a_time`, which the thread pool runs
//! N times over one listener (see `thread_pool.rs`).

use std::io;
use std::net::TcpListener;

use crate::blocking::{Registry, one_at_a_time};
use crate::{Config, Family, Model, Shutdown};

/// `--model iterative`.
pub const MODEL: Model = Model::new(
    "iterative",
    Family::Blocking,
    file!(),
    "one client at a time with blocking calls; the next waits in the backlog",
    serve,
)
.with_capacity(|_| 1);

/// Serves clients one after another until the drain; see the module docs.
///
/// # Errors
///
/// If the listener breaks, or the drain thread cannot start.
pub fn serve(listener: TcpListener, config: &Config, shutdown: &Shutdown) -> io::Result<()> {
    // The registry lets the drain reach this thread while it is blocked in
    // `read` or `write`; see `blocking.rs`.
    let registry = Registry::new(&listener, config.max_conns, shutdown)?;
    one_at_a_time(&listener, &registry, config, shutdown)
}
