//! `conc::ipc`'s shared primitives with real child processes: the ticket race, holders killed with SIGKILL, semaphores, events, conditions, barriers, values, arrays and the shared file.
//!
//! This binary is its own `main` (`harness = false`): it calls
//! `entry_point` first, so the children it spawns, which re-run it, run
//! their entry instead of the cases. Every wait is bounded, and every
//! precondition is reached by construction (a child reports it is ready
//! through a pipe, or the case waits on the primitive under test), never
//! by a sleep. Children are daemons: if a case fails and returns early,
//! the kernel kills them with the thread that started them.

use std::time::Duration;

use conc::ipc::{
    AcquireError, Array, Barrier, BoundedSemaphore, Condition, Connection, Event, Lock, Pipe,
    RLock, Semaphore, SharedFile, Value,
};
use conc::process::{self, Entry, Process};
use conc::sync::{BarrierError, TooManyReleases};
use libtest_mimic::Failed;

mod common;
use common::{check, started_daemon};

/// A bound no correct case comes near: a case that reaches it failed.
const BOUND: Duration = Duration::from_secs(60);

/// How many buyers race, and how many tickets each buys.
const BUYERS: u32 = 4;
const EACH: u32 = 100;

/// The course's buyer: read the count, write it back less one, under a
/// `Lock` that makes the two one step.
static BUY_UNDER_LOCK: Entry<(Lock, Value<u32>)> =
    Entry::new("buy_under_lock", |(lock, tickets)| {
        for _ in 0..EACH {
            let _held = lock.acquire().unwrap();
            let left = tickets.get();
            std::thread::yield_now(); // invite the race the lock prevents
            tickets.set(left - 1);
        }
    });

/// The same buyer over the shared file.
static BUY_FROM_FILE: Entry<SharedFile> = Entry::new("buy_from_file", |store| {
    for _ in 0..EACH {
        let mut held = store.lock().unwrap();
        let left: u32 = held.read_to_string().unwrap().trim().parse().unwrap();
        held.write((left - 1).to_string().as_bytes()).unwrap();
    }
});

/// Takes the lock, says so, and waits to be killed.
static HOLD_LOCK: Entry<(Lock, Connection)> = Entry::new("hold_lock", |(lock, conn)| {
    let _held = lock.acquire().unwrap();
    conn.send(&"ready").unwrap();
    let _ = conn.recv_bytes();
});

/// Takes the re-entrant lock twice, says so, and waits to be killed.
static HOLD_RLOCK: Entry<(RLock, Connection)> = Entry::new("hold_rlock", |(lock, conn)| {
    let _outer = lock.acquire().unwrap();
    let _inner = lock.acquire().unwrap();
    conn.send(&"ready").unwrap();
    let _ = conn.recv_bytes();
});

/// Takes the file's lock, says so, and waits to be killed.
static HOLD_FILE: Entry<(SharedFile, Connection)> = Entry::new("hold_file", |(store, conn)| {
    let _held = store.lock().unwrap();
    conn.send(&"ready").unwrap();
    let _ = conn.recv_bytes();
});

/// Reports whether it could take the lock at once, then whether it could
/// within the bound (so the parent can release it in between).
static TRY_LOCK: Entry<(Lock, Connection)> = Entry::new("try_lock", |(lock, conn)| {
    conn.send(&lock.try_acquire().is_ok()).unwrap();
    conn.send(&lock.acquire_timeout(BOUND).is_ok()).unwrap();
});

/// Reports whether the file's lock is free now.
static TRY_FILE: Entry<(SharedFile, Connection)> = Entry::new("try_file", |(store, conn)| {
    conn.send(&store.try_lock().unwrap().is_some()).unwrap();
});

/// Takes a permit, says so, and holds it until the event is set.
static HOLD_PERMIT: Entry<(Semaphore, Event, Connection)> =
    Entry::new("hold_permit", |(sem, go, conn)| {
        let _permit = sem.acquire();
        conn.send(&"ready").unwrap();
        assert!(go.wait_timeout(BOUND));
    });

/// Counts itself in and out under a permit, keeping the most seen inside.
static INSIDE: Entry<(Semaphore, Array<u32>)> = Entry::new("inside", |(sem, counts)| {
    for _ in 0..EACH {
        let _permit = sem.acquire();
        {
            let mut c = counts.acquire().unwrap();
            c[0] += 1;
            c[1] = c[1].max(c[0]);
        }
        std::thread::yield_now();
        counts.acquire().unwrap()[0] -= 1;
    }
});

