//! io_uring: a ring that owns the connections whose buffers its operations borrow.
//!
//! Pushing an operation that names a buffer is `unsafe` in the io-uring
//! crate: the kernel reads or writes that memory later, at a time no Rust
//! borrow can describe. [`Ring`] makes it safe by owning the memory. Each
//! connection's socket and session live in the ring's table, only the ring
//! starts an operation on one, and while it is in flight the connection
//! cannot be borrowed, removed or freed: [`Ring::conn`] and [`Ring::remove`]
//! give nothing until its completion is reaped. Dropping the ring cancels what
//! is still in flight and waits for every completion; should the kernel stop
//! answering, it leaks the buffers rather than free memory it may still write.
//!
//! The other operations name no memory of ours: a multishot accept without an
//! address buffer, a poll, a cancel. A timeout's timespec is copied by the
//! kernel when the request is submitted; it lives in a box the ring owns, and
//! is not rewritten while its timer is armed, so even that needs no care.

use std::io;
use std::mem;
use std::net::{Shutdown as Direction, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use io_uring::squeue::Entry;
use io_uring::types::{Fd, Timespec};
use io_uring::{IoUring, Probe, cqueue, opcode};

use crate::connection::Connection;

/// A connection's place in the ring's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key(u32);

/// What an operation on a connection does with its session's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// Receive into its free space ([`EchoSession::recv_buf`](crate::EchoSession::recv_buf)): 0 is EOF.
    Recv = 1,
    /// Receive what a lingering client still sends, to throw it away
    /// ([`EchoSession::discard_buf`](crate::EchoSession::discard_buf)): 0 is EOF.
    Discard = 7,
    /// Send its pending bytes ([`EchoSession::pending`](crate::EchoSession::pending)), perhaps in part.
    Send = 2,
}

/// The ring's timers, each for one job, so that arming one never waits on
/// another's longer deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// When an exhausted accept is to be tried again.
    Resume = 0,
    /// A periodic look at the clock while draining.
    Tick = 1,
    /// The next look for idle connections (`--idle-timeout`).
    Idle = 2,
}

impl Timer {
    const ALL: [Timer; 3] = [Timer::Resume, Timer::Tick, Timer::Idle];
}

/// What one completion reports.
#[derive(Debug)]
pub(crate) enum Event {
    /// The multishot accept produced a client or an error; `more` is false
    /// when it has ended and must be pushed again to go on.
    Accepted {
        result: io::Result<TcpStream>,
        more: bool,
    },
    /// An operation on a connection completed: a byte count, or the error.
    Done(Key, Op, io::Result<usize>),
    /// The descriptor of [`Ring::poll_readable`] became readable.
    Readable,
    /// A timer expired.
    Timer(Timer),
}

/// The operations the model uses, with the Linux version that brought each.
const OPERATIONS: [(u8, &str, &str); 7] = [
    (opcode::PollAdd::CODE, "IORING_OP_POLL_ADD", "5.1"),
    (opcode::Timeout::CODE, "IORING_OP_TIMEOUT", "5.4"),
    (opcode::Accept::CODE, "IORING_OP_ACCEPT", "5.5"),
    (opcode::AsyncCancel::CODE, "IORING_OP_ASYNC_CANCEL", "5.5"),
    (opcode::Send::CODE, "IORING_OP_SEND", "5.6"),
    (opcode::Recv::CODE, "IORING_OP_RECV", "5.6"),
    // Multishot is a flag of IORING_OP_ACCEPT, which a probe cannot see; it
    // came in the same release as IORING_OP_SOCKET, which it can.
    (opcode::Socket::CODE, "multishot accept", "5.19"),
];

/// Sets up a small ring and asks the kernel which operations it supports:
/// the first one the model needs and the kernel lacks, as (its name, the
/// Linux version that brought it); `None` if it has them all.
///
/// # Errors
///
/// If no ring can be set up at all: `io_uring_setup`'s error.
pub(crate) fn missing_operation() -> io::Result<Option<(&'static str, &'static str)>> {
    let ring = IoUring::new(2)?;
    let mut probe = Probe::new();
    if ring.submitter().register_probe(&mut probe).is_err() {
        return Ok(Some(("IORING_REGISTER_PROBE", "5.6")));
    }
    let missing = OPERATIONS.iter().find(|op| !probe.is_supported(op.0));
    Ok(missing.map(|&(_, name, since)| (name, since)))
}

