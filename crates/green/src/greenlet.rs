//! Greenlets: `spawn`, `join`, `get`, `kill`, `joinall` and `sleep`, with gevent's names and meanings.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Once;
use std::time::{Duration, Instant};

use crate::hub::{self, GreenletExit, Task, Wake};
use crate::waitlist::WaitList;

/// Why a greenlet has no value to give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GreenletError {
    /// It panicked; this is the panic's message (gevent: the exception).
    #[error("the greenlet panicked: {0}")]
    Panicked(String),
    /// It was killed before it returned (gevent: `GreenletExit`).
    #[error("the greenlet was killed")]
    Killed,
    /// The timeout passed before it ended.
    #[error("timed out waiting for the greenlet")]
    Timeout,
    /// Its value was taken already, by [`Greenlet::into_result`].
    #[error("the greenlet's value was taken already")]
    Taken,
}

enum Outcome<T> {
    Running,
    Value(T),
    Panicked(String),
    Killed,
    Taken,
}

struct Shared<T> {
    task: Task,
    outcome: RefCell<Outcome<T>>,
    /// Greenlets in `join`.
    joiners: WaitList,
}

/// A handle on a greenlet: wait for it, take its value, kill it. Cloning
/// the handle does not clone the greenlet.
///
/// A `Greenlet` is not `Send`: a greenlet lives on the hub of the thread
/// that spawned it, and so does everything it touches, which is what makes
/// thread-locals sound in it (they cannot change under it, as in M:N
/// runtimes whose coroutines move between threads).
///
/// # Examples
///
/// ```
/// let answer = green::run(|| {
///     let g = green::spawn(|| 6 * 7);
///     g.get()
/// });
/// assert_eq!(answer, Ok(42));
/// ```
pub struct Greenlet<T> {
    shared: Rc<Shared<T>>,
}

impl<T> Clone for Greenlet<T> {
    fn clone(&self) -> Self {
        Self {
            shared: Rc::clone(&self.shared),
        }
    }
}

impl<T> fmt::Debug for Greenlet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Greenlet")
            .field("ready", &self.ready())
            .finish()
    }
}

/// Starts `f` in a new greenlet; it runs once the caller blocks, after
/// the greenlets spawned before it (spawn order is FIFO).
///
/// # Panics
///
/// Outside [`crate::run`], or if no stack can be mapped.
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// let order = green::run(|| {
///     let order = Rc::new(RefCell::new(Vec::new()));
///     let gs: Vec<_> = (0..3)
///         .map(|i| {
///             let order = Rc::clone(&order);
///             green::spawn(move || order.borrow_mut().push(i))
///         })
///         .collect();
///     green::joinall(&gs, None);
///     Rc::try_unwrap(order).unwrap().into_inner()
/// });
/// assert_eq!(order, [0, 1, 2]);
/// ```
pub fn spawn<T: 'static>(f: impl FnOnce() -> T + 'static) -> Greenlet<T> {
    start(None, None, f).unwrap_or_else(|e| panic!("green: cannot map a stack: {e}"))
}

/// [`spawn`], with the greenlet's name (used in panic and overflow
/// messages) and an error instead of a panic when no stack can be mapped.
///
/// # Errors
///
/// If a new region of stacks cannot be mapped (out of memory or of
/// mappings).
///
/// # Examples
///
/// ```
/// green::run(|| {
///     let g = green::try_spawn_named("worker", || 1).unwrap();
///     assert_eq!(g.name(), "worker");
///     assert_eq!(g.get(), Ok(1));
/// });
/// ```
pub fn try_spawn_named<T: 'static>(
    name: impl Into<String>,
    f: impl FnOnce() -> T + 'static,
) -> std::io::Result<Greenlet<T>> {
    start(Some(name.into().into_boxed_str()), None, f)
}

/// Starts `f` in a new greenlet once `delay` has passed (gevent's
/// `spawn_later`).
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// green::run(|| {
///     let started = Instant::now();
///     let g = green::spawn_later(Duration::from_millis(20), move || started.elapsed());
///     assert!(g.get().unwrap() >= Duration::from_millis(20));
/// });
/// ```
pub fn spawn_later<T: 'static>(delay: Duration, f: impl FnOnce() -> T + 'static) -> Greenlet<T> {
    start(None, Some(Instant::now() + delay), f)
        .unwrap_or_else(|e| panic!("green: cannot map a stack: {e}"))
}

