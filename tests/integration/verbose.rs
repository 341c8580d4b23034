//! `-v`, `-vv`, `-vvv` (docs/SPEC.md "Verbosity"): per host the connection,
//! the steps with their times, the files read, the remote stderr and the
//! transport's exchanges; and a rolled-back host's reason naming the MID's
//! log line behind it. Times, addresses, ports, fingerprints, run ids and
//! the lab's folder are filtered out of the snapshots.

use midfleet_lab::{Lab, LabSpec};

use crate::faults::{assert_whole_and_running, converges, run_on_lab, PASSWORD};
use crate::lab::{lab, midsim};

/// A lab of `hosts` whose new users (`svc_labNNN`) log in with
/// `PASSWORD`, but for the hosts in `refused` (the instance has no such
/// user: it refuses the MID's login); and the rotation playbook, the
/// user's name from `username` (YAML).
fn setup(hosts: usize, refused: &[&str], username: &str) -> (Lab, std::path::PathBuf) {
    let lab = lab(LabSpec::new(hosts, &midsim()));
    for host in &lab.hosts {
        if !refused.contains(&host.name.as_str()) {
            lab.add_instance_user(&new_user(&host.name), PASSWORD)
                .unwrap();
        }
    }
    let playbook = lab.directory.join("rotate.yml");
    std::fs::write(
        &playbook,
        format!("hosts: lab\nset:\n  mid.instance.username: {username}\n  mid.instance.password: {{ secret: \"env:FAULT_PASSWORD\" }}\nhealth:\n  timeout: 20\nrollout:\n  serial: [100%]\n  max_fail: 100%\n"),
    )
    .unwrap();
    (lab, playbook)
}

fn new_user(host: &str) -> String {
    format!("svc_{}", host.replace('-', ""))
}

const USER_FROM_NAME: &str = "\"svc_{{ mid_name }}\"";

/// Snapshot settings: what changes from run to run filtered out.
fn settings(lab: &Lab) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.add_filter(
        &regex::escape(&lab.directory.display().to_string()),
        "[LAB]",
    );
    settings.add_filter(r"\d+\.\d{3} s\b", "[S] s");
    settings.add_filter(r"\d+\.\d ms\b", "[MS] ms");
    settings.add_filter(r#""(seconds|milliseconds)": [0-9.e-]+"#, "\"$1\": [N]");
    settings.add_filter(r"\b\d+\.\d+\.\d+\.\d+:\d+\b", "[ADDRESS]");
    settings.add_filter(r"SHA256:[A-Za-z0-9+/]+", "SHA256:[FINGERPRINT]");
    settings.add_filter(r"\d{8}T\d{6}Z-[0-9a-f]{6}", "[RUN]");
    settings.add_filter(
        r"\d{2}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} \(\d{3}\)",
        "[LOG TIME]",
    );
    settings.add_filter(
        r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}(\.\d{3})?",
        "[LOG TIME]",
    );
    settings.add_filter(r"\bjvm \d+\b", "jvm [N]");
    settings.add_filter(r"(sent|received) \d+ bytes", "$1 [N] bytes");
    settings.add_filter(r"\(PID \d+\)", "(PID [N])");
    settings.add_filter(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[UUID]",
    );
    settings.add_filter(r"  \d+\.\ds  ", "  [T]s  ");
    settings
}

/// The lines `-v` adds on stderr: the files read and each host's detail
/// (not the progress lines, whose times and order vary).
fn detail_lines(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|line| line.starts_with("lab-") || line.starts_with("read "))
        .map(|line| format!("{line}\n"))
        .collect()
}

