//! The instance steps of a run, before any host is touched: which new MID
//! logins a plan writes, what `ensure_user` must change, and the login
//! check of each (`docs/instance.md`).
//!
//! Owns: deriving the logins from a plan (pure), surveying the instance
//! when planning (reads only), and at apply time creating users, granting
//! `mid_server` and checking every login. Must not: print, or touch a host.

use std::collections::BTreeMap;
use std::path::Path;

use super::table::{self, MID_SERVER_ROLE};
use super::{Client, Credentials, InstanceError, Settings};
use crate::config_xml::names;
use crate::plan::{
    HostStatus, InstanceChange, InstancePlan, InstanceUserPlan, LoginStatus, Plan,
    PlannedOperation, PreflightLogin,
};
use crate::playbook::RetireOldUser;
use crate::secret::Values;
use crate::secret::{SecretRef, SecretValue};

/// A new MID login: a user, the password the plan writes for it, and the
/// hosts that will use them.
#[derive(Debug, Clone)]
pub struct Login {
    pub user: String,
    pub password: SecretValue,
    pub hosts: Vec<String>,
    /// A rotation (`rotate:`): the user is created, or reset with the
    /// generated password (unlocked, active), before its login is checked
    /// — never while a MID logs in as it.
    pub rotation: bool,
    /// Hosts of the plan that log in as this user now (a rotation's user
    /// must have none).
    pub used_by: Vec<String>,
}

/// Each distinct (user, password) the changing hosts of `plan` will be
/// given, in host order; and the changing hosts whose password this plan
/// does not write (nothing to check for them).
pub fn logins(plan: &Plan, values: &Values<'_>) -> (Vec<Login>, Vec<String>) {
    let mut logins: Vec<Login> = Vec::new();
    let mut unchecked = Vec::new();
    for host in plan
        .hosts
        .iter()
        .filter(|host| host.status == HostStatus::Change)
    {
        let password = host
            .operations
            .iter()
            .find_map(|operation| match operation {
                PlannedOperation::SetSecret { param, reference }
                    if names::canonical(param) == names::PASSWORD =>
                {
                    Some(values.secrets.get(reference).cloned())
                }
                PlannedOperation::SetLiteralSensitive { param }
                    if names::canonical(param) == names::PASSWORD =>
                {
                    Some(
                        values
                            .literals
                            .get(&(host.host.clone(), param.clone()))
                            .cloned(),
                    )
                }
                _ => None,
            });
        let writes_user = host.operations.iter().any(|operation| {
            matches!(operation, PlannedOperation::Set { param, .. } if names::canonical(param) == names::USERNAME)
        });
        let (Some(Some(password)), Some(user)) = (password, host.expect_user.clone()) else {
            if writes_user || host.key_pair_reset || host.expect_user != host.current_user {
                unchecked.push(host.host.clone());
            }
            continue;
        };
        match logins
            .iter_mut()
            .find(|login| login.user == user && login.password.expose() == password.expose())
        {
            Some(login) => login.hosts.push(host.host.clone()),
            None => {
                let used_by = plan
                    .hosts
                    .iter()
                    .filter(|other| {
                        other
                            .current_user
                            .as_deref()
                            .is_some_and(|current| current.eq_ignore_ascii_case(&user))
                    })
                    .map(|other| other.host.clone())
                    .collect();
                logins.push(Login {
                    user,
                    password,
                    hosts: vec![host.host.clone()],
                    rotation: host
                        .rotation
                        .as_ref()
                        .is_some_and(|rotation| rotation.due && rotation.reset),
                    used_by,
                })
            }
        }
    }
    (logins, unchecked)
}

/// When hosts give one user (names compared as the instance does,
/// ignoring case) different passwords: at most one of them can be right,
/// and `ensure_user` could create the user with only one. Names the user
/// and the hosts, never a password.
fn conflict(logins: &[Login], login: &Login) -> Option<String> {
    let same_user: Vec<&Login> = logins
        .iter()
        .filter(|other| other.user.eq_ignore_ascii_case(&login.user))
        .collect();
    let mut passwords: Vec<&str> = same_user
        .iter()
        .map(|other| other.password.expose())
        .collect();
    passwords.sort_unstable();
    passwords.dedup();
    if passwords.len() < 2 {
        return None;
    }
    let hosts: Vec<&str> = same_user
        .iter()
        .flat_map(|other| other.hosts.iter().map(String::as_str))
        .collect();
    if same_user.iter().any(|other| other.rotation) {
        return Some(format!(
            "hosts {} rotate to the same MID user `{}` from different pairs, each with its own new password: a user has one; give hosts that share a user the same pair in `rotate.users` (they then move as one group)",
            hosts.join(", "),
            login.user
        ));
    }
    Some(format!(
        "hosts {} give the MID user `{}` {} different passwords: a user has one (give them all the same secret)",
        hosts.join(", "),
        login.user,
        passwords.len()
    ))
}

