//! Every `unsafe` call of `conc::process` and `conc::ipc`: fork, the child's first steps before exec, pidfds, and shared memory.
//!
//! The rest of the crate is `#![deny(unsafe_code)]`; what it cannot do
//! safely it asks of this module, whose functions are safe to call and
//! each say in a `// SAFETY:` line why the call inside is sound. Safe
//! wrappers are nix's where nix has them (`waitpid`, `kill`, `prctl`,
//! `fcntl`, `memfd_create`, `sendmsg`); what stays unsafe is what no
//! wrapper can make safe in general: `fork` in a program that may have
//! threads, code that runs between fork and exec, mapping a file,
//! pthread objects placed in shared memory, and copies into a ring that
//! another process reads at the same time.
#![allow(unsafe_code)]

mod ring;
mod shm;

pub(crate) use ring::{PREFIX as ring_prefix, PushFail, Ring, futex_wait, futex_wake};
pub(crate) use shm::{LockFail, Shm, ShmGuard};

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// Which side of a fork this is.
pub(crate) enum Forked {
    /// The parent, with the child's pid.
    Parent(Pid),
    /// The child.
    Child,
}

/// Forks this process. The caller has checked that this process has one
/// thread (`process::threads() == 1`), the only case in which the child
/// may do anything at all, not only async-signal-safe calls.
pub(crate) fn fork_single_threaded() -> io::Result<Forked> {
    // SAFETY: fork is unsafe because, in a program with other threads, the
    // child holds a copy of every lock those threads held, and may deadlock
    // on the first malloc. The caller has checked that this process has a
    // single thread, so the child's memory is in a state the one thread left
    // it in, and it may run any code, as a single-threaded program's child
    // always could.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}

/// Ends this process at once with `code`: no exit hooks, no destructors of
/// statics, no flushing of stdio buffers (the caller flushes). A forked
/// child ends this way, so that it does not run its parent's exit hooks on
/// the copy of the parent's state it holds (Python's `os._exit`).
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions; it never returns.
    unsafe { libc::_exit(code) }
}

/// Has `command`'s child keep descriptor `keep` across exec (clears its
/// close-on-exec flag in the child only, so no other thread's child
/// inherits it) and, if `death_signal` is set, get that signal when the
/// thread that started it exits (Linux's `PR_SET_PDEATHSIG`).
pub(crate) fn prepare_child(command: &mut Command, keep: RawFd, death_signal: Option<Signal>) {
    let parent = nix::unistd::getpid();
    let hook = move || -> io::Result<()> {
        set_cloexec(keep, false)?;
        if let Some(signal) = death_signal {
            nix::sys::prctl::set_pdeathsig(signal)?;
            // The parent may have died before the prctl: then no signal
            // comes, and we are already an orphan. Die as we would have.
            if nix::unistd::getppid() != parent {
                exit_now(1);
            }
        }
        Ok(())
    };
    // SAFETY: the hook runs in the forked child before exec, where only
    // async-signal-safe calls are allowed. It makes only raw syscalls
    // (fcntl, prctl, getppid, _exit) through nix's thin wrappers, which do
    // not allocate or take locks; the closure's captures are two plain
    // integers and a signal number, copied before the fork.
    unsafe {
        command.pre_exec(hook);
    }
}

/// A pidfd for `pid` (Linux 5.3): readable once the process has exited, so
/// a wait with a timeout is a `poll` instead of a sleep loop.
pub(crate) fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the syscall returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Owns a descriptor that `recvmsg` just installed in this process from
/// an `SCM_RIGHTS` message.
pub(crate) fn own_received_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: the kernel created this descriptor for this recvmsg call and
    // nothing in this process knows it yet, so this is its only owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Owns descriptor `fd`, which this process inherited from the parent that
/// started it, and sets it close-on-exec again (it is the child's alone).
pub(crate) fn own_inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // Refuse a number that is not an open descriptor before owning it.
    set_cloexec(fd, true)?;
    // SAFETY: the parent kept `fd` open across exec for this process to
    // take once (its number came on the command line, `entry_point` reads
    // it once), and fcntl just showed it open; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets or clears descriptor `fd`'s close-on-exec flag; fails if `fd` is
/// not open. Async-signal-safe (one fcntl), so a pre-exec hook may call it.
fn set_cloexec(fd: RawFd, on: bool) -> io::Result<()> {
    let flags = if on { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: F_SETFD on a descriptor number touches only the descriptor
    // table entry's flags; an unopened number is EBADF, not undefined.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
