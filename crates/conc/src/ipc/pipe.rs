//! `Pipe(duplex)`: two connected ends that send and receive serde values or raw byte messages (Python's `multiprocessing.Pipe`).
//!
//! Each direction is a ring of records in shared memory (the process
//! queue's ring, `queue.rs`, 256 KiB), and the two ends share a Unix socket
//! pair besides. A small message is one record; a message that holds
//! descriptors (a `Connection`, a shared `Lock`), or is larger than a
//! quarter of the ring, goes over the socket as a frame (see `wire.rs`),
//! and its record in the ring is a one-byte marker, so the order of
//! messages is kept. Why not the socket alone: a `sendmsg` per message,
//! and a wake-up per message when the reader sleeps, held a socket pipe
//! under 450k 64-byte messages a second on the 2-core machine; the ring
//! (the writers' lock, a copy in, one store; the readers' lock, a copy
//! out, one store) wakes a reader only if it sleeps.
//!
//! The socket is also how an end learns that its peer is gone: when the
//! last copy of the other end closes, in whatever process, the socket
//! reports `POLLRDHUP`. A receive on an empty ring looks before it
//! sleeps, and a wait every 100 ms, so a peer that closed, or died by
//! `kill -9`, is an [`Error::Closed`] once its last messages are taken,
//! not a hang.

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Error;
use super::queue::{Core, Until};
use super::wire::{self, FrameReader};

/// The ring of each direction.
const RING_BYTES: usize = 256 * 1024;

/// Messages over this size go through the socket.
const INLINE_MAX: usize = RING_BYTES / 4;

/// How often a send asks whether the peer is still there.
const PEER_CHECK_SENDS: u64 = 64;

/// The first byte of a ring record: the message follows, or it is the
/// next frame on the socket.
const INLINE: u8 = 0;
const ON_SOCKET: u8 = 1;

thread_local! {
    /// Reused receive and encode buffers: a small message costs no allocation.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    static ENCODED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One end of a [`Pipe`].
///
/// # Examples
///
/// ```
/// let (left, right) = conc::ipc::Pipe(true).unwrap();
/// left.send(&("hello", 1u32)).unwrap();
/// let (word, n): (String, u32) = right.recv().unwrap();
/// assert_eq!((word.as_str(), n), ("hello", 1));
/// ```
pub struct Connection {
    sock: UnixStream,
    /// The ring this end sends into (none if it only receives).
    tx: Option<Arc<Core>>,
    /// The ring this end receives from (none if it only sends).
    rx: Option<Arc<Core>>,
    /// Frames read from the socket and not yet handed out.
    reader: Mutex<FrameReader>,
    /// Held from a socket frame to its marker record, so that two threads'
    /// messages keep one order in both.
    writer: Mutex<()>,
    /// Messages sent, for the peer check.
    sends: AtomicU64,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.sock.as_raw_fd())
            .field("readable", &self.readable())
            .field("writable", &self.writable())
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
    let to_a = Arc::new(Core::new(0, RING_BYTES, false)?);
    let to_b = duplex
        .then(|| Core::new(0, RING_BYTES, false))
        .transpose()?
        .map(Arc::new);
    let a_end = Connection::new(a, to_b.clone(), Some(Arc::clone(&to_a)));
    let b_end = Connection::new(b, Some(to_a), to_b);
    Ok((a_end, b_end))
}

impl Connection {
    fn new(sock: UnixStream, tx: Option<Arc<Core>>, rx: Option<Arc<Core>>) -> Self {
        Self {
            sock,
            tx,
            rx,
            reader: Mutex::new(FrameReader::default()),
            writer: Mutex::new(()),
            sends: AtomicU64::new(0),
        }
    }

