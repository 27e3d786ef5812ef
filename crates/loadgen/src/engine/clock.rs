//! The clock every load thread shares, and the gate that hands it to them.

use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::Instant;

/// Where the threads wait for the clock: a barrier that can also be opened
/// with nothing, to release the threads when the run is called off.
#[derive(Debug, Default)]
pub(super) struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    arrived: usize,
    /// `Some(Some(clock))`: go; `Some(None)`: the run is called off.
    opened: Option<Option<Clock>>,
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A thread has connected; waits for the gate to open.
    pub(super) fn arrive_and_wait(&self) -> Option<Clock> {
        let mut state = self.lock();
        state.arrived += 1;
        self.changed.notify_all();
        loop {
            if let Some(opened) = state.opened {
                return opened;
            }
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Waits until `threads` threads have arrived.
    pub(super) fn wait_for(&self, threads: usize) {
        let mut state = self.lock();
        while state.arrived < threads {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub(super) fn open(&self, clock: Option<Clock>) {
        self.lock().opened = Some(clock);
        self.changed.notify_all();
    }
}

/// The phases' instants, the same for every thread.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    pub(super) start: Instant,
    pub(super) window_start: Instant,
    pub(super) window_end: Instant,
}

pub(super) fn sleep_until(when: Instant) {
    let now = Instant::now();
    if when > now {
        thread::sleep(when - now);
    }
}