/// The client and the integration user's credentials for `instance`.
pub fn connect(
    instance: &InstancePlan,
    secrets: &BTreeMap<SecretRef, SecretValue>,
) -> Result<(Client, Credentials), InstanceError> {
    let resolved = |reference: &SecretRef| {
        secrets
            .get(reference)
            .cloned()
            .ok_or_else(|| InstanceError::Unresolved {
                reference: reference.clone(),
            })
    };
    let (user, shown_as) = match &instance.user {
        InstanceUserPlan::Name(name) => (name.clone(), None),
        InstanceUserPlan::Secret(reference) => (
            resolved(reference)?.expose().to_string(),
            Some(format!("the integration user ({reference})")),
        ),
    };
    let password = resolved(&instance.password)?;
    let client = Client::new(
        &instance.url,
        instance.ca_file.as_deref().map(Path::new),
        Settings::with_timeout(instance.timeout),
    )?;
    Ok((
        client,
        Credentials {
            user,
            password,
            shown_as,
        },
    ))
}

/// When planning: what `ensure_user` would change, and whether each login
/// is accepted now. Reads only.
pub fn survey(
    client: &Client,
    admin: &Credentials,
    instance: &mut InstancePlan,
    logins: &[Login],
) -> Vec<InstanceChange> {
    let ensure_user = instance.ensure_user;
    // Each login's reads are independent (reads only: nothing changes on
    // the instance at plan time).
    let surveyed = concurrently(logins, |login| {
        survey_login(client, admin, ensure_user, logins, login)
    });
    let mut changes = Vec::new();
    for (preflight, found) in surveyed {
        changes.extend(found);
        instance.preflight.push(preflight);
    }
    changes
}

/// How many logins are read at once ([`survey`], and the reads of
/// [`prepare`]): enough to hide a wide-area round trip, few enough for an
/// instance's REST semaphores.
pub const READ_CONCURRENCY: usize = 8;

/// `work` on each item, [`READ_CONCURRENCY`] at a time, the results in the
/// items' order. On a real network each instance read is a round trip or
/// more; one after another they would add up per login.
fn concurrently<'a, T: Sync, R: Send>(
    items: &'a [T],
    work: impl Fn(&'a T) -> R + Sync + Send,
) -> Vec<R> {
    match rayon::ThreadPoolBuilder::new()
        .num_threads(READ_CONCURRENCY.min(items.len()).max(1))
        .build()
    {
        Ok(pool) => pool.install(|| {
            use rayon::prelude::*;
            items.par_iter().map(&work).collect()
        }),
        Err(_) => items.iter().map(work).collect(),
    }
}

/// One login's survey: its status, and the changes apply would make.
fn survey_login(
    client: &Client,
    admin: &Credentials,
    ensure_user: bool,
    logins: &[Login],
    login: &Login,
) -> (PreflightLogin, Vec<InstanceChange>) {
    let entry = |status, message| PreflightLogin {
        user: login.user.clone(),
        hosts: login.hosts.clone(),
        status,
        message,
    };
    if let Some(message) = conflict(logins, login) {
        return (entry(LoginStatus::Error, Some(message)), Vec::new());
    }
    if login.rotation {
        let (status, message, found) = survey_rotation(client, admin, login);
        return (entry(status, message), found);
    }
    let mut changes = Vec::new();
    let mut status = None;
    if ensure_user {
        match table::user_state(client, admin, &login.user) {
            Ok(state) if state.sys_id.is_none() => {
                changes.extend(creation(&login.user));
                status = Some((LoginStatus::AfterCreation, None));
            }
            Ok(state) => {
                if !state.has_mid_server_role {
                    changes.push(grant(&login.user));
                }
            }
            Err(error) => status = Some((LoginStatus::Error, Some(with_hint(&error)))),
        }
    }
    let (status, message) =
        status.unwrap_or_else(
            || match table::login_check(client, &login.user, &login.password) {
                Ok(()) => (LoginStatus::Accepted, None),
                Err(error @ InstanceError::Unauthorized { .. }) => {
                    (LoginStatus::Refused, Some(refusal(&login.user, &error)))
                }
                Err(error) => (LoginStatus::Error, Some(with_hint(&error))),
            },
        );
    (entry(status, message), changes)
}

/// What was done on the instance before the hosts.
#[derive(Debug, Default)]
pub struct Prepared {
    pub changes: Vec<InstanceChange>,
    /// Users whose login was checked.
    pub accepted: Vec<String>,
}

