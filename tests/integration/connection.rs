//! Connection variables as Ansible reads them: compared with the ssh
//! command lines the real Ansible runs (an `ssh` first in PATH records its
//! argv), then used against real sshd hosts — `ansible_ssh_host/_port/_user`
//! reach the right sshd, a `ProxyCommand "ssh -W %h:%p …"` bastion is
//! really crossed, and `ansible_become_user` runs the script through
//! `sudo -n -u USER`.

use std::collections::BTreeMap;
use std::path::Path;

use midfleet_lab::LabSpec;

use crate::ansible::ansible_command;
use crate::lab::{lab, midsim, sshd_log_count};
use crate::support::midfleet;

/// Every host gets its own address (Ansible's), so that each recorded ssh
/// command line tells which host it was for.
const PARITY_INVENTORY: &str = r#"[g]
both-on-the-line ansible_port=1717 ansible_ssh_port=1532 ansible_host=10.0.0.1 ansible_ssh_host=10.0.0.2 ansible_user=u1 ansible_ssh_user=u2
short-on-the-host ansible_port=1717 ansible_host=10.0.0.3 ansible_user=hostuser ansible_ssh_host=10.0.0.3
[h]
long-on-the-host ansible_ssh_port=1533 ansible_ssh_host=10.0.0.4 ansible_ssh_user=longuser
sudo-to-mid ansible_host=10.0.0.5 ansible_become=yes ansible_become_user=mid
sudo-user-wins ansible_host=10.0.0.6 ansible_become=yes ansible_become_user=mid ansible_sudo_user=other
sudo-to-root ansible_host=10.0.0.7 ansible_become=yes
proxy-command ansible_host=10.0.0.8 ansible_ssh_common_args='-o ProxyCommand="ssh -W %h:%p -q ops@bastion"'
common-before-extra ansible_host=10.0.0.9 ansible_ssh_common_args='-o ProxyJump=ops@first' ansible_ssh_extra_args='-o ProxyJump=second'
[g:vars]
ansible_ssh_port=1532
ansible_ssh_user=groupuser
[h:vars]
ansible_port=1800
ansible_user=shortuser
"#;

/// What one ssh command line of Ansible's says.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    port: Option<u16>,
    user: Option<String>,
    become_user: Option<String>,
    proxy: Option<String>,
}

/// Reads the argv files the fake ssh wrote: address → what it saw. ssh
/// takes the first value of each option, so the first one is kept.
fn recorded(directory: &Path) -> BTreeMap<String, Seen> {
    let mut seen = BTreeMap::new();
    for entry in std::fs::read_dir(directory).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let words: Vec<&str> = text.split('\0').filter(|word| !word.is_empty()).collect();
        let mut line = Seen::default();
        for pair in words.windows(2) {
            if pair[0] != "-o" {
                continue;
            }
            let (key, value) = pair[1].split_once('=').unwrap_or((pair[1], ""));
            match key {
                "Port" if line.port.is_none() => line.port = value.parse().ok(),
                "User" if line.user.is_none() => line.user = Some(value.trim_matches('"').into()),
                "ProxyJump" | "ProxyCommand" if line.proxy.is_none() => {
                    line.proxy = Some(pair[1].to_string())
                }
                _ => {}
            }
        }
        // `… -tt ADDRESS COMMAND`: the command holds sudo's `-u USER`.
        let command = words[words.len() - 1];
        if let Some(after) = command.split("sudo ").nth(1) {
            let mut sudo = after.split_whitespace();
            while let Some(word) = sudo.next() {
                if word == "-u" {
                    line.become_user = sudo.next().map(str::to_string);
                }
            }
            line.become_user.get_or_insert_with(|| "root".into());
        }
        seen.insert(words[words.len() - 2].to_string(), line);
    }
    seen
}

