//! `rotate:` end to end (docs/rotation.md): the lab's MIDs and an emulated
//! instance; the clock moved with the `MIDFLEET_NOW` test hook.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use midfleet_lab::{Lab, LabSpec, INITIAL_PASSWORD, INITIAL_USER};
use serde_json::{json, Value};

use crate::instance::{connect_mids, seed};
use crate::instancesim::{Instance, ADMIN_PASSWORD};
use crate::lab::{lab, midsim};
use crate::support::{midfleet, Run};

const DAY: u64 = 86_400;

pub(crate) fn rotation_playbook(lab: &Lab, url: &str) -> PathBuf {
    rotation_playbook_trusting(lab, url, None)
}

/// The rotation playbook, trusting `ca_file` for an HTTPS instance (the
/// lab CA of a fleet with mutual-TLS hosts).
pub(crate) fn rotation_playbook_trusting(lab: &Lab, url: &str, ca_file: Option<&Path>) -> PathBuf {
    let path = lab.directory.join("rotate.yml");
    let ca_file = ca_file
        .map(|ca_file| format!("  ca_file: {}\n", ca_file.display()))
        .unwrap_or_default();
    std::fs::write(
        &path,
        format!(
            "hosts: lab\nrotate:\n  users: [\"svc_{{{{ mid_name }}}}_a\", \"svc_{{{{ mid_name }}}}_b\"]\n  \
             password: {{ generate: {{ length: 32 }} }}\n  max_age: 60d\nhealth:\n  timeout: 30\n\
             rollout:\n  serial: [100%]\ninstance:\n  url: {url}\n{ca_file}  user: admin\n  \
             password: {{ secret: \"env:MIDFLEET_TEST_ADMIN\" }}\n"
        ),
    )
    .unwrap();
    path
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `midfleet COMMAND` on the lab with the rotation playbook, "now" at
/// `at` (seconds since the epoch).
pub(crate) fn at(lab: &Lab, command: &str, playbook: &Path, at: u64, extra: &[&str]) -> Run {
    let mut arguments = vec![
        command.to_string(),
        "-i".into(),
        lab.inventory.display().to_string(),
        playbook.display().to_string(),
        "--known-hosts".into(),
        lab.known_hosts.display().to_string(),
    ];
    if command == "apply" {
        arguments.push("--yes".into());
        arguments.push("--audit-log".into());
        arguments.push(lab.directory.join("audit.jsonl").display().to_string());
    }
    arguments.extend(extra.iter().map(|argument| argument.to_string()));
    let clock = midfleet::report::rfc3339(at);
    midfleet(
        arguments,
        &[
            ("MIDFLEET_TEST_ADMIN", ADMIN_PASSWORD),
            ("MIDFLEET_NOW", clock.as_str()),
        ],
    )
}

/// A lab of `hosts` MIDs all on the shared user `svc_mid_old` (the
/// lab's initial one), known to `instance`, Up and validated there.
pub(crate) fn shared_fleet(hosts: usize) -> (Lab, Instance) {
    shared_fleet_with(hosts, &[], Vec::new())
}

/// [`shared_fleet`], the instance also holding `users` (with the
/// mid_server role) and `agents`.
fn shared_fleet_with(hosts: usize, users: &[(&str, &str)], agents: Vec<Value>) -> (Lab, Instance) {
    let lab = lab(LabSpec::new(hosts, &midsim()));
    let users: Vec<(String, &str)> = [(INITIAL_USER, INITIAL_PASSWORD)]
        .iter()
        .chain(users)
        .map(|(user, password)| (user.to_string(), *password))
        .collect();
    let records = lab
        .hosts
        .iter()
        .map(|host| json!({ "name": host.name, "status": "Up", "user_name": INITIAL_USER, "validated": "true" }))
        .chain(agents)
        .collect();
    let instance = Instance::start(Some(seed(&users, records)), &[]);
    connect_mids(&lab, &instance, None);
    (lab, instance)
}

/// A human plan as a snapshot: the instance's port and the MIDs' key pair
/// ids filtered out.
fn snapshot_plan(name: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:[PORT]");
    settings.add_filter(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[UUID]",
    );
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(name, text));
}

fn user_of(lab: &Lab, index: usize) -> String {
    let config = String::from_utf8(lab.hosts[index].config()).unwrap();
    let start = config
        .find("name=\"mid.instance.username\" value=\"")
        .unwrap()
        + "name=\"mid.instance.username\" value=\"".len();
    config[start..start + config[start..].find('"').unwrap()].to_string()
}

fn mid_name(index: usize) -> String {
    format!("lab{:03}", index + 1)
}

/// Writes to the instance by midfleet (the MIDs write their own records).
fn admin_writes(instance: &Instance) -> usize {
    instance
        .requests()
        .iter()
        .filter(|request| request["user"] == "admin" && request["method"] != "GET")
        .count()
}

fn starts(lab: &Lab) -> usize {
    lab.hosts
        .iter()
        .map(|host| host.agent_log().matches("Starting MID Server").count())
        .sum()
}

fn locked(instance: &Instance, user: &str) -> bool {
    instance
        .user(user)
        .is_some_and(|record| record["locked_out"] == "true")
}

