//! `midfleet check -i INVENTORY [PLAYBOOK]`.

use serde::Serialize;

use super::args::CheckArgs;
use super::console::Console;
use super::console::OutputFormat;
use super::exit::{Exit, Failure};
use crate::ops::check::{check, CheckReport, CheckRequest};
use crate::ops::hosts::InventorySource;

#[derive(Serialize)]
struct JsonReport<'a> {
    ok: bool,
    errors: usize,
    warnings: usize,
    #[serde(flatten)]
    report: &'a CheckReport,
}

pub fn run(console: &Console, arguments: &CheckArgs) -> Result<Exit, Failure> {
    let configuration = super::ansible_cfg(console)?;
    let report = check(&CheckRequest {
        inventory: InventorySource::new(
            &arguments.inventory.inventory,
            &arguments.inventory.extra_vars,
            arguments.inventory.vault.vault_settings(),
            &configuration,
            console,
        )?,
        playbook: arguments.playbook.clone(),
        limit: arguments.inventory.limit.clone(),
        shard: arguments.inventory.shard,
        resolve_secrets: arguments.resolve_secrets,
    });
    if let (Some(playbook), true) = (&arguments.playbook, report.playbook_read) {
        crate::ops::Operator::file_read(console, "playbook", playbook);
    }
    for file in &report.inventory_files {
        crate::ops::Operator::file_read(console, "inventory", file);
    }
    for (file, vaulted) in &report.vars_files {
        let kind = if *vaulted {
            "vaulted variables"
        } else {
            "variables"
        };
        crate::ops::Operator::file_read(console, kind, file);
    }
    let ok = report.errors() == 0;
    match console.output {
        OutputFormat::Json => {
            let json = serde_json::to_string_pretty(&JsonReport {
                ok,
                errors: report.errors(),
                warnings: report.warnings(),
                report: &report,
            })
            .map_err(|error| Failure::failed(error.to_string()))?;
            console.data(&format!("{json}\n"));
        }
        OutputFormat::Human => {
            for diagnostic in &report.diagnostics {
                console.diagnostic(diagnostic);
            }
            let mut text = inventory_line(
                report.inventory_files.len(),
                report.host_count,
                report.group_count,
            );
            if let (Some(playbook), false) = (&arguments.playbook, report.playbook_read) {
                text.push_str(&format!(
                    "playbook {}: not read (see the errors above)\n",
                    playbook.display()
                ));
            } else if let Some(playbook) = &arguments.playbook {
                text.push_str(&format!(
                    "playbook {}: {} host{} selected, {} parameter{} set, {} unset",
                    playbook.display(),
                    report.selected.len(),
                    plural(report.selected.len()),
                    report.parameters_set,
                    plural(report.parameters_set),
                    report.parameters_unset
                ));
                if arguments.resolve_secrets {
                    text.push_str(&format!(
                        ", {} secret{} resolved",
                        report.secrets_resolved,
                        plural(report.secrets_resolved)
                    ));
                }
                text.push('\n');
                if let Some(instance) = &report.instance {
                    text.push_str(&format!("{instance}\n"));
                }
            } else if arguments.inventory.limit.is_some() {
                text.push_str(&format!(
                    "--limit selects {} host{}\n",
                    report.selected.len(),
                    plural(report.selected.len())
                ));
            }
            text.push_str(&format!(
                "check: {} error{}, {} warning{}\n",
                report.errors(),
                plural(report.errors()),
                report.warnings(),
                plural(report.warnings())
            ));
            console.data(&text);
        }
    }
    Ok(if ok { Exit::Success } else { Exit::Usage })
}

/// `inventory: 1 file, 1 host, 2 groups`.
fn inventory_line(files: usize, hosts: usize, groups: usize) -> String {
    format!(
        "inventory: {files} file{}, {hosts} host{}, {groups} group{}\n",
        plural(files),
        plural(hosts),
        plural(groups)
    )
}

fn plural(count: usize) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn inventory_counts_are_singular_for_one() {
        assert_eq!(
            super::inventory_line(1, 1, 1),
            "inventory: 1 file, 1 host, 1 group\n"
        );
        assert_eq!(
            super::inventory_line(2, 0, 3),
            "inventory: 2 files, 0 hosts, 3 groups\n"
        );
    }
}
