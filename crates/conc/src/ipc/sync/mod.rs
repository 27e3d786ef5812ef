//! Python's `multiprocessing` synchronisation primitives between processes: `Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Event`, `Condition`, `Barrier`, and the shared file.
//!
//! | Python | conc | one shared-memory object holding |
//! |---|---|---|
//! | `Lock` | [`Lock`] | a robust, error-checking pthread mutex |
//! | `RLock` | [`RLock`] | a robust, recursive pthread mutex and its depth |
//! | `Semaphore`, `BoundedSemaphore` | [`Semaphore`], [`BoundedSemaphore`] | a count, a condvar |
//! | `Event` | [`Event`] | a flag and a count of sets, a condvar |
//! | `Condition` | [`Condition<T>`] | its own robust mutex, the data `T`, a condvar |
//! | `Barrier` | [`Barrier`] | CPython's barrier state, a condvar |
//! | a file and `fcntl.flock` | [`SharedFile`] | (a file, under `File::lock`) |
//!
//! Each object but the file is one `Shm` (see `sys/shm.rs`): a memfd
//! mapped shared, with a process-shared mutex, condition variables on the
//! monotonic clock and a plain state. The thread primitives of
//! [`crate::sync`] are a state behind a mutex and condvars too, and these
//! follow them method for method, with one change: the mutex lives in
//! memory every process maps. Cloning an object maps nothing new (an
//! `Arc`); a forked child inherits the mapping; a spawned child gets it as
//! an argument: the object serializes as its memfd, which travels beside
//! the bytes (see `wire.rs`), and the child maps the same pages.
//!
//! **Robust, where a holder can die.** A [`Lock`], [`RLock`] or
//! [`Condition`] guard holds its mutex across the caller's code, so a
//! process can be killed holding it. Python's `multiprocessing.Lock` is a
//! POSIX semaphore, and a holder killed with `kill -9` leaves it taken:
//! every other process waits for ever. Here the mutex is glibc's robust
//! one: the kernel releases it when its holder dies, and the next acquirer
//! gets the lock *and* the news, as [`AcquireError::OwnerDied`] with the
//! guard inside (std's `PoisonError` for a panic is the model): what the
//! lock guards may be half-updated, and only the caller knows how to
//! repair it. Semaphores, events and barriers hold their mutex only inside
//! their own methods, for a few loads and stores, so they carry on. What a
//! dead process held *as a count* is gone with it, as in Python: a permit
//! it took is never given back, a barrier it waited at waits for one party
//! too many. A timeout (or `abort`) is the way out of those.
//!
//! **The same thread acquiring twice is an error, not a hang.** A `Lock`'s
//! mutex is error-checking: a second acquire by its holder returns
//! [`AcquireError::Deadlock`] at once. (Python's hangs.)
//!
//! **Waking.** Waits are on pthread condvars in the shared memory. A waiter
//! killed inside a wait still counts in glibc's condvar groups, and a
//! `pthread_cond_signal` may go to it and wake no one alive; a broadcast
//! cannot be lost that way. So the semaphore, whose waiters re-check the
//! count, wakes them all on a release, and the event and barrier wake
//! everyone as their thread versions do; `Condition::notify(n)` signals `n`
//! times, and `notify_all` is the robust choice.
//!
//! **Written by hand, and why.** The crates that put locks in shared memory
//! (`raw_sync`, `shared_memory`) are dormant, which this workspace avoids;
//! `nix` has no process-shared pthread objects; POSIX semaphores have no
//! owner the kernel could release. So the pthread calls are in `sys/shm.rs`
//! (the only `unsafe`), and these types are the thread versions' logic on
//! it.
//!
//! # Examples
//!
//! The course's ticket race between real processes, under a `Lock`:
//!
//! ```standalone_crate
//! use conc::ipc::{Lock, Value};
//! use conc::process::{Entry, Process, Registered, entry_point};
//!
//! static BUY: Entry<(Lock, Value<u32>)> = Entry::new("buy", |(lock, tickets)| {
//!     for _ in 0..10 {
//!         let _held = lock.acquire().unwrap(); // read, decrement, write: one step
//!         let left = tickets.get();
//!         tickets.set(left - 1);
//!     }
//! });
//!
//! static TABLE: &[&dyn Registered] = &[&BUY];
//!
//! fn main() {
//!     entry_point(TABLE);
//!     let (lock, tickets) = (Lock::new().unwrap(), Value::new(100u32).unwrap());
//!     let buyers: Vec<Process> = (0..3)
//!         .map(|_| {
//!             let mut p = Process::new(&BUY, (lock.clone(), tickets.clone()));
//!             p.start().unwrap();
//!             p
//!         })
//!         .collect();
//!     for p in &buyers {
//!         assert_eq!(p.join(), 0);
//!     }
//!     assert_eq!(tickets.get(), 70, "no ticket sold twice");
//! }
//! ```

