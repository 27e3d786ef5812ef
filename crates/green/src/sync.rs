//! Greenlet primitives with `conc::sync`'s names: `Event`, `Lock`, `Semaphore` (gevent's `event.Event`, `lock.Semaphore`).
//!
//! They coordinate greenlets of one hub, so they need no atomics and no
//! OS calls: a flag or a count in a `Cell`, and a [`WaitList`] of parked
//! greenlets. They are `!Send`; share them between greenlets with `Rc`.
//! A release wakes the first waiter, which takes the lock or the permit
//! when it runs (unless a running greenlet took it first): no ownership
//! is handed to a greenlet that might be killed before it runs.

use std::cell::{Cell, RefCell, RefMut};
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use crate::waitlist::WaitList;

/// A flag greenlets wait on: `set` wakes every waiter (gevent's and
/// Python's `Event`).
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
///
/// green::run(|| {
///     let ready = Rc::new(green::Event::new());
///     let waiters: Vec<_> = (0..3)
///         .map(|_| {
///             let ready = Rc::clone(&ready);
///             green::spawn(move || ready.wait())
///         })
///         .collect();
///     green::sleep(std::time::Duration::ZERO);
///     ready.set();
///     assert_eq!(green::joinall(&waiters, None).len(), 3);
/// });
/// ```
#[derive(Debug, Default)]
pub struct Event {
    flag: Cell<bool>,
    waiters: WaitList,
}

impl Event {
    /// A clear event.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        self.flag.set(true);
        self.waiters.notify_all();
    }

    /// Clears the flag.
    pub fn clear(&self) {
        self.flag.set(false);
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.flag.get()
    }

    /// Waits until the flag is set.
    pub fn wait(&self) {
        while !self.flag.get() {
            self.waiters.wait(None);
        }
    }

    /// Waits until the flag is set or `timeout` passes; returns the flag.
    ///
    /// # Examples
    ///
    /// ```
    /// green::run(|| {
    ///     let e = green::Event::new();
    ///     assert!(!e.wait_timeout(std::time::Duration::from_millis(1)));
    /// });
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.flag.get() {
            if !self.waiters.wait(Some(deadline)) {
                break;
            }
        }
        self.flag.get()
    }
}

/// A lock that owns its data: `acquire` parks the greenlet while another
/// holds it (gevent's `lock.Lock`, with `conc::sync::Lock`'s shape).
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use std::time::Duration;
///
/// green::run(|| {
///     let total = Rc::new(green::Lock::new(0));
///     let gs: Vec<_> = (0..10)
///         .map(|_| {
///             let total = Rc::clone(&total);
///             green::spawn(move || {
///                 let mut t = total.acquire();
///                 let seen = *t;
///                 green::sleep(Duration::ZERO); // switch while holding it
///                 *t = seen + 1;
///             })
///         })
///         .collect();
///     green::joinall(&gs, None);
///     assert_eq!(*total.acquire(), 10);
/// });
/// ```
#[derive(Debug, Default)]
pub struct Lock<T = ()> {
    locked: Cell<bool>,
    waiters: WaitList,
    value: RefCell<T>,
}

/// The held lock; releases it when dropped. Derefs to the data.
#[derive(Debug)]
pub struct LockGuard<'a, T> {
    lock: &'a Lock<T>,
    value: Option<RefMut<'a, T>>,
}

impl<T> Lock<T> {
    /// An unlocked lock holding `value`.
    pub fn new(value: T) -> Self {
        Self {
            locked: Cell::new(false),
            waiters: WaitList::default(),
            value: RefCell::new(value),
        }
    }

    /// Waits until the lock is free, then takes it.
    pub fn acquire(&self) -> LockGuard<'_, T> {
        loop {
            if let Some(guard) = self.try_acquire() {
                return guard;
            }
            self.waiters.wait(None);
        }
    }

    /// [`acquire`](Self::acquire), waiting at most `timeout`; `None` if
    /// the lock was still held then.
    ///
    /// # Examples
    ///
    /// ```
    /// green::run(|| {
    ///     let lock = green::Lock::new(());
    ///     let _held = lock.acquire();
    ///     assert!(lock.acquire_timeout(std::time::Duration::from_millis(1)).is_none());
    /// });
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<LockGuard<'_, T>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(guard) = self.try_acquire() {
                return Some(guard);
            }
            if !self.waiters.wait(Some(deadline)) {
                return self.try_acquire();
            }
        }
    }

    /// Takes the lock if it is free.
    pub fn try_acquire(&self) -> Option<LockGuard<'_, T>> {
        if self.locked.get() {
            return None;
        }
        self.locked.set(true);
        Some(LockGuard {
            lock: self,
            value: Some(self.value.borrow_mut()),
        })
    }

    /// Whether some greenlet holds it.
    pub fn locked(&self) -> bool {
        self.locked.get()
    }

    /// The data, through a unique borrow: no lock needed.
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// The data, taking the lock apart.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T> LockGuard<'_, T> {
    /// Releases the lock (the same as dropping the guard).
    pub fn release(self) {}
}

impl<T> Deref for LockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value.as_ref().expect("held until dropped")
    }
}

impl<T> DerefMut for LockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value.as_mut().expect("held until dropped")
    }
}

impl<T> Drop for LockGuard<'_, T> {
    fn drop(&mut self) {
        self.value = None;
        self.lock.locked.set(false);
        self.lock.waiters.notify_one();
    }
}

/// A count of permits: `acquire` parks the greenlet while none is left
/// (gevent's and Python's `Semaphore`).
///
/// # Examples
///
/// ```
/// green::run(|| {
///     let sem = green::Semaphore::new(1);
///     let permit = sem.acquire();
///     assert_eq!(sem.available(), 0);
///     assert!(sem.try_acquire().is_none());
///     drop(permit);
///     assert_eq!(sem.available(), 1);
/// });
/// ```
#[derive(Debug, Default)]
pub struct Semaphore {
    permits: Cell<usize>,
    waiters: WaitList,
}

/// One permit of a [`Semaphore`], given back when dropped.
#[derive(Debug)]
pub struct Permit<'a> {
    semaphore: &'a Semaphore,
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    pub fn new(permits: usize) -> Self {
        Self {
            permits: Cell::new(permits),
            waiters: WaitList::default(),
        }
    }

    /// Waits for a permit and takes it.
    pub fn acquire(&self) -> Permit<'_> {
        loop {
            if let Some(permit) = self.try_acquire() {
                return permit;
            }
            self.waiters.wait(None);
        }
    }

    /// [`acquire`](Self::acquire), waiting at most `timeout`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<Permit<'_>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(permit) = self.try_acquire() {
                return Some(permit);
            }
            if !self.waiters.wait(Some(deadline)) {
                return self.try_acquire();
            }
        }
    }

    /// Takes a permit if one is left.
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        let n = self.permits.get();
        if n == 0 {
            return None;
        }
        self.permits.set(n - 1);
        Some(Permit { semaphore: self })
    }

    /// Adds a permit (Python's `release()` without an acquire: the count
    /// grows).
    pub fn release(&self) {
        self.permits.set(self.permits.get() + 1);
        self.waiters.notify_one();
    }

    /// Permits left now.
    pub fn available(&self) -> usize {
        self.permits.get()
    }
}

impl Permit<'_> {
    /// Keeps the permit taken: the count stays one lower.
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.semaphore.release();
    }
}
