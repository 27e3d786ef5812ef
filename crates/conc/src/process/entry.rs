//! Entry functions registered by name, and the child's side of the spawn start method: `entry_point`.
//!
//! A spawned child is a fresh run of the same executable, so it cannot be
//! handed a closure, only the name of something both sides know. Python
//! pickles a function by its module and name, and the child imports it;
//! Rust has no import at run time, so a program lists its entry functions
//! once, in a table it passes to [`entry_point`] as the first line of
//! `main`. In the parent that records the table (so `start` can refuse an
//! unlisted entry before it starts anything); in a child, which `start`
//! runs as `EXE --conc-process FD`, it reads the child's boot message from
//! descriptor `FD`, runs the named entry with its arguments, and exits.
//! Names, not addresses: two builds of one program agree on names, and an
//! address means nothing to a process with another memory layout.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ipc::Error;
use crate::ipc::wire::{self, FrameReader};

/// A function a child process can run, known by `name`: it takes an `A`
/// and returns an `R`, both sent between processes as serde values.
///
/// Declare it as a `static`, list it in the program's [`entry_point`]
/// table, and start it with [`Process::new`](super::Process::new) (or
/// submit it to a [`ProcessPool`](crate::pool::ProcessPool)).
///
/// # Examples
///
/// ```
/// use conc::process::Entry;
///
/// static DOUBLE: Entry<u64, u64> = Entry::new("double", |x| x * 2);
/// assert_eq!(DOUBLE.name(), "double");
/// assert_eq!(DOUBLE.call(21), 42); // in this process
/// ```
pub struct Entry<A, R = ()> {
    name: &'static str,
    run: fn(A) -> R,
}

impl<A, R> Entry<A, R> {
    /// An entry called `name` that runs `run`.
    pub const fn new(name: &'static str, run: fn(A) -> R) -> Self {
        Self { name, run }
    }

    /// Its name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Runs it here, in this process.
    pub fn call(&self, args: A) -> R {
        (self.run)(args)
    }
}

/// An [`Entry`] with its types erased: what [`entry_point`]'s table holds.
/// Implemented for every `Entry<A, R>` whose types travel as serde values.
pub trait Registered: Sync + 'static {
    /// The entry's name.
    fn name(&self) -> &'static str;

    /// Decodes the arguments, runs the entry, encodes the result (a
    /// result cannot hold descriptors).
    #[doc(hidden)]
    fn call_encoded(&self, args: &[u8], fds: Vec<OwnedFd>) -> Result<Vec<u8>, Error>;
}

impl<A, R> Registered for Entry<A, R>
where
    A: DeserializeOwned + 'static,
    R: Serialize + 'static,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn call_encoded(&self, args: &[u8], fds: Vec<OwnedFd>) -> Result<Vec<u8>, Error> {
        let args: A = wire::decode(args, fds)?;
        let mut out = Vec::new();
        wire::encode_plain(&(self.run)(args), &mut out)?;
        Ok(out)
    }
}

/// The table `entry_point` was given.
static TABLE: OnceLock<&'static [&'static dyn Registered]> = OnceLock::new();

/// The argument that marks a run of the executable as a conc child.
pub(crate) const CHILD_FLAG: &str = "--conc-process";

/// Entries conc itself runs in children: pool workers and managers.
pub(crate) type Builtin = fn(UnixStream, FrameReader, Vec<u8>, Vec<OwnedFd>) -> i32;

/// Runs this process as a spawned child if it is one, and never returns
/// then; otherwise records the program's entry functions and returns.
/// Call it first in `main`, before anything that should not run twice
/// (Python's `if __name__ == '__main__':` guard).
///
/// A test binary does the same: declare the test target with
/// `harness = false` in `Cargo.toml` and call `entry_point` first in its
/// own `main` (libtest-mimic runs the cases after it), since libtest's
/// `main` would not know what `--conc-process` means.
///
/// # Examples
///
/// ```standalone_crate
/// use conc::process::{Entry, Process, entry_point};
///
/// static HELLO: Entry<String> = Entry::new("hello", |who| println!("hello, {who}"));
///
/// static TABLE: &[&dyn conc::process::Registered] = &[&HELLO];
///
/// fn main() {
///     entry_point(TABLE);
///     let mut p = Process::new(&HELLO, "world".to_string());
///     p.start().unwrap();
///     assert_eq!(p.join(), 0);
/// }
/// ```
pub fn entry_point(table: &'static [&'static dyn Registered]) {
    let _ = TABLE.set(table);
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|a| a == CHILD_FLAG) {
        let fd = args.next().and_then(|a| a.to_str()?.parse().ok());
        match fd {
            Some(fd) => super::child::run(fd),
            None => {
                eprintln!("conc: {CHILD_FLAG} needs a descriptor number");
                std::process::exit(2);
            }
        }
    }
}

/// The registered entry called `name`.
pub(crate) fn lookup(name: &str) -> Option<&'static dyn Registered> {
    TABLE.get()?.iter().copied().find(|e| e.name() == name)
}

/// Why a child cannot be spawned from a program whose `main` does not
/// call `entry_point` (the child would run the whole `main` again).
pub(crate) const NO_ENTRY_POINT: &str =
    "conc::process::entry_point was not called: call it first in main, with the program's entries";

/// Whether `entry_point` ran in this process.
pub(crate) fn entry_point_called() -> bool {
    TABLE.get().is_some()
}

/// Whether a child started with `name` will find it: `entry_point` ran
/// here (so it will run in the child, the same program) and listed it.
pub(crate) fn check_registered(name: &str) -> Result<(), String> {
    if !entry_point_called() {
        return Err(NO_ENTRY_POINT.into());
    }
    if lookup(name).is_none() {
        return Err(format!(
            "no entry called {name:?} is in the table given to conc::process::entry_point"
        ));
    }
    Ok(())
}

/// The first message a spawned child reads.
#[derive(Serialize, Deserialize)]
pub(crate) struct Boot {
    pub(crate) entry: String,
    pub(crate) name: String,
    pub(crate) identity: Vec<u32>,
    pub(crate) daemon: bool,
    pub(crate) parent_pid: u32,
    pub(crate) parent_name: String,
    pub(crate) args: Vec<u8>,
}
