//! Faults at a precise step of the transaction (the fault matrix of
//! docs/reliability.md). A failpoint (`LabHost::set_failpoint`) pauses a
//! host's transaction between two steps, so that a cut connection, a
//! signal to midfleet, a full disk or a read-only file system lands exactly
//! there. After each: config.xml whole and old or new byte for byte, the
//! MID running (or reported as not), and the next run converges.

use std::time::Duration;

use midfleet::config_xml::ConfigXml;
use midfleet_lab::{Lab, LabSpec};

use crate::faults::{
    assert_whole_and_running, converges, lab_arguments, results, run_on_lab, setup, setup_lab,
    spawn, wait_until, PASSWORD,
};
use crate::lab::midsim;

/// The points a transaction can be paused at, in order.
const POINTS: [&str; 4] = ["backup", "write", "rename", "start"];

/// The instance user config.xml names.
fn username(config: &[u8]) -> String {
    ConfigXml::parse(config)
        .unwrap()
        .get("mid.instance.username")
        .unwrap()
        .value()
        .to_string()
}

/// Hosts 1–4 paused `seconds` at each point in turn; host 5 (when there is
/// one) has a slow start, so that its pause is the health wait.
fn pause_at_each_step(lab: &Lab, seconds: u32) {
    for (host, point) in lab.hosts.iter().zip(POINTS) {
        host.set_failpoint(point, Some(seconds)).unwrap();
    }
    if let Some(host) = lab.hosts.get(POINTS.len()) {
        host.set_knob("start_delay_ms", &(seconds * 1000).to_string())
            .unwrap();
    }
}

