//! `group_vars/` and `host_vars/` beside an inventory: `NAME`,
//! `NAME.yml`, `NAME.yaml`, `NAME.json`, or a directory `NAME/` whose files
//! are read in name order.

use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Diagnostics, Origin};
use crate::yaml;

use super::vars::{read_vars, Vars};
use super::Inventory;
use crate::source_file::{read_allowing_vault, Text};
use crate::vault::Keyring;

use super::vaulted::UnreadableVaultFile;

pub(super) fn load(inventory: &mut Inventory, directory: &Path, diagnostics: &mut Diagnostics) {
    let keyring = inventory.vault.clone();
    for (folder, is_group) in [("group_vars", true), ("host_vars", false)] {
        let folder = directory.join(folder);
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        let mut entries: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .collect();
        entries.sort();
        for entry in entries {
            let Some(candidates) = scope_names(&entry) else {
                continue;
            };
            let exists = |name: &str| {
                if is_group {
                    inventory.group(name).is_some()
                } else {
                    inventory.host_entry(name).is_some()
                }
            };
            // `mid-01.example.com` (no extension) and `mid-01.yml` both work:
            // the whole name is tried before the name without its extension.
            let name = candidates
                .iter()
                .find(|candidate| exists(candidate))
                .unwrap_or_else(|| candidates.last().expect("at least one candidate"))
                .clone();
            let vars = read_scope(
                &entry,
                &keyring,
                &mut inventory.unreadable_vault_files,
                &mut inventory.vars_files,
                diagnostics,
            );
            let target = if is_group {
                inventory
                    .group_entry_mut(&name)
                    .map(|group| &mut group.file_vars)
            } else {
                inventory
                    .host_entry_mut(&name)
                    .map(|host| &mut host.file_vars)
            };
            match target {
                Some(target) => target.merge(&vars),
                None => {
                    let kind = if is_group { "group" } else { "host" };
                    let mut diagnostic = Diagnostic::warning(
                        Some(Origin::file(&entry)),
                        format!(
                            "no {kind} `{name}` in the inventory; these variables are not used"
                        ),
                    );
                    if let Some(hint) = inventory.suggestion(&name) {
                        diagnostic = diagnostic.with_hint(hint);
                    }
                    diagnostics.push(diagnostic);
                }
            }
        }
    }
}

/// Files that are never variables files: hidden, backups, notes.
fn is_skipped(file_name: &str) -> bool {
    file_name.starts_with('.')
        || [".retry", ".md", ".txt", ".orig", ".bak", ".swp", "~"]
            .iter()
            .any(|suffix| file_name.ends_with(suffix))
}

/// The names a `group_vars/`/`host_vars/` entry may be for: its whole name,
/// then, for `.yml`/`.yaml`/`.json`, its name without the extension.
/// `None` for entries to skip.
fn scope_names(entry: &Path) -> Option<Vec<String>> {
    let file_name = entry.file_name()?.to_str()?;
    if is_skipped(file_name) {
        return None;
    }
    let mut names = vec![file_name.to_string()];
    if !entry.is_dir() {
        for extension in [".yml", ".yaml", ".json"] {
            if let Some(stem) = file_name.strip_suffix(extension) {
                names.push(stem.to_string());
            }
        }
    }
    Some(names)
}

fn read_scope(
    entry: &Path,
    keyring: &Keyring,
    unreadable: &mut Vec<UnreadableVaultFile>,
    read: &mut Vec<(PathBuf, bool)>,
    diagnostics: &mut Diagnostics,
) -> Vars {
    let mut vars = Vars::default();
    let files: Vec<PathBuf> = if entry.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(entry)
            .map(|entries| {
                entries
                    .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                    .collect()
            })
            .unwrap_or_default();
        files.retain(|file| {
            file.is_file()
                && file
                    .file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| !is_skipped(name))
        });
        files.sort();
        files
    } else {
        vec![entry.to_path_buf()]
    };
    for file in files {
        let (text, vaulted) = match read_allowing_vault(&file) {
            Ok(Text::Plain(text)) => (zeroize::Zeroizing::new(text), false),
            Ok(Text::Vaulted(text)) => match crate::vault::reveal(&text, keyring) {
                Ok(plaintext) => (
                    zeroize::Zeroizing::new(plaintext.expose().to_string()),
                    true,
                ),
                Err(error) => {
                    // Its variables are unknown; one used and undefined
                    // names this file (`Vaulted::unreadable_note`).
                    diagnostics.push(
                        Diagnostic::warning(
                            Some(Origin::file(&file)),
                            format!("the vaulted variables file is not read, its variables are unavailable: {error}"),
                        )
                        .with_hint(error.hint()),
                    );
                    unreadable.push(UnreadableVaultFile {
                        path: file.clone(),
                        reason: error.to_string(),
                    });
                    continue;
                }
            },
            Err(diagnostic) => {
                diagnostics.push(diagnostic);
                continue;
            }
        };
        read.push((file.clone(), vaulted));
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        match yaml::parse(text) {
            Ok(Some(node)) => {
                let mut read = read_vars(&node, &file, "a variables file", diagnostics);
                if vaulted {
                    read.mark_vaulted_file(&file);
                }
                vars.merge(&read)
            }
            Ok(None) => {}
            // The parser's message quotes no text, only where.
            Err(error) => diagnostics.push(error.diagnostic(&file)),
        }
    }
    vars
}
