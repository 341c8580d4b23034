//! The `wrapper:` section against the lab: conf/wrapper-override.conf
//! edited byte-exactly in the same transaction as config.xml, one restart
//! per MID, idempotent, and both files rolled back together when the MID's
//! JVM cannot take the new heap.

use std::path::{Path, PathBuf};

use midfleet::wrapper_conf::{Operation, WrapperConf};
use midfleet_lab::{Lab, LabHost, LabSpec};

use crate::lab::{lab, midsim};
use crate::support::{midfleet, Run};

const PASSWORD: &str = "N3w-Heap_pw&<'\"x";

/// Three shapes a MID's wrapper-override.conf comes in: as shipped (LF),
/// saved by a Windows editor (CRLF, a BOM, no final newline), and with the
/// heap commented out and a duplicate earlier line.
const SHAPES: [&str; 3] = [
    "# OPTIONAL: Maximum Java Heap Size (in MB)\nwrapper.java.maxmemory=1024\n\n#include ../conf/wrapper-profile-sync.conf\n#wrapper.java.additional.109=-Djava.net.preferIPv6Addresses=false\n",
    "\u{FEFF}# OPTIONAL: Maximum Java Heap Size (in MB)\r\nwrapper.java.maxmemory = 1024\r\nwrapper.java.additional.1=-Dhttps.proxyHost=proxy\r\n#encoding=UTF-8",
    "wrapper.java.maxmemory=512\n# OPTIONAL: Maximum Java Heap Size (in MB)\n#wrapper.java.maxmemory=1024\nwrapper.java.maxmemory=1024\n",
];

fn wrapper_path(host: &LabHost) -> PathBuf {
    host.agent().join("conf/wrapper-override.conf")
}

fn wrapper(host: &LabHost) -> Vec<u8> {
    std::fs::read(wrapper_path(host)).unwrap_or_default()
}

/// Writes each host's wrapper-override.conf (owned as the agent folder).
fn ship_wrappers(lab: &Lab) {
    for (host, shape) in lab.hosts.iter().zip(SHAPES.iter().cycle()) {
        let conf = host.agent().join("conf");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::write(wrapper_path(host), shape).unwrap();
        if let Some((uid, gid)) = host.mid_owner() {
            std::os::unix::fs::chown(&conf, Some(uid), Some(gid)).unwrap();
            std::os::unix::fs::chown(wrapper_path(host), Some(uid), Some(gid)).unwrap();
        }
    }
}

/// What the editor makes of `before` with the heap at `heap`: the bytes
/// the host must hold (only the value's bytes differ).
fn with_heap(before: &[u8], heap: &str) -> Vec<u8> {
    WrapperConf::parse(before)
        .unwrap()
        .edit(&[Operation::Set {
            key: "wrapper.java.maxmemory",
            value: heap,
            sensitive: false,
        }])
        .unwrap()
        .bytes
        .unwrap()
}

