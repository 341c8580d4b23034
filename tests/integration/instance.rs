//! The `instance:` section end to end: the lab's hosts and an emulated
//! instance (`midfleet-instancesim`). Nothing touches a host before every
//! new login has been accepted by the instance.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use midfleet_lab::{Lab, LabHost, LabSpec};
use serde_json::json;

use crate::instancesim::{test_ca, user_record, Instance, ADMIN_PASSWORD};
use crate::lab::{lab, midsim};
use crate::support::{midfleet, Run};

pub(crate) const PASSWORD: &str = "Inst4nce-Rotated_pw";
const WRONG: &str = "Wr0ng-N3w-pw";

fn new_user(host: &LabHost) -> String {
    format!("svc_{}", host.name.replace('-', ""))
}

/// A lab of `hosts` whose MIDs accept their new users with `PASSWORD`
/// (in the lab's credential store, used until `connect_mids`).
fn instance_lab(hosts: usize) -> Lab {
    let lab = lab(LabSpec::new(hosts, &midsim()));
    for host in &lab.hosts {
        lab.add_instance_user(&new_user(host), PASSWORD).unwrap();
    }
    lab
}

/// An instance's seed: `users` (name, password), each granted
/// `mid_server`, and `agents` as `ecc_agent` records.
pub(crate) fn seed(users: &[(String, &str)], agents: Vec<serde_json::Value>) -> serde_json::Value {
    let records: Vec<serde_json::Value> = users
        .iter()
        .map(|(user, password)| {
            let mut record = user_record(user, password);
            record["sys_id"] = json!(format!("user-{user}"));
            record
        })
        .collect();
    let grants: Vec<serde_json::Value> = users
        .iter()
        .map(|(user, _)| json!({ "user": format!("user-{user}"), "role": "role-mid-server" }))
        .collect();
    json!({ "tables": {
        "sys_user": records,
        "sys_user_role": [{ "sys_id": "role-mid-server", "name": "mid_server" }],
        "sys_user_has_role": grants,
        "ecc_agent": agents,
    } })
}

/// An instance that knows the lab's new users with `password`.
fn seeded_instance(lab: &Lab, password: &str, arguments: &[&str]) -> Instance {
    let users: Vec<(String, &str)> = lab
        .hosts
        .iter()
        .map(|host| (new_user(host), password))
        .collect();
    Instance::start(Some(seed(&users, Vec::new())), arguments)
}

/// From their next start, the lab's MIDs log in against `instance` and
/// report their `ecc_agent` records there, Up and Down.
pub(crate) fn connect_mids(lab: &Lab, instance: &Instance, ca_file: Option<&Path>) {
    for host in &lab.hosts {
        host.set_knob("instance_url", &instance.url).unwrap();
        if let Some(ca_file) = ca_file {
            host.set_knob("instance_ca", ca_file.to_str().unwrap())
                .unwrap();
        }
    }
}

/// The `ecc_agent` record of the lab host's MID, as `status user_name`.
fn agent(instance: &Instance, host: &LabHost) -> String {
    let name = host.name.clone();
    instance
        .records("ecc_agent")
        .iter()
        .find(|record| record["name"] == name.as_str())
        .map(|record| {
            format!(
                "{} {}",
                record["status"].as_str().unwrap(),
                record["user_name"].as_str().unwrap()
            )
        })
        .unwrap_or_else(|| format!("no record {name}: {:?}", instance.records("ecc_agent")))
}

/// The rotation playbook with an `instance:` section (`extra` lines
/// indented under it).
pub(crate) fn playbook(lab: &Lab, url: &str, extra: &str) -> PathBuf {
    let path = lab.directory.join("rotate-instance.yml");
    std::fs::write(
        &path,
        format!(
            "hosts: lab\nset:\n  mid.instance.username: \"svc_{{{{ mid_name }}}}\"\n  \
             mid.instance.password: {{ secret: \"env:MIDFLEET_TEST_PASSWORD\" }}\nhealth:\n  timeout: 20\n\
             rollout:\n  serial: [100%]\ninstance:\n  url: {url}\n  user: admin\n  \
             password: {{ secret: \"env:MIDFLEET_TEST_ADMIN\" }}\n{extra}"
        ),
    )
    .unwrap();
    path
}

