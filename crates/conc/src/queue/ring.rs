//! The bounded FIFO's engine: a lock-free ring of slots (Vyukov's bounded queue, as in crossbeam's channels), with the lock kept for parking.
//!
//! `Queue::new(n)` for `1 <= n <= 1024` runs on this instead of the locked
//! engine (`engine.rs`). A put and a get each claim a position with one
//! compare-and-swap, on the tail and on the head, which sit on cache lines
//! of their own; a producer and a consumer never wait for each other unless
//! the ring is full or empty. This is Dmitry Vyukov's bounded MPMC queue,
//! the one `crossbeam_channel::bounded` is built on:
//!
//! - Each slot has a **stamp** saying whose turn it is: equal to a tail
//!   position when the slot is free for that put, that position plus one
//!   once the put has written its item, and the position one lap on once a
//!   get has taken it out. A thread claims a position (moves the head or
//!   tail) only if the stamp says it is its turn.
//! - Head and tail are "lap and index" words, as crossbeam packs them: the
//!   low bits index the slot, the bits above one `mark` bit count laps, so
//!   a stamp from the last lap never looks like this one's.
//!
//! What it adds for Python's `queue.Queue`:
//!
//! - **Shutdown is the mark bit**, as crossbeam marks a disconnected
//!   channel: `shutdown` sets it in the tail, so a put's claim (a CAS from
//!   an unmarked tail) fails from then on, and a get reads "empty and shut
//!   down" from one word. An immediate shutdown first marks the head, so
//!   no get claims an item any more, then the tail, then drains what is
//!   left, waiting for puts that claimed a slot before the mark to finish
//!   writing. It holds the lock throughout, and a get that meets the marked
//!   head waits for that lock, so it fails only once the drain is complete:
//!   the shutdown takes effect at one instant, the tail's mark, as it would
//!   under a lock.
//! - **`unfinished` is counted, not kept.** The puts are the tail's
//!   position, `done` counts `task_done` calls and drained items, and
//!   unfinished is the difference: a put pays nothing for `join`, and
//!   `task_done` refuses (a CAS loop) to pass the puts.
//! - **Waiting** (`park.rs`): spin briefly, then count in, re-check and
//!   sleep on a condition variable. The stamp write that publishes an item
//!   (or frees a slot) is `SeqCst` and is what a sleeping getter (putter)
//!   re-checks, so a put (get) notifies only if someone is counted, and a
//!   waiting call never spins on a neighbour half-way through its slot: it
//!   sleeps until that neighbour's wake. Only a call that may not wait
//!   spins those nanoseconds out, as crossbeam does, so that it never
//!   reports a full ring that has room or an empty one that has an item.
//! - **Waiters hold out for more while they spin.** A putter that found
//!   the ring full waits for half of it to free up, not for one slot; a
//!   getter that found it empty waits, while it is still pausing (well
//!   under a microsecond), for a few items (an eighth of the ring, at most
//!   8), then for any. Taking turns at one slot costs a cache-line transfer
//!   each way per item, and here each transfer stalls the thread (the
//!   slot's lock and stamp are read-modify-writes, see below); with a gap,
//!   one side runs through slots the other no longer touches. With the
//!   short spin of `park.rs` this puts one producer and one consumer
//!   through `Queue::new(100)` ahead of `crossbeam_channel::bounded(100)`:
//!   1.0x to 2.4x in `examples/queue_pairs.rs`, about 1.0x when the
//!   producer is the slower side (`bench/results/2026-12-03/queue-pairs.md`).
//!   A sleeper wakes for any room or any item.
//!
//! No `unsafe`: where crossbeam keeps a slot's item in an `UnsafeCell`, a
//! slot here keeps it in a mutex that only the thread whose turn the stamp
//! gives ever takes. The lock is never contended; it costs two uncontended
//! compare-and-swaps per item on each side, on the cache line the stamp
//! has already brought in (about a third of a put's time in a profile).

use std::time::Instant;

use crossbeam_utils::CachePadded;

use super::engine::{GetFail, PutFail, Wait};
use super::park::{Backoff, Sleepers, spin_until};
use crate::shim::{AtomicUsize, Mutex, Ordering};

/// One place in the ring.
struct Slot<T> {
    /// Whose turn it is (see the module docs).
    stamp: AtomicUsize,
    /// The item; locked only by the thread the stamp gives the turn to.
    item: Mutex<Option<T>>,
}

/// Why a single attempt at a put failed.
enum TryPut<T> {
    Full(T),
    ShutDown(T),
}

/// Why a single attempt at a get failed.
enum TryGet {
    Empty,
    /// Empty and shut down: no item can come.
    ShutDown,
    /// An immediate shutdown marked the head: it is draining or has drained.
    Draining,
}

