//! The switch between stacks: a closure on its own stack that can suspend itself, over corosensei.
//!
//! corosensei hands a coroutine's closure a `&Yielder`, valid for as long as
//! the coroutine runs. A greenlet suspends from deep inside ordinary code
//! (a `read` several calls down), so the current greenlet's yielder is kept
//! in a thread-local, set by [`Fiber::resume`] before each switch in.

use std::cell::Cell;
use std::ptr;

use corosensei::{Coroutine, CoroutineResult, Yielder};

use super::stack::Slot;
use crate::hub::Wake;

type Link = Yielder<Wake, ()>;

thread_local! {
    /// The running fiber's yielder on this thread; null on a hub's own
    /// stack.
    static CURRENT: Cell<*const Link> = const { Cell::new(ptr::null()) };
}

/// A closure on its own stack, started by the first [`resume`](Self::resume).
pub(crate) struct Fiber {
    coroutine: Coroutine<Wake, (), (), Slot>,
    /// This fiber's yielder, known once it has started.
    link: *const Link,
}

impl std::fmt::Debug for Fiber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fiber")
            .field("done", &self.coroutine.done())
            .finish()
    }
}

impl Fiber {
    /// A fiber that will run `body` on `slot`, passing it the first resume's
    /// value. `body` must not unwind: a panic that leaves it would come out of
    /// [`resume`](Self::resume) on the hub's stack.
    pub(crate) fn new(slot: Slot, body: impl FnOnce(Wake) + 'static) -> Self {
        let coroutine = Coroutine::with_stack(slot, move |link: &Link, first: Wake| {
            CURRENT.set(link);
            body(first);
        });
        Self {
            coroutine,
            link: ptr::null(),
        }
    }

    /// Runs the fiber until it suspends (`false`) or its closure returns
    /// (`true`). Called on a hub's stack only, never from inside a fiber.
    pub(crate) fn resume(&mut self, wake: Wake) -> bool {
        debug_assert!(CURRENT.get().is_null(), "a fiber resumed from a fiber");
        if !self.link.is_null() {
            CURRENT.set(self.link);
        }
        let done = matches!(self.coroutine.resume(wake), CoroutineResult::Return(()));
        if self.link.is_null() {
            // The first run set CURRENT to this fiber's yielder.
            self.link = CURRENT.get();
        }
        CURRENT.set(ptr::null());
        done
    }

    /// The fiber's stack, once its closure has returned.
    pub(crate) fn into_slot(self) -> Slot {
        self.coroutine.into_stack()
    }
}

/// Whether the caller runs inside a fiber (a greenlet), not on a hub's own
/// stack or on a thread without a hub.
pub(crate) fn inside() -> bool {
    !CURRENT.get().is_null()
}

/// Suspends the running fiber: control goes back to the `resume` that ran
/// it, and this returns the value of the next `resume`.
///
/// # Panics
///
/// Outside a fiber.
pub(crate) fn suspend() -> Wake {
    let link = CURRENT.get();
    assert!(!link.is_null(), "green: a blocking call outside a greenlet");
    // SAFETY: CURRENT is non-null only while a fiber runs on this thread, and
    // then it is that fiber's yielder, which corosensei keeps valid until the
    // fiber's closure returns; the closure is still running, since it made
    // this call.
    let link = unsafe { &*link };
    link.suspend(())
}
