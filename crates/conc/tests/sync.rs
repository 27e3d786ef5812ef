//! Behaviour tests of `conc::sync`: mutual exclusion, re-entry, permits, events, conditions, barriers, and every timeout.
#![cfg(not(loom))] // the model checks are the loom_* files

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use conc::sync::{
    Barrier, BarrierError, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore,
    TooManyReleases,
};

/// Short enough to keep the suite quick, long enough to measure.
const TIMEOUT: Duration = Duration::from_millis(50);
/// "Forever" for a wait that must succeed: only reached if the code is wrong.
const PATIENCE: Duration = Duration::from_secs(10);

/// Waits until `done` holds, polling: for "the other thread got that far".
fn eventually(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "condition never became true");
        thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `attempt` in another thread and says how long it took: for "a
/// thread that does not hold the lock gives up after the timeout".
fn time_in_another_thread(attempt: impl FnOnce() + Send) -> Duration {
    thread::scope(|s| {
        s.spawn(|| {
            let start = Instant::now();
            attempt();
            start.elapsed()
        })
        .join()
        .unwrap()
    })
}

// ---- Lock ----

#[test]
fn lock_excludes_other_threads() {
    let counter = Lock::new(0u64);
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..10_000 {
                    // Read, then write: loses updates unless exclusive.
                    let mut guard = counter.acquire();
                    let seen = *guard;
                    *guard = seen + 1;
                }
            });
        }
    });
    assert_eq!(counter.into_inner(), 40_000);
}

#[test]
fn lock_try_acquire_fails_while_held_and_succeeds_after() {
    let lock = Lock::new(());
    let held = lock.acquire();
    assert!(lock.locked());
    thread::scope(|s| assert!(s.spawn(|| lock.try_acquire().is_none()).join().unwrap()));
    held.release();
    assert!(!lock.locked());
    assert!(lock.try_acquire().is_some());
}

#[test]
fn lock_acquire_timeout_gives_up_while_held() {
    let lock = Lock::new(());
    let _held = lock.acquire();
    let waited = time_in_another_thread(|| assert!(lock.acquire_timeout(TIMEOUT).is_none()));
    assert!(waited >= TIMEOUT, "gave up after {waited:?}");
}

#[test]
fn lock_acquire_timeout_succeeds_once_released() {
    let lock = Lock::new(0);
    let held = lock.acquire();
    thread::scope(|s| {
        let waiter = s.spawn(|| lock.acquire_timeout(PATIENCE).map(|g| *g));
        thread::sleep(Duration::from_millis(10));
        drop(held);
        assert_eq!(waiter.join().unwrap(), Some(0));
    });
}

