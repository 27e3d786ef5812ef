//! The manager's server process: it listens on an abstract Unix socket, serves each client connection on a thread of its own, and exits when its owner says so or goes away.
//!
//! The objects are bytes behind locks: a dict is a map of encoded keys to
//! encoded values (in insertion order, as Python's), a list a vector of
//! encodings, a queue a deque with a condition variable, a lock the id of
//! the connection holding it. A thread per connection makes a blocking
//! `get` or `acquire` wait on that thread only, as Python's manager does
//! (its `ThreadingMixIn` server); a production server with thousands of
//! clients would multiplex them on an event loop instead and park the
//! waiting requests, not threads.
//!
//! The objects live until the server exits. Python's manager counts the
//! proxies of each object in every process (an `incref` per proxy made, a
//! `decref` per proxy dropped) and frees an object with its last proxy;
//! that bookkeeping is left out here, so a program that makes objects
//! without end should make a manager per batch of them.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use parking_lot::{Condvar, Mutex};

use super::protocol::{
    self, Bytes, Control, DictOp, Kind, ListOp, LockOp, NamespaceOp, Op, QueueOp, Refusal, Reply,
    Request, Started,
};
use crate::ipc::wire::{self, FrameReader};

/// The manager process's main: listens, says where, then serves until its
/// owner sends `Shutdown` or its end of the boot socket closes (the owner
/// exited, even by `kill -9`). Returning ends the process, and with it
/// every client thread; their clients read the end of their streams.
pub(crate) fn serve(
    boot: UnixStream,
    mut reader: FrameReader,
    _args: Vec<u8>,
    _fds: Vec<OwnedFd>,
) -> i32 {
    let (listener, address) = match listen() {
        Ok(bound) => bound,
        Err(e) => {
            let _ = send(&boot, &Started::Failed(e.to_string()));
            return 1;
        }
    };
    let owner = match peer_uid(&boot) {
        Ok(uid) => uid,
        Err(e) => {
            let _ = send(&boot, &Started::Failed(e.to_string()));
            return 1;
        }
    };
    let store = Arc::new(Store::default());
    let accepting = thread::Builder::new()
        .name("conc-manager-accept".into())
        .spawn(move || accept(&listener, owner, &store));
    if let Err(e) = accepting {
        let _ = send(&boot, &Started::Failed(e.to_string()));
        return 1;
    }
    if send(&boot, &Started::Listening(address)).is_err() {
        return 0; // the owner is already gone
    }
    loop {
        match reader.recv(&boot) {
            Ok(frame) => match protocol::decode::<Control>(&frame.bytes) {
                Ok(Control::Shutdown) => return 0,
                Err(_) => continue, // not ours to act on
            },
            Err(_) => return 0, // the owner's end closed
        }
    }
}

/// Writes one message to the owner.
fn send<T: serde::Serialize>(boot: &UnixStream, message: &T) -> Result<(), crate::ipc::Error> {
    wire::send_frame(boot, &protocol::encode(message)?, &[])
}

