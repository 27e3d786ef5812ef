//! The drain, in one place: its steps, the rule for how much each client is still answered, and the lines it logs.
//!
//! Every model stops the same way (point 6 of the contract in
//! `model/mod.rs`):
//!
//! 1. **Stop accepting.** The listener is closed (or shut, for threads
//!    blocked in `accept`): clients that connect from now on are refused.
//! 2. **Answer what was received.** Each connection is answered everything
//!    the server had from it when it noticed the drain: what its session
//!    holds, plus what the kernel has queued for it ([`queued`], given to
//!    [`EchoSession::stop_after`](crate::EchoSession::stop_after)).
//! 3. **Close without a reset.** Once answered, the connection is
//!    half-closed (the client reads EOF after the last reply), and the
//!    server reads and throws away whatever the client still sends until
//!    its EOF: a lingering close. Closing at once, with the client's bytes
//!    unread, would make the kernel reset the connection, and a reset
//!    throws away the replies still in the send queue. So would shutting the
//!    read side (`SHUT_RD`): on Linux a segment that arrives on a socket
//!    shut for reading after our FIN is answered with a reset.
//! 4. **The forced stop** ends the grace period: what is left is closed (or
//!    killed) at once.
//!
//! Models with a thread to spare for waiting run [`watch`], which calls
//! their steps in order (`tokio` too, to turn the phases into a watch
//! channel its tasks can await); the event loops (`readiness`, `uring`,
//! `tokio`'s tasks) look at the phase on each turn and call [`queued`] and
//! [`log_forced`] themselves.

use std::io;
use std::os::fd::AsFd;
use std::thread;

use crate::Shutdown;

/// How many bytes the kernel holds for `socket`, read by nobody yet: what
/// the drain still answers besides what the session holds. 0 if the socket
/// cannot say, which is when it is broken: its next read reports that.
pub(crate) fn queued(socket: impl AsFd) -> usize {
    crate::sys::unread(socket).unwrap_or(0)
}

/// What a forced stop found still there.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Left {
    /// Connections, closed now.
    Connections(usize),
    /// Worker processes, stopped now.
    Workers(usize),
}

/// The forced stop's one log line, if anything was left to close.
pub(crate) fn log_forced(left: Left) {
    match left {
        Left::Connections(0) | Left::Workers(0) => {}
        Left::Connections(n) => tracing::info!("grace period over: closing {n} connections"),
        Left::Workers(n) => tracing::info!("grace period over: stopping {n} workers"),
    }
}

/// Starts the drain thread of a model that serves on threads or processes:
/// it waits for the drain and runs `drain` (steps 1 and 2: stop accepting,
/// tell every connection or worker), then waits for the forced stop and runs
/// `force`, which closes what is left and says what that was.
///
/// # Errors
///
/// If the thread cannot start.
pub(crate) fn watch(
    shutdown: &Shutdown,
    drain: impl FnOnce() + Send + 'static,
    force: impl FnOnce() -> Left + Send + 'static,
) -> io::Result<()> {
    let shutdown = shutdown.clone();
    thread::Builder::new().name("drain".into()).spawn(move || {
        shutdown.wait_draining();
        drain();
        shutdown.wait_forced();
        log_forced(force());
    })?;
    Ok(())
}
