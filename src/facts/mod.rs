//! What one read of a host yields: the remote script that gathers it in a
//! single exec, and the pure parser of its reply.
//!
//! The script takes its parameters as shell-quoted assignments at its top
//! and arrives on stdin, so no path or name ever sits on a remote command
//! line. The reply is framed: header lines, and length-prefixed raw blobs
//! for file contents (no encoding, no size guessing). Must not: decide
//! anything — planning reads these facts.

pub mod gather;

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config_xml::MAX_CONFIG_BYTES;
use crate::inventory::{Host, ServiceSpec};
use crate::transport::shell_quote;

/// The first line of every reply; a different one is refused.
const MAGIC: &str = "midfleet-facts 1";
/// Replies larger than this are refused (a config.xml is refused past
/// 4 MiB by the script itself; state and journal are small).
pub const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;

/// The facts script for `host`.
pub fn script(host: &Host) -> String {
    let (kind, unit, status) = match &host.service {
        ServiceSpec::Auto => ("auto", "", ""),
        ServiceSpec::MidSh => ("mid.sh", "", ""),
        ServiceSpec::Systemd { unit } => ("systemd", unit.as_str(), ""),
        ServiceSpec::Commands { status, .. } => ("commands", "", status.as_str()),
    };
    format!(
        "MID_HOME={}\nCONFIG={}\nSERVICE_KIND={}\nSERVICE_UNIT={}\nSTATUS_COMMAND={}\nMAX_CONFIG={}\n{}",
        shell_quote(&host.mid_home),
        shell_quote(&host.config),
        shell_quote(kind),
        shell_quote(unit),
        shell_quote(status),
        MAX_CONFIG_BYTES,
        *SENT_SCRIPT
    )
}

/// The facts read's script after its assignments: the transaction's
/// `swap_proof` part (one function, shared so that both judge a path
/// alike), then facts.sh.
pub const SCRIPT: &str = concat!(
    include_str!("../apply/transaction/22-swap-proof.sh"),
    include_str!("facts.sh")
);

/// [`SCRIPT`] as it goes to every host: [`without_comments`], made once.
static SENT_SCRIPT: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| without_comments(SCRIPT));

/// The script without its comment lines, as it goes to every host: 13 KB
/// where the commented file is 24 KB, so that it fits a TCP connection's
/// first flight (10 segments) on a real network. (Its lines that begin
/// with `#` are all comments: none is inside a string or a here-document.)
fn without_comments(script: &str) -> String {
    script
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .flat_map(|line| [line, "\n"])
        .collect()
}

/// A file as read on the host.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct RemoteFile {
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// Lowercase hex SHA-256 of `bytes`, computed here from what arrived.
    pub sha256: String,
    pub uid: u32,
    pub gid: u32,
    pub owner: String,
    pub group: String,
    /// Permission bits, e.g. `0o600`.
    pub mode: u32,
}

impl fmt::Debug for RemoteFile {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The bytes may hold a plaintext password: never in Debug output.
        formatter
            .debug_struct("RemoteFile")
            .field("bytes", &self.bytes.len())
            .field("sha256", &self.sha256)
            .field("owner", &self.owner)
            .field("group", &self.group)
            .field("mode", &format_args!("{:o}", self.mode))
            .finish()
    }
}

/// Why config.xml could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "problem", content = "detail")]
pub enum ConfigProblem {
    Missing,
    Unreadable,
    NotAFile,
    Symlink(String),
    TooLarge(u64),
    /// Not read: the host's dd is not GNU's, so the read could not refuse
    /// a link or a FIFO swapped in, and a user other than root and the
    /// login can change the file's folder.
    UnsafeRead,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigProblem::Missing => formatter.write_str("config.xml does not exist"),
            ConfigProblem::Unreadable => {
                formatter.write_str("config.xml is not readable (permission; set become?)")
            }
            ConfigProblem::NotAFile => formatter.write_str("config.xml is not a regular file"),
            ConfigProblem::Symlink(target) => write!(
                formatter,
                "config.xml is a symlink (to {target}); midfleet edits only regular files"
            ),
            ConfigProblem::UnsafeRead => formatter.write_str(
                "config.xml was not read: a user other than root and the login can change \
                 its folder, and this host's dd is not GNU's, so a link or FIFO \
                 swapped in could not be refused (a device's open alone can act) \
                 (hint: install GNU coreutils on the host, or log in as the MID's owner)",
            ),
            ConfigProblem::TooLarge(size) => write!(
                formatter,
                "config.xml is {size} bytes, more than the {MAX_CONFIG_BYTES} accepted"
            ),
        }
    }
}

