//! The kinds of MID end to end (issue 19): lab hosts made into a mutual-TLS,
//! a CyberArk, an IPKI, a container and two upgrading MIDs by their files,
//! and an instance whose records say the rest (an Upgrading status, an
//! `ecc_agent_config` row), set as an administrator through the Table API.
//! `facts` tells each kind; `plan` names each exception; `apply` changes
//! only the plain MID and leaves every other host's config.xml as it was.

use std::path::Path;

use midfleet_lab::{InstanceAdmin, Lab, LabHost, LabSpec};
use serde_json::{json, Value};

use crate::instance::{connect_mids, playbook, run, seed, PASSWORD};
use crate::instancesim::{Instance, ADMIN_PASSWORD};
use crate::lab::{lab, midsim};
use crate::support::midfleet;

/// Replaces `from` with `to` in the host's config.xml (once, or fails).
fn edit_config(host: &LabHost, from: &str, to: &str) {
    let text = String::from_utf8(host.config()).unwrap();
    assert!(text.contains(from), "{}: no `{from}` in {text}", host.name);
    std::fs::write(host.config_path(), text.replacen(from, to, 1)).unwrap();
}

/// The `<parameter …/>` line of `name` in the host's config.xml.
fn line_of(host: &LabHost, name: &str) -> String {
    let text = String::from_utf8(host.config()).unwrap();
    text.lines()
        .find(|line| line.contains(&format!("name=\"{name}\"")))
        .unwrap_or_else(|| panic!("{}: no {name} in {text}", host.name))
        .to_string()
}

/// A file in the agent folder, made as the MID's recipe or upgrader would.
fn touch(host: &LabHost, path: &str) {
    let path = host.agent().join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, b"x\n").unwrap();
}

/// Eight lab MIDs: lab-001 plain, then mutual TLS, CyberArk, container,
/// Upgrading (instance), upgrading (host), an instance override, IPKI.
fn mixed_lab() -> (Lab, Instance) {
    let lab = lab(LabSpec::new(8, &midsim()));
    let users: Vec<(String, &str)> = lab
        .hosts
        .iter()
        .map(|host| (format!("svc_{}", host.name.replace('-', "")), PASSWORD))
        .collect();
    for (user, password) in &users {
        lab.add_instance_user(user, password).unwrap();
    }
    let agents: Vec<Value> = lab
        .hosts
        .iter()
        .map(|host| {
            json!({
                "sys_id": format!("agent-{}", host.name),
                "name": host.name,
                "status": "Up",
                "validated": "true",
                "user_name": "",
            })
        })
        .collect();
    let instance = Instance::start(Some(seed(&users, agents)), &[]);
    connect_mids(&lab, &instance, None);
    let host = |index: usize| &lab.hosts[index];
    // Mutual TLS: no credentials left in config.xml.
    for name in ["mid.instance.username", "mid.instance.password"] {
        let line = line_of(host(1), name);
        edit_config(host(1), &format!("{line}\n"), "");
    }
    // CyberArk: the provider and a vault reference for the password.
    let password = line_of(host(2), "mid.instance.password");
    edit_config(
        host(2),
        &password,
        "    <parameter name=\"mid.secure_config.provider\" value=\"com.service_now.mid.services.config.CyberArkSecuredConfigProvider\"/>\n    \
         <parameter name=\"mid.instance.password\" secure=\"true\" value=\"cyberark: id=svc_lab003, type=password\"/>",
    );
    // A container (the recipe's markers).
    touch(host(3), ".container");
    touch(host(3), ".initialized");
    // Upgrading on the instance, and on the host.
    let admin = InstanceAdmin::new(&instance.url, None, ADMIN_PASSWORD).unwrap();
    admin.set_mid_status(&host(4).name, "Upgrading").unwrap();
    touch(host(5), "work/upgrade_temp/mid-core.zip");
    // The instance's configuration parameter for the user.
    admin
        .add_mid_config(&host(6).name, "mid.instance.username", "svc_pinned")
        .unwrap();
    // IPKI, its registration key already cleared by the MID.
    let url = line_of(host(7), "url");
    edit_config(
        host(7),
        &url,
        &format!(
            "{url}\n    <parameter name=\"mid.ipki.enabled\" value=\"true\"/>\n    \
             <parameter name=\"mid.ipki.registration_key\" value=\"\"/>"
        ),
    );
    (lab, instance)
}

