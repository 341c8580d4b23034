//! `group_vars/` and `host_vars/` beside an inventory: `NAME`,
//! `NAME.yml`, `NAME.yaml`, `NAME.json`, or a directory `NAME/` whose files
//! are read in name order.

use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Diagnostics, Origin};
use crate::yaml;

use super::vars::{read_vars, Vars};
use super::Inventory;
use crate::source_file::read as read_text;

pub(super) fn load(inventory: &mut Inventory, directory: &Path, diagnostics: &mut Diagnostics) {
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
            let Some(name) = scope_name(&entry) else {
                continue;
            };
            let vars = read_scope(&entry, diagnostics);
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

/// The group or host a `group_vars/`/`host_vars/` entry is for, or `None`
/// for files to skip (hidden, backups).
fn scope_name(entry: &Path) -> Option<String> {
    let file_name = entry.file_name()?.to_str()?;
    if file_name.starts_with('.') || file_name.ends_with('~') {
        return None;
    }
    if entry.is_dir() {
        return Some(file_name.to_string());
    }
    for extension in [".yml", ".yaml", ".json"] {
        if let Some(stem) = file_name.strip_suffix(extension) {
            return Some(stem.to_string());
        }
    }
    if file_name.contains('.') {
        // `foo.retry`, `notes.txt`: not a scope file. Ansible takes the
        // extensionless form too, which holds no dot.
        return None;
    }
    Some(file_name.to_string())
}

fn read_scope(entry: &Path, diagnostics: &mut Diagnostics) -> Vars {
    let mut vars = Vars::default();
    let files: Vec<PathBuf> = if entry.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(entry)
            .map(|entries| {
                entries
                    .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                    .collect()
            })
            .unwrap_or_default();
        files.retain(|file| file.is_file() && scope_name(file).is_some());
        files.sort();
        files
    } else {
        vec![entry.to_path_buf()]
    };
    for file in files {
        let text = match read_text(&file) {
            Ok(text) => text,
            Err(diagnostic) => {
                diagnostics.push(diagnostic);
                continue;
            }
        };
        match yaml::parse(&text) {
            Ok(Some(node)) => vars.merge(&read_vars(&node, &file, "a variables file", diagnostics)),
            Ok(None) => {}
            Err(error) => diagnostics.push(Diagnostic::error(
                Some(Origin::new(&file, error.at)),
                format!("YAML syntax: {}", error.message),
            )),
        }
    }
    vars
}
