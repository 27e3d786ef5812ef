//! Python's `multiprocessing.Manager()`: a server process holding shared dicts, lists, namespaces, queues and locks, and the proxies other processes use them through.
//!
//! | Python | conc |
//! |---|---|
//! | `manager = Manager()`, `with Manager() as manager:` | [`Manager::new`], dropped at the end of its scope |
//! | `manager.dict()`, `manager.list()`, `manager.Namespace()` | [`Manager::dict`], [`Manager::list`], [`Manager::namespace`] |
//! | `manager.Queue()`, `manager.Lock()` | [`Manager::queue`], [`Manager::lock`] |
//! | `d[k]`, `d[k] = v`, `del d[k]`, `k in d`, `len(d)` | [`DictProxy::get`], [`set`](DictProxy::set), [`remove`](DictProxy::remove), [`contains_key`](DictProxy::contains_key), [`len`](DictProxy::len) |
//! | `ns.x`, `ns.x = v` | [`NamespaceProxy::get`], [`NamespaceProxy::set`] |
//! | `manager.shutdown()` | [`Manager::shutdown`] |
//!
//! **The idea.** One process (the server) owns the objects; every other
//! process holds proxies, which name an object (the server's socket
//! address and the object's number) and turn each method call into a
//! request and a reply over a Unix socket. A proxy is plain data, so it
//! goes to a child as (part of) its arguments, and the child's calls reach
//! the same object. The server keeps values as their postcard bytes and
//! never needs their types; the proxy's type parameters decode them.
//!
//! **Its cost.** A round trip to another process per operation (about
//! 20 µs for a `DictProxy::get` in a loop, release build, on the 2-core
//! machine this was written on: the same as a `Pipe` round trip between
//! two threads), where the shared-memory `Value` or `Queue` costs a lock
//! in shared memory: pick a manager for objects of any serde type shared
//! by many processes (a dict of results, a list of logs), not for a hot
//! counter. And each
//! operation is atomic alone, not with the next: `d[k] += 1` is a `get`
//! and a `set`, which two processes can interleave, so the course takes a
//! manager [`LockProxy`] around them:
//!
//! ```standalone_crate
//! use conc::ipc::{DictProxy, LockProxy, Manager};
//! use conc::process::{Entry, Process, Registered, entry_point};
//!
//! static COUNT_DOWN: Entry<(DictProxy<String, i64>, LockProxy)> =
//!     Entry::new("count_down", |(dic, lock)| {
//!         for _ in 0..10 {
//!             lock.acquire().unwrap();
//!             let count = dic.get("count").unwrap().unwrap();
//!             dic.set("count", count - 1).unwrap(); // dic['count'] -= 1
//!             lock.release().unwrap();
//!         }
//!     });
//!
//! static TABLE: &[&dyn Registered] = &[&COUNT_DOWN];
//!
//! fn main() {
//!     entry_point(TABLE);
//!     let manager = Manager::new().unwrap();
//!     let dic = manager.dict().unwrap();
//!     let lock = manager.lock().unwrap();
//!     dic.set("count", 20).unwrap();
//!     let mut workers: Vec<_> = (0..2)
//!         .map(|_| Process::new(&COUNT_DOWN, (dic.clone(), lock.clone())))
//!         .collect();
//!     for w in &mut workers {
//!         w.start().unwrap();
//!     }
//!     for w in &workers {
//!         assert_eq!(w.join(), 0);
//!     }
//!     assert_eq!(dic.get("count").unwrap(), Some(0));
//! }
//! ```
//!
//! **How it fails.** Errors are [`Error`](crate::ipc::Error)s, never a
//! panic or a hang: a call to a server that has exited is `Closed`; a
//! value read as another type than it was stored as is `Decode` when its
//! bytes show it (postcard is not self-describing: a `String` read as a
//! `u64` leaves bytes over and is caught; a `u32` read as an `i32` is a
//! wrong number, not an error).
//! A client process that dies holding a manager lock does not leave it
//! locked: the server knows which connection holds it and releases it when
//! that connection closes. The server exits when its [`Manager`] is
//! dropped (it is told to, then joined), and when the owner's process
//! exits in any way, even `kill -9`: it reads the end of its boot socket,
//! and it is a daemon child, so the kernel kills it with its parent
//! (`PR_SET_PDEATHSIG`). That signal comes when the *thread* that started
//! the server exits, so make a manager on a thread that outlives it (the
//! main thread, normally). Objects live until the server exits: Python
//! counts each object's proxies across processes and frees it with the
//! last, which is left out here (see `server.rs`).
//!
//! The parts: `protocol.rs` (the messages), `server.rs` (the server
//! process), `client.rs` (a proxy's connections), and a file per proxy.
//! Written by hand on std's Unix sockets and `wire.rs`'s frames: no
//! maintained crate offers Python's manager, and the protocol is small.

