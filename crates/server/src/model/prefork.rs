//! Prefork: worker processes forked up front, each an epoll loop on its own listener, kept alive by a supervising parent.
//!
//! **The idea.** The notes' 多进程 answer without `fork`'s price per client:
//! the parent binds, forks `--workers` processes once (one per core by
//! default), and from then on only supervises. Each worker is a complete
//! `epoll` server (the same loop as `model/epoll.rs`); the parent never
//! touches a client. This is the shape of nginx's master and workers, of
//! Apache's prefork MPM and of gunicorn.
//!
//! **No thundering herd.** If every worker waited on one shared listener, a
//! new client would wake them all and all but one would find nothing to
//! accept. Two cures exist: `EPOLLEXCLUSIVE` on the shared listener (the
//! kernel wakes one waiter), or one listener per worker on the same port
//! with `SO_REUSEPORT` (the kernel puts each client in one queue, by a hash
//! of its address). This model takes the second, like `reactors`: the
//! spread does not depend on which worker happens to be asleep, and the
//! parent keeps its own copy of every listener, so while a dead worker is
//! being replaced its clients wait in its queue instead of being refused.
//!
//! **Supervision.** The parent reaps every worker that exits (no zombies)
//! and forks a replacement in its place, on the same listener: a crash, a
//! leak or a `kill -9` costs the clients of that one worker, never the
//! others'. A worker that dies within a second of its start is replaced
//! after a pause that doubles up to 5 s, so a worker that cannot start does
//! not turn into a fork loop. On SIGTERM the parent closes its copies of
//! the listeners and forwards the signal: each worker drains like `epoll`
//! (no new clients, every reply flushed) and exits; when the grace period
//! ends, or on a second signal, the parent forwards the forced stop (a
//! second SIGTERM: the worker closes what is left) and sends SIGKILL a
//! second later to any worker still there. A worker whose parent dies
//! gets SIGTERM (`PR_SET_PDEATHSIG`) and drains too.
//!
//! **What is shared.** Almost nothing: for `--max-conns`, a page of shared
//! memory with one counter per worker, summed when a client arrives
//! (`crate::admission`). A slot per worker, because a worker that dies by
//! SIGKILL cannot take its connections off a shared count; the parent
//! zeroes its slot.
//!
//! **Its cost.** A process per core instead of a thread: its own page
//! tables and a copy-on-write copy of the parent's memory, with no
//! difference per message from `reactors`. Measured on 2 cores
//! (`bench/results/2026-11-27/completion-costs.md`, one client thread, 100
//! connections, 64-byte requests, 5 alternated rounds): 99.8k requests/s,
//! 0.89x single-threaded `epoll`'s 110.8k, like `reactors` (0.88x). The
//! bench's client needs a core of its own (0.88 of one here), so the
//! server has the other one whatever its shape: a second worker cannot add
//! a core, only the cost of two loops sleeping and waking on one.
//!
//! **When to pick it.** When one connection's failure must not take the
//! others with it, or the code is not thread-safe, and a process per core
//! is cheap next to the work: web servers, language runtimes with a global
//! lock (the course's GIL: CPython servers scale this way).
//!
//! **How it fails.** Like `reactors`, unevenly: the hash may give one worker
//! more busy clients than another. Anything the workers must share (a cache,
//! sessions) needs shared memory or another process.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::Pid;

use crate::admission::OpenCount;
use crate::config::cores;
use crate::model::reactors;
use crate::sys::{self, SharedCounters};
use crate::{Config, Shutdown};

/// How many worker processes: `--workers`, or one per core.
pub(crate) fn workers(config: &Config) -> usize {
    config.workers_or(cores())
}

/// Forks the workers, one per listener (`listener` and more bound beside
/// it), and supervises them until the drain is over.
///
/// # Errors
///
/// If the listeners cannot be bound, the shared counters cannot be mapped,
/// or the first workers cannot be forked.
pub fn serve(listener: TcpListener, config: &Config, shutdown: &Shutdown) -> io::Result<()> {
    let listeners = reactors::bind_beside(listener, workers(config), config)?;
    supervise(
        listeners.into_iter().map(|l| vec![l]).collect(),
        config,
        shutdown,
    )
}

