//! Strict host key checking against OpenSSH `known_hosts` files (hashed
//! entries and `[host]:port` included, through libssh2's parser), and
//! recording a first-seen key when the operator asked for it.
//!
//! libssh2 knows no markers: it would read `@revoked` or `@cert-authority`
//! as a host name. So each line is read here first, and only plain lines
//! reach libssh2. `@revoked HOSTS KEY` refuses that key for those hosts
//! (OpenSSH patterns, `!` negation and hashed names included), before and
//! whatever any other line accepts. `@cert-authority` (host certificates)
//! is not supported: such lines are reported and skipped, and a host only
//! a CA line vouches for is refused with that reason.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine;
use serde::Serialize;
use ssh2::{CheckResult, HostKeyType, KnownHostFileKind, Session};

use super::error::{FailureKind, TransportError};

/// Where keys are checked, and whether unknown ones may be recorded.
#[derive(Debug, Clone)]
pub struct KnownHostsPolicy {
    /// Files read, in order (the user's file, then the system one).
    pub files: Vec<PathBuf>,
    /// The file new keys are appended to (`--accept-new-host-keys`).
    pub user_file: PathBuf,
    /// Record keys seen for the first time (never a changed key).
    pub accept_new: bool,
}

impl KnownHostsPolicy {
    /// `~/.ssh/known_hosts` and `/etc/ssh/ssh_known_hosts`, or only `file`
    /// when `--known-hosts FILE` is given.
    pub fn new(explicit: Option<&Path>, accept_new: bool) -> KnownHostsPolicy {
        match explicit {
            Some(file) => KnownHostsPolicy {
                files: vec![file.to_path_buf()],
                user_file: file.to_path_buf(),
                accept_new,
            },
            None => {
                let user_file = super::home_directory().join(".ssh/known_hosts");
                KnownHostsPolicy {
                    files: vec![user_file.clone(), PathBuf::from("/etc/ssh/ssh_known_hosts")],
                    user_file,
                    accept_new,
                }
            }
        }
    }
}

impl KnownHostsPolicy {
    /// The lines of the files midfleet does not use, each as
    /// `FILE:LINE: why`, for the operator to be told once per run.
    pub fn unsupported_lines(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for file in &self.files {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            for (index, line) in text.lines().enumerate() {
                let why = match parse_line(line) {
                    Some(Entry::CertAuthority { .. }) => {
                        "@cert-authority (host certificates) is not supported by midfleet; the line is ignored, \
                         so list the host keys themselves"
                            .to_string()
                    }
                    Some(Entry::Unsupported { reason }) => format!("{reason}; the line is ignored"),
                    _ => continue,
                };
                problems.push(format!("{}:{}: {why}", file.display(), index + 1));
            }
        }
        problems
    }
}

/// One line of a `known_hosts` file, as far as midfleet reads it itself.
#[derive(Debug, PartialEq, Eq)]
enum Entry<'a> {
    /// An ordinary line, given to libssh2 as it is.
    Plain(&'a str),
    /// `@revoked HOSTS TYPE KEY`: the key (its wire blob) is refused for
    /// the hosts.
    Revoked {
        hosts: &'a str,
        key_type: &'a str,
        key: Vec<u8>,
    },
    /// `@cert-authority HOSTS TYPE KEY`: a CA for host certificates.
    CertAuthority { hosts: &'a str },
    /// Another marker, or a marker line that cannot be read.
    Unsupported { reason: String },
}

/// Reads one line; `None` for a blank line or a comment.
fn parse_line(line: &str) -> Option<Entry<'_>> {
    let line = line.trim_start();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    if !line.starts_with('@') {
        return Some(Entry::Plain(line));
    }
    let mut fields = line.split_ascii_whitespace();
    let marker = fields.next().unwrap_or_default();
    let (hosts, key_type, key) = (fields.next(), fields.next(), fields.next());
    match marker {
        "@revoked" => {
            let (Some(hosts), Some(key_type), Some(key)) = (hosts, key_type, key) else {
                return Some(Entry::Unsupported {
                    reason: "this @revoked line has no host, key type or key".to_string(),
                });
            };
            match base64::engine::general_purpose::STANDARD.decode(key) {
                Ok(key) => Some(Entry::Revoked {
                    hosts,
                    key_type,
                    key,
                }),
                Err(_) => Some(Entry::Unsupported {
                    reason: "the key of this @revoked line is not base64".to_string(),
                }),
            }
        }
        "@cert-authority" => Some(Entry::CertAuthority {
            hosts: hosts.unwrap_or_default(),
        }),
        other => Some(Entry::Unsupported {
            reason: format!(
                "unknown marker `{}`",
                other.chars().take(40).collect::<String>()
            ),
        }),
    }
}

