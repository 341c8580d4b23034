//! An Ansible user's habits: ansible.cfg found and read as Ansible does,
//! `-e/--extra-vars` at Ansible's highest precedence, true tips for
//! ansible-playbook options midfleet lacks, and a `check` warning on a
//! misspelled MID parameter.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use crate::ansible::ansible_bin;
use crate::support::{midfleet, midfleet_command, Run};

/// A project folder (the working directory) and a home, both private.
struct Project {
    root: tempfile::TempDir,
}

impl Project {
    fn new() -> Project {
        let root = tempfile::tempdir().unwrap();
        for folder in ["work", "home"] {
            std::fs::create_dir(root.path().join(folder)).unwrap();
            std::fs::set_permissions(
                root.path().join(folder),
                std::fs::Permissions::from_mode(0o755),
            )
            .unwrap();
        }
        Project { root }
    }

    fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }

    fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.root.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// midfleet run in `work/` with `home/` as HOME.
    fn midfleet(&self, arguments: &[&str], environment: &[(&str, &str)]) -> Run {
        let output = midfleet_command(arguments, environment)
            .current_dir(self.work())
            .env("HOME", self.home())
            .env_remove("ANSIBLE_CONFIG")
            .envs(environment.iter().copied())
            .output()
            .expect("run midfleet");
        Run {
            code: output.status.code().expect("midfleet exited"),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }

    /// The real Ansible in the same place: its `config file = …`.
    fn ansible_config_file(&self, environment: &[(&str, &str)]) -> String {
        let output = Command::new(ansible_bin().join("ansible"))
            .arg("--version")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.home())
            .env("LANG", "C.UTF-8")
            .envs(environment.iter().copied())
            .current_dir(self.work())
            .output()
            .expect("ansible --version");
        let text = String::from_utf8_lossy(&output.stdout);
        text.lines()
            .find_map(|line| line.trim().strip_prefix("config file = "))
            .unwrap_or_else(|| panic!("no config file line in: {text}"))
            .to_string()
    }
}

fn hosts_json(run: &Run) -> Vec<serde_json::Value> {
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

const INVENTORY: &str =
    "[emea]\nmid1 ansible_host=10.0.0.1 ansible_port=2200\nmid2 ansible_user=inventory_user\n";

#[test]
fn hosts_takes_its_inventory_and_defaults_from_ansible_cfg() {
    let project = Project::new();
    project.write("work/inventory/hosts.ini", INVENTORY);
    let cfg = project.write(
        "work/ansible.cfg",
        "[defaults]\ninventory = inventory/hosts.ini\nremote_user = cfg_user\nprivate_key_file = ~/.ssh/fleet_key\ntimeout = 17\ngathering = smart\n",
    );
    let run = project.midfleet(&["hosts", "-v", "--output", "json"], &[]);
    let hosts = hosts_json(&run);
    assert_eq!(hosts.len(), 2);
    // remote_user is below the inventory's ansible_user, as in Ansible.
    assert_eq!(hosts[0]["user"], "cfg_user");
    assert_eq!(hosts[1]["user"], "inventory_user");
    assert!(
        run.stderr
            .contains(&format!("ansible.cfg: read {}\n", cfg.display())),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("not used by midfleet: [defaults] gathering"),
        "{}",
        run.stderr
    );

    // Without -v nothing is said; -i beats the configured inventory.
    project.write("work/other.ini", "[x]\nsolo\n");
    let run = project.midfleet(&["hosts", "-i", "other.ini", "--output", "json"], &[]);
    let hosts = hosts_json(&run);
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0]["name"], "solo");
    assert_eq!(run.stderr, "");

    // ANSIBLE_INVENTORY beats the file.
    let run = project.midfleet(
        &["hosts", "--output", "json"],
        &[
            ("ANSIBLE_INVENTORY", "other.ini"),
            ("ANSIBLE_REMOTE_USER", "env_user"),
        ],
    );
    let hosts = hosts_json(&run);
    assert_eq!(
        (hosts.len(), &hosts[0]["user"]),
        (1, &serde_json::json!("env_user"))
    );
}

