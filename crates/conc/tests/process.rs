//! `conc::process` with real child processes: exit codes, joins with timeouts, reaping, daemons, the fork refusal, and bad input.
//!
//! This binary is its own `main` (`harness = false`): it calls
//! `entry_point` first, so that the children it spawns, which re-run it,
//! run their entry instead of the cases. Every wait is bounded, and every
//! precondition is reached by construction (a child reports it is ready
//! through a pipe before the case acts on it), never by a sleep.

use std::time::Duration;

use conc::ipc::{Connection, Pipe};
use conc::process::{self, Entry, Process, ProcessError};
use libtest_mimic::Failed;

mod common;
use common::{check, started};

/// A bound no correct case comes near: a case that reaches it failed.
const BOUND: Duration = Duration::from_secs(60);

static EXIT_WITH: Entry<i32> = Entry::new("exit_with", |code| std::process::exit(code));
static PANICS: Entry<()> = Entry::new("panics", |()| panic!("on purpose"));
static NOTHING: Entry<()> = Entry::new("nothing", |()| {});
/// Says it is ready, then waits for a message that never comes (until its
/// peer closes the pipe or it is killed).
static PARK: Entry<Connection> = Entry::new("park", |conn| {
    conn.send(&"ready").unwrap();
    let _ = conn.recv_bytes();
});
/// Reports its name, pid, parent and daemon flag.
static WHO: Entry<Connection> = Entry::new("who", |conn| {
    let me = process::current_process();
    let parent = process::parent_process().map(|p| (p.pid(), p.name().to_string()));
    conn.send(&(me.name().to_string(), me.pid(), me.daemon(), parent))
        .unwrap();
});
/// Echoes values back until the peer closes.
static ECHO: Entry<Connection> = Entry::new("echo", |conn| {
    while let Ok(v) = conn.recv::<Vec<u64>>() {
        conn.send(&v).unwrap();
    }
});

/// Blocks until killed.
static FOREVER: Entry<()> = Entry::new("forever", |()| {
    loop {
        std::thread::park();
    }
});
/// Starts a child (a daemon or not) that blocks for ever, reports its pid,
/// then parks itself (`park == true`) or returns at once.
static OWNER: Entry<(Connection, bool, bool)> = Entry::new("owner", |(conn, daemon, park)| {
    let mut child = Process::new(&FOREVER, ());
    child.set_daemon(daemon);
    child.start().unwrap();
    conn.send(&child.pid().unwrap()).unwrap();
    if park {
        loop {
            std::thread::park();
        }
    }
    if !daemon {
        // Kill it, so that the exit rule's wait for it can end.
        conn.recv_bytes().unwrap();
        child.kill();
    }
});

/// In a spawned child, which has one thread: forks a closure and an entry,
/// and reports their exit codes.
static FORKS: Entry<Connection> = Entry::new("forks", |conn| {
    let threads = process::threads();
    let mut closure = Process::fork(|| std::process::exit(5));
    closure.start().unwrap();
    let mut entry = Process::new(&EXIT_WITH, 6);
    entry.set_method(process::StartMethod::Fork);
    entry.start().unwrap();
    let mut panics = Process::fork(|| panic!("in a forked child"));
    panics.start().unwrap();
    conn.send(&(threads, closure.join(), entry.join(), panics.join()))
        .unwrap();
});

/// In a spawned child, alone: counts its open descriptors, then starts
/// and joins children one at a time, forked and spawned, and counts again.
static JOINS_MANY: Entry<Connection> = Entry::new("joins_many", |conn| {
    let open = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let before = open();
    for i in 0..64 {
        let mut p = if i % 2 == 0 {
            Process::fork(|| {})
        } else {
            Process::new(&NOTHING, ())
        };
        p.start().unwrap();
        assert_eq!(p.join(), 0);
    }
    conn.send(&(before, open(), process::active_children().len()))
        .unwrap();
});

