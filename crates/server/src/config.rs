//! What every model is told: where to listen and how much it may hold.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::num::NonZeroUsize;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::EchoSession;

/// Settings shared by every model. Each field maps to one `iomodels serve` flag.
///
/// # Examples
///
/// ```
/// use iomodels_server::Config;
///
/// let config = Config::default();
/// assert_eq!(config.addr.to_string(), "127.0.0.1:1688");
/// assert_eq!(config.backlog, 1024);
/// assert_eq!(config.buffer, 64 * 1024);
/// assert_eq!(config.grace.as_secs(), 5);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen (`--addr`); port 0 picks a free port.
    pub addr: SocketAddr,
    /// Length of the kernel's queue of connections not yet accepted.
    pub backlog: u32,
    /// Worker threads or processes, for the models that have them (`--workers`);
    /// `None` lets the model pick its own default.
    pub workers: Option<NonZeroUsize>,
    /// Worker processes of `hybrid`, each running [`workers`](Self::workers)
    /// threads (`--processes`); `None` for its default.
    pub processes: Option<NonZeroUsize>,
    /// Connections served at once (`--max-conns`); a client beyond it is
    /// accepted and closed at once, so it learns right away instead of hanging.
    pub max_conns: usize,
    /// Per-connection buffer in bytes (`--buffer`): the most the server holds
    /// for one client that does not read.
    pub buffer: usize,
    /// How long a stopping server keeps serving the clients it has (`--grace`).
    pub grace: Duration,
    /// Edge-triggered epoll for the epoll models (`--edge`): `epoll`,
    /// `reactors`, `prefork` and `hybrid`; level-triggered when false.
    pub edge: bool,
    /// Green hubs instead of epoll loops in `hybrid`'s threads (`--green`):
    /// processes, threads and coroutines, the course's uWSGI line.
    pub green: bool,
    /// Closes a connection that has neither sent nor taken a byte for this
    /// long (`--idle-timeout`); `None`, the default as in the course, keeps
    /// idle clients for ever, and so does zero (see [`idle_limit`](Self::idle_limit)).
    pub idle_timeout: Option<Duration>,
}

