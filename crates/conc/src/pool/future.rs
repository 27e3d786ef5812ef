//! `Future<T>`: the result of a task that may not have run yet, with done-callbacks (Python's `concurrent.futures.Future`).
//!
//! A future is a small state machine behind one [`shim::Mutex`](crate::shim)
//! and one condvar, as in CPython's `_base.py`:
//!
//! ```text
//! Pending --set_running_or_notify_cancel--> Running --set_result / set_panic--> Finished
//!    \--cancel--> Cancelled                       (a task's panic is a Finished error)
//! ```
//!
//! `Future<T>` is a cheap `Clone` handle (one `Arc`), because Python's
//! futures are shared: the pool keeps one to complete it, the caller keeps
//! one to wait on it, and [`as_completed`] and [`wait`] hold more. Since `T`
//! need not be `Clone`, there are two ways to read the value:
//! [`Future::result`] (for `T: Clone`, any number of times, as in Python) and
//! [`Future::into_result`] (moves it out once; later readers get
//! [`FutureError::Taken`]).
//!
//! Written by hand, not taken from a crate: std's and crossbeam's one-shot
//! channels have a single receiver and no callbacks, and `as_completed` and
//! `wait` need each future to keep a list of waiters to wake (CPython's
//! `_Waiter`s), which lives in the same lock as the state.

use std::any::Any;
use std::fmt;
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::shim::{Arc, Condvar, Mutex, MutexGuard};

#[cfg(not(loom))]
mod job;
mod wait;
#[cfg(not(loom))]
pub(crate) use job::{Job, JobAction, with_task};
use wait::Waiter;
pub use wait::{AsCompleted, AsCompletedTimeout, DoneAndNotDone, ReturnWhen, as_completed, wait};

/// Why a future has no value to give.
///
/// # Examples
///
/// ```
/// use conc::pool::{Future, FutureError};
///
/// let fut: Future<u32> = Future::new();
/// fut.cancel();
/// assert_eq!(fut.result(), Err(FutureError::Cancelled));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FutureError {
    /// The task panicked; this is its panic message (Python: the exception).
    #[error("the task panicked: {0}")]
    Panicked(String),
    /// The future was cancelled before its task started.
    #[error("the future was cancelled")]
    Cancelled,
    /// The timeout passed before the future was done.
    #[error("timed out waiting for the future")]
    Timeout,
    /// [`Future::into_result`] already moved the value out.
    #[error("the result was already taken")]
    Taken,
    /// The worker process running the task died (a
    /// [`ProcessPool`](crate::pool::ProcessPool) task); says how.
    #[error("the worker process running the task died: {0}")]
    WorkerDied(String),
}

/// The future was already done: hands back what you tried to store
/// (Python's `InvalidStateError`).
///
/// # Examples
///
/// ```
/// use conc::pool::{Future, InvalidState};
///
/// let fut = Future::new();
/// fut.set_result(1).unwrap();
/// assert!(matches!(fut.set_result(2), Err(InvalidState(2))));
/// ```
#[derive(thiserror::Error)]
#[error("the future is already done")]
pub struct InvalidState<T>(pub T);

impl<T> fmt::Debug for InvalidState<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InvalidState(..)")
    }
}

enum State<T> {
    Pending,
    Running,
    Cancelled,
    Finished(T),
    /// Finished without a value: the task panicked, or its worker died.
    Failed(FutureError),
    /// Finished, but `into_result` moved the value out.
    Taken,
}

impl<T> State<T> {
    fn is_done(&self) -> bool {
        !matches!(self, State::Pending | State::Running)
    }

    fn name(&self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Running => "running",
            State::Cancelled => "cancelled",
            State::Finished(_) | State::Taken => "finished",
            State::Failed(FutureError::Panicked(_)) => "panicked",
            State::Failed(_) => "failed",
        }
    }
}

type Callback<T> = Box<dyn FnOnce(&Future<T>) + Send>;

struct Slot<T> {
    state: State<T>,
    /// Run once, in order, by whoever moves the future to done.
    callbacks: Vec<Callback<T>>,
    /// `as_completed` / `wait` calls to tell, with this future's index in their list.
    waiters: Vec<(Arc<Waiter>, usize)>,
    /// Threads blocked in `result`: completion skips the notify when none
    /// wait, which is the common case in a busy pool.
    blocked: usize,
}

/// The shared part of a future. A pool stores the task itself in `task`,
/// so that a task and its future cost one allocation, not two (malloc was
/// the largest cost in the pool bench); a bare future stores `()`.
struct Inner<T, C: ?Sized = dyn Send + Sync> {
    slot: Mutex<Slot<T>>,
    done: Condvar,
    #[cfg_attr(loom, allow(dead_code))]
    task: C,
}

