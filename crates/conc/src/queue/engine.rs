//! The queue engines: CPython's design (one mutex, three condition variables over a [`Store`]) for every queue, and the lock-free ring for a small bounded FIFO.
//!
//! Two engines run the queues, and [`FifoCore`] picks between them for
//! `Queue`:
//!
//! | queue | engine |
//! |---|---|
//! | `Queue::new(n)`, `1 <= n <= 1024` | the lock-free ring, `ring.rs` |
//! | `Queue::new(0)` (unbounded) or a larger `n` | [`Core`] over a `VecDeque` |
//! | `LifoQueue`, `PriorityQueue` | [`Core`] over a `Vec` or a heap |
//!
//! The ring preallocates every slot, so it is used only where the locked
//! engine's store would have preallocated them all too (`MAX_PREALLOC`).
//! It is faster because a producer and a consumer claim positions with a
//! compare-and-swap each, on cache lines of their own, instead of taking
//! turns at one lock, and because of how it waits (`ring.rs`, `park.rs`):
//! `Queue::new(100)` went from 0.8x `crossbeam_channel::bounded(100)` on
//! this engine to a median of 1.7x over nine runs on the ring
//! (`bench/results/2026-12-03/queue-pairs.md`). A stack or a heap has one
//! end that every call touches, so a lock costs them little more than a
//! lock-free version would; they keep [`Core`].
//!
//! [`Core`] is `queue.py`'s design: one lock guards the container, and
//! threads park on three conditions sharing it: `not_empty` (getters),
//! `not_full` (putters) and `all_tasks_done` (joiners). Two changes matter
//! when one producer and one consumer hammer the queue:
//!
//! - **Notify only when someone waits.** Each condition has a count of its
//!   waiters, kept under the lock; `put` signals `not_empty` only if a getter
//!   is parked. Python notifies every time, which is cheap for it next to
//!   the interpreter's own cost, but a wasted notify is a visible share of
//!   a 50 ns `put`.
//! - **Spin a little before parking.** A getter that finds the queue empty
//!   usually finds it non-empty a microsecond later. Parking costs a futex
//!   sleep and, worse, makes the next `put` pay a futex wake. So before
//!   parking, a waiter lets go of the lock and watches a mirror of the
//!   length for a short, bounded while (crossbeam's `Backoff`, the same the
//!   channels use), then takes the lock and parks only if nothing changed.
//!   Under loom there is no spinning: the models check the parking logic.

use std::time::Instant;

use super::ring::Ring;
use super::store::{Fifo, MAX_PREALLOC, Store};
use crate::shim::{AtomicUsize, Condvar, Mutex, MutexGuard, Ordering};

/// How long a call may block.
#[derive(Clone, Copy)]
pub(crate) enum Wait {
    /// Return at once if it would block.
    No,
    /// Block until this instant.
    Until(Instant),
    /// Block for as long as it takes.
    Forever,
}

impl Wait {
    /// A wait of `timeout` from now; a timeout too large for an `Instant`
    /// is as good as forever.
    pub(crate) fn timeout(timeout: std::time::Duration) -> Self {
        Instant::now()
            .checked_add(timeout)
            .map_or(Wait::Forever, Wait::Until)
    }
}

/// Why a put did not happen; the item is handed back.
pub(crate) enum PutFail<T> {
    Full(T),
    Timeout(T),
    ShutDown(T),
}

/// Why a get returned no item.
pub(crate) enum GetFail {
    Empty,
    Timeout,
    ShutDown,
}

/// Everything the lock guards.
struct State<S> {
    store: S,
    /// Items put and not yet marked done (Python's `unfinished_tasks`).
    unfinished: usize,
    shutdown: bool,
    /// Threads parked on each condition: who needs a notify.
    getters: usize,
    putters: usize,
    joiners: usize,
}

/// A queue over the store `S`: the whole behaviour of `Queue`,
/// `LifoQueue` and `PriorityQueue`.
pub(crate) struct Core<S> {
    state: Mutex<State<S>>,
    not_empty: Condvar,
    not_full: Condvar,
    all_done: Condvar,
    /// The store's length, mirrored after every change so that spinning
    /// waiters (and `qsize`) can read it without the lock.
    len: AtomicUsize,
    /// 0: unbounded.
    maxsize: usize,
}