/// Binds a fresh abstract socket name. Abstract, not a path: nothing is
/// left in the file system when the server is killed, and the name goes
/// with the socket's last descriptor. Abstract names are shared by every
/// process of a network namespace, which can span pid namespaces (the
/// containers of a pod), so the name is this pid and 64 random bits, and a
/// collision is retried.
fn listen() -> io::Result<(UnixListener, String)> {
    let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no free name");
    for _ in 0..8 {
        let random = RandomState::new().build_hasher().finish();
        let name = format!("conc-manager.{}.{random:016x}", std::process::id());
        match UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes())?) {
            Ok(listener) => return Ok((listener, name)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// The user id of the process at the other end of `sock` (`SO_PEERCRED`).
fn peer_uid(sock: &UnixStream) -> io::Result<u32> {
    let cred = nix::sys::socket::getsockopt(sock, nix::sys::socket::sockopt::PeerCredentials)?;
    Ok(cred.uid())
}

/// Accepts clients for ever, a thread each. An abstract socket has no
/// permissions to check, so the server checks the peer's user instead:
/// only processes of the owner's user are served. Python's manager asks
/// for an `authkey` challenge as well; a production one would (another
/// program of the same user could connect).
fn accept(listener: &UnixListener, owner: u32, store: &Arc<Store>) {
    let mut next_id = 0u64;
    loop {
        let sock = match listener.accept() {
            Ok((sock, _)) => sock,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                ) =>
            {
                continue;
            }
            Err(e) => {
                // Out of descriptors or memory. Connecting clients would
                // wait in the backlog for ever if this thread stopped
                // accepting, so the server ends and they all read Closed;
                // a production server would back off and retry.
                eprintln!("conc: the manager cannot accept clients: {e}");
                std::process::exit(1);
            }
        };
        if peer_uid(&sock).map_or(true, |uid| uid != owner) {
            continue;
        }
        next_id += 1;
        let (store, id) = (Arc::clone(store), next_id);
        // If no thread can be had, the closure and its socket are dropped
        // and the client reads Closed.
        let _ = thread::Builder::new()
            .name(format!("conc-manager-client-{id}"))
            .spawn(move || serve_client(&store, &sock, id));
    }
}

/// One client connection: the id locks are held by, and its socket, which
/// a request that waited checks before it takes what it waited for.
struct Peer<'a> {
    id: u64,
    sock: &'a UnixStream,
}

impl Peer<'_> {
    /// Whether the client went away. It sends nothing while it waits for
    /// a reply, so a readable socket means the end of its stream.
    fn gone(&self) -> bool {
        let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0)
    }
}

/// Answers one client's requests in order until it closes; then releases
/// the locks it still holds (a client that died holding a lock does not
/// leave it locked for ever).
fn serve_client(store: &Store, sock: &UnixStream, id: u64) {
    let peer = Peer { id, sock };
    let mut reader = FrameReader::default();
    let mut held: Vec<Arc<Object>> = Vec::new();
    while let Ok(frame) = reader.recv(sock) {
        let (reply, taken) = match protocol::decode::<Request>(&frame.bytes) {
            Ok(request) => store.handle(request, &peer),
            Err(e) => (Reply::Refused(Refusal::Mismatch(e.to_string())), None),
        };
        let sent = protocol::encode(&reply).and_then(|out| wire::send_frame(sock, &out, &[]));
        match (taken, sent) {
            (Some(object), Err(_)) => {
                // The client went between its request and our reply:
                // what it took goes back, so no item is lost to it.
                object.give_back(reply, id);
                break;
            }
            (_, Err(_)) => break,
            // A lock it took: remembered (once) to release at the end.
            (Some(object), Ok(()))
                if matches!(*object, Object::Lock(_))
                    && !held.iter().any(|h| Arc::ptr_eq(h, &object)) =>
            {
                held.push(object);
            }
            _ => {}
        }
    }
    for lock in held {
        lock.give_back(Reply::Flag(true), id);
    }
}

/// Every object made, numbered by its index.
#[derive(Default)]
struct Store {
    objects: Mutex<Vec<Arc<Object>>>,
}

/// A state and the condition variable its waiters wait on.
#[derive(Default)]
struct Monitor<T> {
    state: Mutex<T>,
    changed: Condvar,
}

enum Object {
    Dict(Mutex<Dict>),
    List(Mutex<Vec<Bytes>>),
    Namespace(Mutex<HashMap<String, Bytes>>),
    Queue(Monitor<VecDeque<Bytes>>),
    /// The id of the connection holding it.
    Lock(Monitor<Option<u64>>),
}