fn start<T: 'static>(
    name: Option<Box<str>>,
    at: Option<Instant>,
    f: impl FnOnce() -> T + 'static,
) -> std::io::Result<Greenlet<T>> {
    // The task is known only once spawned; the body reaches its shared
    // record through this cell, filled in before it first runs.
    let cell: Rc<RefCell<Option<Rc<Shared<T>>>>> = Rc::new(RefCell::new(None));
    let for_body = Rc::clone(&cell);
    let body = move |first| {
        let shared = for_body
            .borrow_mut()
            .take()
            .expect("filled before the first run");
        let outcome = if first == Wake::Kill {
            drop(f); // Killed before it started: only its captures drop.
            Outcome::Killed
        } else {
            match panic::catch_unwind(AssertUnwindSafe(f)) {
                Ok(value) => Outcome::Value(value),
                Err(payload) if payload.is::<GreenletExit>() => Outcome::Killed,
                Err(payload) => Outcome::Panicked(message(&*payload)),
            }
        };
        finish(&shared, outcome);
    };
    let task = match hub::with(|core| core.spawn(name, at, body)) {
        Ok(task) => task,
        Err((error, body)) => {
            // Out of the hub's borrow: what it captured may use the hub
            // as it drops (a socket leaving its registration).
            drop(body);
            return Err(error);
        }
    };
    let shared = Rc::new(Shared {
        task,
        outcome: RefCell::new(Outcome::Running),
        joiners: WaitList::default(),
    });
    *cell.borrow_mut() = Some(Rc::clone(&shared));
    Ok(Greenlet { shared })
}

/// Records the outcome and wakes every greenlet in `join`.
fn finish<T>(shared: &Shared<T>, outcome: Outcome<T>) {
    *shared.outcome.borrow_mut() = outcome;
    shared.joiners.notify_all();
}

/// A panic payload's message, as std's hook prints it.
fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

/// The main greenlet of [`hub::run`].
pub(crate) fn spawn_named_main<T: 'static>(f: impl FnOnce() -> T + 'static) -> Greenlet<T> {
    start(Some(Box::from("main")), None, f)
        .unwrap_or_else(|e| panic!("green: cannot map a stack: {e}"))
}

/// Makes a panic inside a greenlet print the greenlet's name, like the
/// traceback gevent prints for a greenlet that raised; elsewhere std's
/// message is unchanged.
pub(crate) fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| match hub::current_name() {
            Some(name) => {
                let place = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                eprintln!(
                    "greenlet '{name}' panicked{place}:\n{}",
                    message(info.payload())
                );
            }
            None => previous(info),
        }));
    });
}

impl<T> Greenlet<T> {
    pub(crate) fn task(&self) -> Task {
        self.shared.task
    }

    /// The greenlet's name: the one given to [`try_spawn_named`], else
    /// `Greenlet-N` in spawn order.
    pub fn name(&self) -> String {
        hub::with(|core| core.name(self.shared.task)).unwrap_or_else(|| "(ended)".into())
    }

    /// Whether it has ended, whichever way (gevent's `ready()`).
    ///
    /// # Examples
    ///
    /// ```
    /// green::run(|| {
    ///     let g = green::spawn(|| ());
    ///     assert!(!g.ready()); // spawned, not yet run
    ///     g.join();
    ///     assert!(g.ready());
    /// });
    /// ```
    pub fn ready(&self) -> bool {
        !matches!(*self.shared.outcome.borrow(), Outcome::Running)
    }

    /// Whether it returned a value (not panicked, not killed).
    ///
    /// # Examples
    ///
    /// ```
    /// green::run(|| {
    ///     let g = green::spawn(|| 1);
    ///     g.join();
    ///     assert!(g.successful());
    /// });
    /// ```
    pub fn successful(&self) -> bool {
        matches!(
            *self.shared.outcome.borrow(),
            Outcome::Value(_) | Outcome::Taken
        )
    }

    /// Waits until it has ended.
    ///
    /// # Panics
    ///
    /// If a greenlet joins itself (it would wait for ever).
    ///
    /// # Examples
    ///
    /// ```
    /// green::run(|| {
    ///     let g = green::spawn(|| green::sleep(std::time::Duration::from_millis(1)));
    ///     g.join();
    ///     assert!(g.ready());
    /// });
    /// ```
    pub fn join(&self) {
        self.join_until(None);
    }

