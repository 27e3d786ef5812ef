//! How a server stops: a signal starts a drain, the grace period ends it.
//!
//! The life of a server has three phases:
//!
//! 1. **Running**: accepting and serving.
//! 2. **Draining**, from the first SIGINT or SIGTERM (or [`Shutdown::drain`]):
//!    no new clients; every connected client stops being read once what it
//!    already sent is in, and receives all of it back. A model that finishes
//!    its clients early returns at once.
//! 3. **Forced**, when the grace period runs out, on a second signal, or on
//!    [`Shutdown::force`]: the model closes what is left and returns, and
//!    `iomodels serve` exits 0.
//!
//! Models wait for these phases in whichever way fits their I/O: blocking
//! models park a thread in [`Shutdown::wait_draining`]; readiness models add
//! [`Shutdown`]'s descriptor (readable from the start of the drain on) to
//! their `select`/`poll`/`epoll` set, so one wait covers sockets and signals.
//!
//! Signals are taken by signal-hook on its own thread, never in a handler
//! that could interrupt a model half-way through its bookkeeping.

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Where a server's stop stands. Ordered: each phase implies the ones before.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use iomodels_server::{Phase, Shutdown};
///
/// let shutdown = Shutdown::new(Duration::from_secs(5)).unwrap();
/// assert_eq!(shutdown.phase(), Phase::Running);
/// shutdown.drain();
/// assert!(shutdown.phase() >= Phase::Draining);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Accepting and serving.
    Running,
    /// No new clients; the connected ones are being answered.
    Draining,
    /// The grace period is over: close what is left.
    Forced,
}

/// A cloneable handle on one server's stop: who asked, and how long is left.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use iomodels_server::Shutdown;
///
/// let shutdown = Shutdown::new(Duration::from_secs(5)).unwrap();
/// assert!(!shutdown.is_draining());
/// shutdown.drain();
/// assert!(shutdown.is_draining() && !shutdown.is_forced());
/// shutdown.force();
/// assert!(shutdown.is_forced());
/// ```
#[derive(Debug, Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    grace: Duration,
    /// Set once, at the start of the drain; read on hot paths without a lock.
    draining: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
    /// A byte is written to `wake_tx` when the drain starts and never read,
    /// so `wake_rx` stays readable from then on (a level-triggered flag).
    wake_rx: UnixStream,
    wake_tx: UnixStream,
}

#[derive(Debug, Default)]
struct State {
    deadline: Option<Instant>,
    forced: bool,
}

