//! Signal-driven I/O: every socket raises a real-time signal when it becomes ready, and one thread takes them in turn.
//!
//! **The idea.** The course names it among the five I/O models (信号驱动IO)
//! without code: instead of asking which sockets are ready, the process asks
//! the kernel to *tell* it, with a signal. Each socket gets `O_ASYNC`, an
//! owner (this thread) and, with `F_SETSIG`, a real-time signal of its own
//! choosing, which unlike plain `SIGIO` is queued once per event and carries
//! the descriptor (`si_fd`) and what it is ready for (`si_band`). The signal
//! is blocked and taken synchronously with `sigtimedwait`, so no handler ever
//! interrupts the loop half-way through its bookkeeping: the signal queue is
//! used as an event queue.
//!
//! **Edge, not level.** A signal is sent when something *happens* (bytes
//! arrive, room frees up after a write that would block), not while a state
//! lasts. So each connection is served until it would block, as with
//! edge-triggered epoll, and one thing gets no signal and is done by the
//! loop itself: a new connection's bytes that arrived before it was set up.
//!
//! **Overflow.** The real-time queue is bounded (`RLIMIT_SIGPENDING`, shared
//! by every process of the user). When it is full the kernel sends a plain
//! `SIGIO` instead, which says only "something happened, I lost track": the
//! loop then serves every connection until it would block and accepts every
//! queued client, a full rescan. A test lowers the limit to make this
//! happen and checks that every byte still arrives.
//!
//! **Why it is rarely used.** One signal per event, each taken with its own
//! system call (where `epoll_wait` returns a thousand events in one), and
//! three `fcntl` calls to set up each socket. Stale signals: a signal queued
//! for a descriptor that was closed, and perhaps reused, since, so every
//! signal is only a hint. A per-user queue limit that another program can
//! exhaust, and an overflow path that must be as correct as the main one.
//! Signal numbers and masks are process-wide state that libraries fight
//! over. And no readiness for anything but sockets, pipes and terminals.
//!
//! **Measured** on 2 cores (`bench/results/2026-11-26/readiness-costs.md`):
//! at 100 busy connections, 1.11x `epoll`'s server CPU per request in the
//! same rounds: one `sigtimedwait` per event is dearer than a share of one
//! `epoll_wait`, but by less than folklore has it, since the kernel's TCP
//! path dominates.
//!
//! **When to pick it.** For a handful of descriptors in a program that must
//! not block and has no loop to put them in. For servers, `epoll`.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Duration;

use crate::readiness::{Loop, Step, fd};
use crate::sys::sigio::{SignalSet, signal_when_ready};
use crate::{Config, Family, Model, Shutdown};

/// `--model sigio`.
pub const MODEL: Model = Model::new(
    "sigio",
    Family::SignalDriven,
    file!(),
    "sockets raise a real-time signal when ready (O_ASYNC, F_SETSIG), taken \
     with sigtimedwait; a full signal queue falls back to a rescan",
    serve,
);

/// The real-time signal the sockets raise. glibc keeps the first two for
/// itself (`SIGRTMIN()` is past them); the offset keeps clear of libraries
/// that take `SIGRTMIN()` itself.
fn io_signal() -> libc::c_int {
    libc::SIGRTMIN() + 3
}

/// Serves on `listener` with signal-driven I/O on the calling thread until
/// the drain is over.
///
/// # Errors
///
/// If the signals cannot be blocked or the listener and shutdown descriptor
/// cannot be set to signal, or the listener breaks.
pub fn serve(listener: TcpListener, config: &Config, shutdown: &Shutdown) -> io::Result<()> {
    let signal = io_signal();
    // Blocked before any socket can raise it; dropped (unblocked, after
    // taking what is still queued) only once every socket is closed.
    let signals = SignalSet::block(&[signal, libc::SIGIO])?;
    // The shutdown descriptor signals too: one wait covers sockets and the drain.
    signal_when_ready(shutdown, signal)?;
    let result = run(listener, config, shutdown, &signals, signal);
    // Stop the shutdown descriptor from signalling a thread that no longer
    // waits for it: once the mask is restored, a real-time signal would end
    // the process. If that fails, keep the signals blocked instead.
    if let Err(error) = crate::sys::sigio::set_async(shutdown, false) {
        tracing::warn!("sigio: cannot turn signals off on the shutdown descriptor: {error}");
        std::mem::forget(signals);
    }
    result
}

fn run(
    listener: TcpListener,
    config: &Config,
    shutdown: &Shutdown,
    signals: &SignalSet,
    signal: libc::c_int,
) -> io::Result<()> {
    signal_when_ready(&listener, signal)?;
    let mut server = Loop::single(listener, config, shutdown)?;
    let shutdown_fd = shutdown.as_fd().as_raw_fd();
    // Clients may be queued on the listener with no signal to come for them:
    // at the start, and after a pause for descriptor exhaustion.
    let mut accept_due = true;
    let mut overflowed = false;
    loop {
        // The drain sends no signal of its own: what it leaves a connection
        // to read was announced when it arrived.
        if server.tick() == Step::Return {
            return Ok(());
        }
        // Turns that ran out of budget go on first (the wait below does not
        // sleep while any is left), then clients no signal will announce.
        server.turn_again();
        let mut timeout = server.timeout();
        if accept_due && server.listening() {
            accept_due = accept(&mut server, signal)?;
            if accept_due && !server.pausing() {
                timeout = Some(Duration::ZERO); // a full batch: more are queued
            }
        }

        let Some(delivery) = signals.wait(timeout)? else {
            continue; // the timeout: a deadline, looked at above
        };
        if delivery.signo == libc::SIGIO {
            // The real-time queue overflowed: events were lost, so look at
            // everything. The signals that did queue are still valid hints.
            if !overflowed {
                tracing::warn!(
                    "sigio: the real-time signal queue is full (RLIMIT_SIGPENDING); \
                     rescanning every connection when it overflows"
                );
                overflowed = true;
            }
            server.turn_all_until_blocked();
            accept_due = true;
        } else if Some(delivery.fd) == server.listener_fd() {
            accept_due = true;
        } else if delivery.fd != shutdown_fd {
            // A connection, or a stale signal for a descriptor closed since:
            // serving an unknown or idle descriptor does nothing.
            server.turn_until_blocked(delivery.fd);
        }
    }
}

/// Accepts a batch of queued clients, sets each to signal, and serves it
/// until it would block, for the bytes that arrived before it could signal.
/// Returns whether accepting must be tried again without a signal to say
/// so: the batch filled up (more are queued), or descriptors ran out (the
/// listener is paused).
fn accept(server: &mut Loop<'_>, signal: libc::c_int) -> io::Result<bool> {
    let mut fresh: Vec<RawFd> = Vec::new();
    let more = server.accept(|conn| {
        signal_when_ready(&conn.stream, signal)?;
        fresh.push(fd(conn));
        Ok(())
    })?;
    for fd in fresh {
        server.turn_until_blocked(fd);
    }
    Ok(more || server.pausing())
}