#[test]
fn v_shows_the_connection_the_steps_and_the_files_of_plan_and_apply() {
    let (lab, playbook) = setup(1, &[], USER_FROM_NAME);
    let settings = settings(&lab);

    let plain = run_on_lab(&lab, "plan", &playbook, &[]);
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    assert_eq!(detail_lines(&plain.stderr), "", "no detail without -v");

    let plan = run_on_lab(&lab, "plan", &playbook, &["-v"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert_eq!(plan.stdout, plain.stdout, "-v changes nothing on stdout");
    settings.bind(|| insta::assert_snapshot!("verbose_plan", detail_lines(&plan.stderr)));

    let apply = run_on_lab(&lab, "apply", &playbook, &["-v"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    settings.bind(|| insta::assert_snapshot!("verbose_apply", detail_lines(&apply.stderr)));
    // Each file once, though the inventory is read for the plan and again
    // for the apply's selection.
    let named = apply.stderr.matches("read inventory ").count();
    assert_eq!(named, 1, "{}", apply.stderr);
}

#[test]
fn vv_adds_the_remote_stderr_and_vvv_the_exchanges() {
    let (lab, playbook) = setup(1, &[], USER_FROM_NAME);
    let settings = settings(&lab);
    // The transaction's own output: what mid.sh printed when started.
    let apply = run_on_lab(&lab, "apply", &playbook, &["-vv"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    settings.bind(|| insta::assert_snapshot!("verbose_vv_apply", detail_lines(&apply.stderr)));

    let plan = run_on_lab(&lab, "plan", &playbook, &["-vvv"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    settings.bind(|| insta::assert_snapshot!("verbose_vvv_plan", detail_lines(&plan.stderr)));
}

#[test]
fn json_carries_the_same_detail_with_v_and_none_without() {
    let (lab, playbook) = setup(1, &[], USER_FROM_NAME);
    let apply = run_on_lab(&lab, "apply", &playbook, &["-v", "--output", "json"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    assert_eq!(
        detail_lines(&apply.stderr).matches("lab-001:").count(),
        0,
        "JSON: the detail is in the data, not on stderr"
    );
    let report: serde_json::Value = serde_json::from_str(&apply.stdout).unwrap();
    let result = &report["results"][0];
    settings(&lab).bind(|| {
        insta::assert_snapshot!(
            "verbose_apply_json",
            serde_json::to_string_pretty(&serde_json::json!({
                "connection": result["connection"],
                "steps": result["steps"],
                "log_line": result["log_line"],
            }))
            .unwrap()
        )
    });
    // Without -v, none of it.
    lab.hosts[0].mid("stop").unwrap();
    let quiet = run_on_lab(&lab, "apply", &playbook, &["--output", "json"]);
    assert_eq!(quiet.code, 0, "{}{}", quiet.stdout, quiet.stderr);
    let report: serde_json::Value = serde_json::from_str(&quiet.stdout).unwrap();
    for field in ["connection", "steps", "log_line", "exchanges"] {
        assert!(
            report["results"][0].get(field).is_none(),
            "{field}: {report}"
        );
    }
}

#[test]
fn a_refused_login_names_the_user_the_log_line_and_the_backup() {
    let (lab, playbook) = setup(1, &["lab-001"], USER_FROM_NAME);
    let settings = settings(&lab);
    let apply = run_on_lab(&lab, "apply", &playbook, &["-v"]);
    assert_eq!(apply.code, 1, "{}{}", apply.stdout, apply.stderr);
    settings.bind(|| {
        insta::assert_snapshot!("verbose_refused_login_results", apply.stdout);
        insta::assert_snapshot!("verbose_refused_login_detail", detail_lines(&apply.stderr));
    });
    // The line cited is the line of agent0.log.0 at that number.
    let log = lab.hosts[0].agent_log();
    let (index, refusal) = log
        .lines()
        .enumerate()
        .find(|(_, line)| line.contains("Could not authenticate user 'svc_lab001'"))
        .expect("the MID logged the refusal");
    let cited = format!("agent0.log.0 line {}: \"{refusal}\"", index + 1);
    assert!(apply.stdout.contains(&cited), "{cited}\n{}", apply.stdout);
    assert!(apply
        .stdout
        .contains("the instance refused user svc_lab001"));
    assert_whole_and_running(&lab);
    lab.add_instance_user("svc_lab001", PASSWORD).unwrap();
    converges(&lab, &playbook);
}

#[test]
fn a_mid_that_dies_at_start_cites_the_last_line_it_logged() {
    let (lab, playbook) = setup(1, &[], USER_FROM_NAME);
    lab.hosts[0]
        .set_knob("die_at_start_if_user", "svc_lab001")
        .unwrap();
    let apply = run_on_lab(&lab, "apply", &playbook, &["--output", "json"]);
    assert_eq!(apply.code, 1, "{}{}", apply.stdout, apply.stderr);
    let report: serde_json::Value = serde_json::from_str(&apply.stdout).unwrap();
    let message = report["results"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    settings(&lab).bind(|| insta::assert_snapshot!("verbose_died_at_start", message));
    assert_whole_and_running(&lab);
}

#[test]
fn vvv_never_shows_a_secret() {
    let (lab, playbook) = setup(1, &[], USER_FROM_NAME);
    let run = run_on_lab(&lab, "apply", &playbook, &["-vvv"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let output = run.all_output();
    // The staging script carries the new password: it is counted, never shown.
    assert!(output.contains("channel opened: exec `sh -s`"), "{output}");
    assert!(output.contains("lab-001:   script 2: sent "), "{output}");
    assert!(!output.contains(PASSWORD), "{output}");
    lab.hosts[0].mid("stop").unwrap();
    let json = run_on_lab(&lab, "apply", &playbook, &["-vvv", "--output", "json"]);
    assert_eq!(json.code, 0, "{}{}", json.stdout, json.stderr);
    assert!(json.stdout.contains("\"exchanges\""), "{}", json.stdout);
    assert!(
        !json.all_output().contains(PASSWORD),
        "{}",
        json.all_output()
    );
}

#[test]
fn a_secret_in_the_mids_log_line_is_masked() {
    // A user name that holds the password (a careless operator's): the
    // MID's refusal line quotes it, and what midfleet shows of that line
    // masks the password in it.
    let user = format!("svc-{PASSWORD}");
    let (lab, playbook) = setup(1, &["lab-001"], &format!("\"{user}\""));
    let run = run_on_lab(&lab, "apply", &playbook, &["-vvv", "--output", "json"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(lab.hosts[0]
        .agent_log()
        .contains(&format!("Could not authenticate user '{user}'")));
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let result = &report["results"][0];
    let message = result["message"].as_str().unwrap();
    assert!(
        message.contains("the instance refused user svc-******** (agent0.log.0 line "),
        "{message}"
    );
    let shown = format!("{message}{}{}", result["log_line"], result["exchanges"]);
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert_whole_and_running(&lab);
}

#[test]
fn v_names_each_file_read_once_and_check_too() {
    let directory = tempfile::tempdir().unwrap();
    let root = directory.path();
    std::fs::create_dir_all(root.join("group_vars")).unwrap();
    std::fs::create_dir_all(root.join("host_vars")).unwrap();
    std::fs::write(
        root.join("inventory.yml"),
        "all:\n  hosts:\n    mid-a:\n      ansible_host: 10.0.0.1\n",
    )
    .unwrap();
    std::fs::write(root.join("group_vars/all.yml"), "mid_home: /opt/mid\n").unwrap();
    std::fs::write(root.join("host_vars/mid-a.yml"), "ansible_port: 2222\n").unwrap();
    std::fs::write(
        root.join("rotate.yml"),
        "hosts: all\nset:\n  mid.instance.username: svc_mid\n",
    )
    .unwrap();
    let inventory = root.join("inventory.yml");
    let playbook = root.join("rotate.yml");
    let read_lines = |stderr: &str| {
        stderr
            .lines()
            .filter(|line| line.starts_with("read "))
            .map(|line| line.replace(&root.display().to_string(), "[DIR]"))
            .collect::<Vec<_>>()
    };
    let expected = [
        "read playbook [DIR]/rotate.yml",
        "read inventory [DIR]/inventory.yml",
        "read variables [DIR]/group_vars/all.yml",
        "read variables [DIR]/host_vars/mid-a.yml",
    ];
    let check = crate::support::midfleet(
        [
            "check",
            "-i",
            inventory.to_str().unwrap(),
            playbook.to_str().unwrap(),
            "-v",
        ],
        &[],
    );
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert_eq!(read_lines(&check.stderr), expected, "{}", check.stderr);
    let quiet = crate::support::midfleet(
        [
            "check",
            "-i",
            inventory.to_str().unwrap(),
            playbook.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(read_lines(&quiet.stderr), Vec::<String>::new());
    let hosts = crate::support::midfleet(["hosts", "-i", inventory.to_str().unwrap(), "-v"], &[]);
    assert_eq!(hosts.code, 0, "{}{}", hosts.stdout, hosts.stderr);
    assert_eq!(read_lines(&hosts.stderr), expected[1..], "{}", hosts.stderr);
}

#[test]
fn v_shows_each_jump_host_of_a_host_behind_two_bastions() {
    let mut spec = LabSpec::new(0, &midsim());
    spec.behind_two_hops = 1;
    let lab = lab(spec);
    let run = crate::support::midfleet(
        [
            "facts",
            "-i",
            lab.inventory.to_str().unwrap(),
            "--known-hosts",
            lab.known_hosts.to_str().unwrap(),
            "-F",
            lab.ssh_config.to_str().unwrap(),
            "-v",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    settings(&lab).bind(|| {
        insta::assert_snapshot!(
            "verbose_facts_two_jumps",
            detail_lines(&run.stderr.replace("hidden2-01", "lab-hidden"))
        )
    });
}

#[test]
fn v_says_where_a_new_host_key_was_recorded_then_the_line_that_matches_it() {
    let (lab, _) = setup(1, &[], USER_FROM_NAME);
    let known_hosts = lab.directory.join("fresh_known_hosts");
    let facts = |extra: &[&str]| {
        let mut arguments = vec![
            "facts",
            "-i",
            lab.inventory.to_str().unwrap(),
            "--known-hosts",
            known_hosts.to_str().unwrap(),
            "-v",
        ];
        arguments.extend_from_slice(extra);
        crate::support::midfleet(arguments, &[])
    };
    let first = facts(&["--accept-new-host-keys"]);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let recorded = format!(
        "(seen for the first time, recorded in {})",
        known_hosts.display()
    );
    assert!(first.stderr.contains(&recorded), "{}", first.stderr);
    let again = facts(&[]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    let matched = format!("({}:1)", known_hosts.display());
    assert!(again.stderr.contains(&matched), "{}", again.stderr);
}