/// Runs one worker process per group of listeners, each serving its group
/// with one epoll loop per listener ([`reactors::run_all`]), and replaces
/// any worker that dies, until the drain is over: `prefork` with a
/// listener per worker, `hybrid` with several.
///
/// # Errors
///
/// As [`serve`].
pub(crate) fn supervise(
    groups: Vec<Vec<TcpListener>>,
    config: &Config,
    shutdown: &Shutdown,
) -> io::Result<()> {
    // Inherited as "ignore", SIGCHLD would make the kernel reap the workers
    // itself: `waitid` would never report one, and its pid, reused, could
    // be signalled.
    sys::default_sigchld()?;
    let supervisor = Arc::new(Supervisor {
        counters: Arc::new(SharedCounters::new(groups.len())?),
        config: config.clone(),
        state: Mutex::new(State {
            workers: groups.into_iter().map(Worker::new).collect(),
            draining: false,
        }),
    });
    let n = supervisor.lock().workers.len();
    let mut started = (0..n).try_for_each(|i| supervisor.start(i));
    if started.is_ok() {
        tracing::debug!("{n} workers started");
        let (watched, stop) = (Arc::clone(&supervisor), shutdown.clone());
        started = thread::Builder::new()
            .name("drain".into())
            .spawn(move || watched.stop_when_told(&stop))
            .map(drop);
    }
    if let Err(error) = started {
        // Do not leave the ones already forked behind, unsupervised.
        supervisor.signal_all(Signal::SIGKILL);
        supervisor.reap_all();
        return Err(error);
    }
    supervisor.reap_and_replace(shutdown);
    Ok(())
}

/// The parent's view of its workers.
#[derive(Debug)]
struct Supervisor {
    /// One counter of open connections per worker, in shared memory.
    counters: Arc<SharedCounters>,
    config: Config,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    workers: Vec<Worker>,
    /// Set at the start of the drain: from then on nobody is replaced.
    draining: bool,
}

/// One worker's place: its listeners (the parent's copies, kept so that a
/// replacement serves the same queues), and who holds it now.
#[derive(Debug)]
struct Worker {
    listeners: Vec<TcpListener>,
    /// The live worker, if any. A pid is cleared in the same critical
    /// section that reaps it, so a pid found here is never a reused one.
    pid: Option<Pid>,
    started: Instant,
    /// Deaths in a row within [`QUICK_DEATH`] of the start.
    quick_deaths: u32,
    /// With no live worker: when to fork the next one.
    restart_at: Option<Instant>,
}

/// A worker that dies sooner than this after its start is replaced after a
/// pause: it may be failing at start, and would fail again at once.
const QUICK_DEATH: Duration = Duration::from_secs(1);

/// How often the reaper looks for exits while a restart is pending: it
/// cannot block in `waitid` then, since nothing would wake it in time.
const POLL: Duration = Duration::from_millis(50);

impl Worker {
    fn new(listeners: Vec<TcpListener>) -> Self {
        Self {
            listeners,
            pid: None,
            started: Instant::now(),
            quick_deaths: 0,
            restart_at: None,
        }
    }

    /// The pause before replacing this worker, which just died: none after
    /// a normal life, else 100 ms doubling per quick death up to 5 s.
    fn pause_before_restart(&mut self) -> Duration {
        if self.started.elapsed() >= QUICK_DEATH {
            self.quick_deaths = 0;
            return Duration::ZERO;
        }
        self.quick_deaths += 1;
        let doubled = Duration::from_millis(100) * 2u32.saturating_pow(self.quick_deaths - 1);
        doubled.min(Duration::from_secs(5))
    }
}