/// Every generated password written is one no person gave: read back
/// from nowhere. What a test can check: the MID logs in as `user`, Up.
fn assert_all_on(lab: &Lab, instance: &Instance, suffix: &str) {
    for (index, host) in lab.hosts.iter().enumerate() {
        let user = format!("svc_{}_{suffix}", mid_name(index));
        assert_eq!(user_of(lab, index), user, "{}", host.name);
        let record = instance
            .records("ecc_agent")
            .into_iter()
            .find(|record| record["name"] == host.name.as_str())
            .unwrap();
        assert_eq!(record["status"], "Up", "{record}");
        assert_eq!(record["user_name"], user.as_str(), "{record}");
        let sys_user = instance.user(&user).unwrap();
        assert_eq!(sys_user["locked_out"], "false", "{sys_user}");
        assert_eq!(sys_user["active"], "true", "{sys_user}");
    }
}

/// Each MID's Down periods from the instance's ecc_agent history: every
/// one the MID's own stop (reported), never the instance refusing its
/// user, and none longer than `longest` seconds.
fn assert_down_only_while_restarting(instance: &Instance, longest: u64) {
    let state = instance.state();
    let history = state["ecc_agent_history"].as_array().unwrap();
    let mut down_since: BTreeMap<String, u64> = BTreeMap::new();
    let mut periods = 0;
    for change in history {
        let name = change["name"].as_str().unwrap().to_string();
        let at = change["at_ms"].as_u64().unwrap();
        assert_eq!(
            change["cause"], "reported",
            "taken Down by the instance: {change}"
        );
        match change["status"].as_str().unwrap() {
            "Down" => {
                down_since.insert(name, at);
            }
            "Up" => {
                if let Some(since) = down_since.remove(&name) {
                    periods += 1;
                    assert!(
                        at - since <= longest * 1000,
                        "{name} Down for {} ms",
                        at - since
                    );
                }
            }
            _ => {}
        }
    }
    assert!(down_since.is_empty(), "still Down: {down_since:?}");
    assert!(periods > 0, "{history:?}");
}

