//! What every readiness model shares: a non-blocking connection's turn after a readiness report, the table of connections, the accept rules for a non-blocking listener, the drain and the idle timeout; and the epoll loop four models run.
//!
//! A readiness model is a loop: *wait* until the kernel says some descriptors
//! are ready, then *do the I/O they allow* without ever blocking. The models
//! (`nonblocking`, `select`, `poll`, `epoll`, `reactors`, `sigio`, and the
//! workers of `prefork` and `hybrid`) differ only in how they wait;
//! everything after the wait lives here, so a reader diffing `select.rs` and
//! `poll.rs` sees only the waiting. The epoll loop itself is [`epoll`]:
//! `epoll` runs one, `reactors` one per thread, `prefork` and `hybrid` one
//! per thread of each worker process.
//!
//! The rules every model inherits from here:
//! - **Interest follows the session.** A connection wants to be read while its
//!   [`EchoSession`](crate::EchoSession) has room ([`Interest::read`]) and
//!   written while it owes bytes ([`Interest::write`]). Watching a full client
//!   for reading would wake the loop for data it must not take; watching an
//!   idle socket for writing would wake it on every pass, since a socket with
//!   room in its send buffer is always writable (the course's note on why
//!   that spins).
//! - **Write at once.** After a read, the reply is written in the same turn,
//!   without waiting to be told the socket is writable: it almost always is,
//!   and that saves one wait per message. Only a short write makes the model
//!   watch for writability.
//! - **Exhaustion pauses the listener.** When `accept` fails for lack of
//!   descriptors the listener stays readable, and a level-triggered loop
//!   would spin on it. The [`Acceptor`](acceptor::Acceptor) then stops being
//!   watched for a back-off period while the connected clients keep being
//!   served.
//! - **The drain** (`crate::drain`) closes the listener (new clients are
//!   refused) and caps each connection at what the kernel holds for it;
//!   each is answered that, half-closed, and lingers until its client's
//!   EOF. When the stop is forced, the model returns and every socket still
//!   open is closed with it.
//! - **The idle timeout** closes a connection that has neither sent nor
//!   taken a byte for `--idle-timeout`; the loop looks for them a few times
//!   per timeout, so one lives at most a quarter of it longer.

mod acceptor;
pub(crate) mod epoll;
mod table;
mod turn;

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use crate::admission::OpenCount;
use crate::connection::{Connection, Fate};
use crate::drain::{self, Left};
use crate::{Config, Phase, Shutdown};

use acceptor::{Accepted, Acceptor};
pub(crate) use table::{Interest, Table};
use turn::Edge;

/// The wait's timeout for `poll(2)` and `epoll_wait(2)`: `None` is no limit;
/// one past their range waits as long as they can and is looked at again.
pub(crate) fn wait_timeout(timeout: Option<Duration>) -> nix::poll::PollTimeout {
    use nix::poll::PollTimeout;
    timeout.map_or(PollTimeout::NONE, |t| {
        PollTimeout::try_from(t).unwrap_or(PollTimeout::MAX)
    })
}

/// What a scanning model (`select`, `poll`, `nonblocking`) watches on one
/// call: the whole set, handed to the kernel every time.
#[derive(Debug)]
pub(crate) struct Scan<'w> {
    /// The listener, unless the drain closed it or it pauses.
    pub(crate) listener: Option<&'w TcpListener>,
    /// The shutdown's descriptor, until the drain began (it stays readable).
    pub(crate) shutdown: Option<&'w Shutdown>,
    /// Every connection, each watched for [`Interest::of`] it.
    pub(crate) conns: &'w Table,
    /// How long the call may wait ([`Loop::timeout`]).
    pub(crate) timeout: Option<Duration>,
}

/// What one call of a scanning model found ready.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// A client is queued on the listener.
    pub(crate) accept: bool,
    /// (descriptor, readable) of each connection that is ready.
    pub(crate) ready: Vec<(RawFd, bool)>,
}

/// What [`Loop::tick`] found: where the loop stands against the shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Serving and accepting.
    Serve,
    /// The drain began just now: the model stops watching the listener (it
    /// is already closed) and [`Shutdown`]'s descriptor (which stays
    /// readable from now on).
    DrainBegan,
    /// Draining: serving the connected clients until they are done.
    Drain,
    /// Every client is done, or the stop is forced: return.
    Return,
}

/// The state of one readiness loop apart from its wait: the listener, the
/// connections and the server's shutdown.
#[derive(Debug)]
pub(crate) struct Loop<'a> {
    acceptor: Acceptor,
    pub(crate) conns: Table,
    /// Connections open in the whole server, against `--max-conns`: shared
    /// by the loops of `reactors`, and by the processes of `prefork` and
    /// `hybrid`.
    open: OpenCount,
    config: &'a Config,
    shutdown: &'a Shutdown,
    draining: bool,
    /// Connections whose edge-triggered turn ran out of budget with work
    /// left, to be served again before the next wait may sleep.
    again: Vec<RawFd>,
    /// With `--idle-timeout`: when to look for idle connections next.
    idle_check: Option<Instant>,
}

