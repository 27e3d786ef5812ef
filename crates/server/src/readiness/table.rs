//! The open connections of one readiness loop, indexed by descriptor.

use std::os::fd::{AsRawFd, RawFd};

use crate::connection::Connection;

/// What a model should watch a connection for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Interest {
    /// The session has room, or the connection lingers: watch for incoming
    /// bytes (and EOF).
    pub(crate) read: bool,
    /// The session owes bytes the kernel did not take: watch for room.
    pub(crate) write: bool,
}

impl Interest {
    /// A new connection's: read, with nothing owed yet.
    pub(crate) const NEW: Self = Self {
        read: true,
        write: false,
    };

    /// What `conn` needs to be watched for now.
    pub(crate) fn of(conn: &Connection) -> Self {
        Self {
            read: conn.session.wants_recv() || conn.lingering(),
            write: conn.session.wants_send(),
        }
    }
}

/// The connections of one loop, in a vector indexed by descriptor.
///
/// Descriptors are small integers and an open one is unique, so a vector
/// indexed by them is the cheapest map there is: the model's readiness report
/// carries the descriptor, and finding its connection is one index. Beside
/// each, what the model last told the kernel to watch it for, so that it
/// tells it again only when that changes (for epoll, a system call saved
/// per message).
#[derive(Debug, Default)]
pub(crate) struct Table {
    slots: Vec<Option<(Connection, Interest)>>,
    len: usize,
}

impl Table {
    /// How many connections this loop serves.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether this loop serves no one.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The connection on descriptor `fd`, if it is one of ours.
    pub(crate) fn get_mut(&mut self, fd: RawFd) -> Option<&mut Connection> {
        self.entry(fd).map(|(conn, _)| conn)
    }

    /// What the kernel was last told to watch `fd` for, to be updated by
    /// the model that tells it.
    pub(crate) fn watched(&mut self, fd: RawFd) -> Option<&mut Interest> {
        self.entry(fd).map(|(_, watched)| watched)
    }

    /// Every connection, in descriptor order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Connection> {
        self.slots.iter().flatten().map(|(conn, _)| conn)
    }

    /// The descriptors of every connection, collected: for models that
    /// serve each in turn while removing some.
    pub(crate) fn fds(&self) -> Vec<RawFd> {
        self.iter().map(|conn| conn.stream.as_raw_fd()).collect()
    }

    /// Removes and returns the connection on `fd`; dropping it closes it
    /// and gives back its place in `--max-conns`.
    pub(crate) fn remove(&mut self, fd: RawFd) -> Option<Connection> {
        let (conn, _) = self.slots.get_mut(usize::try_from(fd).ok()?)?.take()?;
        self.len -= 1;
        Some(conn)
    }

    /// Adds a connection the kernel was told to watch for [`Interest::NEW`].
    pub(crate) fn insert(&mut self, conn: Connection) {
        // A descriptor the kernel just handed us is never negative.
        let at =
            usize::try_from(conn.stream.as_raw_fd()).expect("open descriptors are non-negative");
        if at >= self.slots.len() {
            self.slots.resize_with(at + 1, || None);
        }
        debug_assert!(self.slots[at].is_none(), "descriptor {at} is open twice");
        self.slots[at] = Some((conn, Interest::NEW));
        self.len += 1;
    }

    fn entry(&mut self, fd: RawFd) -> Option<&mut (Connection, Interest)> {
        self.slots.get_mut(usize::try_from(fd).ok()?)?.as_mut()
    }
}
