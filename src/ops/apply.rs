//! `apply`: plan (or read a saved plan and resolve its secrets again),
//! show it, ask, prepare the instance, roll the plan out over the hosts,
//! then validate and retire users on the instance, and record the run in
//! the audit log.
//!
//! Must not: print (progress, warnings, the plan shown and the question
//! go to the operator) or render the results.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::apply::{apply as roll_out, new_run_id, ApplySettings, HostResult, Outcome, Values};
use crate::plan::Plan;
use crate::secret::{SecretRef, SecretResolver, SecretValue};
use crate::transport::Timings;

use super::audit::{self, AuditRecord};
use super::connection::Connection;
use super::hosts::{load_ssh_config, Selection};
use super::instance::{self, InstanceReport, Validations};
use super::interrupt::{catch_interrupt, interrupted, INTERRUPTED};
use super::plan::{plan_on, secret_warning, PlanRequest};
use super::{Operator, OpsError};

/// What is applied.
// Made once per run; boxing the selection would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Source {
    /// A playbook, planned first on the hosts it selects.
    Playbook {
        selection: Selection,
        playbook: PathBuf,
        /// `--rotate-now`.
        rotate_now: bool,
    },
    /// A saved plan (`plan --out`), exactly.
    Plan(PathBuf),
}

/// What `apply` is asked to do.
pub struct ApplyRequest {
    pub source: Source,
    /// Nobody is asked; with a playbook, the read sessions are kept for
    /// the apply.
    pub yes: bool,
    pub connection: Connection,
    /// The local audit log (default: `report::audit::default_path`).
    pub audit_log: Option<PathBuf>,
}

/// How `apply` ended.
pub enum Applied {
    /// The operator did not say yes: nothing was changed.
    Cancelled,
    /// The plan was rolled out (or had nothing to change).
    Done(ApplyReport),
}

/// What an apply did.
pub struct ApplyReport {
    pub run: String,
    /// What was done on the instance (`None`: no instance section, or no
    /// change).
    pub instance: Option<InstanceReport>,
    pub results: Vec<HostResult>,
    /// Ctrl-C came: hosts not started were skipped.
    pub interrupted: bool,
    /// Each host's read session of the plan (none with a saved plan).
    pub read_timings: Vec<(String, Timings)>,
    /// An old user could not be retired.
    pub retire_failed: bool,
    /// A MID could not be validated.
    pub validate_failed: bool,
}

impl ApplyReport {
    /// Every host applied or unchanged, and every instance step done.
    pub fn succeeded(&self) -> bool {
        self.results.iter().all(|result| result.result.is_success())
            && !self.interrupted
            && !self.retire_failed
            && !self.validate_failed
    }
}

/// A host whose apply went on on the plan's read session: its steps begin
/// with that session's connect and read (`-v`), not a connect of 0 s.
fn with_plan_reads(
    results: &mut [HostResult],
    reads: &[(String, crate::facts::gather::ReadDetail)],
) {
    for result in results
        .iter_mut()
        .filter(|result| result.continued_plan_session)
    {
        let Some((_, read)) = reads.iter().find(|(host, _)| *host == result.host) else {
            continue;
        };
        if result
            .steps
            .first()
            .is_some_and(|step| step.step == "connect")
        {
            result.steps.splice(0..1, read.steps.iter().cloned());
        }
    }
}

#[derive(Serialize)]
struct AuditHost<'a> {
    host: &'a str,
    result: Outcome,
    params: &'a [String],
    /// With `rotate:`, a host that rotated in this run (or tried to):
    /// from which user to which, and why — never the password.
    #[serde(skip_serializing_if = "Option::is_none")]
    rotation: Option<AuditRotation<'a>>,
}

#[derive(Serialize)]
struct AuditRotation<'a> {
    from: Option<&'a str>,
    to: &'a str,
    reason: &'a str,
}

