//! The local audit log of the commands that change hosts (apply,
//! rollback, unlock): one JSON line per run.
//!
//! Must not: hide results: a failure to write is a warning.

use std::path::Path;

use serde::Serialize;

use crate::report::audit;

use super::Operator;

/// Who ran which command, when, and what each host's result was.
#[derive(Serialize)]
pub struct AuditRecord<'a, T: Serialize> {
    pub time: String,
    pub user: String,
    pub command: &'static str,
    pub run: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub playbook: Option<&'a str>,
    pub hosts: &'a [T],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<bool>,
    /// With an `instance:` section: what apply did there, one
    /// `ACTION USER` each (`create_user svc_a`, `reset_password svc_a`,
    /// `grant_role svc_a`, `locked miduser`, `kept miduser`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<&'a [String]>,
}

impl<'a, T: Serialize> AuditRecord<'a, T> {
    /// A record of `command`'s `run` over `hosts`, now, by the local user.
    pub fn new(command: &'static str, run: &'a str, hosts: &'a [T]) -> AuditRecord<'a, T> {
        AuditRecord {
            time: crate::report::now_rfc3339(),
            user: crate::apply::local_user(),
            command,
            run,
            playbook: None,
            hosts,
            interrupted: None,
            instance: None,
        }
    }
}

/// Appends `record` to the audit log (`path`, else the default); a
/// failure is a warning, never a reason to hide the results.
pub fn record<T: Serialize>(path: Option<&Path>, record: &T, operator: &dyn Operator) {
    let path = path.map_or_else(audit::default_path, Path::to_path_buf);
    if let Err(error) = audit::append(&path, record) {
        operator.warning(&format!("cannot write the audit log: {error}"));
    }
}
