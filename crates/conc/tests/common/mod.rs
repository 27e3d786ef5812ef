//! What the test binaries that start real processes share: their `main`, a check that fails with a message, and starting a child.
//!
//! Each such binary is its own `main` (`harness = false`), because a
//! spawned child re-runs the binary: `main` calls `entry_point` before
//! anything else, so a child runs its entry and exits there instead of
//! running the cases. Each binary uses part of this module.
#![allow(dead_code)]

use conc::process::{self, Entry, Process};
use libtest_mimic::Failed;

/// `Ok` if `ok`, else a failure saying `what`.
pub(crate) fn check(ok: bool, what: impl Into<String>) -> Result<(), Failed> {
    if ok { Ok(()) } else { Err(what.into().into()) }
}

/// A started child running `entry(args)`.
pub(crate) fn started<A: serde::Serialize, R>(entry: &'static Entry<A, R>, args: A) -> Process
where
    Entry<A, R>: process::Registered,
{
    let mut p = Process::new(entry, args);
    p.start().expect("start");
    p
}

/// A started daemon child running `entry(args)`: a case that fails before
/// it joins the child leaves nothing behind when the binary exits.
pub(crate) fn started_daemon<A: serde::Serialize, R>(
    entry: &'static Entry<A, R>,
    args: A,
) -> Process
where
    Entry<A, R>: process::Registered,
{
    let mut p = Process::new(entry, args);
    p.set_daemon(true);
    p.start().expect("start");
    p
}

/// The binary's `main`: the entry point over `$table`, then every case,
/// each a `fn() -> Result<(), Failed>` named by its function.
macro_rules! process_tests {
    ($table:expr; $($case:ident),* $(,)?) => {
        fn main() {
            conc::process::entry_point($table);
            let args = libtest_mimic::Arguments::from_args();
            let trials = vec![$(libtest_mimic::Trial::test(stringify!($case), $case)),*];
            libtest_mimic::run(&args, trials).exit();
        }
    };
}
pub(crate) use process_tests;
