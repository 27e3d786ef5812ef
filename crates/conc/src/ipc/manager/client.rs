//! A proxy's side of the wire: a connection per thread to each manager, opened on first use, and one request and its reply at a time over it.
//!
//! Why per thread, not per process or per proxy: the server answers a
//! connection's requests in order, so a thread blocked in `get` on a
//! queue would hold up every other thread sharing its connection, and a
//! `put` from one of them would never come: a deadlock. Python's proxies
//! keep a connection per thread for this reason. Per proxy would not do
//! either: a `&QueueProxy` shared by two threads would block the same way.
//! The cost is a connection and a server thread for each thread that uses
//! a manager; a thread's connections close when it exits.
//!
//! A connection is keyed by the pid too: a forked child inherits its
//! parent's thread-local connections, and must not read replies meant
//! for the parent, so it opens its own.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::os::fd::AsFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::sync::Arc;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::protocol::{self, Kind, Op, Reply, Request};
use crate::ipc::Error;
use crate::ipc::wire::{self, FrameReader};

/// One open connection to a manager.
struct Link {
    address: Arc<str>,
    pid: u32,
    sock: UnixStream,
    reader: FrameReader,
}

thread_local! {
    /// This thread's connections, one per manager it has talked to.
    static LINKS: RefCell<Vec<Link>> = const { RefCell::new(Vec::new()) };
}

impl Link {
    /// This thread's connection to `address`, taken out of the list while
    /// a request is on it; a new one if there is none.
    fn take(address: &Arc<str>) -> Result<Link, Error> {
        let pid = std::process::id();
        // `try_with`: a proxy used by another thread-local's destructor,
        // after this list is gone, gets a connection of its own.
        let found = LINKS
            .try_with(|links| {
                let mut links = links.borrow_mut();
                let at = links
                    .iter()
                    .position(|l| l.pid == pid && *l.address == **address)?;
                Some(links.swap_remove(at))
            })
            .ok()
            .flatten();
        match found {
            Some(link) => Ok(link),
            None => Link::open(address, pid),
        }
    }

    fn open(address: &Arc<str>, pid: u32) -> Result<Link, Error> {
        // Before adding one: forget links to servers that have exited (their
        // sockets read as closed) and links copied from a parent by fork.
        let _ = LINKS.try_with(|links| {
            links
                .borrow_mut()
                .retain(|l| l.pid == pid && !readable_now(&l.sock))
        });
        let to = SocketAddr::from_abstract_name(address.as_bytes())?;
        let sock = UnixStream::connect_addr(&to).map_err(|e| match e.kind() {
            // Nobody listens on that name: the server has exited.
            io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => Error::Closed,
            _ => Error::Io(e),
        })?;
        Ok(Link {
            address: Arc::clone(address),
            pid,
            sock,
            reader: FrameReader::default(),
        })
    }

    /// Puts the connection back for the next request of this thread (or
    /// closes it, if the thread's list is already gone).
    fn put_back(self) {
        let _ = LINKS.try_with(|links| links.borrow_mut().push(self));
    }
}

/// Whether a socket has something to read now. A manager's connection has
/// nothing to read between requests unless its server closed it.
fn readable_now(sock: &UnixStream) -> bool {
    let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0)
}

/// Sends one request to the manager at `address` and reads its reply.
fn call(address: &Arc<str>, request: &Request) -> Result<Reply, Error> {
    let bytes = protocol::encode(request)?;
    let mut link = Link::take(address)?;
    let frame =
        wire::send_frame(&link.sock, &bytes, &[]).and_then(|()| link.reader.recv(&link.sock))?;
    // Only a connection that is between requests goes back: one that
    // failed half-way is dropped (closed), and the next call opens another.
    link.put_back();
    protocol::decode(&frame.bytes)
}

/// What a proxy holds: where its manager listens and which object it is.
#[derive(Clone)]
pub(super) struct Handle {
    address: Arc<str>,
    id: u64,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("address", &self.address)
            .field("id", &self.id)
            .finish()
    }
}