/// The state of the MID service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceFacts {
    /// `systemd`, `mid.sh` or `commands`: how it is started and stopped.
    pub kind: String,
    /// The systemd unit, when `kind` is `systemd`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// `running`, `stopped`, `missing` (no mid.sh / unknown unit), or
    /// `unsafe` (its pid file or mid.shconf not read: no GNU dd, and a
    /// user other than root and the login can change their folder).
    pub state: String,
}

impl ServiceFacts {
    pub fn is_running(&self) -> bool {
        self.state == "running"
    }
}

/// Everything one read of a host yields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Facts {
    /// The uid the script ran as (0 with become).
    pub uid: u32,
    pub config: Result<RemoteFile, ConfigProblem>,
    /// `conf/wrapper-override.conf` beside config.xml, read with the same
    /// care (its problems name config.xml's kinds: missing, symlink, …).
    pub wrapper: Result<RemoteFile, ConfigProblem>,
    pub service: ServiceFacts,
    /// `.midfleet/state.json`, when present.
    #[serde(skip)]
    pub state: Option<Vec<u8>>,
    /// `.midfleet/journal`, when present: a transaction did not finish.
    #[serde(skip)]
    pub journal: Option<Vec<u8>>,
    /// `.midfleet/config.after`: config.xml once the MID had started after
    /// midfleet's last write.
    #[serde(skip)]
    pub after: Option<Vec<u8>>,
    /// `.midfleet/lock`: `RUN DEADLINE` of a run holding the host.
    #[serde(skip)]
    pub lock: Option<Vec<u8>>,
    /// Backup folders under `.midfleet/backups/`, oldest first.
    pub backups: Vec<String>,
    /// The newest backup that differs from config.xml (what `rollback`
    /// restores), and its config.xml.
    pub backup_chosen: Option<String>,
    #[serde(skip)]
    pub backup_config: Option<Vec<u8>>,
    /// The chosen backup's wrapper-override.conf, when it holds one.
    #[serde(skip)]
    pub backup_wrapper: Option<Vec<u8>>,
    /// The host's clock (epoch seconds), for lock leases.
    pub time: Option<u64>,
    /// Folders a change writes to that the script's user cannot write:
    /// `midfleet-folder` (`.midfleet`, or mid_home to make it) and
    /// `config-folder`. Empty when both are writable.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_writable: Vec<String>,
    /// Test failpoints set on the host (`.midfleet/failpoints/`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failpoints: Vec<String>,
    /// What the agent folder shows of the MID's kind.
    pub markers: Markers,
}

/// What the agent folder (config.xml's folder) shows of the kind of MID
/// (docs/mid-server.md, "Kinds of MID"): names only, read through no link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Markers {
    /// `.container`: the container recipe's marker.
    pub container: bool,
    /// `.initialized`: the container recipe's init has run.
    pub initialized: bool,
    /// `work/upgrade_temp/` is not empty: the MID's upgrader is extracting
    /// a new version.
    pub upgrade_temp: bool,
}

/// Why a reply could not be understood. Never holds reply bytes: they may
/// include a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected reply from the facts script: {0}")]
pub struct ReplyError(pub String);

