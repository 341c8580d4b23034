//! `rollback`: read every selected host, plan the restore of the newest
//! backup midfleet made on each, show it, ask, roll it out, and record the
//! run in the audit log.
//!
//! Must not: print (the operator is told and asked) or render results.

use std::path::PathBuf;

use crate::apply::{
    apply as roll_out, kept_for_changes, new_run_id, rollback_plan, ApplySettings, HostResult,
    RunKind, Values,
};
use crate::plan::{Plan, PlaybookInfo, RolloutSettings, FORMAT_VERSION};

use super::audit::{self, AuditRecord};
use super::connection::Connection;
use super::facts::read_hosts;
use super::hosts::Selection;
use super::interrupt::{catch_interrupt, INTERRUPTED};
use super::{Operator, OpsError};

/// What `rollback` is asked to do.
pub struct RollbackRequest {
    pub selection: Selection,
    pub connection: Connection,
    /// Nobody is asked; the read sessions are kept for the rollback.
    pub yes: bool,
    /// Seconds to wait for each MID to log in after its start.
    pub health_timeout: u64,
    pub audit_log: Option<PathBuf>,
}

/// How `rollback` ended.
pub enum RolledBack {
    /// No host has anything to roll back; `failed` when a host could not
    /// be read.
    Nothing { failed: bool },
    /// The operator did not say yes: nothing was changed.
    Cancelled,
    /// The rollback ran: each host's result.
    Done {
        run: String,
        results: Vec<HostResult>,
    },
}

/// Rolls the selected hosts back (see the module's steps).
pub fn rollback(
    request: &RollbackRequest,
    operator: &dyn Operator,
) -> Result<RolledBack, OpsError> {
    let transport = request.connection.transport(false, operator)?;
    let forks = request.connection.forks;
    // With --yes nobody is asked: the rollback follows the read at once,
    // on the read's own sessions (as `apply PLAYBOOK --yes`).
    let keep = if request.yes {
        crate::apply::KEEP_SESSIONS
    } else {
        0
    };
    let reads = read_hosts(
        &request.selection,
        &transport,
        forks,
        keep,
        "read",
        operator,
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
            health_timeout: request.health_timeout,
            restart: "on-change".into(),
        },
        secrets: Vec::new(),
        hosts: reads.iter().map(rollback_plan).collect(),
        instance: None,
        instance_changes: Vec::new(),
    };
    let kept = kept_for_changes(reads, &plan.hosts);
    operator.show_plan(&plan);
    if !plan.has_changes() {
        return Ok(RolledBack::Nothing {
            failed: plan.has_errors(),
        });
    }
    if !request.yes && !operator.confirm("rollback", plan.changing().count())? {
        return Ok(RolledBack::Cancelled);
    }
    let run = new_run_id();
    catch_interrupt();
    let progress = operator.progress("rollback", plan.changing().count());
    let results = roll_out(
        &plan,
        &Values {
            secrets: &Default::default(),
            literals: &Default::default(),
        },
        &transport,
        &ApplySettings {
            run: run.clone(),
            kind: RunKind::Rollback,
            forks,
            health_timeout: request.health_timeout,
            after_apply: None,
        },
        &*progress,
        &INTERRUPTED,
        kept,
    );
    progress.finish();
    audit::record(
        request.audit_log.as_deref(),
        &AuditRecord::new("rollback", &run, &results),
        operator,
    );
    Ok(RolledBack::Done { run, results })
}