mod barrier;
mod condition;
mod event;
mod file;
mod lock;
mod semaphore;

pub use barrier::Barrier;
pub use condition::{Condition, ConditionGuard};
pub use event::Event;
pub use file::{SharedFile, SharedFileGuard};
pub use lock::{Lock, LockGuard, RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, Permit, Semaphore};

use std::fmt;
use std::fs::File;
use std::sync::Arc;
use std::time::Instant;

use bytemuck::{Pod, Zeroable};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Error;
use super::wire;
use crate::sys::{LockFail, Shm, ShmGuard};

/// A holder of the lock died holding it: the lock is now the caller's,
/// and this hands its guard back (std's `PoisonError`, for a dead process
/// instead of a panicked thread). What the lock guards may be half-updated.
///
/// # Examples
///
/// ```
/// use conc::ipc::{AcquireError, Lock};
///
/// let lock = Lock::new().unwrap();
/// // No holder died here, so acquire is Ok; after a holder's death the
/// // guard would come back inside the error:
/// let guard = match lock.acquire() {
///     Ok(guard) => guard,
///     Err(AcquireError::OwnerDied(died)) => died.into_inner(), // repair, then go on
///     Err(other) => panic!("{other}"),
/// };
/// drop(guard);
/// ```
pub struct OwnerDied<G> {
    guard: G,
}

impl<G> OwnerDied<G> {
    /// The guard: the lock is held.
    ///
    /// # Examples
    ///
    /// ```
    /// # use conc::ipc::{AcquireError, Lock};
    /// let lock = Lock::new().unwrap();
    /// if let Err(AcquireError::OwnerDied(died)) = lock.acquire() {
    ///     let _guard = died.into_inner();
    /// }
    /// ```
    pub fn into_inner(self) -> G {
        self.guard
    }

    /// The guard, borrowed.
    ///
    /// # Examples
    ///
    /// ```
    /// # use conc::ipc::{AcquireError, Value};
    /// let v = Value::new(1u8).unwrap();
    /// if let Err(AcquireError::OwnerDied(died)) = v.acquire() {
    ///     assert_eq!(**died.get_ref(), 1);
    /// }
    /// ```
    pub fn get_ref(&self) -> &G {
        &self.guard
    }

    /// The guard, borrowed mutably (to repair what it guards).
    ///
    /// # Examples
    ///
    /// ```
    /// # use conc::ipc::{AcquireError, Value};
    /// let v = Value::new(1u8).unwrap();
    /// if let Err(AcquireError::OwnerDied(mut died)) = v.acquire() {
    ///     **died.get_mut() = 0;
    /// }
    /// ```
    pub fn get_mut(&mut self) -> &mut G {
        &mut self.guard
    }
}

impl<G> fmt::Debug for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OwnerDied { .. }")
    }
}

impl<G> fmt::Display for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a holder of the lock died holding it")
    }
}

impl<G> std::error::Error for OwnerDied<G> {}

/// Why an acquire of a [`Lock`], [`RLock`], [`Condition`], `Value` or
/// `Array` did not simply return the guard.
///
/// # Examples
///
/// ```
/// use conc::ipc::{AcquireError, Lock};
///
/// let lock = Lock::new().unwrap();
/// let held = lock.acquire().unwrap();
/// assert!(matches!(lock.acquire(), Err(AcquireError::Deadlock)));
/// drop(held);
/// ```
pub enum AcquireError<G> {
    /// The lock is taken, but its last holder died holding it (see
    /// [`OwnerDied`]); later acquires are `Ok` again.
    OwnerDied(OwnerDied<G>),
    /// This thread already holds this lock, which is not re-entrant: the
    /// wait would never end.
    Deadlock,
    /// Another thread or process held it until the deadline (for a
    /// `try_acquire`: holds it now).
    Timeout,
}

