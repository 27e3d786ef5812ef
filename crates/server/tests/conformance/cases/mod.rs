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

const fn every(name: &'static str, run: fn(Subject)) -> Case {
    Case {
        name,
        run,
        applies: |_| true,
    }
}

/// Every case, in the order the suite lists them.
pub const ALL: &[Case] = &[
    every("hello", echo::hello),
    every("all_byte_values", echo::all_byte_values),
    every(
        "eight_mib_in_random_chunks",
        echo::eight_mib_in_random_chunks,
    ),
    every("concurrent_clients", echo::concurrent_clients),
    every("half_close", echo::half_close),
    every("resets_mid_stream", echo::resets_mid_stream),
    every("slow_reader", echo::slow_reader),
    every("course_python_client", echo::course_python_client),
    every("sigterm_mid_transfer", drain::sigterm_mid_transfer),
    every(
        "sigterm_drains_what_was_sent",
        drain::sigterm_drains_what_was_sent,
    ),
    every("refuses_while_draining", drain::refuses_while_draining),
    every("streams_through_sigterm", drain::streams_through_sigterm),
    every("descriptor_exhaustion", limits::descriptor_exhaustion),
    every("max_conns", limits::max_conns),
    every("idle_timeout", limits::idle_timeout),
    Case {
        name: "idle_crowd",
        run: limits::idle_crowd,
        // Every model that serves any number of clients at once and can
        // watch 1100 of them; `select`'s refusal is its own case.
        applies: |s| s.capacity(&Config::default()).is_none() && s.model.watch_limit().is_none(),
    },
    Case {
        name: "refuses_clients_past_its_watch_limit",
        run: limits::refuses_clients_past_its_watch_limit,
        applies: |s| s.model.watch_limit().is_some(),
    },
    every("no_zombies", processes::no_zombies),
    Case {
        name: "replaces_a_killed_worker",
        run: processes::replaces_a_killed_worker,
        applies: |s| s.model.standing_workers(&Config::default()) > 0,
    },
    Case {
        name: "rescans_when_the_signal_queue_overflows",
        run: processes::rescans_when_the_signal_queue_overflows,
        // The one model whose readiness reports come through a queue the
        // kernel may overflow.
        applies: |s| s.model.name() == "sigio",
    },
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
/// refuse it).
pub fn workers_flag(subject: Subject, n: &'static str) -> Vec<&'static str> {
    if subject.model.takes(Flag::Workers) {
        vec!["--workers", n]
    } else {
        Vec::new()
    }
}
