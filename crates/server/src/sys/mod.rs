//! Every `unsafe` block of the server, each with the reason it is sound.
//!
//! The rest of the crate is `#![deny(unsafe_code)]`: what nix, socket2 and std
//! wrap safely is called directly from the models. What is left here are the
//! calls no safe wrapper can offer, because their safety depends on what the
//! whole process is doing: `fork` in a process with threads and `_exit`
//! (`fork.rs`); process-wide signal dispositions, and the signal that wakes
//! a thread blocked in `read` (below); memory shared between processes
//! (`shared.rs`); io_uring operations that name our buffers (`uring.rs`);
//! `sigio`'s signal plumbing (`sigio.rs`); and one `ioctl`.
#![allow(unsafe_code)]

mod fork;
mod shared;
pub(crate) mod sigio;
pub(crate) mod uring;

pub(crate) use fork::{OnTerm, child_draining, fork, stop_signals};
pub(crate) use shared::SharedCounters;

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Once;

use nix::sys::pthread::{Pthread, pthread_kill};
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// Makes a write to a closed connection fail with `EPIPE` instead of killing
/// the process with SIGPIPE. Rust binaries start that way already; this makes
/// the server library safe to embed in a program that did not.
pub(crate) fn ignore_sigpipe() -> io::Result<()> {
    // SAFETY: SIG_IGN runs no code of ours, so no handler can break an
    // invariant; changing a disposition is atomic for the whole process.
    unsafe { signal::signal(Signal::SIGPIPE, SigHandler::SigIgn) }?;
    Ok(())
}

/// Gives SIGCHLD its default disposition, so that exited children wait to
/// be reaped: in a process started with it ignored (a disposition of
/// "ignore" survives `exec`), the kernel would reap them itself, out of a
/// supervisor's sight.
pub(crate) fn default_sigchld() -> io::Result<()> {
    // SAFETY: SIG_DFL runs no code of ours.
    unsafe { signal::signal(Signal::SIGCHLD, SigHandler::SigDfl) }?;
    Ok(())
}

/// How many bytes the kernel holds, unread, in `socket`'s receive queue
/// (`FIONREAD`, also called `SIOCINQ`).
pub(crate) fn unread(socket: impl AsFd) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points at
    // `n`, alive and writable for the whole call.
    let rc = unsafe { libc::ioctl(socket.as_fd().as_raw_fd(), libc::FIONREAD, &raw mut n) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(n).unwrap_or(0))
}

/// The signal that wakes a thread blocked in `read` or `write` ([`wake`]).
/// SIGURG, as the Go runtime picked for preempting its threads: its
/// default is to be ignored, and only a socket given an owner with
/// `F_SETOWN` raises it by itself, which no blocking model does.
const WAKE: Signal = Signal::SIGURG;

/// Makes [`wake`] interrupt a blocked system call: installs, once for the
/// process, a handler for [`WAKE`] that does nothing, without `SA_RESTART`.
///
/// # Errors
///
/// If the handler cannot be installed.
pub(crate) fn init_wake() -> io::Result<()> {
    static INSTALLED: Once = Once::new();
    let mut result = Ok(());
    INSTALLED.call_once(|| {
        extern "C" fn nothing(_: libc::c_int) {}
        let action = SigAction::new(
            SigHandler::Handler(nothing),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler runs no code at all, so it is sound whatever
        // it interrupts; the disposition changes atomically for the process.
        result = unsafe { signal::sigaction(WAKE, &action) }.map(drop);
    });
    Ok(result?)
}

/// Interrupts what `thread` is blocked in (a `read`, a `write`): the call
/// returns `EINTR`, or a short count. [`init_wake`] must have run.
pub(crate) fn wake(thread: Pthread) {
    // Fails only for a thread that has exited, which needed no waking.
    let _ = pthread_kill(thread, WAKE);
}