impl<S: Store> Core<S> {
    pub(crate) fn new(maxsize: usize) -> Self {
        Self {
            state: Mutex::new(State {
                store: S::with_capacity(maxsize),
                unfinished: 0,
                shutdown: false,
                getters: 0,
                putters: 0,
                joiners: 0,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            all_done: Condvar::new(),
            len: AtomicUsize::new(0),
            maxsize,
        }
    }

    pub(crate) fn maxsize(&self) -> usize {
        self.maxsize
    }

    fn is_full(&self, len: usize) -> bool {
        self.maxsize > 0 && len >= self.maxsize
    }

    pub(crate) fn put(&self, item: S::Item, wait: Wait) -> Result<(), PutFail<S::Item>> {
        let mut st = self.state.lock();
        loop {
            // Checked first and after every wake, as in Python 3.13: a
            // shut-down queue refuses even when there is room.
            if st.shutdown {
                return Err(PutFail::ShutDown(item));
            }
            if !self.is_full(st.store.len()) {
                break;
            }
            match wait {
                Wait::No => return Err(PutFail::Full(item)),
                Wait::Until(deadline) if Instant::now() >= deadline => {
                    return Err(PutFail::Timeout(item));
                }
                _ => {}
            }
            let maxsize = self.maxsize;
            st = self.spin(st, |len| len < maxsize);
            if st.shutdown || !self.is_full(st.store.len()) {
                continue;
            }
            st.putters += 1;
            self.park(&self.not_full, &mut st, wait);
            st.putters -= 1;
        }
        st.store.push(item);
        st.unfinished += 1;
        self.len.store(st.store.len(), Ordering::Relaxed);
        let wake = st.getters > 0;
        // Notify after unlocking, so the woken getter does not wake only to
        // block on the lock we still hold.
        drop(st);
        if wake {
            self.not_empty.notify_one();
        }
        Ok(())
    }

    pub(crate) fn get(&self, wait: Wait) -> Result<S::Item, GetFail> {
        let mut st = self.state.lock();
        let item = loop {
            if let Some(item) = st.store.pop() {
                break item;
            }
            // Empty: after a shutdown that is final, since no put can come.
            if st.shutdown {
                return Err(GetFail::ShutDown);
            }
            match wait {
                Wait::No => return Err(GetFail::Empty),
                Wait::Until(deadline) if Instant::now() >= deadline => {
                    return Err(GetFail::Timeout);
                }
                _ => {}
            }
            st = self.spin(st, |len| len > 0);
            if st.shutdown || st.store.len() > 0 {
                continue;
            }
            st.getters += 1;
            self.park(&self.not_empty, &mut st, wait);
            st.getters -= 1;
        };
        self.len.store(st.store.len(), Ordering::Relaxed);
        let wake = st.putters > 0;
        drop(st);
        if wake {
            self.not_full.notify_one();
        }
        Ok(item)
    }

    /// Parks on `cond` until notified or until the wait's deadline; the
    /// caller re-checks its condition either way (wakes may be spurious).
    fn park<'a>(&self, cond: &Condvar, st: &mut MutexGuard<'a, State<S>>, wait: Wait) {
        match wait {
            Wait::Until(deadline) => {
                cond.wait_until(st, deadline);
            }
            _ => cond.wait(st),
        }
    }

    /// Lets go of the lock and watches the length until `ready` holds of it
    /// or a short budget runs out, then takes the lock back.
    #[cfg(not(loom))]
    fn spin<'a>(
        &'a self,
        st: MutexGuard<'a, State<S>>,
        ready: impl Fn(usize) -> bool,
    ) -> MutexGuard<'a, State<S>> {
        drop(st);
        let backoff = crossbeam_utils::Backoff::new();
        while !backoff.is_completed() && !ready(self.len.load(Ordering::Relaxed)) {
            backoff.snooze();
        }
        self.state.lock()
    }

    /// Under loom: no spinning, the model checks the parking path.
    #[cfg(loom)]
    fn spin<'a>(
        &'a self,
        st: MutexGuard<'a, State<S>>,
        _ready: impl Fn(usize) -> bool,
    ) -> MutexGuard<'a, State<S>> {
        st
    }

    pub(crate) fn qsize(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub(crate) fn full(&self) -> bool {
        self.is_full(self.qsize())
    }

    pub(crate) fn unfinished_tasks(&self) -> usize {
        self.state.lock().unfinished
    }

    /// Marks one item done; `false` if every item put was already done.
    pub(crate) fn task_done(&self) -> bool {
        let mut st = self.state.lock();
        if st.unfinished == 0 {
            return false;
        }
        st.unfinished -= 1;
        let wake = st.unfinished == 0 && st.joiners > 0;
        drop(st);
        if wake {
            self.all_done.notify_all();
        }
        true
    }

    /// Waits until every item put is done; `false` if the wait ran out first.
    pub(crate) fn join(&self, wait: Wait) -> bool {
        let mut st = self.state.lock();
        while st.unfinished > 0 {
            if let Wait::Until(deadline) = wait
                && Instant::now() >= deadline
            {
                return false;
            }
            st.joiners += 1;
            self.park(&self.all_done, &mut st, wait);
            st.joiners -= 1;
        }
        true
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.state.lock().shutdown
    }

    /// Python 3.13's `shutdown`; returns the items an immediate shutdown
    /// took out, in the order `get` would have returned them.
    pub(crate) fn shutdown(&self, immediate: bool) -> Vec<S::Item> {
        let mut st = self.state.lock();
        st.shutdown = true;
        let mut drained = Vec::new();
        if immediate {
            while let Some(item) = st.store.pop() {
                drained.push(item);
                // Python counts drained items as done, so `join` returns.
                st.unfinished = st.unfinished.saturating_sub(1);
            }
            self.len.store(0, Ordering::Relaxed);
        }
        drop(st);
        // Every parked thread re-checks: getters and putters see the
        // shutdown, joiners see the drained count.
        self.not_empty.notify_all();
        self.not_full.notify_all();
        if immediate {
            self.all_done.notify_all();
        }
        // The caller drops these (or keeps them) outside the lock.
        drained
    }
}

