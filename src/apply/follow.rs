//! Following a transaction: its progress lines as they come, what each
//! step means for the reporter, and the result it ends with (its reason
//! explained where the word alone would not say).
//!
//! Must not: act on the host.

use super::*;

/// Reads the transaction's progress lines.
pub(super) struct Follower<'a> {
    pub(super) host: &'a str,
    pub(super) reporter: &'a dyn Reporter,
    pub(super) lines: usize,
    pub(super) started: bool,
    pub(super) gone: bool,
    /// The transaction process is gone without its `end`.
    pub(super) dead: bool,
    pub(super) last_step: String,
    pub(super) backup: Option<String>,
    pub(super) stage_failure: Option<String>,
    pub(super) outcome: Option<(Outcome, Option<String>)>,
    /// The steps seen so far, timed by when their lines arrived.
    pub(super) steps: Vec<crate::report::Step>,
    /// When the last step's line arrived (or the follow began).
    mark: std::time::Instant,
    /// The last `health-line`/`health-last` seen, until its `health`.
    log_line: Option<LogLine>,
    /// The log line behind the first failed health check.
    pub(super) deciding: Option<LogLine>,
    /// The log line behind the last failed health check (a rollback's own,
    /// when it failed too).
    last_failure: Option<LogLine>,
    /// The login line of the last health check that passed.
    pub(super) healthy: Option<LogLine>,
}

use crate::report::LogLine;

/// `FILE NUMBER TEXT` of a `health-line`/`health-last` progress line.
fn log_line(detail: &str) -> Option<LogLine> {
    let mut parts = detail.splitn(3, ' ');
    let file = parts.next().filter(|file| !file.is_empty())?;
    // `N` or `+N` (see LogLine): anything else is not the check's.
    let line = parts.next().filter(|line| {
        let digits = line.strip_prefix('+').unwrap_or(line);
        !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit())
    })?;
    let text: String = parts
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|character| !character.is_control())
        .take(600)
        .collect();
    Some(LogLine {
        file: file.to_string(),
        line: line.to_string(),
        text,
    })
}

/// The health words the transaction ends a check with.
const HEALTH_WORDS: [&str; 12] = [
    "could-not-authenticate",
    "jvm-heap",
    "jvm-not-created",
    "jvm-exited",
    "jvm-gave-up",
    "problem-while-decrypting",
    "unable-to-load-keystore",
    "xml-parser-error",
    "not-running",
    "timeout",
    "deadline",
    "start",
];

/// Why a health check failed, in words a person can act on, citing the
/// MID's log line behind it (`line`, when the host sent one).
pub(super) fn health_failure(word: &str, line: Option<&LogLine>) -> String {
    let cited = line.map(LogLine::cited);
    let with_line = |text: String| match &cited {
        Some(cited) => format!("{text} ({cited})"),
        None => text,
    };
    match word {
        "could-not-authenticate" => {
            let user = line.and_then(|line| {
                let rest = line.text.split("Could not authenticate user '").nth(1)?;
                rest.rsplit_once("' on the ServiceNow instance").map(|(user, _)| user.to_string())
            });
            with_line(match user {
                Some(user) => format!("the instance refused user {user}"),
                None => "the instance refused the MID's login".to_string(),
            })
        }
        "problem-while-decrypting" => with_line("the MID could not decrypt a parameter of config.xml (its keystore does not match the encrypted values)".into()),
        "unable-to-load-keystore" => with_line("the MID could not load its keystore".into()),
        "xml-parser-error" => with_line("the MID could not parse config.xml".into()),
        "jvm-heap" => with_line("the MID's JVM could not start with the heap it was given (wrapper.java.maxmemory larger than the host allows?)".into()),
        "jvm-not-created" => with_line("the MID's JVM could not be created".into()),
        "jvm-exited" => with_line("the MID's JVM exited while loading the application".into()),
        "jvm-gave-up" => with_line("the MID's JVM failed to launch again and again, and the wrapper gave up".into()),
        "not-running" => match &cited {
            Some(cited) => format!("the MID stopped running after its start (the last line it logged: {cited})"),
            None => "the MID stopped running after its start, logging nothing".into(),
        },
        "timeout" | "deadline" => match &cited {
            Some(cited) => format!("the MID did not log its login in time (the last line it logged: {cited})"),
            None => "the MID did not log its login in time, and logged nothing since its start".into(),
        },
        "start" => "the MID's start command failed".into(),
        other => other.to_string(),
    }
}