/// The traits every proxy has, the same way: `Clone` (the clone names the
/// same object), `Debug` (its address and id), and `Serialize` and
/// `Deserialize` as its handle and kind (see `client.rs`), with no bounds
/// on its type parameters.
macro_rules! proxy_traits {
    ($name:ident $(<$($t:ident),*>)?, $kind:expr) => {
        impl$(<$($t),*>)? Clone for $name$(<$($t),*>)? {
            fn clone(&self) -> Self {
                Self::from_handle(self.handle.clone())
            }
        }

        impl$(<$($t),*>)? std::fmt::Debug for $name$(<$($t),*>)? {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let (address, id) = self.handle.parts();
                f.debug_struct(stringify!($name))
                    .field("address", &address)
                    .field("id", &id)
                    .finish()
            }
        }

        impl$(<$($t),*>)? serde::Serialize for $name$(<$($t),*>)? {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.handle.serialize($kind, s)
            }
        }

        impl<'de, $($($t),*)?> serde::Deserialize<'de> for $name$(<$($t),*>)? {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                super::client::Handle::deserialize($kind, d).map(Self::from_handle)
            }
        }
    };
}
use proxy_traits;

mod client;
mod dict;
mod list;
mod lock;
mod namespace;
mod protocol;
mod queue;
mod server;

pub use dict::DictProxy;
pub use list::ListProxy;
pub use lock::LockProxy;
pub use namespace::NamespaceProxy;
pub use queue::QueueProxy;
pub(crate) use server::serve;

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;

use self::client::Handle;
use self::protocol::{Control, Kind, Started};
use crate::ipc::Error;
use crate::ipc::wire::{self, FrameReader};
use crate::process::{self, Process, ProcessError};

/// The name of the manager's built-in entry.
pub(crate) const ENTRY: &str = "conc.manager";

/// How long a shut-down server has to exit before it is killed (Python
/// gives it a second too, then terminates it).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// A running manager: its server process, and the socket its proxies
/// connect to (Python's `SyncManager`, started).
///
/// Dropping it shuts the server down; proxies used after that report
/// [`Error::Closed`](crate::ipc::Error::Closed).
///
/// # Examples
///
/// ```standalone_crate
/// conc::process::entry_point(&[]);
/// let manager = conc::ipc::Manager::new().unwrap();
/// let names = manager.list::<String>().unwrap();
/// names.append("ada".to_string()).unwrap();
/// assert_eq!(names.to_vec().unwrap(), ["ada"]);
/// drop(manager);
/// assert!(matches!(names.len(), Err(conc::ipc::Error::Closed)));
/// ```
pub struct Manager {
    /// In a mutex only so that `Manager` is `Sync` (`Process` is not):
    /// threads sharing a manager make objects with `&self`.
    process: Mutex<Process>,
    pid: u32,
    /// The owner's end of the boot socket; `None` once shut down.
    boot: Option<std::os::unix::net::UnixStream>,
    address: Arc<str>,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("pid", &self.pid)
            .field("address", &self.address)
            .finish()
    }
}