impl Handle {
    /// Asks the manager at `address` for a new object of `kind`.
    pub(super) fn create(address: &Arc<str>, kind: Kind) -> Result<Handle, Error> {
        let request = Request {
            id: 0,
            op: Op::Create(kind),
        };
        match call(address, &request)? {
            Reply::Created(id) => Ok(Handle {
                address: Arc::clone(address),
                id,
            }),
            other => Err(unexpected(&other)),
        }
    }

    /// The address and id, for `Debug`.
    pub(super) fn parts(&self) -> (&str, u64) {
        (&self.address, self.id)
    }

    /// Does `op` on this object; a refusal or a timeout as an `Err`.
    fn call(&self, op: Op) -> Result<Reply, Error> {
        let request = Request { id: self.id, op };
        match call(&self.address, &request)? {
            Reply::Refused(why) => Err(why.into()),
            Reply::TimedOut => Err(Error::Timeout),
            reply => Ok(reply),
        }
    }

    pub(super) fn done(&self, op: Op) -> Result<(), Error> {
        match self.call(op)? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    pub(super) fn value<T: DeserializeOwned>(&self, op: Op) -> Result<Option<T>, Error> {
        match self.call(op)? {
            Reply::Value(bytes) => bytes.map(|b| protocol::decode(&b)).transpose(),
            other => Err(unexpected(&other)),
        }
    }

    pub(super) fn values<T: DeserializeOwned>(&self, op: Op) -> Result<Vec<T>, Error> {
        match self.call(op)? {
            Reply::Values(all) => all.iter().map(|b| protocol::decode(b)).collect(),
            other => Err(unexpected(&other)),
        }
    }

    pub(super) fn items<K: DeserializeOwned, V: DeserializeOwned>(
        &self,
        op: Op,
    ) -> Result<Vec<(K, V)>, Error> {
        match self.call(op)? {
            Reply::Items(all) => all
                .iter()
                .map(|(k, v)| Ok((protocol::decode(k)?, protocol::decode(v)?)))
                .collect(),
            other => Err(unexpected(&other)),
        }
    }

    pub(super) fn count(&self, op: Op) -> Result<usize, Error> {
        match self.call(op)? {
            Reply::Count(n) => Ok(n as usize),
            other => Err(unexpected(&other)),
        }
    }

    pub(super) fn flag(&self, op: Op) -> Result<bool, Error> {
        match self.call(op)? {
            Reply::Flag(b) => Ok(b),
            other => Err(unexpected(&other)),
        }
    }

    /// A proxy travels as its address, id and kind: no descriptor, so it
    /// can go to a child as an argument, through a `Pipe`, or into another
    /// manager object (a list of dicts).
    pub(super) fn serialize<S: Serializer>(&self, kind: Kind, s: S) -> Result<S::Ok, S::Error> {
        (&*self.address, self.id, kind).serialize(s)
    }

    /// The other half of [`serialize`](Self::serialize); refuses another
    /// kind's proxy.
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        kind: Kind,
        d: D,
    ) -> Result<Handle, D::Error> {
        let (address, id, sent) = <(String, u64, Kind)>::deserialize(d)?;
        if sent != kind {
            return Err(serde::de::Error::custom(format!(
                "a proxy of a manager's {sent:?} is not one of a {kind:?}"
            )));
        }
        Ok(Handle {
            address: address.into(),
            id,
        })
    }
}

/// A reply that does not answer the request: the two sides disagree.
fn unexpected(reply: &Reply) -> Error {
    let what = match reply {
        Reply::Done => "done",
        Reply::Created(_) => "an id",
        Reply::Value(_) => "a value",
        Reply::Values(_) => "values",
        Reply::Items(_) => "items",
        Reply::Count(_) => "a count",
        Reply::Flag(_) => "a flag",
        Reply::TimedOut => "a timeout",
        Reply::Refused(_) => "a refusal",
    };
    Error::Decode(format!(
        "the manager answered with {what}, which does not fit the request"
    ))
}
