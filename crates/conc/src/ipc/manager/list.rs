//! `ListProxy`: a manager's shared list of a serde type (Python's `ListProxy`).

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::client::Handle;
use super::protocol::{self, Kind, ListOp, Op};
use crate::ipc::Error;

/// A list held by a [`Manager`](super::Manager)'s server. Each method is
/// one atomic request, so appends from many processes all land; indices
/// are from the front (Rust's `usize`, not Python's negative ones).
///
/// # Examples
///
/// ```standalone_crate
/// use conc::ipc::{ListProxy, Manager};
/// use conc::process::{Entry, Process, Registered, entry_point};
///
/// static LOG: Entry<(ListProxy<String>, u32)> = Entry::new("log", |(log, n)| {
///     log.append(format!("worker {n} was here")).unwrap();
/// });
///
/// static TABLE: &[&dyn Registered] = &[&LOG];
///
/// fn main() {
///     entry_point(TABLE);
///     let manager = Manager::new().unwrap();
///     let log = manager.list().unwrap();
///     let mut p = Process::new(&LOG, (log.clone(), 1));
///     p.start().unwrap();
///     p.join();
///     assert_eq!(log.to_vec().unwrap(), ["worker 1 was here"]);
/// }
/// ```
pub struct ListProxy<T> {
    handle: Handle,
    types: PhantomData<fn() -> T>,
}

impl<T> ListProxy<T> {
    pub(super) fn from_handle(handle: Handle) -> Self {
        Self {
            handle,
            types: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    /// Adds `item` at the end (Python's `append`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let l = manager.list::<u8>().unwrap();
    /// l.append(7).unwrap();
    /// assert_eq!(l.to_vec().unwrap(), [7]);
    /// ```
    pub fn append(&self, item: T) -> Result<(), Error> {
        self.handle
            .done(Op::List(ListOp::Append(protocol::encode(&item)?)))
    }

    /// The item at `index`, if there is one (Python's `l[index]`, without
    /// the `IndexError`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let l = manager.list::<char>().unwrap();
    /// l.extend(['a', 'b']).unwrap();
    /// assert_eq!(l.get(1).unwrap(), Some('b'));
    /// assert_eq!(l.get(2).unwrap(), None);
    /// ```
    pub fn get(&self, index: usize) -> Result<Option<T>, Error> {
        self.handle.value(Op::List(ListOp::Get(index as u64)))
    }

    /// Replaces the item at `index` (Python's `l[index] = item`); an index
    /// past the end is an [`Error::Io`] of kind `InvalidInput` (Python's
    /// `IndexError`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let l = manager.list::<char>().unwrap();
    /// l.append('a').unwrap();
    /// l.set(0, 'z').unwrap();
    /// assert_eq!(l.get(0).unwrap(), Some('z'));
    /// assert!(matches!(l.set(5, 'x'), Err(conc::ipc::Error::Io(_))));
    /// ```
    pub fn set(&self, index: usize, item: T) -> Result<(), Error> {
        let op = ListOp::Set(index as u64, protocol::encode(&item)?);
        self.handle.done(Op::List(op))
    }

    /// How many items it holds (Python's `len(l)`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let l = manager.list::<u32>().unwrap();
    /// l.extend(0..5).unwrap();
    /// assert_eq!(l.len().unwrap(), 5);
    /// ```
    pub fn len(&self) -> Result<usize, Error> {
        self.handle.count(Op::List(ListOp::Len))
    }

    /// Whether it holds no item.
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let l = manager.list::<u32>().unwrap();
    /// assert!(l.is_empty().unwrap());
    /// ```
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }

    /// Removes and returns the last item, if any (Python's `pop()`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let l = manager.list::<u32>().unwrap();
    /// l.extend([1, 2]).unwrap();
    /// assert_eq!(l.pop().unwrap(), Some(2));
    /// assert_eq!(l.pop().unwrap(), Some(1));
    /// assert_eq!(l.pop().unwrap(), None);
    /// ```
    pub fn pop(&self) -> Result<Option<T>, Error> {
        self.handle.value(Op::List(ListOp::Pop))
    }

    /// Appends every item, in one request, so no other process's append
    /// lands among them (Python's `extend`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let l = manager.list::<String>().unwrap();
    /// l.extend(["a", "b"].map(String::from)).unwrap();
    /// assert_eq!(l.to_vec().unwrap(), ["a", "b"]);
    /// ```
    pub fn extend(&self, items: impl IntoIterator<Item = T>) -> Result<(), Error> {
        let items = items
            .into_iter()
            .map(|item| protocol::encode(&item))
            .collect::<Result<_, _>>()?;
        self.handle.done(Op::List(ListOp::Extend(items)))
    }

    /// A copy of every item, in order (Python's `list(l)`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let l = manager.list::<(u8, bool)>().unwrap();
    /// l.append((1, true)).unwrap();
    /// assert_eq!(l.to_vec().unwrap(), [(1, true)]);
    /// ```
    pub fn to_vec(&self) -> Result<Vec<T>, Error> {
        self.handle.values(Op::List(ListOp::ToVec))
    }
}

super::proxy_traits!(ListProxy<T>, Kind::List);
