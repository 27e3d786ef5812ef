//! `Queue`, `JoinableQueue` and `SimpleQueue` between processes: a bounded ring of encoded items in shared memory (Python's `multiprocessing.Queue`).
//!
//! Python's process queue is a pipe with a feeder thread per producer, so
//! `put` never blocks and a slow consumer lets the producer's buffer grow
//! without bound. This one is a ring of bytes in one shared-memory object
//! (`sys::Ring`: a memfd with a robust lock for the producers and one for
//! the consumers, which meet only at two atomic positions), holding
//! postcard-encoded items as `[length: u32][bytes]`, bounded twice: by
//! `maxsize` items, as Python's, and by the ring's bytes. A full queue
//! makes `put` wait, which is the backpressure the course's
//! producer/consumer needs between processes too.
//!
//! The costs that matter at millions of small items a second are cache
//! lines moving between cores and futex calls, so: a producer and a
//! consumer never take the same lock; a side that waits first looks
//! again for a few hundred spin hints (the other side, running on another
//! core, usually brings what it waits for in less than a futex sleep
//! costs); then it counts itself as waiting and sleeps on a futex word in
//! the shared memory, and the other side wakes only who is counted. A
//! consumer that frees room wakes a waiting producer only once half the
//! queue is free again: the producer then refills in a burst while the
//! consumer drains, instead of both paying a wake per item. Items are
//! encoded before the lock is taken and decoded after it is let go; under
//! the lock there are only two copies.
//!
//! A process killed in the middle of a `put` or `get` has published
//! nothing (a record is published by one store of its side's position,
//! after its bytes are in), and its side's lock is robust: the next
//! producer or consumer goes on from the last published record, so a
//! `kill -9` neither tears an item nor hangs the others.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Error;
use super::wire;
use crate::sys::ring_prefix as PREFIX;
use crate::sys::{self, LockFail, PushFail, Ring};

/// The bytes a ring holds unless told otherwise: 1 MiB (its pages are
/// touched, and so use memory, only as items fill them).
pub const DEFAULT_CAPACITY: usize = 1 << 20;

thread_local! {
    /// Reused encode and decode buffers: one allocation per thread, not per item.
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// How often a wait that has a peer to watch looks at it: how late, at
/// most, a wait notices that the other process is gone.
const PEER_CHECK: Duration = Duration::from_millis(100);

/// How many times a getter (or putter) looks again before it sleeps: a
/// peer that is running on another core usually brings what it waits for
/// within a few hundred nanoseconds, much less than a futex sleep and wake.
const SPINS: u32 = 64;

/// A wait's end: its deadline, and the socket of a peer that must still
/// exist (a pipe's other end), looked at every [`PEER_CHECK`] while waiting.
#[derive(Clone, Copy)]
pub(crate) struct Until<'a> {
    pub(crate) deadline: Option<Instant>,
    pub(crate) peer: Option<&'a std::os::unix::net::UnixStream>,
}

impl Until<'_> {
    /// When the next slice of a wait ends.
    fn slice(&self) -> Option<Instant> {
        match (self.deadline, self.peer) {
            (d, None) => d,
            (None, Some(_)) => Instant::now().checked_add(PEER_CHECK),
            (Some(d), Some(_)) => Some(d.min(Instant::now() + PEER_CHECK)),
        }
    }

    /// After a slice: `Err` if the wait is over.
    fn expired(&self) -> Result<(), Error> {
        if let Some(peer) = self.peer
            && !wire::peer_open(peer)
        {
            return Err(Error::Closed);
        }
        match self.deadline {
            Some(d) if Instant::now() >= d => Err(Error::Timeout),
            _ => Ok(()),
        }
    }
}

/// Sleeps on `word` unless `ready()` holds, counted in `waiters` so the
/// other side knows to wake it, for at most one slice of `until`; then
/// `Err` if the wait is over. The count goes up before `ready` is looked
/// at, and the other side changes what `ready` reads before it looks at
/// the count (both SeqCst), so a wake is never lost between the two.
fn sleep(
    word: &AtomicU32,
    waiters: &AtomicU32,
    until: &Until<'_>,
    ready: impl Fn() -> bool,
) -> Result<(), Error> {
    for i in 0..SPINS {
        if ready() {
            return Ok(());
        }
        for _ in 0..1u32 << (i / 16) {
            std::hint::spin_loop();
        }
    }
    // About to sleep: a peer that is gone is reported now, not a slice
    // later (what it sent before it went is still taken first).
    if let Some(peer) = until.peer
        && !wire::peer_open(peer)
    {
        return if ready() { Ok(()) } else { Err(Error::Closed) };
    }
    let seen = word.load(Ordering::SeqCst);
    waiters.fetch_add(1, Ordering::SeqCst);
    if !ready() {
        sys::futex_wait(word, seen, until.slice());
    }
    waiters.fetch_sub(1, Ordering::SeqCst);
    if ready() { Ok(()) } else { until.expired() }
}

