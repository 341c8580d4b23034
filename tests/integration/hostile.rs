//! Hostile input (the fault matrix of docs/reliability.md): inventory and
//! playbook values made of shell syntax are data — quoted or refused, never
//! run — and a MID user who can write the agent folder cannot make midfleet
//! touch a file outside its own.
//!
//! Every hostile value calls `midfleet-canary-PID`, a program installed for the
//! test in /usr/local/bin (on the PATH of midfleet, of the hosts' shells and
//! of the transaction), which appends to a log: had anything run it, the
//! log would exist.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use midfleet::config_xml::ConfigXml;
use midfleet_lab::{login_user, LabSpec};

use crate::faults::{command, converges, results, run_on_lab, setup_lab, PASSWORD};
use crate::lab::midsim;
use crate::support::midfleet;

/// The canary's name: one per test process, so that two runs on one
/// machine never share (or remove) each other's.
fn canary_name() -> String {
    format!("midfleet-canary-{}", std::process::id())
}

fn canary_path() -> PathBuf {
    Path::new("/usr/local/bin").join(canary_name())
}

/// The canary program, removed again when dropped.
struct Canary {
    log: PathBuf,
}

impl Canary {
    /// `None` when /usr/local/bin cannot be written (not root).
    fn install(directory: &Path) -> Option<Canary> {
        let log = directory.join("canary.log");
        let script = format!("#!/bin/sh\necho \"ran: $*\" >> '{}'\n", log.display());
        std::fs::write(canary_path(), script).ok()?;
        let canary = Canary { log };
        std::fs::set_permissions(canary_path(), std::fs::Permissions::from_mode(0o755)).ok()?;
        // It works: a substitution in a shell runs it from the PATH.
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("true \"$({} selfa)\"", canary_name()))
            .output()
            .unwrap();
        let ran = std::fs::read_to_string(&canary.log).unwrap_or_default();
        assert!(
            ran.contains("ran: selfa"),
            "the canary did not run: {ran:?}"
        );
        std::fs::remove_file(&canary.log).unwrap();
        Some(canary)
    }

    fn assert_never_ran(&self, after: &str) {
        let ran = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(ran.is_empty(), "after {after}, the canary ran:\n{ran}");
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(canary_path());
    }
}

/// Shell syntax that runs the canary if it ever reaches a shell unquoted:
/// substitution, backticks, separators, pipes, background, quotes, `%`
/// (printf), `\`, globs and `${IFS}`. No `/` (a path component), `:` or
/// newline (the lab instance's user list).
fn hostile(tag: &str) -> String {
    let canary = canary_name();
    format!(
        "{tag} '\"$({canary} {tag}a)`{canary} {tag}b`;{canary} {tag}c&&{canary} {tag}d|{canary} {tag}e&{canary}${{IFS}}{tag}f %s %n \\ * ?"
    )
}

