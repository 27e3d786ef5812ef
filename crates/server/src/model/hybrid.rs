//! Hybrid: `--processes` worker processes, each running `--workers` threads of epoll loops or green hubs (`--green`): processes × threads × event loops or coroutines.
//!
//! **The idea.** The course closes its tour by saying that big servers mix
//! all three: processes, threads and coroutines, as uWSGI does with
//! `--processes 4 --threads 2` and gevent inside. Here each level does one
//! job:
//! - *processes* for isolation: a worker that crashes or leaks takes only
//!   its own clients with it, and the parent replaces it (the supervisor
//!   of `prefork`, `supervisor.rs`);
//! - *threads* for cores, without a process's memory per core: each thread
//!   is an epoll loop of its own (`readiness/epoll.rs`, as in `reactors`);
//! - *an event loop* for connections: thousands per thread, each a
//!   session, with no thread or stack per client (the role gevent's
//!   coroutines play in uWSGI). With `--green` each thread runs a green hub
//!   instead (`hub.rs`, as in the `green` model): a greenlet per client
//!   running the blocking echo loop, which is the course's line exactly,
//!   processes + threads + coroutines (多进程 + 线程 + 协程).
//!
//! Every thread of every process has its own `SO_REUSEPORT` listener on the
//! port, so the kernel spreads clients over `processes × workers` queues and
//! no two loops ever wait on the same one: no thundering herd at either
//! level. The only thing shared is `--max-conns`' page of counters, one per
//! process.
//!
//! **Its cost.** A process per `--processes` and a thread per loop; per
//! message, the same as `epoll`. What is gained over `prefork` is memory and
//! start-up (fewer processes for the same cores); what is gained over
//! `reactors` is isolation. On 2 cores shared with the bench's client it
//! served 0.73x one `epoll` thread's requests at 100 connections
//! (`bench/results/2026-11-27/completion-costs.md`): four loops share the
//! one core the client leaves, and each wake-up of a loop that finds one or
//! two clients ready costs what one loop would have spent on all of them.
//!
//! **When to pick it.** Machines with many cores, running code that may
//! crash or leak, where a process per core costs too much memory: the
//! shape of uWSGI, of Puma's clustered mode, of Unicorn with threads.
//!
//! **How it fails.** As `prefork` when a process dies (its clients, only),
//! and as `reactors` within a process (one slow client stalls its thread's
//! loop). On a machine with fewer cores than `processes × workers` the
//! loops take turns on the cores, which costs context switches, not
//! correctness. The defaults, 2 × 2, are there to show both levels at
//! work, not tuned: size them to the machine.

use std::io;
use std::net::TcpListener;

use crate::readiness::epoll;
use crate::{Config, Family, Flag, Model, Shutdown, hub, supervisor};

/// `--model hybrid`.
pub const MODEL: Model = Model::new(
    "hybrid",
    Family::Multiplexing,
    file!(),
    "--processes processes x --workers threads each: processes for \
     isolation, threads for cores, an epoll loop (or a green hub, --green) \
     for connections",
    serve,
)
.taking(&[Flag::Workers, Flag::Processes, Flag::Edge, Flag::Green])
.reusing_port()
.with_standing_workers(processes)
.with_variants(&[&["--green"]]);

/// Processes without `--processes`, and threads per process without
/// `--workers`: two of each, so both levels exist.
const DEFAULT: usize = 2;

/// How many worker processes: `--processes`, or 2.
fn processes(config: &Config) -> usize {
    config.processes.map_or(DEFAULT, |n| n.get())
}

/// How many threads in each process: `--workers`, or 2.
fn threads(config: &Config) -> usize {
    config.workers_or(DEFAULT)
}

/// Binds one listener per thread of every process and hands each process
/// its share to the supervisor, with the loop each thread runs, until the
/// drain is over.
///
/// # Errors
///
/// If the listeners cannot be bound, or the first workers cannot be forked.
pub fn serve(listener: TcpListener, config: &Config, shutdown: &Shutdown) -> io::Result<()> {
    let (processes, threads) = (processes(config), threads(config));
    let mut listeners = config.bind_beside(listener, processes * threads)?.into_iter();
    let groups = (0..processes)
        .map(|_| listeners.by_ref().take(threads).collect())
        .collect();
    let kind = if config.green { hub::LOOP } else { epoll::LOOP };
    supervisor::run(kind, groups, config, shutdown)
}