#[test]
fn no_inventory_anywhere_is_a_clear_error_and_v_says_no_file_was_found() {
    let project = Project::new();
    let run = project.midfleet(&["hosts", "-v"], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("ansible.cfg: none found (looked at "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("error: no inventory: give one with -i"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("hint: or set `inventory = PATH`"),
        "{}",
        run.stderr
    );
}

#[test]
fn weakened_host_key_checking_is_warned_about_and_rerouting_refused() {
    let project = Project::new();
    project.write("work/hosts.ini", INVENTORY);
    let cfg = project.write(
        "work/ansible.cfg",
        "[defaults]\ninventory = hosts.ini\nhost_key_checking = False\n",
    );
    let run = project.midfleet(&["hosts"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "warning: {}:3:1: host_key_checking = False ([defaults]) is ignored: midfleet never connects to a host whose key it cannot check",
            cfg.display()
        )),
        "{}",
        run.stderr
    );
    let run = project.midfleet(&["hosts"], &[("ANSIBLE_HOST_KEY_CHECKING", "false")]);
    assert!(
        run.stderr
            .contains("ANSIBLE_HOST_KEY_CHECKING=false is ignored"),
        "{}",
        run.stderr
    );

    project.write(
        "work/ansible.cfg",
        "[defaults]\ninventory = hosts.ini\n[ssh_connection]\nssh_args = -o ControlMaster=auto -o ProxyCommand=\"ssh -W %h:%p bastion\"\n",
    );
    let run = project.midfleet(&["hosts"], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("[ssh_connection] ssh_args: `-o ProxyCommand` changes where"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn a_broken_ansible_cfg_is_an_error_naming_its_line() {
    let project = Project::new();
    let cfg = project.write("work/ansible.cfg", "[defaults]\ninventory = x\nforks\n");
    let run = project.midfleet(&["hosts", "-i", "x"], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "error: {}:3:1: not a `key = value` line",
            cfg.display()
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn extra_vars_win_over_every_inventory_variable() {
    let project = Project::new();
    project.write("work/hosts.ini", INVENTORY);
    project.write("work/host_vars/mid1.yml", "ansible_port: 2300\n");
    project.write("work/extra.yml", "ansible_user: from_file\n");
    let run = project.midfleet(
        &[
            "hosts",
            "-i",
            "hosts.ini",
            "--output",
            "json",
            "-e",
            "ansible_port=2222",
            "--extra-vars",
            "@extra.yml",
        ],
        &[],
    );
    let hosts = hosts_json(&run);
    for host in &hosts {
        assert_eq!(host["port"], 2222, "{host}");
        assert_eq!(host["user"], "from_file", "{host}");
    }

    // A bad -e names the argument and never its value.
    let run = project.midfleet(
        &[
            "hosts",
            "-i",
            "hosts.ini",
            "-e",
            "ok=1",
            "-e",
            "mid_password='hunter2",
        ],
        &[],
    );
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("error: -e #2: unbalanced quotes"),
        "{}",
        run.stderr
    );
    assert!(!run.all_output().contains("hunter2"));
}

#[test]
fn check_warns_about_a_misspelled_mid_parameter() {
    let project = Project::new();
    project.write("work/hosts.ini", INVENTORY);
    project.write(
        "work/rotate.yml",
        "hosts: emea\nset:\n  mid.instanse.username: svc_mid\n",
    );
    let run = project.midfleet(&["check", "-i", "hosts.ini", "rotate.yml"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "warning: rotate.yml:3:3: `mid.instanse.username` in `set` is not a documented MID Server parameter; did you mean `mid.instance.username`?"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn ansible_playbook_options_midfleet_lacks_get_a_true_tip() {
    for (option, tip) in [
        (
            "-u",
            "the login user comes from the inventory (`ansible_user`)",
        ),
        ("--check", "`midfleet plan` shows what would change"),
        ("-K", "never asks for a sudo password"),
    ] {
        let run = midfleet(["hosts", "-i", "inventory", option], &[]);
        assert_eq!(run.code, 3, "{option}");
        assert!(run.stderr.contains("  tip: "), "{option}: {}", run.stderr);
        assert!(run.stderr.contains(tip), "{option}: {}", run.stderr);
        assert!(
            !run.stderr.contains("as a value, use"),
            "{option}: {}",
            run.stderr
        );
    }
}

/// midfleet's `-v` line for the file it read, as `ansible --version` says it.
fn midfleet_config_file(run: &Run) -> String {
    run.stderr
        .lines()
        .find_map(|line| line.strip_prefix("ansible.cfg: read "))
        .map_or_else(|| "None".to_string(), str::to_string)
}

#[test]
fn the_file_read_is_the_one_ansible_reads() {
    let project = Project::new();
    project.write("work/hosts.ini", INVENTORY);
    let body = format!(
        "[defaults]\ninventory = {}\n",
        project.work().join("hosts.ini").display()
    );
    project.write("home/.ansible.cfg", &body);
    project.write("elsewhere/ansible.cfg", &body);
    let elsewhere = project.root.path().join("elsewhere");
    let missing = project.root.path().join("missing.cfg");
    let compare = |label: &str, environment: &[(&str, &str)]| {
        let ansible = project.ansible_config_file(environment);
        let run = project.midfleet(&["hosts", "-v"], environment);
        assert_eq!(
            midfleet_config_file(&run),
            ansible,
            "{label}: {}",
            run.stderr
        );
    };
    compare("home", &[]);
    project.write("work/ansible.cfg", &body);
    compare("working directory over home", &[]);
    compare(
        "ANSIBLE_CONFIG folder",
        &[("ANSIBLE_CONFIG", elsewhere.to_str().unwrap())],
    );
    compare(
        "ANSIBLE_CONFIG missing",
        &[("ANSIBLE_CONFIG", missing.to_str().unwrap())],
    );
    std::fs::set_permissions(project.work(), std::fs::Permissions::from_mode(0o777)).unwrap();
    compare("world-writable working directory", &[]);
    std::fs::set_permissions(project.work(), std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn configured_values_are_the_ones_ansible_resolves() {
    let project = Project::new();
    project.write(
        "work/ansible.cfg",
        "[defaults]\ninventory = inv/a.ini , ~/b.ini,/abs/c.ini\nforks = 7\nremote_user = \"quoted\"\n",
    );
    let output = Command::new(ansible_bin().join("ansible-config"))
        .args(["dump", "--only-changed"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", project.home())
        .env("LANG", "C.UTF-8")
        .current_dir(project.work())
        .output()
        .expect("ansible-config dump");
    let dump = String::from_utf8_lossy(&output.stdout).into_owned();
    let value = |name: &str| {
        dump.lines()
            .find(|line| line.starts_with(&format!("{name}(")))
            .and_then(|line| line.split_once(" = "))
            .map(|(_, value)| value.to_string())
            .unwrap_or_else(|| panic!("{name} in {dump}"))
    };
    let environment = midfleet::ansible_cfg::Environment {
        variables: [("HOME".to_string(), project.home().display().to_string())].into(),
        working_directory: Some(project.work()),
        home: project.home(),
        system_file: PathBuf::from(midfleet::ansible_cfg::SYSTEM_FILE),
    };
    let (configuration, diagnostics) = midfleet::ansible_cfg::AnsibleCfg::load(&environment);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let inventory: Vec<String> = configuration
        .inventory
        .unwrap()
        .value
        .iter()
        .map(|path| format!("'{}'", path.display()))
        .collect();
    assert_eq!(
        format!("[{}]", inventory.join(", ")),
        value("DEFAULT_HOST_LIST")
    );
    assert_eq!(
        configuration.forks.unwrap().value.to_string(),
        value("DEFAULT_FORKS")
    );
    assert_eq!(
        configuration.remote_user.unwrap().value,
        value("DEFAULT_REMOTE_USER")
    );
}

/// The user and port of each host from the ssh command lines the real
/// Ansible runs (a fake `ssh` records them), by host address.
fn ansible_ssh_targets(
    project: &Project,
    arguments: &[&str],
    environment: &[(&str, &str)],
) -> Vec<(String, String, String)> {
    let fake = project.root.path().join("fakebin");
    std::fs::create_dir_all(&fake).unwrap();
    let log = project.root.path().join("argv.log");
    let _ = std::fs::remove_file(&log);
    let script = fake.join("ssh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexit 255\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let status = Command::new(ansible_bin().join("ansible"))
        .args(arguments)
        .args(["-m", "ping", "--forks", "1"])
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", fake.display()))
        .env("HOME", project.home())
        .env("LANG", "C.UTF-8")
        .envs(environment.iter().copied())
        .current_dir(project.work())
        .output()
        .expect("ansible");
    let text = std::fs::read_to_string(&log).unwrap_or_else(|_| {
        panic!(
            "ansible ran no ssh: {}",
            String::from_utf8_lossy(&status.stdout)
        )
    });
    let mut targets: Vec<(String, String, String)> = text
        .lines()
        .map(|line| {
            let option = |name: &str| {
                line.split(" -o ")
                    .find_map(|option| option.strip_prefix(&format!("{name}=")))
                    .map(|value| {
                        value
                            .split_whitespace()
                            .next()
                            .unwrap_or("")
                            .trim_matches('"')
                            .to_string()
                    })
                    .unwrap_or_default()
            };
            let address = line
                .split(" /bin/sh ")
                .next()
                .and_then(|head| head.split_whitespace().last())
                .unwrap_or_default()
                .to_string();
            (address, option("User"), option("Port"))
        })
        .collect();
    targets.sort();
    targets.dedup();
    targets
}

#[test]
fn users_and_ports_match_the_ssh_command_lines_of_ansible() {
    let project = Project::new();
    project.write(
        "work/hosts.ini",
        "[emea]\nmid1 ansible_host=127.0.0.11 ansible_port=2200\nmid2 ansible_host=127.0.0.12 ansible_user=inventory_user\n",
    );
    project.write(
        "work/ansible.cfg",
        "[defaults]\ninventory = hosts.ini\nremote_user = cfg_user\nremote_port = 2345\n",
    );
    for (extra, environment) in [
        (vec![], vec![]),
        (vec!["-e", "ansible_port=2222"], vec![]),
        (
            vec!["-e", "{\"ansible_user\": \"from_e\"}"],
            vec![("ANSIBLE_REMOTE_USER", "env_user")],
        ),
        (vec![], vec![("ANSIBLE_REMOTE_USER", "env_user")]),
    ] {
        let mut arguments = vec!["all"];
        arguments.extend(extra.iter().copied());
        let ansible = ansible_ssh_targets(&project, &arguments, &environment);
        let mut midfleet_arguments = vec!["hosts", "--output", "json"];
        midfleet_arguments.extend(extra.iter().copied());
        let run = project.midfleet(&midfleet_arguments, &environment);
        let mut ours: Vec<(String, String, String)> = hosts_json(&run)
            .iter()
            .map(|host| {
                let port = host["port"].as_u64().unwrap();
                (
                    host["address"].as_str().unwrap().to_string(),
                    host["user"].as_str().unwrap().to_string(),
                    // Ansible leaves the port to ssh unless set.
                    if port == 22 {
                        String::new()
                    } else {
                        port.to_string()
                    },
                )
            })
            .collect();
        ours.sort();
        assert_eq!(ours, ansible, "{extra:?} {environment:?}");
    }
}

#[test]
fn extra_vars_reach_the_playbooks_templates() {
    let project = Project::new();
    project.write("work/hosts.ini", INVENTORY);
    project.write(
        "work/rotate.yml",
        "hosts: emea\nset:\n  mid.instance.username: \"{{ new_user }}\"\n",
    );
    let run = project.midfleet(&["check", "-i", "hosts.ini", "rotate.yml"], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("new_user"), "{}", run.stderr);
    let run = project.midfleet(
        &[
            "check",
            "-i",
            "hosts.ini",
            "rotate.yml",
            "-e",
            "new_user=svc_mid_emea",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}
