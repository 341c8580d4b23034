//! The plan for people: one block per host, Terraform-like.

use super::{HostStatus, Plan};

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
                if verbose {
                    text.push_str(&format!("  = {}  (no changes)\n", host.host));
                }
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
                let mut notes = vec![host.config.clone()];
                if host.start_only {
                    notes.push("start".into());
                } else if host.restart {
                    notes.push("restart".into());
                }
                if host.key_pair_reset {
                    notes.push("key pair reset".into());
                }
                text.push_str(&format!(
                    "  {} {}  ({})\n",
                    (paint.change)("~"),
                    (paint.bold)(&host.host),
                    notes.join(", ")
                ));
                for change in &host.changes {
                    let reason = change
                        .reason
                        .as_deref()
                        .map(|reason| format!("   # {reason}"))
                        .unwrap_or_default();
                    let line = match (change.action.as_str(), &change.param) {
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
    let count = |status| {
        plan.hosts
            .iter()
            .filter(|host| host.status == status)
            .count()
    };
    let starts = plan.hosts.iter().filter(|host| host.start_only).count();
    let changes = count(HostStatus::Change) - starts;
    text.push_str(&format!(
        "\nPlan: {} to change, {} to start, {} unchanged, {} error{}.\n",
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
    text
}
