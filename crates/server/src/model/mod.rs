//! The model contract, and the registry of every model `iomodels` can serve with.
//!
//! # The contract
//!
//! A model is one file with one entry point,
//! `pub fn serve(listener: TcpListener, config: &Config, shutdown: &Shutdown) -> io::Result<()>`,
//! that shows one I/O strategy and nothing else. Every model must:
//!
//! 1. **Accept** clients from `listener` until [`Shutdown`] starts the drain,
//!    through the shared accept rules (`crate::accept`): a client that
//!    vanished while queued is skipped, and descriptor exhaustion
//!    (`EMFILE`/`ENFILE`) backs off without spinning while the connected
//!    clients keep being served.
//! 2. **Echo through [`EchoSession`](crate::EchoSession)**, one per connection, and never touch the
//!    bytes itself: read only into [`EchoSession::recv_buf`](crate::EchoSession::recv_buf), write only from
//!    [`EchoSession::pending`](crate::EchoSession::pending).
//! 3. **Respect backpressure**: never read a client whose session does not
//!    [`want to receive`](crate::EchoSession::wants_recv), so one client can make
//!    the server hold at most `--buffer` bytes for it.
//! 4. **Half-close**: after a client's EOF, finish writing what is pending,
//!    then shut down the write side and close.
//! 5. **Contain failure**: an I/O error ends that connection only; nothing
//!    panics on I/O; a client beyond `--max-conns` is accepted and closed at
//!    once; SIGPIPE never kills the server.
//! 6. **Stop** when told: on the drain, accept no one new and stop reading
//!    each client once what it sent is in, echoing all of it back; when the
//!    stop is forced (the grace period is over), close what is left; then
//!    return `Ok(())`, so `iomodels serve` exits 0.
//!
//! The conformance suite in `crates/server/tests/` checks every point against
//! every model listed in [`Model::ALL`].

use std::fmt;
use std::io;
use std::net::TcpListener;
use std::str::FromStr;

use crate::{Config, Shutdown};

pub mod epoll;
pub mod fork;
pub mod hybrid;
pub mod iterative;
pub mod nonblocking;
pub mod poll;
pub mod prefork;
pub mod reactors;
pub mod select;
pub mod sigio;
pub mod thread;
pub mod thread_pool;
pub mod tokio;
pub mod uring;

/// Every model, named as on the command line (`--model thread-pool` is
/// [`Model::ThreadPool`], served by `model/thread_pool.rs`).
///
/// # Examples
///
/// ```
/// use iomodels_server::Model;
///
/// let model: Model = "thread-pool".parse().unwrap();
/// assert_eq!(model, Model::ThreadPool);
/// assert_eq!(model.file(), "crates/server/src/model/thread_pool.rs");
/// assert!("no-such-model".parse::<Model>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model {
    /// One client at a time, with blocking calls.
    Iterative,
    /// A thread per connection.
    Thread,
    /// A fixed set of threads, each serving one connection at a time.
    ThreadPool,
    /// A process per connection.
    Fork,
    /// A fixed set of processes, forked up front, each an epoll loop; the
    /// parent replaces any that dies.
    Prefork,
    /// One thread polls every non-blocking socket in a loop that never sleeps.
    Nonblocking,
    /// One thread waits on every socket with select(2).
    Select,
    /// One thread waits on every socket with poll(2).
    Poll,
    /// One thread waits with epoll: level-triggered, or edge-triggered with `--edge`.
    Epoll,
    /// One epoll loop per core, each with its own `SO_REUSEPORT` listener.
    Reactors,
    /// `--processes` processes, each with `--workers` epoll threads.
    Hybrid,
    /// Sockets raise a real-time signal when ready; one thread takes them.
    Sigio,
    /// One thread hands whole operations to the kernel with io_uring and
    /// collects their completions.
    Uring,
    /// A task per connection on tokio's multi-thread runtime.
    Tokio,
}

/// Which of the course's five I/O models a [`Model`] uses to wait for data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Each call waits until its data is there (阻塞IO).
    Blocking,
    /// No call waits; the server asks again and again (非阻塞IO).
    NonBlocking,
    /// One call waits for many sockets and says which are ready (IO多路复用).
    Multiplexing,
    /// The kernel sends a signal when a socket is ready (信号驱动IO).
    SignalDriven,
    /// The kernel does the whole operation and reports when it is done (异步IO).
    Asynchronous,
}

