//! The first steps of a spawned child: read the boot message, become the process it describes, run its entry, exit.

use std::io::Write;
use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;
use std::panic::{self, AssertUnwindSafe};

use super::entry::{self, Boot};
use super::{Identity, set_current};
use crate::ipc::wire::{self, FrameReader};

/// Runs the child whose boot socket is descriptor `fd`; never returns.
pub(crate) fn run(fd: RawFd) -> ! {
    let code = match boot(fd) {
        Ok(code) => code,
        Err(why) => {
            eprintln!("conc: a spawned child could not start: {why}");
            2
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

fn boot(fd: RawFd) -> Result<i32, String> {
    let sock = UnixStream::from(
        crate::sys::own_inherited_fd(fd).map_err(|e| format!("descriptor {fd}: {e}"))?,
    );
    let mut reader = FrameReader::default();
    let frame = reader
        .recv(&sock)
        .map_err(|e| format!("reading the boot message: {e}"))?;
    let boot: Boot = wire::decode(&frame.bytes, Vec::new()).map_err(|e| e.to_string())?;
    set_current(Identity {
        name: boot.name,
        identity: boot.identity,
        daemon: boot.daemon,
        parent: Some((boot.parent_pid, boot.parent_name)),
    });
    if let Some(builtin) = super::builtin(&boot.entry) {
        return Ok(builtin(sock, reader, boot.args, frame.fds));
    }
    let target = entry::lookup(&boot.entry).ok_or_else(|| {
        format!(
            "no entry function called {:?} is registered with conc::process::entry_point",
            boot.entry
        )
    })?;
    drop(sock);
    // Python's child runs its target, then its own exit function (which
    // joins its non-daemon children): `run_main` is that, for threads and,
    // through its exit hook, for processes.
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        crate::thread::run_main(|| target.call_encoded(&boot.args, frame.fds))
    }));
    match result {
        Ok(Ok(_)) => Ok(0),
        Ok(Err(e)) => Err(format!("entry {:?}: {e}", target.name())),
        // The panic hook has printed the message, as Python prints the
        // traceback; the exit status is 1, as Python's.
        Err(_) => Ok(1),
    }
}
