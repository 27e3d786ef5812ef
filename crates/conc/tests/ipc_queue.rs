//! The shared-memory `Queue` between real processes, and the `ProcessPool`: every item once, backpressure, timeouts, results, order, panics, dead workers, callbacks in the parent.
//!
//! Its own `main` (`harness = false`) calls `entry_point` first, so the
//! children it spawns run their entries. Every wait is bounded; a state a
//! case depends on is reached by construction (a child says it is ready
//! through a pipe), never by a sleep.

use std::time::Duration;

use conc::ipc::{Connection, Error, JoinableQueue, Pipe, Queue};
use conc::pool::{FutureError, ProcessPool};
use conc::process::{self, Entry};
use libtest_mimic::Failed;

mod common;
use common::{check, started};

const BOUND: Duration = Duration::from_secs(60);
const PER_PRODUCER: u64 = 10_000;
const STOP: u64 = u64::MAX;

static PRODUCE: Entry<(Queue<u64>, u64)> = Entry::new("produce", |(q, base)| {
    for i in base..base + PER_PRODUCER {
        q.put(&i).unwrap();
    }
});
static CONSUME: Entry<(Queue<u64>, Connection)> = Entry::new("consume", |(q, out)| {
    let mut got = Vec::new();
    loop {
        let item = q.get().unwrap();
        if item == STOP {
            break;
        }
        got.push(item);
    }
    out.send(&got).unwrap();
});
static PUT_ONE: Entry<(Queue<u64>, Connection)> = Entry::new("put_one", |(q, conn)| {
    conn.send(&"ready").unwrap();
    q.put(&3).unwrap();
    conn.send(&"put").unwrap();
});
static WORK_DONE: Entry<JoinableQueue<u64>> = Entry::new("work_done", |q| {
    for _ in 0..3 {
        q.get().unwrap();
        q.task_done().unwrap();
    }
});
/// Puts numbered 4 KiB items (each byte the number's low byte) until
/// killed, saying when the first one is in.
static PUT_FOREVER: Entry<(Queue<Vec<u8>>, Connection)> = Entry::new("put_forever", |(q, conn)| {
    for i in 0u64.. {
        let mut item = vec![i as u8; 4096];
        item[..8].copy_from_slice(&i.to_le_bytes());
        q.put(&item).unwrap();
        if i == 0 {
            conn.send(&"first").unwrap();
        }
    }
});
static SQUARE: Entry<u64, u64> = Entry::new("square", |x| x * x);
static PANICS: Entry<u64, u64> =
    Entry::new("pool_panics", |x| panic!("task {x} failed on purpose"));
static DIES: Entry<(), ()> = Entry::new("dies", |()| {
    let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGKILL);
});
static PID: Entry<(), u32> = Entry::new("pid", |()| std::process::id());
static INIT: Entry<u32, ()> = Entry::new("init", |v| {
    INITIALIZED.store(v, std::sync::atomic::Ordering::SeqCst)
});
static INITIALIZED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
static READ_INIT: Entry<(), u32> = Entry::new("read_init", |()| {
    INITIALIZED.load(std::sync::atomic::Ordering::SeqCst)
});

static TABLE: &[&dyn process::Registered] = &[
    &PUT_FOREVER,
    &PRODUCE,
    &CONSUME,
    &PUT_ONE,
    &WORK_DONE,
    &SQUARE,
    &PANICS,
    &DIES,
    &PID,
    &INIT,
    &READ_INIT,
];

fn four_processes_through_one_queue_every_item_once() -> Result<(), Failed> {
    let q = Queue::new(100)?;
    let (outs, ins): (Vec<_>, Vec<_>) = (0..2).map(|_| Pipe(true).unwrap()).unzip();
    let consumers: Vec<_> = ins
        .into_iter()
        .map(|conn| started(&CONSUME, (q.clone(), conn)))
        .collect();
    let producers: Vec<_> = (0..2)
        .map(|i| started(&PRODUCE, (q.clone(), i * PER_PRODUCER)))
        .collect();
    for p in &producers {
        check(p.join_timeout(BOUND) == Some(0), "producer exits 0")?;
    }
    for _ in &consumers {
        q.put(&STOP)?;
    }
    let mut all: Vec<u64> = Vec::new();
    for out in &outs {
        let got: Vec<u64> = out.recv()?;
        all.extend(got);
    }
    for c in &consumers {
        check(c.join_timeout(BOUND) == Some(0), "consumer exits 0")?;
    }
    all.sort_unstable();
    check(
        all == (0..2 * PER_PRODUCER).collect::<Vec<_>>(),
        format!("{} items, not each once", all.len()),
    )
}

