//! A ring of byte records in shared memory, with one robust lock for its writers and one for its readers: the two sides meet only at two atomic positions.
//!
//! This is the two-lock queue (Michael and Scott's) over a byte ring: a
//! writer takes the writers' lock, copies a record `[length: u32][bytes]`
//! into the free part of the ring and publishes it by moving the write
//! position; a reader takes the readers' lock, copies the record at the
//! read position out and frees it by moving that position. A producer and
//! a consumer so never wait for each other's lock, and each lock stays in
//! its own side's cache. Each position packs the items and the bytes that
//! side has moved (32 bits each, wrapping), so one store publishes both,
//! and the length and the item count can never disagree.
//!
//! A process killed in the middle of a record has published nothing: the
//! robust lock passes to the next writer (or reader), which starts from the
//! last published position, so a `kill -9` tears no record and loses none.
//!
//! What waits (for data, for room, for `task_done`) is the caller's, in
//! safe code over the [`Signals`] atomics and [`futex_wait`]/[`futex_wake`].
//! This module keeps the unsafe part: mapping the memfd, the pthread
//! mutexes in it, and copying bytes into and out of the ring without ever
//! making a Rust reference to bytes the other side may be using.

use std::cell::UnsafeCell;
use std::fs::File;
use std::io;
use std::marker::PhantomData;
use std::mem::size_of;
use std::os::fd::{AsFd, BorrowedFd};
use std::ptr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use memmap2::MmapMut;
use rustix::thread::futex;

use super::shm::{LockFail, init_mutex, lock_mutex, new_mapping, not_ours, open_mapping};

/// Written last by the creator, checked by every opener.
const MAGIC: u64 = 0x636f_6e63_7269_6e67; // "concring"

/// The length prefix of each record.
pub(crate) const PREFIX: usize = 4;

/// The largest ring: positions count bytes modulo 2^32, so that the
/// distance between them is never ambiguous.
pub(crate) const MAX_CAPACITY: usize = 1 << 31;

/// One side's lock, and the other side's position as this side last
/// read it: on a cache line that only this side writes, so that taking
/// an uncontended lock stays in this side's cache.
#[repr(C, align(64))]
struct Side {
    mutex: UnsafeCell<libc::pthread_mutex_t>,
    /// The other side's position when this side last looked: a writer
    /// looks again only when the ring seems full, a reader only when it
    /// seems empty, so the other side's line moves once per burst.
    seen: AtomicU64,
}

/// A side's position, on a line of its own: items moved (high 32 bits)
/// and bytes moved (low 32 bits), both wrapping.
#[repr(C, align(64))]
struct Pos(AtomicU64);

/// What the two sides use to wait for each other, in shared memory: the
/// futex words (bumped when something a waiter waits for happens and a
/// waiter is counted) and the waiter counts.
#[repr(C, align(64))]
pub(crate) struct Signals {
    /// Bumped when a record is published while a getter waits.
    pub(crate) data: AtomicU32,
    /// Bumped when room is freed while a putter waits.
    pub(crate) room: AtomicU32,
    /// Bumped when the last unfinished item is done while a joiner waits.
    pub(crate) done: AtomicU32,
    pub(crate) getters: AtomicU32,
    pub(crate) putters: AtomicU32,
    pub(crate) joiners: AtomicU32,
}

/// Items put and not yet marked done (`JoinableQueue`), on a line of its
/// own: producers write it at every put, and the waiter counts that both
/// sides read at every operation must not move with it.
#[repr(C, align(64))]
pub(crate) struct Unfinished(pub(crate) AtomicU64);

/// The start of every mapping; the ring's bytes follow it.
#[repr(C)]
struct Header {
    magic: u64,
    capacity: u64,
    maxsize: u64,
    /// Non-zero if puts count unfinished items (`JoinableQueue`).
    joinable: u64,
    writers: Side,
    write_pos: Pos,
    readers: Side,
    read_pos: Pos,
    signals: Signals,
    unfinished: Unfinished,
}

