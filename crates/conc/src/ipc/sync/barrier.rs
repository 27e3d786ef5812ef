//! `Barrier` between processes: a fixed number of parties wait for each other, with timeouts, abort and reset, on a state in shared memory.
//!
//! The thread version ([`crate::sync::Barrier`]) state for state
//! (filling, draining, resetting, broken), which is CPython's: a timeout
//! or an [`abort`](Barrier::abort) breaks the barrier, and every party
//! waiting, and every later one, gets [`BarrierError::Broken`] (Python's
//! `BrokenBarrierError`) until [`reset`](Barrier::reset). Parties that
//! arrive while the last cycle is leaving wait for it, so one cycle's
//! arrival indices are exactly `0..parties`.
//!
//! A party killed while waiting still counts as arrived, and one killed
//! before arriving never will: the others wait for ever unless they wait
//! with a timeout, which breaks the barrier for all (as in Python).

use std::fmt;
use std::time::{Duration, Instant};

use bytemuck::{Pod, Zeroable};
use serde::{Deserialize, Serialize};

use super::{CHANGED, Shared};
use crate::ipc::Error;
use crate::sync::BarrierError;

const FILLING: u32 = 0;
/// Tripped; the cycle's parties are leaving.
const DRAINING: u32 = 1;
/// `reset` with parties waiting: they are leaving broken.
const RESETTING: u32 = 2;
/// Aborted or timed out: every wait fails until `reset`.
const BROKEN: u32 = 3;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct State {
    parties: u64,
    /// Parties inside `wait`, arrived in this cycle and not yet left.
    count: u64,
    phase: u32,
    _pad: u32,
}

/// A meeting point for `parties` processes (or threads): each `wait`
/// blocks until all have arrived, then all go on. Python's
/// `multiprocessing.Barrier`.
///
/// # Examples
///
/// ```
/// use conc::ipc::Barrier;
///
/// let start = Barrier::new(3).unwrap();
/// let others: Vec<_> = (0..2)
///     .map(|_| {
///         let start = start.clone(); // a child process would get it as an argument
///         std::thread::spawn(move || start.wait().unwrap())
///     })
///     .collect();
/// let mut indices = vec![start.wait().unwrap()];
/// indices.extend(others.into_iter().map(|t| t.join().unwrap()));
/// indices.sort();
/// assert_eq!(indices, [0, 1, 2], "one arrival index each");
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Barrier {
    shared: Shared<State>,
}

impl Barrier {
    /// A barrier for `parties` parties.
    ///
    /// # Panics
    ///
    /// If `parties` is 0 (Python raises `ValueError`).
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = conc::ipc::Barrier::new(1).unwrap();
    /// assert_eq!(barrier.wait(), Ok(0), "a party of one never waits");
    /// ```
    pub fn new(parties: usize) -> Result<Self, Error> {
        assert!(parties > 0, "a barrier needs at least one party");
        let state = State {
            parties: parties as u64,
            count: 0,
            phase: FILLING,
            _pad: 0,
        };
        Ok(Self {
            shared: Shared::create(state, 0, false)?,
        })
    }

    /// Waits until `parties` parties have called `wait`; this party's
    /// arrival index, `0` for the first and `parties - 1` for the one
    /// that trips the barrier.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = conc::ipc::Barrier::new(2).unwrap();
    /// let other = barrier.clone();
    /// let t = std::thread::spawn(move || other.wait().unwrap());
    /// let mine = barrier.wait().unwrap();
    /// assert_eq!(mine + t.join().unwrap(), 1);
    /// ```
    pub fn wait(&self) -> Result<usize, BarrierError> {
        self.wait_until(None)
    }

