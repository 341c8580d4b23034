//! Strict host key checking against OpenSSH `known_hosts` files (hashed
//! entries and `[host]:port` included, through libssh2's parser), and
//! recording a first-seen key when the operator asked for it.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine;
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
) -> Result<(), TransportError> {
    let (key, key_type) = session.host_key().ok_or_else(|| {
        TransportError::new(FailureKind::HostKey, label, "the server sent no host key")
    })?;
    let mut known = session
        .known_hosts()
        .map_err(|error| TransportError::ssh(label, "reading known hosts", &error))?;
    for file in &policy.files {
        if file.exists() {
            // A line libssh2 cannot parse (an unsupported key type) must not
            // make the whole file unusable: it is read line by line.
            let text = std::fs::read_to_string(file).unwrap_or_default();
            for line in text.lines() {
                let _ = known.read_str(line, KnownHostFileKind::OpenSSH);
            }
        }
    }
    let name = entry_name(address, port);
    let fingerprint = fingerprint(session);
    let type_name = key_type_name(key_type);
    match known.check_port(address, port, key) {
        CheckResult::Match => Ok(()),
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
            })
        }
        CheckResult::NotFound => Err(TransportError::new(
            FailureKind::HostKey,
            label,
            format!("the host key of {name} is not known ({type_name} {fingerprint})"),
        )
        .with_hint(format!(
            "verify {fingerprint} out of band, then add it with `ssh-keyscan -p {port} {address} >> {}` \
             or run `midfleet facts --accept-new-host-keys` (apply never sends secrets to a key seen for the first time)",
            policy.user_file.display()
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

#[cfg(test)]
mod tests {
    #[test]
    fn entry_names_follow_openssh() {
        assert_eq!(super::entry_name("10.0.0.1", 22), "10.0.0.1");
        assert_eq!(super::entry_name("127.0.0.2", 2222), "[127.0.0.2]:2222");
    }
}
