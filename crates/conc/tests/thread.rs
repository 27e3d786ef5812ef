//! Behaviour tests for `conc::thread`: names, the daemon flag, the live-thread registry, and `run_main`'s daemon rule (checked in a child process).
#![cfg(not(loom))] // the model checks are the loom_* files

use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use conc::thread::{self, Builder};

/// Set in the child process to pick the scenario `child_process` runs.
const CHILD_ENV: &str = "CONC_THREAD_TEST_CHILD";

#[test]
fn a_named_thread_knows_its_name() {
    let t = Builder::new()
        .name("loader")
        .spawn(|| {
            let me = thread::current();
            (
                me.name().to_owned(),
                std::thread::current().name().map(String::from),
            )
        })
        .unwrap();
    assert_eq!(t.thread().name(), "loader");
    let (name, std_name) = t.join().unwrap();
    assert_eq!(name, "loader");
    assert_eq!(std_name.as_deref(), Some("loader"));
}

#[test]
fn unnamed_threads_are_thread_n_and_idents_are_unique() {
    let a = thread::spawn(|| ());
    let b = thread::spawn(|| ());
    assert!(a.thread().name().starts_with("Thread-"));
    assert_ne!(a.thread().name(), b.thread().name());
    assert_ne!(a.thread().ident(), b.thread().ident());
    a.join().unwrap();
    b.join().unwrap();
}

#[test]
fn the_daemon_flag_is_inherited_unless_set() {
    let parent = Builder::new()
        .daemon(true)
        .spawn(|| {
            let inherited = thread::spawn(thread::current).join().unwrap();
            let explicit = Builder::new()
                .daemon(false)
                .spawn(thread::current)
                .unwrap()
                .join()
                .unwrap();
            (inherited.daemon(), explicit.daemon())
        })
        .unwrap();
    assert_eq!(parent.join().unwrap(), (true, false));
    // A thread conc did not start (this test's) is a `Dummy-N` daemon, as
    // in Python, so what it starts is a daemon too.
    assert!(thread::spawn(thread::current).join().unwrap().daemon());
}

/// The default does not depend on whether a foreign thread asked for its
/// own record first: one rule, the creator's `current().daemon()`.
#[test]
fn a_foreign_threads_children_are_daemons_whatever_it_did_first() {
    let spawned_from_foreign = |ask_first: bool| {
        std::thread::spawn(move || {
            if ask_first {
                assert!(thread::current().daemon());
            }
            thread::spawn(thread::current).join().unwrap().daemon()
        })
        .join()
        .unwrap()
    };
    assert_eq!(
        (spawned_from_foreign(false), spawned_from_foreign(true)),
        (true, true)
    );
    // From a thread conc started as a non-daemon, the default is false.
    let child = Builder::new()
        .daemon(false)
        .spawn(|| thread::spawn(thread::current).join().unwrap().daemon())
        .unwrap();
    assert!(!child.join().unwrap());
}

#[test]
fn enumerate_lists_live_threads_only() {
    let (release, wait) = mpsc::channel::<()>();
    let t = Builder::new()
        .name("enumerated")
        .spawn(move || {
            let _ = wait.recv();
        })
        .unwrap();
    let me = t.thread().clone();
    assert!(thread::enumerate().contains(&me));
    assert!(thread::active_count() >= 2);
    assert!(me.is_alive());
    drop(release);
    t.join().unwrap();
    assert!(!thread::enumerate().contains(&me));
    assert!(!me.is_alive());
}

#[test]
fn a_panicking_thread_leaves_the_registry() {
    let t = Builder::new()
        .name("doomed")
        .spawn(|| panic!("expected"))
        .unwrap();
    let me = t.thread().clone();
    assert!(t.join().is_err());
    assert!(!me.is_alive());
}

#[test]
fn main_thread_is_always_listed() {
    let main = thread::main_thread();
    assert_eq!(
        (main.name(), main.ident(), main.daemon()),
        ("MainThread", 1, false)
    );
    assert!(main.is_alive());
    assert_eq!(thread::enumerate()[0], main);
}

