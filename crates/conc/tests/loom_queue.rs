//! Loom models of `conc::queue`: every interleaving of small producer/consumer, join and shutdown scenarios.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p conc
//! --release --test loom_queue`. Under loom the queue's locks, condition
//! variables and atomics are loom's, so a lost wake-up (a notify skipped
//! because the waiter count was read at the wrong time) shows up here as a
//! deadlock. Only untimed calls are used: loom has no clock.
//!
//! `Queue` runs on two engines: the lock-free ring for a bound of 1 to 1024
//! and the locked engine otherwise (`src/queue/engine.rs`). Models that need
//! no bound run over both ([`ENGINES`]); the `ring_` models check the
//! ring's own protocols: its parking (a put racing a getter that is
//! parking, a get racing a putter that is parking, two wakes for two
//! sleepers) and its immediate shutdown (a drain racing a put that has
//! claimed a slot, and a get). `LifoQueue` runs the locked engine's
//! full-queue path, which a bounded `Queue` now leaves to the ring.
#![cfg(loom)]

use std::sync::Arc;

use conc::queue::{GetError, LifoQueue, PriorityQueue, PutError, Queue, ShutDown};
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;

/// The maxsizes that put a `Queue` on each engine: unbounded (the locked
/// engine) and two slots (the ring).
const ENGINES: [usize; 2] = [0, 2];

/// Runs one model body over `q`, room for one, twice: a `Queue` (the
/// lock-free ring) and a `LifoQueue` (the locked engine's full-queue path;
/// with room for one it hands out the same order).
macro_rules! on_ring_and_locked_engine {
    (|$q:ident| $body:block) => {{
        loom::model(|| {
            let $q = Arc::new(Queue::new(1));
            $body
        });
        loom::model(|| {
            let $q = Arc::new(LifoQueue::new(1));
            $body
        });
    }};
}

/// One producer, one consumer, room for one: both items arrive, in order,
/// whichever thread runs first and however often the producer must wait.
/// The `Queue` is a ring; the `LifoQueue` (which, with room for one, hands
/// out the same order) is the locked engine.
#[test]
fn two_items_through_maxsize_one_arrive_in_order() {
    on_ring_and_locked_engine!(|q| {
        let producer = {
            let q = q.clone();
            thread::spawn(move || {
                q.put(1).unwrap();
                q.put(2).unwrap();
            })
        };
        assert_eq!(q.get(), Ok(1));
        assert_eq!(q.get(), Ok(2));
        producer.join().unwrap();
        assert!(q.empty());
    });
}

/// `join` returns only after the consumer has marked the item done, and
/// never misses the wake-up.
#[test]
fn join_waits_for_task_done() {
    for maxsize in ENGINES {
        loom::model(move || {
            let q = Arc::new(Queue::new(maxsize));
            let done = Arc::new(AtomicBool::new(false));
            q.put(7).unwrap();
            let consumer = {
                let (q, done) = (q.clone(), done.clone());
                thread::spawn(move || {
                    assert_eq!(q.get(), Ok(7));
                    done.store(true, Ordering::Relaxed);
                    q.task_done().unwrap();
                })
            };
            q.join();
            // The consumer's work happened before its task_done, hence
            // before join returned (the queue orders them).
            assert!(done.load(Ordering::Relaxed));
            assert_eq!(q.unfinished_tasks(), 0);
            consumer.join().unwrap();
        });
    }
}

/// A getter blocked on an empty queue wakes when it is shut down.
#[test]
fn shutdown_wakes_a_blocked_getter() {
    for maxsize in ENGINES {
        loom::model(move || {
            let q: Arc<Queue<u8>> = Arc::new(Queue::new(maxsize));
            let getter = {
                let q = q.clone();
                thread::spawn(move || q.get())
            };
            q.shutdown(false);
            assert_eq!(getter.join().unwrap(), Err(ShutDown(())));
        });
    }
}

/// A putter blocked on a full queue (or about to block) wakes when it is
/// shut down and gets its item back; the item already in still comes out.
/// The `Queue` is a ring, the `LifoQueue` the locked engine.
#[test]
fn shutdown_wakes_a_blocked_putter() {
    on_ring_and_locked_engine!(|q| {
        q.put(1).unwrap();
        let putter = {
            let q = q.clone();
            thread::spawn(move || q.put(2))
        };
        q.shutdown(false);
        assert_eq!(putter.join().unwrap(), Err(ShutDown(2)));
        assert_eq!(q.get(), Ok(1));
        assert_eq!(q.get_nowait(), Err(GetError::ShutDown));
    });
}

/// A shutdown racing a put and a get: the put either lands before it (and
/// the item is got) or is refused with its item; the getter never hangs.
#[test]
fn shutdown_races_put_and_get() {
    for maxsize in ENGINES {
        loom::model(move || {
            let q = Arc::new(Queue::new(maxsize));
            let putter = {
                let q = q.clone();
                thread::spawn(move || q.put(5))
            };
            let getter = {
                let q = q.clone();
                thread::spawn(move || q.get())
            };
            q.shutdown(false);
            let put = putter.join().unwrap();
            let got = getter.join().unwrap();
            match (put, got) {
                (Ok(()), Ok(5)) => {}
                // Put in, but the getter saw the empty shut-down queue
                // first: the item is still there for the next get.
                (Ok(()), Err(ShutDown(()))) => assert_eq!(q.get_nowait(), Ok(5)),
                (Err(ShutDown(5)), Err(ShutDown(()))) => assert!(q.empty()),
                other => panic!("impossible outcome {other:?}"),
            }
        });
    }
}

