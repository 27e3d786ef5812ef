//! The green hub as a server: one greenlet accepts, and every client runs the blocking echo loop (`blocking::echo`) in a greenlet of its own; `green` runs one hub (or one per thread), `hybrid --green` one per thread of each worker process.
//!
//! A hub is one thread; its greenlets take turns on it, each switching
//! away where it would block (`green`'s crate docs tell how). The server
//! is three kinds of greenlet:
//!
//! - **accept**: accepts, admits against `--max-conns` (a client beyond
//!   it is closed at once), enters the client in this hub's list and
//!   spawns its greenlet. After [`ACCEPT_BATCH`] clients in a row it
//!   yields, so a burst of connections cannot keep the connected clients
//!   (or the drain) waiting; gevent's `StreamServer` caps its accepts per
//!   turn the same way. Out of descriptors it sleeps its back-off
//!   (`crate::accept`) while the other greenlets go on serving.
//! - **a client's**: [`blocking::echo`](crate::blocking::echo) over a
//!   `green::net::TcpStream`, the very loop the `thread` model runs over
//!   std's.
//! - **drain**: waits on the [`Shutdown`] descriptor, which turns readable
//!   when the drain begins (`green::wait_readable`). Then it sets the flag
//!   the echo loops look at, kills the acceptor (the listener closes as it
//!   unwinds: new clients are refused), and gives every client a read
//!   timeout of a millisecond. A greenlet parked in `read`
//!   has that timeout applied to the wait it is in, returns `WouldBlock`,
//!   sees the flag and drains (`crate::drain`), as a thread does. No
//!   signal is needed: a parked greenlet is the hub's to wake, where a
//!   thread in `read(2)` is the kernel's. When the stop is forced it shuts
//!   every socket that is left (`SHUT_RDWR`): each parked call returns,
//!   and each greenlet ends.
//!
//! The hub's first greenlet waits for the acceptor to end, then for the
//! last client, and returns: the hub ends with it.

use std::cell::RefCell;
use std::io;
use std::net::{Shutdown as Direction, TcpListener};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use green::{Greenlet, GreenletError};

use crate::accept::{AcceptError, Backoff, prepare};
use crate::admission::{OpenCount, Slot};
use crate::drain::{self, Left};
use crate::loops::Kind;
use crate::{Config, EchoSession, Shutdown, blocking};

/// The green hub, for `loops::run_each`: one per listener.
pub(crate) const LOOP: Kind = Kind { name: "hub", serve };

/// Clients the acceptor takes in a row before it lets the others run.
const ACCEPT_BATCH: u32 = 64;

/// How soon a parked `read` returns once the drain began.
const WAKE_WITHIN: Duration = Duration::from_millis(1);

/// How often the drain greenlet looks for a forced stop that came early
/// (a second signal): the end of the grace period it sleeps until exactly.
const FORCE_POLL: Duration = Duration::from_millis(100);

/// Serves `listener` with a hub on the calling thread, until the drain is
/// over.
///
/// # Errors
///
/// If the hub cannot register the listener, or the listener breaks while
/// the server is not stopping.
fn serve(
    listener: TcpListener,
    config: &Config,
    shutdown: &Shutdown,
    open: OpenCount,
) -> io::Result<()> {
    let (config, shutdown) = (config.clone(), shutdown.clone());
    green::run(move || {
        let listener = green::net::TcpListener::from_std(listener)?;
        let clients = Rc::new(Clients::default());
        let acceptor = {
            let clients = Rc::clone(&clients);
            green::try_spawn_named("accept", move || {
                accept_clients(&listener, &clients, &config, &open)
            })?
        };
        {
            let (clients, acceptor) = (Rc::clone(&clients), acceptor.clone());
            green::try_spawn_named("drain", move || drain(&shutdown, &acceptor, &clients))?;
        }
        // The acceptor returns only with an error; the drain kills it. A
        // panic (a bug) leaves a server that accepts no one: it fails.
        match acceptor.into_result() {
            Ok(Err(error)) if !clients.draining.load(Ordering::SeqCst) => return Err(error),
            Err(GreenletError::Panicked(message)) => {
                return Err(io::Error::other(format!(
                    "the acceptor panicked: {message}"
                )));
            }
            _ => {}
        }
        clients.wait_empty();
        Ok(())
    })
}