static SET_EVENT: Entry<Event> = Entry::new("set_event", |event| event.set());

static WAIT_EVENT: Entry<(Event, Connection)> = Entry::new("wait_event", |(event, conn)| {
    conn.send(&event.wait_timeout(BOUND)).unwrap();
});

/// Waits for the data to be 1, makes it 2, and notifies.
static PING: Entry<Condition<u32>> = Entry::new("ping", |cond| {
    let mut guard = cond.acquire().unwrap();
    assert!(guard.wait_for_timeout(BOUND, |n| *n == 1));
    *guard = 2;
    drop(guard);
    cond.notify_all();
});

/// Waits at the barrier twice, reporting each arrival index (or the error).
static AT_BARRIER: Entry<(Barrier, Connection, u32)> =
    Entry::new("at_barrier", |(barrier, conn, rounds)| {
        for _ in 0..rounds {
            let outcome = barrier.wait_timeout(BOUND).map_err(|e| e.to_string());
            conn.send(&outcome).unwrap();
        }
    });

/// Adds one to the value and to its own and the shared slot of the array,
/// `EACH` times, under their locks.
static ADD: Entry<(Value<u64>, Array<u32>, u32)> = Entry::new("add", |(total, slots, me)| {
    let shared = slots.len() - 1;
    for _ in 0..EACH {
        *total.acquire().unwrap() += 1;
        let mut s = slots.acquire().unwrap();
        s[me as usize] += 1;
        s[shared] += 1;
    }
});

/// Every type, passed at once: does one observable thing with each.
type Everything = (
    (Lock, RLock, Semaphore, BoundedSemaphore),
    (Event, Condition<u32>, Barrier),
    (Value<u32>, Array<u8>, SharedFile),
);
static EVERYTHING: Entry<Everything> = Entry::new(
    "everything",
    |((lock, rlock, sem, bounded), (event, cond, barrier), (value, array, file))| {
        drop(lock.acquire().unwrap());
        drop(rlock.acquire().unwrap());
        sem.acquire().forget();
        bounded.acquire().forget();
        *cond.acquire().unwrap() = 7;
        value.set(42);
        array.set(1, 9).unwrap();
        file.lock().unwrap().write(b"child").unwrap();
        assert_eq!(barrier.parties(), 2);
        barrier.wait_timeout(BOUND).unwrap();
        event.set();
    },
);

static TABLE: &[&dyn process::Registered] = &[
    &BUY_UNDER_LOCK,
    &BUY_FROM_FILE,
    &HOLD_LOCK,
    &HOLD_RLOCK,
    &HOLD_FILE,
    &TRY_LOCK,
    &TRY_FILE,
    &HOLD_PERMIT,
    &INSIDE,
    &SET_EVENT,
    &WAIT_EVENT,
    &PING,
    &AT_BARRIER,
    &ADD,
    &EVERYTHING,
];

/// A pipe whose other end goes to a child.
fn pipe() -> (Connection, Connection) {
    Pipe(true).unwrap()
}

fn ready(conn: &Connection) -> Result<(), Failed> {
    let said: String = conn.recv().map_err(|e| format!("ready: {e}"))?;
    check(said == "ready", said)
}

fn joined(p: &Process, code: i32) -> Result<(), Failed> {
    let got = p.join_timeout(BOUND);
    check(
        got == Some(code),
        format!("{} exited {got:?}, not {code}", p.name()),
    )
}

/// A file under the temporary directory, unique to this case and run.
fn temp_path(case: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("conc-ipc-sync-{case}-{}", std::process::id()))
}

fn ticket_race_under_a_lock_sells_each_ticket_once() -> Result<(), Failed> {
    let start = BUYERS * EACH + 10;
    let (lock, tickets) = (Lock::new()?, Value::new(start)?);
    let buyers: Vec<_> = (0..BUYERS)
        .map(|_| started_daemon(&BUY_UNDER_LOCK, (lock.clone(), tickets.clone())))
        .collect();
    for p in &buyers {
        joined(p, 0)?;
    }
    check(tickets.get() == 10, format!("{} left", tickets.get()))
}