/// Wakes up to `n` sleepers on `word` if any are counted in `waiters`.
fn wake(word: &AtomicU32, waiters: &AtomicU32, n: u32) {
    if waiters.load(Ordering::SeqCst) > 0 {
        word.fetch_add(1, Ordering::SeqCst);
        sys::futex_wake(word, n);
    }
}

fn lock_failed(fail: LockFail) -> Error {
    match fail {
        LockFail::Timeout => Error::Timeout,
        LockFail::Deadlock => {
            Error::Io(std::io::Error::other("this thread already holds the lock"))
        }
    }
}

/// The shared part all three queue types and each direction of a pipe
/// are made of: a [`Ring`] of length-prefixed byte records, and the waits
/// for data, for room and for every item done.
pub(crate) struct Core {
    ring: Ring,
}

impl Core {
    /// A ring of `capacity` bytes and at most `maxsize` records; a
    /// `joinable` one counts what is put until `task_done` (an atomic add
    /// per put, which is also a full fence: the others skip it).
    pub(crate) fn new(maxsize: usize, capacity: usize, joinable: bool) -> Result<Self, Error> {
        Ok(Self {
            ring: Ring::create(capacity, maxsize, joinable)?,
        })
    }

    /// The memfd, to pass to another process.
    pub(crate) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.ring.fd()
    }

    /// Maps a ring another process passed as `file`.
    pub(crate) fn open(file: std::fs::File) -> std::io::Result<Self> {
        Ok(Self {
            ring: Ring::open(file)?,
        })
    }

    /// Puts one record, the concatenation of `parts`.
    pub(crate) fn put(&self, parts: &[&[u8]], until: Until<'_>, wait: bool) -> Result<(), Error> {
        let sig = self.ring.signals();
        let need = PREFIX + parts.iter().map(|p| p.len()).sum::<usize>();
        // Counted before it is seen, so task_done can never run ahead.
        let counted = self.ring.joinable();
        if counted {
            self.ring.unfinished().fetch_add(1, Ordering::SeqCst);
        }
        let pushed = loop {
            let pushed = match self.ring.lock_writer(until.deadline) {
                Ok(mut w) => w.push(parts),
                Err(fail) => break Err(lock_failed(fail)),
            };
            match pushed {
                Err(PushFail::Full) if wait => {}
                Err(PushFail::Full) => break Err(Error::Full),
                Err(PushFail::TooLarge) => {
                    break Err(Error::Encode(format!(
                        "an item of {} bytes does not fit a queue of {} bytes",
                        need - PREFIX,
                        self.ring.capacity()
                    )));
                }
                Ok(()) => break Ok(()),
            }
            if let Err(e) = sleep(&sig.room, &sig.putters, &until, || self.ring.has_room(need)) {
                break Err(e);
            }
        };
        match pushed {
            Ok(()) => wake(&sig.data, &sig.getters, 1),
            Err(_) if counted => {
                self.ring.unfinished().fetch_sub(1, Ordering::SeqCst);
            }
            Err(_) => {}
        }
        pushed
    }

    /// Takes the next record: its first `head.len()` bytes into `head`,
    /// the rest into `out`.
    pub(crate) fn get(
        &self,
        head: &mut [u8],
        out: &mut Vec<u8>,
        until: Until<'_>,
        wait: bool,
    ) -> Result<(), Error> {
        let sig = self.ring.signals();
        loop {
            let popped = self
                .ring
                .lock_reader(until.deadline)
                .map_err(lock_failed)?
                .pop(head, out)
                .map_err(Error::Decode)?;
            if popped {
                break;
            }
            if !wait {
                return Err(Error::Empty);
            }
            sleep(&sig.data, &sig.getters, &until, || self.ring.len().0 > 0)?;
        }
        // Wake waiting producers once half the queue is free (by items and
        // by bytes), or at once when it is empty: they then refill in a
        // burst, instead of both sides paying a wake per item. All of
        // them: each waits for its own item's room.
        if sig.putters.load(Ordering::SeqCst) > 0 {
            let (count, used) = self.ring.len();
            let max = self.ring.maxsize();
            let half_items = max == 0 || u64::from(count) <= max / 2;
            let half_bytes = used as usize <= self.ring.capacity() / 2;
            if count == 0 || (half_items && half_bytes) {
                wake(&sig.room, &sig.putters, u32::MAX);
            }
        }
        Ok(())
    }

    /// Waits until a record is in (`Ok(true)`) or the wait ends.
    ///
    /// A put wakes one sleeper, and this one takes nothing: so a wait that
    /// slept passes the wake on, lest a receiver asleep beside it keep
    /// sleeping beside an item.
    pub(crate) fn wait_nonempty(&self, until: Until<'_>) -> Result<bool, Error> {
        let sig = self.ring.signals();
        let mut slept = false;
        while self.ring.len().0 == 0 {
            slept = true;
            match sleep(&sig.data, &sig.getters, &until, || self.ring.len().0 > 0) {
                Err(Error::Timeout) => return Ok(false),
                other => other?,
            }
        }
        if slept {
            wake(&sig.data, &sig.getters, 1);
        }
        Ok(true)
    }

    pub(crate) fn qsize(&self) -> usize {
        self.ring.len().0 as usize
    }

    fn full(&self) -> bool {
        let max = self.ring.maxsize();
        max > 0 && u64::from(self.ring.len().0) >= max
    }

    fn task_done(&self) -> Result<(), Error> {
        let sig = self.ring.signals();
        let left = self
            .ring
            .unfinished()
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .map_err(|_| {
                Error::Io(std::io::Error::other(
                    "task_done() called more times than there were items",
                ))
            })?;
        if left == 1 {
            wake(&sig.done, &sig.joiners, u32::MAX);
        }
        Ok(())
    }

    fn join(&self, deadline: Option<Instant>) -> Result<(), Error> {
        let sig = self.ring.signals();
        let until = Until {
            deadline,
            peer: None,
        };
        let done = || self.ring.unfinished().load(Ordering::SeqCst) == 0;
        while !done() {
            sleep(&sig.done, &sig.joiners, &until, done)?;
        }
        Ok(())
    }
}

