//! `ThreadPool`: a pool of worker threads that run submitted closures and hand back futures (Python's `ThreadPoolExecutor`).
//!
//! [`ThreadPool::submit`] stores the closure inside its [`Future`]'s shared
//! allocation (one malloc per task, not two: cross-thread frees were the
//! largest cost in the bench) and sends that, type-erased as a job, down a
//! crossbeam channel, the pool's job queue; workers receive jobs in order
//! and run them. As in CPython, workers start lazily:
//! a submit starts one only while fewer than `max_workers` run and none is
//! idle, so a pool that gets one task at a time keeps one thread.
//! [`ThreadPool::shutdown`] closes the channel: workers finish the queued
//! jobs (or, with `cancel_futures`, the pool cancels them) and exit.
//! Dropping the pool is `shutdown(true, false)`, Python's `with` block.
//!
//! Built on crossbeam-channel (the job queue: an unbounded MPMC channel
//! that wakes exactly one idle worker per job and reports disconnection,
//! which is the shutdown signal) and on `conc::thread` (workers are named,
//! registered, non-daemon threads, so `run_main` waits for their queued
//! work). The first pool built registers an exit hook with `conc::thread`,
//! as CPython's `concurrent.futures.thread` does with
//! `threading._register_atexit`: `run_main` calls it before it waits, and it
//! closes every pool still alive, so the workers of a pool that is never
//! dropped do not wait for ever. Written by hand: the [`Future`]
//! (see its docs for why), the idle count that drives lazy spawning, and the
//! "broken pool" rule for a panicking initializer. A task's panic is caught
//! with `catch_unwind` and stored in its future; the worker lives on.
//!
//! ```
//! use conc::pool::ThreadPool;
//!
//! let pool = ThreadPool::new(2);
//! let squares: Vec<u64> = pool.map(|x: u64| x * x, 1..=4).unwrap().map(Result::unwrap).collect();
//! assert_eq!(squares, [1, 4, 9, 16]);
//! ```

mod future;
mod process;

pub use future::*;
pub use process::{ProcessMap, ProcessPool, ProcessPoolBuilder, ProcessPoolError};
pub(crate) use process::{WORKER_ENTRY, worker_main};

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};

use crossbeam_channel::{Receiver, Sender};

use crate::shim::{Condvar, Mutex};
use crate::thread;
use future::JobAction;

/// A task and its future (one allocation), type-erased so that one
/// channel carries them all.
type Job = Arc<dyn future::Job>;

/// Numbers pools for their default thread name prefix.
static POOLS: AtomicUsize = AtomicUsize::new(0);

/// Every pool not yet dropped, for [`close_all`]: when main's closure
/// returns, [`crate::thread::run_main`] calls it, so their workers
/// (non-daemon threads) finish the queued tasks and exit instead of waiting
/// for the drop of a pool that lives in a `static` or was leaked.
static LIVE: std::sync::Mutex<Vec<std::sync::Weak<Shared>>> = std::sync::Mutex::new(Vec::new());

/// Registers [`close_all`] as an exit hook of `run_main`, once: by the
/// first pool built (CPython's `threading._register_atexit(_python_exit)`).
static CLOSE_AT_EXIT: Once = Once::new();

/// Stops every live pool taking tasks (`shutdown(false, false)` on each):
/// the exit hook that `run_main` calls before it waits for its threads.
fn close_all() {
    let live: Vec<_> = {
        let mut pools = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        pools.retain(|pool| pool.strong_count() > 0);
        pools.iter().filter_map(std::sync::Weak::upgrade).collect()
    };
    for shared in live {
        shared.state.lock().sender = None;
    }
}

/// A pool of up to `max_workers` threads that run submitted closures.
///
/// # Examples
///
/// ```
/// let pool = conc::pool::ThreadPool::new(4);
/// let fut = pool.submit(|| 1 + 1).unwrap();
/// assert_eq!(fut.result(), Ok(2));
/// ```
pub struct ThreadPool {
    shared: Arc<Shared>,
}

struct Shared {
    max_workers: usize,
    prefix: String,
    initializer: Option<Arc<dyn Fn() + Send + Sync>>,
    jobs: Receiver<Job>,
    /// Workers blocked waiting for a job and not yet promised to a submit:
    /// a submit that takes one starts no new thread.
    idle: AtomicUsize,
    state: Mutex<PoolState>,
    /// Notified when a worker exits, for `shutdown(wait = true)`.
    exited: Condvar,
}

