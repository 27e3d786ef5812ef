//! uring: one thread hands whole operations to the kernel with io_uring and reaps their completions.
//!
//! **The idea.** This is the course's 异步IO (asynchronous I/O). A readiness
//! model asks the kernel "which sockets could I read now without waiting?"
//! and then makes the `read` itself; here the server asks the kernel to *do*
//! the read ("receive into this buffer") and is told when it is done and how
//! many bytes landed. Requests and their results pass through two rings of
//! memory shared with the kernel: the loop writes many requests (SQEs) into
//! one, makes a single `io_uring_enter` that submits them all and sleeps
//! until something completes, then reads every result (CQE) from the other
//! without a system call. One multishot accept yields a completion per new
//! client for as long as it lives.
//!
//! **Its cost.** Per message: a receive and a send request, and a share of
//! the loop's `io_uring_enter`, which under load carries the requests of many
//! clients at once. No readiness report and no `EAGAIN`: a receive waits in
//! the kernel until data comes. The price is memory: a request in flight
//! owns its buffer, so every idle client's session buffer is lent to the
//! kernel for as long as it is silent, and none of it can be freed or moved
//! meanwhile (`sys::uring` makes that impossible to get wrong). Production
//! servers with many idle clients hand the kernel a shared pool instead
//! (provided buffer rings), so a buffer is taken only when data arrives; the
//! model contract wants the session's own buffer, so this model does not.
//! Measured on 2 cores, it used 0.92x the `tokio-echo` peer's server CPU
//! per 64-byte request at 100 connections
//! (`bench/results/2026-11-27/completion-costs.md`, with 16 KiB figures and
//! the matrix beside it). The kernel's TCP send and receive are 80% of that
//! time, the same work for any server (`uring-cpu-floor.md`): what io_uring
//! saves is the rest, no `epoll_wait`, no `EAGAIN`, one system call for
//! every client's operations.
//!
//! **The drain.** A receive waits in the kernel for as long as its client
//! is silent, so the drain cancels every receive in flight: each completes
//! (with its bytes, if they came first), and its connection is then capped
//! at what the kernel holds for it, answered, half-closed, and left with a
//! receive that throws away what the client still sends until its EOF.
//!
//! **When to pick it.** Linux 5.19 or later, many busy connections, and a
//! budget counted in system calls: batching makes one call carry a hundred
//! operations. It also makes file I/O asynchronous, which epoll cannot (a
//! regular file is always "ready").
//!
//! **How it fails.** Where io_uring cannot run: a kernel too old, io_uring
//! switched off (`kernel.io_uring_disabled`, or a container's seccomp
//! profile: much of the kernel's recent exploit history went through it), or
//! no memory for the rings (`RLIMIT_MEMLOCK` counted them before Linux 5.12,
//! the memory cgroup since). [`probe`] says which, and `serve` exits with
//! that message. Once running, it fails like `epoll`: one
//! thread, so slow work on one client stalls all of them.

use std::fmt;
use std::io::{self, ErrorKind};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::accept::{AcceptError, Backoff, prepare};
use crate::admission::OpenCount;
use crate::connection::{Connection, Fate};
use crate::drain::{self, Left};
use crate::sys::uring::{Event, Key, Op, Ring, Timer};
use crate::{Config, Family, Model, Phase, Shutdown};

/// `--model uring`.
pub const MODEL: Model = Model::new(
    "uring",
    Family::Asynchronous,
    file!(),
    "one thread submits whole operations (accept, recv, send) to io_uring \
     and reaps their completions: many operations per system call",
    serve,
)
.with_preflight(|| probe().map_err(unsupported));

/// [`Unavailable`] as the error `serve` and the preflight return.
fn unsupported(why: Unavailable) -> io::Error {
    io::Error::new(ErrorKind::Unsupported, why.to_string())
}

/// Submission queue slots: requests pushed in one turn beyond this are
/// submitted early, in an extra system call.
const ENTRIES: u32 = 1024;

