//! A shared-memory object: a memfd mapped shared, holding a robust process-shared pthread mutex, three condition variables, a plain state and a byte tail.
//!
//! Every cross-process primitive of `conc::ipc` but the queues and the
//! pipe (which run on `ring.rs`) is this one shape, as every thread
//! primitive of `conc` is a state behind a mutex and condvars: `Lock`
//! holds the mutex for its critical section, `Semaphore` keeps its count
//! in the state, `Array` keeps its elements in the tail. The
//! mutex is glibc's robust one (`PTHREAD_MUTEX_ROBUST`): the kernel walks a
//! dying thread's list of robust mutexes and releases them, and the next
//! locker is told (`EOWNERDEAD`), which is how a holder killed with
//! `kill -9` neither deadlocks its peers nor goes unnoticed. The condvars
//! use `CLOCK_MONOTONIC`, so a wall-clock jump does not stretch a timeout.
//!
//! The memory is a memfd, not an anonymous map, because a spawned child
//! maps it through a descriptor passed to it (memmap2's anonymous maps are
//! also private to each process after fork).

use std::cell::UnsafeCell;
use std::fs::File;
use std::io;
use std::marker::PhantomData;
use std::mem::{MaybeUninit, size_of};
use std::os::fd::{AsFd, BorrowedFd};
use std::ptr;
use std::time::{Duration, Instant};

use bytemuck::Pod;
use memmap2::MmapMut;
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::time::{ClockId, clock_gettime};

/// How many condition variables every object has.
pub(crate) const CONDS: usize = 3;

/// Written last by the creator, checked by every opener.
const MAGIC: u64 = 0x636f_6e63_5f73_686d; // "conc_shm"

/// The start of every mapping.
#[repr(C)]
struct Header<S> {
    magic: u64,
    /// `size_of::<S>()`, so that opening with the wrong type fails.
    state_size: u64,
    tail_len: u64,
    mutex: UnsafeCell<libc::pthread_mutex_t>,
    conds: [UnsafeCell<libc::pthread_cond_t>; CONDS],
    state: UnsafeCell<S>,
}

/// Why a lock was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockFail {
    /// The deadline passed (or, for a try, the lock was held).
    Timeout,
    /// This thread already holds this (non-recursive) lock.
    Deadlock,
}

/// A shared-memory object with a state `S` and `tail_len` bytes after it.
pub(crate) struct Shm<S> {
    map: MmapMut,
    file: File,
    _state: PhantomData<S>,
}

// SAFETY: the mapping is shared memory meant for many processes, and so
// for many threads: every access to the state and the tail goes through
// the process-shared mutex (the guard), and the pthread objects are
// thread-safe by definition. `S: Pod` has no pointers or drop glue.
unsafe impl<S: Pod> Send for Shm<S> {}
// SAFETY: as for Send.
unsafe impl<S: Pod> Sync for Shm<S> {}

fn check(code: libc::c_int, what: &str) -> io::Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(io::Error::new(
            io::Error::from_raw_os_error(code).kind(),
            format!("{what}: {}", io::Error::from_raw_os_error(code)),
        ))
    }
}

/// How many times [`Shm::lock`] tries before it sleeps, and the longest
/// pause between tries (`1 << SPIN_MAX_SHIFT` spin-loop hints): at most
/// some 250 hints in all, a few microseconds.
const SPIN_ROUNDS: u32 = 12;
const SPIN_MAX_SHIFT: u32 = 5;

/// An absolute time `after` from now on `clock`, as pthread wants it.
fn deadline_on(clock: ClockId, after: Duration) -> libc::timespec {
    let now = clock_gettime(clock).map_or(
        libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        |t| *t.as_ref(),
    );
    let nanos = now.tv_nsec as u64 + u64::from(after.subsec_nanos());
    let secs = (now.tv_sec as u64)
        .saturating_add(after.as_secs())
        .saturating_add(nanos / 1_000_000_000)
        .min(i64::MAX as u64 / 2);
    libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: (nanos % 1_000_000_000) as libc::c_long,
    }
}

/// A new memfd named `name`, `len` bytes of zeros, mapped shared.
pub(super) fn new_mapping(name: &std::ffi::CStr, len: usize) -> io::Result<(File, MmapMut)> {
    let file = File::from(memfd_create(name, MFdFlags::MFD_CLOEXEC)?);
    file.set_len(len as u64)?;
    // SAFETY: the memfd is new and ours; nothing else can truncate it
    // while it is mapped before we hand it out, and afterwards only conc
    // maps it, never shrinking it.
    let map = unsafe { MmapMut::map_mut(&file)? };
    Ok((file, map))
}