const fn items(pos: u64) -> u32 {
    (pos >> 32) as u32
}

const fn bytes(pos: u64) -> u32 {
    pos as u32
}

/// `pos` moved on by one record of `len` bytes, prefix included.
const fn advance(pos: u64, len: u32) -> u64 {
    ((items(pos).wrapping_add(1) as u64) << 32) | bytes(pos).wrapping_add(len) as u64
}

/// A shared ring of `capacity` bytes of records, holding at most `maxsize`
/// of them (0: as many as fit), counting unfinished items if joinable.
pub(crate) struct Ring {
    map: MmapMut,
    file: File,
}

// SAFETY: the mapping is shared memory meant for many processes, and so
// for many threads: the positions and signals are atomics, the locks are
// process-shared pthread mutexes, and the ring's bytes are only copied by
// a `Writer` or `Reader`, each holding its side's lock, into the part of
// the ring the positions give that side.
unsafe impl Send for Ring {}
// SAFETY: as for Send.
unsafe impl Sync for Ring {}

impl Ring {
    fn header(&self) -> &Header {
        // SAFETY: every mapping is at least a header long (checked at open,
        // made so at create), page aligned, and lives as long as `self`;
        // the plain fields are written only before the ring is shared, the
        // rest are atomics and UnsafeCells.
        unsafe { &*(self.map.as_ptr() as *const Header) }
    }

    fn ring_offset() -> usize {
        size_of::<Header>().next_multiple_of(64)
    }

    /// The ring's first byte, as a raw pointer for the copies.
    fn base(&self) -> *mut u8 {
        self.map.as_ptr().wrapping_add(Self::ring_offset()) as *mut u8
    }

