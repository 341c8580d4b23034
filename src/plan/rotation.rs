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
    /// How to read the stored password back (`rotate.store.read`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_read: Option<StoreRead>,
    /// The user it moves to is reset first (`false`: a host joining its
    /// shared pair's group on a user the others already log in as, with
    /// the stored password).
    #[serde(default = "reset_default")]
    pub reset: bool,
    /// The other hosts sharing its pair (they move as one group).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_with: Vec<String>,
    /// Not due: the users it is done with — the idle one of its pair and
    /// the one its last rotation left — which apply retires when they are
    /// not yet and nothing uses them (a run that ended before retiring).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retire: Vec<String>,
}

fn reset_default() -> bool {
    true
}

/// What a group of hosts sharing one pair does in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupMove {
    /// The due hosts move together to a user no member is on: it is
    /// reset once, with one password.
    Fresh { members: Vec<usize> },
    /// Some members already log in as `user` (a run that did not finish,
    /// or a host added later): the due ones join them with the stored
    /// password; the user is not reset.
    Join { members: Vec<usize>, user: String },
    /// The group cannot move: why.
    Refused { members: Vec<usize>, reason: String },
}

/// Groups the hosts whose pairs are the same users (ignoring case, as the
/// instance does) and decides how each group with a due host moves;
/// `decisions` are updated (the joining hosts' target and reason, each
/// member's `shared_with`). `names` are the hosts' names.
pub fn group(
    pairs: &[Option<&[String; 2]>],
    decisions: &mut [Option<RotationPlan>],
    names: &[&str],
) -> Vec<GroupMove> {
    let key = |pair: &[String; 2]| (pair[0].to_lowercase(), pair[1].to_lowercase());
    let mut groups: Vec<((String, String), Vec<usize>)> = Vec::new();
    for (index, pair) in pairs.iter().enumerate() {
        let (Some(pair), Some(_)) = (pair, &decisions[index]) else {
            continue;
        };
        match groups.iter_mut().find(|(found, _)| *found == key(pair)) {
            Some((_, members)) => members.push(index),
            None => groups.push((key(pair), vec![index])),
        }
    }
    let mut moves = Vec::new();
    for (_, members) in groups.into_iter().filter(|(_, members)| members.len() > 1) {
        for &index in &members {
            let others = members
                .iter()
                .filter(|&&other| other != index)
                .map(|&other| names[other].to_string())
                .collect();
            if let Some(decision) = decisions[index].as_mut() {
                decision.shared_with = others;
            }
        }
        let due: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&index| {
                decisions[index]
                    .as_ref()
                    .is_some_and(|decision| decision.due)
            })
            .collect();
        if due.is_empty() {
            continue;
        }
        let settled: Vec<String> = members
            .iter()
            .filter(|index| !due.contains(index))
            .filter_map(|&index| decisions[index].as_ref()?.from_user.clone())
            .collect();
        let same = |users: &[String]| {
            users
                .windows(2)
                .all(|pair| pair[0].eq_ignore_ascii_case(&pair[1]))
        };
        let listed = |indexes: &[usize]| {
            indexes
                .iter()
                .map(|&index| names[index])
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(user) = settled.first().filter(|_| same(&settled)) {
            for &index in &due {
                if let Some(decision) = decisions[index].as_mut() {
                    decision.to_user = user.clone();
                    decision.reset = false;
                    decision.reason = format!(
                        "joins its shared pair's group on `{user}` with the stored password"
                    );
                }
            }
            moves.push(GroupMove::Join {
                members: due,
                user: user.clone(),
            });
            continue;
        }
        if !settled.is_empty() {
            moves.push(GroupMove::Refused {
                reason: format!(
                    "hosts {} share a pair but log in as different users ({}): rotate them to one user first (`--limit` and `--rotate-now`)",
                    listed(&members),
                    settled.join(", ")
                ),
                members: due,
            });
            continue;
        }
        let targets: Vec<String> = due
            .iter()
            .filter_map(|&index| Some(decisions[index].as_ref()?.to_user.clone()))
            .collect();
        if !same(&targets) {
            if let Some((user, joining)) = rejoin(pairs, decisions, &due) {
                for &index in &due {
                    let Some(decision) = decisions[index].as_mut() else {
                        continue;
                    };
                    if joining.contains(&index) {
                        decision.reset = false;
                        decision.reason = format!(
                            "joins its shared pair's group on `{user}` with the stored password"
                        );
                    } else {
                        // On the user the others join: it moves with
                        // them on a later run, not alone now (the user it
                        // would move to is in use by them).
                        decision.due = false;
                        decision.due_in_days = Some(1);
                        decision.store = None;
                        decision.store_read = None;
                        decision.reason =
                            format!("waits for its shared pair's group to join it on `{user}`");
                    }
                }
                moves.push(GroupMove::Join {
                    members: joining,
                    user,
                });
                continue;
            }
            moves.push(GroupMove::Refused {
                reason: format!(
                    "hosts {} share a pair but would move to different users ({}): they log in as different users now",
                    listed(&due),
                    targets.join(", ")
                ),
                members: due,
            });
            continue;
        }
        moves.push(GroupMove::Fresh { members: due });
    }
    moves
}

