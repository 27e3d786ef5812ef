//! Forking a process out of a server that already runs threads: the one skeleton `fork` (a child per connection) and the supervisor (worker processes) share.

use std::io::{self, StderrLock};
use std::os::fd::RawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::{ForkResult, Pid, close, getpid, getppid};

/// How the forked process takes SIGTERM, which its parent sends to drain it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum OnTerm {
    /// A child that serves one connection with the blocking loop, on its
    /// only thread: a handler marks the drain ([`child_draining`]) and sets
    /// a short read timeout on the connection, so that a `read` blocked now
    /// returns `EINTR` and one about to block returns within a millisecond.
    /// Either way the loop sees the mark and drains (see `blocking.rs`).
    DrainConnection(RawFd),
    /// A worker with threads of its own: SIGTERM stays *blocked*, with its
    /// default action, for a thread to take with `sigwait`
    /// ([`stop_signals`]). The parent's signal handler must never run in a
    /// worker, since it would wake the parent's signal thread through the
    /// pipe they share.
    Blocked,
}

/// The signals a worker takes with `sigwait` on a thread of its own (see
/// [`OnTerm::Blocked`]): SIGTERM, and SIGINT, which it ignores.
pub(crate) fn stop_signals() -> SigSet {
    let mut stops = SigSet::empty();
    stops.add(Signal::SIGINT);
    stops.add(Signal::SIGTERM);
    stops
}

/// Whether this process, a child forked with [`OnTerm::DrainConnection`],
/// was told to drain.
pub(crate) fn child_draining() -> &'static AtomicBool {
    &CHILD_DRAINING
}

static CHILD_DRAINING: AtomicBool = AtomicBool::new(false);

/// The connection a forked child serves, for its SIGTERM handler.
static CHILD_CONN: AtomicI32 = AtomicI32::new(-1);

/// How soon a `read` that starts after the handler ran gives up: the
/// blocking loop then looks at the mark.
const WAKE_WITHIN: Duration = Duration::from_millis(1);

/// A connection child's SIGTERM: mark the drain, and make a read that is
/// about to block return soon (one blocked already returns `EINTR`, since
/// the handler is installed without `SA_RESTART`).
extern "C" fn drain_on_term(_: libc::c_int) {
    // A handler must leave `errno` as it found it: the code it interrupted
    // may be about to read it.
    let errno = nix::errno::Errno::last_raw();
    CHILD_DRAINING.store(true, Ordering::SeqCst);
    let fd = CHILD_CONN.load(Ordering::Relaxed);
    if fd >= 0 {
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: WAKE_WITHIN.as_micros() as libc::suseconds_t,
        };
        // SAFETY: setsockopt(2) is async-signal-safe (signal-safety(7)) and
        // reads only `timeout`, a local that outlives the call; on a closed
        // descriptor it fails harmlessly. If it fails, the parent's SIGKILL
        // at the end of the grace period still ends this child.
        let _ = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const timeout).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
    }
    nix::errno::Errno::set_raw(errno);
}

/// Forks a process that runs `body` and exits with the code it returns;
/// returns its pid in the parent.
///
/// In the child:
/// - the descriptors in `close_in_child` are closed (the listeners, whose
///   copies would otherwise keep their queues open after the drain);
/// - SIGINT is ignored (a terminal's Ctrl-C reaches the whole process group;
///   the parent decides) and SIGTERM is taken as `on_term` says; both are
///   blocked across the fork, so no signal finds the child before its
///   dispositions are set;
/// - the child gets SIGTERM if the forking thread dies
///   (`PR_SET_PDEATHSIG`), so a parent killed with SIGKILL leaves no
///   orphan serving for ever;
/// - a panic is caught and becomes exit code 101: it must never unwind into
///   the parent's code, running in the child.
///
/// The parent has threads, and only the forking thread exists in the child:
/// a lock another thread held at the fork stays held there for ever. Glibc
/// resets the allocator's locks; the caller hands over stderr's lock, held
/// across the fork and released on both sides, so no log line is half
/// written and the child may log. `body` may then allocate, log and start
/// threads, but must not use any other lock it shares with the parent's
/// threads.
pub(crate) fn fork(
    stderr: StderrLock<'static>,
    close_in_child: &[RawFd],
    on_term: OnTerm,
    body: impl FnOnce() -> i32,
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
    // the allocator's are reset by glibc; `body`'s contract, above, forbids
    // any other; and the child leaves with `_exit`, never returning into
    // the parent's code.
    let forked = unsafe { nix::unistd::fork() };
    // In the child too: this thread is the lock's owner there, so the
    // release frees it for the child's other threads.
    drop(stderr);
    match forked {
        Ok(ForkResult::Child) => {
            for &fd in close_in_child {
                let _ = close(fd);
            }
            let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
            // SAFETY: SIG_IGN runs no code of ours.
            let _ = unsafe { signal::sigaction(Signal::SIGINT, &ignore) };
            match on_term {
                OnTerm::DrainConnection(conn) => {
                    CHILD_CONN.store(conn, Ordering::Relaxed);
                    // No SA_RESTART: a blocked read must return EINTR.
                    let drain = SigAction::new(
                        SigHandler::Handler(drain_on_term),
                        SaFlags::empty(),
                        SigSet::empty(),
                    );
                    // SAFETY: the handler stores to atomics and calls
                    // setsockopt(2), all async-signal-safe, so it is sound
                    // whatever it interrupts.
                    let _ = unsafe { signal::sigaction(Signal::SIGTERM, &drain) };
                    let _ = signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&saved), None);
                }
                OnTerm::Blocked => {
                    let default =
                        SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
                    // SAFETY: SIG_DFL runs no code of ours.
                    let _ = unsafe { signal::sigaction(Signal::SIGTERM, &default) };
                }
            }
            // If the parent died before this line, the death signal never
            // comes: then the child is an orphan already, and leaves.
            if nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).is_err() || getppid() != parent {
                exit_now(1);
            }
            let code = catch_unwind(AssertUnwindSafe(body)).unwrap_or(101);
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

/// Ends a forked child at once, running no `atexit` handlers and flushing no
/// stdio buffers: those belong to the parent.
fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` takes no locks and touches no shared state; it is the
    // documented way for a forked child to leave (fork(2), _exit(2)).
    unsafe { libc::_exit(code) }
}