    /// A new, empty ring of `capacity` bytes rounded up to a power of two
    /// (so that byte positions, which wrap at 2^32, wrap with the ring).
    pub(crate) fn create(capacity: usize, maxsize: usize, joinable: bool) -> io::Result<Self> {
        let capacity = capacity.max(PREFIX + 1).next_power_of_two();
        if capacity > MAX_CAPACITY {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a ring holds at most {MAX_CAPACITY} bytes, not {capacity}"),
            ));
        }
        let (file, map) = new_mapping(c"conc-ring", Self::ring_offset() + capacity)?;
        let ring = Self { map, file };
        let h = ring.map.as_ptr() as *mut Header;
        // SAFETY: (for every block below) `h` points at the start of a
        // fresh, zero-filled, page aligned mapping longer than a header,
        // which no one else can see yet: initialising its fields in place
        // is sound. Zero is a valid value of every atomic in it.
        let header = unsafe { &*h };
        // SAFETY: see above.
        unsafe { init_mutex(header.writers.mutex.get(), false)? };
        // SAFETY: see above.
        unsafe { init_mutex(header.readers.mutex.get(), false)? };
        // SAFETY: see above; the shared reference `header` is not used
        // after this point, so no reference to these plain fields is alive.
        unsafe {
            (*h).capacity = capacity as u64;
        }
        // SAFETY: see above.
        unsafe {
            (*h).maxsize = maxsize as u64;
        }
        // SAFETY: see above.
        unsafe {
            (*h).joinable = u64::from(joinable);
        }
        // SAFETY: see above.
        unsafe {
            (*h).magic = MAGIC;
        }
        Ok(ring)
    }

    /// Maps a ring another process created and passed as `file`.
    pub(crate) fn open(file: File) -> io::Result<Self> {
        let map = open_mapping(&file, Self::ring_offset(), "ring")?;
        let len = map.len();
        let ring = Self { map, file };
        let h = ring.header();
        if h.magic != MAGIC
            || !h.capacity.is_power_of_two()
            || Self::ring_offset() as u64 + h.capacity != len as u64
        {
            return Err(not_ours("ring", "its layout differs"));
        }
        Ok(ring)
    }

    /// The memfd, to pass to another process.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// The ring's bytes.
    pub(crate) fn capacity(&self) -> usize {
        self.header().capacity as usize
    }

    /// The most records it holds (0: as many as fit).
    pub(crate) fn maxsize(&self) -> u64 {
        self.header().maxsize
    }

    /// What waiters wait on.
    pub(crate) fn signals(&self) -> &Signals {
        &self.header().signals
    }

    /// Whether puts count unfinished items.
    pub(crate) fn joinable(&self) -> bool {
        self.header().joinable != 0
    }

    /// Items put and not yet marked done (counted only if joinable).
    pub(crate) fn unfinished(&self) -> &AtomicU64 {
        &self.header().unfinished.0
    }

    /// The records and bytes in the ring now (prefixes included).
    pub(crate) fn len(&self) -> (u32, u32) {
        let h = self.header();
        let read = h.read_pos.0.load(Ordering::SeqCst);
        let write = h.write_pos.0.load(Ordering::SeqCst);
        (
            items(write).wrapping_sub(items(read)),
            bytes(write).wrapping_sub(bytes(read)),
        )
    }

    /// Whether a record of `need` bytes (prefix included) fits between
    /// these positions, by bytes and by `maxsize`.
    fn fits(&self, write: u64, read: u64, need: usize) -> bool {
        let used = bytes(write).wrapping_sub(bytes(read)) as usize;
        let count = u64::from(items(write).wrapping_sub(items(read)));
        let max = self.maxsize();
        used + need <= self.capacity() && (max == 0 || count < max)
    }

    /// Whether a record of `need` bytes (prefix included) fits now.
    pub(crate) fn has_room(&self, need: usize) -> bool {
        let h = self.header();
        let read = h.read_pos.0.load(Ordering::SeqCst);
        self.fits(h.write_pos.0.load(Ordering::SeqCst), read, need)
    }

    /// Takes the writers' lock.
    pub(crate) fn lock_writer(&self, deadline: Option<Instant>) -> Result<Writer<'_>, LockFail> {
        lock_side(&self.header().writers, deadline)?;
        Ok(Writer {
            ring: self,
            _not_send: PhantomData,
        })
    }

    /// Takes the readers' lock.
    pub(crate) fn lock_reader(&self, deadline: Option<Instant>) -> Result<Reader<'_>, LockFail> {
        lock_side(&self.header().readers, deadline)?;
        Ok(Reader {
            ring: self,
            _not_send: PhantomData,
        })
    }

    /// Where byte position `pos` (counted from the start, wrapping) falls
    /// in the ring: a mask, as the capacity is a power of two (a `%` by a
    /// capacity read from shared memory is a division per copy).
    fn offset(&self, pos: usize) -> usize {
        pos & (self.capacity() - 1)
    }

    /// Copies `src` into the ring from offset `at`, wrapping at its end.
    /// Inlined, so that the 4-byte prefix is one store; a one-byte part
    /// (a pipe's tag) is written as a byte, not through `memcpy`.
    ///
    /// # Safety
    /// The caller holds the writers' lock, and `at..at + src.len()`
    /// (modulo the capacity) lies in the free part of the ring, which no
    /// reader reads until the write position is published past it.
    #[inline(always)]
    unsafe fn copy_in(&self, at: usize, src: &[u8]) {
        let room = self.capacity() - at;
        let dst = self.base().wrapping_add(at);
        if src.len() == 1 {
            // SAFETY: (every copy) the ranges are inside the ring (`at` is
            // below the capacity, a first piece ends at most at its end,
            // the rest from offset 0 is shorter than the free part); no
            // one else writes or reads them now (the caller's promise), and
            // `src` is not in the ring's free part.
            unsafe { dst.write(src[0]) };
        } else if src.len() <= room {
            // SAFETY: see above.
            unsafe { ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
        } else {
            let (head, rest) = src.split_at(room);
            // SAFETY: see above.
            unsafe { ptr::copy_nonoverlapping(head.as_ptr(), dst, head.len()) };
            // SAFETY: see above.
            unsafe { ptr::copy_nonoverlapping(rest.as_ptr(), self.base(), rest.len()) };
        }
    }

    /// Copies `len` bytes out of the ring from offset `at` to `dst`.
    ///
    /// # Safety
    /// The caller holds the readers' lock, the range lies in the published
    /// part of the ring, which no writer writes until the read position is
    /// moved past it, and `dst` is valid for `len` bytes of writes and
    /// outside the ring.
    #[inline(always)]
    unsafe fn copy_out(&self, at: usize, dst: *mut u8, len: usize) {
        let room = self.capacity() - at;
        let src = self.base().wrapping_add(at);
        if len <= room {
            // SAFETY: as in `copy_in`, with the roles of the sides swapped.
            unsafe { ptr::copy_nonoverlapping(src, dst, len) };
        } else {
            // SAFETY: as above.
            unsafe { ptr::copy_nonoverlapping(src, dst, room) };
            // SAFETY: as above; `dst` is valid for `len` bytes, so `room`
            // past it is in the same allocation.
            let rest = unsafe { dst.add(room) };
            // SAFETY: as above.
            unsafe { ptr::copy_nonoverlapping(self.base(), rest, len - room) };
        }
    }
}