/// A bounded FIFO queue: the whole behaviour of `Queue::new(n)` for small `n`.
pub(crate) struct Ring<T> {
    /// The next get's position; `mark` set by an immediate shutdown.
    head: CachePadded<AtomicUsize>,
    /// The next put's position; `mark` set by any shutdown.
    tail: CachePadded<AtomicUsize>,
    /// `task_done` calls plus items an immediate shutdown drained.
    done: CachePadded<AtomicUsize>,
    slots: Box<[Slot<T>]>,
    /// A power of two above every index: the shutdown flag in head and tail.
    mark: usize,
    /// `2 * mark`: adding it to a position moves it one lap on.
    one_lap: usize,
    /// The free slots a spinning putter that found the ring full waits
    /// for before it tries again: half the ring (see the module docs).
    put_batch: usize,
    /// The items a getter that found the ring empty waits for while it
    /// pauses, before it settles for one (see the module docs).
    get_batch: usize,
    /// Guards only parking (and serialises shutdowns); no item passes it.
    lock: Mutex<()>,
    getters: Sleepers,
    putters: Sleepers,
    joiners: Sleepers,
}

impl<T> Ring<T> {
    /// A ring of `cap` slots; `cap` must be at least 1.
    pub(crate) fn new(cap: usize) -> Self {
        assert!(cap > 0, "a ring needs at least one slot");
        let mark = (cap + 1).next_power_of_two();
        Self {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            done: CachePadded::new(AtomicUsize::new(0)),
            // Lap 0: slot `i` waits for the put at position `i`.
            slots: (0..cap)
                .map(|i| Slot {
                    stamp: AtomicUsize::new(i),
                    item: Mutex::new(None),
                })
                .collect(),
            mark,
            one_lap: mark * 2,
            put_batch: (cap / 2).max(1),
            get_batch: (cap / 8).clamp(1, 8),
            lock: Mutex::new(()),
            getters: Sleepers::new(),
            putters: Sleepers::new(),
            joiners: Sleepers::new(),
        }
    }

    pub(crate) fn maxsize(&self) -> usize {
        self.slots.len()
    }

    /// The slot a position (mark cleared) points at.
    fn slot(&self, pos: usize) -> &Slot<T> {
        &self.slots[pos & (self.mark - 1)]
    }

    /// The position after `pos`: the next index, or index 0 one lap on.
    fn next(&self, pos: usize) -> usize {
        if (pos & (self.mark - 1)) + 1 < self.slots.len() {
            pos + 1
        } else {
            (pos & !(self.one_lap - 1)).wrapping_add(self.one_lap)
        }
    }

    /// How many positions lie before `pos` (mark ignored): for the tail,
    /// the number of puts ever made. Wraps only after 2^56 laps.
    fn count(&self, pos: usize) -> usize {
        let laps = pos >> self.one_lap.trailing_zeros();
        laps.wrapping_mul(self.slots.len())
            .wrapping_add(pos & (self.mark - 1))
    }

