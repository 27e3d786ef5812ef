//! Loom models of `conc::queue`: every interleaving of small producer/consumer, join and shutdown scenarios.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p conc
//! --release --test loom_queue`. Under loom the queue's lock and condition
//! variables are loom's, so a lost wake-up (a notify skipped because the
//! waiter count was read at the wrong time) shows up here as a deadlock.
//! Only untimed calls are used: loom has no clock.
#![cfg(loom)]

use std::sync::Arc;

use conc::queue::{GetError, LifoQueue, PriorityQueue, PutError, Queue, ShutDown};
use loom::thread;

/// One producer, one consumer, room for one: both items arrive, in order,
/// whichever thread runs first and however often the producer must wait.
#[test]
fn two_items_through_maxsize_one_arrive_in_order() {
    loom::model(|| {
        let q = Arc::new(Queue::new(1));
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
    loom::model(|| {
        let q = Arc::new(Queue::new(0));
        let done = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        q.put(7).unwrap();
        let consumer = {
            let (q, done) = (q.clone(), done.clone());
            thread::spawn(move || {
                assert_eq!(q.get(), Ok(7));
                done.store(true, loom::sync::atomic::Ordering::Relaxed);
                q.task_done().unwrap();
            })
        };
        q.join();
        // The consumer's work happened before its task_done, hence before
        // join returned (the queue's lock orders them).
        assert!(done.load(loom::sync::atomic::Ordering::Relaxed));
        assert_eq!(q.unfinished_tasks(), 0);
        consumer.join().unwrap();
    });
}

/// A getter blocked on an empty queue wakes when it is shut down.
#[test]
fn shutdown_wakes_a_blocked_getter() {
    loom::model(|| {
        let q: Arc<Queue<u8>> = Arc::new(Queue::new(0));
        let getter = {
            let q = q.clone();
            thread::spawn(move || q.get())
        };
        q.shutdown(false);
        assert_eq!(getter.join().unwrap(), Err(ShutDown(())));
    });
}

/// A putter blocked on a full queue (or about to block) wakes when it is
/// shut down and gets its item back; the item already in still comes out.
#[test]
fn shutdown_wakes_a_blocked_putter() {
    loom::model(|| {
        let q = Arc::new(Queue::new(1));
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
    loom::model(|| {
        let q = Arc::new(Queue::new(0));
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
            // Put in, but the getter saw the empty shut-down queue first:
            // the item is still there for the next get.
            (Ok(()), Err(ShutDown(()))) => assert_eq!(q.get_nowait(), Ok(5)),
            (Err(ShutDown(5)), Err(ShutDown(()))) => assert!(q.empty()),
            other => panic!("impossible outcome {other:?}"),
        }
    });
}

/// An immediate shutdown drains the queue, counts the item done and wakes
/// a thread waiting in `join`.
#[test]
fn immediate_shutdown_wakes_a_joiner() {
    loom::model(|| {
        let q = Arc::new(Queue::new(0));
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

/// Two `put_nowait`s race for the one slot: exactly one gets in, the other
/// is refused as full with its item.
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
