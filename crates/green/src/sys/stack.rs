//! Greenlet stacks: slots carved from large mappings, each over a guard page.
//!
//! A fresh `mmap` per stack costs about 17 us here and one mapping (two,
//! with an `mprotect`ed guard) counts against `vm.max_map_count` (65530 on
//! this machine): that caps separate stacks near 32,000. So stacks come
//! from regions of [`SLOTS_PER_REGION`] slots, each one mapping, and the
//! guard page under each slot is installed with
//! `madvise(MADV_GUARD_INSTALL)` (Linux 6.13 and later), which marks the
//! page without splitting the mapping. On older kernels the guard falls
//! back to `mprotect(PROT_NONE)`, which splits it: there, about 32,000
//! stacks can exist at once.
//!
//! The mappings are `MAP_NORESERVE`: a stack costs memory only for the pages
//! its greenlet has touched.

use std::io;
use std::num::NonZeroUsize;
use std::ptr::{self, NonNull};
use std::rc::Rc;
use std::sync::OnceLock;

use corosensei::stack::{Stack, StackPointer};

/// Slots per region: one mapping serves this many stacks.
pub(crate) const SLOTS_PER_REGION: usize = 64;

/// `MADV_GUARD_INSTALL`, from `<linux/mman.h>` (not in the libc crate yet).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// The page size, read once.
pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(page).unwrap_or(4096)
    })
}

/// How a region's guard pages were made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guard {
    /// `MADV_GUARD_INSTALL`: one mapping for the whole region.
    Marker,
    /// `mprotect(PROT_NONE)`: two mappings per slot.
    Protected,
}

/// One mapping holding [`SLOTS_PER_REGION`] slots of `slot` bytes each:
/// the guard page at the bottom of every slot, its stack above.
#[derive(Debug)]
pub(crate) struct Region {
    base: NonNull<u8>,
    len: usize,
    slot: usize,
    guard: Guard,
}

impl Region {
    /// Maps a region for stacks of `stack` bytes (a multiple of the page
    /// size) and installs every slot's guard page.
    pub(crate) fn map(stack: usize) -> io::Result<Self> {
        let page = page_size();
        let slot = stack + page;
        let len = slot * SLOTS_PER_REGION;
        // SAFETY: an anonymous private mapping at an address the kernel
        // picks aliases no Rust object.
        let addr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base =
            NonNull::new(addr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave 0"))?;
        let mut region = Self {
            base,
            len,
            slot,
            guard: Guard::Marker,
        };
        for i in 0..SLOTS_PER_REGION {
            region.guard = region.install_guard(i * slot, page)?;
        }
        Ok(region)
    }

    /// Makes `[offset, offset + len)` a guard: any touch of it faults.
    fn install_guard(&self, offset: usize, len: usize) -> io::Result<Guard> {
        // SAFETY: the range lies inside this region's own mapping, and no
        // Rust object lives in it yet.
        let at = unsafe { self.base.as_ptr().add(offset) }.cast::<libc::c_void>();
        if self.guard == Guard::Marker {
            // SAFETY: as above; madvise only marks the pages.
            if unsafe { libc::madvise(at, len, MADV_GUARD_INSTALL) } == 0 {
                return Ok(Guard::Marker);
            }
            let error = io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::EINVAL) {
                return Err(error);
            }
        }
        // SAFETY: as above; the range is page-aligned and inside the map.
        if unsafe { libc::mprotect(at, len, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Guard::Protected)
    }

    /// The slots of this region, each holding the region alive.
    pub(crate) fn slots(self: &Rc<Self>) -> impl Iterator<Item = Slot> + '_ {
        let start = self.base.as_ptr() as usize;
        (0..SLOTS_PER_REGION).map(move |i| {
            let limit = start + i * self.slot;
            Slot {
                _region: Rc::clone(self),
                limit,
                base: limit + self.slot,
            }
        })
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: every slot holds an `Rc` of its region, so none is in use
        // any more; the range is exactly what `map` mapped.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

/// One stack: `[limit, limit + page)` is its guard page, `[limit + page,
/// base)` is the stack, which grows down from `base`.
#[derive(Debug)]
pub(crate) struct Slot {
    _region: Rc<Region>,
    limit: usize,
    base: usize,
}

impl Slot {
    /// The guard page's first and last address plus one.
    pub(crate) fn guard(&self) -> (usize, usize) {
        (self.limit, self.limit + page_size())
    }
}

fn pointer(address: usize) -> StackPointer {
    NonZeroUsize::new(address).expect("a mapping is never at address 0")
}

// SAFETY: the slot is `size` bytes (at least a page, so at least
// corosensei's MIN_STACK_SIZE) of read-write memory above a guard page
// that faults on any touch; both ends are page-aligned, so aligned to
// STACK_ALIGNMENT; the memory stays mapped while the slot lives, since the
// slot holds its region; and a slot is owned by one coroutine at a time.
unsafe impl Stack for Slot {
    fn base(&self) -> StackPointer {
        pointer(self.base)
    }

    fn limit(&self) -> StackPointer {
        pointer(self.limit)
    }
}
