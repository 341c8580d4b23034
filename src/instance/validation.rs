//! Invalidate, then Validate, a MID whose key pair was reset, after its
//! restart (`docs/instance.md`, "Validate").
//!
//! Both are UI actions on the `ecc_agent` form with no REST endpoint. What
//! they do is the instance's script include `MIDServerManage`
//! (`invalidate`, `validate`), and midfleet makes the same Table API calls:
//!
//! - Invalidate: mark any `delete_mid_keypair` command still waiting for
//!   the MID `processed` (cancelled), set the record's `validated` to
//!   `false`, and queue a `SystemCommand` `delete_mid_keypair` named
//!   `Invalidate` for `mid.server.<name>`.
//! - Validate: set `validated` to `validating`, and queue a
//!   `SystemCommand` `restartService`; the MID restarts and, finding its
//!   record `validating`, sets it `true`.
//!
//! midfleet waits for the MID to pick up the Invalidate command before it
//! validates (a person would too), and at the end for the record to show
//! `validated` true, `status` Up and the new user.
//!
//! Owns: the calls and the waits. Must not: touch a host, print.

use std::time::{Duration, Instant};

use super::table;
use super::{Client, Credentials, InstanceError};
use crate::plan::{HostPlan, HostStatus, InstanceChange};

/// How every key-pair-reset warning starts (`plan::build`).
pub use crate::plan::KEY_PAIR_WARNING;

/// Whether `host`'s MID is to be validated after its restart: `validate`
/// unset means the MIDs whose key pair is reset.
pub fn wanted(host: &HostPlan, validate: Option<bool>) -> bool {
    host.status == HostStatus::Change && validate.unwrap_or(host.key_pair_reset)
}

/// Why midfleet cannot validate `host`'s MID, if it cannot.
pub fn impossible(host: &HostPlan) -> Option<String> {
    match (host.mid_name.as_deref(), host.expect_user.as_deref()) {
        (None, _) => Some("the MID has no `name` in config.xml".into()),
        (_, None) => Some(
            "the MID has no instance user (mutual TLS): it is validated by its certificate".into(),
        ),
        (Some(name), Some(_)) => table::check_mid_name(name)
            .err()
            .map(|error| error.to_string()),
    }
}

/// The MIDs a plan validates, as `validate_mid` instance changes; the
/// key-pair-reset warning of each host says what is left to do by hand
/// (nothing, when midfleet validates it).
pub fn plan(hosts: &mut [HostPlan], validate: Option<bool>) -> Vec<InstanceChange> {
    let mut changes = Vec::new();
    for host in hosts.iter_mut() {
        host.warnings
            .retain(|warning| !warning.starts_with(KEY_PAIR_WARNING));
        let name = host.mid_name.clone().unwrap_or_default();
        if wanted(host, validate) {
            match impossible(host) {
                None => changes.push(InstanceChange {
                    action: "validate_mid".into(),
                    table: "ecc_agent".into(),
                    user: name,
                    role: None,
                    detail: Some(
                        "after its restart: Invalidate, then Validate (ecc_queue SystemCommands delete_mid_keypair, then restartService)"
                            .into(),
                    ),
                }),
                Some(reason) if host.key_pair_reset => host.warnings.push(format!(
                    "{KEY_PAIR_WARNING} by hand: midfleet cannot ({reason})"
                )),
                Some(reason) => host
                    .warnings
                    .push(format!("not validated on the instance: {reason}")),
            }
        } else if host.key_pair_reset && host.status == HostStatus::Change {
            host.warnings.push(format!(
                "{KEY_PAIR_WARNING} by hand (ecc_agent `{name}`: Invalidate, then Validate): `instance.validate` is false"
            ));
        }
    }
    changes
}

/// How often the instance is read while waiting, at most.
const POLL: Duration = Duration::from_secs(1);
/// The first wait between reads: what is waited for (a MID's record Up
/// after the MID logged in, a queued command picked up) is often a moment
/// away; the waits then double up to [`POLL`] (reads at 0, 0.25, 0.75,
/// 1.75 s…: a wave of hosts is no burst for the instance's limits).
const FIRST_POLL: Duration = Duration::from_millis(250);

/// The command Invalidate queues, and the one Validate queues.
pub const INVALIDATE_COMMAND: &str = "delete_mid_keypair";
pub const VALIDATE_COMMAND: &str = "restartService";

/// Why a MID was not seen validated: the step and what the instance said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotValidated(pub String);

