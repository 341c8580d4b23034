//! `midfleet lab up|status|user|fault|down` and the demo on the same kept
//! lab: a lab that outlives the command that made it, used by the other
//! commands as an operator would, and nothing left once it is down — also
//! after its maker was killed with SIGKILL.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{midfleet, midfleet_command, Run};

/// midfleet with the lab's record kept in `state` (each test its own).
fn in_lab(state: &Path, arguments: &[&str], environment: &[(&str, &str)]) -> Run {
    let mut all = vec![("MIDFLEET_LAB_STATE", state.to_str().unwrap())];
    all.extend_from_slice(environment);
    midfleet(arguments, &all)
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}\n{}", run.stdout, run.stderr))
}

/// What a lab left: live processes naming its folder in their argv,
/// recorded ones still running (same start time), processes in a mount
/// namespace whose mounts name its folder (a host's: inode numbers of
/// namespaces are reused, so those recorded only name candidates), mounts
/// naming its folder here, the folder, the record.
fn leftovers(state: &Path, record: &Value) -> Vec<String> {
    let folder = record["folder"].as_str().unwrap().to_string();
    let name = format!(
        "/{}/",
        Path::new(&folder).file_name().unwrap().to_string_lossy()
    );
    let own_namespace = std::fs::metadata("/proc/self/ns/mnt").unwrap().ino();
    let recorded: Vec<(i64, u64)> = record["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|process| {
            (
                process["pid"].as_i64().unwrap(),
                process["start"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut left = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i64>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
            .split_whitespace()
            .collect();
        if fields[0] == "Z" {
            continue;
        }
        let start: u64 = fields[19].parse().unwrap();
        let command = std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap_or_default()
            .split(|byte| *byte == 0)
            .map(|part| String::from_utf8_lossy(part).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let in_lab_namespace = std::fs::metadata(format!("/proc/{pid}/ns/mnt"))
            .is_ok_and(|metadata| metadata.ino() != own_namespace)
            && std::fs::read(format!("/proc/{pid}/mountinfo"))
                .is_ok_and(|mounts| String::from_utf8_lossy(&mounts).contains(&name));
        if command.contains(&format!("{folder}/")) || command.ends_with(&folder) {
            left.push(format!("process {pid} naming the folder: {command}"));
        } else if recorded.contains(&(pid, start)) {
            left.push(format!("recorded process {pid}: {command}"));
        } else if in_lab_namespace {
            left.push(format!("process {pid} in a lab namespace: {command}"));
        }
    }
    // Lossy: a mount point elsewhere on the machine may not be UTF-8.
    let mounts =
        String::from_utf8_lossy(&std::fs::read("/proc/self/mountinfo").unwrap()).into_owned();
    for line in mounts.lines().filter(|line| line.contains(&name)) {
        left.push(format!("mount: {line}"));
    }
    if Path::new(&folder).exists() {
        left.push(format!("folder {folder}"));
    }
    if state.join("state.json").exists() {
        left.push("the record state.json".into());
    }
    left
}

/// The record as it is now.
fn record(state: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(state.join("state.json")).unwrap()).unwrap()
}

/// The `ecc_agent` records of the lab's instance, as (name, status, user).
fn agents(folder: &Path) -> Vec<(String, String, String)> {
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("instance/state.json")).unwrap())
            .unwrap();
    state["tables"]["ecc_agent"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|record| {
            (
                record["name"].as_str().unwrap_or_default().to_string(),
                record["status"].as_str().unwrap_or_default().to_string(),
                record["user_name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn rotation(path: &Path, user: &str, url: &str, admin_file: &str) {
    std::fs::write(
        path,
        format!(
            "hosts: all\nset:\n  mid.instance.username: {user}\n  \
             mid.instance.password: {{ secret: \"env:LAB_TEST_PASSWORD\" }}\n\
             health:\n  timeout: 20\nrollout:\n  serial: [100%]\n\
             instance:\n  url: {url}\n  user: admin\n  password: {{ secret: \"file:{admin_file}\" }}\n"
        ),
    )
    .unwrap();
}

#[test]
fn a_lab_that_stays_up_rehearses_a_rotation_and_leaves_nothing_when_down() {
    let state_holder = tempfile::tempdir().unwrap();
    let state = state_holder.path().join("state");
    let password = "Lab-Test-pw-9";
    let secret = [("LAB_TEST_PASSWORD", password)];

    let up = in_lab(
        &state,
        &[
            "lab",
            "up",
            "--hosts",
            "3",
            "--instance",
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(up.code, 0, "{}{}", up.stdout, up.stderr);
    let lab = json(&up);
    let folder = PathBuf::from(lab["folder"].as_str().unwrap());
    let inventory = lab["inventory"].as_str().unwrap().to_string();
    let known_hosts = lab["known_hosts"].as_str().unwrap().to_string();
    let url = lab["instance_url"].as_str().unwrap().to_string();
    assert!(
        folder.starts_with(&state),
        "the lab lives in its place: {folder:?}"
    );
    assert!(Path::new(lab["playbook"].as_str().unwrap()).is_file());
    let next = lab["next"].to_string();
    for command in [
        "midfleet plan -i",
        "midfleet apply -i",
        "lab user",
        "lab fault",
        "lab down",
    ] {
        assert!(next.contains(command), "{command} in {next}");
    }

    // The hosts and the instance outlived `lab up`.
    let status = in_lab(&state, &["lab", "status", "--output", "json"], &[]);
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
    let status = json(&status)["lab"].clone();
    assert_eq!(status["hosts"].as_array().unwrap().len(), 3, "{status}");
    for host in status["hosts"].as_array().unwrap() {
        assert_eq!(host["sshd"], true, "{host}");
        assert_eq!(host["mid"], "running", "{host}");
        assert_eq!(host["mid_user"], midfleet_lab::INITIAL_USER, "{host}");
    }
    assert_eq!(status["instance_url"], url.as_str());

    // One lab per user.
    let again = in_lab(&state, &["lab", "up"], &[]);
    assert_eq!(again.code, 1, "{}{}", again.stdout, again.stderr);
    assert!(
        again.stderr.contains("error: a lab is up already"),
        "{}",
        again.stderr
    );
    assert!(
        again.stderr.contains("`midfleet lab down`"),
        "{}",
        again.stderr
    );

    // The new user, its password from a secret reference.
    let user = in_lab(
        &state,
        &[
            "lab",
            "user",
            "svc_new",
            "--password",
            "env:LAB_TEST_PASSWORD",
        ],
        &secret,
    );
    assert_eq!(user.code, 0, "{}{}", user.stdout, user.stderr);
    assert!(
        user.stdout.contains("User svc_new created"),
        "{}",
        user.stdout
    );
    assert!(!user.all_output().contains(password));
    let status = json(&in_lab(&state, &["lab", "status", "--output", "json"], &[]))["lab"].clone();
    let users = status["users"].to_string();
    assert!(
        users.contains(r#"{"mid_server":true,"name":"svc_new"}"#),
        "{users}"
    );

    // plan and apply, with the printed inventory and known_hosts.
    let scratch = tempfile::tempdir().unwrap();
    let playbook = scratch.path().join("rotate-svc-new.yml");
    let admin_file = folder.join("instance/admin-password");
    rotation(&playbook, "svc_new", &url, admin_file.to_str().unwrap());
    let playbook = playbook.to_str().unwrap();
    let common = ["-i", &inventory, "--known-hosts", &known_hosts, playbook];
    let plan = in_lab(&state, &[&["plan"][..], &common].concat(), &secret);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("Plan: 3 to change"), "{}", plan.stdout);
    let apply = in_lab(
        &state,
        &[&["apply", "--yes"][..], &common].concat(),
        &secret,
    );
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    assert!(apply.stdout.contains("3 applied"), "{}", apply.stdout);
    let status = json(&in_lab(&state, &["lab", "status", "--output", "json"], &[]))["lab"].clone();
    for host in status["hosts"].as_array().unwrap() {
        assert_eq!(host["mid_user"], "svc_new", "{host}");
        assert_eq!(host["mid"], "running", "{host}");
    }
    let mut up_as_new: Vec<String> = agents(&folder)
        .into_iter()
        .filter(|(_, status, user)| status == "Up" && user == "svc_new")
        .map(|(name, _, _)| name)
        .collect();
    up_as_new.sort();
    assert_eq!(
        up_as_new,
        ["lab-001", "lab-002", "lab-003"],
        "the MIDs logged in as svc_new"
    );

    // A MID that dies at every start: the apply to it fails, its rollback too.
    let fault = in_lab(&state, &["lab", "fault", "lab-002", "dies-at-start"], &[]);
    assert_eq!(fault.code, 0, "{}{}", fault.stdout, fault.stderr);
    let unknown = in_lab(&state, &["lab", "fault", "lab-009", "slow-start"], &[]);
    assert_eq!(unknown.code, 1);
    assert!(
        unknown
            .stderr
            .contains("the lab has no host `lab-009` (its hosts: lab-001, lab-002, lab-003)"),
        "{}",
        unknown.stderr
    );
    let user = in_lab(
        &state,
        &[
            "lab",
            "user",
            "svc_next",
            "--password",
            "env:LAB_TEST_PASSWORD",
        ],
        &secret,
    );
    assert_eq!(user.code, 0, "{}", user.stderr);
    let next_playbook = scratch.path().join("rotate-svc-next.yml");
    rotation(
        &next_playbook,
        "svc_next",
        &url,
        admin_file.to_str().unwrap(),
    );
    let config = folder.join("hosts/lab-002/servicenow/mid/agent/config.xml");
    let before = std::fs::read(&config).unwrap();
    let failed = in_lab(
        &state,
        &[
            "apply",
            "--yes",
            "--limit",
            "lab-002",
            "--output",
            "json",
            "-i",
            &inventory,
            "--known-hosts",
            &known_hosts,
            next_playbook.to_str().unwrap(),
        ],
        &secret,
    );
    assert_eq!(failed.code, 1, "{}{}", failed.stdout, failed.stderr);
    let report = json(&failed);
    assert_eq!(report["results"][0]["host"], "lab-002", "{report}");
    assert_ne!(report["results"][0]["result"], "applied", "{report}");
    // The fault holds for every start, the rollback's too: the reason
    // says the MID died, with the wrapper's line, and where the backup is.
    let message = report["results"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("rollback") && message.contains("JVM exited unexpectedly"),
        "{report}"
    );
    assert_eq!(
        std::fs::read(&config).unwrap(),
        before,
        "config.xml is back as it was"
    );
    let cleared = in_lab(&state, &["lab", "fault", "lab-002", "none"], &[]);
    assert_eq!(cleared.code, 0, "{}", cleared.stderr);
    let status = json(&in_lab(&state, &["lab", "status", "--output", "json"], &[]))["lab"].clone();
    assert_eq!(status["hosts"][1]["fault"], "none", "{status}");

    // Down: nothing left.
    let recorded = record(&state);
    assert!(
        !recorded["namespaces"].as_array().unwrap().is_empty()
            || !recorded["mount_namespaces"].as_bool().unwrap()
    );
    let down = in_lab(&state, &["lab", "down"], &[]);
    assert_eq!(down.code, 0, "{}{}", down.stdout, down.stderr);
    assert!(
        down.stdout.starts_with("The lab is down: "),
        "{}",
        down.stdout
    );
    assert_eq!(leftovers(&state, &recorded), Vec::<String>::new());
    assert!(!state.exists(), "the place goes with its last lab");
    let twice = in_lab(&state, &["lab", "down"], &[]);
    assert_eq!(twice.code, 0, "{}", twice.stderr);
    assert_eq!(twice.stdout, "No lab is up; nothing to take down.\n");
    let status = in_lab(&state, &["lab", "status"], &[]);
    assert_eq!(
        (status.code, status.stdout.as_str()),
        (1, "No lab is up.\n")
    );
}

/// Starts `arguments` (demo or lab up) and SIGKILLs it once `ready` says
/// so of the record and what it has made.
fn kill_when(state: &Path, arguments: &[&str], ready: impl Fn(&Path) -> bool) {
    let mut child = midfleet_command(
        arguments,
        &[("MIDFLEET_LAB_STATE", state.to_str().unwrap())],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready(state) {
        assert!(Instant::now() < deadline, "never ready");
        assert!(
            child.try_wait().unwrap().is_none(),
            "it ended before the kill"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A demo SIGKILLed once its fleet is up (its stderr says so) leaves a
/// stale lab: `lab status` says so, `lab down` removes all of it; a demo
/// killed again is cleaned by the next demo, which says so.
#[test]
fn a_killed_demo_leaves_a_lab_that_lab_down_or_the_next_demo_removes() {
    let state_holder = tempfile::tempdir().unwrap();
    let state = state_holder.path().join("state");
    let kill_demo = || {
        let mut child =
            midfleet_command(["demo"], &[("MIDFLEET_LAB_STATE", state.to_str().unwrap())])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        for line in stderr.lines() {
            if line.unwrap().contains("midfleet-demo: the fleet is up") {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        record(&state)
    };
    let first = kill_demo();
    assert_eq!(first["kind"], "demo");
    assert!(first["processes"].as_array().unwrap().len() >= 6, "{first}");
    let status = in_lab(&state, &["lab", "status"], &[]);
    assert_eq!(status.code, 1, "{}{}", status.stdout, status.stderr);
    assert!(
        status
            .stdout
            .starts_with("A stale lab: the `midfleet demo` that made it was killed."),
        "{}",
        status.stdout
    );
    let down = in_lab(&state, &["lab", "down"], &[]);
    assert_eq!(down.code, 0, "{}{}", down.stdout, down.stderr);
    assert!(
        down.stdout
            .starts_with("A stale lab (its maker was killed) is removed: "),
        "{}",
        down.stdout
    );
    assert_eq!(leftovers(&state, &first), Vec::<String>::new());

    let second = kill_demo();
    let demo = in_lab(&state, &["demo"], &[]);
    assert_eq!(demo.code, 0, "{}{}", demo.stdout, demo.stderr);
    assert!(
        demo.stdout
            .contains("first removed a stale lab a killed demo left: ")
            && demo
                .stdout
                .contains(&format!("{} removed", second["folder"].as_str().unwrap())),
        "{}",
        demo.stdout
    );
    assert_eq!(leftovers(&state, &second), Vec::<String>::new());
    assert!(!state.exists());
}

/// `lab up` SIGKILLed while it makes its lab (hosts half made, or the
/// instance just started): what its record names is enough for `lab down`.
#[test]
fn a_lab_up_killed_while_starting_is_removed_by_lab_down() {
    for (what, ready) in [
        (
            "the instance started",
            Box::new(|state: &Path| {
                std::fs::read_to_string(state.join("state.json"))
                    .is_ok_and(|text| text.contains("\"processes\": [\n    {"))
            }) as Box<dyn Fn(&Path) -> bool>,
        ),
        (
            "the first sshd listening",
            Box::new(|state: &Path| {
                std::fs::read_dir(state)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .any(|lab| lab.path().join("hosts/lab-001/sshd.pid").exists())
            }),
        ),
    ] {
        let state_holder = tempfile::tempdir().unwrap();
        let state = state_holder.path().join("state");
        kill_when(&state, &["lab", "up", "--hosts", "4", "--instance"], ready);
        let recorded = record(&state);
        assert_eq!(recorded["phase"], "starting", "{what}: {recorded}");
        let down = in_lab(&state, &["lab", "down"], &[]);
        assert_eq!(down.code, 0, "{what}: {}{}", down.stdout, down.stderr);
        assert!(
            down.stdout.starts_with("A stale lab"),
            "{what}: {}",
            down.stdout
        );
        assert_eq!(leftovers(&state, &recorded), Vec::<String>::new(), "{what}");
    }
}

/// A lab whose `lab up` is still making it is not up: `lab status` exits
/// 1 and says so (a script polling it until it succeeds would otherwise go
/// on with no host yet), and its JSON says `"phase": "starting"`.
#[test]
fn a_lab_still_starting_is_not_up_for_lab_status() {
    use midfleet_lab::kept::{Kind, Phase, Place, ProcessId, Record};
    let state_holder = tempfile::tempdir().unwrap();
    let state = state_holder.path().join("state");
    let folder = state.join("lab-1-2");
    let place = Place {
        folder: state.clone(),
    };
    // As `lab up` writes it before making anything; its maker (this test)
    // still runs.
    place
        .write(&Record {
            version: 1,
            kind: Kind::Lab,
            phase: Phase::Starting,
            owner: Some(ProcessId::me()),
            folder: folder.clone(),
            created: 0,
            mount_namespaces: false,
            hosts: Vec::new(),
            instance: None,
            processes: Vec::new(),
            namespaces: Vec::new(),
            inventory: folder.join("inventory.yml"),
            known_hosts: folder.join("known_hosts"),
            playbook: folder.join("rotate.yml"),
        })
        .unwrap();
    let status = in_lab(&state, &["lab", "status"], &[]);
    assert_eq!(status.code, 1, "{}{}", status.stdout, status.stderr);
    assert!(
        status
            .stdout
            .starts_with("A lab is starting: its `midfleet lab up` still runs."),
        "{}",
        status.stdout
    );
    let status = in_lab(&state, &["lab", "status", "--output", "json"], &[]);
    assert_eq!(status.code, 1, "{}{}", status.stdout, status.stderr);
    let report = json(&status);
    assert_eq!(report["lab"]["phase"], "starting", "{report}");
    assert_eq!(report["lab"]["live"], true, "{report}");
}

/// `MIDFLEET_LAB_STATE` relative to the current folder (`./labs`) works
/// as an absolute one: the lab comes up, and is found from that folder.
#[test]
fn a_relative_lab_state_folder_is_taken_from_the_current_folder() {
    let holder = tempfile::tempdir().unwrap();
    let run = |arguments: &[&str]| {
        let output = midfleet_command(arguments, &[("MIDFLEET_LAB_STATE", "labs")])
            .current_dir(holder.path())
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (code, text) = run(&["lab", "up", "--hosts", "1"]);
    let state = holder.path().join("labs");
    let down = |text: &str| {
        let _ = midfleet(
            ["lab", "down"],
            &[("MIDFLEET_LAB_STATE", state.to_str().unwrap())],
        );
        text.to_string()
    };
    assert_eq!(code, Some(0), "{}", down(&text));
    assert!(
        text.contains(&format!("folder       {}/lab-", state.display())),
        "{}",
        down(&text)
    );
    let (code, text) = run(&["lab", "status"]);
    assert_eq!(code, Some(0), "{}", down(&text));
    let (code, text) = run(&["lab", "down"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!state.exists(), "{text}");
}

/// A lab whose instance died is not up: `lab status` says why and exits
/// 1, at once (a refused local connection is not retried for seconds).
#[test]
fn a_lab_whose_instance_died_is_not_up_for_lab_status() {
    let state_holder = tempfile::tempdir().unwrap();
    let state = state_holder.path().join("state");
    let up = in_lab(&state, &["lab", "up", "--hosts", "1", "--instance"], &[]);
    assert_eq!(up.code, 0, "{}{}", up.stdout, up.stderr);
    let recorded = record(&state);
    let instance = recorded["processes"][0]["pid"].as_i64().unwrap() as i32;
    // SAFETY: kill(2) on the lab's own instance, recorded by its lab up.
    assert_eq!(unsafe { libc::kill(instance, libc::SIGKILL) }, 0);
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let status = in_lab(&state, &["lab", "status"], &[]);
    let took = started.elapsed();
    let down = in_lab(&state, &["lab", "down"], &[]);
    assert_eq!(down.code, 0, "{}{}", down.stdout, down.stderr);
    assert_eq!(status.code, 1, "{}{}", status.stdout, status.stderr);
    assert!(
        status
            .stdout
            .contains("users unreadable: the lab's instance"),
        "{}",
        status.stdout
    );
    assert!(took < Duration::from_secs(3), "lab status took {took:?}");
}

/// As a normal user the lab runs too (per-host folders, no namespaces),
/// its record in the user's own place; the printed inventory works.
#[test]
fn a_normal_user_keeps_a_lab_up_too() {
    midfleet_lab::create_users().expect("the lab's users");
    let place = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        place.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for binary in [
        PathBuf::from(env!("CARGO_BIN_EXE_midfleet")),
        midfleet_lab::binary("midfleet-lab"),
        midfleet_lab::midsim(),
        midfleet_lab::instancesim(),
    ] {
        midfleet_lab::place_program(&binary, &place.path().join(binary.file_name().unwrap()))
            .unwrap();
    }
    let home = place.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let owner = std::process::Command::new("chown")
        .args([midfleet_lab::SUDO_USER, home.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(owner.success());
    let run = |command: &str| {
        let line = format!(
            "cd {home} && HOME={home} USER={user} NO_COLOR=1 MIDFLEET_LAB_STATE={home}/lab-state {command}",
            home = home.display(),
            user = midfleet_lab::SUDO_USER,
        );
        let output = std::process::Command::new("su")
            .args([midfleet_lab::SUDO_USER, "-s", "/bin/sh", "-c", &line])
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let midfleet = place.path().join("midfleet").display().to_string();
    let (code, stdout, stderr) = run(&format!("{midfleet} lab up --hosts 2 --output json"));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let lab: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(lab["mount_namespaces"], false, "{lab}");
    let folder = lab["folder"].as_str().unwrap();
    assert!(
        lab["hosts"][0]["mid_home"]
            .as_str()
            .unwrap()
            .starts_with(folder),
        "{lab}"
    );
    let (code, stdout, stderr) = run(&format!(
        "{midfleet} facts -i {} --known-hosts {}",
        lab["inventory"].as_str().unwrap(),
        lab["known_hosts"].as_str().unwrap()
    ));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("2 hosts: 2 ok, 0 failed"), "{stdout}");
    let (code, stdout, _) = run(&format!("{midfleet} lab status"));
    assert_eq!(code, 0, "{stdout}");
    let state = home.join("lab-state");
    let recorded = record(&state);
    let (code, stdout, stderr) = run(&format!("{midfleet} lab down"));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(leftovers(&state, &recorded), Vec::<String>::new());
}

/// What `lab up`, `status`, `fault` and `down` tell a person, and what
/// they say when there is already a lab, or none.
#[test]
fn the_lab_says_where_it_is_and_what_to_try_next() {
    let state_holder = tempfile::tempdir().unwrap();
    let state = state_holder.path().join("state");
    let mut text = String::new();
    let mut show = |title: &str, run: &Run| {
        text.push_str(&format!(
            "--- {title} (exit {})\n{}{}",
            run.code, run.stdout, run.stderr
        ));
    };
    let up = in_lab(&state, &["lab", "up", "--hosts", "2"], &[]);
    assert_eq!(up.code, 0, "{}{}", up.stdout, up.stderr);
    show("lab up --hosts 2", &up);
    show("lab up (again)", &in_lab(&state, &["lab", "up"], &[]));
    show(
        "lab fault lab-002 hangs-at-stop",
        &in_lab(&state, &["lab", "fault", "lab-002", "hangs-at-stop"], &[]),
    );
    show(
        "lab fault lab-001 heap-limit=1536",
        &in_lab(&state, &["lab", "fault", "lab-001", "heap-limit=1536"], &[]),
    );
    show(
        "lab fault lab-003 slow-start",
        &in_lab(&state, &["lab", "fault", "lab-003", "slow-start"], &[]),
    );
    show("lab status", &in_lab(&state, &["lab", "status"], &[]));
    show(
        "lab user svc_x (no such variable)",
        &in_lab(
            &state,
            &["lab", "user", "svc_x", "--password", "env:LAB_TEST_UNSET"],
            &[],
        ),
    );
    show("lab down", &in_lab(&state, &["lab", "down"], &[]));
    show("lab down (again)", &in_lab(&state, &["lab", "down"], &[]));
    show(
        "lab status (none)",
        &in_lab(&state, &["lab", "status"], &[]),
    );
    show(
        "lab fault (none)",
        &in_lab(&state, &["lab", "fault", "lab-001", "none"], &[]),
    );
    // Counts of one read as one.
    let up = in_lab(&state, &["lab", "up", "--hosts", "1"], &[]);
    assert_eq!(up.code, 0, "{}{}", up.stdout, up.stderr);
    show(
        "lab up (again, one host)",
        &in_lab(&state, &["lab", "up"], &[]),
    );
    show(
        "lab down (one host)",
        &in_lab(&state, &["lab", "down"], &[]),
    );
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex::escape(state.to_str().unwrap()), "[STATE]");
    settings.add_filter(r"lab-\d+-\d+", "lab-[ID]");
    // The address's width sets the status table's: aligned for the filter.
    settings.add_filter(r"127\.\d+\.\d+\.\d+:\d+ +(up|down) ", "[ADDRESS]  $1 ");
    settings.add_filter(r"ADDRESS +SSHD", "ADDRESS    SSHD");
    settings.add_filter(r"127\.\d+\.\d+\.\d+:\d+", "[ADDRESS]");
    settings.add_filter(
        r"\d+ (process|processes) stopped, \d+ (mount namespace|mount namespaces)",
        "[N] $1 stopped, [N] $2",
    );
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!("kept_lab_messages", text));
}

/// A demo stopped with SIGTERM (as Ctrl-C, or a CI job cancelled) once its
/// fleet is up takes its lab down itself and exits 130.
#[test]
fn a_terminated_demo_takes_its_lab_down() {
    let state_holder = tempfile::tempdir().unwrap();
    let state = state_holder.path().join("state");
    let mut child = midfleet_command(["demo"], &[("MIDFLEET_LAB_STATE", state.to_str().unwrap())])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("midfleet-demo: the fleet is up") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the demo ended first"
        );
    }
    let recorded = record(&state);
    // SAFETY: kill(2) on the child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains("Interrupted: taking the lab down…"), "{rest}");
    assert!(rest.contains("The lab is down: "), "{rest}");
    assert_eq!(leftovers(&state, &recorded), Vec::<String>::new());
}

/// `lab up --link`: every host behind the lab's network link, which
/// `lab link` shows and changes per host or for all; wrong settings change
/// nothing; midfleet works through it; `lab down` stops the relay too.
#[test]
fn a_lab_up_behind_a_link_is_changed_per_host_and_leaves_nothing_when_down() {
    let state_holder = tempfile::tempdir().unwrap();
    let state = state_holder.path().join("state");
    let bad = in_lab(
        &state,
        &["lab", "up", "--hosts", "2", "--link", "rtt=soon"],
        &[],
    );
    assert_eq!(bad.code, 3, "{}{}", bad.stdout, bad.stderr);
    assert!(bad.stderr.contains("--link: `rtt=soon`"), "{}", bad.stderr);
    let up = in_lab(
        &state,
        &["lab", "up", "--hosts", "2", "--link", "rtt=60"],
        &[],
    );
    assert_eq!(up.code, 0, "{}{}", up.stdout, up.stderr);
    let recorded = record(&state);
    let folder = PathBuf::from(recorded["folder"].as_str().unwrap());

    let shown = in_lab(&state, &["lab", "link", "lab-001"], &[]);
    assert_eq!(
        shown.stdout, "lab-001: round trip 60 ms, jitter 0 ms, loss 0%, up\n",
        "{}",
        shown.stderr
    );
    let changed = in_lab(&state, &["lab", "link", "all", "loss=1%", "jitter=5"], &[]);
    assert_eq!(changed.code, 0, "{}", changed.stderr);
    assert_eq!(
        changed.stdout,
        "lab-001: round trip 60 ms, jitter 5 ms, loss 1%, up\nlab-002: round trip 60 ms, jitter 5 ms, loss 1%, up\n"
    );
    let before = std::fs::read(folder.join("links/lab-002")).unwrap();
    let wrong = in_lab(
        &state,
        &["lab", "link", "lab-002", "rtt=90", "speed=3"],
        &[],
    );
    assert_eq!(wrong.code, 3, "{}{}", wrong.stdout, wrong.stderr);
    assert!(
        wrong.stderr.contains("unknown link setting `speed`"),
        "{}",
        wrong.stderr
    );
    assert_eq!(std::fs::read(folder.join("links/lab-002")).unwrap(), before);
    let unknown = in_lab(&state, &["lab", "link", "lab-009", "cut"], &[]);
    assert_eq!(unknown.code, 1, "{}{}", unknown.stdout, unknown.stderr);
    assert!(
        unknown
            .stderr
            .contains("its hosts: lab-001, lab-002, or all"),
        "{}",
        unknown.stderr
    );

    // midfleet reaches the hosts through the link, as the inventory says.
    let facts = midfleet(
        [
            "facts",
            "-i",
            folder.join("inventory.yml").to_str().unwrap(),
            "--known-hosts",
            folder.join("known_hosts").to_str().unwrap(),
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(facts.code, 0, "{}{}", facts.stdout, facts.stderr);
    let stats = midfleet_lab::link::control(&folder.join("links"), "stats").unwrap();
    for host in ["lab-001", "lab-002"] {
        assert!(
            stats[host].connections >= 1 && stats[host].turns >= 3,
            "{host}: {:?}",
            stats[host]
        );
    }
    let cut = in_lab(
        &state,
        &["lab", "link", "lab-002", "cut", "--output", "json"],
        &[],
    );
    assert_eq!(cut.code, 0, "{}", cut.stderr);
    assert_eq!(json(&cut)["links"][0]["cuts"], 1, "{}", cut.stdout);

    // `lab status` shows each host's link and asks the relay.
    let status = in_lab(&state, &["lab", "status"], &[]);
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
    assert!(
        status.stdout.contains("LINK")
            && status
                .stdout
                .contains("round trip 60 ms, jitter 5 ms, loss 1%, up")
            && status.stdout.contains("Link relay answers: "),
        "{}",
        status.stdout
    );
    let status = in_lab(&state, &["lab", "status", "--output", "json"], &[]);
    assert_eq!(
        json(&status)["lab"]["link"]["relay"],
        true,
        "{}",
        status.stdout
    );
    // A relay gone: the hosts are out of reach, and status says so.
    let relay = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                let cmdline = String::from_utf8_lossy(&cmdline);
                cmdline.contains("midfleet-relay") && cmdline.contains(folder.to_str().unwrap())
            })
        })
        .expect("the lab's relay runs");
    // SAFETY: kill(2) of the relay this lab started, found just now.
    unsafe {
        libc::kill(relay, libc::SIGKILL);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{relay}/cmdline")).exists()
        && std::fs::read_to_string(format!("/proc/{relay}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z"))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = in_lab(&state, &["lab", "status"], &[]);
    assert_eq!(status.code, 1, "{}{}", status.stdout, status.stderr);
    assert!(
        status.stdout.contains("Link relay does not answer: "),
        "{}",
        status.stdout
    );

    let down = in_lab(&state, &["lab", "down"], &[]);
    assert_eq!(down.code, 0, "{}{}", down.stdout, down.stderr);
    assert_eq!(leftovers(&state, &recorded), Vec::<String>::new());
}
