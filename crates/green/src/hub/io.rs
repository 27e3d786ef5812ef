//! The hub's side of cooperative I/O: each descriptor a greenlet waits on is registered once with epoll (through mio), with at most one reader and one writer waiting on it.
//!
//! Registrations are edge-triggered, and each keeps what the last event
//! said: `readable` and `writable` stay set until a call on the descriptor
//! finds it not ready (`EAGAIN`), or a read comes back short. A greenlet
//! tries its call first only when the flag is set, so a server that
//! answers a request and reads again parks at once instead of paying for
//! a `read` that can only fail (tokio's `ScheduledIo` keeps the same
//! cache). A short read clears the flag because every arrival of new data
//! queues a new edge: data that came after the read is announced by the
//! next poll. The end of the stream is the exception: the peer's FIN (or
//! an error) is announced once, and every read after the last bytes will
//! see it, so once an event said so, `readable` stays set for good.

use std::io;
use std::os::fd::RawFd;

use mio::unix::SourceFd;
use mio::{Interest, Token};

use super::Waiter;

/// Which way a greenlet waits on a descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// For bytes, a connection to accept, or the peer's EOF.
    Read,
    /// For room in the send buffer, or a connect to finish.
    Write,
}

/// One registered descriptor.
#[derive(Debug, Default)]
struct Slot {
    reader: Option<Waiter>,
    writer: Option<Waiter>,
    readable: bool,
    writable: bool,
    /// An event said the read side ended (EOF or an error): a state, not
    /// an edge, so no later event will repeat it.
    ended: bool,
}

/// The registrations of one hub.
#[derive(Debug)]
pub(crate) struct Registry {
    poll: mio::Poll,
    events: mio::Events,
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// How many greenlets wait on a descriptor now.
    waiting: usize,
}

/// The token of the hub's cross-thread waker; descriptors use their key + 1.
pub(crate) const WAKER: Token = Token(0);

impl Registry {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Self {
            poll: mio::Poll::new()?,
            events: mio::Events::with_capacity(1024),
            slots: Vec::new(),
            free: Vec::new(),
            waiting: 0,
        })
    }

    pub(crate) fn mio(&self) -> &mio::Registry {
        self.poll.registry()
    }

    /// Registers `fd` for both directions; returns its key. It starts as
    /// ready both ways, so the first call is tried before any wait.
    pub(crate) fn add(&mut self, fd: RawFd) -> io::Result<usize> {
        let key = self.free.pop().unwrap_or_else(|| {
            self.slots.push(Slot::default());
            self.slots.len() - 1
        });
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut SourceFd(&fd), Token(key + 1), interest)
        {
            self.free.push(key);
            return Err(e);
        }
        self.slots[key] = Slot {
            readable: true,
            writable: true,
            ..Slot::default()
        };
        Ok(key)
    }

    /// Takes `fd` off the list and frees its key.
    pub(crate) fn remove(&mut self, fd: RawFd, key: usize) {
        // Fails only if the descriptor is already closed, which takes it
        // off the list anyway.
        let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        let slot = std::mem::take(&mut self.slots[key]);
        self.waiting -= usize::from(slot.reader.is_some()) + usize::from(slot.writer.is_some());
        self.free.push(key);
    }

    /// Whether the last word on `key` was that it is ready `dir`.
    pub(crate) fn is_ready(&self, key: usize, dir: Dir) -> bool {
        let slot = &self.slots[key];
        match dir {
            Dir::Read => slot.readable,
            Dir::Write => slot.writable,
        }
    }

    /// A call found `key` not ready `dir`: wait for the next edge.
    pub(crate) fn clear(&mut self, key: usize, dir: Dir) {
        let slot = &mut self.slots[key];
        match dir {
            Dir::Read => slot.readable = slot.ended,
            Dir::Write => slot.writable = false,
        }
    }

    /// Makes `waiter` the one woken when `key` turns ready `dir`.
    ///
    /// # Errors
    ///
    /// If another greenlet already waits on it that way (gevent's
    /// `ConcurrentObjectUseError`): two readers of one socket would split
    /// its bytes between them at random.
    pub(crate) fn wait(&mut self, key: usize, dir: Dir, waiter: Waiter) -> io::Result<()> {
        let slot = &mut self.slots[key];
        let place = match dir {
            Dir::Read => &mut slot.reader,
            Dir::Write => &mut slot.writer,
        };
        if place.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "green: another greenlet already waits on this descriptor",
            ));
        }
        *place = Some(waiter);
        self.waiting += 1;
        Ok(())
    }

    /// Takes `waiter` off `key` if it is still there (its wait ended some
    /// other way: a timeout, a kill).
    pub(crate) fn unwait(&mut self, key: usize, dir: Dir, waiter: Waiter) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        let place = match dir {
            Dir::Read => &mut slot.reader,
            Dir::Write => &mut slot.writer,
        };
        if *place == Some(waiter) {
            *place = None;
            self.waiting -= 1;
        }
    }

    /// The waiter on `key` in direction `dir`, if any: the caller is about
    /// to change its deadline.
    pub(crate) fn waiter(&self, key: usize, dir: Dir) -> Option<Waiter> {
        let slot = self.slots.get(key)?;
        match dir {
            Dir::Read => slot.reader,
            Dir::Write => slot.writer,
        }
    }

    /// Whether any greenlet waits on a descriptor.
    pub(crate) fn anyone_waiting(&self) -> bool {
        self.waiting > 0
    }

    /// Waits for events (at most `timeout`), then hands every waiter they
    /// make ready to `wake`; says whether the cross-thread waker fired.
    pub(crate) fn poll(
        &mut self,
        timeout: Option<std::time::Duration>,
        mut wake: impl FnMut(Waiter),
    ) -> io::Result<bool> {
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(false),
            Err(e) => return Err(e),
        }
        let mut remote = false;
        for event in &self.events {
            if event.token() == WAKER {
                remote = true;
                continue;
            }
            let Some(slot) = self.slots.get_mut(event.token().0 - 1) else {
                continue;
            };
            let failed = event.is_error();
            slot.ended |= event.is_read_closed() || failed;
            if event.is_readable() || slot.ended {
                slot.readable = true;
                if let Some(waiter) = slot.reader.take() {
                    self.waiting -= 1;
                    wake(waiter);
                }
            }
            if event.is_writable() || event.is_write_closed() || failed {
                slot.writable = true;
                if let Some(waiter) = slot.writer.take() {
                    self.waiting -= 1;
                    wake(waiter);
                }
            }
        }
        Ok(remote)
    }
}
