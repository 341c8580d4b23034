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
            self.last_step = step.to_string();
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
                            (Outcome::Stale, None) => Some(
                                "config.xml changed since the plan was made; it was left as it is (plan again)"
                                    .to_string(),
                            ),
                            (_, reason) => reason.map(|reason| explain(&reason)),
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
}

/// The transaction's reason word, with what it means and what to do where
/// the word alone would not say (the refusals that keep root out of what
/// the MID's user can write, `docs/apply.md`). Other reasons as they are.
pub(super) fn explain(reason: &str) -> String {
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
}
