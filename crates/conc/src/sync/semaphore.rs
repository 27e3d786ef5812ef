//! `Semaphore` and `BoundedSemaphore`: Python's counters of permits, with permits released on drop.
//!
//! Written by hand on [`crate::shim`]'s `Mutex` and `Condvar`, as CPython's
//! `threading.Semaphore` is written on a `Condition`: a count behind a
//! lock, and a condvar that a release signals once. parking_lot has no
//! semaphore, and crossbeam's channels could fake one only without
//! `available()` or a bound; on the shim, loom can check it
//! (`tests/loom_semaphore.rs`).
//!
//! Besides the number of permits available, the state counts the permits
//! alive as [`Permit`] guards. A [`BoundedSemaphore`] refuses an explicit
//! `release()` that, together with the permits still out, would exceed its
//! initial value; that is what guarantees that dropping a permit never can.
//!
//! Both types are that one `Core`; they differ only in `new` and `release`
//! (and the bounded one's `bound`). The methods they share are written once,
//! by the private `permit_methods!` macro, which stamps them, doc tests and
//! all, onto each.

use std::fmt;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::shim::{Condvar, Mutex};

/// A [`BoundedSemaphore`] was released more times than it was acquired
/// (Python's `ValueError: Semaphore released too many times`).
///
/// # Examples
///
/// ```
/// use conc::sync::{BoundedSemaphore, TooManyReleases};
///
/// let sem = BoundedSemaphore::new(1);
/// assert_eq!(sem.release(), Err(TooManyReleases));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("semaphore released too many times")]
pub struct TooManyReleases;

#[derive(Debug)]
struct State {
    /// Permits that `acquire` may take now.
    available: usize,
    /// Permits taken and still held by a live [`Permit`] guard.
    live: usize,
}

/// The count, the condvar, and the bound if any: the whole of both kinds.
struct Core {
    state: Mutex<State>,
    freed: Condvar,
    bound: Option<usize>,
}

impl Core {
    fn new(permits: usize, bound: Option<usize>) -> Self {
        Self {
            state: Mutex::new(State {
                available: permits,
                live: 0,
            }),
            freed: Condvar::new(),
            bound,
        }
    }

    /// Takes a permit, waiting until `deadline` if there is one.
    fn acquire(&self, deadline: Option<Instant>) -> Option<Permit<'_>> {
        let mut state = self.state.lock();
        while state.available == 0 {
            match deadline {
                None => self.freed.wait(&mut state),
                Some(deadline) => {
                    // A release that raced the timeout still counts.
                    if self.freed.wait_until(&mut state, deadline) && state.available == 0 {
                        return None;
                    }
                }
            }
        }
        state.available -= 1;
        state.live += 1;
        Some(Permit { core: self })
    }

    fn try_acquire(&self) -> Option<Permit<'_>> {
        let mut state = self.state.lock();
        if state.available == 0 {
            return None;
        }
        state.available -= 1;
        state.live += 1;
        Some(Permit { core: self })
    }

    fn release(&self) -> Result<(), TooManyReleases> {
        let mut state = self.state.lock();
        if let Some(bound) = self.bound {
            // Permits still out will come back when dropped: count them too.
            if state.available + state.live >= bound {
                return Err(TooManyReleases);
            }
        }
        state.available += 1;
        drop(state);
        // One permit, one waiter: notify_all would wake the rest to find
        // the count at zero again.
        self.freed.notify_one();
        Ok(())
    }

    fn available(&self) -> usize {
        self.state.lock().available
    }
}

/// A counter of permits: `acquire` takes one, waiting while there are none;
/// a permit goes back when its [`Permit`] guard is dropped, or when
/// [`Semaphore::release`] adds one. Python's `threading.Semaphore`.
///
/// # Examples
///
/// ```
/// use conc::sync::Semaphore;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// // At most two downloads at once.
/// let slots = Semaphore::new(2);
/// let inside = AtomicUsize::new(0);
/// std::thread::scope(|s| {
///     for _ in 0..6 {
///         s.spawn(|| {
///             let _permit = slots.acquire();
///             assert!(inside.fetch_add(1, Ordering::SeqCst) < 2);
///             inside.fetch_sub(1, Ordering::SeqCst);
///         });
///     }
/// });
/// assert_eq!(slots.available(), 2);
/// ```
pub struct Semaphore {
    core: Core,
}

/// A [`Semaphore`] that may never hold more permits than it started with:
/// an extra [`release`](BoundedSemaphore::release) is an error, the usual
/// sign of a bug. Python's `threading.BoundedSemaphore`.
///
/// # Examples
///
/// ```
/// use conc::sync::{BoundedSemaphore, TooManyReleases};
///
/// let pool = BoundedSemaphore::new(2);
/// let permit = pool.acquire();
/// // The permit out will come back on drop: no room for an extra release.
/// assert_eq!(pool.release(), Err(TooManyReleases));
/// permit.forget(); // ... unless it is forgotten: then release() returns it
/// assert_eq!(pool.release(), Ok(()));
/// assert_eq!(pool.release(), Err(TooManyReleases));
/// ```
pub struct BoundedSemaphore {
    core: Core,
}

