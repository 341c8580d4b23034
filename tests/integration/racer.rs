//! A MID user turned hostile (security issue 14). In a real install the
//! MID's service user owns mid_home and the agent folder, and midfleet
//! works there as root; whoever controls that user can race midfleet's
//! files, replace `mid.sh`, and write the MID's logs. Each test here runs
//! on a lab whose MIDs are installed that way (`LabSpec::mid_user`):
//!
//! - a racer (`tests/support/racer.py`, run as the MID user) swaps every
//!   entry root creates in `agent/`, `agent/security/` and mid_home for a
//!   symlink to a root-only victim, while midfleet applies, rolls back
//!   and resets key pairs: no victim may change, config.xml stays the
//!   MID user's regular file, the new password lands in no other file;
//! - `mid.sh` records who runs it: never root;
//! - log lines the MID user forges, or a line of another logger that
//!   merely holds a failure's words, never decide a host's health.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use midfleet::config_xml::ConfigXml;
use midfleet_lab::{Lab, LabHost, LabSpec, INITIAL_PASSWORD, INITIAL_USER};

use crate::faults::{command, run_on_lab, setup_lab, wait_until};
use crate::instancesim::Instance;
use crate::lab::{lab, midsim};
use crate::support::{midfleet, Run};

/// The racer, run as the MID user with `python3 -c`.
const RACER: &str = include_str!("../support/racer.py");

/// A one-host lab whose MID is installed as a real one is.
fn mid_user_lab() -> Lab {
    let mut spec = LabSpec::new(1, &midsim());
    spec.mid_user = true;
    lab(spec)
}

fn owner(host: &LabHost) -> (u32, u32) {
    host.mid_owner().expect("a lab with a MID user")
}

/// A command run as the MID user.
fn as_mid_user(host: &LabHost, program: &str) -> Command {
    let (uid, gid) = owner(host);
    let mut command = Command::new(program);
    command.uid(uid).gid(gid).current_dir("/");
    command
}

/// `chown` to the MID user, as root does it for the test's own files.
fn give_to_mid_user(host: &LabHost, path: &Path) {
    let (uid, gid) = owner(host);
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .unwrap_or_else(|error| panic!("chown {}: {error}", path.display()));
}

/// What one entry is, read with lstat: never through a link.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    /// A file's bytes, a link's target.
    content: Vec<u8>,
}

fn entry(path: &Path) -> Entry {
    let metadata =
        fs::symlink_metadata(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let (kind, content) = if metadata.file_type().is_symlink() {
        (
            "symlink",
            fs::read_link(path)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes(),
        )
    } else if metadata.is_dir() {
        ("dir", Vec::new())
    } else if metadata.is_file() {
        ("file", fs::read(path).unwrap())
    } else {
        ("other", Vec::new())
    };
    Entry {
        kind,
        mode: metadata.mode() & 0o7777,
        uid: metadata.uid(),
        gid: metadata.gid(),
        content,
    }
}

/// Every entry under `root` (itself included), never following a link.
fn tree(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut found = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let this = entry(&path);
        if this.kind == "dir" {
            for child in fs::read_dir(&path).unwrap().flatten() {
                pending.push(child.path());
            }
        }
        found.insert(path, this);
    }
    found
}

/// Root-only files and a root-only folder outside the lab, which the
/// racer's links point to.
struct Victims {
    directory: tempfile::TempDir,
    files: Vec<PathBuf>,
    folder: PathBuf,
    before: BTreeMap<PathBuf, Entry>,
}

impl Victims {
    fn create() -> Victims {
        let directory = tempfile::Builder::new()
            .prefix("midfleet-victims-")
            .tempdir()
            .unwrap();
        let mut files = Vec::new();
        for index in 1..=2 {
            let path = directory.path().join(format!("victim-{index}"));
            fs::write(
                &path,
                format!("victim {index}: root's own, never midfleet's\n"),
            )
            .unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            files.push(path);
        }
        // 0750, not 0700: a chmod 700 through a link shows.
        let folder = directory.path().join("victim-folder");
        fs::create_dir(&folder).unwrap();
        fs::set_permissions(&folder, fs::Permissions::from_mode(0o750)).unwrap();
        fs::write(folder.join("keep"), "root's folder\n").unwrap();
        fs::set_permissions(folder.join("keep"), fs::Permissions::from_mode(0o600)).unwrap();
        let before = tree(directory.path());
        Victims {
            directory,
            files,
            folder,
            before,
        }
    }

