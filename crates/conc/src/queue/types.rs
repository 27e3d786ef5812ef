//! `Queue`, `LifoQueue` and `PriorityQueue`: one API, stamped out by one macro over the engines.
//!
//! Python gets one API for free by subclassing `Queue`. Here a macro writes
//! each type's methods, thin wrappers over its engine ([`FifoCore`] for
//! `Queue`, [`Core`] for the others) that turn its internal outcomes into
//! the public error types; each doc example is written once and runs
//! against all three types.

use std::fmt;
use std::time::Duration;

use super::engine::{Core, FifoCore, GetFail, PutFail, Wait};
use super::error::{GetError, PutError, ShutDown, TooManyTaskDone};
use super::store::{Lifo, Prio};

/// Writes a public queue type `$name` over the engine `$engine`.
macro_rules! queue_type {
    (
        $(#[$attr:meta])*
        $name:ident, $engine:ty $(, $bound:path)?
    ) => {
        $(#[$attr])*
        pub struct $name<T> {
            core: $engine,
        }

        impl<T $(: $bound)?> $name<T> {
            #[doc = concat!("A queue holding at most `maxsize` items; 0 means no limit, as in Python.

# Examples

```
use conc::queue::", stringify!($name), ";

let q = ", stringify!($name), "::<u32>::new(100);
assert_eq!(q.maxsize(), 100);
assert!(q.empty());
```")]
            pub fn new(maxsize: usize) -> Self {
                Self { core: <$engine>::new(maxsize) }
            }

            #[doc = concat!("The limit given to [`new`](Self::new) (0: unbounded).

# Examples

```
use conc::queue::", stringify!($name), ";

assert_eq!(", stringify!($name), "::<u32>::new(0).maxsize(), 0);
```")]
            pub fn maxsize(&self) -> usize {
                self.core.maxsize()
            }

            #[doc = concat!("Puts `item`, waiting while the queue is full.

Fails only if the queue is shut down (before the call or while it waits),
handing the item back.

# Examples

```
use std::thread;
use conc::queue::", stringify!($name), ";

let q = ", stringify!($name), "::new(1);
thread::scope(|s| {
    s.spawn(|| {
        q.put(1).unwrap();
        q.put(2).unwrap(); // waits until the other thread gets 1
    });
    let first = q.get().unwrap();
    let second = q.get().unwrap();
    assert_eq!((first, second), (1, 2));
});
```")]
            pub fn put(&self, item: T) -> Result<(), ShutDown<T>> {
                match self.core.put(item, Wait::Forever) {
                    Ok(()) => Ok(()),
                    Err(PutFail::ShutDown(item)) => Err(ShutDown(item)),
                    // An untimed wait only ends with room or a shutdown.
                    Err(PutFail::Full(_) | PutFail::Timeout(_)) => unreachable!(),
                }
            }

            #[doc = concat!("Puts `item`, waiting at most `timeout` for room.

On timeout the item comes back in [`PutError::Timeout`]; if the queue is
(or gets) shut down, in [`PutError::ShutDown`].

# Examples

```
use std::time::Duration;
use conc::queue::{", stringify!($name), ", PutError};

let q = ", stringify!($name), "::new(1);
q.put_timeout(1, Duration::from_millis(10)).unwrap();
assert_eq!(q.put_timeout(2, Duration::from_millis(10)), Err(PutError::Timeout(2)));
```")]
            pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
                self.core.put(item, Wait::timeout(timeout)).map_err(put_error)
            }

            #[doc = concat!("Puts `item` only if there is room now; [`PutError::Full`] hands it back otherwise.

# Examples

```
use conc::queue::{", stringify!($name), ", PutError};

let q = ", stringify!($name), "::new(1);
assert_eq!(q.put_nowait(1), Ok(()));
assert_eq!(q.put_nowait(2), Err(PutError::Full(2)));
```")]
            pub fn put_nowait(&self, item: T) -> Result<(), PutError<T>> {
                self.core.put(item, Wait::No).map_err(put_error)
            }

            #[doc = concat!("Takes the next item, waiting while the queue is empty.

After a shutdown it still returns the items left, then fails with
[`ShutDown`] once the queue is empty; a thread waiting in `get` when the
queue is shut down wakes and fails.

# Examples

```
use std::thread;
use conc::queue::{", stringify!($name), ", ShutDown};

let q = ", stringify!($name), "::new(0);
thread::scope(|s| {
    s.spawn(|| q.put(7).unwrap());
    assert_eq!(q.get(), Ok(7)); // waits for the put
});
q.shutdown(false);
assert_eq!(q.get(), Err(ShutDown(())));
```")]
            pub fn get(&self) -> Result<T, ShutDown> {
                match self.core.get(Wait::Forever) {
                    Ok(item) => Ok(item),
                    Err(GetFail::ShutDown) => Err(ShutDown(())),
                    // An untimed wait only ends with an item or a shutdown.
                    Err(GetFail::Empty | GetFail::Timeout) => unreachable!(),
                }
            }

            #[doc = concat!("Takes the next item, waiting at most `timeout` for one.

# Examples

```
use std::time::Duration;
use conc::queue::{", stringify!($name), ", GetError};

let q = ", stringify!($name), "::new(0);
q.put(1).unwrap();
assert_eq!(q.get_timeout(Duration::from_millis(10)), Ok(1));
assert_eq!(q.get_timeout(Duration::from_millis(10)), Err(GetError::Timeout));
```")]
            pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
                self.core.get(Wait::timeout(timeout)).map_err(get_error)
            }

            #[doc = concat!("Takes the next item only if there is one now; [`GetError::Empty`] otherwise.

# Examples

```
use conc::queue::{", stringify!($name), ", GetError};

let q = ", stringify!($name), "::new(0);
q.put(1).unwrap();
assert_eq!(q.get_nowait(), Ok(1));
assert_eq!(q.get_nowait(), Err(GetError::Empty));
```")]
            pub fn get_nowait(&self) -> Result<T, GetError> {
                self.core.get(Wait::No).map_err(get_error)
            }

            #[doc = concat!("How many items the queue holds: a snapshot, stale as soon as it returns
when other threads use the queue (as Python warns).

# Examples

```
use conc::queue::", stringify!($name), ";

let q = ", stringify!($name), "::new(0);
q.put(1).unwrap();
q.put(2).unwrap();
assert_eq!(q.qsize(), 2);
```")]
            pub fn qsize(&self) -> usize {
                self.core.qsize()
            }

            #[doc = concat!("Whether the queue holds no items (a snapshot, like [`qsize`](Self::qsize)).

# Examples

```
use conc::queue::", stringify!($name), ";

let q = ", stringify!($name), "::new(0);
assert!(q.empty());
q.put(1).unwrap();
assert!(!q.empty());
```")]
            pub fn empty(&self) -> bool {
                self.core.qsize() == 0
            }

            #[doc = concat!("Whether the queue holds `maxsize` items; never for an unbounded queue.

# Examples

```
use conc::queue::", stringify!($name), ";

let q = ", stringify!($name), "::new(1);
assert!(!q.full());
q.put(1).unwrap();
assert!(q.full());
```")]
            pub fn full(&self) -> bool {
                self.core.full()
            }

            #[doc = concat!("Marks one item taken with `get` as processed, for [`join`](Self::join).

Fails with [`TooManyTaskDone`] if every item put was already marked done.

# Examples

```
use conc::queue::", stringify!($name), ";

let q = ", stringify!($name), "::new(0);
q.put(\"job\").unwrap();
let job = q.get().unwrap();
// ... process the job ...
q.task_done().unwrap();
assert!(q.task_done().is_err());
```")]
            pub fn task_done(&self) -> Result<(), TooManyTaskDone> {
                if self.core.task_done() { Ok(()) } else { Err(TooManyTaskDone) }
            }

            #[doc = concat!("How many items were put and not yet marked done (Python's `unfinished_tasks`).

# Examples

```
use conc::queue::", stringify!($name), ";

let q = ", stringify!($name), "::new(0);
q.put(1).unwrap();
q.get().unwrap();
assert_eq!(q.unfinished_tasks(), 1); // got, but not done yet
q.task_done().unwrap();
assert_eq!(q.unfinished_tasks(), 0);
```")]
            pub fn unfinished_tasks(&self) -> usize {
                self.core.unfinished_tasks()
            }

            #[doc = concat!("Waits until every item ever put has been marked done with
[`task_done`](Self::task_done) (or drained by an immediate
[`shutdown`](Self::shutdown)).

# Examples

```
use std::thread;
use conc::queue::", stringify!($name), ";

let q = ", stringify!($name), "::new(0);
for job in 0..10 {
    q.put(job).unwrap();
}
thread::scope(|s| {
    s.spawn(|| {
        while let Ok(_job) = q.get_nowait() {
            q.task_done().unwrap();
        }
    });
    q.join(); // returns once the worker has done all ten
    assert_eq!(q.unfinished_tasks(), 0);
});
```")]
            pub fn join(&self) {
                self.core.join(Wait::Forever);
            }

            #[doc = concat!("Like [`join`](Self::join), giving up after `timeout`; `true` if every item is done.

# Examples

```
use std::time::Duration;
use conc::queue::", stringify!($name), ";

let q = ", stringify!($name), "::new(0);
q.put(1).unwrap();
assert!(!q.join_timeout(Duration::from_millis(10)));
q.get().unwrap();
q.task_done().unwrap();
assert!(q.join_timeout(Duration::from_millis(10)));
```")]
            pub fn join_timeout(&self, timeout: Duration) -> bool {
                self.core.join(Wait::timeout(timeout))
            }

            #[doc = concat!("Shuts the queue down, as Python 3.13's `Queue.shutdown`.

From now on every put fails with `ShutDown`, handing its item back. With
`immediate == false`, gets still return the items left and fail once the
queue is empty; with `immediate == true` the queue is emptied now, the
items taken out count as done (so `join` returns), and gets fail at once.
Threads waiting in `put` or `get` wake and re-check. Calling it again is
allowed, as in Python.

Where Python drops what an immediate shutdown drains, this returns it,
in the order `get` would have: nothing is lost that the caller still
wants (an empty `Vec` when `immediate` is false).

# Examples

```
use conc::queue::{", stringify!($name), ", GetError, ShutDown};

let q = ", stringify!($name), "::new(0);
q.put(1).unwrap();
q.put(1).unwrap();
assert!(q.shutdown(false).is_empty());
assert_eq!(q.put(2), Err(ShutDown(2)));
assert_eq!(q.get(), Ok(1)); // what is left still comes out
assert_eq!(q.shutdown(true), [1]); // ... unless drained
assert_eq!(q.get_nowait(), Err(GetError::ShutDown));
q.task_done().unwrap();
q.join(); // the drained item counted as done
```")]
            pub fn shutdown(&self, immediate: bool) -> Vec<T> {
                self.core.shutdown(immediate)
            }

            #[doc = concat!("Whether [`shutdown`](Self::shutdown) was called (Python's `is_shutdown`).

# Examples

```
use conc::queue::", stringify!($name), ";

let q = ", stringify!($name), "::<u8>::new(0);
assert!(!q.is_shutdown());
q.shutdown(false);
assert!(q.is_shutdown());
```")]
            pub fn is_shutdown(&self) -> bool {
                self.core.is_shutdown()
            }
        }

        // By hand, so that `T` need not be `Debug`: the items stay private.
        impl<T $(: $bound)?> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("qsize", &self.qsize())
                    .field("maxsize", &self.maxsize())
                    .finish_non_exhaustive()
            }
        }
    };
}

