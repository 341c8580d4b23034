//! Ansible's INI inventory shape:
//!
//! ```ini
//! mid-lab-01 ansible_host=10.0.0.5        # before any section: ungrouped
//! [emea]
//! mid-emea-[01:20] mid_cluster=emea
//! [emea:vars]
//! jump=ops@bastion-emea.example.com
//! [europe:children]
//! emea
//! ```

use std::path::Path;

use indexmap::IndexMap;

use crate::diagnostic::{Diagnostic, Diagnostics, Location, Origin};
use crate::yaml::Node;

use super::address::split_host_port;
use super::jump::split_words;
use super::range;
use super::vars::{check_definition, Var, Vars};
use super::{check_name, Inventory, UNGROUPED};

enum Section {
    Hosts(String),
    Vars(String),
    Children(String),
}

pub(super) fn load(
    inventory: &mut Inventory,
    path: &Path,
    text: &str,
    diagnostics: &mut Diagnostics,
) {
    let mut section = Section::Hosts(UNGROUPED.to_string());
    // Children named before their own section, as Ansible's ini plugin
    // keeps them: each becomes a child of its parents only when its
    // `[child]` or `[child:children]` section is reached, so a parent's
    // children are in the order their sections are written (its hosts,
    // and so `g[0]`, follow that order). child → (parents, where named).
    let mut pending: IndexMap<String, (Vec<String>, Origin)> = IndexMap::new();
    for (index, raw_line) in text.lines().enumerate() {
        let line_number = index + 1;
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let indent = raw_line.len() - raw_line.trim_start().len();
        // `offset` is in bytes of the trimmed line; a column counts
        // characters (bytes that do not continue a UTF-8 sequence).
        let at = |offset: usize| {
            let before = &raw_line.as_bytes()[..(indent + offset).min(raw_line.len())];
            Origin::new(
                path,
                Location {
                    line: line_number,
                    column: 1 + before.iter().filter(|byte| (**byte & 0xC0) != 0x80).count(),
                },
            )
        };
        // `[2001:db8::1]:2222` is a host, not a section (as in Ansible,
        // whose section lines end with `]`).
        let bracketed_host = !line.ends_with(']')
            && line
                .split_whitespace()
                .next()
                .is_some_and(|first| first.contains("]:"));
        if line.starts_with('[') && !bracketed_host {
            // As Ansible's section pattern: `[group]`, `[group:kind]`, then
            // only blanks or a `#` comment (`[naughty:children] # coal`).
            let Some(header) = line.strip_prefix('[').and_then(|rest| {
                let (inside, after) = rest.split_once(']')?;
                let after = after.trim_start();
                (after.is_empty() || after.starts_with('#')).then_some(inside)
            }) else {
                diagnostics.push(
                    Diagnostic::error(Some(at(0)), "a section header must end with `]`")
                        .with_hint("write `[group]`, `[group:vars]` or `[group:children]`, followed by nothing or a `# comment`"),
                );
                continue;
            };
            let (group, kind) = match header.split_once(':') {
                Some((group, kind)) => (group.trim(), Some(kind.trim())),
                None => (header.trim(), None),
            };
            if let Err(error) = check_name("group", group) {
                diagnostics.push(Diagnostic::error(Some(at(1)), error.to_string()));
                continue;
            }
            inventory.group_mut(group, Some(at(1)));
            if kind != Some("vars") {
                add_pending_child(inventory, group, &mut pending);
            }
            section = match kind {
                None => Section::Hosts(group.to_string()),
                Some("vars") => Section::Vars(group.to_string()),
                Some("children") => Section::Children(group.to_string()),
                Some(other) => {
                    diagnostics.push(
                        Diagnostic::error(Some(at(1)), format!("unknown section kind `:{other}`"))
                            .with_hint("sections are [group], [group:vars] and [group:children]"),
                    );
                    continue;
                }
            };
            continue;
        }
        match &section {
            Section::Hosts(group) => host_line(inventory, group, line, &at, diagnostics),
            Section::Vars(group) => {
                let Some((name, value)) = line.split_once('=') else {
                    diagnostics.push(Diagnostic::error(
                        Some(at(0)),
                        "a [group:vars] line is `name=value`",
                    ));
                    continue;
                };
                let after_equals = line.len() - value.len();
                let value_column = after_equals + (value.len() - value.trim_start().len());
                let (name, value) = (name.trim(), value.trim());
                let origin = at(value_column);
                let location = origin.at.unwrap_or(Location {
                    line: line_number,
                    column: 1,
                });
                let var = Var {
                    node: ini_value(value, location),
                    origin,
                };
                check_definition(name, &var, diagnostics);
                inventory
                    .group_mut(group, None)
                    .vars
                    .insert(name.to_string(), var);
            }
            Section::Children(group) => {
                let child = line;
                if let Err(error) = check_name("group", child) {
                    diagnostics.push(Diagnostic::error(Some(at(0)), error.to_string()));
                    continue;
                }
                if child == group {
                    continue;
                }
                let declared =
                    child == "all" || child == UNGROUPED || inventory.group(child).is_some();
                if declared {
                    inventory
                        .group_mut(group, None)
                        .children
                        .insert(child.to_string());
                } else {
                    let (parents, _) = pending
                        .entry(child.to_string())
                        .or_insert_with(|| (Vec::new(), at(0)));
                    if !parents.iter().any(|parent| parent == group) {
                        parents.push(group.to_string());
                    }
                }
            }
        }
    }
    for (child, (parents, origin)) in pending {
        let parent = parents.last().map(String::as_str).unwrap_or_default();
        diagnostics.push(
            Diagnostic::error(
                Some(origin),
                format!("[{parent}:children] names the group `{child}`, which has no section of its own"),
            )
            .with_hint(format!(
                "declare it with a `[{child}]` section (it may be empty), or remove it from [{parent}:children]; Ansible refuses this file too (\"includes undefined group\")"
            )),
        );
    }
}