impl Supervisor {
    /// Forks worker `i` on its listeners, unless the drain has begun; if
    /// the fork fails, tries again a second later.
    fn start(&self, i: usize) -> io::Result<()> {
        // Stderr's lock is taken before the table's and held across the
        // fork (see `sys::fork_worker`): whoever holds it, a thread logging
        // to a full pipe, never needs the table, so the drain can go on.
        let stderr = io::stderr().lock();
        let mut state = self.lock();
        if state.draining {
            return Ok(());
        }
        // The child closes every copy the parent holds, its own group's
        // included, and serves on clones: a copy left open in a worker
        // would keep that port's queue alive after the drain.
        let parents: Vec<RawFd> = (state.workers.iter())
            .flat_map(|w| w.listeners.iter().map(AsRawFd::as_raw_fd))
            .collect();
        let own = (state.workers[i].listeners.iter())
            .map(TcpListener::try_clone)
            .collect::<io::Result<Vec<_>>>();
        let (config, counters) = (&self.config, Arc::clone(&self.counters));
        // The table's lock is held across the fork, so the drain's SIGTERM
        // reaches this worker: either it is recorded before `drain` reads
        // the table, or it is never forked.
        let forked = own.and_then(|own| {
            sys::fork_worker(stderr, &parents, move || {
                run_worker(own, config, counters, i)
            })
        });
        let worker = &mut state.workers[i];
        match forked {
            Ok(pid) => {
                worker.pid = Some(pid);
                worker.started = Instant::now();
                worker.restart_at = None;
                Ok(())
            }
            Err(error) => {
                worker.restart_at = Some(Instant::now() + Duration::from_secs(1));
                Err(error)
            }
        }
    }

    /// Reaps every worker that exits and replaces it when its pause is
    /// over, until the drain has begun and every worker is gone.
    fn reap_and_replace(&self, shutdown: &Shutdown) {
        loop {
            let next = self.restart_due(shutdown);
            // Block until a worker exits, unless a restart is pending:
            // then look and sleep in short steps until it is due.
            let mut flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
            if next.is_some() {
                flags |= WaitPidFlag::WNOHANG;
            }
            // WNOWAIT: learn who exited without reaping it yet; the pid is
            // cleared and reaped together below, under the lock.
            let status = match waitid(Id::All, flags) {
                Ok(WaitStatus::StillAlive) => {
                    let until =
                        next.map_or(POLL, |at| at.saturating_duration_since(Instant::now()));
                    shutdown.sleep(until.min(POLL));
                    continue;
                }
                Ok(status) => status,
                Err(Errno::EINTR) => continue,
                // No children at all: every worker is gone.
                Err(_) => {
                    if self.lock().draining || shutdown.is_draining() {
                        return;
                    }
                    // Every start failed: the next try is a second away.
                    shutdown.sleep(Duration::from_secs(1));
                    continue;
                }
            };
            let Some(pid) = status.pid() else { continue };
            let mut state = self.lock();
            let _ = waitpid(pid, None);
            let Some(i) = state.workers.iter().position(|w| w.pid == Some(pid)) else {
                continue;
            };
            let draining = state.draining;
            let worker = &mut state.workers[i];
            worker.pid = None;
            // Its connections died with it.
            self.counters.slots()[i].store(0, Ordering::SeqCst);
            let pause = (!draining).then(|| worker.pause_before_restart());
            if let Some(pause) = pause {
                worker.restart_at = Some(Instant::now() + pause);
            }
            let all_gone = state.workers.iter().all(|w| w.pid.is_none());
            // Logged with the table unlocked: a full stderr must not hold
            // up the drain.
            drop(state);
            log_exit(i, status, pause);
            if draining && all_gone {
                return;
            }
        }
    }

    /// Forks every missing worker whose pause is over; returns when the
    /// next pending one is due, if any. Nothing is pending once the drain
    /// has begun.
    fn restart_due(&self, shutdown: &Shutdown) -> Option<Instant> {
        if shutdown.is_draining() {
            return None;
        }
        let now = Instant::now();
        let due: Vec<usize> = (self.lock().workers.iter().enumerate())
            .filter(|(_, w)| w.pid.is_none() && w.restart_at.is_some_and(|at| at <= now))
            .map(|(i, _)| i)
            .collect();
        for i in due {
            if let Err(error) = self.start(i) {
                tracing::warn!("cannot fork worker {i}, trying again in 1 s: {error}");
            }
        }
        let state = self.lock();
        if state.draining {
            return None;
        }
        (state.workers.iter())
            .filter(|w| w.pid.is_none())
            .filter_map(|w| w.restart_at)
            .min()
    }

