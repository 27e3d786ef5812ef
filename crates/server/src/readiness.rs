//! What every readiness model shares: a non-blocking connection driven by
//! readiness reports, the table of connections, the accept rules for a
//! non-blocking listener, and the drain.
//!
//! A readiness model is a loop: *wait* until the kernel says some descriptors
//! are ready, then *do the I/O they allow* without ever blocking. The models
//! (`nonblocking`, `select`, `poll`, `epoll`, `reactors`, `sigio`) differ only
//! in how they wait; everything after the wait lives here, so a reader diffing
//! `select.rs` and `poll.rs` sees only the waiting.
//!
//! The rules every model inherits from here:
//! - **Interest follows the session.** A connection wants to be read while its
//!   [`EchoSession`] has room ([`Interest::read`]) and written while it owes
//!   bytes ([`Interest::write`]). Watching a full client for reading would
//!   wake the loop for data it must not take; watching an idle socket for
//!   writing would wake it on every pass, since a socket with room in its send
//!   buffer is always writable (the course's note on why that spins).
//! - **Write at once.** After a read, the reply is written in the same turn,
//!   without waiting to be told the socket is writable: it almost always is,
//!   and that saves one wait per message. Only a short write makes the model
//!   watch for writability.
//! - **Exhaustion pauses the listener.** When `accept` fails for lack of
//!   descriptors the listener stays readable, and a level-triggered loop
//!   would spin on it. The [`Acceptor`] then stops being watched for a
//!   back-off period while the connected clients keep being served.
//! - **The drain** closes the listener (new clients are refused) and shuts the
//!   read side of every connection: each then reads what its client already
//!   sent, gets EOF, flushes the replies and closes. When the stop is forced,
//!   the model returns and every socket still open is closed with it.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown as Direction, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use crate::accept::{AcceptError, Backoff, prepare};
use crate::admission::OpenCount;
use crate::{Config, EchoSession, Shutdown};

/// How an edge-triggered turn ([`Conn::until_blocked`]) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// The connection ended; the caller removes it.
    Closed,
    /// Everything that could be done was: the next report says when to go on.
    Waiting,
    /// The turn's budget ran out with work left: serve it again soon.
    Again,
}

/// What a model should watch a connection for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Interest {
    /// The session has room: watch for incoming bytes (and EOF).
    pub(crate) read: bool,
    /// The session owes bytes the kernel did not take: watch for room.
    pub(crate) write: bool,
}

impl Interest {
    /// A new connection's: read, with nothing owed yet.
    pub(crate) const NEW: Self = Self {
        read: true,
        write: false,
    };
}

/// The wait's timeout for `poll(2)` and `epoll_wait(2)`: `None` is no limit;
/// one past their range waits as long as they can and is looked at again.
pub(crate) fn wait_timeout(timeout: Option<Duration>) -> nix::poll::PollTimeout {
    use nix::poll::PollTimeout;
    timeout.map_or(PollTimeout::NONE, |t| {
        PollTimeout::try_from(t).unwrap_or(PollTimeout::MAX)
    })
}

/// One client: its non-blocking socket and its session.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: TcpStream,
    session: EchoSession,
    /// What the model last told the kernel to watch, so that it tells it
    /// again only when this changes (for epoll, a system call saved per
    /// message).
    pub(crate) watched: Interest,
}

impl Conn {
    fn new(stream: TcpStream, capacity: usize) -> io::Result<Self> {
        stream.set_nonblocking(true)?;
        prepare(&stream);
        Ok(Self {
            stream,
            session: EchoSession::new(capacity),
            // What a fresh session wants, and what models register it with.
            watched: Interest::NEW,
        })
    }

    /// The socket's descriptor: the key of the connection in [`Conns`].
    pub(crate) fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// The socket, for models that register it with the kernel.
    pub(crate) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// What this connection needs to be watched for now.
    pub(crate) fn interest(&self) -> Interest {
        Interest {
            read: self.session.wants_recv(),
            write: self.session.wants_send(),
        }
    }

    /// Level-triggered turn: at most one read (if `readable` and the session
    /// has room), then write what is owed until the kernel takes no more.
    /// Whatever is left is reported again by the next wait. Returns whether
    /// the connection lives on; `false` means the caller removes it.
    pub(crate) fn on_ready(&mut self, readable: bool) -> bool {
        let turn = (|| {
            if readable && self.session.wants_recv() {
                self.read_once()?;
            }
            while self.session.wants_send() {
                if !self.write_once()? {
                    break;
                }
            }
            Ok(())
        })();
        self.after(turn)
    }