/// Why the run stops before any host: the user concerned (never a
/// password) and what happened.
#[derive(Debug)]
pub struct PreflightFailure {
    pub user: Option<String>,
    pub hosts: Vec<String>,
    pub message: String,
    pub hint: Option<String>,
    /// Changes already made on the instance (ensure_user) before the stop.
    pub changes: Vec<InstanceChange>,
}

/// At apply time, before any host: with `ensure_user`, create each
/// missing user with its new password and grant `mid_server`; then log in
/// with every new user and password. The first failure stops.
pub fn prepare(
    client: &Client,
    admin: &Credentials,
    ensure_user: bool,
    logins: &[Login],
) -> Result<Prepared, PreflightFailure> {
    for login in logins {
        if let Some(message) = conflict(logins, login) {
            return Err(PreflightFailure {
                user: Some(login.user.clone()),
                hosts: login.hosts.clone(),
                message,
                hint: None,
                changes: Vec::new(),
            });
        }
    }
    let mut prepared = Prepared::default();
    let failure = |login: &Login, error: &InstanceError, changes: &[InstanceChange]| {
        PreflightFailure {
            user: Some(login.user.clone()),
            hosts: login.hosts.clone(),
            message: if matches!(error, InstanceError::Unauthorized { user, .. } if *user == login.user)
            {
                refusal(&login.user, error)
            } else {
                error.to_string()
            },
            hint: error.hint().map(str::to_string),
            changes: changes.to_vec(),
        }
    };
    // Rotations: first, before any write, no user to reset may be in use
    // (read for all at once; the first in the logins' order decides);
    // then each is created or reset with its new password, one after
    // another, so that the first failure stops the writes.
    let rotations: Vec<&Login> = logins.iter().filter(|login| login.rotation).collect();
    let uses = concurrently(&rotations, |login| in_use(client, admin, login));
    for (login, used) in rotations.into_iter().zip(uses) {
        if let Some(message) = used.map_err(|error| failure(login, &error, &prepared.changes))? {
            return Err(PreflightFailure {
                user: Some(login.user.clone()),
                hosts: login.hosts.clone(),
                message,
                hint: Some("a user is reset only while no MID logs in as it: move that MID off it first, or give the hosts other users in `rotate.users`".into()),
                changes: Vec::new(),
            });
        }
    }
    // Each user to make ready: a rotation's is reset when it exists, an
    // `ensure_user` one is left as it is; either is created when missing
    // and granted `mid_server` when it lacks it. Their states are read
    // all at once; the writes go one after another, in the logins' order,
    // and the first failure (a read's too) stops them.
    // One per user: the instance compares names ignoring case, and
    // `conflict` let through only logins of one user with one password
    // (read at once, two spellings would both be created).
    let mut seen = std::collections::HashSet::new();
    let to_prepare: Vec<&Login> = logins
        .iter()
        .filter(|login| login.rotation || ensure_user)
        .filter(|login| seen.insert(login.user.to_ascii_lowercase()))
        .collect();
    let states = concurrently(&to_prepare, |login| {
        table::user_state(client, admin, &login.user)
    });
    for (login, state) in to_prepare.into_iter().zip(states) {
        let state = state.map_err(|error| failure(login, &error, &prepared.changes))?;
        let sys_id = match state.sys_id.clone() {
            Some(sys_id) if login.rotation => {
                table::reset_user(client, admin, &sys_id, &login.password)
                    .map_err(|error| failure(login, &error, &prepared.changes))?;
                prepared.changes.push(reset(&login.user, &state));
                sys_id
            }
            Some(sys_id) => sys_id,
            None => {
                let sys_id = table::create_user(client, admin, &login.user, &login.password)
                    .map_err(|error| failure(login, &error, &prepared.changes))?;
                prepared
                    .changes
                    .extend(creation(&login.user).into_iter().take(2));
                sys_id
            }
        };
        if !state.has_mid_server_role {
            table::grant_role(client, admin, &sys_id, MID_SERVER_ROLE)
                .map_err(|error| failure(login, &error, &prepared.changes))?;
            prepared.changes.push(grant(&login.user));
        }
    }
    let checks = concurrently(logins, |login| {
        table::login_check(client, &login.user, &login.password)
    });
    for (login, checked) in logins.iter().zip(checks) {
        checked.map_err(|error| failure(login, &error, &prepared.changes))?;
        prepared.accepted.push(login.user.clone());
    }
    Ok(prepared)
}

