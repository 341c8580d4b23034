//! The Ansible Vault envelope, parsed strictly: the header line
//! (`$ANSIBLE_VAULT;1.1;AES256` or `$ANSIBLE_VAULT;1.2;AES256;LABEL`),
//! then the hexlified body, which holds three hexlified lines: the salt,
//! the HMAC-SHA256 and the ciphertext.
//!
//! Owns: that parsing and its bounds. Must not: decrypt (`cipher.rs`
//! does) or know where the text came from.

use super::VaultError;

/// The header every vaulted text starts with.
pub const HEADER: &str = "$ANSIBLE_VAULT";
/// The only cipher Ansible writes (and reads) today.
const CIPHER: &str = "AES256";
/// Vaulted texts larger than this are refused, not parsed: an inventory
/// value or a variables file is small, and the limit bounds the work.
pub const MAX_VAULT_TEXT: usize = 16 * 1024 * 1024;

/// A vaulted text taken apart.
#[derive(Debug, PartialEq, Eq)]
pub struct Envelope {
    /// `1.1` or `1.2`.
    pub version: &'static str,
    /// The label of format 1.2; `None` for 1.1.
    pub vault_id: Option<String>,
    pub salt: Vec<u8>,
    pub hmac: [u8; 32],
    pub ciphertext: Vec<u8>,
}

/// Whether `text` is a vaulted text (it starts with the header, leading
/// whitespace aside).
pub fn is_vaulted(text: &str) -> bool {
    text.trim_start().starts_with(HEADER)
}

/// Parses `text`, refusing anything Ansible would not have written.
pub fn parse(text: &str) -> Result<Envelope, VaultError> {
    if text.len() > MAX_VAULT_TEXT {
        return Err(VaultError::TooLarge {
            bytes: text.len(),
            limit: MAX_VAULT_TEXT,
        });
    }
    let format = |reason: &str| VaultError::Format(reason.to_string());
    let text = text.trim();
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().trim();
    let fields: Vec<&str> = header.split(';').map(str::trim).collect();
    if fields.first() != Some(&HEADER) {
        return Err(format("it does not start with `$ANSIBLE_VAULT;`"));
    }
    let (version, vault_id) = match fields.as_slice() {
        [_, "1.1", cipher] => ("1.1", check_cipher(cipher).map(|_| None)?),
        [_, "1.2", cipher, label] => {
            check_cipher(cipher)?;
            if label.is_empty() {
                return Err(format("the 1.2 header has an empty vault id"));
            }
            ("1.2", Some((*label).to_string()))
        }
        [_, "1.1" | "1.2", ..] => {
            return Err(format(
                "the header has the wrong number of `;` fields for its version",
            ))
        }
        [_, version, ..] => {
            return Err(VaultError::Format(format!(
                "format version `{version}` is not 1.1 or 1.2"
            )))
        }
        _ => return Err(format("the header has no format version")),
    };
    let mut body = String::with_capacity(text.len());
    for line in lines {
        body.push_str(line.trim());
    }
    let body = unhex(&body, "the body")?;
    let parts: Vec<&[u8]> = body.split(|byte| *byte == b'\n').collect();
    let [salt, hmac, ciphertext] = parts.as_slice() else {
        return Err(format(
            "the body does not hold the three lines salt, HMAC, ciphertext",
        ));
    };
    let salt = unhex_bytes(salt, "the salt")?;
    if salt.is_empty() {
        return Err(format("the salt is empty"));
    }
    let hmac: [u8; 32] = unhex_bytes(hmac, "the HMAC")?
        .try_into()
        .map_err(|_| format("the HMAC is not 32 bytes"))?;
    let ciphertext = unhex_bytes(ciphertext, "the ciphertext")?;
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(16) {
        return Err(format(
            "the ciphertext is not a whole number of 16-byte blocks (truncated?)",
        ));
    }
    Ok(Envelope {
        version,
        vault_id,
        salt,
        hmac,
        ciphertext,
    })
}

fn check_cipher(cipher: &str) -> Result<(), VaultError> {
    if cipher == CIPHER {
        Ok(())
    } else {
        Err(VaultError::Format(format!(
            "cipher `{cipher}` is not AES256, the one Ansible Vault uses"
        )))
    }
}

fn unhex(text: &str, what: &str) -> Result<Vec<u8>, VaultError> {
    unhex_bytes(text.as_bytes(), what)
}

/// Hex digits (either case) to bytes; anything else is refused.
fn unhex_bytes(hex: &[u8], what: &str) -> Result<Vec<u8>, VaultError> {
    if !hex.len().is_multiple_of(2) {
        return Err(VaultError::Format(format!(
            "{what} has an odd number of hex digits (truncated?)"
        )));
    }
    let digit = |byte: u8| match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    };
    hex.chunks_exact(2)
        .map(|pair| match (digit(pair[0]), digit(pair[1])) {
            (Some(high), Some(low)) => Ok(high << 4 | low),
            _ => Err(VaultError::Format(format!(
                "{what} holds a character that is not a hex digit"
            ))),
        })
        .collect()
}