impl Store {
    /// Does one request; the object, if the reply hands the client
    /// something to give back should the reply not reach it (a queue's
    /// item, a lock).
    fn handle(&self, request: Request, peer: &Peer<'_>) -> (Reply, Option<Arc<Object>>) {
        let id = request.id;
        let op = match request.op {
            Op::Create(kind) => return (Reply::Created(self.create(kind)), None),
            op => op,
        };
        let object = self.objects.lock().get(id as usize).cloned();
        let Some(object) = object else {
            return (mismatch(format!("the manager has no object {id}")), None);
        };
        let reply = match (&*object, op) {
            (Object::Dict(d), Op::Dict(op)) => dict(&mut d.lock(), op),
            (Object::List(l), Op::List(op)) => list(&mut l.lock(), op),
            (Object::Namespace(n), Op::Namespace(op)) => namespace(&mut n.lock(), op),
            (Object::Queue(q), Op::Queue(op)) => queue(q, op, peer),
            (Object::Lock(l), Op::Lock(op)) => lock(l, op, peer),
            (_, _) => {
                return (
                    mismatch(format!("object {id} is not of the kind asked for")),
                    None,
                );
            }
        };
        let taken = matches!(
            (&*object, &reply),
            (Object::Queue(_), Reply::Value(Some(_))) | (Object::Lock(_), Reply::Flag(true))
        );
        (reply, taken.then_some(object))
    }

    fn create(&self, kind: Kind) -> u64 {
        let object = match kind {
            Kind::Dict => Object::Dict(Mutex::default()),
            Kind::List => Object::List(Mutex::default()),
            Kind::Namespace => Object::Namespace(Mutex::default()),
            Kind::Queue => Object::Queue(Monitor::default()),
            Kind::Lock => Object::Lock(Monitor::default()),
        };
        let mut objects = self.objects.lock();
        objects.push(Arc::new(object));
        objects.len() as u64 - 1
    }
}

impl Object {
    /// Undoes what `reply` gave connection `id`: the item goes back to the
    /// front of the queue, the lock is released if that connection still
    /// holds it.
    fn give_back(&self, reply: Reply, id: u64) {
        match (self, reply) {
            (Object::Queue(q), Reply::Value(Some(item))) => {
                q.state.lock().push_front(item);
                q.changed.notify_one();
            }
            (Object::Lock(l), Reply::Flag(true)) => {
                let mut holder = l.state.lock();
                if *holder == Some(id) {
                    *holder = None;
                    l.changed.notify_one();
                }
            }
            _ => {}
        }
    }
}

fn mismatch(why: String) -> Reply {
    Reply::Refused(Refusal::Mismatch(why))
}

/// A dict that remembers the order keys were first set in, as Python's.
#[derive(Default)]
struct Dict {
    /// Each key's value and its place in `order`.
    entries: HashMap<Bytes, (u64, Bytes)>,
    order: BTreeMap<u64, Bytes>,
    next: u64,
}

fn dict(d: &mut Dict, op: DictOp) -> Reply {
    match op {
        DictOp::Get(key) => Reply::Value(d.entries.get(&key).map(|(_, v)| v.clone())),
        DictOp::Set(key, value) => {
            if let Some(entry) = d.entries.get_mut(&key) {
                entry.1 = value; // an update keeps the key's place
            } else {
                d.order.insert(d.next, key.clone());
                d.entries.insert(key, (d.next, value));
                d.next += 1;
            }
            Reply::Done
        }
        DictOp::Remove(key) => Reply::Value(d.entries.remove(&key).map(|(place, value)| {
            d.order.remove(&place);
            value
        })),
        DictOp::Contains(key) => Reply::Flag(d.entries.contains_key(&key)),
        DictOp::Len => Reply::Count(d.entries.len() as u64),
        DictOp::Keys => Reply::Values(d.order.values().cloned().collect()),
        DictOp::Values => Reply::Values(d.order.values().map(|k| d.entries[k].1.clone()).collect()),
        DictOp::Items => Reply::Items(
            d.order
                .values()
                .map(|k| (k.clone(), d.entries[k].1.clone()))
                .collect(),
        ),
        DictOp::Clear => {
            d.entries.clear();
            d.order.clear();
            Reply::Done
        }
    }
}