impl<T> Slot<T> {
    fn pending() -> Mutex<Self> {
        Mutex::new(Slot {
            state: State::Pending,
            callbacks: Vec::new(),
            waiters: Vec::new(),
            blocked: 0,
        })
    }
}

/// The result of a task that may not have run yet: a shared handle.
///
/// A cheap `Clone` (one `Arc`), because Python's futures are shared: the
/// pool keeps one to complete it, the caller one to wait on it, and
/// [`as_completed`] and [`wait`] hold more. As `T` need not be `Clone`,
/// [`result`](Self::result) (for `T: Clone`) copies the value out for any
/// number of readers, as in Python, and [`into_result`](Self::into_result)
/// moves it out once. Written by hand: std's and crossbeam's one-shot
/// channels have one receiver and no callbacks, and [`as_completed`] and
/// [`wait`] need each future to keep a list of waiters to wake (CPython's
/// `_Waiter`s) under the same lock as its state.
///
/// # Examples
///
/// ```
/// use conc::pool::ThreadPool;
///
/// let pool = ThreadPool::new(2);
/// let fut = pool.submit(|| 6 * 7).unwrap();
/// assert_eq!(fut.result(), Ok(42));
/// assert!(fut.done());
/// ```
pub struct Future<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.slot.lock().state.name();
        f.debug_struct("Future").field("state", &state).finish()
    }
}

impl<T> Default for Future<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Future<T> {
    /// A pending future, for executors and tests (Python's `Future()`);
    /// [`ThreadPool::submit`](crate::pool::ThreadPool::submit) makes them for you.
    ///
    /// # Examples
    ///
    /// ```
    /// let fut: conc::pool::Future<i32> = conc::pool::Future::new();
    /// assert!(!fut.done());
    /// ```
    pub fn new() -> Self {
        let inner = std::sync::Arc::new(Inner {
            slot: Slot::pending(),
            done: Condvar::new(),
            task: (),
        });
        // std's Arc coerces to the unsized `Inner<T>`; loom's cannot, but
        // wraps a coerced std one.
        #[cfg(loom)]
        let inner = Arc::from_std(inner as std::sync::Arc<Inner<T>>);
        Self { inner }
    }

    /// Whether the future finished, panicked or was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// let fut = conc::pool::Future::new();
    /// fut.set_result(()).unwrap();
    /// assert!(fut.done());
    /// ```
    pub fn done(&self) -> bool {
        self.inner.slot.lock().state.is_done()
    }

    /// Whether the task is running now.
    ///
    /// # Examples
    ///
    /// ```
    /// let fut = conc::pool::Future::<()>::new();
    /// assert!(fut.set_running_or_notify_cancel());
    /// assert!(fut.running());
    /// ```
    pub fn running(&self) -> bool {
        matches!(self.inner.slot.lock().state, State::Running)
    }

    /// Whether the future was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// let fut = conc::pool::Future::<()>::new();
    /// assert!(fut.cancel());
    /// assert!(fut.cancelled());
    /// ```
    pub fn cancelled(&self) -> bool {
        matches!(self.inner.slot.lock().state, State::Cancelled)
    }

    /// Cancels the future if its task has not started; returns whether it
    /// is cancelled (true again if it already was). Runs the callbacks.
    ///
    /// # Examples
    ///
    /// ```
    /// let fut = conc::pool::Future::<()>::new();
    /// fut.set_running_or_notify_cancel();
    /// assert!(!fut.cancel()); // too late: it is running
    /// ```
    pub fn cancel(&self) -> bool {
        let slot = self.inner.slot.lock();
        match slot.state {
            State::Pending => {
                self.complete(slot, State::Cancelled);
                true
            }
            State::Cancelled => true,
            _ => false,
        }
    }

    /// Marks the future running, unless it was cancelled: returns `false`
    /// then, and the executor must skip the task. Exactly one of this and a
    /// racing [`cancel`](Self::cancel) wins.
    ///
    /// # Panics
    ///
    /// If the future is already running or done, as Python raises.
    ///
    /// # Examples
    ///
    /// ```
    /// let fut = conc::pool::Future::<()>::new();
    /// fut.cancel();
    /// assert!(!fut.set_running_or_notify_cancel());
    /// ```
    pub fn set_running_or_notify_cancel(&self) -> bool {
        let mut slot = self.inner.slot.lock();
        match slot.state {
            State::Pending => {
                slot.state = State::Running;
                true
            }
            State::Cancelled => false,
            ref other => panic!("future in unexpected state: {}", other.name()),
        }
    }

