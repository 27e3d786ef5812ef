//! One event loop per listener, each on a thread of its own: how `reactors`, `green --workers` and the worker processes of `prefork` and `hybrid` use more than one core.
//!
//! Every listener has its own `SO_REUSEPORT` queue, so the loops share
//! nothing on the hot path but `--max-conns`' count. Which loop runs is
//! a [`Kind`]: the epoll loop (`readiness::epoll`) or the green hub
//! (`crate::hub`).

use std::io;
use std::net::TcpListener;
use std::panic::{self, AssertUnwindSafe};
use std::thread;

use crate::admission::OpenCount;
use crate::{Config, Shutdown};

/// A kind of event loop that serves one listener until the drain is over.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kind {
    /// Its threads' name, numbered: `reactor-0`, `hub-1`.
    pub(crate) name: &'static str,
    /// Serves one listener on the calling thread, counting in the
    /// [`OpenCount`].
    pub(crate) serve: fn(TcpListener, &Config, &Shutdown, OpenCount) -> io::Result<()>,
}

/// One loop of `kind` per listener, each on its own thread, counting in
/// `open`, until the drain is over; a single listener is served on the
/// calling thread. One loop down, by error or panic, is a broken server:
/// the others are stopped at once and its failure is passed on.
///
/// # Errors
///
/// If a loop's thread cannot start, or a loop fails.
pub(crate) fn run_each(
    kind: Kind,
    mut listeners: Vec<TcpListener>,
    config: &Config,
    shutdown: &Shutdown,
    open: OpenCount,
) -> io::Result<()> {
    if listeners.len() == 1 {
        let listener = listeners.pop().expect("one listener");
        return (kind.serve)(listener, config, shutdown, open);
    }
    thread::scope(|scope| {
        let mut loops = Vec::new();
        for (i, listener) in listeners.into_iter().enumerate() {
            let open = open.clone();
            let spawned = thread::Builder::new()
                .name(format!("{}-{i}", kind.name))
                .spawn_scoped(scope, move || {
                    let result = panic::catch_unwind(AssertUnwindSafe(|| {
                        (kind.serve)(listener, config, shutdown, open)
                    }));
                    if !matches!(result, Ok(Ok(()))) {
                        shutdown.force();
                    }
                    result.unwrap_or_else(|p| panic::resume_unwind(p))
                });
            match spawned {
                Ok(running) => loops.push(running),
                Err(error) => {
                    shutdown.force();
                    return Err(error);
                }
            }
        }
        let mut outcome = Ok(());
        for running in loops {
            // A loop never panics on I/O; a panic is a bug, passed on.
            let result = running.join().unwrap_or_else(|p| panic::resume_unwind(p));
            if outcome.is_ok() {
                outcome = result;
            }
        }
        outcome
    })
}