#[test]
fn lock_has_a_name_and_debug_shows_it() {
    let lock = Lock::named("fork 1", 7);
    assert_eq!(lock.name(), Some("fork 1"));
    assert_eq!(Lock::new(()).name(), None);
    assert_eq!(format!("{lock:?}"), r#"Lock { name: "fork 1", data: 7 }"#);
    let _held = lock.acquire();
    assert_eq!(
        format!("{lock:?}"),
        r#"Lock { name: "fork 1", data: <locked> }"#
    );
}

// ---- RLock ----

#[test]
fn rlock_reenters_in_the_owning_thread() {
    let lock = RLock::new(std::cell::Cell::new(0));
    let a = lock.acquire();
    let b = lock.acquire();
    let c = lock.try_acquire().expect("the owner may take it again");
    let d = lock
        .acquire_timeout(TIMEOUT)
        .expect("the owner may take it again");
    a.set(a.get() + 1);
    d.set(d.get() + 1);
    assert_eq!(b.get() + c.get(), 4);
    assert!(lock.is_owned());
}

#[test]
fn rlock_excludes_others_until_every_guard_is_dropped() {
    let lock = RLock::new(());
    let outer = lock.acquire();
    let inner = lock.acquire();
    thread::scope(|s| {
        let other = || s.spawn(|| lock.try_acquire().is_none()).join().unwrap();
        assert!(other(), "held twice");
        inner.release();
        assert!(other(), "still held once");
        outer.release();
        assert!(!other(), "free");
    });
    assert!(!lock.locked());
}

#[test]
fn rlock_acquire_timeout_gives_up_in_other_threads() {
    let lock = RLock::new(());
    let _held = lock.acquire();
    let waited = time_in_another_thread(|| {
        assert!(lock.acquire_timeout(TIMEOUT).is_none());
        assert!(!lock.is_owned());
    });
    assert!(waited >= TIMEOUT, "gave up after {waited:?}");
}

// ---- Semaphore and BoundedSemaphore ----

#[test]
fn semaphore_admits_at_most_its_permits() {
    let sem = Semaphore::new(2);
    let inside = AtomicUsize::new(0);
    let most = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                for _ in 0..200 {
                    let _permit = sem.acquire();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    thread::yield_now();
                    inside.fetch_sub(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert!(most.load(Ordering::SeqCst) <= 2);
    assert_eq!(sem.available(), 2, "every permit came back on drop");
}

#[test]
fn semaphore_permit_goes_back_on_drop_and_wakes_a_waiter() {
    let sem = Semaphore::new(1);
    let permit = sem.acquire();
    thread::scope(|s| {
        let waiter = s.spawn(|| {
            let _permit = sem.acquire();
        });
        thread::sleep(Duration::from_millis(10));
        drop(permit);
        waiter.join().unwrap();
    });
    assert_eq!(sem.available(), 1);
}

#[test]
fn semaphore_release_adds_a_permit_and_wakes_a_waiter() {
    let sem = Semaphore::new(0);
    thread::scope(|s| {
        let waiter = s.spawn(|| sem.acquire().forget());
        thread::sleep(Duration::from_millis(10));
        sem.release();
        waiter.join().unwrap();
    });
    assert_eq!(sem.available(), 0);
    // Unbounded: may grow past the initial count, as in Python.
    sem.release();
    sem.release();
    assert_eq!(sem.available(), 2);
}

#[test]
fn semaphore_acquire_timeout_gives_up_without_permits() {
    let sem = Semaphore::new(1);
    let _permit = sem.try_acquire().expect("one permit");
    assert!(sem.try_acquire().is_none());
    let start = Instant::now();
    assert!(sem.acquire_timeout(TIMEOUT).is_none());
    assert!(start.elapsed() >= TIMEOUT);
    assert_eq!(sem.available(), 0);
}

#[test]
fn semaphore_acquire_timeout_gets_a_permit_released_in_time() {
    let sem = Semaphore::new(0);
    thread::scope(|s| {
        let waiter = s.spawn(|| sem.acquire_timeout(PATIENCE).map(|p| p.forget()));
        thread::sleep(Duration::from_millis(10));
        sem.release();
        assert!(waiter.join().unwrap().is_some());
    });
}

#[test]
fn bounded_semaphore_refuses_releases_past_its_initial_value() {
    let sem = BoundedSemaphore::new(2);
    assert_eq!(sem.release(), Err(TooManyReleases));
    let a = sem.acquire();
    let b = sem.acquire();
    // Both permits will come back on drop: no explicit release fits.
    assert_eq!(sem.release(), Err(TooManyReleases));
    b.forget();
    assert_eq!(sem.release(), Ok(()), "returns the forgotten permit");
    assert_eq!(sem.release(), Err(TooManyReleases));
    drop(a);
    assert_eq!(sem.available(), 2);
    assert_eq!(sem.bound(), 2);
}

#[test]
fn bounded_semaphore_timeout_and_wakeup() {
    let sem = BoundedSemaphore::new(1);
    let permit = sem.acquire();
    let start = Instant::now();
    assert!(sem.acquire_timeout(TIMEOUT).is_none());
    assert!(start.elapsed() >= TIMEOUT);
    thread::scope(|s| {
        let waiter = s.spawn(|| sem.acquire_timeout(PATIENCE).is_some());
        thread::sleep(Duration::from_millis(10));
        drop(permit);
        assert!(waiter.join().unwrap());
    });
    assert_eq!(sem.available(), 1);
}

// ---- Event ----

#[test]
fn event_set_wakes_every_waiter() {
    let event = Event::new();
    let woken = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                event.wait();
                woken.fetch_add(1, Ordering::SeqCst);
            });
        }
        thread::sleep(Duration::from_millis(10));
        assert_eq!(
            woken.load(Ordering::SeqCst),
            0,
            "nobody passes a clear event"
        );
        event.set();
    });
    assert_eq!(woken.load(Ordering::SeqCst), 3);
}

