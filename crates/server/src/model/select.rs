//! select(2): one thread waits on every client at once, through three bitmaps of FD_SETSIZE bits.
//!
//! **The idea.** The course's IO多路复用 server: instead of asking each socket
//! in turn (`nonblocking`), hand the kernel the whole set in one call and
//! sleep until some of them are ready. The set is a bitmap with one bit per
//! descriptor number, for reading and one for writing; `select` overwrites
//! them with the ready ones, so the loop builds them again before every call.
//!
//! **Its cost.** Everything in `select` is O(n), as the notes warn: the loop
//! fills the bitmaps (n), the kernel copies them in, polls each descriptor
//! and copies them out (n, up to the highest descriptor number), and the loop
//! scans them for the ready bits (n again). With every client busy, a call
//! returns many ready descriptors and the O(n) is shared among them:
//! `select` keeps up with `epoll`. With a silent crowd, each call does the
//! whole O(n) for a few messages: with 10 busy clients beside 1000 silent
//! ones it spent 71 us of server CPU per request, 8x `epoll`
//! (`bench/results/2026-11-26/readiness-costs.md`, with the busy-only runs).
//!
//! **The 1024 limit.** The bitmaps are `FD_SETSIZE` (1024) bits, fixed when
//! libc was built. Setting a bit at or past it writes outside the bitmap:
//! undefined behaviour, and in C a classic stack smash. Here it cannot
//! happen: a new client whose descriptor is too large is refused at accept
//! (closed, with one log line) and never enters the table the bitmaps are
//! built from, and `nix`'s `FdSet` checks every insert as well. The server
//! keeps serving the clients it has. This is why `--max-conns` above about
//! a thousand means nothing to this model.
//!
//! **When to pick it.** When the code must be portable to every system that
//! has sockets (Windows included), with few connections. Otherwise `poll`
//! (no limit) or `epoll` (no O(n)).
//!
//! **How it fails.** Past 1020 or so clients it refuses the rest; long before
//! that it spends more time building and scanning bitmaps than echoing.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use nix::sys::select::{FD_SETSIZE, FdSet, select};
use nix::sys::time::{TimeVal, TimeValLike};

use crate::readiness::{Found, Interest, Loop, Scan, fd};
use crate::{Config, Family, Model, Shutdown};

/// `--model select`.
pub const MODEL: Model = Model::new(
    "select",
    Family::Multiplexing,
    file!(),
    "one thread, select(2) on bitmaps rebuilt every call: O(n) per wait; \
     refuses clients whose descriptor is past FD_SETSIZE (1024)",
    serve,
)
.watching_below(FD_SETSIZE);

/// Whether `fd` has a bit in a `fd_set`: the one check that keeps `select`
/// sound.
fn fits(fd: RawFd) -> bool {
    usize::try_from(fd).is_ok_and(|fd| fd < FD_SETSIZE)
}

/// Serves on `listener` with a `select` loop until the drain is over.
///
/// # Errors
///
/// If the listener or the shutdown descriptor is itself past `FD_SETSIZE`
/// (the process already had 1024 descriptors open), or the listener breaks.
pub fn serve(listener: TcpListener, config: &Config, shutdown: &Shutdown) -> io::Result<()> {
    for (what, fd) in [
        ("listener", listener.as_raw_fd()),
        ("shutdown descriptor", shutdown.as_fd().as_raw_fd()),
    ] {
        if !fits(fd) {
            return Err(io::Error::other(format!(
                "select cannot watch the {what}: descriptor {fd} is past FD_SETSIZE ({FD_SETSIZE})"
            )));
        }
    }
    Loop::single(listener, config, shutdown)?.run_scanning(wait, |conn| {
        // A client the bitmaps cannot hold never enters the table.
        if fits(fd(conn)) {
            return Ok(());
        }
        tracing::warn!(
            "select: refusing a client: its descriptor {} is past FD_SETSIZE ({FD_SETSIZE})",
            fd(conn)
        );
        Err(io::Error::other("past FD_SETSIZE"))
    })
}

/// One `select` call over everything `scan` holds.
fn wait(scan: Scan<'_>, found: &mut Found) -> io::Result<()> {
    // Build both bitmaps from scratch: `select` overwrote the last ones.
    let mut reads = FdSet::new();
    let mut writes = FdSet::new();
    if let Some(shutdown) = scan.shutdown {
        reads.insert(shutdown.as_fd());
    }
    if let Some(listener) = scan.listener {
        reads.insert(listener.as_fd());
    }
    for conn in scan.conns.iter() {
        let interest = Interest::of(conn);
        if interest.read {
            reads.insert(conn.stream.as_fd());
        }
        if interest.write {
            writes.insert(conn.stream.as_fd());
        }
    }
    let mut timeout = (scan.timeout)
        .map(|t| TimeVal::milliseconds(i64::try_from(t.as_millis()).unwrap_or(i64::MAX)));
    select(None, &mut reads, &mut writes, None, timeout.as_mut())?;
    // Scan for the ready bits: n more checks, ready or not.
    found.accept = scan.listener.is_some_and(|l| reads.contains(l.as_fd()));
    for conn in scan.conns.iter() {
        let readable = reads.contains(conn.stream.as_fd());
        if readable || writes.contains(conn.stream.as_fd()) {
            found.ready.push((fd(conn), readable));
        }
    }
    Ok(())
}