/// OpenSSH's `match_pattern`: `*` any run of characters, `?` one.
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            backtrack = Some((p, t));
            p += 1;
        } else if let Some((star, matched)) = backtrack {
            p = star + 1;
            t = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&byte| byte == b'*')
}

/// OpenSSH's `match_hostname` on a plain (not hashed) list: a negated
/// pattern that matches wins over everything, else any pattern.
fn plain_hosts_match(patterns: &str, name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let mut matched = false;
    for pattern in patterns.split(',') {
        let pattern = pattern.to_ascii_lowercase();
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(rest) => (true, rest.to_string()),
            None => (false, pattern),
        };
        if wildcard_match(pattern.as_bytes(), name.as_bytes()) {
            if negated {
                return false;
            }
            matched = true;
        }
    }
    matched
}

/// Whether a line's host field names `address:port`. Hashed names
/// (`|1|salt|hash`) are left to libssh2, given a line with the offered key.
fn hosts_match(
    session: &Session,
    hosts: &str,
    address: &str,
    port: u16,
    offered: (&[u8], HostKeyType),
) -> bool {
    if hosts.starts_with('|') {
        let Ok(mut known) = session.known_hosts() else {
            return false;
        };
        let line = format!(
            "{hosts} {} {}",
            key_type_name(offered.1),
            base64::engine::general_purpose::STANDARD.encode(offered.0)
        );
        return known.read_str(&line, KnownHostFileKind::OpenSSH).is_ok()
            && matches!(
                known.check_port(address, port, offered.0),
                CheckResult::Match
            );
    }
    plain_hosts_match(hosts, &entry_name(address, port))
}

/// The host key a connection accepted: its type, its fingerprint and
/// what vouched for it (`FILE:LINE` of the known_hosts line that matched,
/// or where a key seen for the first time was recorded).
#[derive(Debug, Clone, Serialize)]
pub struct HostKey {
    pub key_type: String,
    pub fingerprint: String,
    pub known_hosts: String,
}

/// The file and line number of the first plain known_hosts line that
/// holds the offered key for `address:port` (the one `check_port`
/// matched): only lines with the same key are looked at closer.
fn matching_line<'a>(
    session: &Session,
    policy: &'a KnownHostsPolicy,
    address: &str,
    port: u16,
    offered: (&[u8], HostKeyType),
) -> Option<(&'a Path, usize)> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(offered.0);
    for file in &policy.files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (index, line) in text.lines().enumerate() {
            let Some(Entry::Plain(line)) = parse_line(line) else {
                continue;
            };
            let mut fields = line.split_ascii_whitespace();
            let (Some(hosts), Some(_), Some(key)) = (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if key == encoded && hosts_match(session, hosts, address, port, offered) {
                return Some((file.as_path(), index + 1));
            }
        }
    }
    None
}

/// A marker line kept for the check, with where it was.
struct Marked<'a> {
    file: &'a Path,
    line: usize,
    hosts: String,
    key: Option<Vec<u8>>,
}

/// Serialises appends to the user's file within this process.
static APPEND: Mutex<()> = Mutex::new(());

/// The name a `known_hosts` line uses for `address:port`.
pub fn entry_name(address: &str, port: u16) -> String {
    if port == 22 {
        address.to_string()
    } else {
        format!("[{address}]:{port}")
    }
}

/// `SHA256:…` as `ssh-keygen -l` prints it.
pub fn fingerprint(session: &Session) -> String {
    match session.host_key_hash(ssh2::HashType::Sha256) {
        Some(hash) => format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash)
        ),
        None => "SHA256:(unavailable)".to_string(),
    }
}

