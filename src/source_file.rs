//! Reading the operator's input files (inventories, variables files,
//! playbooks) as text, with the same limits and messages everywhere.

use std::path::Path;

use crate::diagnostic::{Diagnostic, Location, Origin};

/// Input files larger than this are refused: they are not hand-written.
const MAX_BYTES: u64 = 16 * 1024 * 1024;

/// What to do instead of Ansible Vault.
pub const VAULT_HINT: &str =
    "keep secrets out of the inventory: give them in the playbook as a secret reference, \
     e.g. mid.instance.password: { secret: \"env:MID_PASSWORD\" } or \
     { secret: \"command:ansible-vault view secrets/mid.txt\" }";

/// Reads `path` as UTF-8 text (a BOM removed), refusing oversized files and
/// files encrypted whole with Ansible Vault.
pub fn read(path: &Path) -> Result<String, Diagnostic> {
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
    let bytes = std::fs::read(path)
        .map_err(|error| Diagnostic::error(origin.clone(), format!("cannot read: {error}")))?;
    decode(path, bytes)
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
        return Err(Diagnostic::error(
            origin,
            "the file is encrypted with Ansible Vault, which midfleet does not read",
        )
        .with_hint(VAULT_HINT));
    }
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}