/// What to do next after a health failure of kind `word`.
fn next_step(word: &str) -> &'static str {
    match word {
        "could-not-authenticate" => "check that the user exists and is active on the instance and that the secret holds its password, then apply again",
        "problem-while-decrypting" | "unable-to-load-keystore" => "look at agent/security and agent/keystore (key_pair_reset in the playbook rewrites the encrypted values), then apply again",
        "xml-parser-error" => "look at the config.xml midfleet wrote (`midfleet plan` shows the change), then apply again",
        "jvm-heap" | "jvm-not-created" | "jvm-exited" | "jvm-gave-up" => "look at conf/wrapper-override.conf (wrapper.java.maxmemory, wrapper.java.additional.N) and the host's free memory; lower the heap in the playbook's `wrapper:` section, then apply again",
        _ => "read the MID's logs in agent/logs around that line, then apply again (a larger health.timeout if it was only slow)",
    }
}

impl Follower<'_> {
    /// The result's reason for `word` (the transaction's), spelled out
    /// when it is a health failure with its log line: the line, the
    /// backup, and what to do next.
    fn reason(&self, outcome: Outcome, word: &str) -> String {
        let first = word.split(' ').next().unwrap_or_default();
        if let Some(health) = first.strip_prefix("recover-") {
            // An error that changed nothing, but the MID the run stopped
            // did not start again.
            let cause = word
                .split_once(' ')
                .map(|(_, cause)| explain(cause))
                .unwrap_or_else(|| "error".into());
            let why = health_failure(health, self.last_failure.as_ref());
            return format!(
                "{cause}; config.xml was not changed, but the MID, stopped for the run, did not start again: {why}; next: fix the cause (free space, permissions), then start the MID or apply again (`midfleet facts` shows it)"
            );
        }
        let (health, during_rollback) = match first.strip_prefix("rollback-") {
            Some(health) => (health, true),
            None => (first, false),
        };
        if !HEALTH_WORDS.contains(&health) {
            return explain(word);
        }
        let line = if during_rollback {
            self.last_failure.as_ref()
        } else {
            self.deciding.as_ref()
        };
        let why = health_failure(health, line);
        let backup = self
            .backup
            .as_deref()
            .map(|backup| format!("; the backup is {backup} on the host"))
            .unwrap_or_default();
        match (outcome, during_rollback) {
            (Outcome::RolledBack, _) => format!(
                "{first}: {why}; rolled back: the previous files are back and the MID runs on them{backup}; next: {}",
                next_step(health)
            ),
            (_, true) => format!(
                "{first}: the rollback failed too: {why}{backup}; next: `midfleet facts` shows the MID, `midfleet rollback` restores the backup"
            ),
            _ => format!("{first}: {why}{backup}; next: {}", next_step(health)),
        }
    }
}