/// Generates the put/get half every queue type shares.
macro_rules! queue_methods {
    () => {
        /// Puts `item`, waiting while the queue is full. The item is
        /// encoded, so it stays the caller's.
        pub fn put(&self, item: &T) -> Result<(), Error> {
            self.core.put_encoded(item, None, true)
        }

        /// Gets the next item, waiting while the queue is empty.
        pub fn get(&self) -> Result<T, Error> {
            self.core.get_decoded(None, true)
        }

        /// Whether the queue holds no item now (Python: "not reliable",
        /// another process may put or get at any time).
        pub fn empty(&self) -> bool {
            self.core.core.qsize() == 0
        }
    };
}

/// A [`Core`] typed for `T`.
struct Typed<T> {
    core: Arc<Core>,
    _item: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Typed<T> {
    fn clone(&self) -> Self {
        Self {
            core: Arc::clone(&self.core),
            _item: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> Typed<T> {
    fn new(maxsize: usize, capacity: usize, joinable: bool) -> Result<Self, Error> {
        Ok(Self {
            core: Arc::new(Core::new(maxsize, capacity, joinable)?),
            _item: PhantomData,
        })
    }

    fn put_encoded(&self, item: &T, deadline: Option<Instant>, wait: bool) -> Result<(), Error> {
        BUFFER.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.clear();
            wire::encode_plain(item, &mut buf)?;
            self.core.put(
                &[&buf],
                Until {
                    deadline,
                    peer: None,
                },
                wait,
            )
        })
    }

    fn get_decoded(&self, deadline: Option<Instant>, wait: bool) -> Result<T, Error> {
        BUFFER.with(|buf| {
            let mut buf = buf.borrow_mut();
            self.core.get(
                &mut [],
                &mut buf,
                Until {
                    deadline,
                    peer: None,
                },
                wait,
            )?;
            wire::decode(&buf, Vec::new())
        })
    }
}

impl<T> Serialize for Typed<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        wire::SerFd(self.core.fd()).serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for Typed<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fd = wire::DeFd::deserialize(deserializer)?;
        let core = Core::open(std::fs::File::from(fd.0)).map_err(serde::de::Error::custom)?;
        Ok(Self {
            core: Arc::new(core),
            _item: PhantomData,
        })
    }
}