fn playbook(lab: &Lab, name: &str, text: &str) -> PathBuf {
    let path = lab.directory.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn run(lab: &Lab, inventory: &Path, command: &str, playbook: &Path, extra: &[&str]) -> Run {
    let mut arguments = vec![
        command.to_string(),
        "-i".into(),
        inventory.display().to_string(),
        playbook.display().to_string(),
        "--known-hosts".into(),
        lab.known_hosts.display().to_string(),
    ];
    if command == "apply" {
        arguments.push("--yes".into());
    }
    arguments.extend(extra.iter().map(|argument| argument.to_string()));
    midfleet(arguments, &[("MIDFLEET_TEST_PASSWORD", PASSWORD)])
}

fn starts(host: &LabHost) -> usize {
    host.agent_log().matches("MID Server started").count()
}

/// `apply` of `playbook` on the whole lab: it succeeds and each MID
/// restarts once.
fn apply_restarting_each_once(lab: &Lab, playbook: &Path) {
    let counts: Vec<usize> = lab.hosts.iter().map(starts).collect();
    let applied = run(lab, &lab.inventory, "apply", playbook, &[]);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    for (host, count) in lab.hosts.iter().zip(counts) {
        assert_eq!(starts(host), count + 1, "{}: one restart", host.name);
    }
}

const HEAP: &str =
    "name: heap\nhosts: lab\nwrapper:\n  wrapper.java.maxmemory: 2048\nhealth:\n  timeout: 20\n";

#[test]
fn the_heap_goes_to_2048_across_a_lab_with_one_restart_each() {
    let lab = lab(LabSpec::new(3, &midsim()));
    ship_wrappers(&lab);
    let playbook = playbook(&lab, "heap.yml", HEAP);
    let before: Vec<Vec<u8>> = lab.hosts.iter().map(wrapper).collect();
    let configs: Vec<Vec<u8>> = lab.hosts.iter().map(|host| host.config()).collect();

    let plan = run(
        &lab,
        &lab.inventory,
        "plan",
        &playbook,
        &["--detailed-exitcode"],
    );
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"/[^ ,)]*/agent/", "[MID_HOME]/agent/");
    settings.bind(|| insta::assert_snapshot!("wrapper_heap_plan", plan.stdout));
    // The plan's JSON names the file of each change.
    let json = run(
        &lab,
        &lab.inventory,
        "plan",
        &playbook,
        &["--output", "json"],
    );
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    let change = &document["hosts"][0]["changes"][0];
    assert_eq!(change["file"], "wrapper-override.conf", "{change}");
    assert_eq!(change["param"], "wrapper.java.maxmemory");
    assert_eq!(change["before"], "1024");
    assert_eq!(change["after"], "2048");

    apply_restarting_each_once(&lab, &playbook);
    for (index, host) in lab.hosts.iter().enumerate() {
        assert_eq!(
            String::from_utf8_lossy(&wrapper(host)),
            String::from_utf8_lossy(&with_heap(&before[index], "2048")),
            "{}: only the value changed",
            host.name
        );
        assert_eq!(
            host.config(),
            configs[index],
            "{}: config.xml untouched",
            host.name
        );
        assert!(host.mid("status").unwrap(), "{} runs", host.name);
    }
    // The file's bytes outside the value, checked without the editor.
    assert_eq!(
        String::from_utf8(wrapper(&lab.hosts[1])).unwrap(),
        SHAPES[1].replace("maxmemory = 1024", "maxmemory = 2048")
    );
    assert_eq!(
        String::from_utf8(wrapper(&lab.hosts[2])).unwrap(),
        SHAPES[2].replace(
            "\nwrapper.java.maxmemory=1024\n",
            "\nwrapper.java.maxmemory=2048\n"
        )
    );

    // Idempotent: nothing to change, no restart.
    let again = run(
        &lab,
        &lab.inventory,
        "plan",
        &playbook,
        &["--detailed-exitcode"],
    );
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);

    // `midfleet rollback` puts the heap back, byte for byte.
    let rolled = midfleet(
        [
            "rollback",
            "-i",
            lab.inventory.to_str().unwrap(),
            "--known-hosts",
            lab.known_hosts.to_str().unwrap(),
            "--yes",
            "--limit",
            &lab.hosts[1].name,
        ],
        &[],
    );
    assert_eq!(rolled.code, 0, "{}{}", rolled.stdout, rolled.stderr);
    assert_eq!(wrapper(&lab.hosts[1]), before[1]);
    assert_eq!(lab.hosts[1].config(), configs[1]);
}