/// A completion's `user_data` says what it completes: the kind in the top
/// byte, a slot or timer in the low 32 bits.
const RECV: u64 = Op::Recv as u64;
const SEND: u64 = Op::Send as u64;
const DISCARD: u64 = Op::Discard as u64;
const ACCEPT: u64 = 3;
const POLL: u64 = 4;
const TIMER: u64 = 5;
const CANCEL: u64 = 6;

fn user_data(kind: u64, slot: u32) -> u64 {
    (kind << 56) | u64::from(slot)
}

#[derive(Debug)]
struct Held {
    conn: Connection,
    /// The `user_data` of the operation in flight: while there is one, the
    /// kernel may be using the session's buffer.
    op: Option<u64>,
}

/// One io_uring instance and the connections its operations work on.
pub(crate) struct Ring {
    // Fields drop in order: the ring goes before the timespecs' box.
    uring: IoUring,
    slots: Vec<Option<Held>>,
    free: Vec<u32>,
    /// Connection operations in flight.
    busy: usize,
    /// Boxed: their address must not change when the ring moves.
    timers: Box<[Timespec; 3]>,
    armed: [bool; 3],
    /// Completions copied out of the queue, kept to reuse the allocation.
    cqes: Vec<cqueue::Entry>,
}

impl Ring {
    /// A ring with `entries` submission slots and room for `completions`
    /// completions (both clamped to what the kernel allows), with the
    /// cheapest way of running completion work this kernel accepts.
    pub(crate) fn new(entries: u32, completions: u32) -> io::Result<Self> {
        let mut base = IoUring::builder();
        base.setup_cqsize(completions).setup_clamp();
        // Newest first, each only a saving: a kernel that rejects one set
        // gets the next. Single issuer + deferred task work (6.1):
        // completion work runs only when this thread enters the kernel to
        // reap; cooperative task work (5.19): no interrupt to run it.
        let mut fastest = base.clone();
        fastest.setup_single_issuer().setup_defer_taskrun();
        let mut faster = base.clone();
        faster.setup_coop_taskrun();
        let uring = (fastest.build(entries))
            .or_else(|_| faster.build(entries))
            .or_else(|_| base.build(entries))?;
        Ok(Self {
            uring,
            slots: Vec::new(),
            free: Vec::new(),
            busy: 0,
            timers: Box::new([Timespec::new(), Timespec::new(), Timespec::new()]),
            armed: [false; 3],
            cqes: Vec::new(),
        })
    }

