//! Green: the course's gevent server, a greenlet per connection on one thread, running the thread model's own blocking loop over cooperative sockets.
//!
//! **The idea.** The notes' coroutine server (协程): `monkey.patch_all()`,
//! then `gevent.spawn(task, client)` for each client, and
//! `gevent.spawn(runserver).join()` to keep the main line alive. A
//! coroutine is "concurrency on one thread": each client's task is plain
//! blocking code, and where it would block it switches to the hub, which
//! runs whichever task can go on and waits in epoll when none can. Here a
//! greenlet (the `green` crate) accepts, and each client's greenlet runs
//! `blocking::echo`, **the same function the `thread` model runs on a
//! thread of its own**, over `green::net::TcpStream` instead of std's.
//! That type parameter is the monkey patch: the code does not change, the
//! socket under it does. The hub and its drain are in `hub.rs`.
//!
//! **Its cost.** Per message, what `epoll` pays plus two stack switches
//! (a few ns each: corosensei saves and restores a handful of registers)
//! and the hub's bookkeeping; per client, a greenlet: a slot of reserved
//! stack of which it touches a page or two, where a thread costs a kernel
//! task and a context switch per message. Measured beside `epoll` and the
//! course's gevent server (`bench/results/2026-12-03/green-costs.md`): at
//! 100 connections it spent 0.99x `epoll`'s server CPU per request, and
//! gevent 2.8x; an idle connection cost 4.5 KiB of RSS (a stack page, the
//! greenlet's and the socket's bookkeeping; no buffer until the client
//! sends), gevent's 8.5 KiB.
//!
//! **When to pick it.** Many connections each doing a little I/O, with
//! code that reads best written blocking: the shape of gevent and eventlet
//! servers, Go's goroutines on one core, Java's virtual threads.
//! `--workers N` runs N hubs, one per thread, each on its own
//! `SO_REUSEPORT` listener (default 1, as gevent).
//!
//! **How it fails.** As the notes warn, a coroutine helps only with
//! waiting: a task that computes for long, or calls something that blocks
//! the thread instead of the greenlet, stalls every client of its hub
//! until it returns. And a stack is fixed at spawn: a greenlet that needs
//! more crashes the process with a message naming it, where a thread's
//! stack would have had megabytes.

use std::io;
use std::net::TcpListener;

use crate::admission::OpenCount;
use crate::{Config, Family, Flag, Model, Shutdown, hub, loops};

/// `--model green`.
pub const MODEL: Model = Model::new(
    "green",
    Family::Multiplexing,
    file!(),
    "gevent: a greenlet per connection on one thread (--workers hubs), \
     running the thread model's blocking loop over cooperative sockets",
    serve,
)
.taking(&[Flag::Workers])
.reusing_port()
.with_variants(&[&["--workers", "2"]]);

/// Serves with `--workers` hubs (default 1), each on its own listener and
/// thread, until the drain is over.
///
/// # Errors
///
/// If the other listeners cannot be bound, a hub's thread cannot start, or
/// a hub fails.
pub fn serve(listener: TcpListener, config: &Config, shutdown: &Shutdown) -> io::Result<()> {
    let listeners = config.bind_beside(listener, config.workers_or(1))?;
    loops::run_each(hub::LOOP, listeners, config, shutdown, OpenCount::default())
}
