//! poll(2): `select` without the 1024 limit, still O(n) on every call.
//!
//! **The idea.** The same loop as `select`, but the set is an array of
//! `{descriptor, events wanted, events ready}` entries instead of bitmaps: no
//! ceiling on descriptor numbers, and the wanted events are not overwritten,
//! so in C a server can keep the array from one call to the next.
//!
//! **Its cost.** Still O(n) per call: the kernel copies the whole array in,
//! polls every entry, copies it back, and the loop scans it for the entries
//! that fired. It beats `select` past a few hundred clients because the
//! array holds only the descriptors watched (not every number up to the
//! highest), and it has no limit, but a busy client among thousands of idle
//! ones pays for all of them on every message: with 10 busy clients beside
//! 1000 silent ones it spent 52 us of server CPU per request, where `epoll`
//! spent 8.4 (`bench/results/2026-11-26/readiness-costs.md`, with the
//! busy-only runs).
//!
//! **Why the array is rebuilt here.** Rust's `PollFd` borrows the socket it
//! watches, which is what makes a closed descriptor impossible to poll by
//! mistake; the price is that the array cannot outlive a turn in which a
//! connection is removed. Rebuilding it is O(n), like the call itself, so
//! the model's cost class is unchanged. A C server would patch the array in
//! place.
//!
//! **When to pick it.** Portable Unix code with up to a few hundred clients,
//! or a handful of descriptors of different kinds (a terminal, a pipe and a
//! socket, say). Past that, `epoll`.
//!
//! **How it fails.** Gracefully, but slowly: time per message grows with the
//! number of connections, idle or not.

use std::io;
use std::net::TcpListener;
use std::os::fd::AsFd;

use nix::poll::{PollFd, PollFlags, poll};

use crate::readiness::{Found, Interest, Loop, Scan, fd, wait_timeout};
use crate::{Config, Family, Model, Shutdown};

/// `--model poll`.
pub const MODEL: Model = Model::new(
    "poll",
    Family::Multiplexing,
    file!(),
    "one thread, poll(2) on an array of every socket: no limit, O(n) per wait",
    serve,
);

/// Serves on `listener` with a `poll` loop until the drain is over.
///
/// # Errors
///
/// Only if the listener breaks.
pub fn serve(listener: TcpListener, config: &Config, shutdown: &Shutdown) -> io::Result<()> {
    Loop::single(listener, config, shutdown)?.run_scanning(wait, |_| Ok(()))
}

/// One `poll` call over everything `scan` holds.
fn wait(scan: Scan<'_>, found: &mut Found) -> io::Result<()> {
    // The fixed entries first: the listener and the shutdown.
    let mut fds = Vec::with_capacity(scan.conns.len() + 2);
    if let Some(listener) = scan.listener {
        fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
    }
    if let Some(shutdown) = scan.shutdown {
        fds.push(PollFd::new(shutdown.as_fd(), PollFlags::POLLIN));
    }
    let fixed = fds.len();
    // One entry per connection, in the table's order.
    for conn in scan.conns.iter() {
        let interest = Interest::of(conn);
        let mut events = PollFlags::empty();
        if interest.read {
            events |= PollFlags::POLLIN;
        }
        if interest.write {
            events |= PollFlags::POLLOUT;
        }
        fds.push(PollFd::new(conn.stream.as_fd(), events));
    }
    poll(&mut fds, wait_timeout(scan.timeout))?;
    // Scan every entry for what fired: errors and hang-ups are reported
    // whether asked for or not, and a read collects them.
    let fired = |fd: &PollFd<'_>| fd.revents().unwrap_or(PollFlags::empty());
    found.accept = scan.listener.is_some() && !fired(&fds[0]).is_empty();
    for (conn, entry) in scan.conns.iter().zip(&fds[fixed..]) {
        let revents = fired(entry);
        if !revents.is_empty() {
            let readable =
                revents.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR);
            found.ready.push((fd(conn), readable));
        }
    }
    Ok(())
}
