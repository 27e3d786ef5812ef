//! gevent for Rust: stackful greenlets on one thread per hub, with blocking-style cooperative I/O.
//!
//! The course's first server is a gevent server: `monkey.patch_all()`,
//! then a greenlet per client running ordinary blocking code. Each
//! greenlet has its own stack; when one would block (a `read` with no
//! bytes, a `sleep`, an empty queue) it switches to the **hub**, which
//! runs whichever greenlet can go on next, and polls the sockets when none
//! can. The code reads like a thread per connection; it runs on one
//! thread, and switches only where it would block. No `async`, no
//! callbacks: the stack keeps the greenlet's place.
//!
//! What it does not give, as the course says: no help for CPU-bound work
//! (one hub is one thread), and a greenlet that computes for long, or
//! calls a blocking function that is not green, stalls every other one.
//! [`spawn_blocking`] runs such a call on a thread pool while the greenlet
//! waits.
//!
//! # The pieces
//!
//! | gevent | green | where |
//! |---|---|---|
//! | the hub, `gevent.wait()` | [`run`], [`Hub`] | [`hub`](crate::hub) module docs: the loop |
//! | `spawn`, `spawn_later`, `Greenlet` | [`spawn`], [`spawn_later`], [`Greenlet`] | `join`, `get`, `kill`, `ready`, `successful` |
//! | `joinall`, `sleep` | [`joinall`], [`sleep`] | `sleep(0)` yields |
//! | `Timeout` | [`with_timeout`] | |
//! | `monkey.patch_all()` | [`net::TcpListener`], [`net::TcpStream`], [`wait_readable`] | the patch, as types |
//! | `gevent.threadpool` | [`spawn_blocking`] | |
//! | `gevent.event.Event`, `lock`, `queue`, `pool` | [`Event`], [`Lock`], [`Semaphore`], [`Queue`], [`Pool`] | conc's names |
//!
//! # Why these parts
//!
//! - **Stacks** switch through corosensei (a few ns a switch, no
//!   hand-written assembly here) and come from large mappings carved into
//!   slots, each over a guard page ([`sys`](crate::sys) module docs), so
//!   100,000 greenlets fit under `vm.max_map_count` and an overflow is a
//!   clear crash naming the greenlet (below).
//! - **I/O** goes through mio's epoll, edge-triggered, one registration
//!   per socket: mio is the field's portable poller, and an edge-triggered
//!   registration is made once, not once per wait.
//! - **One hub per thread, and greenlets never move**: every handle is
//!   `!Send`, so a thread-local read in a greenlet is that thread's, as it
//!   is in gevent; M:N runtimes (`may`) cannot promise that.
//!
//! # Its cost
//!
//! Measured on the 2-core machine the project is measured on, beside
//! gevent 26.9 in the same session (`bench/results/2026-12-03/green-costs.md`,
//! with the commands): spawn and join of an empty greenlet about 0.27 us
//! (gevent: 23 us); a `sleep(0)` between two greenlets about 87 ns
//! (gevent: 1.9 us); 100,000 greenlets blocked on one [`Event`] add about
//! 4.4 KiB of RSS each, the one stack page a parked greenlet touches
//! plus its bookkeeping (gevent: 7.7 KiB). As a server (the `green` model
//! of `iomodels`), 4.5 KiB per idle connection, and server CPU per
//! request level with the epoll loop's (0.99x): the switches cost
//! nanoseconds where the kernel's TCP work costs microseconds.
//!
//! # The stack, and how it fails
//!
//! A stack is fixed when the greenlet starts. The default,
//! [`DEFAULT_STACK_SIZE`] (128 KiB), is address space, not memory: the
//! mappings are `MAP_NORESERVE`, so 100,000 greenlets reserve 12.5 GiB of
//! address space and cost only the pages they touch. It holds the usual
//! blocking code with room to spare (an echo loop, `format!`, a log
//! line, a few KiB of locals); it does not hold a large array on the
//! stack or deep recursion: box those, or raise [`Hub::stack_size`]. A
//! greenlet that runs past its stack touches the guard page under it, and
//! the process aborts with `green: greenlet 'NAME' overflowed its stack of
//! N KiB`: a clear crash, never memory corruption.
//!
//! The other way a hub fails is the course's warning: a greenlet that
//! computes for long, or makes a call that blocks the thread (std's
//! sockets, a file read, a lock held by another thread), stalls every
//! greenlet of its hub until it returns.
//!
//! # Examples
//!
//! The course's coroutine server, in miniature: a greenlet per client.
//!
//! ```
//! use std::io::{Read, Write};
//! use green::net::{TcpListener, TcpStream};
//!
//! green::run(|| {
//!     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     green::spawn(move || {
//!         let (mut conn, _) = listener.accept().unwrap();
//!         green::spawn(move || {
//!             let mut buf = [0; 64];
//!             let n = conn.read(&mut buf).unwrap();
//!             conn.write_all(&buf[..n].to_ascii_uppercase()).unwrap();
//!         });
//!     });
//!     let mut client = TcpStream::connect(addr).unwrap();
//!     client.write_all(b"hello").unwrap();
//!     let mut reply = [0; 5];
//!     client.read_exact(&mut reply).unwrap();
//!     assert_eq!(&reply, b"HELLO");
//! });
//! ```