/// The acceptor's loop, until it is killed or the listener breaks.
fn accept_clients(
    listener: &green::net::TcpListener,
    clients: &Rc<Clients>,
    config: &Config,
    open: &OpenCount,
) -> io::Result<()> {
    let mut backoff = Backoff::default();
    let mut in_a_row = 0;
    loop {
        if in_a_row == ACCEPT_BATCH {
            in_a_row = 0;
            green::sleep(Duration::ZERO);
        }
        match listener.accept() {
            Ok((stream, _)) => {
                in_a_row += 1;
                backoff.reset();
                prepare(stream.get_ref());
                let Some(slot) = open.admit(config.max_conns) else {
                    tracing::debug!("at --max-conns {}: closing a new client", config.max_conns);
                    continue;
                };
                let client = Clients::enter(clients, stream, slot);
                let (buffer, idle) = (config.buffer, config.idle_limit());
                // Out of stack slots or memory: the closure, and the client
                // in it, are dropped, which closes this one client.
                let spawned = green::try_spawn_named("client", move || {
                    // The session is allocated by the greenlet that uses it.
                    let mut session = EchoSession::new(buffer);
                    let draining = &client.clients.draining;
                    if let Err(error) =
                        blocking::echo(&*client.stream, &mut session, draining, idle)
                    {
                        tracing::debug!("connection ended: {error}");
                    }
                });
                if let Err(error) = spawned {
                    tracing::warn!("cannot start a greenlet for a new client, closing it: {error}");
                }
            }
            Err(error) => match AcceptError::classify(&error) {
                AcceptError::ClientGone => {}
                AcceptError::Exhausted => green::sleep(backoff.pause(&error)),
                AcceptError::ListenerDown => return Err(error),
            },
        }
    }
}

/// The drain greenlet: waits for the drain, stops the acceptor and wakes
/// every client, then waits for the forced stop and shuts what is left.
fn drain(shutdown: &Shutdown, acceptor: &Greenlet<io::Result<()>>, clients: &Clients) {
    if green::wait_readable(shutdown, None).is_err() {
        // The descriptor could not be registered (out of memory): look
        // at the flag instead, a few times a second.
        while !shutdown.is_draining() {
            green::sleep(FORCE_POLL);
        }
    }
    clients.draining.store(true, Ordering::SeqCst);
    acceptor.kill();
    clients.wake_all();
    loop {
        let until_forced = match shutdown.deadline() {
            Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            None => FORCE_POLL,
        };
        if shutdown.is_forced() {
            break;
        }
        green::sleep(until_forced.min(FORCE_POLL));
    }
    drain::log_forced(Left::Connections(clients.shut_all()));
}

/// The clients of one hub.
#[derive(Debug, Default)]
struct Clients {
    /// Set by the drain greenlet before it wakes anyone.
    draining: AtomicBool,
    /// The live clients' sockets, by the index each was entered at.
    live: RefCell<Live>,
    /// Set when the last client leaves during the drain.
    empty: green::Event,
}

#[derive(Debug, Default)]
struct Live {
    sockets: Vec<Option<Rc<green::net::TcpStream>>>,
    /// The indices of `sockets` that are `None`, for the next to enter.
    free: Vec<usize>,
    /// Set by the forced stop: nobody is entered after it, but say so.
    forced: bool,
}

impl Live {
    /// How many clients are in the list.
    fn count(&self) -> usize {
        self.sockets.len() - self.free.len()
    }
}

/// A client in its hub's list; leaves it when dropped.
#[derive(Debug)]
struct Client {
    clients: Rc<Clients>,
    index: usize,
    stream: Rc<green::net::TcpStream>,
    /// Its place in `--max-conns`' count.
    _slot: Slot,
}

impl Drop for Client {
    fn drop(&mut self) {
        let mut live = self.clients.live.borrow_mut();
        live.sockets[self.index] = None;
        live.free.push(self.index);
        if live.count() == 0 && self.clients.draining.load(Ordering::SeqCst) {
            self.clients.empty.set();
        }
    }
}

impl Clients {
    fn enter(clients: &Rc<Self>, stream: green::net::TcpStream, slot: Slot) -> Client {
        let stream = Rc::new(stream);
        let mut live = clients.live.borrow_mut();
        debug_assert!(!live.forced, "the acceptor is gone before the forced stop");
        let index = live.free.pop().unwrap_or_else(|| {
            live.sockets.push(None);
            live.sockets.len() - 1
        });
        live.sockets[index] = Some(Rc::clone(&stream));
        Client {
            clients: Rc::clone(clients),
            index,
            stream,
            _slot: slot,
        }
    }

    fn sockets(&self) -> Vec<Rc<green::net::TcpStream>> {
        self.live
            .borrow()
            .sockets
            .iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// The drain: a short read timeout on every socket, which ends the
    /// wait of a greenlet parked in `read` (see the module docs).
    fn wake_all(&self) {
        for socket in self.sockets() {
            // Fails only for a socket the client already tore down.
            let _ = socket.set_read_timeout(Some(WAKE_WITHIN));
        }
    }

    /// The forced stop: shuts every socket; returns how many there were.
    fn shut_all(&self) -> usize {
        self.live.borrow_mut().forced = true;
        let sockets = self.sockets();
        for socket in &sockets {
            // Fails only for a socket the client already tore down.
            let _ = socket.shutdown(Direction::Both);
        }
        sockets.len()
    }

    /// Waits until every client has left (the drain is on: the acceptor
    /// is gone).
    fn wait_empty(&self) {
        if self.live.borrow().count() > 0 {
            self.empty.wait();
        }
    }
}
