//! epoll: one thread, one kernel-kept interest list, and a wait that returns only what is ready.
//!
//! **The idea.** The notes end their look at `select` with "the final answer
//! is epoll": instead of handing the kernel the whole set of descriptors on
//! every call and scanning it again on return, the server registers each
//! descriptor once (`epoll_ctl`), and the kernel keeps a ready list that
//! sockets add themselves to when their state changes. `epoll_wait` copies
//! out only the ready ones, so a wait costs O(ready), not O(watched): 10,000
//! idle clients cost nothing per message.
//!
//! **Level- or edge-triggered.** Level-triggered (the default) reports a
//! descriptor on every wait for as long as it is ready, exactly like `poll`:
//! the loop may read once and leave the rest for the next wait, and it must
//! stop watching what it cannot use (a full client for reading, a client
//! that owes nothing for writing), or the wait returns at once, for ever.
//! Edge-triggered (`--edge`) reports a descriptor only when it *becomes*
//! ready: registered once for reading and writing, never changed, but the
//! loop must then read and write until `EAGAIN` every time, since bytes left
//! behind get no second report. For this echo, level-triggered is the better
//! fit: a message is one `read` and one `write`, where edge-triggered pays a
//! third call, the `read` that says `EAGAIN`; the `epoll_ctl` calls it saves
//! happen only when a client stops reading. Edge-triggered wins when
//! interest would change on most turns, or with several threads on one
//! epoll (with `EPOLLONESHOT` or `EPOLLEXCLUSIVE`), where level-triggered
//! wakes every thread for the same descriptor.
//!
//! **Its cost.** Per message: one `read`, one `write`, and a share of one
//! `epoll_wait` (a wait returns every client that is ready, up to 1024). All
//! on one thread: no locks, no context switches, and the server's memory is
//! one 64 KiB session buffer per client (only the pages it touched are
//! resident) plus the kernel's socket buffers. Measured on 2 cores
//! (`bench/results/2026-11-26/readiness-costs.md`, one client thread, 64-byte
//! requests, 100 connections, 5 rounds alternated with the `tokio-echo`
//! peer): 9.16 us of server CPU per request, 0.96x tokio-echo's; `--edge`
//! 1.15x, the extra `read` per message. A second run (`readiness-costs-2.md`):
//! 8.90 us, 0.94x, and `--edge` 0.97x. With every connection busy, `poll`
//! did as well or about 10% better (7.7 us at 100 connections): a wait that
//! returns many ready sockets shares its O(n) among them, and a
//! level-triggered epoll polls each reported socket again on the next wait. With 1000 silent clients beside 10
//! busy ones: 8.4 us, where `poll` pays 52 and `select` 71.
//!
//! **Why not far below tokio.** Profiles of both servers under that load
//! (`bench/results/2026-11-26/epoll-cpu-floor.md`, `bench/epoll_profile.sh`)
//! put this loop's time at 75% in `send` (half of it the loopback delivering
//! the reply into the client's socket, which Linux runs in the sender's
//! context), 13% in `recv`, 4% in `epoll_wait`, 1% in the scheduler and 4%
//! in user space. tokio-echo spends 65% and 12% in the same two calls, and
//! its extra is in `epoll_wait` (8%), the scheduler (7%), `futex` (2%) and
//! user space (9%). With each message exactly two TCP segments, the
//! kernel's `send` and `recv` are the same work for both: 88% of this
//! loop's time against 77% of tokio-echo's puts the floor for any readiness
//! loop near 0.88x tokio-echo here, and the 0.8x we aimed for below it.
//!
//! **When to pick it.** Many connections, each doing little: this is how
//! nginx, Redis, Node.js and tokio wait. One thread uses one core; `reactors`
//! runs one such loop per core.
//!
//! **How it fails.** Work that takes long stalls every client of the loop:
//! the loop must never block, and must never compute for long on one client.

use std::io;
use std::net::TcpListener;
use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};

use crate::readiness::{Interest, Loop, Phase, wait_timeout};
use crate::{Config, Shutdown};

/// Event data of the listener and of the shutdown descriptor. Connections
/// are registered with their descriptor as data, and descriptors are never
/// this large.
const LISTENER: u64 = u64::MAX;
const SHUTDOWN: u64 = u64::MAX - 1;

/// How many ready descriptors one `epoll_wait` returns at most; the rest wait
/// for the next call, which comes at once.
const EVENTS: usize = 1024;

