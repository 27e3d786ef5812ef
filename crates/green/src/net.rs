//! Cooperative TCP: `std::net`'s `TcpListener` and `TcpStream`, whose blocking calls park the greenlet instead of the thread (gevent's monkey patch, done as types).
//!
//! Each socket is non-blocking underneath and registered once with the
//! hub. A call is tried first; if the kernel says `EAGAIN`, the greenlet
//! parks until the hub sees the socket ready, then tries again. Code
//! written for `std::net` (anything generic over `Read + Write`) runs
//! unchanged on these types, one greenlet per connection.
//!
//! Timeouts keep std's meaning (a call that waits longer than the timeout
//! fails with `EAGAIN`, `ErrorKind::WouldBlock`), with one addition: a
//! timeout set while a call is waiting applies to that call too, if it
//! ends it sooner. A thread blocked in `read(2)` cannot be reached that
//! way; a greenlet can, which is how a server's drain reaches greenlets
//! parked in `read`.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use crate::fd::{Registration, cooperate};
use crate::hub::{self, io::Dir};

/// A listening socket whose `accept` parks the greenlet.
///
/// # Examples
///
/// ```
/// use green::net::{TcpListener, TcpStream};
///
/// green::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let client = green::spawn(move || TcpStream::connect(addr).unwrap());
///     let (_conn, peer) = listener.accept().unwrap();
///     assert_eq!(peer, client.into_result().unwrap().local_addr().unwrap());
/// });
/// ```
#[derive(Debug)]
pub struct TcpListener {
    // Dropped first: taken off the hub's list before the socket closes.
    registration: Registration,
    inner: std::net::TcpListener,
}

