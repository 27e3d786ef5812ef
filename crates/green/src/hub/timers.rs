//! The hub's timers: a heap of deadlines, each for one wait of one greenlet.
//!
//! A timer is not removed when its wait ends some other way: it carries
//! the wait's token, and firing it is a no-op unless the greenlet is still
//! in that wait ([`super::Core::wake`]). That keeps arming and ending a
//! wait O(log n) and O(1), at the price of dead entries, which leave the
//! heap when their deadline comes, or when the hub sweeps them out
//! because they have come to outnumber the live ones (`Core::arm_timer`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::{Cause, Waiter};

/// One armed timer.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: Instant,
    /// Arming order: equal deadlines fire first-armed first.
    seq: u64,
    waiter: Waiter,
    cause: Cause,
}

/// The heap of armed timers, earliest first.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Timer>>,
    seq: u64,
}

impl Timers {
    /// Arms a timer that ends `waiter`'s wait at `at`, for `cause`.
    pub(crate) fn arm(&mut self, at: Instant, waiter: Waiter, cause: Cause) {
        self.seq += 1;
        self.heap.push(Reverse(Timer {
            at,
            seq: self.seq,
            waiter,
            cause,
        }));
    }

    /// The earliest deadline, if any timer is armed.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|t| t.0.at)
    }

    /// Takes the next timer due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Waiter, Cause)> {
        if self.heap.peek()?.0.at > now {
            return None;
        }
        let Reverse(timer) = self.heap.pop()?;
        Some((timer.waiter, timer.cause))
    }

    /// How many timers the heap holds, dead ones included.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Keeps only the timers whose waiter `live` says still waits.
    pub(crate) fn retain(&mut self, mut live: impl FnMut(&Waiter) -> bool) {
        self.heap.retain(|timer| live(&timer.0.waiter));
    }

    /// Whether no timer is armed.
    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}
