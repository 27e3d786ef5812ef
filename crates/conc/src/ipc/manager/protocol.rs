//! The manager's wire protocol: what a proxy asks, what the server answers, and values as postcard bytes the server never decodes.
//!
//! Every request is one frame and gets one reply frame (see `wire.rs`), on
//! a connection that carries one request at a time. Values travel already
//! encoded (`Bytes`), so the server stores and compares bytes and needs no
//! type parameters; a dict's keys are equal when their encodings are,
//! which holds for the keys people use (strings, integers, tuples of
//! them), not for a key that is itself a `HashMap` (its order varies).

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ipc::{Error, wire};

/// A value as the server keeps it: its postcard encoding.
pub(super) type Bytes = Vec<u8>;

/// What kind of object an id names. A proxy carries it, so a dict's proxy
/// sent to a child does not decode there as a list's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Kind {
    Dict,
    List,
    Namespace,
    Queue,
    Lock,
}

/// The first message of the server to its owner, over the boot socket.
#[derive(Serialize, Deserialize)]
pub(super) enum Started {
    /// Listening on this abstract socket name.
    Listening(String),
    /// Could not listen, and why.
    Failed(String),
}

/// The owner's messages to the server, over the boot socket.
#[derive(Serialize, Deserialize)]
pub(super) enum Control {
    /// Exit now (`Manager::shutdown`).
    Shutdown,
}

/// One request: `op` on the object numbered `id` (`Create` ignores `id`).
#[derive(Serialize, Deserialize)]
pub(super) struct Request {
    pub(super) id: u64,
    pub(super) op: Op,
}

/// The operations, grouped by the kind of object they apply to.
#[derive(Serialize, Deserialize)]
pub(super) enum Op {
    Create(Kind),
    Dict(DictOp),
    List(ListOp),
    Namespace(NamespaceOp),
    Queue(QueueOp),
    Lock(LockOp),
}

#[derive(Serialize, Deserialize)]
pub(super) enum DictOp {
    Get(Bytes),
    Set(Bytes, Bytes),
    Remove(Bytes),
    Contains(Bytes),
    Len,
    Keys,
    Values,
    Items,
    Clear,
}

#[derive(Serialize, Deserialize)]
pub(super) enum ListOp {
    Append(Bytes),
    Get(u64),
    Set(u64, Bytes),
    Len,
    Pop,
    Extend(Vec<Bytes>),
    ToVec,
}

#[derive(Serialize, Deserialize)]
pub(super) enum NamespaceOp {
    Get(String),
    Set(String, Bytes),
}

#[derive(Serialize, Deserialize)]
pub(super) enum QueueOp {
    Put(Bytes),
    /// Waits for an item, at most this long if set.
    Get(Option<Duration>),
    Len,
}

#[derive(Serialize, Deserialize)]
pub(super) enum LockOp {
    /// Waits for the lock, at most this long if set.
    Acquire(Option<Duration>),
    Release,
}

/// The server's answer to one request.
#[derive(Serialize, Deserialize)]
pub(super) enum Reply {
    Done,
    Created(u64),
    Value(Option<Bytes>),
    Values(Vec<Bytes>),
    Items(Vec<(Bytes, Bytes)>),
    Count(u64),
    Flag(bool),
    TimedOut,
    Refused(Refusal),
}

/// Why the server did not do what was asked.
#[derive(Serialize, Deserialize)]
pub(super) enum Refusal {
    /// No object has that id, or it is not of the op's kind, or the
    /// request did not decode: a type mismatch between the two sides.
    Mismatch(String),
    /// A list index past the end (Python's `IndexError`).
    OutOfRange(String),
    /// `release` of a lock nobody holds (Python's `RuntimeError`).
    Unlocked,
    /// The client went away while its request waited (never sent).
    Gone,
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        let invalid =
            |why: String| Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, why));
        match refusal {
            Refusal::Mismatch(why) => Error::Decode(why),
            Refusal::OutOfRange(why) => invalid(why),
            Refusal::Unlocked => invalid("release unlocked lock".into()),
            Refusal::Gone => Error::Closed,
        }
    }
}

/// Encodes a value to store or send. A value holding a descriptor is
/// refused (`Error::Encode`): the server could not hand it to another
/// process later, as the descriptor would be the server's.
pub(super) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, Error> {
    let mut out = Vec::new();
    wire::encode_plain(value, &mut out)?;
    Ok(out)
}

/// Decodes bytes that must be exactly one `T`. Postcard is not
/// self-describing, so a value read as another type is caught only when
/// its bytes do not parse as that type or leave some over; this check of
/// the leftover catches most mismatches (a `String` read as a `u64`).
pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(Error::Decode(format!(
            "{} bytes left over: the value was stored as another type",
            rest.len()
        ))),
        Err(e) => Err(Error::Decode(e.to_string())),
    }
}
