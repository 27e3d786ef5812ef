//! A non-blocking listener, with the accept rules of `crate::accept` for a loop that must never wait in `accept`.

use std::io::{self, ErrorKind};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use crate::accept::{AcceptError, Backoff, prepare};

/// The listener of one loop. Out of descriptors it *pauses*: the model
/// stops watching it until the back-off ends, since a level-triggered wait
/// would otherwise return at once, for ever (the listener stays readable
/// while `accept` fails).
#[derive(Debug)]
pub(crate) struct Acceptor {
    /// `None` once the drain has begun: closing it refuses new clients.
    listener: Option<TcpListener>,
    backoff: Backoff,
    /// While descriptors are exhausted: when to look at the listener again.
    paused_until: Option<Instant>,
}

/// What one try at `accept` gave.
#[derive(Debug)]
pub(crate) enum Accepted {
    /// A client, set up the way every model sets them up.
    Client(TcpStream),
    /// Nobody is queued, the listener is closed, or it pauses now.
    Nobody,
}

impl Acceptor {
    /// Takes over `listener`, making it non-blocking.
    pub(crate) fn new(listener: TcpListener) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        Ok(Self {
            listener: Some(listener),
            backoff: Backoff::default(),
            paused_until: None,
        })
    }

    /// The listener, until the drain closes it.
    pub(crate) fn listener(&self) -> Option<&TcpListener> {
        self.listener.as_ref()
    }

    /// The listener's descriptor, until the drain closes it.
    pub(crate) fn fd(&self) -> Option<RawFd> {
        self.listener.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// Whether the listener should be watched now: open, and not pausing
    /// after descriptor exhaustion.
    pub(crate) fn watching(&mut self) -> bool {
        if let Some(until) = self.paused_until {
            if Instant::now() < until {
                return false;
            }
            self.paused_until = None;
        }
        self.listener.is_some()
    }

    /// When a paused listener is to be watched again.
    pub(crate) fn resumes_at(&self) -> Option<Instant> {
        self.paused_until
    }

    /// Accepts one queued client, skipping those that vanished while
    /// queued; on exhaustion, pauses.
    ///
    /// # Errors
    ///
    /// Only if the listener breaks; the caller's server fails with it.
    pub(crate) fn accept(&mut self) -> io::Result<Accepted> {
        let Some(listener) = &self.listener else {
            return Ok(Accepted::Nobody);
        };
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    self.backoff.reset();
                    prepare(&stream);
                    return Ok(Accepted::Client(stream));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Accepted::Nobody),
                Err(error) => match AcceptError::classify(&error) {
                    AcceptError::ClientGone => {}
                    AcceptError::Exhausted => {
                        self.paused_until = Some(Instant::now() + self.backoff.pause(&error));
                        return Ok(Accepted::Nobody);
                    }
                    AcceptError::ListenerDown => return Err(error),
                },
            }
        }
    }

    /// Closes the listener: clients that connect from now on are refused,
    /// and those queued but not yet accepted are reset.
    pub(crate) fn close(&mut self) {
        self.paused_until = None;
        drop(self.listener.take());
    }
}
