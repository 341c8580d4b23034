//! `facts`, and the read every host-wide command starts with: select the
//! hosts, make room for the sessions, read each host once (one session,
//! one exec) with progress.
//!
//! Must not: change a host, or print (progress and warnings go to the
//! operator).

use crate::facts::gather::{gather, gather_keeping, FactsSummary, HostFacts};
use crate::transport::Transport;

use super::connection::{raise_file_limit, raise_file_limit_keeping, Connection};
use super::hosts::Selection;
use super::{Operator, OpsError};

/// `facts`: every selected host read, as summaries; `None` when no host
/// is selected (nothing was contacted).
pub fn facts(
    selection: &Selection,
    connection: &Connection,
    operator: &dyn Operator,
) -> Result<Option<Vec<FactsSummary>>, OpsError> {
    let hosts = selection.select("all", operator)?;
    if hosts.is_empty() {
        return Ok(None);
    }
    if let Some(warning) = raise_file_limit(connection.forks) {
        operator.warning(&warning);
    }
    let transport = connection.transport(false, operator)?;
    let progress = operator.progress("facts", hosts.len());
    let reads = gather(&transport, hosts, connection.forks, &*progress)
        .map_err(|error| OpsError::failed(error.to_string()));
    progress.finish();
    Ok(Some(reads?.iter().map(FactsSummary::new).collect()))
}

/// Reads every selected host (for rollback and unlock) as `task`, keeping
/// up to `keep` read sessions open for what follows.
pub fn read_hosts(
    selection: &Selection,
    transport: &Transport,
    forks: usize,
    keep: usize,
    task: &str,
    operator: &dyn Operator,
) -> Result<Vec<HostFacts>, OpsError> {
    let pairs = selection.select("all", operator)?;
    // Room for the forks' sessions, and for as many kept ones as fit.
    let (keep, warning) = raise_file_limit_keeping(forks, keep);
    if let Some(warning) = warning {
        operator.warning(&warning);
    }
    let progress = operator.progress(task, pairs.len());
    let reads = gather_keeping(transport, pairs, forks, keep, &*progress)
        .map_err(|error| OpsError::failed(error.to_string()));
    progress.finish();
    reads
}