/// Parses the script's reply.
pub fn parse(reply: &[u8]) -> Result<Facts, ReplyError> {
    if reply.len() > MAX_REPLY_BYTES {
        return Err(ReplyError(format!(
            "{} bytes, more than the {MAX_REPLY_BYTES} accepted",
            reply.len()
        )));
    }
    let mut reader = Reader {
        bytes: reply,
        at: 0,
    };
    let magic = reader.line()?;
    if magic != MAGIC {
        return Err(ReplyError(format!("it does not start with `{MAGIC}`")));
    }
    let mut uid = None;
    let mut config_stat: Option<(u32, u32, u32, String, String)> = None;
    let mut config_bytes: Option<Vec<u8>> = None;
    let mut config_problem = None;
    let mut wrapper_stat: Option<(u32, u32, u32, String, String)> = None;
    let mut wrapper_bytes: Option<Vec<u8>> = None;
    let mut wrapper_problem = None;
    let mut backup_wrapper = None;
    let mut service = None;
    let mut state = None;
    let mut journal = None;
    let mut after = None;
    let mut lock = None;
    let mut backups = Vec::new();
    let mut backup_config = None;
    let mut backup_chosen = None;
    let mut time = None;
    let mut not_writable = Vec::new();
    let mut failpoints = Vec::new();
    let mut markers = Markers::default();
    // Lines that say one thing once: a second one is not the script's (a
    // name it printed carried a line break, or bytes came unframed).
    let mut once = std::collections::HashSet::new();
    loop {
        let line = reader.line()?;
        let mut words = line.split(' ');
        let keyword = words.next().unwrap_or_default();
        let rest: Vec<&str> = words.collect();
        let key = match (keyword, rest.first()) {
            ("backup" | "failpoint" | "not-writable" | "marker", _) => None,
            ("blob", Some(name)) => Some(format!("blob {name}")),
            _ => Some(keyword.to_string()),
        };
        if let Some(key) = key {
            if !once.insert(key.clone()) {
                return Err(ReplyError(format!("`{}` twice", printable(&key))));
            }
        }
        match (keyword, rest.as_slice()) {
            ("end", []) => break,
            ("uid", [value]) => uid = Some(number(value)?),
            ("time", [value]) => time = value.parse::<u64>().ok(),
            ("backup", [name]) => backups.push(name.to_string()),
            ("failpoint", [point @ ("backup" | "write" | "rename" | "start")]) => {
                failpoints.push(point.to_string())
            }
            ("not-writable", [what @ ("midfleet-folder" | "config-folder")]) => {
                not_writable.push(what.to_string())
            }
            ("marker", ["container"]) => markers.container = true,
            ("marker", ["initialized"]) => markers.initialized = true,
            ("marker", ["upgrade-temp"]) => markers.upgrade_temp = true,
            ("backup-chosen", [name]) => backup_chosen = Some(name.to_string()),
            ("config-stat", [uid, gid, mode, owner, group]) => {
                config_stat = Some(file_stat(uid, gid, mode, owner, group)?)
            }
            ("wrapper-stat", [uid, gid, mode, owner, group]) => {
                wrapper_stat = Some(file_stat(uid, gid, mode, owner, group)?)
            }
            ("wrapper-missing", []) => wrapper_problem = Some(ConfigProblem::Missing),
            ("wrapper-unreadable", []) => wrapper_problem = Some(ConfigProblem::Unreadable),
            ("wrapper-not-a-file", []) => wrapper_problem = Some(ConfigProblem::NotAFile),
            ("wrapper-unsafe", []) => wrapper_problem = Some(ConfigProblem::UnsafeRead),
            ("wrapper-symlink", _) => {
                wrapper_problem = Some(ConfigProblem::Symlink(rest.join(" ")))
            }
            ("wrapper-too-large", [size]) => {
                wrapper_problem = Some(ConfigProblem::TooLarge(file_size(size)?))
            }
            ("config-missing", []) => config_problem = Some(ConfigProblem::Missing),
            ("config-unreadable", []) => config_problem = Some(ConfigProblem::Unreadable),
            ("config-not-a-file", []) => config_problem = Some(ConfigProblem::NotAFile),
            ("config-unsafe", []) => config_problem = Some(ConfigProblem::UnsafeRead),
            ("config-symlink", _) => config_problem = Some(ConfigProblem::Symlink(rest.join(" "))),
            ("config-too-large", [size]) => {
                config_problem = Some(ConfigProblem::TooLarge(file_size(size)?))
            }
            ("service", [kind, unit, state]) => {
                service = Some(ServiceFacts {
                    kind: kind.to_string(),
                    unit: (*unit != "-").then(|| unit.to_string()),
                    state: state.to_string(),
                })
            }
            ("blob", [name, length]) => {
                let length: usize = number(length)? as usize;
                let bytes = reader.blob(length)?;
                match *name {
                    "config" => config_bytes = Some(bytes),
                    "state" => state = Some(bytes),
                    "journal" => journal = Some(bytes),
                    "after" => after = Some(bytes),
                    "lock" => lock = Some(bytes),
                    "backup-config" => backup_config = Some(bytes),
                    "wrapper" => wrapper_bytes = Some(bytes),
                    "backup-wrapper" => backup_wrapper = Some(bytes),
                    other => return Err(ReplyError(format!("unknown blob `{other}`"))),
                }
            }
            _ => return Err(ReplyError(format!("unknown line `{}`", printable(&line)))),
        }
    }
    if reader.at != reply.len() {
        return Err(ReplyError("bytes after `end`".into()));
    }
    let config = match (config_problem, config_bytes, config_stat) {
        (Some(problem), _, _) => Err(problem),
        (None, Some(bytes), Some((uid, gid, mode, owner, group))) => Ok(RemoteFile {
            sha256: sha256_hex(&bytes),
            bytes,
            uid,
            gid,
            owner,
            group,
            mode,
        }),
        _ => return Err(ReplyError("no config.xml contents or status".into())),
    };
    // An older reply (or a config.xml problem before it) says nothing of
    // the wrapper file: missing.
    let wrapper = match (wrapper_problem, wrapper_bytes, wrapper_stat) {
        (Some(problem), _, _) => Err(problem),
        (None, Some(bytes), Some((uid, gid, mode, owner, group))) => Ok(RemoteFile {
            sha256: sha256_hex(&bytes),
            bytes,
            uid,
            gid,
            owner,
            group,
            mode,
        }),
        (None, None, None) => Err(ConfigProblem::Missing),
        _ => {
            return Err(ReplyError(
                "wrapper-override.conf's contents without its status".into(),
            ))
        }
    };
    Ok(Facts {
        uid: uid.ok_or_else(|| ReplyError("no uid".into()))?,
        config,
        wrapper,
        service: service.ok_or_else(|| ReplyError("no service state".into()))?,
        state,
        journal,
        after,
        lock,
        backups,
        backup_chosen,
        backup_config,
        backup_wrapper,
        time,
        not_writable,
        failpoints,
        markers,
    })
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A `config-stat` or `wrapper-stat` line's owner and mode: (uid, gid,
/// mode, owner, group).
fn file_stat(
    uid: &str,
    gid: &str,
    mode: &str,
    owner: &str,
    group: &str,
) -> Result<(u32, u32, u32, String, String), ReplyError> {
    let mode =
        u32::from_str_radix(mode, 8).map_err(|_| ReplyError(format!("bad mode `{mode}`")))?;
    Ok((
        number(uid)?,
        number(gid)?,
        mode,
        owner.to_string(),
        group.to_string(),
    ))
}

/// A `config-too-large` or `wrapper-too-large` line's size: a size, not an
/// id, so a file past 4 GiB is still "too large", not an unreadable reply.
fn file_size(text: &str) -> Result<u64, ReplyError> {
    text.parse::<u64>()
        .map_err(|_| ReplyError(format!("`{}` is not a number", printable(text))))
}

fn number(text: &str) -> Result<u32, ReplyError> {
    text.parse()
        .map_err(|_| ReplyError(format!("`{}` is not a number", printable(text))))
}

/// At most 60 printable characters of a reply line, for messages.
fn printable(text: &str) -> String {
    text.chars()
        .take(60)
        .map(|character| {
            if character.is_control() {
                '?'
            } else {
                character
            }
        })
        .collect()
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn line(&mut self) -> Result<String, ReplyError> {
        let rest = &self.bytes[self.at..];
        let end = rest
            .iter()
            .take(4096)
            .position(|byte| *byte == b'\n')
            .ok_or_else(|| {
                ReplyError("a header line is missing or too long (was the reply cut short?)".into())
            })?;
        self.at += end + 1;
        String::from_utf8(rest[..end].to_vec())
            .map_err(|_| ReplyError("a header line is not UTF-8".into()))
    }

    fn blob(&mut self, length: usize) -> Result<Vec<u8>, ReplyError> {
        let end = self
            .at
            .checked_add(length)
            .filter(|end| *end < self.bytes.len())
            .ok_or_else(|| ReplyError("a blob is cut short".into()))?;
        if self.bytes[end] != b'\n' {
            return Err(ReplyError(
                "a blob is not followed by a newline (did the file change while read?)".into(),
            ));
        }
        let blob = self.bytes[self.at..end].to_vec();
        self.at = end + 1;
        Ok(blob)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    use super::*;

    /// What goes to a host is the script without its comments, small
    /// enough for a TCP connection's first flight (10 segments of 1460
    /// bytes), and still the whole script: every other line is there.
    #[test]
    fn the_script_sent_has_no_comment_and_fits_a_first_flight() {
        let directory = tempfile::tempdir().unwrap();
        let sent = script(&host(directory.path()));
        assert!(sent.len() < 10 * 1460, "{} bytes", sent.len());
        assert!(sent.lines().all(|line| !line.trim_start().starts_with('#')));
        let code: Vec<&str> = SCRIPT
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .collect();
        assert!(sent.ends_with(&format!("{}\n", code.join("\n"))));
    }

    /// Runs the facts script with the local `sh`, as sshd would.
    fn run_locally(host: &Host) -> Vec<u8> {
        run_with_path(host, None)
    }

    fn host(mid_home: &std::path::Path) -> Host {
        Host {
            name: "lab".into(),
            address: "lab".into(),
            port: None,
            user: None,
            identity_file: None,
            become_root: false,
            become_user: None,
            jump: Vec::new(),
            connect_timeout: None,
            mid_home: mid_home.display().to_string(),
            config: mid_home.join("agent/config.xml").display().to_string(),
            mid_cluster: None,
            service: ServiceSpec::Auto,
            groups: Vec::new(),
            template_context: Default::default(),
            vaulted: Default::default(),
        }
    }

    fn agent(running: bool) -> tempfile::TempDir {
        // A mid_home whose path holds a quote, a space and `$(…)`: data.
        let directory = tempfile::Builder::new()
            .prefix("mid 'home' $(id)")
            .tempdir()
            .unwrap();
        let bin = directory.path().join("agent/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(directory.path().join("agent/work")).unwrap();
        // The facts read must never run it (the MID's user may write it):
        // if it ran, it would leave a mark and claim the opposite state.
        let status = if running { 3 } else { 0 };
        std::fs::write(
            bin.join("mid.sh"),
            format!("#!/bin/sh\ntouch \"$(dirname \"$0\")/ran\"\nexit {status}\n"),
        )
        .unwrap();
        std::fs::set_permissions(bin.join("mid.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        // The wrapper's pid file: this test process while "running"; a
        // pid no process has (beyond pid_max) while "stopped".
        let pid = if running {
            std::process::id()
        } else {
            4_194_305
        };
        std::fs::write(
            directory.path().join("agent/work/mid.pid"),
            format!("{pid}\n"),
        )
        .unwrap();
        directory
    }

    #[test]
    fn the_state_of_a_mid_sh_mid_comes_from_its_pid_file_and_nothing_in_agent_runs() {
        for running in [true, false] {
            let home = agent(running);
            let facts = parse(&run_locally(&host(home.path()))).unwrap();
            let expected = if running { "running" } else { "stopped" };
            assert_eq!(facts.service.state, expected);
            assert!(
                !home.path().join("agent/bin/ran").exists(),
                "the facts read ran agent/bin/mid.sh"
            );
        }
        // No pid file: stopped; no mid.sh at all: missing.
        let home = agent(true);
        std::fs::remove_file(home.path().join("agent/work/mid.pid")).unwrap();
        assert_eq!(
            parse(&run_locally(&host(home.path())))
                .unwrap()
                .service
                .state,
            "stopped"
        );
        std::fs::remove_file(home.path().join("agent/bin/mid.sh")).unwrap();
        assert_eq!(
            parse(&run_locally(&host(home.path())))
                .unwrap()
                .service
                .state,
            "missing"
        );
    }

    /// The facts script run locally, with `bin` (when given) first on its
    /// PATH.
    fn run_with_path(host: &Host, bin: Option<&std::path::Path>) -> Vec<u8> {
        let mut command = Command::new("sh");
        command.arg("-s");
        if let Some(bin) = bin {
            command.env(
                "PATH",
                format!(
                    "{}:{}",
                    bin.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            );
        }
        let mut child = command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script(host).as_bytes())
            .unwrap();
        child.wait_with_output().unwrap().stdout
    }

    #[test]
    fn app_name_picks_only_a_systemd_unit_that_runs_this_mid() {
        // A systemd host, as far as the script can tell: /run/systemd/system
        // (made here only when missing, and removed again) and a systemctl
        // that knows two units: `mid`, which runs this MID's agent folder,
        // and `sshd`, which does not.
        let marker = std::path::Path::new("/run/systemd/system");
        let made = !marker.exists() && std::fs::create_dir_all(marker).is_ok();
        if !marker.exists() {
            eprintln!("cannot make /run/systemd/system here: skipped");
            return;
        }
        let home = agent(true);
        let bin = tempfile::tempdir().unwrap();
        let agent_bin = home.path().join("agent/bin");
        // (mid_home's name holds quotes: the unit's text is in a file.)
        std::fs::write(
            bin.path().join("mid.show"),
            format!(
                "ExecStart={{ path={bin}/mid.sh ; argv[]={bin}/mid.sh start }}\n",
                bin = agent_bin.display()
            ),
        )
        .unwrap();
        std::fs::write(
            bin.path().join("systemctl"),
            "#!/bin/sh\nfor a; do last=$a; done\ncase \"$1 $last\" in\n\
             'cat mid.service' | 'cat sshd.service') exit 0 ;;\n\
             'show mid.service') cat \"$(dirname \"$0\")/mid.show\" ;;\n\
             'show sshd.service') echo 'ExecStart={ path=/usr/sbin/sshd ; argv[]=/usr/sbin/sshd -D }' ;;\n\
             'cat other.service') exit 0 ;;\n\
             'show other.service') sed 's#=#=/srv#g' \"$(dirname \"$0\")/mid.show\" ;;\n\
             'is-active '*) exit 0 ;;\n\
             *) exit 1 ;;\nesac\n",
        )
        .unwrap();
        std::fs::set_permissions(
            bin.path().join("systemctl"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let service = |app: &str| {
            std::fs::write(
                agent_bin.join("mid.shconf_override"),
                // The last APP_NAME line counts, as the wrapper reads it.
                format!("APP_NAME=sshd\nAPP_NAME=\"{app}\"\nWRAPPER_CONF=x\n"),
            )
            .unwrap();
            parse(&run_with_path(&host(home.path()), Some(bin.path())))
                .unwrap()
                .service
        };
        let mid = service("mid");
        let sshd = service("sshd");
        // A unit of another folder whose path merely ends like this one's.
        let other = service("other");
        if made {
            let _ = std::fs::remove_dir(marker);
        }
        assert_eq!(
            (mid.kind.as_str(), mid.unit.as_deref()),
            ("systemd", Some("mid"))
        );
        // The MID's user wrote APP_NAME=sshd: never a unit root would stop.
        assert_eq!((sshd.kind.as_str(), sshd.unit), ("mid.sh", None));
        assert_eq!((other.kind.as_str(), other.unit), ("mid.sh", None));
    }

    #[test]
    fn a_midfleet_folder_the_mid_user_planted_is_not_read() {
        let home = agent(true);
        std::fs::write(home.path().join("agent/config.xml"), "<parameters/>").unwrap();
        // A link in .midfleet's place: its journal is someone else's file.
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join("journal"), b"planted\n").unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), home.path().join(".midfleet")).unwrap();
        let facts = parse(&run_locally(&host(home.path()))).unwrap();
        assert_eq!(facts.journal, None);
        // agent/ itself a link below mid_home: reported as a linked config.
        let home = agent(true);
        let real = tempfile::tempdir().unwrap();
        std::fs::write(real.path().join("config.xml"), "<parameters/>").unwrap();
        std::fs::rename(home.path().join("agent"), home.path().join("agent.real")).unwrap();
        std::os::unix::fs::symlink(real.path(), home.path().join("agent")).unwrap();
        let facts = parse(&run_locally(&host(home.path()))).unwrap();
        assert!(
            matches!(facts.config, Err(ConfigProblem::Symlink(_))),
            "{:?}",
            facts.config
        );
    }

    #[test]
    fn the_script_reads_config_service_and_state_in_one_reply() {
        let home = agent(true);
        let config = b"<parameters>\n<parameter name=\"url\" value=\"x\"/>\n</parameters>\n\n";
        std::fs::write(home.path().join("agent/config.xml"), config).unwrap();
        std::fs::set_permissions(
            home.path().join("agent/config.xml"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        std::fs::create_dir_all(home.path().join(".midfleet")).unwrap();
        std::fs::write(home.path().join(".midfleet/journal"), b"step stop\n").unwrap();
        let facts = parse(&run_locally(&host(home.path()))).unwrap();
        let file = facts.config.as_ref().unwrap();
        assert_eq!(file.bytes, config);
        assert_eq!(file.sha256, sha256_hex(config));
        assert_eq!(file.mode, 0o640);
        assert_eq!(
            facts.service,
            ServiceFacts {
                kind: "mid.sh".into(),
                unit: None,
                state: "running".into()
            }
        );
        assert_eq!(facts.journal.as_deref(), Some(&b"step stop\n"[..]));
        assert_eq!(facts.state, None);
    }

    #[test]
    fn missing_symlinked_and_stopped() {
        let home = agent(false);
        let facts = parse(&run_locally(&host(home.path()))).unwrap();
        assert_eq!(facts.config, Err(ConfigProblem::Missing));
        assert_eq!(facts.service.state, "stopped");
        std::fs::write(home.path().join("elsewhere.xml"), "<parameters/>").unwrap();
        std::os::unix::fs::symlink(
            home.path().join("elsewhere.xml"),
            home.path().join("agent/config.xml"),
        )
        .unwrap();
        let facts = parse(&run_locally(&host(home.path()))).unwrap();
        assert!(
            matches!(facts.config, Err(ConfigProblem::Symlink(_))),
            "{:?}",
            facts.config
        );
    }

    #[test]
    fn garbage_and_truncated_replies_are_refused_without_panic() {
        let home = agent(true);
        std::fs::write(home.path().join("agent/config.xml"), "<parameters/>").unwrap();
        let good = run_locally(&host(home.path()));
        assert!(parse(&good).is_ok());
        for cut in 0..good.len() {
            assert!(
                parse(&good[..cut]).is_err(),
                "a reply cut at {cut} must be refused"
            );
        }
        for garbage in [
            &b""[..],
            b"hello\n",
            b"midfleet-facts 1\nblob config 99999999999\n",
            b"midfleet-facts 1\nuid x\nend\n",
        ] {
            assert!(parse(garbage).is_err());
        }
        let mut extended = good.clone();
        extended.extend_from_slice(b"more");
        assert!(parse(&extended).is_err());
    }

    #[test]
    fn the_kind_markers_are_names_in_the_agent_folder_never_through_a_link() {
        let home = agent(true);
        let folder = home.path().join("agent");
        std::fs::write(folder.join("config.xml"), "<parameters/>").unwrap();
        let markers =
            |home: &tempfile::TempDir| parse(&run_locally(&host(home.path()))).unwrap().markers;
        assert_eq!(markers(&home), Markers::default());
        // An empty upgrade_temp/ is no upgrade; a file in it is.
        std::fs::create_dir_all(folder.join("work/upgrade_temp")).unwrap();
        assert!(!markers(&home).upgrade_temp);
        std::fs::write(folder.join("work/upgrade_temp/mid-core.zip"), b"x").unwrap();
        std::fs::write(folder.join(".container"), b"ContainerDeploymentName=mid\n").unwrap();
        std::fs::write(folder.join(".initialized"), b"").unwrap();
        assert_eq!(
            markers(&home),
            Markers {
                container: true,
                initialized: true,
                upgrade_temp: true
            }
        );
        // upgrade_temp a link to a full folder: not followed, no upgrade.
        std::fs::remove_dir_all(folder.join("work/upgrade_temp")).unwrap();
        let full = tempfile::tempdir().unwrap();
        std::fs::write(full.path().join("x"), b"x").unwrap();
        std::os::unix::fs::symlink(full.path(), folder.join("work/upgrade_temp")).unwrap();
        assert!(!markers(&home).upgrade_temp);
        // A dangling link named .container is still the name (not opened).
        std::fs::remove_file(folder.join(".container")).unwrap();
        std::os::unix::fs::symlink("/nonexistent", folder.join(".container")).unwrap();
        assert!(markers(&home).container);
    }

    #[test]
    fn a_config_past_four_gib_is_too_large_not_unreadable() {
        let reply = b"midfleet-facts 1\nuid 0\nconfig-too-large 5000000000\nservice mid.sh - running\nend\n";
        let facts = parse(reply).expect("a well-formed reply");
        assert_eq!(facts.config, Err(ConfigProblem::TooLarge(5_000_000_000)));
    }

    #[test]
    fn the_script_reads_the_wrapper_file_beside_config_and_never_through_a_link() {
        let home = agent(true);
        let conf = home.path().join("agent/conf");
        let file = conf.join("wrapper-override.conf");
        let wrapper = || parse(&run_locally(&host(home.path()))).unwrap().wrapper;
        let refused_as_link = || {
            let read = wrapper();
            assert!(matches!(read, Err(ConfigProblem::Symlink(_))), "{read:?}");
        };
        std::fs::write(home.path().join("agent/config.xml"), "<parameters/>").unwrap();
        // No conf/ folder: missing.
        assert_eq!(wrapper(), Err(ConfigProblem::Missing));
        std::fs::create_dir_all(&conf).unwrap();
        let shipped = b"# heap\r\nwrapper.java.maxmemory=1024";
        std::fs::write(&file, shipped).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o604)).unwrap();
        let read = wrapper().unwrap();
        assert_eq!(read.bytes, shipped);
        assert_eq!(read.sha256, sha256_hex(shipped));
        assert_eq!(read.mode, 0o604);
        // The file a link: refused, never read.
        std::fs::write(home.path().join("elsewhere.conf"), "wrapper.x=1\n").unwrap();
        std::fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink(home.path().join("elsewhere.conf"), &file).unwrap();
        refused_as_link();
        // conf/ itself a link: refused too.
        std::fs::remove_file(&file).unwrap();
        std::fs::rename(&conf, home.path().join("conf.real")).unwrap();
        std::fs::write(home.path().join("conf.real/wrapper-override.conf"), shipped).unwrap();
        std::os::unix::fs::symlink(home.path().join("conf.real"), &conf).unwrap();
        refused_as_link();
        // A FIFO in its place: not a file (and the read does not block).
        std::fs::remove_file(&conf).unwrap();
        std::fs::create_dir_all(&conf).unwrap();
        let fifo = std::ffi::CString::new(file.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo on a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert_eq!(wrapper(), Err(ConfigProblem::NotAFile));
    }
}
