//! The inventory: hosts, groups and variables, read the way Ansible reads
//! them (YAML and INI shapes, `group_vars/` and `host_vars/`, host ranges,
//! several `-i` merged), and each host resolved into the settings midfleet
//! connects and works with.
//!
//! Owns: loading (`yaml_format`, `ini_format`, `vars_files`, inventory
//! scripts and their JSON shape in `script`), the group graph, variable
//! precedence, host patterns (`pattern`), resolution of one host (`host`)
//! and its variables as templates see them (`scope`). Must not: contact a
//! host, or read a playbook.

mod address;
mod defaults;
mod extra_vars;
mod host;
mod ini_format;
mod jump;
mod known;
mod pattern;
mod range;
mod scope;
mod script;
mod shard;
mod ssh_config;
mod vars;
mod vars_files;
mod vaulted;
mod yaml_format;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use indexmap::{IndexMap, IndexSet};

use crate::diagnostic::{did_you_mean, Diagnostic, Diagnostics, Origin};

pub use defaults::HostDefaults;
pub use extra_vars::parse_extra_vars;
pub(crate) use extra_vars::unquote;
pub use host::{Host, DEFAULT_MID_HOME};
pub use jump::{parse_jump, JumpError, JumpHop, WordsError};
pub use known::{Known, RemotePathError, ServiceSpec, VarError};
pub use pattern::Selection;
pub use shard::{Shard, ShardError};
pub use ssh_config::SshConfig;
pub use ssh_config::SshConfigError;
pub use vars::{Var, Vars};
pub use vaulted::{UnreadableVaultFile, Vaulted};

/// Whether `name` can be an inventory variable's name.
pub fn is_variable_name(name: &str) -> bool {
    vars::is_identifier(name)
}

/// The implicit group every host belongs to.
pub const ALL: &str = "all";
/// The implicit group of hosts in no other group.
pub const UNGROUPED: &str = "ungrouped";

/// A group: its own variables, its direct hosts and child groups.
#[derive(Debug, Clone, Default)]
pub struct Group {
    pub name: String,
    /// Variables written in the inventory file.
    pub vars: Vars,
    /// Variables from `group_vars/` (which win over `vars`, as in Ansible).
    pub file_vars: Vars,
    pub hosts: IndexSet<String>,
    pub children: IndexSet<String>,
    pub origin: Option<Origin>,
}

/// A host as written: its variables and where it was first defined.
#[derive(Debug, Clone)]
pub struct HostEntry {
    pub name: String,
    pub vars: Vars,
    pub file_vars: Vars,
    pub origin: Origin,
}

/// Hosts and groups from one or more inventory sources.
#[derive(Debug, Default, Clone)]
pub struct Inventory {
    groups: IndexMap<String, Group>,
    hosts: IndexMap<String, HostEntry>,
    /// Directories whose `group_vars/` and `host_vars/` were read.
    vars_directories: Vec<PathBuf>,
    /// Every file read, for `check`'s summary.
    pub files: Vec<PathBuf>,
    /// Every group_vars/host_vars file read, in order, and whether it was
    /// a vaulted file (`-v`).
    pub vars_files: Vec<(PathBuf, bool)>,
    /// `-e/--extra-vars`: above every other variable of every host.
    extra_vars: Vars,
    /// The vault passwords, for vaulted files and values.
    vault: std::sync::Arc<crate::vault::Keyring>,
    /// Vaulted variables files that could not be decrypted.
    unreadable_vault_files: Vec<UnreadableVaultFile>,
    /// A copy the lazy variables of resolved hosts share (`hostvars`
    /// reaches every host), made at the first resolve.
    shared: std::sync::OnceLock<std::sync::Arc<Inventory>>,
}

impl Inventory {
    /// Reads every source (files or directories of inventory files) in
    /// order, later ones adding to and overriding earlier ones. Problems are
    /// collected, not fatal: the inventory holds what could be read.
    pub fn load(sources: &[PathBuf]) -> (Inventory, Diagnostics) {
        Inventory::load_with_vault(sources, Default::default())
    }

