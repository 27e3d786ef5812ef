//! Behaviour tests for `conc::queue`: the same suite stamped out over `Queue`, `LifoQueue` and `PriorityQueue`, then each one's order.
//!
//! Timing is never asserted from above: a timeout test checks that the call
//! gave up with `Timeout` after at least the timeout, and "still blocked"
//! is checked by a flag that cannot be set while the queue stays full or
//! empty, whatever the machine's load.
#![cfg(not(loom))] // the model checks are the loom_* files

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use conc::queue::{GetError, LifoQueue, PriorityQueue, PutError, Queue, ShutDown, TooManyTaskDone};

const SHORT: Duration = Duration::from_millis(50);

/// Gives a spawned thread time to reach its blocking call. Correctness
/// never depends on it: if the thread is late, the test still passes, it
/// just checks the non-blocking path.
fn pause() {
    thread::sleep(Duration::from_millis(30));
}

/// One copy of the behaviour suite per queue type. `$roomy` is the
/// maxsize of the tests that need room rather than a bound: 0 (unbounded)
/// for every type, and also a small bound for `Queue`, whose bounded
/// engine (the lock-free ring) differs from its unbounded one.
macro_rules! suite {
    ($module:ident, $queue:ident, $roomy:expr) => {
        mod $module {
            use super::*;

            const ROOMY: usize = $roomy;

            #[test]
            fn is_send_and_sync() {
                fn check<T: Send + Sync>() {}
                check::<$queue<String>>();
            }

            #[test]
            fn unbounded_takes_any_number() {
                let q = $queue::new(0);
                for i in 0..10_000 {
                    q.put_nowait(i).unwrap();
                }
                assert_eq!(q.qsize(), 10_000);
                assert!(!q.full());
                assert_eq!(q.maxsize(), 0);
            }

            #[test]
            fn qsize_empty_full() {
                let q = $queue::new(2);
                assert!(q.empty() && !q.full() && q.qsize() == 0);
                q.put(1).unwrap();
                assert!(!q.empty() && !q.full() && q.qsize() == 1);
                q.put(2).unwrap();
                assert!(!q.empty() && q.full() && q.qsize() == 2);
                q.get().unwrap();
                assert!(!q.full() && q.qsize() == 1);
            }

            #[test]
            fn put_nowait_on_full_hands_item_back() {
                let q = $queue::new(1);
                q.put_nowait(String::from("a")).unwrap();
                assert_eq!(
                    q.put_nowait(String::from("b")),
                    Err(PutError::Full(String::from("b")))
                );
                assert_eq!(q.qsize(), 1);
            }

            #[test]
            fn put_timeout_times_out_with_item() {
                let q = $queue::new(1);
                q.put(1).unwrap();
                let start = Instant::now();
                assert_eq!(q.put_timeout(2, SHORT), Err(PutError::Timeout(2)));
                assert!(start.elapsed() >= SHORT);
                assert_eq!(q.qsize(), 1);
            }

            #[test]
            fn put_timeout_succeeds_when_room_appears() {
                let q = $queue::new(1);
                q.put(1).unwrap();
                thread::scope(|s| {
                    s.spawn(|| {
                        pause();
                        q.get().unwrap();
                    });
                    assert_eq!(q.put_timeout(2, Duration::from_secs(30)), Ok(()));
                });
                assert_eq!(q.get_nowait(), Ok(2));
            }

            #[test]
            fn huge_timeouts_do_not_overflow() {
                let q = $queue::new(ROOMY);
                q.put_timeout(1, Duration::MAX).unwrap();
                assert_eq!(q.get_timeout(Duration::MAX), Ok(1));
                q.task_done().unwrap();
                assert!(q.join_timeout(Duration::MAX));
            }

            #[test]
            fn put_blocks_while_full() {
                let q = $queue::new(1);
                let done = AtomicBool::new(false);
                q.put(1).unwrap();
                thread::scope(|s| {
                    s.spawn(|| {
                        q.put(2).unwrap();
                        done.store(true, Ordering::SeqCst);
                    });
                    pause();
                    // The queue is still full: the put cannot have returned.
                    assert!(!done.load(Ordering::SeqCst));
                    assert_eq!(q.get(), Ok(1));
                });
                assert!(done.load(Ordering::SeqCst));
                assert_eq!(q.get_nowait(), Ok(2));
            }

            #[test]
            fn get_blocks_until_put() {
                let q = $queue::new(ROOMY);
                thread::scope(|s| {
                    s.spawn(|| {
                        pause();
                        q.put(5).unwrap();
                    });
                    assert_eq!(q.get(), Ok(5));
                });
            }

            #[test]
            fn get_nowait_and_timeout_on_empty() {
                let q: $queue<u8> = $queue::new(ROOMY);
                assert_eq!(q.get_nowait(), Err(GetError::Empty));
                let start = Instant::now();
                assert_eq!(q.get_timeout(SHORT), Err(GetError::Timeout));
                assert!(start.elapsed() >= SHORT);
            }

            #[test]
            fn get_timeout_succeeds_when_item_appears() {
                let q = $queue::new(ROOMY);
                thread::scope(|s| {
                    s.spawn(|| {
                        pause();
                        q.put(9).unwrap();
                    });
                    assert_eq!(q.get_timeout(Duration::from_secs(30)), Ok(9));
                });
            }

            #[test]
            fn task_done_too_many_is_an_error() {
                let q = $queue::new(ROOMY);
                assert_eq!(q.task_done(), Err(TooManyTaskDone));
                q.put(1).unwrap();
                q.put(2).unwrap();
                // Python counts puts, not gets: done before get is allowed.
                q.task_done().unwrap();
                q.task_done().unwrap();
                assert_eq!(q.task_done(), Err(TooManyTaskDone));
                assert_eq!(q.unfinished_tasks(), 0);
            }

            #[test]
            fn join_waits_for_every_task_done() {
                let q = $queue::new(3);
                let processed = std::sync::atomic::AtomicUsize::new(0);
                thread::scope(|s| {
                    for _ in 0..2 {
                        s.spawn(|| {
                            while let Ok(_item) = q.get() {
                                processed.fetch_add(1, Ordering::SeqCst);
                                q.task_done().unwrap();
                            }
                        });
                    }
                    for i in 0..100 {
                        q.put(i).unwrap();
                    }
                    q.join();
                    // Every item was marked done after it was counted.
                    assert_eq!(processed.load(Ordering::SeqCst), 100);
                    assert_eq!(q.unfinished_tasks(), 0);
                    q.shutdown(false);
                });
            }

            #[test]
            fn join_returns_at_once_with_nothing_put() {
                let q: $queue<u8> = $queue::new(ROOMY);
                q.join();
                assert!(q.join_timeout(Duration::ZERO));
            }

            #[test]
            fn join_timeout_gives_up_while_unfinished() {
                let q = $queue::new(ROOMY);
                q.put(1).unwrap();
                q.get().unwrap(); // taken but not done: join still waits
                let start = Instant::now();
                assert!(!q.join_timeout(SHORT));
                assert!(start.elapsed() >= SHORT);
            }

            #[test]
            fn shutdown_refuses_puts_with_item() {
                let q = $queue::new(1);
                q.shutdown(false);
                assert!(q.is_shutdown());
                assert_eq!(q.put(1), Err(ShutDown(1)));
                assert_eq!(q.put_nowait(2), Err(PutError::ShutDown(2)));
                assert_eq!(q.put_timeout(3, SHORT), Err(PutError::ShutDown(3)));
                assert!(q.empty());
            }

            #[test]
            fn shutdown_lets_gets_drain_then_fail() {
                let q = $queue::new(ROOMY);
                for i in 0..3 {
                    q.put(i).unwrap();
                }
                assert!(q.shutdown(false).is_empty());
                let mut got: Vec<_> = (0..3).map(|_| q.get().unwrap()).collect();
                got.sort();
                assert_eq!(got, [0, 1, 2]);
                assert_eq!(q.get(), Err(ShutDown(())));
                assert_eq!(q.get_nowait(), Err(GetError::ShutDown));
                assert_eq!(q.get_timeout(SHORT), Err(GetError::ShutDown));
                // Not immediate: the three items still need task_done.
                assert!(!q.join_timeout(Duration::ZERO));
                for _ in 0..3 {
                    q.task_done().unwrap();
                }
                q.join();
            }

            #[test]
            fn shutdown_wakes_blocked_getters() {
                let q: $queue<u8> = $queue::new(ROOMY);
                thread::scope(|s| {
                    let getters: Vec<_> = (0..2).map(|_| s.spawn(|| q.get())).collect();
                    let timed = s.spawn(|| q.get_timeout(Duration::from_secs(60)));
                    pause();
                    q.shutdown(false);
                    for getter in getters {
                        assert_eq!(getter.join().unwrap(), Err(ShutDown(())));
                    }
                    assert_eq!(timed.join().unwrap(), Err(GetError::ShutDown));
                });
            }

            #[test]
            fn shutdown_wakes_blocked_putters_with_their_items() {
                let q = $queue::new(1);
                q.put(0).unwrap();
                thread::scope(|s| {
                    let putter = s.spawn(|| q.put(1));
                    let timed = s.spawn(|| q.put_timeout(2, Duration::from_secs(60)));
                    pause();
                    q.shutdown(false);
                    assert_eq!(putter.join().unwrap(), Err(ShutDown(1)));
                    assert_eq!(timed.join().unwrap(), Err(PutError::ShutDown(2)));
                });
                // The item that was in before the shutdown still comes out.
                assert_eq!(q.get(), Ok(0));
            }

            #[test]
            fn immediate_shutdown_drains_and_counts_done() {
                let q = $queue::new(ROOMY);
                q.put(1).unwrap();
                q.put(1).unwrap();
                assert_eq!(q.get(), Ok(1)); // taken, not yet done
                assert_eq!(q.shutdown(true), [1]);
                assert!(q.empty());
                assert_eq!(q.get_nowait(), Err(GetError::ShutDown));
                // The drained item counts as done; the taken one does not.
                assert_eq!(q.unfinished_tasks(), 1);
                q.task_done().unwrap();
                q.join();
                assert_eq!(q.task_done(), Err(TooManyTaskDone));
            }

            #[test]
            fn immediate_shutdown_wakes_joiners() {
                let q = $queue::new(ROOMY);
                q.put(1).unwrap();
                thread::scope(|s| {
                    let joiner = s.spawn(|| q.join());
                    let timed = s.spawn(|| q.join_timeout(Duration::from_secs(60)));
                    pause();
                    assert_eq!(q.shutdown(true), [1]);
                    joiner.join().unwrap();
                    assert!(timed.join().unwrap());
                });
            }

            #[test]
            fn shutdown_twice_is_allowed() {
                let q = $queue::new(ROOMY);
                q.put(1).unwrap();
                assert!(q.shutdown(false).is_empty());
                assert_eq!(q.shutdown(true), [1]);
                assert!(q.shutdown(true).is_empty());
            }

            #[test]
            fn many_producers_many_consumers_lose_nothing() {
                const PER_PRODUCER: usize = 5_000;
                let q = $queue::new(8);
                let mut got = thread::scope(|s| {
                    let producers: Vec<_> = (0..3)
                        .map(|p| {
                            let q = &q;
                            s.spawn(move || {
                                for i in 0..PER_PRODUCER {
                                    q.put(p * PER_PRODUCER + i).unwrap();
                                }
                            })
                        })
                        .collect();
                    let consumers: Vec<_> = (0..2)
                        .map(|_| {
                            s.spawn(|| {
                                let mut mine = Vec::new();
                                while let Ok(item) = q.get() {
                                    mine.push(item);
                                    q.task_done().unwrap();
                                }
                                mine
                            })
                        })
                        .collect();
                    for p in producers {
                        p.join().unwrap();
                    }
                    // Every item is put; join returns once all are done,
                    // and the shutdown then stops the idle consumers.
                    q.join();
                    q.shutdown(false);
                    let mut all = Vec::new();
                    for c in consumers {
                        all.extend(c.join().unwrap());
                    }
                    all
                });
                got.sort();
                let want: Vec<_> = (0..3 * PER_PRODUCER).collect();
                assert_eq!(got, want);
            }
        }
    };
}

