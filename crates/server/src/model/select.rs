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
//! scans them for the ready bits (n again). With one busy client among many
//! idle ones, every message pays for all of them. Measured on 2 cores
//! (`bench/results/2026-11-26/readiness-costs.md`, one client thread, 64-byte
//! requests), server CPU per request:
//!
//! | | 10 conns | 100 | 1000 | 10 busy + 1000 silent |
//! |---|---:|---:|---:|---:|
//! | `select` | 10.0 us | 9.5 us | 12.0 us | 71.1 us (11k req/s) |
//! | `epoll` | 9.3 us | 10.8 us | 10.7 us | 8.4 us (103k req/s) |
//!
//! With every client busy, a call returns many ready descriptors and the
//! O(n) is shared among them: `select` keeps up. With a silent crowd, each
//! call does the whole O(n) for a few messages, and `select` is 8x `epoll`.
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

use nix::errno::Errno;
use nix::sys::select::{FD_SETSIZE, FdSet, select};
use nix::sys::time::{TimeVal, TimeValLike};

use crate::readiness::{Loop, Phase};
use crate::{Config, Shutdown};

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
    let mut server = Loop::single(listener, config, shutdown)?;
    let mut running = true;
    // (descriptor, readable) of each ready client, reused across turns.
    let mut ready: Vec<(RawFd, bool)> = Vec::new();
    loop {
        match server.phase() {
            Phase::Running | Phase::Draining => {}
            Phase::DrainBegan => running = false,
            Phase::Over => return Ok(()),
        }
        let listening = server.acceptor.watching();
        let mut timeout = server
            .timeout()
            .map(|t| TimeVal::milliseconds(i64::try_from(t.as_millis()).unwrap_or(i64::MAX)));
        let accept;
        {
            // Build both bitmaps from scratch: `select` overwrote the last ones.
            let mut reads = FdSet::new();
            let mut writes = FdSet::new();
            if running {
                reads.insert(shutdown.as_fd());
            }
            let listener = server.acceptor.listener().filter(|_| listening);
            if let Some(listener) = listener {
                reads.insert(listener.as_fd());
            }
            for conn in server.conns.iter() {
                let interest = conn.interest();
                if interest.read {
                    reads.insert(conn.stream().as_fd());
                }
                if interest.write {
                    writes.insert(conn.stream().as_fd());
                }
            }

            match select(None, &mut reads, &mut writes, None, timeout.as_mut()) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(errno.into()),
            }

            // Scan for the ready bits: n more checks, ready or not.
            accept = listener.is_some_and(|l| reads.contains(l.as_fd()));
            ready.clear();
            for conn in server.conns.iter() {
                let fd = conn.stream().as_fd();
                let readable = reads.contains(fd);
                if readable || writes.contains(fd) {
                    ready.push((conn.fd(), readable));
                }
            }
        }
        for &(fd, readable) in &ready {
            server.serve(fd, readable);
        }
        if accept {
            server.acceptor.accept(&mut server.conns, |conn| {
                if fits(conn.fd()) {
                    return Ok(());
                }
                tracing::warn!(
                    "select: refusing a client: its descriptor {} is past FD_SETSIZE ({FD_SETSIZE})",
                    conn.fd()
                );
                Err(io::Error::other("past FD_SETSIZE"))
            })?;
        }
    }
}