impl Config {
    /// The course's address: 127.0.0.1, port 1688.
    pub const DEFAULT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1688);
    /// `--max-conns` of a [`Config::default`]. `iomodels serve` derives its
    /// default from the descriptor limit instead ([`max_conns_for`](Self::max_conns_for)).
    pub const DEFAULT_MAX_CONNS: usize = 10_000;
    /// Descriptors a server keeps for itself beside its clients' sockets:
    /// stdio, the listener, each loop's epoll, ring and wake-up descriptors,
    /// the signal thread's, and the spare the EMFILE back-off closes to
    /// refuse a client cleanly when descriptors run out.
    pub const FD_RESERVE: u64 = 256;

    /// The clients a process with `fd_limit` descriptors can serve at once:
    /// the limit less [`FD_RESERVE`](Self::FD_RESERVE), at least one.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::Config;
    /// assert_eq!(Config::max_conns_for(20_000), 19_744);
    /// assert_eq!(Config::max_conns_for(100), 1);
    /// ```
    pub fn max_conns_for(fd_limit: u64) -> usize {
        usize::try_from(fd_limit.saturating_sub(Self::FD_RESERVE))
            .unwrap_or(usize::MAX)
            .max(1)
    }

    /// Raises this process's soft descriptor limit to its hard one (as far
    /// as `ulimit -n` may go without privileges) and returns the soft limit
    /// it then has. The children a model starts inherit it.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::Config;
    /// let limit = Config::raise_fd_limit().unwrap();
    /// let (soft, hard) =
    ///     nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    /// assert_eq!((limit, soft), (hard, hard));
    /// ```
    pub fn raise_fd_limit() -> std::io::Result<u64> {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
        if soft >= hard {
            return Ok(soft);
        }
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
        Ok(hard)
    }
    /// Default `--grace`.
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

    /// The worker count: `--workers` if given, else `default`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use iomodels_server::Config;
    ///
    /// let mut config = Config::default();
    /// assert_eq!(config.workers_or(6), 6);
    /// config.workers = NonZeroUsize::new(3);
    /// assert_eq!(config.workers_or(6), 3);
    /// ```
    pub fn workers_or(&self, default: usize) -> usize {
        self.workers.map_or(default, NonZeroUsize::get)
    }

    /// The idle timeout the models apply: [`idle_timeout`](Self::idle_timeout),
    /// with zero taken as none (no connection can be idle for no time at
    /// all; the command line refuses 0).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use iomodels_server::Config;
    ///
    /// let mut config = Config { idle_timeout: Some(Duration::ZERO), ..Config::default() };
    /// assert_eq!(config.idle_limit(), None);
    /// config.idle_timeout = Some(Duration::from_secs(30));
    /// assert_eq!(config.idle_limit(), Some(Duration::from_secs(30)));
    /// ```
    pub fn idle_limit(&self) -> Option<Duration> {
        self.idle_timeout.filter(|t| !t.is_zero())
    }

    /// Binds the listening socket all models accept from: `SO_REUSEADDR` (so a
    /// restarted server need not wait out `TIME_WAIT`), then `listen` with
    /// [`backlog`](Self::backlog). std's `TcpListener::bind` picks its own
    /// backlog, hence socket2.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::Config;
    ///
    /// let config = Config { addr: "127.0.0.1:0".parse().unwrap(), ..Config::default() };
    /// let listener = config.listen().unwrap();
    /// assert_ne!(listener.local_addr().unwrap().port(), 0);
    /// ```
    pub fn listen(&self) -> std::io::Result<TcpListener> {
        self.bind(self.addr, false)
    }

    /// Binds a listener on `addr` like [`listen`](Self::listen), with
    /// `SO_REUSEPORT` if `reuse_port`: then every listener bound so on the
    /// same address gets its own queue, and the kernel spreads new clients
    /// over them by a hash of their address (how `reactors` gives each thread
    /// its own listener).
    pub(crate) fn bind(&self, addr: SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        if reuse_port {
            socket.set_reuse_port(true)?;
        }
        socket.bind(&addr.into())?;
        // The kernel caps this at net.core.somaxconn.
        socket.listen(i32::try_from(self.backlog).unwrap_or(i32::MAX))?;
        Ok(socket.into())
    }

    /// `listener` and `n - 1` more bound on its address with `SO_REUSEPORT`:
    /// one accept queue each, for the models that run a loop per listener
    /// (`reactors`, `prefork`, `hybrid`).
    ///
    /// # Errors
    ///
    /// If one cannot be bound (most often: `listener` was made without
    /// `SO_REUSEPORT`, which [`Model::listen`](crate::Model::listen) sets
    /// for those models).
    pub(crate) fn bind_beside(
        &self,
        listener: TcpListener,
        n: usize,
    ) -> std::io::Result<Vec<TcpListener>> {
        let addr = listener.local_addr()?;
        let mut listeners = vec![listener];
        for _ in 1..n {
            let more = self.bind(addr, true).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "cannot bind another listener on {addr} ({e}); a loop per listener \
                         needs one made with SO_REUSEPORT, as Model::listen makes"
                    ),
                )
            })?;
            listeners.push(more);
        }
        Ok(listeners)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: Self::DEFAULT_ADDR,
            backlog: 1024,
            workers: None,
            processes: None,
            max_conns: Self::DEFAULT_MAX_CONNS,
            buffer: EchoSession::DEFAULT_CAPACITY,
            grace: Self::DEFAULT_GRACE,
            edge: false,
            green: false,
            idle_timeout: None,
        }
    }
}

/// The number of CPUs this process may run on (at least 1).
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}
