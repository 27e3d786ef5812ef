//! Values on the wire between processes: postcard bytes, descriptors beside them, and length-prefixed frames over a Unix socket.
//!
//! A value sent to another process (a `Process`'s arguments, a pipe's
//! message, a pool task) is encoded with postcard, serde's compact binary
//! format. Some values hold descriptors: a `Connection`, a shared `Lock`, a
//! `Queue`. Their `Serialize` impls push a duplicate of the descriptor onto
//! a per-thread list and write only its index; the frame carries the list
//! as `SCM_RIGHTS` ancillary data, so the receiver gets its own descriptors
//! for the same objects, and their `Deserialize` impls take them back out
//! by index. This is what Python's `multiprocessing.reduction` does with
//! pickle; here it is a thread-local scope around one encode or decode.
//!
//! A frame is an 8-byte header (payload length, descriptor count, both
//! little-endian `u32`) and the payload. The descriptors ride on the
//! header's first byte; on a stream socket they can arrive with an earlier
//! read than their frame's, so the reader queues every descriptor it gets
//! and hands each frame the next `count` of them.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Error;

/// The largest payload a frame may carry (a guard against a corrupt length).
pub(crate) const MAX_FRAME: usize = 1 << 30;

/// How many descriptors one read can take in.
const MAX_FDS_PER_READ: usize = 64;

thread_local! {
    /// Descriptors gathered by the encode in progress on this thread.
    static OUTGOING: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
    /// Descriptors the decode in progress on this thread may take.
    static INCOMING: RefCell<Option<Vec<Option<OwnedFd>>>> = const { RefCell::new(None) };
}

/// Restores a thread-local slot when an encode or decode ends, even by panic.
struct Scope<T: 'static>(
    &'static std::thread::LocalKey<RefCell<Option<T>>>,
    Option<T>,
);

impl<T> Drop for Scope<T> {
    fn drop(&mut self) {
        let previous = self.1.take();
        self.0.with(|slot| *slot.borrow_mut() = previous);
    }
}

/// A value's bytes and the descriptors it holds.
pub(crate) struct Encoded {
    pub(crate) bytes: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
}

/// Encodes `value`, gathering the descriptors its parts hold.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Encoded, Error> {
    let mut bytes = Vec::new();
    let fds = encode_into(value, &mut bytes)?;
    Ok(Encoded { bytes, fds })
}

/// Appends `value`'s encoding to `out` (a buffer kept for the next value,
/// so that a small value costs no allocation); the descriptors its parts
/// hold.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<Vec<OwnedFd>, Error> {
    let previous = OUTGOING.with(|slot| slot.borrow_mut().replace(Vec::new()));
    let scope = Scope(&OUTGOING, previous);
    append(value, out)?;
    let fds = OUTGOING
        .with(|slot| slot.borrow_mut().replace(Vec::new()))
        .unwrap_or_default();
    drop(scope);
    Ok(fds)
}

/// Postcard's output into the end of a `Vec<u8>` by `push` and
/// `extend_from_slice`. Postcard's own `Vec` flavors either start a new
/// vector (`to_stdvec`) or go through `Extend` one array at a time
/// (`to_extend`), and a `Vec<u8>` value reaches the flavor byte by byte
/// (serde writes it as a sequence): this one costs a capacity check per
/// byte, and the kept buffer's capacity means no allocation.
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    #[inline(always)]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    #[inline(always)]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Appends `value`'s postcard encoding to `out`.
fn append<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Error> {
    postcard::serialize_with_flavor(value, Append(out)).map_err(|e| Error::Encode(e.to_string()))
}

/// Appends `value`'s encoding to `out`; refuses values holding descriptors
/// (for stores with no side channel, such as a shared-memory queue).
pub(crate) fn encode_plain<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let previous = OUTGOING.with(|slot| slot.borrow_mut().take());
    let _scope = Scope(&OUTGOING, previous);
    append(value, out)
}