impl<'a> Follower<'a> {
    pub(super) fn new(host: &'a HostPlan, reporter: &'a dyn Reporter) -> Follower<'a> {
        Follower {
            host: &host.host,
            reporter,
            lines: 0,
            started: false,
            gone: false,
            dead: false,
            last_step: "none".into(),
            backup: None,
            stage_failure: None,
            outcome: None,
            steps: Vec::new(),
            mark: std::time::Instant::now(),
            log_line: None,
            deciding: None,
            last_failure: None,
            healthy: None,
        }
    }

    /// Takes a chunk of output; the outcome once the run has ended.
    pub(super) fn feed(&mut self, output: &[u8]) -> Option<(Outcome, Option<String>)> {
        for line in String::from_utf8_lossy(output).lines() {
            if let Some(failure) = line.strip_prefix("midfleet-stage failed ") {
                self.stage_failure = Some(failure.to_string());
                continue;
            }
            if line == "midfleet-stage started" {
                self.started = true;
                self.step("stage", "");
                continue;
            }
            if line == "midfleet-stage waiting" {
                continue;
            }
            if line == "midfleet-stage dead" {
                self.dead = true;
                continue;
            }
            if line == "midfleet-stage gone" {
                self.gone = true;
                continue;
            }
            self.lines += 1;
            let mut words = line.splitn(3, ' ');
            let (_time, step, detail) = (
                words.next(),
                words.next().unwrap_or_default(),
                words.next().unwrap_or_default(),
            );
            if step == "health-line" || step == "health-last" {
                self.log_line = log_line(detail);
                continue;
            }
            self.last_step = step.to_string();
            if step != "end" {
                self.step(step, detail);
            }
            if step == "health" {
                if detail.starts_with("fail") {
                    let line = self.log_line.take();
                    if self.deciding.is_none() {
                        self.deciding = line.clone();
                    }
                    self.last_failure = line;
                } else if detail == "ok" {
                    self.healthy = self.log_line.take();
                }
            }
            match step {
                "stop" => self.reporter.host_step(self.host, "stopping"),
                "backup" => {
                    self.backup = Some(detail.to_string());
                    self.reporter.host_step(self.host, "backing up");
                }
                "write" => self.reporter.host_step(self.host, "writing"),
                "start" => self.reporter.host_step(self.host, "starting"),
                "health" if detail.is_empty() || detail == "wait" => {
                    self.reporter.host_step(self.host, "waiting for login")
                }
                "rollback" => self.reporter.host_step(self.host, "rolling back"),
                "result" => {
                    let mut parts = detail.splitn(2, ' ');
                    let word = parts.next().unwrap_or_default();
                    let reason = parts
                        .next()
                        .map(str::to_string)
                        .filter(|reason| !reason.is_empty());
                    if let Some(outcome) = Outcome::parse(word) {
                        let reason = match (outcome, reason) {
                            (Outcome::Stale, Some(reason)) if reason == "wrapper" => Some(
                                "wrapper-override.conf changed since the plan was made; it was left as it is (plan again)"
                                    .to_string(),
                            ),
                            (Outcome::Stale, None) => Some(
                                "config.xml changed since the plan was made; it was left as it is (plan again)"
                                    .to_string(),
                            ),
                            (_, reason) => reason.map(|reason| self.reason(outcome, &reason)),
                        };
                        self.outcome = Some((outcome, reason));
                    }
                }
                "end" => {
                    return self.outcome.clone().or(Some((
                        Outcome::Error,
                        Some("the run ended without a result".into()),
                    )))
                }
                _ => {}
            }
        }
        None
    }

    /// midfleet polled the host again (a reconnect to follow the run): a
    /// step of its own, so the time of the next step is its own.
    pub(super) fn poll(&mut self, what: &str) {
        self.step(what, "");
    }

    /// A step ended now: timed from the end of the one before.
    fn step(&mut self, step: &str, detail: &str) {
        let now = std::time::Instant::now();
        self.steps.push(crate::report::Step {
            step: step.to_string(),
            detail: detail.to_string(),
            seconds: now.duration_since(self.mark).as_secs_f64(),
        });
        self.mark = now;
    }
}

