//! Criterion bench: what conc's processes cost: start+join per start method, 64-byte items through the shared-memory `Queue` and `Pipe` between two processes, and `ProcessPool` submit.
//!
//! - `start_join/fork`, `start_join/spawn`: start a no-op child and join
//!   it, one at a time. Fork is measured only while this process has one
//!   thread (it is refused otherwise), so it runs first.
//! - `between_processes/*`: a child started once serves every iteration:
//!   told `n` through a control pipe, it puts (or sends) `n` items of 64
//!   bytes, and the iteration is the parent getting all `n`. Throughput is
//!   items per second, one way.
//! - `process_pool/submit_wait`: `ProcessPool(2)` (workers started before
//!   the clock), `n` submits of a trivial entry, then a wait for all.
//!
//! `bench/python_mp.py` runs the same workloads on Python's
//! multiprocessing, and `examples/process_costs.rs` times them with a
//! plain clock for the table against it. This binary is its own `main`: it calls
//! `entry_point` first, so that the children it spawns, which re-run it,
//! serve their entry instead of benching.
//!
//! Run alone on a quiet machine: `cargo bench -p conc --bench processes`.

use std::time::{Duration, Instant};

use conc::ipc::{Connection, Pipe, Queue};
use conc::pool::{ProcessPool, ReturnWhen, wait};
use conc::process::{self, Entry, Process, entry_point};
use criterion::{Criterion, Throughput};

const PAYLOAD: usize = 64;

static NOOP: Entry<()> = Entry::new("noop", |()| {});
static INC: Entry<u64, u64> = Entry::new("inc", |i| i + 1);
/// Puts `n` items for every `n` the control pipe brings, until it closes.
static QUEUE_SERVER: Entry<(Queue<Vec<u8>>, Connection)> =
    Entry::new("queue_server", |(q, ctl)| {
        let payload = vec![b'x'; PAYLOAD];
        while let Ok(n) = ctl.recv::<u64>() {
            for _ in 0..n {
                q.put(&payload).unwrap();
            }
        }
    });
/// Sends `n` messages (raw bytes, or postcard-encoded `Vec<u8>`) for
/// every `n` the control pipe brings, until it closes.
static PIPE_SERVER: Entry<(Connection, Connection, bool)> =
    Entry::new("pipe_server", |(out, ctl, encoded)| {
        let payload = vec![b'x'; PAYLOAD];
        while let Ok(n) = ctl.recv::<u64>() {
            for _ in 0..n {
                if encoded {
                    out.send(&payload).unwrap();
                } else {
                    out.send_bytes(&payload).unwrap();
                }
            }
        }
    });

static TABLE: &[&dyn process::Registered] = &[&NOOP, &INC, &QUEUE_SERVER, &PIPE_SERVER];

fn start_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("start_join");
    group.sample_size(20);
    if process::threads() == 1 {
        group.bench_function("fork", |b| {
            b.iter(|| {
                let mut p = Process::fork(|| {});
                p.start().unwrap();
                assert_eq!(p.join(), 0);
            })
        });
    } else {
        eprintln!("start_join/fork skipped: this process has more than one thread");
    }
    group.bench_function("spawn", |b| {
        b.iter(|| {
            let mut p = Process::new(&NOOP, ());
            p.start().unwrap();
            assert_eq!(p.join(), 0);
        })
    });
    group.finish();
}

/// Times the parent taking `n` items that the served child produces.
fn served(ctl: &Connection, n: u64, mut take: impl FnMut()) -> Duration {
    let t = Instant::now();
    ctl.send(&n).unwrap();
    for _ in 0..n {
        take();
    }
    t.elapsed()
}

fn between_processes(c: &mut Criterion) {
    let mut group = c.benchmark_group("between_processes");
    group.throughput(Throughput::Elements(1));

    let q = Queue::new(0).unwrap();
    let (ctl, theirs) = Pipe(true).unwrap();
    let mut child = Process::new(&QUEUE_SERVER, (q.clone(), theirs));
    child.start().unwrap();
    group.bench_function("queue_64B", |b| {
        b.iter_custom(|n| served(&ctl, n, || assert_eq!(q.get().unwrap().len(), PAYLOAD)))
    });
    drop(ctl);
    assert_eq!(child.join(), 0);

    for (name, encoded) in [("pipe_send_bytes_64B", false), ("pipe_send_64B", true)] {
        let (reader, writer) = Pipe(false).unwrap();
        let (ctl, theirs) = Pipe(true).unwrap();
        let mut child = Process::new(&PIPE_SERVER, (writer, theirs, encoded));
        child.start().unwrap();
        group.bench_function(name, |b| {
            b.iter_custom(|n| {
                served(&ctl, n, || {
                    let len = if encoded {
                        reader.recv::<Vec<u8>>().unwrap().len()
                    } else {
                        reader.recv_bytes().unwrap().len()
                    };
                    assert_eq!(len, PAYLOAD);
                })
            })
        });
        drop(ctl);
        assert_eq!(child.join(), 0);
    }
    group.finish();
}

fn process_pool(c: &mut Criterion) {
    let mut group = c.benchmark_group("process_pool");
    group.throughput(Throughput::Elements(1));
    let pool = ProcessPool::new(2);
    // Both workers started before the clock.
    let warm: Vec<_> = (0..100).map(|i| pool.submit(&INC, i).unwrap()).collect();
    wait(&warm, None, ReturnWhen::AllCompleted);
    group.bench_function("submit_wait", |b| {
        b.iter_custom(|n| {
            let t = Instant::now();
            let futures: Vec<_> = (0..n).map(|i| pool.submit(&INC, i).unwrap()).collect();
            let done = wait(&futures, None, ReturnWhen::AllCompleted);
            assert_eq!(done.done.len() as u64, n);
            t.elapsed()
        })
    });
    group.finish();
}

fn main() {
    entry_point(TABLE);
    let mut c = Criterion::default().configure_from_args();
    start_join(&mut c);
    between_processes(&mut c);
    process_pool(&mut c);
    c.final_summary();
}
