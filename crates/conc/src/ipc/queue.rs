//! `Queue`, `JoinableQueue` and `SimpleQueue` between processes: a bounded ring of encoded items in shared memory (Python's `multiprocessing.Queue`).
//!
//! Python's process queue is a pipe with a feeder thread per producer, so
//! `put` never blocks and a slow consumer lets the producer's buffer grow
//! without bound. This one is a ring of bytes in one shared-memory object
//! (`sys::Shm`: a memfd, a robust process-shared mutex, condvars), holding
//! postcard-encoded items as `[length: u32][bytes]`, bounded twice: by
//! `maxsize` items, as Python's, and by the ring's bytes. A full queue
//! makes `put` wait, which is the backpressure the course's
//! producer/consumer needs between processes too.
//!
//! The costs that matter at a million small items a second are the
//! futex wakes, so the queue wakes only who waits (waiter counts in the
//! shared state), and a consumer that frees room wakes a waiting producer
//! only once half the queue is free again: the producer then refills in a
//! burst while the consumer drains, instead of both paying a wake per
//! item. Items are encoded before the lock is taken and decoded after it
//! is let go; under the lock there are only two copies.
//!
//! A process killed in the middle of a `put` or `get` releases the lock
//! (it is robust), but may leave a half-written item: the queue then
//! refuses further use with an error rather than hand out garbage.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytemuck::{Pod, Zeroable};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Error;
use super::wire;
use crate::sys::Shm;

/// The condition variables of a queue's shared object.
const NOT_EMPTY: usize = 0;
const NOT_FULL: usize = 1;
const ALL_DONE: usize = 2;

/// The bytes a ring holds unless told otherwise: 1 MiB (its pages are
/// touched, and so use memory, only as items fill them).
pub const DEFAULT_CAPACITY: usize = 1 << 20;

/// The length prefix of each item in the ring.
const PREFIX: usize = 4;

/// The queue's state in shared memory.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct State {
    /// Offset of the first item's prefix in the ring.
    head: u64,
    /// Bytes in use, prefixes included.
    used: u64,
    /// Items in the ring.
    count: u64,
    /// 0: bounded by bytes only.
    maxsize: u64,
    /// Items put and not yet marked done (JoinableQueue).
    unfinished: u64,
    getters: u64,
    putters: u64,
    joiners: u64,
    /// Non-zero once a holder died mid-operation.
    broken: u64,
}

