//! How a thread waits on the lock-free ring: a short spin, then parking on a condition variable that is notified only when someone sleeps.
//!
//! The ring (`ring.rs`) moves items without a lock; a thread that finds it
//! full or empty waits in two phases, as crossbeam's channels do (their
//! `Backoff`, then `Context`/`SyncWaker`), built here on the crate's mutex
//! and condition variables so that loom can check the parking:
//!
//! 1. **Spin** ([`spin_until`]): a few `pause`s, then `sched_yield`s, looking
//!    at the ring in between; most waits end here.
//! 2. **Count in, re-check, park** ([`Sleepers::sleep`]): take the lock,
//!    add yourself to the count (then a `SeqCst` fence), re-check the ring
//!    (`SeqCst` reads), and only then wait on the condition variable.
//!
//! The thread that can end a sleeper's wait (a put for getters, a get for
//! putters, a `task_done` for joiners) first does its `SeqCst` write to
//! the ring (the slot's stamp, or the done count), then reads the count
//! ([`Sleepers::wake_one`]). Only if someone is counted does it take the
//! lock, which waits out a sleeper between its re-check and its wait, and
//! notify. Nothing is lost: all those operations are `SeqCst`, so in their
//! one total order either the waker's read comes after the sleeper's
//! count (it notifies), or the sleeper's re-check comes after the waker's
//! write (it does not sleep). When nobody sleeps the waker pays one read
//! of a counter nobody writes, a cache hit.

use std::time::Instant;

use super::engine::Wait;
use crate::shim::{AtomicUsize, Condvar, Mutex, Ordering, fence};

/// Threads asleep until one condition of the ring holds (an item, room,
/// or every task done).
pub(crate) struct Sleepers {
    /// Threads counted in: incremented under the lock before the re-check,
    /// decremented under the lock after the wait.
    count: AtomicUsize,
    cond: Condvar,
}

impl Sleepers {
    pub(crate) fn new() -> Self {
        Self {
            count: AtomicUsize::new(0),
            cond: Condvar::new(),
        }
    }

    /// Sleeps until woken or until `wait`'s deadline, unless `ready` holds
    /// once this thread is counted in. The caller retries its operation
    /// either way: a wake says it may now succeed, not that it will
    /// (another thread may take the item first).
    pub(crate) fn sleep(&self, lock: &Mutex<()>, wait: Wait, ready: impl Fn() -> bool) {
        let mut guard = lock.lock();
        self.count.fetch_add(1, Ordering::SeqCst);
        // Orders the count before the re-check for loom too, which treats
        // `SeqCst` reads and writes as merely acquire/release (see
        // `wake_fence`); here, off the fast path, it costs nothing that
        // matters.
        fence(Ordering::SeqCst);
        if !ready() {
            match wait {
                Wait::Until(deadline) => {
                    if Instant::now() < deadline {
                        self.cond.wait_until(&mut guard, deadline);
                    }
                }
                Wait::Forever => self.cond.wait(&mut guard),
                Wait::No => {}
            }
        }
        self.count.fetch_sub(1, Ordering::SeqCst);
    }

    /// Wakes one sleeper, if any is counted; called after the `SeqCst`
    /// write that may end its wait.
    #[inline]
    pub(crate) fn wake_one(&self, lock: &Mutex<()>) {
        wake_fence();
        if self.count.load(Ordering::SeqCst) > 0 {
            // Notify after letting go of the lock, so that the woken
            // thread does not wake only to block on it.
            drop(lock.lock());
            self.cond.notify_one();
        }
    }

    /// Wakes every sleeper, if any is counted (a `task_done` for joiners).
    pub(crate) fn wake_all(&self, lock: &Mutex<()>) {
        wake_fence();
        if self.count.load(Ordering::SeqCst) > 0 {
            drop(lock.lock());
            self.cond.notify_all();
        }
    }

    /// Wakes every sleeper; the caller holds the lock (a shutdown), so no
    /// sleeper is between its re-check and its wait.
    pub(crate) fn wake_all_locked(&self) {
        self.cond.notify_all();
    }
}

/// Orders the waker's `SeqCst` write before its `SeqCst` read of the count.
/// In a normal build there is nothing to do: the memory model keeps all
/// `SeqCst` operations in one total order, and a fence here (an `mfence`
/// on x86) would stall every put and get until its stores drain. Loom
/// models `SeqCst` reads and writes as acquire/release only (its README,
/// "unsupported features") and would report lost wake-ups that cannot
/// happen; it does model `SeqCst` fences, so under loom one stands in for
/// that order.
#[inline]
fn wake_fence() {
    #[cfg(loom)]
    fence(Ordering::SeqCst);
}

/// `pause` steps before a waiter starts yielding: 1, 2 and 4 `pause`s, with
/// a look at the ring in between. Crossbeam's `Backoff` spins seven steps
/// (127 `pause`s) first. On the 2-vCPU VM this is measured on that loses:
/// when the other thread shares our core it cannot run until we stop, and
/// a long `pause` loop is what a hypervisor watches for to deschedule a
/// vCPU (KVM's pause-loop exiting). See
/// `bench/results/2026-12-03/queue-pairs.md`.
#[cfg(not(loom))]
const PAUSE_STEPS: u32 = 3;

/// `sched_yield`s before a waiter parks. A yield hands the core to the
/// other thread when the two share it, and is a short wait (a system call)
/// when they do not; ten of them, some microseconds, ride out the usual
/// gaps of a producer and a consumer running side by side, so that they
/// rarely pay for a futex sleep and wake. A longer wait (the other thread
/// descheduled, or slow) parks.
#[cfg(not(loom))]
const YIELDS: u32 = 10;

/// Waits without parking until a condition holds, or the budget runs out
/// (or `wait`'s deadline passes); `true` if it holds. The condition is
/// `pausing` while the waiter pauses and `yielding` once it yields, so a
/// waiter can hold out for more (more items, more room) while a wait is
/// cheap and short, and settle for less before it parks.
#[cfg(not(loom))]
pub(crate) fn spin_until(
    wait: Wait,
    pausing: impl Fn() -> bool,
    yielding: impl Fn() -> bool,
) -> bool {
    for step in 0..PAUSE_STEPS + YIELDS {
        if step < PAUSE_STEPS {
            if pausing() {
                return true;
            }
            for _ in 0..1u32 << step {
                std::hint::spin_loop();
            }
        } else {
            if yielding() {
                return true;
            }
            std::thread::yield_now();
        }
        if let Wait::Until(deadline) = wait
            && Instant::now() >= deadline
        {
            return false;
        }
    }
    yielding()
}

/// Under loom there is no spinning: the models check the parking.
#[cfg(loom)]
pub(crate) fn spin_until(
    _wait: Wait,
    _pausing: impl Fn() -> bool,
    _yielding: impl Fn() -> bool,
) -> bool {
    false
}

/// Crossbeam's `Backoff`, for the nanosecond waits inside one attempt (a
/// lost compare-and-swap, a neighbour half-way through its slot).
#[cfg(not(loom))]
pub(crate) use crossbeam_utils::Backoff;

/// Under loom every spin is a yield: loom must see a busy-wait to let the
/// thread it waits for run.
#[cfg(loom)]
pub(crate) struct Backoff;

#[cfg(loom)]
impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff
    }

    pub(crate) fn spin(&self) {
        loom::thread::yield_now();
    }

    pub(crate) fn snooze(&self) {
        loom::thread::yield_now();
    }
}
