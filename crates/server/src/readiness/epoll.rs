//! The epoll loop: the readiness core waiting in epoll, which `epoll` runs once, `reactors` once per thread, and `prefork` and `hybrid` once per thread of each worker process.
//!
//! `model/epoll.rs` explains the idea and its costs; this is the loop. The
//! listener and the shutdown descriptor are registered once, each
//! connection when it is accepted, with its descriptor as the event's data,
//! so that finding its connection is one index into the table.
//! Level-triggered (the default), a connection is watched for exactly what
//! its session needs, and `epoll_ctl` is called only when that changes;
//! edge-triggered (`--edge`), it is registered once for both directions and
//! served until it would block.

use std::io;
use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};

use super::{Interest, Loop, Step, wait_timeout};
use crate::loops::Kind;

/// Event data of the listener and of the shutdown descriptor. Connections
/// are registered with their descriptor as data, and descriptors are never
/// this large.
const LISTENER: u64 = u64::MAX;
const SHUTDOWN: u64 = u64::MAX - 1;

/// How many ready descriptors one `epoll_wait` returns at most; the rest wait
/// for the next call, which comes at once.
const EVENTS: usize = 1024;

/// One epoll loop, to the end of the drain, edge-triggered if `edge`.
///
/// # Errors
///
/// If epoll cannot be created, or the listener breaks.
pub(crate) fn run(mut server: Loop<'_>, edge: bool) -> io::Result<()> {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let shutdown = server.shutdown();
    epoll.add(shutdown, EpollEvent::new(EpollFlags::EPOLLIN, SHUTDOWN))?;
    // The listener is level-triggered in both modes: a turn accepts a batch,
    // and whoever is still queued is reported again on the next wait.
    let mut listening = false;
    let mut events = vec![EpollEvent::empty(); EVENTS];
    loop {
        // The listener comes off the list before it closes: a worker's
        // copy shares its open file with the parent's, and would stay on.
        let step = server.tick_with(|listener| {
            if listening {
                let _ = epoll.delete(listener);
            }
        });
        match step {
            Step::Serve | Step::Drain => {}
            // The shutdown descriptor stays readable, so it comes off too.
            Step::DrainBegan => {
                epoll.delete(shutdown)?;
                listening = false;
            }
            Step::Return => return Ok(()),
        }
        // Edge-triggered turns that ran out of budget go on first; while
        // any is left, the wait below does not sleep.
        server.turn_again();
        // Out of descriptors, the listener stays readable while accept fails:
        // watching it then would spin, so it is off the list until the
        // back-off ends.
        let watch = server.listening();
        if let (true, Some(listener)) = (watch != listening, server.listener()) {
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
                    server.accept(|conn| {
                        // The descriptor is the event's data: finding the
                        // connection again is one index into the table.
                        let data = super::fd(conn) as u64;
                        Ok(epoll.add(&conn.stream, EpollEvent::new(flags, data))?)
                    })?;
                }
                // The drain began; `tick` handles it at the top of the loop.
                SHUTDOWN => {}
                data => {
                    let fd = data as RawFd;
                    if edge {
                        server.turn_until_blocked(fd);
                        continue;
                    }
                    let readable = event.events().intersects(READABLE);
                    let Some(conn) = server.turn(fd, readable) else {
                        continue;
                    };
                    // Level-triggered: watch exactly what the session needs
                    // now, telling the kernel only when that changed.
                    let wanted = Interest::of(conn);
                    let watched = server.conns.watched(fd).expect("the connection lives on");
                    if wanted == *watched {
                        continue;
                    }
                    *watched = wanted;
                    let conn = server.conns.get_mut(fd).expect("the connection lives on");
                    let mut event = EpollEvent::new(flags(wanted), data);
                    // It cannot fail for a registered socket; if it did,
                    // that connection alone would end.
                    if let Err(errno) = epoll.modify(&conn.stream, &mut event) {
                        tracing::debug!("connection ended: epoll_ctl: {errno}");
                        drop(server.conns.remove(fd));
                    }
                }
            }
        }
    }
}

/// The epoll loop, for `loops::run_each`: one per listener.
pub(crate) const LOOP: Kind = Kind {
    name: "reactor",
    serve: |listener, config, shutdown, open| {
        run(Loop::new(listener, config, shutdown, open)?, config.edge)
    },
};

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