    /// The drain thread: forwards the drain, then the forced stop.
    fn stop_when_told(&self, shutdown: &Shutdown) {
        shutdown.wait_draining();
        self.drain();
        shutdown.wait_forced();
        // A second SIGTERM is a worker's own forced stop: it closes its
        // connections and exits. SIGKILL for any that has not, a moment on.
        self.signal_all(Signal::SIGTERM);
        thread::sleep(Duration::from_secs(1));
        self.signal_all(Signal::SIGKILL);
    }

    /// The drain: closes the parent's copies of the listeners, so the ports
    /// refuse new clients once each worker has closed its own, and forwards
    /// SIGTERM to every worker.
    fn drain(&self) {
        let mut state = self.lock();
        state.draining = true;
        for worker in &mut state.workers {
            worker.listeners.clear();
        }
        drop(state);
        self.signal_all(Signal::SIGTERM);
    }

    /// Sends `signal` to every live worker.
    fn signal_all(&self, signal: Signal) {
        let mut state = self.lock();
        if signal == Signal::SIGKILL {
            state.draining = true;
        }
        for pid in state.workers.iter().filter_map(|w| w.pid) {
            // ESRCH only: a zombie the reaper is about to collect.
            let _ = kill(pid, signal);
        }
    }

    /// Reaps every live worker, waiting for each (after SIGKILL: at once).
    fn reap_all(&self) {
        let mut state = self.lock();
        for worker in &mut state.workers {
            if let Some(pid) = worker.pid.take() {
                let _ = waitpid(pid, None);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Critical sections only record pids and close listeners; a
        // poisoned lock still holds a consistent table.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The worker process: its own [`Shutdown`], driven by SIGTERM (forwarded by
/// the parent), and one epoll loop per listener.
fn run_worker(
    listeners: Vec<TcpListener>,
    config: &Config,
    counters: Arc<SharedCounters>,
    i: usize,
) -> i32 {
    let shutdown = match Shutdown::new(config.grace) {
        Ok(shutdown) => shutdown,
        Err(error) => {
            tracing::error!("worker {i}: cannot set up its shutdown: {error}");
            return 1;
        }
    };
    // SIGTERM is blocked in this process (see `sys::fork_worker`) and
    // taken here: the first drains, a second forces the stop.
    let signals = shutdown.clone();
    let taker = thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            loop {
                if let Ok(Signal::SIGTERM) = sys::stop_signals().wait() {
                    if signals.is_draining() {
                        signals.force();
                    } else {
                        signals.drain();
                    }
                }
            }
        });
    if let Err(error) = taker {
        tracing::error!("worker {i}: cannot start its signal thread: {error}");
        return 1;
    }
    let open = OpenCount::Shared { counters, mine: i };
    match reactors::run_all(listeners, config, &shutdown, open) {
        Ok(()) => 0,
        Err(error) => {
            tracing::error!("worker {i} failed: {error}");
            1
        }
    }
}

/// One line per worker that ended: a warning, with when it is replaced,
/// when it was not asked to stop (`pause` is `Some`); else a debug line.
fn log_exit(i: usize, status: WaitStatus, pause: Option<Duration>) {
    let how = match status {
        WaitStatus::Exited(pid, code) => format!("worker {i} (pid {pid}) exited with {code}"),
        WaitStatus::Signaled(pid, signal, _) => {
            format!("worker {i} (pid {pid}) was killed by {signal}")
        }
        other => format!("worker {i} changed state: {other:?}"),
    };
    match pause {
        Some(Duration::ZERO) => tracing::warn!("{how}; starting another"),
        Some(pause) => tracing::warn!(
            "{how} within {QUICK_DEATH:?} of its start; starting another in {pause:?}"
        ),
        None => tracing::debug!("{how}"),
    }
}