#[test]
fn event_wait_timeout_returns_the_flag() {
    let event = Event::new();
    let start = Instant::now();
    assert!(!event.wait_timeout(TIMEOUT));
    assert!(start.elapsed() >= TIMEOUT);
    thread::scope(|s| {
        let waiter = s.spawn(|| event.wait_timeout(PATIENCE));
        thread::sleep(Duration::from_millis(10));
        event.set();
        assert!(waiter.join().unwrap());
    });
}

#[test]
fn event_clear_makes_waits_block_again() {
    let event = Event::new();
    event.set();
    assert!(event.is_set());
    event.wait();
    event.clear();
    assert!(!event.is_set());
    assert!(!event.wait_timeout(Duration::from_millis(5)));
}

// ---- Condition ----

#[test]
fn condition_notify_n_wakes_n_waiters() {
    // (waiting, woken)
    let cond = Condition::new((0, 0));
    thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                let mut guard = cond.acquire();
                guard.0 += 1;
                guard.wait(); // one wakeup each, spurious ones aside
                guard.1 += 1;
            });
        }
        // Counted under the lock that `wait` gives up: at 3, all are asleep.
        eventually(|| cond.acquire().0 == 3);
        cond.notify(2);
        eventually(|| cond.acquire().1 == 2);
        thread::sleep(Duration::from_millis(20));
        assert_eq!(cond.acquire().1, 2, "notify(2) woke a third");
        cond.notify_all();
    });
    assert_eq!(cond.into_inner(), (3, 3));
}

#[test]
fn condition_notify_more_than_waiting_is_harmless() {
    let cond = Condition::new(());
    cond.notify(5);
    cond.notify_all();
}

#[test]
fn condition_wait_for_returns_once_the_predicate_holds() {
    let queue = Condition::new(Vec::new());
    thread::scope(|s| {
        let consumer = s.spawn(|| {
            let mut guard = queue.acquire();
            guard.wait_for(|items: &Vec<u32>| items.len() >= 3);
            guard.drain(..).sum::<u32>()
        });
        for i in 1..=3 {
            queue.acquire().push(i);
            queue.notify(1);
        }
        assert_eq!(consumer.join().unwrap(), 6);
    });
}

#[test]
fn condition_wait_timeout_reports_the_timeout() {
    let cond = Condition::new(());
    let mut guard = cond.acquire();
    let start = Instant::now();
    assert!(!guard.wait_timeout(TIMEOUT));
    assert!(start.elapsed() >= TIMEOUT);
}

#[test]
fn condition_wait_timeout_reports_a_notify() {
    let cond = Condition::new(false);
    thread::scope(|s| {
        let waiter = s.spawn(|| {
            let mut guard = cond.acquire();
            *guard = true; // "I am waiting", set under the lock wait gives up
            guard.wait_timeout(PATIENCE)
        });
        eventually(|| *cond.acquire());
        cond.notify(1);
        assert!(waiter.join().unwrap());
    });
}

