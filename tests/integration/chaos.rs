//! The seeded chaos run, short (`midfleet_lab::chaos`; the long one is
//! `cargo bench --bench chaos`): three rounds of seed 1 on five hosts
//! behind the lab's link, faults landed while `midfleet apply` runs, every
//! invariant checked after each round.

use midfleet_lab::chaos::{run, Settings};

use crate::lab::midsim;

#[test]
fn three_seeded_chaos_rounds_break_no_invariant() {
    let mut settings = Settings::new(
        std::path::Path::new(env!("CARGO_BIN_EXE_midfleet")),
        &midsim(),
    );
    settings.seed = 1;
    settings.rounds = 3;
    settings.hosts = 5;
    let summary = run(&settings).unwrap_or_else(|error| panic!("the lab: {error}"));
    assert_eq!(summary.rounds, 3, "{summary:?}");
    assert!(
        summary.violations.is_empty(),
        "{:?}\nreplay: {}",
        summary.violations,
        settings.replay(summary.violations[0].round)
    );
}
