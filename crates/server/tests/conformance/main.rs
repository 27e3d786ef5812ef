//! The conformance suite: every point of the model contract, run against every model of `Model::ALL`.
//!
//! Each case (in `cases/`) checks one behaviour of `model/mod.rs`'s contract
//! through the real binary. The subjects are [`Model::ALL`] and the variants
//! each model names (`epoll --edge`): a model file added to the table is in
//! the suite with no edit here. Tests are named `<subject>::<case>`, so
//! `cargo test --test conformance thread_pool::` runs one model's suite and
//! `cargo test --test conformance slow_reader` one case for every model.
//! A model that cannot run on this machine (`uring` without io_uring) has
//! its tests listed as ignored, with the reason printed once.

// Test crates export nothing: `pub` here only shares items between modules.
#![allow(unreachable_pub)]

#[path = "../harness/mod.rs"]
mod harness;

mod cases;

use std::io::{self, Write};

use harness::Subject;
use iomodels_server::Model;
use libtest_mimic::{Arguments, Trial};

/// Every model, and every variant a model asks to be checked as its own
/// subject.
fn subjects() -> Vec<Subject> {
    Model::ALL
        .iter()
        .flat_map(|&model| {
            let variants = model
                .variants()
                .iter()
                .map(move |&flags| Subject::new(model, flags));
            std::iter::once(Subject::from(model)).chain(variants)
        })
        .collect()
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for subject in subjects() {
        // Asked once per subject: why it cannot run here, if it cannot.
        let unable = subject.model.preflight().err();
        if let Some(why) = &unable {
            let _ = writeln!(io::stderr(), "SKIPPED {subject}: {why}");
        }
        let cases = cases::ALL.iter().filter(|case| (case.applies)(subject));
        for case in cases {
            let run = case.run;
            let trial = Trial::test(format!("{}::{}", subject.ident(), case.name), move || {
                run(subject);
                Ok(())
            });
            trials.push(trial.with_ignored_flag(unable.is_some()));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