fn refusal(user: &str, error: &InstanceError) -> String {
    format!(
        "the instance refused the new password of `{user}` ({})",
        error
            .status()
            .map_or("no answer".to_string(), |status| status.to_string())
    )
}

/// Why a rotation's user cannot be reset now: a host of the plan, or an
/// `ecc_agent` record (any MID, also outside this run), logs in as it.
fn in_use(
    client: &Client,
    admin: &Credentials,
    login: &Login,
) -> Result<Option<String>, InstanceError> {
    if !login.used_by.is_empty() {
        return Ok(Some(format!(
            "`{}` cannot be reset: {} log{} in as it now",
            login.user,
            login.used_by.join(", "),
            if login.used_by.len() == 1 { "s" } else { "" }
        )));
    }
    // Resetting it would replace the password midfleet logs in with by
    // one nobody knows (every later run refused) and give a MID its roles.
    if login.user.eq_ignore_ascii_case(&admin.user) {
        return Ok(Some(format!(
            "`{}` cannot be reset: it is the user midfleet logs in to the instance as (the `instance:` section's user)",
            login.user
        )));
    }
    table::check_user_name(&login.user)?;
    let agents = table::query(
        client,
        admin,
        "ecc_agent",
        &format!("user_name={}", login.user),
        &["name", "status"],
        20,
    )?;
    if agents.is_empty() {
        return Ok(None);
    }
    let names: Vec<String> = agents
        .iter()
        .map(|agent| {
            format!(
                "{} ({})",
                table::field(agent, "name"),
                table::field(agent, "status")
            )
        })
        .collect();
    Ok(Some(format!(
        "`{}` cannot be reset: ecc_agent records log in as it: {}",
        login.user,
        names.join(", ")
    )))
}

/// When planning a rotation's login: whether its user is free, and what
/// creating or resetting it will change. Reads only; the generated
/// password is never tried (it would count as a failed login).
fn survey_rotation(
    client: &Client,
    admin: &Credentials,
    login: &Login,
) -> (LoginStatus, Option<String>, Vec<InstanceChange>) {
    match in_use(client, admin, login) {
        Ok(None) => {}
        Ok(Some(message)) => return (LoginStatus::InUse, Some(message), Vec::new()),
        Err(error) => return (LoginStatus::Error, Some(with_hint(&error)), Vec::new()),
    }
    match table::user_state(client, admin, &login.user) {
        Ok(state) if state.sys_id.is_none() => {
            (LoginStatus::AfterCreation, None, creation(&login.user))
        }
        Ok(state) => {
            let mut changes = vec![reset(&login.user, &state)];
            if !state.has_mid_server_role {
                changes.push(grant(&login.user));
            }
            (LoginStatus::AfterReset, None, changes)
        }
        Err(error) => (LoginStatus::Error, Some(with_hint(&error)), Vec::new()),
    }
}

/// Resetting an existing user for a rotation.
fn reset(user: &str, state: &table::UserState) -> InstanceChange {
    let mut detail = "the generated password (sysparm_input_display_value=true)".to_string();
    if state.locked_out {
        detail.push_str(", unlocked");
    }
    if !state.active {
        detail.push_str(", activated");
    }
    InstanceChange {
        action: "reset_password".into(),
        table: "sys_user".into(),
        user: user.to_string(),
        role: None,
        detail: Some(detail),
    }
}

fn with_hint(error: &InstanceError) -> String {
    match error.hint() {
        Some(hint) => format!("{error} (hint: {hint})"),
        None => error.to_string(),
    }
}

/// Creating `user`: the record, its password, the role.
fn creation(user: &str) -> Vec<InstanceChange> {
    vec![
        InstanceChange {
            action: "create_user".into(),
            table: "sys_user".into(),
            user: user.to_string(),
            role: None,
            detail: Some("active, web_service_access_only, internal_integration_user".into()),
        },
        InstanceChange {
            action: "set_password".into(),
            table: "sys_user".into(),
            user: user.to_string(),
            role: None,
            detail: Some("the new MID password (sysparm_input_display_value=true)".into()),
        },
        grant(user),
    ]
}

fn grant(user: &str) -> InstanceChange {
    InstanceChange {
        action: "grant_role".into(),
        table: "sys_user_has_role".into(),
        user: user.to_string(),
        role: Some(MID_SERVER_ROLE.into()),
        detail: None,
    }
}

/// The users the changing hosts of `plan` move away from, in host order:
/// what `retire_old_user` would lock or deactivate. A user some host of
/// the plan moves *to* is never one.
pub fn old_users(plan: &Plan) -> Vec<String> {
    let new_users: Vec<&str> = plan
        .hosts
        .iter()
        .filter_map(|host| host.expect_user.as_deref())
        .collect();
    let mut old = Vec::new();
    for host in plan.changing() {
        if let Some(user) = host.current_user.as_deref() {
            if host.expect_user.as_deref() != Some(user)
                && !new_users.contains(&user)
                && !old.iter().any(|known: &String| known == user)
            {
                old.push(user.to_string());
            }
        }
    }
    old
}

