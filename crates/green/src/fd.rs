//! The one place a greenlet waits for a descriptor: the cooperative form of a blocking call, and `wait_readable`/`wait_writable` for any descriptor.

use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use crate::hub::io::Dir;
use crate::hub::{self, Blocked};

/// The error of a socket timeout: `EAGAIN`, as std's `read` gives when
/// `SO_RCVTIMEO` passes.
pub(crate) fn timed_out() -> io::Error {
    io::Error::from_raw_os_error(libc::EAGAIN)
}

/// The error of a blocking call whose timeout scope expired.
pub(crate) fn scope_expired() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "green: the timeout scope expired (green::with_timeout)",
    )
}

/// Runs the non-blocking call `op` on the descriptor registered as `key`
/// until it does not fail with `EAGAIN`, parking the greenlet until the
/// descriptor is ready `dir` in between. `short` says whether a result
/// shows the descriptor drained (a short read), so the next call parks
/// first. `timeout` bounds the whole call, as a socket timeout does.
pub(crate) fn cooperate<R>(
    key: usize,
    dir: Dir,
    timeout: Option<Duration>,
    mut op: impl FnMut() -> io::Result<R>,
    short: impl Fn(&R) -> bool,
) -> io::Result<R> {
    let mut deadline = None;
    loop {
        if hub::with(|core| core.io.is_ready(key, dir)) {
            match op() {
                Ok(value) => {
                    if short(&value) {
                        hub::with(|core| core.io.clear(key, dir));
                    }
                    return Ok(value);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    hub::with(|core| core.io.clear(key, dir));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if deadline.is_none() {
            deadline = timeout.map(|t| Instant::now() + t);
        }
        park(key, dir, deadline)?;
    }
}

/// Parks the running greenlet until `key` is ready `dir`.
fn park(key: usize, dir: Dir, deadline: Option<Instant>) -> io::Result<()> {
    let waiter = hub::with(|core| {
        let waiter = core.waiter();
        core.io.wait(key, dir, waiter).map(|()| waiter)
    })?;
    // However the wait ends (a kill unwinds), the registration forgets it.
    struct Unwait(usize, Dir, hub::Waiter);
    impl Drop for Unwait {
        fn drop(&mut self) {
            let Self(key, dir, waiter) = *self;
            hub::try_with(|core| core.io.unwait(key, dir, waiter));
        }
    }
    let _unwait = Unwait(key, dir, waiter);
    match hub::block(waiter, deadline) {
        Blocked::Woken => Ok(()),
        Blocked::TimedOut => Err(timed_out()),
        Blocked::Expired(_) => Err(scope_expired()),
    }
}

/// Waits until `fd` is readable (or at its EOF, or failed), at most
/// `timeout`; says whether it is (`false`: the timeout passed). For a
/// descriptor that no `green` type owns (a pipe, an eventfd, a socket of
/// another library): it is registered with the hub for the length of the
/// wait.
///
/// # Errors
///
/// If the descriptor cannot be registered (it is not pollable, or a `green`
/// socket owns it: use that socket's own calls), or the timeout scope
/// expired.
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use std::os::unix::net::UnixStream;
/// use std::time::Duration;
///
/// green::run(|| {
///     let (rx, mut tx) = UnixStream::pair().unwrap();
///     assert!(!green::wait_readable(&rx, Some(Duration::from_millis(1))).unwrap());
///     tx.write_all(b"x").unwrap();
///     assert!(green::wait_readable(&rx, None).unwrap());
/// });
/// ```
pub fn wait_readable(fd: impl AsFd, timeout: Option<Duration>) -> io::Result<bool> {
    wait_fd(fd, Dir::Read, timeout)
}

/// Waits until `fd` is writable (or failed), at most `timeout`; as
/// [`wait_readable`].
///
/// # Errors
///
/// As [`wait_readable`].
///
/// # Examples
///
/// ```
/// use std::os::unix::net::UnixStream;
///
/// green::run(|| {
///     let (_rx, tx) = UnixStream::pair().unwrap();
///     assert!(green::wait_writable(&tx, None).unwrap());
/// });
/// ```
pub fn wait_writable(fd: impl AsFd, timeout: Option<Duration>) -> io::Result<bool> {
    wait_fd(fd, Dir::Write, timeout)
}

fn wait_fd(fd: impl AsFd, dir: Dir, timeout: Option<Duration>) -> io::Result<bool> {
    let registration = Registration::new(fd.as_fd().as_raw_fd())?;
    // Registering reports the descriptor's state now, as a first edge: the
    // wait trusts only that, not the "ready" a new registration starts with.
    hub::with(|core| core.io.clear(registration.key, dir));
    let deadline = timeout.map(|t| Instant::now() + t);
    match park(registration.key, dir, deadline) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

/// A descriptor registered with this thread's hub, until dropped.
#[derive(Debug)]
pub(crate) struct Registration {
    fd: RawFd,
    pub(crate) key: usize,
    /// The key belongs to this thread's hub.
    _here: PhantomData<*const ()>,
}

impl Registration {
    /// Registers `fd`, which the caller keeps open for longer than this.
    pub(crate) fn new(fd: RawFd) -> io::Result<Self> {
        let key = hub::with(|core| core.io.add(fd))?;
        Ok(Self {
            fd,
            key,
            _here: PhantomData,
        })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        hub::try_with(|core| core.io.remove(self.fd, self.key));
    }
}
