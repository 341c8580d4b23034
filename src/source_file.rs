//! Reading the operator's input files (inventories, variables files,
//! playbooks) as text, with the same limits and messages everywhere; a
//! file encrypted whole with Ansible Vault is given back as such where it
//! may be one (inventories, variables files), refused elsewhere.

use std::path::Path;

use crate::diagnostic::{Diagnostic, Location, Origin};

/// Input files larger than this are refused: they are not hand-written.
const MAX_BYTES: u64 = 16 * 1024 * 1024;

/// What to do with a vaulted playbook.
pub const VAULT_HINT: &str =
    "midfleet decrypts vaulted inventories and variables files, not a vaulted playbook: \
     keep the secret in the inventory (`!vault` or a vaulted group_vars file) and give it as \
     { secret: \"var:NAME\" }, or use { secret: \"env:NAME\" }";

/// An input file's text: plain, or a whole file encrypted with Ansible
/// Vault (its vaulted text, for `vault::reveal`).
pub enum Text {
    Plain(String),
    Vaulted(String),
}

/// Reads `path` as [`read`] does, but gives a file encrypted whole with
/// Ansible Vault back as such instead of refusing it (inventories and
/// variables files).
pub fn read_allowing_vault(path: &Path) -> Result<Text, Diagnostic> {
    let bytes = read_bytes(path)?;
    if std::str::from_utf8(&bytes).is_ok_and(crate::vault::is_vaulted) {
        let text = String::from_utf8(bytes).expect("checked to be UTF-8");
        return Ok(Text::Vaulted(text));
    }
    decode(path, bytes).map(Text::Plain)
}

const VAULTED_FILE: &str = "the file is encrypted whole with Ansible Vault; midfleet decrypts inventories and variables files, not this";

/// Reads `path` as UTF-8 text (a BOM removed), refusing oversized files and
/// files encrypted whole with Ansible Vault.
pub fn read(path: &Path) -> Result<String, Diagnostic> {
    decode(path, read_bytes(path)?)
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, Diagnostic> {
    let origin = Some(Origin::file(path));
    let size = std::fs::metadata(path)
        .map_err(|error| Diagnostic::error(origin.clone(), format!("cannot read: {error}")))?
        .len();
    if size > MAX_BYTES {
        return Err(Diagnostic::error(
            origin,
            format!("{size} bytes is more than the {MAX_BYTES} accepted"),
        ));
    }
    std::fs::read(path).map_err(|error| Diagnostic::error(origin, format!("cannot read: {error}")))
}

/// The text of a file's `bytes` as [`read`] takes it (UTF-8, BOM removed,
/// Ansible Vault refused); `path` only names the file in the diagnostic.
pub fn decode(path: &Path, bytes: Vec<u8>) -> Result<String, Diagnostic> {
    let origin = Some(Origin::file(path));
    let text = String::from_utf8(bytes).map_err(|error| {
        let at = Location::of_offset(error.as_bytes(), error.utf8_error().valid_up_to());
        Diagnostic::error(Some(Origin::new(path, at)), "not UTF-8 text")
    })?;
    if text.trim_start().starts_with("$ANSIBLE_VAULT;") {
        return Err(Diagnostic::error(origin, VAULTED_FILE).with_hint(VAULT_HINT));
    }
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}
