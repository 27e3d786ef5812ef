//! Greenlets and the hub: behaviours from gevent's own test suite, by name.

use std::cell::{Cell, RefCell};
use std::process::Command;
use std::rc::Rc;
use std::time::Duration;

use green::{Event, GreenletError};

/// Greenlets run in the order they were spawned (gevent's
/// `test_greenlet.py`: `TestSpawn`).
#[test]
fn spawn_order_is_fifo() {
    let order = green::run(|| {
        let order = Rc::new(RefCell::new(Vec::new()));
        let greenlets: Vec<_> = (0..100)
            .map(|i| {
                let order = Rc::clone(&order);
                green::spawn(move || order.borrow_mut().push(i))
            })
            .collect();
        green::joinall(&greenlets, None);
        order.take()
    });
    assert_eq!(order, (0..100).collect::<Vec<_>>());
}

/// `sleep(0)` lets every other ready greenlet run once, and only once,
/// before the caller goes on.
#[test]
fn sleep_zero_runs_every_ready_greenlet_once() {
    green::run(|| {
        let runs = Rc::new(RefCell::new(vec![0u32; 5]));
        for i in 0..5 {
            let runs = Rc::clone(&runs);
            green::spawn(move || {
                loop {
                    runs.borrow_mut()[i] += 1;
                    green::sleep(Duration::ZERO);
                }
            });
        }
        for round in 1..=3 {
            green::sleep(Duration::ZERO);
            assert_eq!(*runs.borrow(), vec![round; 5], "after {round} yields");
        }
    });
}

/// `joinall` with a timeout returns the greenlets that finished, and
/// leaves the others running.
#[test]
fn joinall_with_a_timeout_returns_the_finished_ones() {
    green::run(|| {
        let gate = Rc::new(Event::new());
        let greenlets: Vec<_> = (0..6)
            .map(|i| {
                let gate = Rc::clone(&gate);
                green::spawn(move || {
                    if i % 2 == 1 {
                        gate.wait(); // never set
                    }
                    i
                })
            })
            .collect();
        let done = green::joinall(&greenlets, Some(Duration::from_millis(20)));
        let done: Vec<_> = done.iter().map(|g| g.get().unwrap()).collect();
        assert_eq!(done, [0, 2, 4]);
        assert!(!greenlets[1].ready());
    });
}

struct Flag(Rc<Cell<bool>>);

impl Drop for Flag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// A killed greenlet unwinds from its blocking call: its destructors run,
/// `join` returns, and `get` says it was killed (gevent's `GreenletExit`).
#[test]
fn kill_runs_the_killed_greenlets_destructors() {
    green::run(|| {
        let dropped = Rc::new(Cell::new(false));
        let flag = Flag(Rc::clone(&dropped));
        let reached = Rc::new(Cell::new(false));
        let r = Rc::clone(&reached);
        let g = green::spawn(move || {
            let _flag = flag;
            green::sleep(Duration::from_secs(3600));
            r.set(true);
        });
        green::sleep(Duration::ZERO); // it is asleep now
        assert!(!dropped.get());
        g.kill();
        assert!(g.ready() && dropped.get() && !reached.get());
        assert_eq!(g.get(), Err(GreenletError::Killed));
        assert!(!g.successful());
    });
}

/// A greenlet killed before it ran never runs; what it captured is dropped.
#[test]
fn kill_before_start_never_runs() {
    green::run(|| {
        let dropped = Rc::new(Cell::new(false));
        let flag = Flag(Rc::clone(&dropped));
        let ran = Rc::new(Cell::new(false));
        let r = Rc::clone(&ran);
        let g = green::spawn(move || {
            let _flag = flag;
            r.set(true);
        });
        g.kill();
        assert!(!ran.get() && dropped.get());
        assert_eq!(g.get(), Err(GreenletError::Killed));
    });
}

/// A kill that finds its greenlet ready (woken, not yet run) ends it at
/// the call it was woken from.
#[test]
fn kill_of_a_ready_greenlet_ends_its_current_call() {
    green::run(|| {
        let event = Rc::new(Event::new());
        let after = Rc::new(Cell::new(false));
        let (e, a) = (Rc::clone(&event), Rc::clone(&after));
        let g = green::spawn(move || {
            e.wait();
            a.set(true);
        });
        green::sleep(Duration::ZERO);
        event.set(); // g is ready now
        g.kill();
        assert!(!after.get());
        assert_eq!(g.get(), Err(GreenletError::Killed));
    });
}

/// A panicking greenlet's message is in its `get`, the panic hook names
/// it, and every other greenlet goes on.
#[test]
fn a_panicking_greenlet_reports_its_message_and_the_others_go_on() {
    green::run(|| {
        let bad = green::try_spawn_named("bad", || -> u32 { panic!("no more noodles") }).unwrap();
        let good = green::spawn(|| {
            green::sleep(Duration::from_millis(1));
            7
        });
        assert_eq!(
            bad.get(),
            Err(GreenletError::Panicked("no more noodles".into()))
        );
        assert_eq!(good.get(), Ok(7));
    });
}

/// `get` may be asked many times; `into_result` takes the value once.
#[test]
fn get_many_times_into_result_once() {
    green::run(|| {
        let g = green::spawn(|| String::from("value"));
        assert_eq!(g.get().unwrap(), "value");
        assert_eq!(g.get().unwrap(), "value");
        assert_eq!(g.clone().into_result().unwrap(), "value");
        assert_eq!(g.get(), Err(GreenletError::Taken));
    });
}

/// `get_timeout` on a greenlet still running says so.
#[test]
fn get_timeout_on_a_running_greenlet_times_out() {
    green::run(|| {
        let g = green::spawn(|| green::sleep(Duration::from_secs(3600)));
        assert_eq!(
            g.get_timeout(Duration::from_millis(1)),
            Err(GreenletError::Timeout)
        );
        g.kill();
    });
}

