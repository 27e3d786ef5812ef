//! The hub's costs, one by one: spawn+join of an empty greenlet, a `sleep(0)` switch between two greenlets, an `Event` handoff and a `Queue` handoff.
//!
//! Each case runs inside a hub (`green::run`) and times itself there
//! (`iter_custom`), so the hub's start is not counted. gevent's figures for
//! the same cases come from `bench/python_green.py`; the results of both,
//! with the command that reproduced them, are in `bench/results/`.
//!
//! Run: `cargo bench -p green --bench green` (add `-- --warm-up-time 0.5
//! --measurement-time 1` for a quick look).

use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use green::{Event, Queue};

/// Greenlets spawned before they are joined: as a server spawns clients,
/// many at once, so the stack pool is exercised as it is there.
const BATCH: u64 = 1000;

/// `spawn(f)` then `join` of `BATCH` greenlets that return at once.
fn spawn_join(iters: u64) -> Duration {
    green::run(move || {
        let start = Instant::now();
        for _ in 0..iters {
            let greenlets: Vec<_> = (0..BATCH)
                .map(|i| green::spawn(move || black_box(i)))
                .collect();
            for g in greenlets {
                g.join();
            }
        }
        start.elapsed()
    })
}

/// Two greenlets taking turns with `sleep(0)`: `2 * iters` sleeps.
fn sleep_zero(iters: u64) -> Duration {
    green::run(move || {
        let other = green::spawn(move || {
            for _ in 0..iters {
                green::sleep(Duration::ZERO);
            }
        });
        let start = Instant::now();
        for _ in 0..iters {
            green::sleep(Duration::ZERO);
        }
        other.join();
        start.elapsed()
    })
}

/// Two greenlets passing the turn with two `Event`s: `2 * iters`
/// handoffs (set, then the waiter wakes).
fn event_handoff(iters: u64) -> Duration {
    green::run(move || {
        let (ping, pong) = (Rc::new(Event::new()), Rc::new(Event::new()));
        let other = {
            let (ping, pong) = (Rc::clone(&ping), Rc::clone(&pong));
            green::spawn(move || {
                for _ in 0..iters {
                    ping.wait();
                    ping.clear();
                    pong.set();
                }
            })
        };
        let start = Instant::now();
        for _ in 0..iters {
            ping.set();
            pong.wait();
            pong.clear();
        }
        other.join();
        start.elapsed()
    })
}

/// A producer greenlet puts `iters` items into a `Queue(100)`, the main
/// greenlet gets them: the course's producer/consumer, on one thread.
fn queue_handoff(iters: u64) -> Duration {
    green::run(move || {
        let queue = Rc::new(Queue::new(100));
        let producer = {
            let queue = Rc::clone(&queue);
            green::spawn(move || {
                for i in 0..iters {
                    queue.put(i).unwrap();
                }
            })
        };
        let start = Instant::now();
        let mut sum = 0u64;
        for _ in 0..iters {
            sum = sum.wrapping_add(queue.get().unwrap());
        }
        producer.join();
        assert_eq!(sum, iters * iters.saturating_sub(1) / 2);
        start.elapsed()
    })
}

fn hub(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_join");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("empty_greenlet", |b| b.iter_custom(spawn_join));
    group.finish();

    let mut group = c.benchmark_group("switch");
    group.throughput(Throughput::Elements(2));
    group.bench_function("sleep_0_two_greenlets", |b| b.iter_custom(sleep_zero));
    group.bench_function("event_handoff", |b| b.iter_custom(event_handoff));
    group.finish();

    let mut group = c.benchmark_group("queue");
    group.throughput(Throughput::Elements(1));
    group.bench_function("handoff_maxsize_100", |b| b.iter_custom(queue_handoff));
    group.finish();
}

// What `criterion_group!`/`criterion_main!` expand to, written out because
// the macro's `pub fn` trips the workspace's `missing_docs` lint.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    hub(&mut criterion);
    criterion.final_summary();
}