suite!(fifo, Queue, 0);
suite!(fifo_ring, Queue, 64);
suite!(lifo, LifoQueue, 0);
suite!(priority, PriorityQueue, 0);

#[test]
fn fifo_order() {
    let q = Queue::new(0);
    for i in [3, 1, 2] {
        q.put(i).unwrap();
    }
    let got: Vec<_> = (0..3).map(|_| q.get().unwrap()).collect();
    assert_eq!(got, [3, 1, 2]);
}

#[test]
fn fifo_order_across_threads() {
    let q = Queue::new(4);
    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..20_000u32 {
                q.put(i).unwrap();
            }
        });
        for want in 0..20_000u32 {
            assert_eq!(q.get(), Ok(want));
        }
    });
}

/// The bounded `Queue` is a ring: many laps round it keep order, size and
/// the unfinished count right.
#[test]
fn fifo_laps_round_the_ring() {
    let q = Queue::new(3);
    let mut next_out = 0;
    for i in 0..100 {
        q.put(i).unwrap();
        if i % 3 == 2 {
            assert!(q.full() && q.qsize() == 3);
            while let Ok(item) = q.get_nowait() {
                assert_eq!(item, next_out);
                next_out += 1;
                q.task_done().unwrap();
            }
            assert!(q.empty());
        }
    }
    assert_eq!(q.qsize(), 1);
    assert_eq!(q.unfinished_tasks(), 1);
}