static TABLE: &[&dyn process::Registered] = &[
    &FORKS,
    &EXIT_WITH,
    &PANICS,
    &NOTHING,
    &PARK,
    &WHO,
    &ECHO,
    &FOREVER,
    &OWNER,
    &JOINS_MANY,
];

fn exitcode_of_a_normal_exit_and_of_an_exit_status() -> Result<(), Failed> {
    let p = started(&EXIT_WITH, 0);
    check(p.join_timeout(BOUND) == Some(0), "exit 0")?;
    let p = started(&EXIT_WITH, 7);
    check(
        p.join_timeout(BOUND) == Some(7),
        format!("exit 7: {:?}", p.exitcode()),
    )
}

fn exitcode_of_a_panic_is_one() -> Result<(), Failed> {
    let p = started(&PANICS, ());
    check(
        p.join_timeout(BOUND) == Some(1),
        format!("{:?}", p.exitcode()),
    )
}

fn ready(entry: &'static Entry<Connection>) -> (Process, Connection) {
    let (ours, theirs) = Pipe(true).unwrap();
    let p = started(entry, theirs);
    assert_eq!(ours.recv::<String>().unwrap(), "ready");
    (p, ours)
}

fn exitcode_of_terminate_and_kill_is_minus_the_signal() -> Result<(), Failed> {
    let (p, _keep) = ready(&PARK);
    check(p.is_alive() && p.exitcode().is_none(), "alive while parked")?;
    p.terminate();
    check(
        p.join_timeout(BOUND) == Some(-15),
        format!("terminate: {:?}", p.exitcode()),
    )?;
    let (p, _keep) = ready(&PARK);
    p.kill();
    check(
        p.join_timeout(BOUND) == Some(-9),
        format!("kill: {:?}", p.exitcode()),
    )?;
    check(!p.is_alive(), "dead after join")
}

fn join_with_a_timeout_returns_none_while_the_child_runs() -> Result<(), Failed> {
    let (p, conn) = ready(&PARK);
    check(
        p.join_timeout(Duration::from_millis(50)).is_none(),
        "timed out",
    )?;
    check(p.is_alive(), "still alive")?;
    drop(conn); // its recv ends: it exits 0
    check(
        p.join_timeout(BOUND) == Some(0),
        format!("{:?}", p.exitcode()),
    )
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
    })
}

fn active_children_reaps_finished_children() -> Result<(), Failed> {
    let (parked, conn) = ready(&PARK);
    let quick = started(&NOTHING, ());
    let pid = quick.pid().unwrap();
    drop(quick); // nobody joins it but active_children
    // It exits by itself; it is a zombie until reaped. Wait for that state.
    let deadline = std::time::Instant::now() + BOUND;
    while !is_zombie(pid) {
        check(
            std::time::Instant::now() < deadline,
            "the child never exited",
        )?;
        std::thread::yield_now();
    }
    let active: Vec<_> = process::active_children()
        .iter()
        .filter_map(Process::pid)
        .collect();
    check(!active.contains(&pid), "a finished child is not active")?;
    check(
        active.contains(&parked.pid().unwrap()),
        "a running child is active",
    )?;
    check(
        !is_zombie(pid) && !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "reaped: no Z left",
    )?;
    drop(conn);
    check(parked.join_timeout(BOUND) == Some(0), "parked child exits")
}

fn a_child_knows_its_name_and_parent() -> Result<(), Failed> {
    let (ours, theirs) = Pipe(true).unwrap();
    let mut p = Process::new(&WHO, theirs);
    p.set_name("worker-1");
    p.set_daemon(true);
    p.start().unwrap();
    let (name, pid, daemon, parent): (String, u32, bool, Option<(u32, String)>) =
        ours.recv().unwrap();
    check(
        name == "worker-1" && Some(pid) == p.pid() && daemon,
        format!("{name} {pid} {daemon}"),
    )?;
    check(
        parent == Some((std::process::id(), "MainProcess".into())),
        format!("{parent:?}"),
    )?;
    check(p.join_timeout(BOUND) == Some(0), "exit")
}

