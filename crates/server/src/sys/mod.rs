//! Every `unsafe` block of the server, each with the reason it is sound.
//!
//! The rest of the crate is `#![deny(unsafe_code)]`: what nix, socket2 and std
//! wrap safely is called directly from the models. What is left here are the
//! calls no safe wrapper can offer, because their safety depends on what the
//! whole process is doing: `fork` in a process with threads, process-wide
//! signal dispositions and `_exit`; memory shared between processes
//! (`shared.rs`); io_uring operations that name our buffers (`uring.rs`);
//! and `sigio`'s signal plumbing (`sigio.rs`).
#![allow(unsafe_code)]

mod shared;
pub(crate) mod sigio;
pub(crate) mod uring;
mod worker;

pub(crate) use shared::SharedCounters;
pub(crate) use worker::{fork_worker, stop_signals};

use std::io;
use std::os::fd::RawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::socket::{Shutdown, shutdown};
use nix::unistd::{ForkResult, Pid, close};

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

/// The connection a forked child serves, for its SIGTERM handler.
static CHILD_CONN: AtomicI32 = AtomicI32::new(-1);

/// A forked child's SIGTERM: stop reading the client. The blocking loop then
/// reads what the client already sent, gets EOF, flushes the replies and
/// exits: the drain, for a process that has no thread to watch for it.
extern "C" fn shut_read_on_term(_: libc::c_int) {
    let fd = CHILD_CONN.load(Ordering::Relaxed);
    if fd >= 0 {
        // shutdown(2) is async-signal-safe (signal-safety(7)); if it fails the
        // parent's SIGKILL at the end of the grace period still ends us.
        let _ = shutdown(fd, Shutdown::Read);
    }
}

/// Forks a child that serves connection `conn` by running `serve` and exits
/// with the code it returns; returns the child's pid in the parent.
///
/// The child closes the descriptors in `close` (the listener), ignores
/// SIGINT (a terminal's Ctrl-C reaches the whole process group; the parent
/// decides), and takes SIGTERM as "stop reading `conn`". Both signals are
/// blocked across the fork, so no signal finds the child before its handlers.
///
/// `serve` runs in a copy of a process that may have other threads, and
/// those threads do not exist in the child: it must not take a lock that
/// one of them could have held (no logging, no stdout, no channels). Memory
/// allocation is allowed: glibc's `fork` resets the allocator's locks in the
/// child. The blocking echo loop meets this: it reads and writes one socket
/// through a buffer allocated before the fork.
pub(crate) fn fork_child(
    conn: RawFd,
    close_in_child: &[RawFd],
    serve: impl FnOnce() -> i32,
) -> io::Result<Pid> {
    let mut stops = SigSet::empty();
    stops.add(Signal::SIGINT);
    stops.add(Signal::SIGTERM);
    let mut saved = SigSet::empty();
    signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&stops), Some(&mut saved))?;

    // SAFETY: `fork` is unsafe because the child of a multi-threaded process
    // may only do what cannot deadlock on a lock another thread held at the
    // moment of the fork. The child below only closes descriptors, sets signal
    // dispositions, runs `serve` (whose contract, above, forbids such locks)
    // and leaves with `_exit`, never returning into the parent's code.
    let forked = unsafe { nix::unistd::fork() };
    match forked {
        Ok(ForkResult::Child) => {
            for &fd in close_in_child {
                let _ = close(fd);
            }
            CHILD_CONN.store(conn, Ordering::Relaxed);
            let on_term = SigAction::new(
                SigHandler::Handler(shut_read_on_term),
                SaFlags::SA_RESTART,
                SigSet::empty(),
            );
            // SAFETY: the handler only loads an atomic and calls shutdown(2),
            // both async-signal-safe, so it is sound whatever it interrupts.
            let _ = unsafe { signal::sigaction(Signal::SIGTERM, &on_term) };
            let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
            // SAFETY: SIG_IGN runs no code of ours.
            let _ = unsafe { signal::sigaction(Signal::SIGINT, &ignore) };
            let _ = signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&saved), None);
            // A panic must never unwind out of here: it would land in the
            // parent's accept loop, running in the child.
            let code = catch_unwind(AssertUnwindSafe(serve)).unwrap_or(101);
            exit_now(code)
        }
        Ok(ForkResult::Parent { child }) => {
            signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&saved), None)?;
            Ok(child)
        }
        Err(errno) => {
            let _ = signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&saved), None);
            Err(errno.into())
        }
    }
}

/// Ends a forked child at once, running no `atexit` handlers and flushing no
/// stdio buffers: those belong to the parent.
fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` takes no locks and touches no shared state; it is the
    // documented way for a forked child to leave (fork(2), _exit(2)).
    unsafe { libc::_exit(code) }
}