impl TcpListener {
    /// Binds as [`std::net::TcpListener::bind`] does (binding never blocks).
    ///
    /// # Errors
    ///
    /// As std's, or if the socket cannot be registered with the hub.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        Self::from_std(std::net::TcpListener::bind(addr)?)
    }

    /// Takes over a std listener: it is made non-blocking and registered
    /// with this thread's hub.
    ///
    /// # Errors
    ///
    /// If either step fails.
    pub fn from_std(inner: std::net::TcpListener) -> io::Result<Self> {
        inner.set_nonblocking(true)?;
        let registration = Registration::new(inner.as_raw_fd())?;
        Ok(Self {
            registration,
            inner,
        })
    }

    /// Waits for a connection and accepts it.
    ///
    /// # Errors
    ///
    /// What `accept(2)` reports (`EMFILE` when out of descriptors, for
    /// instance: the caller decides whether to back off).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = cooperate(
            self.registration.key,
            Dir::Read,
            None,
            || self.inner.accept(),
            |_| false,
        )?;
        Ok((TcpStream::from_std(stream)?, peer))
    }

    /// The address it listens on.
    ///
    /// # Errors
    ///
    /// As std's.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The std listener underneath (still non-blocking), for socket options.
    pub fn get_ref(&self) -> &std::net::TcpListener {
        &self.inner
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

/// A TCP connection whose reads, writes and connect park the greenlet.
///
/// `Read` and `Write` are implemented for `TcpStream` and for
/// `&TcpStream`, as in std: one greenlet may read while another writes.
/// Two greenlets reading at once get an error (`ResourceBusy`), as in
/// gevent: they would split the bytes between them at random.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use green::net::{TcpListener, TcpStream};
///
/// green::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
///     let (mut conn, _) = listener.accept().unwrap();
///     conn.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
///     let mut buf = [0; 8];
///     let quiet = conn.read(&mut buf).unwrap_err();
///     assert_eq!(quiet.kind(), std::io::ErrorKind::WouldBlock); // as std's timeout
///     client.write_all(b"hi").unwrap();
///     assert_eq!(conn.read(&mut buf).unwrap(), 2);
/// });
/// ```
#[derive(Debug)]
pub struct TcpStream {
    registration: Registration,
    inner: std::net::TcpStream,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
}

impl TcpStream {
    /// Connects to the first of `addr`'s addresses that accepts, parking
    /// the greenlet while the handshake runs.
    ///
    /// # Errors
    ///
    /// The last address's error, or `InvalidInput` if `addr` resolves to
    /// nothing. Resolving a name blocks the hub: pass an address, or
    /// resolve in [`crate::spawn_blocking`].
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<Self> {
        Self::connect_until(addr, None)
    }

    /// [`connect`](Self::connect), giving up after `timeout` (std's
    /// `connect_timeout`).
    ///
    /// # Errors
    ///
    /// As `connect`, and `TimedOut` if the handshake is not done in time.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<Self> {
        Self::connect_until(addr, Some(timeout))
    }

    fn connect_until(addr: impl ToSocketAddrs, timeout: Option<Duration>) -> io::Result<Self> {
        let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to");
        for addr in addr.to_socket_addrs()? {
            match Self::connect_one(addr, timeout) {
                Ok(stream) => return Ok(stream),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn connect_one(addr: SocketAddr, timeout: Option<Duration>) -> io::Result<Self> {
        // mio starts a non-blocking connect; it completes when the socket
        // turns writable, and `take_error` says how.
        let stream = Self::from_std(mio::net::TcpStream::connect(addr)?.into())?;
        stream.registration_clear(Dir::Write);
        let done = cooperate(
            stream.registration.key,
            Dir::Write,
            timeout,
            || match stream.inner.take_error()? {
                Some(error) => Err(error),
                None => match stream.inner.peer_addr() {
                    Ok(_) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                    Err(e) => Err(e),
                },
            },
            |()| false,
        );
        match done {
            Ok(()) => Ok(stream),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
            }
            Err(e) => Err(e),
        }
    }

    fn registration_clear(&self, dir: Dir) {
        hub::with(|core| core.io.clear(self.registration.key, dir));
    }

    /// Takes over a connected std stream: it is made non-blocking and
    /// registered with this thread's hub.
    ///
    /// # Errors
    ///
    /// If either step fails.
    pub fn from_std(inner: std::net::TcpStream) -> io::Result<Self> {
        inner.set_nonblocking(true)?;
        let registration = Registration::new(inner.as_raw_fd())?;
        Ok(Self {
            registration,
            inner,
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
        })
    }

    /// The remote address.
    ///
    /// # Errors
    ///
    /// As std's.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// As std's.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Shuts down one or both halves, as std's (never blocks).
    ///
    /// # Errors
    ///
    /// As std's.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// Sets `TCP_NODELAY`.
    ///
    /// # Errors
    ///
    /// As std's.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.set_nodelay(nodelay)
    }

    /// Waits for bytes like a read (same timeout), and copies them into
    /// `buf` without taking them: the next read gets them again. 0 means
    /// the peer's EOF.
    ///
    /// # Errors
    ///
    /// As a read.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use green::net::{TcpListener, TcpStream};
    ///
    /// green::run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    ///     let (mut conn, _) = listener.accept().unwrap();
    ///     client.write_all(b"hi").unwrap();
    ///     let mut first = [0; 1];
    ///     assert_eq!(conn.peek(&mut first).unwrap(), 1);
    ///     let mut all = [0; 2];
    ///     conn.read_exact(&mut all).unwrap();
    ///     assert_eq!((&first, &all), (b"h", b"hi"));
    /// });
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        cooperate(
            self.registration.key,
            Dir::Read,
            self.read_timeout.get(),
            || self.inner.peek(buf),
            // The bytes stay: the socket is still readable.
            |_| false,
        )
    }

    /// The longest a read waits before failing with `WouldBlock`; `None`:
    /// for ever. A read already waiting ends at the new deadline if that is
    /// sooner.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as std.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_timeout(&self.read_timeout, Dir::Read, timeout)
    }

    /// The longest a write waits before failing with `WouldBlock`; as
    /// [`set_read_timeout`](Self::set_read_timeout).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as std.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_timeout(&self.write_timeout, Dir::Write, timeout)
    }

    fn set_timeout(
        &self,
        cell: &Cell<Option<Duration>>,
        dir: Dir,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        if timeout == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        cell.set(timeout);
        if let Some(timeout) = timeout {
            hub::try_with(|core| {
                if let Some(waiter) = core.io.waiter(self.registration.key, dir) {
                    core.add_deadline(waiter, Instant::now() + timeout);
                }
            });
        }
        Ok(())
    }

    /// The read timeout.
    ///
    /// # Errors
    ///
    /// Never; `io::Result` as in std.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.read_timeout.get())
    }

    /// The write timeout.
    ///
    /// # Errors
    ///
    /// Never; `io::Result` as in std.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.write_timeout.get())
    }

    /// The std stream underneath (non-blocking), for socket options.
    pub fn get_ref(&self) -> &std::net::TcpStream {
        &self.inner
    }

    fn read_some(&self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len();
        let mut inner = &self.inner;
        cooperate(
            self.registration.key,
            Dir::Read,
            self.read_timeout.get(),
            || inner.read(buf),
            // Short, but not 0: the EOF stays readable for ever, and no
            // edge would come to say so again.
            |&n| n > 0 && n < want,
        )
    }

    fn write_some(&self, buf: &[u8]) -> io::Result<usize> {
        let mut inner = &self.inner;
        cooperate(
            self.registration.key,
            Dir::Write,
            self.write_timeout.get(),
            || inner.write(buf),
            |_| false,
        )
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_some(buf)
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_some(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_some(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_some(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}
