//! The instance's part of `apply` (`docs/instance.md`): before any host,
//! new logins checked (and missing users made); after each host's restart,
//! its ecc_agent record waited for and, where the plan says so, its MID
//! invalidated and validated; after the run, the old users retired.
//!
//! Must not: touch a host, or print (lines go to the operator).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

use crate::apply::{AfterApply, HostResult, Outcome, Values};
use crate::instance::{preflight, validation, Client, Credentials};
use crate::plan::{HostPlan, InstanceChange, InstancePlan, Plan};
use crate::playbook::RetireOldUser;
use crate::secret::{SecretRef, SecretValue};

use super::{Operator, OpsError};

/// What was done on the instance before, during and after the hosts.
#[derive(Debug, Default, Serialize)]
pub struct InstanceReport {
    pub changes: Vec<InstanceChange>,
    /// The new MID users whose login the instance accepted.
    pub logins_accepted: Vec<String>,
    /// After each host's restart: the MIDs invalidated and validated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub validated: Vec<Validated>,
    /// After the run: the old users locked, deactivated or kept.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<preflight::Retired>,
}

/// One MID's Invalidate and Validate.
#[derive(Debug, Serialize)]
pub struct Validated {
    pub host: String,
    /// The MID's name: its `ecc_agent` record.
    pub mid: String,
    /// `validated`, or `not_validated` (`reason` says where it stopped).
    pub outcome: &'static str,
    /// The record's `validated` value before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The validations made after the hosts' restarts, gathered across the
/// rollout's threads.
pub type Validations = Arc<Mutex<Vec<Validated>>>;

/// Invalidates, then validates, `host`'s MID when the plan says so
/// ([`validation::wanted`]) and midfleet can ([`validation::impossible`]:
/// the plan carries those hosts' warnings).
fn validate_mid(
    client: &Client,
    admin: &Credentials,
    host: &HostPlan,
    validate: Option<bool>,
    timeout: Duration,
) -> Option<Validated> {
    if !validation::wanted(host, validate) || validation::impossible(host).is_some() {
        return None;
    }
    let (mid, user) = (host.mid_name.clone()?, host.expect_user.clone()?);
    let outcome = validation::invalidate_then_validate(client, admin, &mid, &user, timeout);
    Some(Validated {
        host: host.host.clone(),
        mid,
        outcome: if outcome.is_ok() {
            "validated"
        } else {
            "not_validated"
        },
        before: outcome.as_ref().ok().cloned(),
        reason: outcome.err().map(|validation::NotValidated(reason)| reason),
    })
}

/// Health beyond the host: each MID's ecc_agent record Up as its new user,
/// then the MID invalidated and validated where wanted (into
/// `validations`).
pub fn after_apply(
    section: &InstancePlan,
    secrets: &std::collections::BTreeMap<SecretRef, SecretValue>,
    health_timeout: u64,
    validations: &Validations,
) -> Result<AfterApply, OpsError> {
    let (client, admin) = preflight::connect(section, secrets)
        .map_err(|message| OpsError::failed(format!("instance: {message}; no host was touched")))?;
    let timeout = Duration::from_secs(health_timeout);
    let validate = section.validate;
    let validations = Arc::clone(validations);
    Ok(Arc::new(move |host: &HostPlan| {
        let mut warnings = preflight::wait_up(&client, &admin, host, timeout)?;
        if let Some(outcome) = validate_mid(&client, &admin, host, validate, timeout) {
            if let Some(reason) = &outcome.reason {
                warnings.push(format!(
                    "not validated: {reason}; validate ecc_agent `{}` on the instance by hand (Invalidate, then Validate)",
                    outcome.mid
                ));
            }
            validations
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(outcome);
        }
        Ok(warnings)
    }))
}

/// The validations made, by host; says how many MIDs were validated, and
/// warns about each that was not. The flag is true when any was not.
pub fn take_validations(
    validations: &Validations,
    operator: &dyn Operator,
) -> (Vec<Validated>, bool) {
    let mut validations =
        std::mem::take(&mut *validations.lock().unwrap_or_else(PoisonError::into_inner));
    validations.sort_by(|one, other| one.host.cmp(&other.host));
    if validations.is_empty() {
        return (validations, false);
    }
    let done = validations
        .iter()
        .filter(|outcome| outcome.reason.is_none())
        .count();
    operator.note(&format!(
        "instance: {done} of {} MID{} validated (Invalidate, then Validate)",
        validations.len(),
        if validations.len() == 1 { "" } else { "s" }
    ));
    for outcome in &validations {
        if let Some(reason) = &outcome.reason {
            operator.warning(&format!(
                "instance: ecc_agent `{}` ({}) is not validated: {reason}",
                outcome.mid, outcome.host
            ));
        }
    }
    let failed = done < validations.len();
    (validations, failed)
}

/// The instance steps before any host (`docs/instance.md`): with
/// `ensure_user`, missing users created and `mid_server` granted; then
/// every new login checked. A failure stops the run: no host is touched.
pub fn prepare(
    instance: &InstancePlan,
    plan: &Plan,
    values: &Values<'_>,
    operator: &dyn Operator,
) -> Result<InstanceReport, OpsError> {
    let (logins, unchecked) = preflight::logins(plan, values);
    if !unchecked.is_empty() {
        operator.warning(&format!(
            "instance: the new login of {} cannot be checked: the plan does not write its password",
            unchecked.join(", ")
        ));
    }
    if logins.is_empty() {
        return Ok(InstanceReport {
            changes: Vec::new(),
            logins_accepted: Vec::new(),
            validated: Vec::new(),
            retired: Vec::new(),
        });
    }
    let (client, admin) = preflight::connect(instance, values.secrets)
        .map_err(|message| OpsError::failed(format!("instance: {message}; no host was touched")))?;
    match preflight::prepare(&client, &admin, instance.ensure_user, &logins) {
        Ok(prepared) => {
            for change in &prepared.changes {
                operator.note(&format!(
                    "instance: {} {}{}",
                    change.action,
                    change.user,
                    change
                        .role
                        .as_deref()
                        .map(|role| format!(" {role}"))
                        .unwrap_or_default()
                ));
            }
            for user in &prepared.accepted {
                operator.note(&format!("instance: the new login of {user} is accepted"));
            }
            Ok(InstanceReport {
                changes: prepared.changes,
                logins_accepted: prepared.accepted,
                validated: Vec::new(),
                retired: Vec::new(),
            })
        }
        Err(failure) => {
            let mut message = format!(
                "instance preflight: {} (for {}); no host was touched",
                failure.message,
                failure.hosts.join(", ")
            );
            if !failure.changes.is_empty() {
                let done: Vec<String> = failure
                    .changes
                    .iter()
                    .map(|change| format!("{} {}", change.action, change.user))
                    .collect();
                message.push_str(&format!(
                    "; already done on the instance: {}",
                    done.join(", ")
                ));
            }
            Err(OpsError::failed(message).with_optional_hint(failure.hint))
        }
    }
}

/// After the run: the old users nothing uses any more locked or
/// deactivated, as `section` says, each outcome said to the operator. True
/// when any could not be retired.
pub fn retire(
    section: &InstancePlan,
    plan: &Plan,
    results: &[HostResult],
    secrets: &std::collections::BTreeMap<SecretRef, SecretValue>,
    operator: &dyn Operator,
) -> (Vec<preflight::Retired>, bool) {
    let applied = |host: &str| {
        results
            .iter()
            .any(|result| result.host == host && result.result == Outcome::Applied)
    };
    let retired = match preflight::connect(section, secrets) {
        Ok((client, admin)) => {
            preflight::retire(&client, &admin, plan, &applied, section.retire_old_user)
        }
        Err(message) => preflight::old_users(plan)
            .into_iter()
            .map(|user| preflight::Retired {
                user,
                outcome: "failed",
                reason: Some(message.to_string()),
            })
            .collect(),
    };
    let mut failed = false;
    for one in &retired {
        let reason = one
            .reason
            .as_deref()
            .map(|reason| format!(": {reason}"))
            .unwrap_or_default();
        match one.outcome {
            "locked" | "deactivated" => {
                operator.note(&format!("instance: old user {} {}", one.user, one.outcome))
            }
            "already" | "absent" | "in use" => {}
            "failed" => {
                failed = true;
                operator.warning(&format!(
                    "instance: could not retire the old user {}{reason}",
                    one.user
                ));
            }
            _ => operator.warning(&format!(
                "instance: the old user {} is kept{reason}; retire it by hand once nothing uses it",
                one.user
            )),
        }
    }
    (retired, failed)
}

/// Whether the run retires old users at all.
pub fn retires(section: &InstancePlan) -> bool {
    section.retire_old_user != RetireOldUser::Keep
}
