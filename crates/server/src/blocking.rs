//! The blocking echo loop, the iterative loop built on it, and the registry of live connections that lets the drain reach threads blocked in `read` and `write`: shared by `iterative`, `thread`, `thread-pool` and `fork`, and (the loop alone, over green sockets) by `green`.
//!
//! The loop is written against [`Stream`], which std's `TcpStream` and
//! `green::net::TcpStream` both are: the same code blocks a thread in one
//! model and only a greenlet in the other. That is gevent's
//! `monkey.patch_all()` in the form of a type parameter.
//!
//! A thread blocked in `read(2)` does not notice a flag being set. What
//! wakes it is a signal: the drain thread sets a flag and sends each
//! connection's thread one (`sys::wake`), whose handler does nothing but
//! make the blocked call return `EINTR`. A signal that arrives just before
//! the thread enters `read` would be missed, so the drain also gives each
//! socket a read timeout of a millisecond first: a `read` that starts after
//! that returns at once (`EAGAIN`) and sees the flag. The thread then
//! drains (`crate::drain`) and sets its timeouts back. The forced stop
//! shuts every socket (`SHUT_RDWR`): a blocked `read` returns 0 and a
//! blocked `write` fails with `EPIPE`.
//!
//! Shutting the read side (`SHUT_RD`) would wake a blocked `read` too, but
//! on Linux it also makes the kernel answer bytes that arrive after our FIN
//! with a reset, which throws away the replies still on their way.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown as Direction, TcpListener, TcpStream};
use std::ops::Deref;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::pthread::{Pthread, pthread_self};

use crate::accept::{Backoff, accept, stop_accepting};
use crate::drain::{self, Left};
use crate::{Config, EchoSession, Shutdown, sys};

/// How soon a blocked thread's next `read` returns once the drain began:
/// the read timeout the drain gives every socket before it signals.
const WAKE_WITHIN: Duration = Duration::from_millis(1);

/// A connected socket whose calls block until they can go on: the thread's
/// (std's `TcpStream`) or the greenlet's (`green::net::TcpStream`). What the
/// echo loop needs of it, no more: reads and writes through a shared
/// reference, a half-close, and timeouts that make a blocked call return
/// `WouldBlock`.
pub(crate) trait Stream: AsFd {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Waits for bytes (or the EOF) like `read`, and leaves them there.
    fn peek(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn write(&self, buf: &[u8]) -> io::Result<usize>;
    fn shutdown(&self, how: Direction) -> io::Result<()>;
    /// The read and the write timeout, both.
    fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl Stream for TcpStream {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(&mut &*self, buf)
    }
    fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        TcpStream::peek(self, buf)
    }
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        Write::write(&mut &*self, buf)
    }
    fn shutdown(&self, how: Direction) -> io::Result<()> {
        TcpStream::shutdown(self, how)
    }
    fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(timeout)?;
        self.set_write_timeout(timeout)
    }
}

impl Stream for green::net::TcpStream {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(&mut &*self, buf)
    }
    fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        green::net::TcpStream::peek(self, buf)
    }
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        Write::write(&mut &*self, buf)
    }
    fn shutdown(&self, how: Direction) -> io::Result<()> {
        green::net::TcpStream::shutdown(self, how)
    }
    fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(timeout)?;
        self.set_write_timeout(timeout)
    }
}

/// Echoes one connection to its end with blocking calls.
///
/// Each turn writes everything pending, then reads once into the free part of
/// the session's buffer. Until the client's first byte the session has no
/// buffer, and the loop waits with a one-byte `peek` instead: a client that
/// connects and says nothing costs no buffer. While the client does not read, the write blocks and
/// nothing more is read from it: backpressure costs no code here, and the
/// server never holds more than the session's buffer for this client.
///
/// Once `draining` is set (and the call it interrupted has returned), the
/// session is capped at what the kernel holds for the client; after the
/// last reply the socket is half-closed, and what the client still sends is
/// read and thrown away until its EOF (`crate::drain`). With `idle`, a
/// connection that neither sends nor takes a byte for that long is closed:
/// its socket's timeouts make a blocked call return.
///
/// # Errors
///
/// Whatever the socket reports (reset, broken pipe), or `TimedOut` for an
/// idle connection; the caller drops the connection, and only it.
pub(crate) fn echo(
    stream: &impl Stream,
    session: &mut EchoSession,
    draining: &AtomicBool,
    idle: Option<Duration>,
) -> io::Result<()> {
    let mut clock = Clock::start(stream, idle)?;
    let mut drained = false;
    loop {
        if !drained && draining.load(Ordering::SeqCst) {
            drained = true;
            session.stop_after(drain::queued(stream));
            // The drain's short timeout has done its job.
            clock.rearm(stream)?;
        }
        while session.wants_send() {
            match stream.write(session.pending()) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    session.sent(n);
                    clock.touch();
                }
                Err(e) => clock.after(stream, e)?,
            }
        }
        if session.is_done() {
            // Half-close: the client has every reply; say EOF back.
            let _ = stream.shutdown(Direction::Write);
            if session.lingers() {
                linger(stream, session, &mut clock)?;
            }
            return Ok(());
        }
        if !session.has_buffer() {
            match stream.peek(&mut [0]) {
                Ok(0) => {
                    session.peer_closed();
                    continue;
                }
                // Bytes are there: the read below takes the buffer.
                Ok(_) => {}
                Err(e) => {
                    clock.after(stream, e)?;
                    continue;
                }
            }
        }
        match stream.read(session.recv_buf()) {
            Ok(0) => session.peer_closed(),
            Ok(n) => {
                session.received(n);
                clock.touch();
            }
            Err(e) => clock.after(stream, e)?,
        }
    }
}