    /// Waits until it has ended or `timeout` has passed; says whether it
    /// ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// green::run(|| {
    ///     let g = green::spawn(|| green::sleep(Duration::from_secs(60)));
    ///     assert!(!g.join_timeout(Duration::from_millis(1)));
    ///     g.kill();
    ///     assert!(g.join_timeout(Duration::ZERO));
    /// });
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.join_until(Some(Instant::now() + timeout))
    }

    fn join_until(&self, deadline: Option<Instant>) -> bool {
        while !self.ready() {
            assert!(
                hub::with(|core| core.current()) != self.shared.task,
                "green: a greenlet cannot join itself"
            );
            if !self.shared.joiners.wait(deadline) {
                return self.ready();
            }
        }
        true
    }

    /// Kills it and waits until it has ended: its current blocking call
    /// (or, if it is running or ready, its next one) unwinds, its
    /// destructors run, and `join` returns (gevent's `kill()`). A greenlet
    /// killed before it started never runs. Killing an ended greenlet does
    /// nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// green::run(|| {
    ///     let g = green::spawn(|| green::sleep(Duration::from_secs(60)));
    ///     green::sleep(Duration::ZERO); // let it start sleeping
    ///     g.kill();
    ///     assert_eq!(g.get(), Err(green::GreenletError::Killed));
    /// });
    /// ```
    pub fn kill(&self) {
        self.kill_nowait();
        if hub::with(|core| core.current()) != self.shared.task {
            self.join();
        }
    }

    /// Kills it without waiting (gevent's `kill(block=False)`).
    pub fn kill_nowait(&self) {
        if !self.ready() {
            hub::with(|core| core.kill(self.shared.task));
        }
    }

    fn outcome_error(outcome: &Outcome<T>) -> GreenletError {
        match outcome {
            Outcome::Panicked(m) => GreenletError::Panicked(m.clone()),
            Outcome::Killed => GreenletError::Killed,
            Outcome::Taken => GreenletError::Taken,
            Outcome::Running => GreenletError::Timeout,
            Outcome::Value(_) => unreachable!("a value is not an error"),
        }
    }

    /// Waits until it has ended, then takes its value, once; works for any
    /// `T`.
    ///
    /// # Errors
    ///
    /// If it panicked, was killed, or its value was taken already.
    ///
    /// # Examples
    ///
    /// ```
    /// green::run(|| {
    ///     let g = green::spawn(|| vec![1, 2]);
    ///     assert_eq!(g.clone().into_result(), Ok(vec![1, 2]));
    ///     assert_eq!(g.into_result(), Err(green::GreenletError::Taken));
    /// });
    /// ```
    pub fn into_result(self) -> Result<T, GreenletError> {
        self.join();
        let mut outcome = self.shared.outcome.borrow_mut();
        match std::mem::replace(&mut *outcome, Outcome::Taken) {
            Outcome::Value(value) => Ok(value),
            other => {
                let error = Self::outcome_error(&other);
                *outcome = other;
                Err(error)
            }
        }
    }

    /// `main`'s end, for [`hub::run`]: its value, or its panic again.
    pub(crate) fn into_main_result(self) -> T {
        let outcome = std::mem::replace(&mut *self.shared.outcome.borrow_mut(), Outcome::Taken);
        match outcome {
            Outcome::Value(value) => value,
            Outcome::Panicked(message) => panic::resume_unwind(Box::new(message)),
            Outcome::Killed => panic!("green: the main greenlet was killed"),
            Outcome::Running | Outcome::Taken => unreachable!("main has ended"),
        }
    }
}

impl<T: Clone> Greenlet<T> {
    /// Waits until it has ended and returns its value (gevent's `get()`).
    ///
    /// # Errors
    ///
    /// If it panicked (with the panic's message), was killed, or its value
    /// was taken.
    ///
    /// # Examples
    ///
    /// ```
    /// green::run(|| {
    ///     let g = green::spawn(|| -> u32 { panic!("boom") });
    ///     assert_eq!(g.get(), Err(green::GreenletError::Panicked("boom".into())));
    /// });
    /// ```
    pub fn get(&self) -> Result<T, GreenletError> {
        self.join();
        self.value()
    }

    /// [`get`](Self::get), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As `get`, and [`GreenletError::Timeout`] if it has not ended in time.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GreenletError> {
        self.join_timeout(timeout);
        self.value()
    }

    fn value(&self) -> Result<T, GreenletError> {
        match &*self.shared.outcome.borrow() {
            Outcome::Value(value) => Ok(value.clone()),
            other => Err(Self::outcome_error(other)),
        }
    }
}

/// Waits until every greenlet of `greenlets` has ended, or `timeout` has
/// passed; returns the ones that ended, in the order given (gevent's
/// `joinall`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// green::run(|| {
///     let quick = green::spawn(|| ());
///     let slow = green::spawn(|| green::sleep(Duration::from_secs(60)));
///     let both = [quick, slow];
///     let done = green::joinall(&both, Some(Duration::from_millis(10)));
///     assert_eq!(done.len(), 1);
///     assert!(done[0].ready());
/// });
/// ```
pub fn joinall<T>(greenlets: &[Greenlet<T>], timeout: Option<Duration>) -> Vec<&Greenlet<T>> {
    let deadline = timeout.map(|t| Instant::now() + t);
    for g in greenlets {
        let ended = match deadline {
            None => {
                g.join();
                true
            }
            Some(at) => g.join_until(Some(at)),
        };
        if !ended {
            break;
        }
    }
    greenlets.iter().filter(|g| g.ready()).collect()
}

/// Blocks the running greenlet for `duration`; others run meanwhile.
/// `sleep(Duration::ZERO)` lets every other ready greenlet run once, then
/// goes on.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use std::time::Duration;
///
/// green::run(|| {
///     let ran = Rc::new(Cell::new(false));
///     let r = Rc::clone(&ran);
///     green::spawn(move || r.set(true));
///     green::sleep(Duration::ZERO);
///     assert!(ran.get());
/// });
/// ```
pub fn sleep(duration: Duration) {
    if duration.is_zero() {
        hub::yield_now();
        return;
    }
    let deadline = Instant::now() + duration;
    loop {
        let waiter = hub::with(|core| core.waiter());
        // Nothing else holds the ticket: only the deadline, a kill or an
        // expired scope end this wait.
        hub::wait(waiter, Some(deadline));
        if Instant::now() >= deadline {
            return;
        }
    }
}
