//! `midfleet plan` and `midfleet apply` against the lab: the rotation, its
//! idempotency, rollbacks, the rollout, saved plans, and secrets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use midfleet::config_xml::{names, ConfigXml, Operation};
use midfleet_lab::{Lab, LabHost, LabSpec};

use crate::lab::{lab, midsim};
use crate::support::{midfleet, regex_escape, Run};

const PASSWORD: &str = "N3w-Rotated_pw&<'\"x";

/// The rotation playbook, written into the lab.
fn rotation(lab: &Lab, extra: &str) -> PathBuf {
    let path = lab.directory.join("rotate.yml");
    std::fs::write(
        &path,
        format!(
            "name: rotate\nhosts: lab\nset:\n  mid.instance.username: \"svc_{{{{ mid_name }}}}\"\n  \
             mid.instance.password: {{ secret: \"env:MIDFLEET_TEST_PASSWORD\" }}\nhealth:\n  timeout: 20\n{extra}"
        ),
    )
    .unwrap();
    path
}

fn new_user(host: &LabHost) -> String {
    format!("svc_{}", host.name.replace('-', ""))
}

/// Lets every lab host's new user log in with `PASSWORD`, except `except`.
fn accept_new_users(lab: &Lab, except: &[&str]) {
    for host in &lab.hosts {
        if !except.contains(&host.name.as_str()) {
            lab.add_instance_user(&new_user(host), PASSWORD).unwrap();
        }
    }
}

fn run(lab: &Lab, command: &str, playbook: &Path, extra: &[&str]) -> Run {
    let mut arguments = vec![
        command.to_string(),
        "-i".into(),
        lab.inventory.display().to_string(),
        playbook.display().to_string(),
        "--known-hosts".into(),
        lab.known_hosts.display().to_string(),
        "--forks".into(),
        "8".into(),
    ];
    if command == "apply" {
        arguments.push("--yes".into());
        arguments.push("--audit-log".into());
        arguments.push(lab.directory.join("audit.jsonl").display().to_string());
    }
    arguments.extend(extra.iter().map(|argument| argument.to_string()));
    midfleet(arguments, &[("MIDFLEET_TEST_PASSWORD", PASSWORD)])
}

/// The journals and transaction output of every run on the lab's hosts,
/// for failure messages.
fn journals(lab: &Lab) -> String {
    let mut text = String::new();
    for host in &lab.hosts {
        let log = host.agent_log();
        let tail: Vec<&str> = log.lines().rev().take(12).collect();
        text.push_str(&format!(
            "--- {} agent log (last lines, newest first)\n{}\n",
            host.name,
            tail.join("\n")
        ));
        let wrapper = host.wrapper_log();
        let tail: Vec<&str> = wrapper.lines().rev().take(8).collect();
        text.push_str(&format!(
            "--- {} wrapper log (newest first)\n{}\n",
            host.name,
            tail.join("\n")
        ));
        for folder in ["runs", "backups"] {
            let Ok(entries) = std::fs::read_dir(host.local_mid_home.join(".midfleet").join(folder))
            else {
                continue;
            };
            for entry in entries.flatten() {
                for file in ["journal", "progress", "out"] {
                    if let Ok(content) = std::fs::read_to_string(entry.path().join(file)) {
                        text.push_str(&format!(
                            "--- {} {folder}/{}/{file}\n{content}",
                            host.name,
                            entry.file_name().to_string_lossy()
                        ));
                    }
                }
            }
        }
    }
    text
}

fn started_count(host: &LabHost) -> usize {
    host.agent_log().matches("MID Server started").count()
}

/// config.xml before, for byte comparisons.
fn snapshot(lab: &Lab) -> Vec<(Vec<u8>, Vec<u8>)> {
    lab.hosts
        .iter()
        .map(|host| {
            (
                host.config(),
                std::fs::read(host.agent().join("security/agent_keystore")).unwrap_or_default(),
            )
        })
        .collect()
}