/// The last progress line of the host's newest run.
fn last_progress_line(host: &midfleet_lab::LabHost) -> String {
    let newest = std::fs::read_dir(host.local_mid_home.join(".midfleet/runs"))
        .unwrap()
        .flatten()
        .max_by_key(|run| run.file_name())
        .unwrap();
    std::fs::read_to_string(newest.path().join("progress"))
        .unwrap_or_default()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

/// The cut landed while the host was still paused where it should be.
fn assert_still_paused(host: &midfleet_lab::LabHost, index: usize) {
    let last = last_progress_line(host);
    match POINTS.get(index) {
        Some(point) => assert!(
            last.ends_with(&format!("failpoint {point}")),
            "{}: the fault landed after the pause: {last}",
            host.name
        ),
        None => assert!(
            last.ends_with(" start"),
            "{}: the fault landed after the health wait: {last}",
            host.name
        ),
    }
}

fn clear_pauses(lab: &Lab) {
    for (host, point) in lab.hosts.iter().zip(POINTS) {
        host.set_failpoint(point, None).unwrap();
    }
    if let Some(host) = lab.hosts.get(POINTS.len()) {
        host.set_knob("start_delay_ms", "100").unwrap();
    }
}

/// What each host's transaction is seen doing when it has reached its
/// pause.
fn pause_needle(index: usize) -> String {
    match POINTS.get(index) {
        Some(point) => format!("failpoint {point}"),
        None => " start".to_string(),
    }
}

/// Waits until every host's newest transaction has reached its pause.
fn wait_for_pauses(lab: &Lab, earlier: &[usize]) {
    for (index, host) in lab.hosts.iter().enumerate() {
        let needle = pause_needle(index);
        wait_until(
            &format!("{} to reach `{needle}`", host.name),
            Duration::from_secs(60),
            || host.runs_whose_progress_contains(&needle) > earlier[index],
        );
    }
}

/// For `wait_for_pauses`: how many runs already reached each host's pause.
fn paused_runs(lab: &Lab) -> Vec<usize> {
    (lab.hosts.iter().enumerate())
        .map(|(index, host)| host.runs_whose_progress_contains(&pause_needle(index)))
        .collect()
}

/// `apply --output json` of `playbook` on the lab.
fn apply_arguments(lab: &Lab, playbook: &std::path::Path) -> Vec<String> {
    lab_arguments(lab, "apply", playbook, &["--output", "json"])
}

/// Applies `playbook` with each host's transaction paused at its step
/// (`pause_at_each_step`) and `fault(index, host)` landed on each once it
/// is there; every host must end `applied` as its new user. `after` sees
/// the lab once the apply ended; then the files are whole, the MIDs run,
/// and the next run converges.
fn each_step_faulted(
    lab: &Lab,
    playbook: &std::path::Path,
    fault: impl Fn(usize, &midfleet_lab::LabHost),
    after: impl FnOnce(&Lab),
) {
    pause_at_each_step(lab, 10);
    let child = spawn(&apply_arguments(lab, playbook));
    for (index, host) in lab.hosts.iter().enumerate() {
        let needle = pause_needle(index);
        wait_until(
            &format!("{} to reach `{needle}`", host.name),
            Duration::from_secs(60),
            || host.run_progress_contains(&needle),
        );
        fault(index, host);
        assert_still_paused(host, index);
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        results(&stdout),
        ["applied"; 5],
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    after(lab);
    for host in &lab.hosts {
        assert_eq!(
            username(&host.config()),
            format!("svc_{}", host.name.replace('-', "")),
            "{}",
            host.name
        );
    }
    clear_pauses(lab);
    assert_whole_and_running(lab);
    converges(lab, playbook);
}

#[test]
fn a_connection_cut_at_each_step_is_followed_to_the_end() {
    let (lab, playbook) = setup(5);
    each_step_faulted(
        &lab,
        &playbook,
        |_, host| {
            assert!(
                host.cut_connections() > 0,
                "{}: no connection to cut",
                host.name
            );
        },
        |_| {},
    );
}

/// The same over a wide-area link (80 ms round trip, jitter, 2 % loss:
/// the lab's relay, `midfleet_lab::link`): each host's link is cut (its
/// live connections reset) while its transaction is paused at a step, and
/// the last host's link is down for 3 s of its health wait. Every
/// transaction is followed to its end through a new connection, and the
/// next run converges. The link counted each host's round trips.
#[test]
fn a_link_cut_or_down_at_each_step_of_a_slow_link_is_followed_to_the_end() {
    let mut spec = LabSpec::new(5, &midsim());
    spec.link = Some(midfleet_lab::link::LinkSettings {
        rtt: Duration::from_millis(80),
        jitter: Duration::from_millis(10),
        loss: 0.02,
        ..Default::default()
    });
    let (lab, playbook) = setup_lab(spec);
    lab.reset_link_stats().unwrap();
    each_step_faulted(
        &lab,
        &playbook,
        |index, host| {
            if index < POINTS.len() {
                lab.cut_link(&host.name).unwrap();
            } else {
                let mut down = lab.link(&host.name).unwrap();
                down.down = true;
                lab.set_link(&host.name, down).unwrap();
                std::thread::sleep(Duration::from_secs(3));
                down.down = false;
                lab.set_link(&host.name, down).unwrap();
            }
        },
        |lab| {
            let stats = lab.reset_link_stats().unwrap();
            for host in &lab.hosts[..POINTS.len()] {
                let link = stats[&host.name];
                assert!(
                    link.resets >= 1 && link.connections >= 2,
                    "{}: the cut did not land or was not followed: {link:?}",
                    host.name
                );
            }
        },
    );
}

/// SIGINT and SIGTERM: no new host starts, the running transactions are
/// followed to their end and reported. SIGKILL: midfleet is gone, each
/// transaction ends by itself. Each signal lands while hosts 1–4 are
/// paused at the four points and host 5 waits for its MID's login.
#[test]
fn midfleet_killed_at_each_step_leaves_every_transaction_to_finish() {
    let (lab, _) = setup(5);
    for (round, signal) in [libc::SIGINT, libc::SIGTERM, libc::SIGKILL]
        .into_iter()
        .enumerate()
    {
        for host in &lab.hosts {
            lab.add_instance_user(
                &format!("r{round}_{}", host.name.replace('-', "")),
                PASSWORD,
            )
            .unwrap();
        }
        let playbook = lab.directory.join(format!("round{round}.yml"));
        std::fs::write(
            &playbook,
            format!(
                "hosts: lab\nset:\n  mid.instance.username: \"r{round}_{{{{ mid_name }}}}\"\n  mid.instance.password: {{ secret: \"env:FAULT_PASSWORD\" }}\nhealth:\n  timeout: 20\nrollout:\n  serial: [100%]\n  max_fail: 100%\n"
            ),
        )
        .unwrap();
        pause_at_each_step(&lab, 10);
        let earlier = paused_runs(&lab);
        let child = spawn(&apply_arguments(&lab, &playbook));
        wait_for_pauses(&lab, &earlier);
        // SAFETY: a signal to the child this test spawned.
        unsafe {
            libc::kill(child.id() as i32, signal);
        }
        for (index, host) in lab.hosts.iter().enumerate() {
            assert_still_paused(host, index);
        }
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        if signal == libc::SIGKILL {
            assert_eq!(output.status.code(), None, "killed");
            // Each transaction ends on its host: its lock goes.
            for host in &lab.hosts {
                wait_until(
                    &format!("{}'s transaction to end", host.name),
                    Duration::from_secs(60),
                    || !host.local_mid_home.join(".midfleet/lock").exists(),
                );
            }
        } else {
            assert_eq!(
                output.status.code(),
                Some(1),
                "signal {signal}: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(
                results(&stdout),
                ["applied"; 5],
                "signal {signal}: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            assert_eq!(report["interrupted"], true);
        }
        for host in &lab.hosts {
            assert_eq!(
                username(&host.config()),
                format!("r{round}_{}", host.name.replace('-', "")),
                "signal {signal}: {}",
                host.name
            );
            assert!(host.mid("status").unwrap(), "{} runs", host.name);
        }
        clear_pauses(&lab);
        // The next run converges: nothing left to do.
        let plan = run_on_lab(&lab, "plan", &playbook, &["--detailed-exitcode"]);
        assert_eq!(
            plan.code, 0,
            "signal {signal}: {}{}",
            plan.stdout, plan.stderr
        );
    }
}

/// A disk that fills up while the MID is stopped: once before the backup,
/// once between the backup and the temp file. config.xml is padded to
/// 300 KiB so that what is left (64 KiB: enough for the MID's logs) holds
/// neither.
#[test]
fn a_disk_full_at_the_backup_or_the_temp_file_changes_nothing() {
    let mut spec = LabSpec::new(1, &midsim());
    spec.small_disk_kib = Some(4096);
    let (lab, playbook) = setup_lab(spec);
    let host = lab.host("lab-001");
    let mut bytes = host.config();
    let padding = format!("<!-- {} -->\n", "p".repeat(300 * 1024));
    let at = bytes.len() - "</parameters>\n".len();
    bytes.splice(at..at, padding.into_bytes());
    std::fs::write(host.config_path(), &bytes).unwrap();
    let backups = || {
        std::fs::read_dir(host.local_mid_home.join(".midfleet/backups"))
            .map(|entries| entries.count())
            .unwrap_or(0)
    };
    let temp_files = || {
        std::fs::read_dir(host.agent())
            .unwrap()
            .flatten()
            .filter(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".config.xml.midfleet.")
            })
            .count()
    };
    for (point, reason, new_backups) in [("backup", "backup-disk", 0), ("write", "disk", 1)] {
        let backups_before = backups();
        host.set_failpoint(point, Some(4)).unwrap();
        let child = spawn(&apply_arguments(&lab, &playbook));
        wait_until(
            &format!("the pause at {point}"),
            Duration::from_secs(60),
            || host.run_progress_contains(&format!("failpoint {point}")),
        );
        let filler = host.fill_disk(64).unwrap();
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{stdout}");
        assert_eq!(results(&stdout), ["error"], "{point}: {stdout}");
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let message = report["results"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "{point}: {message}");
        if point == "write" {
            assert!(!message.contains("backup"), "{point}: {message}");
        }
        // What failed was removed: the partial backup, the temp file.
        assert_eq!(backups() - backups_before, new_backups, "{point}: backups");
        assert_eq!(temp_files(), 0, "{point}: a temp file was left");
        assert_eq!(host.config(), bytes, "{point}: config.xml untouched");
        assert!(host.mid("status").unwrap(), "{point}: the MID runs again");
        std::fs::remove_file(filler).unwrap();
        host.set_failpoint(point, None).unwrap();
    }
    converges(&lab, &playbook);
}

/// A read-only file system (mid_home bind-mounted read-only in the host's
/// own mount namespace): refused at plan and apply before the MID is
/// stopped; once writable again, the rerun converges.
#[test]
fn a_read_only_file_system_is_refused_before_anything_stops() {
    let (lab, playbook) = setup(2);
    if !lab.mount_namespaces {
        eprintln!("skipped: needs mount namespaces (root)");
        return;
    }
    let host = lab.host("lab-001");
    let before = host.config();
    host.in_mount_namespace("mount", &["--bind", "/opt/servicenow", "/opt/servicenow"])
        .unwrap();
    host.in_mount_namespace(
        "mount",
        &[
            "-o",
            "remount,bind,ro",
            "/opt/servicenow",
            "/opt/servicenow",
        ],
    )
    .unwrap();
    let plan = run_on_lab(&lab, "plan", &playbook, &[]);
    assert_eq!(plan.code, 1, "{}{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains("lab-001  error:")
            && plan
                .stdout
                .contains("is not writable as uid 0 (a read-only file system?)"),
        "{}",
        plan.stdout
    );
    let applied = run_on_lab(&lab, "apply", &playbook, &["--output", "json"]);
    assert_eq!(
        results(&applied.stdout),
        ["error", "applied"],
        "{}",
        applied.stdout
    );
    assert_eq!(host.config(), before, "config.xml untouched");
    assert!(host.mid("status").unwrap(), "the MID was never stopped");
    let log = host.agent_log();
    assert!(!log.contains("MID Server stopping"), "{log}");
    host.in_mount_namespace("umount", &["/opt/servicenow"])
        .unwrap();
    converges(&lab, &playbook);
}
