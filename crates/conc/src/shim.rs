//! The blocking building blocks every primitive of `conc` is made of: parking_lot's normally, loom's under `--cfg loom`.
//!
//! Each primitive (`Queue`, `Semaphore`, `Future`, ...) is a small state
//! behind a [`Mutex`] with one or more [`Condvar`]s, as in CPython's
//! `threading.py` and `queue.py`. Building them on this one module is what
//! lets loom check them: `RUSTFLAGS="--cfg loom" cargo test -p conc --test
//! loom --release` swaps these types for loom's, which explore every
//! interleaving of the threads a model test starts.
//!
//! The API is parking_lot's (a guard straight from `lock`, condvar waits on
//! `&mut guard`), since that is what the primitives use in production.
//! Loom has no clock, so under loom a timed wait is an untimed one that never
//! times out; model tests use untimed calls.

#[cfg(not(loom))]
pub(crate) use std::sync::Arc;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicUsize, Ordering, fence};

#[cfg(loom)]
pub(crate) use loom::sync::Arc;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicUsize, Ordering, fence};

#[cfg(not(loom))]
mod imp {
    use std::time::Instant;

    /// A mutual-exclusion lock: parking_lot's, which is small (one byte),
    /// fast when uncontended, and fair enough under contention.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);

    /// The guard of a [`Mutex`].
    pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(parking_lot::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }

        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock()
        }

        pub(crate) fn into_inner(self) -> T {
            self.0.into_inner()
        }
    }

    /// A condition variable for [`Mutex`].
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(parking_lot::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Self(parking_lot::Condvar::new())
        }

        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            self.0.wait(guard);
        }

        /// Waits until notified or until `deadline`; returns whether the
        /// deadline passed.
        pub(crate) fn wait_until<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            deadline: Instant,
        ) -> bool {
            self.0.wait_until(guard, deadline).timed_out()
        }

        pub(crate) fn notify_one(&self) -> bool {
            self.0.notify_one()
        }

        pub(crate) fn notify_all(&self) -> usize {
            self.0.notify_all()
        }
    }
}

#[cfg(loom)]
mod imp {
    use std::ops::{Deref, DerefMut};
    use std::time::Instant;

    /// loom's mutex, with parking_lot's API.
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    /// The guard of a [`Mutex`]: loom's guard, in an `Option` so that a
    /// condvar wait can take it and put it back behind `&mut`.
    pub(crate) struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.0.as_ref().expect("guard present outside a wait")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_mut().expect("guard present outside a wait")
        }
    }

    impl<T: Default> Default for Mutex<T> {
        fn default() -> Self {
            Self::new(T::default())
        }
    }

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().unwrap()))
        }

        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock().ok().map(|g| MutexGuard(Some(g)))
        }

        pub(crate) fn into_inner(self) -> T {
            self.0.into_inner().unwrap()
        }
    }

    /// loom's condvar, with parking_lot's API.
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Self(loom::sync::Condvar::new())
        }

        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let inner = guard.0.take().expect("guard present outside a wait");
            guard.0 = Some(self.0.wait(inner).unwrap());
        }

        /// Loom has no clock: waits as [`Condvar::wait`] and never times out.
        pub(crate) fn wait_until<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            _deadline: Instant,
        ) -> bool {
            self.wait(guard);
            false
        }

        pub(crate) fn notify_one(&self) -> bool {
            self.0.notify_one();
            true
        }

        pub(crate) fn notify_all(&self) -> usize {
            self.0.notify_all();
            0
        }
    }
}

pub(crate) use imp::{Condvar, Mutex, MutexGuard};

/// When a wait of `timeout` from now ends. A timeout too large for the
/// clock (`Duration::MAX`) would make `Instant + Duration` panic; it is
/// taken as a century, which no program waits out.
pub(crate) fn deadline(timeout: std::time::Duration) -> std::time::Instant {
    const CENTURY: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 24 * 3600);
    std::time::Instant::now() + timeout.min(CENTURY)
}
