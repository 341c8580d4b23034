//! `check`: everything that can be validated without contacting a host —
//! the inventory, the playbook, the host selection, every selected host's
//! settings and rendered desired values, and optionally the secrets.
//!
//! Owns: running those steps and collecting every problem. Must not: print,
//! or touch a host.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::desired::{self, DesiredHost, DesiredValue};
use crate::diagnostic::{Diagnostic, Diagnostics, Origin};
use crate::inventory::{Host, Inventory};
use crate::playbook::Playbook;
use crate::secret::{SecretRef, SecretResolver};
use crate::template::Templates;

/// What to check.
pub struct CheckRequest {
    pub inventory: Vec<PathBuf>,
    pub playbook: Option<PathBuf>,
    pub limit: Option<String>,
    pub resolve_secrets: bool,
}

/// What `check` found.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub inventory_files: Vec<PathBuf>,
    pub host_count: usize,
    pub group_count: usize,
    /// The hosts the playbook (or `--limit`) selects, in inventory order.
    pub selected: Vec<String>,
    pub parameters_set: usize,
    pub parameters_unset: usize,
    pub secrets_resolved: usize,
    pub diagnostics: Vec<Diagnostic>,
}

impl CheckReport {
    pub fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|diagnostic| diagnostic.is_error())
            .count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }
}

/// A loaded inventory and the hosts a pattern and `--limit` select,
/// resolved. Shared by the commands that work on hosts.
pub struct Selected {
    pub inventory: Inventory,
    pub hosts: Vec<Host>,
}

/// Loads the inventory and resolves the hosts `pattern` ∧ `limit` select.
/// `None` when an error makes the selection meaningless.
pub fn select_hosts(
    inventory_paths: &[PathBuf],
    pattern: &str,
    pattern_origin: Option<&Origin>,
    limit: Option<&str>,
    templates: &Templates,
    diagnostics: &mut Diagnostics,
) -> Option<Selected> {
    let (inventory, loaded) = Inventory::load(inventory_paths);
    diagnostics.extend(loaded);
    if diagnostics.has_errors() {
        return None;
    }
    let mut names = match inventory.select(pattern, pattern_origin) {
        Ok(selection) => {
            selection
                .warnings
                .into_iter()
                .for_each(|warning| diagnostics.push(warning));
            selection.hosts
        }
        Err(errors) => {
            errors.into_iter().for_each(|error| diagnostics.push(error));
            return None;
        }
    };
    if let Some(limit) = limit {
        match inventory.select(limit, None) {
            Ok(selection) => {
                selection
                    .warnings
                    .into_iter()
                    .for_each(|warning| diagnostics.push(warning));
                names.retain(|name| selection.hosts.contains(name));
            }
            Err(errors) => {
                errors.into_iter().for_each(|error| {
                    diagnostics.push(Diagnostic {
                        message: format!("--limit: {}", error.message),
                        ..error
                    })
                });
                return None;
            }
        }
    }
    let mut hosts = Vec::with_capacity(names.len());
    for name in &names {
        match inventory.resolve(name, templates) {
            Ok(host) => hosts.push(host),
            Err(problems) => problems
                .into_iter()
                .for_each(|problem| diagnostics.push(problem)),
        }
    }
    Some(Selected { inventory, hosts })
}

/// Runs every offline check and reports all problems.
pub fn check(request: &CheckRequest) -> CheckReport {
    let templates = Templates::new();
    let mut diagnostics = Diagnostics::new();
    let playbook = request.playbook.as_ref().and_then(|path| {
        let (playbook, found) = Playbook::load(path);
        diagnostics.extend(found);
        playbook
    });
    let playbook_failed = request.playbook.is_some() && playbook.is_none();
    let (pattern, origin) = match &playbook {
        Some(playbook) => (playbook.hosts.clone(), Some(playbook.hosts_origin.clone())),
        None => ("all".to_string(), None),
    };
    let mut report = CheckReport {
        inventory_files: Vec::new(),
        host_count: 0,
        group_count: 0,
        selected: Vec::new(),
        parameters_set: playbook.as_ref().map_or(0, |playbook| playbook.set.len()),
        parameters_unset: playbook.as_ref().map_or(0, |playbook| playbook.unset.len()),
        secrets_resolved: 0,
        diagnostics: Vec::new(),
    };
    let selected = select_hosts(
        &request.inventory,
        &pattern,
        origin.as_ref(),
        request.limit.as_deref(),
        &templates,
        &mut diagnostics,
    );
    if let Some(selected) = &selected {
        report.inventory_files = selected.inventory.files.clone();
        report.host_count = selected.inventory.host_count();
        report.group_count = selected.inventory.groups().count();
        report.selected = selected
            .hosts
            .iter()
            .map(|host| host.name.clone())
            .collect();
        if let (Some(playbook), false) = (&playbook, playbook_failed) {
            let desired: Vec<DesiredHost> = selected
                .hosts
                .iter()
                .filter_map(|host| match desired::render(playbook, host, &templates) {
                    Ok(desired) => Some(desired),
                    Err(problems) => {
                        problems
                            .into_iter()
                            .for_each(|problem| diagnostics.push(problem));
                        None
                    }
                })
                .collect();
            if request.resolve_secrets && !diagnostics.has_errors() {
                report.secrets_resolved = resolve_all(&desired, &mut diagnostics);
            }
        }
        if report.selected.is_empty() && !diagnostics.has_errors() {
            diagnostics.push(Diagnostic::warning(
                origin.clone(),
                format!("`{pattern}` selects no host"),
            ));
        }
    }
    report.diagnostics = deduplicated(diagnostics);
    report
}

/// Resolves each distinct secret reference once; the values are dropped
/// (and zeroised) at once. Returns how many resolved.
fn resolve_all(desired: &[DesiredHost], diagnostics: &mut Diagnostics) -> usize {
    let mut references: BTreeMap<SecretRef, Vec<&str>> = BTreeMap::new();
    for host in desired {
        for parameter in &host.set {
            if let DesiredValue::Secret(reference) = &parameter.value {
                references
                    .entry(reference.clone())
                    .or_default()
                    .push(&host.host.name);
            }
        }
    }
    let mut resolver = SecretResolver::new();
    let mut resolved = 0;
    for (reference, hosts) in &references {
        match resolver.resolve(reference) {
            Ok(_) => resolved += 1,
            Err(error) => {
                let mut diagnostic =
                    Diagnostic::error(None, format!("{error} (used by {})", summarize(hosts)));
                if let Some(hint) = error.hint() {
                    diagnostic = diagnostic.with_hint(hint);
                }
                diagnostics.push(diagnostic);
            }
        }
    }
    resolved
}

fn summarize(hosts: &[&str]) -> String {
    match hosts {
        [one] => format!("host {one}"),
        [first, rest @ ..] => format!("hosts {first} and {} more", rest.len()),
        [] => "no host".into(),
    }
}

/// The same problem found through several hosts is reported once.
fn deduplicated(diagnostics: Diagnostics) -> Vec<Diagnostic> {
    let mut unique: Vec<Diagnostic> = Vec::new();
    for diagnostic in diagnostics.into_vec() {
        if !unique.contains(&diagnostic) {
            unique.push(diagnostic);
        }
    }
    unique
}
