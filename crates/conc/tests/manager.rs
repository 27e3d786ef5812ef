//! The Manager with real processes: a dict, list, namespace and queue shared by spawned children, the manager lock, and the server's exit when its owner goes.
//!
//! This binary is its own `main` (`harness = false`): it calls
//! `entry_point` first, so that the children it spawns (and the manager
//! servers, conc's built-in entry) run instead of the cases. Every wait is
//! bounded, and every precondition is reached by construction (a child
//! says it holds the lock through a pipe before the case kills it), never
//! by a sleep.

use std::time::{Duration, Instant};

use conc::ipc::{
    Connection, DictProxy, Error, ListProxy, LockProxy, Manager, NamespaceProxy, Pipe, QueueProxy,
};
use conc::process::{self, Entry, Process};
use libtest_mimic::Failed;

mod common;
use common::{check, started};

/// A bound no correct case comes near: a case that reaches it failed.
const BOUND: Duration = Duration::from_secs(60);

/// How many times each of the course's workers counts.
const COUNTS: u64 = 100;

/// The course's `dic['count'] += 1` under the manager lock, then a key of
/// its own.
static COUNT: Entry<(DictProxy<String, u64>, LockProxy, u32)> =
    Entry::new("count", |(dic, lock, n)| {
        for _ in 0..COUNTS {
            lock.acquire().unwrap();
            let count = dic.get("count").unwrap().unwrap();
            dic.set("count", count + 1).unwrap();
            lock.release().unwrap();
        }
        dic.set(&format!("worker-{n}"), u64::from(std::process::id()))
            .unwrap();
    });

/// Appends `(n, 0..50)`, one request per item.
static APPEND: Entry<(ListProxy<(u32, u32)>, u32)> = Entry::new("append", |(list, n)| {
    for j in 0..50 {
        list.append((n, j)).unwrap();
    }
});

/// Reads what the parent set, and sets attributes of its own.
static NAMESPACE: Entry<NamespaceProxy> = Entry::new("namespace", |ns| {
    let x: i64 = ns.get("x").unwrap().unwrap();
    let name: String = ns.get("name").unwrap().unwrap();
    ns.set("y", &(x + 1)).unwrap();
    ns.set("seen", &format!("{name}, seen by {}", std::process::id()))
        .unwrap();
});

/// An item of the queue case: its producer and its number.
type Item = (u32, u32);

/// Puts `(n, 0..count)` in order.
static PRODUCE: Entry<(QueueProxy<Item>, u32, u32)> = Entry::new("produce", |(queue, n, count)| {
    for i in 0..count {
        queue.put((n, i)).unwrap();
    }
});

/// Takes the lock, says so, and waits (to be killed holding it).
static HOLD: Entry<(LockProxy, Connection)> = Entry::new("hold", |(lock, conn)| {
    lock.acquire().unwrap();
    conn.send(&"held").unwrap();
    let _ = conn.recv_bytes();
});

/// Starts a manager, sends its server's pid and a queue of it, and waits
/// (to be killed, or for its pipe to close, when it shuts the manager down).
static OWNER: Entry<Connection> = Entry::new("owner", |conn| {
    let manager = Manager::new().unwrap();
    let queue = manager.queue::<u8>().unwrap();
    conn.send(&(manager.pid(), queue)).unwrap();
    let _ = conn.recv_bytes();
});

static TABLE: &[&dyn process::Registered] = &[&COUNT, &APPEND, &NAMESPACE, &PRODUCE, &HOLD, &OWNER];

fn joined(p: &Process) -> Result<(), Failed> {
    let code = p.join_timeout(BOUND);
    check(code == Some(0), format!("{} exited {code:?}", p.name()))
}

fn three_processes_count_under_the_manager_lock() -> Result<(), Failed> {
    let manager = Manager::new()?;
    let dic = manager.dict::<String, u64>()?;
    let lock = manager.lock()?;
    dic.set("count", 0)?;
    let workers: Vec<_> = (0..3)
        .map(|n| started(&COUNT, (dic.clone(), lock.clone(), n)))
        .collect();
    for w in &workers {
        joined(w)?;
    }
    let count = dic.get("count")?;
    check(count == Some(3 * COUNTS), format!("count {count:?}"))?;
    for (n, w) in workers.iter().enumerate() {
        let pid = dic.get(&format!("worker-{n}"))?;
        check(
            pid == w.pid().map(u64::from),
            format!("worker-{n}: {pid:?}"),
        )?;
    }
    // "count" was set first; the workers' keys follow in the order they finished.
    let mut keys = dic.keys()?;
    check(
        keys.first().is_some_and(|k| k == "count"),
        format!("keys {keys:?}"),
    )?;
    keys[1..].sort();
    check(
        keys == ["count", "worker-0", "worker-1", "worker-2"],
        format!("keys {keys:?}"),
    )
}

