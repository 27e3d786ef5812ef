//! Loom model tests of `Semaphore` and `BoundedSemaphore`: every interleaving of a few threads keeps the count right.
#![cfg(loom)]

use conc::sync::{BoundedSemaphore, Semaphore, TooManyReleases};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

/// One permit, three threads: never two inside at once, and every permit
/// comes back.
#[test]
fn one_permit_admits_one_thread_at_a_time() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(1));
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (sem, inside) = (sem.clone(), inside.clone());
                thread::spawn(move || {
                    let _permit = sem.acquire();
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        {
            let _permit = sem.acquire();
            assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
            inside.fetch_sub(1, Ordering::SeqCst);
        }
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(sem.available(), 1);
    });
}

/// A thread blocked on an empty semaphore is woken by `release`, whatever
/// the order in which the two get there (loom reports a deadlock if not).
#[test]
fn release_wakes_a_waiter() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(0));
        let waiter = {
            let sem = sem.clone();
            thread::spawn(move || sem.acquire().forget())
        };
        sem.release();
        waiter.join().unwrap();
        assert_eq!(sem.available(), 0);
    });
}

/// Two waiters, two releases: both wake (no release is lost to a waiter
/// that was already woken).
#[test]
fn two_releases_wake_two_waiters() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(0));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let sem = sem.clone();
                thread::spawn(move || sem.acquire().forget())
            })
            .collect();
        sem.release();
        sem.release();
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(sem.available(), 0);
    });
}

/// A dropped permit wakes a thread waiting for it.
#[test]
fn dropped_permit_wakes_a_waiter() {
    loom::model(|| {
        let sem = Arc::new(BoundedSemaphore::new(1));
        let permit_holder = {
            let sem = sem.clone();
            thread::spawn(move || drop(sem.acquire()))
        };
        drop(sem.acquire());
        permit_holder.join().unwrap();
        assert_eq!(sem.available(), 1);
    });
}

/// A bounded semaphore whose permits all come back on drop never accepts
/// an extra release, however it interleaves with the acquire and drop.
#[test]
fn bounded_release_never_exceeds_the_bound() {
    loom::model(|| {
        let sem = Arc::new(BoundedSemaphore::new(1));
        let user = {
            let sem = sem.clone();
            thread::spawn(move || drop(sem.acquire()))
        };
        assert_eq!(sem.release(), Err(TooManyReleases));
        user.join().unwrap();
        assert_eq!(sem.available(), 1);
    });
}