/// When midfleet has reported a host, its transaction is over: the lock is
/// released and no staged copy of the file (with its password) is left —
/// a next run, started at once, finds the host free.
fn assert_settled(lab: &Lab) {
    for host in &lab.hosts {
        let midfleet = host.local_mid_home.join(".midfleet");
        assert!(
            !midfleet.join("lock").exists(),
            "{} is still locked",
            host.name
        );
        for run in std::fs::read_dir(midfleet.join("runs")).unwrap().flatten() {
            for staged in ["new.xml", "original.xml"] {
                assert!(
                    !run.path().join(staged).exists(),
                    "{}: {} is left",
                    host.name,
                    run.path().join(staged).display()
                );
            }
        }
    }
}

#[test]
fn rotating_twenty_hosts_changes_only_what_the_procedure_says() {
    let lab = lab(LabSpec::new(20, &midsim()));
    accept_new_users(&lab, &[]);
    let playbook = rotation(&lab, "rollout:\n  serial: [1, 50%]\n");
    let before = snapshot(&lab);

    let plan = run(&lab, "plan", &playbook, &["--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout
            .contains("Plan: 20 to change, 0 to start, 0 unchanged, 0 errors."),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("mid.instance.password = (sensitive)"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("key pair reset"), "{}", plan.stdout);

    let applied = run(&lab, "apply", &playbook, &[]);
    assert_eq!(
        applied.code,
        0,
        "{}{}{}",
        applied.stdout,
        applied.stderr,
        journals(&lab)
    );
    assert!(applied.stdout.contains("20 applied"), "{}", applied.stdout);
    // After the results, the key pair warning the plan gave per host is one
    // line naming them, and the summary.
    let after_table = applied
        .stdout
        .lines()
        .skip_while(|line| !line.starts_with("HOST "))
        .skip(1)
        .skip_while(|line| line.starts_with("lab-"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d{8}T\d{6}Z-[0-9a-f]{6}", "[RUN]");
    settings.bind(|| insta::assert_snapshot!("rotation_results_warnings", after_table));
    assert_settled(&lab);
    for (host, (original, _)) in lab.hosts.iter().zip(&before) {
        let user = new_user(host);
        let log = host.agent_log();
        assert!(
            log.contains(&format!("Setting basic authentication with user {user}")),
            "{}: {log}",
            host.name
        );
        assert!(host.mid("status").unwrap(), "{} runs", host.name);
        // The file differs from the original only in the two values, the
        // removed keypairs.mid_id line, and what the MID wrote at start.
        let now = ConfigXml::parse(&host.config()).unwrap();
        let encrypted = now.get(names::PASSWORD).unwrap().value().to_string();
        assert!(
            encrypted.starts_with("encrypted:"),
            "{}: {encrypted}",
            host.name
        );
        let new_id = now.get(names::KEY_PAIR_ID).unwrap().value().to_string();
        let old_document = ConfigXml::parse(original).unwrap();
        assert_ne!(
            old_document.get(names::KEY_PAIR_ID).unwrap().value(),
            new_id,
            "a new key pair"
        );
        let expected = old_document
            .edit(&[
                Operation::Set {
                    name: names::USERNAME,
                    value: &user,
                    sensitive: false,
                },
                Operation::Set {
                    name: names::PASSWORD,
                    value: &encrypted,
                    sensitive: true,
                },
                Operation::Unset {
                    name: names::KEY_PAIR_ID,
                },
            ])
            .unwrap()
            .document
            .unwrap()
            .edit(&[Operation::Set {
                name: names::KEY_PAIR_ID,
                value: &new_id,
                sensitive: false,
            }])
            .unwrap()
            .document
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&host.config()),
            String::from_utf8_lossy(expected.bytes()),
            "{}",
            host.name
        );
    }

    // Idempotent although the MID rewrote its file: no change, no restart.
    let plan = run(&lab, "plan", &playbook, &["--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    let starts: Vec<usize> = lab.hosts.iter().map(started_count).collect();
    let again = run(&lab, "apply", &playbook, &[]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert!(
        again.stderr.contains("Nothing to apply."),
        "{}",
        again.stderr
    );
    let after: Vec<usize> = lab.hosts.iter().map(started_count).collect();
    assert_eq!(starts, after, "a second apply restarts no MID");

    // A MID stopped by hand is planned and applied as a start.
    let stopped = &lab.hosts[3];
    assert!(stopped.mid("stop").unwrap());
    let plan = run(&lab, "plan", &playbook, &[]);
    assert!(
        plan.stdout
            .contains("Plan: 0 to change, 1 to start, 19 unchanged"),
        "{}",
        plan.stdout
    );
    let started = run(&lab, "apply", &playbook, &[]);
    assert_eq!(started.code, 0, "{}{}", started.stdout, started.stderr);
    assert!(stopped.mid("status").unwrap());
    assert_eq!(
        run(&lab, "plan", &playbook, &["--detailed-exitcode"]).code,
        0
    );
}

#[test]
fn failures_roll_back_byte_for_byte_and_the_rest_apply() {
    let lab = lab(LabSpec::new(6, &midsim()));
    // lab-002's new credentials are refused by the instance; lab-004's MID
    // dies at start without a log line.
    accept_new_users(&lab, &["lab-002"]);
    lab.host("lab-004")
        .set_knob("die_at_start_if_user", "svc_lab004")
        .unwrap();
    let before = snapshot(&lab);
    let playbook = rotation(&lab, "rollout:\n  serial: [100%]\n  max_fail: 2\n");
    let applied = run(&lab, "apply", &playbook, &["--output", "json"]);
    assert_eq!(applied.code, 1, "{}{}", applied.stdout, applied.stderr);
    let report: serde_json::Value = serde_json::from_str(&applied.stdout).unwrap();
    for result in report["results"].as_array().unwrap() {
        let name = result["host"].as_str().unwrap();
        let expected = if ["lab-002", "lab-004"].contains(&name) {
            "rolled_back"
        } else {
            "applied"
        };
        assert_eq!(result["result"], expected, "{result}");
    }
    let reason = |name: &str| {
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|result| result["host"] == name)
            .unwrap()["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        reason("lab-002").contains("could-not-authenticate"),
        "{}",
        reason("lab-002")
    );
    assert!(
        reason("lab-004").contains("not-running"),
        "{}",
        reason("lab-004")
    );
    for (index, name) in [(1, "lab-002"), (3, "lab-004")] {
        let host = lab.host(name);
        assert_eq!(
            host.config(),
            before[index].0,
            "{name}: config.xml byte-identical"
        );
        assert_eq!(
            std::fs::read(host.agent().join("security/agent_keystore")).unwrap(),
            before[index].1,
            "{name}: keystore byte-identical"
        );
        {
            assert!(host.mid("status").unwrap(), "{name} runs on the old files");
            let log = host.agent_log();
            let last_login = log.rfind("Setting basic authentication with user").unwrap();
            assert!(
                log[last_login..].contains(midfleet_lab::INITIAL_USER),
                "{name}: {}",
                &log[last_login..]
            );
        }
    }
}

#[test]
fn a_failed_canary_cancels_the_rest() {
    let lab = lab(LabSpec::new(5, &midsim()));
    accept_new_users(&lab, &["lab-001"]);
    let before = snapshot(&lab);
    let playbook = rotation(&lab, "rollout:\n  serial: [1, 25%]\n  max_fail: 0\n");
    let applied = run(&lab, "apply", &playbook, &["--output", "json"]);
    assert_eq!(applied.code, 1);
    let report: serde_json::Value = serde_json::from_str(&applied.stdout).unwrap();
    let results = report["results"].as_array().unwrap();
    assert_eq!(results[0]["result"], "rolled_back", "{}", results[0]);
    for (result, (host, (config, _))) in results.iter().zip(lab.hosts.iter().zip(&before)).skip(1) {
        assert_eq!(result["result"], "skipped", "{result}");
        assert_eq!(
            result["message"], "cancelled: 1 failed host exceeds max_fail 0",
            "{result}"
        );
        assert_eq!(&host.config(), config, "{} untouched", host.name);
        // The plain progress line says skipped, not FAILED.
        let line = format!(" apply {}: skipped\n", host.name);
        assert!(applied.stderr.contains(&line), "{}", applied.stderr);
        assert!(
            !applied.stderr.contains(&format!("{}: FAILED", host.name)),
            "{}",
            applied.stderr
        );
    }
    // The apply's plain progress lines: the canary's reason, then the
    // others skipped (not FAILED), under the count's wording.
    let apply_lines: Vec<&str> = applied
        .stderr
        .lines()
        .filter(|line| line.get(8..).is_some_and(|rest| rest.starts_with(" apply")))
        .collect();
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"(?m)^\d\d:\d\d:\d\d ", "[TIME] ");
    settings.add_filter(r"\(\d+\.\d s\)", "([SECONDS] s)");
    // Why the canary failed is `-v`'s and its own tests' to show.
    settings.add_filter(
        r"rolled_back: .* \(\[SECONDS\]",
        "rolled_back: [REASON] ([SECONDS]",
    );
    settings.bind(|| {
        insta::assert_snapshot!(
            "a_failed_canary_cancels_the_rest",
            format!(
                "{}\nmessage of the skipped: {}",
                apply_lines.join("\n"),
                results[1]["message"]
            )
        )
    });
}

#[test]
fn a_saved_plan_refuses_a_host_whose_file_changed() {
    let lab = lab(LabSpec::new(3, &midsim()));
    accept_new_users(&lab, &[]);
    let playbook = rotation(&lab, "rollout:\n  serial: [100%]\n");
    let saved = lab.directory.join("rotate.plan");
    let plan = run(&lab, "plan", &playbook, &["--out", saved.to_str().unwrap()]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&saved).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&saved).unwrap();
    assert!(!text.contains(PASSWORD), "no secret in the plan file");
    // Someone edits lab-002's file after the plan.
    let changed = lab.host("lab-002");
    let edited = String::from_utf8(changed.config())
        .unwrap()
        .replace("value=\"25\"", "value=\"26\"");
    std::fs::write(changed.config_path(), &edited).unwrap();
    let applied = midfleet(
        [
            "apply",
            "--plan",
            saved.to_str().unwrap(),
            "--yes",
            "--known-hosts",
            lab.known_hosts.to_str().unwrap(),
            "--audit-log",
            lab.directory.join("audit.jsonl").to_str().unwrap(),
            "--output",
            "json",
            "--timings",
        ],
        &[("MIDFLEET_TEST_PASSWORD", PASSWORD)],
    );
    assert_eq!(applied.code, 1, "{}{}", applied.stdout, applied.stderr);
    let report: serde_json::Value = serde_json::from_str(&applied.stdout).unwrap();
    let outcome: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| result["result"].as_str().unwrap())
        .collect();
    assert_eq!(outcome, ["applied", "stale", "applied"]);
    // The stale host's session (one read, nothing staged) is in its
    // timings, as the applied hosts' are.
    let stale_timings = report["results"][1]["timings"].as_array().unwrap();
    assert_eq!(stale_timings.len(), 1, "{}", report["results"][1]);
    assert_eq!(stale_timings[0]["channels"], 1, "{}", report["results"][1]);
    assert_eq!(
        stale_timings[0]["execs"].as_array().map(Vec::len),
        Some(1),
        "{}",
        report["results"][1]
    );
    assert_eq!(
        changed.config(),
        edited.as_bytes(),
        "the stale host is untouched"
    );

    // A secret that now resolves differently stops the run before any host.
    let other = midfleet(
        [
            "apply",
            "--plan",
            saved.to_str().unwrap(),
            "--yes",
            "--known-hosts",
            lab.known_hosts.to_str().unwrap(),
        ],
        &[("MIDFLEET_TEST_PASSWORD", "something else")],
    );
    assert_eq!(other.code, 1);
    assert!(
        other.stderr.contains("now resolves to a different value"),
        "{}",
        other.stderr
    );
}

/// Everything a process on this machine shows of itself: argv and environ.
fn process_texts() -> Vec<String> {
    let mut texts = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        for file in ["cmdline", "environ"] {
            if let Ok(bytes) = std::fs::read(entry.path().join(file)) {
                let text = String::from_utf8_lossy(&bytes).replace('\0', " ");
                // Only the matching part is kept (environments are long).
                if let Some(at) = text.find("Zr7-only") {
                    texts.push(format!(
                        "{}: …{}…",
                        entry.path().display(),
                        &text[at.saturating_sub(40)..(at + 20).min(text.len())]
                    ));
                }
            }
        }
    }
    texts
}

#[test]
fn the_password_appears_nowhere_but_where_the_mid_reads_it() {
    let lab = lab(LabSpec::new(3, &midsim()));
    // A password of its own (other tests run midfleet with theirs in the
    // environment), from a file: reference.
    const SECRET: &str = "Zr7-only-in-a-file&<x";
    for host in &lab.hosts {
        lab.add_instance_user(&new_user(host), SECRET).unwrap();
    }
    let secret_file = lab.directory.join("password");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let playbook = lab.directory.join("rotate-file.yml");
    std::fs::write(
        &playbook,
        format!(
            "hosts: lab\nset:\n  mid.instance.username: \"svc_{{{{ mid_name }}}}\"\n  mid.instance.password: {{ secret: \"file:{}\" }}\nrollout:\n  serial: [100%]\n",
            secret_file.display()
        ),
    )
    .unwrap();
    let saved = lab.directory.join("plan.json");
    let plan = run(&lab, "plan", &playbook, &["--out", saved.to_str().unwrap()]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut leaks = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                leaks.extend(
                    process_texts()
                        .into_iter()
                        .filter(|text| text.contains("Zr7-only")),
                );
                std::thread::sleep(Duration::from_millis(2));
            }
            leaks
        })
    };
    let applied = run(&lab, "apply", &playbook, &[]);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let leaks = watcher.join().unwrap();
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(
        leaks.is_empty(),
        "the password was in a process's argv or environment: {leaks:?}"
    );
    let escaped = "Zr7-only-in-a-file&amp;";
    for text in [&plan.stdout, &plan.stderr, &applied.stdout, &applied.stderr] {
        assert!(!text.contains("Zr7-only"), "{text}");
    }
    let mut files = vec![saved, lab.directory.join("audit.jsonl")];
    for host in &lab.hosts {
        let midfleet_directory = host.local_mid_home.join(".midfleet");
        let mut stack = vec![midfleet_directory];
        while let Some(directory) = stack.pop() {
            for entry in std::fs::read_dir(&directory).unwrap().flatten() {
                if entry.path().is_dir() {
                    stack.push(entry.path());
                } else {
                    files.push(entry.path());
                }
            }
        }
    }
    assert!(files.len() > 5, "{files:?}");
    for file in files {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        assert!(
            !text.contains("Zr7-only") && !text.contains(escaped),
            "{} holds the password",
            file.display()
        );
    }
}

