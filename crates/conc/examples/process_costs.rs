//! What conc's processes cost, in the workloads of `bench/python_mp.py`: start+join per start method, the shared-memory Queue, Pipe, and ProcessPool submit and map.
//!
//! Two figures have no Python twin: a pipe with both ends in one thread,
//! raw and postcard-encoded, which is what a message costs the ends
//! themselves, with no core waiting for another.
//!
//! Each figure is the median of 5 repeats (`--repeats N`). The Queue and Pipe children,
//! and the pool's two workers, are started before the clock (a child says
//! it is ready and waits for a go) and joined after it, so start-up shows
//! only in the start+join figures, as in the Python script. Fork is
//! measured first, while this process still has one thread.
//!
//! Run: `cargo run --release -p conc --example process_costs [--quick] [--only WORD]
//! [--repeats N]`, where `--only fork` runs the figures whose label contains `fork`.

use std::time::{Duration, Instant};

use conc::ipc::{Connection, Pipe, Queue};
use conc::pool::{ProcessPool, wait};
use conc::process::{self, Entry, Process, entry_point};

const PAYLOAD: usize = 64;

static NOOP: Entry<()> = Entry::new("noop", |()| {});
static INC: Entry<u64, u64> = Entry::new("inc", |i| i + 1);
static QUEUE_PRODUCER: Entry<(Queue<Vec<u8>>, Connection, u64)> =
    Entry::new("queue_producer", |(q, conn, items)| {
        let payload = vec![b'x'; PAYLOAD];
        conn.send(&"ready").unwrap();
        conn.recv_bytes().unwrap();
        for _ in 0..items {
            q.put(&payload).unwrap();
        }
    });
static PIPE_SENDER: Entry<(Connection, Connection, u64, bool)> =
    Entry::new("pipe_sender", |(out, ctl, items, encoded)| {
        let payload = vec![b'x'; PAYLOAD];
        ctl.send(&"ready").unwrap();
        ctl.recv_bytes().unwrap();
        for _ in 0..items {
            if encoded {
                out.send(&payload).unwrap();
            } else {
                out.send_bytes(&payload).unwrap();
            }
        }
    });

/// Sends every message back until the peer closes.
static PIPE_ECHO: Entry<(Connection, Connection)> = Entry::new("pipe_echo", |(conn, ctl)| {
    ctl.send(&"ready").unwrap();
    while let Ok(msg) = conn.recv_bytes() {
        conn.send_bytes(&msg).unwrap();
    }
});

static TABLE: &[&dyn process::Registered] =
    &[&NOOP, &INC, &QUEUE_PRODUCER, &PIPE_SENDER, &PIPE_ECHO];

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

type Row = (String, String, String, f64, f64, f64);

/// Runs `run` once to warm up and five times measured, unless `--only
/// WORD` was given and `label` does not contain it.
fn repeat(label: &str, work: &str, unit: &str, mut run: impl FnMut() -> f64) -> Option<Row> {
    if !wanted(label) {
        return None;
    }
    run(); // warm up
    let n = repeats();
    let (m, lo, hi) = median((0..n).map(|_| run()).collect());
    println!("{label}: {m:.3} {unit} ({work}; min {lo:.3}, max {hi:.3}, {n} repeats)");
    Some((label.into(), work.into(), unit.into(), m, lo, hi))
}

/// `None` if flag `name` was not given, else the argument after it (if any).
fn flag(name: &str) -> Option<Option<String>> {
    let mut args = std::env::args().skip_while(|a| a != name);
    args.next().map(|_| args.next())
}

/// `--repeats N`, 5 unless told.
fn repeats() -> usize {
    flag("--repeats")
        .flatten()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(5)
}

/// Whether `--only WORD` leaves the figure `label` in.
fn wanted(label: &str) -> bool {
    flag("--only").is_none_or(|word| word.is_some_and(|w| label.contains(w.as_str())))
}

/// ms per process, `n` processes started and joined one at a time.
fn start_join(n: usize, mut make: impl FnMut() -> Process) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        let mut p = make();
        p.start().unwrap();
        assert_eq!(p.join(), 0);
    }
    t.elapsed().as_secs_f64() * 1e3 / n as f64
}

fn per_second(items: u64, elapsed: Duration) -> f64 {
    items as f64 / elapsed.as_secs_f64()
}

fn queue_rate(items: u64) -> f64 {
    let q = Queue::new(0).unwrap();
    let (ctl, theirs) = Pipe(true).unwrap();
    let mut child = Process::new(&QUEUE_PRODUCER, (q.clone(), theirs, items));
    child.start().unwrap();
    assert_eq!(ctl.recv::<String>().unwrap(), "ready");
    let t = Instant::now();
    ctl.send_bytes(b"go").unwrap();
    for _ in 0..items {
        assert_eq!(q.get().unwrap().len(), PAYLOAD);
    }
    let rate = per_second(items, t.elapsed());
    assert_eq!(child.join(), 0);
    rate
}

fn pipe_rate(items: u64, encoded: bool) -> f64 {
    let (reader, writer) = Pipe(false).unwrap();
    let (ctl, theirs) = Pipe(true).unwrap();
    let mut child = Process::new(&PIPE_SENDER, (writer, theirs, items, encoded));
    child.start().unwrap();
    assert_eq!(ctl.recv::<String>().unwrap(), "ready");
    let t = Instant::now();
    ctl.send_bytes(b"go").unwrap();
    for _ in 0..items {
        let n = if encoded {
            reader.recv::<Vec<u8>>().unwrap().len()
        } else {
            reader.recv_bytes().unwrap().len()
        };
        assert_eq!(n, PAYLOAD);
    }
    let rate = per_second(items, t.elapsed());
    assert_eq!(child.join(), 0);
    rate
}