    /// Stores the task's value and wakes everyone waiting; the value is
    /// handed back if the future is already done.
    ///
    /// # Examples
    ///
    /// ```
    /// let fut = conc::pool::Future::new();
    /// fut.set_result("ok").unwrap();
    /// assert_eq!(fut.into_result(), Ok("ok"));
    /// ```
    pub fn set_result(&self, value: T) -> Result<(), InvalidState<T>> {
        let slot = self.inner.slot.lock();
        if slot.state.is_done() {
            return Err(InvalidState(value));
        }
        self.complete(slot, State::Finished(value));
        Ok(())
    }

    /// Records that the task panicked with `message` (Python's
    /// `set_exception`); the message is handed back if already done.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc::pool::{Future, FutureError};
    ///
    /// let fut: Future<()> = Future::new();
    /// fut.set_panic("boom").unwrap();
    /// assert_eq!(fut.result(), Err(FutureError::Panicked("boom".into())));
    /// ```
    pub fn set_panic(&self, message: impl Into<String>) -> Result<(), InvalidState<String>> {
        let message = message.into();
        let slot = self.inner.slot.lock();
        if slot.state.is_done() {
            return Err(InvalidState(message));
        }
        self.complete(slot, State::Failed(FutureError::Panicked(message)));
        Ok(())
    }

    /// Finishes the future with `error` (a worker's death); `false` if it
    /// was already done.
    pub(crate) fn set_error(&self, error: FutureError) -> bool {
        let slot = self.inner.slot.lock();
        if slot.state.is_done() {
            return false;
        }
        self.complete(slot, State::Failed(error));
        true
    }

    /// Runs `task` for this future, as a pool worker does: skips it if the
    /// future is not pending (cancelled, or already running or done:
    /// returns `false`), else stores its value, or its panic message if it
    /// panicked. A value set by hand while the task ran is kept.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc::pool::{Future, FutureError};
    ///
    /// let fut: Future<u8> = Future::new();
    /// assert!(fut.run(|| panic!("oops")));
    /// assert_eq!(fut.result(), Err(FutureError::Panicked("oops".into())));
    /// ```
    pub fn run(&self, task: impl FnOnce() -> T) -> bool {
        self.run_then(task, || ())
    }

    /// As [`run`](Self::run), calling `idle` once the task is over: a pool
    /// worker marks itself idle there. With no callback to run, that is
    /// before anyone can see the outcome, so a caller who read the result
    /// and submits again finds this worker. With callbacks, it is after
    /// them, as in CPython: a callback may submit to the same pool and wait
    /// for the result, which must not be promised to a worker still busy
    /// running that callback.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn run_then(&self, task: impl FnOnce() -> T, idle: impl FnOnce()) -> bool {
        {
            // Not `set_running_or_notify_cancel`, which panics on a future
            // already done: a worker must never panic for what a caller did
            // to the future (`set_result` by hand).
            let mut slot = self.inner.slot.lock();
            if !matches!(slot.state, State::Pending) {
                return false;
            }
            slot.state = State::Running;
        }
        let state = match panic::catch_unwind(AssertUnwindSafe(task)) {
            Ok(value) => State::Finished(value),
            Err(payload) => State::Failed(FutureError::Panicked(panic_message(payload))),
        };
        let slot = self.inner.slot.lock();
        if slot.state.is_done() {
            // Completed by hand while the task ran: that outcome stands.
            drop(slot);
            idle();
        } else if slot.callbacks.is_empty() {
            idle();
            self.complete(slot, state);
        } else {
            self.complete(slot, state);
            idle();
        }
        true
    }

    /// Calls `callback` with this future once it is done: in the thread
    /// that completes it, or at once in this thread if it already is (as in
    /// Python). A panicking callback is reported on stderr and ignored.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// let pool = conc::pool::ThreadPool::new(1);
    /// let (tx, rx) = mpsc::channel();
    /// let fut = pool.submit(|| 5).unwrap();
    /// fut.add_done_callback(move |f| tx.send(f.result()).unwrap());
    /// assert_eq!(rx.recv().unwrap(), Ok(5));
    /// ```
    pub fn add_done_callback(&self, callback: impl FnOnce(&Future<T>) + Send + 'static) {
        let mut slot = self.inner.slot.lock();
        if slot.state.is_done() {
            drop(slot);
            run_callback(callback, self);
        } else {
            slot.callbacks.push(Box::new(callback));
        }
    }

    /// Blocks until done, then moves the value out; later readers get
    /// [`FutureError::Taken`]. Works for any `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = conc::pool::ThreadPool::new(1);
    /// let fut = pool.submit(|| vec![1, 2]).unwrap();
    /// assert_eq!(fut.into_result(), Ok(vec![1, 2]));
    /// ```
    pub fn into_result(self) -> Result<T, FutureError> {
        let mut slot = self.wait_done(None).ok_or(FutureError::Timeout)?;
        match mem::replace(&mut slot.state, State::Taken) {
            State::Finished(value) => Ok(value),
            other => {
                let err = outcome_error(&other);
                slot.state = other;
                Err(err)
            }
        }
    }

    /// Waits until done or until `deadline` (`None`: forever); the guard
    /// is `None` if the deadline passed first.
    fn wait_done(&self, deadline: Option<Instant>) -> Option<MutexGuard<'_, Slot<T>>> {
        let mut slot = self.inner.slot.lock();
        while !slot.state.is_done() {
            slot.blocked += 1;
            let timed_out = match deadline {
                Some(deadline) => self.inner.done.wait_until(&mut slot, deadline),
                None => {
                    self.inner.done.wait(&mut slot);
                    false
                }
            };
            slot.blocked -= 1;
            if timed_out && !slot.state.is_done() {
                return None;
            }
        }
        Some(slot)
    }

    /// Moves the future to a done `state`, then (outside the lock, so they
    /// may touch the future again) wakes waiters and runs the callbacks.
    fn complete(&self, mut slot: MutexGuard<'_, Slot<T>>, state: State<T>) {
        slot.state = state;
        let callbacks = mem::take(&mut slot.callbacks);
        let waiters = mem::take(&mut slot.waiters);
        if slot.blocked > 0 {
            self.inner.done.notify_all();
        }
        drop(slot);
        for (waiter, index) in waiters {
            waiter.notify(index);
        }
        for callback in callbacks {
            run_callback(callback, self);
        }
    }

    /// Registers `waiter` to hear about completion under `index`; returns
    /// `true` instead if the future is already done.
    fn add_waiter(&self, waiter: &Arc<Waiter>, index: usize) -> bool {
        let mut slot = self.inner.slot.lock();
        if slot.state.is_done() {
            return true;
        }
        slot.waiters.push((Arc::clone(waiter), index));
        false
    }

    fn remove_waiter(&self, waiter: &Arc<Waiter>) {
        let mut slot = self.inner.slot.lock();
        slot.waiters.retain(|(w, _)| !Arc::ptr_eq(w, waiter));
    }

    /// Whether the task panicked or its worker died (for `wait`'s
    /// `FirstException`).
    fn panicked(&self) -> bool {
        matches!(self.inner.slot.lock().state, State::Failed(_))
    }
}