fn a_producer_blocks_on_a_full_queue() -> Result<(), Failed> {
    let q = Queue::new(2)?;
    q.put(&1)?;
    q.put(&2)?;
    check(q.full(), "full")?;
    let (ours, theirs) = Pipe(true)?;
    let p = started(&PUT_ONE, (q.clone(), theirs));
    check(ours.recv::<String>()? == "ready", "ready")?;
    // The child is at its put: while the queue stays full it cannot return.
    check(
        !ours.poll(Some(Duration::from_millis(200)))?,
        "the put returned while the queue was full",
    )?;
    check(q.get()? == 1, "first item")?;
    check(
        ours.recv::<String>()? == "put",
        "the put returns once there is room",
    )?;
    check(q.get()? == 2 && q.get()? == 3, "order")?;
    check(p.join_timeout(BOUND) == Some(0), "exit")
}

fn a_producer_killed_mid_stream_tears_nothing_and_blocks_no_one() -> Result<(), Failed> {
    // 64 KiB: the producer fills it and waits, is woken at half, refills.
    let q: Queue<Vec<u8>> = Queue::with_capacity(0, 64 * 1024)?;
    let (ours, theirs) = Pipe(true)?;
    let p = started(&PUT_FOREVER, (q.clone(), theirs));
    check(ours.recv::<String>()? == "first", "first put")?;
    let mut next = 0u64;
    let mut take = |item: Vec<u8>| -> Result<(), Failed> {
        let n = u64::from_le_bytes(item[..8].try_into().unwrap());
        check(
            n == next && item.len() == 4096 && item[8..].iter().all(|&b| b == n as u8),
            format!(
                "item {n} (expected {next}, {} bytes) is torn or out of order",
                item.len()
            ),
        )?;
        next += 1;
        Ok(())
    };
    // Kill it while it is putting: it puts as fast as it can, and the
    // queue frees room as this side takes items.
    for _ in 0..200 {
        take(q.get_timeout(BOUND)?)?;
    }
    p.kill();
    check(p.join_timeout(BOUND) == Some(-9), "killed")?;
    loop {
        match q.get_nowait() {
            Ok(item) => take(item)?,
            Err(Error::Empty) => break,
            Err(e) => return Err(format!("after the kill: {e}").into()),
        }
    }
    // The writers' lock it may have held is usable again.
    q.put_timeout(&vec![7; 10], BOUND)?;
    check(q.get_timeout(BOUND)? == vec![7; 10], "a put after the kill")
}

fn nowait_and_timeouts_report_full_empty_and_timeout() -> Result<(), Failed> {
    let q: Queue<u8> = Queue::new(1)?;
    check(matches!(q.get_nowait(), Err(Error::Empty)), "empty")?;
    check(
        matches!(
            q.get_timeout(Duration::from_millis(10)),
            Err(Error::Timeout)
        ),
        "get timeout",
    )?;
    q.put_nowait(&1)?;
    check(matches!(q.put_nowait(&2), Err(Error::Full)), "full")?;
    check(
        matches!(
            q.put_timeout(&2, Duration::from_millis(10)),
            Err(Error::Timeout)
        ),
        "put timeout",
    )?;
    check(q.get()? == 1 && q.empty(), "the item put is kept")
}

fn a_value_that_fails_to_serialize_is_an_encode_error() -> Result<(), Failed> {
    struct Refuses;
    impl serde::Serialize for Refuses {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("refused"))
        }
    }
    impl<'de> serde::Deserialize<'de> for Refuses {
        fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
            Ok(Refuses)
        }
    }
    let q: Queue<Refuses> = Queue::new(1)?;
    check(
        matches!(q.put(&Refuses), Err(Error::Encode(_))),
        "encode error",
    )?;
    check(q.empty(), "nothing was put")?;
    // A connection holds a descriptor, which a shared-memory queue cannot carry.
    let (a, _b) = Pipe(true)?;
    let cq: Queue<Connection> = Queue::new(1)?;
    check(
        matches!(cq.put(&a), Err(Error::Encode(_))),
        "descriptor refused",
    )
}

/// The bytes of message `i` of `len` bytes: every message differs.
fn pattern(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
}

fn records_of_every_size_cross_the_ring_end_intact() -> Result<(), Failed> {
    // A 4 KiB ring and sizes 0..=300 cycling: records start and end at
    // every offset, and many wrap, prefix and tag included.
    const ROUNDS: usize = 30;
    let q: Queue<Vec<u8>> = Queue::with_capacity(0, 4096)?;
    let (rx, tx) = Pipe(false)?;
    // Not joined on a failure: a producer left waiting on a full queue
    // ends with the test process.
    let producer = std::thread::spawn({
        let q = q.clone();
        move || {
            for i in 0..ROUNDS * 301 {
                q.put(&pattern(i, i % 301)).unwrap();
                tx.send_bytes(&pattern(i, i % 301)).unwrap();
                tx.send(&pattern(i, i % 301)).unwrap();
            }
        }
    });
    for i in 0..ROUNDS * 301 {
        let want = pattern(i, i % 301);
        check(q.get_timeout(BOUND)? == want, format!("queue item {i}"))?;
        check(rx.recv_bytes()? == want, format!("pipe bytes {i}"))?;
        check(rx.recv::<Vec<u8>>()? == want, format!("pipe value {i}"))?;
    }
    check(producer.join().is_ok(), "the producer")
}