fn facts(lab: &Lab, playbook: Option<&Path>, output: &str) -> crate::support::Run {
    let mut arguments = vec![
        "facts".to_string(),
        "-i".into(),
        lab.inventory.display().to_string(),
        "--known-hosts".into(),
        lab.known_hosts.display().to_string(),
        "--output".into(),
        output.into(),
    ];
    if let Some(playbook) = playbook {
        arguments.push("--playbook".into());
        arguments.push(playbook.display().to_string());
    }
    midfleet(arguments, &[("MIDFLEET_TEST_ADMIN", ADMIN_PASSWORD)])
}

fn kinds(run: &crate::support::Run) -> Vec<String> {
    let hosts: Vec<Value> = serde_json::from_str(&run.stdout).unwrap_or_else(|error| {
        panic!("{error}: {}{}", run.stdout, run.stderr);
    });
    hosts
        .iter()
        .map(|host| host["kind"].as_str().unwrap_or("-").to_string())
        .collect()
}

#[test]
fn facts_tell_each_kind_and_plan_and_apply_change_only_the_plain_mid() {
    let (lab, instance) = mixed_lab();
    let playbook = playbook(&lab, &instance.url, "");

    // Without the instance: the Upgrading record cannot be seen, and
    // that is said.
    let alone = facts(&lab, None, "json");
    assert_eq!(alone.code, 0, "{}{}", alone.stdout, alone.stderr);
    assert_eq!(
        kinds(&alone),
        [
            "basic",
            "mtls",
            "cyberark",
            "container",
            "basic",
            "upgrading",
            "basic",
            "ipki"
        ]
    );
    let table = facts(&lab, None, "human");
    assert!(table.stdout.contains("KIND"), "{}", table.stdout);
    assert!(
        table.stderr.contains("told from the host's files only"),
        "{}",
        table.stderr
    );
    // With the playbook's instance: the record's status too, and the
    // signals that decided each kind.
    let told = facts(&lab, Some(&playbook), "json");
    assert_eq!(told.code, 0, "{}{}", told.stdout, told.stderr);
    assert_eq!(
        kinds(&told),
        [
            "basic",
            "mtls",
            "cyberark",
            "container",
            "upgrading",
            "upgrading",
            "basic",
            "ipki"
        ]
    );
    let hosts: Vec<Value> = serde_json::from_str(&told.stdout).unwrap();
    assert_eq!(hosts[4]["ecc_agent"]["status"], "Upgrading");
    assert!(
        hosts[4]["kind_detail"]["signals"]
            .as_array()
            .unwrap()
            .contains(&json!("ecc_agent.status=Upgrading")),
        "{}",
        hosts[4]
    );
    assert!(hosts[0]["kind_detail"].get("undecided").is_none());

    let before: Vec<Vec<u8>> = lab.hosts.iter().map(LabHost::config).collect();
    let plan = run(&lab, "plan", &playbook, PASSWORD, &["--output", "json"]);
    assert_eq!(plan.code, 1, "{}{}", plan.stdout, plan.stderr);
    let planned: Value = serde_json::from_str(&plan.stdout).unwrap();
    let statuses: Vec<&str> = planned["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|host| host["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["change", "error", "error", "error", "skipped", "skipped", "error", "error"],
        "{}",
        plan.stdout
    );
    let human = run(&lab, "plan", &playbook, PASSWORD, &[]);
    let text = human.stdout.clone();
    for needle in [
        "lab-002  error: this MID logs in with a client certificate (mutual TLS",
        "manage-certificates.sh",
        "lab-003  error: `mid.instance.password` is the vault reference `cyberark: id=svc_lab003, type=password`",
        "lab-004  error: this MID runs in a container",
        "mid-secrets.properties",
        "lab-005  (skipped: upgrading (ecc_agent.status=Upgrading)",
        "lab-006  (skipped: upgrading (agent folder: work/upgrade_temp/ is not empty)",
        "ecc_agent_config",
        "sets `mid.instance.username` = \"svc_pinned\" (midfleet would write \"svc_lab007\")",
        "lab-008  error: this MID logs in with an instance-issued certificate (IPKI",
        "Plan: 1 to change, 0 to start, 0 unchanged, 2 skipped, 5 errors.",
    ] {
        assert!(text.contains(needle), "no `{needle}` in:\n{text}");
    }
    assert!(!human.all_output().contains(PASSWORD), "the password shows");
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(
        &crate::support::regex_escape(&lab.directory.display().to_string()),
        "[LAB]",
    );
    settings.add_filter(r"127\.0\.0\.1:\d+", "[INSTANCE]");
    settings.add_filter(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[UUID]",
    );
    settings.add_filter(r"ecc_agent_config [0-9a-z-]+", "ecc_agent_config [SYS_ID]");
    settings.bind(|| insta::assert_snapshot!("plan_of_a_mixed_fleet", text));

    let applied = run(&lab, "apply", &playbook, PASSWORD, &["--output", "json"]);
    assert_eq!(applied.code, 1, "{}{}", applied.stdout, applied.stderr);
    let after: Vec<Vec<u8>> = lab.hosts.iter().map(LabHost::config).collect();
    assert_ne!(after[0], before[0], "the plain MID was not changed");
    for index in 1..lab.hosts.len() {
        assert_eq!(
            after[index], before[index],
            "{} changed",
            lab.hosts[index].name
        );
        assert!(
            !lab.hosts[index]
                .local_mid_home
                .join(".midfleet/runs")
                .exists(),
            "{} was staged",
            lab.hosts[index].name
        );
    }
    let results: Value = serde_json::from_str(&applied.stdout).unwrap_or_else(|error| {
        panic!("{error}: {}", applied.stdout);
    });
    let text = results.to_string();
    assert!(text.contains("\"skipped\""), "{text}");

    // Again: the plain MID has nothing left to do, the others the same.
    let again = run(&lab, "plan", &playbook, PASSWORD, &[]);
    assert!(
        again
            .stdout
            .contains("Plan: 0 to change, 0 to start, 1 unchanged, 2 skipped, 5 errors."),
        "{}",
        again.stdout
    );
}

