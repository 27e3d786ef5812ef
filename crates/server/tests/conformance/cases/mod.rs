//! The cases of the suite, one function per behaviour of the contract, and which subjects each applies to.

mod drain;
mod echo;
mod limits;
mod processes;

use std::time::Duration;

use iomodels_server::{Config, Flag};

use crate::harness::{Server, Subject};

/// One behaviour of the contract, checked against one subject at a time.
pub struct Case {
    /// The test's name after `<subject>::`.
    pub name: &'static str,
    pub run: fn(Subject),
    /// Whether the case means something for this subject.
    pub applies: fn(Subject) -> bool,
}

/// The table of cases: `module::case` runs for every subject,
/// `module::case if |subject| ...` only for those it applies to. The name
/// is the function's.
macro_rules! cases {
    ($($module:ident::$case:ident $(if $applies:expr)?),* $(,)?) => {
        &[$(Case {
            name: stringify!($case),
            run: $module::$case,
            applies: cases!(@applies $($applies)?),
        }),*]
    };
    (@applies) => { |_| true };
    (@applies $applies:expr) => { $applies };
}

/// Every case, in the order the suite lists them.
pub const ALL: &[Case] = cases![
    echo::hello,
    echo::all_byte_values,
    echo::eight_mib_in_random_chunks,
    echo::concurrent_clients,
    echo::half_close,
    echo::resets_mid_stream,
    echo::slow_reader,
    echo::course_python_client,
    drain::sigterm_mid_transfer,
    drain::sigterm_drains_what_was_sent,
    drain::refuses_while_draining,
    drain::streams_through_sigterm,
    limits::descriptor_exhaustion,
    limits::max_conns,
    limits::idle_timeout,
    limits::lingers_past_the_idle_timeout,
    limits::forced_stop_with_an_idle_timeout,
    // Every model that serves any number of clients at once and can watch
    // 1100 of them; `select`'s refusal is its own case.
    limits::idle_crowd if |s| {
        s.capacity(&Config::default()).is_none() && s.model.watch_limit().is_none()
    },
    limits::refuses_clients_past_its_watch_limit if |s| s.model.watch_limit().is_some(),
    processes::no_zombies,
    processes::replaces_a_killed_worker if |s| {
        s.model.standing_workers(&Config::default()) > 0
    },
    // The one model whose readiness reports come through a queue the kernel
    // may overflow.
    processes::rescans_when_the_signal_queue_overflows if |s| s.model.name() == "sigio",
];

/// Over 2 s, the server uses less than a quarter of a core: any loop that
/// waits properly uses next to nothing when there is no work, and one that
/// spins uses all of one (over half of one even on a machine busy with
/// other tests). Not for the busy poller, which spins by design (its cost
/// is measured, not asserted, in `bench/`).
pub fn assert_no_spin(server: &Server, when: &str) {
    if !server.model.model.idles() {
        return;
    }
    let busy = server.busy_over(Duration::from_secs(2));
    assert!(
        busy < 0.25,
        "{} used {:.0}% of a core {when}",
        server.model,
        busy * 100.0
    );
}

/// `--workers N` for a model that takes it, nothing for the others (which
/// refuse it) and for a variant that sets its own (`green --workers 2`).
pub fn workers_flag(subject: Subject, n: &'static str) -> Vec<&'static str> {
    if subject.model.takes(Flag::Workers) && !subject.flags.contains(&"--workers") {
        vec!["--workers", n]
    } else {
        Vec::new()
    }
}
