//! A list of greenlets waiting for one thing, woken first come first served: what every primitive here is built on.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::time::Instant;

use crate::hub::{self, Waiter};

/// Greenlets of this thread's hub waiting for one condition.
#[derive(Debug, Default)]
pub(crate) struct WaitList {
    waiters: RefCell<VecDeque<Waiter>>,
    /// Its waiters belong to this thread's hub.
    _here: PhantomData<*const ()>,
}

impl WaitList {
    /// Parks the running greenlet on this list until woken or `deadline`;
    /// says whether it was woken. An expired timeout scope or a kill
    /// unwinds from here, as from [`hub::wait`].
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        let waiter = hub::with(|core| core.waiter());
        self.waiters.borrow_mut().push_back(waiter);
        let mut leave = Leave {
            list: self,
            waiter,
            woken: false,
        };
        leave.woken = hub::wait(waiter, deadline);
        leave.woken
    }

    /// Wakes the first greenlet still waiting; says whether there was one.
    pub(crate) fn notify_one(&self) -> bool {
        loop {
            let Some(waiter) = self.waiters.borrow_mut().pop_front() else {
                return false;
            };
            if hub::with(|core| core.wake(waiter)) {
                return true;
            }
        }
    }

    /// Wakes every greenlet waiting.
    pub(crate) fn notify_all(&self) {
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        hub::with(|core| {
            for waiter in waiters {
                core.wake(waiter);
            }
        });
    }
}

/// Takes a waiter off its list when its wait ended without a wake (a
/// timeout, a kill, an expired scope). One that was woken but unwinds
/// before it could act (killed while ready) passes the wake on to the next
/// waiter, so a released lock is never left with waiters asleep.
struct Leave<'a> {
    list: &'a WaitList,
    waiter: Waiter,
    woken: bool,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        if self.woken {
            return;
        }
        let mut waiters = self.list.waiters.borrow_mut();
        match waiters.iter().position(|w| *w == self.waiter) {
            Some(i) => {
                waiters.remove(i);
            }
            None => {
                // Taken off by a notify: the wake was for this waiter.
                drop(waiters);
                self.list.notify_one();
            }
        }
    }
}
