//! Behaviour tests for `conc::pool`: futures, callbacks, map, shutdown, panics in tasks, `as_completed` and `wait`.
#![cfg(not(loom))] // the model checks are the loom_* files

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

use conc::pool::{Future, FutureError, ReturnWhen, SubmitError, ThreadPool, as_completed, wait};

/// A task that blocks until the test opens the gate, to hold a worker busy.
fn gate() -> (mpsc::Sender<()>, impl FnOnce() + Send + 'static) {
    let (open, shut) = mpsc::channel::<()>();
    (open, move || {
        let _ = shut.recv();
    })
}

/// Waits (without a time limit) until `f` holds.
fn until(mut f: impl FnMut() -> bool) {
    while !f() {
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn submit_returns_the_value() {
    let pool = ThreadPool::new(2);
    let futures: Vec<_> = (0..100u64)
        .map(|i| pool.submit(move || i * 2).unwrap())
        .collect();
    let sum: u64 = futures.iter().map(|f| f.result().unwrap()).sum();
    assert_eq!(sum, 9900);
}

#[test]
fn result_can_be_read_many_times_but_taken_once() {
    let pool = ThreadPool::new(1);
    let fut = pool.submit(|| String::from("x")).unwrap();
    let other = fut.clone();
    assert_eq!(fut.result(), Ok("x".to_owned()));
    assert_eq!(fut.result(), Ok("x".to_owned()));
    assert_eq!(fut.into_result(), Ok("x".to_owned()));
    assert_eq!(other.result(), Err(FutureError::Taken));
}

#[test]
fn result_timeout_times_out_then_succeeds() {
    let pool = ThreadPool::new(1);
    let (open, wait_gate) = gate();
    let fut = pool
        .submit(move || {
            wait_gate();
            7
        })
        .unwrap();
    let start = Instant::now();
    assert_eq!(
        fut.result_timeout(Duration::from_millis(50)),
        Err(FutureError::Timeout)
    );
    assert!(start.elapsed() >= Duration::from_millis(45));
    open.send(()).unwrap();
    assert_eq!(fut.result_timeout(Duration::from_secs(60)), Ok(7));
}

#[test]
fn states_pending_running_done() {
    let pool = ThreadPool::new(1);
    let (open, wait_gate) = gate();
    let first = pool.submit(wait_gate).unwrap();
    let second = pool.submit(|| ()).unwrap();
    until(|| first.running());
    assert!(!first.done() && !first.cancelled());
    assert!(!second.running() && !second.done()); // queued behind the first
    open.send(()).unwrap();
    second.result().unwrap();
    assert!(first.done() && !first.running());
}

#[test]
fn cancel_only_while_pending() {
    let pool = ThreadPool::new(1);
    let (open, wait_gate) = gate();
    let running = pool.submit(wait_gate).unwrap();
    let queued = pool.submit(|| 1).unwrap();
    until(|| running.running());
    assert!(!running.cancel());
    assert!(queued.cancel());
    assert!(queued.cancel(), "cancelling twice still says cancelled");
    assert!(queued.cancelled() && queued.done());
    assert_eq!(queued.result(), Err(FutureError::Cancelled));
    open.send(()).unwrap();
    assert_eq!(running.result(), Ok(()));
    assert!(!running.cancel(), "a finished future cannot be cancelled");
}

#[test]
fn panic_in_task_is_an_error_and_the_pool_survives() {
    let pool = ThreadPool::new(1);
    let str_panic = pool.submit(|| -> u8 { panic!("static message") }).unwrap();
    let string_panic = pool
        .submit(|| -> u8 { panic!("formatted {}", 42) })
        .unwrap();
    assert_eq!(
        str_panic.result(),
        Err(FutureError::Panicked("static message".into()))
    );
    assert_eq!(
        string_panic.result(),
        Err(FutureError::Panicked("formatted 42".into()))
    );
    assert_eq!(pool.submit(|| 5).unwrap().result(), Ok(5));
    assert_eq!(pool.worker_count(), 1, "the worker survived the panics");
}

#[test]
fn callback_runs_in_the_worker_that_finished_the_task() {
    let pool = ThreadPool::builder()
        .max_workers(1)
        .thread_name_prefix("cbpool")
        .build();
    let (open, wait_gate) = gate();
    let fut = pool
        .submit(move || {
            wait_gate();
            3
        })
        .unwrap();
    let (tx, rx) = mpsc::channel();
    fut.add_done_callback(move |f| {
        let name = conc::thread::current().name().to_owned();
        tx.send((name, f.result())).unwrap();
    });
    open.send(()).unwrap();
    assert_eq!(rx.recv().unwrap(), ("cbpool_0".to_owned(), Ok(3)));
}

#[test]
fn callback_on_a_done_future_runs_at_once_in_the_caller() {
    let fut = Future::new();
    fut.set_result(1).unwrap();
    let caller = std::thread::current().id();
    let ran_here = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ran_here);
    fut.add_done_callback(move |_| {
        assert_eq!(std::thread::current().id(), caller);
        counter.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(ran_here.load(Ordering::SeqCst), 1);
}

#[test]
fn callbacks_run_once_in_order_also_on_cancel() {
    let fut: Future<()> = Future::new();
    let log = Arc::new(parking_lot::Mutex::new(Vec::new()));
    for i in 0..3 {
        let log = Arc::clone(&log);
        fut.add_done_callback(move |f| log.lock().push((i, f.cancelled())));
    }
    assert!(fut.cancel());
    assert!(fut.cancel());
    assert_eq!(*log.lock(), [(0, true), (1, true), (2, true)]);
}

#[test]
fn a_panicking_callback_does_not_kill_the_worker() {
    let pool = ThreadPool::new(1);
    let (open, wait_gate) = gate();
    let fut = pool.submit(wait_gate).unwrap();
    fut.add_done_callback(|_| panic!("callback fails"));
    open.send(()).unwrap();
    fut.result().unwrap();
    assert_eq!(pool.submit(|| 2).unwrap().result(), Ok(2));
    assert_eq!(pool.worker_count(), 1);
}

#[test]
fn set_result_twice_hands_the_value_back() {
    let fut = Future::new();
    fut.set_result(1).unwrap();
    assert_eq!(fut.set_result(2).unwrap_err().0, 2);
    assert_eq!(fut.set_panic("late").unwrap_err().0, "late");
    assert_eq!(fut.result(), Ok(1));
}

#[test]
fn map_yields_in_input_order() {
    let pool = ThreadPool::new(2);
    // Earlier items sleep longer, so they finish last.
    let results: Vec<_> = pool
        .map(
            |i: u64| {
                std::thread::sleep(Duration::from_millis(10 * (5 - i)));
                i
            },
            0..5,
        )
        .unwrap()
        .collect();
    assert_eq!(results, [Ok(0), Ok(1), Ok(2), Ok(3), Ok(4)]);
}

#[test]
fn map_reports_panics_per_item() {
    let pool = ThreadPool::new(2);
    let results: Vec<_> = pool
        .map(
            |i: i32| {
                assert!(i != 1, "one is bad");
                i
            },
            0..3,
        )
        .unwrap()
        .collect();
    assert_eq!(results[0], Ok(0));
    assert_eq!(results[1], Err(FutureError::Panicked("one is bad".into())));
    assert_eq!(results[2], Ok(2));
}

#[test]
fn dropping_a_map_cancels_what_has_not_started() {
    let pool = ThreadPool::new(1);
    let (open, wait_gate) = gate();
    let blocker = pool.submit(wait_gate).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ran);
    let map = pool
        .map(
            move |_: i32| {
                counter.fetch_add(1, Ordering::SeqCst);
            },
            0..10,
        )
        .unwrap();
    drop(map);
    open.send(()).unwrap();
    blocker.result().unwrap();
    pool.shutdown(true, false);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn workers_start_lazily_and_are_reused() {
    let pool = ThreadPool::new(4);
    assert_eq!(pool.worker_count(), 0);
    for i in 0..20 {
        assert_eq!(pool.submit(move || i).unwrap().result(), Ok(i));
    }
    assert_eq!(pool.worker_count(), 1);
    // Four tasks that must all run at once need four workers, and no more.
    let barrier = Arc::new(Barrier::new(4));
    let futures: Vec<_> = (0..4)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            pool.submit(move || {
                barrier.wait();
            })
            .unwrap()
        })
        .collect();
    for f in &futures {
        f.result().unwrap();
    }
    assert_eq!(pool.worker_count(), 4);
}

#[test]
fn thread_names_and_initializer() {
    let inits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&inits);
    let pool = ThreadPool::builder()
        .max_workers(2)
        .thread_name_prefix("named")
        .initializer(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .build();
    let barrier = Arc::new(Barrier::new(2));
    let futures: Vec<_> = (0..2)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            pool.submit(move || {
                barrier.wait();
                conc::thread::current().name().to_owned()
            })
            .unwrap()
        })
        .collect();
    let mut names: Vec<_> = futures.iter().map(|f| f.result().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["named_0", "named_1"]);
    assert_eq!(inits.load(Ordering::SeqCst), 2);
}