/// While draining, the clock is looked at this often: a forced stop (a
/// second signal, or the end of the grace period) has no descriptor to poll.
const TICK: Duration = Duration::from_millis(100);

/// Why io_uring cannot run here, and what to do about it.
///
/// # Examples
///
/// ```
/// use iomodels_server::model::uring::Unavailable;
///
/// let why = Unavailable::Disabled { sysctl: Some(2) };
/// assert!(why.to_string().contains("sysctl kernel.io_uring_disabled=0"));
/// let why = Unavailable::TooOld { missing: "multishot accept", since: "5.19" };
/// assert!(why.to_string().contains("Linux 5.19"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// The kernel lacks io_uring (`ENOSYS`) or an operation this model
    /// uses: `missing`, which came in Linux `since`.
    TooOld {
        /// The system call, operation or flag the kernel does not have.
        missing: &'static str,
        /// The Linux version that brought it.
        since: &'static str,
    },
    /// io_uring is not permitted (`EPERM`); `sysctl` is the value of
    /// `kernel.io_uring_disabled`, if the kernel has that switch.
    Disabled {
        /// 1: only members of `kernel.io_uring_group` may use it; 2: no one.
        sysctl: Option<u8>,
    },
    /// No locked memory left for the rings (`ENOMEM`): `RLIMIT_MEMLOCK`,
    /// which counts them on kernels before 5.12.
    NoLockedMemory,
    /// `io_uring_setup` failed with another errno.
    Other {
        /// The raw errno.
        errno: i32,
    },
}

impl Unavailable {
    /// What `io_uring_setup` failing with `error` means.
    fn from_setup(error: &io::Error) -> Self {
        let errno = error.raw_os_error().unwrap_or(0);
        // The switch exists from Linux 6.6 on; it is only read to explain.
        let sysctl = (errno == libc::EPERM)
            .then(|| std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").ok())
            .flatten()
            .and_then(|value| value.trim().parse().ok());
        Self::from_errno(errno, sysctl)
    }

    fn from_errno(errno: i32, sysctl: Option<u8>) -> Self {
        match errno {
            libc::ENOSYS => Self::TooOld {
                missing: "the io_uring_setup system call",
                since: "5.1",
            },
            libc::EPERM => Self::Disabled { sysctl },
            libc::ENOMEM => Self::NoLockedMemory,
            errno => Self::Other { errno },
        }
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooOld { missing, since } => write!(
                f,
                "io_uring: this kernel is too old: it lacks {missing}, which came in Linux \
                 {since}, and this model needs Linux 5.19 or later (a seccomp filter that \
                 answers ENOSYS looks the same); upgrade the kernel"
            ),
            Self::Disabled {
                sysctl: Some(level @ (1 | 2)),
            } => write!(
                f,
                "io_uring is disabled: kernel.io_uring_disabled is {level} (1: only \
                 kernel.io_uring_group may use it, 2: no one); enable it with \
                 `sysctl kernel.io_uring_disabled=0` (as root)"
            ),
            Self::Disabled { .. } => write!(
                f,
                "io_uring is disabled: io_uring_setup is not permitted (EPERM), most likely \
                 by a seccomp profile (containers often forbid io_uring); allow it there, \
                 or check `sysctl kernel.io_uring_disabled` (0 enables it)"
            ),
            Self::NoLockedMemory => write!(
                f,
                "io_uring is out of locked memory (ENOMEM): the rings do not fit under \
                 RLIMIT_MEMLOCK (or, from Linux 5.12 on, the memory cgroup's limit); raise \
                 it (`ulimit -l unlimited`, or LimitMEMLOCK=infinity for a systemd service)"
            ),
            Self::Other { errno } => write!(
                f,
                "io_uring cannot start: io_uring_setup failed with {} (see io_uring_setup(2))",
                Errno::from_raw(*errno)
            ),
        }?;
        // The way out, whatever the cause.
        f.write_str(", or pick another model (--model epoll)")
    }
}

impl std::error::Error for Unavailable {}

