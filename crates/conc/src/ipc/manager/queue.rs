//! `QueueProxy`: a manager's unbounded FIFO queue of a serde type, whose blocking `get` waits in the server (Python's `manager.Queue()`).

use std::marker::PhantomData;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::client::Handle;
use super::protocol::{self, Kind, Op, QueueOp};
use crate::ipc::Error;

/// A queue held by a [`Manager`](super::Manager)'s server. A `get` waits
/// on its connection's server thread, so it holds up no other client; an
/// item a client took but never got (it died first) goes back to the
/// front. Unbounded: `put` never waits (Python's default `maxsize=0`).
///
/// # Examples
///
/// ```standalone_crate
/// use conc::ipc::{Manager, QueueProxy};
/// use conc::process::{Entry, Process, Registered, entry_point};
///
/// static PRODUCE: Entry<QueueProxy<u32>> = Entry::new("produce", |q| {
///     for dish in 0..3 {
///         q.put(dish).unwrap();
///     }
/// });
///
/// static TABLE: &[&dyn Registered] = &[&PRODUCE];
///
/// fn main() {
///     entry_point(TABLE);
///     let manager = Manager::new().unwrap();
///     let q = manager.queue().unwrap();
///     let mut p = Process::new(&PRODUCE, q.clone());
///     p.start().unwrap();
///     let eaten: Vec<u32> = (0..3).map(|_| q.get().unwrap()).collect();
///     assert_eq!(eaten, [0, 1, 2]);
///     p.join();
/// }
/// ```
pub struct QueueProxy<T> {
    handle: Handle,
    types: PhantomData<fn() -> T>,
}

impl<T> QueueProxy<T> {
    pub(super) fn from_handle(handle: Handle) -> Self {
        Self {
            handle,
            types: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    /// Adds `item` at the back (Python's `put`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let q = manager.queue::<String>().unwrap();
    /// q.put("noodles".to_string()).unwrap();
    /// assert_eq!(q.qsize().unwrap(), 1);
    /// ```
    pub fn put(&self, item: T) -> Result<(), Error> {
        self.handle
            .done(Op::Queue(QueueOp::Put(protocol::encode(&item)?)))
    }

    /// Removes and returns the front item, waiting for one (Python's `get`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let q = manager.queue::<u8>().unwrap();
    /// let producer = q.clone();
    /// std::thread::spawn(move || producer.put(1).unwrap());
    /// assert_eq!(q.get().unwrap(), 1);
    /// ```
    pub fn get(&self) -> Result<T, Error> {
        self.take(None)
    }

    /// As [`get`](Self::get), waiting at most `timeout`; then
    /// [`Error::Timeout`] (Python's `get(timeout=...)` raising `Empty`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// use std::time::Duration;
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let q = manager.queue::<u8>().unwrap();
    /// let none = q.get_timeout(Duration::from_millis(10));
    /// assert!(matches!(none, Err(conc::ipc::Error::Timeout)));
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, Error> {
        self.take(Some(timeout))
    }

    fn take(&self, timeout: Option<Duration>) -> Result<T, Error> {
        let item = self.handle.value(Op::Queue(QueueOp::Get(timeout)))?;
        item.ok_or_else(|| Error::Decode("the manager answered a get with no item".into()))
    }

    /// How many items it holds now (Python's `qsize`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let q = manager.queue::<u8>().unwrap();
    /// q.put(1).unwrap();
    /// q.put(2).unwrap();
    /// assert_eq!(q.qsize().unwrap(), 2);
    /// ```
    pub fn qsize(&self) -> Result<usize, Error> {
        self.handle.count(Op::Queue(QueueOp::Len))
    }

    /// Whether it holds no item now (Python's `empty`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let q = manager.queue::<u8>().unwrap();
    /// assert!(q.empty().unwrap());
    /// ```
    pub fn empty(&self) -> Result<bool, Error> {
        Ok(self.qsize()? == 0)
    }
}

super::proxy_traits!(QueueProxy<T>, Kind::Queue);
