//! `check`: everything that can be validated without contacting a host —
//! the inventory, the playbook, the host selection, every selected host's
//! settings and rendered desired values, and optionally the secrets.
//!
//! Owns: running those steps and collecting every problem. Must not: print,
//! or touch a host.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::inventory::Shard;
use crate::playbook::desired::{self, DesiredHost, DesiredValue};
use crate::playbook::Playbook;
use crate::secret::{FileScope, SecretRef, SecretResolver};
use crate::template::Templates;

use super::hosts::{select_hosts, InventorySource};

/// What to check.
pub struct CheckRequest {
    pub inventory: InventorySource,
    pub playbook: Option<PathBuf>,
    pub limit: Option<String>,
    pub shard: Option<Shard>,
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
    /// Whether the playbook named was read (hosts were selected by it).
    #[serde(skip)]
    pub playbook_read: bool,
    /// What the playbook's `instance:` section will do, in words (`None`:
    /// no section).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub diagnostics: Vec<Diagnostic>,
    /// The group_vars/host_vars files read, and whether each was vaulted
    /// (`-v` names them).
    #[serde(skip)]
    pub vars_files: Vec<(PathBuf, bool)>,
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

/// `instance URL: STEP, STEP…` — what the `instance:` section will do.
fn instance_summary(instance: &crate::playbook::Instance) -> String {
    let mut steps = vec!["check each new login before any host"];
    if instance.ensure_user {
        steps.push("create missing users with mid_server");
    }
    steps.push("wait for each ecc_agent record Up as its new user");
    steps.push(match instance.validate {
        None => "Invalidate and Validate the MIDs whose key pair is reset",
        Some(true) => "Invalidate and Validate every changing MID",
        Some(false) => "no Validate (reset MIDs are left to validate by hand)",
    });
    match instance.retire_old_user {
        crate::playbook::RetireOldUser::Keep => {}
        crate::playbook::RetireOldUser::Lock => steps.push("lock the old users after the run"),
        crate::playbook::RetireOldUser::Deactivate => {
            steps.push("deactivate the old users after the run")
        }
    }
    format!("instance {}: {}", instance.url, steps.join(", "))
}

/// Runs every offline check and reports all problems.
pub fn check(request: &CheckRequest) -> CheckReport {
    let templates = match &request.playbook {
        Some(path) => Templates::new().with_playbook(path),
        None => Templates::new(),
    };
    let mut diagnostics = Diagnostics::new();
    let playbook = request.playbook.as_ref().and_then(|path| {
        let (playbook, found) = Playbook::load(path);
        diagnostics.extend(found);
        playbook
    });
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
        playbook_read: playbook.is_some(),
        instance: playbook
            .as_ref()
            .and_then(|playbook| playbook.instance.as_ref())
            .map(instance_summary),
        diagnostics: Vec::new(),
        vars_files: Vec::new(),
    };
    let selected = select_hosts(
        &request.inventory,
        &pattern,
        origin.as_ref(),
        request.limit.as_deref(),
        request.shard,
        &templates,
        &mut diagnostics,
    );
    report.inventory_files = selected.inventory.files.clone();
    report.vars_files = selected.inventory.vars_files.clone();
    report.host_count = selected.inventory.host_count();
    report.group_count = selected.inventory.groups().count();
    report.selected = selected
        .hosts
        .iter()
        .map(|host| host.name.clone())
        .collect();
    if selected.pattern_failed {
        // Still look at every host: their own problems are worth knowing.
        for entry in selected.inventory.host_entries() {
            if let Err(problems) = selected.inventory.resolve(&entry.name, &templates) {
                problems
                    .into_iter()
                    .for_each(|problem| diagnostics.push(problem));
            }
        }
    }
    if let Some(playbook) = &playbook {
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
        for warning in selected.inventory.vault_warnings() {
            diagnostics.push(warning);
        }
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
    report.diagnostics = diagnostics.merged();
    report
}

/// Resolves each distinct secret reference once; the values are dropped
/// (and zeroised) at once. Returns how many resolved.
fn resolve_all(desired: &[DesiredHost], diagnostics: &mut Diagnostics) -> usize {
    let mut references: BTreeMap<(SecretRef, Option<FileScope>), Vec<&str>> = BTreeMap::new();
    for host in desired {
        // `wrapper:` values take secrets as `set:` values do.
        let wrapper = host
            .wrapper
            .iter()
            .filter_map(|wanted| match &wanted.value {
                desired::DesiredWrapperValue::Set(parameter) => Some(parameter),
                _ => None,
            });
        for parameter in host.set.iter().chain(wrapper) {
            if let DesiredValue::Secret(reference) = &parameter.value {
                references
                    .entry((reference.clone(), parameter.scope.clone()))
                    .or_default()
                    .push(&host.host.name);
            }
        }
    }
    let mut resolver = SecretResolver::new();
    let mut resolved = 0;
    for ((reference, scope), hosts) in &references {
        let result = resolver.resolve_in(reference, scope.as_ref());
        for warning in resolver.take_warnings() {
            diagnostics.push(
                Diagnostic::warning(None, format!("{warning} (used by {})", summarize(hosts)))
                    .with_hint(warning.hint),
            );
        }
        match result {
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