impl Shutdown {
    /// A handle with no signals attached yet: [`drain`](Self::drain) and
    /// [`force`](Self::force) are the only way in until
    /// [`stop_on_signals`](Self::stop_on_signals).
    ///
    /// # Errors
    ///
    /// If the process is out of descriptors for its wake-up socket pair.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use iomodels_server::Shutdown;
    ///
    /// let shutdown = Shutdown::new(Duration::from_millis(10)).unwrap();
    /// assert_eq!(shutdown.grace(), Duration::from_millis(10));
    /// ```
    pub fn new(grace: Duration) -> io::Result<Self> {
        let (wake_rx, wake_tx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        Ok(Self {
            inner: Arc::new(Inner {
                grace,
                draining: AtomicBool::new(false),
                state: Mutex::new(State::default()),
                changed: Condvar::new(),
                wake_rx,
                wake_tx,
            }),
        })
    }

    /// Takes SIGINT and SIGTERM from now on: the first starts the drain, a
    /// second one (an impatient Ctrl-C) forces the stop.
    ///
    /// # Errors
    ///
    /// If the handlers or their thread cannot be set up.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use iomodels_server::Shutdown;
    ///
    /// let shutdown = Shutdown::new(Duration::from_secs(5)).unwrap();
    /// shutdown.stop_on_signals().unwrap();
    /// shutdown.wait_draining(); // returns on the first Ctrl-C or SIGTERM
    /// ```
    pub fn stop_on_signals(&self) -> io::Result<()> {
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let this = self.clone();
        thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    let name = if signal == SIGINT {
                        "SIGINT"
                    } else {
                        "SIGTERM"
                    };
                    // Act first, then log: nothing the log does (a full or
                    // broken stderr) may delay or prevent the stop.
                    if this.is_draining() {
                        this.force();
                        tracing::info!("{name} again: closing the remaining connections now");
                    } else {
                        this.drain();
                        tracing::info!(
                            "{name}: no new clients; serving the connected ones for up to {:?}",
                            this.grace()
                        );
                    }
                }
            })?;
        Ok(())
    }

    /// The grace period a drain lasts at most.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use iomodels_server::Shutdown;
    ///
    /// let shutdown = Shutdown::new(Duration::from_secs(5)).unwrap();
    /// assert_eq!(shutdown.grace(), Duration::from_secs(5));
    /// ```
    pub fn grace(&self) -> Duration {
        self.inner.grace
    }

    /// Starts the drain (once; later calls change nothing).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use iomodels_server::Shutdown;
    ///
    /// let shutdown = Shutdown::new(Duration::from_secs(1)).unwrap();
    /// assert!(shutdown.deadline().is_none());
    /// shutdown.drain();
    /// assert!(shutdown.deadline().is_some());
    /// ```
    pub fn drain(&self) {
        let mut state = self.lock();
        if state.deadline.is_none() {
            state.deadline = Some(Instant::now() + self.inner.grace);
            self.inner.draining.store(true, Ordering::Release);
            // The socket is non-blocking and only ever gets this one byte, so
            // the write cannot block; should it fail, the flag above still
            // stops the blocking models, and readiness models also check it.
            let _ = (&self.inner.wake_tx).write(&[1]);
            self.inner.changed.notify_all();
        }
    }

    /// Ends the grace period now (and starts the drain if it had not begun).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use iomodels_server::Shutdown;
    ///
    /// let shutdown = Shutdown::new(Duration::from_secs(3600)).unwrap();
    /// shutdown.force();
    /// assert!(shutdown.is_draining() && shutdown.is_forced());
    /// shutdown.wait_forced(); // returns at once
    /// ```
    pub fn force(&self) {
        self.drain();
        self.lock().forced = true;
        self.inner.changed.notify_all();
    }

    /// Whether the drain has begun: stop accepting.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use iomodels_server::Shutdown;
    ///
    /// let shutdown = Shutdown::new(Duration::from_secs(1)).unwrap();
    /// assert!(!shutdown.is_draining());
    /// shutdown.drain();
    /// assert!(shutdown.is_draining());
    /// ```
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Acquire)
    }

    /// Whether the stop is forced: by [`force`](Self::force) or because the
    /// grace period has run out.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use iomodels_server::Shutdown;
    ///
    /// let shutdown = Shutdown::new(Duration::ZERO).unwrap();
    /// assert!(!shutdown.is_forced());
    /// shutdown.drain(); // with no grace at all, draining is already forced
    /// assert!(shutdown.is_forced());
    /// ```
    pub fn is_forced(&self) -> bool {
        let state = self.lock();
        state.forced || state.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Where the stop stands now: one atomic load while running.
    pub fn phase(&self) -> Phase {
        if !self.is_draining() {
            Phase::Running
        } else if self.is_forced() {
            Phase::Forced
        } else {
            Phase::Draining
        }
    }

    /// When the grace period ends, once the drain has begun.
    pub fn deadline(&self) -> Option<Instant> {
        self.lock().deadline
    }

    /// Blocks until the drain begins.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use iomodels_server::Shutdown;
    ///
    /// let shutdown = Shutdown::new(Duration::from_secs(1)).unwrap();
    /// let waiter = {
    ///     let shutdown = shutdown.clone();
    ///     std::thread::spawn(move || shutdown.wait_draining())
    /// };
    /// shutdown.drain();
    /// waiter.join().unwrap();
    /// ```
    pub fn wait_draining(&self) {
        let mut state = self.lock();
        while state.deadline.is_none() {
            state = self
                .inner
                .changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Sleeps for `timeout`, or less if the drain begins; returns whether it
    /// has. For back-off pauses that must not delay a stop.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use iomodels_server::Shutdown;
    ///
    /// let shutdown = Shutdown::new(Duration::from_secs(1)).unwrap();
    /// assert!(!shutdown.sleep(Duration::from_millis(1)));
    /// shutdown.drain();
    /// assert!(shutdown.sleep(Duration::from_secs(3600))); // returns at once
    /// ```
    pub fn sleep(&self, timeout: Duration) -> bool {
        let state = self.lock();
        let (state, _) = self
            .inner
            .changed
            .wait_timeout_while(state, timeout, |s| s.deadline.is_none())
            .unwrap_or_else(|e| e.into_inner());
        state.deadline.is_some()
    }

    /// Blocks until the stop is forced: a [`force`](Self::force) call or the
    /// end of the grace period, whichever comes first.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use iomodels_server::Shutdown;
    ///
    /// let shutdown = Shutdown::new(Duration::from_millis(20)).unwrap();
    /// shutdown.drain();
    /// shutdown.wait_forced(); // the grace period runs out
    /// assert!(Instant::now() >= shutdown.deadline().unwrap());
    /// ```
    pub fn wait_forced(&self) {
        let mut state = self.lock();
        loop {
            if state.forced {
                return;
            }
            match state.deadline {
                None => {
                    state = self
                        .inner
                        .changed
                        .wait(state)
                        .unwrap_or_else(|e| e.into_inner());
                }
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return;
                    }
                    state = self
                        .inner
                        .changed
                        .wait_timeout(state, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }

    /// Waits on `changed` while `busy` holds for the state behind `guard`,
    /// but no longer than one second after the stop is forced: by then every
    /// socket was shut or every child killed, and whatever has still not
    /// noticed is not worth delaying the exit for. How a model waits for its
    /// last clients after the drain.
    pub(crate) fn wait_while<T>(
        &self,
        mut guard: MutexGuard<'_, T>,
        changed: &Condvar,
        mut busy: impl FnMut(&T) -> bool,
    ) {
        const SLACK: Duration = Duration::from_secs(1);
        let mut forced_at = None;
        while busy(&guard) {
            if self.is_forced() {
                let at = *forced_at.get_or_insert_with(Instant::now);
                if at.elapsed() >= SLACK {
                    return;
                }
            }
            // Forcing is a deadline, not an event the caller's condvar hears
            // of, so look again every 100 ms.
            guard = changed
                .wait_timeout(guard, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is two plain fields; a panic elsewhere cannot leave it
        // half-written, so a poisoned lock is still good to use.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The descriptor that turns readable when the drain begins, for models that
/// wait in `select`, `poll` or `epoll`.
///
/// # Examples
///
/// ```
/// use std::os::fd::AsFd;
/// use std::time::Duration;
/// use iomodels_server::Shutdown;
/// use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
///
/// let shutdown = Shutdown::new(Duration::from_secs(1)).unwrap();
/// let readable = |s: &Shutdown| {
///     let mut fds = [PollFd::new(s.as_fd(), PollFlags::POLLIN)];
///     poll(&mut fds, PollTimeout::ZERO).unwrap() == 1
/// };
/// assert!(!readable(&shutdown));
/// shutdown.drain();
/// assert!(readable(&shutdown));
/// ```
impl AsFd for Shutdown {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.wake_rx.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::Shutdown;
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    use std::thread;
    use std::time::Duration;

    fn readable(shutdown: &Shutdown) -> bool {
        let mut fds = [PollFd::new(shutdown.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::ZERO).unwrap() == 1
    }

    #[test]
    fn descriptor_turns_readable_on_drain_and_stays_so() {
        let shutdown = Shutdown::new(Duration::from_secs(1)).unwrap();
        assert!(!readable(&shutdown));
        shutdown.drain();
        assert!(readable(&shutdown));
        shutdown.drain();
        assert!(readable(&shutdown));
    }

    #[test]
    fn waiters_wake_on_drain_and_force() {
        let shutdown = Shutdown::new(Duration::from_secs(3600)).unwrap();
        let waiter = {
            let shutdown = shutdown.clone();
            thread::spawn(move || {
                shutdown.wait_draining();
                shutdown.wait_forced();
            })
        };
        shutdown.drain();
        shutdown.force();
        waiter.join().unwrap();
    }

    #[test]
    fn grace_period_end_counts_as_forced() {
        let shutdown = Shutdown::new(Duration::ZERO).unwrap();
        assert!(!shutdown.is_forced());
        shutdown.drain();
        shutdown.wait_forced();
        assert!(shutdown.is_forced());
    }
}