/// A one-MID lab whose lab-001 is Up and validated on an emulated
/// instance, and a playbook (threads.yml) setting threads.max to 50 with
/// that instance's section.
fn threads_lab() -> (Lab, Instance, std::path::PathBuf) {
    let lab = lab(LabSpec::new(1, &midsim()));
    let users = vec![("svc_lab001".to_string(), PASSWORD)];
    let agents = vec![json!({
        "sys_id": "agent-lab-001", "name": "lab-001", "status": "Up",
        "validated": "true", "user_name": "",
    })];
    let instance = Instance::start(Some(seed(&users, agents)), &[]);
    let path = lab.directory.join("threads.yml");
    std::fs::write(
        &path,
        format!(
            "hosts: lab\nset:\n  threads.max: 50\ninstance:\n  url: {}\n  user: admin\n  \
             password: {{ secret: \"env:MIDFLEET_TEST_ADMIN\" }}\n",
            instance.url
        ),
    )
    .unwrap();
    (lab, instance, path)
}

#[test]
fn allow_override_turns_the_instance_parameter_into_a_warning() {
    let (lab, instance, path) = threads_lab();
    lab.add_instance_user("svc_lab001", PASSWORD).unwrap();
    let admin = InstanceAdmin::new(&instance.url, None, ADMIN_PASSWORD).unwrap();
    let row = admin
        .add_mid_config("lab-001", "threads.max", "40")
        .unwrap();
    let refused = run(&lab, "plan", &path, PASSWORD, &[]);
    assert_eq!(refused.code, 1, "{}{}", refused.stdout, refused.stderr);
    assert!(
        refused.stdout.contains(&format!(
            "ecc_agent_config {row} sets `threads.max` = \"40\" (midfleet would write \"50\")"
        )),
        "{}",
        refused.stdout
    );
    assert!(refused.stdout.contains("instance.allow_override: true"));
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}  allow_override: true\n")).unwrap();
    let allowed = run(&lab, "plan", &path, PASSWORD, &[]);
    assert_eq!(allowed.code, 0, "{}{}", allowed.stdout, allowed.stderr);
    assert!(
        allowed.stdout.contains("threads.max = \"25\" -> \"50\"")
            && allowed
                .stdout
                .contains("written anyway (instance.allow_override)"),
        "{}",
        allowed.stdout
    );
}

