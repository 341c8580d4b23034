//! Vault passwords: where they come from, as Ansible's options and
//! settings name them ([`VaultIds`]: plain data), and the [`Keyring`] that
//! loads them once, on the first vaulted text that needs one, and tries
//! them as Ansible does.
//!
//! Owns: `[LABEL@]SOURCE` as `--vault-id` writes it; reading a password
//! file or running a password script (through the bounds of `file:` and
//! `command:` secrets: `secret::read_bounded_file`,
//! `secret::run_bounded_program`) or asking on the terminal; the order in
//! which passwords are tried; the cache of decrypted texts. Must not: put a
//! password or a plaintext, or their length, in a message.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::envelope;
use super::{cipher, VaultError};

/// The label of a password given without one (Ansible's
/// `DEFAULT_VAULT_IDENTITY`, changed with `ANSIBLE_VAULT_IDENTITY`).
pub const DEFAULT_LABEL: &str = "default";

/// Where one vault password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// A file holding the password, or an executable script printing it.
    File(PathBuf),
    /// Asked on the terminal (`--vault-id LABEL@prompt`).
    Prompt,
    /// Asked on the terminal with Ansible's older prompt
    /// (`--ask-vault-pass`).
    AskVaultPass,
}

/// One vault password source with its label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultId {
    /// The label written before `@`; `None`: the default label (then a
    /// `*-client` script is run without `--vault-id`, as Ansible does).
    pub label: Option<String>,
    pub source: PasswordSource,
    /// What gave it (`--vault-id`, `ANSIBLE_VAULT_PASSWORD_FILE`, …), for
    /// messages.
    pub given_by: String,
}

/// Why a `--vault-id` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{given_by} `{text}`: {reason}")]
pub struct VaultIdError {
    pub given_by: String,
    pub text: String,
    pub reason: &'static str,
}

impl VaultId {
    /// `[LABEL@]SOURCE` as `--vault-id` takes it: SOURCE is `prompt` or a
    /// password file or script.
    pub fn parse(text: &str, given_by: &str) -> Result<VaultId, VaultIdError> {
        let refuse = |reason| VaultIdError {
            given_by: given_by.to_string(),
            text: text.to_string(),
            reason,
        };
        let (label, source) = match text.split_once('@') {
            Some((label, source)) => {
                if label.is_empty() {
                    return Err(refuse("the label before `@` is empty"));
                }
                if label.contains(';') || label.chars().any(char::is_whitespace) {
                    return Err(refuse("a vault id label holds no `;` or whitespace"));
                }
                (Some(label.to_string()), source)
            }
            None => (None, text),
        };
        if source.is_empty() {
            return Err(refuse("no password source (a file, a script or `prompt`)"));
        }
        let source = match source {
            "prompt" => PasswordSource::Prompt,
            "prompt_ask_vault_pass" => PasswordSource::AskVaultPass,
            path => PasswordSource::File(expand_home(path)),
        };
        Ok(VaultId {
            label,
            source,
            given_by: given_by.to_string(),
        })
    }

    fn describe(&self, default_label: &str) -> String {
        let label = self.label.as_deref().unwrap_or(default_label);
        match &self.source {
            PasswordSource::File(path) => {
                format!("`{label}` ({} {})", self.given_by, path.display())
            }
            PasswordSource::Prompt | PasswordSource::AskVaultPass => {
                format!("`{label}` ({}, asked)", self.given_by)
            }
        }
    }
}

/// Ansible's vault settings, each where Ansible reads it, for
/// [`VaultIds::from_settings`].
#[derive(Debug, Clone, Default)]
pub struct VaultSettings {
    /// `ANSIBLE_VAULT_IDENTITY_LIST` (else ansible.cfg's
    /// `vault_identity_list`): `[LABEL@]SOURCE` entries, tried first.
    pub identity_list: Vec<String>,
    /// `--vault-id` options, in order.
    pub vault_ids: Vec<String>,
    /// `--vault-password-file` options, in order.
    pub password_files: Vec<PathBuf>,
    /// `ANSIBLE_VAULT_PASSWORD_FILE` (else ansible.cfg's
    /// `vault_password_file`), with what gave it.
    pub default_password_file: Option<(PathBuf, String)>,
    /// `--ask-vault-pass`.
    pub ask_vault_pass: bool,
    /// `ANSIBLE_VAULT_IDENTITY`: the label of passwords given without one.
    pub default_label: Option<String>,
    /// `ANSIBLE_VAULT_ID_MATCH`: only a password of the text's own label
    /// is tried.
    pub id_match: bool,
}

/// Every vault password source, in the order Ansible takes them: the
/// identity list, `--vault-id`, `--vault-password-file`, the default
/// password file, `--ask-vault-pass`. Plain data: nothing is read yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VaultIds {
    pub ids: Vec<VaultId>,
    /// Entries that could not be read (said as warnings when the
    /// passwords are loaded).
    pub invalid: Vec<VaultIdError>,
    pub default_label: Option<String>,
    pub id_match: bool,
}