/// Waits until every run on the lab's hosts has ended; the result word of
/// each host's run (or `none` when no run was staged there).
fn wait_for_runs(lab: &Lab, timeout: Duration) -> Vec<String> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let mut results = Vec::new();
        let mut pending = false;
        for host in &lab.hosts {
            let runs = host.local_mid_home.join(".midfleet/runs");
            let mut result = "none".to_string();
            for entry in std::fs::read_dir(&runs).into_iter().flatten().flatten() {
                match std::fs::read_to_string(entry.path().join("result")) {
                    Ok(word) => result = word.trim().to_string(),
                    Err(_) => pending = true,
                }
            }
            results.push(result);
        }
        if !pending {
            return results;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "runs did not end: {results:?}\n{}",
            journals(lab)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// After an interrupted apply: every host ended applied, rolled back or
/// untouched; every MID runs; every config.xml is the old or the new one.
fn assert_every_host_whole(lab: &Lab, before: &[(Vec<u8>, Vec<u8>)], results: &[String]) {
    for ((host, (original, _)), result) in lab.hosts.iter().zip(before).zip(results) {
        assert!(
            ["applied", "rolled_back", "none"].contains(&result.as_str()),
            "{}: {result}\n{}",
            host.name,
            journals(lab)
        );
        assert!(host.mid("status").unwrap(), "{} runs", host.name);
        let now = host.config();
        let document =
            ConfigXml::parse(&now).unwrap_or_else(|error| panic!("{}: {error}", host.name));
        let user = document.get(names::USERNAME).unwrap().value().to_string();
        if result == "applied" {
            assert_eq!(user, new_user(host), "{}", host.name);
        } else {
            assert_eq!(
                &now, original,
                "{}: untouched or restored byte for byte",
                host.name
            );
        }
    }
}

#[test]
fn killing_midfleet_mid_apply_leaves_every_transaction_to_finish() {
    let lab = lab(LabSpec::new(20, &midsim()));
    accept_new_users(&lab, &[]);
    for host in &lab.hosts {
        host.set_knob("start_delay_ms", "1500").unwrap();
    }
    let before = snapshot(&lab);
    let playbook = rotation(&lab, "rollout:\n  serial: [100%]\n");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_midfleet"))
        .args(["apply", "-i"])
        .arg(&lab.inventory)
        .arg(&playbook)
        .args(["--known-hosts"])
        .arg(&lab.known_hosts)
        .args(["--yes", "--forks", "20", "--audit-log"])
        .arg(lab.directory.join("audit.jsonl"))
        .env("MIDFLEET_TEST_PASSWORD", PASSWORD)
        .env("HOME", crate::support::empty_home())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some hosts are mid-transaction.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let started = lab
            .hosts
            .iter()
            .filter(|host| host.run_progress_contains(" start"))
            .count();
        if started >= 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no transaction started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: SIGKILL to the child we spawned.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
    let results = wait_for_runs(&lab, Duration::from_secs(120));
    assert!(
        results.iter().any(|result| result == "applied"),
        "{results:?}"
    );
    assert_every_host_whole(&lab, &before, &results);
    // The next apply converges.
    for host in &lab.hosts {
        host.set_knob("start_delay_ms", "100").unwrap();
    }
    let again = run(&lab, "apply", &playbook, &[]);
    assert_eq!(
        again.code,
        0,
        "{}{}{}",
        again.stdout,
        again.stderr,
        journals(&lab)
    );
    assert_eq!(
        run(&lab, "plan", &playbook, &["--detailed-exitcode"]).code,
        0
    );
}

#[test]
fn a_cut_connection_mid_apply_is_followed_again_and_ends_applied() {
    let lab = lab(LabSpec::new(4, &midsim()));
    accept_new_users(&lab, &[]);
    for host in &lab.hosts {
        host.set_knob("start_delay_ms", "2500").unwrap();
    }
    let playbook = rotation(&lab, "rollout:\n  serial: [100%]\n");
    let cutter = {
        let hosts = lab.hosts.clone();
        std::thread::spawn(move || {
            // Cut every host's connections while its MID is starting.
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            let mut cut = vec![false; hosts.len()];
            while cut.iter().any(|done| !done) && std::time::Instant::now() < deadline {
                for (index, host) in hosts.iter().enumerate() {
                    if cut[index] {
                        continue;
                    }
                    let starting = host.run_progress_contains(" start");
                    if starting && host.cut_connections() > 0 {
                        cut[index] = true;
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            cut
        })
    };
    let applied = run(&lab, "apply", &playbook, &["--output", "json"]);
    let cut = cutter.join().unwrap();
    assert!(
        cut.iter().all(|done| *done),
        "every host's connection was cut: {cut:?}"
    );
    assert_eq!(
        applied.code,
        0,
        "{}{}{}",
        applied.stdout,
        applied.stderr,
        journals(&lab)
    );
    let report: serde_json::Value = serde_json::from_str(&applied.stdout).unwrap();
    for result in report["results"].as_array().unwrap() {
        assert_eq!(result["result"], "applied", "{result}");
    }
    for host in &lab.hosts {
        assert!(host.mid("status").unwrap());
        assert!(host.agent_log().contains(&format!(
            "Setting basic authentication with user {}",
            new_user(host)
        )));
    }
}

/// Pids of `transaction.sh` processes working in `host`'s mid_home.
fn transaction_pids(host: &LabHost) -> Vec<i32> {
    // The stager records each transaction's pid in its run folder (the
    // transaction runs as `sh transaction.sh .` in it, so its command line
    // names no run).
    let runs = host.local_mid_home.join(".midfleet/runs");
    std::fs::read_dir(&runs)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|run| std::fs::read_to_string(run.path().join("pid")).ok())
        .filter_map(|pid| pid.trim().parse::<i32>().ok())
        .filter(|pid| {
            let command = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&command).contains("transaction.sh")
        })
        .collect()
}

#[test]
fn a_transaction_killed_on_its_host_is_reported_then_unlock_and_rollback_repair() {
    let lab = lab(LabSpec::new(1, &midsim()));
    accept_new_users(&lab, &[]);
    let host = &lab.hosts[0];
    host.set_knob("start_delay_ms", "4000").unwrap();
    let before = snapshot(&lab);
    let playbook = rotation(&lab, "");
    let killer = {
        let host = host.clone();
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while std::time::Instant::now() < deadline {
                let started = host.run_progress_contains(" start\n");
                if started {
                    let pids = transaction_pids(&host);
                    for pid in &pids {
                        // SAFETY: SIGKILL to the lab's own transaction.
                        unsafe {
                            libc::kill(*pid, libc::SIGKILL);
                        }
                    }
                    if !pids.is_empty() {
                        return true;
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            false
        })
    };
    let applied = run(&lab, "apply", &playbook, &["--output", "json"]);
    assert!(killer.join().unwrap(), "the transaction was killed");
    assert_eq!(applied.code, 1, "{}{}", applied.stdout, applied.stderr);
    let report: serde_json::Value = serde_json::from_str(&applied.stdout).unwrap();
    let result = &report["results"][0];
    assert_eq!(result["result"], "failed", "{result}");
    assert!(
        result["message"]
            .as_str()
            .unwrap()
            .contains("died without finishing"),
        "{result}"
    );
    ConfigXml::parse(&host.config()).expect("config.xml is whole");
    // The MID the dead transaction started goes on starting (and rewrites
    // config.xml when it is up): a rollback planned before that would
    // rightly find the file changed (`stale`).
    crate::faults::wait_until(
        "the dead run's MID to finish starting",
        Duration::from_secs(30),
        || {
            host.agent_log()
                .lines()
                .last()
                .is_some_and(|line| line.ends_with("MID Server started"))
        },
    );

    let base = |command: &str| {
        vec![
            command.to_string(),
            "-i".into(),
            lab.inventory.display().to_string(),
            "--known-hosts".into(),
            lab.known_hosts.display().to_string(),
            "--audit-log".into(),
            lab.directory.join("audit.jsonl").display().to_string(),
        ]
    };
    // The dead run's lock is still leased: unlock says whose it is and
    // refuses; --force breaks it.
    let refused = midfleet(base("unlock"), &[]);
    assert_eq!(refused.code, 1, "{}{}", refused.stdout, refused.stderr);
    assert!(
        refused.stdout.contains("refused") && refused.stdout.contains("locked by run"),
        "{}",
        refused.stdout
    );
    let mut forced = base("unlock");
    forced.push("--force".into());
    let unlocked = midfleet(forced, &[]);
    assert_eq!(unlocked.code, 0, "{}{}", unlocked.stdout, unlocked.stderr);
    assert!(unlocked.stdout.contains("unlocked"), "{}", unlocked.stdout);
    assert!(!host.local_mid_home.join(".midfleet/lock").exists());

    // rollback puts the backed-up files back and the MID runs on them.
    host.set_knob("start_delay_ms", "100").unwrap();
    let mut rollback = base("rollback");
    rollback.extend(["--yes".to_string(), "--health-timeout".into(), "20".into()]);
    let sessions = || crate::lab::sshd_log_count(&lab, &host.name, "Accepted publickey");
    let sessions_before = sessions();
    let rolled = midfleet(rollback, &[]);
    assert_eq!(
        rolled.code,
        0,
        "{}{}{}",
        rolled.stdout,
        rolled.stderr,
        journals(&lab)
    );
    // Named for what it did: rolled back, not applied.
    assert!(
        rolled
            .stdout
            .lines()
            .any(|line| line.starts_with("Rollback ") && line.ends_with(": 1 rolled back.")),
        "{}",
        rolled.stdout
    );
    assert!(!rolled.stdout.contains("applied"), "{}", rolled.stdout);
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(&lab.directory.display().to_string()), "[LAB]");
    settings.add_filter(r"\d{8}T\d{6}Z-[0-9a-f]{6}", "[RUN]");
    settings.add_filter(r"\b\d+\.\ds\b", "[TIME]");
    settings.bind(|| insta::assert_snapshot!("rollback_results", rolled.stdout));
    assert_eq!(
        host.config(),
        before[0].0,
        "config.xml restored byte for byte"
    );
    assert_eq!(
        std::fs::read(host.agent().join("security/agent_keystore")).unwrap(),
        before[0].1,
        "keystore restored"
    );
    assert!(host.mid("status").unwrap());
    // With --yes, the rollback runs on its read's session: one in all.
    assert_eq!(
        sessions() - sessions_before,
        1,
        "SSH sessions of the rollback"
    );
    // The killed run's staged files (the new password among them) and any
    // temp file beside config.xml are gone once the next run staged.
    for entry in std::fs::read_dir(host.local_mid_home.join(".midfleet/runs"))
        .unwrap()
        .flatten()
    {
        assert!(
            !entry.path().join("new.xml").exists(),
            "{} keeps new.xml",
            entry.path().display()
        );
    }
    for entry in std::fs::read_dir(host.agent()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            !name.starts_with(".config.xml.midfleet."),
            "{name} left beside config.xml"
        );
    }
    // The rolled-back host no longer holds what midfleet last wrote: the
    // playbook's plan shows the change again.
    let again = run(&lab, "plan", &playbook, &["--detailed-exitcode"]);
    assert_eq!(again.code, 2, "{}{}", again.stdout, again.stderr);
    let audit = std::fs::read_to_string(lab.directory.join("audit.jsonl")).unwrap();
    for command in ["\"apply\"", "\"unlock\"", "\"rollback\""] {
        assert!(audit.contains(command), "{command} in {audit}");
    }
    // The audit log (the JSON of `rollback --output json`) names the
    // rollback's result as its table does.
    let rollback: serde_json::Value = audit
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|record| record["command"] == "rollback")
        .expect("a rollback record");
    assert_eq!(rollback["hosts"][0]["result"], "rolled_back", "{rollback}");
}

