//! The on-host transaction, as `midfleet::apply::stage::TRANSACTION`
//! assembles it from `src/apply/transaction/`, run locally (no
//! SSH) as the stager runs it on a host: a run folder under
//! `<mid_home>/.midfleet/runs/` staged by hand, the script started with
//! `sh transaction.sh RUN_DIR` (once detached with `setsid`), against a
//! temp agent folder driven by the real simulated MID (`midfleet-midsim`).
//! Each test checks the exact journal, the files and the MID afterwards.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use midfleet::apply::stage::TRANSACTION;
use midfleet::config_xml::{names, ConfigXml, Operation};
use midfleet::wrapper_conf::{Operation as WrapperEdit, WrapperConf};
use sha2::{Digest, Sha256};

const LAB_CONFIG: &str = include_str!("../crates/lab/src/config.xml");
const OLD_USER: &str = "svc_mid_old";
const OLD_PASSWORD: &str = "0ld-Passw0rd";
const NEW_USER: &str = "svc_mid_new";
/// Needs escaping in config.xml.
const NEW_PASSWORD: &str = "N3w&Pa<ss'\"";
const WAIT: Duration = Duration::from_secs(20);
/// conf/wrapper-override.conf as a MID ships it (CRLF, as on a Windows
/// editor's save, and no final newline: bytes that must survive).
const SHIPPED_WRAPPER: &str = "# OPTIONAL: Maximum Java Heap Size (in MB)\r\nwrapper.java.maxmemory=1024\r\n#include ../conf/wrapper-profile-sync.conf\r\n#wrapper.java.additional.109=-Djava.net.preferIPv6Addresses=false";
/// Longer than any transaction here takes.
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// One MID host: `<mid_home>` with an agent folder, knobs, a credential
/// store and `.midfleet/`, and a MID that has started once (its password
/// encrypted, its key pair id written).
struct Host {
    _directory: tempfile::TempDir,
    home: PathBuf,
    agent: PathBuf,
}

impl Host {
    fn new() -> Host {
        Host::named("mid")
    }

    /// A host whose mid_home is the folder `name` in a new temp folder.
    fn named(name: &str) -> Host {
        let directory = tempfile::tempdir().expect("temp dir");
        let home = directory.path().join(name);
        Host::at(directory, home)
    }

    /// A host whose mid_home is a new temp folder inside `folder`.
    fn inside(folder: &Path) -> Host {
        let directory = tempfile::tempdir_in(folder).expect("temp dir");
        let home = directory.path().join("mid");
        Host::at(directory, home)
    }

    fn at(directory: tempfile::TempDir, home: PathBuf) -> Host {
        let agent = home.join("agent");
        for folder in ["bin", "logs", "security", "work"] {
            fs::create_dir_all(agent.join(folder)).expect("agent folders");
        }
        let config = LAB_CONFIG
            .replace("{NAME}", "lab01")
            .replace("{USER}", OLD_USER)
            .replace("{PASSWORD}", OLD_PASSWORD);
        fs::write(agent.join("config.xml"), config).expect("config.xml");
        set_mode(&agent.join("config.xml"), 0o640);
        fs::create_dir_all(agent.join("conf")).expect("conf/");
        fs::write(agent.join("conf/wrapper-override.conf"), SHIPPED_WRAPPER)
            .expect("wrapper-override.conf");
        set_mode(&agent.join("conf/wrapper-override.conf"), 0o644);
        let midsim = midfleet_lab::midsim().display().to_string();
        fs::write(
            agent.join("bin/mid.sh"),
            format!(
                "#!/bin/sh\nexec {midsim} \"$1\" --agent \"$(cd \"$(dirname \"$0\")/..\" && pwd)\"\n"
            ),
        )
        .expect("mid.sh");
        set_mode(&agent.join("bin/mid.sh"), 0o755);
        fs::write(
            home.join("instance.creds"),
            format!("{}\n", credential_line(OLD_USER, OLD_PASSWORD)),
        )
        .expect("credential store");
        fs::write(
            home.join(".midsim"),
            format!(
                "instance=instance.creds\nstart_delay_ms=50\nowner_pid={}\n",
                std::process::id()
            ),
        )
        .expect("knobs");
        for folder in [".midfleet", ".midfleet/runs", ".midfleet/backups"] {
            fs::create_dir_all(home.join(folder)).expect(".midfleet");
            set_mode(&home.join(folder), 0o700);
        }
        let host = Host {
            _directory: directory,
            home,
            agent,
        };
        host.start_mid();
        assert!(
            host.config()
                .windows(10)
                .any(|window| window == b"encrypted:"),
            "the MID encrypted its password"
        );
        host
    }

    /// `commands` for a MID stand-in that starts and stops at once (a
    /// flag file, and the MID's started line in its log): many runs a
    /// second, for tests that repeat a step.
    fn instant_mid(&self) -> [String; 3] {
        let flag = self.home.join("running");
        [
            format!(
                "touch '{}' && printf '%s\\n' '12/06/26 10:00:00 (123) StartupSequencer MID Server started' >>'{}'",
                flag.display(),
                self.agent.join("logs/agent0.log.0").display()
            ),
            format!("rm -f '{}'", flag.display()),
            format!("test -f '{}'", flag.display()),
        ]
    }

    fn mid_sh(&self) -> PathBuf {
        self.agent.join("bin/mid.sh")
    }

    fn mid(&self, command: &str) -> bool {
        Command::new(self.mid_sh())
            .arg(command)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("mid.sh")
            .success()
    }

    fn running(&self) -> bool {
        self.mid("status")
    }

    /// Starts the MID and waits until it has logged in.
    fn start_mid(&self) {
        let before = self.starts();
        assert!(self.mid("start"), "mid.sh start");
        self.wait_for(|| self.agent_log().matches("MID Server started").count() > before);
    }

    fn stop_mid(&self) {
        assert!(self.mid("stop"), "mid.sh stop");
        assert!(!self.running());
    }

    fn set_knob(&self, line: &str) {
        let knobs = fs::read_to_string(self.home.join(".midsim")).expect("knobs");
        fs::write(self.home.join(".midsim"), format!("{knobs}{line}\n")).expect("knobs");
    }

    fn add_credentials(&self, user: &str, password: &str) {
        let store = fs::read_to_string(self.home.join("instance.creds")).expect("store");
        fs::write(
            self.home.join("instance.creds"),
            format!("{store}{}\n", credential_line(user, password)),
        )
        .expect("store");
    }

    fn config(&self) -> Vec<u8> {
        fs::read(self.agent.join("config.xml")).expect("config.xml")
    }

    fn wrapper(&self) -> Vec<u8> {
        fs::read(self.agent.join("conf/wrapper-override.conf")).expect("wrapper-override.conf")
    }

    /// wrapper-override.conf with `wrapper.java.maxmemory` set to `heap`.
    fn heap_wrapper(&self, heap: &str) -> Vec<u8> {
        let document = WrapperConf::parse(&self.wrapper()).expect("parses");
        let edited = document
            .edit(&[WrapperEdit::Set {
                key: "wrapper.java.maxmemory",
                value: heap,
                sensitive: false,
            }])
            .expect("edit");
        edited.bytes.expect("a change")
    }

    fn keystore(&self) -> Vec<u8> {
        fs::read(self.agent.join("security/agent_keystore")).expect("keystore")
    }

    fn agent_log(&self) -> String {
        fs::read_to_string(self.agent.join("logs/agent0.log.0")).unwrap_or_default()
    }

    fn wrapper_log(&self) -> String {
        fs::read_to_string(self.agent.join("logs/wrapper.log")).unwrap_or_default()
    }

    /// How often the MID has logged `MID Server started`.
    fn starts(&self) -> usize {
        self.agent_log().matches("MID Server started").count()
    }

    /// The user the MID logged in with since its last start, once it has.
    fn logged_in_user(&self) -> Option<String> {
        let log = self.agent_log();
        let (_, last_start) = log.rsplit_once("Starting MID Server")?;
        if !last_start.contains("MID Server started") {
            return None;
        }
        let (_, user) = last_start.rsplit_once("Setting basic authentication with user ")?;
        Some(user.lines().next()?.to_string())
    }

    fn midfleet(&self) -> PathBuf {
        self.home.join(".midfleet")
    }