    /// Edge-triggered turn: read and write until the kernel says "would
    /// block" in every direction this connection still needs, since no new
    /// report comes for bytes already there. A full buffer stops the reading
    /// (backpressure) and a write that frees room resumes it.
    ///
    /// A client that sends as fast as it is answered never makes a read
    /// block, so a turn ends after [`Conn::BUDGET`] reads all the same, with
    /// [`Turn::Again`]: the loop must come back to it after the others had
    /// their turn, since no new report will remind it.
    pub(crate) fn until_blocked(&mut self) -> Turn {
        let mut reads = 0;
        let turn = (|| {
            loop {
                let mut read_blocked = false;
                while self.session.wants_recv() && reads < Self::BUDGET {
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
                if read_blocked || !self.session.wants_recv() {
                    return Ok(false);
                }
                // Reading stopped because the buffer was full and the writes
                // made room, or because the budget is spent: either way more
                // bytes may be queued, and no new edge will say so.
                if reads >= Self::BUDGET {
                    return Ok(true);
                }
            }
        })();
        match turn {
            Ok(again) if self.after(Ok(())) => {
                if again {
                    Turn::Again
                } else {
                    Turn::Waiting
                }
            }
            Ok(_) => Turn::Closed,
            Err(error) => {
                self.after(Err(error));
                Turn::Closed
            }
        }
    }

    /// Reads per edge-triggered turn: up to 16 buffers (1 MiB at the default
    /// `--buffer`) before the other clients get theirs.
    const BUDGET: usize = 16;

    /// Stops reading this client once what it sent is in: the kernel still
    /// hands over what is queued, then EOF.
    pub(crate) fn shut_read(&self) {
        // Fails only for a socket the client already tore down, which the
        // next read reports.
        let _ = self.stream.shutdown(Direction::Read);
    }

    /// One `read`; `Ok(false)` if it would block.
    fn read_once(&mut self) -> io::Result<bool> {
        match (&self.stream).read(self.session.recv_buf()) {
            Ok(0) => self.session.peer_closed(),
            Ok(n) => self.session.received(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        Ok(true)
    }

    /// One `write`; `Ok(false)` if it would block.
    fn write_once(&mut self) -> io::Result<bool> {
        match (&self.stream).write(self.session.pending()) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => self.session.sent(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        Ok(true)
    }

    /// Ends a turn: an error ends the connection (it is the client's
    /// business: a debug line), and so does a finished session, after saying
    /// EOF back (the half-close).
    fn after(&mut self, turn: io::Result<()>) -> bool {
        if let Err(error) = turn {
            tracing::debug!("connection ended: {error}");
            return false;
        }
        if self.session.is_done() {
            let _ = self.stream.shutdown(Direction::Write);
            return false;
        }
        true
    }
}

/// The open connections of one loop, indexed by descriptor.
///
/// Descriptors are small integers and an open one is unique, so a vector
/// indexed by them is the cheapest map there is: the model's readiness report
/// carries the descriptor, and finding its connection is one index.
#[derive(Debug)]
pub(crate) struct Conns {
    slots: Vec<Option<Conn>>,
    len: usize,
    /// Connections open in the whole server, against `--max-conns`: shared
    /// by the loops of `reactors`, and by the processes of `prefork` and
    /// `hybrid`.
    open: OpenCount,
}

impl Conns {
    /// An empty table counting against `open`.
    pub(crate) fn new(open: OpenCount) -> Self {
        Self {
            slots: Vec::new(),
            len: 0,
            open,
        }
    }

    /// How many connections this loop serves.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether this loop serves no one.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The connection on descriptor `fd`, if it is one of ours.
    pub(crate) fn get_mut(&mut self, fd: RawFd) -> Option<&mut Conn> {
        self.slots.get_mut(usize::try_from(fd).ok()?)?.as_mut()
    }

    /// Every connection, in descriptor order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Conn> {
        self.slots.iter().flatten()
    }

    /// The descriptors of every connection, collected: for models that
    /// serve each in turn while removing some.
    pub(crate) fn fds(&self) -> Vec<RawFd> {
        self.iter().map(Conn::fd).collect()
    }

    /// Removes and returns the connection on `fd`; dropping it closes it.
    pub(crate) fn remove(&mut self, fd: RawFd) -> Option<Conn> {
        let conn = self.slots.get_mut(usize::try_from(fd).ok()?)?.take()?;
        self.len -= 1;
        self.open.leave();
        Some(conn)
    }

    /// Shuts the read side of every connection: the drain.
    pub(crate) fn shut_reads(&self) {
        for conn in self.iter() {
            conn.shut_read();
        }
    }

    fn insert(&mut self, conn: Conn) {
        // A descriptor the kernel just handed us is never negative.
        let at = usize::try_from(conn.fd()).expect("open descriptors are non-negative");
        if at >= self.slots.len() {
            self.slots.resize_with(at + 1, || None);
        }
        debug_assert!(self.slots[at].is_none(), "descriptor {at} is open twice");
        self.slots[at] = Some(conn);
        self.len += 1;
    }
}

/// A non-blocking listener, with the accept rules of `crate::accept` for a
/// loop that must never wait in `accept`.
#[derive(Debug)]
pub(crate) struct Acceptor {
    /// `None` once the drain has begun: closing it refuses new clients.
    listener: Option<TcpListener>,
    backoff: Backoff,
    /// While descriptors are exhausted: when to look at the listener again.
    paused_until: Option<Instant>,
    max_conns: usize,
    buffer: usize,
}

impl Acceptor {
    /// At most this many clients are accepted per readiness report, so that a
    /// flood of new clients cannot starve the connected ones of their turn.
    const BATCH: usize = 128;

    /// Takes over `listener`, making it non-blocking.
    pub(crate) fn new(listener: TcpListener, config: &Config) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        Ok(Self {
            listener: Some(listener),
            backoff: Backoff::default(),
            paused_until: None,
            max_conns: config.max_conns,
            buffer: config.buffer,
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

    /// Accepts the clients queued on the listener, [`Acceptor::BATCH`] at
    /// most, and adds each to `conns` after `register` succeeds for it. A
    /// client beyond `--max-conns`, or one `register` refuses, is closed at
    /// once. Returns whether the batch filled up, so more may be queued: a
    /// level-triggered model hears of those from its next wait, an
    /// edge-triggered one must come back by itself.
    ///
    /// # Errors
    ///
    /// Only if the listener breaks; the caller's server fails with it.
    pub(crate) fn accept(
        &mut self,
        conns: &mut Conns,
        mut register: impl FnMut(&Conn) -> io::Result<()>,
    ) -> io::Result<bool> {
        let Some(listener) = &self.listener else {
            return Ok(false);
        };
        for _ in 0..Self::BATCH {
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(error) => match AcceptError::classify(&error) {
                    AcceptError::ClientGone => continue,
                    AcceptError::Exhausted => {
                        self.paused_until = Some(Instant::now() + self.backoff.pause(&error));
                        return Ok(false);
                    }
                    AcceptError::ListenerDown => return Err(error),
                },
            };
            self.backoff.reset();
            if !conns.open.admit(self.max_conns) {
                tracing::debug!("at --max-conns {}: closing a new client", self.max_conns);
                continue;
            }
            let admitted = Conn::new(stream, self.buffer).and_then(|conn| {
                register(&conn)?;
                Ok(conn)
            });
            match admitted {
                Ok(conn) => conns.insert(conn),
                Err(error) => {
                    conns.open.leave();
                    tracing::debug!("closing a new client: {error}");
                }
            }
        }
        Ok(true)
    }

    /// Closes the listener: clients that connect from now on are refused,
    /// and those queued but not yet accepted are reset.
    fn close(&mut self) -> Option<TcpListener> {
        self.paused_until = None;
        self.listener.take()
    }
}

/// Where a loop stands against [`Shutdown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Serving and accepting.
    Running,
    /// The drain began just now: the model stops watching the listener (it
    /// is already closed) and [`Shutdown`]'s descriptor (which stays readable
    /// from now on).
    DrainBegan,
    /// Draining: serving the connected clients until they are done.
    Draining,
    /// Every client is done, or the stop is forced: return.
    Over,
}

/// The state of one readiness loop apart from its wait: the acceptor, the
/// connections and the server's shutdown.
#[derive(Debug)]
pub(crate) struct Loop<'a> {
    pub(crate) acceptor: Acceptor,
    pub(crate) conns: Conns,
    shutdown: &'a Shutdown,
    draining: bool,
    /// Connections whose edge-triggered turn ran out of budget with work
    /// left (see [`Turn::Again`]), to be served again before the next wait
    /// may sleep.
    again: Vec<RawFd>,
}

impl<'a> Loop<'a> {
    /// A loop that accepts from `listener`, counting its connections in
    /// `open` against `--max-conns`.
    pub(crate) fn new(
        listener: TcpListener,
        config: &Config,
        shutdown: &'a Shutdown,
        open: OpenCount,
    ) -> io::Result<Self> {
        Ok(Self {
            acceptor: Acceptor::new(listener, config)?,
            conns: Conns::new(open),
            shutdown,
            draining: false,
            again: Vec::new(),
        })
    }

    /// A loop with its own `--max-conns` count: the single-threaded models.
    pub(crate) fn single(
        listener: TcpListener,
        config: &Config,
        shutdown: &'a Shutdown,
    ) -> io::Result<Self> {
        Self::new(listener, config, shutdown, OpenCount::default())
    }

    /// The server's shutdown, for models that watch its descriptor.
    pub(crate) fn shutdown(&self) -> &'a Shutdown {
        self.shutdown
    }

    /// Looks at the shutdown: the first call after the drain began closes
    /// the listener and shuts every connection's read side. Call it once per
    /// turn of the loop; it costs one atomic load while running.
    pub(crate) fn phase(&mut self) -> Phase {
        if !self.draining {
            if !self.shutdown.is_draining() {
                return Phase::Running;
            }
            self.draining = true;
            drop(self.acceptor.close());
            self.conns.shut_reads();
            return if self.conns.is_empty() || self.shutdown.is_forced() {
                Phase::Over
            } else {
                Phase::DrainBegan
            };
        }
        if self.conns.is_empty() || self.shutdown.is_forced() {
            if !self.conns.is_empty() {
                tracing::info!(
                    "grace period over: closing {} connections",
                    self.conns.len()
                );
            }
            return Phase::Over;
        }
        Phase::Draining
    }

    /// How long the next wait may last: not at all while some connection is
    /// owed another turn; else until the paused listener is to be watched
    /// again, or, while draining, the grace period ends or 100 ms pass (a
    /// second signal forces the stop without a descriptor to say so, and
    /// the shutdown descriptor is no longer watched); `None` for no limit.
    /// Rounded up to whole milliseconds, the unit of `epoll_wait` and
    /// `poll`: rounding down would wake the loop just before the deadline,
    /// with nothing to do, over and over.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        if !self.again.is_empty() {
            return Some(Duration::ZERO);
        }
        // No clock read unless there is a deadline: this runs on every turn.
        let deadline = [
            self.acceptor.resumes_at(),
            self.draining.then(|| self.shutdown.deadline()).flatten(),
            self.draining
                .then(|| Instant::now() + Duration::from_millis(100)),
        ]
        .into_iter()
        .flatten()
        .min()?;
        // At most an hour: a far deadline (`--grace 1e9`) is looked at again
        // then, and no wait call meets a value outside its range.
        let left = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_secs(3600));
        let millis = left.as_nanos().div_ceil(1_000_000);
        Some(Duration::from_millis(
            u64::try_from(millis).unwrap_or(u64::MAX),
        ))
    }

    /// Serves the connection on `fd` for one level-triggered turn (see
    /// [`Conn::on_ready`]) and removes it if it ended. Returns the
    /// connection if it lives on, for the model to update what it watches.
    pub(crate) fn serve(&mut self, fd: RawFd, readable: bool) -> Option<&mut Conn> {
        let alive = self.conns.get_mut(fd)?.on_ready(readable);
        self.keep_if(fd, alive)
    }

    /// Serves the connection on `fd` until it would block (see
    /// [`Conn::until_blocked`]), removes it if it ended, and notes it for
    /// [`serve_again`](Self::serve_again) if its budget ran out.
    pub(crate) fn serve_until_blocked(&mut self, fd: RawFd) {
        let Some(conn) = self.conns.get_mut(fd) else {
            return;
        };
        match conn.until_blocked() {
            Turn::Waiting => {}
            Turn::Again => self.again.push(fd),
            Turn::Closed => drop(self.conns.remove(fd)),
        }
    }

    /// Gives the connections whose last edge-triggered turn ran out of
    /// budget another turn. A descriptor closed and reused since is served
    /// for nothing: a turn on an idle connection does nothing.
    pub(crate) fn serve_again(&mut self) {
        for fd in std::mem::take(&mut self.again) {
            self.serve_until_blocked(fd);
        }
    }

    fn keep_if(&mut self, fd: RawFd, alive: bool) -> Option<&mut Conn> {
        if alive {
            self.conns.get_mut(fd)
        } else {
            // Dropping it closes the socket; a kernel watch list (epoll's)
            // forgets a descriptor when its last copy closes.
            drop(self.conns.remove(fd));
            None
        }
    }
}