#[test]
fn a_rotation_and_the_heap_in_one_run_restart_each_mid_once() {
    let lab = lab(LabSpec::new(3, &midsim()));
    ship_wrappers(&lab);
    for host in &lab.hosts {
        lab.add_instance_user(&format!("svc_{}", host.name.replace('-', "")), PASSWORD)
            .unwrap();
    }
    let playbook = playbook(
        &lab,
        "both.yml",
        "name: both\nhosts: lab\nset:\n  mid.instance.username: \"svc_{{ mid_name }}\"\n  \
         mid.instance.password: { secret: \"env:MIDFLEET_TEST_PASSWORD\" }\n\
         wrapper:\n  wrapper.java.maxmemory: 2048\nhealth:\n  timeout: 20\n",
    );
    let before: Vec<Vec<u8>> = lab.hosts.iter().map(wrapper).collect();
    apply_restarting_each_once(&lab, &playbook);
    for (index, host) in lab.hosts.iter().enumerate() {
        assert_eq!(
            wrapper(host),
            with_heap(&before[index], "2048"),
            "{}",
            host.name
        );
        let user = format!("svc_{}", host.name.replace('-', ""));
        assert!(
            host.agent_log()
                .contains(&format!("Setting basic authentication with user {user}")),
            "{}",
            host.name
        );
    }
    let again = run(
        &lab,
        &lab.inventory,
        "plan",
        &playbook,
        &["--detailed-exitcode"],
    );
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
}

#[test]
fn a_host_whose_jvm_cannot_take_the_heap_rolls_both_files_back() {
    let lab = lab(LabSpec::new(3, &midsim()));
    // The lab's MIDs as shipped (ServiceNow's file); lab-003's host can
    // give a JVM at most 1536 MB: its simulated JVM refuses 2048.
    let limited = &lab.hosts[2];
    limited.set_heap_limit_mb(Some(1536)).unwrap();
    let playbook = playbook(
        &lab,
        "heap-and-threads.yml",
        "name: heap\nhosts: lab\nset:\n  threads.max: \"30\"\nwrapper:\n  wrapper.java.maxmemory: 2048\nhealth:\n  timeout: 20\n",
    );
    let configs: Vec<Vec<u8>> = lab.hosts.iter().map(|host| host.config()).collect();
    let wrappers: Vec<Vec<u8>> = lab.hosts.iter().map(wrapper).collect();
    assert!(
        String::from_utf8_lossy(&wrappers[2]).contains("\nwrapper.java.maxmemory=1024\n"),
        "the lab ships the file"
    );
    let counts: Vec<usize> = lab.hosts.iter().map(starts).collect();
    let applied = run(&lab, &lab.inventory, "apply", &playbook, &[]);
    assert_eq!(applied.code, 1, "{}{}", applied.stdout, applied.stderr);
    let limited_line = applied
        .stdout
        .lines()
        .find(|line| line.starts_with(&limited.name))
        .unwrap_or_default()
        .to_string();
    assert!(limited_line.contains("rolled_back"), "{}", applied.stdout);
    assert!(
        applied
            .all_output()
            .contains("the MID's JVM could not start with the heap it was given"),
        "{}{}",
        applied.stdout,
        applied.stderr
    );
    assert!(
        applied
            .all_output()
            .contains("Could not reserve enough space for 2097152KB object heap"),
        "the deciding line is cited: {}{}",
        applied.stdout,
        applied.stderr
    );
    assert!(
        limited
            .wrapper_log()
            .contains("JVM exited while loading the application."),
        "{}",
        limited.wrapper_log()
    );
    assert_eq!(limited.config(), configs[2], "config.xml byte for byte");
    assert_eq!(
        wrapper(limited),
        wrappers[2],
        "wrapper-override.conf byte for byte"
    );
    assert!(limited.mid("status").unwrap(), "runs on the old heap");
    assert!(
        limited.agent_log()[..]
            .matches("MID Server started")
            .count()
            > counts[2],
        "started again on the restored files"
    );
    for (index, host) in lab.hosts.iter().enumerate().take(2) {
        assert_eq!(
            wrapper(host),
            with_heap(&wrappers[index], "2048"),
            "{}",
            host.name
        );
        assert_eq!(
            starts(host),
            counts[index] + 1,
            "{}: one restart",
            host.name
        );
    }
    // Nothing left half-done: the next plan shows the same change for the
    // limited host only.
    let again = run(&lab, &lab.inventory, "plan", &playbook, &[]);
    assert!(
        again
            .stdout
            .contains("Plan: 1 to change, 0 to start, 2 unchanged, 0 errors."),
        "{}",
        again.stdout
    );
}