fn list(l: &mut Vec<Bytes>, op: ListOp) -> Reply {
    match op {
        ListOp::Append(item) => {
            l.push(item);
            Reply::Done
        }
        ListOp::Get(i) => Reply::Value(l.get(i as usize).cloned()),
        ListOp::Set(i, item) => match l.get_mut(i as usize) {
            Some(slot) => {
                *slot = item;
                Reply::Done
            }
            None => Reply::Refused(Refusal::OutOfRange(format!(
                "list assignment index {i} out of range (len {})",
                l.len()
            ))),
        },
        ListOp::Len => Reply::Count(l.len() as u64),
        ListOp::Pop => Reply::Value(l.pop()),
        ListOp::Extend(items) => {
            l.extend(items);
            Reply::Done
        }
        ListOp::ToVec => Reply::Values(l.clone()),
    }
}

fn namespace(n: &mut HashMap<String, Bytes>, op: NamespaceOp) -> Reply {
    match op {
        NamespaceOp::Get(name) => Reply::Value(n.get(&name).cloned()),
        NamespaceOp::Set(name, value) => {
            n.insert(name, value);
            Reply::Done
        }
    }
}

fn queue(q: &Monitor<VecDeque<Bytes>>, op: QueueOp, peer: &Peer<'_>) -> Reply {
    match op {
        QueueOp::Put(item) => {
            q.state.lock().push_back(item);
            q.changed.notify_one();
            Reply::Done
        }
        QueueOp::Len => Reply::Count(q.state.lock().len() as u64),
        QueueOp::Get(timeout) => {
            let mut items = q.state.lock();
            let got = wait_until(&q.changed, &mut items, timeout, peer, |items| {
                !items.is_empty()
            });
            match got {
                Wake::Ready => Reply::Value(items.pop_front()),
                Wake::TimedOut => Reply::TimedOut,
                Wake::Gone => Reply::Refused(Refusal::Gone),
            }
        }
    }
}

fn lock(l: &Monitor<Option<u64>>, op: LockOp, peer: &Peer<'_>) -> Reply {
    match op {
        LockOp::Acquire(timeout) => {
            let mut holder = l.state.lock();
            match wait_until(&l.changed, &mut holder, timeout, peer, Option::is_none) {
                Wake::Ready => {
                    *holder = Some(peer.id);
                    Reply::Flag(true)
                }
                Wake::TimedOut => Reply::Flag(false),
                Wake::Gone => Reply::Refused(Refusal::Gone),
            }
        }
        // Any connection may release it, as any thread may release a
        // Python `Lock` (it has no owner; an `RLock` would).
        LockOp::Release => {
            if l.state.lock().take().is_none() {
                return Reply::Refused(Refusal::Unlocked);
            }
            l.changed.notify_one();
            Reply::Done
        }
    }
}

/// How a wait ended.
enum Wake {
    Ready,
    TimedOut,
    Gone,
}

/// Waits on `changed` until `ready(state)`, or `timeout` passes. A client
/// that went away while this thread waited must not take what it waited
/// for: its wake is passed on to the next waiter, which may be alive.
fn wait_until<T>(
    changed: &Condvar,
    state: &mut parking_lot::MutexGuard<'_, T>,
    timeout: Option<Duration>,
    peer: &Peer<'_>,
    ready: impl Fn(&T) -> bool,
) -> Wake {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let mut waited = false;
    loop {
        if ready(state) {
            if waited && peer.gone() {
                changed.notify_one();
                return Wake::Gone;
            }
            return Wake::Ready;
        }
        waited = true;
        match deadline {
            None => changed.wait(state),
            Some(d) => {
                if changed.wait_until(state, d).timed_out() && !ready(state) {
                    return Wake::TimedOut;
                }
            }
        }
    }
}