#[test]
fn a_saved_plan_skips_a_mid_that_began_upgrading_since() {
    let (lab, instance, path) = threads_lab();
    let saved = lab.directory.join("saved.plan");
    let plan = run(
        &lab,
        "plan",
        &path,
        PASSWORD,
        &["--out", saved.to_str().unwrap()],
    );
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("Plan: 1 to change"), "{}", plan.stdout);
    let admin = InstanceAdmin::new(&instance.url, None, ADMIN_PASSWORD).unwrap();
    admin.set_mid_status("lab-001", "Upgrading").unwrap();
    let before = lab.hosts[0].config();
    let applied = midfleet(
        [
            "apply",
            "--plan",
            saved.to_str().unwrap(),
            "--known-hosts",
            lab.known_hosts.to_str().unwrap(),
            "--yes",
            "--output",
            "json",
        ],
        &[("MIDFLEET_TEST_ADMIN", ADMIN_PASSWORD)],
    );
    // Skipped is not a failure: the exit code is as for unchanged.
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(
        applied.stdout.contains("\"skipped\"")
            && applied
                .stdout
                .contains("upgrading (ecc_agent.status=Upgrading since the plan was made)"),
        "{}",
        applied.stdout
    );
    assert_eq!(lab.hosts[0].config(), before);
    assert!(!lab.hosts[0].local_mid_home.join(".midfleet/runs").exists());
}