/// The transaction's reason word, with what it means and what to do where
/// the word alone would not say (the refusals that keep root out of what
/// the MID's user can write, `docs/apply.md`). Other reasons as they are.
pub(super) fn explain(reason: &str) -> String {
    // Without GNU dd: the folder not read, by its role (a fixed word).
    let (word, role) = reason.split_once(' ').unwrap_or((reason, ""));
    let gnu = "install GNU coreutils on the host, or log in as the MID's owner";
    match word {
        "no-safe-read" => return format!(
            "{reason}: this host's dd is not GNU's, so a read cannot refuse a link or a FIFO in its open, and {} can be changed by a user other than root and the login (who could swap in a link to a device or a root-only file between a check and the read); nothing was changed (hint: {gnu})",
            unsafe_folder(role)
        ),
        "backup-no-safe-read" => return format!(
            "{reason}: this host's dd is not GNU's, and {}, which the backup had to read, could by then be changed by a user other than root and the login (it passed the check before the stop); the MID was started again on its files, nothing was written (hint: {gnu})",
            unsafe_folder(role)
        ),
        _ => {}
    }
    let (meaning, hint) = match reason {
        "agent-folder-symlink" => (
            "agent/ is reached through a symlink below mid_home; midfleet acts only in real folders there",
            "set mid_home to the real folder that holds agent/",
        ),
        "config-folder-symlink" => (
            "config.xml's folder is reached through a symlink below mid_home",
            "set mid_config to config.xml's real path",
        ),
        "other-file-system" => (
            "config.xml's folder or agent/ is on another file system or mount than mid_home/.midfleet, where midfleet builds each file before one rename puts it in place",
            "keep mid_home/.midfleet on the same mount as agent/",
        ),
        "run-folder-moved" | "midfleet-folder-moved" => (
            "mid_home/.midfleet was moved or replaced while the run started (someone who can write mid_home)",
            "look at who changed mid_home/.midfleet; run again",
        ),
        "midfleet-folder-owner" => (
            "mid_home/.midfleet is not this login's own 0700 folder",
            "remove it (midfleet makes it again) or chown it to the login",
        ),
        "config-not-a-regular-file" => (
            "config.xml is not a regular file (a link, a FIFO, a device), or changed while it was read; nothing read it",
            "make config.xml a regular file again",
        ),
        "config-hard-linked" => (
            "config.xml has more than one hard link, so it may be another file too; nothing was written",
            "give config.xml a single link (copy it, then rename the copy over it)",
        ),
        "wrapper-folder-symlink" => (
            "conf/ beside config.xml is a symlink, or not where config.xml's real folder says; midfleet edits conf/wrapper-override.conf only in a real folder",
            "make conf/ a real folder beside config.xml",
        ),
        "wrapper-folder-missing" => (
            "there is no conf/ folder beside config.xml to hold wrapper-override.conf",
            "restore the MID's conf/ folder, or leave this host out of the `wrapper:` playbook",
        ),
        "wrapper-not-a-regular-file" => (
            "conf/wrapper-override.conf is not a regular file (a link, a FIFO, a device), or changed while it was read; nothing read it",
            "make it a regular file again",
        ),
        "wrapper-hard-linked" => (
            "conf/wrapper-override.conf has more than one hard link, so it may be another file too; nothing was written",
            "give it a single link (copy it, then rename the copy over it)",
        ),
        "mid-sh-missing" => (
            "agent/bin/mid.sh is missing or not a regular file",
            "name the service with mid_service (systemd:UNIT or commands)",
        ),
        "mid-sh-owners" => (
            "mid_home and the files under agent/ belong to more than one user besides root; mid.sh runs as the one user who can change it, and that is not clear",
            "chown mid_home and agent/ to the MID's service user",
        ),
        "mid-sh-writable-by-others" => (
            "mid.sh would run as root, but a folder from / to mid_home, or something under agent/, is writable by others than root",
            "chown agent/ to the MID's service user (mid.sh then runs as that user), or make that path root's alone",
        ),
        "mid-sh-no-setpriv" => (
            "the host has no setpriv, runuser or su to run mid.sh as its owner, and midfleet never runs another user's mid.sh as root",
            "install util-linux, or name the service with mid_service",
        ),
        "mid-sh-other-user" => (
            "mid.sh belongs to another user than this login, which cannot switch to it",
            "set become: yes",
        ),
        "mid-sh-user-unknown" => (
            "the user who owns mid.sh has no passwd entry, so it has no group of its own to run with",
            "give the MID's service user a passwd entry (or bring its directory service back)",
        ),
        "mid-sh-mount-inside" => (
            "mid.sh would run as root, but something is mounted below mid_home, whose files may say any owner",
            "unmount it, or chown agent/ to the MID's service user",
        ),
        "keystore-too-large" => (
            "agent/security or agent/keystore holds more than 1000 entries; a MID's hold a handful, and their backup must end within the run's lease",
            "look at what filled the keystore folders and remove it",
        ),
        "mid-sh-unreadable" => (
            "the owners of mid_home and agent/ could not be read",
            "check that the login can read agent/ (become: yes)",
        ),
        other => return other.to_string(),
    };
    format!("{reason}: {meaning} (hint: {hint})")
}

