//! The supervisor of `prefork` and `hybrid`: worker processes forked up front, each serving its own listeners, replaced when they die.
//!
//! The parent forks one worker per group of listeners and from then on only
//! supervises: it never touches a client. It keeps its own copy of every
//! listener, so a worker that dies is replaced on the same queues, and the
//! clients that connect meanwhile wait there instead of being refused.
//!
//! - **Reaping** is `crate::reaper`'s: no zombie, and no reused pid is ever
//!   signalled. A worker that exits is replaced at once after a normal
//!   life; one that dies within [`QUICK_DEATH`] of its start, after a pause
//!   of 100 ms doubling up to 5 s, so a worker that cannot start does not
//!   become a fork loop. A fork that fails is tried again a second later.
//! - **The drain**: the parent closes its copies of the listeners (the
//!   ports refuse new clients once each worker has closed its own) and
//!   forwards SIGTERM; each worker drains like `epoll` and exits. At the
//!   end of the grace period it forwards the forced stop (a second SIGTERM:
//!   the worker closes what is left) and sends SIGKILL a second later to
//!   any worker still there. A worker whose parent dies gets SIGTERM
//!   (`PR_SET_PDEATHSIG`) and drains too.
//! - **`--max-conns`** across processes: one counter per worker in a page of
//!   shared memory, summed on each accept (`crate::admission`); the parent
//!   zeroes a dead worker's slot, which one shared counter could not survive.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;

use crate::admission::OpenCount;
use crate::drain::{self, Left};
use crate::loops::{self, Kind};
use crate::reaper::{self, Children, Reaped};
use crate::sys::{self, OnTerm, SharedCounters};
use crate::{Config, Shutdown};

/// A worker that dies sooner than this after its start is replaced after a
/// pause: it may be failing at start, and would fail again at once.
pub(crate) const QUICK_DEATH: Duration = Duration::from_secs(1);

/// How often the reaper looks for exits while a restart is pending: it
/// cannot block in `waitid` then, since nothing would wake it in time.
const POLL: Duration = Duration::from_millis(50);

/// Runs one worker process per group of listeners, each serving its group
/// with one loop of `kind` per listener (`loops::run_each`: epoll loops, or
/// green hubs), and replaces any worker that dies, until the drain is over:
/// `prefork` gives each worker one listener, `hybrid` several.
///
/// # Errors
///
/// If the shared counters cannot be mapped, or the first workers cannot be
/// forked.
pub(crate) fn run(
    kind: Kind,
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
        kind,
        config: config.clone(),
        children: Children::default(),
        places: Mutex::new(Places {
            workers: groups.into_iter().map(Place::new).collect(),
            draining: false,
        }),
    });
    let n = supervisor.lock().workers.len();
    let mut started = (0..n).try_for_each(|i| supervisor.start(i));
    if started.is_ok() {
        tracing::debug!("{n} workers started");
        let (drained, forced) = (Arc::clone(&supervisor), Arc::clone(&supervisor));
        started = drain::watch(shutdown, move || drained.drain(), move || forced.force());
    }
    if let Err(error) = started {
        // Do not leave the ones already forked behind, unsupervised.
        supervisor.children.signal_all(Signal::SIGKILL);
        while let Reaped::Exited(..) = supervisor.children.reap(true) {}
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
    /// The loops each worker runs.
    kind: Kind,
    config: Config,
    /// The live workers, each with the index of its place.
    children: Children<usize>,
    places: Mutex<Places>,
}

#[derive(Debug)]
struct Places {
    workers: Vec<Place>,
    /// Set at the start of the drain: from then on nobody is replaced.
    draining: bool,
}

/// One worker's place: its listeners (the parent's copies, kept so that a
/// replacement serves the same queues), and when its worker started.
#[derive(Debug)]
struct Place {
    listeners: Vec<TcpListener>,
    started: Instant,
    /// Deaths in a row within [`QUICK_DEATH`] of the start.
    quick_deaths: u32,
    /// With no live worker: when to fork the next one.
    restart_at: Option<Instant>,
}

impl Place {
    fn new(listeners: Vec<TcpListener>) -> Self {
        Self {
            listeners,
            started: Instant::now(),
            quick_deaths: 0,
            restart_at: None,
        }
    }

    /// The pause before replacing this place's worker, which just died:
    /// none after a normal life, else 100 ms doubling per quick death up to
    /// 5 s.
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
    /// Forks the worker of place `i` on its listeners, unless the drain has
    /// begun; if the fork fails, tries again a second later.
    fn start(&self, i: usize) -> io::Result<()> {
        // Stderr's lock is taken before the places' and held across the
        // fork (see `sys::fork`): whoever holds it, a thread logging to a
        // full pipe, never needs the places, so the drain can go on.
        let stderr = io::stderr().lock();
        let mut places = self.lock();
        if places.draining {
            return Ok(());
        }
        // The child closes every copy the parent holds, its own group's
        // included, and serves on clones: a copy left open in a worker
        // would keep that port's queue alive after the drain.
        let parents: Vec<RawFd> = (places.workers.iter())
            .flat_map(|w| w.listeners.iter().map(AsRawFd::as_raw_fd))
            .collect();
        let own = (places.workers[i].listeners.iter())
            .map(TcpListener::try_clone)
            .collect::<io::Result<Vec<_>>>();
        let (kind, config, counters) = (self.kind, &self.config, Arc::clone(&self.counters));
        // The places stay locked across the fork, so the drain's SIGTERM
        // reaches this worker: `children` signals every worker forked after
        // the drain began.
        let forked = own.and_then(|own| {
            self.children.spawn(i, || {
                sys::fork(stderr, &parents, OnTerm::Blocked, move || {
                    run_worker(kind, own, config, counters, i)
                })
            })
        });
        let place = &mut places.workers[i];
        match forked {
            Ok(_) => {
                place.started = Instant::now();
                place.restart_at = None;
                Ok(())
            }
            Err(error) => {
                place.restart_at = Some(Instant::now() + Duration::from_secs(1));
                Err(error)
            }
        }
    }