impl VaultIds {
    pub fn from_settings(settings: &VaultSettings) -> VaultIds {
        let mut ids = Vec::new();
        let mut invalid = Vec::new();
        let entries = settings
            .identity_list
            .iter()
            .map(|text| (text, "ANSIBLE_VAULT_IDENTITY_LIST"))
            .chain(settings.vault_ids.iter().map(|text| (text, "--vault-id")));
        for (text, given_by) in entries {
            match VaultId::parse(text, given_by) {
                Ok(id) => ids.push(id),
                Err(error) => invalid.push(error),
            }
        }
        let mut vault_ids = VaultIds {
            ids,
            invalid,
            default_label: settings.default_label.clone(),
            id_match: settings.id_match,
        };
        for path in &settings.password_files {
            vault_ids.add_password_file(path, "--vault-password-file");
        }
        if let Some((path, given_by)) = &settings.default_password_file {
            vault_ids.add_password_file(path, given_by);
        }
        if settings.ask_vault_pass {
            vault_ids.ids.push(VaultId {
                label: Some(vault_ids.default_label().to_string()),
                source: PasswordSource::AskVaultPass,
                given_by: "--ask-vault-pass".to_string(),
            });
        }
        vault_ids
    }

    /// Adds a password file (or script) with the default label, as
    /// `--vault-password-file` and ansible.cfg's `vault_password_file`
    /// give one; `given_by` names where it was written.
    pub fn add_password_file(&mut self, path: &Path, given_by: &str) {
        let label = self.default_label().to_string();
        self.ids.push(VaultId {
            label: Some(label),
            source: PasswordSource::File(expand_home(&path.to_string_lossy())),
            given_by: given_by.to_string(),
        });
    }

    pub fn default_label(&self) -> &str {
        self.default_label.as_deref().unwrap_or(DEFAULT_LABEL)
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.invalid.is_empty()
    }
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Something about a vault password source worth knowing that does not
/// stop the run: a password file others can read, a source that failed
/// while another worked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultWarning {
    pub message: String,
    pub hint: Option<String>,
}

/// One loaded password: its label and bytes.
struct Password {
    label: String,
    bytes: Zeroizing<Vec<u8>>,
}

#[derive(Default)]
struct State {
    /// `None` until the first vaulted text needs a password.
    passwords: Option<Vec<Password>>,
    warnings: Vec<VaultWarning>,
    /// Decrypted texts by the SHA-256 of their envelope: a group's value
    /// is decrypted once, not once per host.
    cache: HashMap<[u8; 32], Zeroizing<Vec<u8>>>,
}

/// The vault passwords of a run, loaded on first use, and the texts they
/// decrypted. Shared by every host (thread-safe).
pub struct Keyring {
    ids: VaultIds,
    state: Mutex<State>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Keyring")
            .field("ids", &self.ids)
            .finish_non_exhaustive()
    }
}

impl Default for Keyring {
    fn default() -> Keyring {
        Keyring::new(VaultIds::default())
    }
}

impl Keyring {
    pub fn new(ids: VaultIds) -> Keyring {
        Keyring {
            ids,
            state: Mutex::new(State::default()),
        }
    }

    /// Whether any password source was given.
    pub fn has_sources(&self) -> bool {
        !self.ids.is_empty()
    }

    /// The warnings found since the last call.
    pub fn take_warnings(&self) -> Vec<VaultWarning> {
        std::mem::take(&mut self.lock().warnings)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The plaintext of the vaulted `text`: the passwords whose label is
    /// the text's vault id first, then every other one in order (unless
    /// `ANSIBLE_VAULT_ID_MATCH`), as Ansible tries them. The passwords
    /// are loaded on the first call.
    pub fn decrypt(&self, text: &str) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let parsed = envelope::parse(text)?;
        let key: [u8; 32] = Sha256::digest(text.trim().as_bytes()).into();
        let mut state = self.lock();
        if let Some(plaintext) = state.cache.get(&key) {
            return Ok(plaintext.clone());
        }
        let wanted = parsed
            .vault_id
            .clone()
            .unwrap_or_else(|| self.ids.default_label().to_string());
        if self.ids.is_empty() {
            return Err(VaultError::NoPassword {
                vault_id: parsed.vault_id,
            });
        }
        if state.passwords.is_none() {
            let (passwords, warnings) = self.load();
            state.warnings.extend(warnings);
            state.passwords = Some(passwords);
        }
        let passwords = state.passwords.as_deref().unwrap_or_default();
        if passwords.is_empty() {
            return Err(VaultError::NoPasswordLoaded {
                vault_id: parsed.vault_id,
            });
        }
        let candidates = passwords
            .iter()
            .filter(|password| password.label == wanted)
            .chain(
                passwords
                    .iter()
                    .filter(|password| password.label != wanted && !self.ids.id_match),
            );
        let mut tried = Vec::new();
        for password in candidates {
            match cipher::decrypt(&parsed, &password.bytes) {
                Ok(plaintext) => {
                    state.cache.insert(key, plaintext.clone());
                    return Ok(plaintext);
                }
                Err(cipher::Failure::Hmac) => tried.push(format!("`{}`", password.label)),
                Err(cipher::Failure::Padding) => return Err(VaultError::Corrupt),
            }
        }
        Err(VaultError::NoMatch {
            vault_id: parsed.vault_id,
            tried,
        })
    }

