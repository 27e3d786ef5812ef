//! One client of the event-loop models (the readiness models and `uring`): its socket, its session, and where it stands in the drain.

use std::net::{Shutdown as Direction, TcpStream};
use std::time::{Duration, Instant};

use crate::EchoSession;
use crate::admission::Slot;
use crate::drain;

/// A client's socket and session, with what an event loop must remember
/// about it between turns.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) stream: TcpStream,
    pub(crate) session: EchoSession,
    /// Half-closed by the drain: what the client still sends is read only
    /// to be thrown away, until its EOF (see `crate::drain`).
    lingering: bool,
    /// The drain has capped it already.
    drained: bool,
    /// When it last sent or took a byte; kept only with `--idle-timeout`.
    active_at: Option<Instant>,
    /// Its place in `--max-conns`, given back when the connection drops.
    _slot: Slot,
}

/// What the end of a turn decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// It lives on.
    Open,
    /// It is over: the caller removes it, which closes it.
    Close,
}

impl Connection {
    /// A new client, counted in `--max-conns` by `slot`; `idle` says whether
    /// to keep the time of its last byte (`--idle-timeout`).
    pub(crate) fn new(stream: TcpStream, capacity: usize, slot: Slot, idle: bool) -> Self {
        Self {
            stream,
            session: EchoSession::new(capacity),
            lingering: false,
            drained: false,
            active_at: idle.then(Instant::now),
            _slot: slot,
        }
    }

    /// Whether it is lingering: half-closed, reading only to throw away.
    pub(crate) fn lingering(&self) -> bool {
        self.lingering
    }

    /// Notes that a byte moved, for the idle timeout; a clock read only
    /// when there is one.
    pub(crate) fn touch(&mut self) {
        if let Some(at) = &mut self.active_at {
            *at = Instant::now();
        }
    }

    /// Whether it has neither sent nor taken a byte for `timeout` by `now`.
    pub(crate) fn idle_for(&self, timeout: Duration, now: Instant) -> bool {
        self.active_at
            .is_some_and(|at| now.saturating_duration_since(at) >= timeout)
    }

    /// The drain reached this connection: it is answered what the kernel
    /// holds for it now, besides what its session holds, and no more.
    /// Returns what to do with it, for one that was answered already.
    pub(crate) fn begin_drain(&mut self) -> Fate {
        if !self.drained {
            self.drained = true;
            self.session.stop_after(drain::queued(&self.stream));
        }
        self.settle()
    }

    /// Ends a turn whose I/O went well: a finished session is half-closed
    /// (the client reads EOF after its last reply) and then closed, or,
    /// if the client has not closed its side, left lingering.
    pub(crate) fn settle(&mut self) -> Fate {
        if self.lingering {
            return Fate::Open;
        }
        if !self.session.is_done() {
            return Fate::Open;
        }
        // Fails only for a socket the client already tore down.
        let _ = self.stream.shutdown(Direction::Write);
        if self.session.lingers() {
            self.lingering = true;
            Fate::Open
        } else {
            Fate::Close
        }
    }
}