/// The lingering close: reads and throws away what the client still sends,
/// until its EOF (or an error, or the forced stop's `SHUT_RDWR`).
fn linger(stream: &impl Stream, session: &mut EchoSession, clock: &mut Clock) -> io::Result<()> {
    loop {
        match stream.read(session.discard_buf()) {
            Ok(0) => return Ok(()),
            Ok(_) => clock.touch(),
            Err(e) => clock.after(stream, e)?,
        }
    }
}

/// A blocking connection's timeouts: `--idle-timeout` as its socket's read
/// and write timeouts, and when it last moved a byte.
#[derive(Debug)]
struct Clock {
    idle: Option<Duration>,
    active_at: Instant,
}

impl Clock {
    /// Sets the socket's timeouts, if there is an idle timeout: a socket
    /// starts without any.
    fn start(stream: &impl Stream, idle: Option<Duration>) -> io::Result<Self> {
        let clock = Self {
            idle,
            active_at: Instant::now(),
        };
        if idle.is_some() {
            clock.rearm(stream)?;
        }
        Ok(clock)
    }

    /// Gives the socket this connection's own timeouts again.
    fn rearm(&self, stream: &impl Stream) -> io::Result<()> {
        stream.set_timeouts(self.idle)
    }

    fn touch(&mut self) {
        if self.idle.is_some() {
            self.active_at = Instant::now();
        }
    }

    /// What a failed call means: `EINTR` (the drain's signal, most likely)
    /// is tried again, as is a timeout that is not the idle one (the
    /// drain's short one), after setting the socket's own back; an idle
    /// connection ends with `TimedOut`; anything else ends it too.
    fn after(&mut self, stream: &impl Stream, error: io::Error) -> io::Result<()> {
        match error.kind() {
            ErrorKind::Interrupted => Ok(()),
            ErrorKind::WouldBlock | ErrorKind::TimedOut => match self.idle {
                Some(idle) if self.active_at.elapsed() >= idle => Err(io::Error::new(
                    ErrorKind::TimedOut,
                    format!("idle for {idle:?}"),
                )),
                _ => self.rearm(stream),
            },
            _ => Err(error),
        }
    }
}

/// The iterative loop: accept a client, echo it until it leaves, then
/// accept the next, until the drain. `iterative` is one of these; a
/// `thread-pool` is N of them sharing the listener.
///
/// # Errors
///
/// If the listener breaks.
pub(crate) fn one_at_a_time(
    listener: &TcpListener,
    registry: &Arc<Registry>,
    config: &Config,
    shutdown: &Shutdown,
) -> io::Result<()> {
    // One buffer for the life of the loop: clients never overlap, so each
    // one gets it fresh after the last has gone.
    let mut session = EchoSession::new(config.buffer);
    let mut backoff = Backoff::default();
    while let Some(stream) = accept(listener, shutdown, &mut backoff)? {
        let Some(conn) = registry.admit(stream) else {
            continue;
        };
        session.reset();
        // Everything else waits while this runs: that is the model.
        conn.echo(&mut session, config.idle_limit());
    }
    Ok(())
}

/// The live connections of one server, at most `limit` of them.
#[derive(Debug)]
pub(crate) struct Registry {
    limit: usize,
    /// Set by the drain thread before it wakes anyone.
    draining: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    live: HashMap<u64, Entry>,
    next_id: u64,
    /// Set by the forced stop, so a connection admitted after it is shut at
    /// once instead of being missed.
    forced: bool,
}

