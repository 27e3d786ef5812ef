//! One epoll reactor per core: N independent `epoll` loops, each on its own thread with its own SO_REUSEPORT listener.
//!
//! **The idea.** One `epoll` loop uses one core. To use them all without
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
//! are reset rather than handed to another queue. Measured on 2 cores
//! (`bench/results/2026-11-26/readiness-costs.md`, one client thread, 100
//! connections, 64-byte requests, 5 alternated rounds): 9.79 us of server CPU
//! per request, 1.03x the `tokio-echo` peer's, at 91k requests/s against
//! single-threaded `epoll`'s 103k; in a second run (`readiness-costs-2.md`)
//! 97.5k against 103.8k, at 9.51 against 8.90 us per request; in the
//! README's matrix 72.8k, 97.2k and 99.8k at 10, 100 and 1000 connections,
//! against `epoll`'s 108.8k, 107.5k and 98.9k. On this machine the bench's
//! client needs a core too, so the second reactor competes with it instead
//! of adding one, and two threads that sleep and wake cost more CPU than
//! one: the model pays off on machines with cores to spare.
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
use std::panic::{self, AssertUnwindSafe};
use std::thread;

use crate::admission::OpenCount;
use crate::config::cores;
use crate::model::epoll;
use crate::readiness::Loop;
use crate::{Config, Shutdown};

/// How many reactors: `--workers`, or one per core.
pub(crate) fn workers(config: &Config) -> usize {
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
    let listeners = bind_beside(listener, workers(config), config)?;
    // One count of open connections for --max-conns, across all reactors.
    run_all(listeners, config, shutdown, OpenCount::default())
}

/// `listener` and `n - 1` more bound on its address with `SO_REUSEPORT`:
/// one accept queue each, for `reactors` and the process models.
///
/// # Errors
///
/// If one cannot be bound (most often: `listener` was made without
/// `SO_REUSEPORT`).
pub(crate) fn bind_beside(
    listener: TcpListener,
    n: usize,
    config: &Config,
) -> io::Result<Vec<TcpListener>> {
    let addr = listener.local_addr()?;
    let mut listeners = vec![listener];
    for _ in 1..n {
        let more = config.bind(addr, true).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot bind another listener on {addr} ({e}); reactors needs a \
                     listener with SO_REUSEPORT, as Model::listen makes"
                ),
            )
        })?;
        listeners.push(more);
    }
    Ok(listeners)
}

/// One epoll loop per listener, each on its own thread, counting in `open`,
/// until the drain is over; a single listener is served on the calling
/// thread.
///
/// # Errors
///
/// If a reactor's thread cannot start, or a reactor fails: the others are
/// then stopped and its error is returned.
pub(crate) fn run_all(
    mut listeners: Vec<TcpListener>,
    config: &Config,
    shutdown: &Shutdown,
    open: OpenCount,
) -> io::Result<()> {
    if listeners.len() == 1 {
        let listener = listeners.pop().expect("one listener");
        return epoll::run(Loop::new(listener, config, shutdown, open)?, config.edge);
    }
    thread::scope(|scope| {
        let mut reactors = Vec::new();
        for (i, listener) in listeners.into_iter().enumerate() {
            let open = open.clone();
            let reactor = thread::Builder::new()
                .name(format!("reactor-{i}"))
                .spawn_scoped(scope, move || {
                    let result = panic::catch_unwind(AssertUnwindSafe(|| {
                        Loop::new(listener, config, shutdown, open)
                            .and_then(|server| epoll::run(server, config.edge))
                    }));
                    // One reactor down, by error or panic, is a broken
                    // server: stop the rest at once, then report it.
                    if !matches!(result, Ok(Ok(()))) {
                        shutdown.force();
                    }
                    result.unwrap_or_else(|p| panic::resume_unwind(p))
                });
            match reactor {
                Ok(reactor) => reactors.push(reactor),
                Err(error) => {
                    shutdown.force();
                    return Err(error);
                }
            }
        }
        let mut outcome = Ok(());
        for reactor in reactors {
            // A reactor never panics on I/O; a panic is a bug, passed on.
            let result = reactor.join().unwrap_or_else(|p| panic::resume_unwind(p));
            if outcome.is_ok() {
                outcome = result;
            }
        }
        outcome
    })
}
