//! Forking a long-lived worker process out of a server that already runs threads.

use std::io::{self, StderrLock};
use std::os::fd::RawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::{ForkResult, Pid, close, getpid, getppid};

use super::exit_now;

/// The signals a worker takes with `sigwait` on a thread of its own (see
/// [`fork_worker`]): SIGTERM, and SIGINT, which it ignores.
pub(crate) fn stop_signals() -> SigSet {
    let mut stops = SigSet::empty();
    stops.add(Signal::SIGINT);
    stops.add(Signal::SIGTERM);
    stops
}

/// Forks a worker that runs `serve` and exits with the code it returns;
/// returns the worker's pid in the parent.
///
/// In the worker:
/// - the descriptors in `close_in_child` are closed (other workers'
///   listeners: a copy held here would keep them open after the drain);
/// - SIGINT is ignored (a terminal's Ctrl-C reaches the whole process group;
///   the parent decides) and SIGTERM is left *blocked*, with its default
///   action, for `serve` to take with `sigwait` ([`stop_signals`]): the
///   parent's signal handler must never run in a worker, since it would
///   wake the parent's signal thread through the pipe they share;
/// - the worker gets SIGTERM if the parent dies (`PR_SET_PDEATHSIG`), so a
///   supervisor killed with SIGKILL leaves no orphan serving for ever.
///
/// The parent has threads (its signal thread, the supervisor's drain
/// thread), and only the forking thread exists in the child: a lock another
/// thread held at the fork stays held in the child for ever. Glibc resets
/// the allocator's locks; the caller hands over stderr's lock, held across
/// the fork and released on both sides, so no log line is half written and
/// the child's logging works. `serve` may then allocate, log and start
/// threads, but must not use any other lock it shares with the parent's
/// threads.
pub(crate) fn fork_worker(
    stderr: StderrLock<'static>,
    close_in_child: &[RawFd],
    serve: impl FnOnce() -> i32,
) -> io::Result<Pid> {
    let parent = getpid();
    let mut saved = SigSet::empty();
    signal::pthread_sigmask(
        SigmaskHow::SIG_BLOCK,
        Some(&stop_signals()),
        Some(&mut saved),
    )?;
    // SAFETY: the child of a multi-threaded process may only do what cannot
    // deadlock on a lock another thread held at the fork. Stderr's lock is
    // held by this thread across the fork (the child releases its copy);
    // the allocator's are reset by glibc; `serve`'s contract, above,
    // forbids any other; and the child leaves with `_exit`, never returning
    // into the parent's code.
    let forked = unsafe { nix::unistd::fork() };
    // In the child too: this thread is the lock's owner there, so the
    // release frees it for the worker's other threads.
    drop(stderr);
    match forked {
        Ok(ForkResult::Child) => {
            for &fd in close_in_child {
                let _ = close(fd);
            }
            let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
            // SAFETY: SIG_DFL runs no code of ours.
            let _ = unsafe { signal::sigaction(Signal::SIGTERM, &default) };
            let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
            // SAFETY: SIG_IGN runs no code of ours.
            let _ = unsafe { signal::sigaction(Signal::SIGINT, &ignore) };
            // If the parent died before this line, the death signal never
            // comes: then the worker is an orphan already, and leaves.
            if nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).is_err() || getppid() != parent {
                exit_now(1);
            }
            // A panic must never unwind out of here: it would land in the
            // parent's supervisor, running in the child.
            let code = catch_unwind(AssertUnwindSafe(serve)).unwrap_or(101);
            exit_now(code)
        }
        Ok(ForkResult::Parent { child }) => {
            // It cannot fail with a mask it returned itself; and the child
            // exists, so its pid must reach the caller regardless.
            let _ = signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&saved), None);
            Ok(child)
        }
        Err(errno) => {
            let _ = signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&saved), None);
            Err(errno.into())
        }
    }
}
