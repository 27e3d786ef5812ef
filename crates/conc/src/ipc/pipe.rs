//! `Pipe(duplex)`: two connected ends that send and receive serde values or raw byte messages (Python's `multiprocessing.Pipe`).
//!
//! Both ends are one Unix stream socket pair, for `duplex == false` too
//! (Python uses `os.pipe` then): a socket carries descriptors beside its
//! bytes, so a `Connection` can be sent through another. Each message is
//! one frame (see `wire.rs`); a receiving end reads through a buffer, so a
//! burst of small messages costs one `recvmsg`, and each `send` is one
//! `sendmsg`, with no copy of the payload.

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Error;
use super::wire::{self, FrameReader};

/// One end of a [`Pipe`].
///
/// # Examples
///
/// ```
/// let (left, right) = conc::ipc::Pipe(true).unwrap();
/// left.send(&("hello", 1)).unwrap();
/// let (word, n): (String, u32) = right.recv().unwrap();
/// assert_eq!((word.as_str(), n), ("hello", 1));
/// ```
pub struct Connection {
    sock: UnixStream,
    /// Buffered bytes and descriptors not yet handed out.
    reader: Mutex<FrameReader>,
    /// Held while a frame is written, so two threads' frames do not interleave.
    writer: Mutex<()>,
    readable: bool,
    writable: bool,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.sock.as_raw_fd())
            .field("readable", &self.readable)
            .field("writable", &self.writable)
            .finish()
    }
}

/// Two connected ends: both can send and receive if `duplex`, else the
/// first only receives and the second only sends (Python's order).
///
/// # Examples
///
/// ```
/// let (reader, writer) = conc::ipc::Pipe(false).unwrap();
/// writer.send_bytes(b"ping").unwrap();
/// assert_eq!(reader.recv_bytes().unwrap(), b"ping");
/// assert!(reader.send_bytes(b"no").is_err()); // one way only
/// ```
#[allow(non_snake_case)]
pub fn Pipe(duplex: bool) -> Result<(Connection, Connection), Error> {
    let (a, b) = UnixStream::pair()?;
    if !duplex {
        a.shutdown(std::net::Shutdown::Write)?;
        b.shutdown(std::net::Shutdown::Read)?;
    }
    Ok((
        Connection::new(a, true, duplex),
        Connection::new(b, duplex, true),
    ))
}

impl Connection {
    fn new(sock: UnixStream, readable: bool, writable: bool) -> Self {
        Self {
            sock,
            reader: Mutex::new(FrameReader::default()),
            writer: Mutex::new(()),
            readable,
            writable,
        }
    }

    /// Sends a value (Python's `send`, with postcard instead of pickle).
    /// Descriptors it holds (another `Connection`, a shared `Lock`) go
    /// along, and the receiver gets its own.
    pub fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), Error> {
        let encoded = wire::encode(value)?;
        self.send_frame(&encoded.bytes, &encoded.fds)
    }

    /// Receives a value sent by [`send`](Self::send); waits for one.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = conc::ipc::Pipe(true).unwrap();
    /// a.send(&vec![1u8, 2, 3]).unwrap();
    /// assert!(matches!(b.recv::<String>(), Err(conc::ipc::Error::Decode(_)))); // not a String
    /// ```
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let frame = self.recv_frame()?;
        wire::decode(&frame.bytes, frame.fds)
    }

    /// Sends `bytes` as one message (Python's `send_bytes`).
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<(), Error> {
        self.send_frame(bytes, &[])
    }

    /// Receives one message as bytes (Python's `recv_bytes`).
    pub fn recv_bytes(&self) -> Result<Vec<u8>, Error> {
        Ok(self.recv_frame()?.bytes)
    }

    /// Whether a message can be received without waiting, waiting up to
    /// `timeout` for one (`None`: for ever). A closed peer counts as
    /// readable: the next receive reports it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let (a, b) = conc::ipc::Pipe(true).unwrap();
    /// assert!(!b.poll(Some(Duration::ZERO)).unwrap());
    /// a.send(&1u8).unwrap();
    /// assert!(b.poll(Some(Duration::from_secs(5))).unwrap());
    /// ```
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool, Error> {
        if self.reader.lock().has_frame() {
            return Ok(true);
        }
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            let wait = match deadline {
                None => PollTimeout::NONE,
                Some(d) => {
                    let ms = d
                        .saturating_duration_since(Instant::now())
                        .as_micros()
                        .div_ceil(1000);
                    PollTimeout::try_from(ms.min(i32::MAX as u128) as i32)
                        .unwrap_or(PollTimeout::MAX)
                }
            };
            let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, wait) {
                Ok(0) => return Ok(false),
                Ok(_) => return Ok(true),
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(Error::Io(e.into())),
            }
        }
    }

    /// Whether this end can receive.
    pub fn readable(&self) -> bool {
        self.readable
    }

    /// Whether this end can send.
    pub fn writable(&self) -> bool {
        self.writable
    }

    fn send_frame(&self, bytes: &[u8], fds: &[OwnedFd]) -> Result<(), Error> {
        if !self.writable {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "this end of the pipe only receives",
            )));
        }
        let _w = self.writer.lock();
        wire::send_frame(&self.sock, bytes, fds)
    }

    fn recv_frame(&self) -> Result<wire::Frame, Error> {
        if !self.readable {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "this end of the pipe only sends",
            )));
        }
        self.reader.lock().recv(&self.sock)
    }
}

/// A connection travels to another process as its descriptor; bytes this
/// end had buffered but not handed out stay here.
impl Serialize for Connection {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (wire::SerFd(self.sock.as_fd()), self.readable, self.writable).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Connection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (fd, readable, writable) = <(wire::DeFd, bool, bool)>::deserialize(deserializer)?;
        Ok(Connection::new(UnixStream::from(fd.0), readable, writable))
    }
}