#[test]
fn connection_variables_resolve_as_in_ansible_s_own_ssh_command_lines() {
    let directory = tempfile::tempdir().unwrap();
    let inventory = directory.path().join("inventory.ini");
    std::fs::write(&inventory, PARITY_INVENTORY).unwrap();
    let bin = directory.path().join("bin");
    let argv = directory.path().join("argv");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&argv).unwrap();
    let ssh = bin.join("ssh");
    std::fs::write(
        &ssh,
        format!(
            "#!/bin/sh\nprintf '%s\\0' \"$@\" > {}/$$\nexit 255\n",
            argv.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = directory.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut command = ansible_command("ansible", &home);
    let path = format!(
        "{}:{}",
        bin.display(),
        crate::ansible::ansible_bin().display()
    );
    let output = command
        .env("PATH", format!("{path}:/usr/bin:/bin"))
        .args(["-i", inventory.to_str().unwrap(), "all", "-m", "raw"])
        .args(["-a", "true", "-T", "2", "-f", "1"])
        .output()
        .expect("run ansible");
    let ansible = recorded(&argv);
    assert_eq!(
        ansible.len(),
        8,
        "one ssh per host: {ansible:#?}\n{}",
        String::from_utf8_lossy(&output.stdout)
    );

    let run = midfleet(
        [
            "hosts",
            "-i",
            inventory.to_str().unwrap(),
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let hosts: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(hosts.len(), 8);
    for host in &hosts {
        let name = host["name"].as_str().unwrap();
        let address = host["address"].as_str().unwrap();
        let seen = ansible
            .get(address)
            .unwrap_or_else(|| panic!("{name}: Ansible connected to no {address}: {ansible:#?}"));
        // Ansible gives no `-o Port=`/`User=` when none is set; midfleet
        // shows ssh's defaults then (22, the local user).
        assert_eq!(
            host["port"].as_u64(),
            Some(u64::from(seen.port.unwrap_or(22))),
            "{name}: port"
        );
        assert_eq!(
            host["user"].as_str(),
            Some(seen.user.as_deref().unwrap_or("tester")),
            "{name}: user"
        );
        assert_eq!(
            host["become_user"].as_str(),
            seen.become_user.as_deref(),
            "{name}: become_user"
        );
    }
    // The issue's measurement, and the jumps ssh takes.
    let by_name = |name: &str| {
        hosts
            .iter()
            .find(|host| host["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(by_name("both-on-the-line")["port"], 1532);
    assert_eq!(
        ansible["10.0.0.8"].proxy.as_deref(),
        Some("ProxyCommand=ssh -W %h:%p -q ops@bastion")
    );
    assert_eq!(
        by_name("proxy-command")["jump"],
        serde_json::json!(["ops@bastion:22"])
    );
    assert_eq!(
        ansible["10.0.0.9"].proxy.as_deref(),
        Some("ProxyJump=ops@first")
    );
    assert_eq!(
        by_name("common-before-extra")["jump"],
        serde_json::json!(["ops@first:22"])
    );
}

#[test]
fn ansible_ssh_names_reach_the_right_sshd_and_a_proxy_command_bastion_is_crossed() {
    let mut spec = LabSpec::new(1, &midsim());
    spec.behind_one_hop = 1;
    let lab = lab(spec);
    let plain = lab.host("lab-001");
    let hidden = lab.host("hidden1-01");
    let bastion = hidden
        .jump
        .as_deref()
        .expect("a hidden host has a jump")
        .to_string();
    let key = lab.client_key.display().to_string();
    // The short names on the host are wrong on purpose: Ansible (and so
    // midfleet) takes the `ansible_ssh_` ones, even from the group. No
    // `-F`: the bastion's key comes from the ProxyCommand's `-i` alone.
    let text = format!(
        "[lab]\n{} ansible_host=192.0.2.1 ansible_port=1 ansible_user=nobody mid_home=\"{}\"\n\
         [lab:vars]\nansible_ssh_host={}\nansible_ssh_port={}\nansible_ssh_user={}\n\
         [hidden1]\n{} ansible_host={} mid_home=\"{}\"\n\
         [hidden1:vars]\nansible_user={}\n\
         ansible_ssh_common_args='-o ProxyCommand=\"ssh -W %h:%p -i {key} {bastion}\"'\n\
         [all:vars]\nansible_ssh_private_key_file={key}\nconnect_timeout=5\n",
        plain.name,
        plain.mid_home,
        plain.address,
        plain.port,
        midfleet_lab::login_user(),
        hidden.name,
        hidden.address,
        hidden.mid_home,
        midfleet_lab::login_user(),
    );
    let inventory = lab.directory.join("ansible-ssh-names.ini");
    std::fs::write(&inventory, text).unwrap();
    let run = midfleet(
        [
            "facts",
            "-i",
            inventory.to_str().unwrap(),
            "--known-hosts",
            lab.known_hosts.to_str().unwrap(),
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let facts: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(facts.len(), 2);
    for host in &facts {
        assert_eq!(host["status"], "ok", "{host}");
        assert_eq!(host["password"], "encrypted", "{host}");
    }
    assert_eq!(sshd_log_count(&lab, "bastion-1", "Accepted publickey"), 1);
}

#[test]
fn become_user_runs_the_script_through_sudo_as_that_user() {
    let mut spec = LabSpec::new(1, &midsim());
    spec.users = true;
    spec.mid_user = true;
    let lab = lab(spec);
    let host = &lab.hosts[0];
    let inventory = |name: &str, become_line: &str| {
        let path = lab.directory.join(name);
        let text = format!(
            "{} ansible_host={} ansible_port={} ansible_user={} mid_home=\"{}\" {become_line}\n\
             [all:vars]\nansible_ssh_private_key_file={}\nconnect_timeout=5\n",
            host.name,
            host.address,
            host.port,
            midfleet_lab::SUDO_USER,
            host.mid_home,
            lab.client_key.display(),
        );
        std::fs::write(&path, text).unwrap();
        path
    };
    let facts = |path: &Path| {
        midfleet(
            [
                "facts",
                "-i",
                path.to_str().unwrap(),
                "--known-hosts",
                lab.known_hosts.to_str().unwrap(),
                "--output",
                "json",
            ],
            &[],
        )
    };
    // The login user alone cannot read the MID user's config.xml (0640) …
    let without = facts(&inventory("without.ini", ""));
    assert_eq!(without.code, 1, "{}{}", without.stdout, without.stderr);
    assert!(
        without.stdout.contains("not readable"),
        "{}",
        without.stdout
    );
    // … `sudo -n -u midfleet-mid` can.
    let as_mid = facts(&inventory(
        "as-mid.ini",
        &format!(
            "ansible_become=yes ansible_become_user={}",
            midfleet_lab::MID_USER
        ),
    ));
    assert_eq!(as_mid.code, 0, "{}{}", as_mid.stdout, as_mid.stderr);
    let read: Vec<serde_json::Value> = serde_json::from_str(&as_mid.stdout).unwrap();
    assert_eq!(read[0]["status"], "ok", "{}", as_mid.stdout);
    assert_eq!(read[0]["config"]["owner"], midfleet_lab::MID_USER);
    // A user sudo does not know: sudo's own refusal, for this host.
    let unknown = facts(&inventory(
        "unknown.ini",
        "ansible_become=yes ansible_become_user=no-such-user-16",
    ));
    assert_eq!(unknown.code, 1, "{}{}", unknown.stdout, unknown.stderr);
    assert!(unknown.stdout.contains("become"), "{}", unknown.stdout);
    // And a method other than sudo is refused before anything is contacted.
    let su = facts(&inventory(
        "su.ini",
        "ansible_become=yes ansible_become_method=su",
    ));
    assert_ne!(su.code, 0);
    assert!(
        su.all_output().contains(
            "`ansible_become_method` is `su`: midfleet becomes another user only with `sudo -n`"
        ),
        "{}",
        su.all_output()
    );
}

/// Host keys with ports and IPv6 addresses, named and ported as
/// `ansible-inventory --list` names them, in INI and in YAML.
#[test]
fn host_keys_with_ports_and_ipv6_are_named_as_ansible_inventory_names_them() {
    let directory = tempfile::tempdir().unwrap();
    let ini = directory.path().join("inventory.ini");
    std::fs::write(
        &ini,
        "h1:2222\nh2:2223 ansible_port=2999\n[2001:db8::1]:2224\n2001:db8::2\nfe80::1%eth0\n\
         mid-[01:02]:2225\n[10.0.0.5]:2226\n10.0.0.6:2227\n[web]\nh1\nweird_host.example.com:2228\n\
         under_:2229\n::1\ndb-[a:b].example.com:22\n::ffff:192.0.2.3\n",
    )
    .unwrap();
    let yaml = directory.path().join("inventory.yml");
    std::fs::write(
        &yaml,
        "all:\n  hosts:\n    y1:2222:\n    \"[2001:db8::5]:2230\": {ansible_user: u}\n    \
         2001:db8::6:\n    y-[1:2]:2231:\n    y3:2232: {ansible_port: 2999}\n",
    )
    .unwrap();
    let home = directory.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    for inventory in [&ini, &yaml] {
        let output = ansible_command("ansible-inventory", &home)
            .args(["-i", inventory.to_str().unwrap(), "--list"])
            .output()
            .expect("run ansible-inventory");
        assert!(output.status.success(), "{output:?}");
        let listed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let hostvars = listed["_meta"]["hostvars"].as_object().unwrap();
        let mut expected: BTreeMap<String, u64> = BTreeMap::new();
        for group in listed.as_object().unwrap().values() {
            for name in group["hosts"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap();
                let port = hostvars
                    .get(name)
                    .and_then(|vars| vars["ansible_port"].as_u64())
                    .unwrap_or(22);
                expected.insert(name.to_string(), port);
            }
        }
        let run = midfleet(
            [
                "hosts",
                "-i",
                inventory.to_str().unwrap(),
                "--output",
                "json",
            ],
            &[],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        let hosts: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
        let found: BTreeMap<String, u64> = hosts
            .iter()
            .map(|host| {
                (
                    host["name"].as_str().unwrap().to_string(),
                    host["port"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(found, expected, "{}", inventory.display());
        assert!(found.len() >= 6, "{found:?}");
    }
}