fn default_names_count_up() -> Result<(), Failed> {
    let a = Process::new(&NOTHING, ());
    let b = Process::new(&NOTHING, ());
    let (na, nb): (u32, u32) = (
        a.name().strip_prefix("Process-").unwrap().parse().unwrap(),
        b.name().strip_prefix("Process-").unwrap().parse().unwrap(),
    );
    check(nb == na + 1, format!("{} then {}", a.name(), b.name()))
}

fn values_go_both_ways_through_a_pipe_passed_to_a_child() -> Result<(), Failed> {
    let (ours, theirs) = Pipe(true).unwrap();
    let p = started(&ECHO, theirs);
    for n in [0usize, 1, 1000, 100_000] {
        let v: Vec<u64> = (0..n as u64).collect();
        ours.send(&v).unwrap();
        check(ours.recv::<Vec<u64>>().unwrap() == v, format!("{n} values"))?;
    }
    drop(ours);
    check(
        p.join_timeout(BOUND) == Some(0),
        "echo exits when the pipe closes",
    )
}

/// Whether `pid` has ended: gone, or a zombie nobody reaps (an orphan's
/// new parent, in a container, may be a PID 1 that never waits).
fn ended(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid)
}

fn wait_ended(pid: u32) -> Result<(), Failed> {
    let deadline = std::time::Instant::now() + BOUND;
    while !ended(pid) {
        check(
            std::time::Instant::now() < deadline,
            format!("process {pid} is still running"),
        )?;
        std::thread::yield_now();
    }
    Ok(())
}

fn a_daemon_child_dies_when_its_parent_is_killed() -> Result<(), Failed> {
    let (ours, theirs) = Pipe(true).unwrap();
    let owner = started(&OWNER, (theirs, true, true));
    let daemon: u32 = ours.recv()?;
    check(!ended(daemon), "the daemon runs")?;
    owner.kill(); // SIGKILL: no exit hook runs, only the kernel's PDEATHSIG
    check(owner.join_timeout(BOUND) == Some(-9), "owner killed")?;
    wait_ended(daemon)
}

fn a_daemon_child_is_terminated_when_its_parent_returns() -> Result<(), Failed> {
    let (ours, theirs) = Pipe(true).unwrap();
    let owner = started(&OWNER, (theirs, true, false));
    let daemon: u32 = ours.recv()?;
    check(owner.join_timeout(BOUND) == Some(0), "owner exits 0")?;
    wait_ended(daemon)
}

fn a_parent_waits_for_its_non_daemon_children() -> Result<(), Failed> {
    let (ours, theirs) = Pipe(true).unwrap();
    let owner = started(&OWNER, (theirs, false, false));
    let child: u32 = ours.recv()?;
    // The owner's entry returns only after we answer; then its exit rule
    // waits for the child, which it has killed: both end.
    ours.send_bytes(b"go")?;
    check(owner.join_timeout(BOUND) == Some(0), "owner exits 0")?;
    // The owner reaped it before exiting: it is gone, not a zombie.
    check(
        !std::path::Path::new(&format!("/proc/{child}")).exists(),
        "reaped by its parent",
    )
}

fn fork_runs_closures_and_entries_in_a_single_threaded_process() -> Result<(), Failed> {
    let (ours, theirs) = Pipe(true).unwrap();
    let p = started(&FORKS, theirs);
    let got: (usize, i32, i32, i32) = ours.recv()?;
    check(
        got == (1, 5, 6, 1),
        format!("(threads, closure, entry, panic) = {got:?}"),
    )?;
    check(p.join_timeout(BOUND) == Some(0), "exit")
}

