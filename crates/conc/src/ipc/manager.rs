//! The Manager: a server process holding shared objects, and the proxies that talk to it.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use super::wire::FrameReader;

/// The name of the manager's built-in entry.
pub(crate) const ENTRY: &str = "conc.manager";

/// The manager process's main: serves until its owner goes away.
pub(crate) fn serve(_boot: UnixStream, _reader: FrameReader, _args: Vec<u8>, _fds: Vec<OwnedFd>) -> i32 {
    eprintln!("conc: the manager is not built yet");
    2
}