#[test]
fn hostile_values_in_every_field_are_data_never_run() {
    let (lab, _) = setup_lab(LabSpec::new(3, &midsim()));
    let Some(canary) = Canary::install(&lab.directory) else {
        eprintln!("skipped: /usr/local/bin is not writable (needs root)");
        return;
    };
    // mid_home (lab-001) and mid_config (lab-002) through folders with
    // hostile names: symlinks to the real MID folders, on the hosts' own
    // /opt/servicenow.
    let home_name = hostile("home");
    let config_name = hostile("config");
    for (host, name) in [(&lab.hosts[0], &home_name), (&lab.hosts[1], &config_name)] {
        let root = host.local_mid_home.parent().unwrap();
        std::os::unix::fs::symlink("mid", root.join(name)).unwrap();
    }
    let in_host_root = Path::new(&lab.hosts[0].mid_home)
        .parent()
        .unwrap()
        .to_path_buf();
    // mid_name (lab-003) goes through the username template: the instance
    // must know that user.
    let mid_name = hostile("name");
    lab.add_instance_user(&format!("svc_{mid_name}"), PASSWORD)
        .unwrap();
    let value = format!(
        "{}\nsecond line ]]> <!-- &amp; --> {}",
        hostile("value"),
        hostile("more")
    );
    let yaml = |text: &str| serde_json::to_string(text).unwrap();
    let header = format!(
        "all:\n  vars:\n    ansible_user: {}\n    ansible_ssh_private_key_file: {}\n    connect_timeout: 3\n    hostile: {}\n  children:\n    lab:\n      hosts:\n",
        login_user(),
        lab.client_key.display(),
        yaml(&value),
    );
    let entry = |index: usize, extra: &str| {
        let host = &lab.hosts[index];
        format!(
            "        {}: {{ ansible_host: {}, ansible_port: {}{extra} }}\n",
            host.name, host.address, host.port
        )
    };
    let inventory = lab.directory.join("hostile.yml");
    std::fs::write(
        &inventory,
        format!(
            "{header}{}{}{}",
            entry(
                0,
                &format!(
                    ", mid_home: {}, mid_name: lab001",
                    yaml(&in_host_root.join(&home_name).display().to_string())
                )
            ),
            entry(
                1,
                &format!(
                    ", mid_home: {}, mid_config: {}, mid_name: lab002",
                    yaml(&lab.hosts[1].mid_home),
                    yaml(
                        &in_host_root
                            .join(&config_name)
                            .join("agent/config.xml")
                            .display()
                            .to_string()
                    )
                )
            ),
            entry(
                2,
                &format!(
                    ", mid_home: {}, mid_name: {}",
                    yaml(&lab.hosts[2].mid_home),
                    yaml(&mid_name)
                )
            ),
        ),
    )
    .unwrap();
    let playbook = lab.directory.join("hostile-playbook.yml");
    std::fs::write(
        &playbook,
        "hosts: lab\nset:\n  mid.instance.username: \"svc_{{ mid_name }}\"\n  mid.instance.password: { secret: \"env:FAULT_PASSWORD\" }\n  mid.custom.hostile: \"{{ hostile }}\"\nhealth:\n  timeout: 20\nrollout:\n  serial: [100%]\n  max_fail: 100%\n",
    )
    .unwrap();
    let inventory_text = inventory.display().to_string();
    let playbook_text = playbook.display().to_string();
    for verb in ["check", "hosts", "facts", "plan", "apply"] {
        let arguments: Vec<String> = match verb {
            "check" => vec![
                verb.into(),
                "-i".into(),
                inventory_text.clone(),
                playbook_text.clone(),
            ],
            "hosts" => vec![
                verb.into(),
                "-i".into(),
                inventory_text.clone(),
                "all".into(),
            ],
            "facts" => command(&lab, verb, &["-i", &inventory_text]),
            _ => command(
                &lab,
                verb,
                &["-i", &inventory_text, &playbook_text, "--output", "json"],
            ),
        };
        let run = midfleet(arguments, &[("FAULT_PASSWORD", PASSWORD)]);
        assert_eq!(run.code, 0, "{verb}: {}{}", run.stdout, run.stderr);
        if verb == "apply" {
            assert_eq!(results(&run.stdout), ["applied"; 3], "{}", run.stdout);
        }
        canary.assert_never_ran(verb);
    }
    for (index, host) in lab.hosts.iter().enumerate() {
        let document = ConfigXml::parse(&host.config()).unwrap();
        assert_eq!(
            document.get("mid.custom.hostile").unwrap().value(),
            value,
            "{}: the value reads back exactly",
            host.name
        );
        let user = if index == 2 {
            format!("svc_{mid_name}")
        } else {
            format!("svc_lab00{}", index + 1)
        };
        assert_eq!(document.get("mid.instance.username").unwrap().value(), user);
    }
    // A second run changes nothing: the hostile values compare equal.
    let again = midfleet(
        command(
            &lab,
            "plan",
            &["-i", &inventory_text, &playbook_text, "--detailed-exitcode"],
        ),
        &[("FAULT_PASSWORD", PASSWORD)],
    );
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);

    // Values midfleet refuses or that cannot connect: a unit name, a login
    // user, a jump host, a key file, a host name. Refused or failed, with
    // the host named; never run.
    let refused = lab.directory.join("refused.yml");
    let host = &lab.hosts[0];
    std::fs::write(
        &refused,
        format!(
            "all:\n  vars:\n    ansible_user: {user}\n    ansible_ssh_private_key_file: {key}\n    connect_timeout: 3\n  hosts:\n        unit: {{ ansible_host: {address}, ansible_port: {port}, mid_service: {unit} }}\n        login: {{ ansible_host: {address}, ansible_port: {port}, ansible_user: {login} }}\n        hop: {{ ansible_host: {address}, ansible_port: {port}, jump: {jump} }}\n        home: {{ ansible_host: {address}, ansible_port: {port}, mid_home: {home} }}\n        cluster: {{ ansible_host: {address}, ansible_port: {port}, mid_cluster: {cluster} }}\n",
            user = login_user(),
            key = lab.client_key.display(),
            address = host.address,
            port = host.port,
            unit = yaml(&format!("systemd:{}", hostile("unit"))),
            login = yaml(&hostile("login")),
            jump = yaml(&hostile("jump")),
            home = yaml(&format!("/opt/{}\n/x", hostile("newline"))),
            cluster = yaml(&hostile("cluster")),
        ),
    )
    .unwrap();
    let refused_text = refused.display().to_string();
    let check = midfleet(["check", "-i", &refused_text, &playbook_text], &[]);
    assert_eq!(check.code, 3, "{}{}", check.stdout, check.stderr);
    let mut found: BTreeMap<&str, bool> = BTreeMap::new();
    for (name, field) in [
        ("unit", "mid_service"),
        ("login", "ansible_user"),
        ("hop", "jump"),
        ("home", "mid_home"),
        ("cluster", "mid_cluster"),
    ] {
        found.insert(name, check.stderr.contains(field));
    }
    assert!(
        found.values().all(|seen| *seen),
        "{found:?}\n{}",
        check.stderr
    );
    canary.assert_never_ran("check of refused values");
    // A key path is a path: it fails at connection time, for its host.
    let key_inventory = lab.directory.join("key.yml");
    std::fs::write(
        &key_inventory,
        format!(
            "all:\n  hosts:\n    key: {{ ansible_host: {}, ansible_port: {}, ansible_user: {}, ansible_ssh_private_key_file: {} }}\n",
            host.address,
            host.port,
            login_user(),
            yaml(&format!("/nonexistent/{}", hostile("key")))
        ),
    )
    .unwrap();
    let facts = midfleet(
        command(&lab, "facts", &["-i", key_inventory.to_str().unwrap()]),
        &[],
    );
    assert_eq!(facts.code, 1, "{}{}", facts.stdout, facts.stderr);
    assert!(facts.all_output().contains("key"), "{}", facts.all_output());
    canary.assert_never_ran("facts with a hostile key path");
    converges_hostile_cleanup(&lab);
}