struct PoolState {
    /// `None` once shut down: dropping it disconnects the workers.
    sender: Option<Sender<Job>>,
    /// Why the pool is broken (its initializer panicked), if it is.
    broken: Option<Arc<str>>,
    workers: Vec<thread::JoinHandle<()>>,
    /// The `ident` of every worker ever started, to tell a worker calling
    /// `shutdown` from an outside caller.
    idents: Vec<u64>,
    started: usize,
    /// Workers that have not exited yet.
    running: usize,
}

/// Why [`ThreadPool::submit`] refused a task: hands the closure back.
///
/// # Examples
///
/// ```
/// use conc::pool::{SubmitError, ThreadPool};
///
/// let pool = ThreadPool::new(1);
/// pool.shutdown(true, false);
/// let err = pool.submit(|| 1).unwrap_err();
/// assert!(matches!(err, SubmitError::Shutdown(_)));
/// assert_eq!((err.into_inner())(), 1);
/// ```
#[derive(thiserror::Error)]
pub enum SubmitError<F> {
    /// The pool was shut down.
    #[error("cannot submit: the pool is shut down")]
    Shutdown(F),
    /// A worker's initializer panicked, so the pool takes no more work
    /// (Python's `BrokenThreadPool`).
    #[error("cannot submit: the pool is broken (an initializer panicked)")]
    Broken(F),
}

impl<F> SubmitError<F> {
    /// The closure that was refused.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = conc::pool::SubmitError::Shutdown(7);
    /// assert_eq!(err.into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> F {
        match self {
            SubmitError::Shutdown(f) | SubmitError::Broken(f) => f,
        }
    }
}

impl<F> fmt::Debug for SubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Shutdown(_) => f.write_str("Shutdown(..)"),
            SubmitError::Broken(_) => f.write_str("Broken(..)"),
        }
    }
}

/// Configures a [`ThreadPool`]: `max_workers`, `thread_name_prefix`, `initializer`.
///
/// # Examples
///
/// ```
/// let pool = conc::pool::ThreadPool::builder()
///     .max_workers(2)
///     .thread_name_prefix("fetch")
///     .build();
/// let name = pool.submit(|| conc::thread::current().name().to_owned()).unwrap();
/// assert_eq!(name.result().unwrap(), "fetch_0");
/// ```
#[derive(Default)]
pub struct Builder {
    max_workers: Option<usize>,
    prefix: Option<String>,
    initializer: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("max_workers", &self.max_workers)
            .field("prefix", &self.prefix)
            .field("initializer", &self.initializer.is_some())
            .finish()
    }
}

impl Builder {
    /// The most threads the pool will start; by default, as in Python,
    /// `min(32, CPUs + 4)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = conc::pool::ThreadPool::builder().max_workers(3).build();
    /// assert_eq!(pool.max_workers(), 3);
    /// ```
    pub fn max_workers(mut self, max_workers: usize) -> Self {
        self.max_workers = Some(max_workers);
        self
    }

    /// Workers are named `{prefix}_{n}`; by default `ThreadPool-{pool}`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = conc::pool::ThreadPool::builder().thread_name_prefix("io").build();
    /// let name = pool.submit(|| std::thread::current().name().map(String::from)).unwrap();
    /// assert_eq!(name.result().unwrap().as_deref(), Some("io_0"));
    /// ```
    pub fn thread_name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Runs in each worker before its first task. If it panics the pool is
    /// broken: queued futures fail and later submits are refused.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let inits = Arc::new(AtomicUsize::new(0));
    /// let counter = Arc::clone(&inits);
    /// let pool = conc::pool::ThreadPool::builder()
    ///     .max_workers(1)
    ///     .initializer(move || { counter.fetch_add(1, Ordering::SeqCst); })
    ///     .build();
    /// pool.submit(|| ()).unwrap().result().unwrap();
    /// assert_eq!(inits.load(Ordering::SeqCst), 1);
    /// ```
    pub fn initializer(mut self, initializer: impl Fn() + Send + Sync + 'static) -> Self {
        self.initializer = Some(Arc::new(initializer));
        self
    }

