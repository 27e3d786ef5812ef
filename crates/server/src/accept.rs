//! Accepting clients without dying, spinning or hanging: the one place that
//! knows which `accept(2)` errors mean what.
//!
//! An `accept` error is one of three kinds:
//! - **the client's**: it reset or vanished while queued (`ECONNABORTED`,
//!   `EPROTO`, the network errors accept(2) says to treat as `EAGAIN`); take
//!   the next one.
//! - **exhaustion**: no descriptor or kernel memory for a new socket
//!   (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`; and `ENOSPC`, which accept(2)
//!   never returns but a green listener's accept does when registering the
//!   new socket finds epoll at `fs.epoll.max_user_watches`). The client stays queued and the
//!   listener stays readable, so retrying at once would spin a core. Back off
//!   (5 ms, doubling to 500 ms) while the clients already connected keep being
//!   served, and retry; each client that leaves frees a descriptor.
//! - **the listener's**: it was shut down (the drain) or is broken; stop.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::errno::Errno;

use crate::Shutdown;

/// What one `accept` error means for the loop that called it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AcceptError {
    /// The queued client is gone; accept the next one now.
    ClientGone,
    /// Out of descriptors or kernel memory; back off, then retry.
    Exhausted,
    /// The listener is shut down or unusable; stop accepting.
    ListenerDown,
}

impl AcceptError {
    pub(crate) fn classify(error: &io::Error) -> Self {
        let Some(errno) = error.raw_os_error().map(Errno::from_raw) else {
            return Self::ListenerDown;
        };
        match errno {
            Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM | Errno::ENOSPC => {
                Self::Exhausted
            }
            Errno::ECONNABORTED
            | Errno::EINTR
            | Errno::EAGAIN
            | Errno::EPROTO
            | Errno::EPERM
            | Errno::ENOPROTOOPT
            | Errno::EHOSTDOWN
            | Errno::ENONET
            | Errno::EHOSTUNREACH
            | Errno::EOPNOTSUPP
            | Errno::ENETDOWN
            | Errno::ENETUNREACH
            | Errno::ETIMEDOUT => Self::ClientGone,
            _ => Self::ListenerDown,
        }
    }
}

/// The pause before retrying an exhausted `accept`, doubling while it lasts.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
    /// Whether the last accept failed for exhaustion: log once per episode,
    /// not once per retry.
    exhausted: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: Self::FIRST,
            exhausted: false,
        }
    }
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_millis(500);

    /// The pause to take now; the next one will be twice as long, up to
    /// [`Backoff::MAX`].
    pub(crate) fn pause(&mut self, error: &io::Error) -> Duration {
        if !self.exhausted {
            tracing::warn!("accept: {error}; backing off while the connected clients are served");
            self.exhausted = true;
        }
        let pause = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        pause
    }

    /// An accept succeeded: the episode is over.
    pub(crate) fn reset(&mut self) {
        if self.exhausted {
            tracing::info!("accept: descriptors available again");
        }
        *self = Self::default();
    }
}

/// Blocks until a client arrives and returns it, ready to serve; `None` once
/// the drain has begun.
///
/// # Errors
///
/// Only if the listener breaks while the server is not stopping.
pub(crate) fn accept(
    listener: &TcpListener,
    shutdown: &Shutdown,
    backoff: &mut Backoff,
) -> io::Result<Option<TcpStream>> {
    loop {
        if shutdown.is_draining() {
            return Ok(None);
        }
        match listener.accept() {
            Ok((stream, _)) => {
                backoff.reset();
                prepare(&stream);
                return Ok(Some(stream));
            }
            Err(error) => match AcceptError::classify(&error) {
                AcceptError::ClientGone => {}
                AcceptError::Exhausted => {
                    if shutdown.sleep(backoff.pause(&error)) {
                        return Ok(None);
                    }
                }
                // Shutting the listener down is how the drain wakes a thread
                // blocked in accept: that error is the expected stop.
                AcceptError::ListenerDown if shutdown.is_draining() => return Ok(None),
                AcceptError::ListenerDown => return Err(error),
            },
        }
    }
}

/// Sets up a freshly accepted connection the same way in every model.
///
/// `TCP_NODELAY`: an echo answers each message with one write of exactly the
/// bytes it got, so Nagle's algorithm could only hold a reply back waiting
/// for an ACK the client will not send before it sees that reply.
pub(crate) fn prepare(stream: &TcpStream) {
    // Failing to set it costs latency, never correctness.
    let _ = stream.set_nodelay(true);
}

/// Wakes every thread blocked in `accept` on `listener` and makes later calls
/// fail at once: on Linux, `shutdown(SHUT_RD)` on a listening socket closes
/// the queue, and queued clients not yet accepted are reset.
pub(crate) fn stop_accepting(listener: &TcpListener) {
    // It fails only if the socket is already shut, which is the same outcome.
    let _ = nix::sys::socket::shutdown(listener.as_raw_fd(), nix::sys::socket::Shutdown::Read);
}

#[cfg(test)]
mod tests {
    use super::{AcceptError, Backoff};
    use nix::errno::Errno;
    use std::io;
    use std::time::Duration;

    fn kind(errno: Errno) -> AcceptError {
        AcceptError::classify(&io::Error::from_raw_os_error(errno as i32))
    }

    #[test]
    fn descriptor_exhaustion_backs_off() {
        for errno in [
            Errno::EMFILE,
            Errno::ENFILE,
            Errno::ENOBUFS,
            Errno::ENOMEM,
            Errno::ENOSPC,
        ] {
            assert_eq!(kind(errno), AcceptError::Exhausted, "{errno}");
        }
    }

    #[test]
    fn vanished_clients_are_skipped() {
        for errno in [
            Errno::ECONNABORTED,
            Errno::EINTR,
            Errno::EPROTO,
            Errno::ENETDOWN,
        ] {
            assert_eq!(kind(errno), AcceptError::ClientGone, "{errno}");
        }
    }

    #[test]
    fn a_broken_listener_stops_the_loop() {
        for errno in [Errno::EINVAL, Errno::EBADF, Errno::ENOTSOCK] {
            assert_eq!(kind(errno), AcceptError::ListenerDown, "{errno}");
        }
    }

    #[test]
    fn backoff_doubles_to_a_cap_and_resets() {
        let error = io::Error::from_raw_os_error(Errno::EMFILE as i32);
        let mut backoff = Backoff::default();
        let pauses: Vec<_> = (0..10).map(|_| backoff.pause(&error)).collect();
        assert_eq!(pauses[0], Duration::from_millis(5));
        assert_eq!(pauses[1], Duration::from_millis(10));
        assert_eq!(*pauses.last().unwrap(), Duration::from_millis(500));
        backoff.reset();
        assert_eq!(backoff.pause(&error), Duration::from_millis(5));
    }
}