/// A bound too large to preallocate runs on the locked engine, with the
/// same behaviour.
#[test]
fn fifo_past_the_ring_bound_behaves_alike() {
    let q = Queue::new(5000);
    for i in 0..5000 {
        q.put_nowait(i).unwrap();
    }
    assert!(q.full());
    assert_eq!(q.put_nowait(5000), Err(PutError::Full(5000)));
    assert_eq!(q.get(), Ok(0));
    assert_eq!(q.shutdown(true).len(), 4999);
    assert_eq!(q.unfinished_tasks(), 1);
}

/// An immediate shutdown in the middle of two producers and two consumers:
/// every item is got, drained or handed back to its producer, once; after
/// the consumers mark theirs done, `join` returns.
#[test]
fn immediate_shutdown_amid_traffic_loses_nothing() {
    const PER_PRODUCER: u64 = 20_000;
    let q = Queue::new(4);
    let taken = AtomicU64::new(0);
    let (got, refused, drained) = thread::scope(|s| {
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let q = &q;
                s.spawn(move || {
                    let mut refused = Vec::new();
                    for i in 0..PER_PRODUCER {
                        if let Err(ShutDown(item)) = q.put(p * PER_PRODUCER + i) {
                            refused.push(item);
                        }
                    }
                    refused
                })
            })
            .collect();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    while let Ok(item) = q.get() {
                        mine.push(item);
                        taken.fetch_add(1, Ordering::Relaxed);
                        q.task_done().unwrap();
                    }
                    mine
                })
            })
            .collect();
        // Amid traffic by construction: items are flowing.
        while taken.load(Ordering::Relaxed) < 1_000 {
            thread::yield_now();
        }
        let drained = q.shutdown(true);
        let got: Vec<_> = consumers
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect();
        let refused: Vec<_> = producers
            .into_iter()
            .flat_map(|p| p.join().unwrap())
            .collect();
        (got, refused, drained)
    });
    assert!(q.empty() && q.is_shutdown());
    assert_eq!(q.unfinished_tasks(), 0);
    q.join();
    let mut all: Vec<_> = got.into_iter().chain(refused).chain(drained).collect();
    all.sort();
    assert_eq!(all, (0..2 * PER_PRODUCER).collect::<Vec<_>>());
}

