//! `DictProxy`: a manager's shared dict, keys and values of serde types, in the order keys were first set (Python's `DictProxy`).

use std::borrow::Borrow;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::client::Handle;
use super::protocol::{self, DictOp, Kind, Op};
use crate::ipc::Error;

/// A dict held by a [`Manager`](super::Manager)'s server. Every method is
/// one request; each is atomic, a sequence of them is not (take a
/// [`LockProxy`](super::LockProxy) around a `get` and a `set`). Keys are
/// equal when their encodings are; a lookup takes any borrowed form of the
/// key (`&str` for `String`), as `HashMap`'s do.
///
/// # Examples
///
/// ```standalone_crate
/// use conc::ipc::{DictProxy, Manager};
/// use conc::process::{Entry, Process, Registered, entry_point};
///
/// static WRITE: Entry<DictProxy<String, u32>> = Entry::new("write", |d| {
///     d.set("from child", std::process::id()).unwrap();
/// });
///
/// static TABLE: &[&dyn Registered] = &[&WRITE];
///
/// fn main() {
///     entry_point(TABLE);
///     let manager = Manager::new().unwrap();
///     let d = manager.dict().unwrap();
///     let mut p = Process::new(&WRITE, d.clone());
///     p.start().unwrap();
///     p.join();
///     assert_eq!(d.get("from child").unwrap(), p.pid());
/// }
/// ```
pub struct DictProxy<K, V> {
    handle: Handle,
    types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> DictProxy<K, V> {
    pub(super) fn from_handle(handle: Handle) -> Self {
        Self {
            handle,
            types: PhantomData,
        }
    }
}

impl<K, V> DictProxy<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// The value of `key`, if set (Python's `d.get(key)`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let d = manager.dict::<String, u32>().unwrap();
    /// assert_eq!(d.get("missing").unwrap(), None);
    /// ```
    pub fn get<Q>(&self, key: &Q) -> Result<Option<V>, Error>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.handle
            .value(Op::Dict(DictOp::Get(protocol::encode(key)?)))
    }

    /// Sets `key` to `value` (Python's `d[key] = value`); a key set
    /// again keeps its place in the order.
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let d = manager.dict::<String, i64>().unwrap();
    /// d.set("count", 10).unwrap();
    /// d.set("count", 9).unwrap();
    /// assert_eq!(d.get("count").unwrap(), Some(9));
    /// ```
    pub fn set<Q>(&self, key: &Q, value: V) -> Result<(), Error>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let op = DictOp::Set(protocol::encode(key)?, protocol::encode(&value)?);
        self.handle.done(Op::Dict(op))
    }

    /// Removes `key`; its value, if it was set (Python's `d.pop(key, None)`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let d = manager.dict::<u8, char>().unwrap();
    /// d.set(&1, 'a').unwrap();
    /// assert_eq!(d.remove(&1).unwrap(), Some('a'));
    /// assert_eq!(d.remove(&1).unwrap(), None);
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> Result<Option<V>, Error>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.handle
            .value(Op::Dict(DictOp::Remove(protocol::encode(key)?)))
    }

    /// Whether `key` is set (Python's `key in d`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let d = manager.dict::<String, ()>().unwrap();
    /// d.set("here", ()).unwrap();
    /// assert!(d.contains_key("here").unwrap());
    /// assert!(!d.contains_key("there").unwrap());
    /// ```
    pub fn contains_key<Q>(&self, key: &Q) -> Result<bool, Error>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.handle
            .flag(Op::Dict(DictOp::Contains(protocol::encode(key)?)))
    }

    /// How many keys are set (Python's `len(d)`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let d = manager.dict::<u32, u32>().unwrap();
    /// d.set(&1, 1).unwrap();
    /// d.set(&2, 4).unwrap();
    /// assert_eq!(d.len().unwrap(), 2);
    /// ```
    pub fn len(&self) -> Result<usize, Error> {
        self.handle.count(Op::Dict(DictOp::Len))
    }

    /// Whether no key is set.
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let d = manager.dict::<u32, u32>().unwrap();
    /// assert!(d.is_empty().unwrap());
    /// ```
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }

    /// The keys, in the order they were first set (Python's `list(d.keys())`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let d = manager.dict::<String, u32>().unwrap();
    /// d.set("b", 2).unwrap();
    /// d.set("a", 1).unwrap();
    /// assert_eq!(d.keys().unwrap(), ["b", "a"]);
    /// ```
    pub fn keys(&self) -> Result<Vec<K>, Error> {
        self.handle.values(Op::Dict(DictOp::Keys))
    }

    /// The values, in their keys' order (Python's `list(d.values())`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let d = manager.dict::<String, u32>().unwrap();
    /// d.set("b", 2).unwrap();
    /// d.set("a", 1).unwrap();
    /// assert_eq!(d.values().unwrap(), [2, 1]);
    /// ```
    pub fn values(&self) -> Result<Vec<V>, Error> {
        self.handle.values(Op::Dict(DictOp::Values))
    }

    /// The pairs, in their keys' order (Python's `list(d.items())`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let d = manager.dict::<String, u32>().unwrap();
    /// d.set("one", 1).unwrap();
    /// assert_eq!(d.items().unwrap(), [("one".to_string(), 1)]);
    /// ```
    pub fn items(&self) -> Result<Vec<(K, V)>, Error> {
        self.handle.items(Op::Dict(DictOp::Items))
    }

    /// Removes every key (Python's `d.clear()`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let d = manager.dict::<u32, u32>().unwrap();
    /// d.set(&1, 1).unwrap();
    /// d.clear().unwrap();
    /// assert!(d.is_empty().unwrap());
    /// ```
    pub fn clear(&self) -> Result<(), Error> {
        self.handle.done(Op::Dict(DictOp::Clear))
    }
}

super::proxy_traits!(DictProxy<K, V>, Kind::Dict);
