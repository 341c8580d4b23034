//! `midfleet plan -i INVENTORY PLAYBOOK`: the arguments to
//! [`crate::ops::plan`], the plan rendered (and saved with `--out`).

use super::args::PlanArgs;
use super::console::OutputFormat;
use super::console::{Console, Style};
use super::exit::{Exit, Failure};
use crate::ops::plan::Planned;
use crate::plan::{render, render::Paint, Plan};

pub fn run(console: &Console, arguments: &PlanArgs) -> Result<Exit, Failure> {
    let configuration = super::ansible_cfg(console)?;
    let planned = crate::ops::plan::plan(
        &arguments.inventory.selection(&configuration, console)?,
        &arguments.playbook,
        &arguments.connection.connection(&configuration),
        arguments.rotate_now,
        console,
    )?;
    if console.verbose > 0 {
        for (host, detail) in &planned.details {
            let mut detail = Some(detail.clone());
            super::detail::keep_read(&mut detail, console.verbose);
            for line in detail
                .iter()
                .flat_map(|detail| super::detail::read_lines(host, detail, console.verbose))
            {
                console.note(&line);
            }
        }
    }
    let plan = &planned.plan;
    match console.output {
        OutputFormat::Json => console.data(&format!("{}\n", to_json(plan)?)),
        OutputFormat::Human => console.data(&human(console, plan)),
    }
    if arguments.connection.timings {
        // Beside the plan, never in it (plan files stay the plan): stderr.
        console.text(&read_timings(&planned));
    }
    if let Some(path) = &arguments.out {
        // After the plan is shown: a plan that cannot be saved is still
        // seen.
        crate::ops::plan::save(path, plan)?;
        console.note(&format!(
            "plan saved to {} (apply it with `midfleet apply --plan {}`)",
            path.display(),
            path.display()
        ));
    }
    Ok(if plan.has_errors() {
        Exit::Failed
    } else if arguments.detailed_exitcode && plan.has_changes() {
        Exit::Pending
    } else {
        Exit::Success
    })
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
