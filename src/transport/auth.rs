//! Public-key authentication the way OpenSSH does it: only the given
//! identity file when there is one; otherwise the ssh agent's identities,
//! then `~/.ssh/config` identity files, then the default `~/.ssh` keys —
//! stopping before the server's `MaxAuthTries` (6 by default) is reached.
//! An encrypted key asks for its passphrase once per run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine;
use ssh2::Session;

use super::error::{FailureKind, TransportError};
use crate::secret::SecretValue;

/// Attempts per connection: one below OpenSSH's default `MaxAuthTries`,
/// whose last failure would close the connection.
const MAX_ATTEMPTS: usize = 5;

const DEFAULT_KEYS: [&str; 3] = ["id_ed25519", "id_ecdsa", "id_rsa"];

/// Passphrases asked during this run, by key path.
#[derive(Default)]
pub struct Passphrases {
    asked: Mutex<HashMap<PathBuf, Option<SecretValue>>>,
}

impl Passphrases {
    /// The passphrase of `key`: asked on the terminal the first time
    /// (`None` when there is no terminal to ask on).
    fn get(&self, key: &Path) -> Option<SecretValue> {
        let mut asked = self
            .asked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        asked
            .entry(key.to_path_buf())
            .or_insert_with(|| {
                rpassword::prompt_password(format!("Passphrase for {}: ", key.display()))
                    .ok()
                    .map(SecretValue::new)
            })
            .clone()
    }
}

/// Which keys to offer.
pub struct Identities<'a> {
    /// The inventory's `identity_file`: when set, the only key offered.
    pub explicit: Option<&'a Path>,
    /// `IdentityFile` entries of `~/.ssh/config`.
    pub configured: &'a [PathBuf],
}

/// How a session was authenticated: public keys only (midfleet never sends
/// a login password); `method` is `agent` (`key` the agent's comment for
/// it) or `key file` (`key` its path).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Authenticated {
    pub method: &'static str,
    pub key: String,
}

/// Authenticates `user` on `session` and says with which key, or says why
/// not.
pub fn authenticate(
    session: &Session,
    label: &str,
    user: &str,
    identities: &Identities<'_>,
    passphrases: &Passphrases,
) -> Result<Authenticated, TransportError> {
    let key_file = |file: &Path| Authenticated {
        method: "key file",
        key: file.display().to_string(),
    };
    let mut attempts = 0;
    let mut tried: Vec<String> = Vec::new();
    let mut offered_blobs: Vec<Vec<u8>> = Vec::new();

    if let Some(key) = identities.explicit {
        let key = expand_home(key);
        if !key.exists() {
            return Err(TransportError::new(
                FailureKind::Authentication,
                label,
                format!("identity file {} does not exist", key.display()),
            )
            .with_hint("fix identity_file / ansible_ssh_private_key_file for this host"));
        }
        try_file(label, session, user, &key, passphrases)?;
        if session.authenticated() {
            return Ok(key_file(&key));
        }
        return Err(refused(label, user, &[key.display().to_string()]));
    }

    if std::env::var_os("SSH_AUTH_SOCK").is_some() {
        if let Ok(mut agent) = session.agent() {
            if agent.connect().is_ok() && agent.list_identities().is_ok() {
                for identity in agent.identities().unwrap_or_default() {
                    if attempts >= MAX_ATTEMPTS {
                        break;
                    }
                    attempts += 1;
                    offered_blobs.push(identity.blob().to_vec());
                    tried.push(format!("agent key {}", identity.comment()));
                    match agent.userauth(user, &identity) {
                        Ok(()) if session.authenticated() => {
                            return Ok(Authenticated {
                                method: "agent",
                                key: identity.comment().to_string(),
                            })
                        }
                        Err(error) if super::error::is_timeout(&error) => {
                            return Err(timeout(label))
                        }
                        _ => {}
                    }
                }
                let _ = agent.disconnect();
            }
        }
    }

    let ssh_directory = super::home_directory().join(".ssh");
    let mut files: Vec<PathBuf> = identities
        .configured
        .iter()
        .map(|path| expand_home(path))
        .collect();
    files.extend(DEFAULT_KEYS.iter().map(|name| ssh_directory.join(name)));
    let mut seen = std::collections::HashSet::new();
    files.retain(|file| seen.insert(file.clone()));
    for file in files {
        if attempts >= MAX_ATTEMPTS || !file.exists() {
            continue;
        }
        if public_blob(&file).is_some_and(|blob| offered_blobs.contains(&blob)) {
            continue; // the agent already offered this key
        }
        attempts += 1;
        tried.push(file.display().to_string());
        try_file(label, session, user, &file, passphrases)?;
        if session.authenticated() {
            return Ok(key_file(&file));
        }
    }
    Err(refused(label, user, &tried))
}

