//! `Lock<T>`: Python's `threading.Lock`, owning the data it guards, with timeouts and a name.
//!
//! A thin wrapper over `parking_lot::Mutex`, which already has everything
//! Python's `Lock.acquire(blocking, timeout)` needs (`try_lock`,
//! `try_lock_for`). What the wrapper adds is what the course needs on top:
//! a name and a unique id per lock, so that [`crate::deadlock`] can take
//! several locks in one global order and its detector can say *which* locks
//! a cycle of threads is stuck on. With the `deadlock-detector` feature off
//! (the default) the hooks compile away and a `Lock` costs what a
//! `parking_lot::Mutex` costs, plus the id and name fields.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[cfg(feature = "deadlock-detector")]
use crate::deadlock::{Deadlock, detector};

/// Ids start at 1 and only grow, so two live locks never share one: the
/// global order of [`crate::deadlock::acquire_all`] is the order of ids.
/// A plain std atomic (not the loom shim): a static must not be a loom
/// object, and the id is never part of a race worth modelling.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A mutual-exclusion lock that owns the value it protects.
///
/// Python's `with lock:` becomes `let guard = lock.acquire();`: the guard
/// derefs to the value and releases the lock when dropped.
///
/// # Examples
///
/// ```
/// use conc::sync::Lock;
///
/// let counter = Lock::new(0);
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| *counter.acquire() += 1);
///     }
/// });
/// assert_eq!(*counter.acquire(), 4);
/// ```
pub struct Lock<T = ()> {
    id: u64,
    name: Option<Box<str>>,
    inner: parking_lot::Mutex<T>,
}

/// Proof that the current thread holds a [`Lock`]: derefs to the data and
/// releases the lock when dropped.
///
/// # Examples
///
/// ```
/// use conc::sync::Lock;
///
/// let names = Lock::new(Vec::new());
/// let mut guard = names.acquire();
/// guard.push("ada");
/// assert!(names.locked());
/// drop(guard); // Python's `lock.release()`
/// assert!(!names.locked());
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a, T> {
    guard: parking_lot::MutexGuard<'a, T>,
    // The detector must be told of the release: the guard remembers which
    // lock it came from. Without the feature there is nothing to tell.
    #[cfg(feature = "deadlock-detector")]
    id: u64,
}

