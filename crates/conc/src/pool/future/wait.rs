//! Waiting on many futures at once: `as_completed` and `wait` (Python's `concurrent.futures` functions of those names).
//!
//! As in CPython, each call makes one [`Waiter`] and registers it with every
//! future still pending; whoever completes a future pushes that future's
//! index into the waiter and wakes it. The caller then sleeps on one condvar
//! however many futures it watches, and unregisters when it is done so that
//! futures do not keep stale waiters.

use std::collections::HashSet;
use std::fmt;
use std::time::{Duration, Instant};

use super::Future;
use crate::shim::{Arc, Condvar, Mutex};

/// One `as_completed` or `wait` call: the indices of futures done so far.
pub(super) struct Waiter {
    ready: Mutex<Vec<usize>>,
    cv: Condvar,
}

impl Waiter {
    fn new() -> Self {
        Self {
            ready: Mutex::new(Vec::new()),
            cv: Condvar::new(),
        }
    }

    /// Called by a future's completer, outside the future's lock.
    pub(super) fn notify(&self, index: usize) {
        self.ready.lock().push(index);
        self.cv.notify_one();
    }

    /// Takes the newly ready indices, waiting for some until `deadline`;
    /// empty if the deadline passed first.
    fn take_ready(&self, deadline: Option<Instant>) -> Vec<usize> {
        let mut ready = self.ready.lock();
        while ready.is_empty() {
            match deadline {
                Some(deadline) => {
                    if self.cv.wait_until(&mut ready, deadline) {
                        break;
                    }
                }
                None => self.cv.wait(&mut ready),
            }
        }
        std::mem::take(&mut *ready)
    }
}

/// `futures` with each future once, in the order first given: Python's
/// `wait` and `as_completed` drop duplicates ("Any futures given by fs that
/// are duplicated will be returned once").
fn unique<'a, T: 'a>(futures: impl IntoIterator<Item = &'a Future<T>>) -> Vec<Future<T>> {
    let mut seen = HashSet::new();
    futures
        .into_iter()
        // A future is its shared state: the same address, the same future.
        .filter(|future| seen.insert(std::ptr::from_ref(&*future.inner).addr()))
        .cloned()
        .collect()
}

/// Registers a new waiter with `futures`; already-done ones are queued at once.
fn register<T>(futures: &[Future<T>]) -> Arc<Waiter> {
    let waiter = Arc::new(Waiter::new());
    for (index, future) in futures.iter().enumerate() {
        if future.add_waiter(&waiter, index) {
            waiter.ready.lock().push(index);
        }
    }
    waiter
}

/// When [`wait`] returns (Python's `FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED`).
///
/// # Examples
///
/// ```
/// use conc::pool::{ReturnWhen, ThreadPool, wait};
///
/// let pool = ThreadPool::new(2);
/// let futures = vec![pool.submit(|| 1).unwrap()];
/// let r = wait(&futures, None, ReturnWhen::FirstCompleted);
/// assert_eq!(r.done.len(), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as any future is done (or cancelled).
    FirstCompleted,
    /// As soon as any task panics, or when all are done.
    FirstException,
    /// When every future is done.
    AllCompleted,
}

/// What [`wait`] found: the futures done and not done, each in input order
/// (Python's `DoneAndNotDoneFutures`).
///
/// # Examples
///
/// ```
/// use conc::pool::{Future, ReturnWhen, wait};
/// use std::time::Duration;
///
/// let pending: Future<()> = Future::new();
/// let r = wait([&pending], Some(Duration::from_millis(10)), ReturnWhen::AllCompleted);
/// assert_eq!((r.done.len(), r.not_done.len()), (0, 1));
/// ```
pub struct DoneAndNotDone<T> {
    /// Futures that were done when `wait` returned.
    pub done: Vec<Future<T>>,
    /// The others.
    pub not_done: Vec<Future<T>>,
}

impl<T> fmt::Debug for DoneAndNotDone<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DoneAndNotDone")
            .field("done", &self.done)
            .field("not_done", &self.not_done)
            .finish()
    }
}

