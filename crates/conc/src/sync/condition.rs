//! `Condition<T>`: Python's `threading.Condition`, a lock that owns its data plus a way to wait for that data to change.
//!
//! Built on [`crate::shim`]'s `Mutex` and `Condvar` (parking_lot's, or
//! loom's under `--cfg loom`). Written by hand: `notify(n)`, since
//! parking_lot's `Condvar` wakes one or all; here it calls `notify_one` up
//! to `n` times and stops early once one wakes nobody (parking_lot reports
//! that), which is what CPython's `notify(n)` does with its list of
//! waiters.
//!
//! Python requires holding the lock to notify, and raises `RuntimeError`
//! otherwise. Here `notify` is on the [`Condition`] and may be called with
//! or without a guard: the lost wakeup Python guards against comes from
//! changing the state outside the lock, and the state here lives inside the
//! lock, so it cannot be changed without one. Notifying after dropping the
//! guard is correct and saves the woken thread from blocking straight away
//! on the lock the notifier still holds.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use crate::shim::{Condvar, Mutex, MutexGuard};

/// Data behind a lock, with waiting for it to change: producers change it
/// and `notify`; consumers `acquire` and `wait_for` the change they need.
///
/// # Examples
///
/// ```
/// use conc::sync::Condition;
///
/// let items = Condition::new(Vec::new());
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         let mut guard = items.acquire();
///         guard.wait_for(|items: &Vec<i32>| !items.is_empty());
///         assert_eq!(guard.pop(), Some(42));
///     });
///     items.acquire().push(42);
///     items.notify(1);
/// });
/// ```
#[derive(Default)]
pub struct Condition<T> {
    data: Mutex<T>,
    changed: Condvar,
}

/// Proof that the current thread holds a [`Condition`]'s lock: derefs to
/// the data, can wait (giving the lock up while asleep), and releases the
/// lock when dropped.
///
/// # Examples
///
/// ```
/// let cond = conc::sync::Condition::new(0);
/// let mut guard = cond.acquire();
/// *guard += 1;
/// assert_eq!(*guard, 1);
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a, T> {
    guard: MutexGuard<'a, T>,
    changed: &'a Condvar,
}

impl<T> Condition<T> {
    /// Creates a condition owning `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = conc::sync::Condition::new("state");
    /// assert_eq!(*cond.acquire(), "state");
    /// ```
    pub fn new(value: T) -> Self {
        Self {
            data: Mutex::new(value),
            changed: Condvar::new(),
        }
    }

    /// Takes the lock, waiting while another thread holds it (Python's
    /// `with cond:`).
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = conc::sync::Condition::new(1);
    /// *cond.acquire() += 1;
    /// assert_eq!(*cond.acquire(), 2);
    /// ```
    pub fn acquire(&self) -> ConditionGuard<'_, T> {
        ConditionGuard {
            guard: self.data.lock(),
            changed: &self.changed,
        }
    }

    /// Takes the lock if it is free now, without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = conc::sync::Condition::new(());
    /// let held = cond.try_acquire();
    /// assert!(held.is_some());
    /// assert!(cond.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<ConditionGuard<'_, T>> {
        self.data.try_lock().map(|guard| ConditionGuard {
            guard,
            changed: &self.changed,
        })
    }

    /// Wakes up to `n` threads waiting on this condition (Python's
    /// `cond.notify(n)`). With or without holding the lock: see the module
    /// documentation.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = conc::sync::Condition::new(false);
    /// std::thread::scope(|s| {
    ///     s.spawn(|| cond.acquire().wait_for(|done| *done));
    ///     *cond.acquire() = true;
    ///     cond.notify(1);
    /// });
    /// ```
    pub fn notify(&self, n: usize) {
        for _ in 0..n {
            if !self.changed.notify_one() {
                break; // nobody left to wake
            }
        }
    }

    /// Wakes every thread waiting on this condition (Python's
    /// `cond.notify_all()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let go = conc::sync::Condition::new(false);
    /// std::thread::scope(|s| {
    ///     for _ in 0..3 {
    ///         s.spawn(|| go.acquire().wait_for(|go| *go));
    ///     }
    ///     *go.acquire() = true;
    ///     go.notify_all();
    /// });
    /// ```
    pub fn notify_all(&self) {
        self.changed.notify_all();
    }

    /// Consumes the condition and returns the data.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(conc::sync::Condition::new(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T> ConditionGuard<'_, T> {
    /// Gives up the lock, sleeps until notified, and takes the lock again
    /// (Python's `cond.wait()`). It may also wake spuriously, so check the
    /// state in a loop, or use [`wait_for`](ConditionGuard::wait_for).
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = conc::sync::Condition::new(0);
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         *cond.acquire() = 1;
    ///         cond.notify_all();
    ///     });
    ///     let mut guard = cond.acquire();
    ///     while *guard == 0 {
    ///         guard.wait();
    ///     }
    /// });
    /// ```
    pub fn wait(&mut self) {
        self.changed.wait(&mut self.guard);
    }

    /// As [`wait`](ConditionGuard::wait), for at most `timeout`; returns
    /// `false` if the time ran out (Python's `cond.wait(timeout)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = conc::sync::Condition::new(());
    /// let mut guard = cond.acquire();
    /// assert!(!guard.wait_timeout(Duration::from_millis(5)), "nobody notifies");
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
        !self
            .changed
            .wait_until(&mut self.guard, crate::shim::deadline(timeout))
    }

    /// Waits until `predicate` holds of the data, checking it first and
    /// after every wakeup (Python's `cond.wait_for(predicate)`).
    ///
    /// # Examples
    ///
    /// ```
    /// let count = conc::sync::Condition::new(0);
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         for _ in 0..3 {
    ///             *count.acquire() += 1;
    ///             count.notify_all();
    ///         }
    ///     });
    ///     count.acquire().wait_for(|n| *n == 3);
    /// });
    /// ```
    pub fn wait_for(&mut self, mut predicate: impl FnMut(&T) -> bool) {
        while !predicate(&self.guard) {
            self.changed.wait(&mut self.guard);
        }
    }

    /// As [`wait_for`](ConditionGuard::wait_for), giving up after `timeout`
    /// in all; returns the predicate's last value, so `false` means it timed
    /// out (Python's `cond.wait_for(predicate, timeout)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = conc::sync::Condition::new(0);
    /// let mut guard = cond.acquire();
    /// assert!(!guard.wait_for_timeout(Duration::from_millis(5), |n| *n > 0));
    /// assert!(guard.wait_for_timeout(Duration::from_millis(5), |n| *n == 0));
    /// ```
    pub fn wait_for_timeout(
        &mut self,
        timeout: Duration,
        mut predicate: impl FnMut(&T) -> bool,
    ) -> bool {
        // One deadline for the whole wait: a spurious or unrelated wakeup
        // must not restart the clock.
        let deadline = crate::shim::deadline(timeout);
        while !predicate(&self.guard) {
            if self.changed.wait_until(&mut self.guard, deadline) {
                return predicate(&self.guard);
            }
        }
        true
    }

    /// Releases the lock; the same as dropping the guard.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = conc::sync::Condition::new(());
    /// cond.acquire().release();
    /// assert!(cond.try_acquire().is_some());
    /// ```
    pub fn release(self) {
        drop(self);
    }
}

impl<T> Deref for ConditionGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for ConditionGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T: fmt::Debug> fmt::Debug for Condition<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Condition");
        match self.data.try_lock() {
            Some(data) => d.field("data", &&*data),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

impl<T: fmt::Debug> fmt::Debug for ConditionGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