fn pool_rate(pool: &ProcessPool, tasks: u64, use_map: bool) -> f64 {
    let t = Instant::now();
    if use_map {
        let total: u64 = pool
            .map(&INC, 0..tasks, 100)
            .unwrap()
            .map(Result::unwrap)
            .sum();
        assert_eq!(total, tasks * (tasks + 1) / 2);
    } else {
        let futures: Vec<_> = (0..tasks).map(|i| pool.submit(&INC, i).unwrap()).collect();
        let done = wait(&futures, None, conc::pool::ReturnWhen::AllCompleted);
        assert_eq!(done.done.len(), tasks as usize);
    }
    per_second(tasks, t.elapsed())
}

/// Messages/s through a pipe whose two ends are in this thread: a send
/// and a receive each, so no cache line moves between cores and nothing
/// waits. What one message costs the two ends themselves (the locks, the
/// copies and, if `encoded`, postcard), beside the cross-process figure.
fn one_thread(items: u64, encoded: bool) -> f64 {
    let (reader, writer) = Pipe(false).unwrap();
    let payload = vec![b'x'; PAYLOAD];
    let t = Instant::now();
    for _ in 0..items {
        let n = if encoded {
            writer.send(&payload).unwrap();
            reader.recv::<Vec<u8>>().unwrap().len()
        } else {
            writer.send_bytes(&payload).unwrap();
            reader.recv_bytes().unwrap().len()
        };
        assert_eq!(n, PAYLOAD);
    }
    per_second(items, t.elapsed())
}

/// Round trips/s of 64 bytes to a child that sends each back.
fn round_trips(trips: u64) -> f64 {
    let (ours, theirs) = Pipe(true).unwrap();
    let (ctl, their_ctl) = Pipe(true).unwrap();
    let mut child = Process::new(&PIPE_ECHO, (theirs, their_ctl));
    child.start().unwrap();
    assert_eq!(ctl.recv::<String>().unwrap(), "ready");
    let payload = vec![b'x'; PAYLOAD];
    let t = Instant::now();
    for _ in 0..trips {
        ours.send_bytes(&payload).unwrap();
        assert_eq!(ours.recv_bytes().unwrap().len(), PAYLOAD);
    }
    let rate = per_second(trips, t.elapsed());
    drop(ours);
    assert_eq!(child.join(), 0);
    rate
}

fn main() {
    entry_point(TABLE);
    let scale = if std::env::args().any(|a| a == "--quick") {
        10
    } else {
        1
    };
    println!(
        "conc, {} cpus, median of {} repeats",
        process::cpu_count(),
        repeats()
    );
    let mut rows = Vec::new();
    let forks = 2000 / scale;
    rows.push(repeat(
        "process start+join (fork)",
        &format!("{forks} processes, one at a time"),
        "ms per process",
        || start_join(forks, || Process::fork(|| {})),
    ));
    let spawns = 200 / scale;
    rows.push(repeat(
        "process start+join (spawn)",
        &format!("{spawns} processes, one at a time"),
        "ms per process",
        || start_join(spawns, || Process::new(&NOOP, ())),
    ));
    let items = 2_000_000 / scale as u64;
    rows.push(repeat(
        "Queue, child puts, parent gets",
        &format!("{items} x 64 B Vec<u8>"),
        "items/s",
        || queue_rate(items),
    ));
    rows.push(repeat(
        "Pipe send_bytes/recv_bytes",
        &format!("{items} x 64 B, one way"),
        "msgs/s",
        || pipe_rate(items, false),
    ));
    rows.push(repeat(
        "Pipe send/recv (postcard)",
        &format!("{items} x 64 B Vec<u8>, one way"),
        "msgs/s",
        || pipe_rate(items, true),
    ));
    rows.push(repeat(
        "Pipe send_bytes+recv_bytes in one thread",
        &format!("{items} x 64 B"),
        "msgs/s",
        || one_thread(items, false),
    ));
    rows.push(repeat(
        "Pipe send+recv (postcard) in one thread",
        &format!("{items} x 64 B Vec<u8>"),
        "msgs/s",
        || one_thread(items, true),
    ));
    let trips = 200_000 / scale as u64;
    rows.push(repeat(
        "Pipe round trip",
        &format!("{trips} x 64 B there and back"),
        "trips/s",
        || round_trips(trips),
    ));
    let pool = ProcessPool::new(2);
    if wanted("ProcessPool(2) submit+wait") || wanted("ProcessPool(2) map chunksize=100") {
        pool_rate(&pool, 100, false); // both workers started
    }
    let submits = 200_000 / scale as u64;
    rows.push(repeat(
        "ProcessPool(2) submit+wait",
        &format!("{submits} tasks of inc"),
        "tasks/s",
        || pool_rate(&pool, submits, false),
    ));
    let maps = 2_000_000 / scale as u64;
    rows.push(repeat(
        "ProcessPool(2) map chunksize=100",
        &format!("{maps} tasks of inc"),
        "tasks/s",
        || pool_rate(&pool, maps, true),
    ));
    println!("\n| figure | work per repeat | median | min - max |\n|---|---|---:|---:|");
    for (label, work, unit, m, lo, hi) in rows.into_iter().flatten() {
        println!("| {label} | {work} | {m:.3} {unit} | {lo:.3} - {hi:.3} |");
    }
}