fn appends_from_several_processes_all_land() -> Result<(), Failed> {
    let manager = Manager::new()?;
    let list = manager.list::<(u32, u32)>()?;
    let workers: Vec<_> = (0..4)
        .map(|n| started(&APPEND, (list.clone(), n)))
        .collect();
    for w in &workers {
        joined(w)?;
    }
    let items = list.to_vec()?;
    check(items.len() == 200, format!("{} items", items.len()))?;
    for n in 0..4 {
        let mine: Vec<u32> = items.iter().filter(|i| i.0 == n).map(|i| i.1).collect();
        check(
            mine == (0..50).collect::<Vec<_>>(),
            format!("worker {n}'s appends, in its order: {mine:?}"),
        )?;
    }
    check(list.len()? == 200, "len")?;
    check(list.pop()?.is_some() && list.len()? == 199, "pop")
}

fn a_namespace_is_seen_across_processes() -> Result<(), Failed> {
    let manager = Manager::new()?;
    let ns = manager.namespace()?;
    ns.set("x", &41i64)?;
    ns.set("name", "parent")?;
    let child = started(&NAMESPACE, ns.clone());
    joined(&child)?;
    check(ns.get::<i64>("y")? == Some(42), "y")?;
    let seen = ns.get::<String>("seen")?;
    let pid = child.pid().unwrap_or_default();
    check(
        seen == Some(format!("parent, seen by {pid}")),
        format!("seen {seen:?}"),
    )
}

fn a_queue_hands_every_item_over_exactly_once() -> Result<(), Failed> {
    const EACH: u32 = 300;
    let manager = Manager::new()?;
    let queue = manager.queue::<Item>()?;
    let producers: Vec<_> = (0..2)
        .map(|n| started(&PRODUCE, (queue.clone(), n, EACH)))
        .collect();
    let mut next = [0u32; 2];
    for _ in 0..2 * EACH {
        let (n, i) = queue.get_timeout(BOUND)?;
        // FIFO: each producer's items come in the order it put them, so
        // this one check finds a lost, doubled or reordered item.
        check(
            next[n as usize] == i,
            format!("from {n}: {i}, not {}", next[n as usize]),
        )?;
        next[n as usize] += 1;
    }
    for p in &producers {
        joined(p)?;
    }
    check(queue.empty()? && queue.qsize()? == 0, "drained")?;
    let none = queue.get_timeout(Duration::from_millis(10));
    check(matches!(none, Err(Error::Timeout)), format!("{none:?}"))
}

fn a_waiting_get_holds_up_no_other_client() -> Result<(), Failed> {
    let manager = Manager::new()?;
    let queue = manager.queue::<u32>()?;
    let dic = manager.dict::<u32, u32>()?;
    let waiting = queue.clone();
    let (about_to_wait, ready) = std::sync::mpsc::channel();
    let getter = std::thread::spawn(move || -> Result<u32, Error> {
        about_to_wait.send(()).unwrap();
        waiting.get_timeout(BOUND)
    });
    ready.recv()?;
    // Served while the other thread's get waits in the server (or before
    // it starts waiting: the case passes either way, and hangs neither).
    dic.set(&1, 1)?;
    check(dic.len()? == 1, "served beside the waiting get")?;
    queue.put(7)?;
    let got = getter.join().map_err(|_| "the getter panicked")??;
    check(got == 7, format!("got {got}"))
}

fn a_lock_held_by_a_killed_process_is_released() -> Result<(), Failed> {
    let manager = Manager::new()?;
    let lock = manager.lock()?;
    let (ours, theirs) = Pipe(true)?;
    let holder = started(&HOLD, (lock.clone(), theirs));
    check(ours.recv::<String>()? == "held", "the child holds it")?;
    check(!lock.acquire_timeout(Duration::from_millis(10))?, "held")?;
    holder.kill();
    check(holder.join_timeout(BOUND) == Some(-9), "killed")?;
    check(
        lock.acquire_timeout(BOUND)?,
        "released when its holder died",
    )?;
    lock.release()?;
    check(
        matches!(lock.release(), Err(Error::Io(_))),
        "release unlocked",
    )
}

fn a_value_read_as_another_type_is_a_decode_error() -> Result<(), Failed> {
    let manager = Manager::new()?;
    let ns = manager.namespace()?;
    ns.set("name", "ada")?;
    let wrong = ns.get::<u64>("name");
    check(matches!(wrong, Err(Error::Decode(_))), format!("{wrong:?}"))?;
    // A dict's proxy does not decode as a list's.
    let dic = manager.dict::<String, String>()?;
    let (a, b) = Pipe(true)?;
    a.send(&dic)?;
    let wrong = b.recv::<ListProxy<String>>();
    check(matches!(wrong, Err(Error::Decode(_))), format!("{wrong:?}"))?;
    // A value holding a descriptor cannot be stored.
    let (c, _d) = Pipe(true)?;
    let refused = manager.list::<Connection>()?.append(c);
    check(
        matches!(refused, Err(Error::Encode(_))),
        format!("{refused:?}"),
    )
}