/// Issue 19's mixed lab, each MID made of its kind by the simulated MID and
/// instance themselves (not by editing files): 2 CyberArk, 1 mutual TLS,
/// 1 IPKI, 1 Upgrading, 1 container, 1 whose `mid.instance.username` the
/// instance also sets in `ecc_agent_config`, and 5 plain MIDs. The usual
/// rotation: the plan names each exception with its reason, apply changes
/// only the plain five (each then Up as its new user), and the next plan
/// has nothing for them and the same for the rest.
#[test]
fn a_mixed_fleet_of_twelve_rotates_only_its_five_plain_mids() {
    use midfleet_lab::kinds::{HostKind, KindsInstance};

    let instance = KindsInstance::start(&midfleet_lab::instancesim()).expect("instance");
    let kinds = [
        (HostKind::CyberArk, 2),
        (HostKind::MutualTls, 1),
        (HostKind::Ipki, 1),
        (HostKind::Upgrading, 1),
        (HostKind::Container, 1),
        (HostKind::ConfigOverride, 1),
    ];
    let lab = lab(instance.spec(&midsim(), &kinds, 5));
    assert_eq!(lab.hosts.len(), 12);
    for host in &lab.hosts {
        instance.wait_for_field(&host.name, "status", host.kind.expected_status());
    }
    let playbook = crate::rotation::rotation_playbook_trusting(
        &lab,
        &instance.url,
        Some(&instance.pki.ca_file),
    );
    let now = crate::rotation::now();
    let plan_json = |label: &str| -> Vec<Value> {
        let run = crate::rotation::at(&lab, "plan", &playbook, now, &["--output", "json"]);
        assert_eq!(run.code, 1, "{label}: {}{}", run.stdout, run.stderr);
        let plan: Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|error| panic!("{label}: {error}: {}{}", run.stdout, run.stderr));
        plan["hosts"].as_array().unwrap().clone()
    };
    let first = plan_json("first plan");
    let expected = |kind: HostKind| match kind {
        HostKind::Plain => "change",
        HostKind::Upgrading => "skipped",
        _ => "error",
    };
    for (host, planned) in lab.hosts.iter().zip(&first) {
        assert_eq!(planned["host"], host.name.as_str());
        assert_eq!(
            planned["status"],
            expected(host.kind),
            "{} ({:?}): {planned}",
            host.name,
            host.kind
        );
    }
    // Each exception says why, in the words an operator acts on.
    let human = crate::rotation::at(&lab, "plan", &playbook, now, &[]);
    let reason = |kind: HostKind| -> &str {
        match kind {
            HostKind::CyberArk => "vault",
            HostKind::MutualTls => "mutual TLS",
            HostKind::Ipki => "IPKI",
            HostKind::Upgrading => "skipped: upgrading",
            HostKind::Container => "MID_SECRETS_FILE",
            HostKind::ConfigOverride => "ecc_agent_config",
            _ => "",
        }
    };
    for host in lab.hosts.iter().filter(|host| host.kind != HostKind::Plain) {
        let line = human
            .stdout
            .lines()
            .find(|line| line.trim_start()[1..].starts_with(&format!(" {}  ", host.name)))
            .unwrap_or_else(|| panic!("no line for {} in:\n{}", host.name, human.stdout));
        assert!(
            line.contains(reason(host.kind)),
            "{} ({:?}): `{line}` does not say `{}`",
            host.name,
            host.kind,
            reason(host.kind)
        );
    }
    assert!(
        human
            .stdout
            .contains("Plan: 5 to change, 0 to start, 0 unchanged, 1 skipped, 6 errors.\nRotation: 5 rotate now, 0 not due."),
        "{}",
        human.stdout
    );

    let before: Vec<Vec<u8>> = lab.hosts.iter().map(LabHost::config).collect();
    let applied = crate::rotation::at(&lab, "apply", &playbook, now, &[]);
    assert_eq!(applied.code, 1, "{}{}", applied.stdout, applied.stderr);
    for (index, host) in lab.hosts.iter().enumerate() {
        let after = host.config();
        if host.kind == HostKind::Plain {
            assert_ne!(after, before[index], "{} was not rotated", host.name);
            let user = instance
                .mid_field(&host.name, "user_name")
                .unwrap_or_default();
            assert!(
                user.starts_with(&format!("svc_{}_", host.name.replace('-', ""))),
                "{} is Up as `{user}`",
                host.name
            );
            instance.wait_for_field(&host.name, "status", "Up");
        } else {
            assert_eq!(
                after, before[index],
                "{} ({:?}) changed",
                host.name, host.kind
            );
            assert!(
                !host.local_mid_home.join(".midfleet/runs").exists(),
                "{} ({:?}) was staged",
                host.name,
                host.kind
            );
        }
    }

    let second = plan_json("second plan");
    for ((host, was), now) in lab.hosts.iter().zip(&first).zip(&second) {
        if host.kind == HostKind::Plain {
            assert_eq!(now["status"], "unchanged", "{}: {now}", host.name);
            assert!(now["changes"].as_array().unwrap().is_empty(), "{now}");
        } else {
            for field in ["status", "error", "skipped"] {
                assert_eq!(now[field], was[field], "{} {field}", host.name);
            }
        }
    }
}

#[test]
fn a_saved_plan_skips_a_mid_whose_upgrader_began_extracting_since() {
    // No `instance:` section: the host's work/upgrade_temp/ is all that
    // tells an upgrade, and it must be read again before the stop.
    let lab = lab(LabSpec::new(1, &midsim()));
    let path = lab.directory.join("threads.yml");
    std::fs::write(&path, "hosts: lab\nset:\n  threads.max: 50\n").unwrap();
    let saved = lab.directory.join("saved.plan");
    let plan = run(
        &lab,
        "plan",
        &path,
        PASSWORD,
        &["--out", saved.to_str().unwrap()],
    );
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("Plan: 1 to change"), "{}", plan.stdout);
    touch(&lab.hosts[0], "work/upgrade_temp/mid-core.zip");
    let before = lab.hosts[0].config();
    let applied = midfleet(
        [
            "apply",
            "--plan",
            saved.to_str().unwrap(),
            "--known-hosts",
            lab.known_hosts.to_str().unwrap(),
            "--yes",
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(
        applied.stdout.contains("\"skipped\"")
            && applied
                .stdout
                .contains("work/upgrade_temp/ is not empty since the plan was made"),
        "{}",
        applied.stdout
    );
    assert_eq!(lab.hosts[0].config(), before);
    assert!(!lab.hosts[0].local_mid_home.join(".midfleet/runs").exists());
}