fn put_error<T>(fail: PutFail<T>) -> PutError<T> {
    match fail {
        PutFail::Full(item) => PutError::Full(item),
        PutFail::Timeout(item) => PutError::Timeout(item),
        PutFail::ShutDown(item) => PutError::ShutDown(item),
    }
}

fn get_error(fail: GetFail) -> GetError {
    match fail {
        GetFail::Empty => GetError::Empty,
        GetFail::Timeout => GetError::Timeout,
        GetFail::ShutDown => GetError::ShutDown,
    }
}

queue_type! {
    /// A first-in, first-out queue: Python's `queue.Queue`.
    ///
    /// Share it by reference with scoped threads, or in an `Arc`; it is
    /// `Send + Sync` when `T: Send`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::thread;
    /// use conc::queue::Queue;
    ///
    /// let q = Queue::new(2);
    /// thread::scope(|s| {
    ///     s.spawn(|| {
    ///         for i in 0..5 {
    ///             q.put(i).unwrap();
    ///         }
    ///         q.shutdown(false); // the consumer drains, then stops
    ///     });
    ///     let got: Vec<_> = std::iter::from_fn(|| q.get().ok()).collect();
    ///     assert_eq!(got, [0, 1, 2, 3, 4]);
    /// });
    /// ```
    Queue, FifoCore<T>
}