/// The users rotations are done with and a run that ended early may have
/// left unretired (`RotationPlan::retire` of the hosts not due): no host
/// of the plan logs in as one or moves to one. Apply retires each that is
/// not retired yet, with no write for one that is.
pub fn pending_retirements(plan: &Plan) -> Vec<String> {
    let in_use = |user: &str| {
        plan.hosts.iter().any(|host| {
            [host.current_user.as_deref(), host.expect_user.as_deref()]
                .into_iter()
                .flatten()
                .any(|used| used.eq_ignore_ascii_case(user))
        })
    };
    let old = old_users(plan);
    let mut pending: Vec<String> = Vec::new();
    for user in plan
        .hosts
        .iter()
        .filter_map(|host| host.rotation.as_ref())
        .filter(|rotation| !rotation.due)
        .flat_map(|rotation| rotation.retire.iter())
    {
        let known = |list: &[String]| list.iter().any(|other| other.eq_ignore_ascii_case(user));
        if !in_use(user) && !known(&old) && !known(&pending) {
            pending.push(user.clone());
        }
    }
    pending
}

/// The planned `lock_user`/`deactivate_user` changes (none for `keep`).
pub fn retirements(plan: &Plan, mode: RetireOldUser) -> Vec<InstanceChange> {
    let action = match mode {
        RetireOldUser::Keep => return Vec::new(),
        RetireOldUser::Lock => "lock_user",
        RetireOldUser::Deactivate => "deactivate_user",
    };
    old_users(plan)
        .into_iter()
        .map(|user| InstanceChange {
            action: action.into(),
            table: "sys_user".into(),
            user,
            role: None,
            detail: Some(
                "after the run, when every host on it was applied and no ecc_agent record uses it"
                    .into(),
            ),
        })
        .collect()
}

/// What became of one old user after the run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Retired {
    pub user: String,
    /// `locked`, `deactivated`, `kept` (still in use: `reason` says by
    /// what) or `failed`; for a user a rotation was done with earlier,
    /// also `already` (retired), `absent` or `in use` (said nothing of).
    pub outcome: &'static str,
    pub reason: Option<String>,
}

/// After the run: locks or deactivates each old user that no host of the
/// plan still uses (`applied(host)` says which hosts moved) and no
/// `ecc_agent` record names.
pub fn retire(
    client: &Client,
    admin: &Credentials,
    plan: &Plan,
    applied: &dyn Fn(&str) -> bool,
    mode: RetireOldUser,
) -> Vec<Retired> {
    let (field, value, done) = match mode {
        RetireOldUser::Keep => return Vec::new(),
        RetireOldUser::Lock => ("locked_out", "true", "locked"),
        RetireOldUser::Deactivate => ("active", "false", "deactivated"),
    };
    let kept = |user: &str, reason: String| Retired {
        user: user.to_string(),
        outcome: "kept",
        reason: Some(reason),
    };
    // Nothing to do, nothing to say: already retired, absent, or (a user a
    // rotation left earlier) still in use outside the plan.
    let quiet = |user: &str, outcome: &'static str| Retired {
        user: user.to_string(),
        outcome,
        reason: None,
    };
    let mut retired = Vec::new();
    let old = old_users(plan);
    let pending = pending_retirements(plan);
    for user in old.iter().chain(&pending) {
        let is_pending = pending.contains(user);
        let user = user.clone();
        let still: Vec<&str> = plan
            .hosts
            .iter()
            .filter(|host| host.current_user.as_deref() == Some(user.as_str()))
            .filter(|host| {
                host.status != HostStatus::Change
                    || host.expect_user.as_deref() == Some(user.as_str())
                    || !applied(&host.host)
            })
            .map(|host| host.host.as_str())
            .collect();
        if !still.is_empty() {
            retired.push(kept(&user, format!("still used by {}", still.join(", "))));
            continue;
        }
        if user.eq_ignore_ascii_case(&admin.user) {
            retired.push(kept(
                &user,
                "it is the instance section's integration user".into(),
            ));
            continue;
        }
        // The name comes from a host's config.xml: it goes into a query
        // only when it cannot widen it (`^OR…` would find another user).
        if table::check_user_name(&user).is_err() {
            retired.push(kept(
                &user,
                "its name holds `^`, `=` or a control character, which could widen the lookup to other users".into(),
            ));
            continue;
        }
        let outcome = table::query(
            client,
            admin,
            "ecc_agent",
            &format!("user_name={user}"),
            &["name", "status"],
            20,
        )
        .and_then(|agents| {
            if !agents.is_empty() && is_pending {
                // Still used outside the plan: said when a rotation
                // leaves it, not again on every run.
                return Ok(quiet(&user, "in use"));
            }
            if !agents.is_empty() {
                let names: Vec<String> = agents
                    .iter()
                    .map(|agent| {
                        format!(
                            "{} ({})",
                            table::field(agent, "name"),
                            table::field(agent, "status")
                        )
                    })
                    .collect();
                return Ok(kept(
                    &user,
                    format!("ecc_agent records still use it: {}", names.join(", ")),
                ));
            }
            let users = table::query(
                client,
                admin,
                "sys_user",
                &format!("user_name={user}"),
                &["sys_id", "user_name", "locked_out", "active"],
                1,
            )?;
            let Some(record) = users
                .first()
                .filter(|record| table::field(record, "user_name").eq_ignore_ascii_case(&user))
            else {
                if is_pending {
                    return Ok(quiet(&user, "absent"));
                }
                return Ok(kept(&user, "no such user on the instance".into()));
            };
            if table::field(record, field) == value {
                return Ok(quiet(&user, "already"));
            }
            table::set_field(
                client,
                admin,
                "sys_user",
                table::field(record, "sys_id"),
                field,
                value,
            )?;
            Ok(Retired {
                user: user.clone(),
                outcome: done,
                reason: None,
            })
        });
        retired.push(outcome.unwrap_or_else(|error| Retired {
            user: user.clone(),
            outcome: "failed",
            reason: Some(with_hint(&error)),
        }));
    }
    retired
}

