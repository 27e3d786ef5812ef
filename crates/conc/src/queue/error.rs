//! Why a queue call did not succeed: small enums that hand the item back.

use thiserror::Error;

/// The queue was shut down ([`Queue::shutdown`](super::Queue::shutdown)).
///
/// A refused `put` hands its item back in it; a `get` that finds a
/// shut-down queue empty returns `ShutDown<()>`, written `ShutDown`.
///
/// # Examples
///
/// ```
/// use conc::queue::{Queue, ShutDown};
///
/// let q = Queue::new(0);
/// q.shutdown(false);
/// assert_eq!(q.put("job"), Err(ShutDown("job")));
/// assert_eq!(q.get(), Err(ShutDown(())));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("the queue is shut down")]
pub struct ShutDown<T = ()>(pub T);

impl<T> ShutDown<T> {
    /// The item that was not put.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc::queue::Queue;
    ///
    /// let q = Queue::new(0);
    /// q.shutdown(false);
    /// assert_eq!(q.put(String::from("job")).unwrap_err().into_inner(), "job");
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// Why `put_nowait` or `put_timeout` did not put; the item comes back.
///
/// # Examples
///
/// ```
/// use conc::queue::{PutError, Queue};
///
/// let q = Queue::new(1);
/// q.put(1).unwrap();
/// assert_eq!(q.put_nowait(2), Err(PutError::Full(2)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PutError<T> {
    /// The queue was full and the call was not to wait.
    #[error("the queue is full")]
    Full(T),
    /// The queue stayed full for the whole timeout.
    #[error("timed out waiting for room in the queue")]
    Timeout(T),
    /// The queue was shut down.
    #[error("the queue is shut down")]
    ShutDown(T),
}

impl<T> PutError<T> {
    /// The item that was not put.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc::queue::Queue;
    ///
    /// let q = Queue::new(1);
    /// q.put(1).unwrap();
    /// let err = q.put_timeout(2, Duration::from_millis(1)).unwrap_err();
    /// assert_eq!(err.into_inner(), 2);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(item) | PutError::Timeout(item) | PutError::ShutDown(item) => item,
        }
    }
}

impl<T> From<ShutDown<T>> for PutError<T> {
    /// # Examples
    ///
    /// ```
    /// use conc::queue::{PutError, ShutDown};
    ///
    /// assert_eq!(PutError::from(ShutDown(7)), PutError::ShutDown(7));
    /// ```
    fn from(err: ShutDown<T>) -> Self {
        PutError::ShutDown(err.0)
    }
}

/// Why `get_nowait` or `get_timeout` returned no item.
///
/// # Examples
///
/// ```
/// use conc::queue::{GetError, Queue};
///
/// let q: Queue<u8> = Queue::new(0);
/// assert_eq!(q.get_nowait(), Err(GetError::Empty));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum GetError {
    /// The queue was empty and the call was not to wait.
    #[error("the queue is empty")]
    Empty,
    /// The queue stayed empty for the whole timeout.
    #[error("timed out waiting for an item")]
    Timeout,
    /// The queue was shut down and is empty.
    #[error("the queue is shut down")]
    ShutDown,
}

impl From<ShutDown> for GetError {
    /// # Examples
    ///
    /// ```
    /// use conc::queue::{GetError, ShutDown};
    ///
    /// assert_eq!(GetError::from(ShutDown(())), GetError::ShutDown);
    /// ```
    fn from(_: ShutDown) -> Self {
        GetError::ShutDown
    }
}

/// `task_done` was called more times than items were put (Python raises
/// `ValueError('task_done() called too many times')`).
///
/// # Examples
///
/// ```
/// use conc::queue::{Queue, TooManyTaskDone};
///
/// let q = Queue::new(0);
/// q.put(1).unwrap();
/// q.get().unwrap();
/// assert_eq!(q.task_done(), Ok(()));
/// assert_eq!(q.task_done(), Err(TooManyTaskDone));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("task_done() called too many times")]
pub struct TooManyTaskDone;
