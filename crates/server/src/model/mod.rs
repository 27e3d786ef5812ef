//! The model contract, and the one table of every model `iomodels` can serve with.
//!
//! # The contract
//!
//! A model is one file that shows one I/O strategy and nothing else. It
//! declares itself next to its essay, as a `pub const MODEL: Model` (its
//! name, family, idea, the flags it takes, and its `serve`), and the
//! [`models!`] list below gathers every file's `MODEL` into [`Model::ALL`].
//! Its entry point,
//! `fn serve(listener: TcpListener, config: &Config, shutdown: &Shutdown) -> io::Result<()>`,
//! must:
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
//!    once; SIGPIPE never kills the server; with `--idle-timeout`, a client
//!    that has neither sent nor taken a byte for that long is closed.
//! 6. **Stop** when told, losing nothing: on the drain, accept no one new;
//!    answer each client everything the server had received from it (its
//!    session and the kernel's queue, `crate::drain`); then half-close and
//!    read and throw away what it still sends until its EOF (a lingering
//!    close: the kernel would reset a connection closed with bytes unread,
//!    and take the replies still on their way with it). When the stop is
//!    forced (the grace period is over), close what is left; then return
//!    `Ok(())`, so `iomodels serve` exits 0.
//!
//! The conformance suite in `crates/server/tests/conformance/` checks every
//! point against every model listed in [`Model::ALL`].
//!
//! # Adding a model
//!
//! Write `model/<name>.rs`: the essay, `pub const MODEL: Model =
//! Model::new(...)`, and `serve`, built on the shared cores (`blocking`,
//! `readiness`, `supervisor`), never on another model file. Then add the
//! file's name to [`models!`] below. The command line, `iomodels models`,
//! `bench --model`, the README's table (checked by a test) and the
//! conformance suite all read [`Model::ALL`].

use std::fmt;
use std::io;
use std::net::TcpListener;
use std::str::FromStr;

use crate::{Config, Shutdown};

/// Declares every model file and gathers their `MODEL`s into
/// [`Model::ALL`], in the order `iomodels models` lists them. Adding a model
/// is one line here.
macro_rules! models {
    ($($file:ident),* $(,)?) => {
        $(pub mod $file;)*

        impl Model {
            /// Every model, in the order `iomodels models` lists them.
            ///
            /// # Examples
            ///
            /// ```
            /// use iomodels_server::Model;
            ///
            /// let names: Vec<_> = Model::ALL.iter().map(|m| m.name()).collect();
            /// assert_eq!(&names[..5], ["iterative", "thread", "thread-pool", "fork", "prefork"]);
            /// assert_eq!(&names[5..11], ["nonblocking", "select", "poll", "epoll", "reactors", "hybrid"]);
            /// assert_eq!(&names[11..], ["sigio", "uring", "green", "tokio"]);
            /// ```
            // `self::`: `tokio` is both a model file and a crate.
            pub const ALL: &'static [&'static Model] = &[$(&self::$file::MODEL),*];
        }
    };
}

models! {
    iterative,
    thread,
    thread_pool,
    fork,
    prefork,
    nonblocking,
    select,
    poll,
    epoll,
    reactors,
    hybrid,
    sigio,
    uring,
    green,
    tokio,
}

/// A model's entry point: serve on the listener until the drain is over.
pub type Serve = fn(TcpListener, &Config, &Shutdown) -> io::Result<()>;

/// What a model file declares about itself, next to its essay: everything
/// the command line, `iomodels models`, the bench and the conformance suite
/// know of it. Each file has one, `MODEL`; [`Model::ALL`] lists them.
///
/// # Examples
///
/// ```
/// use iomodels_server::{Family, Flag, Model};
///
/// let model = Model::named("thread-pool").unwrap();
/// assert_eq!(model.file(), "crates/server/src/model/thread_pool.rs");
/// assert_eq!(model.family(), Family::Blocking);
/// assert!(model.takes(Flag::Workers) && !model.takes(Flag::Edge));
/// assert!(Model::named("no-such-model").is_err());
/// ```
#[derive(Clone, Copy)]
pub struct Model {
    name: &'static str,
    family: Family,
    file: &'static str,
    idea: &'static str,
    serve: Serve,
    takes: &'static [Flag],
    capacity: Option<fn(&Config) -> usize>,
    standing_workers: Option<fn(&Config) -> usize>,
    preflight: Option<fn() -> io::Result<()>>,
    reuse_port: bool,
    idles: bool,
    watch_limit: Option<usize>,
    variants: &'static [&'static [&'static str]],
}

/// A flag of `iomodels serve` that only some models take; the others
/// refuse it (a usage error) rather than ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// `--workers`: a fixed number of threads or processes.
    Workers,
    /// `--processes`: worker processes, each with `--workers` threads.
    Processes,
    /// `--edge`: edge-triggered epoll.
    Edge,
    /// `--green`: green hubs instead of epoll loops.
    Green,
}