/// One permit taken from a [`Semaphore`] or [`BoundedSemaphore`]; dropping
/// it gives the permit back and wakes one waiter.
///
/// # Examples
///
/// ```
/// let sem = conc::sync::Semaphore::new(1);
/// let permit = sem.acquire();
/// assert_eq!(sem.available(), 0);
/// drop(permit);
/// assert_eq!(sem.available(), 1);
/// ```
#[must_use = "the permit is given back as soon as it is dropped"]
pub struct Permit<'a> {
    core: &'a Core,
}

/// Stamps onto `$kind` the methods both kinds share, each a call to its
/// [`Core`]: written once here, with doc tests that run against each type.
macro_rules! permit_methods {
    ($kind:ident) => {
        impl $kind {
            /// Takes a permit, waiting while there are none (Python's
            /// `sem.acquire()`).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let sem = conc::sync::", stringify!($kind), "::new(1);")]
            /// let permit = sem.acquire();
            /// assert!(sem.try_acquire().is_none());
            /// drop(permit); // gives the permit back
            /// assert_eq!(sem.available(), 1);
            /// ```
            pub fn acquire(&self) -> Permit<'_> {
                self.core
                    .acquire(None)
                    .expect("an untimed wait ends with a permit")
            }

            /// Takes a permit if one is free within `timeout`; `None` if not.
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::Duration;
            ///
            #[doc = concat!("let sem = conc::sync::", stringify!($kind), "::new(1);")]
            /// let permit = sem.acquire();
            /// assert!(sem.acquire_timeout(Duration::from_millis(5)).is_none());
            /// drop(permit);
            /// assert!(sem.acquire_timeout(Duration::from_millis(5)).is_some());
            /// ```
            pub fn acquire_timeout(&self, timeout: Duration) -> Option<Permit<'_>> {
                self.core.acquire(Some(crate::shim::deadline(timeout)))
            }

            /// Takes a permit if one is free now, without waiting.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let sem = conc::sync::", stringify!($kind), "::new(1);")]
            /// let first = sem.try_acquire();
            /// assert!(first.is_some());
            /// assert!(sem.try_acquire().is_none());
            /// ```
            pub fn try_acquire(&self) -> Option<Permit<'_>> {
                self.core.try_acquire()
            }

            /// The number of permits free now. Only a hint: it may change as
            /// soon as it returns.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let sem = conc::sync::", stringify!($kind), "::new(2);")]
            /// let _p = sem.acquire();
            /// assert_eq!(sem.available(), 1);
            /// ```
            pub fn available(&self) -> usize {
                self.core.available()
            }
        }
    };
}

permit_methods!(Semaphore);
permit_methods!(BoundedSemaphore);

impl Semaphore {
    /// Creates a semaphore holding `permits` permits.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(conc::sync::Semaphore::new(3).available(), 3);
    /// ```
    pub fn new(permits: usize) -> Self {
        Self {
            core: Core::new(permits, None),
        }
    }

    /// Adds a permit and wakes one waiter (Python's `sem.release()`). An
    /// unbounded semaphore may grow past its initial count, as in Python;
    /// use [`BoundedSemaphore`] to catch that.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = conc::sync::Semaphore::new(0);
    /// sem.release();
    /// sem.release();
    /// assert_eq!(sem.available(), 2);
    /// ```
    pub fn release(&self) {
        self.core
            .release()
            .expect("an unbounded semaphore accepts every release");
    }
}

impl BoundedSemaphore {
    /// Creates a bounded semaphore holding `permits` permits, which is also
    /// the most it may ever hold.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = conc::sync::BoundedSemaphore::new(2);
    /// assert_eq!(sem.available(), 2);
    /// assert_eq!(sem.bound(), 2);
    /// ```
    pub fn new(permits: usize) -> Self {
        Self {
            core: Core::new(permits, Some(permits)),
        }
    }

    /// The initial count, which the semaphore may never exceed.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(conc::sync::BoundedSemaphore::new(4).bound(), 4);
    /// ```
    pub fn bound(&self) -> usize {
        self.core.bound.unwrap_or(usize::MAX)
    }

    /// Gives back a permit taken by a [`Permit::forget`]ed acquire, and
    /// wakes one waiter. `Err(TooManyReleases)` if the free permits plus the
    /// permits still held as guards already make up the bound.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc::sync::{BoundedSemaphore, TooManyReleases};
    ///
    /// let sem = BoundedSemaphore::new(1);
    /// sem.acquire().forget(); // Python's bare `sem.acquire()`
    /// assert_eq!(sem.release(), Ok(()));
    /// assert_eq!(sem.release(), Err(TooManyReleases));
    /// ```
    pub fn release(&self) -> Result<(), TooManyReleases> {
        self.core.release()
    }
}

impl Permit<'_> {
    /// Keeps the permit taken without a guard, as Python's bare
    /// `sem.acquire()` does; the matching `release()` gives it back.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = conc::sync::Semaphore::new(1);
    /// sem.acquire().forget();
    /// assert_eq!(sem.available(), 0);
    /// sem.release();
    /// assert_eq!(sem.available(), 1);
    /// ```
    pub fn forget(self) {
        self.core.state.lock().live -= 1;
        // Nothing to leak: the permit is a reference, so forgetting it only
        // skips the `Drop` that would have given the permit back.
        std::mem::forget(self);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut state = self.core.state.lock();
        state.live -= 1;
        state.available += 1;
        drop(state);
        self.core.freed.notify_one();
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.available())
            .finish()
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("available", &self.available())
            .field("bound", &self.bound())
            .finish()
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Permit")
    }
}