fn joined_children_leave_no_descriptor_behind() -> Result<(), Failed> {
    let (ours, theirs) = Pipe(true).unwrap();
    let p = started(&JOINS_MANY, theirs);
    let (before, after, active): (usize, usize, usize) = ours.recv()?;
    check(
        after == before && active == 0,
        format!("{before} descriptors before 64 joined children, {after} after, {active} active"),
    )?;
    check(p.join_timeout(BOUND) == Some(0), "exit")
}

fn fork_is_refused_in_a_threaded_process() -> Result<(), Failed> {
    // This test binary runs cases on threads: it has more than one.
    let mut p = Process::fork(|| {});
    match p.start() {
        Err(ProcessError::Threaded { threads }) => check(threads > 1, "threads counted"),
        other => Err(format!("{other:?}").into()),
    }
}

fn an_unregistered_entry_is_refused_before_anything_starts() -> Result<(), Failed> {
    static STRAY: Entry<()> = Entry::new("stray", |()| {});
    let mut p = Process::new(&STRAY, ());
    match p.start() {
        Err(ProcessError::NotRegistered(why)) => check(why.contains("stray"), why),
        other => Err(format!("{other:?}").into()),
    }
}

fn arguments_that_fail_to_serialize_are_an_error_at_start() -> Result<(), Failed> {
    let mut p = Process::new(&NOTHING_REFUSES, Refuse);
    check(
        matches!(p.start(), Err(ProcessError::Args(_))),
        "Args error",
    )?;
    check(p.pid().is_none(), "nothing started")
}

/// Same name as NOTHING, so it is registered; its argument type refuses to encode.
static NOTHING_REFUSES: Entry<Refuse> = Entry::new("nothing", |_| {});
#[derive(serde::Deserialize)]
struct Refuse;
impl serde::Serialize for Refuse {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("refused"))
    }
}

fn a_connection_travels_through_a_pipe() -> Result<(), Failed> {
    let (a, b) = Pipe(true)?;
    let (c, d) = Pipe(true)?;
    a.send(&d)?;
    drop(d);
    let d: Connection = b.recv()?;
    c.send(&5u32)?;
    check(d.recv::<u32>()? == 5, "through the received end")?;
    // A big message and a small one keep their order.
    // A big message (over the socket's buffer: sent from another thread,
    // as its send waits for the reader) and a small one keep their order.
    let big = vec![7u8; 1 << 20];
    std::thread::scope(|s| {
        s.spawn(|| {
            a.send_bytes(&big).unwrap();
            a.send_bytes(b"after").unwrap();
        });
        check(
            b.recv_bytes()? == big && b.recv_bytes()? == b"after",
            "order",
        )
    })
}

fn a_peer_that_closed_its_pipe_is_an_error() -> Result<(), Failed> {
    let (a, b) = Pipe(true).unwrap();
    drop(b);
    check(
        matches!(a.recv::<u32>(), Err(conc::ipc::Error::Closed)),
        "recv",
    )?;
    check(
        matches!(a.send(&1u32), Err(conc::ipc::Error::Closed)),
        "send",
    )
}

common::process_tests!(TABLE;
    exitcode_of_a_normal_exit_and_of_an_exit_status,
    exitcode_of_a_panic_is_one,
    exitcode_of_terminate_and_kill_is_minus_the_signal,
    join_with_a_timeout_returns_none_while_the_child_runs,
    active_children_reaps_finished_children,
    a_child_knows_its_name_and_parent,
    default_names_count_up,
    values_go_both_ways_through_a_pipe_passed_to_a_child,
    a_daemon_child_dies_when_its_parent_is_killed,
    a_daemon_child_is_terminated_when_its_parent_returns,
    a_parent_waits_for_its_non_daemon_children,
    fork_runs_closures_and_entries_in_a_single_threaded_process,
    fork_is_refused_in_a_threaded_process,
    joined_children_leave_no_descriptor_behind,
    an_unregistered_entry_is_refused_before_anything_starts,
    arguments_that_fail_to_serialize_are_an_error_at_start,
    a_connection_travels_through_a_pipe,
    a_peer_that_closed_its_pipe_is_an_error,
);
