//! The plan for people: one block per host, Terraform-like.

use super::{HostStatus, LoginStatus, Plan};

/// Styles the caller's terminal supports (identity when colour is off).
pub struct Paint<'a> {
    pub add: &'a dyn Fn(&str) -> String,
    pub change: &'a dyn Fn(&str) -> String,
    pub remove: &'a dyn Fn(&str) -> String,
    pub error: &'a dyn Fn(&str) -> String,
    pub bold: &'a dyn Fn(&str) -> String,
}

/// The human form of `plan`; unchanged hosts are listed only when
/// `verbose`.
pub fn render(plan: &Plan, verbose: bool, paint: &Paint<'_>) -> String {
    let mut text = String::new();
    for host in &plan.hosts {
        match host.status {
            HostStatus::Unchanged => {
                match host.rotation.as_ref().filter(|rotation| !rotation.due) {
                    // A host of a rotation is always listed: when it is due.
                    Some(rotation) => text.push_str(&format!(
                        "  = {}  (no changes; rotation {}, then to {}{})\n",
                        host.host,
                        rotation.reason,
                        rotation.to_user,
                        rotation
                            .age_days
                            .map(|days| format!(
                                "; credentials {days} day{} old",
                                if days == 1 { "" } else { "s" }
                            ))
                            .unwrap_or_default()
                    )),
                    None if verbose => {
                        text.push_str(&format!("  = {}  (no changes)\n", host.host));
                    }
                    None => {}
                }
            }
            HostStatus::Skipped => {
                text.push_str(&format!(
                    "  - {}  (skipped: {})\n",
                    (paint.bold)(&host.host),
                    host.skipped.as_deref().unwrap_or("skipped")
                ));
            }
            HostStatus::Error => {
                text.push_str(&format!(
                    "  {} {}  {}\n",
                    (paint.error)("!"),
                    (paint.bold)(&host.host),
                    (paint.error)(&format!(
                        "error: {}",
                        host.error.as_deref().unwrap_or("unknown")
                    ))
                ));
            }
            HostStatus::Change => {
                // The files the run writes (config.xml also when it only
                // restarts, as before).
                let mut notes = Vec::new();
                if !host.operations.is_empty() || host.wrapper_operations.is_empty() {
                    notes.push(host.config.clone());
                }
                if !host.wrapper_operations.is_empty() {
                    notes.push(super::wrapper_path(&host.config));
                }
                if host.start_only {
                    notes.push("start".into());
                } else if host.restart {
                    notes.push("restart".into());
                }
                if host.key_pair_reset {
                    notes.push("key pair reset".into());
                }
                if let Some(kind) = &host.kind {
                    notes.push(kind.label());
                }
                text.push_str(&format!(
                    "  {} {}  ({})\n",
                    (paint.change)("~"),
                    (paint.bold)(&host.host),
                    notes.join(", ")
                ));
                if let Some(rotation) = host.rotation.as_ref().filter(|rotation| rotation.due) {
                    let password = if rotation.reset {
                        "a new generated password"
                    } else {
                        "the stored password, no reset"
                    };
                    let shared = if rotation.shared_with.is_empty() {
                        String::new()
                    } else {
                        format!("; shared with {}", rotation.shared_with.join(", "))
                    };
                    text.push_str(&format!(
                        "      {} rotates now (to {}: {})   # {password}{shared}\n",
                        (paint.change)("↻"),
                        rotation.to_user,
                        rotation.reason,
                    ));
                }
                for change in &host.changes {
                    let reason = change
                        .reason
                        .as_deref()
                        .map(|reason| format!("   # {reason}"))
                        .unwrap_or_default();
                    // A change of another file than config.xml is named
                    // with it (`wrapper-override.conf: wrapper.java.maxmemory`).
                    let named = change.param.as_ref().map(|param| match &change.file {
                        Some(file) => format!("{file}: {param}"),
                        None => param.clone(),
                    });
                    let line = match (change.action.as_str(), &named) {
                        ("update", Some(param)) if change.sensitive => {
                            format!("{} {param} = (sensitive){reason}", (paint.change)("~"))
                        }
                        ("update", Some(param)) => format!(
                            "{} {param} = {:?} -> {:?}{reason}",
                            (paint.change)("~"),
                            change.before.as_deref().unwrap_or_default(),
                            change.after.as_deref().unwrap_or_default()
                        ),
                        ("add", Some(param)) if change.sensitive => {
                            format!("{} {param} = (sensitive){reason}", (paint.add)("+"))
                        }
                        ("add", Some(param)) => format!(
                            "{} {param} = {:?}{reason}",
                            (paint.add)("+"),
                            change.after.as_deref().unwrap_or_default()
                        ),
                        ("remove", Some(param)) => match &change.before {
                            Some(before) => {
                                format!("{} {param} = {before:?}{reason}", (paint.remove)("-"))
                            }
                            None => format!("{} {param}{reason}", (paint.remove)("-")),
                        },
                        (action, _) => format!("{} {action}{reason}", (paint.change)("↻")),
                    };
                    text.push_str(&format!("      {line}\n"));
                }
            }
        }
        for warning in &host.warnings {
            if host.status != HostStatus::Unchanged || verbose {
                text.push_str(&format!("      warning: {warning}\n"));
            }
        }
    }
    if let Some(instance) = &plan.instance {
        text.push_str(&instance_block(plan, instance, paint));
    }
    let count = |status| {
        plan.hosts
            .iter()
            .filter(|host| host.status == status)
            .count()
    };
    let starts = plan.hosts.iter().filter(|host| host.start_only).count();
    let changes = count(HostStatus::Change) - starts;
    let skipped = match count(HostStatus::Skipped) {
        0 => String::new(),
        skipped => format!(", {skipped} skipped"),
    };
    text.push_str(&format!(
        "\nPlan: {} to change, {} to start, {} unchanged{skipped}, {} error{}.\n",
        changes,
        starts,
        count(HostStatus::Unchanged),
        count(HostStatus::Error),
        if count(HostStatus::Error) == 1 {
            ""
        } else {
            "s"
        }
    ));
    // Hosts that are errors or skipped are counted there, not here: a
    // skipped (upgrading) MID does not rotate now, whatever its age.
    let rotations: Vec<&super::rotation::RotationPlan> = plan
        .hosts
        .iter()
        .filter(|host| !matches!(host.status, HostStatus::Error | HostStatus::Skipped))
        .filter_map(|host| host.rotation.as_ref())
        .collect();
    if !rotations.is_empty() {
        let due = rotations.iter().filter(|rotation| rotation.due).count();
        let next = rotations
            .iter()
            .filter_map(|rotation| rotation.due_in_days)
            .min()
            .map(|days| {
                format!(
                    " (the next in {days} day{})",
                    if days == 1 { "" } else { "s" }
                )
            })
            .unwrap_or_default();
        text.push_str(&format!(
            "Rotation: {due} rotate{} now, {} not due{next}.\n",
            if due == 1 { "s" } else { "" },
            rotations.len() - due
        ));
    }
    if let Some(instance) = &plan.instance {
        let refused = instance
            .preflight
            .iter()
            .filter(|login| matches!(login.status, LoginStatus::Refused | LoginStatus::Error))
            .count();
        text.push_str(&format!(
            "Instance: {} change{}, {} new login{} to check before any host{}.\n",
            plan.instance_changes.len(),
            if plan.instance_changes.len() == 1 {
                ""
            } else {
                "s"
            },
            instance.preflight.len(),
            if instance.preflight.len() == 1 {
                ""
            } else {
                "s"
            },
            if refused > 0 || instance.error.is_some() {
                " (failing now: apply would stop before any host)"
            } else {
                ""
            }
        ));
    }
    text
}

