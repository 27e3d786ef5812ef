//! Behaviour tests of `conc::deadlock`: one global lock order, the timeout cure, and (feature `deadlock-detector`) the cycle detector.
#![cfg(not(loom))] // the model checks are the loom_* files

use std::thread;
use std::time::Duration;

use conc::deadlock::{acquire_all, acquire_many};
use conc::sync::Lock;

#[test]
fn acquire_all_returns_guards_in_the_callers_order() {
    let a = Lock::new('a');
    let b = Lock::new('b');
    let c = Lock::new('c');
    let [gc, ga, gb] = acquire_all([&c, &a, &b]);
    assert_eq!([*gc, *ga, *gb], ['c', 'a', 'b']);
    assert!(a.locked() && b.locked() && c.locked());
    drop((ga, gb, gc));
    assert!(!a.locked() && !b.locked() && !c.locked());
}

#[test]
fn acquire_many_returns_guards_in_the_callers_order() {
    let locks: Vec<Lock<usize>> = (0..5).map(Lock::new).collect();
    let chosen = [&locks[4], &locks[1], &locks[3]];
    let values: Vec<usize> = acquire_many(&chosen).iter().map(|g| **g).collect();
    assert_eq!(values, [4, 1, 3]);
    assert!(acquire_many::<usize>(&[]).is_empty());
}

#[test]
#[should_panic(expected = "same lock is named twice")]
fn acquire_all_refuses_the_same_lock_twice() {
    let a = Lock::new(());
    let _ = acquire_all([&a, &a]);
}

/// Two threads naming two locks in opposite orders: the classic deadlock,
/// which the global order makes impossible.
#[test]
fn opposite_orders_do_not_deadlock_through_acquire_all() {
    let a = Lock::named("a", 0u32);
    let b = Lock::named("b", 0u32);
    thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..20_000 {
                let [mut ga, mut gb] = acquire_all([&a, &b]);
                *ga += 1;
                *gb += 1;
            }
        });
        s.spawn(|| {
            for _ in 0..20_000 {
                let [mut gb, mut ga] = acquire_all([&b, &a]);
                *ga += 1;
                *gb += 1;
            }
        });
    });
    assert_eq!((a.into_inner(), b.into_inner()), (40_000, 40_000));
}

#[test]
fn dining_philosophers_all_eat() {
    const N: usize = 5;
    let forks: Vec<Lock<u32>> = (0..N)
        .map(|i| Lock::named(format!("fork {i}"), 0))
        .collect();
    thread::scope(|s| {
        for p in 0..N {
            let (left, right) = (&forks[p], &forks[(p + 1) % N]);
            s.spawn(move || {
                for _ in 0..2_000 {
                    let [mut l, mut r] = acquire_all([left, right]);
                    *l += 1;
                    *r += 1;
                }
            });
        }
    });
    assert!(forks.into_iter().all(|fork| fork.into_inner() == 4_000));
}

/// The other cure: a thread that cannot get its second lock in time gives
/// up its first and retries. Both threads first take one lock each, so the
/// first attempt is a real deadlock that only the timeout breaks.
#[test]
fn timeouts_break_a_real_deadlock() {
    let a = Lock::named("a", ());
    let b = Lock::named("b", ());
    let both_hold = std::sync::Barrier::new(2);
    let worker = |first: &Lock, second: &Lock, patience: Duration| {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let held = first.acquire();
            if attempts == 1 {
                both_hold.wait();
            }
            if let Some(_both) = second.acquire_timeout(patience) {
                return attempts;
            }
            drop(held); // back off, then retry
            thread::sleep(Duration::from_millis(1));
        }
    };
    thread::scope(|s| {
        // Different patience, so the two do not back off in lockstep.
        let one = s.spawn(|| worker(&a, &b, Duration::from_millis(20)));
        let two = s.spawn(|| worker(&b, &a, Duration::from_millis(50)));
        let attempts = (one.join().unwrap(), two.join().unwrap());
        assert!(
            attempts.0 > 1 || attempts.1 > 1,
            "the first attempt deadlocked"
        );
    });
}

#[cfg(feature = "deadlock-detector")]
mod detector {
    use std::sync::{Arc, Barrier, Mutex};
    use std::thread;
    use std::time::Duration;

    use conc::deadlock::{Deadlock, WaitEdge, acquire_all};
    use conc::sync::Lock;