fn a_dict_keeps_the_order_keys_were_first_set_in() -> Result<(), Failed> {
    let manager = Manager::new()?;
    let dic = manager.dict::<String, u32>()?;
    for (k, v) in [("b", 1), ("a", 2), ("c", 3), ("a", 4)] {
        dic.set(k, v)?;
    }
    check(dic.keys()? == ["b", "a", "c"], "keys")?;
    check(dic.values()? == [1, 4, 3], "values")?;
    check(
        dic.remove("b")? == Some(1) && !dic.contains_key("b")?,
        "remove",
    )?;
    dic.set("b", 5)?;
    let items = dic.items()?;
    let want = [("a", 4), ("c", 3), ("b", 5)].map(|(k, v)| (k.to_string(), v));
    check(items == want, format!("items {items:?}"))?;
    dic.clear()?;
    check(dic.is_empty()?, "clear")
}

fn a_proxy_used_after_the_manager_is_dropped_is_closed() -> Result<(), Failed> {
    let manager = Manager::new()?;
    let dic = manager.dict::<String, u32>()?;
    dic.set("a", 1)?;
    let fresh = dic.clone();
    drop(manager);
    // This thread's connection was open: it reads the end of the stream.
    let got = dic.get("a");
    check(matches!(got, Err(Error::Closed)), format!("open: {got:?}"))?;
    // A thread with no connection yet finds nobody listening.
    let got = std::thread::spawn(move || fresh.get("a")).join();
    check(
        matches!(got, Ok(Err(Error::Closed))),
        format!("fresh: {got:?}"),
    )
}

/// A process's state letter and start time (in clock ticks since boot),
/// from `/proc/PID/stat`; `None` once it is gone.
fn stat(pid: u32) -> Option<(char, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
    // After the name: field 3 is the state, field 22 the start time.
    Some((
        fields.first()?.chars().next()?,
        fields.get(19)?.parse().ok()?,
    ))
}

/// Whether the process that started at `start` has exited: no such pid,
/// a zombie, or the pid now names another process.
fn exited(pid: u32, start: u64) -> bool {
    stat(pid).is_none_or(|(state, t)| t != start || matches!(state, 'Z' | 'X'))
}

fn the_server_exits_when_the_manager_is_dropped() -> Result<(), Failed> {
    let manager = Manager::new()?;
    let pid = manager.pid();
    let (_, start) = stat(pid).ok_or("the server is running")?;
    check(
        process::active_children()
            .iter()
            .any(|c| c.pid() == Some(pid) && c.daemon() && c.name().starts_with("SyncManager-")),
        "the server is a daemon child named SyncManager-N",
    )?;
    manager.dict::<u8, u8>()?.set(&1, 1)?;
    drop(manager); // shuts it down and joins it: it is reaped
    check(
        stat(pid).is_none_or(|(_, t)| t != start),
        "the server's pid is gone",
    )?;
    // It exits when told to, not when killed after the grace period.
    let code = Manager::new()?.shutdown();
    check(code == 0, format!("shutdown: exit code {code}"))
}

fn the_server_exits_when_its_owner_is_killed() -> Result<(), Failed> {
    let (ours, theirs) = Pipe(true)?;
    let owner = started(&OWNER, theirs);
    let (pid, queue): (u32, QueueProxy<u8>) = ours.recv()?;
    let (_, start) = stat(pid).ok_or("the server is running")?;
    check(queue.qsize()? == 0, "the server answers")?;
    owner.kill();
    check(
        owner.join_timeout(BOUND) == Some(-9),
        "the owner was killed",
    )?;
    // The server's sockets close as it dies: a get waiting in it ends then.
    let got = queue.get_timeout(BOUND);
    check(matches!(got, Err(Error::Closed)), format!("{got:?}"))?;
    // Closing its sockets is one of the last things a process does: what
    // is left (becoming a zombie, being reaped by init) follows at once.
    let deadline = Instant::now() + BOUND;
    while !exited(pid, start) {
        check(Instant::now() < deadline, "the server never exited")?;
        std::thread::yield_now();
    }
    Ok(())
}

common::process_tests!(TABLE;
    three_processes_count_under_the_manager_lock,
    appends_from_several_processes_all_land,
    a_namespace_is_seen_across_processes,
    a_queue_hands_every_item_over_exactly_once,
    a_waiting_get_holds_up_no_other_client,
    a_lock_held_by_a_killed_process_is_released,
    a_value_read_as_another_type_is_a_decode_error,
    a_dict_keeps_the_order_keys_were_first_set_in,
    a_proxy_used_after_the_manager_is_dropped_is_closed,
    the_server_exits_when_the_manager_is_dropped,
    the_server_exits_when_its_owner_is_killed,
);