/// Whether this model can run here: sets up a small ring and checks that
/// the kernel supports every operation the model uses.
///
/// # Errors
///
/// [`Unavailable`], saying why not and what to do.
///
/// # Examples
///
/// ```
/// use iomodels_server::model::uring;
///
/// match uring::probe() {
///     Ok(()) => println!("io_uring can run here"),
///     Err(why) => assert!(why.to_string().contains("--model epoll"), "{why}"),
/// }
/// ```
pub fn probe() -> Result<(), Unavailable> {
    match crate::sys::uring::missing_operation() {
        Ok(None) => Ok(()),
        Ok(Some((missing, since))) => Err(Unavailable::TooOld { missing, since }),
        Err(error) => Err(Unavailable::from_setup(&error)),
    }
}

/// Serves on `listener` with one io_uring loop until the drain is over.
///
/// # Errors
///
/// [`ErrorKind::Unsupported`], with [`Unavailable`]'s message, where
/// io_uring cannot run; otherwise only if the ring or the listener breaks.
pub fn serve(listener: TcpListener, config: &Config, shutdown: &Shutdown) -> io::Result<()> {
    probe().map_err(unsupported)?;
    // A completion queue with room for one completion per connection: the
    // kernel keeps what overflows, but stops a multishot accept to do so.
    let completions = u32::try_from(config.max_conns.saturating_add(64)).unwrap_or(u32::MAX);
    let ring = Ring::new(ENTRIES, completions.max(2 * ENTRIES))
        .map_err(|error| unsupported(Unavailable::from_setup(&error)))?;
    let mut server = Server {
        ring,
        listener: Some(listener),
        backoff: Backoff::default(),
        open: OpenCount::default(),
        draining: false,
        idle_check: config.idle_limit().map(|t| Instant::now() + t / 4),
        config,
        shutdown,
    };
    // However `run` ends, dropping the ring then cancels what is still in
    // flight and waits for the kernel to let go of every session's buffer.
    server.run()
}

/// The loop's state: the ring (which holds the connections) and the listener.
struct Server<'a> {
    ring: Ring,
    /// `None` once the drain has closed it.
    listener: Option<TcpListener>,
    backoff: Backoff,
    /// The connections open, against `--max-conns`.
    open: OpenCount,
    draining: bool,
    /// With `--idle-timeout`: when to look for idle connections next.
    idle_check: Option<Instant>,
    config: &'a Config,
    shutdown: &'a Shutdown,
}