/// `group`'s section is reached: it becomes a child of the parents that
/// named it before (as Ansible's `_add_pending_children`).
fn add_pending_child(
    inventory: &mut Inventory,
    group: &str,
    pending: &mut IndexMap<String, (Vec<String>, Origin)>,
) {
    let Some((parents, _)) = pending.shift_remove(group) else {
        return;
    };
    for parent in parents {
        inventory
            .group_mut(&parent, None)
            .children
            .insert(group.to_string());
        add_pending_child(inventory, &parent, pending);
    }
}

fn host_line(
    inventory: &mut Inventory,
    group: &str,
    line: &str,
    at: &dyn Fn(usize) -> Origin,
    diagnostics: &mut Diagnostics,
) {
    // A `#` after a space starts a comment, as in Ansible.
    let line = match line.find(" #") {
        Some(comment) => line[..comment].trim_end(),
        None => line,
    };
    let words = match split_words(line) {
        Ok(words) => words,
        Err(error) => {
            diagnostics.push(Diagnostic::error(Some(at(0)), error.to_string()));
            return;
        }
    };
    let Some((first, assignments)) = words.split_first() else {
        return;
    };
    // `host:2222`, `[2001:db8::1]:2222`, as Ansible's ini plugin reads them.
    let (pattern, port) = split_host_port(&first.text);
    if first.text.trim_end().ends_with(':') && port.is_none() {
        diagnostics.push(
            Diagnostic::error(
                Some(at(0)),
                format!(
                    "host `{}` ends with `:`, which is kept for a port",
                    first.text
                ),
            )
            .with_hint("write `host:PORT`, or the host name alone"),
        );
        return;
    }
    let mut vars = Vars::default();
    if let Some(port) = port {
        let origin = at(first.offset);
        let location = origin.at.unwrap_or(Location { line: 1, column: 1 });
        vars.insert(
            "ansible_port".to_string(),
            port_var(&port, location, origin),
        );
    }
    for word in assignments {
        let Some((name, value)) = word.text.split_once('=') else {
            // Never echo the word: `ansible_password = s3cret` splits into
            // words that are values.
            diagnostics.push(
                Diagnostic::error(Some(at(word.offset)), "a word after the host name is not `name=value`")
                    .with_hint("host lines are `host name=value name=value …`, without spaces around `=`; quote values with spaces"),
            );
            continue;
        };
        let origin = at(word.offset + name.len() + 1);
        let location = origin.at.unwrap_or(Location { line: 1, column: 1 });
        let var = Var {
            node: Node::scalar(value, !word.quoted, location),
            origin,
        };
        check_definition(name, &var, diagnostics);
        vars.insert(name.to_string(), var);
    }
    let names = match range::expand(&pattern) {
        Ok(names) => names,
        Err(error) => {
            diagnostics.push(Diagnostic::error(Some(at(0)), error.to_string()));
            return;
        }
    };
    for name in names {
        if let Err(error) = check_name("host", &name) {
            diagnostics.push(Diagnostic::error(Some(at(0)), error.to_string()));
            continue;
        }
        inventory.add_host(group, &name, vars.clone(), at(0));
    }
}

/// The `ansible_port` a `host:PORT` key gives (a number, as Ansible makes
/// it; digits too large for one are checked as the port they claim to be).
pub(super) fn port_var(digits: &str, at: Location, origin: Origin) -> Var {
    let text = digits
        .parse::<u64>()
        .map_or_else(|_| digits.to_string(), |port| port.to_string());
    Var {
        node: Node::scalar(text, true, at),
        origin,
    }
}

/// A `[group:vars]` value: quoted means a string, otherwise typed like a
/// YAML plain scalar (so `2222` is a number, `yes` a word Ansible's booleans
/// accept).
fn ini_value(value: &str, at: Location) -> Node {
    let quoted = value.len() >= 2
        && ((value.starts_with('"') && value.ends_with('"'))
            || (value.starts_with('\'') && value.ends_with('\'')));
    if quoted {
        Node::scalar(&value[1..value.len() - 1], false, at)
    } else {
        Node::scalar(value, true, at)
    }
}