/// Applies `request` (see the module's steps).
pub fn apply(request: &ApplyRequest, operator: &dyn Operator) -> Result<Applied, OpsError> {
    let connection = &request.connection;
    let transport = connection.transport(true, operator)?;
    let forks = connection.forks;
    let mut read_timings = Vec::new();
    let mut read_details = Vec::new();
    let (mut plan, secrets, literals, kept) = match &request.source {
        Source::Plan(path) => {
            let plan = read_plan(path)?;
            let rotating: Vec<&str> = plan
                .hosts
                .iter()
                .filter(|host| host.rotation.as_ref().is_some_and(|rotation| rotation.due))
                .map(|host| host.host.as_str())
                .collect();
            if !rotating.is_empty() {
                return Err(OpsError::input(format!(
                    "the saved plan rotates {}: a rotation's generated passwords are never in a plan file",
                    rotating.join(", ")
                ))
                .with_hint("apply the playbook itself (`midfleet apply -i INVENTORY PLAYBOOK`)"));
            }
            let secrets = re_resolve(&plan, operator)?;
            let mut plan = plan;
            upgrading_since_the_plan(&mut plan, &secrets, operator);
            (plan, secrets, Default::default(), Default::default())
        }
        Source::Playbook {
            selection,
            playbook,
            rotate_now,
        } => {
            let ssh_config = load_ssh_config(&selection.ssh_config)?;
            let planned = plan_on(
                &PlanRequest {
                    inventory: &selection.inventory,
                    playbook,
                    limit: selection.limit.as_deref(),
                    shard: selection.shard,
                    ssh_config: &ssh_config,
                    forks,
                    // With --yes nobody is asked: the apply follows the
                    // plan at once, on the read's own sessions. A plan that
                    // waits for a person's `yes` keeps none open.
                    keep_sessions: if request.yes {
                        crate::apply::KEEP_SESSIONS
                    } else {
                        0
                    },
                    rotate_now: *rotate_now,
                },
                &transport,
                operator,
            )?;
            read_timings = planned.timings;
            read_details = planned.details;
            (
                planned.plan,
                planned.secrets,
                planned.literals,
                planned.kept,
            )
        }
    };
    operator.show_plan(&plan);
    if plan.instance_failed() && plan.has_changes() {
        return Err(OpsError::failed(
            "the instance preflight failed (shown above); no host was touched",
        )
        .with_hint(
            "fix the new credentials (or the instance section) and run again; nothing was changed",
        ));
    }
    if !plan.has_changes() {
        operator.note("Nothing to apply.");
    } else if !request.yes && !operator.confirm("apply", plan.changing().count())? {
        return Ok(Applied::Cancelled);
    }
    store_passwords(&mut plan, &literals, operator);
    let values = Values {
        secrets: &secrets,
        literals: &literals,
    };
    let section = plan.instance.as_ref().filter(|_| plan.has_changes());
    let mut instance_report = match section {
        Some(section) => Some(instance::prepare(section, &plan, &values, operator)?),
        None => None,
    };
    let run = new_run_id();
    let health_timeout = plan.rollout.health_timeout;
    // With an instance section, health also waits for each MID's
    // ecc_agent record to be Up as its new user; then the MIDs whose key
    // pair was reset are invalidated and validated.
    let validations: Validations = Arc::new(Mutex::new(Vec::new()));
    let after_apply = match section {
        Some(section) => Some(instance::after_apply(
            section,
            &secrets,
            health_timeout,
            &validations,
        )?),
        None => None,
    };
    catch_interrupt();
    let progress = operator.progress("apply", plan.changing().count());
    let mut results = roll_out(
        &plan,
        &values,
        &transport,
        &ApplySettings {
            kind: crate::apply::RunKind::Apply,
            run: run.clone(),
            forks,
            health_timeout,
            after_apply,
        },
        &*progress,
        &INTERRUPTED,
        kept,
    );
    progress.finish();
    with_plan_reads(&mut results, &read_details);
    let interrupted = interrupted();
    let (validated, validate_failed) = instance::take_validations(&validations, operator);
    if let Some(report) = instance_report.as_mut() {
        report.validated = validated;
    }
    let mut retire_failed = false;
    // Users rotations were done with but a run that ended early left
    // unretired: retired now, even when nothing else changes.
    if instance_report.is_none()
        && plan
            .instance
            .as_ref()
            .is_some_and(|section| instance::retires(section) && !plan.instance_failed())
        && !crate::instance::preflight::pending_retirements(&plan).is_empty()
    {
        instance_report = Some(InstanceReport::default());
    }
    if let (Some(section), Some(report)) = (&plan.instance, instance_report.as_mut()) {
        if instance::retires(section) && !interrupted {
            let (retired, failed) = instance::retire(section, &plan, &results, &secrets, operator);
            report.retired = retired;
            retire_failed = failed;
        }
    }
    let hosts: Vec<AuditHost<'_>> = results
        .iter()
        .map(|result| AuditHost {
            host: &result.host,
            result: result.result,
            params: &result.params,
            rotation: plan
                .hosts
                .iter()
                .find(|host| host.host == result.host)
                .and_then(|host| host.rotation.as_ref())
                .filter(|rotation| rotation.due)
                .map(|rotation| AuditRotation {
                    from: rotation.from_user.as_deref(),
                    to: &rotation.to_user,
                    reason: &rotation.reason,
                }),
        })
        .collect();
    // What was done on the instance: users created or reset, roles
    // granted, old users retired (never a password).
    let instance_actions: Option<Vec<String>> = instance_report.as_ref().map(|report| {
        report
            .changes
            .iter()
            .map(|change| format!("{} {}", change.action, change.user))
            .chain(
                report
                    .retired
                    .iter()
                    .filter(|retired| !matches!(retired.outcome, "already" | "absent" | "in use"))
                    .map(|retired| format!("{} {}", retired.outcome, retired.user)),
            )
            .collect()
    });
    audit::record(
        request.audit_log.as_deref(),
        &AuditRecord {
            playbook: Some(&plan.playbook.path),
            interrupted: Some(interrupted),
            instance: instance_actions.as_deref(),
            ..AuditRecord::new("apply", &run, &hosts)
        },
        operator,
    );
    Ok(Applied::Done(ApplyReport {
        run,
        instance: instance_report,
        results,
        interrupted,
        read_timings,
        retire_failed,
        validate_failed,
    }))
}