#[test]
fn a_literal_for_a_parameter_the_file_marks_secure_never_reaches_a_plan_file() {
    let lab = lab(LabSpec::new(1, &midsim()));
    let host = &lab.hosts[0];
    // A secure parameter of the file's own (not a password name).
    let config = String::from_utf8(host.config()).unwrap().replace(
        "</parameters>",
        "    <parameter name=\"custom.token\" secure=\"true\" value=\"old-token\"/>\n</parameters>",
    );
    std::fs::write(host.config_path(), config).unwrap();
    let playbook = lab.directory.join("token.yml");
    std::fs::write(
        &playbook,
        "hosts: lab\nset:\n  custom.token: Literal-Token-42\nhealth:\n  timeout: 20\n",
    )
    .unwrap();
    let saved = lab.directory.join("token.plan");
    let plan = run(
        &lab,
        "plan",
        &playbook,
        &["--out", saved.to_str().unwrap(), "--output", "json"],
    );
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    for text in [
        plan.stdout.clone(),
        plan.stderr.clone(),
        std::fs::read_to_string(&saved).unwrap(),
    ] {
        assert!(!text.contains("Literal-Token-42"), "{text}");
    }
    assert!(
        plan.stdout.contains("set_literal_sensitive"),
        "{}",
        plan.stdout
    );
    // Applying the playbook itself writes it; the saved plan cannot.
    let applied = run(&lab, "apply", &playbook, &[]);
    assert_eq!(
        applied.code,
        0,
        "{}{}{}",
        applied.stdout,
        applied.stderr,
        journals(&lab)
    );
    assert!(!applied.stdout.contains("Literal-Token-42"));
    let document = ConfigXml::parse(&host.config()).unwrap();
    assert!(document
        .get("custom.token")
        .unwrap()
        .value()
        .starts_with("encrypted:"));
}

#[test]
fn the_audit_log_names_the_user_from_the_uid_when_user_is_unset() {
    let lab = lab(LabSpec::new(1, &midsim()));
    accept_new_users(&lab, &[]);
    let playbook = rotation(&lab, "");
    let audit = lab.directory.join("audit.jsonl");
    let output = crate::support::midfleet_command(
        [
            "apply".as_ref(),
            "-i".as_ref(),
            lab.inventory.as_os_str(),
            playbook.as_os_str(),
            "--known-hosts".as_ref(),
            lab.known_hosts.as_os_str(),
            "--yes".as_ref(),
            "--audit-log".as_ref(),
            audit.as_os_str(),
        ],
        &[("MIDFLEET_TEST_PASSWORD", PASSWORD)],
    )
    .env_remove("USER")
    .env_remove("LOGNAME")
    .env_remove("SUDO_USER")
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let name = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let name = String::from_utf8(name.stdout).unwrap();
    let text = std::fs::read_to_string(&audit).unwrap();
    let expected = format!("\"user\":{}", serde_json::to_string(name.trim()).unwrap());
    assert!(text.contains(&expected), "{expected} in {text}");
    assert!(!text.contains("\"user\":\"unknown\""), "{text}");
}