    /// Makes the pool; no thread starts until the first submit.
    ///
    /// # Panics
    ///
    /// If `max_workers` is 0 (Python raises `ValueError`).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = conc::pool::ThreadPool::builder().build();
    /// assert_eq!(pool.worker_count(), 0);
    /// ```
    pub fn build(self) -> ThreadPool {
        let max_workers = self.max_workers.unwrap_or_else(|| {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            (cpus + 4).min(32)
        });
        assert!(max_workers > 0, "max_workers must be greater than 0");
        let prefix = self
            .prefix
            .unwrap_or_else(|| format!("ThreadPool-{}", POOLS.fetch_add(1, Ordering::Relaxed)));
        let (sender, jobs) = crossbeam_channel::unbounded();
        let pool = ThreadPool {
            shared: Arc::new(Shared {
                max_workers,
                prefix,
                initializer: self.initializer,
                jobs,
                idle: AtomicUsize::new(0),
                state: Mutex::new(PoolState {
                    sender: Some(sender),
                    broken: None,
                    workers: Vec::new(),
                    idents: Vec::new(),
                    started: 0,
                    running: 0,
                }),
                exited: Condvar::new(),
            }),
        };
        // Before the pool is listed, so no live pool misses the hook.
        CLOSE_AT_EXIT.call_once(|| thread::register_atexit(close_all));
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|pool| pool.strong_count() > 0);
        live.push(Arc::downgrade(&pool.shared));
        drop(live);
        pool
    }
}

impl ThreadPool {
    /// A pool of up to `max_workers` threads, with default names and no
    /// initializer.
    ///
    /// # Panics
    ///
    /// If `max_workers` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = conc::pool::ThreadPool::new(2);
    /// assert_eq!(pool.max_workers(), 2);
    /// ```
    pub fn new(max_workers: usize) -> Self {
        Self::builder().max_workers(max_workers).build()
    }

    /// A [`Builder`] for a pool with a name prefix or an initializer.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = conc::pool::ThreadPool::builder().max_workers(1).build();
    /// assert_eq!(pool.max_workers(), 1);
    /// ```
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The most threads this pool will start.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(conc::pool::ThreadPool::new(5).max_workers(), 5);
    /// ```
    pub fn max_workers(&self) -> usize {
        self.shared.max_workers
    }

    /// How many worker threads the pool has started so far.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = conc::pool::ThreadPool::new(8);
    /// pool.submit(|| ()).unwrap().result().unwrap();
    /// pool.submit(|| ()).unwrap().result().unwrap();
    /// assert_eq!(pool.worker_count(), 1); // the idle worker was reused
    /// ```
    pub fn worker_count(&self) -> usize {
        self.shared.state.lock().started
    }

