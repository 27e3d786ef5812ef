//! Loom model tests for `conc::pool::Future`: completion vs waiters, callbacks vs completion, cancel vs start.
#![cfg(loom)]

use conc::pool::{Future, FutureError, ReturnWhen, as_completed, wait};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

#[test]
fn result_sees_the_value_set_by_another_thread() {
    loom::model(|| {
        let fut = Future::new();
        let completer = fut.clone();
        let t = thread::spawn(move || completer.set_result(7).unwrap());
        assert_eq!(fut.result(), Ok(7));
        t.join().unwrap();
    });
}

#[test]
fn into_result_sees_a_panic_recorded_by_another_thread() {
    loom::model(|| {
        let fut: Future<u8> = Future::new();
        let completer = fut.clone();
        let t = thread::spawn(move || {
            assert!(completer.set_running_or_notify_cancel());
            completer.set_panic("boom").unwrap();
        });
        assert_eq!(fut.into_result(), Err(FutureError::Panicked("boom".into())));
        t.join().unwrap();
    });
}

#[test]
fn a_callback_racing_completion_runs_exactly_once() {
    loom::model(|| {
        let fut = Future::new();
        let completer = fut.clone();
        let runs = Arc::new(AtomicUsize::new(0));
        let t = thread::spawn(move || completer.set_result(1).unwrap());
        let counter = Arc::clone(&runs);
        fut.add_done_callback(move |f| {
            assert_eq!(f.result(), Ok(1));
            counter.fetch_add(1, Ordering::SeqCst);
        });
        t.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn cancel_racing_the_start_of_the_task_has_one_winner() {
    loom::model(|| {
        let fut: Future<()> = Future::new();
        let worker = fut.clone();
        let t = thread::spawn(move || worker.run(|| ()));
        let cancelled = fut.cancel();
        let ran = t.join().unwrap();
        assert_ne!(cancelled, ran, "exactly one of cancel and start wins");
        assert!(fut.done());
        assert_eq!(fut.cancelled(), cancelled);
    });
}

#[test]
fn wait_all_completed_racing_completion() {
    loom::model(|| {
        let fut = Future::new();
        let completer = fut.clone();
        let t = thread::spawn(move || completer.set_result(()).unwrap());
        let r = wait([&fut], None, ReturnWhen::AllCompleted);
        assert_eq!((r.done.len(), r.not_done.len()), (1, 0));
        t.join().unwrap();
    });
}

#[test]
fn as_completed_racing_completion() {
    loom::model(|| {
        let fut = Future::new();
        let completer = fut.clone();
        let t = thread::spawn(move || completer.set_result(3).unwrap());
        let got: Vec<_> = as_completed([&fut], None).collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].as_ref().unwrap().result(), Ok(3));
        t.join().unwrap();
    });
}

#[test]
fn a_callback_racing_cancel_and_run_runs_exactly_once() {
    loom::model(|| {
        let fut: Future<u8> = Future::new();
        let worker = fut.clone();
        let runs = Arc::new(AtomicUsize::new(0));
        let t = thread::spawn(move || worker.run(|| 1));
        let counter = Arc::clone(&runs);
        fut.add_done_callback(move |f| {
            assert!(f.done());
            counter.fetch_add(1, Ordering::SeqCst);
        });
        fut.cancel();
        t.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn wait_first_completed_with_two_completers() {
    loom::model(|| {
        let (a, b) = (Future::new(), Future::new());
        let (ca, cb) = (a.clone(), b.clone());
        let ta = thread::spawn(move || ca.set_result(1).unwrap());
        let tb = thread::spawn(move || cb.set_result(2).unwrap());
        let r = wait([&a, &b], None, ReturnWhen::FirstCompleted);
        assert!(!r.done.is_empty());
        assert_eq!(r.done.len() + r.not_done.len(), 2);
        ta.join().unwrap();
        tb.join().unwrap();
    });
}
