//! Ansible Vault: vaulted texts (formats 1.1 and 1.2 with a vault id)
//! decrypted with the passwords Ansible's options name, on RustCrypto
//! crates (PBKDF2-HMAC-SHA256, HMAC-SHA256, AES-256-CTR), never a cipher
//! of our own.
//!
//! Owns: the envelope (`envelope.rs`), the scheme (`cipher.rs`), the
//! password sources and the order they are tried in (`keyring.rs`), and
//! [`reveal`], the one function that turns a vaulted value into its
//! plaintext. Must not: print, put a password or a plaintext (or their
//! length) in a message, `Debug` or an error, or know what an inventory
//! is.

mod cipher;
mod envelope;
mod keyring;
#[cfg(test)]
pub(crate) mod tests;

pub use envelope::{is_vaulted, MAX_VAULT_TEXT};
pub use keyring::{
    Keyring, PasswordSource, VaultId, VaultIdError, VaultIds, VaultSettings, VaultWarning,
    DEFAULT_LABEL,
};

use crate::secret::SecretValue;

/// The YAML tag of a vaulted value (`!vault |`).
pub const VAULT_TAG: &str = "vault";

/// Why a vaulted text could not be decrypted. Never holds a password or
/// a plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("the vaulted text is {bytes} bytes, more than the {limit} accepted")]
    TooLarge { bytes: usize, limit: usize },
    #[error("not a valid Ansible Vault text: {0}")]
    Format(String),
    #[error("it is encrypted with Ansible Vault{} and no vault password was given", id_clause(.vault_id))]
    NoPassword { vault_id: Option<String> },
    #[error("it is encrypted with Ansible Vault{} and no vault password could be read (see the warnings)", id_clause(.vault_id))]
    NoPasswordLoaded { vault_id: Option<String> },
    #[error("no vault password given decrypts it (vault id {}; tried {})", .vault_id.as_deref().map_or("none, format 1.1".to_string(), |id| format!("`{id}`")), tried_list(.tried))]
    NoMatch {
        vault_id: Option<String>,
        tried: Vec<String>,
    },
    #[error("its HMAC matches but its padding is wrong: the vaulted text was made wrong")]
    Corrupt,
    #[error("its plaintext is not UTF-8 text")]
    NotUtf8,
}

fn id_clause(vault_id: &Option<String>) -> String {
    vault_id
        .as_deref()
        .map_or(String::new(), |id| format!(" (vault id `{id}`)"))
}

fn tried_list(tried: &[String]) -> String {
    if tried.is_empty() {
        "no password: none has its label and ANSIBLE_VAULT_ID_MATCH is set".to_string()
    } else {
        tried.join(", ")
    }
}

impl VaultError {
    /// What the operator can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            VaultError::NoPassword { .. } | VaultError::NoPasswordLoaded { .. } => {
                "give the vault password with --vault-password-file FILE, --vault-id [LABEL@]SOURCE or ANSIBLE_VAULT_PASSWORD_FILE"
            }
            VaultError::NoMatch { .. } => {
                "check the vault password (and its --vault-id label); `ansible-vault view` with the same password shows whether it opens"
            }
            _ => "encrypt the value again with ansible-vault",
        }
    }
}

/// The plaintext of the vaulted `text` (a `!vault` value or a whole
/// vaulted file), as a secret: decrypted with `keyring`, which must hold
/// the password, and refused unless it is UTF-8.
pub fn reveal(text: &str, keyring: &Keyring) -> Result<SecretValue, VaultError> {
    let plaintext = keyring.decrypt(text)?;
    let text = std::str::from_utf8(&plaintext).map_err(|_| VaultError::NotUtf8)?;
    Ok(SecretValue::new(text.to_string()))
}
