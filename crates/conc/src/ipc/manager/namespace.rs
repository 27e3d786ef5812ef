//! `NamespaceProxy`: a manager's namespace, named attributes each of its own serde type (Python's `Namespace`).

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::client::Handle;
use super::protocol::{self, Kind, NamespaceOp, Op};
use crate::ipc::Error;

/// A namespace held by a [`Manager`](super::Manager)'s server: Python's
/// `ns.x = 1` is `ns.set("x", &1)`, and `ns.x` is `ns.get::<i32>("x")`.
/// Attributes are untyped on the server, so reading one as another type
/// than it was set as is an [`Error::Decode`] (when the bytes show it).
///
/// # Examples
///
/// ```standalone_crate
/// use conc::ipc::{Manager, NamespaceProxy};
/// use conc::process::{Entry, Process, Registered, entry_point};
///
/// static DOUBLE: Entry<NamespaceProxy> = Entry::new("double", |ns| {
///     let x: i64 = ns.get("x").unwrap().unwrap();
///     ns.set("y", &(2 * x)).unwrap();
/// });
///
/// static TABLE: &[&dyn Registered] = &[&DOUBLE];
///
/// fn main() {
///     entry_point(TABLE);
///     let manager = Manager::new().unwrap();
///     let ns = manager.namespace().unwrap();
///     ns.set("x", &21i64).unwrap();
///     let mut p = Process::new(&DOUBLE, ns.clone());
///     p.start().unwrap();
///     p.join();
///     assert_eq!(ns.get::<i64>("y").unwrap(), Some(42));
/// }
/// ```
pub struct NamespaceProxy {
    handle: Handle,
}

impl NamespaceProxy {
    pub(super) fn from_handle(handle: Handle) -> Self {
        Self { handle }
    }

    /// The attribute `name` as a `T`, if set (Python's `ns.name`, without
    /// the `AttributeError`).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let ns = manager.namespace().unwrap();
    /// ns.set("name", "ada").unwrap();
    /// assert_eq!(ns.get::<String>("name").unwrap().as_deref(), Some("ada"));
    /// assert_eq!(ns.get::<String>("age").unwrap(), None);
    /// assert!(matches!(ns.get::<u64>("name"), Err(conc::ipc::Error::Decode(_))));
    /// ```
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, Error> {
        let op = NamespaceOp::Get(name.to_string());
        self.handle.value(Op::Namespace(op))
    }

    /// Sets the attribute `name` (Python's `ns.name = value`); a value of
    /// any serde type, which may differ from the one it had.
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// conc::process::entry_point(&[]);
    /// let manager = conc::ipc::Manager::new().unwrap();
    /// let ns = manager.namespace().unwrap();
    /// ns.set("x", &1u8).unwrap();
    /// ns.set("x", &vec![1.5f64]).unwrap();
    /// assert_eq!(ns.get::<Vec<f64>>("x").unwrap(), Some(vec![1.5]));
    /// ```
    pub fn set<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<(), Error> {
        let op = NamespaceOp::Set(name.to_string(), protocol::encode(value)?);
        self.handle.done(Op::Namespace(op))
    }
}

super::proxy_traits!(NamespaceProxy, Kind::Namespace);