#![deny(unsafe_code)]

mod blocking;
mod fd;
mod greenlet;
mod hub;
pub mod net;
mod pool;
mod queue;
mod sync;
mod sys;
mod timeout;
mod waitlist;

pub use blocking::{THREADS as BLOCKING_THREADS, spawn_blocking};
pub use fd::{wait_readable, wait_writable};
pub use greenlet::{Greenlet, GreenletError, joinall, sleep, spawn, spawn_later, try_spawn_named};
pub use hub::DEFAULT_STACK_SIZE;
pub use pool::Pool;
pub use queue::{GetError, PutError, Queue, ShutDown};
pub use sync::{Event, Lock, LockGuard, Permit, Semaphore};
pub use timeout::{Timeout, with_timeout};

/// A hub's settings; [`run`] uses the defaults.
///
/// # Examples
///
/// ```
/// let n = green::Hub::new().stack_size(64 * 1024).run(|| 1 + 1);
/// assert_eq!(n, 2);
/// ```
#[derive(Debug, Clone)]
pub struct Hub {
    stack_size: usize,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// The defaults: stacks of [`DEFAULT_STACK_SIZE`].
    pub fn new() -> Self {
        Self {
            stack_size: DEFAULT_STACK_SIZE,
        }
    }

    /// Each greenlet's stack, in bytes (rounded up to whole pages, at
    /// least four). Only the pages a greenlet touches cost memory; a
    /// greenlet that needs more than this crashes the process with a
    /// message naming it.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Runs a hub on this thread until `main`, its first greenlet, returns;
    /// see [`run`].
    pub fn run<T: 'static>(self, main: impl FnOnce() -> T + 'static) -> T {
        hub::run(self.stack_size, main)
    }
}

/// Runs a hub on the calling thread until `main` returns, and returns its
/// value: what gevent does implicitly for the main greenlet. `main` runs
/// as a greenlet, so it may block, spawn and join. Greenlets still alive
/// when it returns are killed, and their destructors run, before `run`
/// returns.
///
/// # Panics
///
/// If `main` panics (with its panic), or if a hub already runs on this
/// thread, or if every greenlet blocks with nothing left to wake them
/// (gevent's `LoopExit`).
///
/// # Examples
///
/// ```
/// assert_eq!(green::run(|| "done"), "done");
/// ```
pub fn run<T: 'static>(main: impl FnOnce() -> T + 'static) -> T {
    Hub::new().run(main)
}