#[test]
fn foreign_threads_are_unlisted_dummies() {
    let me = std::thread::spawn(thread::current).join().unwrap();
    assert!(me.name().starts_with("Dummy-"));
    assert!(me.daemon());
    assert!(!thread::enumerate().contains(&me));
}

/// Re-runs this test binary with only `child_process` and the scenario in
/// the environment, and returns its stdout.
fn run_child(scenario: &str) -> String {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, scenario)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A child that never exits is the failure some scenarios test for:
    // give it a minute, then fail instead of hanging the suite.
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the {scenario} child did not exit within a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Position of `line` in `out`, which must contain it.
fn at(out: &str, line: &str) -> usize {
    out.find(line)
        .unwrap_or_else(|| panic!("{line:?} missing from child output:\n{out}"))
}

#[test]
fn run_main_waits_for_non_daemons_and_cuts_daemons_off() {
    let out = run_child("daemon");
    assert!(at(&out, "main closure returned") < at(&out, "worker finished"));
    assert!(at(&out, "worker finished") < at(&out, "run_main returned 42"));
    assert!(out.contains("current is main: true"));
    // The daemon sleeps far longer than the worker; the process exits
    // without it, so its line never appears.
    assert!(
        !out.contains("daemon finished"),
        "daemon was waited for:\n{out}"
    );
}

/// From a review: a pool still alive when main returns (a `static`, a
/// leak) is closed by `run_main`, as CPython's exit hook does, instead of
/// its idle workers keeping the process alive for ever.
#[test]
fn run_main_closes_pools_that_outlive_main() {
    let out = run_child("pool");
    assert!(at(&out, "result 7") < at(&out, "run_main returned"));
}

#[test]
fn run_main_waits_even_when_main_panics() {
    let out = run_child("panic");
    assert!(at(&out, "worker finished") < at(&out, "panic resumed: main failed"));
}

/// Not a test by itself: the body of the child process (a no-op unless
/// `CHILD_ENV` is set).
#[test]
fn child_process() {
    match std::env::var(CHILD_ENV).as_deref() {
        Ok("daemon") => {
            let value = thread::run_main(|| {
                println!(
                    "current is main: {}",
                    thread::current() == thread::main_thread()
                );
                // The worker finishes only after main's closure has
                // returned, however the machine schedules them.
                let (returned, worker_may_finish) = std::sync::mpsc::channel::<()>();
                Builder::new()
                    .name("worker")
                    .daemon(false)
                    .spawn(move || {
                        let _ = worker_may_finish.recv();
                        println!("worker finished");
                    })
                    .unwrap();
                Builder::new()
                    .name("ghost")
                    .daemon(true)
                    .spawn(|| {
                        // Far longer than any test run: waiting for it
                        // would show as this line, a minute late.
                        std::thread::sleep(Duration::from_secs(60));
                        println!("daemon finished");
                    })
                    .unwrap();
                println!("main closure returned");
                drop(returned); // the worker's recv() returns
                42
            });
            println!("run_main returned {value}");
        }
        Ok("pool") => {
            thread::run_main(|| {
                // A pool that is never dropped: its workers are non-daemon
                // threads waiting for tasks, and must not hold the exit.
                let pool: &'static conc::pool::ThreadPool =
                    Box::leak(Box::new(conc::pool::ThreadPool::new(2)));
                let future = pool.submit(|| 7).unwrap();
                println!("result {}", future.result().unwrap());
            });
            println!("run_main returned");
        }
        Ok("panic") => {
            let result = std::panic::catch_unwind(|| {
                thread::run_main(|| {
                    thread::spawn(|| {
                        std::thread::sleep(Duration::from_millis(100));
                        println!("worker finished");
                    });
                    panic!("main failed");
                })
            });
            let payload = result.unwrap_err();
            println!("panic resumed: {}", payload.downcast_ref::<&str>().unwrap());
        }
        _ => {}
    }
}