/// The instance's block: its changes, then each new login's status.
fn instance_block(plan: &Plan, instance: &super::InstancePlan, paint: &Paint<'_>) -> String {
    let mut text = format!(
        "  {} instance {}\n",
        (paint.change)("~"),
        (paint.bold)(&instance.url)
    );
    for change in &plan.instance_changes {
        let what = match (change.action.as_str(), &change.role) {
            ("grant_role", Some(role)) => format!("grant_role {role} to {}", change.user),
            ("set_password", _) => format!("set_password {} = (sensitive)", change.user),
            (action, _) => format!("{action} {}", change.user),
        };
        let detail = change
            .detail
            .as_deref()
            .filter(|_| change.action != "set_password")
            .map(|detail| format!("   # {}: {detail}", change.table))
            .unwrap_or_else(|| format!("   # {}", change.table));
        text.push_str(&format!("      {} {what}{detail}\n", (paint.add)("+")));
    }
    for login in &instance.preflight {
        let hosts = if login.hosts.len() <= 3 {
            login.hosts.join(", ")
        } else {
            format!("{} hosts", login.hosts.len())
        };
        let (mark, status) = match login.status {
            LoginStatus::Accepted => ("=".to_string(), "accepted".to_string()),
            LoginStatus::AfterCreation => (
                "=".to_string(),
                "checked after the user is created".to_string(),
            ),
            LoginStatus::AfterReset => (
                "=".to_string(),
                "checked after its password is reset".to_string(),
            ),
            LoginStatus::InUse => (
                (paint.error)("!"),
                (paint.error)(&format!(
                    "{}; these hosts are not rotated",
                    login.message.as_deref().unwrap_or("in use")
                )),
            ),
            LoginStatus::Refused | LoginStatus::Error => (
                (paint.error)("!"),
                (paint.error)(login.message.as_deref().unwrap_or("failed")),
            ),
        };
        text.push_str(&format!(
            "      {mark} login {} ({hosts}): {status}\n",
            login.user
        ));
    }
    if let Some(error) = &instance.error {
        text.push_str(&format!(
            "      {} {}\n",
            (paint.error)("!"),
            (paint.error)(&format!("error: {error}"))
        ));
    }
    if !instance.unchecked_hosts.is_empty() {
        text.push_str(&format!(
            "      warning: the new login of {} cannot be checked: the plan does not write its password\n",
            instance.unchecked_hosts.join(", ")
        ));
    }
    text
}
