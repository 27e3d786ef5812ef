//! Thread per connection: the blocking loop, once per client, each on its own thread.
//!
//! **The idea.** The notes' first answer to the blocking server (多线程): give
//! every connection its own thread, so a client that blocks only blocks its
//! own thread. The code of each thread is the iterative server's inner loop,
//! unchanged; the kernel's scheduler does the multiplexing.
//!
//! **Its cost.** A thread per client: a stack (we ask for 128 KiB, not the
//! default 2 MiB, since the echo loop keeps its buffer on the heap), a kernel
//! task, and a context switch for every message, since each reply wakes a
//! different thread. Measured on 2 cores (`bench/results/2026-11-26/blocking-costs.md`): a
//! connect-echo-close costs 50-120 us more than in the iterative model, and
//! an idle connection about 24 KiB of memory (the pages its stack and buffer
//! actually touched).
//!
//! **When to pick it.** Up to a few thousand connections with simple,
//! blocking code: it is the easiest model to get right, and with few clients
//! it is as fast as any.
//!
//! **How it fails.** As the notes warn, "when concurrency is very high the
//! server may be unable to start new threads, and with no limit it collapses":
//! memory and scheduler time grow with idle clients. Here `--max-conns` is the
//! limit, and a thread that cannot be started costs only the client that
//! needed it.

use std::io;
use std::net::TcpListener;
use std::thread;

use crate::accept::{Backoff, accept};
use crate::blocking::Registry;
use crate::{Config, EchoSession, Family, Model, Shutdown};

/// `--model thread`.
pub const MODEL: Model = Model::new(
    "thread",
    Family::Blocking,
    file!(),
    "a thread per connection; each blocks on its own client",
    serve,
);

/// Stack size for connection threads. A connection thread touches 8 KiB of
/// it, also one whose reply outgrows its buffer (`bench/stack_use.py`, 100
/// and 1,000 clients); only touched pages are memory, so the rest, 16 times
/// that for a panic's unwinding or a log line's formatting, costs address
/// space alone. Each thread also costs four mappings (its stack, the stack's
/// guard page, and the signal stack std gives every thread, with its own
/// guard: 8,074 for 2,003 threads), so `vm.max_map_count` (65,530 here)
/// stops this model near 16,370 clients whatever `--max-conns` says; past
/// it, `spawn` fails with EAGAIN and only the client that needed the
/// thread is closed.
const STACK_SIZE: usize = 128 * 1024;

/// Accepts clients and serves each on a new thread until the drain, then waits
/// for them to finish (at most the grace period).
///
/// # Errors
///
/// If the listener breaks, or the drain thread cannot start.
pub fn serve(listener: TcpListener, config: &Config, shutdown: &Shutdown) -> io::Result<()> {
    let registry = Registry::new(&listener, config.max_conns, shutdown)?;
    let mut backoff = Backoff::default();
    while let Some(stream) = accept(&listener, shutdown, &mut backoff)? {
        // Beyond --max-conns the client is closed here, before any thread.
        let Some(conn) = registry.admit(stream) else {
            continue;
        };
        let (buffer, idle) = (config.buffer, config.idle_limit());
        let spawned = thread::Builder::new()
            .name("conn".into())
            .stack_size(STACK_SIZE)
            .spawn(move || {
                // The session is allocated by the thread that uses it.
                let mut session = EchoSession::new(buffer);
                conn.echo(&mut session, idle);
            });
        // Out of threads (EAGAIN) or memory: the closure, and the connection
        // in it, are dropped, which closes this one client. The next accept
        // tries again.
        if let Err(error) = spawned {
            tracing::warn!("cannot start a thread for a new client, closing it: {error}");
        }
    }
    // Draining: each thread ends when its client is done, or when the grace
    // period is over and the drain thread shuts the sockets.
    registry.wait_empty(shutdown);
    Ok(())
}