    /// Reaps every worker that exits and replaces it when its pause is
    /// over, until the drain has begun and every worker is gone.
    fn reap_and_replace(&self, shutdown: &Shutdown) {
        loop {
            let next = self.restart_due(shutdown);
            // Block until a worker exits, unless a restart is pending: then
            // look, and sleep in short steps until it is due.
            let (i, status) = match self.children.reap(next.is_none()) {
                Reaped::Exited(_, i, status) => (i, status),
                Reaped::Running => {
                    let until =
                        next.map_or(POLL, |at| at.saturating_duration_since(Instant::now()));
                    shutdown.sleep(until.min(POLL));
                    continue;
                }
                Reaped::None => {
                    if self.lock().draining || shutdown.is_draining() {
                        return;
                    }
                    // Every start failed: the next try is a second away.
                    shutdown.sleep(Duration::from_secs(1));
                    continue;
                }
            };
            // Its connections died with it.
            self.counters.slots()[i].store(0, Ordering::SeqCst);
            let mut places = self.lock();
            let draining = places.draining;
            let place = &mut places.workers[i];
            let pause = (!draining).then(|| place.pause_before_restart());
            if let Some(pause) = pause {
                place.restart_at = Some(Instant::now() + pause);
            }
            // Logged with the places unlocked: a full stderr must not hold
            // up the drain.
            drop(places);
            log_exit(i, &status, pause);
            if draining && self.children.len() == 0 {
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
        let missing = |places: &Places| -> Vec<(usize, Option<Instant>)> {
            (places.workers.iter().enumerate())
                .filter(|&(i, _)| !self.children.any(|&w| w == i))
                .map(|(i, place)| (i, place.restart_at))
                .collect()
        };
        let due: Vec<usize> = missing(&self.lock())
            .into_iter()
            .filter(|&(_, at)| at.is_some_and(|at| at <= now))
            .map(|(i, _)| i)
            .collect();
        for i in due {
            if let Err(error) = self.start(i) {
                tracing::warn!("cannot fork worker {i}, trying again in 1 s: {error}");
            }
        }
        let places = self.lock();
        if places.draining {
            return None;
        }
        missing(&places).into_iter().filter_map(|(_, at)| at).min()
    }

    /// The drain: closes the parent's copies of the listeners, so the ports
    /// refuse new clients once each worker has closed its own, and forwards
    /// SIGTERM to every worker.
    fn drain(&self) {
        let mut places = self.lock();
        places.draining = true;
        for place in &mut places.workers {
            place.listeners.clear();
        }
        drop(places);
        self.children.signal_all(Signal::SIGTERM);
    }

    /// The forced stop: a second SIGTERM is a worker's own forced stop (it
    /// closes its connections and exits); SIGKILL for any that has not, a
    /// moment on.
    fn force(&self) -> Left {
        let left = self.children.signal_all(Signal::SIGTERM);
        thread::sleep(Duration::from_secs(1));
        self.children.signal_all(Signal::SIGKILL);
        Left::Workers(left)
    }

    fn lock(&self) -> MutexGuard<'_, Places> {
        // Critical sections only note restarts and close listeners; a
        // poisoned lock still holds a consistent table.
        self.places.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The worker process: its own [`Shutdown`], driven by SIGTERM (forwarded by
/// the parent), and one loop of `kind` per listener.
fn run_worker(
    kind: Kind,
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
    // SIGTERM is blocked in this process (see `sys::OnTerm::Blocked`) and
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
    match loops::run_each(kind, listeners, config, &shutdown, open) {
        Ok(()) => 0,
        Err(error) => {
            tracing::error!("worker {i} failed: {error}");
            1
        }
    }
}

/// One line per worker that ended: a warning, with when it is replaced,
/// when it was not asked to stop (`pause` is `Some`); else a debug line.
fn log_exit(i: usize, status: &WaitStatus, pause: Option<Duration>) {
    let how = reaper::exit_line(&format!("worker {i}"), status);
    match pause {
        Some(Duration::ZERO) => tracing::warn!("{how}; starting another"),
        Some(pause) => tracing::warn!(
            "{how} within {QUICK_DEATH:?} of its start; starting another in {pause:?}"
        ),
        None => tracing::debug!("{how}"),
    }
}
