//! An accurate load generator for echo servers, and the benchmark matrix behind `iomodels bench`.
//!
//! - [`engine`]: many connections per thread on mio event loops; closed
//!   loop or open loop; every reply byte checked; only what completes inside
//!   the timed window counts.
//! - [`Target`]: a model the bench starts, an external peer, or a running
//!   server.
//! - [`measure`]: one run, with the server's CPU, memory, threads and
//!   processes read from `/proc` ([`procfs`]).
//! - [`matrix`]: every target x connections x size, with reports and charts.
//!
//! Written on mio rather than tokio so the client's own cost per request is
//! small and visible: a read, a `memcmp` and a write per request, no task
//! scheduling in between.

pub mod engine;
pub mod matrix;
pub mod procfs;
mod report;
mod stream;
mod target;

pub use engine::{Errors, Workload};
pub use report::{Latency, Report, ServerFigures, measure};
pub use target::{Server, Target};

use std::net::SocketAddr;

/// Why a run could not be made (errors *of the server* are counted in the
/// [`Report`], not raised).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A target did not start or did not listen.
    #[error("{0} did not start: {1}")]
    Start(String, String),
    /// Not a single connection could be opened.
    #[error("could not open any of {attempts} connections to {addr}")]
    NoConnection {
        /// Where to.
        addr: SocketAddr,
        /// How many were tried.
        attempts: usize,
    },
    /// Too few descriptors for the connections asked for.
    #[error(
        "{conns} connections need about {needed} descriptors, but the hard limit is {hard}: \
         raise it (ulimit -Hn, or LimitNOFILE) or ask for fewer connections"
    )]
    FdLimit {
        /// Connections asked for.
        conns: usize,
        /// Descriptors needed.
        needed: u64,
        /// The hard limit.
        hard: u64,
    },
    /// Too few ephemeral ports, and no other source address to use.
    #[error(
        "{conns} connections need more ephemeral ports than the {ports} available to a non-loopback target"
    )]
    PortsShort {
        /// Connections asked for.
        conns: usize,
        /// Ports usable.
        ports: usize,
    },
    /// A silent connection could not be opened.
    #[error("cannot open the silent connections: {0}")]
    Silent(std::io::Error),
    /// A client thread could not start.
    #[error("cannot start a load thread: {0}")]
    Thread(std::io::Error),
    /// Anything else from the system.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Raises the soft descriptor limit to the hard one, and checks that it
/// covers `conns` connections (plus room for everything else). A server the
/// bench starts inherits the raised limit.
///
/// # Errors
///
/// [`Error::FdLimit`] up front, instead of failing half-way through opening.
///
/// # Examples
///
/// ```
/// let limit = iomodels_loadgen::raise_fd_limit(100).unwrap();
/// assert!(limit >= 100);
/// ```
pub fn raise_fd_limit(conns: usize) -> Result<u64, Error> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let needed = conns as u64 + 256;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(std::io::Error::from)?;
    if hard < needed {
        return Err(Error::FdLimit {
            conns,
            needed,
            hard,
        });
    }
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(std::io::Error::from)?;
    }
    Ok(hard)
}