/// Decodes a value from `bytes`, giving its parts the descriptors `fds`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], fds: Vec<OwnedFd>) -> Result<T, Error> {
    let previous = INCOMING.with(|slot| {
        slot.borrow_mut()
            .replace(fds.into_iter().map(Some).collect())
    });
    let _scope = Scope(&INCOMING, previous);
    postcard::from_bytes(bytes).map_err(|e| Error::Decode(e.to_string()))
}

/// Serializes a descriptor as its index in the frame's list: for the
/// `Serialize` impls of types that hold one.
pub(crate) fn serialize_fd<S: Serializer>(
    fd: BorrowedFd<'_>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let index = OUTGOING.with(|slot| -> Result<u32, String> {
        let mut slot = slot.borrow_mut();
        let list = slot.as_mut().ok_or(
            "this value holds a descriptor: it can be sent to a process as an argument or through a Pipe, not stored in a shared-memory Queue or a Manager",
        )?;
        let dup = fd.try_clone_to_owned().map_err(|e| e.to_string())?;
        list.push(dup);
        Ok(list.len() as u32 - 1)
    });
    match index {
        Ok(index) => index.serialize(serializer),
        Err(why) => Err(serde::ser::Error::custom(why)),
    }
}

/// The other half of [`serialize_fd`].
pub(crate) fn deserialize_fd<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<OwnedFd, D::Error> {
    let index = u32::deserialize(deserializer)? as usize;
    INCOMING
        .with(|slot| {
            slot.borrow_mut()
                .as_mut()
                .and_then(|list| list.get_mut(index)?.take())
        })
        .ok_or_else(|| {
            serde::de::Error::custom("a descriptor the message refers to did not arrive")
        })
}

/// A descriptor as a serde value (inside a tuple or struct of a type
/// that holds one): serializes as its index in the frame's list.
pub(crate) struct SerFd<'a>(pub(crate) BorrowedFd<'a>);

impl Serialize for SerFd<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_fd(self.0, serializer)
    }
}

/// The receiving side of [`SerFd`].
pub(crate) struct DeFd(pub(crate) OwnedFd);

impl<'de> Deserialize<'de> for DeFd {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_fd(deserializer).map(DeFd)
    }
}

/// Whether the other end of `sock` is still open somewhere (in any
/// process): `POLLRDHUP` comes once its last copy is closed.
pub(crate) fn peer_open(sock: &UnixStream) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let rdhup = PollFlags::from_bits_retain(libc::POLLRDHUP);
    let mut fds = [PollFd::new(sock.as_fd(), rdhup)];
    // Only POLLRDHUP is asked for, and POLLHUP and POLLERR come unasked:
    // any event means the peer is gone. (nix's `revents` cannot be used:
    // it does not know the POLLRDHUP bit and reports `None`.)
    !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

/// Writes one frame: `bytes` with `fds` riding along.
pub(crate) fn send_frame(sock: &UnixStream, bytes: &[u8], fds: &[OwnedFd]) -> Result<(), Error> {
    if bytes.len() > MAX_FRAME {
        return Err(Error::Encode(format!(
            "a message of {} bytes is over the {MAX_FRAME}-byte limit",
            bytes.len()
        )));
    }
    let mut header = [0u8; 8];
    header[..4].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
    header[4..].copy_from_slice(&(fds.len() as u32).to_le_bytes());
    let raw: Vec<_> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let total = header.len() + bytes.len();
    let mut sent = 0;
    while sent < total {
        let (h, b) = if sent < header.len() {
            (&header[sent..], bytes)
        } else {
            (&[][..], &bytes[sent - header.len()..])
        };
        let iov = [IoSlice::new(h), IoSlice::new(b)];
        let cmsg = [ControlMessage::ScmRights(&raw)];
        let cmsgs: &[ControlMessage<'_>] = if sent == 0 && !raw.is_empty() {
            &cmsg
        } else {
            &[]
        };
        match sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) => sent += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EPIPE | nix::errno::Errno::ECONNRESET) => {
                return Err(Error::Closed);
            }
            Err(e) => return Err(Error::Io(e.into())),
        }
    }
    Ok(())
}