    /// One attempt at a put, without waiting for room. A get that has
    /// claimed the last slot but not yet emptied it leaves the ring full
    /// for a few nanoseconds: `finish` says whether to spin those out (a
    /// caller that may not wait must, or it would report a full ring that
    /// has room) or to report `Full` (a caller that may wait then waits
    /// for that get's wake like for any other).
    fn try_put(&self, item: T, finish: bool) -> Result<(), TryPut<T>> {
        let backoff = Backoff::new();
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            if tail & self.mark != 0 {
                return Err(TryPut::ShutDown(item));
            }
            let slot = self.slot(tail);
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == tail {
                // Our turn, if no other put claims this position first.
                match self.tail.compare_exchange_weak(
                    tail,
                    self.next(tail),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        *slot.item.lock() = Some(item);
                        // SeqCst: this is the write a getter that counted
                        // itself in and then read the stamp must see, or
                        // our read of its count (in `wake_one`) must see it.
                        slot.stamp.store(tail + 1, Ordering::SeqCst);
                        return Ok(());
                    }
                    Err(now) => {
                        tail = now;
                        backoff.spin();
                    }
                }
            } else if stamp.wrapping_add(self.one_lap) == tail + 1 {
                // The slot still holds last lap's item: full, unless a get
                // has claimed it and is taking it out right now.
                let head = self.head.load(Ordering::SeqCst) & !self.mark;
                if !finish || head.wrapping_add(self.one_lap) == tail {
                    return Err(TryPut::Full(item));
                }
                backoff.spin();
                tail = self.tail.load(Ordering::Relaxed);
            } else {
                // Another put got here first: look again.
                backoff.snooze();
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// One attempt at a get, without waiting for an item; `finish` as for
    /// [`try_put`](Self::try_put), for a put that has claimed the head's
    /// slot and is still writing its item.
    fn try_get(&self, finish: bool) -> Result<T, TryGet> {
        let backoff = Backoff::new();
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            if head & self.mark != 0 {
                return Err(TryGet::Draining);
            }
            let slot = self.slot(head);
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == head + 1 {
                match self.head.compare_exchange_weak(
                    head,
                    self.next(head),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        let item = slot.item.lock().take();
                        // SeqCst, mirroring the put's: seen by a putter
                        // that counted itself in, or it is counted.
                        slot.stamp
                            .store(head.wrapping_add(self.one_lap), Ordering::SeqCst);
                        return Ok(item.expect("a stamp of head + 1 means the item is in"));
                    }
                    Err(now) => {
                        head = now;
                        backoff.spin();
                    }
                }
            } else if stamp == head {
                // Not written this lap: empty, unless a put has claimed the
                // position and is writing right now.
                let tail = self.tail.load(Ordering::SeqCst);
                if tail & !self.mark == head {
                    return Err(if tail & self.mark != 0 {
                        TryGet::ShutDown
                    } else {
                        TryGet::Empty
                    });
                }
                if !finish {
                    return Err(TryGet::Empty);
                }
                backoff.spin();
                head = self.head.load(Ordering::Relaxed);
            } else {
                // Another get got here first: look again.
                backoff.snooze();
                head = self.head.load(Ordering::Relaxed);
            }
        }
    }

    /// About how many items the ring holds, for a spinning waiter's
    /// guess: head, then tail, which is never negative but also counts
    /// items taken between the two reads. [`qsize`](Self::qsize) is exact.
    fn len(&self) -> usize {
        let head = self.head.load(Ordering::SeqCst) & !self.mark;
        let tail = self.tail.load(Ordering::SeqCst) & !self.mark;
        self.count(tail).wrapping_sub(self.count(head))
    }

    /// Whether a waiting putter should try again: the slot at the tail no
    /// longer holds last lap's item, or the ring is shut down. Only the
    /// stamp decides whether a sleeper sleeps: it is what a get writes
    /// before it looks for putters to wake.
    fn may_put(&self) -> bool {
        let tail = self.tail.load(Ordering::SeqCst);
        if tail & self.mark != 0 {
            return true;
        }
        let stamp = self.slot(tail).stamp.load(Ordering::SeqCst);
        stamp.wrapping_add(self.one_lap) != tail + 1
    }

    /// Whether a waiting getter should try again: the slot at the head is
    /// written (or the head has moved on), or the ring is shut down and
    /// empty. Only the stamp decides, as for [`may_put`](Self::may_put).
    fn may_get(&self) -> bool {
        let head = self.head.load(Ordering::SeqCst);
        if head & self.mark != 0 {
            return true;
        }
        if self.slot(head).stamp.load(Ordering::SeqCst) != head {
            return true;
        }
        self.tail.load(Ordering::SeqCst) == head | self.mark
    }

    /// Whether this is a call's last attempt: it may not wait, or its
    /// deadline has passed.
    fn last_try(wait: Wait) -> bool {
        match wait {
            Wait::No => true,
            Wait::Until(deadline) => Instant::now() >= deadline,
            Wait::Forever => false,
        }
    }

    pub(crate) fn put(&self, mut item: T, wait: Wait) -> Result<(), PutFail<T>> {
        loop {
            let last = Self::last_try(wait);
            match self.try_put(item, last) {
                Ok(()) => {
                    self.getters.wake_one(&self.lock);
                    return Ok(());
                }
                Err(TryPut::ShutDown(back)) => return Err(PutFail::ShutDown(back)),
                Err(TryPut::Full(back)) if last => {
                    return Err(match wait {
                        Wait::No => PutFail::Full(back),
                        _ => PutFail::Timeout(back),
                    });
                }
                Err(TryPut::Full(back)) => item = back,
            }
            // Full. Spinning, wait for half the ring to free up (looking at
            // the counts first, so as not to pull at the slot the consumer
            // is emptying); asleep, any room is reason to wake.
            let roomy = || {
                self.is_shutdown()
                    || (self.slots.len().saturating_sub(self.len()) >= self.put_batch
                        && self.may_put())
            };
            if !spin_until(wait, roomy, roomy) {
                self.putters.sleep(&self.lock, wait, || self.may_put());
            }
        }
    }

    pub(crate) fn get(&self, wait: Wait) -> Result<T, GetFail> {
        loop {
            let last = Self::last_try(wait);
            match self.try_get(last) {
                Ok(item) => {
                    self.putters.wake_one(&self.lock);
                    return Ok(item);
                }
                Err(TryGet::ShutDown) => return Err(GetFail::ShutDown),
                Err(TryGet::Draining) => {
                    // The shutdown holds the lock until it has drained.
                    drop(self.lock.lock());
                    return Err(GetFail::ShutDown);
                }
                Err(TryGet::Empty) if last => {
                    return Err(match wait {
                        Wait::No => GetFail::Empty,
                        _ => GetFail::Timeout,
                    });
                }
                Err(TryGet::Empty) => {}
            }
            // Empty. While pausing, wait for a few items (counts first,
            // as for a put), then for any.
            let several = || self.len() >= self.get_batch && self.may_get();
            if !spin_until(wait, several, || self.may_get()) {
                self.getters.sleep(&self.lock, wait, || self.may_get());
            }
        }
    }

    pub(crate) fn qsize(&self) -> usize {
        loop {
            // Tail, head, tail again: a pair read while nothing moved.
            let tail = self.tail.load(Ordering::SeqCst) & !self.mark;
            let head = self.head.load(Ordering::SeqCst) & !self.mark;
            if self.tail.load(Ordering::SeqCst) & !self.mark == tail {
                return self.count(tail).wrapping_sub(self.count(head));
            }
        }
    }

    pub(crate) fn full(&self) -> bool {
        self.qsize() >= self.slots.len()
    }

    /// Puts ever made (claimed): the tail's position.
    fn puts(&self) -> usize {
        self.count(self.tail.load(Ordering::SeqCst) & !self.mark)
    }

    /// Whether every put is done. `done` first: it never passes the puts,
    /// and puts only grow, so equal means equal at the second read.
    fn all_done(&self) -> bool {
        let done = self.done.load(Ordering::SeqCst);
        done == self.puts()
    }

    pub(crate) fn unfinished_tasks(&self) -> usize {
        let done = self.done.load(Ordering::SeqCst);
        self.puts().wrapping_sub(done)
    }

    /// Marks one item done; `false` if every item put was already done.
    pub(crate) fn task_done(&self) -> bool {
        let counted = self
            .done
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |done| {
                (done != self.puts()).then(|| done + 1)
            });
        match counted {
            Ok(before) => {
                if before + 1 == self.puts() {
                    self.joiners.wake_all(&self.lock);
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Waits until every item put is done; `false` if the wait ran out first.
    pub(crate) fn join(&self, wait: Wait) -> bool {
        loop {
            if self.all_done() {
                return true;
            }
            match wait {
                Wait::No => return false,
                Wait::Until(deadline) if Instant::now() >= deadline => return false,
                _ => {}
            }
            self.joiners.sleep(&self.lock, wait, || self.all_done());
        }
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.tail.load(Ordering::SeqCst) & self.mark != 0
    }

    /// Python 3.13's `shutdown`; returns the items an immediate shutdown
    /// took out, in the order `get` would have returned them.
    pub(crate) fn shutdown(&self, immediate: bool) -> Vec<T> {
        let _guard = self.lock.lock();
        let mut drained = Vec::new();
        if immediate {
            // Head first: from here no get claims an item, so what is left
            // stays for us; puts still land until the tail's mark below.
            let head = self.head.fetch_or(self.mark, Ordering::SeqCst) & !self.mark;
            let tail = self.tail.fetch_or(self.mark, Ordering::SeqCst) & !self.mark;
            let mut pos = head;
            while pos != tail {
                let slot = self.slot(pos);
                // A put that claimed this position before the mark may
                // still be writing; it cannot take long (no waiting inside).
                let backoff = Backoff::new();
                while slot.stamp.load(Ordering::Acquire) != pos + 1 {
                    backoff.snooze();
                }
                drained.extend(slot.item.lock().take());
                slot.stamp
                    .store(pos.wrapping_add(self.one_lap), Ordering::Release);
                pos = self.next(pos);
            }
            self.head.store(tail | self.mark, Ordering::SeqCst);
            // Python counts drained items as done (never past the puts,
            // since some may have been marked done before they were got).
            let puts = self.count(tail);
            let _ = self
                .done
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |done| {
                    Some((done + drained.len()).min(puts))
                });
            self.joiners.wake_all_locked();
        } else {
            self.tail.fetch_or(self.mark, Ordering::SeqCst);
        }
        // Every sleeper re-checks: putters see the mark, getters see it
        // (or the items left), joiners the drained count.
        self.getters.wake_all_locked();
        self.putters.wake_all_locked();
        drained
    }
}