pub(crate) fn run(
    lab: &Lab,
    command: &str,
    playbook: &Path,
    password: &str,
    extra: &[&str],
) -> Run {
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
    midfleet(
        arguments,
        &[
            ("MIDFLEET_TEST_PASSWORD", password),
            ("MIDFLEET_TEST_ADMIN", ADMIN_PASSWORD),
        ],
    )
}

fn configs(lab: &Lab) -> Vec<Vec<u8>> {
    lab.hosts.iter().map(LabHost::config).collect()
}

/// No midfleet run folder on any host: nothing was staged.
fn untouched(lab: &Lab) -> bool {
    lab.hosts
        .iter()
        .all(|host| !host.local_mid_home.join(".midfleet/runs").exists())
}

#[test]
fn a_wrong_new_password_stops_the_run_before_any_host() {
    let lab = instance_lab(2);
    // The instance knows the new users with another password than the
    // playbook's.
    let instance = seeded_instance(&lab, PASSWORD, &[]);
    let playbook = playbook(&lab, &instance.url, "");
    let before = configs(&lab);

    let plan = run(&lab, "plan", &playbook, WRONG, &[]);
    assert_eq!(plan.code, 1, "{}{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains(
            "login svc_lab001 (lab-001): the instance refused the new password of `svc_lab001` (401)"
        ),
        "{}",
        plan.stdout
    );

    let applied = run(&lab, "apply", &playbook, WRONG, &[]);
    assert_eq!(applied.code, 1, "{}{}", applied.stdout, applied.stderr);
    let output = applied.all_output();
    assert!(output.contains("svc_lab001"), "{output}");
    assert!(output.contains("no host was touched"), "{output}");
    assert!(!output.contains(WRONG), "the password shows: {output}");
    assert!(!plan.all_output().contains(WRONG), "the password shows");
    assert_eq!(configs(&lab), before, "config.xml changed");
    assert!(untouched(&lab));
    // One login attempt per distinct user and password, per run: the
    // instance's lock-out counter is not run up.
    let refused = instance
        .requests()
        .iter()
        .filter(|request| request["status"] == 401)
        .count();
    assert_eq!(
        refused,
        2 * 2,
        "2 users, plan and apply: {:?}",
        instance.requests()
    );
}

