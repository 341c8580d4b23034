//! `cargo bench --bench chaos`: the seeded chaos run (issue 20, item 5;
//! `midfleet_lab::chaos`, docs/reliability.md): rounds of the user rotation
//! on a lab of hosts behind the lab's link, each round's faults drawn from
//! the seed and landed at random moments while `midfleet apply --yes`
//! runs, the invariants checked after each round. A violation prints the
//! seed, the round and the command that replays it, and the bench exits 1.
//!
//! Environment: `MIDFLEET_CHAOS_SEED` (1), `MIDFLEET_CHAOS_ROUNDS` (the
//! last round, 20), `MIDFLEET_CHAOS_FIRST_ROUND` (1: a later one replays
//! that round's faults on a fresh lab), `MIDFLEET_CHAOS_HOSTS` (20),
//! `MIDFLEET_CHAOS_FORKS` (8), `MIDFLEET_CHAOS_START_MS` (the MIDs' start,
//! 500), `MIDFLEET_CHAOS_WINDOW_MS` (faults land in the first this many ms
//! of each apply, 4000; a SIGTERM's counted from the first host's
//! transaction), `MIDFLEET_CHAOS_INSTANCE` (1: the MIDs log in to an
//! emulated instance, the playbook has `instance:` with `ensure_user`, and
//! the instance's 503s and hangs are drawn; 0: the lab's credential store,
//! and the draws of runs from before the instance's faults existed).

use std::process::ExitCode;
use std::time::Duration;

use midfleet_lab::chaos::{run, Settings};

fn setting(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value}: expected a whole number")),
        Err(_) => default,
    }
}

fn main() -> ExitCode {
    let mut settings = Settings::new(
        std::path::Path::new(env!("CARGO_BIN_EXE_midfleet")),
        &midfleet_lab::midsim(),
    );
    settings.seed = setting("MIDFLEET_CHAOS_SEED", 1);
    settings.rounds = setting("MIDFLEET_CHAOS_ROUNDS", 20) as usize;
    settings.first_round = (setting("MIDFLEET_CHAOS_FIRST_ROUND", 1) as usize).max(1);
    settings.hosts = setting("MIDFLEET_CHAOS_HOSTS", 20) as usize;
    settings.forks = setting("MIDFLEET_CHAOS_FORKS", 8) as usize;
    settings.start_delay = Duration::from_millis(setting("MIDFLEET_CHAOS_START_MS", 500));
    settings.window_ms = setting("MIDFLEET_CHAOS_WINDOW_MS", 4000);
    settings.instance = setting("MIDFLEET_CHAOS_INSTANCE", 1) != 0;
    let summary = match run(&settings) {
        Ok(summary) => summary,
        Err(error) => {
            eprintln!("chaos: {error}");
            return ExitCode::from(2);
        }
    };
    println!(
        "chaos seed {}: {} round(s) in {:.0} s, {} violation(s)",
        settings.seed,
        summary.rounds,
        summary.seconds,
        summary.violations.len()
    );
    let landed: Vec<String> = summary
        .landed
        .iter()
        .map(|(kind, count)| format!("{kind} {count}"))
        .collect();
    println!(
        "faults landed: {} ({} drawn after midfleet had ended)",
        landed.join(", "),
        summary.not_reached
    );
    let results: Vec<String> = summary
        .results
        .iter()
        .map(|(result, count)| format!("{result} {count}"))
        .collect();
    println!(
        "hosts' results in the chaos applies: {}",
        results.join(", ")
    );
    if summary.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