fn join_waits_until_a_child_marks_every_item_done() -> Result<(), Failed> {
    let q = JoinableQueue::new(10)?;
    for i in 0..3 {
        q.put(&i)?;
    }
    let p = started(&WORK_DONE, q.clone());
    q.join_timeout(BOUND)?;
    check(q.empty(), "all taken")?;
    check(p.join_timeout(BOUND) == Some(0), "exit")
}

fn pool_results_and_map_in_order() -> Result<(), Failed> {
    let pool = ProcessPool::new(2);
    let futures: Vec<_> = (0..100u64)
        .map(|i| pool.submit(&SQUARE, i).unwrap())
        .collect();
    for (i, f) in futures.iter().enumerate() {
        check(f.result() == Ok((i * i) as u64), format!("task {i}"))?;
    }
    let mapped: Vec<u64> = pool
        .map(&SQUARE, 0..1000u64, 7)?
        .map(Result::unwrap)
        .collect();
    check(
        mapped == (0..1000u64).map(|x| x * x).collect::<Vec<_>>(),
        "map order",
    )
}

fn pool_a_task_that_panics_fails_its_future_only() -> Result<(), Failed> {
    let pool = ProcessPool::new(1);
    let bad = pool.submit(&PANICS, 7)?;
    match bad.result() {
        Err(FutureError::Panicked(why)) => check(why.contains("task 7 failed on purpose"), why)?,
        other => return Err(format!("{other:?}").into()),
    }
    check(
        pool.submit(&SQUARE, 3)?.result() == Ok(9),
        "the pool goes on",
    )
}

fn pool_a_worker_killed_mid_task_fails_that_task_and_is_replaced() -> Result<(), Failed> {
    let pool = ProcessPool::new(1);
    let before = pool.submit(&PID, ())?.result()?;
    let dead = pool.submit(&DIES, ())?;
    let after: Vec<_> = (0..5u64)
        .map(|i| pool.submit(&SQUARE, i).unwrap())
        .collect();
    match dead.result() {
        Err(FutureError::WorkerDied(why)) => check(why.contains("signal 9"), why)?,
        other => return Err(format!("{other:?}").into()),
    }
    for (i, f) in after.iter().enumerate() {
        check(
            f.result() == Ok((i * i) as u64),
            format!("task {i} after the death"),
        )?;
    }
    let now = pool.submit(&PID, ())?.result()?;
    check(now != before, "a new worker")
}

fn pool_callbacks_run_in_the_parent() -> Result<(), Failed> {
    let pool = ProcessPool::new(2);
    let (tx, rx) = std::sync::mpsc::channel();
    let f = pool.submit(&SQUARE, 5)?;
    f.add_done_callback(move |f| tx.send((std::process::id(), f.result())).unwrap());
    let (pid, result) = rx.recv_timeout(BOUND)?;
    check(
        pid == std::process::id() && result == Ok(25),
        format!("callback in {pid}"),
    )
}

fn pool_max_tasks_per_child_replaces_workers() -> Result<(), Failed> {
    let pool = ProcessPool::builder()
        .max_workers(1)
        .max_tasks_per_child(2)
        .build();
    let pids: Vec<u32> = (0..6)
        .map(|_| pool.submit(&PID, ()).unwrap().result().unwrap())
        .collect();
    let mut distinct = pids.clone();
    distinct.dedup();
    check(distinct.len() == 3, format!("{pids:?}"))
}

fn pool_initializer_runs_in_each_worker() -> Result<(), Failed> {
    let pool = ProcessPool::builder()
        .max_workers(2)
        .initializer(&INIT, 42)
        .build();
    let seen: Vec<u32> = pool
        .map(&READ_INIT, vec![(); 20], 1)?
        .map(Result::unwrap)
        .collect();
    check(seen.iter().all(|&v| v == 42), format!("{seen:?}"))
}

common::process_tests!(TABLE;
    four_processes_through_one_queue_every_item_once,
    a_producer_blocks_on_a_full_queue,
    a_producer_killed_mid_stream_tears_nothing_and_blocks_no_one,
    nowait_and_timeouts_report_full_empty_and_timeout,
    a_value_that_fails_to_serialize_is_an_encode_error,
    records_of_every_size_cross_the_ring_end_intact,
    join_waits_until_a_child_marks_every_item_done,
    pool_results_and_map_in_order,
    pool_a_task_that_panics_fails_its_future_only,
    pool_a_worker_killed_mid_task_fails_that_task_and_is_replaced,
    pool_callbacks_run_in_the_parent,
    pool_max_tasks_per_child_replaces_workers,
    pool_initializer_runs_in_each_worker,
);