/// The folder a transaction without GNU dd would not read in, by the role
/// it names in `no-safe-read ROLE` (70-actions.sh, 30-files.sh,
/// 32-wrapper.sh, 35-backup.sh).
fn unsafe_folder(role: &str) -> &'static str {
    match role {
        "config" => "config.xml's folder",
        "logs" => "agent/logs",
        "conf" => "conf/ (wrapper-override.conf's folder)",
        "keystore" => "a folder in agent/security or agent/keystore",
        _ => "a folder holding config.xml, wrapper-override.conf, the MID's logs or its keystore",
    }
}

#[cfg(test)]
mod explain_tests {
    use super::explain;

    #[test]
    pub(super) fn refusals_say_what_they_mean_and_what_to_do() {
        let text = explain("other-file-system");
        assert!(text.starts_with("other-file-system: "), "{text}");
        assert!(text.contains("(hint: "), "{text}");
        assert_eq!(explain("could-not-authenticate"), "could-not-authenticate");
        assert_eq!(explain("restore /x/backups/R"), "restore /x/backups/R");
    }

    /// Without GNU dd, the refusal names the folder it would not read in.
    #[test]
    fn a_refused_read_names_its_folder() {
        for (reason, folder) in [
            ("no-safe-read logs", " agent/logs can be changed"),
            ("no-safe-read config", " config.xml's folder can be changed"),
            (
                "no-safe-read conf",
                " conf/ (wrapper-override.conf's folder) can be",
            ),
            (
                "no-safe-read keystore",
                " a folder in agent/security or agent/keystore can",
            ),
            (
                "backup-no-safe-read keystore",
                " a folder in agent/security or agent/keystore, which the backup",
            ),
        ] {
            let text = explain(reason);
            assert!(text.starts_with(&format!("{reason}: ")), "{text}");
            assert!(text.contains(folder), "{text}");
            assert!(
                text.ends_with(
                    "(hint: install GNU coreutils on the host, or log in as the MID's owner)"
                ),
                "{text}"
            );
        }
    }
}

#[cfg(test)]
mod health_tests {
    use super::{health_failure, log_line};
    use crate::report::LogLine;

    fn refusal() -> LogLine {
        log_line("agent0.log.0 1432 11/27/26 11:45:00 (123) StartupSequencer Could not authenticate user 'svc_mid_a' on the ServiceNow instance.")
            .unwrap()
    }

    #[test]
    fn a_refused_login_names_the_user_and_the_line() {
        assert_eq!(
            health_failure("could-not-authenticate", Some(&refusal())),
            "the instance refused user svc_mid_a (agent0.log.0 line 1432: \"11/27/26 11:45:00 (123) StartupSequencer Could not authenticate user 'svc_mid_a' on the ServiceNow instance.\")"
        );
        assert_eq!(
            health_failure("could-not-authenticate", None),
            "the instance refused the MID's login"
        );
    }

