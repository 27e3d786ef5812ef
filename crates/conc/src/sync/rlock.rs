//! `RLock<T>`: Python's `threading.RLock`, a lock its owning thread may take again.
//!
//! Built on `parking_lot::ReentrantMutex`, which counts how many times the
//! owning thread has taken it and frees it when the count drops to zero, as
//! CPython's `RLock` does. The guard gives `&T`, never `&mut T`: the point
//! of a re-entrant lock is that one thread may hold two guards at once (a
//! method that takes the lock calls another that takes it again), and two
//! live `&mut T` to the same value would alias. Put a `Cell` or `RefCell`
//! inside for the parts you mutate; the lock makes that `RefCell` safe to
//! share, since only one thread at a time can reach it.
//!
//! The deadlock detector does not follow `RLock`s: it tracks [`Lock`] only.
//!
//! [`Lock`]: super::Lock

use std::fmt;
use std::ops::Deref;
use std::time::Duration;

/// A re-entrant lock owning a value: the thread that holds it may acquire
/// it again without blocking; other threads wait until every guard of the
/// owner is dropped.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use conc::sync::RLock;
///
/// let balance = RLock::new(Cell::new(100));
/// let withdraw = |amount| {
///     let guard = balance.acquire();
///     guard.set(guard.get() - amount);
/// };
/// let transfer = || {
///     let _outer = balance.acquire(); // held across both withdrawals
///     withdraw(10); // takes the lock again: fine for an RLock
///     withdraw(20);
/// };
/// transfer();
/// assert_eq!(balance.acquire().get(), 70);
/// ```
pub struct RLock<T = ()> {
    inner: parking_lot::ReentrantMutex<T>,
}

/// Proof that the current thread holds an [`RLock`]: derefs to `&T` and
/// releases one level of ownership when dropped.
///
/// # Examples
///
/// ```
/// let lock = conc::sync::RLock::new(5);
/// let a = lock.acquire();
/// let b = lock.acquire(); // same thread: no wait
/// assert_eq!(*a + *b, 10);
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RLockGuard<'a, T> {
    guard: parking_lot::ReentrantMutexGuard<'a, T>,
}

impl<T> RLock<T> {
    /// Creates an unlocked re-entrant lock holding `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = conc::sync::RLock::new("data");
    /// assert_eq!(*lock.acquire(), "data");
    /// ```
    pub fn new(value: T) -> Self {
        Self {
            inner: parking_lot::ReentrantMutex::new(value),
        }
    }

    /// Takes the lock, waiting while another thread holds it; returns at
    /// once if this thread already does (Python's `rlock.acquire()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = conc::sync::RLock::new(());
    /// let _a = lock.acquire();
    /// let _b = lock.acquire();
    /// assert!(lock.is_owned());
    /// ```
    pub fn acquire(&self) -> RLockGuard<'_, T> {
        RLockGuard {
            guard: self.inner.lock(),
        }
    }

    /// Takes the lock if it is free, or ours, within `timeout`; `None` if
    /// another thread held it throughout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let lock = conc::sync::RLock::new(());
    /// let _held = lock.acquire();
    /// assert!(lock.acquire_timeout(Duration::from_millis(5)).is_some(), "ours already");
    /// std::thread::scope(|s| {
    ///     let other = s.spawn(|| lock.acquire_timeout(Duration::from_millis(5)).is_none());
    ///     assert!(other.join().unwrap());
    /// });
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<RLockGuard<'_, T>> {
        self.inner
            .try_lock_for(timeout)
            .map(|guard| RLockGuard { guard })
    }

    /// Takes the lock if it is free or already ours, without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = conc::sync::RLock::new(());
    /// let held = lock.try_acquire().expect("free");
    /// assert!(lock.try_acquire().is_some(), "re-entrant");
    /// std::thread::scope(|s| {
    ///     assert!(s.spawn(|| lock.try_acquire().is_none()).join().unwrap());
    /// });
    /// drop(held);
    /// ```
    pub fn try_acquire(&self) -> Option<RLockGuard<'_, T>> {
        self.inner.try_lock().map(|guard| RLockGuard { guard })
    }

    /// Whether some thread (this one included) holds the lock right now.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = conc::sync::RLock::new(());
    /// assert!(!lock.locked());
    /// let _g = lock.acquire();
    /// assert!(lock.locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.inner.is_locked()
    }

    /// Whether the current thread holds the lock (CPython's private
    /// `RLock._is_owned()`, which `Condition` relies on).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = conc::sync::RLock::new(());
    /// let _g = lock.acquire();
    /// assert!(lock.is_owned());
    /// std::thread::scope(|s| assert!(!s.spawn(|| lock.is_owned()).join().unwrap()));
    /// ```
    pub fn is_owned(&self) -> bool {
        self.inner.is_owned_by_current_thread()
    }

    /// A mutable reference to the data, without locking: `&mut self` proves
    /// nobody holds a guard.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut lock = conc::sync::RLock::new(1);
    /// *lock.get_mut() += 1;
    /// assert_eq!(*lock.acquire(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }

    /// Consumes the lock and returns the data.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(conc::sync::RLock::new(7).into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T> RLockGuard<'_, T> {
    /// Releases one level of ownership (Python's `rlock.release()`); the
    /// lock is free once every guard of the owning thread is released.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = conc::sync::RLock::new(());
    /// let outer = lock.acquire();
    /// lock.acquire().release();
    /// assert!(lock.locked(), "the outer guard still holds it");
    /// outer.release();
    /// assert!(!lock.locked());
    /// ```
    pub fn release(self) {
        drop(self);
    }
}

impl<T> Deref for RLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T: Default> Default for RLock<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: fmt::Debug> fmt::Debug for RLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // try_lock succeeds for the owner too, so this never blocks.
        match self.inner.try_lock() {
            Some(data) => f.debug_struct("RLock").field("data", &&*data).finish(),
            None => f
                .debug_struct("RLock")
                .field("data", &format_args!("<locked>"))
                .finish(),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for RLockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
