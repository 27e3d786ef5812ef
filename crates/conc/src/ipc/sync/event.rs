//! `Event` between processes: a flag in shared memory that processes wait to see set.
//!
//! The thread version ([`crate::sync::Event`]) on a shared state: the flag
//! and a count of the times it was set. `set` bumps the count and wakes
//! every waiter, so a waiter woken by a `set` that is `clear`ed before it
//! runs still returns, as in CPython.

use std::fmt;
use std::time::{Duration, Instant};

use bytemuck::{Pod, Zeroable};
use serde::{Deserialize, Serialize};

use super::{CHANGED, Shared};
use crate::ipc::Error;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct State {
    /// 1 while set.
    flag: u32,
    _pad: u32,
    /// How many times the flag went from clear to set.
    sets: u64,
}

/// A flag processes can wait on: `set` wakes every waiter, `clear` resets
/// it. Python's `multiprocessing.Event`.
///
/// # Examples
///
/// ```
/// use conc::ipc::Event;
///
/// let ready = Event::new().unwrap();
/// let other = ready.clone(); // a child process would get it as an argument
/// let waiter = std::thread::spawn(move || other.wait());
/// ready.set();
/// waiter.join().unwrap();
/// assert!(ready.is_set());
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Event {
    shared: Shared<State>,
}

impl Event {
    /// An event whose flag is clear.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!conc::ipc::Event::new().unwrap().is_set());
    /// ```
    pub fn new() -> Result<Self, Error> {
        let state = State {
            flag: 0,
            _pad: 0,
            sets: 0,
        };
        Ok(Self {
            shared: Shared::create(state, 0, false)?,
        })
    }

    /// Sets the flag and wakes every waiter, in every process.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = conc::ipc::Event::new().unwrap();
    /// event.set();
    /// assert!(event.is_set());
    /// event.wait(); // at once
    /// ```
    pub fn set(&self) {
        let mut guard = self.shared.lock_state();
        let state = guard.state();
        if state.flag == 0 {
            state.flag = 1;
            state.sets += 1;
            drop(guard);
            self.shared.shm().notify_all(CHANGED);
        }
    }

    /// Clears the flag; later waits block until the next `set`.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = conc::ipc::Event::new().unwrap();
    /// event.set();
    /// event.clear();
    /// assert!(!event.is_set());
    /// ```
    pub fn clear(&self) {
        self.shared.lock_state().state().flag = 0;
    }

    /// Whether the flag is set now.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = conc::ipc::Event::new().unwrap();
    /// assert!(!event.is_set());
    /// event.set();
    /// assert!(event.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.shared.lock_state().state().flag != 0
    }

    /// Blocks until the flag is set (at once if it is).
    ///
    /// # Examples
    ///
    /// ```
    /// let event = conc::ipc::Event::new().unwrap();
    /// let setter = event.clone();
    /// std::thread::spawn(move || setter.set());
    /// event.wait();
    /// ```
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Blocks until the flag is set or `timeout` passes; whether it was
    /// set (Python's `event.wait(timeout)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let event = conc::ipc::Event::new().unwrap();
    /// assert!(!event.wait_timeout(Duration::from_millis(5)));
    /// event.set();
    /// assert!(event.wait_timeout(Duration::from_millis(5)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(Some(crate::shim::deadline(timeout)))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let mut guard = self.shared.lock_state();
        let seen = guard.state().sets;
        loop {
            let state = *guard.state();
            if state.flag != 0 || state.sets != seen {
                return true;
            }
            if !guard.wait(CHANGED, deadline) {
                let state = *guard.state();
                return state.flag != 0 || state.sets != seen;
            }
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("is_set", &self.is_set())
            .finish()
    }
}