    fn until(&self, deadline: Option<Instant>) -> Until<'_> {
        Until {
            deadline,
            peer: Some(&self.sock),
        }
    }
    /// Sends a value (Python's `send`, with postcard instead of pickle).
    /// Descriptors it holds (another `Connection`, a shared `Lock`) go
    /// along, and the receiver gets its own.
    pub fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), Error> {
        ENCODED.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.clear();
            let fds = wire::encode_into(value, &mut buf)?;
            let sent = self.send_message(&buf, &fds);
            if buf.capacity() > INLINE_MAX {
                *buf = Vec::new(); // a large message's buffer is not kept
            }
            sent
        })
    }

    /// Receives a value sent by [`send`](Self::send); waits for one.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = conc::ipc::Pipe(true).unwrap();
    /// a.send(&vec![1u8, 200]).unwrap(); // length 2, then the bytes 1 and 200
    /// assert!(matches!(b.recv::<String>(), Err(conc::ipc::Error::Decode(_)))); // 200 alone is not UTF-8
    /// ```
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T, Error> {
        SCRATCH.with(|scratch| {
            let mut buf = scratch.borrow_mut();
            match self.recv_message(&mut buf)? {
                None => wire::decode(&buf, Vec::new()),
                Some(frame) => wire::decode(&frame.bytes, frame.fds),
            }
        })
    }

    /// Sends `bytes` as one message (Python's `send_bytes`).
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<(), Error> {
        self.send_message(bytes, &[])
    }

    /// Receives one message as bytes (Python's `recv_bytes`).
    pub fn recv_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut buf = Vec::new();
        match self.recv_message(&mut buf)? {
            None => Ok(buf),
            Some(frame) => Ok(frame.bytes),
        }
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
        let rx = self.rx.as_ref().ok_or_else(|| only("sends"))?;
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        match rx.wait_nonempty(self.until(deadline)) {
            Err(Error::Closed) => Ok(true),
            other => other,
        }
    }

    /// Whether this end can receive.
    pub fn readable(&self) -> bool {
        self.rx.is_some()
    }

    /// Whether this end can send.
    pub fn writable(&self) -> bool {
        self.tx.is_some()
    }

    fn send_message(&self, bytes: &[u8], fds: &[OwnedFd]) -> Result<(), Error> {
        let tx = self.tx.as_ref().ok_or_else(|| only("receives"))?;
        // Python's BrokenPipeError: no one will ever read it. Asking the
        // socket costs a syscall, half the cost of a small send, so a send
        // asks at the first send and every PEER_CHECK_SENDS after (and a
        // send that waits for room asks every 100 ms): a closed peer is
        // reported at most that many messages late, never missed.
        // The count is a load and a store, not an atomic add: threads that
        // send at once may lose a count, which only moves the next check.
        let sent = self.sends.load(Ordering::Relaxed);
        self.sends.store(sent.wrapping_add(1), Ordering::Relaxed);
        if sent.is_multiple_of(PEER_CHECK_SENDS) && !wire::peer_open(&self.sock) {
            return Err(Error::Closed);
        }
        if !fds.is_empty() || bytes.len() > INLINE_MAX {
            // The marker first: the reader, once it reaches the marker,
            // reads the socket, which lets a frame larger than the
            // socket's buffer through (frame first would wait for a reader
            // that waits for the marker).
            let _order = self.writer.lock();
            tx.put(&[&[ON_SOCKET]], self.until(None), true)?;
            return wire::send_frame(&self.sock, bytes, fds);
        }
        tx.put(&[&[INLINE], bytes], self.until(None), true)
    }

    /// Takes the next message: into `buf` if it came through the ring
    /// (`None`), else the socket frame it was.
    fn recv_message(&self, buf: &mut Vec<u8>) -> Result<Option<wire::Frame>, Error> {
        let rx = self.rx.as_ref().ok_or_else(|| only("sends"))?;
        // A wait looks at the peer before it sleeps: a closed peer is
        // reported once its last messages are taken.
        let mut tag = [0u8];
        rx.get(&mut tag, buf, self.until(None), true)?;
        match tag {
            [INLINE] => Ok(None),
            [ON_SOCKET] => self.reader.lock().recv(&self.sock).map(Some),
            _ => Err(Error::Decode("a record of the pipe's ring is torn".into())),
        }
    }
}

fn only(what: &str) -> Error {
    Error::Io(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        format!("this end of the pipe only {what}"),
    ))
}

/// A connection travels to another process as its descriptor; bytes this
/// end had buffered but not handed out stay here.
impl Serialize for Connection {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (tx, rx) = (
            self.tx.as_ref().map(|r| wire::SerFd(r.fd())),
            self.rx.as_ref().map(|r| wire::SerFd(r.fd())),
        );
        (wire::SerFd(self.sock.as_fd()), tx, rx).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Connection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (fd, tx, rx) =
            <(wire::DeFd, Option<wire::DeFd>, Option<wire::DeFd>)>::deserialize(deserializer)?;
        let open = |r: Option<wire::DeFd>| {
            r.map(|r| Core::open(std::fs::File::from(r.0)).map(Arc::new))
                .transpose()
                .map_err(serde::de::Error::custom)
        };
        Ok(Connection::new(
            UnixStream::from(fd.0),
            open(tx)?,
            open(rx)?,
        ))
    }
}