/// `Queue`'s engine: the ring when the bound is small enough to
/// preallocate, the locked engine otherwise (see the module docs). The
/// ring is boxed: its head, tail and count take a cache line each.
pub(crate) enum FifoCore<T> {
    Ring(Box<Ring<T>>),
    Locked(Core<Fifo<T>>),
}

/// Runs `$call` on whichever engine `$core` holds.
macro_rules! on_engine {
    ($core:expr, $engine:ident => $call:expr) => {
        match $core {
            FifoCore::Ring($engine) => $call,
            FifoCore::Locked($engine) => $call,
        }
    };
}

impl<T> FifoCore<T> {
    pub(crate) fn new(maxsize: usize) -> Self {
        if (1..=MAX_PREALLOC).contains(&maxsize) {
            FifoCore::Ring(Box::new(Ring::new(maxsize)))
        } else {
            FifoCore::Locked(Core::new(maxsize))
        }
    }

    pub(crate) fn maxsize(&self) -> usize {
        on_engine!(self, e => e.maxsize())
    }

    pub(crate) fn put(&self, item: T, wait: Wait) -> Result<(), PutFail<T>> {
        on_engine!(self, e => e.put(item, wait))
    }

    pub(crate) fn get(&self, wait: Wait) -> Result<T, GetFail> {
        on_engine!(self, e => e.get(wait))
    }

    pub(crate) fn qsize(&self) -> usize {
        on_engine!(self, e => e.qsize())
    }

    pub(crate) fn full(&self) -> bool {
        on_engine!(self, e => e.full())
    }

    pub(crate) fn unfinished_tasks(&self) -> usize {
        on_engine!(self, e => e.unfinished_tasks())
    }

    pub(crate) fn task_done(&self) -> bool {
        on_engine!(self, e => e.task_done())
    }

    pub(crate) fn join(&self, wait: Wait) -> bool {
        on_engine!(self, e => e.join(wait))
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        on_engine!(self, e => e.is_shutdown())
    }

    pub(crate) fn shutdown(&self, immediate: bool) -> Vec<T> {
        on_engine!(self, e => e.shutdown(immediate))
    }
}
