//! `Lock` and `RLock` between processes: a robust pthread mutex in shared memory, error-checking or recursive, whose next acquirer hears of a holder's death.
//!
//! A [`Lock`] is Python's `multiprocessing.Lock` with two changes that a
//! Rust reader will expect. Its `acquire` returns a guard, released when
//! dropped (Python's `with lock:`), and the guard stays on its thread: the
//! mutex is a pthread mutex, which the thread that took it must release.
//! Python's `Lock` is a semaphore of one, which any process may release;
//! a [`BoundedSemaphore`](super::BoundedSemaphore) of 1 is that here. And
//! the lock is *robust*: a process killed holding it does not leave it
//! taken for ever; the next acquirer gets
//! [`AcquireError::OwnerDied`] with the guard inside (see the module above
//! for why that is an error and not silence).
//!
//! An [`RLock`] may be taken again by the thread that holds it, and is
//! free once every guard of that thread is dropped. Its depth lives in the
//! shared state beside the mutex (glibc counts it too, but privately), so
//! that [`RLock::locked`] and [`RLock::is_owned`] can tell "free" from
//! "mine". Neither guard gives access to data: a lock that owns data
//! across processes is a `Value`, an `Array` or a [`Condition`](super::Condition).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{AcquireError, LockCore, LockState, Wait};
use crate::ipc::Error;
use crate::sys::ShmGuard;

/// A lock that processes (and threads) take in turn; a holder's death
/// frees it and is reported to the next acquirer.
///
/// # Examples
///
/// ```
/// use conc::ipc::Lock;
///
/// let lock = Lock::new().unwrap();
/// let other = lock.clone(); // the same lock, as a child process would get it
/// let held = lock.acquire().unwrap();
/// std::thread::spawn(move || assert!(other.try_acquire().is_err(), "held"))
///     .join()
///     .unwrap();
/// drop(held); // Python's `lock.release()`
/// assert!(!lock.locked());
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Lock {
    core: LockCore,
}

/// Proof that this thread holds a [`Lock`]; dropping it releases the lock.
///
/// # Examples
///
/// ```
/// let lock = conc::ipc::Lock::new().unwrap();
/// let guard = lock.acquire().unwrap();
/// assert!(lock.locked());
/// drop(guard);
/// assert!(!lock.locked());
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    _held: ShmGuard<'a, LockState>,
}

/// The result of taking a [`Lock`].
type Taken<'a> = Result<LockGuard<'a>, AcquireError<LockGuard<'a>>>;

impl Lock {
    /// A new, unlocked lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = conc::ipc::Lock::new().unwrap();
    /// assert!(!lock.locked());
    /// ```
    pub fn new() -> Result<Self, Error> {
        Ok(Self {
            core: LockCore::new_lock(0, false)?,
        })
    }

    /// The lock of a `Value` or `Array`, as a plain `Lock`.
    pub(crate) fn from_core(core: LockCore) -> Self {
        Self { core }
    }

    fn take(&self, wait: Wait) -> Taken<'_> {
        let wrap = |held| LockGuard { _held: held };
        self.core.take(wait).map(wrap).map_err(|e| e.map(wrap))
    }

    /// Takes the lock, waiting as long as another thread or process holds
    /// it (Python's `lock.acquire()`). `Err(OwnerDied)` holds the guard
    /// when the last holder died holding it; `Err(Deadlock)` says at once
    /// that this thread already holds it.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc::ipc::{AcquireError, Lock};
    ///
    /// let lock = Lock::new().unwrap();
    /// let guard = lock.acquire().unwrap();
    /// assert!(matches!(lock.acquire(), Err(AcquireError::Deadlock)), "an error, not a hang");
    /// drop(guard);
    /// assert!(lock.acquire().is_ok());
    /// ```
    pub fn acquire(&self) -> Taken<'_> {
        self.take(Wait::Forever)
    }

    /// As [`acquire`](Self::acquire), waiting at most `timeout`:
    /// `Err(Timeout)` if the lock was held throughout (Python's
    /// `lock.acquire(timeout=t)` returning `False`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc::ipc::{AcquireError, Lock};
    ///
    /// let lock = Lock::new().unwrap();
    /// let other = lock.clone();
    /// let held = lock.acquire().unwrap();
    /// let waited = std::thread::spawn(move || {
    ///     matches!(other.acquire_timeout(Duration::from_millis(10)), Err(AcquireError::Timeout))
    /// });
    /// assert!(waited.join().unwrap());
    /// drop(held);
    /// assert!(lock.acquire_timeout(Duration::from_millis(10)).is_ok());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Taken<'_> {
        self.take(Wait::Until(crate::shim::deadline(timeout)))
    }

    /// Takes the lock if it is free now (Python's
    /// `lock.acquire(block=False)`); `Err(Timeout)` if another thread or
    /// process holds it, `Err(Deadlock)` if this thread does.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc::ipc::{AcquireError, Lock};
    ///
    /// let lock = Lock::new().unwrap();
    /// let other = lock.clone();
    /// let first = lock.try_acquire().unwrap();
    /// assert!(matches!(lock.try_acquire(), Err(AcquireError::Deadlock)));
    /// let theirs = std::thread::spawn(move || matches!(other.try_acquire(), Err(AcquireError::Timeout)));
    /// assert!(theirs.join().unwrap());
    /// drop(first);
    /// ```
    pub fn try_acquire(&self) -> Taken<'_> {
        self.take(Wait::No)
    }

    /// Whether some thread or process holds the lock now (Python's
    /// `lock.locked()`); a hint, which may change as soon as it returns.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = conc::ipc::Lock::new().unwrap();
    /// assert!(!lock.locked());
    /// let _held = lock.acquire().unwrap();
    /// assert!(lock.locked());
    /// ```
    pub fn locked(&self) -> bool {
        // An error-checking mutex refuses its own holder's try too
        // (EDEADLK), so `None` is "held" whoever holds it.
        self.core.peek().is_none()
    }
}

