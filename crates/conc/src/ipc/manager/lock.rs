//! `LockProxy`: a manager's lock, which the server releases when the connection holding it closes (Python's `manager.Lock()`).

use std::time::Duration;

use super::client::Handle;
use super::protocol::{Kind, LockOp, Op};
use crate::ipc::Error;

/// A lock held by a [`Manager`](super::Manager)'s server, to make a
/// sequence of proxy calls atomic (the course's `dic['count'] -= 1`, see
/// the [`Manager`](super::Manager) docs). Like Python's `Lock` it has no owner: any
/// thread or process may release it. The server knows which connection
/// took it, and releases it if that connection closes while holding it: a
/// process that dies (or a thread that exits) holding it does not leave it
/// locked for ever. Not reentrant: a second `acquire` from the holder waits.
///
/// # Examples
///
/// ```standalone_crate
/// use std::time::Duration;
/// conc::process::entry_point(&[]);
/// let manager = conc::ipc::Manager::new().unwrap();
/// let lock = manager.lock().unwrap();
/// lock.acquire().unwrap();
/// let other = lock.clone();
/// let waited = std::thread::spawn(move || other.acquire_timeout(Duration::from_millis(10)));
/// assert!(!waited.join().unwrap().unwrap()); // held here
/// lock.release().unwrap();
/// ```
pub struct LockProxy {
    handle: Handle,
}

impl LockProxy {
    pub(super) fn from_handle(handle: Handle) -> Self {
        Self { handle }
    }

    /// Waits until the lock is free and takes it (Python's `acquire()`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let lock = manager.lock().unwrap();
    /// lock.acquire().unwrap();
    /// lock.release().unwrap();
    /// ```
    pub fn acquire(&self) -> Result<(), Error> {
        self.handle.flag(Op::Lock(LockOp::Acquire(None))).map(drop)
    }

    /// As [`acquire`](Self::acquire), waiting at most `timeout`: whether
    /// it took the lock (Python's `acquire(timeout=...)`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// use std::time::Duration;
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let lock = manager.lock().unwrap();
    /// assert!(lock.acquire_timeout(Duration::from_secs(5)).unwrap());
    /// assert!(!lock.acquire_timeout(Duration::ZERO).unwrap()); // not reentrant
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, Error> {
        self.handle.flag(Op::Lock(LockOp::Acquire(Some(timeout))))
    }

    /// Releases it; releasing a free lock is an [`Error::Io`] of kind
    /// `InvalidInput` (Python's `RuntimeError: release unlocked lock`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let lock = manager.lock().unwrap();
    /// lock.acquire().unwrap();
    /// lock.release().unwrap();
    /// assert!(matches!(lock.release(), Err(conc::ipc::Error::Io(_))));
    /// ```
    pub fn release(&self) -> Result<(), Error> {
        self.handle.done(Op::Lock(LockOp::Release))
    }
}

super::proxy_traits!(LockProxy, Kind::Lock);