/// A process queue of `T` with at most `maxsize` items (Python's
/// `multiprocessing.Queue`); pass it to a child as (part of) its arguments.
///
/// # Examples
///
/// ```
/// use conc::ipc::Queue;
///
/// let q: Queue<String> = Queue::new(100).unwrap();
/// q.put(&"dumplings".to_string()).unwrap();
/// assert_eq!(q.qsize(), 1);
/// assert_eq!(q.get().unwrap(), "dumplings");
/// assert!(matches!(q.get_nowait(), Err(conc::ipc::Error::Empty)));
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Queue<T> {
    core: Typed<T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("qsize", &self.core.core.qsize())
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// A queue of at most `maxsize` items (0: as many as fit in
    /// [`DEFAULT_CAPACITY`] bytes).
    pub fn new(maxsize: usize) -> Result<Self, Error> {
        Self::with_capacity(maxsize, DEFAULT_CAPACITY)
    }

    /// A queue of at most `maxsize` items and `capacity` bytes of items.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: conc::ipc::Queue<Vec<u8>> = conc::ipc::Queue::with_capacity(0, 64).unwrap();
    /// assert!(matches!(q.put(&vec![0; 100]), Err(conc::ipc::Error::Encode(_)))); // can never fit
    /// ```
    pub fn with_capacity(maxsize: usize, capacity: usize) -> Result<Self, Error> {
        Ok(Self {
            core: Typed::new(maxsize, capacity, false)?,
        })
    }

    queue_methods!();

    /// Puts `item`, waiting at most `timeout` for room.
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<(), Error> {
        self.core
            .put_encoded(item, Some(crate::shim::deadline(timeout)), true)
    }

    /// Puts `item` if there is room now, else [`Error::Full`].
    pub fn put_nowait(&self, item: &T) -> Result<(), Error> {
        self.core.put_encoded(item, None, false)
    }

    /// Gets an item, waiting at most `timeout` ([`Error::Timeout`]).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, Error> {
        self.core
            .get_decoded(Some(crate::shim::deadline(timeout)), true)
    }

    /// Gets an item if there is one now, else [`Error::Empty`].
    pub fn get_nowait(&self) -> Result<T, Error> {
        self.core.get_decoded(None, false)
    }

    /// How many items it holds now.
    pub fn qsize(&self) -> usize {
        self.core.core.qsize()
    }

    /// Whether it holds `maxsize` items now.
    pub fn full(&self) -> bool {
        self.core.core.full()
    }
}

/// A [`Queue`] whose consumers mark items done, so a producer can
/// [`join`](Self::join) until every item put was processed (Python's
/// `multiprocessing.JoinableQueue`).
///
/// # Examples
///
/// ```
/// let q: conc::ipc::JoinableQueue<u32> = conc::ipc::JoinableQueue::new(10).unwrap();
/// q.put(&1).unwrap();
/// assert_eq!(q.get().unwrap(), 1);
/// q.task_done().unwrap();
/// q.join().unwrap(); // every item is done
/// assert!(q.task_done().is_err()); // one too many
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct JoinableQueue<T> {
    queue: Queue<T>,
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// A queue of at most `maxsize` items.
    pub fn new(maxsize: usize) -> Result<Self, Error> {
        Ok(Self {
            queue: Queue {
                core: Typed::new(maxsize, DEFAULT_CAPACITY, true)?,
            },
        })
    }

    /// Marks one item got as processed.
    pub fn task_done(&self) -> Result<(), Error> {
        self.queue.core.core.task_done()
    }

    /// Waits until every item put has been marked done.
    pub fn join(&self) -> Result<(), Error> {
        self.queue.core.core.join(None)
    }

    /// Waits at most `timeout` for every item to be done.
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), Error> {
        self.queue
            .core
            .core
            .join(Some(crate::shim::deadline(timeout)))
    }
}

impl<T> std::ops::Deref for JoinableQueue<T> {
    type Target = Queue<T>;

    fn deref(&self) -> &Queue<T> {
        &self.queue
    }
}

/// The plainest process queue: `put`, `get` and `empty` (Python's
/// `multiprocessing.SimpleQueue`), bounded by its bytes only.
///
/// # Examples
///
/// ```
/// let q: conc::ipc::SimpleQueue<(u8, String)> = conc::ipc::SimpleQueue::new().unwrap();
/// q.put(&(1, "a".into())).unwrap();
/// assert!(!q.empty());
/// assert_eq!(q.get().unwrap(), (1, "a".into()));
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct SimpleQueue<T> {
    core: Typed<T>,
}

impl<T> Clone for SimpleQueue<T> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
        }
    }
}

impl<T: Serialize + DeserializeOwned> SimpleQueue<T> {
    /// An empty queue of [`DEFAULT_CAPACITY`] bytes.
    pub fn new() -> Result<Self, Error> {
        Ok(Self {
            core: Typed::new(0, DEFAULT_CAPACITY, false)?,
        })
    }

    queue_methods!();
}