#[test]
fn a_panicking_initializer_breaks_the_pool() {
    let pool = ThreadPool::builder()
        .max_workers(1)
        .initializer(|| panic!("no database"))
        .build();
    let fut = pool.submit(|| 1).unwrap();
    match fut.result() {
        Err(FutureError::Panicked(message)) => assert!(message.contains("no database")),
        other => panic!("expected a broken-pool error, got {other:?}"),
    }
    assert!(matches!(pool.submit(|| 2), Err(SubmitError::Broken(_))));
}

#[test]
fn shutdown_waits_for_queued_work() {
    let pool = ThreadPool::new(2);
    let done = Arc::new(AtomicUsize::new(0));
    let futures: Vec<_> = (0..10)
        .map(|_| {
            let done = Arc::clone(&done);
            pool.submit(move || {
                std::thread::sleep(Duration::from_millis(5));
                done.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap()
        })
        .collect();
    pool.shutdown(true, false);
    assert_eq!(done.load(Ordering::SeqCst), 10);
    assert!(futures.iter().all(Future::done));
    let refused = pool.submit(|| 3).unwrap_err();
    assert!(matches!(refused, SubmitError::Shutdown(_)));
    assert_eq!(refused.into_inner()(), 3);
}

#[test]
fn shutdown_with_cancel_futures_cancels_the_queue() {
    let pool = ThreadPool::new(1);
    let (open, wait_gate) = gate();
    let running = pool.submit(wait_gate).unwrap();
    until(|| running.running());
    let queued: Vec<_> = (0..5).map(|i| pool.submit(move || i).unwrap()).collect();
    pool.shutdown(false, true);
    assert!(queued.iter().all(Future::cancelled));
    open.send(()).unwrap();
    assert_eq!(running.result(), Ok(()));
}

#[test]
fn shutdown_without_wait_returns_while_work_runs() {
    let pool = ThreadPool::new(1);
    let (open, wait_gate) = gate();
    let running = pool.submit(wait_gate).unwrap();
    pool.shutdown(false, false);
    assert!(!running.done());
    open.send(()).unwrap();
    drop(pool); // drop is shutdown(wait = true)
    assert!(running.done());
}

#[test]
fn a_task_may_shut_its_own_pool_down() {
    let pool = Arc::new(ThreadPool::new(1));
    let inner = Arc::clone(&pool);
    let fut = pool.submit(move || inner.shutdown(true, false)).unwrap();
    assert_eq!(fut.result(), Ok(()));
}

#[test]
fn as_completed_yields_in_completion_order() {
    let pool = ThreadPool::new(3);
    let (open_slow, slow_gate) = gate();
    let slow = pool
        .submit(move || {
            slow_gate();
            "slow"
        })
        .unwrap();
    let fast = pool.submit(|| "fast").unwrap();
    fast.result().unwrap();
    let mut it = as_completed([&slow, &fast], None);
    assert_eq!(it.next().unwrap().unwrap().result(), Ok("fast"));
    open_slow.send(()).unwrap();
    assert_eq!(it.next().unwrap().unwrap().result(), Ok("slow"));
    assert!(it.next().is_none());
}

#[test]
fn as_completed_times_out_with_the_rest() {
    let done = Future::new();
    done.set_result(1).unwrap();
    let pending = Future::new();
    let start = Instant::now();
    let mut it = as_completed([&done, &pending], Some(Duration::from_millis(50)));
    assert_eq!(it.next().unwrap().unwrap().result(), Ok(1));
    let timeout = it.next().unwrap().unwrap_err();
    assert!(start.elapsed() >= Duration::from_millis(45));
    assert_eq!(timeout.not_done.len(), 1);
    assert!(it.next().is_none());
    // The pending future kept no stale waiter: completing it is still fine.
    pending.set_result(2).unwrap();
}

#[test]
fn wait_first_completed() {
    let pool = ThreadPool::new(2);
    let (open, wait_gate) = gate();
    let blocked = pool.submit(wait_gate).unwrap();
    let quick = pool.submit(|| ()).unwrap();
    let r = wait([&blocked, &quick], None, ReturnWhen::FirstCompleted);
    assert_eq!(r.done.len(), 1);
    assert!(r.done[0].done() && !blocked.done());
    assert_eq!(r.not_done.len(), 1);
    open.send(()).unwrap();
}

#[test]
fn wait_first_exception_returns_on_a_panic() {
    let pool = ThreadPool::new(2);
    let (open, wait_gate) = gate();
    let blocked = pool.submit(wait_gate).unwrap();
    let fine = Future::new();
    fine.set_result(()).unwrap(); // done, but no panic: keep waiting
    let failing = pool.submit(|| panic!("bad")).unwrap();
    let r = wait(
        [&blocked, &fine, &failing],
        None,
        ReturnWhen::FirstException,
    );
    assert_eq!(r.done.len(), 2);
    assert_eq!(r.not_done.len(), 1);
    open.send(()).unwrap();
}

#[test]
fn wait_all_completed_and_timeout() {
    let pool = ThreadPool::new(2);
    let futures: Vec<_> = (0..6).map(|i| pool.submit(move || i).unwrap()).collect();
    let r = wait(&futures, None, ReturnWhen::AllCompleted);
    assert_eq!((r.done.len(), r.not_done.len()), (6, 0));

    let never: Future<()> = Future::new();
    let start = Instant::now();
    let r = wait(
        [&never],
        Some(Duration::from_millis(50)),
        ReturnWhen::AllCompleted,
    );
    assert!(start.elapsed() >= Duration::from_millis(45));
    assert_eq!((r.done.len(), r.not_done.len()), (0, 1));
    assert!(
        wait(Vec::<&Future<()>>::new(), None, ReturnWhen::FirstCompleted)
            .done
            .is_empty()
    );
}

#[test]
fn wait_first_exception_without_panics_waits_for_all() {
    let pool = ThreadPool::new(2);
    let futures: Vec<_> = (0..4).map(|i| pool.submit(move || i).unwrap()).collect();
    let r = wait(&futures, None, ReturnWhen::FirstException);
    assert_eq!((r.done.len(), r.not_done.len()), (4, 0));
}

#[test]
fn map_after_shutdown_is_refused() {
    let pool = ThreadPool::new(1);
    pool.shutdown(true, false);
    assert!(matches!(
        pool.map(|x: i32| x, [1, 2]),
        Err(SubmitError::Shutdown(()))
    ));
}

/// From a review: a done-callback that submits to its own pool and waits
/// for the result must get a second worker, as in CPython; the worker
/// running the callback used to count itself idle and take the new task
/// for itself, waiting on itself for ever.
#[test]
fn a_callback_may_submit_to_its_own_pool_and_wait() {
    let pool = Arc::new(ThreadPool::new(2));
    let (open, task) = gate();
    let first = pool.submit(task).unwrap();
    let (tx, rx) = mpsc::channel();
    let inner_pool = Arc::clone(&pool);
    first.add_done_callback(move |_| {
        let inner = inner_pool.submit(|| 2).unwrap();
        tx.send(inner.result()).unwrap();
    });
    open.send(()).unwrap();
    let got = rx.recv_timeout(Duration::from_secs(60));
    assert_eq!(got, Ok(Ok(2)), "the callback's task never ran");
}

/// From a review: a future completed by hand before its task ran makes the
/// worker skip the task, not die; the pool goes on serving.
#[test]
fn a_future_set_by_hand_does_not_break_its_worker() {
    let pool = ThreadPool::new(1);
    let (open, task) = gate();
    let blocker = pool.submit(task).unwrap();
    let queued = pool.submit(|| 1).unwrap();
    queued.set_result(5).unwrap();
    open.send(()).unwrap();
    blocker.result().unwrap();
    assert_eq!(queued.result(), Ok(5));
    let next = pool.submit(|| 3).unwrap();
    assert_eq!(next.result_timeout(Duration::from_secs(60)), Ok(3));
}

/// From a review: two threads shutting down with `wait` at once both
/// return only once the workers are gone (the first used to take every
/// join handle, and the second returned at once).
#[test]
fn concurrent_waiting_shutdowns_both_wait() {
    let pool = ThreadPool::new(1);
    let (open, task) = gate();
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&finished);
    pool.submit(move || {
        task();
        flag.store(true, Ordering::SeqCst);
    })
    .unwrap();
    std::thread::scope(|s| {
        let callers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    pool.shutdown(true, false);
                    finished.load(Ordering::SeqCst)
                })
            })
            .collect();
        // Give both callers time to be waiting (a longer pause only makes
        // the check stricter), then let the task end.
        std::thread::sleep(Duration::from_millis(200));
        open.send(()).unwrap();
        for caller in callers {
            assert!(
                caller.join().unwrap(),
                "a shutdown(wait) returned before the task ended"
            );
        }
    });
}

