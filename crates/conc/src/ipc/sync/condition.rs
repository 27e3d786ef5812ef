//! `Condition<T>` between processes: a robust lock owning plain data `T` in shared memory, and a condvar to wait for that data to change.
//!
//! The thread version ([`crate::sync::Condition`]) with the data in the
//! shared mapping's tail: `T` is [`Pod`], plain bytes that mean the same
//! in every process (no pointers), and the guard derefs to it. Python's
//! `multiprocessing.Condition` wraps an `RLock` and guards nothing by
//! itself; here the lock is the condition's own, error-checking (a second
//! acquire on one thread is [`AcquireError::Deadlock`]: the guard's
//! `&mut T` is never aliased), and robust like [`Lock`](super::Lock)'s.
//!
//! `notify(n)` signals the condvar `n` times, with or without a guard:
//! pthread allows both, and the state lives inside the lock, so it cannot
//! change unseen. A waiter killed inside its wait can take a signal with
//! it (see the module above); `notify_all` cannot be lost that way.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use bytemuck::Pod;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{AcquireError, CHANGED, LockCore, LockState, Wait};
use crate::ipc::Error;
use crate::sys::ShmGuard;

/// No system has more threads than Linux's `PID_MAX_LIMIT` (a thread id
/// is a pid), so signalling more times than that is waking every waiter.
const PID_MAX_LIMIT: usize = 1 << 22;

/// Plain data behind a lock shared by processes, with waiting for it to
/// change: one side changes it and notifies; the other acquires and
/// `wait_for`s the change it needs.
///
/// # Examples
///
/// ```
/// use conc::ipc::Condition;
///
/// let jobs = Condition::new(0u32).unwrap();
/// let worker = jobs.clone(); // a child process would get it as an argument
/// let t = std::thread::spawn(move || {
///     let mut guard = worker.acquire().unwrap();
///     guard.wait_for(|n| *n > 0);
///     *guard -= 1;
/// });
/// *jobs.acquire().unwrap() += 1;
/// jobs.notify(1);
/// t.join().unwrap();
/// assert_eq!(*jobs.acquire().unwrap(), 0);
/// ```
pub struct Condition<T = ()> {
    core: LockCore,
    _data: PhantomData<T>,
}

/// Proof that this thread holds a [`Condition`]'s lock: derefs to the
/// data, can wait (giving the lock up meanwhile), and releases the lock
/// when dropped.
///
/// # Examples
///
/// ```
/// let cond = conc::ipc::Condition::new(0i64).unwrap();
/// let mut guard = cond.acquire().unwrap();
/// *guard += 1;
/// assert_eq!(*guard, 1);
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a, T> {
    held: ShmGuard<'a, LockState>,
    /// Whether it was taken from a dead holder.
    died: bool,
    _data: PhantomData<&'a mut T>,
}

/// The result of taking a [`Condition`].
type Taken<'a, T> = Result<ConditionGuard<'a, T>, AcquireError<ConditionGuard<'a, T>>>;

impl<T: Pod> Condition<T> {
    /// A condition owning `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = conc::ipc::Condition::new([1u8, 2]).unwrap();
    /// assert_eq!(*cond.acquire().unwrap(), [1, 2]);
    /// ```
    pub fn new(value: T) -> Result<Self, Error> {
        super::check_data::<T>(false)?;
        let core = LockCore::new_lock(size_of::<T>(), false)?;
        core.take_quietly("Condition::new")
            .tail()
            .copy_from_slice(bytemuck::bytes_of(&value));
        Ok(Self {
            core,
            _data: PhantomData,
        })
    }

    fn take(&self, wait: Wait) -> Taken<'_, T> {
        let wrap = |died| {
            move |held| ConditionGuard {
                held,
                died,
                _data: PhantomData,
            }
        };
        self.core
            .take(wait)
            .map(wrap(false))
            .map_err(|e| e.map(wrap(true)))
    }

    /// Takes the lock, waiting while another thread or process holds it
    /// (Python's `with cond:`); errors as [`Lock::acquire`](super::Lock::acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc::ipc::{AcquireError, Condition};
    ///
    /// let cond = Condition::new(1u32).unwrap();
    /// let mut guard = cond.acquire().unwrap();
    /// *guard += 1;
    /// assert!(matches!(cond.acquire(), Err(AcquireError::Deadlock)));
    /// ```
    pub fn acquire(&self) -> Taken<'_, T> {
        self.take(Wait::Forever)
    }

    /// As [`acquire`](Self::acquire), waiting at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = conc::ipc::Condition::new(()).unwrap();
    /// assert!(cond.acquire_timeout(Duration::from_millis(5)).is_ok());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Taken<'_, T> {
        self.take(Wait::Until(crate::shim::deadline(timeout)))
    }

    /// Takes the lock if it is free now.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = conc::ipc::Condition::new(()).unwrap();
    /// let held = cond.try_acquire().unwrap();
    /// assert!(cond.try_acquire().is_err());
    /// drop(held);
    /// ```
    pub fn try_acquire(&self) -> Taken<'_, T> {
        self.take(Wait::No)
    }

    /// Wakes up to `n` waiters, in any process (Python's `cond.notify(n)`),
    /// with or without a guard held.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = conc::ipc::Condition::new(0u8).unwrap();
    /// cond.notify(1); // nobody waits: nothing happens
    /// ```
    pub fn notify(&self, n: usize) {
        if n >= PID_MAX_LIMIT {
            return self.notify_all();
        }
        for _ in 0..n {
            // With no waiter left, glibc's signal is one atomic load.
            self.core.shm().notify_one(CHANGED);
        }
    }

    /// Wakes every waiter (Python's `cond.notify_all()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let go = conc::ipc::Condition::new(0u8).unwrap();
    /// let waiters: Vec<_> = (0..2)
    ///     .map(|_| {
    ///         let go = go.clone();
    ///         std::thread::spawn(move || go.acquire().unwrap().wait_for(|go| *go == 1))
    ///     })
    ///     .collect();
    /// *go.acquire().unwrap() = 1;
    /// go.notify_all();
    /// waiters.into_iter().for_each(|w| w.join().unwrap());
    /// ```
    pub fn notify_all(&self) {
        self.core.shm().notify_all(CHANGED);
    }
}