/// Puts the lab's usual names back for `converges`.
fn converges_hostile_cleanup(lab: &midfleet_lab::Lab) {
    let playbook = lab.directory.join("rotate.yml");
    converges(lab, &playbook);
}

/// What a folder holds, for "nothing outside was touched".
fn snapshot(folder: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(folder).unwrap().flatten() {
        let metadata = std::fs::symlink_metadata(entry.path()).unwrap();
        let bytes = if metadata.is_file() {
            std::fs::read(entry.path()).unwrap()
        } else {
            Vec::new()
        };
        found.insert(entry.path(), (bytes, metadata.permissions().mode()));
        if metadata.is_dir() {
            found.extend(snapshot(&entry.path()));
        }
    }
    found
}

/// The MID user (here the lab's sudo user) owns the agent folder and
/// plants symlinks where midfleet writes: `.midfleet` itself (lab-001), a
/// `.midfleet` of its own with `backups` and `runs` pointing away (lab-002),
/// and temp-file names beside config.xml (lab-003). midfleet refuses the
/// first two hosts and applies the third; the folder the links point to is
/// untouched.
#[test]
fn symlinks_a_mid_user_plants_never_lead_midfleet_outside() {
    let mut spec = LabSpec::new(3, &midsim());
    spec.users = true;
    let (lab, playbook) = setup_lab(spec);
    let victim = lab.directory.join("victim");
    std::fs::create_dir_all(victim.join("backups")).unwrap();
    std::fs::write(victim.join("precious"), "keep me\n").unwrap();
    std::fs::write(victim.join("config.xml"), "<parameters/>\n").unwrap();
    let before = snapshot(&victim);
    let mid_user = midfleet_lab::SUDO_USER;
    let chown = |path: &Path| {
        let status = std::process::Command::new("chown")
            .args(["-h", "-R", &format!("{mid_user}:{mid_user}")])
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success(), "chown {}", path.display());
    };
    let plant = |link: PathBuf, target: &Path| {
        let _ = std::fs::remove_dir_all(&link);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link).unwrap();
        chown(&link);
    };
    // lab-001: .midfleet is a link to the victim.
    let first = lab.host("lab-001");
    plant(first.local_mid_home.join(".midfleet"), &victim);
    // lab-002: a .midfleet the MID user made, its folders links.
    let second = lab.host("lab-002");
    let own = second.local_mid_home.join(".midfleet");
    let _ = std::fs::remove_dir_all(&own);
    std::fs::create_dir_all(&own).unwrap();
    plant(own.join("backups"), &victim.join("backups"));
    plant(own.join("runs"), &victim);
    chown(&own);
    // lab-003: links named like midfleet's temp files, in an agent folder
    // the MID user owns.
    let third = lab.host("lab-003");
    chown(&third.agent());
    for suffix in ["AAAAAA", "XXXXXX", "000000"] {
        plant(
            third.agent().join(format!(".config.xml.midfleet.{suffix}")),
            &victim.join("config.xml"),
        );
    }
    let applied = run_on_lab(&lab, "apply", &playbook, &["--output", "json"]);
    assert_eq!(
        results(&applied.stdout),
        ["error", "error", "applied"],
        "{}{}",
        applied.stdout,
        applied.stderr
    );
    let report: serde_json::Value = serde_json::from_str(&applied.stdout).unwrap();
    let message = |index: usize| {
        report["results"][index]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(message(0).contains("symlink"), "{}", message(0));
    assert!(message(1).contains("owner"), "{}", message(1));
    assert_eq!(snapshot(&victim), before, "the victim folder is untouched");
    for host in &lab.hosts {
        assert!(host.mid("status").unwrap(), "{} runs", host.name);
    }
    // Once the links are gone, the hosts converge.
    std::fs::remove_file(first.local_mid_home.join(".midfleet")).unwrap();
    std::fs::remove_dir_all(&own).unwrap();
    converges(&lab, &playbook);
    assert_eq!(snapshot(&victim), before, "the victim folder is untouched");
}