/// Maps `file`, a memfd another process made with [`new_mapping`] and
/// passed, refusing one shorter than `header` bytes; `what` names it in
/// the error.
pub(super) fn open_mapping(file: &File, header: usize, what: &str) -> io::Result<MmapMut> {
    if (file.metadata()?.len() as usize) < header {
        return Err(not_ours(what, "too short"));
    }
    // SAFETY: conc never shrinks its shared objects, and the file was
    // just checked long enough for the header the caller reads.
    unsafe { MmapMut::map_mut(file) }
}

/// The error for a descriptor that is not the conc object it should be.
pub(super) fn not_ours(what: &str, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not a conc {what}: {why}"),
    )
}

/// Takes the robust mutex `m`, waiting until `deadline` (`None`: for
/// ever); pthread's result (0, `EOWNERDEAD`, `EDEADLK`, `ETIMEDOUT`).
///
/// It first tries for a short while without sleeping: the sections these
/// mutexes guard last a few hundred nanoseconds, and glibc's robust mutex
/// goes to the kernel at once when taken, so that two processes trading a
/// queue's lock would otherwise pay a futex wait and a futex wake for most
/// items (measured: 0.86 futex calls per item of a Queue).
///
/// # Safety
/// `m` points at an initialised process-shared mutex that stays mapped
/// for the call.
pub(super) unsafe fn lock_mutex(
    m: *mut libc::pthread_mutex_t,
    deadline: Option<Instant>,
) -> libc::c_int {
    for round in 0..SPIN_ROUNDS {
        // SAFETY: the caller vouches for `m`.
        let code = unsafe { libc::pthread_mutex_trylock(m) };
        if code != libc::EBUSY {
            return code;
        }
        for _ in 0..1u32 << round.min(SPIN_MAX_SHIFT) {
            std::hint::spin_loop();
        }
    }
    match deadline {
        // SAFETY: the caller vouches for `m`.
        None => unsafe { libc::pthread_mutex_lock(m) },
        Some(deadline) => {
            let ts = deadline_on(
                ClockId::CLOCK_REALTIME,
                deadline.saturating_duration_since(Instant::now()),
            );
            // SAFETY: as above; `ts` is a valid timespec on the stack.
            unsafe { libc::pthread_mutex_timedlock(m, &ts) }
        }
    }
}

/// Initialises the robust, process-shared mutex at `m` (reentrant if
/// `recursive`, else error-checking).
///
/// # Safety
/// `m` points at zeroed, writable, aligned memory that no other thread or
/// process uses yet.
pub(super) unsafe fn init_mutex(m: *mut libc::pthread_mutex_t, recursive: bool) -> io::Result<()> {
    let mut mattr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
    let kind = if recursive {
        libc::PTHREAD_MUTEX_RECURSIVE
    } else {
        libc::PTHREAD_MUTEX_ERRORCHECK
    };
    let a = mattr.as_mut_ptr();
    // SAFETY: (for every block below) attribute calls on the local
    // attribute object, initialised by its `_init` before use; the mutex is
    // initialised in place where the caller vouches for.
    let code = unsafe { libc::pthread_mutexattr_init(a) };
    check(code, "pthread_mutexattr_init")?;
    // SAFETY: see above.
    let code = unsafe { libc::pthread_mutexattr_setpshared(a, libc::PTHREAD_PROCESS_SHARED) };
    check(code, "setpshared")?;
    // SAFETY: see above.
    let code = unsafe { libc::pthread_mutexattr_setrobust(a, libc::PTHREAD_MUTEX_ROBUST) };
    check(code, "setrobust")?;
    // SAFETY: see above.
    let code = unsafe { libc::pthread_mutexattr_settype(a, kind) };
    check(code, "settype")?;
    // SAFETY: see above.
    let code = unsafe { libc::pthread_mutex_init(m, a) };
    check(code, "pthread_mutex_init")?;
    // SAFETY: see above.
    unsafe { libc::pthread_mutexattr_destroy(a) };
    Ok(())
}

impl<S: Pod> Shm<S> {
    fn header(&self) -> *mut Header<S> {
        self.map.as_ptr() as *mut Header<S>
    }

    /// The header, as a reference (its mutable parts are `UnsafeCell`s).
    fn header_ref(&self) -> &Header<S> {
        // SAFETY: every mapping is at least a header long (checked at open,
        // made so at create), page aligned, and lives as long as `self`;
        // the header's plain fields are written only before the object is
        // shared, the rest sit in UnsafeCells.
        unsafe { &*self.header() }
    }

    fn tail_offset() -> usize {
        size_of::<Header<S>>().next_multiple_of(64)
    }