/// Invalidates, then validates, the MID named `name`, and waits (up to
/// `timeout` per wait) until its record shows `validated` true, Up, as
/// `user`. The record's `validated` value before, for the result.
pub fn invalidate_then_validate(
    client: &Client,
    admin: &Credentials,
    name: &str,
    user: &str,
    timeout: Duration,
) -> Result<String, NotValidated> {
    table::check_mid_name(name).map_err(|error| NotValidated(error.to_string()))?;
    let call = |step: &str, error: InstanceError| NotValidated(format!("{step}: {error}"));
    let record = table::mid_record(client, admin, name)
        .map_err(|error| call("reading its ecc_agent record", error))?
        .ok_or_else(|| NotValidated(format!("the instance has no ecc_agent record `{name}`")))?;
    let sys_id = table::field(&record, "sys_id").to_string();
    let before = table::field(&record, "validated").to_string();

    // Invalidate.
    for waiting in table::ready_system_commands(client, admin, name, Some(INVALIDATE_COMMAND))
        .map_err(|error| call("reading the ECC queue", error))?
    {
        table::set_queue_state(client, admin, table::field(&waiting, "sys_id"), "processed")
            .map_err(|error| call("cancelling an earlier Invalidate", error))?;
    }
    set_validated(client, admin, &sys_id, "false")
        .map_err(|error| call("Invalidate (setting validated false)", error))?;
    // Until the MID has taken the Invalidate, a failure puts the record
    // back as it was: no MID is left invalidated by a half-done step.
    let put_back = |command: Option<&str>, why: String| {
        let mut undone = match command {
            Some(command) => table::set_queue_state(client, admin, command, "processed")
                .map_err(|error| format!("cancelling ecc_queue {command}: {error}")),
            None => Ok(()),
        };
        if undone.is_ok() {
            undone = set_validated(client, admin, &sys_id, &before)
                .map_err(|error| format!("setting validated back: {error}"));
        }
        NotValidated(match undone {
            Ok(()) => format!("{why}; the record was put back to validated {before}"),
            Err(error) => format!(
                "{why}; putting the record back failed too ({error}): it may show validated false"
            ),
        })
    };
    let command =
        table::queue_system_command(client, admin, name, INVALIDATE_COMMAND, Some("Invalidate"))
            .map_err(|error| {
                put_back(
                    None,
                    format!("Invalidate (queueing delete_mid_keypair): {error}"),
                )
            })?;
    let command_id = table::field(&command, "sys_id").to_string();
    let mut last = String::new();
    poll(timeout, || {
        let records = table::query(
            client,
            admin,
            "ecc_queue",
            &format!("sys_id={command_id}"),
            &["sys_id", "state"],
            1,
        );
        last = match &records {
            Ok(records) => match records.first() {
                Some(record) => format!("state {}", table::field(record, "state")),
                None => "no such record".into(),
            },
            Err(error) => error.to_string(),
        };
        records.is_ok_and(|records| {
            records
                .first()
                .is_some_and(|record| table::field(record, "state") == "processed")
        })
    })
    .map_err(|seconds| {
        put_back(
            Some(&command_id),
            format!(
                "the MID did not pick up the Invalidate command (ecc_queue {command_id}) within {seconds} s (last seen: {last})"
            ),
        )
    })?;

    // Validate.
    set_validated(client, admin, &sys_id, "validating")
        .map_err(|error| call("Validate (setting validated validating)", error))?;
    table::queue_system_command(client, admin, name, VALIDATE_COMMAND, None)
        .map_err(|error| call("Validate (queueing restartService)", error))?;
    let mut last = String::new();
    poll(timeout, || {
        let found = table::mid_record(client, admin, name);
        last = match &found {
            Ok(Some(record)) => format!(
                "validated {}, status {}, user {}",
                table::field(record, "validated"),
                table::field(record, "status"),
                table::field(record, "user_name")
            ),
            Ok(None) => "no such record".into(),
            Err(error) => error.to_string(),
        };
        matches!(&found, Ok(Some(record)) if table::field(record, "validated") == "true"
            && table::up_as(record, user))
    })
    .map_err(|seconds| {
        NotValidated(format!(
            "the record did not show validated true, Up as `{user}` within {seconds} s of Validate (last seen: {last})"
        ))
    })?;
    Ok(before)
}

fn set_validated(
    client: &Client,
    admin: &Credentials,
    sys_id: &str,
    value: &str,
) -> Result<(), InstanceError> {
    table::set_field(client, admin, "ecc_agent", sys_id, "validated", value)
}

