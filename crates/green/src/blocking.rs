//! `spawn_blocking`: a call that cannot be made cooperative (a file, a DNS lookup, a library's blocking call) runs on a thread pool while only its greenlet waits (gevent's threadpool).
//!
//! The pool is `conc`'s `ThreadPool`, shared by every hub of the process,
//! with [`THREADS`] workers as gevent's default threadpool has. A worker
//! hands the result back through the hub's cross-thread waker (an eventfd
//! in the hub's epoll set), so the hub sleeps in `epoll_wait` as usual
//! while the call runs.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock};

use conc::pool::ThreadPool;

use crate::hub;

/// Worker threads of the shared pool.
pub const THREADS: usize = 10;

fn pool() -> &'static ThreadPool {
    static POOL: OnceLock<ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        ThreadPool::builder()
            .max_workers(THREADS)
            .thread_name_prefix("green-blocking")
            .build()
    })
}

/// Runs `f` on the shared thread pool and parks the calling greenlet until
/// it returns; the hub runs the other greenlets meanwhile. A panic in `f`
/// comes back as a panic here.
///
/// A greenlet killed while it waits unwinds at once; `f` still runs to its
/// end on its thread (a thread cannot be interrupted), and its value is
/// dropped there.
///
/// # Panics
///
/// If `f` panicked, or outside a greenlet.
///
/// # Examples
///
/// ```
/// green::run(|| {
///     let len = green::spawn_blocking(|| std::fs::read("Cargo.toml").map(|b| b.len()));
///     assert!(len.unwrap() > 0);
/// });
/// ```
pub fn spawn_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let slot: Arc<Mutex<Option<std::thread::Result<T>>>> = Arc::new(Mutex::new(None));
    let (waiter, remote) = hub::with(|core| (core.waiter(), core.remote()));
    let for_worker = Arc::clone(&slot);
    let submitted = pool().submit(move || {
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        *for_worker.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        remote.wake(waiter);
    });
    if submitted.is_err() {
        // The pool lives as long as the process and no initializer runs.
        unreachable!("green's blocking pool never shuts down");
    }
    // Only the worker's hand-back wakes this wait (or a kill, or an expired
    // timeout scope, which unwind).
    hub::wait(waiter, None);
    let result = slot
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .expect("the worker stores the result before it wakes the greenlet");
    result.unwrap_or_else(|payload| panic::resume_unwind(payload))
}
