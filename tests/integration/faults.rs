//! Faults between plan and apply, and concurrent runs (the fault matrix of
//! docs/reliability.md). After each: no host with a broken config, and a
//! rerun converges.

use std::time::Duration;

use midfleet::config_xml::ConfigXml;
use midfleet_lab::{Lab, LabSpec};

use crate::lab::{lab, midsim, sshd_log_count};
use crate::support::midfleet;

pub(crate) const PASSWORD: &str = "Fault-Matrix-pw1";

pub(crate) fn setup(hosts: usize) -> (Lab, std::path::PathBuf) {
    setup_lab(LabSpec::new(hosts, &midsim()))
}

/// A lab whose hosts' new users log in with `PASSWORD`, and the rotation
/// playbook (one batch, every failure tolerated).
pub(crate) fn setup_lab(spec: LabSpec) -> (Lab, std::path::PathBuf) {
    let lab = lab(spec);
    for host in &lab.hosts {
        lab.add_instance_user(&format!("svc_{}", host.name.replace('-', "")), PASSWORD)
            .unwrap();
    }
    let playbook = lab.directory.join("rotate.yml");
    std::fs::write(
        &playbook,
        "hosts: lab\nset:\n  mid.instance.username: \"svc_{{ mid_name }}\"\n  mid.instance.password: { secret: \"env:FAULT_PASSWORD\" }\nhealth:\n  timeout: 20\nrollout:\n  serial: [100%]\n  max_fail: 100%\n",
    )
    .unwrap();
    (lab, playbook)
}

pub(crate) fn command(lab: &Lab, verb: &str, extra: &[&str]) -> Vec<String> {
    let mut arguments = vec![
        verb.to_string(),
        "--known-hosts".into(),
        lab.known_hosts.display().to_string(),
    ];
    if verb == "apply" {
        arguments.extend([
            "--yes".into(),
            "--audit-log".into(),
            lab.directory.join("audit.jsonl").display().to_string(),
        ]);
    }
    arguments.extend(extra.iter().map(|argument| argument.to_string()));
    arguments
}

/// `VERB -i <the lab's inventory> PLAYBOOK EXTRA…`, as [`command`] makes it.
pub(crate) fn lab_arguments(
    lab: &Lab,
    verb: &str,
    playbook: &std::path::Path,
    extra: &[&str],
) -> Vec<String> {
    let inventory = lab.inventory.display().to_string();
    let playbook = playbook.display().to_string();
    let mut arguments = vec!["-i", inventory.as_str(), playbook.as_str()];
    arguments.extend_from_slice(extra);
    command(lab, verb, &arguments)
}

/// Runs [`lab_arguments`] with the new users' password in the environment.
pub(crate) fn run_on_lab(
    lab: &Lab,
    verb: &str,
    playbook: &std::path::Path,
    extra: &[&str],
) -> crate::support::Run {
    midfleet(
        lab_arguments(lab, verb, playbook, extra),
        &[("FAULT_PASSWORD", PASSWORD)],
    )
}

pub(crate) fn results(stdout: &str) -> Vec<String> {
    let report: serde_json::Value =
        serde_json::from_str(stdout).unwrap_or_else(|error| panic!("{error}: {stdout}"));
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| result["result"].as_str().unwrap().to_string())
        .collect()
}

pub(crate) fn assert_whole_and_running(lab: &Lab) {
    for host in &lab.hosts {
        ConfigXml::parse(&host.config()).unwrap_or_else(|error| panic!("{}: {error}", host.name));
        assert!(host.mid("status").unwrap(), "{} runs", host.name);
    }
}

