//! A server's live child processes and their reaping, shared by `fork` (a child per connection) and the supervisor (worker processes).
//!
//! Two rules make signalling a child safe. A child's pid enters the table
//! in the same critical section that forks it, so the reaper can never
//! collect a child the table does not know yet. And the reaper learns which
//! child exited with `waitid(WNOWAIT)`, which leaves it a zombie, and only
//! then, under the table's lock, drops its pid and reaps it: while a pid is
//! in the table it cannot have been reused, so [`Children::signal_all`]
//! never signals a stranger.

use std::collections::HashMap;
use std::io;
use std::sync::{Condvar, Mutex, MutexGuard};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::Pid;

use crate::Shutdown;

/// The live children, each with what its parent keeps about it (`T`).
#[derive(Debug)]
pub(crate) struct Children<T> {
    state: Mutex<Table<T>>,
    changed: Condvar,
}

#[derive(Debug)]
struct Table<T> {
    /// Forked and not yet reaped: their pids cannot be reused.
    live: HashMap<Pid, T>,
    /// Sent to every child by [`Children::signal_all`], and to every child
    /// forked after it: one forked just as the drain began is told too.
    stopping: Option<Signal>,
}

/// What one look for an exited child found.
#[derive(Debug)]
pub(crate) enum Reaped<T> {
    /// This child exited, and is reaped.
    Exited(Pid, T, WaitStatus),
    /// Every child is still running (only when not blocking).
    Running,
    /// The process has no children at all.
    None,
}

impl<T> Default for Children<T> {
    fn default() -> Self {
        Self {
            state: Mutex::new(Table {
                live: HashMap::new(),
                stopping: None,
            }),
            changed: Condvar::new(),
        }
    }
}

impl<T> Children<T> {
    /// Forks with `fork`, holding the table's lock across it, and records
    /// the child with `value`. A child forked after [`signal_all`]
    /// (Self::signal_all) gets the same signal at once.
    ///
    /// # Errors
    ///
    /// `fork`'s.
    pub(crate) fn spawn(
        &self,
        value: T,
        fork: impl FnOnce() -> io::Result<Pid>,
    ) -> io::Result<Pid> {
        let mut table = self.lock();
        let pid = fork()?;
        table.live.insert(pid, value);
        if let Some(signal) = table.stopping {
            // The child has its dispositions by the time this is delivered:
            // both stop signals are blocked across the fork.
            let _ = kill(pid, signal);
        }
        self.changed.notify_all();
        Ok(pid)
    }

    /// How many children are alive (or exited, not yet reaped).
    pub(crate) fn len(&self) -> usize {
        self.lock().live.len()
    }

    /// Whether some live child holds a value for which `found` is true.
    pub(crate) fn any(&self, mut found: impl FnMut(&T) -> bool) -> bool {
        self.lock().live.values().any(&mut found)
    }

    /// Sends `signal` to every live child, and to every child forked from
    /// now on; returns how many it reached.
    pub(crate) fn signal_all(&self, signal: Signal) -> usize {
        let mut table = self.lock();
        table.stopping = Some(signal);
        for &pid in table.live.keys() {
            // ESRCH only: a zombie the reaper is about to collect.
            let _ = kill(pid, signal);
        }
        table.live.len()
    }

    /// Reaps one child that exited: waits for one if `block`, else looks
    /// only. See the module docs for why in two steps.
    pub(crate) fn reap(&self, block: bool) -> Reaped<T> {
        let mut flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
        if !block {
            flags |= WaitPidFlag::WNOHANG;
        }
        loop {
            let status = match waitid(Id::All, flags) {
                Ok(WaitStatus::StillAlive) => return Reaped::Running,
                Ok(status) => status,
                Err(Errno::EINTR) => continue,
                Err(_) => return Reaped::None,
            };
            let Some(pid) = status.pid() else { continue };
            let mut table = self.lock();
            let _ = waitpid(pid, None);
            // A child this table did not fork (the embedding program's) is
            // reaped all the same: nobody else here waits for it.
            let Some(value) = table.live.remove(&pid) else {
                continue;
            };
            self.changed.notify_all();
            return Reaped::Exited(pid, value, status);
        }
    }

    /// Reaps children for as long as the process lives, calling `exited`
    /// for each; sleeps while there are none (waiting then would return at
    /// once, for ever).
    pub(crate) fn reap_forever(&self, mut exited: impl FnMut(Pid, T, WaitStatus)) -> ! {
        loop {
            {
                let mut table = self.lock();
                while table.live.is_empty() {
                    table = self.changed.wait(table).unwrap_or_else(|e| e.into_inner());
                }
            }
            match self.reap(true) {
                Reaped::Exited(pid, value, status) => exited(pid, value, status),
                Reaped::Running => {}
                // Children recorded, yet none exist: someone else reaped
                // them (only a program embedding this server that waits on
                // its own can). Forget them rather than spin.
                Reaped::None => {
                    self.lock().live.clear();
                    self.changed.notify_all();
                }
            }
        }
    }

    /// Blocks until every child has been reaped, or shortly after the stop
    /// is forced (see [`Shutdown::wait_while`]).
    pub(crate) fn wait_empty(&self, shutdown: &Shutdown) {
        shutdown.wait_while(self.lock(), &self.changed, |table| !table.live.is_empty());
    }

    fn lock(&self) -> MutexGuard<'_, Table<T>> {
        // Critical sections are map inserts and removes; a poisoned lock
        // still holds a consistent table.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How a child ended, in one sentence: "`who` (pid P) exited with 1", "...
/// was killed by SIGKILL". The one exit line of `fork` and the supervisor.
pub(crate) fn exit_line(who: &str, status: &WaitStatus) -> String {
    match status {
        WaitStatus::Exited(pid, code) => format!("{who} (pid {pid}) exited with {code}"),
        WaitStatus::Signaled(pid, signal, _) => format!("{who} (pid {pid}) was killed by {signal}"),
        other => format!("{who} changed state: {other:?}"),
    }
}