    /// [`Inventory::load`] with the vault passwords `vault` holds: whole
    /// vaulted files are decrypted as they are read, `!vault` values when
    /// a host uses them.
    pub fn load_with_vault(
        sources: &[PathBuf],
        vault: std::sync::Arc<crate::vault::Keyring>,
    ) -> (Inventory, Diagnostics) {
        let mut inventory = Inventory {
            vault,
            ..Inventory::default()
        };
        inventory.group_mut(ALL, None);
        let mut diagnostics = Diagnostics::new();
        for source in sources {
            inventory.load_source(source, &mut diagnostics);
        }
        inventory.finish(&mut diagnostics);
        (inventory, diagnostics)
    }

    /// Reads the text of one inventory file as [`Inventory::load`] reads
    /// each file (`path` names it in diagnostics and its extension picks the
    /// format), without looking for `group_vars/` or `host_vars/`: the
    /// inventory is this text alone. For tests and fuzzing.
    pub fn from_text(path: &Path, text: &str) -> (Inventory, Diagnostics) {
        let mut inventory = Inventory::default();
        inventory.group_mut(ALL, None);
        let mut diagnostics = Diagnostics::new();
        inventory.load_text(path, text, &mut diagnostics);
        inventory.finish(&mut diagnostics);
        (inventory, diagnostics)
    }