/// An immediate shutdown drains the queue, counts the item done and wakes
/// a thread waiting in `join`.
#[test]
fn immediate_shutdown_wakes_a_joiner() {
    for maxsize in ENGINES {
        loom::model(move || {
            let q = Arc::new(Queue::new(maxsize));
            q.put(1).unwrap();
            let joiner = {
                let q = q.clone();
                thread::spawn(move || q.join())
            };
            assert_eq!(q.shutdown(true), [1]);
            joiner.join().unwrap();
            assert_eq!(q.unfinished_tasks(), 0);
        });
    }
}

/// Two `put_nowait`s race for the one slot of a ring: exactly one gets in,
/// the other is refused as full with its item.
#[test]
fn put_nowait_races_for_one_slot() {
    loom::model(|| {
        let q = Arc::new(Queue::new(1));
        let a = {
            let q = q.clone();
            thread::spawn(move || q.put_nowait(1))
        };
        let b = q.put_nowait(2);
        let a = a.join().unwrap();
        match (a, b) {
            (Ok(()), Err(PutError::Full(2))) => assert_eq!(q.get_nowait(), Ok(1)),
            (Err(PutError::Full(1)), Ok(())) => assert_eq!(q.get_nowait(), Ok(2)),
            other => panic!("impossible outcome {other:?}"),
        }
    });
}

/// The LIFO and priority stores share the engine: a blocked getter is woken
/// by a put, and each takes its own order.
#[test]
fn lifo_and_priority_wake_a_blocked_getter() {
    loom::model(|| {
        let lifo = Arc::new(LifoQueue::new(0));
        let prio = Arc::new(PriorityQueue::new(0));
        let getter = {
            let (lifo, prio) = (lifo.clone(), prio.clone());
            thread::spawn(move || (lifo.get(), prio.get()))
        };
        lifo.put(1).unwrap();
        prio.put(3).unwrap();
        assert_eq!(getter.join().unwrap(), (Ok(1), Ok(3)));
    });
}

/// A put racing a getter that found the ring empty: whether the put lands
/// before the getter counts itself in, between its count and its re-check,
/// or after it sleeps, the getter gets the item (no lost wake-up).
#[test]
fn ring_put_wakes_a_parking_get() {
    loom::model(|| {
        let q = Arc::new(Queue::new(2));
        let getter = {
            let q = q.clone();
            thread::spawn(move || q.get())
        };
        q.put(1).unwrap();
        assert_eq!(getter.join().unwrap(), Ok(1));
        assert!(q.empty());
    });
}

/// With room for one, a get racing a putter that found the ring full: the
/// putter is woken (or never sleeps) and its item is the next one out.
#[test]
fn ring_get_wakes_a_parking_put() {
    loom::model(|| {
        let q = Arc::new(Queue::new(1));
        q.put(1).unwrap();
        let putter = {
            let q = q.clone();
            thread::spawn(move || q.put(2))
        };
        assert_eq!(q.get(), Ok(1));
        putter.join().unwrap().unwrap();
        assert_eq!(q.get_nowait(), Ok(2));
        assert_eq!(q.unfinished_tasks(), 2);
    });
}

/// Two getters asleep (or on their way), two puts: each put wakes one, and
/// a wake is never spent on a getter that has already left with an item.
#[test]
fn ring_two_puts_wake_two_getters() {
    loom::model(|| {
        let q = Arc::new(Queue::new(2));
        let getters: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                thread::spawn(move || q.get().unwrap())
            })
            .collect();
        q.put(1).unwrap();
        q.put(2).unwrap();
        let mut got: Vec<_> = getters.into_iter().map(|g| g.join().unwrap()).collect();
        got.sort();
        assert_eq!(got, [1, 2]);
    });
}

/// An immediate shutdown racing a put and a get on the ring: the item is
/// got, drained or handed back, exactly once. The drain waits for a put
/// that claimed its slot before the shutdown, and a get that meets the
/// draining ring fails instead of taking an item the drain returns.
#[test]
fn ring_immediate_shutdown_races_put_and_get() {
    loom::model(|| {
        let q = Arc::new(Queue::new(2));
        let putter = {
            let q = q.clone();
            thread::spawn(move || q.put(5))
        };
        let getter = {
            let q = q.clone();
            thread::spawn(move || q.get())
        };
        let drained = q.shutdown(true);
        let put = putter.join().unwrap();
        let got = getter.join().unwrap();
        match (put, got, drained.as_slice()) {
            // Got before the shutdown: put, not yet done.
            (Ok(()), Ok(5), []) => assert_eq!(q.unfinished_tasks(), 1),
            // Drained: counted done.
            (Ok(()), Err(ShutDown(())), [5]) => assert_eq!(q.unfinished_tasks(), 0),
            (Err(ShutDown(5)), Err(ShutDown(())), []) => assert_eq!(q.unfinished_tasks(), 0),
            other => panic!("impossible outcome {other:?}"),
        }
        assert!(q.empty() && q.is_shutdown());
        assert_eq!(q.get_nowait(), Err(GetError::ShutDown));
    });
}

/// A `task_done` racing a `join` on the ring, with a put still to come
/// from the same thread: `join` waits for both items and is woken by the
/// last `task_done`.
#[test]
fn ring_join_sees_the_last_task_done() {
    loom::model(|| {
        let q = Arc::new(Queue::new(1));
        q.put(1).unwrap();
        let worker = {
            let q = q.clone();
            thread::spawn(move || {
                q.get().unwrap();
                q.put(2).unwrap();
                q.task_done().unwrap();
                q.get().unwrap();
                q.task_done().unwrap();
            })
        };
        q.join();
        assert_eq!(q.unfinished_tasks(), 0);
        assert!(q.empty());
        worker.join().unwrap();
    });
}
