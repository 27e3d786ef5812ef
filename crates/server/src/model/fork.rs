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
//! message. Measured here (`bench/blocking_costs.py`, 2 cores): a
//! connect-echo-close costs about 400 us more than in the iterative model,
//! eight times what a thread costs, and each child about 90 KiB of
//! proportional memory (PSS).
//! And the bookkeeping the notes describe under 僵尸和孤儿: a child that exits
//! stays a zombie until its parent collects its exit status with `waitpid`.
//! Here a reaper thread does that the moment a child exits, so zombies never
//! pile up.
//!
//! **When to pick it.** When isolation matters more than speed: untrusted
//! parsing, privilege separation (OpenSSH forks per connection), or code that
//! is not thread-safe.
//!
//! **How it fails.** It is the most expensive model per connection and per
//! message, and the process table is the limit; beyond `--max-conns` a
//! client is closed at once, and a failed `fork` costs only that client.
//! Stopping needs signals: on the drain the parent sends each child SIGTERM
//! (the child stops reading, flushes, exits); when the grace period ends,
//! SIGKILL.

use std::collections::HashSet;
use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::Pid;

use crate::accept::{Backoff, accept, stop_accepting};
use crate::{Config, EchoSession, Shutdown, blocking, sys};

/// Accepts clients and forks a child for each until the drain, then waits for
/// the children to finish (at most the grace period).
///
/// # Errors
///
/// If the listener breaks, or the reaper and watcher threads cannot start.
pub fn serve(listener: TcpListener, config: &Config, shutdown: &Shutdown) -> io::Result<()> {
    let listener = Arc::new(listener);
    let children = Children::watch(&listener, shutdown)?;
    // Allocated once, here: each child gets its own copy-on-write copy of a
    // fresh session. The parent never uses it.
    let mut session = EchoSession::new(config.buffer);
    let mut backoff = Backoff::default();
    while let Some(stream) = accept(&listener, shutdown, &mut backoff)? {
        // The lock is held across the fork, so the reaper cannot collect the
        // child before its pid is recorded.
        let mut live = children.lock();
        if live.pids.len() >= config.max_conns {
            tracing::debug!("at --max-conns {}: closing a new client", config.max_conns);
            continue;
        }
        let forked = sys::fork_child(stream.as_raw_fd(), &[listener.as_raw_fd()], || {
            // In the child: serve this one client, then exit with 0 if it
            // ended cleanly, 1 if it broke off.
            match blocking::echo(&stream, &mut session) {
                Ok(()) => 0,
                Err(_) => 1,
            }
        });
        match forked {
            Ok(pid) => {
                live.pids.insert(pid);
                // Admitted just as the drain began: tell it now, as the
                // watcher told the others. (The child has its handler by
                // the time the signal is delivered; see `sys::fork_child`.)
                if live.draining {
                    let _ = kill(pid, Signal::SIGTERM);
                }
                children.changed.notify_all();
            }
            // EAGAIN: out of processes or memory. This client is closed
            // below; the next one gets a fresh try.
            Err(error) => tracing::warn!("cannot fork for a new client, closing it: {error}"),
        }
        // Dropping `stream` closes the parent's copy of the socket; the child
        // holds its own until it is done.
    }
    children.wait_empty(shutdown);
    Ok(())
}

/// The live children, shared with the reaper and the drain watcher.
#[derive(Debug, Default)]
struct Children {
    state: Mutex<Live>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Live {
    /// Children forked and not yet reaped: their pids cannot be reused, so
    /// signalling them is safe.
    pids: HashSet<Pid>,
    draining: bool,
}

impl Children {
    /// Starts the two helper threads: the reaper, which collects each child
    /// as it exits, and the watcher, which turns the drain into SIGTERM for
    /// every child and the end of the grace period into SIGKILL.
    fn watch(listener: &Arc<TcpListener>, shutdown: &Shutdown) -> io::Result<Arc<Self>> {
        let children = Arc::new(Self::default());
        let reaped = Arc::clone(&children);
        thread::Builder::new()
            .name("reaper".into())
            .spawn(move || reaped.reap_forever())?;
        let (watched, listener, shutdown) = (
            Arc::clone(&children),
            Arc::clone(listener),
            shutdown.clone(),
        );
        thread::Builder::new().name("drain".into()).spawn(move || {
            shutdown.wait_draining();
            stop_accepting(&listener);
            watched.signal_all(Signal::SIGTERM);
            shutdown.wait_forced();
            watched.signal_all(Signal::SIGKILL);
        })?;
        Ok(children)
    }

    /// Collects children as they exit, so none stays a zombie.
    ///
    /// `waitid(WNOWAIT)` learns which child exited *without* reaping it; the
    /// pid is dropped from the set and only then reaped, under the lock, so
    /// the watcher can never signal a pid that was reaped and reused.
    fn reap_forever(&self) {
        loop {
            {
                let mut live = self.lock();
                while live.pids.is_empty() {
                    live = self.changed.wait(live).unwrap_or_else(|e| e.into_inner());
                }
            }
            match waitid(Id::All, WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                Ok(status) => {
                    let Some(pid) = status.pid() else { continue };
                    let mut live = self.lock();
                    live.pids.remove(&pid);
                    let _ = waitpid(pid, None);
                    log_exit(status);
                    self.changed.notify_all();
                }
                Err(Errno::EINTR) => {}
                // No children at all, yet some recorded: they were reaped by
                // someone else (only possible if the program embedding this
                // model waits on its own). Forget them rather than spin.
                Err(_) => {
                    self.lock().pids.clear();
                    self.changed.notify_all();
                }
            }
        }
    }

    /// Signals every live child, and marks the drain as begun so a child
    /// forked from now on is told too.
    fn signal_all(&self, signal: Signal) {
        let mut live = self.lock();
        live.draining = true;
        for &pid in &live.pids {
            // ESRCH only: the child is a zombie the reaper is about to collect.
            let _ = kill(pid, signal);
        }
    }

    /// Blocks until every child has been reaped, or shortly after the stop
    /// is forced, when every child was sent SIGKILL.
    fn wait_empty(&self, shutdown: &Shutdown) {
        shutdown.wait_while(self.lock(), &self.changed, |live| !live.pids.is_empty());
    }

    fn lock(&self) -> MutexGuard<'_, Live> {
        // Critical sections are set inserts and removes; a poisoned lock
        // still holds a consistent set.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One debug line per child that did not end cleanly.
fn log_exit(status: WaitStatus) {
    match status {
        WaitStatus::Exited(_, 0) => {}
        WaitStatus::Exited(pid, code) => tracing::debug!("child {pid} exited with {code}"),
        WaitStatus::Signaled(pid, signal, _) => tracing::debug!("child {pid} killed by {signal}"),
        other => tracing::debug!("child changed state: {other:?}"),
    }
}