/// A group whose due members log in as both users of their pair (a
/// `--limit` or `--rotate-now` moved some alone, and all became due at
/// once): the user rotated to last — its stored password the newest —
/// and the due members that join it (each already moving to it). `None`
/// when that does not hold (e.g. a member on neither user).
fn rejoin(
    pairs: &[Option<&[String; 2]>],
    decisions: &[Option<RotationPlan>],
    due: &[usize],
) -> Option<(String, Vec<usize>)> {
    let latest = due
        .iter()
        .filter_map(|&index| decisions[index].as_ref())
        .max_by(|one, other| one.last_rotated.cmp(&other.last_rotated))?;
    let user = latest.from_user.clone()?;
    let mut joining = Vec::new();
    for &index in due {
        let (decision, pair) = (decisions[index].as_ref()?, pairs[index]?);
        let current = decision.from_user.as_deref()?;
        if !pair
            .iter()
            .any(|member| member.eq_ignore_ascii_case(current))
        {
            return None;
        }
        if current.eq_ignore_ascii_case(&user) {
            continue;
        }
        if !decision.to_user.eq_ignore_ascii_case(&user) {
            return None;
        }
        joining.push(index);
    }
    (!joining.is_empty()).then_some((user, joining))
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

/// `rotate.store.read` rendered for one host: the program and its
/// arguments, printing the stored password.
pub type StoreRead = Vec<String>;

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
        store_read: None,
        reset: true,
        shared_with: Vec::new(),
        retire: Vec::new(),
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
            // Beyond a day of clock skew, a future date is a wrong clock
            // (or MIDFLEET_NOW) that would keep the host from rotating
            // until that date plus max_age.
            Some((record, at)) if at > inputs.now.saturating_add(DAY) => format!(
                "the last rotation is recorded in the future ({}): written with a wrong clock",
                record.at
            ),
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
                    // The idle user of the pair, and the one it left.
                    let idle = plan.to_user.clone();
                    plan.retire.push(idle);
                    if let Some(from) = inputs.record.and_then(|record| record.from.clone()) {
                        if !plan.retire.iter().any(|user| same(user, &from))
                            && !current.is_some_and(|user| same(user, &from))
                        {
                            plan.retire.push(from);
                        }
                    }
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
            from: Some("miduser".into()),
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
        assert_eq!(young.retire, ["svc_b", "miduser"], "what it is done with");
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
    fn a_shared_pair_moves_fresh_together_or_joins_the_members_already_moved() {
        let pair = ["svc_a".to_string(), "svc_b".to_string()];
        let own = ["svc_x_a".to_string(), "svc_x_b".to_string()];
        let names = ["m1", "m2", "m3", "own"];
        let pairs = [Some(&pair), Some(&pair), Some(&pair), Some(&own)];
        // All on the shared user: one fresh move to A.
        let mut decisions: Vec<Option<RotationPlan>> = (0..4)
            .map(|_| Some(decide_for(Some("miduser"), None, false)))
            .collect();
        let moves = group(&pairs, &mut decisions, &names);
        assert_eq!(
            moves,
            [GroupMove::Fresh {
                members: vec![0, 1, 2]
            }]
        );
        assert_eq!(decisions[0].as_ref().unwrap().shared_with, ["m2", "m3"]);
        assert!(decisions[3].as_ref().unwrap().shared_with.is_empty());
        // m1 moved (recorded now, not due); m2, m3 did not: they join A
        // without a reset.
        decisions[0] = Some(decide_for(Some("svc_a"), Some(("svc_a", NOW)), false));
        decisions[1] = Some(decide_for(Some("miduser"), None, false));
        decisions[2] = Some(decide_for(Some("miduser"), None, false));
        let moves = group(&pairs, &mut decisions, &names);
        assert_eq!(
            moves,
            [GroupMove::Join {
                members: vec![1, 2],
                user: "svc_a".into()
            }]
        );
        let joining = decisions[1].as_ref().unwrap();
        assert_eq!((joining.to_user.as_str(), joining.reset), ("svc_a", false));
        // Nothing due: nothing.
        for decision in decisions.iter_mut().take(3) {
            *decision = Some(decide_for(Some("svc_a"), Some(("svc_a", NOW)), false));
        }
        assert!(group(&pairs, &mut decisions, &names).is_empty());
        // Settled members on different users: refused.
        decisions[0] = Some(decide_for(Some("svc_b"), Some(("svc_b", NOW)), false));
        decisions[2] = Some(decide_for(Some("miduser"), None, false));
        assert!(matches!(
            group(&pairs, &mut decisions, &names).as_slice(),
            [GroupMove::Refused { .. }]
        ));
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

    /// A record dated in the future (written by a jump host with a wrong
    /// clock, or by a run with `MIDFLEET_NOW` left set) would keep the
    /// host "not due" until that date plus `max_age` — years, with the
    /// daily run exiting 0. Beyond a day of clock skew it is not believed.
    #[test]
    fn a_rotation_recorded_in_the_future_is_not_believed() {
        let future = decide_for(Some("svc_a"), Some(("svc_a", NOW + 400 * DAY)), false);
        assert!(future.due, "{future:?}");
        assert_eq!(future.to_user, "svc_b");
        assert!(
            future.reason.contains("recorded in the future"),
            "{}",
            future.reason
        );
        // Some skew between jump hosts' clocks is not a reason.
        let skewed = decide_for(Some("svc_a"), Some(("svc_a", NOW + 3600)), false);
        assert!(!skewed.due);
        assert_eq!(skewed.due_in_days, Some(61));
    }
}
