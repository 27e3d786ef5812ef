//! The blocking echo loop, and the registry of live connections that lets a
//! signal reach threads blocked in `read` and `write`: shared by `iterative`,
//! `thread`, `thread-pool` and `fork`.
//!
//! A thread blocked in `read(2)` does not notice a flag being set. What does
//! wake it is the socket itself changing state: `shutdown(SHUT_RD)` makes a
//! blocked `read` return what is queued and then 0 (EOF), and
//! `shutdown(SHUT_RDWR)` makes a blocked `write` fail with `EPIPE`. So the
//! registry keeps every live socket, and one watcher thread per server turns
//! the phases of [`Shutdown`] into those two calls.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown as Direction, TcpListener, TcpStream};
use std::ops::Deref;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;

use crate::accept::stop_accepting;
use crate::{EchoSession, Shutdown};

/// Echoes one connection to its end with blocking calls.
///
/// Each turn writes everything pending, then reads once into the free part of
/// the session's buffer. While the client does not read, the write blocks and
/// nothing more is read from it: backpressure costs no code here, and the
/// server never holds more than the session's buffer for this client.
///
/// # Errors
///
/// Whatever the socket reports (reset, broken pipe); the caller drops the
/// connection, and only it.
pub(crate) fn echo(stream: &TcpStream, session: &mut EchoSession) -> io::Result<()> {
    let mut stream = stream;
    loop {
        while session.wants_send() {
            match stream.write(session.pending()) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => session.sent(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if session.is_done() {
            // Half-close: the client said EOF and has every reply; say EOF back.
            let _ = stream.shutdown(Direction::Write);
            return Ok(());
        }
        match stream.read(session.recv_buf()) {
            Ok(0) => session.peer_closed(),
            Ok(n) => session.received(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// [`echo`], with how it ended logged: a client's reset is its own business,
/// worth a debug line and no more.
pub(crate) fn serve(stream: &TcpStream, session: &mut EchoSession) {
    if let Err(error) = echo(stream, session) {
        tracing::debug!("connection ended: {error}");
    }
}

/// The live connections of one server, at most `limit` of them.
#[derive(Debug)]
pub(crate) struct Conns {
    limit: usize,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    live: HashMap<u64, Arc<TcpStream>>,
    next_id: u64,
    /// Set by the watcher, so a connection admitted during the drain is shut
    /// at once instead of being missed.
    draining: bool,
    forced: bool,
}

/// A connection in the registry; leaves it when dropped. Derefs to the socket.
#[derive(Debug)]
pub(crate) struct Conn {
    conns: Arc<Conns>,
    id: u64,
    stream: Arc<TcpStream>,
}

impl Deref for Conn {
    type Target = TcpStream;
    fn deref(&self) -> &TcpStream {
        &self.stream
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let mut state = self.conns.lock();
        state.live.remove(&self.id);
        if state.live.is_empty() {
            self.conns.changed.notify_all();
        }
    }
}

impl Conns {
    /// A registry for at most `limit` connections, with its watcher thread:
    /// when the drain begins it stops `listener` accepting and shuts the read
    /// side of every connection; when the stop is forced it shuts them whole.
    ///
    /// # Errors
    ///
    /// If the watcher's copy of the listener or its thread cannot be made.
    pub(crate) fn watch(
        listener: &TcpListener,
        limit: usize,
        shutdown: &Shutdown,
    ) -> io::Result<Arc<Self>> {
        let conns = Arc::new(Self {
            limit,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        // A duplicate descriptor of the same socket: shutting it down stops
        // the listener the models accept from, and it cannot dangle.
        let listener = listener.try_clone()?;
        let (watched, shutdown) = (Arc::clone(&conns), shutdown.clone());
        thread::Builder::new().name("drain".into()).spawn(move || {
            shutdown.wait_draining();
            stop_accepting(&listener);
            watched.shut_all(Direction::Read, |s| s.draining = true);
            shutdown.wait_forced();
            watched.shut_all(Direction::Both, |s| s.forced = true);
        })?;
        Ok(conns)
    }

    /// Registers a freshly accepted client, or closes it at once when the
    /// server is at its limit: the client sees EOF right away instead of
    /// waiting in a queue it cannot see.
    pub(crate) fn admit(self: &Arc<Self>, stream: TcpStream) -> Option<Conn> {
        let mut state = self.lock();
        if state.live.len() >= self.limit {
            tracing::debug!("at --max-conns {}: closing a new client", self.limit);
            return None;
        }
        if state.forced {
            let _ = stream.shutdown(Direction::Both);
        } else if state.draining {
            let _ = stream.shutdown(Direction::Read);
        }
        let id = state.next_id;
        state.next_id += 1;
        let stream = Arc::new(stream);
        state.live.insert(id, Arc::clone(&stream));
        Some(Conn {
            conns: Arc::clone(self),
            id,
            stream,
        })
    }

    /// Blocks until every connection has ended, or shortly after the stop is
    /// forced (see [`Shutdown::wait_while`]).
    pub(crate) fn wait_empty(&self, shutdown: &Shutdown) {
        shutdown.wait_while(self.lock(), &self.changed, |s| !s.live.is_empty());
    }

    fn shut_all(&self, direction: Direction, mark: impl FnOnce(&mut State)) {
        let mut state = self.lock();
        mark(&mut state);
        for stream in state.live.values() {
            // Fails only for a socket the client already tore down.
            let _ = stream.shutdown(direction);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section is a map insert or remove; none can leave
        // the state half-done, so a poisoned lock is still sound to use.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