    /// Loads every source in order. A source that fails is a warning, as
    /// in Ansible, when another one works.
    fn load(&self) -> (Vec<Password>, Vec<VaultWarning>) {
        let mut passwords = Vec::new();
        let mut warnings = Vec::new();
        let mut failures: Vec<VaultWarning> = self
            .ids
            .invalid
            .iter()
            .map(|error| VaultWarning {
                message: format!("vault password {error}"),
                hint: Some(
                    "write [LABEL@]SOURCE, SOURCE a password file, a script or `prompt`".into(),
                ),
            })
            .collect();
        for id in &self.ids.ids {
            let label = id
                .label
                .clone()
                .unwrap_or_else(|| self.ids.default_label().to_string());
            let shown = id.describe(self.ids.default_label());
            match load_one(id, &label, |message, hint| {
                warnings.push(VaultWarning {
                    message: format!("vault password {shown}: {message}"),
                    hint: Some(hint),
                })
            }) {
                Ok(bytes) => passwords.push(Password { label, bytes }),
                Err((reason, hint)) => failures.push(VaultWarning {
                    message: format!("vault password {shown}: {reason}"),
                    hint: hint.map(str::to_string),
                }),
            }
        }
        warnings.extend(failures);
        (passwords, warnings)
    }
}

type LoadFailure = (String, Option<&'static str>);

/// One password, as Ansible reads it: a file's contents stripped of
/// whitespace; a script's stdout stripped of line ends (a `*-client`
/// script given a label gets `--vault-id LABEL`); a prompt's answer
/// stripped of whitespace. Empty is refused.
fn load_one(
    id: &VaultId,
    label: &str,
    warn: impl FnMut(String, String),
) -> Result<Zeroizing<Vec<u8>>, LoadFailure> {
    let bytes = match &id.source {
        PasswordSource::Prompt | PasswordSource::AskVaultPass => {
            let prompt = if id.source == PasswordSource::Prompt {
                format!("Vault password ({label}): ")
            } else {
                "Vault password: ".to_string()
            };
            let answer = Zeroizing::new(rpassword::prompt_password(prompt).map_err(|error| {
                (
                    format!("cannot ask on the terminal: {error}"),
                    Some("a prompt needs a terminal; give --vault-password-file when running unattended"),
                )
            })?);
            Zeroizing::new(strip(answer.as_bytes(), |byte| byte.is_ascii_whitespace()).to_vec())
        }
        PasswordSource::File(path) => {
            let metadata = std::fs::metadata(path)
                .map_err(|error| (format!("cannot read {}: {error}", path.display()), None))?;
            if metadata.is_file() && metadata.permissions().mode() & 0o111 != 0 {
                let client = is_client_script(path);
                let arguments: Vec<&str> = match (&id.label, client) {
                    (Some(label), true) => vec!["--vault-id", label.as_str()],
                    _ => Vec::new(),
                };
                let output = crate::secret::run_bounded_program(path, &arguments)
                    .map_err(|refusal| (refusal.reason().to_string(), refusal.hint()))?;
                Zeroizing::new(strip(&output, |byte| byte == b'\r' || byte == b'\n').to_vec())
            } else {
                let contents = crate::secret::read_bounded_file(path, warn)
                    .map_err(|refusal| (refusal.reason().to_string(), refusal.hint()))?;
                Zeroizing::new(strip(&contents, |byte| byte.is_ascii_whitespace()).to_vec())
            }
        }
    };
    if bytes.is_empty() {
        return Err((
            "the password is empty".to_string(),
            Some("a vault password file or script must give the password"),
        ));
    }
    Ok(bytes)
}

/// Ansible's rule: a script whose name, without its extension, ends with
/// `-client` takes `--vault-id LABEL`.
fn is_client_script(path: &Path) -> bool {
    let name = path.to_string_lossy();
    let without_extension = match path.extension() {
        Some(extension) => &name[..name.len() - extension.len() - 1],
        None => &name[..],
    };
    without_extension.ends_with("-client")
}

fn strip(bytes: &[u8], strip: impl Fn(u8) -> bool) -> &[u8] {
    let start = bytes
        .iter()
        .position(|byte| !strip(*byte))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|byte| !strip(*byte))
        .map_or(start, |last| last + 1);
    &bytes[start..end]
}

#[cfg(test)]
pub(super) fn is_client_script_for_tests(path: &Path) -> bool {
    is_client_script(path)
}
