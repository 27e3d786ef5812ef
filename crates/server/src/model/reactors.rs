//! One epoll reactor per core: N independent epoll loops, each on its own thread with its own SO_REUSEPORT listener.
//!
//! **The idea.** One `epoll` loop (`readiness/epoll.rs`) uses one core. To use them all without
//! sharing anything, run one loop per core, each a complete server: its own
//! thread, its own epoll, its own connections and its own listening socket.
//! All the listeners are bound to the same address with `SO_REUSEPORT`, and
//! the kernel spreads new clients over their queues by a hash of the client's
//! address and port. A connection lives its whole life on one thread: no
//! locks, no cache lines bouncing between cores, no thundering herd (each
//! queue wakes only its own loop). This is nginx with `reuseport` and one
//! worker per core, and the shape of Seastar's shard-per-core design.
//!
//! **What is shared.** One counter of open connections, so `--max-conns`
//! holds for the server as a whole; it is touched when a client arrives or
//! leaves, never per message. And the [`Shutdown`], read once per turn.
//!
//! **Its cost.** A thread per core and a listener per thread. The spread is by
//! hash, not by load: a reactor that drew a few heavy clients stays busy
//! while another idles, and nothing moves a connection afterwards (a
//! work-stealing runtime like tokio's does, at the price of sharing). When a
//! reactor's listener closes, the clients queued on it (not yet accepted)
//! are reset rather than handed to another queue. On 2 cores shared with
//! the bench's client it served 0.88x one `epoll` thread's requests at 100
//! connections (`bench/results/2026-11-27/completion-costs.md`; more in
//! `bench/results/2026-11-26/`): the second reactor competes with the
//! client for a core instead of adding one, and two threads that sleep and
//! wake cost more CPU than one. The model pays off on machines with cores
//! to spare.
//!
//! **When to pick it.** Many connections and more than one core, with
//! requests that are short and alike: HTTP front ends, caches, proxies.
//!
//! **How it fails.** Unevenly: with few connections the hash may put them on
//! the same reactor, and one slow client stalls the others on its thread.
//!
//! The listener this model is given must have `SO_REUSEPORT` set before it
//! was bound, or the other reactors cannot bind beside it:
//! [`Model::listen`](crate::Model::listen) makes it so.

use std::io;
use std::net::TcpListener;

use crate::admission::OpenCount;
use crate::config::cores;
use crate::loops;
use crate::readiness::epoll;
use crate::{Config, Family, Flag, Model, Shutdown};

/// `--model reactors`.
pub const MODEL: Model = Model::new(
    "reactors",
    Family::Multiplexing,
    file!(),
    "one epoll loop per core (--workers), each with its own SO_REUSEPORT \
     listener: nothing shared on the hot path",
    serve,
)
.taking(&[Flag::Workers, Flag::Edge])
.reusing_port();

/// How many reactors: `--workers`, or one per core.
fn workers(config: &Config) -> usize {
    config.workers_or(cores())
}

/// Serves on `listener` and on `workers - 1` more listeners bound beside it,
/// one epoll loop each, until the drain is over.
///
/// # Errors
///
/// If the other listeners cannot be bound (most often: `listener` was made
/// without `SO_REUSEPORT`) or a reactor's thread cannot start; if one
/// reactor fails, the others are stopped and its error is returned.
pub fn serve(listener: TcpListener, config: &Config, shutdown: &Shutdown) -> io::Result<()> {
    let listeners = config.bind_beside(listener, workers(config))?;
    // One count of open connections for --max-conns, across all reactors.
    loops::run_each(epoll::LOOP, listeners, config, shutdown, OpenCount::default())
}