impl<T: Clone> Future<T> {
    /// Blocks until done, then returns a copy of the value, or why there is
    /// none. Any number of callers may ask, as in Python.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = conc::pool::ThreadPool::new(2);
    /// let fut = pool.submit(|| "done").unwrap();
    /// assert_eq!(fut.result(), Ok("done"));
    /// assert_eq!(fut.result(), Ok("done"));
    /// ```
    pub fn result(&self) -> Result<T, FutureError> {
        let slot = self.wait_done(None).ok_or(FutureError::Timeout)?;
        read(&slot.state)
    }

    /// As [`result`](Self::result), but gives up with
    /// [`FutureError::Timeout`] after `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc::pool::{Future, FutureError};
    ///
    /// let fut: Future<u8> = Future::new(); // nobody will complete it
    /// let got = fut.result_timeout(Duration::from_millis(10));
    /// assert_eq!(got, Err(FutureError::Timeout));
    /// ```
    pub fn result_timeout(&self, timeout: Duration) -> Result<T, FutureError> {
        let slot = self
            .wait_done(Some(crate::shim::deadline(timeout)))
            .ok_or(FutureError::Timeout)?;
        read(&slot.state)
    }
}

fn read<T: Clone>(state: &State<T>) -> Result<T, FutureError> {
    match state {
        State::Finished(value) => Ok(value.clone()),
        other => Err(outcome_error(other)),
    }
}

/// The error for a done state that holds no value.
fn outcome_error<T>(state: &State<T>) -> FutureError {
    match state {
        State::Failed(error) => error.clone(),
        State::Cancelled => FutureError::Cancelled,
        State::Taken => FutureError::Taken,
        State::Pending | State::Running | State::Finished(_) => {
            unreachable!("outcome_error on a future with a value or no outcome")
        }
    }
}

/// Runs a done-callback; a panic in it must not kill the worker that
/// completed the future, so it is caught and reported, as Python logs it.
fn run_callback<T>(callback: impl FnOnce(&Future<T>), future: &Future<T>) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| callback(future))) {
        eprintln!(
            "conc::pool: a done-callback panicked: {}",
            panic_message(payload)
        );
    }
}

/// The message of a panic: `panic!` gives a `&str` or a `String`.
pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(message) => (*message).to_owned(),
            Err(_) => "Box<dyn Any>".to_owned(),
        },
    }
}
