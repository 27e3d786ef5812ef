//! `Event`: Python's `threading.Event`, a flag that threads wait to see set.
//!
//! Written by hand on [`crate::shim`]'s `Mutex` and `Condvar` (parking_lot
//! has no event): a flag and a generation count behind the lock. `set`
//! bumps the generation, so a waiter woken by a `set` that is `clear`ed
//! again before it runs still returns, as in CPython, where `wait` returns
//! `True` once notified whatever the flag says by then.

use std::fmt;
use std::time::Duration;

use crate::shim::{Condvar, Mutex};

#[derive(Debug, Default)]
struct State {
    flag: bool,
    /// How many times the flag went from clear to set.
    sets: u64,
}

/// A flag threads can wait on: `set` wakes every waiter, `clear` resets it.
///
/// # Examples
///
/// ```
/// use conc::sync::Event;
///
/// let ready = Event::new();
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         ready.wait(); // blocks until the main thread sets it
///         assert!(ready.is_set());
///     });
///     ready.set();
/// });
/// ```
#[derive(Default)]
pub struct Event {
    state: Mutex<State>,
    changed: Condvar,
}

impl Event {
    /// Creates an event whose flag is clear.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!conc::sync::Event::new().is_set());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the flag and wakes every thread waiting for it.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = conc::sync::Event::new();
    /// event.set();
    /// assert!(event.is_set());
    /// event.wait(); // returns at once
    /// ```
    pub fn set(&self) {
        let mut state = self.state.lock();
        if !state.flag {
            state.flag = true;
            state.sets += 1;
            // Every waiter waits for the same thing: wake them all.
            self.changed.notify_all();
        }
    }

    /// Clears the flag; later `wait`s block until the next `set`.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = conc::sync::Event::new();
    /// event.set();
    /// event.clear();
    /// assert!(!event.is_set());
    /// ```
    pub fn clear(&self) {
        self.state.lock().flag = false;
    }

    /// Whether the flag is set now.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = conc::sync::Event::new();
    /// assert!(!event.is_set());
    /// event.set();
    /// assert!(event.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.state.lock().flag
    }

    /// Blocks until the flag is set (at once if it already is).
    ///
    /// # Examples
    ///
    /// ```
    /// let event = conc::sync::Event::new();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| event.set());
    ///     event.wait();
    /// });
    /// ```
    pub fn wait(&self) {
        let mut state = self.state.lock();
        let seen = state.sets;
        while !state.flag && state.sets == seen {
            self.changed.wait(&mut state);
        }
    }

    /// Blocks until the flag is set or `timeout` passes; returns whether it
    /// was set (Python's `event.wait(timeout)`, which returns the flag).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let event = conc::sync::Event::new();
    /// assert!(!event.wait_timeout(Duration::from_millis(5)));
    /// event.set();
    /// assert!(event.wait_timeout(Duration::from_millis(5)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = crate::shim::deadline(timeout);
        let mut state = self.state.lock();
        let seen = state.sets;
        while !state.flag && state.sets == seen {
            if self.changed.wait_until(&mut state, deadline) {
                break;
            }
        }
        state.flag || state.sets != seen
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("is_set", &self.is_set())
            .finish()
    }
}
