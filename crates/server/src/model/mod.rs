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
//! 2. **Echo through [`EchoSession`]**, one per connection, and never touch the
//!    bytes itself: read only into [`EchoSession::recv_buf`], write only from
//!    [`EchoSession::pending`].
//! 3. **Respect backpressure**: never read a client whose session does not
//!    [`want to receive`](EchoSession::wants_recv), so one client can make
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

pub mod fork;
pub mod iterative;
pub mod thread;
pub mod thread_pool;

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
}

/// Which of the course's five I/O models a [`Model`] uses to wait for data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Each call waits until its data is there (阻塞IO).
    Blocking,
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
        }
    }
}

impl Model {
    /// Every model, in the order `iomodels models` lists them.
    pub const ALL: [Model; 4] = [Self::Iterative, Self::Thread, Self::ThreadPool, Self::Fork];

    /// What `iomodels serve` runs without `--model`: the best model that
    /// exists. Of the blocking family that is a thread per connection: no
    /// cap but `--max-conns`, and a thread costs far less to start than a
    /// process.
    pub const DEFAULT: Model = Self::Thread;

    /// The model's name on the command line.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::Model;
    ///
    /// let names: Vec<_> = Model::ALL.iter().map(|m| m.name()).collect();
    /// assert_eq!(names, ["iterative", "thread", "thread-pool", "fork"]);
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Self::Iterative => "iterative",
            Self::Thread => "thread",
            Self::ThreadPool => "thread-pool",
            Self::Fork => "fork",
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
            Self::Thread | Self::Fork => None,
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
        }
    }
}

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
