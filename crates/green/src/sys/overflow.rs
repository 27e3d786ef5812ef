//! A greenlet's stack overflow: a clear message naming it, then an abort, never memory corruption.
//!
//! Every stack sits over a guard page ([`super::stack`]), and Rust probes
//! each page of a large frame, so an overflow touches the guard and faults.
//! The `SIGSEGV` handler installed here runs on the thread's alternate
//! signal stack (the overflowed stack has no room left), checks whether
//! the faulting address is in the running greenlet's guard page, and if so
//! writes `green: greenlet 'NAME' overflowed its stack of N KiB` to stderr
//! and aborts. Any other fault goes to the handler that was there before
//! (std's, which reports overflows of thread stacks), by putting it back
//! and returning, so the fault happens again under it.
//!
//! Only async-signal-safe calls are made in the handler: `write(2)`,
//! `sigaction(2)` and `abort(3)`, over a record that the hub keeps up to
//! date at each switch ([`set_running`]).

use std::cell::Cell;
use std::io;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::{Once, OnceLock};

/// What the handler needs to know of the running greenlet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Running {
    /// Its guard page, `[start, end)`.
    pub(crate) guard: (usize, usize),
    /// Its stack's usable size.
    pub(crate) size: usize,
    /// Its name's bytes, valid while it runs (the hub owns the name).
    pub(crate) name: *const u8,
    pub(crate) name_len: usize,
}

thread_local! {
    static RUNNING: Cell<Option<Running>> = const { Cell::new(None) };
}

/// Records the greenlet about to run on this thread (`None`: the hub's own
/// stack).
pub(crate) fn set_running(running: Option<Running>) {
    RUNNING.set(running);
}

static INSTALL: Once = Once::new();
/// The handler that was there before ours, for faults that are not ours.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// Installs the handler (once per process) and gives this thread an
/// alternate signal stack if it has none; returns that stack, to be
/// released when the hub ends.
pub(crate) fn prepare_thread() -> io::Result<Option<AltStack>> {
    INSTALL.call_once(|| {
        // SAFETY: all-zero is a valid sigaction ("no flags, empty mask").
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // SAFETY: as above.
        let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are to live sigaction values; the new
        // action's handler only makes async-signal-safe calls.
        if unsafe { libc::sigaction(libc::SIGSEGV, &action, &mut previous) } == 0 {
            let _ = PREVIOUS.set(previous);
        }
    });
    AltStack::ensure()
}

/// An alternate signal stack this crate installed on one thread.
#[derive(Debug)]
pub(crate) struct AltStack {
    base: *mut libc::c_void,
    len: usize,
}

impl AltStack {
    const SIZE: usize = 64 * 1024;

    fn ensure() -> io::Result<Option<Self>> {
        let mut old = MaybeUninit::<libc::stack_t>::uninit();
        // SAFETY: a null new stack only reads the current one into `old`.
        if unsafe { libc::sigaltstack(ptr::null(), old.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: sigaltstack succeeded, so it wrote `old`.
        let old = unsafe { old.assume_init() };
        if old.ss_flags & libc::SS_DISABLE == 0 {
            return Ok(None); // std (or the program) gave this thread one.
        }
        // SAFETY: an anonymous private mapping aliases no Rust object.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                Self::SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = libc::stack_t {
            ss_sp: base,
            ss_flags: 0,
            ss_size: Self::SIZE,
        };
        // SAFETY: the stack is a live mapping of ss_size bytes, owned by the
        // returned value, which takes it back down before unmapping it.
        if unsafe { libc::sigaltstack(&stack, ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Some(Self {
            base,
            len: Self::SIZE,
        }))
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let off = libc::stack_t {
            ss_sp: ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: disabling the alternate stack has no preconditions; no
        // handler runs on it now, since this code runs on the thread's
        // ordinary stack.
        unsafe {
            libc::sigaltstack(&off, ptr::null_mut());
        }
        // SAFETY: the mapping is the one `ensure` made, no longer in use.
        unsafe {
            libc::munmap(self.base, self.len);
        }
    }
}

extern "C" fn handler(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    _context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let info = unsafe { &*info };
    // SAFETY: for SIGSEGV, the kernel fills in si_addr.
    let address = unsafe { info.si_addr() } as usize;
    if let Some(running) = RUNNING.get() {
        let (start, end) = running.guard;
        if (start..end).contains(&address) {
            // SAFETY: the name's bytes are owned by the hub's record of this
            // greenlet, which lives while it runs; it is running.
            let name = unsafe { std::slice::from_raw_parts(running.name, running.name_len) };
            let mut line = Line::default();
            line.push(b"green: greenlet '");
            line.push(name);
            line.push(b"' overflowed its stack of ");
            line.number(running.size / 1024);
            line.push(b" KiB (raise it with green::Hub::stack_size)\n");
            line.write();
            // SAFETY: abort is async-signal-safe and never returns.
            unsafe { libc::abort() };
        }
    }
    // Not ours: put back the handler that was there and return; the faulting
    // instruction runs again and faults under it.
    let default = default_action();
    let previous = PREVIOUS.get().unwrap_or(&default);
    // SAFETY: `previous` is a live sigaction value; sigaction is
    // async-signal-safe.
    unsafe {
        libc::sigaction(signal, previous, ptr::null_mut());
    }
}

/// `SIG_DFL`, for a fault that came before the old handler was saved.
fn default_action() -> libc::sigaction {
    // SAFETY: all-zero is a valid sigaction: SIG_DFL, no flags, empty mask.
    unsafe { std::mem::zeroed() }
}

/// A message built without allocating.
struct Line {
    bytes: [u8; 256],
    len: usize,
}

impl Default for Line {
    fn default() -> Self {
        Self {
            bytes: [0; 256],
            len: 0,
        }
    }
}

impl Line {
    fn push(&mut self, part: &[u8]) {
        let room = self.bytes.len() - self.len;
        let n = part.len().min(room);
        self.bytes[self.len..self.len + n].copy_from_slice(&part[..n]);
        self.len += n;
    }

    fn number(&mut self, mut n: usize) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }

    fn write(&self) {
        // SAFETY: write(2) on stderr with a buffer of `len` valid bytes.
        unsafe {
            libc::write(2, self.bytes.as_ptr().cast(), self.len);
        }
    }
}