    /// How many connections the table holds.
    pub(crate) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Adds a connection, with no operation in flight.
    pub(crate) fn insert(&mut self, conn: Connection) -> Key {
        let slot = Some(Held { conn, op: None });
        if let Some(at) = self.free.pop() {
            self.slots[at as usize] = slot;
            return Key(at);
        }
        self.slots.push(slot);
        Key(u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 connections"))
    }

    /// The connection at `key`, unless it is gone or an operation on it is
    /// in flight (the kernel's, until its completion is reaped).
    pub(crate) fn conn(&mut self, key: Key) -> Option<&mut Connection> {
        let slot = self.slots.get_mut(key.0 as usize)?.as_mut()?;
        slot.op.is_none().then_some(&mut slot.conn)
    }

    /// Takes the connection at `key` out of the table, if [`Ring::conn`]
    /// would lend it; dropping it closes the socket.
    pub(crate) fn remove(&mut self, key: Key) -> Option<Connection> {
        self.conn(key)?;
        let slot = self.slots[key.0 as usize].take()?;
        self.free.push(key.0);
        Some(slot.conn)
    }

    /// Shuts down `how` of every connection's socket, busy or not: this
    /// touches the socket, never the session.
    pub(crate) fn shutdown_all(&self, how: Direction) {
        for slot in self.slots.iter().flatten() {
            // Fails only for a socket the client already tore down, which
            // its next completion reports.
            let _ = slot.conn.stream.shutdown(how);
        }
    }

    /// The keys of every connection, busy or not.
    pub(crate) fn keys(&self) -> Vec<Key> {
        (self.slots.iter().enumerate())
            .filter(|(_, slot)| slot.is_some())
            .map(|(at, _)| Key(at as u32))
            .collect()
    }

    /// Calls `each` on every connection, busy or not, with the parts of it
    /// an operation in flight does not use: the socket, and whether it is
    /// lingering or idle. Whatever `each` returns true for is shut down
    /// whole (`SHUT_RDWR`): its operation completes, and the completion
    /// ends it.
    pub(crate) fn shut_where(&self, mut each: impl FnMut(&Connection) -> bool) {
        for slot in self.slots.iter().flatten() {
            if each(&slot.conn) {
                // Fails only for a socket the client already tore down.
                let _ = slot.conn.stream.shutdown(Direction::Both);
            }
        }
    }

    /// Starts `op` on the idle connection at `key`.
    pub(crate) fn start(&mut self, key: Key, op: Op) -> io::Result<()> {
        let conn = self
            .conn(key)
            .ok_or_else(|| io::Error::other("no idle connection"))?;
        let fd = Fd(conn.stream.as_raw_fd());
        let entry = match op {
            Op::Recv => {
                let buf = conn.session.recv_buf();
                opcode::Recv::new(fd, buf.as_mut_ptr(), len(buf.len())?).build()
            }
            Op::Discard => {
                let buf = conn.session.discard_buf();
                opcode::Recv::new(fd, buf.as_mut_ptr(), len(buf.len())?).build()
            }
            Op::Send => {
                let buf = conn.session.pending();
                let send = opcode::Send::new(fd, buf.as_ptr(), len(buf.len())?);
                send.flags(libc::MSG_NOSIGNAL).build()
            }
        };
        let data = user_data(op as u64, key.0);
        // SAFETY: the buffer is the session's, owned by the table. The slot
        // is marked busy below, before anything else can run, and until the
        // completion is reaped nothing lends, moves out or frees the session
        // (its heap buffer stays put when the table grows); dropping the
        // ring waits for that completion.
        unsafe { self.push(&entry.user_data(data)) }?;
        if let Some(Some(slot)) = self.slots.get_mut(key.0 as usize) {
            slot.op = Some(data);
            self.busy += 1;
        }
        Ok(())
    }

    /// Accepts on `listener` until cancelled or failed, each client one
    /// [`Event::Accepted`].
    pub(crate) fn accept_multi(&mut self, listener: &TcpListener) -> io::Result<()> {
        let accept = opcode::AcceptMulti::new(Fd(listener.as_raw_fd()));
        let entry = accept.flags(libc::SOCK_CLOEXEC).build();
        // SAFETY: without an address buffer the kernel writes no memory of
        // ours; it holds its own reference to the listener while it runs.
        unsafe { self.push(&entry.user_data(user_data(ACCEPT, 0))) }
    }

    /// Cancels the multishot accept; it then ends with `more` false.
    pub(crate) fn cancel_accept(&mut self) -> io::Result<()> {
        self.cancel(user_data(ACCEPT, 0))
    }

    /// Cancels every receive in flight: each then completes, with its
    /// bytes if they came first, else with `ECANCELED`, and its connection
    /// is idle again. For the drain, which must look at every session, and
    /// a receive waits for as long as its client is silent.
    pub(crate) fn cancel_receives(&mut self) -> io::Result<()> {
        let receives: Vec<u64> = (self.slots.iter().flatten())
            .filter_map(|slot| slot.op)
            .filter(|op| op >> 56 == RECV)
            .collect();
        receives.into_iter().try_for_each(|op| self.cancel(op))
    }

    /// Reports [`Event::Readable`] once, when `fd` becomes readable.
    pub(crate) fn poll_readable(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let poll = opcode::PollAdd::new(Fd(fd.as_raw_fd()), libc::POLLIN as u32);
        // SAFETY: a poll names no memory; the kernel holds its own
        // reference to the file while it waits.
        unsafe { self.push(&poll.build().user_data(user_data(POLL, 0))) }
    }

    /// Arms `timer` to expire `after` from now, unless it is armed already.
    pub(crate) fn arm(&mut self, timer: Timer, after: Duration) -> io::Result<()> {
        let at = timer as usize;
        if self.armed[at] {
            return Ok(());
        }
        self.timers[at] = Timespec::from(after);
        let timeout = opcode::Timeout::new(&raw const self.timers[at]).build();
        // SAFETY: the timespec is in the ring's box, which outlives the
        // kernel's use of it (a copy, on submission), and is not written
        // again while `armed` says this timer is in flight.
        unsafe { self.push(&timeout.user_data(user_data(TIMER, at as u32))) }?;
        self.armed[at] = true;
        Ok(())
    }

    /// Submits everything pushed since the last call and waits until at
    /// least one completion is there: one system call per turn of the loop.
    pub(crate) fn submit_and_wait(&mut self) -> io::Result<()> {
        match self.uring.submit_and_wait(1) {
            // A signal, or completions still to be moved to the queue:
            // reaping what there is is the right next step either way.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => Ok(()),
            // The kernel is short of memory for the requests: they stay
            // queued and go with the next turn, after a breath, so that a
            // lasting shortage slows the loop down instead of spinning it.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ENOMEM)) => {
                std::thread::sleep(Duration::from_millis(1));
                Ok(())
            }
            result => result.map(drop),
        }
    }