/// Waits until `return_when` holds for `futures`, or until `timeout`
/// passes (`None`: no limit); then splits them into done and not done.
/// A timeout is not an error here, as in Python: check `not_done`. A
/// future given more than once is in the result once.
///
/// # Examples
///
/// ```
/// use conc::pool::{ReturnWhen, ThreadPool, wait};
///
/// let pool = ThreadPool::new(2);
/// let futures: Vec<_> = (0..4).map(|i| pool.submit(move || i).unwrap()).collect();
/// let r = wait(&futures, None, ReturnWhen::AllCompleted);
/// assert_eq!(r.done.len(), 4);
/// assert!(r.not_done.is_empty());
/// ```
pub fn wait<'a, T: 'a>(
    futures: impl IntoIterator<Item = &'a Future<T>>,
    timeout: Option<Duration>,
    return_when: ReturnWhen,
) -> DoneAndNotDone<T> {
    let deadline = timeout.map(crate::shim::deadline);
    let futures = unique(futures);
    let waiter = register(&futures);
    let (mut done, mut panicked) = (0, false);
    while done < futures.len() {
        let ready = waiter.take_ready(deadline);
        if ready.is_empty() {
            break; // timed out
        }
        done += ready.len();
        panicked = panicked || ready.iter().any(|&i| futures[i].panicked());
        let enough = match return_when {
            ReturnWhen::FirstCompleted => true,
            ReturnWhen::FirstException => panicked,
            ReturnWhen::AllCompleted => false,
        };
        if enough {
            break;
        }
    }
    for future in &futures {
        future.remove_waiter(&waiter);
    }
    let (done, not_done) = futures.into_iter().partition(Future::done);
    DoneAndNotDone { done, not_done }
}

/// Yields `futures` as they complete (those already done first, in input
/// order), each once even if given more than once. With a `timeout`, yields one [`AsCompletedTimeout`] holding the
/// rest if it passes first, then stops.
///
/// # Examples
///
/// ```
/// use conc::pool::{ThreadPool, as_completed};
///
/// let pool = ThreadPool::new(2);
/// let futures: Vec<_> = (1..=3).map(|i| pool.submit(move || i * 10).unwrap()).collect();
/// let mut sum = 0;
/// for fut in as_completed(&futures, None) {
///     sum += fut.unwrap().result().unwrap();
/// }
/// assert_eq!(sum, 60);
/// ```
pub fn as_completed<'a, T: 'a>(
    futures: impl IntoIterator<Item = &'a Future<T>>,
    timeout: Option<Duration>,
) -> AsCompleted<T> {
    let futures = unique(futures);
    let waiter = register(&futures);
    AsCompleted {
        remaining: futures.len(),
        futures: futures.into_iter().map(Some).collect(),
        waiter,
        ready: Vec::new(),
        deadline: timeout.map(crate::shim::deadline),
    }
}

/// The iterator of [`as_completed`].
///
/// # Examples
///
/// ```
/// use conc::pool::{Future, as_completed};
///
/// let fut = Future::new();
/// fut.set_result(1).unwrap();
/// let mut it = as_completed([&fut], None);
/// assert_eq!(it.next().unwrap().unwrap().result(), Ok(1));
/// assert!(it.next().is_none());
/// ```
pub struct AsCompleted<T> {
    /// `None` once yielded.
    futures: Vec<Option<Future<T>>>,
    remaining: usize,
    waiter: Arc<Waiter>,
    /// Indices done but not yet yielded, in reverse completion order.
    ready: Vec<usize>,
    deadline: Option<Instant>,
}

impl<T> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl<T> Iterator for AsCompleted<T> {
    type Item = Result<Future<T>, AsCompletedTimeout<T>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        if self.ready.is_empty() {
            let mut ready = self.waiter.take_ready(self.deadline);
            if ready.is_empty() {
                let not_done: Vec<_> = self.futures.iter_mut().filter_map(Option::take).collect();
                for future in &not_done {
                    future.remove_waiter(&self.waiter);
                }
                self.remaining = 0;
                return Some(Err(AsCompletedTimeout { not_done }));
            }
            ready.reverse(); // so that `pop` yields in completion order
            self.ready = ready;
        }
        let index = self.ready.pop()?;
        self.remaining -= 1;
        self.futures[index].take().map(Ok)
    }
}

impl<T> Drop for AsCompleted<T> {
    fn drop(&mut self) {
        for future in self.futures.iter().flatten() {
            future.remove_waiter(&self.waiter);
        }
    }
}

/// `as_completed`'s timeout passed: hands back the futures not yet done
/// (Python raises `TimeoutError`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc::pool::{Future, as_completed};
///
/// let fut: Future<()> = Future::new();
/// let mut it = as_completed([&fut], Some(Duration::from_millis(10)));
/// let timeout = it.next().unwrap().unwrap_err();
/// assert_eq!(timeout.not_done.len(), 1);
/// ```
#[derive(thiserror::Error)]
#[error("{} futures not done before the timeout", .not_done.len())]
pub struct AsCompletedTimeout<T> {
    /// The futures still pending or running.
    pub not_done: Vec<Future<T>>,
}

impl<T> fmt::Debug for AsCompletedTimeout<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompletedTimeout")
            .field("not_done", &self.not_done)
            .finish()
    }
}