fn key_type_name(key_type: HostKeyType) -> &'static str {
    match key_type {
        HostKeyType::Rsa => "ssh-rsa",
        HostKeyType::Dss => "ssh-dss",
        HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        HostKeyType::Ed25519 => "ssh-ed25519",
        HostKeyType::Unknown => "unknown",
    }
}

/// Checks the key `session` was offered by `address:port` (the host is
/// `label` in messages). Unknown keys are recorded only when the policy
/// says so; changed keys are always refused.
pub fn verify(
    session: &Session,
    label: &str,
    address: &str,
    port: u16,
    policy: &KnownHostsPolicy,
) -> Result<HostKey, TransportError> {
    let (key, key_type) = session.host_key().ok_or_else(|| {
        TransportError::new(FailureKind::HostKey, label, "the server sent no host key")
    })?;
    let mut known = session
        .known_hosts()
        .map_err(|error| TransportError::ssh(label, "reading known hosts", &error))?;
    let mut revoked = Vec::new();
    let mut authorities = Vec::new();
    for file in &policy.files {
        if file.exists() {
            // A line libssh2 cannot parse (an unsupported key type) must not
            // make the whole file unusable: it is read line by line, and
            // only plain lines reach libssh2.
            let text = std::fs::read_to_string(file).unwrap_or_default();
            for (index, line) in text.lines().enumerate() {
                match parse_line(line) {
                    Some(Entry::Plain(line)) => {
                        let _ = known.read_str(line, KnownHostFileKind::OpenSSH);
                    }
                    Some(Entry::Revoked { hosts, key, .. }) => revoked.push(Marked {
                        file,
                        line: index + 1,
                        hosts: hosts.to_string(),
                        key: Some(key),
                    }),
                    Some(Entry::CertAuthority { hosts }) => authorities.push(Marked {
                        file,
                        line: index + 1,
                        hosts: hosts.to_string(),
                        key: None,
                    }),
                    Some(Entry::Unsupported { .. }) | None => {}
                }
            }
        }
    }
    let name = entry_name(address, port);
    let fingerprint = fingerprint(session);
    let type_name = key_type_name(key_type);
    // A revoked key is refused whatever another line says.
    if let Some(entry) = revoked.iter().find(|entry| {
        entry.key.as_deref() == Some(key)
            && hosts_match(session, &entry.hosts, address, port, (key, key_type))
    }) {
        return Err(TransportError::new(
            FailureKind::HostKey,
            label,
            format!(
                "the host key {fingerprint} of {name} is marked @revoked in {}:{}",
                entry.file.display(),
                entry.line
            ),
        )
        .with_hint(
            "a revoked key is never trusted: the host must get a new key, to be verified out of band and added; \
             remove the @revoked line only if the revocation was a mistake",
        ));
    }
    let authority = || {
        authorities
            .iter()
            .find(|entry| hosts_match(session, &entry.hosts, address, port, (key, key_type)))
    };
    let accepted = |known_hosts: String| HostKey {
        key_type: type_name.to_string(),
        fingerprint: fingerprint.clone(),
        known_hosts,
    };
    match known.check_port(address, port, key) {
        CheckResult::Match => Ok(accepted(
            matching_line(session, policy, address, port, (key, key_type))
                .map_or_else(|| "known_hosts".to_string(), |(file, line)| {
                    format!("{}:{line}", file.display())
                }),
        )),
        // Not a key seen for the first time: the operator meant a CA to
        // vouch for it, which midfleet cannot check. Never recorded.
        CheckResult::NotFound if authority().is_some() => {
            let entry = authority().expect("just found");
            Err(TransportError::new(
                FailureKind::HostKey,
                label,
                format!(
                    "host certificates (@cert-authority, {}:{}) are not supported; the host key of {name} ({type_name} {fingerprint}) is not in known_hosts",
                    entry.file.display(),
                    entry.line
                ),
            )
            .with_hint(format!(
                "add the host key: verify {fingerprint} out of band, then `ssh-keyscan -p {port} {address} >> {}`",
                policy.user_file.display()
            )))
        }
        CheckResult::Mismatch => Err(TransportError::new(
            FailureKind::HostKey,
            label,
            format!(
                "the host key of {name} has CHANGED: it now offers {type_name} {fingerprint}, which is not the key recorded in known_hosts"
            ),
        )
        .with_hint(format!(
            "someone may be intercepting the connection; if the host was reinstalled, verify {fingerprint} out of band, \
             then remove the old key with `ssh-keygen -R '{name}'` (midfleet never replaces a changed key)"
        ))),
        CheckResult::NotFound if policy.accept_new => {
            append(&policy.user_file, &name, type_name, key).map_err(|error| {
                TransportError::new(
                    FailureKind::HostKey,
                    label,
                    format!("cannot record the host key in {}: {error}", policy.user_file.display()),
                )
            })?;
            Ok(accepted(format!(
                "seen for the first time, recorded in {}",
                policy.user_file.display()
            )))
        }
        CheckResult::NotFound => Err(TransportError::new(
            FailureKind::HostKey,
            label,
            format!("the host key of {name} is not known ({type_name} {fingerprint})"),
        )
        .with_hint(unknown_key_hint(
            &fingerprint,
            address,
            port,
            &policy.user_file,
            policy.user_file.exists(),
        ))),
        CheckResult::Failure => Err(TransportError::new(
            FailureKind::HostKey,
            label,
            format!("the host key of {name} could not be checked ({type_name} {fingerprint})"),
        )),
    }
}

