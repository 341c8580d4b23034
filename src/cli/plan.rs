//! `midfleet plan -i INVENTORY PLAYBOOK`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use super::args::PlanArgs;
use super::console::OutputFormat;
use super::console::{Console, Style};
use super::exit::{Exit, Failure};
use super::progress::{raise_file_limit_keeping, Progress};
use crate::ops::plan::{make_plan, PlanFailure, PlanRequest, Planned};
use crate::plan::{render, render::Paint, Plan};
use crate::transport::Transport;

pub fn run(console: &Console, arguments: &PlanArgs) -> Result<Exit, Failure> {
    let ssh_config = arguments.inventory.ssh_config()?;
    let transport = arguments.connection.transport(false, console)?;
    let planned = plan(
        console,
        &transport,
        &PlanRequest {
            inventory: &arguments.inventory.inventory,
            playbook: &arguments.playbook,
            limit: arguments.inventory.limit.as_deref(),
            shard: arguments.inventory.shard,
            ssh_config: &ssh_config,
            forks: usize::from(arguments.connection.forks),
            keep_sessions: 0,
        },
    )?;
    let plan = &planned.plan;
    match console.output {
        OutputFormat::Json => console.data(&format!("{}\n", to_json(plan)?)),
        OutputFormat::Human => console.data(&human(console, plan)),
    }
    if arguments.connection.timings {
        // Beside the plan, never in it (plan files stay the plan): stderr.
        eprint!("{}", read_timings(&planned));
    }
    if let Some(path) = &arguments.out {
        save(path, plan)?;
        eprintln!(
            "plan saved to {} (apply it with `midfleet apply --plan {}`)",
            path.display(),
            path.display()
        );
    }
    Ok(if plan.has_errors() {
        Exit::Failed
    } else if arguments.detailed_exitcode && plan.has_changes() {
        Exit::Pending
    } else {
        Exit::Success
    })
}

/// Plans with progress, turning input problems into exit 3.
pub fn plan(
    console: &Console,
    transport: &Transport,
    request: &PlanRequest<'_>,
) -> Result<Planned, Failure> {
    let (keep_sessions, warning) = raise_file_limit_keeping(request.forks, request.keep_sessions);
    if let Some(warning) = warning {
        console.warning(&warning);
    }
    let progress = Progress::new("plan", 0);
    let result = make_plan(
        &PlanRequest {
            keep_sessions,
            ..*request
        },
        transport,
        &progress,
    );
    progress.finish();
    match result {
        Ok(planned) => {
            for warning in &planned.warnings {
                console.diagnostic(warning);
            }
            Ok(planned)
        }
        Err(PlanFailure::Input(diagnostics)) => {
            let errors = diagnostics
                .iter()
                .filter(|diagnostic| diagnostic.is_error())
                .count();
            for diagnostic in &diagnostics {
                console.diagnostic(diagnostic);
            }
            Err(Failure::usage(format!(
                "{errors} problem{} in the inventory, playbook or secrets; no host was contacted",
                if errors == 1 { "" } else { "s" }
            )))
        }
        Err(PlanFailure::Other(message)) => Err(Failure::failed(message)),
    }
}

/// `--timings` of the plan's reads: one session and one exec per host.
pub fn read_timings(planned: &Planned) -> String {
    let rows: Vec<(String, Vec<&crate::transport::Timings>)> = planned
        .timings
        .iter()
        .map(|(host, timings)| (host.clone(), vec![timings]))
        .collect();
    crate::report::render_timings(&rows)
}

pub fn to_json(plan: &Plan) -> Result<String, Failure> {
    serde_json::to_string_pretty(plan).map_err(|error| Failure::failed(error.to_string()))
}

/// The plan for people, painted for stdout.
pub fn human(console: &Console, plan: &Plan) -> String {
    let add = |text: &str| console.paint(Style::Add, text);
    let change = |text: &str| console.paint(Style::Change, text);
    let remove = |text: &str| console.paint(Style::Remove, text);
    let error = |text: &str| console.paint(Style::Error, text);
    let bold = |text: &str| console.paint(Style::Bold, text);
    render(
        plan,
        console.verbose > 0,
        &Paint {
            add: &add,
            change: &change,
            remove: &remove,
            error: &error,
            bold: &bold,
        },
    )
}

/// Writes the plan file: created 0600 (never readable by others, even for
/// a moment), replaced atomically.
fn save(path: &std::path::Path, plan: &Plan) -> Result<(), Failure> {
    let json = to_json(plan)?;
    let directory = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let temporary = directory.join(format!(
        ".{}.midfleet-tmp",
        path.file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("plan")
    ));
    let failure = |error: std::io::Error| Failure::failed(format!("{}: {error}", path.display()));
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(failure)?;
    file.write_all(json.as_bytes())
        .and_then(|_| file.write_all(b"\n"))
        .and_then(|_| file.sync_all())
        .map_err(failure)?;
    std::fs::rename(&temporary, path).map_err(failure)
}
