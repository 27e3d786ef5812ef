//! Thread pool: `--workers` threads, each an iterative server on one shared listener.
//!
//! **The idea.** The notes' improvement on thread-per-connection (线程池):
//! keep a fixed number of threads and reuse them, so threads are neither
//! created per client nor unbounded in number. Each worker runs the iterative
//! loop (`blocking::one_at_a_time`): `accept`, serve that client until it
//! leaves, `accept` again. The kernel hands each new connection to one worker blocked
//! in `accept` (an exclusive wait: no thundering herd).
//!
//! **Its cost.** No thread start-up per client (measured in `bench/results/2026-11-26/blocking-costs.md`: 12-37 us more
//! per connect-echo-close than the iterative model, against 50-120 us for a
//! new thread), and memory fixed at start: idle clients add none.
//! The price is a hard cap: `--workers` clients are served at once and the
//! next one waits, connected but unanswered, until a worker frees. The default
//! is Python's `ThreadPoolExecutor` default, `min(32, cores + 4)`.
//!
//! **When to pick it.** When each client does a bounded piece of work and
//! leaves (requests, not sessions), and the pool size was found, as the notes
//! say, "by stress testing".
//!
//! **How it fails.** "A pool always has its upper limit": with more
//! long-lived clients than workers, the extra ones are starved however idle
//! the others are. A real server would put a queue with a timeout in front,
//! or switch to a readiness model, where an idle client costs no thread.

use std::io;
use std::net::TcpListener;
use std::thread;

use crate::blocking::{Registry, one_at_a_time};
use crate::config::cores;
use crate::{Config, Family, Flag, Model, Shutdown};

/// `--model thread-pool`.
pub const MODEL: Model = Model::new(
    "thread-pool",
    Family::Blocking,
    file!(),
    "--workers threads each serve one connection at a time; the pool size \
     caps concurrent clients, the rest wait until a worker frees",
    serve,
)
.taking(&[Flag::Workers])
.with_capacity(workers);

/// The pool size: `--workers`, else `min(32, cores + 4)`.
fn workers(config: &Config) -> usize {
    config.workers_or((cores() + 4).min(32))
}

/// Runs `workers` iterative loops on `listener` until the drain, then waits
/// for every worker to finish its client.
///
/// # Errors
///
/// If a worker cannot be started, or the listener breaks.
pub fn serve(listener: TcpListener, config: &Config, shutdown: &Shutdown) -> io::Result<()> {
    let registry = Registry::new(&listener, config.max_conns, shutdown)?;
    thread::scope(|scope| {
        let mut handles = Vec::new();
        for i in 0..workers(config) {
            let (listener, registry) = (&listener, &registry);
            let handle = thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn_scoped(scope, move || {
                    let result = one_at_a_time(listener, registry, config, shutdown);
                    if result.is_err() {
                        // The listener broke under this worker, so it broke
                        // for all: stop the others rather than wait for them.
                        shutdown.force();
                    }
                    result
                });
            match handle {
                Ok(handle) => handles.push(handle),
                Err(error) => {
                    // A pool that cannot start is a failed start, not a
                    // smaller pool: stop the ones already running and say so.
                    shutdown.force();
                    return Err(error);
                }
            }
        }
        // Each worker returns when the drain shuts the listener and its
        // current client is done. Join them all; report the first failure.
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a pool worker panicked")))
            })
            .collect();
        results.into_iter().collect::<io::Result<()>>()
    })
}
