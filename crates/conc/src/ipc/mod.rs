//! Python's multiprocessing IPC for Rust: pipes, shared-memory queues and values, cross-process locks, a shared file, a manager.
//!
//! | Python | conc | over |
//! |---|---|---|
//! | `Pipe(duplex)` | [`Pipe`], [`Connection`] | a shared-memory ring per direction, and a Unix socket pair for descriptors, large messages and a peer that is gone |
//! | `Queue`, `JoinableQueue`, `SimpleQueue` | [`Queue`], [`JoinableQueue`], [`SimpleQueue`] | a ring of postcard records in a memfd, a robust lock for the producers and one for the consumers, futex waits |
//! | `Lock`, `RLock` | [`Lock`], [`RLock`] | a robust process-shared pthread mutex in a memfd; a dead holder is reported ([`AcquireError::OwnerDied`]) |
//! | `Semaphore`, `BoundedSemaphore`, `Event`, `Barrier` | [`Semaphore`], [`BoundedSemaphore`], [`Event`], [`Barrier`] | a count or flag behind that mutex, a condvar |
//! | `Condition` | [`Condition<T>`] | that mutex owning plain data `T`, a condvar |
//! | `Value`, `Array` | [`Value<T>`], [`Array<T>`] | plain (`bytemuck::Pod`) data after that mutex |
//! | a file under `fcntl.flock` | [`SharedFile`] | std's `File::lock`, advisory |
//! | `Manager()` and its `dict`, `list`, `Namespace`, `Queue`, `Lock` | [`Manager`], [`DictProxy`], [`ListProxy`], [`NamespaceProxy`], [`QueueProxy`], [`LockProxy`] | a server process, a Unix socket per client thread |
//!
//! Every object here can be passed to a child process as (part of) its
//! arguments: its descriptor travels beside the encoded value (see
//! `wire.rs`). What is built on which crate, and what is written by hand
//! and why, is said in each type's module.

pub(crate) mod manager;
mod pipe;
mod queue;
mod sync;
mod value;
pub(crate) mod wire;

pub use manager::{DictProxy, ListProxy, LockProxy, Manager, NamespaceProxy, QueueProxy};
pub use pipe::{Connection, Pipe};
pub use queue::{DEFAULT_CAPACITY, JoinableQueue, Queue, SimpleQueue};
pub use sync::{
    AcquireError, Barrier, BoundedSemaphore, Condition, ConditionGuard, Event, Lock, LockGuard,
    OwnerDied, Permit, RLock, RLockGuard, Semaphore, SharedFile, SharedFileGuard,
};
pub use value::{Array, ArrayGuard, Value, ValueGuard};

use std::io;

/// Why a value did not go from one process to another.
///
/// # Examples
///
/// ```
/// use conc::ipc::{Error, Pipe};
///
/// let (a, b) = Pipe(true).unwrap();
/// drop(b);
/// assert!(matches!(a.recv::<u32>(), Err(Error::Closed)));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The value could not be encoded (serde refused it, or it holds a
    /// descriptor where none can go).
    #[error("the value could not be encoded: {0}")]
    Encode(String),
    /// The bytes received are not a value of the type asked for.
    #[error("the message could not be decoded: {0}")]
    Decode(String),
    /// The other end is closed (Python's `EOFError` on receive,
    /// `BrokenPipeError` on send).
    #[error("the other end is closed")]
    Closed,
    /// The wait ran out.
    #[error("timed out")]
    Timeout,
    /// A queue had no room and the call was not to wait (Python's `queue.Full`).
    #[error("the queue is full")]
    Full,
    /// A queue had no item and the call was not to wait (Python's `queue.Empty`).
    #[error("the queue is empty")]
    Empty,
    /// The operating system refused.
    #[error(transparent)]
    Io(#[from] io::Error),
}
