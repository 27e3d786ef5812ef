//! Fork per connection: the blocking loop, once per client, each in its own process.
//!
//! **The idea.** The notes' "多进程" answer, and the classic Unix server
//! (inetd, early Apache): the parent only accepts; for each client it
//! `fork`s, and the child, a copy of the parent, serves that one client with
//! the blocking loop and exits. The child's memory is its own, so a crash or
//! a leak in one connection cannot touch another.
//!
//! **Its cost.** A `fork` per connection (page tables are copied, memory is
//! shared copy-on-write), a process per client, and a context switch per
//! message. Measured on 2 cores (`bench/results/2026-11-26/blocking-costs.md`): a
//! connect-echo-close costs about 400 us more than in the iterative model,
//! eight times what a thread costs, and each child about 90 KiB of
//! proportional memory (PSS).
//! And the bookkeeping the notes describe under 僵尸和孤儿: a child that exits
//! stays a zombie until its parent collects its exit status with `waitpid`.
//! Here a reaper thread (`reaper.rs`, shared with `prefork`'s supervisor)
//! does that the moment a child exits, so zombies never pile up.
//!
//! **When to pick it.** When isolation matters more than speed: untrusted
//! parsing, privilege separation (OpenSSH forks per connection), or code that
//! is not thread-safe.
//!
//! **How it fails.** It is the most expensive model per connection and per
//! message, and the process table is the limit; beyond `--max-conns` a
//! client is closed at once, and a failed `fork` costs only that client.
//! Stopping needs signals: on the drain the parent sends each child SIGTERM
//! (the child answers what it was sent, closes and exits); when the grace
//! period ends, SIGKILL.

use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::thread;

use nix::sys::signal::Signal;

use crate::accept::{Backoff, accept, stop_accepting};
use crate::drain::{self, Left};
use crate::reaper::{self, Children};
use crate::sys::{self, OnTerm};
use crate::{Config, EchoSession, Family, Model, Shutdown, blocking};

/// `--model fork`.
pub const MODEL: Model = Model::new(
    "fork",
    Family::Blocking,
    file!(),
    "a process per connection, reaped by the parent: isolation at fork's cost",
    serve,
);

/// Accepts clients and forks a child for each until the drain, then waits for
/// the children to finish (at most the grace period).
///
/// # Errors
///
/// If the listener breaks, or the reaper and drain threads cannot start.
pub fn serve(listener: TcpListener, config: &Config, shutdown: &Shutdown) -> io::Result<()> {
    let listener = Arc::new(listener);
    let children = watch(&listener, shutdown)?;
    // Allocated once, here: each child gets its own copy-on-write copy of a
    // fresh session. The parent never uses it.
    let mut session = EchoSession::new(config.buffer);
    let mut backoff = Backoff::default();
    while let Some(stream) = accept(&listener, shutdown, &mut backoff)? {
        if children.len() >= config.max_conns {
            tracing::debug!("at --max-conns {}: closing a new client", config.max_conns);
            continue;
        }
        let (conn, listeners) = (stream.as_raw_fd(), [listener.as_raw_fd()]);
        // Stderr's lock before the table's, held across the fork (see
        // `sys::fork`): whoever holds it, a thread logging to a full pipe,
        // never needs the table, so the drain can go on.
        let stderr = std::io::stderr().lock();
        // A child forked as the drain begins is sent SIGTERM too.
        let forked = children.spawn((), || {
            let on_term = OnTerm::DrainConnection(conn);
            sys::fork(stderr, &listeners, on_term, || {
                // In the child: serve this one client, then exit with 0 if
                // it ended cleanly, 1 if it broke off.
                let draining = sys::child_draining();
                match blocking::echo(&stream, &mut session, draining, config.idle_limit()) {
                    Ok(()) => 0,
                    Err(_) => 1,
                }
            })
        });
        // EAGAIN: out of processes or memory. This client is closed below;
        // the next one gets a fresh try.
        if let Err(error) = forked {
            tracing::warn!("cannot fork for a new client, closing it: {error}");
        }
        // Dropping `stream` closes the parent's copy of the socket; the child
        // holds its own until it is done.
    }
    children.wait_empty(shutdown);
    Ok(())
}

/// Starts the two helper threads: the reaper, which collects each child as
/// it exits, and the drain thread, which turns the drain into SIGTERM for
/// every child and the end of the grace period into SIGKILL.
fn watch(listener: &Arc<TcpListener>, shutdown: &Shutdown) -> io::Result<Arc<Children<()>>> {
    let children = Arc::new(Children::default());
    let reaped = Arc::clone(&children);
    thread::Builder::new().name("reaper".into()).spawn(move || {
        reaped.reap_forever(|_, (), status| {
            // One debug line per child that did not end cleanly.
            if !matches!(status, nix::sys::wait::WaitStatus::Exited(_, 0)) {
                tracing::debug!("{}", reaper::exit_line("child", &status));
            }
        })
    })?;
    let (drained, forced, listener) = (
        Arc::clone(&children),
        Arc::clone(&children),
        Arc::clone(listener),
    );
    drain::watch(
        shutdown,
        move || {
            stop_accepting(&listener);
            drained.signal_all(Signal::SIGTERM);
        },
        move || Left::Connections(forced.signal_all(Signal::SIGKILL)),
    )?;
    Ok(children)
}