impl LockGuard<'_> {
    /// Releases the lock (Python's `lock.release()`); the same as
    /// dropping the guard.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = conc::ipc::Lock::new().unwrap();
    /// lock.acquire().unwrap().release();
    /// assert!(!lock.locked());
    /// ```
    pub fn release(self) {
        drop(self);
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked())
            .finish()
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockGuard")
    }
}

/// A lock the thread holding it may take again; free once that thread has
/// dropped every guard. Robust as [`Lock`] is.
///
/// # Examples
///
/// ```
/// use conc::ipc::RLock;
///
/// let lock = RLock::new().unwrap();
/// let withdraw = |lock: &RLock| drop(lock.acquire().unwrap());
/// let outer = lock.acquire().unwrap(); // held across both withdrawals
/// withdraw(&lock); // takes it again: fine for an RLock
/// withdraw(&lock);
/// assert!(lock.is_owned());
/// drop(outer);
/// assert!(!lock.locked());
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RLock {
    core: LockCore,
}

/// One level of this thread's hold on an [`RLock`]; dropping it gives
/// that level back.
///
/// # Examples
///
/// ```
/// let lock = conc::ipc::RLock::new().unwrap();
/// let a = lock.acquire().unwrap();
/// let b = lock.acquire().unwrap(); // the same thread: no wait
/// drop(a);
/// assert!(lock.is_owned(), "b still holds it");
/// drop(b);
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    held: ShmGuard<'a, LockState>,
}

/// The result of taking an [`RLock`].
type RTaken<'a> = Result<RLockGuard<'a>, AcquireError<RLockGuard<'a>>>;

impl RLock {
    /// A new, unlocked re-entrant lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = conc::ipc::RLock::new().unwrap();
    /// assert!(!lock.locked());
    /// ```
    pub fn new() -> Result<Self, Error> {
        Ok(Self {
            core: LockCore::new_lock(0, true)?,
        })
    }

    fn take(&self, wait: Wait) -> RTaken<'_> {
        fn wrap(mut held: ShmGuard<'_, LockState>) -> RLockGuard<'_> {
            held.state().depth += 1;
            RLockGuard { held }
        }
        self.core.take(wait).map(wrap).map_err(|e| e.map(wrap))
    }

    /// Takes the lock, waiting while another thread or process holds it;
    /// at once if this thread does (Python's `rlock.acquire()`).
    /// `Err(OwnerDied)` holds the guard when the last holder died holding it.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = conc::ipc::RLock::new().unwrap();
    /// let _a = lock.acquire().unwrap();
    /// let _b = lock.acquire().unwrap();
    /// assert!(lock.is_owned());
    /// ```
    pub fn acquire(&self) -> RTaken<'_> {
        self.take(Wait::Forever)
    }

    /// As [`acquire`](Self::acquire), waiting at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let lock = conc::ipc::RLock::new().unwrap();
    /// let other = lock.clone();
    /// let _held = lock.acquire().unwrap();
    /// assert!(lock.acquire_timeout(Duration::from_millis(5)).is_ok(), "ours already");
    /// let theirs = std::thread::spawn(move || other.acquire_timeout(Duration::from_millis(5)).is_err());
    /// assert!(theirs.join().unwrap());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> RTaken<'_> {
        self.take(Wait::Until(crate::shim::deadline(timeout)))
    }

    /// Takes the lock if it is free or already this thread's, without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = conc::ipc::RLock::new().unwrap();
    /// let other = lock.clone();
    /// let _held = lock.try_acquire().unwrap();
    /// assert!(lock.try_acquire().is_ok(), "re-entrant");
    /// assert!(std::thread::spawn(move || other.try_acquire().is_err()).join().unwrap());
    /// ```
    pub fn try_acquire(&self) -> RTaken<'_> {
        self.take(Wait::No)
    }

    /// Whether some thread or process (this one included) holds the lock now.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = conc::ipc::RLock::new().unwrap();
    /// assert!(!lock.locked());
    /// let _held = lock.acquire().unwrap();
    /// assert!(lock.locked());
    /// ```
    pub fn locked(&self) -> bool {
        // A try by the owner succeeds: its depth says it was held.
        self.core.peek().is_none_or(|depth| depth > 0)
    }

    /// Whether this thread holds the lock (CPython's `RLock._is_owned()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = conc::ipc::RLock::new().unwrap();
    /// let other = lock.clone();
    /// let _held = lock.acquire().unwrap();
    /// assert!(lock.is_owned());
    /// assert!(!std::thread::spawn(move || other.is_owned()).join().unwrap());
    /// ```
    pub fn is_owned(&self) -> bool {
        self.core.peek().is_some_and(|depth| depth > 0)
    }
}

impl RLockGuard<'_> {
    /// Gives back one level (Python's `rlock.release()`); the same as
    /// dropping the guard.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = conc::ipc::RLock::new().unwrap();
    /// let outer = lock.acquire().unwrap();
    /// lock.acquire().unwrap().release();
    /// assert!(lock.locked(), "the outer guard still holds it");
    /// outer.release();
    /// assert!(!lock.locked());
    /// ```
    pub fn release(self) {
        drop(self);
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        // Still held here: the field's own drop unlocks after this.
        let state = self.held.state();
        state.depth = state.depth.saturating_sub(1);
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("locked", &self.locked())
            .finish()
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RLockGuard")
    }
}