thread_local! {
    /// Reused encode and decode buffers: one allocation per thread, not per item.
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// How often a wait that has a peer to watch looks at it: how late, at
/// most, a wait notices that the other process is gone.
const PEER_CHECK: Duration = Duration::from_millis(100);

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

    /// After a slice ran out: `Err` if the wait is over.
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

/// The shared part all three queue types and each direction of a pipe
/// are made of: a ring of length-prefixed byte records.
pub(crate) struct Core {
    shm: Shm<State>,
}

impl Core {
    pub(crate) fn new(maxsize: usize, capacity: usize) -> Result<Self, Error> {
        let state = State {
            maxsize: maxsize as u64,
            ..Zeroable::zeroed()
        };
        Ok(Self {
            shm: Shm::create(state, capacity.max(PREFIX + 1), false)?,
        })
    }

    fn lock(&self, deadline: Option<Instant>) -> Result<crate::sys::ShmGuard<'_, State>, Error> {
        let mut g = self.shm.lock(deadline).map_err(|_| Error::Timeout)?;
        if g.owner_died() {
            g.state().broken = 1;
        }
        if g.state().broken != 0 {
            return Err(Error::Decode(
                "a process died in the middle of using this queue; its contents may be torn".into(),
            ));
        }
        Ok(g)
    }

    /// The memfd, to pass to another process.
    pub(crate) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.shm.fd()
    }

    /// Maps a ring another process passed as `file`.
    pub(crate) fn open(file: std::fs::File) -> std::io::Result<Self> {
        Ok(Self {
            shm: Shm::open(file)?,
        })
    }

    /// Puts one record, the concatenation of `parts`.
    pub(crate) fn put(&self, parts: &[&[u8]], until: Until<'_>, wait: bool) -> Result<(), Error> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let need = (PREFIX + len) as u64;
        let mut g = self.lock(until.deadline)?;
        let cap = g.tail().len() as u64;
        if need > cap {
            return Err(Error::Encode(format!(
                "an item of {len} bytes does not fit a queue of {cap} bytes"
            )));
        }
        let fits = |st: &State| st.used + need <= cap && (st.maxsize == 0 || st.count < st.maxsize);
        while !fits(g.state()) {
            if !wait {
                return Err(Error::Full);
            }
            g.state().putters += 1;
            let woke = g.wait(NOT_FULL, until.slice());
            g.state().putters -= 1;
            if !woke && !fits(g.state()) {
                until.expired()?;
            }
        }
        let st = *g.state();
        let start = ((st.head + st.used) % cap) as usize;
        let ring = g.tail();
        write_wrapping(ring, start, &(len as u32).to_le_bytes());
        let mut at = (start + PREFIX) % ring.len();
        for part in parts {
            write_wrapping(ring, at, part);
            at = (at + part.len()) % ring.len();
        }
        let s = g.state();
        s.used += need;
        s.count += 1;
        s.unfinished += 1;
        let wake = s.getters > 0;
        drop(g);
        if wake {
            self.shm.notify_one(NOT_EMPTY);
        }
        Ok(())
    }

    /// Takes the next record's bytes into `out`.
    pub(crate) fn get(&self, out: &mut Vec<u8>, until: Until<'_>, wait: bool) -> Result<(), Error> {
        let mut g = self.lock(until.deadline)?;
        while g.state().count == 0 {
            if !wait {
                return Err(Error::Empty);
            }
            g.state().getters += 1;
            let woke = g.wait(NOT_EMPTY, until.slice());
            g.state().getters -= 1;
            if !woke && g.state().count == 0 {
                until.expired()?;
            }
        }
        let cap = g.tail().len();
        let head = g.state().head as usize;
        let ring = g.tail();
        let mut prefix = [0u8; PREFIX];
        read_wrapping(ring, head, &mut prefix);
        let len = u32::from_le_bytes(prefix) as usize;
        out.clear();
        out.resize(len, 0);
        read_wrapping(ring, (head + PREFIX) % cap, out);
        let s = g.state();
        s.head = ((head + PREFIX + len) % cap) as u64;
        s.used -= (PREFIX + len) as u64;
        s.count -= 1;
        // Wake a waiting producer once half the queue is free (by items
        // and by bytes), or at once when it is empty: it then refills in
        // a burst. With more than one producer waiting, wake them all:
        // each waits for its own item's room, and one woken that still
        // does not fit must not leave another asleep that would.
        let wake = match s.putters {
            0 => None,
            n => {
                let half_items = s.maxsize == 0 || s.count <= s.maxsize / 2;
                let half_bytes = s.used <= cap as u64 / 2;
                (s.count == 0 || (half_items && half_bytes)).then_some(n)
            }
        };
        drop(g);
        match wake {
            Some(1) => self.shm.notify_one(NOT_FULL),
            Some(_) => self.shm.notify_all(NOT_FULL),
            None => {}
        }
        Ok(())
    }

    /// Waits until a record is in (`Ok(true)`) or the wait ends.
    pub(crate) fn wait_nonempty(&self, until: Until<'_>) -> Result<bool, Error> {
        let mut g = self.lock(until.deadline)?;
        while g.state().count == 0 {
            g.state().getters += 1;
            let woke = g.wait(NOT_EMPTY, until.slice());
            g.state().getters -= 1;
            if !woke && g.state().count == 0 {
                match until.expired() {
                    Err(Error::Timeout) => return Ok(false),
                    other => other?,
                }
            }
        }
        Ok(true)
    }

    pub(crate) fn qsize(&self) -> usize {
        self.lock(None).map_or(0, |mut g| g.state().count as usize)
    }

    fn full(&self) -> bool {
        self.lock(None).is_ok_and(|mut g| {
            let s = *g.state();
            s.maxsize > 0 && s.count >= s.maxsize
        })
    }

    fn task_done(&self) -> Result<(), Error> {
        let mut g = self.lock(None)?;
        let s = g.state();
        if s.unfinished == 0 {
            return Err(Error::Io(std::io::Error::other(
                "task_done() called more times than there were items",
            )));
        }
        s.unfinished -= 1;
        let wake = s.unfinished == 0 && s.joiners > 0;
        drop(g);
        if wake {
            self.shm.notify_all(ALL_DONE);
        }
        Ok(())
    }

    fn join(&self, deadline: Option<Instant>) -> Result<(), Error> {
        let mut g = self.lock(None)?;
        while g.state().unfinished > 0 {
            g.state().joiners += 1;
            let woke = g.wait(ALL_DONE, deadline);
            g.state().joiners -= 1;
            if !woke && g.state().unfinished > 0 {
                return Err(Error::Timeout);
            }
        }
        Ok(())
    }
}

fn write_wrapping(ring: &mut [u8], at: usize, bytes: &[u8]) {
    let first = bytes.len().min(ring.len() - at);
    ring[at..at + first].copy_from_slice(&bytes[..first]);
    ring[..bytes.len() - first].copy_from_slice(&bytes[first..]);
}

fn read_wrapping(ring: &[u8], at: usize, out: &mut [u8]) {
    let first = out.len().min(ring.len() - at);
    out[..first].copy_from_slice(&ring[at..at + first]);
    let rest = out.len() - first;
    out[first..].copy_from_slice(&ring[..rest]);
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
    fn new(maxsize: usize, capacity: usize) -> Result<Self, Error> {
        Ok(Self {
            core: Arc::new(Core::new(maxsize, capacity)?),
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
            core: Typed::new(maxsize, capacity)?,
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
            queue: Queue::new(maxsize)?,
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
            core: Typed::new(0, DEFAULT_CAPACITY)?,
        })
    }

    queue_methods!();
}