impl<T> Lock<T> {
    /// Creates an unlocked, unnamed lock holding `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = conc::sync::Lock::new(String::from("data"));
    /// assert_eq!(lock.acquire().as_str(), "data");
    /// ```
    pub fn new(value: T) -> Self {
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name: None,
            inner: parking_lot::Mutex::new(value),
        }
    }

    /// Creates an unlocked lock with a name, which the deadlock detector
    /// uses in its reports (`"fork 1"` reads better than an address).
    ///
    /// # Examples
    ///
    /// ```
    /// let fork = conc::sync::Lock::named("fork 1", ());
    /// assert_eq!(fork.name(), Some("fork 1"));
    /// ```
    pub fn named(name: impl Into<String>, value: T) -> Self {
        Self {
            name: Some(name.into().into_boxed_str()),
            ..Self::new(value)
        }
    }

    /// The lock's name, if it was made with [`Lock::named`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(conc::sync::Lock::new(0).name(), None);
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The order [`crate::deadlock::acquire_all`] takes locks in.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Blocks until the lock is free, then takes it (Python's
    /// `lock.acquire()`).
    ///
    /// With the `deadlock-detector` feature, a thread about to block checks
    /// whether it closes a cycle of waiting threads; if so the cycle is
    /// reported (see [`crate::deadlock`]) and the thread blocks anyway, as
    /// the real program would; `Lock::acquire_checked` returns it instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = conc::sync::Lock::new(1);
    /// *lock.acquire() += 1;
    /// assert_eq!(*lock.acquire(), 2);
    /// ```
    pub fn acquire(&self) -> LockGuard<'_, T> {
        #[cfg(feature = "deadlock-detector")]
        {
            if let Some(guard) = self.try_acquire() {
                return guard;
            }
            if let Some(cycle) = detector::will_wait(self.id, self.name()) {
                crate::deadlock::report(&cycle);
            }
        }
        self.wrap(self.inner.lock())
    }

    /// Takes the lock if it becomes free within `timeout`; `None` if it did
    /// not (Python's `lock.acquire(timeout=...)` returning `False`). This is
    /// the first of the course's cures for deadlock: a thread that cannot
    /// get its second lock gives up its first and tries again later.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let lock = conc::sync::Lock::new(());
    /// let held = lock.acquire();
    /// std::thread::scope(|s| {
    ///     let waiter = s.spawn(|| lock.acquire_timeout(Duration::from_millis(10)).is_none());
    ///     assert!(waiter.join().unwrap(), "the lock was held throughout");
    /// });
    /// drop(held);
    /// assert!(lock.acquire_timeout(Duration::from_millis(10)).is_some());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<LockGuard<'_, T>> {
        #[cfg(feature = "deadlock-detector")]
        let taken = {
            if let Some(guard) = self.try_acquire() {
                return Some(guard);
            }
            if let Some(cycle) = detector::will_wait(self.id, self.name()) {
                crate::deadlock::report(&cycle);
            }
            let taken = self.inner.try_lock_for(timeout);
            if taken.is_none() {
                detector::gave_up();
            }
            taken
        };
        #[cfg(not(feature = "deadlock-detector"))]
        let taken = self.inner.try_lock_for(timeout);
        taken.map(|guard| self.wrap(guard))
    }

    /// Takes the lock if it is free right now, without waiting (Python's
    /// `lock.acquire(blocking=False)`).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = conc::sync::Lock::new(());
    /// let first = lock.try_acquire();
    /// assert!(first.is_some());
    /// assert!(lock.try_acquire().is_none(), "a Lock is not re-entrant");
    /// ```
    pub fn try_acquire(&self) -> Option<LockGuard<'_, T>> {
        self.inner.try_lock().map(|guard| self.wrap(guard))
    }

    /// Whether some thread holds the lock right now (Python's
    /// `lock.locked()`). Only a hint: it may change as soon as it returns.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = conc::sync::Lock::new(());
    /// assert!(!lock.locked());
    /// let _guard = lock.acquire();
    /// assert!(lock.locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.inner.is_locked()
    }

    /// A mutable reference to the data, without locking: `&mut self` proves
    /// no other thread can hold the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut lock = conc::sync::Lock::new(1);
    /// *lock.get_mut() = 2;
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
    /// let lock = conc::sync::Lock::new(vec![1, 2]);
    /// assert_eq!(lock.into_inner(), vec![1, 2]);
    /// ```
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }

    fn wrap<'a>(&'a self, guard: parking_lot::MutexGuard<'a, T>) -> LockGuard<'a, T> {
        #[cfg(feature = "deadlock-detector")]
        detector::acquired(self.id);
        LockGuard {
            guard,
            #[cfg(feature = "deadlock-detector")]
            id: self.id,
        }
    }
}

#[cfg(feature = "deadlock-detector")]
impl<T> Lock<T> {
    /// As [`Lock::acquire`], but a thread that would close a cycle of
    /// waiting threads gets the cycle back instead of blocking for ever.
    /// Only with the `deadlock-detector` feature.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = conc::sync::Lock::named("only", ());
    /// let _held = lock.acquire();
    /// // Waiting for a lock this thread already holds is a cycle of one.
    /// let cycle = lock.acquire_checked().unwrap_err();
    /// assert!(cycle.to_string().contains("'only'"));
    /// ```
    pub fn acquire_checked(&self) -> Result<LockGuard<'_, T>, Deadlock> {
        if let Some(guard) = self.try_acquire() {
            return Ok(guard);
        }
        if let Some(cycle) = detector::will_wait(self.id, self.name()) {
            detector::gave_up();
            return Err(cycle);
        }
        Ok(self.wrap(self.inner.lock()))
    }
}

impl<T> LockGuard<'_, T> {
    /// Releases the lock (Python's `lock.release()`); the same as dropping
    /// the guard, with a name that says so.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = conc::sync::Lock::new(());
    /// let guard = lock.acquire();
    /// guard.release();
    /// assert!(!lock.locked());
    /// ```
    pub fn release(self) {
        drop(self);
    }
}

#[cfg(feature = "deadlock-detector")]
impl<T> Drop for LockGuard<'_, T> {
    fn drop(&mut self) {
        // Told before the mutex itself is released (fields drop after this
        // body), so the graph never shows a free lock as held by a thread
        // that is gone: it may briefly show a held lock as free, which can
        // only hide a cycle for an instant, never invent one.
        detector::released(self.id);
    }
}

impl<T> Deref for LockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for LockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T: Default> Default for Lock<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> From<T> for Lock<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<T: fmt::Debug> fmt::Debug for Lock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Lock");
        if let Some(name) = self.name() {
            d.field("name", &name);
        }
        // Peeking must not block: a held lock shows as `<locked>`.
        match self.inner.try_lock() {
            Some(data) => d.field("data", &&*data),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

impl<T: fmt::Debug> fmt::Debug for LockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
