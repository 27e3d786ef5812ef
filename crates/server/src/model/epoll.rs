//! epoll: one thread, one kernel-kept interest list, and a wait that returns only what is ready.
//!
//! **The idea.** The notes end their look at `select` with "the final answer
//! is epoll": instead of handing the kernel the whole set of descriptors on
//! every call and scanning it again on return, the server registers each
//! descriptor once (`epoll_ctl`), and the kernel keeps a ready list that
//! sockets add themselves to when their state changes. `epoll_wait` copies
//! out only the ready ones, so a wait costs O(ready), not O(watched): idle
//! clients cost nothing per message. The loop is in `readiness/epoll.rs`,
//! shared with `reactors`, `prefork` and `hybrid`, which run it on more
//! threads and processes.
//!
//! **Level- or edge-triggered.** Level-triggered (the default) reports a
//! descriptor on every wait for as long as it is ready, exactly like `poll`:
//! the loop may read once and leave the rest for the next wait, and it must
//! stop watching what it cannot use (a full client for reading, a client
//! that owes nothing for writing), or the wait returns at once, for ever.
//! Edge-triggered (`--edge`) reports a descriptor only when it *becomes*
//! ready: registered once for reading and writing, never changed, but the
//! loop must then read and write until `EAGAIN` every time, since bytes left
//! behind get no second report. For this echo, level-triggered is the better
//! fit: a message is one `read` and one `write`, where edge-triggered pays a
//! third call, the `read` that says `EAGAIN`; the `epoll_ctl` calls it saves
//! happen only when a client stops reading. Edge-triggered wins when
//! interest would change on most turns, or with several threads on one
//! epoll (with `EPOLLONESHOT` or `EPOLLEXCLUSIVE`), where level-triggered
//! wakes every thread for the same descriptor.
//!
//! **Its cost.** Per message: one `read`, one `write`, and a share of one
//! `epoll_wait` (a wait returns every client that is ready, up to 1024). All
//! on one thread: no locks, no context switches, and the server's memory is
//! one session buffer per client that has sent anything (a silent one
//! holds none) plus the kernel's socket buffers. With 10
//! busy clients beside 1000 silent ones it spent 8.4 us of server CPU per
//! request, where `poll` paid 52 and `select` 71
//! (`bench/results/2026-11-26/readiness-costs.md`; that folder and
//! `bench/results/2026-11-27/` have the rest, `--edge` included).
//!
//! **Why not far below tokio.** A profile of both under load
//! (`bench/results/2026-11-26/epoll-cpu-floor.md`) puts 88% of this loop's
//! time in the kernel's `send` and `recv`, the same work for any server:
//! the floor for a readiness loop is near 0.88x tokio-echo's CPU here.
//!
//! **Why it is the default of `serve`.** With every connection busy,
//! `select`, `poll` and `epoll` are within about 10% of each other; beside
//! a silent crowd only `epoll` keeps its rate. `uring` was faster still,
//! but needs Linux 5.19 and an io_uring no sysctl or seccomp profile has
//! switched off: the default is the fastest model that runs everywhere.
//!
//! **When to pick it.** Many connections, each doing little: this is how
//! nginx, Redis, Node.js and tokio wait. One thread uses one core; `reactors`
//! runs one such loop per core.
//!
//! **How it fails.** Work that takes long stalls every client of the loop:
//! the loop must never block, and must never compute for long on one client.

use std::io;
use std::net::TcpListener;

use crate::readiness::{Loop, epoll};
use crate::{Config, Family, Flag, Model, Shutdown};

/// `--model epoll`.
pub const MODEL: Model = Model::new(
    "epoll",
    Family::Multiplexing,
    file!(),
    "one thread, epoll: the kernel keeps the interest list, a wait returns only \
     the ready sockets (level-triggered; --edge for edge-triggered)",
    serve,
)
.taking(&[Flag::Edge])
.with_variants(&[&["--edge"]]);

/// Serves on `listener` with one epoll loop, level-triggered unless
/// `config.edge`, until the drain is over.
///
/// # Errors
///
/// If epoll cannot be created, or the listener breaks.
pub fn serve(listener: TcpListener, config: &Config, shutdown: &Shutdown) -> io::Result<()> {
    epoll::run(Loop::single(listener, config, shutdown)?, config.edge)
}
