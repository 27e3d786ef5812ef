//! One producer, one consumer, 1M `u64` through a queue of 100: `conc::queue::Queue` against `crossbeam_channel::bounded(100)`.
//!
//! Both run the same workload, the course's producer/consumer pattern at
//! its most demanding: a spawned producer puts 1M items as fast as it can,
//! the bench thread gets them, and the queue's bound of 100 keeps the two
//! in lock-step. Criterion reports elements/s. The targets: `conc` at
//! least as fast as crossbeam (1.0x) in the same run, and at least 20x
//! Python's `queue.Queue(maxsize=100)` (`bench/python_queue.py`, about
//! 290k items/s on the 2-core machine). Two criterion estimates drift
//! with the machine between them; `examples/queue_pairs.rs` times the two
//! as alternating pairs for a steadier ratio
//! (`bench/results/2026-12-03/queue-pairs.md`).
//!
//! Run: `cargo bench -p conc --bench queue` (add `-- --warm-up-time 0.5
//! --measurement-time 1` for a quick look).

use std::hint::black_box;
use std::thread;

use conc::queue::Queue;
use criterion::{Criterion, Throughput};

const ITEMS: u64 = 1_000_000;
const MAXSIZE: usize = 100;

/// Moves `ITEMS` through `conc`'s queue; returns the sum so nothing is
/// optimised away and every item is checked to arrive.
fn conc_queue() -> u64 {
    let q = Queue::new(MAXSIZE);
    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..ITEMS {
                q.put(i).unwrap();
            }
        });
        (0..ITEMS).map(|_| q.get().unwrap()).sum()
    })
}

/// The same through crossbeam's bounded channel.
fn crossbeam_bounded() -> u64 {
    let (tx, rx) = crossbeam_channel::bounded(MAXSIZE);
    thread::scope(|s| {
        s.spawn(move || {
            for i in 0..ITEMS {
                tx.send(i).unwrap();
            }
        });
        (0..ITEMS).map(|_| rx.recv().unwrap()).sum()
    })
}

fn spsc(c: &mut Criterion) {
    let mut group = c.benchmark_group("spsc_1M_maxsize_100");
    group.throughput(Throughput::Elements(ITEMS));
    // One iteration moves a million items (tens of milliseconds): ten
    // samples are plenty and keep the run short.
    group.sample_size(10);
    let expected = ITEMS * (ITEMS - 1) / 2;
    group.bench_function("conc_queue", |b| {
        b.iter(|| assert_eq!(black_box(conc_queue()), expected))
    });
    group.bench_function("crossbeam_bounded", |b| {
        b.iter(|| assert_eq!(black_box(crossbeam_bounded()), expected))
    });
    group.finish();
}

// What `criterion_group!`/`criterion_main!` expand to, written out because
// the macro's `pub fn` trips the workspace's `missing_docs` lint.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    spsc(&mut criterion);
    criterion.final_summary();
}
