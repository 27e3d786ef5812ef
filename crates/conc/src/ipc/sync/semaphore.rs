//! `Semaphore` and `BoundedSemaphore` between processes: a count of permits in shared memory, with permits given back on drop.
//!
//! The thread version's design ([`crate::sync::Semaphore`]) on a shared
//! state: the permits available, the permits out as live [`Permit`]
//! guards, and the bound. A bounded semaphore refuses an explicit
//! `release` that, with the permits still out, would pass its bound, so
//! dropping a permit never can. Python's `multiprocessing.Semaphore` is a
//! POSIX semaphore; this one is a count behind the shared mutex, so that
//! it shares one shape with every other object here and its timed wait
//! uses the monotonic clock.
//!
//! A process that dies holding a permit takes it along: a permit has no
//! owner the kernel knows of (as in Python). A release wakes every waiter,
//! not one: see the module above on waiters killed inside a wait.

use std::fmt;
use std::time::{Duration, Instant};

use bytemuck::{Pod, Zeroable};
use serde::{Deserialize, Serialize};

use super::{CHANGED, Shared};
use crate::ipc::Error;
use crate::sync::TooManyReleases;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct State {
    /// Permits `acquire` may take now.
    available: u64,
    /// Permits taken and held by a live [`Permit`], in any process.
    live: u64,
    /// The most `available + live` may be; `u64::MAX` for no bound.
    bound: u64,
}

/// The whole of both kinds.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
struct Core {
    shared: Shared<State>,
}

impl Core {
    fn new(permits: usize, bounded: bool) -> Result<Self, Error> {
        let permits = permits as u64;
        let state = State {
            available: permits,
            live: 0,
            bound: if bounded { permits } else { u64::MAX },
        };
        Ok(Self {
            shared: Shared::create(state, 0, false)?,
        })
    }

    fn acquire(&self, deadline: Option<Instant>) -> Option<Permit<'_>> {
        let mut guard = self.shared.lock_state();
        while guard.state().available == 0 {
            // A release that raced the deadline still counts.
            if !guard.wait(CHANGED, deadline) && guard.state().available == 0 {
                return None;
            }
        }
        let state = guard.state();
        state.available -= 1;
        state.live += 1;
        Some(Permit { core: self })
    }

    fn try_acquire(&self) -> Option<Permit<'_>> {
        let mut guard = self.shared.lock_state();
        let state = guard.state();
        if state.available == 0 {
            return None;
        }
        state.available -= 1;
        state.live += 1;
        Some(Permit { core: self })
    }

    fn release(&self) -> Result<(), TooManyReleases> {
        let mut guard = self.shared.lock_state();
        let state = guard.state();
        if state.available.saturating_add(state.live) >= state.bound {
            return Err(TooManyReleases);
        }
        state.available += 1;
        drop(guard);
        self.shared.shm().notify_all(CHANGED);
        Ok(())
    }

    fn get_value(&self) -> usize {
        self.shared.lock_state().state().available as usize
    }

    fn bound(&self) -> usize {
        self.shared.lock_state().state().bound as usize
    }
}

/// A count of permits shared by processes: `acquire` takes one, waiting
/// while there are none; dropping the [`Permit`] or
/// [`release`](Semaphore::release) gives one back. Python's
/// `multiprocessing.Semaphore`.
///
/// # Examples
///
/// ```
/// use conc::ipc::Semaphore;
///
/// let slots = Semaphore::new(2).unwrap(); // at most two at once
/// let a = slots.acquire();
/// let b = slots.acquire();
/// assert!(slots.try_acquire().is_none());
/// drop((a, b));
/// assert_eq!(slots.get_value(), 2);
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Semaphore {
    core: Core,
}

/// A [`Semaphore`] that may never hold more permits than it started with:
/// an extra [`release`](BoundedSemaphore::release) is an error. Python's
/// `multiprocessing.BoundedSemaphore`; with 1 permit, Python's
/// `multiprocessing.Lock` (which any process may release).
///
/// # Examples
///
/// ```
/// use conc::ipc::BoundedSemaphore;
/// use conc::sync::TooManyReleases;
///
/// let sem = BoundedSemaphore::new(1).unwrap();
/// sem.acquire().forget(); // taken here, given back elsewhere
/// assert_eq!(sem.release(), Ok(()));
/// assert_eq!(sem.release(), Err(TooManyReleases));
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BoundedSemaphore {
    core: Core,
}

/// One permit of a [`Semaphore`] or [`BoundedSemaphore`]; dropping it
/// gives the permit back. It may go to another thread.
///
/// # Examples
///
/// ```
/// let sem = conc::ipc::Semaphore::new(1).unwrap();
/// let permit = sem.acquire();
/// assert_eq!(sem.get_value(), 0);
/// drop(permit);
/// assert_eq!(sem.get_value(), 1);
/// ```
#[must_use = "the permit is given back as soon as it is dropped"]
pub struct Permit<'a> {
    core: &'a Core,
}