#[test]
fn lifo_order() {
    let q = LifoQueue::new(0);
    for i in [3, 1, 2] {
        q.put(i).unwrap();
    }
    let got: Vec<_> = (0..3).map(|_| q.get().unwrap()).collect();
    assert_eq!(got, [2, 1, 3]);
}

/// A job ordered by priority only, so that equal priorities are "equal".
#[derive(Debug, PartialEq, Eq)]
struct Job(u8, &'static str);

impl Ord for Job {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl PartialOrd for Job {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[test]
fn priority_smallest_first_and_stable() {
    let q = PriorityQueue::new(0);
    for (priority, name) in [(2, "a"), (1, "b"), (3, "c"), (1, "d"), (2, "e"), (1, "f")] {
        q.put(Job(priority, name)).unwrap();
    }
    let names: Vec<_> = (0..6).map(|_| q.get().unwrap().1).collect();
    assert_eq!(names, ["b", "d", "f", "a", "e", "c"]);
}

#[test]
fn priority_immediate_shutdown_returns_in_get_order() {
    let q = PriorityQueue::new(0);
    for i in [5, 1, 3] {
        q.put(i).unwrap();
    }
    assert_eq!(q.shutdown(true), [1, 3, 5]);
}

#[test]
fn shared_through_an_arc() {
    let q = std::sync::Arc::new(Queue::new(1));
    let producer = {
        let q = q.clone();
        thread::spawn(move || q.put(String::from("hi")).unwrap())
    };
    assert_eq!(q.get().as_deref(), Ok("hi"));
    producer.join().unwrap();
}

#[test]
fn debug_does_not_need_debug_items() {
    struct Opaque;
    let q = Queue::new(3);
    assert!(q.put(Opaque).is_ok());
    assert_eq!(format!("{q:?}"), "Queue { qsize: 1, maxsize: 3, .. }");
}