impl Family {
    /// The family's name, as `iomodels models` prints it.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::Model;
    ///
    /// assert_eq!(Model::Fork.family().name(), "blocking");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Self::Blocking => "blocking",
            Self::NonBlocking => "non-blocking",
            Self::Multiplexing => "multiplexing",
            Self::SignalDriven => "signal-driven",
            Self::Asynchronous => "asynchronous",
        }
    }
}

impl Model {
    /// Every model, in the order `iomodels models` lists them.
    pub const ALL: [Model; 14] = [
        Self::Iterative,
        Self::Thread,
        Self::ThreadPool,
        Self::Fork,
        Self::Prefork,
        Self::Nonblocking,
        Self::Select,
        Self::Poll,
        Self::Epoll,
        Self::Reactors,
        Self::Hybrid,
        Self::Sigio,
        Self::Uring,
        Self::Tokio,
    ];

    /// What `iomodels serve` runs without `--model`: the fastest readiness
    /// model. That is `epoll` (`bench/results/2026-11-26/`). With every
    /// connection busy, `select`, `poll` and `epoll` are within about 10%
    /// of each other, `poll` ahead by that much in two runs: a wait that
    /// returns many ready sockets shares its O(n) among them. Beside 1000
    /// idle connections `epoll` kept its 101k requests/s, where `select`
    /// and `poll` fell to 26k. On 2 cores shared with the bench's client,
    /// `reactors` came behind `epoll`. `uring` was faster still
    /// (`bench/results/2026-11-27/`: 122k requests/s at 100 connections
    /// against `epoll`'s 98k), but it needs Linux 5.19 and an io_uring that
    /// no sysctl or seccomp profile has switched off: the default is the
    /// fastest model that runs everywhere.
    pub const DEFAULT: Model = Self::Epoll;