impl<G> AcquireError<G> {
    /// The guard if the lock was taken after all (`OwnerDied`), else the
    /// error: for callers that repair the state or have none to repair.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc::ipc::{AcquireError, Lock};
    ///
    /// let lock = Lock::new().unwrap();
    /// let guard = lock.acquire().or_else(AcquireError::recover).unwrap();
    /// assert!(matches!(lock.try_acquire().or_else(AcquireError::recover), Err(AcquireError::Deadlock)));
    /// drop(guard);
    /// ```
    pub fn recover(self) -> Result<G, Self> {
        match self {
            Self::OwnerDied(died) => Ok(died.into_inner()),
            other => Err(other),
        }
    }

    /// The same error around another guard (for wrappers of a guard).
    pub(crate) fn map<H>(self, f: impl FnOnce(G) -> H) -> AcquireError<H> {
        match self {
            Self::OwnerDied(died) => AcquireError::OwnerDied(OwnerDied {
                guard: f(died.guard),
            }),
            Self::Deadlock => AcquireError::Deadlock,
            Self::Timeout => AcquireError::Timeout,
        }
    }
}

impl<G> From<OwnerDied<G>> for AcquireError<G> {
    fn from(died: OwnerDied<G>) -> Self {
        Self::OwnerDied(died)
    }
}

impl<G> fmt::Debug for AcquireError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OwnerDied(died) => f.debug_tuple("OwnerDied").field(died).finish(),
            Self::Deadlock => f.write_str("Deadlock"),
            Self::Timeout => f.write_str("Timeout"),
        }
    }
}

impl<G> fmt::Display for AcquireError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OwnerDied(died) => fmt::Display::fmt(died, f),
            Self::Deadlock => f.write_str("this thread already holds this lock"),
            Self::Timeout => f.write_str("the lock was held until the deadline"),
        }
    }
}

impl<G> std::error::Error for AcquireError<G> {}

/// One shared-memory object mapped in this process: what every type here
/// (and `Value`, `Array`) holds. Cloning it maps nothing new; serializing
/// it sends its memfd, and the receiver maps the same pages.
pub(crate) struct Shared<S: Pod>(Arc<Shm<S>>);

impl<S: Pod> Clone for Shared<S> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<S: Pod> Shared<S> {
    /// A new object holding `state` and `tail_len` zero bytes.
    pub(crate) fn create(state: S, tail_len: usize, recursive: bool) -> Result<Self, Error> {
        Ok(Self(Arc::new(Shm::create(state, tail_len, recursive)?)))
    }

    pub(crate) fn shm(&self) -> &Shm<S> {
        &self.0
    }

    /// The mutex of an object that holds it only inside its own methods
    /// (semaphore, event, barrier): never across a caller's code, so never
    /// by this thread already, and a dead holder left at most one count
    /// half-updated, which there is no one better placed to repair.
    pub(crate) fn lock_state(&self) -> ShmGuard<'_, S> {
        match self.0.lock(None) {
            Ok(guard) => guard,
            Err(why) => unreachable!("an untimed lock held only inside conc's methods: {why:?}"),
        }
    }
}

impl<S: Pod> Serialize for Shared<S> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        wire::SerFd(self.0.fd()).serialize(serializer)
    }
}

impl<'de, S: Pod> Deserialize<'de> for Shared<S> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fd = wire::DeFd::deserialize(deserializer)?;
        let shm = Shm::open(File::from(fd.0)).map_err(serde::de::Error::custom)?;
        Ok(Self(Arc::new(shm)))
    }
}

/// The state of every object whose guard holds its mutex across the
/// caller's code: `Lock`, `RLock`, `Condition`, `Value`, `Array`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(crate) struct LockState {
    /// 1 when a peek (`locked`, `is_owned`) took the lock from a dead
    /// holder: the peek must not swallow the news, so the next acquire
    /// reports it.
    died: u32,
    /// An `RLock`'s depth: how many guards its owner holds.
    depth: u32,
}

