//! Python's `queue` module: `Queue`, `LifoQueue` and `PriorityQueue`, with `task_done`, `join` and 3.13's `shutdown`.
//!
//! The producer/consumer pattern as the course teaches it: producers `put`,
//! consumers `get` and call `task_done` when an item is processed, and
//! whoever needs to know that all work is finished calls `join`. With a
//! `maxsize`, a full queue makes producers wait: that is the backpressure.
//! `shutdown` ends it all cleanly (Python 3.13): puts fail at once, gets
//! return what is left and then fail, and every waiting thread wakes.
//!
//! | Python | here |
//! |---|---|
//! | `Queue(maxsize=0)` | [`Queue::new(0)`](Queue::new) (also [`LifoQueue`], [`PriorityQueue`]) |
//! | `q.put(x)` / `q.put(x, timeout=t)` / `q.put_nowait(x)` | [`put`](Queue::put) / [`put_timeout`](Queue::put_timeout) / [`put_nowait`](Queue::put_nowait) |
//! | `q.get()` / `q.get(timeout=t)` / `q.get_nowait()` | [`get`](Queue::get) / [`get_timeout`](Queue::get_timeout) / [`get_nowait`](Queue::get_nowait) |
//! | `queue.Full`, `queue.Empty`, `queue.ShutDown` | [`PutError`], [`GetError`], [`ShutDown`]: the refused item comes back in the error |
//! | `q.qsize()`, `q.empty()`, `q.full()` | the same |
//! | `q.task_done()`, `q.join()` | the same; `task_done` too often is [`TooManyTaskDone`]; also [`join_timeout`](Queue::join_timeout) |
//! | `q.shutdown(immediate=False)` | [`shutdown(false)`](Queue::shutdown), which returns what an immediate shutdown drained |
//!
//! The queues are shared by reference: lend `&Queue` to scoped threads
//! (`std::thread::scope`) or put it in an `Arc`. They are `Send + Sync`
//! when `T: Send`.
//!
//! # What is written by hand, and why
//!
//! No well-kept crate offers this: crossbeam's and std's channels have no
//! `task_done`/`join` (they cannot tell "taken" from "processed"), no LIFO
//! or priority order, and close only when every sender or receiver is
//! dropped, which is not Python's `shutdown` (a call on a shared queue,
//! after which the remaining items still come out). So the queue is
//! written by hand, the way CPython writes it: one lock and three
//! condition variables (`not_empty`, `not_full`, `all_tasks_done`) over a
//! container, in `engine.rs`, with the container swapped per type
//! (`store.rs`: a `VecDeque`, a `Vec`, and a `BinaryHeap` whose entries
//! carry a sequence number, which makes the priority order stable).
//!
//! A bounded `Queue` (up to 1024 slots) runs instead on a lock-free ring,
//! `ring.rs`: Vyukov's bounded queue, the design of
//! `crossbeam_channel::bounded`, with Python's shutdown as a mark bit in
//! the ring's tail and the unfinished count derived from its position.
//! That is why it is not a crossbeam channel with a wrapper: a wrapper's
//! own shutdown flag could not stop a put that has already passed it from
//! landing after an immediate shutdown drained the queue, and every put
//! would pay a second counter for `join`.
//!
//! What is borrowed: the locks and condition variables are parking_lot's
//! (through the crate's `shim`, which swaps in loom's, and loom's atomics,
//! under `--cfg loom`, so the tests in `tests/loom_queue.rs` check every
//! interleaving of the real code), and the short spins inside an operation
//! are crossbeam's `Backoff`.
//!
//! # Cost
//!
//! On the locked engine, a lock per operation is the price of `task_done`,
//! `qsize` and `shutdown` being exact; notifying only when a thread is
//! parked and spinning briefly before parking keep it small (`engine.rs`).
//! The ring keeps them exact without the lock (`ring.rs`), and waits in a
//! way tuned to a producer and a consumer running side by side
//! (`park.rs`). `benches/queue.rs` and `examples/queue_pairs.rs` measure
//! `Queue::new(100)` against `crossbeam_channel::bounded(100)`
//! (`bench/results/2026-12-03/queue-pairs.md`: 1.0x to 2.4x), and
//! `bench/python_queue.py` measures Python's `queue.Queue(maxsize=100)`.

mod engine;
mod error;
mod park;
mod ring;
mod store;
mod types;

pub use error::{GetError, PutError, ShutDown, TooManyTaskDone};
pub use types::{LifoQueue, PriorityQueue, Queue};
