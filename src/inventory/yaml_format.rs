//! Ansible's YAML inventory shape:
//!
//! ```yaml
//! all:
//!   vars: { … }
//!   hosts: { name: { vars… } }
//!   children: { group: { vars, hosts, children } }
//! ```

use std::path::Path;

use crate::diagnostic::{did_you_mean, Diagnostic, Diagnostics, Origin};
use crate::yaml::{self, Node};

use super::address::split_host_port;
use super::ini_format::port_var;
use super::range;
use super::vars::read_vars;
use super::vars::Vars;
use super::{check_name, Inventory};

const GROUP_KEYS: [&str; 3] = ["hosts", "vars", "children"];

pub(super) fn load(
    inventory: &mut Inventory,
    path: &Path,
    text: &str,
    diagnostics: &mut Diagnostics,
) {
    let root = match yaml::parse(text) {
        Ok(Some(root)) => root,
        Ok(None) => {
            diagnostics.push(Diagnostic::warning(
                Some(Origin::file(path)),
                "the inventory file is empty",
            ));
            return;
        }
        Err(error) => {
            diagnostics.push(error.diagnostic(path));
            return;
        }
    };
    let Some(groups) = root.as_mapping() else {
        diagnostics.push(Diagnostic::error(
            Some(Origin::new(path, root.at)),
            format!(
                "an inventory is a mapping of groups (`all:` …), not {}",
                root.describe()
            ),
        ));
        return;
    };
    for (key, value) in groups {
        match key.text() {
            Some(name) => load_group(inventory, path, name, key, value, diagnostics),
            None => diagnostics.push(Diagnostic::error(
                Some(Origin::new(path, key.at)),
                "a group name must be a string",
            )),
        }
    }
}

fn load_group(
    inventory: &mut Inventory,
    path: &Path,
    name: &str,
    key: &Node,
    body: &Node,
    diagnostics: &mut Diagnostics,
) {
    let origin = Origin::new(path, key.at);
    if let Err(error) = check_name("group", name) {
        diagnostics.push(Diagnostic::error(Some(origin), error.to_string()));
        return;
    }
    inventory.group_mut(name, Some(origin.clone()));
    if body.is_null() {
        return;
    }
    let Some(entries) = body.as_mapping() else {
        diagnostics.push(
            Diagnostic::error(
                Some(Origin::new(path, body.at)),
                format!(
                    "group `{name}` must be a mapping with hosts, vars or children, not {}",
                    body.describe()
                ),
            )
            .with_hint("write `hosts:` (a mapping of host names) under the group"),
        );
        return;
    };
    for (section, value) in entries {
        let section_name = section.text().unwrap_or_default();
        match section_name {
            "vars" => {
                let vars = read_vars(
                    value,
                    path,
                    &format!("`vars` of group `{name}`"),
                    diagnostics,
                );
                inventory.group_mut(name, None).vars.merge(&vars);
            }
            "hosts" => load_hosts(inventory, path, name, value, diagnostics),
            "children" => {
                if value.is_null() {
                    continue;
                }
                let Some(children) = value.as_mapping() else {
                    diagnostics.push(Diagnostic::error(
                        Some(Origin::new(path, value.at)),
                        format!(
                            "`children` of group `{name}` must be a mapping of groups, not {}",
                            value.describe()
                        ),
                    ));
                    continue;
                };
                for (child_key, child_body) in children {
                    let Some(child) = child_key.text() else {
                        continue;
                    };
                    load_group(inventory, path, child, child_key, child_body, diagnostics);
                    if check_name("group", child).is_ok() && child != name {
                        inventory
                            .group_mut(name, None)
                            .children
                            .insert(child.to_string());
                    }
                }
            }
            other => {
                let mut diagnostic = Diagnostic::error(
                    Some(Origin::new(path, section.at)),
                    format!("group `{name}` has an unknown key `{other}`"),
                );
                diagnostic = match did_you_mean(other, GROUP_KEYS) {
                    Some(close) => diagnostic.with_hint(format!("did you mean `{close}`?")),
                    None => diagnostic.with_hint(
                        "a group holds `hosts`, `vars` and `children`; put a group under `children:`",
                    ),
                };
                diagnostics.push(diagnostic);
            }
        }
    }
}

fn load_hosts(
    inventory: &mut Inventory,
    path: &Path,
    group: &str,
    value: &Node,
    diagnostics: &mut Diagnostics,
) {
    if value.is_null() {
        return;
    }
    let Some(hosts) = value.as_mapping() else {
        let hint = if value.as_sequence().is_some() {
            "hosts is a mapping: write `hosts: { mid-01: , mid-02: }` or one `name:` per line, not a list"
        } else {
            "hosts is a mapping of host names to their variables"
        };
        diagnostics.push(
            Diagnostic::error(
                Some(Origin::new(path, value.at)),
                format!(
                    "`hosts` of group `{group}` must be a mapping, not {}",
                    value.describe()
                ),
            )
            .with_hint(hint),
        );
        return;
    };
    for (host_key, host_vars) in hosts {
        let Some(pattern) = host_key.text() else {
            continue;
        };
        let origin = Origin::new(path, host_key.at);
        // `host:2222` keys, as Ansible's yaml plugin reads them.
        let (pattern, port) = split_host_port(pattern);
        let names = match range::expand(&pattern) {
            Ok(names) => names,
            Err(error) => {
                diagnostics.push(Diagnostic::error(Some(origin), error.to_string()));
                continue;
            }
        };
        let mut vars = Vars::default();
        if let Some(port) = port {
            vars.insert(
                "ansible_port".to_string(),
                port_var(&port, host_key.at, origin.clone()),
            );
        }
        vars.merge(&read_vars(
            host_vars,
            path,
            &format!("host `{pattern}`"),
            diagnostics,
        ));
        for name in names {
            if let Err(error) = check_name("host", &name) {
                diagnostics.push(Diagnostic::error(Some(origin.clone()), error.to_string()));
                continue;
            }
            inventory.add_host(group, &name, vars.clone(), origin.clone());
        }
    }
}