/// A saved plan may be hours old: a changing host whose MID has begun
/// upgrading since (its `ecc_agent` status Upgrading or Upgrade Failed)
/// is skipped, as planning would have. One read of the instance, only
/// with an `instance:` section; when it fails, the plan's decisions hold
/// (a warning says so).
fn upgrading_since_the_plan(
    plan: &mut Plan,
    secrets: &BTreeMap<crate::secret::SecretRef, SecretValue>,
    operator: &dyn Operator,
) {
    let Some(section) = plan.instance.as_ref().filter(|_| plan.has_changes()) else {
        return;
    };
    let names: Vec<String> = plan
        .changing()
        .filter_map(|host| host.mid_name.clone())
        .collect();
    let records = crate::instance::preflight::connect(section, secrets)
        .and_then(|(client, admin)| crate::instance::kinds::mid_records(&client, &admin, &names));
    let records = match records {
        Ok(records) => records,
        Err(error) => {
            operator.warning(&format!(
                "the MIDs' ecc_agent status could not be read again before applying ({error}); the plan's decisions hold"
            ));
            return;
        }
    };
    for host in plan
        .hosts
        .iter_mut()
        .filter(|host| host.status == crate::plan::HostStatus::Change)
    {
        let Some(record) = host.mid_name.as_ref().and_then(|name| records.get(name)) else {
            continue;
        };
        if crate::plan::kind::UPGRADING_STATUSES.contains(&record.status.as_str()) {
            host.status = crate::plan::HostStatus::Skipped;
            host.skipped = Some(format!(
                "upgrading (ecc_agent.status={} since the plan was made): the MID's own upgrader owns its stop and start; plan again once its ecc_agent record is Up",
                record.status
            ));
            host.changes.clear();
            host.operations.clear();
            host.restart = false;
            host.key_pair_reset = false;
            host.expect_user = host.current_user.clone();
        }
    }
}

/// `rotate.store`: each rotating host's generated password stored before
/// anything changes; a host whose store fails becomes an error of the
/// plan — nothing is changed for it, on the host or the instance — and
/// the others go on.
fn store_passwords(
    plan: &mut Plan,
    literals: &BTreeMap<(String, String), SecretValue>,
    operator: &dyn Operator,
) {
    for host in plan.hosts.iter_mut() {
        let Some(target) = host
            .rotation
            .as_ref()
            .filter(|rotation| rotation.due && rotation.reset)
            .and_then(|rotation| rotation.store.clone())
        else {
            continue;
        };
        if host.status != crate::plan::HostStatus::Change {
            continue;
        }
        let key = (
            host.host.clone(),
            crate::config_xml::names::PASSWORD.to_string(),
        );
        let outcome = match literals.get(&key) {
            Some(password) => super::store::store(&target, password),
            None => Err("no generated password".to_string()),
        };
        match outcome {
            Ok(()) => operator.note(&format!("{}: the new password is stored", host.host)),
            Err(message) => {
                host.status = crate::plan::HostStatus::Error;
                host.error = Some(format!(
                    "rotation: storing the new password failed: {message}; nothing was changed"
                ));
                host.changes.clear();
                host.operations.clear();
                host.restart = false;
                host.key_pair_reset = false;
                host.expect_user = host.current_user.clone();
            }
        }
    }
}

/// Reads the plan file, refusing one that is not the effective user's
/// alone (`plan::file`).
fn read_plan(path: &Path) -> Result<Plan, OpsError> {
    crate::plan::file::read(path).map_err(plan_file_error)
}

fn plan_file_error(error: crate::plan::file::PlanFileError) -> OpsError {
    let hint = error.hint();
    OpsError::input(error.to_string()).with_hint(hint)
}

/// Resolves the plan's secrets again — only those its playbook, read again
/// and unchanged, holds; any that now resolves to another value stops the
/// run before any host is touched.
fn re_resolve(
    plan: &Plan,
    operator: &dyn Operator,
) -> Result<BTreeMap<SecretRef, SecretValue>, OpsError> {
    // Every reference is checked before the first is resolved: a plan
    // file edited to add a `command:` never runs it.
    let references = crate::plan::file::secret_references(plan).map_err(plan_file_error)?;
    let mut resolver = SecretResolver::new();
    let mut values = BTreeMap::new();
    for (info, (reference, scope)) in plan.secrets.iter().zip(references) {
        let value = resolver.resolve_in(&reference, scope.as_ref());
        for warning in resolver.take_warnings() {
            operator.diagnostic(&secret_warning(&warning));
        }
        let value = value.map_err(|error| {
            let hint = error.hint().map(str::to_string);
            OpsError::input(error.to_string()).with_optional_hint(hint)
        })?;
        if !info.value_hash.matches(value.expose()) {
            return Err(OpsError::failed(format!(
                "secret {reference} now resolves to a different value than when the plan was made; no host was touched"
            ))
            .with_hint("make the plan again (`midfleet plan … --out FILE`)"));
        }
        values.insert(reference, value);
    }
    Ok(values)
}