impl Server<'_> {
    fn run(&mut self) -> io::Result<()> {
        if let Some(listener) = &self.listener {
            self.ring.accept_multi(listener)?;
        }
        // The drain's descriptor is one more operation: the same wait
        // covers sockets and signals.
        self.ring.poll_readable(self.shutdown.as_fd())?;
        let mut events = Vec::new();
        loop {
            // The turn: submit every request pushed since the last one, sleep
            // until one completes, then take all that have.
            self.ring.submit_and_wait()?;
            self.ring.reap(&mut events);
            for event in events.drain(..) {
                match event {
                    Event::Accepted { result, more } => self.accepted(result, more)?,
                    Event::Done(key, op, result) => self.done(key, op, result)?,
                    Event::Timer(Timer::Resume) => self.resume()?,
                    // The drain and the clock are looked at below.
                    Event::Readable | Event::Timer(Timer::Tick | Timer::Idle) => {}
                }
            }
            if !self.draining && self.shutdown.is_draining() {
                self.begin_drain()?;
            }
            if let Some(next) = self.close_idle() {
                self.ring.arm(Timer::Idle, next)?;
            }
            if self.draining {
                if self.ring.len() == 0 {
                    return Ok(());
                }
                if self.shutdown.phase() == Phase::Forced {
                    drain::log_forced(Left::Connections(self.ring.len()));
                    return Ok(());
                }
                let now = Instant::now();
                let grace_left = self.shutdown.deadline().map(|d| d - now.min(d));
                let tick = grace_left.map_or(TICK, |left| left.min(TICK));
                self.ring.arm(Timer::Tick, tick)?;
            }
        }
    }

    /// With `--idle-timeout`, when a look is due: shuts down every
    /// connection that has neither sent nor taken a byte for that long (its
    /// operation in flight then completes, and the completion ends it).
    /// Returns how long until the next look.
    fn close_idle(&mut self) -> Option<Duration> {
        let (timeout, due) = (self.config.idle_limit()?, self.idle_check?);
        let now = Instant::now();
        if now >= due {
            self.ring.shut_where(|conn| {
                let idle = conn.idle_for(timeout, now);
                if idle {
                    tracing::debug!("connection ended: idle for {timeout:?}");
                }
                idle
            });
            self.idle_check = Some(now + (timeout / 4).max(Duration::from_millis(1)));
        }
        self.idle_check
            .map(|at| at.saturating_duration_since(now).max(Duration::from_millis(1)))
    }

    /// A completion of the multishot accept: a client to admit, or an error.
    fn accepted(&mut self, result: io::Result<TcpStream>, more: bool) -> io::Result<()> {
        match result {
            Ok(stream) => {
                self.backoff.reset();
                self.admit(stream)?;
            }
            // The drain cancelled it: this is its end.
            Err(_) if self.draining => return Ok(()),
            Err(error) => match AcceptError::classify(&error) {
                AcceptError::ClientGone => tracing::debug!("accept: {error}"),
                AcceptError::Exhausted => {
                    // Pushed again now, it would fail at once, a spin: wait
                    // for the timer, serving the connected clients meanwhile.
                    let pause = self.backoff.pause(&error);
                    return self.ring.arm(Timer::Resume, pause);
                }
                AcceptError::ListenerDown => return Err(error),
            },
        }
        // An error or a full completion queue ends the multishot request.
        if more { Ok(()) } else { self.resume() }
    }

    /// Takes a new client into the ring and starts receiving from it.
    fn admit(&mut self, stream: TcpStream) -> io::Result<()> {
        if self.draining {
            tracing::debug!("draining: closing a new client");
            return Ok(());
        }
        let Some(slot) = self.open.admit(self.config.max_conns) else {
            tracing::debug!(
                "at --max-conns {}: closing a new client",
                self.config.max_conns
            );
            return Ok(());
        };
        prepare(&stream);
        let idle = self.config.idle_limit().is_some();
        let conn = Connection::new(stream, self.config.buffer, slot, idle);
        let key = self.ring.insert(conn);
        self.advance(key)
    }

    /// Pushes the multishot accept again, after a pause or when it ended,
    /// unless the drain has closed the listener.
    fn resume(&mut self) -> io::Result<()> {
        match &self.listener {
            Some(listener) => self.ring.accept_multi(listener),
            None => Ok(()),
        }
    }

    /// An operation completed. A receive's bytes are in the session's
    /// buffer already: the session only counts them (and upper-cases them);
    /// a send may have been short, and the rest stays pending.
    fn done(&mut self, key: Key, op: Op, result: io::Result<usize>) -> io::Result<()> {
        let Some(conn) = self.ring.conn(key) else {
            return Ok(());
        };
        match (op, result) {
            (Op::Recv, Ok(0)) => conn.session.peer_closed(),
            (Op::Recv, Ok(n)) => {
                conn.session.received(n);
                conn.touch();
            }
            (Op::Send, Ok(0)) => return self.failed(key, ErrorKind::WriteZero.into()),
            (Op::Send, Ok(n)) => {
                conn.session.sent(n);
                conn.touch();
            }
            // A lingering client's EOF, or an error: either ends it.
            (Op::Discard, Ok(0) | Err(_)) => {
                drop(self.ring.remove(key));
                return Ok(());
            }
            // Thrown away, but the client is not idle.
            (Op::Discard, Ok(_)) => conn.touch(),
            // The drain cancelled this receive before any byte came.
            (Op::Recv, Err(e)) if self.draining && e.raw_os_error() == Some(libc::ECANCELED) => {}
            (_, Err(error)) => return self.failed(key, error),
        }
        self.advance(key)
    }

    /// An operation failed: an interruption is tried again; anything else
    /// (a reset, a broken pipe) ends this connection only.
    fn failed(&mut self, key: Key, error: io::Error) -> io::Result<()> {
        if matches!(error.kind(), ErrorKind::Interrupted | ErrorKind::WouldBlock) {
            return self.advance(key);
        }
        tracing::debug!("connection ended: {error}");
        drop(self.ring.remove(key));
        Ok(())
    }

    /// Gives the idle connection at `key` its next operation, as its
    /// session asks: owed bytes first, then room for more, and once the
    /// session is done, a half-close and either the end or, for a client
    /// that may still be sending, a receive that throws bytes away. One at
    /// a time, so a receive can never land in bytes a send is still
    /// reading. While draining, the session is first capped at what the
    /// kernel holds for the client (once).
    fn advance(&mut self, key: Key) -> io::Result<()> {
        let draining = self.draining;
        let Some(conn) = self.ring.conn(key) else {
            return Ok(());
        };
        let fate = if draining {
            conn.begin_drain()
        } else {
            conn.settle()
        };
        let op = if fate == Fate::Close {
            drop(self.ring.remove(key));
            return Ok(());
        } else if conn.lingering() {
            Op::Discard
        } else if conn.session.wants_send() {
            Op::Send
        } else {
            Op::Recv
        };
        // The kernel refused the request (out of memory for it): this
        // connection ends, with nothing of it in flight; the others go on.
        if let Err(error) = self.ring.start(key, op) {
            tracing::debug!("connection ended: cannot queue its {op:?}: {error}");
            drop(self.ring.remove(key));
        }
        Ok(())
    }

    /// The drain: stop accepting, and cancel every receive in flight; each
    /// connection is then capped at what the kernel holds for it as its
    /// operation completes (see [`advance`](Self::advance)).
    fn begin_drain(&mut self) -> io::Result<()> {
        self.draining = true;
        // The multishot accept (if one is in flight) holds its own reference
        // to the listening socket: dropping ours at once is safe, and the
        // socket closes, refusing new clients, as soon as the cancel is
        // through. Closing it without the cancel would change nothing.
        self.listener = None;
        self.ring.cancel_accept()?;
        self.ring.cancel_receives()?;
        // The connections with nothing in flight are capped now.
        for key in self.ring.keys() {
            self.advance(key)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Unavailable;

    #[test]
    fn each_setup_errno_says_which_and_what_to_do() {
        let cases: [(i32, Option<u8>, &[&str]); 7] = [
            (libc::ENOSYS, None, &["too old", "io_uring_setup", "5.19"]),
            (
                libc::EPERM,
                Some(1),
                &["disabled", "is 1", "io_uring_disabled=0"],
            ),
            (
                libc::EPERM,
                Some(2),
                &["disabled", "is 2", "io_uring_disabled=0"],
            ),
            (
                libc::EPERM,
                Some(0),
                &["EPERM", "seccomp", "io_uring_disabled"],
            ),
            (libc::EPERM, None, &["EPERM", "seccomp"]),
            (
                libc::ENOMEM,
                None,
                &["locked memory", "RLIMIT_MEMLOCK", "ulimit -l"],
            ),
            (libc::EINVAL, None, &["cannot start", "EINVAL"]),
        ];
        for (errno, sysctl, words) in cases {
            let text = Unavailable::from_errno(errno, sysctl).to_string();
            for word in words.iter().chain(&["--model epoll"]) {
                assert!(text.contains(word), "{text:?} lacks {word:?}");
            }
        }
        let missing = Unavailable::TooOld {
            missing: "multishot accept",
            since: "5.19",
        };
        assert!(
            missing
                .to_string()
                .contains("lacks multishot accept, which came in Linux 5.19")
        );
    }
}