/// Calls `done` until it says yes — after [`FIRST_POLL`], then each wait
/// twice the last, up to [`POLL`]; `Err(seconds)` when `timeout` passed
/// first. Every wait on the instance goes through here.
pub fn poll(timeout: Duration, mut done: impl FnMut() -> bool) -> Result<(), u64> {
    let deadline = Instant::now() + timeout;
    let mut wait = FIRST_POLL;
    loop {
        if done() {
            return Ok(());
        }
        // The last look is at the deadline itself, not a poll before it.
        let now = Instant::now();
        if now >= deadline {
            return Err(timeout.as_secs());
        }
        std::thread::sleep(wait.min(deadline - now));
        wait = (wait * 2).min(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::preflight::tests::host_plan;

    /// The first read again soon, then each wait twice the last up to a
    /// second, and a last look at the deadline.
    #[test]
    fn polls_come_soon_then_back_off_to_a_second() {
        let started = Instant::now();
        let mut reads = Vec::new();
        let outcome = poll(Duration::from_millis(2500), || {
            reads.push(started.elapsed());
            false
        });
        assert_eq!(outcome, Err(2));
        let gaps: Vec<Duration> = reads.windows(2).map(|pair| pair[1] - pair[0]).collect();
        // 0, 0.25, 0.75, 1.75, 2.5 s (the deadline); a loaded machine
        // oversleeps, so fewer reads may fit.
        assert!((3..=5).contains(&reads.len()), "{reads:?}");
        assert!(gaps[0] < Duration::from_millis(900), "{gaps:?}");
        assert!(gaps[1] >= Duration::from_millis(500), "{gaps:?}");
        assert!(
            *reads.last().unwrap() >= Duration::from_millis(2500),
            "{reads:?}"
        );
    }

    fn reset(name: &str) -> HostPlan {
        let mut host = host_plan(name, "svc_old", "svc_new", Some("P"));
        host.key_pair_reset = true;
        host.mid_name = Some(name.into());
        host.warnings.push(format!(
            "{KEY_PAIR_WARNING} (there is no `instance:` section to do it)"
        ));
        host
    }

    #[test]
    fn a_wait_looks_one_last_time_at_its_deadline() {
        let started = Instant::now();
        let timeout = Duration::from_millis(1500);
        let mut looks = Vec::new();
        assert_eq!(
            poll(timeout, || {
                looks.push(started.elapsed());
                false
            }),
            Err(1)
        );
        assert!(looks.len() >= 2, "{looks:?}");
        assert!(*looks.last().unwrap() >= timeout, "{looks:?}");
        let mut calls = 0;
        assert_eq!(
            poll(timeout, || {
                calls += 1;
                true
            }),
            Ok(())
        );
        assert_eq!(calls, 1);
    }

    #[test]
    fn by_default_the_reset_mids_are_validated_and_lose_their_warning() {
        let mut same_user = host_plan("b", "svc_new", "svc_new", Some("P"));
        same_user.mid_name = Some("b".into());
        let mut hosts = vec![reset("a"), same_user, host_plan("c", "svc", "svc", None)];
        let changes = plan(&mut hosts, None);
        let planned: Vec<String> = changes
            .iter()
            .map(|change| format!("{} {} {}", change.action, change.table, change.user))
            .collect();
        assert_eq!(planned, ["validate_mid ecc_agent a"]);
        assert!(
            hosts.iter().all(|host| host.warnings.is_empty()),
            "{hosts:?}"
        );
        // `true`: every changing MID, reset or not; never an unchanged one.
        let changes = plan(&mut hosts, Some(true));
        assert_eq!(changes.len(), 2);
        assert!(!wanted(&hosts[2], Some(true)));
    }

    #[test]
    fn what_midfleet_cannot_validate_is_a_warning_to_do_it_by_hand() {
        let mut no_name = reset("a");
        no_name.mid_name = None;
        let mut mutual_tls = reset("b");
        mutual_tls.expect_user = None;
        let mut odd_name = reset("c");
        odd_name.mid_name = Some("c^name=x".into());
        let mut declined = reset("d");
        let mut hosts = vec![no_name, mutual_tls, odd_name];
        assert!(plan(&mut hosts, None).is_empty());
        let warnings: Vec<&str> = hosts.iter().map(|host| host.warnings[0].as_str()).collect();
        assert_eq!(
            warnings,
            [
                "key pair reset: validate this MID on the instance by hand: midfleet cannot (the MID has no `name` in config.xml)",
                "key pair reset: validate this MID on the instance by hand: midfleet cannot (the MID has no instance user (mutual TLS): it is validated by its certificate)",
                "key pair reset: validate this MID on the instance by hand: midfleet cannot (the MID name `c^name=x` cannot be looked up on the instance)",
            ]
        );
        assert!(plan(std::slice::from_mut(&mut declined), Some(false)).is_empty());
        assert_eq!(
            declined.warnings,
            ["key pair reset: validate this MID on the instance by hand (ecc_agent `d`: Invalidate, then Validate): `instance.validate` is false"]
        );
    }
}
