//! Secret references the inventory can steer, and plan files: bounded,
//! checked, and never a way to run what the playbook does not say
//! (security issue 14).

use std::path::Path;

use crate::support::midfleet;

/// An inventory of two hosts whose `mid_name` is `emea01` and `hostile`.
fn inventory(directory: &Path, hostile: &str) -> String {
    let path = directory.join("inventory.yml");
    std::fs::write(
        &path,
        format!(
            "all:\n  hosts:\n    mid-emea-01:\n      ansible_host: 127.0.0.1\n      mid_home: /opt/mid\n      mid_name: emea01\n    mid-evil-01:\n      ansible_host: 127.0.0.1\n      mid_home: /opt/mid\n      mid_name: \"{hostile}\"\n"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

fn playbook(directory: &Path, reference: &str) -> String {
    let path = directory.join("playbook.yml");
    std::fs::write(
        &path,
        format!("hosts: all\nset:\n  mid.instance.password: {{ secret: \"{reference}\" }}\n"),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn a_host_variable_cannot_lead_a_file_reference_out_of_its_folder() {
    let directory = tempfile::tempdir().unwrap();
    let secrets = directory.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("emea01"), "inside-value\n").unwrap();
    let reference = format!("file:{}/{{{{ mid_name }}}}", secrets.display());
    let playbook = playbook(directory.path(), &reference);
    for hostile in [
        "../../../../etc/hostname",
        "../../../../dev/zero",
        "/etc/hostname",
    ] {
        let inventory = inventory(directory.path(), hostile);
        let run = midfleet(
            ["check", "-i", &inventory, &playbook, "--resolve-secrets"],
            &[],
        );
        assert_eq!(run.code, 3, "{hostile}: {}", run.all_output());
        // The diagnostic names the playbook line, the host, the parameter
        // and the template as written.
        assert!(run.stderr.contains("playbook.yml:3:"), "{}", run.stderr);
        assert!(run.stderr.contains("host mid-evil-01"), "{}", run.stderr);
        assert!(
            run.stderr.contains(&format!("in `{reference}`")),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("leaves"), "{}", run.stderr);
        assert!(
            run.stderr
                .contains("must stay in the folder its template starts with"),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("mid-emea-01"), "{}", run.stderr);
        let hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        if !hostname.trim().is_empty() {
            assert!(
                !run.all_output().contains(hostname.trim()),
                "{}",
                run.all_output()
            );
        }
    }
    // A name that stays inside is read (and warned about: 0644).
    let inventory = inventory(directory.path(), "emea01");
    let run = midfleet(
        ["check", "-i", &inventory, &playbook, "--resolve-secrets"],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(
        run.stderr
            .contains("is readable by group or others (mode 0644)"),
        "{}",
        run.stderr
    );
    assert!(!run.all_output().contains("inside-value"));
}

#[test]
fn a_host_variable_cannot_make_an_env_name_of_other_characters() {
    let directory = tempfile::tempdir().unwrap();
    let playbook = playbook(directory.path(), "env:MID_PW_{{ mid_name }}");
    for hostile in ["x.y", "../PATH", "A=B"] {
        let inventory = inventory(directory.path(), hostile);
        let run = midfleet(["check", "-i", &inventory, &playbook], &[]);
        assert_eq!(run.code, 3, "{hostile}: {}", run.all_output());
        assert!(
            run.stderr.contains(&format!(
                "`env:MID_PW_{hostile}`: an environment variable name may hold only letters, digits and `_`"
            )),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("host mid-evil-01"), "{}", run.stderr);
        assert!(
            run.stderr.contains("in `env:MID_PW_{{ mid_name }}`"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("playbook.yml:3:"), "{}", run.stderr);
    }
}

const PASSWORD: &str = "Pl4n-file_pw&<x";

fn apply_plan(lab: &midfleet_lab::Lab, plan: &Path) -> crate::support::Run {
    midfleet(
        [
            "apply",
            "--plan",
            plan.to_str().unwrap(),
            "--yes",
            "--known-hosts",
            lab.known_hosts.to_str().unwrap(),
            "--audit-log",
            lab.directory.join("audit.jsonl").to_str().unwrap(),
        ],
        &[("MIDFLEET_TEST_PASSWORD", PASSWORD)],
    )
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `plan` with a `command:` reference added to its secrets, the way an
/// attacker who can write the file would: the hash is copied from a real
/// one, so only the reference check can stop it.
fn inject(plan: &str, command: &str) -> String {
    let mut value: serde_json::Value = serde_json::from_str(plan).unwrap();
    let secrets = value["secrets"].as_array_mut().unwrap();
    let mut injected = secrets[0].clone();
    injected["reference"] = serde_json::Value::from(format!("command:{command}"));
    secrets.insert(0, injected);
    serde_json::to_string_pretty(&value).unwrap()
}

#[test]
fn apply_plan_runs_only_what_its_own_playbook_says_from_a_file_only_its_user_can_write() {
    use midfleet_lab::LabSpec;
    let lab = crate::lab::lab(LabSpec::new(2, &crate::lab::midsim()));
    for host in &lab.hosts {
        lab.add_instance_user(&format!("svc_{}", host.name.replace('-', "")), PASSWORD)
            .unwrap();
    }
    let playbook = lab.directory.join("rotate.yml");
    std::fs::write(
        &playbook,
        "name: rotate\nhosts: lab\nset:\n  mid.instance.username: \"svc_{{ mid_name }}\"\n  \
         mid.instance.password: { secret: \"env:MIDFLEET_TEST_PASSWORD\" }\nhealth:\n  timeout: 20\nrollout:\n  serial: [100%]\n",
    )
    .unwrap();
    let saved = lab.directory.join("rotate.plan");
    let planned = midfleet(
        [
            "plan",
            "-i",
            lab.inventory.to_str().unwrap(),
            playbook.to_str().unwrap(),
            "--known-hosts",
            lab.known_hosts.to_str().unwrap(),
            "--out",
            saved.to_str().unwrap(),
        ],
        &[("MIDFLEET_TEST_PASSWORD", PASSWORD)],
    );
    assert_eq!(planned.code, 0, "{}", planned.all_output());
    let text = std::fs::read_to_string(&saved).unwrap();
    let recorded: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(recorded["format_version"], midfleet::plan::FORMAT_VERSION);
    assert_eq!(
        recorded["playbook"]["file"].as_str(),
        playbook.to_str(),
        "the playbook's absolute path"
    );
    assert_eq!(
        recorded["playbook"]["sha256"].as_str().map(str::len),
        Some(64)
    );
    let configs = || {
        lab.hosts
            .iter()
            .map(|host| host.config())
            .collect::<Vec<_>>()
    };
    let before = configs();
    let marker = lab.directory.join("pwned");
    let injected_text = inject(&text, &format!("touch {}", marker.display()));
    let refusals = |plan: &Path, expected: &[&str]| {
        let run = apply_plan(&lab, plan);
        assert_eq!(run.code, 3, "{}", run.all_output());
        for text in expected {
            assert!(run.stderr.contains(text), "`{text}` in {}", run.stderr);
        }
        assert!(!marker.exists(), "the injected command ran: {}", run.stderr);
        assert_eq!(configs(), before, "a host was touched: {}", run.stderr);
    };

    // An injected command: the references are checked against the
    // playbook before the first is resolved.
    let injected = lab.directory.join("injected.plan");
    std::fs::write(&injected, &injected_text).unwrap();
    chmod(&injected, 0o600);
    refusals(
        &injected,
        &[
            &format!("error: the plan's secret reference `command:touch {}` is not in its playbook {}; nothing was resolved or run", marker.display(), playbook.display()),
            "hint: the plan file was edited, or made from another playbook; make the plan again with `midfleet plan",
        ],
    );
    // The same file, writable by others or owned by another user, is not
    // even read.
    chmod(&injected, 0o666);
    refusals(
        &injected,
        &[
            &format!("error: the plan file {} can be written by group or others (mode 0666, owner uid 0); it was not read", injected.display()),
            &format!("chmod 600 {}", injected.display()),
            "midfleet plan -i INVENTORY PLAYBOOK --out FILE",
        ],
    );
    chmod(&injected, 0o600);
    std::os::unix::fs::chown(&injected, Some(65534), Some(65534)).unwrap();
    refusals(
        &injected,
        &[
            &format!("error: the plan file {} is owned by uid 65534 (mode 0600), not by the user running midfleet (uid 0); it was not read", injected.display()),
            &format!("chmod 600 {}", injected.display()),
        ],
    );
    // Nor through a link.
    let link = lab.directory.join("link.plan");
    std::os::unix::fs::symlink(&saved, &link).unwrap();
    refusals(&link, &["is a symbolic link"]);
    // A plan whose playbook changed since.
    let original = std::fs::read(&playbook).unwrap();
    std::fs::write(&playbook, [original.as_slice(), b"# edited\n"].concat()).unwrap();
    refusals(&saved, &["changed since the plan was made"]);
    std::fs::write(&playbook, &original).unwrap();

    // The plan as made still applies.
    let applied = apply_plan(&lab, &saved);
    assert_eq!(applied.code, 0, "{}", applied.all_output());
    assert_ne!(configs(), before);
    assert!(!applied.all_output().contains(PASSWORD));
}

/// Every argv and environment on this machine, as text (read as often as
/// possible while `running` holds).
fn process_texts_while(
    running: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<std::collections::BTreeSet<String>> {
    std::thread::spawn(move || {
        let mut seen = std::collections::BTreeSet::new();
        while running.load(std::sync::atomic::Ordering::SeqCst) {
            for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                for file in ["cmdline", "environ"] {
                    if let Ok(bytes) = std::fs::read(entry.path().join(file)) {
                        seen.insert(String::from_utf8_lossy(&bytes).into_owned());
                    }
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        seen
    })
}

fn files_under(directory: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(directory).unwrap().flatten() {
        if entry.path().is_dir() {
            files_under(&entry.path(), files);
        } else {
            files.push(entry.path());
        }
    }
}

/// A rotation's generated passwords exist only in the MID's encrypted
/// config and on the instance (here: the emulator's state, which stands
/// for the instance's hash): no stdout, stderr, plan file, audit log,
/// on-host record, agent log, request log, argv or environment holds one.
#[test]
fn a_rotations_generated_passwords_appear_nowhere_but_the_mid_and_the_instance() {
    use crate::rotation::{at, now, rotation_playbook, shared_fleet};
    let (lab, instance) = shared_fleet(3);
    let playbook = rotation_playbook(&lab, &instance.url);
    // With a store command: the password reaches it on stdin only.
    let kept = lab.directory.join("kept");
    std::fs::create_dir(&kept).unwrap();
    let text = std::fs::read_to_string(&playbook).unwrap().replace(
        "  max_age: 60d\n",
        &format!(
            "  max_age: 60d\n  store:\n    command: [/bin/sh, -c, \"cat > {}/$0\", \"{{{{ rotate_user }}}}\"]\n",
            kept.display()
        ),
    );
    std::fs::write(&playbook, text).unwrap();
    let day0 = now();
    let saved = lab.directory.join("rotation-plan.json");
    let plan = at(
        &lab,
        "plan",
        &playbook,
        day0,
        &["--out", saved.to_str().unwrap()],
    );
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = process_texts_while(running.clone());
    let applied = at(&lab, "apply", &playbook, day0, &[]);
    let third = at(
        &lab,
        "apply",
        &playbook,
        day0 + 61 * 86_400,
        &["--output", "json"],
    );
    running.store(false, std::sync::atomic::Ordering::SeqCst);
    let processes = watcher.join().unwrap();
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    assert_eq!(third.code, 0, "{}", third.stderr);
    // The passwords the instance holds for the rotated users.
    let passwords: Vec<String> = instance
        .records("sys_user")
        .iter()
        .filter(|user| user["user_name"].as_str().unwrap().starts_with("svc_lab"))
        .map(|user| user["user_password"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(passwords.len(), 6, "A and B of 3 hosts");
    assert!(passwords.iter().all(|password| password.len() == 32));
    let mut texts = vec![
        ("plan stdout".to_string(), plan.stdout.clone()),
        ("plan stderr".into(), plan.stderr.clone()),
        ("apply stdout".into(), applied.stdout.clone()),
        ("apply stderr".into(), applied.stderr.clone()),
        ("apply 3 stdout".into(), third.stdout.clone()),
        ("apply 3 stderr".into(), third.stderr.clone()),
    ];
    let mut files = vec![
        saved,
        lab.directory.join("audit.jsonl"),
        instance.log.clone(),
    ];
    for host in &lab.hosts {
        files_under(&host.local_mid_home.join(".midfleet"), &mut files);
        files_under(&host.agent().join("logs"), &mut files);
        files.push(host.config_path());
    }
    assert!(files.len() > 10, "{files:?}");
    for file in files {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        texts.push((file.display().to_string(), text));
    }
    texts.extend(
        processes
            .into_iter()
            .map(|text| ("a process's argv or environment".to_string(), text)),
    );
    // The search finds them where they are (the emulator keeps them in
    // clear, standing for the instance's hash).
    let state = std::fs::read_to_string(&instance.state).unwrap();
    assert!(passwords
        .iter()
        .all(|password| state.contains(password.as_str())));
    for password in &passwords {
        for (what, text) in &texts {
            assert!(
                !text.contains(password.as_str()),
                "{what} holds a generated password"
            );
        }
    }
}