    /// A new object holding `state` and a zeroed tail of `tail_len` bytes;
    /// `recursive` makes the mutex reentrant (for `RLock`).
    pub(crate) fn create(state: S, tail_len: usize, recursive: bool) -> io::Result<Self> {
        let len = Self::tail_offset().checked_add(tail_len).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "shared object too large")
        })?;
        let (file, map) = new_mapping(c"conc-shm", len)?;
        let shm = Self {
            map,
            file,
            _state: PhantomData,
        };
        let h = shm.header();
        // SAFETY: `h` points at the start of a fresh, zero-filled, page
        // aligned mapping at least `size_of::<Header<S>>()` long, which no
        // one else can see yet: initialising its fields in place is sound.
        unsafe { init_header(h, state, tail_len as u64, recursive)? };
        Ok(shm)
    }

    /// Maps an object another process created and passed as `file`.
    pub(crate) fn open(file: File) -> io::Result<Self> {
        let map = open_mapping(&file, Self::tail_offset(), "shared object")?;
        let len = map.len();
        let shm = Self {
            map,
            file,
            _state: PhantomData,
        };
        let h = shm.header_ref();
        let (magic, size, tail) = (h.magic, h.state_size, h.tail_len);
        if magic != MAGIC
            || size != size_of::<S>() as u64
            || Self::tail_offset() as u64 + tail != len as u64
        {
            return Err(not_ours("shared object", "its layout differs"));
        }
        Ok(shm)
    }

    /// How many bytes follow the state (fixed at `create`; no lock needed).
    pub(crate) fn tail_len(&self) -> usize {
        self.map.len() - Self::tail_offset()
    }

    /// The memfd, to pass to another process.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Takes the mutex, waiting until `deadline` (`None`: for ever).
    pub(crate) fn lock(&self, deadline: Option<Instant>) -> Result<ShmGuard<'_, S>, LockFail> {
        // SAFETY: `mutex()` is an initialised process-shared mutex in our
        // mapping, which lives as long as `self`.
        let code = unsafe { lock_mutex(self.mutex(), deadline) };
        self.locked(code)
    }

    /// Takes the mutex if it is free.
    pub(crate) fn try_lock(&self) -> Result<ShmGuard<'_, S>, LockFail> {
        // SAFETY: as in `lock`.
        let code = unsafe { libc::pthread_mutex_trylock(self.mutex()) };
        self.locked(code)
    }

    fn locked(&self, code: libc::c_int) -> Result<ShmGuard<'_, S>, LockFail> {
        let mut guard = ShmGuard {
            shm: self,
            owner_died: false,
            _not_send: PhantomData,
        };
        match code {
            0 => Ok(guard),
            libc::EOWNERDEAD => {
                guard.recover();
                Ok(guard)
            }
            libc::EDEADLK => {
                std::mem::forget(guard);
                Err(LockFail::Deadlock)
            }
            _ => {
                // ETIMEDOUT, EBUSY: the lock is not ours, do not unlock it.
                std::mem::forget(guard);
                Err(LockFail::Timeout)
            }
        }
    }

    fn mutex(&self) -> *mut libc::pthread_mutex_t {
        self.header_ref().mutex.get()
    }

    fn cond(&self, which: usize) -> *mut libc::pthread_cond_t {
        self.header_ref().conds[which].get()
    }

    /// Wakes one waiter on condition `which` (with or without the lock).
    pub(crate) fn notify_one(&self, which: usize) {
        // SAFETY: an initialised process-shared condvar in our mapping.
        unsafe { libc::pthread_cond_signal(self.cond(which)) };
    }

    /// Wakes every waiter on condition `which`.
    pub(crate) fn notify_all(&self, which: usize) {
        // SAFETY: an initialised process-shared condvar in our mapping.
        unsafe { libc::pthread_cond_broadcast(self.cond(which)) };
    }
}