    fn load_source(&mut self, source: &Path, diagnostics: &mut Diagnostics) {
        let metadata = match std::fs::metadata(source) {
            Ok(metadata) => metadata,
            Err(error) => {
                diagnostics.push(
                    Diagnostic::error(
                        Some(Origin::file(source)),
                        format!("cannot read the inventory: {error}"),
                    )
                    .with_hint("give the inventory file or directory with -i"),
                );
                return;
            }
        };
        if metadata.is_dir() {
            let files = match list_inventory_directory(source) {
                Ok(files) => files,
                Err(error) => {
                    diagnostics.push(Diagnostic::error(
                        Some(Origin::file(source)),
                        error.to_string(),
                    ));
                    return;
                }
            };
            if files.is_empty() {
                diagnostics.push(Diagnostic::error(
                    Some(Origin::file(source)),
                    "the inventory directory holds no inventory file",
                ));
            }
            for file in files {
                if !script::is_executable(&file) && script::looks_like_script(&file) {
                    // Ansible tries it as INI, fails, warns and goes on.
                    diagnostics.push(
                        Diagnostic::warning(
                            Some(Origin::file(&file)),
                            "skipped: this file starts with `#!` but is not executable",
                        )
                        .with_hint(
                            "make it executable (chmod +x) to run it as an inventory script, \
                             as Ansible does, or move it out of the inventory directory",
                        ),
                    );
                    continue;
                }
                self.load_file(&file, diagnostics);
            }
            self.vars_directories.push(source.to_path_buf());
        } else {
            self.load_file(source, diagnostics);
            let directory = source
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
            let directory = if directory.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                directory
            };
            if !self.vars_directories.contains(&directory) {
                self.vars_directories.push(directory);
            }
        }
    }

    fn load_file(&mut self, path: &Path, diagnostics: &mut Diagnostics) {
        // Ansible tries its `script` plugin first on an executable source;
        // one the kernel will not run is read as a static file, as there.
        if script::is_executable(path) {
            if let script::Outcome::Ran = script::load(self, path, diagnostics) {
                self.files.push(path.to_path_buf());
                return;
            }
        } else if script::looks_like_script(path) {
            diagnostics.push(
                Diagnostic::error(
                    Some(Origin::file(path)),
                    "this inventory source starts with `#!` but is not executable",
                )
                .with_hint(
                    "make it executable (chmod +x) to run it as an inventory script, as \
                     Ansible does",
                ),
            );
            return;
        }
        let text = match crate::source_file::read_allowing_vault(path) {
            Ok(crate::source_file::Text::Plain(text)) => text,
            Ok(crate::source_file::Text::Vaulted(text)) => {
                // An inventory file is needed whole: it cannot be skipped.
                match crate::vault::reveal(&text, &self.vault) {
                    Ok(plaintext) => {
                        let plaintext = plaintext.expose();
                        let plaintext = plaintext.strip_prefix('\u{feff}').unwrap_or(plaintext);
                        self.load_text(path, plaintext, diagnostics);
                        self.mark_vaulted_file(path);
                    }
                    Err(error) => diagnostics.push(
                        Diagnostic::error(
                            Some(Origin::file(path)),
                            format!("cannot decrypt the vaulted inventory file: {error}"),
                        )
                        .with_hint(error.hint()),
                    ),
                }
                return;
            }
            Err(diagnostic) => {
                diagnostics.push(diagnostic);
                return;
            }
        };
        self.load_text(path, &text, diagnostics);
    }

    /// Marks every variable written in the decrypted vaulted inventory
    /// file `path` as sensitive.
    fn mark_vaulted_file(&mut self, path: &Path) {
        let scopes = self
            .groups
            .values_mut()
            .map(|group| &mut group.vars)
            .chain(self.hosts.values_mut().map(|host| &mut host.vars));
        for vars in scopes {
            vars.mark_vaulted_file(path);
        }
    }

    fn load_text(&mut self, path: &Path, text: &str, diagnostics: &mut Diagnostics) {
        self.files.push(path.to_path_buf());
        if looks_like_ini(path, text) {
            ini_format::load(self, path, text, diagnostics);
            return;
        }
        // The JSON an inventory script prints, saved to a file: read as the
        // script plugin reads it (Ansible's yaml plugin refuses it).
        if let Ok(Some(root)) = crate::yaml::parse(text) {
            // Ansible's `auto` plugin: a YAML file naming an inventory
            // plugin (aws_ec2, constructed, …) configures that plugin.
            if let Some(node) = root.get("plugin").filter(|node| node.text().is_some()) {
                let plugin = node.text().unwrap_or_default();
                diagnostics.push(
                    Diagnostic::error(
                        Some(Origin::new(path, node.at)),
                        format!(
                            "this file configures Ansible's inventory plugin `{plugin}`, which \
                             midfleet does not run (it reads INI, YAML and JSON inventories and \
                             inventory scripts)"
                        ),
                    )
                    .with_hint(format!(
                        "let Ansible run the plugin and give midfleet its result: \
                         `ansible-inventory -i {} --list > inventory.json`, then -i inventory.json",
                        path.display()
                    )),
                );
                return;
            }
            if script::is_script_shape(&root) {
                script::load_shape(self, path, &root, diagnostics);
                return;
            }
        }
        yaml_format::load(self, path, text, diagnostics);
    }

    /// After every source: `group_vars/`, `host_vars/`, `ungrouped`, and the
    /// checks that need the whole graph.
    fn finish(&mut self, diagnostics: &mut Diagnostics) {
        let top_level: Vec<String> = self
            .groups
            .keys()
            .filter(|name| name.as_str() != ALL && !self.is_child_of_any(name))
            .cloned()
            .collect();
        for name in top_level {
            self.group_mut(ALL, None).children.insert(name);
        }
        let grouped: BTreeSet<String> = self
            .groups
            .values()
            .filter(|group| group.name != ALL && group.name != UNGROUPED)
            .flat_map(|group| group.hosts.iter().cloned())
            .collect();
        let ungrouped: Vec<String> = self
            .hosts
            .keys()
            .filter(|name| !grouped.contains(*name))
            .cloned()
            .collect();
        if let Some(group) = self.groups.get_mut(UNGROUPED) {
            // A host written before any section and in a group later is
            // not ungrouped (Ansible's reconcile_inventory).
            group.hosts.retain(|host| !grouped.contains(host));
        }
        if !ungrouped.is_empty() || self.groups.contains_key(UNGROUPED) {
            self.group_mut(UNGROUPED, None).hosts.extend(ungrouped);
            self.group_mut(ALL, None)
                .children
                .insert(UNGROUPED.to_string());
        }
        // After `ungrouped` exists, so group_vars/ungrouped.yml applies.
        let directories = std::mem::take(&mut self.vars_directories);
        for directory in &directories {
            vars_files::load(self, directory, diagnostics);
        }
        self.vars_directories = directories;
        if let Some(cycle) = self.find_cycle() {
            diagnostics.push(
                Diagnostic::error(
                    self.groups[&cycle[0]].origin.clone(),
                    format!("groups are their own ancestors: {}", cycle.join(" → ")),
                )
                .with_hint("a group cannot be a child of one of its children"),
            );
        }
    }

    fn is_child_of_any(&self, name: &str) -> bool {
        self.groups
            .values()
            .any(|group| group.children.contains(name))
    }

    fn find_cycle(&self) -> Option<Vec<String>> {
        fn visit<'a>(
            inventory: &'a Inventory,
            name: &'a str,
            path: &mut Vec<&'a str>,
            done: &mut BTreeSet<&'a str>,
        ) -> Option<Vec<String>> {
            if let Some(start) = path.iter().position(|entry| *entry == name) {
                let mut cycle: Vec<String> = path[start..]
                    .iter()
                    .map(|entry| entry.to_string())
                    .collect();
                cycle.push(name.to_string());
                return Some(cycle);
            }
            if !done.insert(name) {
                return None;
            }
            path.push(name);
            if let Some(group) = inventory.groups.get(name) {
                for child in &group.children {
                    if let Some(cycle) = visit(inventory, child, path, done) {
                        return Some(cycle);
                    }
                }
            }
            path.pop();
            None
        }
        let mut done = BTreeSet::new();
        for name in self.groups.keys() {
            if let Some(cycle) = visit(self, name, &mut Vec::new(), &mut done) {
                return Some(cycle);
            }
        }
        None
    }

    /// What loading the vault passwords warned about since the last call
    /// (a password file others can read, a source that failed).
    pub fn vault_warnings(&self) -> Vec<Diagnostic> {
        self.vault
            .take_warnings()
            .into_iter()
            .map(|warning| {
                let diagnostic = Diagnostic::warning(None, warning.message);
                match warning.hint {
                    Some(hint) => diagnostic.with_hint(hint),
                    None => diagnostic,
                }
            })
            .collect()
    }

    /// The group `name`, created when new.
    pub(crate) fn group_mut(&mut self, name: &str, origin: Option<Origin>) -> &mut Group {
        let group = self
            .groups
            .entry(name.to_string())
            .or_insert_with(|| Group {
                name: name.to_string(),
                ..Group::default()
            });
        if group.origin.is_none() {
            group.origin = origin;
        }
        group
    }

    /// Adds host `name` to `group` with `vars` (merged over earlier ones).
    pub(crate) fn add_host(&mut self, group: &str, name: &str, vars: Vars, origin: Origin) {
        let entry = self
            .hosts
            .entry(name.to_string())
            .or_insert_with(|| HostEntry {
                name: name.to_string(),
                vars: Vars::default(),
                file_vars: Vars::default(),
                origin,
            });
        entry.vars.merge(&vars);
        // A host written under `all` is one of its own hosts (first in its
        // pattern order, as in Ansible), and `ungrouped` when in no other.
        self.group_mut(group, None).hosts.insert(name.to_string());
    }

    /// Sets `-e/--extra-vars` ([`parse_extra_vars`]): Ansible's highest
    /// precedence, over every inventory variable of every host. Call it
    /// before resolving any host.
    pub fn set_extra_vars(&mut self, vars: Vars) {
        self.extra_vars = vars;
        self.shared = std::sync::OnceLock::new();
    }

    /// The inventory as resolved hosts share it.
    pub(crate) fn shared(&self) -> std::sync::Arc<Inventory> {
        self.shared
            .get_or_init(|| {
                std::sync::Arc::new(Inventory {
                    shared: std::sync::OnceLock::new(),
                    ..self.clone()
                })
            })
            .clone()
    }

    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.get(name)
    }

    pub fn host_entries(&self) -> impl Iterator<Item = &HostEntry> {
        self.hosts.values()
    }

    pub fn host_entry(&self, name: &str) -> Option<&HostEntry> {
        self.hosts.get(name)
    }

    pub(crate) fn host_entry_mut(&mut self, name: &str) -> Option<&mut HostEntry> {
        self.hosts.get_mut(name)
    }

    pub(crate) fn group_entry_mut(&mut self, name: &str) -> Option<&mut Group> {
        self.groups.get_mut(name)
    }

    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// Every host of `group` and its descendants, in the order Ansible's
    /// `Group.get_hosts` gives them: the group's own hosts, then each
    /// child's, then the grandchildren's, level by level
    /// ([`Inventory::group_walk`]); `all` holds its own hosts, then
    /// `ungrouped`'s, then the top-level groups'.
    pub fn hosts_of_group(&self, group: &str) -> IndexSet<String> {
        let mut hosts = IndexSet::new();
        for name in self.group_walk(group) {
            if let Some(group) = self.groups.get(name) {
                hosts.extend(group.hosts.iter().cloned());
            }
        }
        hosts
    }

    /// `group`, its children in order, then each level below in turn, every
    /// group once. Ansible takes the groups of one level from a Python set,
    /// so below the children its order of hosts from groups with different
    /// parents changes from run to run; here the parents of a level are
    /// taken in the order they were reached (one of the orders Ansible gives).
    fn group_walk<'a>(&'a self, group: &'a str) -> Vec<&'a str> {
        let mut ordered = vec![group];
        let mut seen: BTreeSet<&str> = BTreeSet::from([group]);
        let mut level = vec![group];
        while !level.is_empty() {
            let mut next = Vec::new();
            for parent in level {
                for child in self.children_of(parent) {
                    if seen.insert(child) {
                        ordered.push(child);
                        next.push(child);
                    }
                }
            }
            level = next;
        }
        ordered
    }

    /// A group's children in Ansible's order: `all` has `ungrouped` first
    /// (Ansible makes it so before reading any source).
    fn children_of<'a>(&'a self, group: &str) -> Vec<&'a str> {
        let Some(entry) = self.groups.get(group) else {
            return Vec::new();
        };
        let mut children: Vec<&str> = entry.children.iter().map(String::as_str).collect();
        if group == ALL {
            if let Some(position) = children.iter().position(|child| *child == UNGROUPED) {
                let ungrouped = children.remove(position);
                children.insert(0, ungrouped);
            }
        }
        children
    }

    /// The groups `host` belongs to, directly or through children, with
    /// their depth below `all` (the deepest path counts, as in Ansible).
    pub fn groups_of_host(&self, host: &str) -> Vec<(String, usize)> {
        let depths = self.group_depths();
        let mut groups: Vec<(String, usize)> = self
            .groups
            .keys()
            .filter(|group| group.as_str() == ALL || self.hosts_of_group(group).contains(host))
            .map(|group| {
                (
                    group.clone(),
                    depths.get(group.as_str()).copied().unwrap_or(1),
                )
            })
            .collect();
        // Ansible's sort_groups: by depth, then `ansible_group_priority`
        // (default 1; the higher is merged later and wins), then name.
        groups.sort_by_cached_key(|(group, depth)| {
            (*depth, self.group_priority(group), group.clone())
        });
        groups
    }

    /// A group's `ansible_group_priority`, as Ansible takes it: only from
    /// the inventory file's variables of the group (group_vars/ files do
    /// not set it), 1 when unset or not a whole number.
    fn group_priority(&self, group: &str) -> i64 {
        self.groups
            .get(group)
            .and_then(|group| group.vars.get("ansible_group_priority"))
            .and_then(|var| var.node.text())
            .and_then(|text| text.trim().parse::<i64>().ok())
            .unwrap_or(1)
    }

    fn group_depths(&self) -> HashMap<&str, usize> {
        let mut depths: HashMap<&str, usize> = HashMap::new();
        depths.insert(ALL, 0);
        // Longest path from `all`, bounded by the number of groups (cycles
        // are reported separately).
        for _ in 0..self.groups.len() {
            let mut changed = false;
            for group in self.groups.values() {
                let Some(&depth) = depths.get(group.name.as_str()) else {
                    continue;
                };
                for child in &group.children {
                    let entry = depths.entry(child.as_str()).or_insert(0);
                    if *entry < depth + 1 && child != ALL {
                        *entry = depth + 1;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        depths
    }

    /// Every group and host name, for "did you mean".
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.groups
            .keys()
            .chain(self.hosts.keys())
            .map(String::as_str)
    }

    /// A "did you mean" hint for an unknown group or host name.
    pub fn suggestion(&self, name: &str) -> Option<String> {
        did_you_mean(name, self.names()).map(|close| format!("did you mean `{close}`?"))
    }
}

/// Refuses names that would break patterns or reach a command line as an
/// option: whitespace, control characters, pattern operators, a leading `-`.
/// A host name may hold `:`, as Ansible's do (`2001:db8::1`,
/// `fe80::1%eth0`); a group name may not (`[group:vars]`).
pub(crate) fn check_name(kind: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { kind });
    }
    if name.starts_with('-') {
        return Err(NameError::Dash {
            kind,
            name: name.to_string(),
        });
    }
    if let Some(character) = name.chars().find(|character| {
        character.is_whitespace()
            || character.is_control()
            || ",!&".contains(*character)
            || (*character == ':' && kind != "host")
    }) {
        return Err(NameError::Character {
            kind,
            name: name.to_string(),
            character,
        });
    }
    Ok(())
}