#[test]
fn ensure_user_creates_the_users_grants_the_role_rotates_validates_and_locks_the_old_user() {
    let lab = instance_lab(2);
    // An instance that knows the fleet's old user and its validated MIDs,
    // but not the new users.
    let old = [(
        midfleet_lab::INITIAL_USER.to_string(),
        midfleet_lab::INITIAL_PASSWORD,
    )];
    let records = lab
        .hosts
        .iter()
        .map(|host| json!({ "name": host.name, "status": "Up", "user_name": midfleet_lab::INITIAL_USER, "validated": "true" }))
        .collect();
    let instance = Instance::start(Some(seed(&old, records)), &[]);
    // The MIDs log in against the emulated instance: only the users
    // midfleet creates, with the password it set, let them start.
    connect_mids(&lab, &instance, None);
    let playbook = playbook(
        &lab,
        &instance.url,
        "  ensure_user: true\n  retire_old_user: lock\n",
    );

    let plan = run(&lab, "plan", &playbook, PASSWORD, &["--output", "json"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    let json: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let actions: Vec<String> = json["instance_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| {
            format!(
                "{} {}",
                change["action"].as_str().unwrap(),
                change["user"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            "create_user svc_lab001",
            "set_password svc_lab001",
            "grant_role svc_lab001",
            "create_user svc_lab002",
            "set_password svc_lab002",
            "grant_role svc_lab002",
            // The key pair is reset (the user changes): after each restart.
            "validate_mid lab-001",
            "validate_mid lab-002",
            "lock_user svc_mid_old",
        ]
    );
    let warnings = json["hosts"][0]["warnings"].to_string();
    assert!(!warnings.contains("key pair reset"), "{warnings}");
    assert_eq!(json["instance"]["preflight"][0]["status"], "after_creation");
    assert!(!plan.stdout.contains(PASSWORD));
    assert!(
        instance.user("svc_lab001").is_none(),
        "plan changes nothing"
    );

    let human = run(&lab, "plan", &playbook, PASSWORD, &[]);
    assert!(
        human.stdout.contains("+ create_user svc_lab001"),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stdout
            .contains("+ set_password svc_lab001 = (sensitive)"),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stdout
            .contains("+ grant_role mid_server to svc_lab001"),
        "{}",
        human.stdout
    );

    assert!(
        human.stdout.contains(
            "+ validate_mid lab-001   # ecc_agent: after its restart: Invalidate, then Validate"
        ),
        "{}",
        human.stdout
    );
    let applied = run(&lab, "apply", &playbook, PASSWORD, &[]);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(!applied.all_output().contains(PASSWORD));
    for host in &lab.hosts {
        let user = new_user(host);
        let record = instance
            .user(&user)
            .unwrap_or_else(|| panic!("{user} created"));
        assert_eq!(record["active"], "true");
        assert_eq!(record["web_service_access_only"], "true");
        assert_eq!(record["internal_integration_user"], "true");
        assert_eq!(record["user_password"], PASSWORD, "set as a display value");
        assert_eq!(instance.roles_of(&user), ["mid_server"]);
        let config = String::from_utf8(host.config()).unwrap();
        assert!(config.contains(&format!("value=\"{user}\"")), "{config}");
        // Three logins as the new user: midfleet's check, the MID's at
        // its start, and again at the restart Validate asked for.
        let logins = instance
            .requests()
            .iter()
            .filter(|request| {
                request["user"] == user.as_str()
                    && request["status"] == 200
                    && request["path"] == "/api/now/table/sys_user"
            })
            .count();
        assert_eq!(logins, 3, "{:?}", instance.requests());
        // And health waited for the MID's record to be Up as the new user.
        assert_eq!(agent(&instance, host), format!("Up {user}"));
        // Then Invalidate, then Validate, as the UI actions do: the record
        // is validated again, and the MID picked up and answered both
        // commands, in that order. (midfleet queues Validate once the MID
        // has picked up Invalidate; its answer may come before or after.)
        let record = instance
            .records("ecc_agent")
            .into_iter()
            .find(|record| record["name"] == host.name.as_str())
            .unwrap();
        assert_eq!(record["validated"], "true", "{record}");
        let agent_name = format!("mid.server.{}", host.name);
        let records = instance.records("ecc_queue");
        let mut queue: Vec<String> = records
            .iter()
            .filter(|record| record["agent"] == agent_name.as_str())
            .map(|record| {
                format!(
                    "{} {} {} {} {}",
                    record["queue"].as_str().unwrap(),
                    record["topic"].as_str().unwrap(),
                    record["source"].as_str().unwrap(),
                    record["name"].as_str().unwrap_or("-"),
                    record["state"].as_str().unwrap(),
                )
            })
            .collect();
        // midfleet's commands in its order, then the MID's answers in
        // theirs (a stable sort keeps each side's order).
        queue.sort_by_key(|line| !line.starts_with("output"));
        assert_eq!(
            queue,
            [
                "output SystemCommand delete_mid_keypair Invalidate processed",
                "output SystemCommand restartService - processed",
                "input SystemCommand delete_mid_keypair Invalidate ready",
                "input SystemCommand restartService - ready",
            ],
            "{:?}",
            instance.records("ecc_queue")
        );
        assert!(host.wrapper_log().contains("JVM requested a restart."));
        assert!(host
            .agent_log()
            .contains(&format!("ecc_agent {} is validated", host.name)));
    }
    let report: serde_json::Value =
        serde_json::from_str(&run(&lab, "plan", &playbook, PASSWORD, &["--output", "json"]).stdout)
            .unwrap();
    assert_eq!(report["instance_changes"], json!([]), "{report}");
    assert!(
        applied
            .stderr
            .contains("instance: 2 of 2 MIDs validated (Invalidate, then Validate)"),
        "{}",
        applied.stderr
    );
    assert!(
        applied
            .stderr
            .contains("instance: old user svc_mid_old locked"),
        "{}",
        applied.stderr
    );
    assert_eq!(instance.user("svc_mid_old").unwrap()["locked_out"], "true");
    // Idempotent: nothing left to do, on the hosts or the instance.
    let again = run(&lab, "plan", &playbook, PASSWORD, &["--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert!(
        again.stdout.contains("Instance: 0 changes, 0 new logins"),
        "{}",
        again.stdout
    );
}

#[test]
fn two_503s_then_answers_and_the_run_succeeds() {
    let lab = instance_lab(2);
    let instance = seeded_instance(&lab, PASSWORD, &["--fail-first", "2"]);
    connect_mids(&lab, &instance, None);
    let playbook = playbook(&lab, &instance.url, "");
    let applied = run(&lab, "apply", &playbook, PASSWORD, &[]);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    let statuses: Vec<u64> = instance
        .requests()
        .iter()
        .map(|request| request["status"].as_u64().unwrap())
        .collect();
    assert_eq!(&statuses[..3], [503, 503, 200], "{statuses:?}");
    assert!(
        applied
            .stderr
            .contains("instance: the new login of svc_lab001 is accepted"),
        "{}",
        applied.stderr
    );
}

#[test]
fn an_instance_that_never_answers_is_a_clear_timeout() {
    let lab = instance_lab(1);
    let instance = Instance::start(None, &["--hang"]);
    let playbook = playbook(&lab, &instance.url, "  timeout: 2\n");
    let before = configs(&lab);
    let started = Instant::now();
    let applied = run(&lab, "apply", &playbook, PASSWORD, &[]);
    let elapsed = started.elapsed();
    assert_eq!(applied.code, 1, "{}{}", applied.stdout, applied.stderr);
    assert!(
        applied
            .all_output()
            // The first call of a plan: the MIDs' records, for their kinds.
            .contains("GET /api/now/table/ecc_agent: the instance did not answer within 2 s"),
        "{}",
        applied.all_output()
    );
    // 3 × 2 s per call, plus the lab's own work.
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    assert_eq!(configs(&lab), before);
    assert!(untouched(&lab));
}

#[test]
fn https_with_the_private_ca_in_ca_file_and_not_without() {
    let lab = instance_lab(1);
    let ca = test_ca(&lab.directory);
    let instance = seeded_instance(
        &lab,
        PASSWORD,
        &[
            "--cert",
            ca.cert.to_str().unwrap(),
            "--key",
            ca.key.to_str().unwrap(),
        ],
    );
    assert!(instance.url.starts_with("https://"));
    // Without the CA first: once applied, there is nothing left to check.
    let without = playbook(&lab, &instance.url, "");
    let plan = run(&lab, "plan", &without, PASSWORD, &[]);
    assert_eq!(plan.code, 1, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("UnknownIssuer"), "{}", plan.stdout);
    connect_mids(&lab, &instance, Some(&ca.ca_file));
    let with_ca = playbook(
        &lab,
        &instance.url,
        &format!("  ca_file: {}\n", ca.ca_file.display()),
    );
    let applied = run(&lab, "apply", &with_ca, PASSWORD, &[]);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert_eq!(agent(&instance, &lab.hosts[0]), "Up svc_lab001");
}

#[test]
fn retire_old_user_locks_it_once_nothing_uses_it() {
    let lab = instance_lab(2);
    let mut users: Vec<(String, &str)> = lab
        .hosts
        .iter()
        .map(|host| (new_user(host), PASSWORD))
        .collect();
    users.push((
        midfleet_lab::INITIAL_USER.to_string(),
        midfleet_lab::INITIAL_PASSWORD,
    ));
    let instance = Instance::start(Some(seed(&users, Vec::new())), &[]);
    connect_mids(&lab, &instance, None);
    let playbook = playbook(&lab, &instance.url, "  retire_old_user: lock\n");
    let plan = run(&lab, "plan", &playbook, PASSWORD, &[]);
    assert!(
        plan.stdout.contains("+ lock_user svc_mid_old"),
        "{}",
        plan.stdout
    );
    assert_eq!(instance.user("svc_mid_old").unwrap()["locked_out"], "false");

    let applied = run(&lab, "apply", &playbook, PASSWORD, &["--output", "json"]);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(
        applied
            .stderr
            .contains("instance: old user svc_mid_old locked"),
        "{}",
        applied.stderr
    );
    let report: serde_json::Value = serde_json::from_str(&applied.stdout).unwrap();
    assert_eq!(report["instance"]["retired"][0]["outcome"], "locked");
    assert_eq!(instance.user("svc_mid_old").unwrap()["locked_out"], "true");
    assert_eq!(instance.user("svc_lab001").unwrap()["locked_out"], "false");
}

#[test]
fn retire_old_user_keeps_a_user_an_ecc_agent_record_still_uses() {
    let lab = instance_lab(1);
    let instance = Instance::start(
        Some(seed(
            &[
                ("svc_lab001".to_string(), PASSWORD),
                (
                    midfleet_lab::INITIAL_USER.to_string(),
                    midfleet_lab::INITIAL_PASSWORD,
                ),
            ],
            // A MID outside this run still logs in as the old user.
            vec![json!({ "name": "mid-elsewhere", "status": "Up", "user_name": "svc_mid_old" })],
        )),
        &[],
    );
    connect_mids(&lab, &instance, None);
    let playbook = playbook(&lab, &instance.url, "  retire_old_user: deactivate\n");
    let applied = run(&lab, "apply", &playbook, PASSWORD, &[]);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(
        applied.stderr.contains(
            "the old user svc_mid_old is kept: ecc_agent records still use it: mid-elsewhere (Up)"
        ),
        "{}",
        applied.stderr
    );
    assert_eq!(instance.user("svc_mid_old").unwrap()["active"], "true");
}

#[test]
fn a_saved_plan_carries_the_instance_section_and_checks_again_at_apply() {
    let lab = instance_lab(1);
    let instance = seeded_instance(&lab, PASSWORD, &[]);
    connect_mids(&lab, &instance, None);
    let playbook = playbook(&lab, &instance.url, "");
    let saved = lab.directory.join("saved.plan");
    let plan = run(
        &lab,
        "plan",
        &playbook,
        PASSWORD,
        &["--out", saved.to_str().unwrap()],
    );
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    let text = std::fs::read_to_string(&saved).unwrap();
    assert!(!text.contains(PASSWORD) && !text.contains(ADMIN_PASSWORD));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["instance"]["password"], "env:MIDFLEET_TEST_ADMIN");
    assert_eq!(json["instance"]["preflight"][0]["status"], "accepted");
    let logins_before = instance.requests().len();

    let applied = midfleet(
        [
            "apply",
            "--plan",
            saved.to_str().unwrap(),
            "--known-hosts",
            lab.known_hosts.to_str().unwrap(),
            "--yes",
            "--audit-log",
            lab.directory.join("audit.jsonl").to_str().unwrap(),
        ],
        &[
            ("MIDFLEET_TEST_PASSWORD", PASSWORD),
            ("MIDFLEET_TEST_ADMIN", ADMIN_PASSWORD),
        ],
    );
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(
        instance.requests().len() > logins_before,
        "checked again before the hosts"
    );
    assert!(applied
        .stderr
        .contains("instance: the new login of svc_lab001 is accepted"));
}

#[test]
fn a_mid_whose_ecc_agent_record_never_shows_up_is_rolled_back() {
    let lab = instance_lab(1);
    // The instance knows the new user, but the MID never reports to it
    // (it logs in against the lab's credential store): no ecc_agent record.
    let instance = seeded_instance(&lab, PASSWORD, &[]);
    let playbook = playbook(&lab, &instance.url, "");
    let text = std::fs::read_to_string(&playbook)
        .unwrap()
        .replace("timeout: 20", "timeout: 3");
    std::fs::write(&playbook, text).unwrap();
    let before = configs(&lab);
    let applied = run(&lab, "apply", &playbook, PASSWORD, &["--output", "json"]);
    assert_eq!(applied.code, 1, "{}{}", applied.stdout, applied.stderr);
    let report: serde_json::Value = serde_json::from_str(&applied.stdout).unwrap();
    let result = &report["results"][0];
    assert_eq!(result["result"], "rolled_back", "{result}");
    let message = result["message"].as_str().unwrap();
    assert!(
        message.contains("ecc_agent record `lab-001` did not show status Up as `svc_lab001` within 3 s (last seen: no such record)"),
        "{message}"
    );
    assert_eq!(configs(&lab), before, "the old files are back");
    assert!(lab.hosts[0]
        .agent_log()
        .contains("Setting basic authentication with user svc_mid_old"));
}

/// The lab (one host) rotated with `instance` and the playbook's
/// `extra` lines, health timing out after 3 s; the JSON report.
fn rotate_with(lab: &Lab, instance: &Instance, extra: &str) -> (Run, serde_json::Value) {
    connect_mids(lab, instance, None);
    let playbook = playbook(lab, &instance.url, extra);
    let text = std::fs::read_to_string(&playbook)
        .unwrap()
        .replace("timeout: 20", "timeout: 3");
    std::fs::write(&playbook, text).unwrap();
    let applied = run(lab, "apply", &playbook, PASSWORD, &["--output", "json"]);
    let report = serde_json::from_str(&applied.stdout)
        .unwrap_or_else(|_| panic!("{}{}", applied.stdout, applied.stderr));
    (applied, report)
}

/// The host is applied, its MID Up as the new user on the new config: a
/// validation that did not happen is a warning and exit 1, never a
/// rollback of a MID that works.
fn applied_but_not_validated(lab: &Lab, applied: &Run, report: &serde_json::Value, reason: &str) {
    assert_eq!(applied.code, 1, "{}{}", applied.stdout, applied.stderr);
    let result = &report["results"][0];
    assert_eq!(result["result"], "applied", "{result}");
    let warnings = result["warnings"].to_string();
    assert!(
        warnings.contains(reason)
            && warnings.contains(
                "validate ecc_agent `lab-001` on the instance by hand (Invalidate, then Validate)"
            ),
        "{warnings}"
    );
    assert_eq!(
        report["instance"]["validated"][0]["outcome"],
        "not_validated"
    );
    assert!(
        applied
            .stderr
            .contains("instance: 0 of 1 MID validated (Invalidate, then Validate)"),
        "{}",
        applied.stderr
    );
    let config = String::from_utf8(lab.hosts[0].config()).unwrap();
    assert!(config.contains("value=\"svc_lab001\""), "{config}");
    assert!(lab.hosts[0].mid("status").unwrap(), "the MID runs");
}

/// An instance whose lab-001 MID has long been Up and validated, under
/// its old user; the lab's new users known with `PASSWORD`.
fn validated_instance(lab: &Lab, arguments: &[&str]) -> Instance {
    let users = [(new_user(&lab.hosts[0]), PASSWORD)];
    let agent = json!({
        "sys_id": "agent-lab-001", "name": "lab-001", "status": "Up",
        "user_name": "svc_old", "validated": "true",
    });
    Instance::start(Some(seed(&users, vec![agent])), arguments)
}

#[test]
fn a_mid_that_never_picks_up_its_commands_is_applied_with_a_warning_and_exit_1() {
    let lab = instance_lab(1);
    let instance = validated_instance(&lab, &[]);
    lab.hosts[0].set_knob("ecc_commands", "ignore").unwrap();
    let (applied, report) = rotate_with(&lab, &instance, "");
    applied_but_not_validated(
        &lab,
        &applied,
        &report,
        "not validated: the MID did not pick up the Invalidate command",
    );
    // The Invalidate never took effect: the record is put back as it was
    // and the command cancelled, so no MID is left invalidated by a
    // half-done step; the warning asks a person to finish it.
    assert!(
        report["results"][0]["warnings"]
            .to_string()
            .contains("the record was put back to validated true"),
        "{report}"
    );
    let record = &instance.records("ecc_agent")[0];
    assert_eq!(record["validated"], "true", "{record}");
    let waiting: Vec<String> = instance
        .records("ecc_queue")
        .iter()
        .map(|record| format!("{} {}", record["source"], record["state"]))
        .collect();
    assert_eq!(waiting, ["\"delete_mid_keypair\" \"processed\""]);
}

#[test]
fn an_instance_whose_acls_refuse_the_ecc_queue_is_a_warning_naming_the_call() {
    let lab = instance_lab(1);
    let instance = validated_instance(&lab, &["--read-only", "ecc_queue"]);
    let (applied, report) = rotate_with(&lab, &instance, "");
    applied_but_not_validated(
        &lab,
        &applied,
        &report,
        "not validated: Invalidate (queueing delete_mid_keypair): ",
    );
    let warnings = report["results"][0]["warnings"].to_string();
    assert!(warnings.contains("403"), "{report}");
    assert!(
        warnings.contains("the record was put back to validated true"),
        "{warnings}"
    );
    let record = &instance.records("ecc_agent")[0];
    assert_eq!(record["validated"], "true", "{record}");
}

#[test]
fn validate_false_leaves_each_reset_mid_to_validate_by_hand() {
    let lab = instance_lab(1);
    let instance = seeded_instance(&lab, PASSWORD, &[]);
    let (applied, report) = rotate_with(&lab, &instance, "  validate: false\n");
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    let warnings = report["results"][0]["warnings"].to_string();
    assert!(
        warnings.contains("key pair reset: validate this MID on the instance by hand (ecc_agent `lab-001`: Invalidate, then Validate): `instance.validate` is false"),
        "{warnings}"
    );
    assert!(instance.records("ecc_queue").is_empty());
    assert!(report["instance"].get("validated").is_none(), "{report}");
}

/// Part of what a rotation relies on, as on a real instance (KB0746702):
/// a running MID whose user's password is reset is refused at its next
/// call and says so in its agent log, and its record goes Down at once,
/// which the emulator's `ecc_agent` history shows.
#[test]
fn a_running_mid_is_refused_once_its_users_password_is_reset() {
    use midfleet::instance::{table, Client, Credentials, Settings};
    use midfleet::secret::SecretValue;
    let lab = lab(LabSpec::new(1, &midsim()));
    let host = &lab.hosts[0];
    let users = [(
        midfleet_lab::INITIAL_USER.to_string(),
        midfleet_lab::INITIAL_PASSWORD,
    )];
    let instance = Instance::start(Some(seed(&users, Vec::new())), &[]);
    connect_mids(&lab, &instance, None);
    assert!(host.mid("restart").unwrap());
    let up = format!("ecc_agent {} is Up", host.name);
    assert!(
        host.wait_for_log(&up, Duration::from_secs(20)),
        "{}",
        host.agent_log()
    );
    let refused = format!(
        "Could not authenticate user '{}' on the ServiceNow instance.",
        midfleet_lab::INITIAL_USER
    );
    assert!(!host.agent_log().contains(&refused));

    let client = Client::new(&instance.url, None, Settings::with_timeout(5)).unwrap();
    let admin = Credentials::new("admin".into(), SecretValue::new(ADMIN_PASSWORD.into()));
    let user_id = format!("user-{}", midfleet_lab::INITIAL_USER);
    table::update(
        &client,
        &admin,
        "sys_user",
        &user_id,
        &json!({ "user_password": "a-new-one" }),
        true,
    )
    .unwrap();
    assert!(
        host.wait_for_log(&refused, Duration::from_secs(10)),
        "{}",
        host.agent_log()
    );
    assert_eq!(
        agent(&instance, host),
        format!("Down {}", midfleet_lab::INITIAL_USER)
    );
    let history = &instance.state()["ecc_agent_history"];
    let last = history.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["status"], "Down", "{history}");
    assert_eq!(last["cause"], "password reset", "{history}");
    assert!(last["at_ms"].as_u64().unwrap() > 0);
    assert!(host.mid("stop").unwrap());
}
