//! Greenlet primitives: Event, Lock, Semaphore, Queue and Pool.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use green::{Event, Lock, Pool, PutError, Queue, Semaphore};

/// `set` wakes every greenlet waiting on the event.
#[test]
fn an_event_wakes_every_waiter() {
    // 100,000 of them, each with a stack of its own: the stacks are slots
    // of a few large mappings, so they fit far under `vm.max_map_count`
    // (65,530 here), which stacks mapped one by one, each with a guard,
    // would exhaust near 32,000.
    const N: usize = 100_000;
    let mappings = || {
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .count()
    };
    let before = mappings();
    let during = green::Hub::new().stack_size(16 * 1024).run(move || {
        let event = Rc::new(Event::new());
        let woken = Rc::new(Cell::new(0));
        let greenlets: Vec<_> = (0..N)
            .map(|_| {
                let (event, woken) = (Rc::clone(&event), Rc::clone(&woken));
                green::spawn(move || {
                    event.wait();
                    woken.set(woken.get() + 1);
                })
            })
            .collect();
        // Every greenlet runs up to its wait: all N stacks are in use.
        green::sleep(Duration::ZERO);
        assert_eq!(woken.get(), 0);
        let during = mappings();
        event.set();
        assert_eq!(green::joinall(&greenlets, None).len(), N);
        assert_eq!(woken.get(), N);
        during
    });
    assert!(
        during - before < N / 10,
        "{N} stacks took {} mappings",
        during - before
    );
}

/// A full queue parks `put` until a `get` makes room.
#[test]
fn a_full_queue_blocks_put() {
    green::run(|| {
        let queue = Rc::new(Queue::new(1));
        queue.put(1).unwrap();
        let put_done = Rc::new(Cell::new(false));
        let producer = {
            let (queue, put_done) = (Rc::clone(&queue), Rc::clone(&put_done));
            green::spawn(move || {
                queue.put(2).unwrap();
                put_done.set(true);
            })
        };
        green::sleep(Duration::ZERO);
        green::sleep(Duration::ZERO);
        assert!(!put_done.get(), "put went through a full queue");
        assert!(queue.full());
        assert_eq!(queue.get(), Ok(1));
        producer.join();
        assert!(put_done.get());
        assert_eq!(queue.get(), Ok(2));
        assert!(matches!(queue.put_nowait(3), Ok(())));
        assert!(matches!(queue.put_nowait(4), Err(PutError::Full(4))));
    });
}

/// `get_timeout` on an empty queue times out; `shutdown` wakes a waiting
/// getter.
#[test]
fn queue_timeouts_and_shutdown() {
    green::run(|| {
        let queue: Rc<Queue<u8>> = Rc::new(Queue::new(0));
        assert_eq!(
            queue.get_timeout(Duration::from_millis(1)),
            Err(green::GetError::Timeout)
        );
        let getter = {
            let queue = Rc::clone(&queue);
            green::spawn(move || queue.get())
        };
        green::sleep(Duration::ZERO);
        queue.shutdown(false);
        assert_eq!(getter.get(), Ok(Err(green::ShutDown(()))));
    });
}

/// `Pool(2)` never runs three greenlets at once, and runs them all.
#[test]
fn pool_of_two_never_runs_three() {
    green::run(|| {
        let pool = Pool::new(2);
        let running = Rc::new(Cell::new(0));
        let most = Rc::new(Cell::new(0));
        for _ in 0..20 {
            let (running, most) = (Rc::clone(&running), Rc::clone(&most));
            pool.spawn(move || {
                running.set(running.get() + 1);
                most.set(most.get().max(running.get()));
                green::sleep(Duration::from_millis(1));
                running.set(running.get() - 1);
            });
        }
        pool.join();
        assert_eq!(most.get(), 2);
        assert_eq!(pool.free_count(), 2);
    });
}

/// A pool greenlet that panics, or is killed, frees its place.
#[test]
fn pool_places_come_back_after_panics_and_kills() {
    green::run(|| {
        let pool = Pool::new(1);
        let bad = pool.spawn(|| panic!("pool task failed"));
        assert!(bad.get().is_err());
        assert_eq!(pool.free_count(), 1);
        let slow = pool.spawn(|| green::sleep(Duration::from_secs(3600)));
        assert_eq!(pool.free_count(), 0);
        pool.kill();
        assert!(slow.ready());
        assert_eq!(pool.free_count(), 1);
    });
}

/// The lock excludes: greenlets that switch while holding it never
/// interleave their read-modify-write.
#[test]
fn a_lock_excludes_across_switches() {
    green::run(|| {
        let total = Rc::new(Lock::new(0u32));
        let greenlets: Vec<_> = (0..50)
            .map(|_| {
                let total = Rc::clone(&total);
                green::spawn(move || {
                    for _ in 0..10 {
                        let mut t = total.acquire();
                        let seen = *t;
                        green::sleep(Duration::ZERO);
                        *t = seen + 1;
                    }
                })
            })
            .collect();
        green::joinall(&greenlets, None);
        assert_eq!(*total.acquire(), 500);
    });
}

/// A waiter that is woken by a release but killed before it runs passes
/// the wake on: the next waiter gets the lock.
#[test]
fn a_killed_waiter_passes_the_lock_on() {
    green::run(|| {
        let lock = Rc::new(Lock::new(()));
        let held = lock.acquire();
        let first = {
            let lock = Rc::clone(&lock);
            green::spawn(move || drop(lock.acquire()))
        };
        let second = {
            let lock = Rc::clone(&lock);
            green::spawn(move || drop(lock.acquire()))
        };
        green::sleep(Duration::ZERO); // both wait now
        drop(held); // wakes `first`...
        first.kill(); // ...which is killed before it runs
        assert!(second.join_timeout(Duration::from_secs(60)));
        assert!(!lock.locked());
    });
}

/// A semaphore of 3 lets three greenlets in at once.
#[test]
fn a_semaphore_counts() {
    green::run(|| {
        let sem = Rc::new(Semaphore::new(3));
        let inside = Rc::new(Cell::new(0));
        let most = Rc::new(Cell::new(0));
        let greenlets: Vec<_> = (0..10)
            .map(|_| {
                let (sem, inside, most) = (Rc::clone(&sem), Rc::clone(&inside), Rc::clone(&most));
                green::spawn(move || {
                    let _permit = sem.acquire();
                    inside.set(inside.get() + 1);
                    most.set(most.get().max(inside.get()));
                    green::sleep(Duration::ZERO);
                    inside.set(inside.get() - 1);
                })
            })
            .collect();
        green::joinall(&greenlets, None);
        assert_eq!(most.get(), 3);
        assert_eq!(sem.available(), 3);
    });
}