impl<T: Pod> ConditionGuard<'_, T> {
    fn wait_until(&mut self, deadline: Option<Instant>) -> bool {
        self.held.wait(CHANGED, deadline)
    }

    /// Gives up the lock, sleeps until notified, takes the lock again
    /// (Python's `cond.wait()`). It may also wake spuriously: check the
    /// data in a loop, or use [`wait_for`](Self::wait_for).
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = conc::ipc::Condition::new(0u32).unwrap();
    /// let setter = cond.clone();
    /// std::thread::spawn(move || {
    ///     *setter.acquire().unwrap() = 1;
    ///     setter.notify_all();
    /// });
    /// let mut guard = cond.acquire().unwrap();
    /// while *guard == 0 {
    ///     guard.wait();
    /// }
    /// ```
    pub fn wait(&mut self) {
        self.wait_until(None);
    }

    /// As [`wait`](Self::wait), for at most `timeout`; `false` if the time
    /// ran out (Python's `cond.wait(timeout)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = conc::ipc::Condition::new(()).unwrap();
    /// let mut guard = cond.acquire().unwrap();
    /// assert!(!guard.wait_timeout(Duration::from_millis(5)), "nobody notifies");
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
        self.wait_until(Some(crate::shim::deadline(timeout)))
    }

    /// Waits until `predicate` holds of the data, checking it first and
    /// after every wakeup (Python's `cond.wait_for(predicate)`).
    ///
    /// # Examples
    ///
    /// ```
    /// let count = conc::ipc::Condition::new(0u32).unwrap();
    /// let counter = count.clone();
    /// std::thread::spawn(move || {
    ///     for _ in 0..3 {
    ///         *counter.acquire().unwrap() += 1;
    ///         counter.notify_all();
    ///     }
    /// });
    /// count.acquire().unwrap().wait_for(|n| *n == 3);
    /// ```
    pub fn wait_for(&mut self, mut predicate: impl FnMut(&T) -> bool) {
        while !predicate(&**self) {
            self.wait_until(None);
        }
    }

    /// As [`wait_for`](Self::wait_for), giving up after `timeout` in all;
    /// the predicate's last value, so `false` means it timed out.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = conc::ipc::Condition::new(0u32).unwrap();
    /// let mut guard = cond.acquire().unwrap();
    /// assert!(!guard.wait_for_timeout(Duration::from_millis(5), |n| *n > 0));
    /// assert!(guard.wait_for_timeout(Duration::from_millis(5), |n| *n == 0));
    /// ```
    pub fn wait_for_timeout(
        &mut self,
        timeout: Duration,
        mut predicate: impl FnMut(&T) -> bool,
    ) -> bool {
        // One deadline for the whole wait: a spurious wakeup must not
        // restart the clock.
        let deadline = crate::shim::deadline(timeout);
        while !predicate(&**self) {
            if !self.wait_until(Some(deadline)) {
                return predicate(&**self);
            }
        }
        true
    }

    /// Whether a holder died holding the lock since this guard's thread
    /// asked for it: at the acquire (which then said `OwnerDied`) or while
    /// this guard waited, when the lock came back from the dead holder.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = conc::ipc::Condition::new(()).unwrap();
    /// assert!(!cond.acquire().unwrap().owner_died());
    /// ```
    pub fn owner_died(&self) -> bool {
        self.died || self.held.owner_died()
    }

    /// Releases the lock; the same as dropping the guard.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = conc::ipc::Condition::new(()).unwrap();
    /// cond.acquire().unwrap().release();
    /// assert!(cond.try_acquire().is_ok());
    /// ```
    pub fn release(self) {
        drop(self);
    }
}

impl<T: Pod> Deref for ConditionGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        bytemuck::from_bytes(self.held.tail_ref())
    }
}

impl<T: Pod> DerefMut for ConditionGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        bytemuck::from_bytes_mut(self.held.tail())
    }
}

impl<T> Clone for Condition<T> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
            _data: PhantomData,
        }
    }
}

impl<T: Pod> Serialize for Condition<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.core.serialize(serializer)
    }
}

impl<'de, T: Pod> Deserialize<'de> for Condition<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let core = LockCore::deserialize(deserializer)?;
        Ok(Self {
            core: super::check_tail(core, size_of::<T>())?,
            _data: PhantomData,
        })
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for Condition<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Condition");
        match self.core.try_quietly() {
            Some(held) => d.field("data", bytemuck::from_bytes::<T>(held.tail_ref())),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for ConditionGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