/// Reads frames from a socket through a buffer, so that many small frames
/// cost one read.
pub(crate) struct FrameReader {
    /// `buf[start..end]` is read and not yet handed out; the buffer is
    /// zeroed once, when it grows, not at every read.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Room for the descriptors of one read, allocated once.
    cmsg: Vec<u8>,
    fds: VecDeque<OwnedFd>,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            end: 0,
            cmsg: nix::cmsg_space!([std::os::fd::RawFd; MAX_FDS_PER_READ]),
            fds: VecDeque::new(),
        }
    }
}

/// The bytes one read asks for (unless a frame needs more).
const READ_SIZE: usize = 64 * 1024;

/// A frame as read: its payload and descriptors.
pub(crate) struct Frame {
    pub(crate) bytes: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
}

impl FrameReader {
    fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// The buffered frame's whole length (header and payload), once its header is in.
    fn frame_len(&self) -> Option<usize> {
        let h = self.buf[self.start..self.end].get(..8)?;
        Some(8 + u32::from_le_bytes(h[..4].try_into().unwrap()) as usize)
    }

    /// Reads the next frame; `Err(Closed)` at end of stream.
    pub(crate) fn recv(&mut self, sock: &UnixStream) -> Result<Frame, Error> {
        loop {
            if let Some(len) = self.frame_len() {
                if len - 8 > MAX_FRAME {
                    return Err(Error::Decode(format!(
                        "a frame of {} bytes is over the limit",
                        len - 8
                    )));
                }
                if self.buffered() >= len {
                    return self.take(len);
                }
            }
            self.fill(sock)?;
        }
    }

    fn take(&mut self, len: usize) -> Result<Frame, Error> {
        let h = &self.buf[self.start..self.start + 8];
        let count = u32::from_le_bytes(h[4..].try_into().unwrap()) as usize;
        if count > self.fds.len() {
            return Err(Error::Decode("a frame's descriptors did not arrive".into()));
        }
        let bytes = self.buf[self.start + 8..self.start + len].to_vec();
        self.start += len;
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        let fds = self.fds.drain(..count).collect();
        Ok(Frame { bytes, fds })
    }

    /// One read: at least one byte more, or an error.
    fn fill(&mut self, sock: &UnixStream) -> Result<(), Error> {
        // Room for the rest of the frame being read, and a read's worth.
        let need = self.frame_len().unwrap_or(8).max(READ_SIZE);
        if self.buf.len() - self.start < need {
            // Move the partial frame to the front, then grow if still short.
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
            if self.buf.len() < need {
                self.buf.resize(need, 0);
            }
        }
        loop {
            let flags = MsgFlags::MSG_CMSG_CLOEXEC;
            let mut iov = [IoSliceMut::new(&mut self.buf[self.end..])];
            match recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut self.cmsg), flags) {
                Ok(msg) => {
                    let n = msg.bytes;
                    for cmsg in msg.cmsgs().map_err(|e| Error::Io(e.into()))? {
                        if let ControlMessageOwned::ScmRights(fds) = cmsg {
                            self.fds.extend(fds.into_iter().map(owned));
                        }
                    }
                    if n == 0 {
                        return Err(Error::Closed);
                    }
                    self.end += n;
                    return Ok(());
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::ECONNRESET) => return Err(Error::Closed),
                Err(e) => return Err(Error::Io(e.into())),
            }
        }
    }
}

/// Takes ownership of a descriptor `SCM_RIGHTS` just gave this process.
fn owned(fd: std::os::fd::RawFd) -> OwnedFd {
    crate::sys::own_received_fd(fd)
}
