//! `Barrier`: Python's `threading.Barrier`, where a fixed number of threads wait for each other, with timeouts and abort.
//!
//! Written by hand on [`crate::shim`]'s `Mutex` and `Condvar`, following
//! CPython's `threading.Barrier` state for state (filling, draining,
//! resetting, broken). Neither std's nor parking_lot's barrier will do:
//! std's `Barrier` has no timeout, no abort and no reset, and a thread
//! that never arrives leaves the others waiting for ever. Here a timeout
//! or an [`abort`](Barrier::abort) *breaks* the barrier: every thread
//! waiting on it, and every later one, gets [`BarrierError::Broken`] until
//! [`reset`](Barrier::reset).
//!
//! As in CPython, threads that arrive while the previous cycle is still
//! leaving (draining) wait for it to finish, so the arrival indices of one
//! cycle are exactly `0..parties`.

use std::fmt;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::shim::{Condvar, Mutex};

/// Why [`Barrier::wait`] or [`Barrier::wait_timeout`] returned without the
/// barrier tripping (Python's `BrokenBarrierError`).
///
/// # Examples
///
/// ```
/// use conc::sync::{Barrier, BarrierError};
///
/// let barrier = Barrier::new(2);
/// barrier.abort();
/// assert_eq!(barrier.wait(), Err(BarrierError::Broken));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum BarrierError {
    /// The barrier was broken (by an abort, another thread's timeout, or a
    /// reset while this thread waited) before or while this thread waited.
    #[error("the barrier is broken")]
    Broken,
    /// This thread's timeout ran out; it broke the barrier for the others.
    #[error("timed out waiting at the barrier, which is now broken")]
    Timeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Threads are arriving.
    Filling,
    /// The barrier tripped; the cycle's threads are leaving.
    Draining,
    /// `reset` was called with threads waiting; they are leaving broken.
    Resetting,
    /// Aborted or timed out: every wait fails until `reset`.
    Broken,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// Threads inside `wait`, arrived in this cycle and not yet left.
    count: usize,
}

/// A meeting point for `parties` threads: each `wait` blocks until all of
/// them have arrived, then all go on together.
///
/// # Examples
///
/// ```
/// use conc::sync::Barrier;
///
/// let start = Barrier::new(3);
/// let indices: Vec<usize> = std::thread::scope(|s| {
///     let handles: Vec<_> = (0..3).map(|_| s.spawn(|| start.wait().unwrap())).collect();
///     handles.into_iter().map(|h| h.join().unwrap()).collect()
/// });
/// let mut sorted = indices.clone();
/// sorted.sort();
/// assert_eq!(sorted, [0, 1, 2], "one arrival index each");
/// ```
pub struct Barrier {
    parties: usize,
    state: Mutex<State>,
    changed: Condvar,
}

impl Barrier {
    /// Creates a barrier for `parties` threads.
    ///
    /// # Panics
    ///
    /// If `parties` is 0 (Python raises `ValueError`).
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = conc::sync::Barrier::new(1);
    /// assert_eq!(barrier.wait(), Ok(0), "a party of one never waits");
    /// ```
    pub fn new(parties: usize) -> Self {
        assert!(parties > 0, "a barrier needs at least one party");
        Self {
            parties,
            state: Mutex::new(State {
                phase: Phase::Filling,
                count: 0,
            }),
            changed: Condvar::new(),
        }
    }

    /// Waits until `parties` threads have called `wait`; returns this
    /// thread's arrival index, `0` for the first to arrive and
    /// `parties - 1` for the one that trips the barrier.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = conc::sync::Barrier::new(2);
    /// std::thread::scope(|s| {
    ///     let other = s.spawn(|| barrier.wait());
    ///     let mine = barrier.wait().unwrap();
    ///     assert_eq!(mine + other.join().unwrap().unwrap(), 1);
    /// });
    /// ```
    pub fn wait(&self) -> Result<usize, BarrierError> {
        self.wait_until(None)
    }

