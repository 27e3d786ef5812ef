//! One connection's turn after a readiness report: the reads and writes it allows, without ever blocking.

use std::io::{self, ErrorKind, Read, Write};

use crate::connection::{Connection, Fate};

/// How an edge-triggered turn ([`Connection::turn_until_blocked`]) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Edge {
    /// The connection ended; the caller removes it.
    Closed,
    /// Everything that could be done was: the next report says when to go on.
    Waiting,
    /// The turn's budget ran out with work left: serve it again soon.
    Again,
}

/// Reads per edge-triggered turn: up to 16 buffers (1 MiB at the default
/// `--buffer`) before the other clients get theirs.
const BUDGET: usize = 16;

impl Connection {
    /// Level-triggered turn: at most one read (if `readable` and the session
    /// has room, or the connection lingers), then write what is owed until
    /// the kernel takes no more. Whatever is left is reported again by the
    /// next wait.
    pub(crate) fn turn(&mut self, readable: bool) -> Fate {
        let turn = (|| {
            if readable && (self.session.wants_recv() || self.lingering()) {
                self.read_once()?;
            }
            while self.session.wants_send() {
                if !self.write_once()? {
                    break;
                }
            }
            Ok(())
        })();
        self.end(turn)
    }

    /// Edge-triggered turn: read and write until the kernel says "would
    /// block" in every direction this connection still needs, since no new
    /// report comes for bytes already there. A full buffer stops the reading
    /// (backpressure) and a write that frees room resumes it.
    ///
    /// A client that sends as fast as it is answered never makes a read
    /// block, so a turn ends after [`BUDGET`] reads all the same, with
    /// [`Edge::Again`]: the loop must come back to it after the others had
    /// their turn, since no new report will remind it.
    pub(crate) fn turn_until_blocked(&mut self) -> Edge {
        let mut reads = 0;
        let turn = (|| {
            loop {
                let mut read_blocked = false;
                while (self.session.wants_recv() || self.lingering()) && reads < BUDGET {
                    reads += 1;
                    if !self.read_once()? {
                        read_blocked = true;
                        break;
                    }
                }
                while self.session.wants_send() {
                    if !self.write_once()? {
                        break;
                    }
                }
                if self.session.is_done() && !self.lingering() {
                    // Finished: `end` half-closes it, and it may linger.
                    return Ok(true);
                }
                if read_blocked || !(self.session.wants_recv() || self.lingering()) {
                    return Ok(false);
                }
                // Reading stopped because the buffer was full and the writes
                // made room, or because the budget is spent: either way more
                // bytes may be queued, and no new edge will say so.
                if reads >= BUDGET {
                    return Ok(true);
                }
            }
        })();
        match turn {
            Ok(again) => match self.end(Ok(())) {
                Fate::Close => Edge::Closed,
                Fate::Open if again => Edge::Again,
                Fate::Open => Edge::Waiting,
            },
            Err(error) => {
                self.end(Err(error));
                Edge::Closed
            }
        }
    }

    /// One `read`, into the session's free space, or, while lingering, into
    /// bytes to throw away; `Ok(false)` if it would block. EOF while
    /// lingering ends the connection (an `UnexpectedEof` that is no error).
    fn read_once(&mut self) -> io::Result<bool> {
        let lingering = self.lingering();
        let buf = if lingering {
            self.session.discard_buf()
        } else {
            self.session.recv_buf()
        };
        match ((&self.stream).read(buf), lingering) {
            (Ok(0), true) => return Err(ErrorKind::UnexpectedEof.into()),
            (Ok(0), false) => self.session.peer_closed(),
            // Thrown away, but the client is not idle.
            (Ok(_), true) => self.touch(),
            (Ok(n), false) => {
                self.session.received(n);
                self.touch();
            }
            (Err(e), _) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            (Err(e), _) if e.kind() == ErrorKind::Interrupted => {}
            (Err(e), _) => return Err(e),
        }
        Ok(true)
    }

    /// One `write`; `Ok(false)` if it would block.
    fn write_once(&mut self) -> io::Result<bool> {
        match (&self.stream).write(self.session.pending()) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => {
                self.session.sent(n);
                self.touch();
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        Ok(true)
    }

    /// Ends a turn: an error ends the connection (it is the client's
    /// business: a debug line; a lingering client's EOF is no error at
    /// all), and a finished session is half-closed (see
    /// [`Connection::settle`]).
    fn end(&mut self, turn: io::Result<()>) -> Fate {
        match turn {
            Ok(()) => self.settle(),
            Err(e) if e.kind() == ErrorKind::UnexpectedEof && self.lingering() => Fate::Close,
            Err(error) => {
                tracing::debug!("connection ended: {error}");
                Fate::Close
            }
        }
    }
}