fn ticket_race_over_the_shared_file_sells_each_ticket_once() -> Result<(), Failed> {
    let path = temp_path("tickets");
    let store = SharedFile::open(&path)?;
    store
        .lock()?
        .write((BUYERS * EACH + 10).to_string().as_bytes())?;
    let buyers: Vec<_> = (0..BUYERS)
        .map(|_| started_daemon(&BUY_FROM_FILE, store.clone()))
        .collect();
    for p in &buyers {
        joined(p, 0)?;
    }
    let left = store.lock()?.read_to_string()?;
    std::fs::remove_file(&path)?;
    check(left == "10", format!("{left} left"))
}

fn a_lock_whose_holder_was_killed_reports_it_once_then_works() -> Result<(), Failed> {
    let lock = Lock::new()?;
    let (ours, theirs) = pipe();
    let holder = started_daemon(&HOLD_LOCK, (lock.clone(), theirs));
    ready(&ours)?;
    check(lock.locked(), "held by the child")?;
    check(
        matches!(lock.try_acquire(), Err(AcquireError::Timeout)),
        "try while the child holds it",
    )?;
    holder.kill();
    joined(&holder, -9)?;
    let guard = match lock.acquire_timeout(BOUND) {
        Err(AcquireError::OwnerDied(died)) => died.into_inner(),
        other => return Err(format!("after the kill: {other:?}").into()),
    };
    drop(guard);
    check(lock.acquire_timeout(BOUND).is_ok(), "Ok the second time")?;
    // And another process takes it in turn with us.
    let held = lock.acquire()?;
    let (ours, theirs) = pipe();
    let other = started_daemon(&TRY_LOCK, (lock.clone(), theirs));
    check(!ours.recv::<bool>()?, "the other child finds it held")?;
    drop(held);
    check(ours.recv::<bool>()?, "and takes it once released")?;
    joined(&other, 0)
}

fn a_peek_does_not_swallow_the_news_of_a_dead_holder() -> Result<(), Failed> {
    let lock = Lock::new()?;
    let (ours, theirs) = pipe();
    let holder = started_daemon(&HOLD_LOCK, (lock.clone(), theirs));
    ready(&ours)?;
    holder.kill();
    joined(&holder, -9)?;
    check(!lock.locked(), "free once its holder died")?;
    check(
        matches!(lock.acquire(), Err(AcquireError::OwnerDied(_))),
        "the acquire after the peek still hears of it",
    )
}

fn an_rlock_whose_holder_was_killed_reports_it_once_then_works() -> Result<(), Failed> {
    let lock = RLock::new()?;
    let (ours, theirs) = pipe();
    let holder = started_daemon(&HOLD_RLOCK, (lock.clone(), theirs));
    ready(&ours)?;
    check(lock.locked() && !lock.is_owned(), "held by the child")?;
    holder.kill();
    joined(&holder, -9)?;
    let outer = match lock.acquire_timeout(BOUND) {
        Err(AcquireError::OwnerDied(died)) => died.into_inner(),
        other => return Err(format!("after the kill: {other:?}").into()),
    };
    let inner = lock.acquire()?; // re-entrant, and no second report
    check(lock.is_owned(), "ours, at depth two")?;
    drop(outer);
    check(lock.is_owned(), "still ours at depth one")?;
    drop(inner);
    check(
        !lock.locked(),
        "free: the dead holder's depth did not linger",
    )?;
    check(lock.acquire().is_ok(), "Ok afterwards")
}

fn a_file_lock_whose_holder_was_killed_is_free() -> Result<(), Failed> {
    let path = temp_path("killed");
    let store = SharedFile::open(&path)?;
    let (ours, theirs) = pipe();
    let holder = started_daemon(&HOLD_FILE, (store.clone(), theirs));
    ready(&ours)?;
    check(store.try_lock()?.is_none(), "held by the child")?;
    holder.kill();
    joined(&holder, -9)?;
    let free = store.try_lock()?.is_some();
    // A holder here excludes a child too.
    let held = store.lock()?;
    let (ours, theirs) = pipe();
    let other = started_daemon(&TRY_FILE, (store.clone(), theirs));
    let child_took_it = ours.recv::<bool>()?;
    drop(held);
    joined(&other, 0)?;
    std::fs::remove_file(&path)?;
    check(free, "the kernel dropped the dead holder's lock")?;
    check(
        !child_took_it,
        "a child cannot take a lock the parent holds",
    )
}

