//! `conc::queue::Queue(100)` against `crossbeam_channel::bounded(100)`, one producer and one consumer, 1M `u64`, as alternating pairs: the median of conc's throughput over crossbeam's.
//!
//! One criterion estimate per side drifts with the machine between the
//! two; a pair runs both back to back (in alternating order), so a drift
//! hits both alike, and the median of many pairs is the figure.
//!
//! Run: `cargo run --release -p conc --example queue_pairs [PAIRS]` (default 21).

use std::thread;
use std::time::{Duration, Instant};

use conc::queue::Queue;

const ITEMS: u64 = 1_000_000;
const MAXSIZE: usize = 100;

/// Times `ITEMS` from `produce` (on a thread of its own) to `consume`
/// (on this one), and checks that every item arrived once.
fn timed(produce: impl FnOnce() + Send, mut consume: impl FnMut() -> u64) -> Duration {
    let start = Instant::now();
    let sum: u64 = thread::scope(|s| {
        s.spawn(produce);
        (0..ITEMS).map(|_| consume()).sum()
    });
    let elapsed = start.elapsed();
    assert_eq!(sum, ITEMS * (ITEMS - 1) / 2);
    elapsed
}

fn conc_queue() -> Duration {
    let q = Queue::new(MAXSIZE);
    timed(
        || (0..ITEMS).for_each(|i| q.put(i).unwrap()),
        || q.get().unwrap(),
    )
}

fn crossbeam_bounded() -> Duration {
    let (tx, rx) = crossbeam_channel::bounded(MAXSIZE);
    timed(
        move || (0..ITEMS).for_each(|i| tx.send(i).unwrap()),
        || rx.recv().unwrap(),
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let pairs: usize = std::env::args()
        .nth(1)
        .map_or(21, |a| a.parse().expect("PAIRS: a count"));
    // Warm both up once.
    conc_queue();
    crossbeam_bounded();
    let (mut ratios, mut conc, mut cb) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..pairs {
        let (c, b) = if i % 2 == 0 {
            let c = conc_queue();
            (c, crossbeam_bounded())
        } else {
            let b = crossbeam_bounded();
            (conc_queue(), b)
        };
        // Throughput ratio: crossbeam's time over conc's.
        ratios.push(b.as_secs_f64() / c.as_secs_f64());
        conc.push(ITEMS as f64 / c.as_secs_f64() / 1e6);
        cb.push(ITEMS as f64 / b.as_secs_f64() / 1e6);
    }
    let (lo, hi) = {
        let mut r = ratios.clone();
        r.sort_by(f64::total_cmp);
        (r[0], r[r.len() - 1])
    };
    println!(
        "{pairs} pairs of 1M items through a bound of {MAXSIZE}: conc {:.1} M items/s, crossbeam {:.1} M items/s (medians); \
         conc / crossbeam: median {:.2}x (range {lo:.2}-{hi:.2})",
        median(conc),
        median(cb),
        median(ratios)
    );
}