    /// As [`wait`](Barrier::wait), but if the barrier has not tripped within
    /// `timeout` this thread breaks it, for itself and every other waiter,
    /// and returns [`BarrierError::Timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc::sync::{Barrier, BarrierError};
    ///
    /// let barrier = Barrier::new(2);
    /// assert_eq!(barrier.wait_timeout(Duration::from_millis(5)), Err(BarrierError::Timeout));
    /// assert!(barrier.broken());
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BarrierError> {
        self.wait_until(Some(crate::shim::deadline(timeout)))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<usize, BarrierError> {
        let mut state = self.state.lock();
        // Let the previous cycle leave before this one starts filling.
        while matches!(state.phase, Phase::Draining | Phase::Resetting) {
            self.changed.wait(&mut state);
        }
        if state.phase == Phase::Broken {
            return Err(BarrierError::Broken);
        }
        let index = state.count;
        state.count += 1;
        let outcome = if index + 1 == self.parties {
            // The last to arrive trips the barrier and wakes the rest.
            state.phase = Phase::Draining;
            self.changed.notify_all();
            Ok(index)
        } else {
            let mut outcome = Ok(index);
            while state.phase == Phase::Filling {
                let timed_out = match deadline {
                    None => {
                        self.changed.wait(&mut state);
                        false
                    }
                    Some(deadline) => self.changed.wait_until(&mut state, deadline),
                };
                if timed_out && state.phase == Phase::Filling {
                    state.phase = Phase::Broken;
                    self.changed.notify_all();
                    outcome = Err(BarrierError::Timeout);
                }
            }
            match (outcome, state.phase) {
                (Err(timeout), _) => Err(timeout),
                (Ok(index), Phase::Draining) => Ok(index),
                (Ok(_), _) => Err(BarrierError::Broken),
            }
        };
        // Leaving: the last thread out of a drained or reset cycle opens
        // the barrier for the next one.
        state.count -= 1;
        if state.count == 0 && matches!(state.phase, Phase::Draining | Phase::Resetting) {
            state.phase = Phase::Filling;
            self.changed.notify_all();
        }
        outcome
    }

    /// Breaks the barrier: every thread waiting now, and every later
    /// `wait`, gets [`BarrierError::Broken`] until [`reset`](Barrier::reset).
    /// Python's `barrier.abort()`, to free the others when one thread
    /// fails and will never arrive.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc::sync::{Barrier, BarrierError};
    ///
    /// let barrier = Barrier::new(2);
    /// std::thread::scope(|s| {
    ///     let waiter = s.spawn(|| barrier.wait());
    ///     while barrier.n_waiting() == 0 {
    ///         std::thread::yield_now();
    ///     }
    ///     barrier.abort();
    ///     assert_eq!(waiter.join().unwrap(), Err(BarrierError::Broken));
    /// });
    /// ```
    pub fn abort(&self) {
        self.state.lock().phase = Phase::Broken;
        self.changed.notify_all();
    }

    /// Returns the barrier to its empty, unbroken state. Threads waiting on
    /// it now get [`BarrierError::Broken`] (Python's `barrier.reset()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = conc::sync::Barrier::new(1);
    /// barrier.abort();
    /// assert!(barrier.wait().is_err());
    /// barrier.reset();
    /// assert_eq!(barrier.wait(), Ok(0));
    /// ```
    pub fn reset(&self) {
        let mut state = self.state.lock();
        if state.count == 0 {
            state.phase = Phase::Filling;
        } else if matches!(state.phase, Phase::Filling | Phase::Broken) {
            // Waiters must leave first, broken; the last one out sets
            // `Filling`. A draining cycle has passed: let it leave as such.
            state.phase = Phase::Resetting;
        }
        self.changed.notify_all();
    }

    /// The number of threads the barrier waits for.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(conc::sync::Barrier::new(4).parties(), 4);
    /// ```
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// The number of threads waiting in the cycle now filling.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = conc::sync::Barrier::new(2);
    /// assert_eq!(barrier.n_waiting(), 0);
    /// std::thread::scope(|s| {
    ///     s.spawn(|| barrier.wait());
    ///     while barrier.n_waiting() == 0 {
    ///         std::thread::yield_now();
    ///     }
    ///     barrier.wait().unwrap();
    /// });
    /// ```
    pub fn n_waiting(&self) -> usize {
        let state = self.state.lock();
        if state.phase == Phase::Filling {
            state.count
        } else {
            0
        }
    }

    /// Whether the barrier is broken.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = conc::sync::Barrier::new(2);
    /// assert!(!barrier.broken());
    /// barrier.abort();
    /// assert!(barrier.broken());
    /// ```
    pub fn broken(&self) -> bool {
        self.state.lock().phase == Phase::Broken
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .field("phase", &state.phase)
            .field("count", &state.count)
            .finish()
    }
}