/// Takes one side's robust lock. A holder that died holding it has
/// published nothing half-done, so the lock is simply made usable again.
fn lock_side(side: &Side, deadline: Option<Instant>) -> Result<(), LockFail> {
    // SAFETY: an initialised process-shared mutex in a mapping that lives
    // as long as `side`'s borrow.
    match unsafe { lock_mutex(side.mutex.get(), deadline) } {
        0 => Ok(()),
        libc::EOWNERDEAD => {
            // SAFETY: we hold the mutex in the EOWNERDEAD state, when
            // pthread_mutex_consistent may (and must) be called.
            unsafe { libc::pthread_mutex_consistent(side.mutex.get()) };
            Ok(())
        }
        libc::EDEADLK => Err(LockFail::Deadlock),
        _ => Err(LockFail::Timeout),
    }
}

fn unlock_side(side: &Side) {
    // SAFETY: the guard being dropped holds this mutex, on this thread.
    unsafe { libc::pthread_mutex_unlock(side.mutex.get()) };
}

/// Why a record was not written.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PushFail {
    /// It does not fit now: the ring is full by items or by bytes.
    Full,
    /// It can never fit: larger than the ring.
    TooLarge,
}

/// The writers' lock, held.
pub(crate) struct Writer<'a> {
    ring: &'a Ring,
    /// A pthread mutex must be unlocked by the thread that locked it.
    _not_send: PhantomData<*const ()>,
}

impl Writer<'_> {
    /// Writes one record, the concatenation of `parts`, and publishes it.
    pub(crate) fn push(&mut self, parts: &[&[u8]]) -> Result<(), PushFail> {
        let ring = self.ring;
        let h = ring.header();
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let need = PREFIX + len;
        if need > ring.capacity() {
            return Err(PushFail::TooLarge);
        }
        // Our position is ours (writers hold the lock); the readers' one
        // is acquired, so their copies out of what it frees are complete.
        // The last one seen is good enough unless it says there is no room:
        // readers only ever free more.
        let write = h.write_pos.0.load(Ordering::Relaxed);
        if !ring.fits(write, h.writers.seen.load(Ordering::Relaxed), need) {
            let read = h.read_pos.0.load(Ordering::Acquire);
            h.writers.seen.store(read, Ordering::Relaxed);
            if !ring.fits(write, read, need) {
                return Err(PushFail::Full);
            }
        }
        let mut at = ring.offset(bytes(write) as usize);
        let prefix = (len as u32).to_le_bytes();
        // SAFETY: (both copies) we hold the writers' lock, and `need` bytes
        // from the write position are free (checked just above against
        // the readers' published position, which only grows the free part).
        unsafe { ring.copy_in(at, &prefix) };
        at = ring.offset(at + PREFIX);
        for part in parts {
            // SAFETY: see above.
            unsafe { ring.copy_in(at, part) };
            at = ring.offset(at + part.len());
        }
        // SeqCst: a getter that counted itself as waiting and then saw
        // the ring empty is seen by the caller's load of `getters` after
        // this.
        h.write_pos
            .0
            .store(advance(write, need as u32), Ordering::SeqCst);
        Ok(())
    }
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        unlock_side(&self.ring.header().writers);
    }
}