#[test]
fn a_shared_user_fleet_rotates_to_its_own_pairs_and_alternates_by_age() {
    let hosts = 12;
    let (lab, instance) = shared_fleet(hosts);
    let playbook = rotation_playbook(&lab, &instance.url);
    let day0 = now();

    // Run 1: every MID leaves the shared user for its own A.
    let first = at(&lab, "apply", &playbook, day0, &["--output", "json"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_all_on(&lab, &instance, "a");
    assert!(locked(&instance, INITIAL_USER), "the shared user is locked");
    let audit = std::fs::read_to_string(lab.directory.join("audit.jsonl")).unwrap();
    let record: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(
        record["hosts"][0]["rotation"],
        json!({ "from": INITIAL_USER, "to": "svc_lab001_a", "reason": "first rotation: off `svc_mid_old`" })
    );
    let actions: Vec<&str> = record["instance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|action| action.as_str().unwrap())
        .collect();
    assert!(actions.contains(&"create_user svc_lab001_a"), "{actions:?}");
    assert!(actions.contains(&"grant_role svc_lab001_a"), "{actions:?}");
    assert!(actions.contains(&"locked svc_mid_old"), "{actions:?}");

    // Run 2, the same day: nothing to do, on the hosts or the instance.
    let (writes, started) = (admin_writes(&instance), starts(&lab));
    let plan = at(&lab, "plan", &playbook, day0 + 3600, &["--output", "json"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    let json: Value = serde_json::from_str(&plan.stdout).unwrap();
    let rotation = &json["hosts"][0]["rotation"];
    assert_eq!(rotation["due"], false, "{rotation}");
    assert_eq!(rotation["due_in_days"], 60, "{rotation}");
    assert_eq!(rotation["to_user"], "svc_lab001_b", "{rotation}");
    let human = at(&lab, "plan", &playbook, day0 + 3600, &[]);
    assert!(
        human
            .stdout
            .contains("= lab-001  (no changes; rotation due in 60 days, then to svc_lab001_b; credentials 0 days old)"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains(&format!(
            "Rotation: 0 rotate now, {hosts} not due (the next in 60 days)."
        )),
        "{}",
        human.stdout
    );
    let second = at(&lab, "apply", &playbook, day0 + 3600, &[]);
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    assert_eq!(admin_writes(&instance), writes, "no instance write");
    assert_eq!(starts(&lab), started, "no restart");

    // Run 3, past max_age: every MID to B, each A locked. One host not
    // due yet (it rotated later) shows its days to go beside the others.
    let plan = at(&lab, "plan", &playbook, day0 + 61 * DAY, &[]);
    assert!(
        plan.stdout.contains("↻ rotates now (to svc_lab001_b: 61 days old (max_age 60d))   # a new generated password"),
        "{}",
        plan.stdout
    );
    let plan = at(
        &lab,
        "plan",
        &playbook,
        day0 + 59 * DAY + 1,
        &["--output", "json"],
    );
    let json: Value = serde_json::from_str(&plan.stdout).unwrap();
    let rotation = &json["hosts"][0]["rotation"];
    assert_eq!(
        (
            &rotation["due"],
            &rotation["age_days"],
            &rotation["due_in_days"]
        ),
        (&json!(false), &json!(59), &json!(1)),
        "{rotation}"
    );
    let third = at(&lab, "apply", &playbook, day0 + 61 * DAY, &[]);
    assert_eq!(third.code, 0, "{}{}", third.stdout, third.stderr);
    assert_all_on(&lab, &instance, "b");
    for index in 0..hosts {
        assert!(locked(&instance, &format!("svc_{}_a", mid_name(index))));
    }

    // Run 4: back to A, unlocked and reset with a new password.
    let fourth = at(&lab, "apply", &playbook, day0 + 122 * DAY, &[]);
    assert_eq!(fourth.code, 0, "{}{}", fourth.stdout, fourth.stderr);
    assert_all_on(&lab, &instance, "a");
    for index in 0..hosts {
        assert!(locked(&instance, &format!("svc_{}_b", mid_name(index))));
    }
    let audit = std::fs::read_to_string(lab.directory.join("audit.jsonl")).unwrap();
    let record: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(
        record["hosts"][0]["rotation"]["reason"],
        "61 days old (max_age 60d)"
    );
    assert!(
        record["instance"]
            .as_array()
            .unwrap()
            .contains(&json!("reset_password svc_lab001_a")),
        "{record}"
    );

    // --rotate-now on one host: it rotates at once, whatever its age;
    // 61 days after run 4 the others are due and it is not.
    let forced = at(
        &lab,
        "apply",
        &playbook,
        day0 + 130 * DAY,
        &["--rotate-now", "--limit", "lab-001"],
    );
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert_eq!(user_of(&lab, 0), "svc_lab001_b");
    let mixed = at(&lab, "plan", &playbook, day0 + 183 * DAY, &[]);
    snapshot_plan("rotation_plan_due_and_not_due", &mixed.stdout);
    assert!(
        mixed.stdout.contains("= lab-001  (no changes; rotation due in 7 days, then to svc_lab001_a; credentials 53 days old)"),
        "{}",
        mixed.stdout
    );
    assert!(
        mixed
            .stdout
            .contains("↻ rotates now (to svc_lab002_b: 61 days old (max_age 60d))"),
        "{}",
        mixed.stdout
    );
    assert!(
        mixed.stdout.contains(&format!(
            "Rotation: {} rotate now, 1 not due (the next in 7 days).",
            hosts - 1
        )),
        "{}",
        mixed.stdout
    );
    let mixed = at(
        &lab,
        "plan",
        &playbook,
        day0 + 183 * DAY,
        &["--output", "json"],
    );
    let json: Value = serde_json::from_str(&mixed.stdout).unwrap();
    let days = |index: usize| {
        let rotation = &json["hosts"][index]["rotation"];
        (
            rotation["due"].as_bool().unwrap(),
            rotation["age_days"].as_u64().unwrap(),
            rotation["due_in_days"].as_u64(),
            rotation["to_user"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(days(0), (false, 53, Some(7), "svc_lab001_a".into()));
    assert_eq!(days(1), (true, 61, None, "svc_lab002_b".into()));

    for host in &lab.hosts {
        assert!(
            !host.agent_log().contains("Could not authenticate"),
            "{}: {}",
            host.name,
            host.agent_log()
        );
    }
    assert_down_only_while_restarting(&instance, 30);
}

/// A rotation never resets a user some MID logs in as: the host whose
/// idle user is in use (here by a MID outside the run, on the instance)
/// is an error with nothing changed; the others rotate.
#[test]
fn a_user_another_mid_logs_in_as_is_never_reset_and_only_its_host_stops() {
    // Another MID, outside the inventory, logs in as lab-001's A.
    let (lab, instance) = shared_fleet_with(
        2,
        &[("svc_lab001_a", "its-own-password")],
        vec![json!({ "name": "elsewhere", "status": "Up", "user_name": "svc_lab001_a" })],
    );
    let playbook = rotation_playbook(&lab, &instance.url);
    let before = lab.hosts[0].config();
    let plan = at(&lab, "plan", &playbook, now(), &[]);
    snapshot_plan("rotation_plan_idle_user_in_use", &plan.stdout);
    assert!(
        plan.stdout.contains("! lab-001  error: rotation: `svc_lab001_a` cannot be reset: ecc_agent records log in as it: elsewhere (Up)"),
        "{}",
        plan.stdout
    );
    let applied = at(&lab, "apply", &playbook, now(), &["--output", "json"]);
    assert_eq!(applied.code, 1, "{}", applied.stderr);
    let report: Value = serde_json::from_str(&applied.stdout).unwrap();
    assert_eq!(report["results"][0]["host"], "lab-001");
    assert_eq!(report["results"][0]["result"], "error", "{report}");
    assert_eq!(report["results"][1]["result"], "applied", "{report}");
    assert_eq!(lab.hosts[0].config(), before, "lab-001 untouched");
    let user = instance.user("svc_lab001_a").unwrap();
    assert_eq!(user["user_password"], "its-own-password", "never reset");
    assert_eq!(user["locked_out"], "false");
    assert_eq!(user_of(&lab, 1), "svc_lab002_a");
    // The shared user still has lab-001 on it: kept.
    assert!(!locked(&instance, INITIAL_USER));
}

/// Hosts whose templates give them one pair share its users: without a
/// `store: { file: … }` they are refused, each an error naming the
/// others, before anything changes.
#[test]
fn a_shared_pair_without_a_store_file_is_refused_with_a_clear_error() {
    let (lab, instance) = shared_fleet(2);
    let playbook = rotation_playbook(&lab, &instance.url);
    let text = std::fs::read_to_string(&playbook)
        .unwrap()
        .replace("svc_{{ mid_name }}_a", "svc_shared_a")
        .replace("svc_{{ mid_name }}_b", "svc_shared_b");
    std::fs::write(&playbook, text).unwrap();
    let before: Vec<Vec<u8>> = lab.hosts.iter().map(|host| host.config()).collect();
    let applied = at(&lab, "apply", &playbook, now(), &[]);
    assert_eq!(applied.code, 1, "{}", applied.stderr);
    assert!(
        applied.all_output().contains("error: rotation: hosts lab-001, lab-002 (and the others of `svc_shared_a`) share one pair of users: a shared pair needs `rotate.store` with a `file:`, or a `command:` and a `read:`"),
        "{}",
        applied.all_output()
    );
    let after: Vec<Vec<u8>> = lab.hosts.iter().map(|host| host.config()).collect();
    assert_eq!(before, after);
    assert!(instance.user("svc_shared_a").is_none());
}

/// The rotation playbook with `store:` lines (indented under `rotate:`).
fn with_store(playbook: &Path, store: &str) {
    let text = std::fs::read_to_string(playbook)
        .unwrap()
        .replace("  max_age: 60d\n", &format!("  max_age: 60d\n{store}"));
    std::fs::write(playbook, text).unwrap();
}

/// `store:` gets each generated password before the instance changes:
/// the stored one is the one the MID logs in with. A store that fails
/// stops that MID before anything changes — its file and its instance
/// user untouched, exit 1 naming it — and the others rotate.
#[test]
fn a_store_command_keeps_each_password_and_a_failing_store_stops_only_its_mid() {
    let (lab, instance) = shared_fleet(3);
    let playbook = rotation_playbook(&lab, &instance.url);
    let vault = lab.directory.join("vault");
    std::fs::create_dir(&vault).unwrap();
    // A stand-in for `vault kv put secret/mid/NAME password=-`: it refuses
    // lab002, as a vault that is sealed for that path would.
    let script = lab.directory.join("store.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = lab002 ] && {{ echo 'store: permission denied' >&2; exit 2; }}\ncat > {}/$1.$2\n",
            vault.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    with_store(
        &playbook,
        &format!(
            "  store:\n    command: [\"{}\", \"{{{{ mid_name }}}}\", \"{{{{ rotate_user }}}}\"]\n",
            script.display()
        ),
    );
    let before = lab.hosts[1].config();
    let applied = at(&lab, "apply", &playbook, now(), &["--output", "json"]);
    assert_eq!(applied.code, 1, "{}", applied.stderr);
    let report: Value = serde_json::from_str(&applied.stdout).unwrap();
    let results = report["results"].as_array().unwrap();
    assert_eq!(results[1]["host"], "lab-002");
    assert_eq!(results[1]["result"], "error", "{report}");
    let message = results[1]["message"].as_str().unwrap();
    assert!(
        message.contains("rotation: storing the new password failed:")
            && message.contains("failed (exit status: 2); nothing was changed"),
        "{message}"
    );
    assert!(
        applied.stderr.contains("store: permission denied"),
        "{}",
        applied.stderr
    );
    assert_eq!(lab.hosts[1].config(), before, "lab-002 untouched");
    assert!(
        instance.user("svc_lab002_a").is_none(),
        "its user untouched"
    );
    assert!(!locked(&instance, INITIAL_USER), "lab-002 still uses it");
    for (index, name) in [(0, "lab001"), (2, "lab003")] {
        assert_eq!(results[index]["result"], "applied", "{report}");
        let user = format!("svc_{name}_a");
        assert_eq!(user_of(&lab, index), user);
        let stored = std::fs::read_to_string(vault.join(format!("{name}.{user}"))).unwrap();
        let on_instance = instance.user(&user).unwrap()["user_password"].clone();
        assert_eq!(
            on_instance,
            stored.as_str(),
            "the stored password is the MID's"
        );
        assert_eq!(stored.len(), 32);
    }
    let plan = at(&lab, "plan", &playbook, now(), &["--output", "json"]);
    let json: Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(
        json["hosts"][1]["rotation"]["store"],
        json!({ "command": [script.display().to_string(), "lab002", "svc_lab002_a"] })
    );
}

#[test]
fn a_store_file_is_written_0600_before_the_instance_changes() {
    let (lab, instance) = shared_fleet(1);
    let playbook = rotation_playbook(&lab, &instance.url);
    let folder = lab.directory.join("passwords");
    std::fs::create_dir(&folder).unwrap();
    with_store(
        &playbook,
        &format!(
            "  store:\n    file: \"{}/{{{{ rotate_user }}}}\"\n",
            folder.display()
        ),
    );
    let applied = at(&lab, "apply", &playbook, now(), &[]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let path = folder.join("svc_lab001_a");
    let stored = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        instance.user("svc_lab001_a").unwrap()["user_password"],
        stored.as_str()
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    // A missing folder: that host stops before anything changes.
    std::fs::remove_dir_all(&folder).unwrap();
    let later = at(&lab, "apply", &playbook, now() + 61 * DAY, &[]);
    assert_eq!(later.code, 1, "{}", later.stderr);
    assert!(
        later
            .all_output()
            .contains("its folder does not exist; nothing was changed"),
        "{}",
        later.all_output()
    );
    assert_eq!(user_of(&lab, 0), "svc_lab001_a");
    assert!(instance.user("svc_lab001_b").is_none());
}

/// The shared-pair playbook: every host on `svc_shared_a`/`_b`, the
/// group's password kept in `folder`, one host per batch.
fn shared_pair_playbook(lab: &Lab, instance: &Instance, folder: &Path) -> PathBuf {
    let playbook = rotation_playbook(lab, &instance.url);
    let text = std::fs::read_to_string(&playbook)
        .unwrap()
        .replace("svc_{{ mid_name }}_a", "svc_shared_a")
        .replace("svc_{{ mid_name }}_b", "svc_shared_b")
        .replace("serial: [100%]", "serial: [1]");
    std::fs::write(&playbook, text).unwrap();
    with_store(
        &playbook,
        &format!(
            "  store:\n    file: \"{}/{{{{ rotate_user }}}}\"\n",
            folder.display()
        ),
    );
    playbook
}

/// Hosts sharing one pair move as one group: the idle user is reset once
/// with one stored password. `kill -9` of midfleet after 2 of the 4 moved:
/// the next run moves the other 2 with the stored password, never
/// resetting the user the first 2 already log in as; the shared old user
/// is locked once the last has left it.
#[test]
fn a_shared_pair_moves_as_one_group_and_a_killed_run_finishes_with_the_stored_password() {
    let (lab, instance) = shared_fleet(4);
    let folder = lab.directory.join("group-passwords");
    std::fs::create_dir(&folder).unwrap();
    let playbook = shared_pair_playbook(&lab, &instance, &folder);
    let day0 = now();
    let clock = midfleet::report::rfc3339(day0);
    let arguments = [
        "apply".to_string(),
        "-i".into(),
        lab.inventory.display().to_string(),
        playbook.display().to_string(),
        "--known-hosts".into(),
        lab.known_hosts.display().to_string(),
        "--yes".into(),
    ];
    let mut child = crate::support::midfleet_command(
        &arguments,
        &[
            ("MIDFLEET_TEST_ADMIN", ADMIN_PASSWORD),
            ("MIDFLEET_NOW", clock.as_str()),
        ],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while (0..4)
        .filter(|&index| user_of(&lab, index) == "svc_shared_a")
        .count()
        < 2
    {
        assert!(std::time::Instant::now() < deadline, "2 hosts never moved");
        assert!(
            child.try_wait().unwrap().is_none(),
            "midfleet ended before 2 hosts moved"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let requests_at_kill = instance.requests().len();
    let stored = std::fs::read_to_string(folder.join("svc_shared_a")).unwrap();
    assert_eq!(
        instance.user("svc_shared_a").unwrap()["user_password"],
        stored.as_str()
    );
    let moved: Vec<usize> = (0..4)
        .filter(|&index| user_of(&lab, index) == "svc_shared_a")
        .collect();
    assert_eq!(moved, [0, 1], "one host per batch, in order");
    // The second host's transaction finishes on the host by itself.
    let up = |index: usize| {
        instance.records("ecc_agent").iter().any(|record| {
            record["name"] == lab.hosts[index].name.as_str()
                && record["status"] == "Up"
                && record["user_name"] == "svc_shared_a"
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !(up(0) && up(1)) {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            instance.records("ecc_agent")
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));

    let plan = at(&lab, "plan", &playbook, day0 + 3600, &[]);
    assert!(
        plan.stdout.contains("↻ rotates now (to svc_shared_a: joins its shared pair's group on `svc_shared_a` with the stored password)   # the stored password, no reset; shared with lab-001, lab-002, lab-004"),
        "{}",
        plan.stdout
    );
    let rerun = at(&lab, "apply", &playbook, day0 + 3600, &[]);
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    for index in 0..4 {
        assert_eq!(user_of(&lab, index), "svc_shared_a");
        assert!(up(index), "{:?}", instance.records("ecc_agent"));
    }
    let user_id = instance.user("svc_shared_a").unwrap()["sys_id"]
        .as_str()
        .unwrap()
        .to_string();
    let resets: Vec<Value> = instance.requests()[requests_at_kill..]
        .iter()
        .filter(|request| request["method"] != "GET")
        .filter(|request| request["path"].as_str().unwrap().contains(&user_id))
        .cloned()
        .collect();
    assert!(resets.is_empty(), "the shared user was written: {resets:?}");
    assert_eq!(
        instance.user("svc_shared_a").unwrap()["user_password"],
        stored.as_str()
    );
    assert!(
        locked(&instance, INITIAL_USER),
        "locked once the last host left it"
    );
    for host in &lab.hosts {
        assert!(
            !host.agent_log().contains("Could not authenticate"),
            "{}",
            host.agent_log()
        );
    }

    // 61 days on, the whole group moves to B at once: one reset, one
    // password, A locked after the last.
    let later = at(&lab, "apply", &playbook, day0 + 61 * DAY, &[]);
    assert_eq!(later.code, 0, "{}", later.stderr);
    let stored_b = std::fs::read_to_string(folder.join("svc_shared_b")).unwrap();
    for index in 0..4 {
        assert_eq!(user_of(&lab, index), "svc_shared_b");
    }
    assert_eq!(
        instance.user("svc_shared_b").unwrap()["user_password"],
        stored_b.as_str()
    );
    assert!(locked(&instance, "svc_shared_a"));
    let creations = instance
        .requests()
        .iter()
        .filter(|request| {
            request["method"] == "POST" && request["path"] == "/api/now/table/sys_user"
        })
        .count();
    assert_eq!(creations, 2, "svc_shared_a once, svc_shared_b once");
}

/// A run that ended (killed) after its hosts moved but before it locked
/// the user they left: the next run, with nothing due, locks it — one
/// write — and a run after that writes nothing.
#[test]
fn a_user_left_unlocked_by_a_run_that_ended_early_is_locked_by_the_next() {
    use midfleet::instance::{table, Client, Credentials, Settings};
    let (lab, instance) = shared_fleet(2);
    let playbook = rotation_playbook(&lab, &instance.url);
    let day0 = now();
    let first = at(&lab, "apply", &playbook, day0, &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(locked(&instance, INITIAL_USER));
    // As if the run had died before its last step.
    let client = Client::new(&instance.url, None, Settings::with_timeout(5)).unwrap();
    let admin = Credentials::new(
        "admin".into(),
        midfleet::secret::SecretValue::new(ADMIN_PASSWORD.into()),
    );
    let sys_id = instance.user(INITIAL_USER).unwrap()["sys_id"]
        .as_str()
        .unwrap()
        .to_string();
    table::update(
        &client,
        &admin,
        "sys_user",
        &sys_id,
        &json!({ "locked_out": "false" }),
        false,
    )
    .unwrap();
    let writes = admin_writes(&instance);
    let started = starts(&lab);
    let next = at(&lab, "apply", &playbook, day0 + 3600, &["--output", "json"]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    assert!(locked(&instance, INITIAL_USER), "locked by the next run");
    assert_eq!(admin_writes(&instance), writes + 1, "that lock only");
    assert_eq!(starts(&lab), started, "no restart");
    let audit = std::fs::read_to_string(lab.directory.join("audit.jsonl")).unwrap();
    let record: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(
        record["instance"],
        json!([format!("locked {INITIAL_USER}")]),
        "{record}"
    );
    let writes = admin_writes(&instance);
    let again = at(&lab, "apply", &playbook, day0 + 7200, &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(admin_writes(&instance), writes, "nothing left to do");
    assert!(!again.stderr.contains("warning"), "{}", again.stderr);
}

/// `check` finds what a `rotate:` section gets wrong, offline, each with
/// its file, line and column.
#[test]
fn check_reports_rotate_problems_with_their_place() {
    let scratch = crate::support::Scratch::new("rotate-check", b"");
    let directory = std::path::PathBuf::from(scratch.directory_text());
    let inventory = directory.join("inventory.yml");
    std::fs::write(
        &inventory,
        "all:\n  hosts:\n    mid-01: { ansible_host: 127.0.0.1, mid_name: m01 }\n",
    )
    .unwrap();
    let playbook = directory.join("rotate.yml");
    std::fs::write(
        &playbook,
        "hosts: all\nset:\n  mid.instance.password: { secret: \"env:P\" }\nrotate:\n  users: [\"svc_{{ mid_name }}\", \"SVC_{{ mid_name }}\"]\n  \
         password: { generate: { length: 8 } }\n  max_age: 60\n  store: { command: [\"{{ tool }}\", put] }\n",
    )
    .unwrap();
    let run = midfleet(
        [
            "check",
            "-i",
            inventory.to_str().unwrap(),
            playbook.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(run.code, 3, "{}", run.all_output());
    crate::support::settings_for(&scratch)
        .bind(|| insta::assert_snapshot!("rotation_check_problems", run.stderr));
}

/// A shared pair with a `command:` store and its `read:`: a host that
/// moved alone (`--limit`) is joined by the rest of its group with the
/// password read back, and the user is not reset.
#[test]
fn a_shared_pair_with_a_store_command_joins_with_the_password_it_reads_back() {
    let (lab, instance) = shared_fleet(2);
    let vault = lab.directory.join("kv");
    std::fs::create_dir(&vault).unwrap();
    let put = lab.directory.join("put.sh");
    let get = lab.directory.join("get.sh");
    std::fs::write(&put, format!("#!/bin/sh\ncat > {}/$1\n", vault.display())).unwrap();
    std::fs::write(&get, format!("#!/bin/sh\ncat {}/$1\n", vault.display())).unwrap();
    for script in [&put, &get] {
        std::fs::set_permissions(script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let playbook = rotation_playbook(&lab, &instance.url);
    let text = std::fs::read_to_string(&playbook)
        .unwrap()
        .replace("svc_{{ mid_name }}_a", "svc_shared_a")
        .replace("svc_{{ mid_name }}_b", "svc_shared_b");
    std::fs::write(&playbook, text).unwrap();
    with_store(
        &playbook,
        &format!(
            "  store:\n    command: [\"{}\", \"{{{{ rotate_user }}}}\"]\n    read: [\"{}\", \"{{{{ rotate_user }}}}\"]\n",
            put.display(),
            get.display()
        ),
    );
    let day0 = now();
    let first = at(&lab, "apply", &playbook, day0, &["--limit", "lab-001"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let stored = std::fs::read_to_string(vault.join("svc_shared_a")).unwrap();
    assert_eq!(
        instance.user("svc_shared_a").unwrap()["user_password"],
        stored.as_str()
    );
    let writes = admin_writes(&instance);
    let user_id = instance.user("svc_shared_a").unwrap()["sys_id"]
        .as_str()
        .unwrap()
        .to_string();
    let requests = instance.requests().len();
    let rest = at(&lab, "apply", &playbook, day0 + 60, &[]);
    assert_eq!(rest.code, 0, "{}{}", rest.stdout, rest.stderr);
    assert_eq!(user_of(&lab, 1), "svc_shared_a");
    assert_eq!(
        instance.user("svc_shared_a").unwrap()["user_password"],
        stored.as_str()
    );
    assert!(
        instance.requests()[requests..]
            .iter()
            .all(|request| request["method"] == "GET"
                || !request["path"].as_str().unwrap().contains(&user_id)),
        "the shared user was written"
    );
    assert!(
        admin_writes(&instance) > writes,
        "the validation and the lock"
    );
    assert!(locked(&instance, INITIAL_USER));
}

/// `kill -9` of midfleet in the middle of a rotation of per-MID pairs:
/// every MID still runs as a user the instance accepts, and the next run
/// finishes the job (the rest moved, the shared user locked) with no
/// refused login anywhere.
#[test]
fn a_rotation_killed_midway_is_finished_by_the_next_run() {
    let (lab, instance) = shared_fleet(3);
    let playbook = rotation_playbook(&lab, &instance.url);
    let text = std::fs::read_to_string(&playbook)
        .unwrap()
        .replace("serial: [100%]", "serial: [1]");
    std::fs::write(&playbook, text).unwrap();
    let day0 = now();
    let clock = midfleet::report::rfc3339(day0);
    let arguments = [
        "apply".to_string(),
        "-i".into(),
        lab.inventory.display().to_string(),
        playbook.display().to_string(),
        "--known-hosts".into(),
        lab.known_hosts.display().to_string(),
        "--yes".into(),
    ];
    let mut child = crate::support::midfleet_command(
        &arguments,
        &[
            ("MIDFLEET_TEST_ADMIN", ADMIN_PASSWORD),
            ("MIDFLEET_NOW", clock.as_str()),
        ],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while user_of(&lab, 0) != "svc_lab001_a" {
        assert!(std::time::Instant::now() < deadline, "lab-001 never moved");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Whatever was under way on lab-001 ends by itself on the host.
    std::thread::sleep(std::time::Duration::from_secs(5));
    for (index, host) in lab.hosts.iter().enumerate() {
        let user = user_of(&lab, index);
        assert!(
            user == INITIAL_USER || user == format!("svc_{}_a", mid_name(index)),
            "{}: {user}",
            host.name
        );
    }
    let rerun = at(&lab, "apply", &playbook, day0 + 60, &[]);
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    assert_all_on(&lab, &instance, "a");
    assert!(locked(&instance, INITIAL_USER));
    for host in &lab.hosts {
        assert!(
            !host.agent_log().contains("Could not authenticate"),
            "{}",
            host.agent_log()
        );
    }
    let again = at(&lab, "apply", &playbook, day0 + 120, &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
}

/// A `rotate.users` template that renders to the instance section's own
/// user (here `admin`, by a host variable): resetting it would replace the
/// password midfleet logs in with by a generated one nobody knows (every
/// later run locked out) and hand the admin's roles to a MID. That host
/// is an error of the plan; the admin is untouched, the other host moves.
#[test]
fn a_rotation_user_that_is_the_instance_admin_is_never_reset() {
    let (lab, instance) = shared_fleet(2);
    let playbook = rotation_playbook(&lab, &instance.url);
    let text = std::fs::read_to_string(&playbook).unwrap().replace(
        "\"svc_{{ mid_name }}_a\"",
        "\"{{ 'admin' if mid_name == 'lab001' else 'svc_' ~ mid_name ~ '_a' }}\"",
    );
    std::fs::write(&playbook, text).unwrap();
    let before = lab.hosts[0].config();
    let admin_before = instance.user("admin").unwrap();
    let plan = at(&lab, "plan", &playbook, now(), &[]);
    assert!(
        plan.stdout
            .contains("! lab-001  error: rotation: `admin` cannot be reset: it is the user midfleet logs in to the instance as"),
        "{}",
        plan.stdout
    );
    let applied = at(&lab, "apply", &playbook, now(), &["--output", "json"]);
    assert_eq!(applied.code, 1, "{}", applied.stderr);
    let report: Value = serde_json::from_str(&applied.stdout).unwrap();
    assert_eq!(report["results"][0]["result"], "error", "{report}");
    assert_eq!(report["results"][1]["result"], "applied", "{report}");
    assert_eq!(lab.hosts[0].config(), before, "lab-001 untouched");
    let admin = instance.user("admin").unwrap();
    assert_eq!(admin["user_password"], admin_before["user_password"]);
    assert_eq!(admin, admin_before, "the admin never written");
    assert_eq!(user_of(&lab, 1), "svc_lab002_a");
}

/// The instance answers 403 to every write of `sys_user` (an integration
/// user whose ACLs do not cover user updates): the run stops before any
/// host with exit 1 naming the user, every MID stays on the user it logs
/// in with, and the next run (the ACL fixed) rotates.
#[test]
fn an_instance_refusing_the_user_update_stops_before_any_host() {
    let lab = lab(LabSpec::new(2, &midsim()));
    let records = lab
        .hosts
        .iter()
        .map(|host| json!({ "name": host.name, "status": "Up", "user_name": INITIAL_USER, "validated": "true" }))
        .collect();
    let instance = Instance::start(
        Some(seed(
            &[
                (INITIAL_USER.to_string(), INITIAL_PASSWORD),
                ("svc_lab001_a".to_string(), "an-old-one"),
            ],
            records,
        )),
        &["--read-only", "sys_user"],
    );
    connect_mids(&lab, &instance, None);
    let playbook = rotation_playbook(&lab, &instance.url);
    let before: Vec<Vec<u8>> = lab.hosts.iter().map(|host| host.config()).collect();
    let applied = at(&lab, "apply", &playbook, now(), &[]);
    assert_eq!(applied.code, 1, "{}", applied.all_output());
    assert!(
        applied.all_output().contains("svc_lab001_a"),
        "{}",
        applied.all_output()
    );
    let after: Vec<Vec<u8>> = lab.hosts.iter().map(|host| host.config()).collect();
    assert_eq!(before, after, "no host touched");
    assert_eq!(
        instance.user("svc_lab001_a").unwrap()["user_password"],
        "an-old-one"
    );
    assert!(!locked(&instance, INITIAL_USER));
    for index in 0..2 {
        assert_eq!(user_of(&lab, index), INITIAL_USER);
    }
}

/// A store file path that renders the same for hosts moving to different
/// users (no `{{ rotate_user }}` or `{{ mid_name }}` in it): each host's
/// store would overwrite the one before, the file keeping only the last
/// password — and a shared pair joining later would read another pair's
/// password and try it against a user MIDs log in with. Those hosts are
/// errors of the plan; nothing is stored or changed.
#[test]
fn a_store_file_shared_by_hosts_moving_to_different_users_is_refused() {
    let (lab, instance) = shared_fleet(2);
    let playbook = rotation_playbook(&lab, &instance.url);
    let folder = lab.directory.join("passwords");
    std::fs::create_dir(&folder).unwrap();
    with_store(
        &playbook,
        &format!("  store:\n    file: \"{}/last\"\n", folder.display()),
    );
    let before: Vec<Vec<u8>> = lab.hosts.iter().map(|host| host.config()).collect();
    let applied = at(&lab, "apply", &playbook, now(), &[]);
    assert_eq!(applied.code, 1, "{}", applied.all_output());
    let expected = format!(
        "error: rotation: `rotate.store.file` renders to `{}/last` for lab-001 (to svc_lab001_a) and lab-002 (to svc_lab002_a)",
        folder.display()
    );
    assert!(
        applied.all_output().contains(&expected),
        "{}",
        applied.all_output()
    );
    let after: Vec<Vec<u8>> = lab.hosts.iter().map(|host| host.config()).collect();
    assert_eq!(before, after, "no host touched");
    assert!(!folder.join("last").exists(), "nothing stored");
    assert!(instance.user("svc_lab001_a").is_none());
}

/// `--limit` splitting a shared pair without a readable store: the host
/// moved alone escaped the rule that a shared pair needs one, and the
/// group could then never be finished (the others refused every day, or
/// unable to reset the user the first one logs in as). It is refused as
/// the whole group is, before anything changes.
#[test]
fn a_limit_splitting_a_shared_pair_without_a_store_is_refused() {
    let (lab, instance) = shared_fleet(2);
    let playbook = rotation_playbook(&lab, &instance.url);
    let text = std::fs::read_to_string(&playbook)
        .unwrap()
        .replace("svc_{{ mid_name }}_a", "svc_shared_a")
        .replace("svc_{{ mid_name }}_b", "svc_shared_b");
    std::fs::write(&playbook, text).unwrap();
    let before = lab.hosts[0].config();
    let applied = at(&lab, "apply", &playbook, now(), &["--limit", "lab-001"]);
    assert_eq!(applied.code, 1, "{}", applied.all_output());
    assert!(
        applied.all_output().contains(
            "error: rotation: lab-001 shares its pair `svc_shared_a`/`svc_shared_b` with lab-002 (not selected): a shared pair needs `rotate.store`"
        ),
        "{}",
        applied.all_output()
    );
    assert_eq!(lab.hosts[0].config(), before, "lab-001 untouched");
    assert!(instance.user("svc_shared_a").is_none());
}

/// A shared pair split by `--limit … --rotate-now` (one member moved
/// alone to B, the other still on A), then both due at once: they were
/// refused ("would move to different users") every day for good, and the
/// documented remedy (`--limit` and `--rotate-now` on one of them) could
/// only fail (its next user in use by the other). Now the member on A
/// joins B with the stored password (B not reset), the one on B waits a
/// day, and the group then rotates together.
#[test]
fn a_shared_pair_split_by_limit_and_due_at_once_rejoins_without_a_person() {
    let (lab, instance) = shared_fleet(2);
    let folder = lab.directory.join("group-passwords");
    std::fs::create_dir(&folder).unwrap();
    let playbook = shared_pair_playbook(&lab, &instance, &folder);
    let day0 = now();
    let first = at(&lab, "apply", &playbook, day0, &[]);
    assert_eq!(first.code, 0, "{}", first.all_output());
    let split = at(
        &lab,
        "apply",
        &playbook,
        day0 + 60,
        &["--limit", "lab-001", "--rotate-now"],
    );
    assert_eq!(split.code, 0, "{}", split.all_output());
    assert_eq!(
        (user_of(&lab, 0), user_of(&lab, 1)),
        ("svc_shared_b".into(), "svc_shared_a".into())
    );
    let b = instance.user("svc_shared_b").unwrap();
    let b_id = b["sys_id"].as_str().unwrap().to_string();
    let requests = instance.requests().len();
    let both_due = at(&lab, "apply", &playbook, day0 + 61 * DAY, &[]);
    assert_eq!(both_due.code, 0, "{}", both_due.all_output());
    assert_eq!(user_of(&lab, 1), "svc_shared_b", "joined");
    assert_eq!(
        instance.user("svc_shared_b").unwrap()["user_password"],
        b["user_password"]
    );
    assert!(
        instance.requests()[requests..]
            .iter()
            .all(|request| request["method"] == "GET"
                || !request["path"].as_str().unwrap().contains(&b_id)),
        "the user lab-001 logs in as was written"
    );
    assert!(locked(&instance, "svc_shared_a"));
    // Later, both due again: the group moves together to A.
    let later = at(&lab, "apply", &playbook, day0 + 123 * DAY, &[]);
    assert_eq!(later.code, 0, "{}", later.all_output());
    assert_eq!(
        (user_of(&lab, 0), user_of(&lab, 1)),
        ("svc_shared_a".into(), "svc_shared_a".into())
    );
    assert!(locked(&instance, "svc_shared_b"));
    assert_down_only_while_restarting(&instance, 30);
}