    /// Schedules `task` and returns its future, or hands `task` back if the
    /// pool is shut down or broken.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = conc::pool::ThreadPool::new(2);
    /// let fut = pool.submit(|| "hello".len()).unwrap();
    /// assert_eq!(fut.result(), Ok(5));
    /// ```
    pub fn submit<F, T>(&self, task: F) -> Result<Future<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let mut state = self.shared.state.lock();
        if state.broken.is_some() {
            return Err(SubmitError::Broken(task));
        }
        let Some(sender) = &state.sender else {
            return Err(SubmitError::Shutdown(task));
        };
        let (future, job) = future::with_task(task);
        // The receiver lives in `shared`, so the channel cannot be disconnected.
        sender.send(job).expect("the pool holds a receiver");
        self.adjust_thread_count(&mut state);
        Ok(future)
    }

    /// Runs `f` on every item and yields the results in input order
    /// (Python's `Executor.map`); all items are submitted at once. Futures
    /// not yet read when the iterator is dropped are cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = conc::pool::ThreadPool::new(2);
    /// let lens: Vec<_> = pool.map(|s: &str| s.len(), ["a", "bb", "ccc"]).unwrap().collect();
    /// assert_eq!(lens, [Ok(1), Ok(2), Ok(3)]);
    /// ```
    pub fn map<A, R, F>(
        &self,
        f: F,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Map<R>, SubmitError<()>>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Send + 'static,
        R: Send + 'static,
    {
        let f = Arc::new(f);
        let mut futures = VecDeque::new();
        for item in items {
            let f = Arc::clone(&f);
            match self.submit(move || f(item)) {
                Ok(future) => futures.push_back(future),
                Err(err) => {
                    // Dropping the map cancels what was already submitted.
                    drop(Map { futures });
                    return Err(match err {
                        SubmitError::Shutdown(_) => SubmitError::Shutdown(()),
                        SubmitError::Broken(_) => SubmitError::Broken(()),
                    });
                }
            }
        }
        Ok(Map { futures })
    }

    /// Stops taking tasks. Queued tasks still run unless `cancel_futures`,
    /// which cancels those not yet started; with `wait`, returns once every
    /// worker has exited (Python's `shutdown(wait, cancel_futures=...)`).
    /// Calling it again is harmless.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = conc::pool::ThreadPool::new(1);
    /// let fut = pool.submit(|| 3).unwrap();
    /// pool.shutdown(true, false);
    /// assert_eq!(fut.result(), Ok(3)); // queued work still ran
    /// ```
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        let workers = {
            let mut state = self.shared.state.lock();
            state.sender = None;
            if wait {
                std::mem::take(&mut state.workers)
            } else {
                Vec::new()
            }
        };
        if cancel_futures {
            // No sender is left, so the queue only shrinks; cancel outside
            // the lock since cancelling runs callbacks, which may call us.
            while let Ok(job) = self.shared.jobs.try_recv() {
                job.act(JobAction::Cancel);
            }
        }
        let me = thread::current().ident();
        for worker in workers {
            // A task that shuts its own pool down must not join itself.
            if worker.thread().ident() != me {
                let _ = worker.join();
            }
        }
        if wait {
            // Another caller may have taken the handles first: wait for
            // the workers to be gone all the same (but for this thread, if
            // it is one of them).
            let mut state = self.shared.state.lock();
            let target = usize::from(state.idents.contains(&me));
            while state.running > target {
                self.shared.exited.wait(&mut state);
            }
        }
    }

    /// Starts a worker if none is idle and fewer than `max_workers` run
    /// (CPython's `_adjust_thread_count`).
    fn adjust_thread_count(&self, state: &mut PoolState) {
        if state.started >= self.shared.max_workers {
            return;
        }
        let idle = &self.shared.idle;
        if idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
        {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let name = format!("{}_{}", self.shared.prefix, state.started);
        let handle = thread::Builder::new()
            .name(name)
            .daemon(false)
            .spawn(move || worker(&shared))
            .expect("failed to start a pool worker");
        state.idents.push(handle.thread().ident());
        state.workers.push(handle);
        state.started += 1;
        state.running += 1;
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("prefix", &self.shared.prefix)
            .field("max_workers", &self.shared.max_workers)
            .field("worker_count", &self.worker_count())
            .finish()
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

/// A worker: runs the initializer, then jobs until the queue is closed and
/// empty; then counts itself out for `shutdown(wait = true)`.
fn worker(shared: &Shared) {
    work(shared);
    let mut state = shared.state.lock();
    state.running -= 1;
    shared.exited.notify_all();
}

fn work(shared: &Shared) {
    if let Some(init) = &shared.initializer
        && let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| init()))
    {
        break_pool(shared, future::panic_message(payload));
        return;
    }
    while let Ok(job) = shared.jobs.recv() {
        // The task's own panic is caught in its future; this catches what is
        // left (a panicking `Drop` of a cancelled task's closure), so no
        // worker dies and strands the queue.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            job.act(JobAction::Run(&|| shared.mark_idle()));
        }));
    }
}

impl Shared {
    /// Called by a worker after a task, before its future completes: if no
    /// job waits, this worker is about to sleep and counts as idle. Doing it
    /// before completion means a caller who saw the result and submits
    /// again reuses this worker rather than starting another.
    fn mark_idle(&self) {
        if self.jobs.is_empty() {
            self.idle.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// An initializer panicked: refuse new work and fail every queued future,
/// as CPython's `_initializer_failed` does.
fn break_pool(shared: &Shared, message: String) {
    let why: Arc<str> = format!("the pool is broken: an initializer panicked: {message}").into();
    {
        let mut state = shared.state.lock();
        state.broken = Some(Arc::clone(&why));
        state.sender = None;
    }
    while let Ok(job) = shared.jobs.try_recv() {
        job.act(JobAction::Fail(&why));
    }
}

/// The iterator of [`ThreadPool::map`]: results in input order.
///
/// # Examples
///
/// ```
/// let pool = conc::pool::ThreadPool::new(2);
/// let mut results = pool.map(|x: i32| x + 1, [1, 2]).unwrap();
/// assert_eq!(results.next(), Some(Ok(2)));
/// ```
pub struct Map<R> {
    futures: VecDeque<Future<R>>,
}

impl<R> fmt::Debug for Map<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("remaining", &self.futures.len())
            .finish()
    }
}

impl<R> Iterator for Map<R> {
    type Item = Result<R, FutureError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.futures.pop_front().map(Future::into_result)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.futures.len(), Some(self.futures.len()))
    }
}

impl<R> ExactSizeIterator for Map<R> {}

impl<R> Drop for Map<R> {
    fn drop(&mut self) {
        for future in &self.futures {
            future.cancel();
        }
    }
}
