//! `unlock`: read every selected host and break the lock a dead run left,
//! saying whose it was; a live lease is refused unless forced. Each lock
//! broken is recorded in the audit log.
//!
//! Must not: print, or break a live lease unasked.

use std::path::PathBuf;

use crate::apply::{new_run_id, unlock as unlock_host, UnlockResult};

use super::audit::{self, AuditRecord};
use super::connection::Connection;
use super::facts::read_hosts;
use super::hosts::Selection;
use super::{Operator, OpsError};

/// What `unlock` is asked to do.
pub struct UnlockRequest {
    pub selection: Selection,
    pub connection: Connection,
    /// Break a lock whose lease is still live.
    pub force: bool,
    pub audit_log: Option<PathBuf>,
}

/// Unlocks the selected hosts: each host's result.
pub fn unlock(
    request: &UnlockRequest,
    operator: &dyn Operator,
) -> Result<Vec<UnlockResult>, OpsError> {
    let transport = request.connection.transport(false, operator)?;
    let reads = read_hosts(
        &request.selection,
        &transport,
        request.connection.forks,
        0,
        "read",
        operator,
    )?;
    let results: Vec<UnlockResult> = reads
        .iter()
        .map(|read| unlock_host(&transport, read, request.force))
        .collect();
    let run = new_run_id();
    let touched: Vec<UnlockResult> = results
        .iter()
        .filter(|result| result.result == "unlocked")
        .cloned()
        .collect();
    if !touched.is_empty() {
        audit::record(
            request.audit_log.as_deref(),
            &AuditRecord::new("unlock", &run, &touched),
            operator,
        );
    }
    Ok(results)
}