#[test]
fn a_missing_wrapper_file_is_a_host_error_with_a_hint() {
    let lab = lab(LabSpec::new(1, &midsim()));
    std::fs::remove_file(wrapper_path(&lab.hosts[0])).unwrap();
    let playbook = playbook(&lab, "heap.yml", HEAP);
    let plan = run(&lab, &lab.inventory, "plan", &playbook, &[]);
    assert_eq!(plan.code, 1, "{}{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout
            .contains("conf/wrapper-override.conf does not exist")
            && plan.stdout.contains("hint: a MID ships this file"),
        "{}",
        plan.stdout
    );
}

#[test]
fn a_saved_plan_applies_the_heap_and_refuses_a_host_whose_wrapper_file_changed() {
    let lab = lab(LabSpec::new(3, &midsim()));
    ship_wrappers(&lab);
    let playbook = playbook(
        &lab,
        "heap-saved.yml",
        "name: heap\nhosts: lab\nwrapper:\n  wrapper.java.maxmemory: 2048\n  \
         wrapper.ntservice.password: { secret: \"env:MIDFLEET_TEST_PASSWORD\" }\nhealth:\n  timeout: 20\nrollout:\n  serial: [100%]\n",
    );
    let saved = lab.directory.join("heap.plan");
    let plan = run(
        &lab,
        &lab.inventory,
        "plan",
        &playbook,
        &["--out", saved.to_str().unwrap()],
    );
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout
            .contains("+ wrapper-override.conf: wrapper.ntservice.password = (sensitive)"),
        "{}",
        plan.stdout
    );
    let text = std::fs::read_to_string(&saved).unwrap();
    assert!(!text.contains(PASSWORD), "no secret in the plan file");
    assert!(text.contains("\"format_version\": 4"), "{text}");
    // Someone edits lab-002's wrapper file after the plan.
    let changed = &lab.hosts[1];
    let mut edited = wrapper(changed);
    edited.extend_from_slice(b"\r\nwrapper.java.initmemory=256");
    std::fs::write(wrapper_path(changed), &edited).unwrap();
    let before = wrapper(&lab.hosts[0]);
    let applied = midfleet(
        [
            "apply",
            "--plan",
            saved.to_str().unwrap(),
            "--yes",
            "--known-hosts",
            lab.known_hosts.to_str().unwrap(),
            "--output",
            "json",
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
    assert_eq!(wrapper(changed), edited, "the stale host is untouched");
    let now = WrapperConf::parse(&wrapper(&lab.hosts[0])).unwrap();
    assert_eq!(now.get("wrapper.java.maxmemory"), Some("2048"));
    assert_eq!(now.get("wrapper.ntservice.password"), Some(PASSWORD));
    let mut expected = with_heap(&before, "2048");
    expected.extend_from_slice(format!("wrapper.ntservice.password={PASSWORD}\n").as_bytes());
    assert_eq!(
        wrapper(&lab.hosts[0]),
        expected,
        "the value in place, the new line appended"
    );
    assert!(!applied.all_output().contains(PASSWORD), "never shown");
}

#[test]
fn midfleet_rollback_after_a_heap_change_puts_both_files_back() {
    let lab = lab(LabSpec::new(1, &midsim()));
    ship_wrappers(&lab);
    let playbook = playbook(&lab, "heap.yml", HEAP);
    let before = wrapper(&lab.hosts[0]);
    let config = lab.hosts[0].config();
    let applied = run(&lab, &lab.inventory, "apply", &playbook, &[]);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert_eq!(wrapper(&lab.hosts[0]), with_heap(&before, "2048"));
    let back = midfleet(
        [
            "rollback",
            "-i",
            lab.inventory.to_str().unwrap(),
            "--known-hosts",
            lab.known_hosts.to_str().unwrap(),
            "--yes",
            "--health-timeout",
            "20",
        ],
        &[],
    );
    assert_eq!(back.code, 0, "{}{}", back.stdout, back.stderr);
    assert!(
        back.stdout
            .contains("(config.xml, conf/wrapper-override.conf"),
        "{}",
        back.stdout
    );
    assert_eq!(wrapper(&lab.hosts[0]), before);
    assert_eq!(lab.hosts[0].config(), config);
}
