//! The count of open connections against `--max-conns`, for a server of one loop, many threads or many processes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::sys::SharedCounters;

/// How many connections a whole server has open, touched only when a client
/// arrives or leaves, never per message.
#[derive(Debug, Clone)]
pub(crate) enum OpenCount {
    /// A server in one process: its loops (one, or one per thread) share an
    /// atomic.
    Local(Arc<AtomicUsize>),
    /// One worker process among several (`prefork`, `hybrid`): each counts
    /// in its own slot of a shared page, and the server's count is their
    /// sum. A slot per process, not one shared counter, because a worker
    /// that dies by SIGKILL cannot take its connections off a shared
    /// count: the parent zeroes its slot instead.
    Shared {
        counters: Arc<SharedCounters>,
        mine: usize,
    },
}

impl Default for OpenCount {
    fn default() -> Self {
        Self::Local(Arc::default())
    }
}

/// One admitted connection's place in the [`OpenCount`], given back when
/// it is dropped: a connection holds it for its whole life, so the count is
/// taken and returned in one place whichever way the connection ends.
#[derive(Debug)]
pub(crate) struct Slot(OpenCount);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.leave();
    }
}

impl OpenCount {
    /// A place for one more connection if the server has fewer than `max`
    /// open; `None` means the client is to be closed at once.
    pub(crate) fn admit(&self, max: usize) -> Option<Slot> {
        self.count_in(max).then(|| Slot(self.clone()))
    }

    fn count_in(&self, max: usize) -> bool {
        match self {
            Self::Local(open) => {
                if open.fetch_add(1, Ordering::Relaxed) < max {
                    return true;
                }
                open.fetch_sub(1, Ordering::Relaxed);
                false
            }
            Self::Shared { counters, mine } => {
                let slots = counters.slots();
                // Count first, then sum: of two processes admitting at once,
                // the later sum sees both, so the total never passes `max`
                // (at worst both back off, and both clients are refused).
                slots[*mine].fetch_add(1, Ordering::SeqCst);
                let open: usize = slots.iter().map(|s| s.load(Ordering::SeqCst)).sum();
                if open <= max {
                    return true;
                }
                slots[*mine].fetch_sub(1, Ordering::SeqCst);
                false
            }
        }
    }

    fn leave(&self) {
        match self {
            Self::Local(open) => open.fetch_sub(1, Ordering::Relaxed),
            Self::Shared { counters, mine } => {
                counters.slots()[*mine].fetch_sub(1, Ordering::SeqCst)
            }
        };
    }
}