#[test]
fn condition_wait_for_timeout_returns_the_predicate() {
    let cond = Condition::new(0);
    let start = Instant::now();
    assert!(!cond.acquire().wait_for_timeout(TIMEOUT, |n| *n > 0));
    assert!(start.elapsed() >= TIMEOUT);
    thread::scope(|s| {
        let waiter = s.spawn(|| cond.acquire().wait_for_timeout(PATIENCE, |n| *n == 2));
        for _ in 0..2 {
            thread::sleep(Duration::from_millis(5));
            *cond.acquire() += 1;
            cond.notify_all();
        }
        assert!(waiter.join().unwrap());
    });
}

// ---- Barrier ----

#[test]
fn barrier_gives_each_party_a_distinct_index_every_cycle() {
    const PARTIES: usize = 3;
    const ROUNDS: usize = 50;
    let barrier = Barrier::new(PARTIES);
    let seen = Mutex::new(vec![Vec::new(); ROUNDS]);
    thread::scope(|s| {
        for _ in 0..PARTIES {
            s.spawn(|| {
                for round in 0..ROUNDS {
                    let index = barrier.wait().unwrap();
                    seen.lock().unwrap()[round].push(index);
                }
            });
        }
    });
    for (round, mut indices) in seen.into_inner().unwrap().into_iter().enumerate() {
        indices.sort_unstable();
        assert_eq!(indices, [0, 1, 2], "round {round}");
    }
    assert_eq!(barrier.n_waiting(), 0);
    assert!(!barrier.broken());
}

#[test]
fn barrier_timeout_breaks_it_for_every_waiter() {
    let barrier = Barrier::new(3);
    thread::scope(|s| {
        let patient = s.spawn(|| barrier.wait());
        eventually(|| barrier.n_waiting() == 1);
        let start = Instant::now();
        assert_eq!(barrier.wait_timeout(TIMEOUT), Err(BarrierError::Timeout));
        assert!(start.elapsed() >= TIMEOUT);
        assert_eq!(patient.join().unwrap(), Err(BarrierError::Broken));
    });
    assert!(barrier.broken());
    assert_eq!(barrier.wait(), Err(BarrierError::Broken), "stays broken");
}

#[test]
fn barrier_abort_breaks_it_for_every_waiter() {
    let barrier = Barrier::new(3);
    thread::scope(|s| {
        let waiters: Vec<_> = (0..2).map(|_| s.spawn(|| barrier.wait())).collect();
        eventually(|| barrier.n_waiting() == 2);
        barrier.abort();
        for waiter in waiters {
            assert_eq!(waiter.join().unwrap(), Err(BarrierError::Broken));
        }
    });
    assert!(barrier.broken());
    assert_eq!(barrier.n_waiting(), 0);
}

#[test]
fn barrier_reset_breaks_waiters_then_works_again() {
    let barrier = Barrier::new(2);
    thread::scope(|s| {
        let waiter = s.spawn(|| barrier.wait());
        eventually(|| barrier.n_waiting() == 1);
        barrier.reset();
        assert_eq!(waiter.join().unwrap(), Err(BarrierError::Broken));
    });
    assert!(!barrier.broken());
    thread::scope(|s| {
        let other = s.spawn(|| barrier.wait());
        let mine = barrier.wait().unwrap();
        assert_eq!(mine + other.join().unwrap().unwrap(), 1);
    });
    barrier.abort();
    barrier.reset();
    assert!(!barrier.broken(), "reset also repairs an aborted barrier");
    assert_eq!(barrier.parties(), 2);
}

/// From a review: a timeout too large for the clock (`Duration::MAX`)
/// used to panic in `Instant + Duration`; it now just waits long.
#[test]
fn huge_timeouts_do_not_panic() {
    use conc::sync::{Event, Semaphore};
    let event = Event::new();
    event.set();
    assert!(event.wait_timeout(Duration::MAX));
    let semaphore = Semaphore::new(1);
    assert!(semaphore.acquire_timeout(Duration::MAX).is_some());
}