/// The readers' lock, held.
pub(crate) struct Reader<'a> {
    ring: &'a Ring,
    /// A pthread mutex must be unlocked by the thread that locked it.
    _not_send: PhantomData<*const ()>,
}

impl Reader<'_> {
    /// Moves the next record out: its first `head.len()` bytes into
    /// `head` (a pipe's tag), the rest into `out`, which is cleared first
    /// and grows only if it must. `Ok(false)` if the ring is empty, `Err`
    /// if its length is impossible (a foreign writer).
    pub(crate) fn pop(&mut self, head: &mut [u8], out: &mut Vec<u8>) -> Result<bool, String> {
        let ring = self.ring;
        let h = ring.header();
        let read = h.read_pos.0.load(Ordering::Relaxed);
        // The last write position seen is good enough unless it says the
        // ring is empty: writers only ever publish more.
        let mut write = h.readers.seen.load(Ordering::Relaxed);
        if items(write) == items(read) {
            write = h.write_pos.0.load(Ordering::Acquire);
            h.readers.seen.store(write, Ordering::Relaxed);
            if items(write) == items(read) {
                return Ok(false);
            }
        }
        let used = bytes(write).wrapping_sub(bytes(read)) as usize;
        let at = ring.offset(bytes(read) as usize);
        let mut prefix = [0u8; PREFIX];
        // SAFETY: we hold the readers' lock; a published record starts at
        // the read position, so its prefix is in the published part, and
        // `prefix` is a local array of PREFIX bytes.
        unsafe { ring.copy_out(at, prefix.as_mut_ptr(), PREFIX) };
        let len = u32::from_le_bytes(prefix) as usize;
        if PREFIX + len > used || len < head.len() {
            return Err(format!(
                "a record of {len} bytes in a ring holding {used}: the ring is torn"
            ));
        }
        let body = len - head.len();
        out.clear();
        out.reserve(body);
        // SAFETY: (the three blocks) as above, the record's `len` bytes
        // follow its prefix in the published part (checked against
        // `used`); `head` takes the first of them, and `out` has room for
        // the `body` others (just reserved), all of which are initialised
        // before its length is set.
        unsafe { ring.copy_out(ring.offset(at + PREFIX), head.as_mut_ptr(), head.len()) };
        let rest = ring.offset(at + PREFIX + head.len());
        // SAFETY: see above.
        unsafe { ring.copy_out(rest, out.as_mut_ptr(), body) };
        // SAFETY: see above.
        unsafe { out.set_len(body) };
        // SeqCst: pairs with a putter's count-then-look, as in `push`.
        h.read_pos
            .0
            .store(advance(read, (PREFIX + len) as u32), Ordering::SeqCst);
        Ok(true)
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        unlock_side(&self.ring.header().readers);
    }
}

/// Sleeps while `word` holds `expected`, until woken or `deadline` (a
/// process-shared futex: the word may be in another process's mapping
/// too). Returns at once if the word differs; may return spuriously.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) {
    let timeout = deadline.map(|d| {
        let left = d.saturating_duration_since(Instant::now());
        futex::Timespec {
            tv_sec: left.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        }
    });
    // EAGAIN (the word changed), EINTR and ETIMEDOUT all send the caller
    // back to look at what it waits for.
    let _ = futex::wait(word, futex::Flags::empty(), expected, timeout.as_ref());
}

/// Wakes up to `n` sleepers on `word`.
pub(crate) fn futex_wake(word: &AtomicU32, n: u32) {
    let _ = futex::wake(word, futex::Flags::empty(), n);
}