#[derive(Debug)]
struct Entry {
    stream: Arc<TcpStream>,
    /// The thread echoing it, once it has started.
    thread: Option<Pthread>,
}

/// A connection in the registry; leaves it when dropped. Derefs to the socket.
#[derive(Debug)]
pub(crate) struct Registered {
    registry: Arc<Registry>,
    id: u64,
    stream: Arc<TcpStream>,
}

impl Deref for Registered {
    type Target = TcpStream;
    fn deref(&self) -> &TcpStream {
        &self.stream
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut state = self.registry.lock();
        state.live.remove(&self.id);
        if state.live.is_empty() {
            self.registry.changed.notify_all();
        }
    }
}

impl Registered {
    /// Echoes this connection on the calling thread to its end ([`echo`]),
    /// with how it ended logged: a client's reset is its own business, worth
    /// a debug line and no more. The thread is recorded first, so the drain
    /// can wake it.
    pub(crate) fn echo(self, session: &mut EchoSession, idle: Option<Duration>) {
        // A drain that goes by before this line has set the flag, which
        // `echo` looks at after it sets the socket's timeouts; one that
        // comes after it signals this thread.
        if let Some(entry) = self.registry.lock().live.get_mut(&self.id) {
            entry.thread = Some(pthread_self());
        }
        if let Err(error) = echo(&*self.stream, session, &self.registry.draining, idle) {
            tracing::debug!("connection ended: {error}");
        }
    }
}

impl Registry {
    /// A registry for at most `limit` connections, with its drain thread:
    /// when the drain begins it stops `listener` accepting and wakes every
    /// connection's thread; when the stop is forced it shuts them whole.
    ///
    /// # Errors
    ///
    /// If the wake-up signal cannot be set up, or the drain thread's copy of
    /// the listener or its thread cannot be made.
    pub(crate) fn new(
        listener: &TcpListener,
        limit: usize,
        shutdown: &Shutdown,
    ) -> io::Result<Arc<Self>> {
        sys::init_wake()?;
        let registry = Arc::new(Self {
            limit,
            draining: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        // A duplicate descriptor of the same socket: shutting it down stops
        // the listener the models accept from, and it cannot dangle.
        let listener = listener.try_clone()?;
        let (drained, forced) = (Arc::clone(&registry), Arc::clone(&registry));
        drain::watch(
            shutdown,
            move || {
                stop_accepting(&listener);
                drained.wake_all();
            },
            move || Left::Connections(forced.shut_all()),
        )?;
        Ok(registry)
    }

    /// Registers a freshly accepted client, or closes it at once when the
    /// server is at its limit: the client sees EOF right away instead of
    /// waiting in a queue it cannot see.
    pub(crate) fn admit(self: &Arc<Self>, stream: TcpStream) -> Option<Registered> {
        let mut state = self.lock();
        if state.live.len() >= self.limit {
            tracing::debug!("at --max-conns {}: closing a new client", self.limit);
            return None;
        }
        if state.forced {
            let _ = stream.shutdown(Direction::Both);
        }
        let id = state.next_id;
        state.next_id += 1;
        let stream = Arc::new(stream);
        let entry = Entry {
            stream: Arc::clone(&stream),
            thread: None,
        };
        state.live.insert(id, entry);
        Some(Registered {
            registry: Arc::clone(self),
            id,
            stream,
        })
    }

    /// Blocks until every connection has ended, or shortly after the stop is
    /// forced (see [`Shutdown::wait_while`]).
    pub(crate) fn wait_empty(&self, shutdown: &Shutdown) {
        shutdown.wait_while(self.lock(), &self.changed, |s| !s.live.is_empty());
    }

    /// The drain: sets the flag, then gives every socket a short read
    /// timeout and signals its thread (see the module docs for why both).
    fn wake_all(&self) {
        self.draining.store(true, Ordering::SeqCst);
        let state = self.lock();
        for entry in state.live.values() {
            // Fails only for a socket the client already tore down.
            let _ = entry.stream.set_read_timeout(Some(WAKE_WITHIN));
            if let Some(thread) = entry.thread {
                // The entry leaves the registry before its thread ends, so
                // this thread is alive.
                sys::wake(thread);
            }
        }
    }

    /// The forced stop: shuts every socket; returns how many there were.
    fn shut_all(&self) -> usize {
        let mut state = self.lock();
        state.forced = true;
        for entry in state.live.values() {
            // Fails only for a socket the client already tore down.
            let _ = entry.stream.shutdown(Direction::Both);
        }
        state.live.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section is a map insert or remove; none can leave
        // the state half-done, so a poisoned lock is still sound to use.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