    /// Threads `names.0` and `names.1` each take one fork, wait for each
    /// other, then each asks for the other's fork through `second`.
    /// Returns what each got back.
    fn cross<R: Send>(
        names: (&str, &str),
        forks: (&Lock, &Lock),
        second: impl Fn(&Lock) -> R + Sync,
    ) -> (R, R) {
        let both_hold = Barrier::new(2);
        let (both_hold, second) = (&both_hold, &second);
        thread::scope(|s| {
            let handles = [(names.0, forks.0, forks.1), (names.1, forks.1, forks.0)].map(
                |(name, mine, theirs)| {
                    thread::Builder::new()
                        .name(name.to_owned())
                        .spawn_scoped(s, move || {
                            let _held = mine.acquire();
                            both_hold.wait();
                            second(theirs)
                        })
                        .unwrap()
                },
            );
            let [a, b] = handles.map(|h| h.join().unwrap());
            (a, b)
        })
    }

    #[test]
    fn a_two_thread_cycle_is_reported_with_thread_and_lock_names() {
        let fork1 = Lock::named("fork 1", ());
        let fork2 = Lock::named("fork 2", ());
        // The first to block waits; the second closes the cycle, gets it
        // back, and lets go of its fork, which frees the first.
        let (a, b) = cross(("A", "B"), (&fork1, &fork2), |lock| {
            lock.acquire_checked().map(drop)
        });
        let a_says = "thread 'A' holds 'fork 1' and waits for 'fork 2'";
        let b_says = "thread 'B' holds 'fork 2' and waits for 'fork 1'";
        let report = match (a, b) {
            (Err(cycle), Ok(())) => {
                assert_eq!(cycle.to_string(), format!("{a_says}; {b_says}"));
                cycle
            }
            (Ok(()), Err(cycle)) => {
                assert_eq!(cycle.to_string(), format!("{b_says}; {a_says}"));
                cycle
            }
            other => panic!("exactly one thread should close the cycle: {other:?}"),
        };
        assert_eq!(report.edges().len(), 2);
        assert!(report.edges().contains(&WaitEdge {
            thread: "A".into(),
            holds: "fork 1".into(),
            waits_for: "fork 2".into(),
        }));
    }

    #[test]
    fn a_blocking_acquire_reports_through_the_handler() {
        let reports: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = reports.clone();
        conc::deadlock::set_handler(move |cycle: &Deadlock| {
            sink.lock().unwrap().push(cycle.to_string());
        });
        let fork3 = Lock::named("fork 3", ());
        let fork4 = Lock::named("fork 4", ());
        // Timed acquires report, then wait out their timeout: the cycle is
        // real, and only the timeout ends it.
        // 5 s: the second thread must block before the first's wait ends,
        // or there is no cycle to see; a loaded machine can delay it.
        let (c, d) = cross(("C", "D"), (&fork3, &fork4), |lock| {
            lock.acquire_timeout(Duration::from_secs(5)).is_some()
        });
        assert!(!(c && d), "both cannot have had both forks");
        let reports = reports.lock().unwrap();
        let ours: Vec<&String> = reports.iter().filter(|r| r.contains("'fork 3'")).collect();
        assert_eq!(ours.len(), 1, "{reports:?}");
        for needle in ["thread 'C'", "thread 'D'", "'fork 3'", "'fork 4'"] {
            assert!(
                ours[0].contains(needle),
                "{needle} missing from {}",
                ours[0]
            );
        }
    }

    #[test]
    fn waiting_for_a_lock_you_hold_is_a_cycle_of_one() {
        let lock = Lock::new(());
        let _held = lock.acquire();
        let cycle = lock.acquire_checked().unwrap_err();
        let edge = &cycle.edges()[0];
        assert!(edge.holds.starts_with("lock #"), "unnamed: {edge}");
        assert_eq!(edge.holds, edge.waits_for);
    }

    #[test]
    fn ordered_acquires_never_report_a_cycle() {
        let a = Lock::named("ordered a", 0);
        let b = Lock::named("ordered b", 0);
        thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..2_000 {
                        let mut ga = a.acquire_checked().expect("no cycle");
                        let mut gb = b.acquire_checked().expect("no cycle");
                        *ga += 1;
                        *gb += 1;
                    }
                });
            }
            s.spawn(|| {
                for _ in 0..2_000 {
                    drop(acquire_all([&b, &a]));
                }
            });
        });
        assert_eq!((a.into_inner(), b.into_inner()), (4_000, 4_000));
    }

    #[test]
    fn the_graph_forgets_released_locks() {
        let lock = Lock::named("released", ());
        drop(lock.acquire());
        // Held by nobody now: a checked acquire from another thread is free.
        thread::scope(|s| {
            assert!(s.spawn(|| lock.acquire_checked().is_ok()).join().unwrap());
        });
    }
}