/// Initialises a header in place.
///
/// # Safety
/// `h` points at zeroed, writable memory of at least a header's size,
/// aligned for it, that no other thread or process uses yet.
unsafe fn init_header<S>(
    h: *mut Header<S>,
    state: S,
    tail_len: u64,
    recursive: bool,
) -> io::Result<()> {
    let mut cattr = MaybeUninit::<libc::pthread_condattr_t>::uninit();
    let c = cattr.as_mut_ptr();
    // SAFETY: (for every block below) attribute calls on the local
    // attribute object, initialised by its `_init` before use; the mutex,
    // condvars and fields are initialised in place in the header the
    // caller vouches for (fresh, zeroed, aligned, seen by no one yet).
    let header = unsafe { &*h };
    // SAFETY: see above.
    unsafe { init_mutex(header.mutex.get(), recursive)? };
    // SAFETY: see above.
    let code = unsafe { libc::pthread_condattr_init(c) };
    check(code, "pthread_condattr_init")?;
    // SAFETY: see above.
    let code = unsafe { libc::pthread_condattr_setpshared(c, libc::PTHREAD_PROCESS_SHARED) };
    check(code, "setpshared")?;
    // SAFETY: see above.
    let code = unsafe { libc::pthread_condattr_setclock(c, libc::CLOCK_MONOTONIC) };
    check(code, "setclock")?;
    for cond in &header.conds {
        // SAFETY: see above.
        let code = unsafe { libc::pthread_cond_init(cond.get(), c) };
        check(code, "pthread_cond_init")?;
    }
    // SAFETY: see above.
    unsafe { libc::pthread_condattr_destroy(c) };
    // SAFETY: see above; the state's cell is in the header, `S: Pod`.
    unsafe { ptr::write(header.state.get(), state) };
    // SAFETY: see above: no reference to these fields is alive (the
    // shared reference `header` is not used after this point).
    unsafe {
        (*h).state_size = size_of::<S>() as u64;
    }
    // SAFETY: see above.
    unsafe {
        (*h).tail_len = tail_len;
    }
    // SAFETY: see above.
    unsafe {
        (*h).magic = MAGIC;
    }
    Ok(())
}

/// The mutex of a [`Shm`], held: access to its state and tail.
pub(crate) struct ShmGuard<'a, S: Pod> {
    shm: &'a Shm<S>,
    owner_died: bool,
    /// A pthread mutex must be unlocked by the thread that locked it.
    _not_send: PhantomData<*const ()>,
}

impl<S: Pod> ShmGuard<'_, S> {
    /// Whether a holder died holding the lock since this guard's thread
    /// asked for it (the state may be half-updated).
    pub(crate) fn owner_died(&self) -> bool {
        self.owner_died
    }

    fn recover(&mut self) {
        self.owner_died = true;
        // SAFETY: we hold the mutex in the EOWNERDEAD state, which is when
        // pthread_mutex_consistent may (and must) be called.
        unsafe { libc::pthread_mutex_consistent(self.shm.mutex()) };
    }

    /// The state.
    pub(crate) fn state(&mut self) -> &mut S {
        let cell = &self.shm.header_ref().state;
        // SAFETY: we hold the process-shared mutex, which every access to
        // the state takes, so no other thread or process touches it now.
        unsafe { &mut *cell.get() }
    }

    /// The bytes after the state.
    pub(crate) fn tail(&mut self) -> &mut [u8] {
        let off = Shm::<S>::tail_offset();
        let len = self.shm.map.len() - off;
        // SAFETY: `off..off + len` is inside the mapping; we hold the mutex
        // that guards the tail, so this is the only reference to it.
        let start = self.shm.map.as_ptr().wrapping_add(off) as *mut u8;
        // SAFETY: as above.
        unsafe { std::slice::from_raw_parts_mut(start, len) }
    }

    /// The bytes after the state, to read: for a guard that derefs to them.
    /// Safe code (the mapping's own `Deref`): we hold the mutex that guards
    /// the tail, and `&self` rules out a live `&mut` from [`tail`](Self::tail)
    /// of this guard. (A recursive mutex's second guard on the same thread
    /// could alias it: conc gives no tail access through those.)
    pub(crate) fn tail_ref(&self) -> &[u8] {
        &self.shm.map[Shm::<S>::tail_offset()..]
    }

    /// Waits on condition `which`, letting go of the mutex meanwhile, until
    /// notified (or spuriously) or until `deadline`; `false` if the
    /// deadline passed. The caller re-checks its condition either way.
    pub(crate) fn wait(&mut self, which: usize, deadline: Option<Instant>) -> bool {
        let (c, m) = (self.shm.cond(which), self.shm.mutex());
        let code = match deadline {
            None => {
                // SAFETY: we hold `m`; both are initialised process-shared objects.
                unsafe { libc::pthread_cond_wait(c, m) }
            }
            Some(deadline) => {
                let ts = deadline_on(
                    ClockId::CLOCK_MONOTONIC,
                    deadline.saturating_duration_since(Instant::now()),
                );
                // SAFETY: as above; the condvar's clock is CLOCK_MONOTONIC, as `ts`.
                unsafe { libc::pthread_cond_timedwait(c, m, &ts) }
            }
        };
        if code == libc::EOWNERDEAD {
            self.recover();
        }
        code != libc::ETIMEDOUT
    }
}

impl<S: Pod> Drop for ShmGuard<'_, S> {
    fn drop(&mut self) {
        // SAFETY: this guard's thread holds the mutex.
        unsafe { libc::pthread_mutex_unlock(self.shm.mutex()) };
    }
}