impl Manager {
    /// Starts the server process (a daemon child named `SyncManager-N`) and
    /// waits until it listens. The program's `main` must call
    /// [`entry_point`](crate::process::entry_point) first, as for any
    /// spawned process.
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// assert_ne!(manager.pid(), std::process::id());
    /// ```
    pub fn new() -> Result<Self, ProcessError> {
        let args = wire::encode(&()).map_err(ProcessError::Args)?;
        let (process, boot) = process::start_builtin(ENTRY, "SyncManager", args)?;
        let pid = process.pid().unwrap_or_default();
        let mut reader = FrameReader::default();
        let started = reader
            .recv(&boot)
            .and_then(|frame| protocol::decode::<Started>(&frame.bytes));
        let why = match started {
            Ok(Started::Listening(address)) => {
                return Ok(Self {
                    process: Mutex::new(process),
                    pid,
                    boot: Some(boot),
                    address: address.into(),
                });
            }
            Ok(Started::Failed(why)) => format!("the manager could not listen: {why}"),
            Err(e) => format!("the manager's server did not start: {e}"),
        };
        process.kill();
        process.join();
        Err(ProcessError::Io(io::Error::other(why)))
    }

    /// The server's process id.
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let pid = manager.pid();
    /// assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The abstract Unix socket name the server listens on (Python's
    /// `manager.address`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// assert!(manager.address().starts_with("conc-manager."));
    /// ```
    pub fn address(&self) -> &str {
        &self.address
    }

    /// A new shared dict (Python's `manager.dict()`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let ages = manager.dict::<String, u32>().unwrap();
    /// ages.set("ada", 36).unwrap();
    /// assert_eq!(ages.get("ada").unwrap(), Some(36));
    /// ```
    pub fn dict<K, V>(&self) -> Result<DictProxy<K, V>, Error>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        Handle::create(&self.address, Kind::Dict).map(DictProxy::from_handle)
    }

    /// A new shared list (Python's `manager.list()`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let squares = manager.list::<u64>().unwrap();
    /// squares.extend((1..=3).map(|x| x * x)).unwrap();
    /// assert_eq!(squares.to_vec().unwrap(), [1, 4, 9]);
    /// ```
    pub fn list<T: Serialize + DeserializeOwned>(&self) -> Result<ListProxy<T>, Error> {
        Handle::create(&self.address, Kind::List).map(ListProxy::from_handle)
    }

    /// A new namespace: named attributes of any serde type (Python's
    /// `manager.Namespace()`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let ns = manager.namespace().unwrap();
    /// ns.set("x", &1).unwrap();
    /// assert_eq!(ns.get::<i32>("x").unwrap(), Some(1));
    /// ```
    pub fn namespace(&self) -> Result<NamespaceProxy, Error> {
        Handle::create(&self.address, Kind::Namespace).map(NamespaceProxy::from_handle)
    }

    /// A new unbounded queue (Python's `manager.Queue()`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let jobs = manager.queue::<String>().unwrap();
    /// jobs.put("wash".to_string()).unwrap();
    /// assert_eq!(jobs.get().unwrap(), "wash");
    /// ```
    pub fn queue<T: Serialize + DeserializeOwned>(&self) -> Result<QueueProxy<T>, Error> {
        Handle::create(&self.address, Kind::Queue).map(QueueProxy::from_handle)
    }

    /// A new lock (Python's `manager.Lock()`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let lock = manager.lock().unwrap();
    /// lock.acquire().unwrap();
    /// lock.release().unwrap();
    /// ```
    pub fn lock(&self) -> Result<LockProxy, Error> {
        Handle::create(&self.address, Kind::Lock).map(LockProxy::from_handle)
    }

    /// Stops the server and waits for it to exit (Python's `shutdown`);
    /// its exit code: 0 when it exited as told, -9 when it had not within
    /// a second and was killed. Dropping the manager does the same.
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let pid = manager.pid();
    /// assert_eq!(manager.shutdown(), 0);
    /// assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists()); // exited and reaped
    /// ```
    pub fn shutdown(mut self) -> i32 {
        self.stop()
    }

    /// Tells the server to exit, closes the boot socket (which would tell
    /// it too), and joins it; kills it if it has not exited in time.
    fn stop(&mut self) -> i32 {
        let Some(boot) = self.boot.take() else {
            return process::UNKNOWN_EXIT;
        };
        if let Ok(bytes) = protocol::encode(&Control::Shutdown) {
            let _ = wire::send_frame(&boot, &bytes, &[]);
        }
        drop(boot);
        let process = self.process.get_mut();
        process.join_timeout(SHUTDOWN_GRACE).unwrap_or_else(|| {
            process.kill();
            process.join()
        })
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