fn a_second_acquire_on_one_thread_is_an_error_not_a_hang() -> Result<(), Failed> {
    let lock = Lock::new()?;
    let held = lock.acquire()?;
    check(
        matches!(lock.acquire(), Err(AcquireError::Deadlock)),
        "acquire",
    )?;
    check(
        matches!(lock.acquire_timeout(BOUND), Err(AcquireError::Deadlock)),
        "acquire_timeout says so at once",
    )?;
    check(
        matches!(lock.try_acquire(), Err(AcquireError::Deadlock)),
        "try_acquire too",
    )?;
    let other = lock.clone();
    let elsewhere = std::thread::spawn(move || {
        matches!(
            other.acquire_timeout(Duration::from_millis(20)),
            Err(AcquireError::Timeout)
        )
    });
    check(
        elsewhere.join().unwrap(),
        "another thread waits, then times out",
    )?;
    drop(held);
    let value = Value::new(0u8)?;
    let cond = Condition::new(0u8)?;
    let (_v, _c) = (value.acquire()?, cond.acquire()?);
    check(
        matches!(value.acquire(), Err(AcquireError::Deadlock)),
        "Value",
    )?;
    check(
        matches!(cond.acquire(), Err(AcquireError::Deadlock)),
        "Condition",
    )
}

fn a_semaphore_bounds_holders_across_processes() -> Result<(), Failed> {
    let (sem, go) = (Semaphore::new(2)?, Event::new()?);
    let holders: Vec<_> = (0..2)
        .map(|_| {
            let (ours, theirs) = pipe();
            (
                started_daemon(&HOLD_PERMIT, (sem.clone(), go.clone(), theirs)),
                ours,
            )
        })
        .collect();
    for (_, conn) in &holders {
        ready(conn)?;
    }
    check(sem.get_value() == 0, format!("{} free", sem.get_value()))?;
    check(sem.try_acquire().is_none(), "try while both are out")?;
    check(
        sem.acquire_timeout(Duration::from_millis(20)).is_none(),
        "timed wait while both are out",
    )?;
    go.set();
    let permit = sem.acquire_timeout(BOUND);
    check(permit.is_some(), "a permit once a holder lets go")?;
    for (p, _) in &holders {
        joined(p, 0)?;
    }
    drop(permit);
    check(
        sem.get_value() == 2,
        format!("{} free at the end", sem.get_value()),
    )?;
    // Many processes in and out: never more than two inside.
    let counts = Array::<u32>::zeroed(2)?;
    let crowd: Vec<_> = (0..3)
        .map(|_| started_daemon(&INSIDE, (sem.clone(), counts.clone())))
        .collect();
    for p in &crowd {
        joined(p, 0)?;
    }
    let [inside, most] = counts.to_vec()[..] else {
        return Err("two counts".into());
    };
    check(
        inside == 0 && (1..=2).contains(&most),
        format!("{inside} inside, at most {most}"),
    )
}

fn every_type_passed_to_a_child_works_there() -> Result<(), Failed> {
    let bounded = BoundedSemaphore::new(1)?;
    check(bounded.release() == Err(TooManyReleases), "full")?;
    let (lock, rlock, sem) = (Lock::new()?, RLock::new()?, Semaphore::new(1)?);
    let (event, cond, barrier) = (Event::new()?, Condition::new(0u32)?, Barrier::new(2)?);
    let (value, array) = (Value::new(0u32)?, Array::<u8>::zeroed(2)?);
    let path = temp_path("everything");
    let file = SharedFile::open(&path)?;
    let child = started_daemon(
        &EVERYTHING,
        (
            (lock.clone(), rlock.clone(), sem.clone(), bounded.clone()),
            (event.clone(), cond.clone(), barrier.clone()),
            (value.clone(), array.clone(), file.clone()),
        ),
    );
    check(
        barrier.wait_timeout(BOUND).is_ok(),
        "met the child at the barrier",
    )?;
    check(event.wait_timeout(BOUND), "the child set the event")?;
    joined(&child, 0)?;
    check(!lock.locked() && !rlock.locked(), "both locks free")?;
    check(sem.get_value() == 0, "the child kept its permit")?;
    check(
        bounded.release() == Ok(()),
        "released here what the child took",
    )?;
    check(bounded.release() == Err(TooManyReleases), "once only")?;
    check(*cond.acquire()? == 7, "the condition's data")?;
    check(value.get() == 42, "the value")?;
    check(array.to_vec() == [0, 9], "the array")?;
    let written = file.lock()?.read()?;
    std::fs::remove_file(&path)?;
    check(written == b"child", "the shared file")
}

