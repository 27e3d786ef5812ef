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
//! ones pays for all of them on every message. Measured on 2 cores
//! (`bench/results/2026-11-26/readiness-costs.md`): 9.8, 10.6 and 12.0 us of server
//! CPU per request at 10, 100 and 1000 busy connections (`epoll`: 9.3, 10.8,
//! 10.7), but 52.0 us with 10 busy clients beside 1000 silent ones (`select`
//! 71.1, `epoll` 8.4).
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
use std::os::fd::{AsFd, RawFd};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};

use crate::readiness::{Loop, Phase, wait_timeout};
use crate::{Config, Shutdown};

/// Serves on `listener` with a `poll` loop until the drain is over.
///
/// # Errors
///
/// Only if the listener breaks.
pub fn serve(listener: TcpListener, config: &Config, shutdown: &Shutdown) -> io::Result<()> {
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
        let timeout = wait_timeout(server.timeout());
        let accept;
        {
            // The fixed entries first: the listener and the shutdown.
            let mut fds = Vec::with_capacity(server.conns.len() + 2);
            let listener = server.acceptor.listener().filter(|_| listening);
            if let Some(listener) = listener {
                fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
            }
            if running {
                fds.push(PollFd::new(shutdown.as_fd(), PollFlags::POLLIN));
            }
            let fixed = fds.len();
            // One entry per connection, in the table's order.
            for conn in server.conns.iter() {
                let interest = conn.interest();
                let mut events = PollFlags::empty();
                if interest.read {
                    events |= PollFlags::POLLIN;
                }
                if interest.write {
                    events |= PollFlags::POLLOUT;
                }
                fds.push(PollFd::new(conn.stream().as_fd(), events));
            }

            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(errno.into()),
            }

            // Scan every entry for what fired: errors and hang-ups are
            // reported whether asked for or not, and a read collects them.
            let fired = |fd: &PollFd<'_>| fd.revents().unwrap_or(PollFlags::empty());
            accept = listener.is_some() && !fired(&fds[0]).is_empty();
            ready.clear();
            for (conn, fd) in server.conns.iter().zip(&fds[fixed..]) {
                let revents = fired(fd);
                if !revents.is_empty() {
                    let readable = revents
                        .intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR);
                    ready.push((conn.fd(), readable));
                }
            }
        }
        for &(fd, readable) in &ready {
            server.serve(fd, readable);
        }
        if accept {
            server.acceptor.accept(&mut server.conns, |_| Ok(()))?;
        }
    }
}
