//! Python's `threading` synchronisation primitives, each owning what it guards: `Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Event`, `Condition`, `Barrier`.
//!
//! | type | Python | built on |
//! |---|---|---|
//! | [`Lock<T>`] | `threading.Lock` | `parking_lot::Mutex` (+ a name and id for [`crate::deadlock`]) |
//! | [`RLock<T>`] | `threading.RLock` | `parking_lot::ReentrantMutex` |
//! | [`Semaphore`], [`BoundedSemaphore`] | `threading.Semaphore`, `BoundedSemaphore` | by hand, on the shim's `Mutex` + `Condvar` |
//! | [`Event`] | `threading.Event` | by hand, on the shim's `Mutex` + `Condvar` |
//! | [`Condition<T>`] | `threading.Condition` | the shim's `Mutex` + `Condvar`; `notify(n)` by hand |
//! | [`Barrier`] | `threading.Barrier` | by hand, on the shim's `Mutex` + `Condvar` |
//!
//! Where Python pairs a lock with data by convention, these types hold the
//! data: `acquire` returns a guard that derefs to it and releases the lock
//! when dropped, so forgetting to release (Python's reason for `with`) and
//! touching the data without the lock are both impossible. Timed variants
//! are `*_timeout(Duration)` and return `None`/`false`/an error instead of
//! Python's `False`.
//!
//! **What is written by hand, and why.** `Lock` and `RLock` are thin
//! wrappers: parking_lot already has timed and re-entrant locks, small and
//! fast. parking_lot has no semaphore, event or cancellable barrier (std's
//! `Barrier` has no timeout, abort or reset), and its `Condvar` has no
//! `notify(n)`: those are written here, each as a small state behind the
//! `crate::shim` `Mutex` with a `Condvar`, the way CPython's
//! `threading.py` writes them on `Condition`. Building on the shim is what
//! lets loom model-check them (`tests/loom_semaphore.rs`).

mod barrier;
mod condition;
mod event;
mod lock;
mod rlock;
mod semaphore;

pub use barrier::{Barrier, BarrierError};
pub use condition::{Condition, ConditionGuard};
pub use event::Event;
pub use lock::{Lock, LockGuard};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, Permit, Semaphore, TooManyReleases};