    #[test]
    fn a_line_counted_since_the_start_says_so_and_control_characters_go() {
        let line = log_line("wrapper.log +3 INFO | jvm 1 | x\u{1b}[31mJVM exited").unwrap();
        assert_eq!(line.text, "INFO | jvm 1 | x[31mJVM exited");
        assert_eq!(
            health_failure("not-running", Some(&line)),
            "the MID stopped running after its start (the last line it logged: wrapper.log line 3 since the start: \"INFO | jvm 1 | x[31mJVM exited\")"
        );
        assert_eq!(log_line(""), None);
        // A line number is `N` or `+N`: a host's garbage is no citation.
        assert_eq!(log_line("agent0.log.0 twelve Started"), None);
        assert_eq!(log_line("agent0.log.0 + Started"), None);
    }

    #[test]
    fn an_error_after_which_the_mid_did_not_start_again_is_failed_and_says_so() {
        let host = crate::instance::preflight::tests::host_plan("mid-a", "old", "svc_mid_a", None);
        let reporter = crate::report::Silent;
        let mut follower = super::Follower::new(&host, &reporter);
        let lines = "midfleet-stage started\n\
            1 lock\n1 stop\n1 check ok\n1 backup fail disk\n1 start\n\
            2 health fail not-running\n\
            2 result failed recover-not-running backup-disk\n2 end\n";
        let (outcome, message) = follower.feed(lines.as_bytes()).expect("ended");
        assert_eq!(outcome, super::Outcome::Failed);
        assert_eq!(
            message.as_deref(),
            Some(
                "backup-disk; config.xml was not changed, but the MID, stopped for the run, \
                 did not start again: the MID stopped running after its start, logging nothing; \
                 next: fix the cause (free space, permissions), then start the MID or apply again \
                 (`midfleet facts` shows it)"
            )
        );
    }

    #[test]
    fn each_failure_cites_its_own_line_and_the_backup() {
        let host = crate::instance::preflight::tests::host_plan("mid-a", "old", "svc_mid_a", None);
        let reporter = crate::report::Silent;
        let mut follower = super::Follower::new(&host, &reporter);
        let lines = "midfleet-stage started\n\
            1 lock\n1 stop\n1 check ok\n1 backup /mid/.midfleet/backups/R\n1 write\n1 rename\n1 start\n\
            2 health-line agent0.log.0 12 (…) MIDServer Could not authenticate user 'svc_mid_a' on the ServiceNow instance.\n\
            2 health fail could-not-authenticate\n2 rollback could-not-authenticate\n2 stop\n\
            2 restore /mid/.midfleet/backups/R\n2 start\n\
            3 health-last wrapper.log +2 ERROR | wrapper | JVM exited unexpectedly.\n\
            3 health fail not-running\n\
            3 result failed rollback-not-running /mid/.midfleet/backups/R\n3 end\n";
        let (outcome, message) = follower.feed(lines.as_bytes()).expect("ended");
        assert_eq!(outcome, super::Outcome::Failed);
        assert_eq!(
            message.as_deref(),
            Some(
                "rollback-not-running: the rollback failed too: the MID stopped running \
                 after its start (the last line it logged: wrapper.log line 2 since the start: \
                 \"ERROR | wrapper | JVM exited unexpectedly.\"); the backup is /mid/.midfleet/backups/R on the \
                 host; next: `midfleet facts` shows the MID, `midfleet rollback` restores the backup"
            )
        );
        assert_eq!(
            follower.deciding.as_ref().map(|line| line.line.as_str()),
            Some("12")
        );
        let steps: Vec<&str> = follower
            .steps
            .iter()
            .map(|step| step.step.as_str())
            .collect();
        assert_eq!(
            steps,
            [
                "stage", "lock", "stop", "check", "backup", "write", "rename", "start", "health",
                "rollback", "stop", "restore", "start", "health", "result"
            ]
        );
    }
}
