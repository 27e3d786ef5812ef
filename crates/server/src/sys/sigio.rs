//! Signal-driven I/O: descriptors that raise a real-time signal when they become ready, taken synchronously.
//!
//! Neither nix nor rustix wraps `F_SETSIG`, `F_SETOWN_EX` or `sigtimedwait`
//! with the siginfo fields this needs (`si_fd`, `si_band`), so the few calls
//! live here, each with why it is sound.

use std::io;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use libc::c_int;
use nix::fcntl::{FcntlArg, OFlag, fcntl};

/// `fcntl` commands and owner type from Linux's `asm-generic/fcntl.h`, which
/// the libc crate does not export for glibc targets. The same values hold on
/// every architecture Rust's std supports for Linux but alpha, mips, parisc
/// and sparc, which the server does not target.
const F_SETSIG: c_int = 10;
const F_SETOWN_EX: c_int = 15;
const F_OWNER_TID: c_int = 0;

/// `struct f_owner_ex` of fcntl(2).
#[repr(C)]
struct OwnerEx {
    kind: c_int,
    pid: libc::pid_t,
}

/// The start of `siginfo_t` as the kernel fills it for SIGIO-style signals
/// (`si_code` `POLL_IN`, `POLL_OUT`, ...): three ints, then the `_sigpoll`
/// member of the union, `{ long si_band; int si_fd; }`. `repr(C)` gives
/// `si_band` the union's alignment (that of a long), as the kernel's layout
/// has it on every Linux architecture.
#[repr(C)]
struct SigPollInfo {
    _signo: c_int,
    _errno: c_int,
    _code: c_int,
    band: libc::c_long,
    fd: c_int,
}

/// One signal taken from the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Delivery {
    /// Which signal: the real-time one, or `SIGIO` when its queue overflowed.
    pub(crate) signo: c_int,
    /// The descriptor that became ready (real-time signal only).
    pub(crate) fd: c_int,
    /// What it became ready for, as `poll` flags (real-time signal only).
    pub(crate) band: libc::c_long,
}

/// A set of signals blocked in the calling thread, to be taken with
/// [`SignalSet::wait`]; dropping it throws away what is still queued and
/// restores the thread's mask.
///
/// Blocking matters twice over: a real-time signal's default action ends the
/// process, and only a blocked signal stays queued for `sigtimedwait`.
pub(crate) struct SignalSet {
    set: libc::sigset_t,
    saved: libc::sigset_t,
    /// A signal mask belongs to one thread: the set must not move to another
    /// (it is neither `Send` nor `Sync`), or dropping it there would restore
    /// the wrong thread's mask.
    _this_thread: PhantomData<*const ()>,
}

impl SignalSet {
    /// Blocks `signals` in this thread.
    pub(crate) fn block(signals: &[c_int]) -> io::Result<Self> {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the whole set it is given; the
        // pointer is to a local of the right type.
        if unsafe { libc::sigemptyset(set.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: initialised by sigemptyset just above.
        let mut set = unsafe { set.assume_init() };
        for &signal in signals {
            // SAFETY: `set` is an initialised sigset_t; a bad signal number
            // is reported as EINVAL, not undefined behaviour.
            if unsafe { libc::sigaddset(&mut set, signal) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let mut saved = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: both pointers are valid for the call; pthread_sigmask
        // writes the old mask through the second before it returns 0.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, saved.as_mut_ptr()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        // SAFETY: pthread_sigmask returned 0, so it wrote the old mask.
        let saved = unsafe { saved.assume_init() };
        Ok(Self {
            set,
            saved,
            _this_thread: PhantomData,
        })
    }

    /// Takes the next queued signal of the set, waiting at most `timeout`
    /// (`None`: for ever); `Ok(None)` if none came in time.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> io::Result<Option<Delivery>> {
        let limit = timeout.map(|t| libc::timespec {
            tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: t.subsec_nanos().into(),
        });
        let limit_ptr = limit
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
        // SAFETY: `self.set` is an initialised set; `info` is valid for a
        // whole siginfo_t; `limit_ptr` is null or points to a timespec that
        // lives until the call returns.
        let signo = unsafe { libc::sigtimedwait(&self.set, info.as_mut_ptr(), limit_ptr) };
        if signo < 0 {
            let error = io::Error::last_os_error();
            return match error.raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR) => Ok(None),
                _ => Err(error),
            };
        }
        // SAFETY: the buffer was zeroed, then filled by the kernel; the
        // overlay is no larger than siginfo_t (asserted below at compile
        // time) and all its fields are plain integers, valid for any bits.
        let poll = unsafe { &*info.as_ptr().cast::<SigPollInfo>() };
        Ok(Some(Delivery {
            signo,
            fd: poll.fd,
            band: poll.band,
        }))
    }
}

impl Drop for SignalSet {
    fn drop(&mut self) {
        // Unblocking a queued real-time signal would deliver it with its
        // default action, which ends the process: take them all first.
        while let Ok(Some(_)) = self.wait(Some(Duration::ZERO)) {}
        // SAFETY: `saved` is the mask pthread_sigmask returned in `block`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.saved, std::ptr::null_mut()) };
    }
}

const _: () = assert!(size_of::<SigPollInfo>() <= size_of::<libc::siginfo_t>());

/// Makes `fd` raise `signal` in the calling thread whenever it becomes ready,
/// with the descriptor and the readiness in the signal's siginfo; also makes
/// it non-blocking.
///
/// Owner first, signal second, `O_ASYNC` last: no notice is sent before the
/// kernel knows where and how to send it. The owner is this thread
/// (`F_OWNER_TID`), not the process, so no other thread, which would not
/// have the signal blocked, can receive it.
pub(crate) fn signal_when_ready(fd: impl AsFd, signal: c_int) -> io::Result<()> {
    let fd = fd.as_fd();
    let owner = OwnerEx {
        kind: F_OWNER_TID,
        pid: nix::unistd::gettid().as_raw(),
    };
    // SAFETY: F_SETOWN_EX reads one `struct f_owner_ex` through the pointer,
    // which is to a live local of that layout; `fd` is a borrowed, open
    // descriptor.
    if unsafe { libc::fcntl(fd.as_raw_fd(), F_SETOWN_EX, &owner as *const OwnerEx) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: F_SETSIG takes an int argument; no memory is involved.
    if unsafe { libc::fcntl(fd.as_raw_fd(), F_SETSIG, signal) } < 0 {
        return Err(io::Error::last_os_error());
    }
    set_async(fd, true)
}

/// Turns signal-driven I/O on or off for `fd`; on also sets `O_NONBLOCK`.
pub(crate) fn set_async(fd: impl AsFd, on: bool) -> io::Result<()> {
    let fd = fd.as_fd();
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    let flags = if on {
        flags | OFlag::O_ASYNC | OFlag::O_NONBLOCK
    } else {
        flags - OFlag::O_ASYNC
    };
    fcntl(fd, FcntlArg::F_SETFL(flags))?;
    Ok(())
}