    /// How the victims differ from how they were made.
    fn changes(&self) -> Vec<String> {
        let now = tree(self.directory.path());
        let mut changes = Vec::new();
        for (path, was) in &self.before {
            match now.get(path) {
                None => changes.push(format!("{} is gone", path.display())),
                Some(is) if is != was => changes.push(format!(
                    "{} changed: {} {:o} {}:{} {} bytes -> {} {:o} {}:{} {} bytes",
                    path.display(),
                    was.kind,
                    was.mode,
                    was.uid,
                    was.gid,
                    was.content.len(),
                    is.kind,
                    is.mode,
                    is.uid,
                    is.gid,
                    is.content.len()
                )),
                Some(_) => {}
            }
        }
        for path in now.keys().filter(|path| !self.before.contains_key(*path)) {
            changes.push(format!("{} appeared", path.display()));
        }
        changes
    }
}

/// The racer program, running as the MID user until dropped.
struct Racer {
    child: Child,
    log: PathBuf,
}

impl Racer {
    fn start(lab: &Lab, host: &LabHost, victims: &Victims) -> Racer {
        let folder = lab.directory.join(format!("racer-{}", host.name));
        fs::create_dir(&folder).unwrap();
        give_to_mid_user(host, &folder);
        let log = folder.join("log");
        let stderr = fs::File::create(folder.join("stderr")).unwrap();
        let python = python_for(host);
        let mut racer = as_mid_user(host, &python);
        racer
            .arg("-c")
            .arg(RACER)
            .arg("--mid-home")
            .arg(&host.local_mid_home)
            .arg("--log")
            .arg(&log)
            .arg("--victim-dir")
            .arg(&victims.folder)
            .args(["--home", "--home-limit", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for file in &victims.files {
            racer.arg("--victim-file").arg(file);
        }
        let child = racer.spawn().unwrap();
        let mut racer = Racer { child, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !racer.lines().iter().any(|line| line == "ready") {
            if let Ok(Some(status)) = racer.child.try_wait() {
                panic!(
                    "the racer exited ({status}): {}",
                    fs::read_to_string(folder.join("stderr")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "the racer never got ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        racer
    }

    fn lines(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Its log lines of one word (`swap`, `miss`, `seen`), each as
    /// "FOLDER KIND-OF-NAME": random parts of names become `*`.
    fn events(&self, word: &str) -> Vec<String> {
        self.lines()
            .iter()
            .filter_map(|line| {
                let mut fields = line.split(' ');
                (fields.next() == Some(word)).then(|| {
                    let folder = fields.next().unwrap_or_default();
                    format!("{folder} {}", name_kind(fields.next().unwrap_or_default()))
                })
            })
            .collect()
    }
}

impl Drop for Racer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A name with its random part (a mktemp suffix, a run id) as `*`.
fn name_kind(name: &str) -> String {
    match name.find("midfleet") {
        Some(at) if name.len() > at + "midfleet".len() => format!("{}*", &name[..at + 8]),
        _ => name.to_string(),
    }
}

/// A python3 the MID user can run (a pyenv shim under /root is not one).
fn python_for(host: &LabHost) -> String {
    for candidate in ["/usr/bin/python3", "/usr/local/bin/python3", "python3"] {
        let works = as_mid_user(host, candidate)
            .args(["-c", "import ctypes, select"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if works {
            return candidate.to_string();
        }
    }
    panic!("no python3 the MID user can run (the racer needs one)");
}

/// The result word of each host in a JSON report (`apply`'s object, or
/// `rollback`'s bare list), or what went wrong.
fn result_words(run: &Run) -> Vec<String> {
    match serde_json::from_str::<serde_json::Value>(&run.stdout) {
        Ok(report) => report
            .as_array()
            .or_else(|| report["results"].as_array())
            .map(|results| {
                results
                    .iter()
                    .map(|result| result["result"].as_str().unwrap_or("?").to_string())
                    .collect()
            })
            .unwrap_or_else(|| vec![format!("no results (exit {})", run.code)]),
        Err(_) => vec![format!("no report (exit {})", run.code)],
    }
}

/// The instance user config.xml names, read without following a link.
fn config_user(host: &LabHost) -> Option<String> {
    let path = host.config_path();
    let metadata = fs::symlink_metadata(&path).ok()?;
    if !metadata.is_file() {
        return None;
    }
    let document = ConfigXml::parse(&fs::read(&path).ok()?).ok()?;
    Some(
        document
            .get(midfleet::config_xml::names::USERNAME)?
            .value()
            .to_string(),
    )
}

/// What is wrong on `host` after a step whose config.xml must name
/// `expected_user` (one of `users`): victims, config.xml, the MID, and
/// any of `passwords` in a file under mid_home other than config.xml.
fn violations(
    host: &LabHost,
    victims: &Victims,
    expected_user: &str,
    passwords: &[String],
) -> Vec<String> {
    let mut found = victims.changes();
    let config = host.config_path();
    match fs::symlink_metadata(&config) {
        Err(error) => found.push(format!("config.xml: {error}")),
        Ok(metadata) if !metadata.is_file() => found.push(format!(
            "config.xml is not a regular file ({:?}{})",
            metadata.file_type(),
            fs::read_link(&config)
                .map(|target| format!(" -> {}", target.display()))
                .unwrap_or_default()
        )),
        Ok(metadata) => {
            if (metadata.uid(), metadata.gid()) != owner(host) {
                found.push(format!(
                    "config.xml is owned by {}:{}, not the MID user",
                    metadata.uid(),
                    metadata.gid()
                ));
            }
            match config_user(host) {
                Some(user) if user == expected_user => {}
                other => found.push(format!(
                    "config.xml names {other:?}, expected {expected_user}"
                )),
            }
        }
    }
    if host.mid_process().is_none() {
        found.push("the MID is not running".into());
    }
    for (path, this) in tree(&host.local_mid_home) {
        // The racer's stash (root's entries it moved away, still root's
        // and unreadable to it) is its doing, not midfleet's.
        let stashed = path
            .components()
            .any(|part| part.as_os_str().to_string_lossy().starts_with(".racer-"));
        if path == config || this.kind != "file" || stashed {
            continue;
        }
        for password in passwords {
            if this
                .content
                .windows(password.len())
                .any(|window| window == password.as_bytes())
            {
                found.push(format!("{} holds the password {password}", path.display()));
            }
        }
    }
    found
}

/// The user-change playbook of the race: `user` with the password in
/// `RACE_PASSWORD`, short health timeout, every failure tolerated.
fn race_playbook(lab: &Lab, user: &str) -> PathBuf {
    let path = lab.directory.join(format!("race-{user}.yml"));
    fs::write(
        &path,
        format!(
            "hosts: lab\nset:\n  mid.instance.username: {user}\n  mid.instance.password: {{ secret: \"env:RACE_PASSWORD\" }}\nhealth:\n  timeout: 10\nrollout:\n  serial: [100%]\n  max_fail: 100%\n"
        ),
    )
    .unwrap();
    path
}

const ROUNDS: usize = 20;

/// 20 rounds of a password change, a user change (key pair reset: the
/// keystore folder backed up) and a `rollback` of it (the keystore folder
/// restored) while the racer swaps every entry root creates. Rounds may
/// fail; none may write through a link, leave config.xml anything but the
/// MID user's regular file naming the right user, leave the MID stopped,
/// or leave the new password in another file under mid_home.
#[test]
fn a_racing_mid_user_never_redirects_a_root_write() {
    let lab = mid_user_lab();
    let host = &lab.hosts[0];
    let users = [INITIAL_USER.to_string(), "svc_lab001".to_string()];
    let passwords: Vec<String> = (0..ROUNDS)
        .flat_map(|round| {
            [
                format!("Rac3d-pass-{round}-{}", std::process::id()),
                format!("Rac3d-user-{round}-{}", std::process::id()),
            ]
        })
        .collect();
    for user in &users {
        for password in &passwords {
            lab.add_instance_user(user, password).unwrap();
        }
    }
    let playbooks: Vec<PathBuf> = users.iter().map(|user| race_playbook(&lab, user)).collect();
    let victims = Victims::create();
    let racer = Racer::start(&lab, host, &victims);
    let inventory = lab.inventory.display().to_string();
    let mut applied: BTreeMap<&str, usize> = BTreeMap::new();
    let mut used: Vec<String> = Vec::new();
    let mut history: Vec<String> = Vec::new();
    // The user a rollback must bring back: the one before this round's
    // user change, when that change was applied.
    let mut restores: Option<String> = None;
    let started = Instant::now();
    for round in 0..ROUNDS {
        // The rollback undoes the user change: the keystore folder goes
        // back too, a folder midfleet copies into agent/.
        for step in ["password", "user", "rollback"] {
            let before = config_user(host).expect("config.xml names a user");
            let (run, target) = match step {
                "rollback" => {
                    let arguments = command(
                        &lab,
                        "rollback",
                        &[
                            "-i",
                            &inventory,
                            "--yes",
                            "--health-timeout",
                            "10",
                            "--output",
                            "json",
                        ],
                    );
                    (midfleet(arguments, &[]), None)
                }
                _ => {
                    let password = &passwords[round * 2 + usize::from(step == "user")];
                    used.push(password.clone());
                    let index = users.iter().position(|user| *user == before).unwrap();
                    let target = if step == "user" { 1 - index } else { index };
                    let run = midfleet(
                        command(
                            &lab,
                            "apply",
                            &[
                                "-i",
                                &inventory,
                                playbooks[target].to_str().unwrap(),
                                "--output",
                                "json",
                            ],
                        ),
                        &[("RACE_PASSWORD", password)],
                    );
                    (run, Some(users[target].clone()))
                }
            };
            let results = result_words(&run);
            // A rollback's done restore is `rolled_back`: for this loop,
            // the step applied.
            let result = match results.first().map(String::as_str) {
                Some("rolled_back") if step == "rollback" => "applied".to_string(),
                other => other.unwrap_or_default().to_string(),
            };
            if result == "applied" {
                *applied.entry(step).or_default() += 1;
            }
            history.push(format!("{round} {step} {result}"));
            // Applied: the new user (a rollback: the one before the user
            // change it undoes); else the old.
            let expected = match (&target, result.as_str()) {
                (Some(target), "applied") => target.clone(),
                (None, "applied") => restores.clone().unwrap_or_else(|| {
                    // The user change failed: the rollback went to an
                    // older backup, of either user.
                    config_user(host).unwrap_or_default()
                }),
                _ => before.clone(),
            };
            restores = (step == "user" && result == "applied").then(|| before.clone());
            let found = violations(host, &victims, &expected, &used);
            assert!(
                found.is_empty(),
                "round {round}, {step} ({results:?}):\n  {}\nracer: {:?}\n{}{}",
                found.join("\n  "),
                racer.events("swap"),
                run.stdout,
                run.stderr
            );
            // The racer swapped `.midfleet` for a link (once, its limit):
            // midfleet refused or went around it; the operator removes it.
            let home_link = host.local_mid_home.join(".midfleet");
            if fs::symlink_metadata(&home_link).is_ok_and(|found| found.file_type().is_symlink()) {
                fs::remove_file(&home_link).unwrap();
            }
        }
    }
    eprintln!(
        "{ROUNDS} rounds in {:?}; applied {applied:?}; racer swaps {:?}, misses {:?}",
        started.elapsed(),
        racer.events("swap"),
        racer.events("miss")
    );
    // The racer was alive and watching all along: it saw config.xml
    // renamed into place (by midfleet, and by the MID encrypting).
    assert!(
        racer.events("seen").len() >= ROUNDS,
        "the racer saw config.xml replaced only {} times",
        racer.events("seen").len()
    );
    // Whatever root made where the racer looks, the racer got at least
    // one of its kind (else this test proved nothing about that kind).
    let swapped = racer.events("swap");
    for kind in racer.events("miss") {
        assert!(
            swapped.contains(&kind),
            "the racer never swapped a {kind} (only missed it): {swapped:?}"
        );
    }
    // Each kind of step went through at least once under the racer.
    for step in ["password", "rollback", "user"] {
        assert!(
            applied.get(step).copied().unwrap_or(0) > 0,
            "no {step} step was applied: {history:?}"
        );
    }
}

/// `mid.sh` (the MID user's file) appends the uid running it to a record;
/// facts, plan, a rotation and a rollback never run it as root, and the
/// MID itself runs as its own user.
#[test]
fn mid_sh_never_runs_as_root() {
    let mut spec = LabSpec::new(1, &midsim());
    spec.mid_user = true;
    let (lab, playbook) = setup_lab(spec);
    let host = &lab.hosts[0];
    let (uid, _) = owner(host);
    let record = lab.directory.join("mid-sh-uids");
    fs::write(&record, "").unwrap();
    give_to_mid_user(host, &record);
    let mid_sh = host.agent().join("bin/mid.sh");
    let original = fs::read_to_string(&mid_sh).unwrap();
    let body = original.strip_prefix("#!/bin/sh\n").expect("a sh script");
    // Written in place: owner and mode stay the MID user's.
    fs::write(
        &mid_sh,
        format!("#!/bin/sh\nid -u >>'{}'\n{body}", record.display()),
    )
    .unwrap();
    assert_eq!(entry(&mid_sh).uid, uid, "mid.sh is the MID user's");
    let take = || {
        let text = fs::read_to_string(&record).unwrap();
        fs::write(&record, "").unwrap();
        text.lines().map(str::to_string).collect::<Vec<_>>()
    };
    assert!(host.mid("status").unwrap(), "the lab's MID runs");
    assert_eq!(take(), [uid.to_string()], "the record works");

    let inventory = lab.inventory.display().to_string();
    let mut ran: Vec<(&str, Vec<String>)> = Vec::new();
    let facts = midfleet(command(&lab, "facts", &["-i", &inventory]), &[]);
    assert_eq!(facts.code, 0, "{}{}", facts.stdout, facts.stderr);
    ran.push(("facts", take()));
    let plan = run_on_lab(&lab, "plan", &playbook, &[]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    ran.push(("plan", take()));
    let applied = run_on_lab(&lab, "apply", &playbook, &["--output", "json"]);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert_eq!(result_words(&applied), ["applied"], "{}", applied.stdout);
    ran.push(("apply", take()));
    let mid_after_apply = host.mid_process();
    let rollback = midfleet(
        command(
            &lab,
            "rollback",
            &["-i", &inventory, "--yes", "--health-timeout", "20"],
        ),
        &[],
    );
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    ran.push(("rollback", take()));

    let as_root: Vec<&str> = ran
        .iter()
        .filter(|(_, uids)| uids.iter().any(|seen| seen == "0"))
        .map(|(step, _)| *step)
        .collect();
    assert!(
        as_root.is_empty(),
        "mid.sh ran as root in {as_root:?}: {ran:?}"
    );
    for step in ["apply", "rollback"] {
        let uids = &ran.iter().find(|(name, _)| *name == step).unwrap().1;
        assert!(!uids.is_empty(), "{step} never ran mid.sh: {ran:?}");
        assert!(
            uids.iter().all(|seen| *seen == uid.to_string()),
            "{step}: {uids:?}, not the MID user {uid}"
        );
    }
    for (step, process) in [("apply", mid_after_apply), ("rollback", host.mid_process())] {
        let (pid, runs_as) = process.unwrap_or_else(|| panic!("no MID runs after {step}"));
        assert_eq!(
            runs_as, uid,
            "after {step}, the MID (pid {pid}) runs as {runs_as}"
        );
    }
}

/// The date as the MID's log lines and wrapper.log write it, now.
fn log_times() -> (String, String) {
    let output = Command::new("date")
        .arg("+%m/%d/%y %H:%M:%S|%Y/%m/%d %H:%M:%S")
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let (agent, wrapper) = text.trim().split_once('|').unwrap();
    (agent.to_string(), wrapper.to_string())
}

/// The MID's login stalls (it logs its user and then nothing), and the
/// MID user appends realistic success lines to agent0.log.0 all through
/// the health wait: the MID never reached the instance, so the host is
/// not applied — rolled back to the old bytes, the MID running on them.
#[test]
fn forged_health_lines_never_make_a_failed_start_applied() {
    let lab = mid_user_lab();
    let host = &lab.hosts[0];
    let new_user = "svc_lab001";
    let instance = Instance::start(
        Some(crate::instance::seed(
            &[
                (new_user.to_string(), crate::instance::PASSWORD),
                (INITIAL_USER.to_string(), INITIAL_PASSWORD),
            ],
            Vec::new(),
        )),
        &[],
    );
    // The MID logs in against the instance, and is Up there as its old user.
    crate::instance::connect_mids(&lab, &instance, None);
    let starts = |host: &LabHost| host.agent_log().matches("MID Server started").count();
    let started_before = starts(host);
    assert!(host.mid("restart").unwrap());
    wait_until("the MID on the instance", Duration::from_secs(20), || {
        starts(host) > started_before
    });
    host.set_knob("login_stalls_if_user", new_user).unwrap();
    let playbook = crate::instance::playbook(&lab, &instance.url, "");
    let text = fs::read_to_string(&playbook)
        .unwrap()
        .replace("timeout: 20", "timeout: 3");
    fs::write(&playbook, text).unwrap();
    let before = host.config();

    // The forger: the MID user, appending every 0.2 s until told to stop.
    let stop = lab.directory.join("forger-stop");
    let log = host.agent().join("logs/agent0.log.0");
    let mut forger = as_mid_user(host, "sh");
    forger
        .arg("-c")
        .arg(
            "until [ -e \"$1\" ]; do t=$(date '+%m/%d/%y %H:%M:%S'); \
             printf '%s (481) StartupSequencer Setting basic authentication with user %s\\n%s (482) StartupSequencer Successfully connected to instance: %s\\n%s (483) StartupSequencer MID Server started\\n' \
             \"$t\" \"$2\" \"$t\" \"$3\" \"$t\" >>\"$4\"; sleep 0.2; done",
        )
        .args(["forger", stop.to_str().unwrap(), new_user, &instance.url])
        .arg(&log)
        .stdin(Stdio::null());
    let mut forger = forger.spawn().unwrap();
    let done = AtomicBool::new(false);
    let applied = std::thread::scope(|scope| {
        // Forged until the first transaction has its result: the
        // rollback's own health is not the forger's target.
        scope.spawn(|| {
            while !done.load(Ordering::SeqCst) && !host.run_progress_contains(" result ") {
                std::thread::sleep(Duration::from_millis(20));
            }
            fs::write(&stop, "").unwrap();
        });
        let applied = crate::instance::run(
            &lab,
            "apply",
            &playbook,
            crate::instance::PASSWORD,
            &["--output", "json"],
        );
        done.store(true, Ordering::SeqCst);
        applied
    });
    let _ = fs::write(&stop, "");
    let _ = forger.wait();
    let forged = host
        .agent_log()
        .matches("(483) StartupSequencer MID Server started")
        .count();
    assert!(forged > 0, "the forger never wrote:\n{}", host.agent_log());
    assert_eq!(
        result_words(&applied),
        ["rolled_back"],
        "{}{}",
        applied.stdout,
        applied.stderr
    );
    assert_eq!(applied.code, 1);
    assert_eq!(host.config(), before, "config.xml has its old bytes back");
    assert!(host.mid_process().is_some(), "the MID runs");
    assert!(
        host.agent_log().contains(&format!(
            "Setting basic authentication with user {INITIAL_USER}"
        )),
        "the old user logs in again"
    );
}

/// During a healthy start, another logger's line that merely holds the
/// words `Could not authenticate` (a probe's, not the MID's login) lands
/// in agent0.log.0 and in wrapper.log (as the JVM's output): the host is
/// applied.
#[test]
fn a_foreign_could_not_authenticate_line_never_rolls_back_a_healthy_start() {
    let (lab, playbook) = setup_lab(LabSpec::new(1, &midsim()));
    let host = &lab.hosts[0];
    // Room to land the lines between the start and the MID's login.
    host.set_knob("start_delay_ms", "1500").unwrap();
    let foreign = "Probe Could not authenticate (bad key) on 10.0.0.5";
    let applied = std::thread::scope(|scope| {
        scope.spawn(|| {
            wait_until("the transaction's start", Duration::from_secs(60), || {
                host.run_progress_contains(" start")
            });
            let (agent_time, wrapper_time) = log_times();
            let append = |path: PathBuf, line: String| {
                use std::io::Write;
                fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .and_then(|mut file| file.write_all(line.as_bytes()))
                    .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            };
            append(
                host.agent().join("logs/agent0.log.0"),
                format!("{agent_time} (123) {foreign}\n"),
            );
            append(
                host.agent().join("logs/wrapper.log"),
                format!("INFO   | jvm 1    | {wrapper_time} | {agent_time} (124) {foreign}\n"),
            );
        });
        run_on_lab(&lab, "apply", &playbook, &["--output", "json"])
    });
    // The lines landed during the health wait: after the transaction's
    // start, before the MID logged in.
    let log = host.agent_log();
    let injected = log.find(foreign).expect("the foreign line is in the log");
    let started = log.rfind("MID Server started").unwrap();
    assert!(
        injected < started,
        "the foreign line came after the MID started:\n{log}"
    );
    assert!(host.wrapper_log().contains(foreign));
    assert_eq!(
        result_words(&applied),
        ["applied"],
        "{}{}",
        applied.stdout,
        applied.stderr
    );
    assert_eq!(applied.code, 0);
    assert_eq!(config_user(host).as_deref(), Some("svc_lab001"));
    assert!(host.mid_process().is_some(), "the MID runs");
}