    /// Takes every completion from the queue into `events`, making the
    /// connections they finish idle again.
    pub(crate) fn reap(&mut self, events: &mut Vec<Event>) {
        let mut cqes = mem::take(&mut self.cqes);
        cqes.extend(self.uring.completion());
        for cqe in cqes.drain(..) {
            let (data, result) = (cqe.user_data(), cqe.result());
            let at = data as u32;
            events.extend(match data >> 56 {
                RECV | SEND | DISCARD => self.finished(at, data, result),
                ACCEPT => Some(Event::Accepted {
                    result: accepted(result),
                    more: cqueue::more(cqe.flags()),
                }),
                POLL => Some(Event::Readable),
                TIMER => {
                    self.armed[at as usize] = false;
                    Some(Event::Timer(Timer::ALL[at as usize]))
                }
                _ => None,
            });
        }
        self.cqes = cqes;
    }

    /// The operation `data` on the connection at `at` completed with
    /// `result`: the connection is idle again.
    fn finished(&mut self, at: u32, data: u64, result: i32) -> Option<Event> {
        let slot = self.slots.get_mut(at as usize)?.as_mut()?;
        debug_assert_eq!(slot.op, Some(data), "a completion for another operation");
        slot.op.take()?;
        self.busy -= 1;
        let op = match data >> 56 {
            RECV => Op::Recv,
            DISCARD => Op::Discard,
            _ => Op::Send,
        };
        let result = usize::try_from(result).map_err(|_| errno(result));
        Some(Event::Done(Key(at), op, result))
    }

    /// Asks the kernel to cancel the operation `target`.
    fn cancel(&mut self, target: u64) -> io::Result<()> {
        let cancel = opcode::AsyncCancel::new(target).build();
        // SAFETY: a cancel names an operation by its user_data, no memory.
        unsafe { self.push(&cancel.user_data(user_data(CANCEL, 0))) }
    }

    /// Pushes `entry`, submitting what is queued first if the queue is full.
    ///
    /// # Safety
    ///
    /// Whatever memory `entry` names must stay valid, and untouched by Rust
    /// code, until its completion is reaped.
    unsafe fn push(&mut self, entry: &Entry) -> io::Result<()> {
        loop {
            // SAFETY: this function's caller vouches for `entry`'s memory.
            match unsafe { self.uring.submission().push(entry) } {
                Ok(()) => return Ok(()),
                // The queue is full: hand the kernel what it holds, retry.
                Err(_) => match self.uring.submit() {
                    Err(e) if e.raw_os_error() != Some(libc::EINTR) => return Err(e),
                    _ => {}
                },
            }
        }
    }

    /// Cancels every connection operation still in flight and waits for
    /// their completions; `false` if the kernel stopped answering first.
    fn cancel_all(&mut self) -> bool {
        // Shutting the sockets down completes most of them by itself.
        self.shutdown_all(Direction::Both);
        let ops: Vec<u64> = self.slots.iter().flatten().filter_map(|s| s.op).collect();
        if ops.into_iter().any(|op| self.cancel(op).is_err()) {
            return false;
        }
        let mut events = Vec::new();
        while self.busy > 0 {
            if self.submit_and_wait().is_err() {
                return false;
            }
            // Clients accepted meanwhile are closed with their events.
            self.reap(&mut events);
            events.clear();
        }
        true
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if self.busy > 0 && !self.cancel_all() {
            // The kernel may still write into these buffers: never free them.
            mem::forget(mem::take(&mut self.slots));
        }
    }
}

/// A buffer length as an SQE holds it (a longer buffer is used in part).
/// Never 0: a zero-length receive completes with 0, which reads as EOF, and
/// a zero-length send completes with 0 for ever.
fn len(n: usize) -> io::Result<u32> {
    match n {
        0 => Err(io::Error::other("an operation on an empty buffer")),
        n => Ok(u32::try_from(n).unwrap_or(u32::MAX)),
    }
}

/// The error a negative result stands for.
fn errno(result: i32) -> io::Error {
    io::Error::from_raw_os_error(-result)
}

/// The client an accept completion returns, or its error.
fn accepted(result: i32) -> io::Result<TcpStream> {
    if result < 0 {
        return Err(errno(result));
    }
    // SAFETY: a successful accept returns a descriptor it just opened for
    // this process, which nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(result) };
    Ok(TcpStream::from(fd))
}
