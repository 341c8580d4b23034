//! The lab itself, and `midfleet facts` against it: real sshd hosts.

use std::time::{Duration, Instant};

use midfleet_lab::{Lab, LabSpec};

use crate::support::midfleet;

pub fn midsim() -> std::path::PathBuf {
    midfleet_lab::midsim()
}

/// A lab, or a loud failure saying what is missing.
pub fn lab(spec: LabSpec) -> Lab {
    Lab::start(&spec).unwrap_or_else(|error| panic!("the lab did not start: {error}"))
}

#[test]
fn facts_of_twenty_hosts() {
    let started = Instant::now();
    let lab = lab(LabSpec::new(20, &midsim()));
    eprintln!("lab of 20 hosts up in {:?}", started.elapsed());
    let inventory = lab.inventory.to_str().unwrap();
    let known_hosts = lab.known_hosts.to_str().unwrap();
    let run = midfleet(
        [
            "facts",
            "-i",
            inventory,
            "--known-hosts",
            known_hosts,
            "--output",
            "json",
            "-f",
            "8",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let facts: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(facts.len(), 20);
    for (host, lab_host) in facts.iter().zip(&lab.hosts) {
        assert_eq!(host["host"], lab_host.name.as_str());
        assert_eq!(host["status"], "ok", "{host}");
        assert_eq!(host["instance_user"], midfleet_lab::INITIAL_USER);
        assert_eq!(
            host["password"], "encrypted",
            "the MID encrypted it at start"
        );
        assert_eq!(host["key_pair"], true);
        assert_eq!(host["service"]["kind"], "mid.sh");
        assert_eq!(host["service"]["state"], "running");
        assert_eq!(host["config"]["mode"], "0600");
        assert_eq!(host["config"]["owner"], "root");
        assert_eq!(
            host["config"]["sha256"].as_str().unwrap(),
            midfleet::facts::sha256_hex(&lab_host.config())
        );
        assert_eq!(host["unfinished_journal"], false);
    }
    let _ = Duration::from_secs(0);
}

/// Lines of a host's sshd log that contain `needle`.
pub(crate) fn sshd_log_count(lab: &Lab, host: &str, needle: &str) -> usize {
    let log = std::fs::read_to_string(lab.directory.join("hosts").join(host).join("sshd.log"))
        .unwrap_or_default();
    log.lines().filter(|line| line.contains(needle)).count()
}

#[test]
fn without_mount_namespaces_hosts_fall_back_to_their_own_paths() {
    let mut spec = LabSpec::new(2, &midsim());
    spec.without_mount_namespaces = true;
    let lab = lab(spec);
    assert!(!lab.mount_namespaces);
    let run = midfleet(
        [
            "facts",
            "-i",
            lab.inventory.to_str().unwrap(),
            "--known-hosts",
            lab.known_hosts.to_str().unwrap(),
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let facts: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    for (host, lab_host) in facts.iter().zip(&lab.hosts) {
        assert_eq!(host["password"], "encrypted");
        let expected = lab_host.local_mid_home.join("agent/config.xml");
        assert_eq!(host["config_path"], expected.to_str().unwrap());
    }
}

#[test]
fn facts_is_one_session_and_one_exec_channel_per_host() {
    let lab = lab(LabSpec::new(4, &midsim()));
    let run = midfleet(
        [
            "facts",
            "-i",
            lab.inventory.to_str().unwrap(),
            "--known-hosts",
            lab.known_hosts.to_str().unwrap(),
            "--timings",
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let facts: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    for host in &facts {
        let name = host["host"].as_str().unwrap();
        assert_eq!(
            host["timings"]["execs"].as_array().unwrap().len(),
            1,
            "{name}: client side"
        );
        // The server side agrees: one login, one command.
        assert_eq!(
            sshd_log_count(&lab, name, "Accepted publickey"),
            1,
            "{name}"
        );
        assert_eq!(
            sshd_log_count(&lab, name, "Starting session: command"),
            1,
            "{name}"
        );
        if lab.mount_namespaces {
            assert_eq!(host["config_path"], "/opt/servicenow/mid/agent/config.xml");
        }
    }
}

/// A session on a lab host runs that host's login environment: a stock
/// `~/.bashrc` in the host's own home, not the machine user's (which on
/// this workplace runs `pyenv init`, ~150 processes a session, and no MID
/// host has it). Without the host's home, HOME is the machine user's.
#[test]
fn a_hosts_sessions_read_its_own_stock_bashrc_not_the_machines() {
    let lab = lab(LabSpec::new(2, &midsim()));
    for host in &lab.hosts {
        let output = std::process::Command::new("ssh")
            .args(["-F", "/dev/null", "-o", "BatchMode=yes", "-o"])
            .arg(format!("UserKnownHostsFile={}", lab.known_hosts.display()))
            .arg("-i")
            .arg(&lab.client_key)
            .args(["-p", &host.port.to_string()])
            .arg(format!("{}@{}", midfleet_lab::login_user(), host.address))
            // The HOME bash's startup read its ~/.bashrc from.
            .arg("printf '%s\\n' \"$HOME\"")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        let lines: Vec<&str> = stdout.lines().collect();
        let home = lab.directory.join("hosts").join(&host.name).join("home");
        assert_eq!(lines[0], home.to_str().unwrap(), "{}: {stdout}", host.name);
        let bashrc = std::fs::read_to_string(home.join(".bashrc")).unwrap();
        assert!(bashrc.contains("*) return ;;"), "{bashrc}");
    }
}

#[test]
fn unknown_and_changed_host_keys_are_refused_with_their_fingerprint() {
    let mut lab = lab(LabSpec::new(3, &midsim()));
    let empty_known_hosts = lab.directory.join("empty_known_hosts");
    std::fs::write(&empty_known_hosts, "").unwrap();
    let inventory = lab.inventory.display().to_string();
    let lab_known_hosts = lab.known_hosts.clone();
    let arguments = |known_hosts: &std::path::Path, extra: &[&str]| {
        facts_arguments(&inventory, known_hosts, extra)
    };
    // Unknown: refused, with the fingerprint and what to do.
    let run = midfleet(arguments(&empty_known_hosts, &[]), &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("is not known (ssh-ed25519 SHA256:"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("hint: verify SHA256:"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("3 hosts: 0 ok, 3 failed"),
        "{}",
        run.stdout
    );
    // A known_hosts file that does not exist yet: the hint says how to
    // start one, not to append to it.
    let missing = lab.directory.join("ssh/known_hosts");
    let run = midfleet(arguments(&missing, &[]), &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let start = format!(
        "hint: {} does not exist yet: start it with `mkdir -p -m 700 {} && ssh-keyscan -p ",
        missing.display(),
        missing.parent().unwrap().display()
    );
    assert!(run.stdout.contains(&start), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("or with `midfleet facts --accept-new-host-keys`"),
        "{}",
        run.stdout
    );
    // --accept-new-host-keys records them, then plain runs connect.
    let run = midfleet(
        arguments(&empty_known_hosts, &["--accept-new-host-keys"]),
        &[],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let recorded = std::fs::read_to_string(&empty_known_hosts).unwrap();
    assert_eq!(recorded.lines().count(), 3, "{recorded}");
    for host in &lab.hosts {
        let expected = format!("[{}]:{} {}", host.address, host.port, host.host_key);
        assert!(recorded.contains(&expected), "{expected} in {recorded}");
    }
    assert_eq!(midfleet(arguments(&empty_known_hosts, &[]), &[]).code, 0);

    // Changed: refused, even with --accept-new-host-keys, and the others
    // still succeed.
    lab.change_host_key("lab-002").unwrap();
    for extra in [&[][..], &["--accept-new-host-keys"][..]] {
        let run = midfleet(arguments(&lab_known_hosts, extra), &[]);
        assert_eq!(run.code, 1, "{}", run.stdout);
        assert!(
            run.stdout.contains("lab-002: the host key of"),
            "{}",
            run.stdout
        );
        assert!(run.stdout.contains("has CHANGED"), "{}", run.stdout);
        assert!(run.stdout.contains("ssh-keygen -R"), "{}", run.stdout);
        assert!(
            run.stdout.contains("3 hosts: 2 ok, 1 failed"),
            "{}",
            run.stdout
        );
    }
    let known = std::fs::read_to_string(&lab.known_hosts).unwrap();
    assert_eq!(known.lines().count(), 3, "a changed key is never recorded");
}

/// `@revoked` refuses a key even though another line accepts it;
/// `@cert-authority` is reported as unsupported with its file and line,
/// never read as a host name, and a host only a CA vouches for is refused
/// for that reason (its key is not recorded, even when new keys are).
#[test]
fn revoked_keys_are_refused_and_cert_authority_lines_are_reported() {
    let lab = lab(LabSpec::new(2, &midsim()));
    let inventory = lab.inventory.display().to_string();
    let facts = |known_hosts: &std::path::Path, extra: &[&str]| {
        midfleet(facts_arguments(&inventory, known_hosts, extra), &[])
    };
    let known = std::fs::read_to_string(&lab.known_hosts).unwrap();
    let (first, second) = (&lab.hosts[0], &lab.hosts[1]);
    let name = |host: &midfleet_lab::LabHost| format!("[{}]:{}", host.address, host.port);

    // lab-001's key is listed as usual, and revoked on line 3.
    let revoked = lab.directory.join("known_hosts_revoked");
    std::fs::write(
        &revoked,
        format!("{known}@revoked {} {}\n", name(first), first.host_key),
    )
    .unwrap();
    assert_eq!(known.lines().count(), 2, "{known}");
    for extra in [&[][..], &["--accept-new-host-keys"][..]] {
        let run = facts(&revoked, extra);
        assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
        assert!(
            run.stdout
                .contains(&format!("{}: the host key SHA256:", first.name))
                && run.stdout.contains(&format!(
                    " of {} is marked @revoked in {}:3",
                    name(first),
                    revoked.display()
                )),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout.contains("2 hosts: 1 ok, 1 failed"),
            "{}",
            run.stdout
        );
    }

    // lab-002 has no key line, only a CA that "signs" every host.
    let authority = lab.directory.join("known_hosts_authority");
    let without_second: String = known
        .lines()
        .filter(|line| !line.starts_with(&name(second)))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(
        &authority,
        format!("{without_second}@cert-authority * {}\n", first.host_key),
    )
    .unwrap();
    for extra in [&[][..], &["--accept-new-host-keys"][..]] {
        let run = facts(&authority, extra);
        assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains(&format!(
                "warning: {}:2: @cert-authority (host certificates) is not supported by midfleet",
                authority.display()
            )),
            "{}",
            run.stderr
        );
        assert!(
            run.stdout.contains(&format!(
                "{}: host certificates (@cert-authority, {}:2) are not supported; the host key of {} (ssh-ed25519 SHA256:",
                second.name,
                authority.display(),
                name(second)
            )),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout.contains("hint: add the host key"),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout.contains("2 hosts: 1 ok, 1 failed"),
            "{}",
            run.stdout
        );
    }
    assert_eq!(
        std::fs::read_to_string(&authority).unwrap().lines().count(),
        2,
        "the key of a host meant to be vouched for by a CA is never recorded"
    );
}

#[test]
fn hosts_behind_one_and_two_bastions_are_reached_through_them() {
    let mut spec = LabSpec::new(1, &midsim());
    spec.behind_one_hop = 2;
    spec.behind_two_hops = 2;
    let lab = lab(spec);
    // Not reachable directly: the hidden hosts live in namespaces this
    // machine has no route to.
    let hidden = lab.host("hidden1-01");
    let direct = std::net::TcpStream::connect_timeout(
        &format!("{}:22", hidden.address).parse().unwrap(),
        Duration::from_secs(1),
    );
    assert!(
        direct.is_err(),
        "hidden hosts must not be reachable directly"
    );
    let run = midfleet(
        [
            "facts",
            "-i",
            lab.inventory.to_str().unwrap(),
            "--known-hosts",
            lab.known_hosts.to_str().unwrap(),
            "-F",
            lab.ssh_config.to_str().unwrap(),
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let facts: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    let names: Vec<&str> = facts
        .iter()
        .map(|host| host["host"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "lab-001",
            "hidden1-01",
            "hidden1-02",
            "hidden2-01",
            "hidden2-02"
        ]
    );
    for host in &facts {
        assert_eq!(host["status"], "ok", "{host}");
        assert_eq!(host["password"], "encrypted", "{host}");
    }
    // Each bastion carried its hosts over one session.
    assert_eq!(sshd_log_count(&lab, "bastion-1", "Accepted publickey"), 1);
    assert_eq!(sshd_log_count(&lab, "bastion-2", "Accepted publickey"), 1);
}

#[test]
fn become_reads_a_root_only_config_and_sudo_refusals_are_clear() {
    let mut spec = LabSpec::new(1, &midsim());
    spec.users = true;
    let lab = lab(spec);
    let inventory = |user: &str, become_root: bool| {
        let path = lab
            .directory
            .join(format!("inventory-{user}-{become_root}.yml"));
        std::fs::write(&path, lab.inventory_text(user, become_root)).unwrap();
        path
    };
    let facts = |path: &std::path::Path| {
        midfleet(
            [
                "facts",
                "-i",
                path.to_str().unwrap(),
                "--known-hosts",
                lab.known_hosts.to_str().unwrap(),
            ],
            &[],
        )
    };
    let with_become = facts(&inventory(midfleet_lab::SUDO_USER, true));
    assert_eq!(
        with_become.code, 0,
        "{}{}",
        with_become.stdout, with_become.stderr
    );
    assert!(
        with_become.stdout.contains("encrypted"),
        "{}",
        with_become.stdout
    );

    let without = facts(&inventory(midfleet_lab::SUDO_USER, false));
    assert_eq!(without.code, 1);
    assert!(
        without.stdout.contains("config.xml is not readable"),
        "{}",
        without.stdout
    );
    assert!(
        without.stdout.contains("hint: set `become: yes`"),
        "{}",
        without.stdout
    );

    let password_sudo = facts(&inventory(midfleet_lab::PASSWORD_SUDO_USER, true));
    assert_eq!(password_sudo.code, 1);
    assert!(
        password_sudo
            .stdout
            .contains("become: sudo wants a password"),
        "{}",
        password_sudo.stdout
    );
    assert!(
        password_sudo.stdout.contains("NOPASSWD"),
        "{}",
        password_sudo.stdout
    );
}

#[test]
fn closed_and_silent_hosts_fail_alone_within_their_timeout() {
    let mut spec = LabSpec::new(3, &midsim());
    spec.silent = 1;
    spec.closed = 1;
    let lab = lab(spec);
    let started = Instant::now();
    let run = midfleet(
        [
            "facts",
            "-i",
            lab.inventory.to_str().unwrap(),
            "--known-hosts",
            lab.known_hosts.to_str().unwrap(),
            "--output",
            "json",
        ],
        &[],
    );
    let elapsed = started.elapsed();
    assert_eq!(run.code, 1);
    let facts: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    let status = |name: &str| {
        facts
            .iter()
            .find(|host| host["host"] == name)
            .unwrap_or_else(|| panic!("{name} reported"))
            .clone()
    };
    for name in ["lab-001", "lab-002", "lab-003"] {
        assert_eq!(status(name)["status"], "ok");
    }
    let silent = status("silent-01");
    assert_eq!(silent["status"], "unreachable");
    assert!(
        silent["error"].as_str().unwrap().contains("no answer"),
        "{silent}"
    );
    let closed = status("closed-01");
    assert_eq!(closed["status"], "unreachable");
    assert!(
        closed["error"].as_str().unwrap().contains("refused"),
        "{closed}"
    );
    // connect_timeout is 3 s in the lab inventory: the silent host must not
    // hold the run much longer than that.
    assert!(elapsed < Duration::from_secs(12), "took {elapsed:?}");
}

#[test]
fn nothing_the_lab_started_survives_it() {
    let directory;
    {
        let lab = lab(LabSpec::new(2, &midsim()));
        directory = lab.directory.clone();
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut survivors = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(command_line) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let command_line = String::from_utf8_lossy(&command_line).replace('\0', " ");
        if command_line.contains(directory.to_str().unwrap()) {
            survivors.push(command_line);
        }
    }
    assert!(survivors.is_empty(), "still running: {survivors:#?}");
    assert!(!directory.exists(), "the lab directory is removed");
}

/// An inventory of the lab's plain hosts written by the test.
fn write_inventory(lab: &Lab, name: &str, text: &str) -> std::path::PathBuf {
    let path = lab.directory.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn facts_run(
    inventory: &std::path::Path,
    lab: &Lab,
    extra: &[&str],
    environment: &[(&str, &str)],
) -> crate::support::Run {
    let mut arguments = vec![
        "facts".to_string(),
        "-i".into(),
        inventory.display().to_string(),
        "--known-hosts".into(),
        lab.known_hosts.display().to_string(),
    ];
    arguments.extend(extra.iter().map(|argument| argument.to_string()));
    midfleet(arguments, environment)
}

#[test]
fn ssh_config_aliases_agent_keys_and_default_keys_are_honoured() {
    let lab = lab(LabSpec::new(1, &midsim()));
    let host = &lab.hosts[0];
    let mid_home = format!("mid_home: \"{}\"", host.mid_home);

    // ~/.ssh/config: an alias with HostName, Port, User and IdentityFile.
    let config = lab.directory.join("alias_config");
    std::fs::write(
        &config,
        format!(
            "Host mid-alias\n    HostName {}\n    Port {}\n    User root\n    IdentityFile {}\n",
            host.address,
            host.port,
            lab.client_key.display()
        ),
    )
    .unwrap();
    let inventory = write_inventory(
        &lab,
        "alias.yml",
        &format!("all:\n  hosts:\n    mid-alias: {{ {mid_home} }}\n"),
    );
    let run = facts_run(&inventory, &lab, &["-F", config.to_str().unwrap()], &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    // Without the ssh config, the alias is just an unresolvable name.
    let run = facts_run(&inventory, &lab, &[], &[]);
    assert_eq!(run.code, 1);

    // No identity_file: the ssh agent's keys.
    let plain = write_inventory(
        &lab,
        "plain.yml",
        &format!(
            "all:\n  hosts:\n    {}: {{ ansible_host: {}, ansible_port: {}, ansible_user: root, {mid_home} }}\n",
            host.name, host.address, host.port
        ),
    );
    let socket = lab.directory.join("agent.sock");
    let agent = std::process::Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("ssh-agent");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _agent = Kill(agent);
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let added = std::process::Command::new("ssh-add")
        .arg(&lab.client_key)
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let run = facts_run(
        &plain,
        &lab,
        &[],
        &[("SSH_AUTH_SOCK", socket.to_str().unwrap())],
    );
    assert_eq!(run.code, 0, "agent: {}{}", run.stdout, run.stderr);
    // Without the agent and without default keys: refused, saying what was
    // tried.
    let run = facts_run(&plain, &lab, &[], &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("authentication as root failed"),
        "{}",
        run.stdout
    );

    // The default ~/.ssh/id_ed25519.
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".ssh")).unwrap();
    std::fs::copy(&lab.client_key, home.path().join(".ssh/id_ed25519")).unwrap();
    let run = facts_run(
        &plain,
        &lab,
        &[],
        &[("HOME", home.path().to_str().unwrap())],
    );
    assert_eq!(run.code, 0, "default key: {}{}", run.stdout, run.stderr);
}

#[test]
fn an_encrypted_key_asks_for_its_passphrase_once() {
    let lab = lab(LabSpec::new(3, &midsim()));
    let key = lab.directory.join("encrypted_key");
    std::fs::copy(&lab.client_key, &key).unwrap();
    std::fs::copy(
        lab.client_key.with_extension("pub"),
        key.with_extension("pub"),
    )
    .unwrap();
    let changed = std::process::Command::new("ssh-keygen")
        .args(["-q", "-p", "-N", "correct horse", "-P", "", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        changed.status.success(),
        "{}",
        String::from_utf8_lossy(&changed.stderr)
    );
    assert!(midfleet::transport::is_encrypted(&key));
    assert!(!midfleet::transport::is_encrypted(&lab.client_key));
    let text = lab.inventory_text("root", false).replace(
        &lab.client_key.display().to_string(),
        &key.display().to_string(),
    );
    let inventory = write_inventory(&lab, "encrypted.yml", &text);
    // A terminal for the prompt: `script` gives midfleet a pty, and the
    // passphrase is typed once.
    let command = format!(
        "{} facts -i {} --known-hosts {} --forks 3",
        env!("CARGO_BIN_EXE_midfleet"),
        inventory.display(),
        lab.known_hosts.display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .env("HOME", crate::support::empty_home())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script(1)");
    std::thread::sleep(Duration::from_millis(500));
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert_eq!(text.matches("Passphrase for").count(), 1, "{text}");
    assert!(text.contains("3 hosts: 3 ok, 0 failed"), "{text}");
    assert!(
        !text.contains("correct horse"),
        "the passphrase is not echoed: {text}"
    );
}

/// Not a test: `cargo test --test integration -- --ignored lab::keep_a_lab_up`
/// starts a lab and keeps it for ten minutes, for looking around by hand
/// (its inventory, key and known_hosts are printed).
#[test]
#[ignore = "a tool for debugging by hand, not a test"]
fn keep_a_lab_up() {
    let lab = lab(LabSpec::new(2, &midsim()));
    eprintln!("LAB {}", lab.directory.display());
    for host in &lab.hosts {
        eprintln!("HOST {} {} {}", host.name, host.address, host.port);
    }
    std::thread::sleep(Duration::from_secs(600));
}

/// `midfleet demo` runs `midfleet-demo` from beside itself; without it,
/// it says what is missing and how to build it (and starts nothing).
#[test]
fn the_demo_without_its_binary_says_how_to_build_it() {
    let place = tempfile::tempdir().unwrap();
    let midfleet = place.path().join("midfleet");
    midfleet_lab::place_program(env!("CARGO_BIN_EXE_midfleet").as_ref(), &midfleet).unwrap();
    // Where the place is on another file system the program is copied, and
    // the copy was open for writing: a child another test forks in that
    // moment holds it until its exec, and running the copy then fails with
    // ETXTBSY. That passes in a moment; only that error is retried.
    let mut attempts = 0;
    let output = loop {
        match std::process::Command::new(&midfleet)
            .args(["--no-color", "demo"])
            .output()
        {
            Err(error)
                if error.kind() == std::io::ErrorKind::ExecutableFileBusy && attempts < 50 =>
            {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            other => break other.unwrap(),
        }
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(output.stdout.is_empty(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: {} is missing",
            place.path().join("midfleet-demo").display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: build it with `cargo build --release --workspace`"),
        "{stderr}"
    );
}

#[test]
fn the_demo_binary_alone_is_the_demo_and_only_the_demo() {
    let demo = midfleet_lab::binary("midfleet-demo");
    let help = std::process::Command::new(&demo)
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert_eq!(help.status.code(), Some(0), "{text}");
    assert!(
        text.contains("A throwaway local fleet of 5 MID hosts"),
        "{text}"
    );
    assert!(!text.contains("Commands:"), "midfleet's whole help: {text}");
    let other = std::process::Command::new(&demo)
        .args(["hosts", "-i", "x"])
        .output()
        .unwrap();
    assert_eq!(
        other.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
}

#[test]
fn the_demo_rotates_a_throwaway_fleet_and_cleans_up() {
    let state = tempfile::tempdir().unwrap();
    let run = midfleet(
        ["demo"],
        &[("MIDFLEET_LAB_STATE", state.path().to_str().unwrap())],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    // The plan once (apply shows it), and no key pair warning: the demo's
    // rotation has an instance section, so midfleet validates each MID.
    assert_eq!(
        run.stdout.matches("Plan: 5 to change").count(),
        1,
        "{}",
        run.stdout
    );
    assert!(
        !run.all_output().contains("key pair reset: validate"),
        "{}",
        run.all_output()
    );
    assert!(
        run.stderr
            .contains("instance: 5 of 5 MIDs validated (Invalidate, then Validate)"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("5 applied"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("Plan: 0 to change, 0 to start, 5 unchanged, 0 errors."),
        "{}",
        run.stdout
    );
    let directory = run
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("  lab in "))
        .expect("the demo names its lab directory");
    assert!(
        !std::path::Path::new(directory).exists(),
        "the lab is removed"
    );
}

/// `--no-color` reaches the demo's steps: on a terminal, no colour or
/// style escape (ESC [ … m) is written.
#[test]
fn the_demo_with_no_color_writes_no_colour_on_a_terminal() {
    let command = format!("{} --no-color demo", env!("CARGO_BIN_EXE_midfleet"));
    let state = tempfile::tempdir().unwrap();
    let output = std::process::Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .env("HOME", crate::support::empty_home())
        .env("MIDFLEET_LAB_STATE", state.path())
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script(1)");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("5 applied"), "{text}");
    let styled = text
        .split('\x1b')
        .skip(1)
        .filter(|rest| {
            rest.strip_prefix('[').is_some_and(|rest| {
                rest.chars()
                    .find(|c| !c.is_ascii_digit() && *c != ';')
                    .is_some_and(|end| end == 'm')
            })
        })
        .count();
    assert_eq!(styled, 0, "colour escapes with --no-color: {text}");
}

#[test]
fn the_demo_also_runs_as_a_normal_user() {
    midfleet_lab::create_users().expect("the lab's users");
    // The binaries where that user can run them, and a home of its own.
    let place = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        place.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for binary in [
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_midfleet")),
        midfleet_lab::binary("midfleet-demo"),
        midfleet_lab::midsim(),
        midfleet_lab::instancesim(),
    ] {
        let name = binary.file_name().unwrap();
        midfleet_lab::place_program(&binary, &place.path().join(name)).unwrap();
    }
    let home = place.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let owner = std::process::Command::new("chown")
        .args([midfleet_lab::SUDO_USER, home.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(owner.success());
    let command = format!(
        "cd {home} && HOME={home} USER={user} NO_COLOR=1 MIDFLEET_LAB_STATE={home}/lab-state {midfleet} demo",
        home = home.display(),
        user = midfleet_lab::SUDO_USER,
        midfleet = place.path().join("midfleet").display()
    );
    let output = std::process::Command::new("su")
        .args([midfleet_lab::SUDO_USER, "-s", "/bin/sh", "-c", &command])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("5 applied"), "{stdout}");
    assert!(
        stdout.contains("Plan: 0 to change, 0 to start, 5 unchanged, 0 errors."),
        "{stdout}"
    );
}

/// `--forks 256` needs about 1,100 open files: midfleet raises its soft
/// limit up to the hard one, and says so (with the `ulimit` to run) when
/// the hard limit is lower; the run goes on either way.
#[test]
fn many_forks_raise_the_open_files_limit_or_say_why_not() {
    use std::os::unix::process::CommandExt;
    let lab = lab(LabSpec::new(3, &midsim()));
    let facts = |soft: u64, hard: u64| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_midfleet"));
        command
            .args(["facts", "-i"])
            .arg(&lab.inventory)
            .arg("--known-hosts")
            .arg(&lab.known_hosts)
            .args(["--forks", "256"])
            .env("HOME", crate::support::empty_home())
            .env("NO_COLOR", "1");
        // SAFETY: setrlimit in the child between fork and exec.
        unsafe {
            command.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let output = command.output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = facts(64, 4096);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("open files"), "{stderr}");
    let (code, stderr) = facts(64, 64);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("--forks 256 needs about 1088 open files, but the limit is 64")
            && stderr.contains("ulimit -n 1088"),
        "{stderr}"
    );
}

/// `facts -i INVENTORY --known-hosts KNOWN_HOSTS EXTRA…`.
fn facts_arguments(inventory: &str, known_hosts: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let mut arguments = vec![
        "facts".to_string(),
        "-i".into(),
        inventory.to_string(),
        "--known-hosts".into(),
        known_hosts.display().to_string(),
    ];
    arguments.extend(extra.iter().map(|argument| argument.to_string()));
    arguments
}

/// Each lab MID has ServiceNow's shipped `conf/wrapper-override.conf`, and
/// `LabHost::set_heap_limit_mb` makes its host refuse a larger heap: the
/// JVM fails five launches, the wrapper gives up, the MID never starts;
/// without the limit it starts again.
#[test]
fn a_host_refuses_a_heap_larger_than_its_limit() {
    let lab = lab(LabSpec::new(1, &midsim()));
    let host = &lab.hosts[0];
    let shipped = String::from_utf8(host.wrapper_override()).unwrap();
    assert!(
        shipped
            .contains("# OPTIONAL: Maximum Java Heap Size (in MB)\nwrapper.java.maxmemory=1024\n"),
        "{shipped}"
    );
    assert!(
        shipped.contains("\n#wrapper.java.additional.1="),
        "{shipped}"
    );
    let started = |count: usize| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if host.agent_log().matches("MID Server started").count() >= count {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    };
    host.set_heap_limit_mb(Some(1536)).unwrap();
    assert!(host.mid("restart").unwrap());
    assert!(
        started(2),
        "1024 MB fits under 1536: {}",
        host.wrapper_log()
    );

    std::fs::write(
        host.wrapper_override_path(),
        shipped.replace("maxmemory=1024", "maxmemory=2048"),
    )
    .unwrap();
    assert!(host.mid("restart").unwrap(), "mid.sh start says 0 even so");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !host.wrapper_log().contains("Giving up.") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = host.wrapper_log();
    assert_eq!(
        log.matches("Could not reserve enough space for 2097152KB object heap")
            .count(),
        5,
        "{log}"
    );
    assert!(log.contains(
        "There were 5 failed launches in a row, each lasting less than 300 seconds.  Giving up."
    ));
    assert!(!host.mid("status").unwrap(), "the wrapper is gone");
    assert!(!started(3), "never started");

    host.set_heap_limit_mb(None).unwrap();
    assert!(host.mid("start").unwrap());
    assert!(started(3), "no limit: 2048 MB fits: {}", host.wrapper_log());
}