/// 10,000 greenlets sleep at the same time: every one has started its
/// sleep before the first wakes, so together they take one sleep, not
/// 10,000.
#[test]
fn ten_thousand_sleeping_greenlets_sleep_at_once() {
    const N: usize = 10_000;
    green::run(|| {
        let asleep = Rc::new(Cell::new(0));
        let seen_at_first_wake = Rc::new(Cell::new(None));
        let greenlets: Vec<_> = (0..N)
            .map(|_| {
                let (asleep, seen) = (Rc::clone(&asleep), Rc::clone(&seen_at_first_wake));
                green::spawn(move || {
                    asleep.set(asleep.get() + 1);
                    green::sleep(Duration::from_millis(50));
                    if seen.get().is_none() {
                        seen.set(Some(asleep.get()));
                    }
                })
            })
            .collect();
        assert_eq!(green::joinall(&greenlets, None).len(), N);
        assert_eq!(seen_at_first_wake.get(), Some(N));
    });
}

/// `spawn_later` starts its greenlet only once the delay has passed, after
/// greenlets spawned at once.
#[test]
fn spawn_later_runs_after_the_delay() {
    green::run(|| {
        let order = Rc::new(RefCell::new(Vec::new()));
        let o = Rc::clone(&order);
        let later = green::spawn_later(Duration::from_millis(5), move || {
            o.borrow_mut().push("later")
        });
        let o = Rc::clone(&order);
        let now = green::spawn(move || o.borrow_mut().push("now"));
        green::joinall(&[later, now], None);
        assert_eq!(*order.borrow(), ["now", "later"]);
    });
}

/// Greenlets still alive when `main` returns are killed, and their
/// destructors run before `run` returns.
#[test]
fn run_kills_what_main_left_behind() {
    let dropped = Rc::new(Cell::new(false));
    let d = Rc::clone(&dropped);
    green::run(move || {
        let flag = Flag(d);
        green::spawn(move || {
            let _flag = flag;
            green::sleep(Duration::from_secs(3600));
        });
        green::sleep(Duration::ZERO);
    });
    assert!(dropped.get());
}

/// `main`'s panic comes out of `run`.
#[test]
#[should_panic(expected = "main failed")]
fn a_panic_in_main_comes_out_of_run() {
    green::run(|| panic!("main failed"));
}

/// When every greenlet waits and nothing can wake one, `main`'s wait
/// panics instead of hanging (gevent's `LoopExit`).
#[test]
#[should_panic(expected = "every greenlet is blocked")]
fn a_deadlock_panics_instead_of_hanging() {
    green::run(|| Event::new().wait());
}

/// A timeout scope ends a sleep inside it and returns `Err(Timeout)`;
/// scopes nest, and the outer one's deadline wins when it is earlier.
#[test]
fn timeout_scopes_nest() {
    green::run(|| {
        let outer = green::with_timeout(Duration::from_millis(5), || {
            green::with_timeout(Duration::from_secs(3600), || {
                green::sleep(Duration::from_secs(3600));
            })
        });
        assert_eq!(outer, Err(green::Timeout));
        let inner = green::with_timeout(Duration::from_secs(3600), || {
            green::with_timeout(Duration::from_millis(5), || {
                green::sleep(Duration::from_secs(3600));
            })
        });
        assert_eq!(inner, Ok(Err(green::Timeout)));
    });
}

/// `spawn_blocking` runs its call on another thread while the hub runs
/// other greenlets.
#[test]
fn spawn_blocking_lets_other_greenlets_run() {
    green::run(|| {
        let gate = std::sync::Arc::new(std::sync::Barrier::new(2));
        let g = {
            let gate = std::sync::Arc::clone(&gate);
            green::spawn(move || {
                green::spawn_blocking(move || {
                    gate.wait();
                    "from the pool"
                })
            })
        };
        // The pool's thread waits for this one; it can only be reached if
        // the hub runs it while the first greenlet waits.
        let other = green::spawn(move || green::spawn_blocking(move || gate.wait()));
        assert_eq!(g.get(), Ok("from the pool"));
        other.join();
    });
}

/// Each thread runs its own hub; greenlets never leave theirs.
#[test]
fn a_hub_per_thread() {
    let threads: Vec<_> = (0..2)
        .map(|t| {
            std::thread::spawn(move || {
                green::run(move || {
                    let gs: Vec<_> = (0..100)
                        .map(|i| green::spawn(move || t * 1000 + i))
                        .collect();
                    gs.iter().map(|g| g.get().unwrap()).sum::<usize>()
                })
            })
        })
        .collect();
    let sums: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(sums, [4950, 104950]);
}

/// A greenlet that overflows its stack kills the process with a message
/// naming it, never corrupting memory (checked in a child process: this
/// test binary, run again on this test alone).
#[test]
fn a_stack_overflow_names_the_greenlet() {
    if std::env::var_os("GREEN_OVERFLOW_CHILD").is_some() {
        green::Hub::new().stack_size(32 * 1024).run(|| {
            let g = green::try_spawn_named("deep", || recurse(0)).unwrap();
            g.join();
        });
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "a_stack_overflow_names_the_greenlet",
            "--exact",
            "--nocapture",
        ])
        .env("GREEN_OVERFLOW_CHILD", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("green: greenlet 'deep' overflowed its stack of 32 KiB"),
        "stderr: {stderr}"
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        output.status.signal(),
        Some(libc_sigabrt()),
        "{:?}",
        output.status
    );
}

fn libc_sigabrt() -> i32 {
    6
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1) + frame[7]
}