impl<'a> Loop<'a> {
    /// At most this many clients are accepted per readiness report, so that
    /// a flood of new clients cannot starve the connected ones of their turn.
    const BATCH: usize = 128;

    /// A loop that accepts from `listener`, counting its connections in
    /// `open` against `--max-conns`.
    pub(crate) fn new(
        listener: TcpListener,
        config: &'a Config,
        shutdown: &'a Shutdown,
        open: OpenCount,
    ) -> io::Result<Self> {
        Ok(Self {
            acceptor: Acceptor::new(listener)?,
            conns: Table::default(),
            open,
            config,
            shutdown,
            draining: false,
            again: Vec::new(),
            idle_check: config.idle_limit().map(|t| Instant::now() + check_every(t)),
        })
    }

    /// A loop with its own `--max-conns` count: the single-threaded models.
    pub(crate) fn single(
        listener: TcpListener,
        config: &'a Config,
        shutdown: &'a Shutdown,
    ) -> io::Result<Self> {
        Self::new(listener, config, shutdown, OpenCount::default())
    }

    /// The server's shutdown, for models that watch its descriptor.
    pub(crate) fn shutdown(&self) -> &'a Shutdown {
        self.shutdown
    }

    /// The listener, until the drain closes it.
    pub(crate) fn listener(&self) -> Option<&TcpListener> {
        self.acceptor.listener()
    }

    /// The listener's descriptor, until the drain closes it.
    pub(crate) fn listener_fd(&self) -> Option<RawFd> {
        self.acceptor.fd()
    }

    /// Whether to watch the listener now: open, and not pausing after
    /// descriptor exhaustion.
    pub(crate) fn listening(&mut self) -> bool {
        self.acceptor.watching()
    }

    /// Whether the listener pauses after descriptor exhaustion.
    pub(crate) fn pausing(&self) -> bool {
        self.acceptor.resumes_at().is_some()
    }

    /// Keeps the loop up with the shutdown and the clock; call it once per
    /// turn of the loop (it costs one atomic load while running, and with
    /// `--idle-timeout` one clock read). The first call after the drain
    /// began closes the listener and caps every connection at what the
    /// kernel holds for it (`crate::drain`); with `--idle-timeout`, it
    /// closes the connections idle that long.
    pub(crate) fn tick(&mut self) -> Step {
        self.tick_with(|_| {})
    }

    /// [`tick`](Self::tick), handing the listener to `before_close` just
    /// before the drain closes it: for a model that must take it off a
    /// kernel list first. Closing one copy of a listener whose open file
    /// another process shares (a worker's, and its parent's) leaves it on
    /// an epoll list, readable for as long as the other copy lives.
    pub(crate) fn tick_with(&mut self, before_close: impl FnOnce(&TcpListener)) -> Step {
        self.close_idle();
        if !self.draining {
            if !self.shutdown.is_draining() {
                return Step::Serve;
            }
            self.draining = true;
            if let Some(listener) = self.acceptor.listener() {
                before_close(listener);
            }
            self.acceptor.close();
            for fd in self.conns.fds() {
                if let Some(Fate::Close) = self.conns.get_mut(fd).map(Connection::begin_drain) {
                    drop(self.conns.remove(fd));
                }
            }
            return if self.conns.is_empty() || self.shutdown.is_forced() {
                self.log_forced();
                Step::Return
            } else {
                Step::DrainBegan
            };
        }
        if self.conns.is_empty() || self.shutdown.phase() == Phase::Forced {
            self.log_forced();
            return Step::Return;
        }
        Step::Drain
    }

    /// How long the next wait may last: not at all while some connection is
    /// owed another turn; else until the paused listener is to be watched
    /// again, the next look for idle connections, or, while draining, the
    /// grace period ends or 100 ms pass (a second signal forces the stop
    /// without a descriptor to say so, and the shutdown descriptor is no
    /// longer watched); `None` for no limit. Rounded up to whole
    /// milliseconds, the unit of `epoll_wait` and `poll`: rounding down
    /// would wake the loop just before the deadline, with nothing to do,
    /// over and over.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        if !self.again.is_empty() {
            return Some(Duration::ZERO);
        }
        // No clock read unless there is a deadline: this runs on every turn.
        let deadline = [
            self.acceptor.resumes_at(),
            self.idle_check,
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

    /// Accepts the clients queued on the listener, [`Loop::BATCH`] at most,
    /// and adds each to the table after `register` succeeds for it (the
    /// model tells its kernel to watch it). A client beyond `--max-conns`,
    /// or one `register` refuses, is closed at once. Returns whether the
    /// batch filled up, so more may be queued: a level-triggered model
    /// hears of those from its next wait, an edge-triggered one must come
    /// back by itself.
    ///
    /// # Errors
    ///
    /// Only if the listener breaks; the caller's server fails with it.
    pub(crate) fn accept(
        &mut self,
        mut register: impl FnMut(&Connection) -> io::Result<()>,
    ) -> io::Result<bool> {
        for _ in 0..Self::BATCH {
            let Accepted::Client(stream) = self.acceptor.accept()? else {
                return Ok(false);
            };
            let Some(slot) = self.open.admit(self.config.max_conns) else {
                tracing::debug!(
                    "at --max-conns {}: closing a new client",
                    self.config.max_conns
                );
                continue;
            };
            let idle = self.config.idle_limit().is_some();
            let admitted = stream.set_nonblocking(true).and_then(|()| {
                let conn = Connection::new(stream, self.config.buffer, slot, idle);
                register(&conn)?;
                Ok(conn)
            });
            match admitted {
                Ok(conn) => self.conns.insert(conn),
                Err(error) => tracing::debug!("closing a new client: {error}"),
            }
        }
        Ok(true)
    }

    /// Serves the connection on `fd` for one level-triggered turn (see
    /// [`Connection::turn`]) and removes it if it ended. Returns the
    /// connection if it lives on, for the model to update what it watches.
    pub(crate) fn turn(&mut self, fd: RawFd, readable: bool) -> Option<&mut Connection> {
        match self.conns.get_mut(fd)?.turn(readable) {
            Fate::Open => self.conns.get_mut(fd),
            Fate::Close => {
                // Dropping it closes the socket; a kernel watch list
                // (epoll's) forgets a descriptor when its last copy closes.
                drop(self.conns.remove(fd));
                None
            }
        }
    }

    /// Serves the connection on `fd` until it would block (see
    /// [`Connection::turn_until_blocked`]), removes it if it ended, and
    /// notes it for [`turn_again`](Self::turn_again) if its budget ran out.
    pub(crate) fn turn_until_blocked(&mut self, fd: RawFd) {
        let Some(conn) = self.conns.get_mut(fd) else {
            return;
        };
        match conn.turn_until_blocked() {
            Edge::Waiting => {}
            Edge::Again => self.again.push(fd),
            Edge::Closed => drop(self.conns.remove(fd)),
        }
    }

    /// Gives the connections whose last edge-triggered turn ran out of
    /// budget another turn. A descriptor closed and reused since is served
    /// for nothing: a turn on an idle connection does nothing.
    pub(crate) fn turn_again(&mut self) {
        for fd in std::mem::take(&mut self.again) {
            self.turn_until_blocked(fd);
        }
    }

    /// Every connection until it would block: for a model that lost track
    /// of which are ready (`sigio` when its signal queue overflows).
    pub(crate) fn turn_all_until_blocked(&mut self) {
        for fd in self.conns.fds() {
            self.turn_until_blocked(fd);
        }
    }

    /// The whole loop of a model that hands the kernel every descriptor on
    /// every call: `wait` builds its set from the [`Scan`], waits, and says
    /// in [`Found`] what is ready; the loop serves those connections, then
    /// accepts (each new client through `register`, which may refuse it),
    /// until the drain is over. An `Interrupted` wait is simply made again.
    ///
    /// # Errors
    ///
    /// The wait's, or the listener's if it breaks.
    pub(crate) fn run_scanning(
        mut self,
        mut wait: impl FnMut(Scan<'_>, &mut Found) -> io::Result<()>,
        mut register: impl FnMut(&Connection) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut running = true;
        let mut found = Found::default();
        loop {
            match self.tick() {
                Step::Serve | Step::Drain => {}
                Step::DrainBegan => running = false,
                Step::Return => return Ok(()),
            }
            let listening = self.listening();
            let scan = Scan {
                listener: self.listener().filter(|_| listening),
                shutdown: running.then_some(self.shutdown),
                conns: &self.conns,
                timeout: self.timeout(),
            };
            found.accept = false;
            found.ready.clear();
            match wait(scan, &mut found) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                result => result?,
            }
            for &(fd, readable) in &found.ready {
                self.turn(fd, readable);
            }
            if found.accept {
                self.accept(&mut register)?;
            }
        }
    }

    /// With `--idle-timeout`, when the next look is due: closes every
    /// connection that has neither sent nor taken a byte for that long.
    fn close_idle(&mut self) {
        let (Some(timeout), Some(due)) = (self.config.idle_limit(), self.idle_check) else {
            return;
        };
        let now = Instant::now();
        if now < due {
            return;
        }
        self.idle_check = Some(now + check_every(timeout));
        for fd in self.conns.fds() {
            if self
                .conns
                .get_mut(fd)
                .is_some_and(|c| c.idle_for(timeout, now))
            {
                tracing::debug!("connection ended: idle for {timeout:?}");
                drop(self.conns.remove(fd));
            }
        }
    }

    fn log_forced(&self) {
        drain::log_forced(Left::Connections(self.conns.len()));
    }
}

/// How often to look for idle connections: four times per timeout, so one
/// lives at most a quarter of it longer, and at most every millisecond.
fn check_every(timeout: Duration) -> Duration {
    (timeout / 4).max(Duration::from_millis(1))
}

/// The descriptor of a connection, as the table and the reports know it.
pub(crate) fn fd(conn: &Connection) -> RawFd {
    conn.stream.as_raw_fd()
}