/// After a host's restart: waits up to `timeout` for the MID's
/// `ecc_agent` record (by its `name` parameter) to show `status` Up and
/// `user_name` the user the plan expects. `Ok` carries warnings (a MID
/// without a name or a user cannot be checked); `Err` says what was last
/// seen.
pub fn wait_up(
    client: &Client,
    admin: &Credentials,
    host: &crate::plan::HostPlan,
    timeout: std::time::Duration,
) -> Result<Vec<String>, NotUp> {
    let (Some(name), Some(user)) = (host.mid_name.as_deref(), host.expect_user.as_deref()) else {
        return Ok(vec![
            "the MID has no `name` or no instance user in config.xml: its ecc_agent record was not checked".into(),
        ]);
    };
    if let Err(reason) = table::check_mid_name(name) {
        return Ok(vec![format!(
            "{reason}: its ecc_agent record was not checked"
        )]);
    }
    let mut last = String::new();
    super::validation::poll(timeout, || {
        let found = table::mid_record(client, admin, name);
        last = match &found {
            Ok(Some(record)) => format!(
                "status {}, user {}",
                table::field(record, "status"),
                table::field(record, "user_name")
            ),
            Ok(None) => "no such record".into(),
            Err(error) => error.to_string(),
        };
        matches!(&found, Ok(Some(record)) if table::up_as(record, user))
    })
    .map(|()| Vec::new())
    .map_err(|seconds| NotUp {
        name: name.to_string(),
        user: user.to_string(),
        seconds,
        last,
    })
}

/// A MID whose `ecc_agent` record did not show Up as its new user in time.
#[derive(Debug, thiserror::Error)]
#[error("the instance's ecc_agent record `{name}` did not show status Up as `{user}` within {seconds} s (last seen: {last})")]
pub struct NotUp {
    pub name: String,
    pub user: String,
    pub seconds: u64,
    pub last: String,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::inventory::{Host, ServiceSpec};
    use crate::plan::{HostPlan, PlaybookInfo, RolloutSettings, FORMAT_VERSION};
    use crate::transport::Endpoint;

    /// A host moving from user `from` to `to`, writing the password from
    /// `env:PASSWORD` when given.
    pub(crate) fn host_plan(name: &str, from: &str, to: &str, password: Option<&str>) -> HostPlan {
        let host = Host {
            name: name.into(),
            address: name.into(),
            port: None,
            user: None,
            identity_file: None,
            become_root: false,
            become_user: None,
            jump: Vec::new(),
            connect_timeout: None,
            mid_home: "/mid".into(),
            config: "/mid/agent/config.xml".into(),
            mid_cluster: None,
            service: ServiceSpec::Auto,
            groups: Vec::new(),
            template_context: Default::default(),
            vaulted: Default::default(),
        };
        let endpoint = Endpoint {
            label: name.into(),
            address: name.into(),
            port: 22,
            user: "root".into(),
            identity_file: None,
            configured_identities: Vec::new(),
            jump: Vec::new(),
            connect_timeout: 10,
        };
        let mut plan = HostPlan::new(&host, &endpoint);
        plan.current_user = Some(from.into());
        plan.expect_user = Some(to.into());
        if from != to || password.is_some() {
            plan.status = HostStatus::Change;
        }
        if let Some(reference) = password {
            plan.operations.push(PlannedOperation::SetSecret {
                param: "glide.glidesoap.password".into(),
                reference: SecretRef::Env(reference.into()),
            });
        }
        plan
    }

