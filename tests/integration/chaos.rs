//! The seeded chaos run, short (`midfleet_lab::chaos`; the long one is
//! `cargo bench --bench chaos`): three rounds of seed 1 on five hosts
//! behind the lab's link, the MIDs logging in to an emulated instance that
//! midfleet creates their users on, faults landed while `midfleet apply`
//! runs, every invariant checked after each round.

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

/// Seed 1's round 4 on 20 hosts, alone, as its replay command runs it: the
/// round that found the full disk below.
#[test]
fn seed_1_round_4_replays_with_no_violation() {
    let mut settings = Settings::new(
        std::path::Path::new(env!("CARGO_BIN_EXE_midfleet")),
        &midsim(),
    );
    settings.seed = 1;
    settings.first_round = 4;
    settings.rounds = 4;
    settings.hosts = 20;
    // As it ran then: no instance (whose faults came later).
    settings.instance = false;
    let summary = run(&settings).unwrap_or_else(|error| panic!("the lab: {error}"));
    assert_eq!(summary.rounds, 1, "{summary:?}");
    assert_eq!(summary.landed.get("disk full"), Some(&1), "{summary:?}");
    assert!(summary.violations.is_empty(), "{:?}", summary.violations);
}

/// Found by seed 1, round 4 (20 hosts): lab-001's disk filled to its last
/// byte while its transaction was at the backup or the temp file. The run
/// changed nothing and said `error` ("nothing was changed"), but the MID
/// it had stopped could not start again on the full disk: the host was
/// down with no word of it. Now the transaction waits for the MID's login
/// after starting it again, and a MID that does not come back makes the
/// host `failed`, saying so; config.xml stays byte-identical, and once
/// space is freed the rerun converges.
#[test]
fn a_disk_full_to_the_last_byte_while_the_mid_is_stopped_is_failed_not_error() {
    use crate::faults::{converges, lab_arguments, results, setup_lab, spawn, wait_until};
    use std::time::Duration;
    let mut spec = midfleet_lab::LabSpec::new(1, &midsim());
    spec.small_disk_kib = Some(4096);
    let (lab, playbook) = setup_lab(spec);
    let host = lab.host("lab-001");
    let before = host.config();
    for point in ["backup", "write"] {
        host.set_failpoint(point, Some(3)).unwrap();
        let needle = format!("failpoint {point}");
        let earlier = host.runs_whose_progress_contains(&needle);
        let child = spawn(&lab_arguments(
            &lab,
            "apply",
            &playbook,
            &["--output", "json"],
        ));
        wait_until(&needle, Duration::from_secs(60), || {
            host.runs_whose_progress_contains(&needle) > earlier
        });
        let filler = host.fill_disk(0).unwrap();
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{point}: {stdout}");
        assert_eq!(results(&stdout), ["failed"], "{point}: {stdout}");
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let message = report["results"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("did not start again") && message.contains("disk"),
            "{point}: {message}"
        );
        assert_eq!(host.config(), before, "{point}: config.xml untouched");
        assert!(host.mid_process().is_none(), "{point}: the MID is down");
        std::fs::remove_file(filler).unwrap();
        host.set_failpoint(point, None).unwrap();
        let starts = host.agent_log().matches("MID Server started").count();
        assert!(host.mid("start").unwrap(), "{point}: the MID starts again");
        wait_until("the MID's start", Duration::from_secs(20), || {
            host.agent_log().matches("MID Server started").count() > starts
        });
    }
    converges(&lab, &playbook);
}