queue_type! {
    /// A last-in, first-out queue (a stack): Python's `queue.LifoQueue`.
    ///
    /// Share it by reference with scoped threads, or in an `Arc`; it is
    /// `Send + Sync` when `T: Send`.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc::queue::LifoQueue;
    ///
    /// let q = LifoQueue::new(0);
    /// for i in 0..3 {
    ///     q.put(i).unwrap();
    /// }
    /// assert_eq!([q.get(), q.get(), q.get()], [Ok(2), Ok(1), Ok(0)]);
    /// ```
    LifoQueue, Core<Lifo<T>>
}

queue_type! {
    /// A queue that hands out its smallest item first: Python's
    /// `queue.PriorityQueue`, and stable: equal items come out in the order
    /// they were put, which Python's `heapq` does not promise.
    ///
    /// Share it by reference with scoped threads, or in an `Arc`; it is
    /// `Send + Sync` when `T: Send`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cmp::Reverse;
    /// use conc::queue::PriorityQueue;
    ///
    /// let q = PriorityQueue::new(0);
    /// q.put((2, "write")).unwrap();
    /// q.put((1, "read")).unwrap();
    /// q.put((2, "close")).unwrap();
    /// assert_eq!(q.get(), Ok((1, "read")));
    ///
    /// // Largest first: wrap in `Reverse`.
    /// let q = PriorityQueue::new(0);
    /// q.put(Reverse(1)).unwrap();
    /// q.put(Reverse(5)).unwrap();
    /// assert_eq!(q.get(), Ok(Reverse(5)));
    /// ```
    PriorityQueue, Core<Prio<T>>, Ord
}