fn append(file: &Path, name: &str, type_name: &str, key: &[u8]) -> std::io::Result<()> {
    let _guard = APPEND
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(directory) = file.parent() {
        if !directory.as_os_str().is_empty() && !directory.exists() {
            std::fs::create_dir_all(directory)?;
            std::fs::set_permissions(
                directory,
                std::os::unix::fs::PermissionsExt::from_mode(0o700),
            )?;
        }
    }
    let line = format!(
        "{name} {type_name} {}\n",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    let mut handle = OpenOptions::new().create(true).append(true).open(file)?;
    // One write of a whole line: concurrent appends do not interleave.
    handle.write_all(line.as_bytes())?;
    handle.sync_all()
}

/// What to do about a host key seen for the first time; a known_hosts
/// file that does not exist yet is started, not appended to.
fn unknown_key_hint(
    fingerprint: &str,
    address: &str,
    port: u16,
    user_file: &Path,
    exists: bool,
) -> String {
    let file = user_file.display();
    if exists {
        format!(
            "verify {fingerprint} out of band, then add it with `ssh-keyscan -p {port} {address} >> {file}` \
             or run `midfleet facts --accept-new-host-keys` (apply never sends secrets to a key seen for the first time)"
        )
    } else {
        let directory = user_file
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .map_or_else(|| ".".to_string(), |parent| parent.display().to_string());
        format!(
            "{file} does not exist yet: start it with \
             `mkdir -p -m 700 {directory} && ssh-keyscan -p {port} {address} >> {file}` once {fingerprint} is verified \
             out of band, or with `midfleet facts --accept-new-host-keys`, which records every new host's key \
             (check what it recorded); apply never sends secrets to a key seen for the first time"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unknown_key_hint_says_how_to_start_a_missing_known_hosts() {
        let file = Path::new("/home/ops/.ssh/known_hosts");
        assert_eq!(
            unknown_key_hint("SHA256:abc", "10.0.0.5", 22, file, false),
            "/home/ops/.ssh/known_hosts does not exist yet: start it with \
             `mkdir -p -m 700 /home/ops/.ssh && ssh-keyscan -p 22 10.0.0.5 >> /home/ops/.ssh/known_hosts` \
             once SHA256:abc is verified out of band, or with `midfleet facts --accept-new-host-keys`, which \
             records every new host's key (check what it recorded); apply never sends secrets to a key seen \
             for the first time"
        );
        assert_eq!(
            unknown_key_hint("SHA256:abc", "10.0.0.5", 2222, file, true),
            "verify SHA256:abc out of band, then add it with \
             `ssh-keyscan -p 2222 10.0.0.5 >> /home/ops/.ssh/known_hosts` or run \
             `midfleet facts --accept-new-host-keys` (apply never sends secrets to a key seen for the first time)"
        );
    }

    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIE0pJ3n4G8m0b2cCrn2uZ6VZ6vEJ1b0q4G2l1k0G3c3K";

    #[test]
    fn markers_are_read_here_and_never_reach_libssh2() {
        let blob = base64::engine::general_purpose::STANDARD
            .decode(KEY)
            .unwrap();
        let plain = format!("[10.0.0.1]:2222 ssh-ed25519 {KEY}");
        let cases = [
            (String::new(), None),
            ("   # a comment".to_string(), None),
            (plain.clone(), Some(Entry::Plain(&plain))),
            (
                format!("@revoked * ssh-ed25519 {KEY} old key"),
                Some(Entry::Revoked {
                    hosts: "*",
                    key_type: "ssh-ed25519",
                    key: blob.clone(),
                }),
            ),
            (
                format!("  @revoked\tmid-*,10.0.0.? ssh-ed25519 {KEY}"),
                Some(Entry::Revoked {
                    hosts: "mid-*,10.0.0.?",
                    key_type: "ssh-ed25519",
                    key: blob,
                }),
            ),
            (
                format!("@cert-authority *.example.com ssh-ed25519 {KEY}"),
                Some(Entry::CertAuthority {
                    hosts: "*.example.com",
                }),
            ),
            (
                "@revoked * ssh-ed25519".to_string(),
                Some(Entry::Unsupported {
                    reason: "this @revoked line has no host, key type or key".into(),
                }),
            ),
            (
                "@revoked * ssh-ed25519 not-base64!".to_string(),
                Some(Entry::Unsupported {
                    reason: "the key of this @revoked line is not base64".into(),
                }),
            ),
            (
                format!("@future * ssh-ed25519 {KEY}"),
                Some(Entry::Unsupported {
                    reason: "unknown marker `@future`".into(),
                }),
            ),
        ];
        for (line, expected) in &cases {
            assert_eq!(&parse_line(line), expected, "{line}");
        }
    }

    #[test]
    fn host_patterns_follow_openssh() {
        let cases = [
            ("*", "[10.0.0.1]:2222", true),
            ("10.0.0.1", "10.0.0.1", true),
            ("10.0.0.1", "[10.0.0.1]:2222", false),
            ("[10.0.0.1]:2222", "[10.0.0.1]:2222", true),
            ("[10.0.0.?]:2222", "[10.0.0.7]:2222", true),
            ("[10.0.0.?]:2222", "[10.0.0.17]:2222", false),
            ("MID-*.Example.com", "mid-01.example.com", true),
            ("a,b,mid-*", "mid-01", true),
            ("mid-*,!mid-02", "mid-02", false),
            ("!mid-02,mid-*", "mid-01", true),
            ("!mid-02", "mid-01", false),
            ("*.example.com", "example.com", false),
            ("mid*01", "mid-x-01", true),
            ("mid*01", "mid-x-011", false),
        ];
        for (patterns, name, expected) in cases {
            assert_eq!(
                plain_hosts_match(patterns, name),
                expected,
                "{patterns} against {name}"
            );
        }
    }

    #[test]
    fn unsupported_lines_are_named_with_file_and_line() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("known_hosts");
        std::fs::write(
            &file,
            format!(
                "host ssh-ed25519 {KEY}\n@revoked * ssh-ed25519 {KEY}\n@cert-authority * ssh-ed25519 {KEY}\n@bogus x\n"
            ),
        )
        .unwrap();
        let policy = KnownHostsPolicy::new(Some(&file), false);
        let path = file.display();
        assert_eq!(
            policy.unsupported_lines(),
            [
                format!("{path}:3: @cert-authority (host certificates) is not supported by midfleet; the line is ignored, so list the host keys themselves"),
                format!("{path}:4: unknown marker `@bogus`; the line is ignored"),
            ]
        );
    }

    #[test]
    fn entry_names_follow_openssh() {
        assert_eq!(super::entry_name("10.0.0.1", 22), "10.0.0.1");
        assert_eq!(super::entry_name("127.0.0.2", 2222), "[127.0.0.2]:2222");
    }
}
