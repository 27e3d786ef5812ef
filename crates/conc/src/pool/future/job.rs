//! The pool's side of a future: a queued task stored in its future's allocation, type-erased as a `Job` for the job channel.

use super::{Future, Inner, Slot};
use crate::shim::{Arc, Condvar, Mutex};

/// What the pool does with a queued [`Job`].
pub(crate) enum JobAction<'a> {
    /// Run the task in a worker, calling this after it and before its
    /// future completes.
    Run(&'a dyn Fn()),
    /// Cancel the future (shutdown with `cancel_futures`, or a dropped map).
    Cancel,
    /// Fail the future: the pool broke before the task ran.
    Fail(&'a str),
}

/// A queued task with its future: what the pool's channel carries.
pub(crate) trait Job: Send + Sync {
    /// Acts on the task; each job is acted on once.
    fn act(self: Arc<Self>, action: JobAction<'_>);
}

impl<T, F> Job for Inner<T, Mutex<Option<F>>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    fn act(self: Arc<Self>, action: JobAction<'_>) {
        let task = self.task.lock().take();
        let future: Future<T> = Future { inner: self };
        match action {
            JobAction::Run(before_complete) => {
                if let Some(task) = task {
                    future.run_then(task, before_complete);
                }
            }
            JobAction::Cancel => {
                future.cancel();
            }
            JobAction::Fail(why) => {
                let _ = future.set_panic(why);
            }
        }
    }
}

/// A pending future that owns `task`, and the same allocation as a job
/// for the pool's queue.
pub(crate) fn with_task<T, F>(task: F) -> (Future<T>, Arc<dyn Job>)
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let inner = Arc::new(Inner {
        slot: Slot::pending(),
        done: Condvar::new(),
        task: Mutex::new(Some(task)),
    });
    let job: Arc<dyn Job> = inner.clone();
    (Future { inner }, job)
}