fn refused(label: &str, user: &str, tried: &[String]) -> TransportError {
    let detail = if tried.is_empty() {
        "no key to offer (no ssh agent, no identity_file, no ~/.ssh/id_* key)".to_string()
    } else {
        format!("no offered key was accepted (tried {})", tried.join(", "))
    };
    TransportError::new(FailureKind::Authentication, label, format!("authentication as {user} failed: {detail}"))
        .with_hint("set identity_file (ansible_ssh_private_key_file) or user for this host, or load the key into ssh-agent")
}

/// Offers one key file; an encrypted key is tried with its passphrase.
fn try_file(
    label: &str,
    session: &Session,
    user: &str,
    key: &Path,
    passphrases: &Passphrases,
) -> Result<(), TransportError> {
    let public = key.with_extension(match key.extension() {
        Some(extension) => format!("{}.pub", extension.to_string_lossy()),
        None => "pub".to_string(),
    });
    let public = public.exists().then_some(public.as_path());
    let passphrase = if is_encrypted(key) {
        passphrases.get(key)
    } else {
        None
    };
    match session.userauth_pubkey_file(
        user,
        public,
        key,
        passphrase.as_ref().map(SecretValue::expose),
    ) {
        // A refusal is not an error here (the next key may be accepted);
        // a server too slow to answer is, and must not read as a refusal.
        Err(error) if super::error::is_timeout(&error) => Err(timeout(label)),
        _ => Ok(()),
    }
}

fn timeout(label: &str) -> TransportError {
    TransportError::new(
        FailureKind::Timeout,
        label,
        "authentication: timed out (the server did not answer within connect_timeout)",
    )
    .with_hint("a host too busy to answer: raise connect_timeout, or use fewer --forks")
}

/// Whether a private key file is passphrase-protected (OpenSSH's own format
/// with a cipher other than `none`, or an encrypted PEM).
pub fn is_encrypted(key: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(key) else {
        return false;
    };
    if text.contains("Proc-Type: 4,ENCRYPTED") || text.contains("BEGIN ENCRYPTED PRIVATE KEY") {
        return true;
    }
    let body: String = text
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(body.trim()) else {
        return false;
    };
    // "openssh-key-v1\0", then a length-prefixed cipher name.
    let Some(rest) = bytes.strip_prefix(b"openssh-key-v1\0") else {
        return false;
    };
    let Some(length) = rest
        .get(..4)
        .map(|bytes| u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize)
    else {
        return false;
    };
    rest.get(4..4 + length)
        .is_some_and(|cipher| cipher != b"none")
}

/// The public key blob of a key file, from its `.pub` file.
fn public_blob(key: &Path) -> Option<Vec<u8>> {
    let text = std::fs::read_to_string(format!("{}.pub", key.display())).ok()?;
    let encoded = text.split_whitespace().nth(1)?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
}

/// `~/x` → `$HOME/x`.
pub fn expand_home(path: &Path) -> PathBuf {
    match path.strip_prefix("~") {
        Ok(rest) => super::home_directory().join(rest),
        Err(_) => path.to_path_buf(),
    }
}