    fn wait_for(&self, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !condition() {
            assert!(
                Instant::now() < deadline,
                "timed out; agent log:\n{}\nwrapper.log:\n{}",
                self.agent_log(),
                self.wrapper_log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `config.xml` as the plan of a rotation to `user`/`password` would
    /// write it: user and plaintext password set, `keypairs.mid_id` removed.
    fn rotated_config(&self, user: &str, password: &str) -> Vec<u8> {
        edit(
            &self.config(),
            &[
                Operation::Set {
                    name: names::USERNAME,
                    value: user,
                    sensitive: false,
                },
                Operation::Set {
                    name: names::PASSWORD,
                    value: password,
                    sensitive: true,
                },
                Operation::Unset {
                    name: names::KEY_PAIR_ID,
                },
            ],
        )
    }

    /// A change that needs only a restart.
    fn threads_config(&self, threads: &str) -> Vec<u8> {
        edit(
            &self.config(),
            &[Operation::Set {
                name: "threads.max",
                value: threads,
                sensitive: false,
            }],
        )
    }

    /// Stages a run folder as the stager does.
    fn stage(&self, plan: &Plan) -> Run {
        let name = run_id();
        let directory = self.midfleet().join("runs").join(&name);
        fs::create_dir(&directory).expect("run dir");
        set_mode(&directory, 0o700);
        let deadline = epoch() + plan.lease;
        let params = [
            ("RUN", name.as_str()),
            ("MID_HOME", self.home.to_str().expect("utf-8 path")),
            (
                "CONFIG",
                plan.config
                    .clone()
                    .unwrap_or_else(|| self.agent.join("config.xml"))
                    .to_str()
                    .expect("utf-8"),
            ),
            ("ACTION", plan.action),
            ("SERVICE_KIND", plan.service.kind()),
            ("SERVICE_UNIT", ""),
            ("START_COMMAND", plan.service.command(0)),
            ("STOP_COMMAND", plan.service.command(1)),
            ("STATUS_COMMAND", plan.service.command(2)),
            ("EXPECT_USER", plan.expect_user),
            ("ROLLBACK_USER", plan.rollback_user),
            (
                "KEY_PAIR_RESET",
                if plan.key_pair_reset { "1" } else { "0" },
            ),
            ("DEADLINE", &deadline.to_string()),
            ("HEALTH_TIMEOUT", &plan.health_timeout.to_string()),
            ("STOP_TIMEOUT", &plan.stop_timeout.to_string()),
            ("KEEP_BACKUPS", "5"),
            ("RESTORE_FROM", &plan.restore_from),
            (
                "WRAPPER",
                if plan.wrapper_new.is_some() { "1" } else { "0" },
            ),
        ]
        .iter()
        .map(|(name, value)| format!("{name}={}\n", shell_quote(value)))
        .collect::<String>();
        fs::write(directory.join("params.sh"), params).expect("params.sh");
        fs::write(directory.join("original.xml"), self.config()).expect("original.xml");
        if let Some(new) = &plan.new {
            fs::write(directory.join("new.xml"), new).expect("new.xml");
        }
        if let Some(wrapper) = &plan.wrapper_new {
            fs::write(directory.join("wrapper-new.conf"), wrapper).expect("wrapper-new.conf");
            fs::write(directory.join("wrapper-original.conf"), self.wrapper())
                .expect("wrapper-original.conf");
        }
        fs::write(
            directory.join("state.json"),
            format!("{{\"run\":\"{name}\",\"state\":1}}\n"),
        )
        .expect("state.json");
        fs::write(
            directory.join("history.json"),
            format!(
                "{{\"run\":\"{name}\",\"action\":\"{}\",\"params\":[\"mid.instance.username\"]",
                plan.action
            ),
        )
        .expect("history.json");
        let mut script = TRANSACTION.to_string();
        if plan.without_gnu_timeout {
            let probe = "case $(timeout --version 2>/dev/null)";
            assert!(script.contains(probe), "the probe for GNU timeout");
            script = script.replace(probe, "case $(no-such-timeout --version 2>/dev/null)");
        }
        if plan.without_gnu_dd {
            let probe = "dd if=/dev/null iflag=nofollow,nonblock,skip_bytes,count_bytes skip=0";
            assert!(script.contains(probe), "the probe for GNU dd");
            script = script.replace(probe, "no-such-dd if=/dev/null skip=0");
        }
        fs::write(directory.join("transaction.sh"), script).expect("transaction.sh");
        Run {
            name,
            directory,
            home: self.home.clone(),
        }
    }

    /// Stages `plan` and runs the transaction in the foreground.
    fn run(&self, plan: &Plan) -> Outcome {
        let run = self.stage(plan);
        run.run_foreground()
    }

    fn history(&self) -> Vec<serde_json::Value> {
        fs::read_to_string(self.midfleet().join("history.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("a history line is JSON"))
            .collect()
    }

    fn backups(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.midfleet().join("backups"))
            .expect("backups")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .into_string()
                    .expect("utf-8")
            })
            .collect();
        names.sort();
        names
    }

    /// Files the transaction must not leave behind in the agent folder.
    fn leftovers(&self) -> Vec<String> {
        fs::read_dir(&self.agent)
            .expect("agent")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .into_string()
                    .expect("utf-8")
            })
            .filter(|name| name.contains("midfleet"))
            .collect()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // SIGKILL: a MID whose stop hangs would take 10 s to stop.
        if let Ok(pid) = fs::read_to_string(self.agent.join("work/mid.pid")) {
            let _ = Command::new("kill")
                .args(["-KILL", pid.trim()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// What one run is asked to do.
struct Plan {
    action: &'static str,
    new: Option<Vec<u8>>,
    expect_user: &'static str,
    rollback_user: &'static str,
    key_pair_reset: bool,
    health_timeout: u64,
    stop_timeout: u64,
    lease: u64,
    restore_from: String,
    service: Service,
    /// Run the script as on a host without GNU `timeout` (its watchdog
    /// way of bounding commands).
    without_gnu_timeout: bool,
    /// Run the script as on a host whose dd is not GNU's (busybox, BSD,
    /// toybox): it reads with head, tail and cat where only root and the
    /// login can change the folders, and refuses elsewhere.
    without_gnu_dd: bool,
    /// config.xml elsewhere than `agent/config.xml` (`mid_config`).
    config: Option<PathBuf>,
    /// The new conf/wrapper-override.conf (WRAPPER=1).
    wrapper_new: Option<Vec<u8>>,
}

impl Plan {
    fn apply(new: Vec<u8>) -> Plan {
        Plan {
            action: "apply",
            new: Some(new),
            expect_user: OLD_USER,
            rollback_user: OLD_USER,
            key_pair_reset: false,
            health_timeout: 20,
            stop_timeout: 10,
            lease: 300,
            restore_from: String::new(),
            service: Service::MidSh,
            without_gnu_timeout: false,
            without_gnu_dd: false,
            config: None,
            wrapper_new: None,
        }
    }

    fn action(action: &'static str) -> Plan {
        Plan {
            action,
            new: None,
            ..Plan::apply(Vec::new())
        }
    }
}

enum Service {
    MidSh,
    /// `commands`: start, stop, status.
    Commands([String; 3]),
}

impl Service {
    fn kind(&self) -> &'static str {
        match self {
            Service::MidSh => "mid.sh",
            Service::Commands(_) => "commands",
        }
    }

    fn command(&self, index: usize) -> &str {
        match self {
            Service::MidSh => "",
            Service::Commands(commands) => &commands[index],
        }
    }
}

/// A staged run folder.
struct Run {
    name: String,
    directory: PathBuf,
    home: PathBuf,
}

/// How a run ended.
#[derive(Debug)]
struct Outcome {
    result: String,
    /// The journal's steps, without their times, `$MID_HOME` for the home.
    steps: Vec<String>,
    seconds: f64,
}

impl Run {
    fn run_foreground(&self) -> Outcome {
        self.run_foreground_with("", None)
    }

    /// Runs the transaction in the foreground, its shell started with
    /// `shell_setup` (e.g. a `ulimit`), and sends it SIGTERM once its
    /// journal has a line `interrupt_after`.
    fn run_foreground_with(&self, shell_setup: &str, interrupt_after: Option<&str>) -> Outcome {
        let began = Instant::now();
        let out = fs::File::create(self.directory.join("out")).expect("out");
        let mut child = Command::new(shell())
            .arg("-c")
            .arg(format!(
                "{shell_setup}\nexec \"$0\" \"$1/transaction.sh\" \"$1\""
            ))
            .arg(shell())
            .arg(&self.directory)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("out"))
            .stderr(out)
            .spawn()
            .expect("sh transaction.sh");
        let mut interrupt_after = interrupt_after;
        loop {
            if let Some(step) = interrupt_after {
                let progress = fs::read_to_string(self.directory.join("progress"));
                if progress.is_ok_and(|text| text.lines().any(|line| line.ends_with(step))) {
                    let status = Command::new("kill")
                        .args(["-TERM", &child.id().to_string()])
                        .status()
                        .expect("kill");
                    assert!(status.success());
                    interrupt_after = None;
                }
            }
            if let Some(status) = child.try_wait().expect("wait") {
                let outcome = self.outcome(began);
                assert_eq!(
                    status.success(),
                    outcome.result == "applied",
                    "exit status {status} for {outcome:?}"
                );
                return outcome;
            }
            if began.elapsed() > RUN_LIMIT {
                let _ = child.kill();
                panic!("the transaction did not end: {}", self.report());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the transaction as the stager does: detached, in its own
    /// session, the starting shell gone at once; then follows it.
    fn run_detached(&self) -> Outcome {
        let began = Instant::now();
        let status = Command::new("sh")
            .arg("-c")
            .arg("setsid \"$2\" \"$1/transaction.sh\" \"$1\" </dev/null >\"$1/out\" 2>&1 &")
            .arg("stager")
            .arg(&self.directory)
            .arg(shell())
            .status()
            .expect("stager");
        assert!(status.success());
        let result = self.directory.join("result");
        while !(result.exists()
            && self
                .final_journal()
                .is_some_and(|text| text.ends_with(" end\n")))
        {
            assert!(
                began.elapsed() < RUN_LIMIT,
                "the transaction did not end: {}",
                self.report()
            );
            thread::sleep(Duration::from_millis(20));
        }
        // The lock goes last, just after `end`; then the script exits.
        let lock = self.home.join(".midfleet/lock");
        while fs::read_to_string(&lock).is_ok_and(|text| text.starts_with(&self.name))
            || !self.processes().is_empty()
        {
            assert!(
                began.elapsed() < RUN_LIMIT,
                "the lock or the script stayed: {:?}",
                self.processes()
            );
            thread::sleep(Duration::from_millis(20));
        }
        self.outcome(began)
    }

    /// The journal where `end` moved it.
    fn final_journal(&self) -> Option<String> {
        let backup = self
            .home
            .join(".midfleet/backups")
            .join(&self.name)
            .join("journal");
        fs::read_to_string(backup)
            .or_else(|_| fs::read_to_string(self.directory.join("journal")))
            .ok()
    }

    fn report(&self) -> String {
        format!(
            "journal:\n{}\nprogress:\n{}\nout:\n{}",
            fs::read_to_string(self.home.join(".midfleet/journal"))
                .or_else(|_| fs::read_to_string(self.directory.join("journal")))
                .unwrap_or_default(),
            fs::read_to_string(self.directory.join("progress")).unwrap_or_default(),
            fs::read_to_string(self.directory.join("out")).unwrap_or_default()
        )
    }

    fn outcome(&self, began: Instant) -> Outcome {
        let seconds = began.elapsed().as_secs_f64();
        let journal = self
            .final_journal()
            .unwrap_or_else(|| panic!("no journal: {}", self.report()));
        let home = self.home.to_str().expect("utf-8");
        let mut last_time = 0;
        let steps = journal
            .lines()
            .map(|line| {
                let (time, step) = line.split_once(' ').expect("EPOCH STEP");
                let time: u64 = time.parse().expect("an epoch");
                assert!(time >= last_time, "times go forward: {journal}");
                last_time = time;
                step.replace(home, "$MID_HOME")
            })
            .collect::<Vec<_>>();
        // The staging session follows the same lines in RUN_DIR/progress,
        // and there only, before each `health`, the log line behind it.
        let progress = fs::read_to_string(self.directory.join("progress")).expect("progress");
        let mut lines = progress.lines().peekable();
        let mut journalled = String::new();
        while let Some(line) = lines.next() {
            let step = line.split(' ').nth(1).unwrap_or_default();
            if step == "health-line" || step == "health-last" {
                let next = lines.peek().copied().unwrap_or_default();
                assert_eq!(next.split(' ').nth(1), Some("health"), "{progress}");
                continue;
            }
            journalled.push_str(line);
            journalled.push('\n');
        }
        assert_eq!(journalled, journal);
        let result = fs::read_to_string(self.directory.join("result"))
            .unwrap_or_else(|_| panic!("no result: {}", self.report()));
        // What may hold a plaintext password is gone, and nothing of the
        // run is left running.
        assert!(!self.directory.join("new.xml").exists());
        assert!(!self.directory.join("original.xml").exists());
        assert_eq!(self.processes(), Vec::<String>::new(), "left running");
        Outcome {
            result: result.trim_end().to_string(),
            steps,
            seconds,
        }
    }

    /// Processes whose command line names this run folder (watchdogs,
    /// the script itself).
    fn processes(&self) -> Vec<String> {
        let needle = self.directory.to_str().expect("utf-8").as_bytes();
        fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(|entry| {
                let entry = entry.ok()?;
                entry.file_name().to_str()?.parse::<u32>().ok()?;
                let command_line = fs::read(entry.path().join("cmdline")).ok()?;
                command_line
                    .windows(needle.len())
                    .any(|window| window == needle)
                    .then(|| String::from_utf8_lossy(&command_line).replace('\0', " "))
            })
            .collect()
    }

    fn backup(&self) -> PathBuf {
        self.home.join(".midfleet/backups").join(&self.name)
    }
}

/// The shell that runs the transaction: `sh` (dash here), or another one
/// to try, e.g. `MIDFLEET_TEST_SHELL=bash`.
fn shell() -> String {
    std::env::var("MIDFLEET_TEST_SHELL").unwrap_or_else(|_| "sh".into())
}

fn steps(lines: &[&str], backup: &str) -> Vec<String> {
    lines
        .iter()
        .map(|line| line.replace("BACKUP", backup))
        .collect()
}

fn backup_path(run: &Run) -> String {
    format!("$MID_HOME/.midfleet/backups/{}", run.name)
}

fn edit(config: &[u8], operations: &[Operation<'_>]) -> Vec<u8> {
    let document = ConfigXml::parse(config).expect("config.xml parses");
    let edited = document.edit(operations).expect("edit");
    edited.document.expect("a change").bytes().to_vec()
}

fn credential_line(user: &str, password: &str) -> String {
    let digest = Sha256::digest(format!("{user}:{password}").as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{user}:{hex}")
}

fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

fn epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A run id like midfleet's: `20261127T114500Z-00a1b2`, unique per process.
fn run_id() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let seconds = epoch();
    // midfleet's own date form, without `-` and `:` (as apply's run ids).
    let stamp = midfleet::report::rfc3339(seconds).replace(['-', ':'], "");
    format!(
        "{stamp}-{:06x}",
        (std::process::id() << 8 | COUNTER.fetch_add(1, Ordering::SeqCst)) & 0xff_ffff
    )
}

#[test]
fn a_rotation_to_a_new_user_is_applied_and_rolled_back_on_request() {
    a_rotation_applied_and_rolled_back(false);
}

#[test]
fn a_rotation_is_applied_and_rolled_back_the_same_without_gnu_timeout() {
    a_rotation_applied_and_rolled_back(true);
}

fn a_rotation_applied_and_rolled_back(without_gnu_timeout: bool) {
    let host = Host::new();
    let original = host.config();
    let old_keystore = host.keystore();
    host.add_credentials(NEW_USER, NEW_PASSWORD);
    let mut plan = Plan::apply(host.rotated_config(NEW_USER, NEW_PASSWORD));
    plan.expect_user = NEW_USER;
    plan.key_pair_reset = true;
    plan.without_gnu_timeout = without_gnu_timeout;
    let run = host.stage(&plan);
    let outcome = run.run_foreground();
    assert_eq!(outcome.result, "applied", "{}", run.report());
    assert_eq!(
        outcome.steps,
        steps(
            &[
                "lock",
                "stop",
                "check ok",
                "backup BACKUP",
                "write",
                "rename",
                "start",
                "health ok",
                "state",
                "unlock",
                "result applied",
                "end",
            ],
            &backup_path(&run)
        )
    );

    // The MID runs as the new user; it encrypted the password in place
    // and wrote a new key pair id with a new keystore.
    assert!(host.running());
    assert_eq!(host.logged_in_user().as_deref(), Some(NEW_USER));
    let config = host.config();
    let text = String::from_utf8(config.clone()).expect("utf-8");
    assert!(text.contains(&format!("value=\"{NEW_USER}\"")));
    assert!(!text.contains("N3w&amp;Pa"), "the plaintext was sealed");
    assert!(text.contains("keypairs.mid_id"));
    assert_ne!(host.keystore(), old_keystore);
    assert_eq!(mode(&host.agent.join("config.xml")), 0o640, "mode kept");

    // config.after is the file as the healthy MID left it (encrypted).
    let midfleet = host.midfleet();
    assert_eq!(
        fs::read(midfleet.join("config.after")).expect("config.after"),
        config
    );
    assert_eq!(mode(&midfleet.join("config.after")), 0o600);
    assert_eq!(
        fs::read_to_string(midfleet.join("state.json")).expect("state.json"),
        format!("{{\"run\":\"{}\",\"state\":1}}\n", run.name)
    );
    assert_eq!(mode(&midfleet.join("state.json")), 0o600);
    assert!(!midfleet.join("lock").exists());
    assert!(!midfleet.join("journal").exists());

    // The backup: the old bytes, the old keystore, the journal.
    let backup = run.backup();
    assert_eq!(mode(&backup), 0o700);
    assert_eq!(
        fs::read(backup.join("config.xml")).expect("backup"),
        original
    );
    assert_eq!(
        fs::read(backup.join("security/agent_keystore")).expect("keystore backup"),
        old_keystore
    );
    assert_eq!(
        fs::read_to_string(backup.join("folders")).expect("folders"),
        "security present\nkeystore absent\n"
    );
    assert!(backup.join("journal").exists());
    let history = host.history();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["run"], run.name.as_str());
    assert_eq!(history[0]["result"], "applied");
    assert!(history[0]["finished"].as_u64().expect("finished") >= epoch() - 120);
    assert_eq!(host.leftovers(), Vec::<String>::new());

    // `midfleet rollback`: the backup goes back, keystore included, and
    // the MID logs in as the old user again.
    let mut rollback = Plan::action("rollback");
    rollback.restore_from = run.name.clone();
    rollback.expect_user = NEW_USER;
    rollback.rollback_user = OLD_USER;
    rollback.without_gnu_timeout = without_gnu_timeout;
    let second = host.stage(&rollback);
    let outcome = second.run_foreground();
    assert_eq!(outcome.result, "applied", "{}", second.report());
    assert_eq!(
        outcome.steps,
        steps(
            &[
                "lock",
                "stop",
                "check ok",
                "backup BACKUP",
                &format!("restore $MID_HOME/.midfleet/backups/{}", run.name),
                "start",
                "health ok",
                "state",
                "unlock",
                "result applied",
                "end",
            ],
            &backup_path(&second)
        )
    );
    assert_eq!(host.config(), original);
    assert_eq!(host.keystore(), old_keystore);
    assert_eq!(host.logged_in_user().as_deref(), Some(OLD_USER));
    // What it replaced was saved first.
    assert_eq!(
        fs::read(second.backup().join("config.xml")).expect("saved"),
        config
    );
    assert_eq!(host.history().len(), 2);
    assert_eq!(host.leftovers(), Vec::<String>::new());
    eprintln!("apply + rollback: {outcome:?}");
}

#[test]
fn a_wrong_new_password_is_rolled_back_byte_for_byte() {
    let host = Host::new();
    let original = host.config();
    let old_keystore = host.keystore();
    // The instance does not know this password.
    let mut plan = Plan::apply(host.rotated_config(NEW_USER, "not-the-password"));
    plan.expect_user = NEW_USER;
    plan.key_pair_reset = true;
    let run = host.stage(&plan);
    let outcome = run.run_foreground();
    assert_eq!(outcome.result, "rolled_back", "{}", run.report());
    assert_eq!(
        outcome.steps,
        steps(
            &[
                "lock",
                "stop",
                "check ok",
                "backup BACKUP",
                "write",
                "rename",
                "start",
                "health fail could-not-authenticate",
                "rollback could-not-authenticate",
                "stop",
                "restore BACKUP",
                "start",
                "health ok",
                "unlock",
                "result rolled_back could-not-authenticate",
                "end",
            ],
            &backup_path(&run)
        )
    );
    assert!(
        host.agent_log()
            .contains(&format!("Could not authenticate user '{NEW_USER}'")),
        "the new user was refused"
    );
    // The line that decided, with its number in agent0.log.0, reaches
    // progress (only: the journal never names the user).
    let log = host.agent_log();
    let (index, refusal) = log
        .lines()
        .enumerate()
        .find(|(_, line)| line.contains("Could not authenticate user"))
        .expect("a refusal line");
    let progress = fs::read_to_string(run.directory.join("progress")).unwrap();
    let expected = format!(" health-line agent0.log.0 {} {refusal}\n", index + 1);
    assert!(progress.contains(&expected), "{expected}\n{progress}");
    assert!(!outcome.steps.iter().any(|step| step.contains(NEW_USER)));
    assert_eq!(host.config(), original, "config.xml byte for byte");
    assert_eq!(host.keystore(), old_keystore, "the keystore byte for byte");
    assert_eq!(mode(&host.agent.join("config.xml")), 0o640);
    assert!(host.running());
    assert_eq!(host.logged_in_user().as_deref(), Some(OLD_USER));
    assert!(
        !host.midfleet().join("state.json").exists(),
        "no state recorded"
    );
    assert!(!host.midfleet().join("lock").exists());
    assert_eq!(host.history()[0]["result"], "rolled_back");
    assert_eq!(host.leftovers(), Vec::<String>::new());
    eprintln!("wrong password: {outcome:?}");
}

#[test]
fn a_mid_that_dies_at_start_is_rolled_back() {
    let host = Host::new();
    let original = host.config();
    // `commands` service whose next start has the JVM die (die_at_start)
    // and puts the knobs back once the MID has read them, so that the
    // rollback's start works.
    let home = host.home.to_str().expect("utf-8");
    let start_script = host.home.join("start-dying-once.sh");
    fs::write(
        &start_script,
        format!(
            "#!/bin/sh\nhome={home}\n\
             if [ -e \"$home/die-once\" ]; then\n\
             rm -f \"$home/die-once\"\n\
             cp \"$home/.midsim\" \"$home/.midsim.saved\"\n\
             echo die_at_start=true >> \"$home/.midsim\"\n\
             launched=$(grep -c 'Launching a JVM' \"$home/agent/logs/wrapper.log\")\n\
             \"$home/agent/bin/mid.sh\" start || exit\n\
             while [ \"$(grep -c 'Launching a JVM' \"$home/agent/logs/wrapper.log\")\" -le \"$launched\" ]; do sleep 0.02; done\n\
             mv \"$home/.midsim.saved\" \"$home/.midsim\"\n\
             else exec \"$home/agent/bin/mid.sh\" start; fi\n",
            home = shell_quote(home)
        ),
    )
    .expect("start script");
    set_mode(&start_script, 0o755);
    fs::write(host.home.join("die-once"), "").expect("die-once");
    let mid_sh = shell_quote(host.mid_sh().to_str().expect("utf-8"));
    let mut plan = Plan::apply(host.threads_config("30"));
    plan.service = Service::Commands([
        shell_quote(start_script.to_str().expect("utf-8")),
        format!("{mid_sh} stop"),
        format!("{mid_sh} status"),
    ]);
    let run = host.stage(&plan);
    let outcome = run.run_foreground();
    assert_eq!(outcome.result, "rolled_back", "{}", run.report());
    assert_eq!(
        outcome.steps,
        steps(
            &[
                "lock",
                "stop",
                "check ok",
                "backup BACKUP",
                "write",
                "rename",
                "start",
                "health fail not-running",
                "rollback not-running",
                "stop already-stopped",
                "restore BACKUP",
                "start",
                "health ok",
                "unlock",
                "result rolled_back not-running",
                "end",
            ],
            &backup_path(&run)
        )
    );
    assert!(host.wrapper_log().contains("JVM exited unexpectedly."));
    assert!(!host.home.join("die-once").exists(), "the dying start ran");
    assert_eq!(host.config(), original);
    assert!(host.running());
    assert_eq!(host.logged_in_user().as_deref(), Some(OLD_USER));
    eprintln!("dies at start: {outcome:?}");
}

#[test]
fn a_config_changed_since_the_plan_is_stale_and_left_alone() {
    let host = Host::new();
    let run = host.stage(&Plan::apply(host.threads_config("30")));
    // Someone edits the file after the plan was made: seen before the MID
    // is touched.
    let mut changed = host.config();
    changed.extend_from_slice(b"<!-- edited by hand -->\n");
    fs::write(host.agent.join("config.xml"), &changed).expect("edit");
    let starts = host.starts();
    let outcome = run.run_foreground();
    assert_eq!(outcome.result, "stale", "{}", run.report());
    assert_eq!(
        outcome.steps,
        ["lock", "check stale", "unlock", "result stale", "end"]
    );
    left_as_it_was(&host, &run, &changed, starts);
    assert!(run.directory.join("journal").exists());
    assert!(!host.midfleet().join("state.json").exists());
    assert_eq!(host.history()[0]["result"], "stale");
}

#[test]
fn a_config_changed_while_the_mid_stops_is_stale_and_started_again() {
    let host = Host::new();
    // The stop itself changes config.xml (as a MID writing its file at
    // shutdown would): only the check after the stop can see it.
    let mid_sh = shell_quote(host.mid_sh().to_str().expect("utf-8"));
    let config = shell_quote(host.agent.join("config.xml").to_str().expect("utf-8"));
    let mut plan = Plan::apply(host.threads_config("30"));
    plan.service = Service::Commands([
        format!("{mid_sh} start"),
        format!("{mid_sh} stop && printf '<!-- written at stop -->\\n' >> {config}"),
        format!("{mid_sh} status"),
    ]);
    let run = host.stage(&plan);
    let starts = host.starts();
    let outcome = run.run_foreground();
    assert_eq!(outcome.result, "stale", "{}", run.report());
    assert_eq!(
        outcome.steps,
        [
            "lock",
            "stop",
            "check stale",
            "start",
            "health ok",
            "unlock",
            "result stale",
            "end"
        ]
    );
    assert!(String::from_utf8_lossy(&host.config()).ends_with("<!-- written at stop -->\n"));
    assert!(host.running(), "started again");
    host.wait_for(|| host.starts() > starts);
    assert!(!run.backup().exists());
    assert!(!host.midfleet().join("lock").exists());
    assert!(!host.midfleet().join("state.json").exists());
}

#[test]
fn a_live_lock_is_respected() {
    let host = Host::new();
    let original = host.config();
    let lock = format!("20261127T000000Z-other1 {}\n", epoch() + 600);
    let other_journal = "1800000000 lock\n1800000001 stop\n";
    fs::write(host.midfleet().join("lock"), &lock).expect("lock");
    fs::write(host.midfleet().join("journal"), other_journal).expect("journal");
    let starts = host.starts();
    let run = host.stage(&Plan::apply(host.threads_config("30")));
    let outcome = run.run_foreground();
    assert_eq!(outcome.result, "locked", "{}", run.report());
    assert_eq!(
        outcome.steps,
        [
            "lock held 20261127T000000Z-other1",
            "result locked 20261127T000000Z-other1",
            "end"
        ]
    );
    // Nothing of the other run's touched, nor the MID.
    assert_eq!(
        fs::read_to_string(host.midfleet().join("lock")).expect("lock"),
        lock
    );
    assert_eq!(
        fs::read_to_string(host.midfleet().join("journal")).expect("journal"),
        other_journal
    );
    assert_eq!(host.config(), original);
    assert!(host.running());
    assert_eq!(host.starts(), starts);
    assert!(!run.backup().exists());
}

#[test]
fn an_expired_lock_is_broken_and_the_dead_runs_journal_kept() {
    let host = Host::new();
    let dead = "20261127T000000Z-dead01";
    fs::create_dir(host.midfleet().join("runs").join(dead)).expect("dead run dir");
    fs::write(
        host.midfleet().join("lock"),
        format!("{dead} {}\n", epoch() - 10),
    )
    .expect("lock");
    let unfinished = "1800000000 lock\n1800000001 stop\n";
    fs::write(host.midfleet().join("journal"), unfinished).expect("journal");
    let run = host.stage(&Plan::apply(host.threads_config("30")));
    let outcome = run.run_foreground();
    assert_eq!(outcome.result, "applied", "{}", run.report());
    assert_eq!(outcome.steps[0], format!("lock broken {dead}"));
    assert_eq!(outcome.steps[1..3], ["stop", "check ok"]);
    assert_eq!(outcome.steps.last().map(String::as_str), Some("end"));
    assert_eq!(
        fs::read_to_string(host.midfleet().join("runs").join(dead).join("journal"))
            .expect("the dead run's journal"),
        unfinished
    );
    assert!(!host.midfleet().join("lock").exists());
    assert!(String::from_utf8(host.config())
        .expect("utf-8")
        .contains("name=\"threads.max\" value=\"30\""));
}

#[test]
fn start_starts_a_stopped_mid_detached() {
    let host = Host::new();
    host.stop_mid();
    let run = host.stage(&Plan::action("start"));
    let outcome = run.run_detached();
    assert_eq!(outcome.result, "applied", "{}", run.report());
    assert_eq!(
        outcome.steps,
        [
            "lock",
            "check ok",
            "start",
            "health ok",
            "state",
            "unlock",
            "result applied",
            "end"
        ]
    );
    assert!(host.running());
    assert_eq!(host.logged_in_user().as_deref(), Some(OLD_USER));
    assert_eq!(
        fs::read(host.midfleet().join("config.after")).expect("config.after"),
        host.config()
    );
    assert!(host.midfleet().join("state.json").exists());
    assert!(
        run.directory.join("journal").exists(),
        "no backup: journal in the run dir"
    );

    // A start when the MID runs already: the plan is out of date.
    let again = host.stage(&Plan::action("start"));
    let outcome = again.run_foreground();
    assert_eq!(outcome.result, "stale");
    assert_eq!(
        outcome.steps,
        [
            "lock",
            "check stale running",
            "unlock",
            "result stale running",
            "end"
        ]
    );
}

#[test]
fn restart_restarts_without_changes() {
    let host = Host::new();
    let original = host.config();
    let starts = host.starts();
    let outcome = host.run(&Plan::action("restart"));
    assert_eq!(outcome.result, "applied");
    assert_eq!(
        outcome.steps,
        [
            "lock",
            "stop",
            "check ok",
            "start",
            "health ok",
            "state",
            "unlock",
            "result applied",
            "end"
        ]
    );
    assert_eq!(host.starts(), starts + 1);
    assert_eq!(host.config(), original);
}

#[test]
fn backups_are_pruned_to_the_newest_five() {
    let host = Host::new();
    let old: Vec<String> = (1..=6)
        .map(|index| format!("20200101T00000{index}Z-000000"))
        .collect();
    for name in &old {
        fs::create_dir(host.midfleet().join("backups").join(name)).expect("old backup");
        fs::write(
            host.midfleet()
                .join("backups")
                .join(name)
                .join("config.xml"),
            "x",
        )
        .expect("old config");
    }
    let run = host.stage(&Plan::apply(host.threads_config("30")));
    let outcome = run.run_foreground();
    assert_eq!(outcome.result, "applied", "{}", run.report());
    let mut expected: Vec<String> = old[2..].to_vec();
    expected.push(run.name.clone());
    assert_eq!(host.backups(), expected);
}

#[test]
fn a_stop_that_hangs_is_an_error_and_changes_nothing() {
    a_stop_that_hangs(false);
}

#[test]
fn a_stop_that_hangs_is_bounded_without_gnu_timeout_too() {
    a_stop_that_hangs(true);
}

fn a_stop_that_hangs(without_gnu_timeout: bool) {
    let host = Host::new();
    host.stop_mid();
    host.set_knob("stop_hangs=true");
    host.start_mid();
    let original = host.config();
    let starts = host.starts();
    let mut plan = Plan::apply(host.threads_config("30"));
    plan.stop_timeout = 2;
    plan.without_gnu_timeout = without_gnu_timeout;
    let run = host.stage(&plan);
    let outcome = run.run_foreground();
    assert_eq!(outcome.result, "error", "{}", run.report());
    assert_eq!(
        outcome.steps,
        [
            "lock",
            "stop fail timeout",
            "unlock",
            "result error stop-timeout",
            "end"
        ]
    );
    assert!(
        (2.0..6.0).contains(&outcome.seconds),
        "bounded by STOP_TIMEOUT: {outcome:?}"
    );
    left_as_it_was(&host, &run, &original, starts);
}

#[test]
fn a_lease_too_short_for_a_rollback_is_refused_before_anything() {
    let host = Host::new();
    let starts = host.starts();
    let mut plan = Plan::apply(host.threads_config("30"));
    plan.lease = 30; // < 2 × (10 + 20) + 5
    let run = host.stage(&plan);
    let outcome = run.run_foreground();
    assert_eq!(outcome.result, "error");
    assert_eq!(outcome.steps, ["result error lease-too-short", "end"]);
    assert_eq!(host.starts(), starts);
    assert!(!host.midfleet().join("lock").exists());
}

#[test]
fn an_interrupt_during_health_rolls_back() {
    let host = Host::new();
    let original = host.config();
    let mut plan = Plan::apply(host.threads_config("30"));
    // Never seen: health would wait its whole timeout.
    plan.expect_user = "svc_mid_nobody";
    let run = host.stage(&plan);
    let outcome = run.run_foreground_with("", Some(" start"));
    assert_eq!(outcome.result, "rolled_back", "{}", run.report());
    assert_eq!(
        outcome.steps,
        steps(
            &[
                "lock",
                "stop",
                "check ok",
                "backup BACKUP",
                "write",
                "rename",
                "start",
                "health fail interrupted",
                "rollback interrupted",
                "stop",
                "restore BACKUP",
                "start",
                "health ok",
                "unlock",
                "result rolled_back interrupted",
                "end",
            ],
            &backup_path(&run)
        )
    );
    assert!(
        outcome.seconds < 10.0,
        "not the health timeout: {outcome:?}"
    );
    assert_eq!(host.config(), original);
    assert_eq!(host.logged_in_user().as_deref(), Some(OLD_USER));
}

#[test]
fn a_short_write_is_caught_before_the_rename() {
    let host = Host::new();
    let original = host.config();
    let starts = host.starts();
    // A new file larger than the file size limit the transaction runs
    // under: writing its temp file fails (EFBIG/SIGXFSZ) as a full disk
    // would; the backup and the journal are small enough.
    let mut new = host.threads_config("30");
    new.extend_from_slice(b"<!--");
    new.extend(std::iter::repeat_n(b'x', 1 << 20));
    new.extend_from_slice(b"-->\n");
    let run = host.stage(&Plan::apply(new));
    let outcome = run.run_foreground_with("ulimit -f 200", None);
    assert_eq!(outcome.result, "error", "{}", run.report());
    assert_eq!(
        outcome.steps,
        steps(
            &[
                "lock",
                "stop",
                "check ok",
                "backup BACKUP",
                "write fail disk",
                "start",
                "health ok",
                "unlock",
                "result error disk",
                "end",
            ],
            &backup_path(&run)
        )
    );
    assert_eq!(host.config(), original, "untouched");
    assert_eq!(host.leftovers(), Vec::<String>::new(), "no temp file left");
    assert!(host.running());
    host.wait_for(|| host.starts() > starts);
}

#[test]
fn owner_mode_and_acl_are_carried_over() {
    let host = Host::new();
    let config = host.agent.join("config.xml");
    let acl = |path: &Path| {
        Command::new("getfacl")
            .args(["--omit-header", "--absolute-names"])
            .arg(path)
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
    };
    let with_acl = Command::new("setfacl")
        .args(["-m", "u:nobody:r"])
        .arg(&config)
        .status()
        .is_ok_and(|status| status.success());
    if !with_acl {
        eprintln!("setfacl is missing or unsupported here: checking owner and mode only");
    }
    let before = acl(&config);
    let run = host.stage(&Plan::apply(host.threads_config("30")));
    let outcome = run.run_foreground();
    assert_eq!(outcome.result, "applied", "{}", run.report());
    assert_eq!(mode(&config), 0o640);
    if with_acl {
        let after = acl(&config).expect("getfacl");
        assert!(after.contains("user:nobody:r--"), "{after}");
        assert_eq!(Some(after), before);
    }
}

/// Who owns the MID in the tests that hand it to another user.
const MID_USER: (u32, u32) = (65534, 65534);

/// Hands the MID of `host` to `nobody`, as a real install's service user:
/// it owns mid_home and everything in it but `.midfleet` (root's), and
/// `mid.sh` records the uid it runs as in `agent/work/uids` before it
/// starts the MID. The MID is started again as that user.
fn hand_to_mid_user(host: &Host) {
    host.stop_mid();
    let midsim = midfleet_lab::midsim().display().to_string();
    fs::write(
        host.mid_sh(),
        format!(
            "#!/bin/sh\nid -u >>\"$(dirname \"$0\")/../work/uids\"\n\
             exec {midsim} \"$1\" --agent \"$(cd \"$(dirname \"$0\")/..\" && pwd)\"\n"
        ),
    )
    .expect("mid.sh");
    // The temp folder above mid_home is 0700: the MID's user must reach it.
    set_mode(host.home.parent().expect("parent"), 0o755);
    let status = Command::new("chown")
        .args(["-R", &format!("{}:{}", MID_USER.0, MID_USER.1)])
        .arg(&host.home)
        .status()
        .expect("chown");
    assert!(status.success());
    let status = Command::new("chown")
        .args(["-R", "0:0"])
        .arg(host.midfleet())
        .status()
        .expect("chown");
    assert!(status.success());
    let started = Command::new("setpriv")
        .args([
            &format!("--reuid={}", MID_USER.0),
            &format!("--regid={}", MID_USER.1),
            "--clear-groups",
            "--",
        ])
        .arg(host.mid_sh())
        .arg("start")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("setpriv");
    assert!(started.success(), "mid.sh start as the MID's user");
    host.wait_for(|| host.running());
}

fn recorded_uids(host: &Host) -> Vec<String> {
    fs::read_to_string(host.agent.join("work/uids"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn mid_sh_its_user_owns_runs_as_that_user_never_as_root() {
    let host = Host::new();
    hand_to_mid_user(&host);
    let before = recorded_uids(&host).len();
    host.add_credentials(NEW_USER, NEW_PASSWORD);
    let mut plan = Plan::apply(host.rotated_config(NEW_USER, NEW_PASSWORD));
    plan.expect_user = NEW_USER;
    plan.key_pair_reset = true;
    let run = host.stage(&plan);
    let outcome = run.run_foreground();
    assert_eq!(outcome.result, "applied", "{}", run.report());
    // (Before: this test's own `mid.sh status`, as root.)
    let uids = recorded_uids(&host).split_off(before);
    assert!(
        uids.len() > 2,
        "mid.sh ran for stop, start and status: {uids:?}"
    );
    assert!(
        uids.iter().all(|uid| uid == &MID_USER.0.to_string()),
        "mid.sh ran as {uids:?}"
    );
    assert_eq!(host.logged_in_user().as_deref(), Some(NEW_USER));
    // The new config.xml keeps the MID user's ownership.
    let owner = Command::new("stat")
        .args(["-c", "%u:%g %a"])
        .arg(host.agent.join("config.xml"))
        .output()
        .expect("stat");
    assert_eq!(
        String::from_utf8_lossy(&owner.stdout).trim(),
        format!("{}:{} 640", MID_USER.0, MID_USER.1)
    );
    // And a rollback restores the old files, also through the MID's user.
    let mut back = Plan::action("rollback");
    back.restore_from = run.name.clone();
    back.expect_user = OLD_USER;
    back.rollback_user = OLD_USER;
    back.key_pair_reset = true;
    let rolled = host.stage(&back).run_foreground();
    assert_eq!(rolled.result, "applied", "{rolled:?}");
    assert_eq!(host.logged_in_user().as_deref(), Some(OLD_USER));
    assert!(recorded_uids(&host)
        .split_off(before)
        .split_off(before)
        .iter()
        .all(|uid| uid == &MID_USER.0.to_string()));
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn a_mid_sh_that_root_does_not_own_alone_is_never_run_as_root() {
    // mid_home and agent/ root's, agent/bin/mid.sh the MID user's: it
    // still runs as that user.
    let host = Host::new();
    host.stop_mid();
    let status = Command::new("chown")
        .arg(format!("{}:{}", MID_USER.0, MID_USER.1))
        .arg(host.mid_sh())
        .status()
        .expect("chown");
    assert!(status.success());
    fs::write(host.agent.join("work/uids"), b"").expect("uids");
    set_mode(&host.agent.join("work"), 0o777);
    set_mode(&host.agent.join("work/uids"), 0o666);
    let script = fs::read_to_string(host.mid_sh()).expect("mid.sh");
    fs::write(
        host.mid_sh(),
        script.replacen(
            "#!/bin/sh\n",
            "#!/bin/sh\nid -u >>\"$(dirname \"$0\")/../work/uids\"\nexit 3\n",
            1,
        ),
    )
    .expect("mid.sh");
    let run = host.stage(&Plan::action("start"));
    let outcome = run.run_foreground();
    assert_ne!(outcome.result, "applied", "{}", run.report());
    let uids = recorded_uids(&host);
    assert!(!uids.is_empty(), "mid.sh ran");
    assert!(
        !uids.iter().any(|uid| uid == "0"),
        "mid.sh ran as root: {uids:?}"
    );
}

#[test]
fn a_config_that_is_a_fifo_or_a_hard_link_is_refused_without_waiting() {
    let host = Host::new();
    let config = host.agent.join("config.xml");
    let original = host.config();
    let plan = Plan::apply(host.threads_config("30"));
    // Staged while config.xml was the real file; then the MID's user puts
    // a FIFO in its place: nothing may open it and wait.
    let run = host.stage(&plan);
    fs::rename(&config, host.agent.join("config.xml.real")).expect("rename");
    let status = Command::new("mkfifo")
        .arg(&config)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    let outcome = run.run_foreground();
    assert_ended_in_error(&outcome, &run, "config-not-a-regular-file");
    assert!(outcome.seconds < 15.0, "it waited: {outcome:?}");
    fs::remove_file(&config).expect("fifo");
    fs::rename(host.agent.join("config.xml.real"), &config).expect("rename back");
    assert!(host.running(), "the MID was never stopped");
    // A hard link to another file (here: a root-only file beside it).
    let victim = host.home.join("victim");
    fs::write(&victim, &original).expect("victim");
    set_mode(&victim, 0o600);
    fs::remove_file(&config).expect("remove");
    fs::hard_link(&victim, &config).expect("link");
    let run = host.stage(&Plan::apply(host.threads_config("31")));
    let outcome = run.run_foreground();
    assert_ended_in_error(&outcome, &run, "config-hard-linked");
    assert_eq!(fs::read(&victim).expect("victim"), original);
    assert_eq!(mode(&victim), 0o600);
}

#[test]
fn a_foreign_could_not_authenticate_line_never_rolls_back_a_healthy_start() {
    let host = Host::new();
    host.set_knob("start_delay_ms=800");
    let run = host.stage(&Plan::apply(host.threads_config("30")));
    // As soon as the transaction starts the MID: lines about another
    // system, from another logger, in both logs; and one in the MID's
    // format that is not the MID's login line.
    let injector = append_once_started(
        &run,
        vec![
            (
                host.agent.join("logs/agent0.log.0"),
                "12/06/26 10:00:00 (123) Worker-Standard:SSHCommand Could not authenticate user 'probe' on the ServiceNow instance.\n\
                 12/06/26 10:00:00 (124) MIDServer Probe: Could not authenticate (bad key) on 10.0.0.5\n"
                    .to_string(),
            ),
            (
                host.agent.join("logs/wrapper.log"),
                "INFO   | jvm 1    | 2026/12/06 10:00:00 | Probe: Could not authenticate (bad key)\n"
                    .to_string(),
            ),
        ],
    );
    let outcome = run.run_foreground();
    assert!(
        injector.join().expect("injector"),
        "the lines were injected"
    );
    assert_eq!(outcome.result, "applied", "{}", run.report());
}

#[test]
fn lines_not_in_the_mids_own_shape_never_make_a_failed_start_healthy() {
    let host = Host::new();
    host.set_knob("start_delay_ms=800");
    // The instance does not know this password: the MID will not log in.
    let mut plan = Plan::apply(host.rotated_config(NEW_USER, "not-the-password"));
    plan.expect_user = NEW_USER;
    plan.key_pair_reset = true;
    let run = host.stage(&plan);
    // Success text, but not the MID's lines: another logger, a prefix, a
    // longer user name, no line format.
    let injector = append_once_started(
        &run,
        vec![(
            host.agent.join("logs/agent0.log.0"),
            format!(
                "12/06/26 10:00:00 (123) Probe MID Server started\n\
                 echo: 12/06/26 10:00:00 (123) MIDServer Setting basic authentication with user {NEW_USER}\n\
                 12/06/26 10:00:00 (123) MIDServer Setting basic authentication with user {NEW_USER}x\n\
                 Successfully connected to instance: https://example.service-now.com\n"
            ),
        )],
    );
    let original = host.config();
    let outcome = run.run_foreground();
    assert!(
        injector.join().expect("injector"),
        "the lines were injected"
    );
    assert_eq!(outcome.result, "rolled_back", "{}", run.report());
    assert_eq!(host.config(), original);
}

#[test]
fn a_config_on_another_mount_than_the_run_folder_is_refused_before_the_stop() {
    // mid_config on a file system of its own: the new file could not be
    // renamed from the run folder into place, and a copy would write by
    // path into the MID user's folder. Refused, the MID never stopped.
    let host = Host::new();
    let elsewhere = host.home.parent().expect("parent").join("elsewhere");
    fs::create_dir_all(&elsewhere).expect("elsewhere");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "midfleet-test"])
        .arg(&elsewhere)
        .status()
        .is_ok_and(|status| status.success());
    if !mounted {
        eprintln!("cannot mount a tmpfs here (not root?): skipped");
        return;
    }
    let config = elsewhere.join("config.xml");
    fs::write(&config, host.config()).expect("config");
    let mut plan = Plan::apply(host.threads_config("30"));
    plan.config = Some(config.clone());
    let run = host.stage(&plan);
    fs::write(run.directory.join("original.xml"), host.config()).expect("original");
    let outcome = run.run_foreground();
    let before = fs::read(&config).expect("config");
    let _ = Command::new("umount").arg(&elsewhere).status();
    assert_eq!(outcome.result, "error", "{}", run.report());
    assert!(
        outcome
            .steps
            .iter()
            .any(|step| step == "result error other-file-system"),
        "{outcome:?}"
    );
    assert_eq!(before, host.config(), "untouched");
    assert!(host.running(), "the MID was never stopped");
}

/// mid_home's whole tree on a mount of its own, at a mount point whose
/// name holds a blank: config.xml, agent/ and the run folder are on one
/// file system, and the run applies (the review of stop 28 found the
/// mount points were split on blanks and compared field by field, which
/// refused such a tree as `other-file-system`).
#[test]
fn a_tree_on_a_mount_whose_name_holds_a_blank_is_one_file_system() {
    let directory = tempfile::tempdir().expect("temp dir");
    let mount_point = directory.path().join("mid home");
    fs::create_dir(&mount_point).expect("mount point");
    if !mount_tmpfs(&mount_point) {
        eprintln!("cannot mount a tmpfs here (not root?): skipped");
        return;
    }
    let unmount = Unmount(mount_point.clone());
    let host = Host::inside(&mount_point);
    let mut plan = Plan::apply(host.threads_config("30"));
    plan.wrapper_new = Some(host.heap_wrapper("2048"));
    let run = host.stage(&plan);
    let outcome = run.run_foreground();
    assert_eq!(outcome.result, "applied", "{}", run.report());
    assert_eq!(host.config(), plan.new.clone().expect("new"));
    host.stop_mid();
    drop(host);
    drop(unmount);
}

/// A mount below mid_home keeps mid.sh from running as root (a FUSE mount
/// can say anything of its owners): the run ends before the stop with
/// `mid-sh-mount-inside`, also when mid_home's path holds a blank, which
/// /proc/self/mountinfo writes as `\040` (the review of stop 28 found the
/// check compared the path as written, so under such a path it never saw
/// the mount).
#[test]
fn a_mount_below_mid_home_keeps_mid_sh_from_running_as_root() {
    for name in ["mid", "mid home", "mid\\home", "mid\thome"] {
        let host = Host::named(name);
        let inside = host.home.join("extra");
        fs::create_dir(&inside).expect("extra/");
        if !mount_tmpfs(&inside) {
            eprintln!("cannot mount a tmpfs here (not root?): skipped");
            return;
        }
        let unmount = Unmount(inside);
        let original = host.config();
        let starts = host.starts();
        let run = host.stage(&Plan::apply(host.threads_config("30")));
        let outcome = run.run_foreground();
        drop(unmount);
        assert_ended_in_error(&outcome, &run, "mid-sh-mount-inside");
        left_as_it_was(&host, &run, &original, starts);
    }
}

/// A folder bind-mounted onto itself is another mount of the same file
/// system: `stat %m` names the same mount point for both, but a rename
/// across them fails and `mv` copies instead. agent/ (config.xml's
/// folder) or conf/ so mounted ends the run before the stop with
/// `other-file-system` (the attack review of stop 28 found both applied,
/// config.xml and wrapper-override.conf written by a copy).
#[test]
fn a_folder_bind_mounted_onto_itself_is_another_mount() {
    for folder in ["agent", "agent/conf"] {
        let host = Host::new();
        let mounted = host.home.join(folder);
        if !bind_onto_itself(&mounted) {
            eprintln!("cannot bind-mount here (not root?): skipped");
            return;
        }
        let unmount = Unmount(mounted);
        let original = host.config();
        let wrapper = host.wrapper();
        let starts = host.starts();
        let mut plan = Plan::apply(host.threads_config("30"));
        plan.wrapper_new = Some(host.heap_wrapper("2048"));
        plan.service = Service::Commands(host.instant_mid());
        let run = host.stage(&plan);
        let outcome = run.run_foreground();
        drop(unmount);
        assert_ended_in_error(&outcome, &run, "other-file-system");
        assert_eq!(
            host.wrapper(),
            wrapper,
            "{folder}: wrapper-override.conf untouched"
        );
        left_as_it_was(&host, &run, &original, starts);
    }
}

/// `mount -t tmpfs` at `path`: whether it mounted. Only root can; root
/// that cannot fails the test rather than pass it unchecked.
fn mount_tmpfs(path: &Path) -> bool {
    mount(&["-t", "tmpfs", "-o", "size=8m", "midfleet-test"], path)
}

/// `mount --bind path path`: a second mount of the same file system.
fn bind_onto_itself(path: &Path) -> bool {
    mount(&["--bind", path.to_str().expect("utf-8")], path)
}

fn mount(arguments: &[&str], at: &Path) -> bool {
    let mounted = Command::new("mount")
        .args(arguments)
        .arg(at)
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        mounted || !is_root(),
        "root could not mount at {}",
        at.display()
    );
    mounted
}

/// Unmounts its path when dropped (lazily: a test that failed may leave a
/// process there).
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The run ended `error`, with a journal step naming `word`.
fn assert_ended_in_error(outcome: &Outcome, run: &Run, word: &str) {
    assert_eq!(outcome.result, "error", "{}", run.report());
    assert!(
        outcome.steps.iter().any(|step| step.contains(word)),
        "{outcome:?}"
    );
}

/// Appends each text to its file as soon as `run`'s progress shows the
/// MID being started (before it logs in: the tests slow its start); the
/// thread answers whether it did.
fn append_once_started(run: &Run, texts: Vec<(PathBuf, String)>) -> thread::JoinHandle<bool> {
    let progress = run.directory.join("progress");
    thread::spawn(move || {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let text = fs::read_to_string(&progress).unwrap_or_default();
            if text.lines().any(|line| line.ends_with(" start")) {
                for (path, text) in &texts {
                    let mut file = fs::OpenOptions::new().append(true).open(path).expect("log");
                    std::io::Write::write_all(&mut file, text.as_bytes()).expect("append");
                }
                return true;
            }
            thread::sleep(Duration::from_millis(5));
        }
        false
    })
}

/// Review of issue 14 (h-review): the MID's user makes agent0.log.0 a
/// huge sparse file during the health wait (one `truncate`, no disk of its
/// own used). Health copies everything the log "gained" since the start
/// into the root-only run folder (`log_from`: dd with no size cap) and runs
/// `sed` over it — 1 GiB of zeros is one 1 GiB line — again on every tick
/// the log changes. On the MID's file system that is root's disk (root
/// also fills the blocks reserved for root) and root's memory; 100 GiB
/// fills the disk or gets the host's OOM killer going. The scratch file
/// must stay small.
#[test]
fn a_huge_sparse_log_is_never_copied_whole_into_the_run_folder() {
    let host = Host::new();
    host.set_knob("start_delay_ms=3000");
    let run = host.stage(&Plan::apply(host.threads_config("30")));
    let agent_log = host.agent.join("logs/agent0.log.0");
    let progress = run.directory.join("progress");
    let scratch = run.directory.join(".agent-log");
    let attacker = thread::spawn(move || {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let text = fs::read_to_string(&progress).unwrap_or_default();
            if text.lines().any(|line| line.ends_with(" start")) {
                // What `truncate -s +1G` does: a hole, no disk used.
                let file = fs::OpenOptions::new()
                    .append(true)
                    .open(&agent_log)
                    .expect("log");
                let size = file.metadata().expect("size").len();
                file.set_len(size + (1 << 30)).expect("sparse");
                let mut largest = 0;
                let watch = Instant::now();
                while watch.elapsed() < Duration::from_secs(8) {
                    if let Ok(meta) = fs::metadata(&scratch) {
                        largest = largest.max(meta.len());
                    }
                    thread::sleep(Duration::from_millis(20));
                }
                return largest;
            }
            thread::sleep(Duration::from_millis(5));
        }
        0
    });
    let outcome = run.run_foreground();
    let largest = attacker.join().expect("attacker");
    // Whatever the result: the log the MID's user grew must not become
    // root's gigabyte in the run folder.
    let _ = fs::OpenOptions::new()
        .write(true)
        .open(host.agent.join("logs/agent0.log.0"))
        .and_then(|file| file.set_len(0));
    assert!(
        largest < 64 << 20,
        "root copied {largest} bytes of the MID user's sparse log into the run folder ({outcome:?})"
    );
}

/// Review of issue 14 (h-review): root owns mid_home, agent/, agent/bin and
/// mid.sh (a hardened install: code root's, data the MID user's), so
/// `mid_sh_user` runs mid.sh as root. But mid.sh is not all the code it
/// runs: ServiceNow's mid.sh sources `bin/mid.shconf` and
/// `bin/mid.shconf_override` (APP_NAME, RUN_AS_USER …) — the same files
/// facts.sh treats as the MID user's — and starts `bin/wrapper-*` and
/// `conf/wrapper.conf`'s java. When one of them is the MID user's, its code
/// runs as root.
#[test]
fn a_root_owned_mid_sh_never_sources_a_file_the_mid_user_owns_as_root() {
    let host = Host::new();
    host.stop_mid();
    let override_file = host.agent.join("bin/mid.shconf_override");
    // The MID user's file, as the installer writes it for its service.
    fs::write(
        &override_file,
        format!(
            "APP_NAME=mid\nid -u >>'{}'\n",
            host.agent.join("work/uids").display()
        ),
    )
    .expect("override");
    let status = Command::new("chown")
        .arg(format!("{}:{}", MID_USER.0, MID_USER.1))
        .arg(&override_file)
        .status()
        .expect("chown");
    assert!(status.success());
    let script = fs::read_to_string(host.mid_sh()).expect("mid.sh");
    fs::write(
        host.mid_sh(),
        script.replacen(
            "#!/bin/sh\n",
            "#!/bin/sh\n. \"$(dirname \"$0\")/mid.shconf_override\"\n",
            1,
        ),
    )
    .expect("mid.sh");
    // Whoever runs it can record its uid (the rest of agent/ stays root's:
    // run as the override's owner, the MID itself may not start, and that
    // is not what this checks).
    fs::write(host.agent.join("work/uids"), b"").expect("uids");
    set_mode(&host.agent.join("work"), 0o777);
    set_mode(&host.agent.join("work/uids"), 0o666);
    let run = host.stage(&Plan::action("start"));
    let outcome = run.run_foreground();
    let uids = recorded_uids(&host);
    assert!(!uids.is_empty(), "mid.sh ran: {outcome:?}");
    assert!(
        !uids.iter().any(|uid| uid == "0"),
        "the MID user's mid.shconf_override ran as root: {uids:?} ({outcome:?})"
    );
}

/// Review of issue 14 (h-review): root owns mid_home and all of the MID's
/// code (so mid.sh runs as root), but the folder above mid_home is the MID
/// user's (e.g. /opt/servicenow made for it by the installer's docs).
/// `mid_sh_user` checks owners once, then every `service` call runs
/// mid.sh by path (`$agent_real/bin/mid.sh`): the MID's user renames
/// mid_home away once the MID is stopped and puts a mid_home of its own
/// there; the next `mid.sh start` as root is its script.
#[test]
fn a_mid_home_swapped_in_a_folder_the_mid_user_owns_never_runs_its_mid_sh_as_root() {
    let host = Host::new();
    let parent = host.home.parent().expect("parent").to_path_buf();
    let status = Command::new("chown")
        .arg(format!("{}:{}", MID_USER.0, MID_USER.1))
        .arg(&parent)
        .status()
        .expect("chown");
    assert!(status.success());
    set_mode(&parent, 0o755);
    let marker = parent.join("ran-as");
    let run = host.stage(&Plan::action("restart"));
    let progress = run.directory.join("progress");
    let home = host.home.clone();
    let real = parent.join("mid.real");
    let attacker = {
        let marker = marker.clone();
        let real = real.clone();
        thread::spawn(move || {
            let deadline = Instant::now() + WAIT;
            while Instant::now() < deadline {
                let text = fs::read_to_string(&progress).unwrap_or_default();
                if text.lines().any(|line| line.ends_with(" end")) {
                    return false;
                }
                if text.lines().any(|line| line.ends_with(" stop")) {
                    // What the MID user may do in its own folder.
                    fs::rename(&home, &real).expect("rename mid_home");
                    fs::create_dir_all(home.join("agent/bin")).expect("own mid_home");
                    fs::write(
                        home.join("agent/bin/mid.sh"),
                        format!(
                            "#!/bin/sh\nid -u >>'{}'\nexec '{}/agent/bin/mid.sh' \"$@\"\n",
                            marker.display(),
                            real.display()
                        ),
                    )
                    .expect("mid.sh");
                    set_mode(&home.join("agent/bin/mid.sh"), 0o755);
                    return true;
                }
                thread::sleep(Duration::from_millis(2));
            }
            false
        })
    };
    // Run as run_foreground does, but read the journal only once mid_home
    // is back where it was.
    let status = Command::new(shell())
        .arg(run.directory.join("transaction.sh"))
        .arg(&run.directory)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("transaction");
    let swapped = attacker.join().expect("attacker");
    // Put the real mid_home back for Drop and cleanup.
    if swapped {
        let _ = fs::remove_dir_all(&host.home);
        let _ = fs::rename(&real, &host.home);
    }
    let outcome = (status, run.final_journal());
    if !swapped {
        // Refused before the stop: a folder above mid_home that another
        // user can write is no place for root to run mid.sh from.
        let journal = outcome.1.clone().unwrap_or_default();
        assert!(
            journal.contains("result error mid-sh-writable-by-others"),
            "{journal}"
        );
    }
    let ran_as = fs::read_to_string(&marker).unwrap_or_default();
    assert!(
        !ran_as.lines().any(|uid| uid == "0"),
        "the MID user's own mid.sh ran as root: {ran_as:?} ({outcome:?})"
    );
}

/// Exchanges two names in a loop, as the MID's user can in its folders.
const EXCHANGER: &str = include_str!("support/exchanger.py");

/// Review of issue 14: while the keystore folder is backed up, the MID's
/// user exchanges a real subfolder of `agent/security` with a link to a
/// root-only folder, over and over. A copy that walks by path (`cp -R`)
/// sometimes walks through the link and copies root's file into the
/// backup, from where a rollback would put it in the MID user's folder.
/// The backup must never hold it: every folder is entered and checked
/// where it is (`copy_tree`), links are copied as links.
#[test]
fn a_keystore_folder_swapped_for_a_link_while_it_is_backed_up_never_copies_roots_files() {
    let Some(python) = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|path| Path::new(path).exists())
    else {
        eprintln!("no python3: skipped");
        return;
    };
    let host = Host::new();
    host.stop_mid();
    let secret = b"ROOT-ONLY SECRET 6f1c\n";
    let victim = host.home.parent().expect("parent").join("victim");
    fs::create_dir_all(&victim).expect("victim");
    set_mode(&victim, 0o700);
    fs::write(victim.join("sub-file"), secret).expect("secret");
    set_mode(&victim.join("sub-file"), 0o644);
    let security = host.agent.join("security");
    fs::create_dir_all(security.join("sub")).expect("sub");
    fs::write(security.join("sub/sub-file"), b"the MID's own\n").expect("own");
    std::os::unix::fs::symlink(&victim, security.join("sublink")).expect("link");
    let script = host.home.parent().expect("parent").join("exchanger.py");
    fs::write(&script, EXCHANGER).expect("exchanger");
    let mut racer = Command::new(python)
        .arg(&script)
        .arg(security.join("sub"))
        .arg(security.join("sublink"))
        .spawn()
        .expect("racer");
    let mut backed_up = 0;
    for round in 0..60 {
        let mut plan = Plan::apply(host.threads_config(&format!("{}", 40 + round)));
        plan.key_pair_reset = true;
        // The stand-in MID logs no user: neither the run's health wait
        // nor a recovery's (after a failed backup) waits for one.
        plan.expect_user = "";
        plan.rollback_user = "";
        plan.service = Service::Commands(host.instant_mid());
        let run = host.stage(&plan);
        let outcome = run.run_foreground();
        if outcome
            .steps
            .iter()
            .any(|step| step.starts_with("backup ") && !step.starts_with("backup fail"))
        {
            backed_up += 1;
        }
    }
    let _ = racer.kill();
    let _ = racer.wait();
    // Every file midfleet keeps, walked without following a link.
    fn holds(path: &Path, secret: &[u8]) -> bool {
        let Ok(meta) = fs::symlink_metadata(path) else {
            return false;
        };
        if meta.is_dir() {
            fs::read_dir(path)
                .expect("dir")
                .flatten()
                .any(|entry| holds(&entry.path(), secret))
        } else if meta.is_file() {
            fs::read(path).is_ok_and(|bytes| bytes == secret)
        } else {
            false
        }
    }
    assert!(backed_up > 0, "no run got as far as its backup");
    assert!(
        !holds(&host.midfleet(), secret),
        "root copied the root-only file into midfleet's folders"
    );
    assert!(
        !holds(&host.agent, secret),
        "root put the root-only file into the MID's folder"
    );
    assert_eq!(fs::read(victim.join("sub-file")).expect("victim"), secret);
}

/// Review 2 (h-review): a MID user with no passwd entry (a numeric uid, as
/// `chown -R 1500 agent/…` in a container-style install leaves, or an
/// LDAP/SSSD user while the directory is down) owns mid.sh; agent/ keeps
/// root's group. `mid_sh_user` then takes the gid from agent/'s group —
/// 0 — and runs `setpriv --reuid=UID --regid=0 --clear-groups`: the MID
/// user's code runs with group root.
#[test]
fn a_mid_user_without_a_passwd_entry_never_gets_roots_group() {
    const NO_ENTRY: u32 = 4242;
    let lookup = Command::new("getent")
        .args(["passwd", &NO_ENTRY.to_string()])
        .output()
        .expect("getent");
    assert!(
        !lookup.status.success(),
        "uid {NO_ENTRY} has a passwd entry here"
    );
    let host = Host::new();
    host.stop_mid();
    let status = Command::new("chown")
        .arg(NO_ENTRY.to_string())
        .arg(host.mid_sh())
        .status()
        .expect("chown");
    assert!(status.success());
    let agent_group = Command::new("stat")
        .args(["-c", "%g"])
        .arg(&host.agent)
        .output()
        .expect("stat");
    assert_eq!(String::from_utf8_lossy(&agent_group.stdout).trim(), "0");
    fs::write(host.agent.join("work/uids"), b"").expect("uids");
    set_mode(&host.agent.join("work"), 0o777);
    set_mode(&host.agent.join("work/uids"), 0o666);
    let script = fs::read_to_string(host.mid_sh()).expect("mid.sh");
    fs::write(
        host.mid_sh(),
        script.replacen(
            "#!/bin/sh\n",
            "#!/bin/sh\necho \"$(id -u) $(id -g) $(id -G)\" >>\"$(dirname \"$0\")/../work/uids\"\nexit 3\n",
            1,
        ),
    )
    .expect("mid.sh");
    let run = host.stage(&Plan::action("start"));
    let outcome = run.run_foreground();
    let ids = recorded_uids(&host);
    if ids.is_empty() {
        // Refused: no passwd entry, no group of its own to give it.
        assert_ended_in_error(&outcome, &run, "mid-sh-user-unknown");
    }
    for line in &ids {
        let mut fields = line.split_whitespace();
        assert_eq!(fields.next(), Some("4242"), "{ids:?}");
        assert!(
            !fields.any(|gid| gid == "0"),
            "the MID user's mid.sh ran with group root: uid gid groups = {ids:?}"
        );
    }
}

/// Review 2 (h-review): the keystore backup (`copy_tree`) forks five or
/// more processes per entry (stat, dd, stat, chown, chmod) and never looks
/// at the clock: the MID's user, who may write agent/security, fills it
/// with small files, and the run that stopped the MID is still copying
/// long after its lease (DEADLINE) ended. The lock says the run is dead
/// then: the next run breaks it and works on the same MID and files while
/// the first one goes on writing.
#[test]
fn a_keystore_backup_never_outlives_the_lease_so_no_second_run_breaks_a_live_lock() {
    let host = Host::new();
    host.stop_mid();
    // The stand-in MID runs.
    fs::write(host.home.join("running"), b"").expect("running");
    // What the MID user can put in its own keystore folder in a second.
    let security = host.agent.join("security");
    fs::create_dir_all(&security).expect("security");
    for index in 0..4000 {
        fs::write(security.join(format!("f{index}")), b"x").expect("file");
    }
    let mut plan = Plan::apply(host.threads_config("41"));
    plan.key_pair_reset = true;
    plan.expect_user = "";
    plan.rollback_user = "";
    plan.stop_timeout = 1;
    plan.health_timeout = 1;
    plan.lease = 10;
    plan.service = Service::Commands(host.instant_mid());
    let first = host.stage(&plan);
    let first_deadline = epoch() + plan.lease;
    thread::scope(|scope| {
        let first_run = scope.spawn(|| first.run_foreground());
        // Past the first run's lease, while it still runs: the operator
        // (or a retry) starts the next one.
        while epoch() <= first_deadline + 1 {
            thread::sleep(Duration::from_millis(200));
        }
        let still_running = !first_run.is_finished();
        let mut again = Plan::action("restart");
        again.expect_user = "";
        again.rollback_user = "";
        again.stop_timeout = 1;
        again.health_timeout = 1;
        again.lease = 10;
        again.service = Service::Commands(host.instant_mid());
        let second = host.stage(&again).run_foreground();
        let broke = second
            .steps
            .iter()
            .any(|step| step.starts_with("lock broken"));
        let first_outcome = first_run.join();
        assert!(
            !(still_running && broke),
            "a second run broke the lock of a run still working on the MID \
             (the first one's own records then fail the harness's checks: {}): {second:?}",
            if first_outcome.is_err() {
                "they did"
            } else {
                "they did not"
            }
        );
        let first_outcome = first_outcome.expect("first run");
        assert!(
            first_outcome.seconds <= (plan.lease + 5) as f64,
            "the first run outlived its {} s lease by far: {:.0} s ({first_outcome:?})",
            plan.lease,
            first_outcome.seconds
        );
    });
}

#[test]
fn config_and_wrapper_are_written_together_with_one_restart_and_rolled_back_together() {
    let host = Host::new();
    let original_config = host.config();
    let original_wrapper = host.wrapper();
    let mut plan = Plan::apply(host.threads_config("30"));
    let new_wrapper = host.heap_wrapper("2048");
    plan.wrapper_new = Some(new_wrapper.clone());
    let starts = host.starts();
    let run = host.stage(&plan);
    let outcome = run.run_foreground();
    assert_eq!(outcome.result, "applied", "{}", run.report());
    assert_eq!(
        outcome.steps,
        steps(
            &[
                "lock",
                "stop",
                "check ok",
                "backup BACKUP",
                "write",
                "rename",
                "rename wrapper",
                "start",
                "health ok",
                "state",
                "unlock",
                "result applied",
                "end",
            ],
            &backup_path(&run)
        )
    );
    assert_eq!(host.starts(), starts + 1, "one start for both files");
    assert_eq!(host.wrapper(), new_wrapper);
    assert_eq!(
        fs::read(run.backup().join("wrapper-override.conf")).expect("backed up"),
        original_wrapper
    );
    assert_eq!(
        fs::read(run.backup().join("config.xml")).expect("backed up"),
        original_config
    );
    assert_eq!(mode(&host.agent.join("conf/wrapper-override.conf")), 0o644);
    assert_eq!(
        mode(&run.backup().join("wrapper-override.conf")),
        0o644,
        "the backup keeps the mode"
    );
    for staged in [
        "wrapper-new.conf",
        "wrapper-original.conf",
        "current-wrapper.conf",
        "wrapper.new",
    ] {
        assert!(!run.directory.join(staged).exists(), "{staged} removed");
    }
    // `midfleet rollback`: both files back, byte for byte.
    let mut rollback = Plan::action("rollback");
    rollback.restore_from = run.name.clone();
    let back = host.stage(&rollback);
    let outcome = back.run_foreground();
    assert_eq!(outcome.result, "applied", "{}", back.report());
    assert_eq!(host.config(), original_config);
    assert_eq!(host.wrapper(), original_wrapper);
    assert_eq!(
        fs::read(back.backup().join("wrapper-override.conf")).expect("saved before restoring"),
        new_wrapper
    );
    assert!(host.running());
}

#[test]
fn a_wrapper_only_change_restarts_once_and_leaves_config_alone() {
    let host = Host::new();
    let original_config = host.config();
    let mut plan = Plan::action("apply");
    plan.wrapper_new = Some(host.heap_wrapper("2048"));
    let starts = host.starts();
    let run = host.stage(&plan);
    let outcome = run.run_foreground();
    assert_eq!(outcome.result, "applied", "{}", run.report());
    assert!(outcome.steps.contains(&"rename wrapper".to_string()));
    assert!(
        !outcome.steps.contains(&"rename".to_string()),
        "{:?}",
        outcome.steps
    );
    assert_eq!(host.config(), original_config);
    assert_eq!(host.starts(), starts + 1);
    // Only the value changed: the CRLF lines, the include, the commented
    // reserved line and the missing final newline are the shipped ones.
    assert_eq!(
        host.wrapper(),
        SHIPPED_WRAPPER
            .replace("maxmemory=1024", "maxmemory=2048")
            .into_bytes()
    );
}

#[test]
fn a_heap_the_jvm_cannot_take_rolls_both_files_back() {
    let host = Host::new();
    let original_config = host.config();
    let original_wrapper = host.wrapper();
    // The host gives a JVM at most 1536 MB (the simulated MID's knob).
    host.set_knob("heap_limit_mb=1536");
    let mut plan = Plan::apply(host.threads_config("30"));
    plan.wrapper_new = Some(host.heap_wrapper("2048"));
    let run = host.stage(&plan);
    let outcome = run.run_foreground();
    assert_eq!(outcome.result, "rolled_back", "{}", run.report());
    // The rollback's stop finds the wrapper still relaunching its JVM, or
    // (on a slow machine) already given up.
    let seen: Vec<String> = outcome
        .steps
        .iter()
        .map(|step| step.replace("stop already-stopped", "stop"))
        .collect();
    assert_eq!(
        seen,
        steps(
            &[
                "lock",
                "stop",
                "check ok",
                "backup BACKUP",
                "write",
                "rename",
                "rename wrapper",
                "start",
                "health fail jvm-heap",
                "rollback jvm-heap",
                "stop",
                "restore BACKUP",
                "start",
                "health ok",
                "unlock",
                "result rolled_back jvm-heap",
                "end",
            ],
            &backup_path(&run)
        )
    );
    assert_eq!(host.config(), original_config, "config.xml byte for byte");
    assert_eq!(
        host.wrapper(),
        original_wrapper,
        "wrapper-override.conf byte for byte"
    );
    assert_eq!(mode(&host.agent.join("conf/wrapper-override.conf")), 0o644);
    let progress = fs::read_to_string(run.directory.join("progress")).unwrap();
    assert!(
        progress.contains("Could not reserve enough space for 2097152KB object heap"),
        "the deciding line reaches progress: {progress}"
    );
    assert!(host.running());
    assert_eq!(host.logged_in_user().as_deref(), Some(OLD_USER));
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn a_wrapper_changed_since_the_plan_is_stale_and_left_alone() {
    let host = Host::new();
    let mut plan = Plan::action("apply");
    plan.wrapper_new = Some(host.heap_wrapper("2048"));
    let run = host.stage(&plan);
    let mut changed = host.wrapper();
    changed.extend_from_slice(b"\r\nwrapper.java.initmemory=256");
    fs::write(host.agent.join("conf/wrapper-override.conf"), &changed).expect("edit");
    let starts = host.starts();
    let outcome = run.run_foreground();
    assert_eq!(outcome.result, "stale", "{}", run.report());
    assert_eq!(
        outcome.steps,
        [
            "lock",
            "check stale wrapper",
            "unlock",
            "result stale wrapper",
            "end"
        ]
    );
    assert_eq!(host.wrapper(), changed, "untouched");
    assert_eq!(host.starts(), starts);
    assert!(host.running());
}

#[test]
fn a_linked_conf_folder_is_refused_before_anything_changes() {
    let host = Host::new();
    let elsewhere = host.home.join("elsewhere");
    fs::rename(host.agent.join("conf"), &elsewhere).expect("move conf");
    std::os::unix::fs::symlink(&elsewhere, host.agent.join("conf")).expect("link");
    let mut plan = Plan::action("apply");
    plan.wrapper_new = Some(b"wrapper.java.maxmemory=2048\n".to_vec());
    let starts = host.starts();
    let run = host.stage(&plan);
    let outcome = run.run_foreground();
    assert_eq!(outcome.result, "error", "{}", run.report());
    assert_eq!(
        outcome.steps,
        ["result error wrapper-folder-symlink", "end"]
    );
    assert_eq!(host.starts(), starts);
    assert!(host.running());
}

#[test]
fn an_interrupt_after_both_renames_restores_both_files() {
    let host = Host::new();
    let original_config = host.config();
    let original_wrapper = host.wrapper();
    let mut plan = Plan::apply(host.threads_config("30"));
    plan.wrapper_new = Some(host.heap_wrapper("2048"));
    // Never seen: health would wait its whole timeout.
    plan.expect_user = "svc_mid_nobody";
    let run = host.stage(&plan);
    let outcome = run.run_foreground_with("", Some(" start"));
    assert_eq!(outcome.result, "rolled_back", "{}", run.report());
    assert!(
        outcome.steps.contains(&"rename wrapper".to_string()),
        "{:?}",
        outcome.steps
    );
    assert!(outcome
        .steps
        .contains(&"health fail interrupted".to_string()));
    assert_eq!(host.config(), original_config);
    assert_eq!(host.wrapper(), original_wrapper);
    assert!(host.running());
}

#[test]
fn a_run_killed_after_both_renames_is_undone_by_a_rollback_of_its_backup() {
    let host = Host::new();
    let original_config = host.config();
    let original_wrapper = host.wrapper();
    let mut plan = Plan::apply(host.threads_config("30"));
    let new_wrapper = host.heap_wrapper("2048");
    plan.wrapper_new = Some(new_wrapper.clone());
    fs::create_dir_all(host.midfleet().join("failpoints")).expect("failpoints");
    fs::write(host.midfleet().join("failpoints/start"), "60").expect("failpoint");
    let run = host.stage(&plan);
    let mut child = Command::new(shell())
        .arg(run.directory.join("transaction.sh"))
        .arg(&run.directory)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh transaction.sh");
    host.wait_for(|| {
        fs::read_to_string(run.directory.join("progress"))
            .is_ok_and(|progress| progress.contains(" failpoint start"))
    });
    // Killed outright: no trap runs. Both files are the new ones, the MID
    // is stopped, the journal names the backup.
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    fs::remove_file(host.midfleet().join("failpoints/start")).expect("failpoint off");
    assert_eq!(host.wrapper(), new_wrapper);
    assert_ne!(host.config(), original_config);
    let journal = fs::read_to_string(host.midfleet().join("journal")).expect("the journal stays");
    assert!(
        journal.contains(&format!(
            "backup {}",
            backup_path(&run).replace("$MID_HOME", host.home.to_str().unwrap())
        )),
        "{journal}"
    );
    // As `midfleet unlock` once the lease has passed, then `midfleet
    // rollback` of that backup.
    fs::remove_file(host.midfleet().join("lock")).expect("the dead run's lock");
    let mut rollback = Plan::action("rollback");
    rollback.restore_from = run.name.clone();
    let back = host.stage(&rollback);
    let outcome = back.run_foreground();
    assert_eq!(outcome.result, "applied", "{}", back.report());
    assert_eq!(host.config(), original_config, "config.xml byte for byte");
    assert_eq!(
        host.wrapper(),
        original_wrapper,
        "wrapper-override.conf byte for byte"
    );
    assert!(host.running());
    assert_eq!(host.logged_in_user().as_deref(), Some(OLD_USER));
}

/// On a host whose dd is not GNU's, where only root (this login) can
/// change the MID's folders, a rotation with a key pair reset reads
/// config.xml, the logs and the keystore with head, tail and cat, and
/// applies as with GNU dd.
#[test]
fn without_gnu_dd_a_rotation_in_folders_only_root_can_change_is_applied() {
    if !is_root() {
        eprintln!("not root: skipped");
        return;
    }
    let host = Host::new();
    host.add_credentials(NEW_USER, NEW_PASSWORD);
    let mut plan = Plan::apply(host.rotated_config(NEW_USER, NEW_PASSWORD));
    plan.expect_user = NEW_USER;
    plan.key_pair_reset = true;
    plan.without_gnu_dd = true;
    let run = host.stage(&plan);
    let outcome = run.run_foreground();
    assert_eq!(outcome.result, "applied", "{}", run.report());
    assert!(
        outcome.steps.contains(&"health ok".to_string()),
        "{outcome:?}"
    );
    assert_eq!(host.logged_in_user().as_deref(), Some(NEW_USER));
    assert!(run.backup().join("security").is_dir(), "the keystore kept");
}

/// The same host with the MID's user owning agent/logs: the MID's user
/// could swap a log for a link to a device between a check and root's
/// read. The run ends before the stop, with nothing changed, and says
/// why; the MID runs on as it was.
#[test]
fn without_gnu_dd_a_folder_the_mid_user_can_change_ends_the_run_before_any_change() {
    if !is_root() {
        eprintln!("not root: skipped");
        return;
    }
    // Also under a path with a blank: the folders are judged through
    // their held descriptors, never by a path split on blanks.
    for name in ["mid", "mid home"] {
        let host = Host::named(name);
        give_to_mid_user(&host.agent.join("logs"));
        host.add_credentials(NEW_USER, NEW_PASSWORD);
        let mut plan = Plan::apply(host.rotated_config(NEW_USER, NEW_PASSWORD));
        plan.expect_user = NEW_USER;
        plan.without_gnu_dd = true;
        refused_before_the_stop(&host, &plan, "logs");
    }
}

/// The keystore's folders are judged all the way down before the stop: a
/// subfolder of agent/security the MID's user owns ends a key pair reset
/// before anything changes (the attack review of stop 27 found the check
/// looked at agent/security alone, and the copy then failed with the MID
/// stopped, as a full disk).
#[test]
fn without_gnu_dd_a_keystore_subfolder_the_mid_user_owns_ends_the_run_before_the_stop() {
    if !is_root() {
        eprintln!("not root: skipped");
        return;
    }
    let host = Host::new();
    let sub = host.agent.join("security/deep");
    fs::create_dir_all(&sub).expect("subfolder");
    give_to_mid_user(&sub);
    host.add_credentials(NEW_USER, NEW_PASSWORD);
    let mut plan = Plan::apply(host.rotated_config(NEW_USER, NEW_PASSWORD));
    plan.expect_user = NEW_USER;
    plan.key_pair_reset = true;
    plan.without_gnu_dd = true;
    refused_before_the_stop(&host, &plan, "keystore");
}

/// Whether this test runs as root (the MID user's folders are chown'ed).
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `chown 65534:65534 PATH`: the MID user's, as its folders are.
fn give_to_mid_user(path: &Path) {
    assert!(std::process::Command::new("chown")
        .args(["65534:65534"])
        .arg(path)
        .status()
        .expect("chown")
        .success());
}

/// Runs `plan` on `host` without GNU dd and checks that it ends before the
/// stop with `no-safe-read ROLE` (the folder it would not read in): the MID
/// runs on, not restarted, config.xml as it was, no backup, no lock left.
fn refused_before_the_stop(host: &Host, plan: &Plan, role: &str) {
    let original = host.config();
    let starts = host.starts();
    let run = host.stage(plan);
    let outcome = run.run_foreground();
    assert_eq!(outcome.result, "error", "{}", run.report());
    assert_eq!(
        outcome.steps,
        [
            "lock".to_string(),
            format!("check fail no-safe-read {role}"),
            "unlock".to_string(),
            format!("result error no-safe-read {role}"),
            "end".to_string()
        ]
    );
    left_as_it_was(host, &run, &original, starts);
}

/// A run that ended before changing anything left the host as it was:
/// the MID running, started no more than `starts` times, config.xml the
/// bytes `config`, no backup made, no lock left.
fn left_as_it_was(host: &Host, run: &Run, config: &[u8], starts: usize) {
    assert!(host.running(), "the MID runs on, never stopped");
    assert_eq!(host.starts(), starts, "not restarted");
    assert_eq!(host.config(), config, "config.xml untouched");
    assert!(!run.backup().exists(), "no backup");
    assert!(!host.midfleet().join("lock").exists(), "no lock left");
}

/// A rollback to a backup that holds wrapper-override.conf reads conf/
/// too: without GNU dd, a conf/ the MID's user owns ends it before the
/// stop (the review of stop 27 found the check looked at conf/ only for
/// an apply's wrapper change, so such a rollback stopped the MID first).
#[test]
fn without_gnu_dd_a_rollback_with_the_wrapper_file_judges_conf_before_the_stop() {
    if !is_root() {
        eprintln!("not root: skipped");
        return;
    }
    let host = Host::new();
    let mut plan = Plan::apply(host.threads_config("30"));
    plan.wrapper_new = Some(host.heap_wrapper("2048"));
    let run = host.stage(&plan);
    assert_eq!(run.run_foreground().result, "applied", "{}", run.report());
    assert!(run.backup().join("wrapper-override.conf").exists());
    give_to_mid_user(&host.agent.join("conf"));
    let mut rollback = Plan::action("rollback");
    rollback.restore_from = run.name.clone();
    rollback.without_gnu_dd = true;
    refused_before_the_stop(&host, &rollback, "conf");
}