/// From a review: a timeout too large for the clock waits as long as it
/// must instead of panicking.
#[test]
fn a_huge_timeout_does_not_panic() {
    let future = Future::new();
    future.set_result(1).unwrap();
    assert_eq!(future.result_timeout(Duration::MAX), Ok(1));
}

/// A future given more than once comes out of `as_completed` once, as in
/// Python ("Any futures given by fs that are duplicated will be returned
/// once").
#[test]
fn as_completed_yields_a_duplicated_future_once() {
    let (done, pending) = (Future::new(), Future::<i32>::new());
    done.set_result(1).unwrap();
    let given = [&done, &done, &pending, &done, &pending];
    let mut it = as_completed(given, Some(Duration::from_millis(1)));
    assert_eq!(it.next().unwrap().unwrap().result(), Ok(1));
    let timeout = it.next().unwrap().unwrap_err();
    assert_eq!(timeout.not_done.len(), 1, "the pending future, once");
    assert!(it.next().is_none());
}

/// `wait` puts a duplicated future in its result once (Python 3.10+:
/// "Duplicate futures given to fs are removed and will be returned only
/// once").
#[test]
fn wait_returns_a_duplicated_future_once() {
    let (done, pending) = (Future::new(), Future::<i32>::new());
    done.set_result(1).unwrap();
    let given = [&done, &pending, &done, &done, &pending];
    let r = wait(
        given,
        Some(Duration::from_millis(1)),
        ReturnWhen::AllCompleted,
    );
    assert_eq!((r.done.len(), r.not_done.len()), (1, 1));
}