/// Serves on `listener` with one epoll loop, level-triggered unless
/// `config.edge`, until the drain is over.
///
/// # Errors
///
/// If epoll cannot be created, or the listener breaks.
pub fn serve(listener: TcpListener, config: &Config, shutdown: &Shutdown) -> io::Result<()> {
    run(Loop::single(listener, config, shutdown)?, config.edge)
}

/// One epoll loop, to the end of the drain: the whole model, and each thread
/// of `reactors`.
pub(crate) fn run(mut server: Loop<'_>, edge: bool) -> io::Result<()> {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let shutdown = server.shutdown();
    epoll.add(shutdown, EpollEvent::new(EpollFlags::EPOLLIN, SHUTDOWN))?;
    // The listener is level-triggered in both modes: a turn accepts a batch,
    // and whoever is still queued is reported again on the next wait.
    let mut listening = false;
    let mut events = vec![EpollEvent::empty(); EVENTS];
    loop {
        match server.phase() {
            Phase::Running | Phase::Draining => {}
            // The listener closed, which took it off the list; the shutdown
            // descriptor stays readable, so it must come off too.
            Phase::DrainBegan => {
                epoll.delete(shutdown)?;
                listening = false;
            }
            Phase::Over => return Ok(()),
        }
        // Edge-triggered turns that ran out of budget go on first; while
        // any is left, the wait below does not sleep.
        server.serve_again();
        // Out of descriptors, the listener stays readable while accept fails:
        // watching it then would spin, so it is off the list until the
        // back-off ends.
        let watch = server.acceptor.watching();
        if let (true, Some(listener)) = (watch != listening, server.acceptor.listener()) {
            if watch {
                epoll.add(listener, EpollEvent::new(EpollFlags::EPOLLIN, LISTENER))?;
            } else {
                epoll.delete(listener)?;
            }
            listening = watch;
        }

        let ready = match epoll.wait(&mut events, wait_timeout(server.timeout())) {
            Ok(ready) => ready,
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno.into()),
        };
        for event in &events[..ready] {
            match event.data() {
                LISTENER => {
                    let flags = if edge { EDGE } else { flags(Interest::NEW) };
                    server.acceptor.accept(&mut server.conns, |conn| {
                        // The descriptor is the event's data: finding the
                        // connection again is one index into the table.
                        let data = conn.fd() as u64;
                        Ok(epoll.add(conn.stream(), EpollEvent::new(flags, data))?)
                    })?;
                }
                // The drain began; `phase` handles it at the top of the loop.
                SHUTDOWN => {}
                data => {
                    let fd = data as RawFd;
                    if edge {
                        server.serve_until_blocked(fd);
                        continue;
                    }
                    let readable = event.events().intersects(READABLE);
                    let Some(conn) = server.serve(fd, readable) else {
                        continue;
                    };
                    // Level-triggered: watch exactly what the session needs
                    // now, telling the kernel only when that changed.
                    let wanted = conn.interest();
                    if wanted != conn.watched {
                        let mut event = EpollEvent::new(flags(wanted), data);
                        match epoll.modify(conn.stream(), &mut event) {
                            Ok(()) => conn.watched = wanted,
                            // It cannot fail for a registered socket; if it
                            // did, that connection alone would end.
                            Err(errno) => {
                                tracing::debug!("connection ended: epoll_ctl: {errno}");
                                drop(server.conns.remove(fd));
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Events that mean "a read will not block": data, EOF, or an error to collect.
const READABLE: EpollFlags = EpollFlags::EPOLLIN
    .union(EpollFlags::EPOLLHUP)
    .union(EpollFlags::EPOLLERR);

/// Edge-triggered registration: both directions, once, for the connection's life.
const EDGE: EpollFlags = EpollFlags::EPOLLIN
    .union(EpollFlags::EPOLLOUT)
    .union(EpollFlags::EPOLLRDHUP)
    .union(EpollFlags::EPOLLET);

/// Level-triggered registration for what a connection wants. Errors and
/// hang-ups are always reported, whatever is asked.
fn flags(interest: Interest) -> EpollFlags {
    let mut flags = EpollFlags::empty();
    if interest.read {
        flags |= EpollFlags::EPOLLIN;
    }
    if interest.write {
        flags |= EpollFlags::EPOLLOUT;
    }
    flags
}
