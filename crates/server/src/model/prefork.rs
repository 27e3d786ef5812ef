//! Prefork: worker processes forked up front, each an epoll loop on its own listener, kept alive by a supervising parent.
//!
//! **The idea.** The notes' 多进程 answer without `fork`'s price per client:
//! the parent binds, forks `--workers` processes once (one per core by
//! default), and from then on only supervises. Each worker is a complete
//! `epoll` server (the same loop as `model/epoll.rs`); the parent never
//! touches a client. This is the shape of nginx's master and workers, of
//! Apache's prefork MPM and of gunicorn.
//!
//! **No thundering herd.** If every worker waited on one shared listener, a
//! new client would wake them all and all but one would find nothing to
//! accept. Two cures exist: `EPOLLEXCLUSIVE` on the shared listener (the
//! kernel wakes one waiter), or one listener per worker on the same port
//! with `SO_REUSEPORT` (the kernel puts each client in one queue, by a hash
//! of its address). This model takes the second, like `reactors`: the
//! spread does not depend on which worker happens to be asleep, and the
//! parent keeps its own copy of every listener, so while a dead worker is
//! being replaced its clients wait in its queue instead of being refused.
//!
//! **Supervision** (`supervisor.rs`, shared with `hybrid`). The parent
//! reaps every worker that exits (no zombies) and forks a replacement in
//! its place, on the same listener: a crash, a leak or a `kill -9` costs
//! the clients of that one worker, never the others'. On SIGTERM the parent
//! closes its copies of the listeners and forwards the signal: each worker
//! drains like `epoll` and exits; at the end of the grace period, the
//! parent forces them.
//!
//! **What is shared.** Almost nothing: for `--max-conns`, a page of shared
//! memory with one counter per worker, summed when a client arrives
//! (`crate::admission`). A slot per worker, because a worker that dies by
//! SIGKILL cannot take its connections off a shared count; the parent
//! zeroes its slot.
//!
//! **Its cost.** A process per core instead of a thread: its own page
//! tables and a copy-on-write copy of the parent's memory, with no
//! difference per message from `reactors`. On 2 cores shared with the
//! bench's client it served 0.89x one `epoll` thread's requests at 100
//! connections (`bench/results/2026-11-27/completion-costs.md`): the server
//! has one core whatever its shape, and a second worker adds only the cost
//! of two loops sleeping and waking on it.
//!
//! **When to pick it.** When one connection's failure must not take the
//! others with it, or the code is not thread-safe, and a process per core
//! is cheap next to the work: web servers, language runtimes with a global
//! lock (the course's GIL: CPython servers scale this way).
//!
//! **How it fails.** Like `reactors`, unevenly: the hash may give one worker
//! more busy clients than another. Anything the workers must share (a cache,
//! sessions) needs shared memory or another process.

use std::io;
use std::net::TcpListener;

use crate::config::cores;
use crate::readiness::epoll;
use crate::{Config, Family, Flag, Model, Shutdown, supervisor};

/// `--model prefork`.
pub const MODEL: Model = Model::new(
    "prefork",
    Family::Multiplexing,
    file!(),
    "--workers processes forked up front, each an epoll loop on its own \
     SO_REUSEPORT listener; the parent replaces a worker that dies",
    serve,
)
.taking(&[Flag::Workers, Flag::Edge])
.reusing_port()
.with_standing_workers(workers);

/// How many worker processes: `--workers`, or one per core.
fn workers(config: &Config) -> usize {
    config.workers_or(cores())
}

/// Forks the workers, one per listener (`listener` and more bound beside
/// it), and supervises them until the drain is over.
///
/// # Errors
///
/// If the listeners cannot be bound, the shared counters cannot be mapped,
/// or the first workers cannot be forked.
pub fn serve(listener: TcpListener, config: &Config, shutdown: &Shutdown) -> io::Result<()> {
    let listeners = config.bind_beside(listener, workers(config))?;
    // A group of one listener per worker: each runs one epoll loop.
    let groups = listeners.into_iter().map(|l| vec![l]).collect();
    supervisor::run(epoll::LOOP, groups, config, shutdown)
}