impl Flag {
    /// The flag as written on the command line.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::Flag;
    ///
    /// assert_eq!(Flag::Edge.name(), "--edge");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Self::Workers => "--workers",
            Self::Processes => "--processes",
            Self::Edge => "--edge",
            Self::Green => "--green",
        }
    }
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
    /// assert_eq!(Model::named("fork").unwrap().family().name(), "blocking");
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
    /// A model named `name` (its `--model` value), of `family`, implemented
    /// in `file` (the file's own `file!()`), whose `idea` is one line, and
    /// which serves with `serve`. It takes no optional flag, serves any
    /// number of clients up to `--max-conns`, keeps no worker processes and
    /// needs nothing checked before it listens, until the builder methods
    /// below say otherwise.
    pub const fn new(
        name: &'static str,
        family: Family,
        file: &'static str,
        idea: &'static str,
        serve: Serve,
    ) -> Self {
        Self {
            name,
            family,
            file,
            idea,
            serve,
            takes: &[],
            capacity: None,
            standing_workers: None,
            preflight: None,
            reuse_port: false,
            idles: true,
            watch_limit: None,
            variants: &[],
        }
    }

    /// The optional flags it takes.
    pub const fn taking(mut self, flags: &'static [Flag]) -> Self {
        self.takes = flags;
        self
    }

    /// How many clients its design serves at once, below `--max-conns`.
    pub const fn with_capacity(mut self, capacity: fn(&Config) -> usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// How many worker processes it keeps running for as long as it serves.
    pub const fn with_standing_workers(mut self, workers: fn(&Config) -> usize) -> Self {
        self.standing_workers = Some(workers);
        self
    }

    /// What to check before it listens, so that a server that cannot run
    /// says why (an `Unsupported` error) instead of printing its ready line.
    pub const fn with_preflight(mut self, preflight: fn() -> io::Result<()>) -> Self {
        self.preflight = Some(preflight);
        self
    }

    /// Its listener needs `SO_REUSEPORT`: it binds more listeners beside it.
    pub const fn reusing_port(mut self) -> Self {
        self.reuse_port = true;
        self
    }

    /// It never sleeps, by design: the busy poller.
    pub const fn never_idle(mut self) -> Self {
        self.idles = false;
        self
    }

    /// It cannot watch a descriptor numbered `limit` or more (`select`).
    pub const fn watching_below(mut self, limit: usize) -> Self {
        self.watch_limit = Some(limit);
        self
    }

    /// Flag sets that make a variant worth checking as a model of its own
    /// (`epoll --edge`): the conformance suite runs every case for each.
    pub const fn with_variants(mut self, variants: &'static [&'static [&'static str]]) -> Self {
        self.variants = variants;
        self
    }

    /// What `iomodels serve` runs without `--model`: the fastest readiness
    /// model that runs everywhere, `epoll` (see `model/epoll.rs` for the
    /// figures behind the choice).
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::Model;
    ///
    /// assert_eq!(Model::DEFAULT.name(), "epoll");
    /// ```
    pub const DEFAULT: &'static Model = &epoll::MODEL;

    /// The model called `name` on the command line.
    ///
    /// # Errors
    ///
    /// [`UnknownModel`], which lists the names there are.
    pub fn named(name: &str) -> Result<&'static Model, UnknownModel> {
        Self::ALL
            .iter()
            .copied()
            .find(|m| m.name == name)
            .ok_or_else(|| UnknownModel(name.to_owned()))
    }

    /// The model's name on the command line.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// How the model waits for I/O, in the course's terms.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The file that implements it, relative to the repository root.
    pub fn file(&self) -> &'static str {
        self.file
    }

    /// The idea in one line.
    pub fn idea(&self) -> &'static str {
        self.idea
    }

    /// Whether `flag` means something to this model.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::{Flag, Model};
    ///
    /// let epoll = Model::named("epoll").unwrap();
    /// assert!(epoll.takes(Flag::Edge) && !epoll.takes(Flag::Processes));
    /// ```
    pub fn takes(&self, flag: Flag) -> bool {
        self.takes.contains(&flag)
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
    /// assert_eq!(Model::named("iterative").unwrap().capacity(&config), Some(1));
    /// assert_eq!(Model::named("thread-pool").unwrap().capacity(&config), Some(4));
    /// assert_eq!(Model::named("thread").unwrap().capacity(&config), None);
    /// ```
    pub fn capacity(&self, config: &Config) -> Option<usize> {
        self.capacity
            .map(|capacity| capacity(config).min(config.max_conns))
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
    /// assert_eq!(Model::named("prefork").unwrap().standing_workers(&config), 3);
    /// assert_eq!(Model::named("hybrid").unwrap().standing_workers(&config), 2); // --processes
    /// assert_eq!(Model::named("fork").unwrap().standing_workers(&config), 0);
    /// ```
    pub fn standing_workers(&self, config: &Config) -> usize {
        self.standing_workers.map_or(0, |workers| workers(config))
    }

    /// Whether it can run here: `Err` (of kind `Unsupported`, saying why and
    /// what to do) for a model this machine cannot run, such as `uring` on a
    /// kernel without io_uring. `iomodels serve` checks it before it listens.
    ///
    /// # Errors
    ///
    /// Why the model cannot run here.
    pub fn preflight(&self) -> io::Result<()> {
        self.preflight.map_or(Ok(()), |check| check())
    }

    /// Whether its listener needs `SO_REUSEPORT` (it binds more beside it).
    pub fn reuses_port(&self) -> bool {
        self.reuse_port
    }

    /// Whether it sleeps when it has nothing to do: every model but the busy
    /// poller, whose lesson is the core it burns.
    pub fn idles(&self) -> bool {
        self.idles
    }

    /// The lowest descriptor number it cannot watch, for `select`, whose
    /// bitmaps stop at `FD_SETSIZE`; `None` for no such limit.
    pub fn watch_limit(&self) -> Option<usize> {
        self.watch_limit
    }

    /// Flag sets that the conformance suite checks as models of their own.
    pub fn variants(&self) -> &'static [&'static [&'static str]] {
        self.variants
    }

    /// Serves on `listener` until `shutdown` says stop; see the contract above
    /// (the crate's front page has a complete example).
    ///
    /// # Errors
    ///
    /// Only for failures of the server as a whole: the listener breaking, or
    /// threads that cannot start. A client's errors never surface here.
    pub fn serve(
        &self,
        listener: TcpListener,
        config: &Config,
        shutdown: &Shutdown,
    ) -> io::Result<()> {
        crate::sys::ignore_sigpipe()?;
        (self.serve)(listener, config, shutdown)
    }

    /// Binds the listener this model serves on: [`Config::listen`], with
    /// `SO_REUSEPORT` for the models that bind more listeners beside it.
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
    /// let listener = Model::named("reactors").unwrap().listen(&config).unwrap();
    /// assert_ne!(listener.local_addr().unwrap().port(), 0);
    /// ```
    pub fn listen(&self, config: &Config) -> io::Result<TcpListener> {
        let plain = config.bind(config.addr, false)?;
        if !self.reuse_port {
            return Ok(plain);
        }
        // The port is ours (and picked, if port 0 was asked for): release
        // it and bind it again to share among the loops. A listener that
        // was never connected to leaves no TIME_WAIT behind.
        let addr = plain.local_addr()?;
        drop(plain);
        config.bind(addr, true)
    }
}

impl PartialEq for Model {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Model {}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Model({})", self.name)
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// The error for a name that is not a model; it lists the ones that are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownModel(pub String);

impl fmt::Display for UnknownModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = Model::ALL.iter().map(|m| m.name).collect();
        write!(
            f,
            "no model named {:?} (models: {})",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownModel {}

impl FromStr for &'static Model {
    type Err = UnknownModel;
    fn from_str(name: &str) -> Result<Self, UnknownModel> {
        Model::named(name)
    }
}

#[cfg(test)]
mod tests {
    use super::Model;
    use std::path::Path;

    #[test]
    fn names_and_files_match() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for model in Model::ALL {
            let stem = model.name().replace('-', "_");
            assert_eq!(model.file(), format!("crates/server/src/model/{stem}.rs"));
            let source = std::fs::read_to_string(root.join(model.file())).unwrap();
            assert!(
                source.starts_with("//!"),
                "{} must open with a //! line",
                model.file()
            );
            assert_eq!(Model::named(model.name()), Ok(*model));
        }
    }

    #[test]
    fn names_are_unique() {
        for (i, a) in Model::ALL.iter().enumerate() {
            assert!(
                Model::ALL[i + 1..].iter().all(|b| a.name() != b.name()),
                "two models are named {a}"
            );
        }
    }

    #[test]
    fn no_model_file_imports_another() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for model in Model::ALL {
            let source = std::fs::read_to_string(root.join(model.file())).unwrap();
            for other in Model::ALL.iter().filter(|m| m != &model) {
                let module = other.name().replace('-', "_");
                for import in [format!("model::{module}"), format!("super::{module}")] {
                    assert!(
                        !source.contains(&import),
                        "{} imports {import}: a model file builds on the shared cores only",
                        model.file()
                    );
                }
            }
        }
    }
}