/// The methods both kinds share, stamped onto each with doc tests that
/// run against each type (as in `crate::sync::semaphore`).
macro_rules! permit_methods {
    ($kind:ident) => {
        impl $kind {
            /// Takes a permit, waiting while there are none (Python's
            /// `sem.acquire()`).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let sem = conc::ipc::", stringify!($kind), "::new(1).unwrap();")]
            /// let permit = sem.acquire();
            /// assert!(sem.try_acquire().is_none());
            /// drop(permit);
            /// assert_eq!(sem.get_value(), 1);
            /// ```
            pub fn acquire(&self) -> Permit<'_> {
                match self.core.acquire(None) {
                    Some(permit) => permit,
                    None => unreachable!("an untimed wait ends with a permit"),
                }
            }

            /// Takes a permit if one is free within `timeout`; `None` if
            /// not (Python's `sem.acquire(timeout=t)` returning `False`).
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::Duration;
            ///
            #[doc = concat!("let sem = conc::ipc::", stringify!($kind), "::new(1).unwrap();")]
            /// let permit = sem.acquire();
            /// assert!(sem.acquire_timeout(Duration::from_millis(5)).is_none());
            /// drop(permit);
            /// assert!(sem.acquire_timeout(Duration::from_millis(5)).is_some());
            /// ```
            pub fn acquire_timeout(&self, timeout: Duration) -> Option<Permit<'_>> {
                self.core.acquire(Some(crate::shim::deadline(timeout)))
            }

            /// Takes a permit if one is free now.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let sem = conc::ipc::", stringify!($kind), "::new(1).unwrap();")]
            /// let first = sem.try_acquire();
            /// assert!(first.is_some());
            /// assert!(sem.try_acquire().is_none());
            /// ```
            pub fn try_acquire(&self) -> Option<Permit<'_>> {
                self.core.try_acquire()
            }

            /// The number of permits free now (Python's `get_value()`); a
            /// hint, which may change as soon as it returns.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let sem = conc::ipc::", stringify!($kind), "::new(2).unwrap();")]
            /// let _p = sem.acquire();
            /// assert_eq!(sem.get_value(), 1);
            /// ```
            pub fn get_value(&self) -> usize {
                self.core.get_value()
            }
        }

        impl fmt::Debug for $kind {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($kind))
                    .field("value", &self.get_value())
                    .finish()
            }
        }
    };
}

permit_methods!(Semaphore);
permit_methods!(BoundedSemaphore);

impl Semaphore {
    /// A semaphore holding `permits` permits.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(conc::ipc::Semaphore::new(3).unwrap().get_value(), 3);
    /// ```
    pub fn new(permits: usize) -> Result<Self, Error> {
        Ok(Self {
            core: Core::new(permits, false)?,
        })
    }

    /// Adds a permit and wakes the waiters (Python's `sem.release()`); it
    /// may grow past the initial count, as in Python.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = conc::ipc::Semaphore::new(0).unwrap();
    /// sem.release();
    /// sem.release();
    /// assert_eq!(sem.get_value(), 2);
    /// ```
    pub fn release(&self) {
        // No bound: only 2^64 releases could refuse, and none is counted here.
        let _ = self.core.release();
    }
}

impl BoundedSemaphore {
    /// A semaphore holding `permits` permits, also the most it may hold.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = conc::ipc::BoundedSemaphore::new(2).unwrap();
    /// assert_eq!((sem.get_value(), sem.bound()), (2, 2));
    /// ```
    pub fn new(permits: usize) -> Result<Self, Error> {
        Ok(Self {
            core: Core::new(permits, true)?,
        })
    }

    /// The initial count, which it may never exceed.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(conc::ipc::BoundedSemaphore::new(4).unwrap().bound(), 4);
    /// ```
    pub fn bound(&self) -> usize {
        self.core.bound()
    }

    /// Gives back a permit taken by a [`Permit::forget`]ed acquire (in
    /// any process) and wakes the waiters; `Err(TooManyReleases)` if the
    /// free permits and those still out already make up the bound.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc::sync::TooManyReleases;
    ///
    /// let sem = conc::ipc::BoundedSemaphore::new(1).unwrap();
    /// let permit = sem.acquire();
    /// assert_eq!(sem.release(), Err(TooManyReleases), "the permit out comes back on drop");
    /// drop(permit);
    /// ```
    pub fn release(&self) -> Result<(), TooManyReleases> {
        self.core.release()
    }
}

impl Permit<'_> {
    /// Keeps the permit taken without a guard, as Python's bare
    /// `sem.acquire()` does; a `release()`, here or in another process,
    /// gives it back.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = conc::ipc::Semaphore::new(1).unwrap();
    /// sem.acquire().forget();
    /// assert_eq!(sem.get_value(), 0);
    /// sem.release();
    /// assert_eq!(sem.get_value(), 1);
    /// ```
    pub fn forget(self) {
        let mut guard = self.core.shared.lock_state();
        let state = guard.state();
        state.live = state.live.saturating_sub(1);
        drop(guard);
        // Skips the Drop that would give the permit back; nothing leaks.
        std::mem::forget(self);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut guard = self.core.shared.lock_state();
        let state = guard.state();
        // Saturating: a process killed between two of these stores may
        // have left the counts one apart.
        state.live = state.live.saturating_sub(1);
        state.available += 1;
        drop(guard);
        self.core.shared.shm().notify_all(CHANGED);
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Permit")
    }
}
