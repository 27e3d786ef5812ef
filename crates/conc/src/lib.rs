//! Python's `threading`, `queue` and `concurrent.futures`, done right for Rust threads.
//!
//! The course teaches concurrency with Python's standard library: locks with
//! timeouts, `RLock`, semaphores, events, conditions and barriers; the
//! producer/consumer pattern over `queue.Queue` with `task_done` and `join`;
//! daemon threads; and thread pools whose futures take callbacks. `conc`
//! gives a Rust reader the same names with Rust's guarantees: data lives
//! inside the lock that guards it, a timeout hands the value back instead of
//! losing it, and a panicking task is an error in its future, not a dead
//! pool.
//!
//! | module | Python | what it holds |
//! |---|---|---|
//! | [`sync`] | `threading` | `Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Event`, `Condition`, `Barrier` |
//! | [`queue`] | `queue` | `Queue`, `LifoQueue`, `PriorityQueue`, with `task_done`, `join` and `shutdown` |
//! | [`thread`] | `threading` | named threads with a daemon flag, `current`, `enumerate`, `run_main` |
//! | [`pool`] | `concurrent.futures` | `ThreadPool`, `Future` with callbacks, `as_completed`, `wait` |
//! | [`deadlock`] | (the course's cures) | locks taken in one global order, and a cycle detector |
//!
//! What is built on parking_lot and crossbeam, and what is written by hand
//! and why, is said in each module's documentation.
//!
//! # Examples
//!
//! The course's producer/consumer, then a pool whose future takes a callback:
//!
//! ```
//! use std::sync::mpsc;
//! use conc::pool::ThreadPool;
//! use conc::queue::Queue;
//!
//! let queue = Queue::new(10); // a full queue makes the producer wait
//! std::thread::scope(|s| {
//!     s.spawn(|| {
//!         for dish in ["noodles", "dumplings", "rice"] {
//!             queue.put(dish).unwrap();
//!         }
//!     });
//!     s.spawn(|| {
//!         for _ in 0..3 {
//!             let dish = queue.get().unwrap();
//!             assert!(!dish.is_empty()); // eat it
//!             queue.task_done().unwrap();
//!         }
//!     });
//!     queue.join(); // every dish put has been eaten
//! });
//!
//! let pool = ThreadPool::new(2);
//! let future = pool.submit(|| 6 * 7).unwrap();
//! let (tx, rx) = mpsc::channel();
//! future.add_done_callback(move |f| tx.send(f.result().unwrap()).unwrap());
//! assert_eq!(future.result().unwrap(), 42);
//! assert_eq!(rx.recv().unwrap(), 42);
//! ```
#![deny(unsafe_code)]

pub mod deadlock;
#[cfg(not(loom))]
pub mod ipc;
#[cfg(not(loom))]
pub mod pool;
#[cfg(not(loom))]
pub mod process;
pub mod queue;
mod shim;
pub mod sync;
#[cfg(not(loom))]
mod sys;
#[cfg(not(loom))]
pub mod thread;

#[cfg(loom)]
pub mod pool {
    //! Under loom only the future is built: the pool's threads are std's.
    mod future;
    pub use future::*;
}