    /// The model's name on the command line.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::Model;
    ///
    /// let names: Vec<_> = Model::ALL.iter().map(|m| m.name()).collect();
    /// assert_eq!(&names[..5], ["iterative", "thread", "thread-pool", "fork", "prefork"]);
    /// assert_eq!(&names[5..11], ["nonblocking", "select", "poll", "epoll", "reactors", "hybrid"]);
    /// assert_eq!(&names[11..], ["sigio", "uring", "tokio"]);
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Self::Iterative => "iterative",
            Self::Thread => "thread",
            Self::ThreadPool => "thread-pool",
            Self::Fork => "fork",
            Self::Prefork => "prefork",
            Self::Nonblocking => "nonblocking",
            Self::Select => "select",
            Self::Poll => "poll",
            Self::Epoll => "epoll",
            Self::Reactors => "reactors",
            Self::Hybrid => "hybrid",
            Self::Sigio => "sigio",
            Self::Uring => "uring",
            Self::Tokio => "tokio",
        }
    }

    /// How the model waits for I/O, in the course's terms.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::{Family, Model};
    ///
    /// assert_eq!(Model::Thread.family(), Family::Blocking);
    /// ```
    pub fn family(self) -> Family {
        match self {
            Self::Iterative | Self::Thread | Self::ThreadPool | Self::Fork => Family::Blocking,
            Self::Nonblocking => Family::NonBlocking,
            // tokio waits with epoll under its async/await, and the
            // process models run epoll loops.
            Self::Select
            | Self::Poll
            | Self::Epoll
            | Self::Reactors
            | Self::Prefork
            | Self::Hybrid
            | Self::Tokio => Family::Multiplexing,
            Self::Sigio => Family::SignalDriven,
            Self::Uring => Family::Asynchronous,
        }
    }

    /// The file that implements it, relative to the repository root.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::Model;
    ///
    /// assert_eq!(Model::Iterative.file(), "crates/server/src/model/iterative.rs");
    /// ```
    pub fn file(self) -> &'static str {
        match self {
            Self::Iterative => "crates/server/src/model/iterative.rs",
            Self::Thread => "crates/server/src/model/thread.rs",
            Self::ThreadPool => "crates/server/src/model/thread_pool.rs",
            Self::Fork => "crates/server/src/model/fork.rs",
            Self::Prefork => "crates/server/src/model/prefork.rs",
            Self::Nonblocking => "crates/server/src/model/nonblocking.rs",
            Self::Select => "crates/server/src/model/select.rs",
            Self::Poll => "crates/server/src/model/poll.rs",
            Self::Epoll => "crates/server/src/model/epoll.rs",
            Self::Reactors => "crates/server/src/model/reactors.rs",
            Self::Hybrid => "crates/server/src/model/hybrid.rs",
            Self::Sigio => "crates/server/src/model/sigio.rs",
            Self::Uring => "crates/server/src/model/uring.rs",
            Self::Tokio => "crates/server/src/model/tokio.rs",
        }
    }

    /// The idea in one line.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::Model;
    ///
    /// assert!(Model::ThreadPool.idea().contains("caps concurrent clients"));
    /// ```
    pub fn idea(self) -> &'static str {
        match self {
            Self::Iterative => {
                "one client at a time with blocking calls; the next waits in the backlog"
            }
            Self::Thread => "a thread per connection; each blocks on its own client",
            Self::ThreadPool => {
                "--workers threads each serve one connection at a time; the pool size \
                 caps concurrent clients, the rest wait until a worker frees"
            }
            Self::Fork => {
                "a process per connection, reaped by the parent: isolation at fork's cost"
            }
            Self::Nonblocking => NONBLOCKING_IDEA,
            Self::Select => {
                "one thread, select(2) on bitmaps rebuilt every call: O(n) per wait; \
                 refuses clients whose descriptor is past FD_SETSIZE (1024)"
            }
            Self::Poll => {
                "one thread, poll(2) on an array of every socket: no limit, O(n) per wait"
            }
            Self::Epoll => {
                "one thread, epoll: the kernel keeps the interest list, a wait returns only \
                 the ready sockets (level-triggered; --edge for edge-triggered)"
            }
            Self::Reactors => {
                "one epoll loop per core (--workers), each with its own SO_REUSEPORT \
                 listener: nothing shared on the hot path"
            }
            Self::Sigio => {
                "sockets raise a real-time signal when ready (O_ASYNC, F_SETSIG), taken \
                 with sigtimedwait; a full signal queue falls back to a rescan"
            }
            Self::Prefork => {
                "--workers processes forked up front, each an epoll loop on its own \
                 SO_REUSEPORT listener; the parent replaces a worker that dies"
            }
            Self::Hybrid => {
                "--processes processes x --workers epoll threads each: processes for \
                 isolation, threads for cores, an event loop for connections"
            }
            Self::Uring => {
                "one thread submits whole operations (accept, recv, send) to io_uring \
                 and reaps their completions: many operations per system call"
            }
            Self::Tokio => {
                "a task per connection on tokio's multi-thread runtime, written with \
                 async/await: the mainstream Rust answer"
            }
        }
    }

    /// How many clients it serves at once, for the models whose design caps
    /// it below `--max-conns`; `None` for the rest.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use iomodels_server::{Config, Model};
    ///
    /// let config = Config { workers: NonZeroUsize::new(4), ..Config::default() };
    /// assert_eq!(Model::Iterative.capacity(&config), Some(1));
    /// assert_eq!(Model::ThreadPool.capacity(&config), Some(4));
    /// assert_eq!(Model::Thread.capacity(&config), None);
    /// ```
    pub fn capacity(self, config: &Config) -> Option<usize> {
        match self {
            Self::Iterative => Some(1),
            Self::ThreadPool => Some(thread_pool::workers(config)),
            Self::Thread
            | Self::Fork
            | Self::Prefork
            | Self::Nonblocking
            | Self::Select
            | Self::Poll
            | Self::Epoll
            | Self::Reactors
            | Self::Hybrid
            | Self::Sigio
            | Self::Uring
            | Self::Tokio => None,
        }
        .map(|capacity| capacity.min(config.max_conns))
    }

    /// Serves on `listener` until `shutdown` says stop; see the contract above
    /// (the crate's front page has a complete example).
    ///
    /// # Errors
    ///
    /// Only for failures of the server as a whole: the listener breaking, or
    /// threads that cannot start. A client's errors never surface here.
    pub fn serve(
        self,
        listener: TcpListener,
        config: &Config,
        shutdown: &Shutdown,
    ) -> io::Result<()> {
        crate::sys::ignore_sigpipe()?;
        match self {
            Self::Iterative => iterative::serve(listener, config, shutdown),
            Self::Thread => thread::serve(listener, config, shutdown),
            Self::ThreadPool => thread_pool::serve(listener, config, shutdown),
            Self::Fork => fork::serve(listener, config, shutdown),
            Self::Prefork => prefork::serve(listener, config, shutdown),
            Self::Nonblocking => nonblocking::serve(listener, config, shutdown),
            Self::Select => select::serve(listener, config, shutdown),
            Self::Poll => poll::serve(listener, config, shutdown),
            Self::Epoll => epoll::serve(listener, config, shutdown),
            Self::Reactors => reactors::serve(listener, config, shutdown),
            Self::Hybrid => hybrid::serve(listener, config, shutdown),
            Self::Sigio => sigio::serve(listener, config, shutdown),
            Self::Uring => uring::serve(listener, config, shutdown),
            // `self::`: the model's file, not the crate it is written with.
            Self::Tokio => self::tokio::serve(listener, config, shutdown),
        }
    }

    /// Binds the listener this model serves on: [`Config::listen`], with
    /// `SO_REUSEPORT` for the models that bind more listeners beside it
    /// (`reactors`, `prefork`, `hybrid`).
    ///
    /// `SO_REUSEPORT` would also let a second server of the same user bind
    /// the same port and silently take half its clients. So for those models
    /// the address is first bound once without it, which fails if anyone
    /// holds the port, and only then with it.
    ///
    /// # Errors
    ///
    /// If the address cannot be bound (in use, not local).
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::{Config, Model};
    ///
    /// let config = Config { addr: "127.0.0.1:0".parse().unwrap(), ..Config::default() };
    /// let listener = Model::Reactors.listen(&config).unwrap();
    /// assert_ne!(listener.local_addr().unwrap().port(), 0);
    /// ```
    pub fn listen(self, config: &Config) -> io::Result<TcpListener> {
        let plain = config.bind(config.addr, false)?;
        if !matches!(self, Self::Reactors | Self::Prefork | Self::Hybrid) {
            return Ok(plain);
        }
        // The port is ours (and picked, if port 0 was asked for): release
        // it and bind it again to share among the reactors. A listener that
        // was never connected to leaves no TIME_WAIT behind.
        let addr = plain.local_addr()?;
        drop(plain);
        config.bind(addr, true)
    }

    /// How many worker processes the model keeps running under the one that
    /// was started, for as long as it serves: `prefork`'s and `hybrid`'s.
    /// The other models fork none, or one per client (`fork`): 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use iomodels_server::{Config, Model};
    ///
    /// let config = Config { workers: NonZeroUsize::new(3), ..Config::default() };
    /// assert_eq!(Model::Prefork.standing_workers(&config), 3);
    /// assert_eq!(Model::Hybrid.standing_workers(&config), 2); // --processes
    /// assert_eq!(Model::Fork.standing_workers(&config), 0);
    /// ```
    pub fn standing_workers(self, config: &Config) -> usize {
        match self {
            Self::Prefork => prefork::workers(config),
            Self::Hybrid => hybrid::processes(config),
            _ => 0,
        }
    }

    /// Whether `--edge` means something to this model.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::Model;
    ///
    /// assert!(Model::Epoll.takes_edge() && !Model::Poll.takes_edge());
    /// ```
    pub fn takes_edge(self) -> bool {
        matches!(
            self,
            Self::Epoll | Self::Reactors | Self::Prefork | Self::Hybrid
        )
    }

    /// Whether `--processes` means something to this model.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::Model;
    ///
    /// assert!(Model::Hybrid.takes_processes() && !Model::Prefork.takes_processes());
    /// ```
    pub fn takes_processes(self) -> bool {
        self == Self::Hybrid
    }
}

/// The busy-polling model's idea, with what it was measured to burn.
const NONBLOCKING_IDEA: &str = "one thread tries accept, read and write on every non-blocking \
     socket in a loop that never sleeps; measured: 100% of a core with no clients at all";

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for a name that is not a model; it lists the ones that are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownModel(pub String);

impl fmt::Display for UnknownModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = Model::ALL.iter().map(|m| m.name()).collect();
        write!(
            f,
            "no model named {:?} (models: {})",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownModel {}

impl FromStr for Model {
    type Err = UnknownModel;
    fn from_str(name: &str) -> Result<Self, UnknownModel> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| UnknownModel(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::Model;
    use std::path::Path;

    #[test]
    fn names_files_and_variants_match() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for model in Model::ALL {
            let stem = model.name().replace('-', "_");
            assert_eq!(model.file(), format!("crates/server/src/model/{stem}.rs"));
            assert_eq!(format!("{model:?}").to_lowercase(), stem.replace('_', ""));
            let source = std::fs::read_to_string(root.join(model.file())).unwrap();
            assert!(
                source.starts_with("//!"),
                "{} must open with a //! line",
                model.file()
            );
            assert_eq!(model.name().parse::<Model>(), Ok(model));
        }
    }
}