/// Why a group or host name is refused (`kind` is "group" or "host").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("an empty {kind} name")]
    Empty { kind: &'static str },
    #[error("{kind} name `{name}` starts with `-`")]
    Dash { kind: &'static str, name: String },
    #[error("{kind} name `{}` holds `{}`", .name.escape_debug(), .character.escape_debug())]
    Character {
        kind: &'static str,
        name: String,
        character: char,
    },
}

/// Ansible's INI shape: by extension; otherwise a file that is not a YAML
/// mapping is INI (as Ansible falls back from its yaml plugin to ini).
fn looks_like_ini(path: &Path, text: &str) -> bool {
    match path.extension().and_then(|extension| extension.to_str()) {
        Some("yml" | "yaml" | "json") => false,
        Some("ini" | "cfg") => true,
        _ => {
            let has_section = text.lines().any(|line| {
                let line = line.trim();
                line.starts_with('[') && line.ends_with(']')
            });
            has_section
                || !matches!(crate::yaml::parse(text), Ok(Some(root)) if root.as_mapping().is_some())
        }
    }
}

/// An inventory directory that cannot be listed.
#[derive(Debug, thiserror::Error)]
#[error("cannot list: {0}")]
struct ListError(std::io::Error);

/// How deep `list_inventory_directory` goes (a symlink loop stops here).
const MAX_DIRECTORY_DEPTH: usize = 16;

/// Names Ansible skips in an inventory directory (its `IGNORED`: hidden
/// names, the vars folders, and `INVENTORY_IGNORE_EXTS`' default endings).
fn ignored_in_directory(name: &str) -> bool {
    const ENDINGS: [&str; 12] = [
        ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg",
        ".retry",
    ];
    name.starts_with('.')
        || matches!(name, "host_vars" | "group_vars" | "vars_plugins")
        || ENDINGS.iter().any(|ending| name.ends_with(ending))
}

/// The inventory sources of a directory, as Ansible's `parse_source` takes
/// them: entries in name order, sub-directories read in place (depth
/// first), the ignored names skipped. Executables among them are scripts.
fn list_inventory_directory(directory: &Path) -> Result<Vec<PathBuf>, ListError> {
    fn walk(directory: &Path, depth: usize, files: &mut Vec<PathBuf>) -> Result<(), ListError> {
        let mut entries: Vec<(String, PathBuf)> = std::fs::read_dir(directory)
            .map_err(ListError)?
            .map(|entry| {
                entry.map(|entry| {
                    (
                        entry.file_name().to_string_lossy().into_owned(),
                        entry.path(),
                    )
                })
            })
            .collect::<Result<_, _>>()
            .map_err(ListError)?;
        entries.sort_by(|left, right| left.1.cmp(&right.1));
        for (name, path) in entries {
            if ignored_in_directory(&name) {
                continue;
            }
            if path.is_dir() {
                if depth < MAX_DIRECTORY_DEPTH {
                    walk(&path, depth + 1, files)?;
                }
            } else if path.is_file() {
                files.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(directory, 0, &mut files)?;
    Ok(files)
}

#[cfg(test)]
mod connection_tests;
#[cfg(test)]
mod tests;
