//! Whether a host rotates now (`rotate:`): its users, its record of the
//! last rotation and the clock → a [`RotationPlan`]. Pure: no host, no
//! instance, no password.

use serde::{Deserialize, Serialize};

use crate::state::{parse_rfc3339, RotationRecord};

/// A host's rotation, as planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationPlan {
    /// It rotates in this run.
    pub due: bool,
    /// The user it logs in as now.
    pub from_user: Option<String>,
    /// The user it rotates to (now when due, else next time).
    pub to_user: String,
    /// Days since its last rotation (none recorded: `None`).
    pub age_days: Option<u64>,
    /// Not due: whole days until it is (at least 1).
    pub due_in_days: Option<u64>,
    /// When it last rotated (RFC 3339).
    pub last_rotated: Option<String>,
    /// Why it rotates now, or when it will.
    pub reason: String,
    /// Where its new password is stored before the instance is changed
    /// (`rotate.store`, rendered for the host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreTarget>,
}

/// `rotate.store` rendered for one host. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreTarget {
    /// The program and its arguments (run without a shell, the password
    /// on stdin).
    Command(Vec<String>),
    /// A file written 0600.
    File(String),
}

/// What a host's rotation is decided from.
pub struct RotationInputs<'a> {
    /// A and B, rendered for the host.
    pub users: &'a [String; 2],
    pub max_age_days: u64,
    /// `mid.instance.username` in its config.xml now.
    pub current_user: Option<&'a str>,
    /// Its state record's last rotation.
    pub record: Option<&'a RotationRecord>,
    /// Seconds since the epoch.
    pub now: u64,
    /// `--rotate-now`.
    pub force: bool,
}

const DAY: u64 = 86_400;

/// Decides one host's rotation. A MID logged in as neither user moves to
/// A; one on A to B, on B to A. It is due when it has never rotated here,
/// when its record names another user than it logs in as (changed outside
/// midfleet), when the record is `max_age` old or older, or when forced.
pub fn decide(inputs: &RotationInputs<'_>) -> RotationPlan {
    let [a, b] = inputs.users;
    let same = |user: &str, other: &str| user.eq_ignore_ascii_case(other);
    let current = inputs.current_user;
    let to_user = match current {
        Some(user) if same(user, a) => b.clone(),
        _ => a.clone(),
    };
    let on_pair = current.is_some_and(|user| same(user, a) || same(user, b));
    let at = inputs
        .record
        .and_then(|record| parse_rfc3339(&record.at).map(|at| (record, at)));
    let age_days = at.map(|(_, at)| inputs.now.saturating_sub(at) / DAY);
    let mut plan = RotationPlan {
        due: true,
        from_user: current.map(str::to_string),
        to_user,
        age_days,
        due_in_days: None,
        last_rotated: at.map(|(record, _)| record.at.clone()),
        reason: String::new(),
        store: None,
    };
    plan.reason = if !on_pair {
        match current {
            Some(user) => format!("first rotation: off `{user}`"),
            None => "first rotation".to_string(),
        }
    } else if inputs.force {
        "--rotate-now".to_string()
    } else {
        match at {
            None => "no rotation recorded on the host".to_string(),
            Some((record, _)) if !current.is_some_and(|user| same(user, &record.user)) => {
                format!(
                    "the last rotation was to `{}`, but the MID logs in as `{}`: changed outside midfleet",
                    record.user,
                    current.unwrap_or_default()
                )
            }
            Some((_, at)) => {
                let due_at = at.saturating_add(inputs.max_age_days.saturating_mul(DAY));
                if inputs.now >= due_at {
                    format!(
                        "{} days old (max_age {}d)",
                        age_days.unwrap_or_default(),
                        inputs.max_age_days
                    )
                } else {
                    let days = (due_at - inputs.now).div_ceil(DAY).max(1);
                    plan.due = false;
                    plan.due_in_days = Some(days);
                    format!("due in {days} day{}", if days == 1 { "" } else { "s" })
                }
            }
        }
    };
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn decide_for(current: Option<&str>, record: Option<(&str, u64)>, force: bool) -> RotationPlan {
        let users = ["svc_a".to_string(), "svc_b".to_string()];
        let record = record.map(|(user, at)| RotationRecord {
            at: crate::report::rfc3339(at),
            user: user.into(),
        });
        decide(&RotationInputs {
            users: &users,
            max_age_days: 60,
            current_user: current,
            record: record.as_ref(),
            now: NOW,
            force,
        })
    }

    #[test]
    fn a_mid_on_neither_user_moves_to_a_at_once() {
        let plan = decide_for(Some("miduser"), Some(("miduser", NOW)), false);
        assert!(plan.due);
        assert_eq!(plan.to_user, "svc_a");
        assert_eq!(plan.reason, "first rotation: off `miduser`");
    }

    #[test]
    fn ages_decide_and_the_pair_alternates() {
        let young = decide_for(Some("svc_a"), Some(("svc_a", NOW - 10 * DAY)), false);
        assert!(!young.due);
        assert_eq!((young.age_days, young.due_in_days), (Some(10), Some(50)));
        assert_eq!(young.to_user, "svc_b");
        assert_eq!(young.reason, "due in 50 days");
        let almost = decide_for(Some("SVC_B"), Some(("svc_b", NOW - 60 * DAY + 5)), false);
        assert_eq!((almost.due, almost.due_in_days), (false, Some(1)));
        assert_eq!(almost.to_user, "svc_a");
        let old = decide_for(Some("svc_b"), Some(("svc_b", NOW - 61 * DAY)), false);
        assert!(old.due);
        assert_eq!(old.to_user, "svc_a");
        assert_eq!(old.reason, "61 days old (max_age 60d)");
        let exactly = decide_for(Some("svc_b"), Some(("svc_b", NOW - 60 * DAY)), false);
        assert!(exactly.due);
    }

    #[test]
    fn forced_unrecorded_or_drifted_hosts_rotate() {
        let forced = decide_for(Some("svc_a"), Some(("svc_a", NOW)), true);
        assert_eq!((forced.due, forced.reason.as_str()), (true, "--rotate-now"));
        let unrecorded = decide_for(Some("svc_a"), None, false);
        assert_eq!(unrecorded.reason, "no rotation recorded on the host");
        assert_eq!(unrecorded.to_user, "svc_b");
        let drifted = decide_for(Some("svc_b"), Some(("svc_a", NOW)), false);
        assert!(drifted.due);
        assert!(
            drifted.reason.contains("changed outside midfleet"),
            "{}",
            drifted.reason
        );
    }
}