fn an_event_set_in_a_child_wakes_the_parent_and_back() -> Result<(), Failed> {
    let event = Event::new()?;
    let setter = started_daemon(&SET_EVENT, event.clone());
    check(event.wait_timeout(BOUND), "set by the child")?;
    joined(&setter, 0)?;
    let event = Event::new()?;
    let (ours, theirs) = pipe();
    let waiter = started_daemon(&WAIT_EVENT, (event.clone(), theirs));
    event.set();
    check(ours.recv::<bool>()?, "the child saw it set")?;
    joined(&waiter, 0)
}

fn a_condition_notifies_across_processes() -> Result<(), Failed> {
    let cond = Condition::new(0u32)?;
    let child = started_daemon(&PING, cond.clone());
    *cond.acquire()? = 1;
    cond.notify_all();
    let mut guard = cond.acquire()?;
    check(
        guard.wait_for_timeout(BOUND, |n| *n == 2),
        "the child's answer",
    )?;
    drop(guard);
    joined(&child, 0)
}

fn a_barrier_of_three_processes_trips_twice() -> Result<(), Failed> {
    let barrier = Barrier::new(3)?;
    let children: Vec<_> = (0..2)
        .map(|_| {
            let (ours, theirs) = pipe();
            (
                started_daemon(&AT_BARRIER, (barrier.clone(), theirs, 2)),
                ours,
            )
        })
        .collect();
    for round in 0..2 {
        let mut indices = vec![barrier.wait_timeout(BOUND).map_err(|e| e.to_string())];
        for (_, conn) in &children {
            indices.push(conn.recv::<Result<usize, String>>()?);
        }
        indices.sort();
        check(
            indices == [Ok(0), Ok(1), Ok(2)],
            format!("round {round}: {indices:?}"),
        )?;
    }
    for (p, _) in &children {
        joined(p, 0)?;
    }
    Ok(())
}

fn an_aborted_barrier_is_broken_for_a_child_until_reset() -> Result<(), Failed> {
    let barrier = Barrier::new(2)?;
    let (ours, theirs) = pipe();
    // Whether the child arrives before or after the abort, it is broken.
    let child = started_daemon(&AT_BARRIER, (barrier.clone(), theirs, 1));
    barrier.abort();
    let outcome = ours.recv::<Result<usize, String>>()?;
    check(
        outcome == Err(BarrierError::Broken.to_string()),
        format!("{outcome:?}"),
    )?;
    joined(&child, 0)?;
    barrier.reset();
    check(!barrier.broken() && barrier.n_waiting() == 0, "reset")?;
    check(
        barrier.wait_timeout(Duration::from_millis(20)) == Err(BarrierError::Timeout),
        "alone: a timeout, which breaks it",
    )?;
    check(barrier.broken(), "broken by the timeout")
}

fn values_and_arrays_updated_by_children_under_their_locks() -> Result<(), Failed> {
    let total = Value::new(0u64)?;
    let slots = Array::<u32>::zeroed(BUYERS as usize + 1)?;
    let children: Vec<_> = (0..BUYERS)
        .map(|me| started_daemon(&ADD, (total.clone(), slots.clone(), me)))
        .collect();
    for p in &children {
        joined(p, 0)?;
    }
    let mut want = vec![EACH; BUYERS as usize];
    want.push(BUYERS * EACH);
    check(
        total.get() == u64::from(BUYERS * EACH),
        format!("total {}", total.get()),
    )?;
    check(slots.to_vec() == want, format!("{:?}", slots.to_vec()))
}

common::process_tests!(TABLE;
    ticket_race_under_a_lock_sells_each_ticket_once,
    ticket_race_over_the_shared_file_sells_each_ticket_once,
    a_lock_whose_holder_was_killed_reports_it_once_then_works,
    a_peek_does_not_swallow_the_news_of_a_dead_holder,
    an_rlock_whose_holder_was_killed_reports_it_once_then_works,
    a_file_lock_whose_holder_was_killed_is_free,
    a_second_acquire_on_one_thread_is_an_error_not_a_hang,
    a_semaphore_bounds_holders_across_processes,
    every_type_passed_to_a_child_works_there,
    an_event_set_in_a_child_wakes_the_parent_and_back,
    a_condition_notifies_across_processes,
    a_barrier_of_three_processes_trips_twice,
    an_aborted_barrier_is_broken_for_a_child_until_reset,
    values_and_arrays_updated_by_children_under_their_locks,
);