pub(crate) fn converges(lab: &Lab, playbook: &std::path::Path) {
    let again = run_on_lab(lab, "apply", playbook, &[]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    let plan = run_on_lab(lab, "plan", playbook, &["--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
}

/// midfleet started in the background (stdout piped, for `results`).
pub(crate) fn spawn(arguments: &[String]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_midfleet"))
        .args(arguments)
        .env("FAULT_PASSWORD", PASSWORD)
        .env("HOME", crate::support::empty_home())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Polls `condition` every 10 ms; panics naming `what` after `timeout`.
pub(crate) fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn two_runs_at_once_never_both_change_a_host() {
    let (lab, playbook) = setup(6);
    for host in &lab.hosts {
        host.set_knob("start_delay_ms", "1500").unwrap();
    }
    let arguments = lab_arguments(&lab, "apply", &playbook, &["--output", "json"]);
    let first = spawn(&arguments);
    std::thread::sleep(Duration::from_millis(300));
    let second = spawn(&arguments);
    let first = first.wait_with_output().unwrap();
    let second = second.wait_with_output().unwrap();
    let first = results(&String::from_utf8_lossy(&first.stdout));
    let second = results(&String::from_utf8_lossy(&second.stdout));
    for (index, (one, other)) in first.iter().zip(&second).enumerate() {
        let applied = [one, other]
            .iter()
            .filter(|result| result.as_str() == "applied")
            .count();
        assert_eq!(
            applied, 1,
            "host {index} applied by exactly one run: {one} / {other}"
        );
        // The other run saw the host held (`locked`), changed since its
        // plan (`stale`), or — when it planned after the first had applied
        // — already as desired (`unchanged`).
        let allowed = ["applied", "locked", "stale", "unchanged"];
        assert!(
            allowed.contains(&one.as_str()) && allowed.contains(&other.as_str()),
            "host {index}: {one} / {other}"
        );
    }
    for host in &lab.hosts {
        host.set_knob("start_delay_ms", "100").unwrap();
    }
    assert_whole_and_running(&lab);
    converges(&lab, &playbook);
}

#[test]
fn a_host_key_changed_between_plan_and_apply_is_refused() {
    let (mut lab, playbook) = setup(3);
    let saved = lab.directory.join("rotate.plan");
    let plan = run_on_lab(&lab, "plan", &playbook, &["--out", saved.to_str().unwrap()]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let before = lab.host("lab-002").config();
    lab.change_host_key("lab-002").unwrap();
    let applied = midfleet(
        command(
            &lab,
            "apply",
            &["--plan", saved.to_str().unwrap(), "--output", "json"],
        ),
        &[("FAULT_PASSWORD", PASSWORD)],
    );
    assert_eq!(applied.code, 1);
    assert_eq!(results(&applied.stdout), ["applied", "error", "applied"]);
    assert!(applied.stdout.contains("has CHANGED"), "{}", applied.stdout);
    assert_eq!(
        lab.host("lab-002").config(),
        before,
        "the refused host is untouched"
    );
    assert_whole_and_running(&lab);
}

#[test]
fn a_symlinked_or_huge_config_is_refused_and_left_alone() {
    let (lab, playbook) = setup(3);
    let linked = lab.host("lab-001");
    let real = linked.agent().join("config.real.xml");
    std::fs::rename(linked.config_path(), &real).unwrap();
    std::os::unix::fs::symlink(&real, linked.config_path()).unwrap();
    let huge = lab.host("lab-002");
    let mut bytes = huge.config();
    let padding = format!("<!-- {} -->\n", "x".repeat(5 * 1024 * 1024));
    let at = bytes.len() - "</parameters>\n".len();
    bytes.splice(at..at, padding.into_bytes());
    std::fs::write(huge.config_path(), &bytes).unwrap();
    let plan = run_on_lab(&lab, "plan", &playbook, &[]);
    assert_eq!(plan.code, 1, "{}{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains("lab-001  error:") && plan.stdout.contains("symlink"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("lab-002  error:") && plan.stdout.contains("more than the"),
        "{}",
        plan.stdout
    );
    let applied = run_on_lab(&lab, "apply", &playbook, &["--output", "json"]);
    assert_eq!(results(&applied.stdout), ["error", "error", "applied"]);
    assert!(std::fs::symlink_metadata(linked.config_path())
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(huge.config(), bytes, "the huge file is untouched");
}

#[test]
fn a_full_disk_changes_nothing_and_a_rerun_converges() {
    let mut spec = LabSpec::new(2, &midsim());
    spec.small_disk_kib = Some(2048);
    let (lab, playbook) = setup_lab(spec);
    let full = lab.host("lab-001");
    let before = full.config();
    // Fill lab-001's filesystem to its last byte.
    let filler = full.fill_disk(0).unwrap();
    let applied = run_on_lab(&lab, "apply", &playbook, &["--output", "json"]);
    let outcome = results(&applied.stdout);
    assert_eq!(outcome[1], "applied", "{}", applied.stdout);
    assert_eq!(outcome[0], "error", "{}", applied.stdout);
    assert_eq!(
        full.config(),
        before,
        "the full host's config.xml is untouched"
    );
    assert!(full.mid("status").unwrap(), "the full host's MID runs");
    std::fs::remove_file(&filler).unwrap();
    converges(&lab, &playbook);
}

#[test]
fn ctrl_c_starts_no_new_host_and_lets_the_running_one_finish() {
    interrupt_starts_no_new_host(libc::SIGINT);
}

/// SIGTERM (a service manager, `timeout`, a cancelled CI job) is Ctrl-C.
#[test]
fn sigterm_starts_no_new_host_and_lets_the_running_one_finish() {
    interrupt_starts_no_new_host(libc::SIGTERM);
}

fn interrupt_starts_no_new_host(signal: libc::c_int) {
    let (lab, playbook) = setup(4);
    for host in &lab.hosts {
        host.set_knob("start_delay_ms", "1500").unwrap();
    }
    let arguments = lab_arguments(
        &lab,
        "apply",
        &playbook,
        &["--output", "json", "--forks", "1"],
    );
    let child = spawn(&arguments);
    // The signal once the first host's transaction is under way.
    let first = lab.host("lab-001");
    wait_until(
        "the first transaction's start",
        Duration::from_secs(60),
        || first.run_progress_contains(" start"),
    );
    // SAFETY: a signal to the child we spawned.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1), "signal {signal}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        results(&stdout),
        ["applied", "skipped", "skipped", "skipped"],
        "{stdout}"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["interrupted"], true);
    for host in &lab.hosts {
        host.set_knob("start_delay_ms", "100").unwrap();
    }
    assert_whole_and_running(&lab);
    converges(&lab, &playbook);
}

/// A login that can read config.xml but not write its folders, without
/// `become`: refused at plan and apply before the MID is stopped, with the
/// hint; with `become`, the rerun converges.
#[test]
fn a_folder_not_writable_without_become_is_refused_with_a_hint() {
    let mut spec = LabSpec::new(1, &midsim());
    spec.users = true;
    let (lab, playbook) = setup_lab(spec);
    let host = lab.host("lab-001");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(host.config_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = host.config();
    let inventory = lab.directory.join("no-become.yml");
    std::fs::write(
        &inventory,
        lab.inventory_text(midfleet_lab::SUDO_USER, false),
    )
    .unwrap();
    let inventory = inventory.display().to_string();
    for verb in ["plan", "apply"] {
        let run = midfleet(
            command(&lab, verb, &["-i", &inventory, playbook.to_str().unwrap()]),
            &[("FAULT_PASSWORD", PASSWORD)],
        );
        assert_eq!(run.code, 1, "{verb}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains("is not writable as uid")
                && run.stdout.contains("set `become: yes`?"),
            "{verb}: {}",
            run.stdout
        );
    }
    assert_eq!(host.config(), before, "config.xml untouched");
    assert!(host.mid("status").unwrap(), "the MID was never stopped");
    assert!(!host.agent_log().contains("MID Server stopping"));
    converges(&lab, &playbook);
}

/// The agent log rotated (renamed, a new file begun) or truncated in the
/// middle of the MID's start: the health wait still finds the login.
#[test]
fn logs_rotated_or_truncated_during_the_health_wait_are_still_read() {
    let (lab, playbook) = setup(2);
    lab.host("lab-001")
        .set_knob("logs_at_start", "rotate")
        .unwrap();
    lab.host("lab-002")
        .set_knob("logs_at_start", "truncate")
        .unwrap();
    let applied = run_on_lab(&lab, "apply", &playbook, &["--output", "json"]);
    assert_eq!(
        results(&applied.stdout),
        ["applied", "applied"],
        "{}{}",
        applied.stdout,
        applied.stderr
    );
    let rotated = lab.host("lab-001").agent().join("logs/agent0.log.1");
    assert!(rotated.exists(), "the log was rotated");
    assert!(
        !lab.host("lab-002")
            .agent_log()
            .contains("MID Server stopping"),
        "the log was truncated after the stop"
    );
    assert_whole_and_running(&lab);
    converges(&lab, &playbook);
}

/// A new instance user means a new key pair, which cannot decrypt what the
/// old one encrypted: an `encrypted:` value the playbook does not set is
/// refused at plan (it would be lost); the password the playbook sets is
/// written again even when the MID had encrypted exactly that value.
#[test]
fn a_key_pair_reset_rewrites_encrypted_values_or_refuses_to_orphan_them() {
    let (lab, playbook) = setup(1);
    let host = lab.host("lab-001");
    let apply =
        |playbook: &std::path::Path| run_on_lab(&lab, "apply", playbook, &["--output", "json"]);
    let first = apply(&playbook);
    assert_eq!(results(&first.stdout), ["applied"], "{}", first.stdout);
    // The same password, another user: the password is written again.
    lab.add_instance_user("svc_other", PASSWORD).unwrap();
    let other = lab.directory.join("other.yml");
    std::fs::write(
        &other,
        std::fs::read_to_string(&playbook)
            .unwrap()
            .replace("svc_{{ mid_name }}", "svc_other"),
    )
    .unwrap();
    let plan = run_on_lab(&lab, "plan", &other, &[]);
    assert!(
        plan.stdout.contains("the key pair is reset: written again"),
        "{}",
        plan.stdout
    );
    let second = apply(&other);
    assert_eq!(results(&second.stdout), ["applied"], "{}", second.stdout);
    // An encrypted value no playbook sets: refused, the file untouched.
    let mut bytes = host.config();
    let line = "  <parameter name=\"mid.proxy.password\" secure=\"true\" value=\"encrypted:QUJDREVGR0g=\"/>\n";
    let at = bytes.len() - "</parameters>\n".len();
    bytes.splice(at..at, line.bytes());
    std::fs::write(host.config_path(), &bytes).unwrap();
    let refused = apply(&playbook);
    assert_eq!(results(&refused.stdout), ["error"], "{}", refused.stdout);
    assert!(
        refused.stdout.contains("`mid.proxy.password`"),
        "{}",
        refused.stdout
    );
    assert_eq!(host.config(), bytes, "config.xml untouched");
    assert!(host.mid("status").unwrap());
    // Unsetting it instead is fine: nothing is left that the new key
    // cannot read.
    let unsetting = lab.directory.join("unsetting.yml");
    std::fs::write(
        &unsetting,
        std::fs::read_to_string(&playbook)
            .unwrap()
            .replace("health:", "unset: [mid.proxy.password]\nhealth:"),
    )
    .unwrap();
    let plan = run_on_lab(&lab, "plan", &unsetting, &[]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains("- mid.proxy.password"),
        "{}",
        plan.stdout
    );
}

/// `--timings` on plan and apply: where each host's time went, session by
/// session. A plan reads each host in one session and one exec; an apply
/// adds one session of two execs (the read that checks the file is still
/// the planned one, and the staging exec that follows the transaction).
/// `--timings` rows: HOST SESSIONS CHANNELS CONNECT HANDSHAKE AUTH EXECS.
fn timing_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|line| line.starts_with("lab-00"))
        .map(|line| line.split_whitespace().map(str::to_string).collect())
        .filter(|fields: &Vec<String>| fields.len() == 7)
        .collect()
}

/// Each row has `sessions` sessions, `channels` exec channels and
/// `scripts` script runs, and only numbers where times are.
fn assert_rows(rows: &[Vec<String>], sessions: usize, channels: usize, scripts: usize) {
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in rows {
        assert_eq!(row[1], sessions.to_string(), "sessions: {row:?}");
        assert_eq!(row[2], channels.to_string(), "exec channels: {row:?}");
        assert_eq!(row[6].split('+').count(), scripts, "script runs: {row:?}");
        for number in &row[3..] {
            number
                .split('+')
                .for_each(|part| assert!(part.parse::<f64>().unwrap() >= 0.0, "{row:?}"));
        }
    }
}

#[test]
fn timings_show_each_hosts_sessions_and_execs() {
    let (lab, playbook) = setup(2);
    let count = |needle: &str| -> Vec<usize> {
        ["lab-001", "lab-002"]
            .iter()
            .map(|host| sshd_log_count(&lab, host, needle))
            .collect()
    };
    // A saved plan: one session and one exec per host.
    let saved = lab.directory.join("rotate.plan");
    let plan = run_on_lab(
        &lab,
        "plan",
        &playbook,
        &["--timings", "--out", saved.to_str().unwrap()],
    );
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert_rows(&timing_rows(&plan.stderr), 1, 1, 1);
    assert_eq!(count("Accepted publickey"), [1, 1]);
    assert_eq!(count("Starting session: command"), [1, 1]);
    // Applying it: a session of its own per host, whose one shell reads
    // config.xml again and then stages the run.
    let applied = midfleet(
        command(
            &lab,
            "apply",
            &["--plan", saved.to_str().unwrap(), "--timings"],
        ),
        &[("FAULT_PASSWORD", PASSWORD)],
    );
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    // The apply's session, whose shell reads again, then stages.
    assert_rows(&timing_rows(&applied.stderr), 1, 1, 2);
    assert_eq!(count("Accepted publickey"), [2, 2]);
    assert_eq!(count("Starting session: command"), [2, 2]);
    // `apply PLAYBOOK --yes`: the plan's read session is the apply's, and
    // its one shell reads, then stages: one session, one channel per host.
    let other = lab.directory.join("threads.yml");
    std::fs::write(
        &other,
        "hosts: lab\nset:\n  mid.threads.max: \"30\"\nhealth:\n  timeout: 20\nrollout:\n  serial: [100%]\n",
    )
    .unwrap();
    let applied = run_on_lab(&lab, "apply", &other, &["--timings", "--output", "json"]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    // The plan's session, continued: its read and the staging.
    assert_rows(&timing_rows(&applied.stderr), 1, 1, 2);
    assert_eq!(count("Accepted publickey"), [3, 3]);
    assert_eq!(count("Starting session: command"), [3, 3]);
    let report: serde_json::Value = serde_json::from_str(&applied.stdout).unwrap();
    for result in report["results"].as_array().unwrap() {
        assert_eq!(result["result"], "applied", "{result}");
        assert_eq!(result["continued_plan_session"], true, "{result}");
        let timings = result["timings"].as_array().unwrap();
        assert_eq!(timings.len(), 1, "{result}");
        assert_eq!(timings[0]["channels"], 1, "{result}");
    }
}

/// `apply --yes` of the rotation with a canary first, lab-001, paused
/// before its start while lab-002's read session waits, kept, for its
/// turn; `meanwhile` runs during the pause.
fn apply_while_the_canary_pauses(lab: &Lab, meanwhile: impl FnOnce()) -> crate::support::Run {
    let playbook = lab.directory.join("canary.yml");
    std::fs::write(
        &playbook,
        "hosts: lab\nset:\n  mid.instance.username: \"svc_{{ mid_name }}\"\n  mid.instance.password: { secret: \"env:FAULT_PASSWORD\" }\nhealth:\n  timeout: 20\nrollout:\n  serial: [1, 100%]\n",
    )
    .unwrap();
    let canary = lab.host("lab-001");
    canary.set_failpoint("start", Some(4)).unwrap();
    let arguments = lab_arguments(lab, "apply", &playbook, &["--timings", "--output", "json"]);
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            sender
                .send(midfleet(arguments, &[("FAULT_PASSWORD", PASSWORD)]))
                .unwrap()
        });
        wait_until("the canary's pause", Duration::from_secs(30), || {
            canary.run_progress_contains("failpoint start")
        });
        meanwhile();
    });
    canary.set_failpoint("start", None).unwrap();
    receiver.recv().unwrap()
}

#[test]
fn a_kept_session_cut_before_its_turn_is_replaced_by_a_new_one() {
    let (lab, _) = setup(2);
    // Cut as a NAT or a restarted sshd would.
    let applied = apply_while_the_canary_pauses(&lab, || {
        assert!(
            lab.host("lab-002").cut_connections() > 0,
            "lab-002's kept session was open"
        );
    });
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    assert_eq!(results(&applied.stdout), ["applied", "applied"]);
    let report: serde_json::Value = serde_json::from_str(&applied.stdout).unwrap();
    let results = report["results"].as_array().unwrap();
    assert_eq!(results[0]["continued_plan_session"], true);
    assert!(
        results[1].get("continued_plan_session").is_none(),
        "{}",
        results[1]
    );
    // lab-002: the plan's session (cut), then a new one that read again.
    let rows = timing_rows(&applied.stderr);
    assert_eq!(rows[1][0], "lab-002");
    assert_eq!(rows[1][1], "2", "{:?}", rows[1]);
    assert_eq!(rows[1][6].split('+').count(), 3, "{:?}", rows[1]);
    assert_eq!(sshd_log_count(&lab, "lab-002", "Accepted publickey"), 2);
    assert_whole_and_running(&lab);
}

#[test]
fn a_config_changed_while_its_kept_session_waits_is_stale_and_the_mid_untouched() {
    let (lab, _) = setup(2);
    let waiting = lab.host("lab-002");
    let starts = waiting.agent_log().matches("MID Server started").count();
    let mut changed = waiting.config();
    changed.extend_from_slice(b"<!-- edited by hand -->\n");
    let applied = apply_while_the_canary_pauses(&lab, || {
        std::fs::write(waiting.config_path(), &changed).unwrap()
    });
    assert_eq!(applied.code, 1, "{}", applied.stderr);
    assert_eq!(results(&applied.stdout), ["applied", "stale"]);
    let report: serde_json::Value = serde_json::from_str(&applied.stdout).unwrap();
    let stale = &report["results"][1];
    assert_eq!(stale["continued_plan_session"], true, "{stale}");
    assert!(
        stale["message"]
            .as_str()
            .unwrap_or_default()
            .contains("changed since the plan"),
        "{stale}"
    );
    assert_eq!(waiting.config(), changed, "left as it is");
    assert_eq!(
        waiting.agent_log().matches("MID Server started").count(),
        starts,
        "the MID was not restarted"
    );
    assert_whole_and_running(&lab);
}
