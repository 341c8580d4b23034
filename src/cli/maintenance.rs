//! `midfleet rollback` and `midfleet unlock`.

use serde::Serialize;

use super::args::{RollbackArgs, UnlockArgs};
use super::console::Console;
use super::console::OutputFormat;
use super::exit::{Exit, Failure};
use super::progress::{raise_file_limit_keeping, Progress};
use crate::apply::{
    apply, kept_for_changes, local_user, new_run_id, rollback_plan, unlock, ApplySettings, Values,
};
use crate::facts::gather::{gather_keeping, HostFacts};
use crate::plan::{Plan, PlaybookInfo, RolloutSettings, FORMAT_VERSION};
use crate::report::render_table;
use crate::transport::Transport;

/// Reads every selected host (for rollback and unlock), keeping up to
/// `keep` read sessions open for what follows.
fn read_hosts(
    console: &Console,
    inventory: &super::args::InventoryArgs,
    transport: &Transport,
    forks: usize,
    keep: usize,
    task: &str,
) -> Result<Vec<HostFacts>, Failure> {
    let pairs = inventory.select(console, "all")?;
    // Room for the forks' sessions, and for as many kept ones as fit.
    let (keep, warning) = raise_file_limit_keeping(forks, keep);
    if let Some(warning) = warning {
        console.warning(&warning);
    }
    let progress = Progress::new(task, pairs.len());
    let reads =
        gather_keeping(transport, pairs, forks, keep, &progress).map_err(Failure::failed)?;
    progress.finish();
    Ok(reads)
}

#[derive(Serialize)]
struct Audit<'a, T: Serialize> {
    time: String,
    user: String,
    command: &'static str,
    run: &'a str,
    hosts: &'a [T],
}

pub fn rollback(console: &Console, arguments: &RollbackArgs) -> Result<Exit, Failure> {
    let transport = arguments.connection.transport(false, console)?;
    let forks = usize::from(arguments.connection.forks);
    // With --yes nobody is asked: the rollback follows the read at once,
    // on the read's own sessions (as `apply PLAYBOOK --yes`).
    let keep = if arguments.yes {
        crate::apply::KEEP_SESSIONS
    } else {
        0
    };
    let reads = read_hosts(
        console,
        &arguments.inventory,
        &transport,
        forks,
        keep,
        "read",
    )?;
    let plan = Plan {
        format_version: FORMAT_VERSION,
        midfleet_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: crate::report::now_rfc3339(),
        playbook: PlaybookInfo {
            path: "(rollback)".into(),
            name: None,
            file: None,
            sha256: None,
        },
        rollout: RolloutSettings {
            serial: vec!["100%".into()],
            max_fail: "100%".into(),
            health_timeout: arguments.health_timeout,
            restart: "on-change".into(),
        },
        secrets: Vec::new(),
        hosts: reads.iter().map(rollback_plan).collect(),
        instance: None,
        instance_changes: Vec::new(),
    };
    let kept = kept_for_changes(reads, &plan.hosts);
    let shown = super::plan::human(console, &plan);
    match console.output {
        OutputFormat::Human => console.data(&shown),
        OutputFormat::Json => eprint!("{shown}"),
    }
    if !plan.has_changes() {
        eprintln!("Nothing to roll back.");
        return Ok(if plan.has_errors() {
            Exit::Failed
        } else {
            Exit::Success
        });
    }
    if !super::apply::confirm(arguments.yes, plan.changing().count())? {
        eprintln!("Rollback cancelled; nothing was changed.");
        return Ok(Exit::Failed);
    }
    let run = new_run_id();
    super::apply::catch_interrupt();
    let progress = Progress::new("rollback", plan.changing().count());
    let empty = Default::default();
    let results = apply(
        &plan,
        &Values {
            secrets: &empty,
            literals: &Default::default(),
        },
        &transport,
        &ApplySettings {
            run: run.clone(),
            forks,
            health_timeout: arguments.health_timeout,
            after_apply: None,
        },
        &progress,
        &super::apply::INTERRUPTED,
        kept,
    );
    progress.finish();
    let record = Audit {
        time: crate::report::now_rfc3339(),
        user: local_user(),
        command: "rollback",
        run: &run,
        hosts: &results,
    };
    super::apply::record_audit(console, arguments.audit_log.as_deref(), &record);
    match console.output {
        OutputFormat::Json => console.data(&format!(
            "{}\n",
            serde_json::to_string_pretty(&results)
                .map_err(|error| Failure::failed(error.to_string()))?
        )),
        OutputFormat::Human => console.data(&super::apply::human_results(&run, &results, false)),
    }
    Ok(if results.iter().all(|result| result.result.is_success()) {
        Exit::Success
    } else {
        Exit::Failed
    })
}

pub fn unlock_hosts(console: &Console, arguments: &UnlockArgs) -> Result<Exit, Failure> {
    let transport = arguments.connection.transport(false, console)?;
    let forks = usize::from(arguments.connection.forks);
    let reads = read_hosts(console, &arguments.inventory, &transport, forks, 0, "read")?;
    let results: Vec<_> = reads
        .iter()
        .map(|read| unlock(&transport, read, arguments.force))
        .collect();
    let run = new_run_id();
    let touched: Vec<_> = results
        .iter()
        .filter(|result| result.result == "unlocked")
        .cloned()
        .collect();
    if !touched.is_empty() {
        let record = Audit {
            time: crate::report::now_rfc3339(),
            user: local_user(),
            command: "unlock",
            run: &run,
            hosts: &touched,
        };
        super::apply::record_audit(console, arguments.audit_log.as_deref(), &record);
    }
    match console.output {
        OutputFormat::Json => console.data(&format!(
            "{}\n",
            serde_json::to_string_pretty(&results)
                .map_err(|error| Failure::failed(error.to_string()))?
        )),
        OutputFormat::Human => {
            let rows: Vec<Vec<String>> = results
                .iter()
                .map(|result| {
                    vec![
                        result.host.clone(),
                        result.result.to_string(),
                        result.message.clone(),
                    ]
                })
                .collect();
            console.data(&render_table(&["HOST", "RESULT", "DETAIL"], &rows));
        }
    }
    Ok(
        if results
            .iter()
            .any(|result| matches!(result.result, "refused" | "error"))
        {
            Exit::Failed
        } else {
            Exit::Success
        },
    )
}