/// How long an acquire may wait.
#[derive(Clone, Copy)]
pub(crate) enum Wait {
    Forever,
    Until(Instant),
    /// Not at all.
    No,
}

/// A `Shared<LockState>` with the acquire every guard-holding type uses.
pub(crate) type LockCore = Shared<LockState>;

impl LockCore {
    /// A new lock with `tail_len` bytes of data after its state.
    pub(crate) fn new_lock(tail_len: usize, recursive: bool) -> Result<Self, Error> {
        Self::create(LockState { died: 0, depth: 0 }, tail_len, recursive)
    }

    /// Takes the mutex; a dead holder, whether this call or an earlier
    /// peek found it, is reported as `OwnerDied`.
    pub(crate) fn take(
        &self,
        wait: Wait,
    ) -> Result<ShmGuard<'_, LockState>, AcquireError<ShmGuard<'_, LockState>>> {
        let taken = match wait {
            Wait::Forever => self.shm().lock(None),
            Wait::Until(deadline) => self.shm().lock(Some(deadline)),
            Wait::No => self.shm().try_lock(),
        };
        match taken {
            Ok(mut guard) => {
                if guard.owner_died() {
                    // The dead owner's depth means nothing to the new one.
                    guard.state().depth = 0;
                }
                let peeked = std::mem::take(&mut guard.state().died) != 0;
                if guard.owner_died() || peeked {
                    Err(AcquireError::OwnerDied(OwnerDied { guard }))
                } else {
                    Ok(guard)
                }
            }
            Err(LockFail::Deadlock) => Err(AcquireError::Deadlock),
            Err(LockFail::Timeout) => Err(AcquireError::Timeout),
        }
    }

    /// Takes the mutex for an access that reports no death (a `Value`'s
    /// `get`), leaving the news of one for the next acquire.
    ///
    /// # Panics
    /// If this thread holds the lock: `what` names the call in the message.
    pub(crate) fn take_quietly(&self, what: &str) -> ShmGuard<'_, LockState> {
        match self.take(Wait::Forever) {
            Ok(guard) => guard,
            Err(AcquireError::OwnerDied(died)) => {
                let mut guard = died.into_inner();
                guard.state().died = 1;
                guard
            }
            Err(_) => panic!(
                "{what} while this thread holds the lock (its guard or get_lock's): \
                 the lock is not re-entrant; read and write through the guard instead"
            ),
        }
    }

    /// If the lock is free or this thread's (recursive), takes it for a
    /// moment and says its depth before; `None` if someone else holds it
    /// (or this thread holds a non-recursive one).
    pub(crate) fn peek(&self) -> Option<u32> {
        Some(self.try_quietly()?.state().depth)
    }

    /// Takes the mutex if it is free now (or this thread's, recursive),
    /// leaving the news of a dead holder for the next acquire (for a peek,
    /// or a `Debug` that shows the data).
    pub(crate) fn try_quietly(&self) -> Option<ShmGuard<'_, LockState>> {
        let mut guard = self.shm().try_lock().ok()?;
        if guard.owner_died() {
            let state = guard.state();
            state.depth = 0;
            state.died = 1;
        }
        Some(guard)
    }
}

/// The condvar every object here waits on (each has one kind of wait).
pub(crate) const CHANGED: usize = 0;

/// Refuses a data type the tail cannot hold: the tail starts 64-byte
/// aligned, and a slice of zero-sized values has no bytes to count by.
pub(crate) fn check_data<T>(slice: bool) -> Result<(), Error> {
    let why = if std::mem::align_of::<T>() > 64 {
        "a shared value's type may be aligned to at most 64 bytes"
    } else if slice && std::mem::size_of::<T>() == 0 {
        "a shared array's element type may not be zero-sized"
    } else {
        return Ok(());
    };
    Err(Error::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        why,
    )))
}

/// Refuses, while deserializing, a lock whose data is not `len` bytes.
pub(crate) fn check_tail<E: serde::de::Error>(core: LockCore, len: usize) -> Result<LockCore, E> {
    if core.shm().tail_len() == len {
        Ok(core)
    } else {
        Err(E::custom(format!(
            "the shared object holds {} bytes of data where {len} were expected",
            core.shm().tail_len()
        )))
    }
}