    fn plan(hosts: Vec<HostPlan>) -> Plan {
        Plan {
            format_version: FORMAT_VERSION,
            midfleet_version: String::new(),
            created_at: String::new(),
            playbook: PlaybookInfo {
                path: String::new(),
                name: None,
                file: None,
                sha256: None,
            },
            rollout: RolloutSettings::new(
                &Default::default(),
                &crate::playbook::Health { timeout: 1 },
                crate::playbook::Restart::OnChange,
            ),
            secrets: Vec::new(),
            hosts,
            instance: None,
            instance_changes: Vec::new(),
        }
    }

    #[test]
    fn logins_are_the_distinct_users_and_passwords_of_changing_hosts() {
        let secrets: BTreeMap<SecretRef, SecretValue> =
            [("A", "pw-a"), ("B", "pw-b"), ("A2", "pw-a")]
                .into_iter()
                .map(|(name, value)| (SecretRef::Env(name.into()), SecretValue::new(value.into())))
                .collect();
        let literals = BTreeMap::new();
        let plan = plan(vec![
            host_plan("h1", "old", "svc_a", Some("A")),
            // Same user, same password through another reference: one login.
            host_plan("h2", "old", "svc_a", Some("A2")),
            // Same user, another password: a login of its own, which the
            // instance will refuse for one of them.
            host_plan("h3", "old", "svc_a", Some("B")),
            // The user changes but the plan does not write the password.
            host_plan("h4", "old", "svc_d", None),
            // Unchanged: nothing to check.
            host_plan("h5", "svc_e", "svc_e", None),
        ]);
        let (logins, unchecked) = logins(
            &plan,
            &Values {
                secrets: &secrets,
                literals: &literals,
            },
        );
        let shown: Vec<(String, Vec<String>)> = logins
            .iter()
            .map(|login| (login.user.clone(), login.hosts.clone()))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "svc_a".to_string(),
                    vec!["h1".to_string(), "h2".to_string()]
                ),
                ("svc_a".to_string(), vec!["h3".to_string()]),
            ]
        );
        assert_eq!(unchecked, ["h4"]);
        assert!(!format!("{logins:?}").contains("pw-"), "{logins:?}");
        // svc_a with two passwords: refused for each of its logins, naming
        // the user and every host, never a password.
        for login in &logins {
            let message = conflict(&logins, login).expect("two passwords for svc_a");
            assert_eq!(
                message,
                "hosts h1, h2, h3 give the MID user `svc_a` 2 different passwords: a user has one (give them all the same secret)"
            );
        }
        let one = [logins[0].clone()];
        assert_eq!(conflict(&one, &one[0]), None);
        // The instance compares user names ignoring case.
        let mut upper = logins[1].clone();
        upper.user = "SVC_A".into();
        let mixed = [logins[0].clone(), upper];
        assert!(conflict(&mixed, &mixed[0]).is_some());
        // At apply time the run stops there, before any call: the client
        // points where nothing answers.
        let client = Client::new("http://127.0.0.1:9", None, Settings::with_timeout(1)).unwrap();
        let admin = Credentials::new("admin".into(), SecretValue::new("x".into()));
        let failure = prepare(&client, &admin, true, &logins).unwrap_err();
        assert_eq!(failure.user.as_deref(), Some("svc_a"));
        assert!(failure.changes.is_empty());
        assert!(
            failure.message.contains("2 different passwords"),
            "{}",
            failure.message
        );
    }

    #[test]
    fn retire_never_asks_about_a_name_that_widens_a_query_nor_its_own_user() {
        let plan = plan(vec![
            host_plan("h1", "x^ORuser_name=admin", "svc_a", Some("A")),
            host_plan("h2", "Midfleet_Admin", "svc_b", Some("A")),
        ]);
        // Nothing answers there: a call would end `failed`.
        let client = Client::new("http://127.0.0.1:9", None, Settings::with_timeout(1)).unwrap();
        let admin = Credentials::new("midfleet_admin".into(), SecretValue::new("x".into()));
        let retired = retire(&client, &admin, &plan, &|_| true, RetireOldUser::Lock);
        let shown: Vec<(&str, &str)> = retired
            .iter()
            .map(|retired| (retired.user.as_str(), retired.outcome))
            .collect();
        assert_eq!(
            shown,
            [("x^ORuser_name=admin", "kept"), ("Midfleet_Admin", "kept")]
        );
        assert!(
            retired[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("could widen"),
            "{retired:?}"
        );
        assert!(
            retired[1]
                .reason
                .as_deref()
                .unwrap()
                .contains("integration user"),
            "{retired:?}"
        );
    }

    /// An instance stand-in that answers each request with `status` after
    /// a delay chosen by `delay(user of the Authorization header, query)`,
    /// and records the order of its answers.
    fn slow_instance(
        status: u16,
        delay: fn(&str, &str) -> u64,
    ) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use base64::Engine;
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let order = std::sync::Arc::clone(&answered);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let order = std::sync::Arc::clone(&order);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let (mut user, mut target) = (String::new(), String::new());
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                        if target.is_empty() {
                            target = line.clone();
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(encoded) = lower
                            .starts_with("authorization: basic ")
                            .then(|| line["authorization: basic ".len()..].trim())
                        {
                            let pair = base64::engine::general_purpose::STANDARD
                                .decode(encoded)
                                .unwrap();
                            let pair = String::from_utf8(pair).unwrap();
                            user = pair.split(':').next().unwrap().to_string();
                        }
                    }
                    let millis = delay(&user, &target);
                    std::thread::sleep(std::time::Duration::from_millis(millis));
                    order.lock().unwrap().push(format!("{user} {millis}"));
                    let mut stream = stream;
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} No\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                });
            }
        });
        (url, answered)
    }

    fn login(user: &str, host: &str) -> Login {
        Login {
            user: user.into(),
            password: SecretValue::new(format!("pw-{user}")),
            hosts: vec![host.into()],
            rotation: false,
            used_by: Vec::new(),
        }
    }

    /// The reads run at once; the failure reported is still the first in
    /// the logins' order, not the first to arrive.
    #[test]
    fn a_later_login_that_fails_first_is_not_the_one_reported() {
        let logins = [login("svc_slow", "h1"), login("svc_fast", "h2")];
        // The logins' own checks: each refused, svc_slow's 600 ms later.
        let (url, answered) =
            slow_instance(401, |user, _| if user == "svc_slow" { 600 } else { 0 });
        let client = Client::new(&url, None, Settings::with_timeout(5)).unwrap();
        let admin = Credentials::new("admin".into(), SecretValue::new("x".into()));
        let failure = prepare(&client, &admin, false, &logins).unwrap_err();
        assert_eq!(
            answered.lock().unwrap().as_slice(),
            ["svc_fast 0", "svc_slow 600"],
            "svc_fast was refused first"
        );
        assert_eq!(failure.user.as_deref(), Some("svc_slow"));
        assert_eq!(failure.hosts, ["h1"]);
        assert!(
            failure.message.contains("`svc_slow`"),
            "{}",
            failure.message
        );
        // ensure_user: the users' states, read by the admin, refused (403)
        // for both, svc_slow's later: the first in order is reported, and
        // nothing was written.
        let (url, answered) = slow_instance(
            403,
            |_, target| {
                if target.contains("svc_slow") {
                    600
                } else {
                    0
                }
            },
        );
        let client = Client::new(&url, None, Settings::with_timeout(5)).unwrap();
        let failure = prepare(&client, &admin, true, &logins).unwrap_err();
        assert_eq!(
            answered.lock().unwrap().as_slice(),
            ["admin 0", "admin 600"]
        );
        assert_eq!(failure.user.as_deref(), Some("svc_slow"));
        assert!(failure.changes.is_empty(), "{:?}", failure.changes);
    }

    #[test]
    fn old_users_are_the_ones_hosts_move_away_from_and_to_none() {
        let plan = plan(vec![
            host_plan("h1", "old1", "svc_a", Some("A")),
            host_plan("h2", "old1", "svc_b", Some("A")),
            host_plan("h3", "old2", "svc_c", Some("A")),
            // h4 moves from svc_c's predecessor to old2: old2 is in use.
            host_plan("h4", "old3", "old2", Some("A")),
            // A password-only rotation keeps its user.
            host_plan("h5", "svc_e", "svc_e", Some("A")),
        ]);
        assert_eq!(old_users(&plan), ["old1", "old3"]);
        let changes = retirements(&plan, RetireOldUser::Lock);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].action, "lock_user");
        assert!(retirements(&plan, RetireOldUser::Keep).is_empty());
    }
}
