//! Counters in memory that forked processes share: the one thing `prefork` and `hybrid` workers share.

use std::io;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::AtomicUsize;

use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, munmap};

/// `len` atomic counters in an anonymous `MAP_SHARED` mapping: a process
/// forked after it was made sees the same memory, so an increment in one
/// worker is seen by every other and by the parent.
///
/// (memmap2's anonymous maps are private after `fork`, hence the direct
/// `mmap`.)
#[derive(Debug)]
pub(crate) struct SharedCounters {
    start: NonNull<AtomicUsize>,
    len: usize,
}

// SAFETY: the mapping holds only atomics, which any thread may touch through
// a shared reference, and it is unmapped only by `Drop`, which needs the
// value itself: sending or sharing the handle cannot create a data race.
unsafe impl Send for SharedCounters {}
// SAFETY: as above: every access goes through `&[AtomicUsize]`.
unsafe impl Sync for SharedCounters {}

impl SharedCounters {
    /// `len` counters (at least one), all zero.
    pub(crate) fn new(len: usize) -> io::Result<Self> {
        let len = len.max(1);
        let bytes = NonZeroUsize::new(len * size_of::<AtomicUsize>()).expect("len is at least 1");
        // SAFETY: a fresh anonymous mapping aliases no memory of ours; the
        // kernel picks the address and fills the pages with zeroes.
        let start = unsafe {
            mmap_anonymous(
                None,
                bytes,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }?;
        Ok(Self {
            start: start.cast(),
            len,
        })
    }

    /// The counters.
    pub(crate) fn slots(&self) -> &[AtomicUsize] {
        // SAFETY: the mapping is `len` counters long, page-aligned (more than
        // `AtomicUsize` needs), zero-filled (a valid `AtomicUsize` is any
        // bit pattern of a `usize`), and lives until `self` is dropped,
        // which the borrow prevents while the slice exists.
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len) }
    }
}

impl Drop for SharedCounters {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in `new` with this address and size,
        // and no slice of it outlives `self` (`slots` borrows it).
        let _ = unsafe { munmap(self.start.cast(), self.len * size_of::<AtomicUsize>()) };
    }
}