    /// As [`wait`](Self::wait), but if the barrier has not tripped within
    /// `timeout` this party breaks it, for itself and every other, and
    /// gets [`BarrierError::Timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc::sync::BarrierError;
    ///
    /// let barrier = conc::ipc::Barrier::new(2).unwrap();
    /// assert_eq!(barrier.wait_timeout(Duration::from_millis(5)), Err(BarrierError::Timeout));
    /// assert!(barrier.broken());
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BarrierError> {
        self.wait_until(Some(crate::shim::deadline(timeout)))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<usize, BarrierError> {
        let shm = self.shared.shm();
        let mut guard = self.shared.lock_state();
        // Let the previous cycle leave before this one fills.
        while matches!(guard.state().phase, DRAINING | RESETTING) {
            guard.wait(CHANGED, None);
        }
        if guard.state().phase == BROKEN {
            return Err(BarrierError::Broken);
        }
        let state = guard.state();
        let index = state.count;
        state.count += 1;
        let outcome = if index + 1 == state.parties {
            // The last to arrive trips it and wakes the rest.
            state.phase = DRAINING;
            shm.notify_all(CHANGED);
            Ok(index as usize)
        } else {
            let mut outcome = Ok(index as usize);
            while guard.state().phase == FILLING {
                let notified = guard.wait(CHANGED, deadline);
                if !notified && guard.state().phase == FILLING {
                    guard.state().phase = BROKEN;
                    shm.notify_all(CHANGED);
                    outcome = Err(BarrierError::Timeout);
                }
            }
            match (outcome, guard.state().phase) {
                (Err(timeout), _) => Err(timeout),
                (Ok(index), DRAINING) => Ok(index),
                (Ok(_), _) => Err(BarrierError::Broken),
            }
        };
        // Leaving: the last one out of a drained or reset cycle opens the
        // barrier for the next.
        let state = guard.state();
        state.count = state.count.saturating_sub(1);
        if state.count == 0 && matches!(state.phase, DRAINING | RESETTING) {
            state.phase = FILLING;
            shm.notify_all(CHANGED);
        }
        outcome
    }

    /// Breaks the barrier: every party waiting now, and every later
    /// `wait`, gets [`BarrierError::Broken`] until [`reset`](Self::reset)
    /// (Python's `barrier.abort()`).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc::sync::BarrierError;
    ///
    /// let barrier = conc::ipc::Barrier::new(2).unwrap();
    /// barrier.abort();
    /// assert_eq!(barrier.wait(), Err(BarrierError::Broken));
    /// ```
    pub fn abort(&self) {
        self.shared.lock_state().state().phase = BROKEN;
        self.shared.shm().notify_all(CHANGED);
    }

    /// Returns the barrier to empty and unbroken; parties waiting on it
    /// now get [`BarrierError::Broken`] (Python's `barrier.reset()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = conc::ipc::Barrier::new(1).unwrap();
    /// barrier.abort();
    /// assert!(barrier.wait().is_err());
    /// barrier.reset();
    /// assert_eq!(barrier.wait(), Ok(0));
    /// ```
    pub fn reset(&self) {
        let mut guard = self.shared.lock_state();
        let state = guard.state();
        if state.count == 0 {
            state.phase = FILLING;
        } else if matches!(state.phase, FILLING | BROKEN) {
            // Waiters leave first, broken; the last one out sets filling.
            // A draining cycle has passed: it leaves as such.
            state.phase = RESETTING;
        }
        drop(guard);
        self.shared.shm().notify_all(CHANGED);
    }

    /// The number of parties the barrier waits for.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(conc::ipc::Barrier::new(4).unwrap().parties(), 4);
    /// ```
    pub fn parties(&self) -> usize {
        self.shared.lock_state().state().parties as usize
    }

    /// The number of parties waiting in the cycle now filling.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = conc::ipc::Barrier::new(2).unwrap();
    /// assert_eq!(barrier.n_waiting(), 0);
    /// ```
    pub fn n_waiting(&self) -> usize {
        let state = *self.shared.lock_state().state();
        if state.phase == FILLING {
            state.count as usize
        } else {
            0
        }
    }

    /// Whether the barrier is broken.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = conc::ipc::Barrier::new(2).unwrap();
    /// assert!(!barrier.broken());
    /// barrier.abort();
    /// assert!(barrier.broken());
    /// ```
    pub fn broken(&self) -> bool {
        self.shared.lock_state().state().phase == BROKEN
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = *self.shared.lock_state().state();
        f.debug_struct("Barrier")
            .field("parties", &state.parties)
            .field("count", &state.count)
            .field("broken", &(state.phase == BROKEN))
            .finish()
    }
}
