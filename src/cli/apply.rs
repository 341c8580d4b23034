//! `midfleet apply`.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use super::args::{load_ssh_config, ApplyArgs};
use super::console::Console;
use super::console::OutputFormat;
use super::exit::{Exit, Failure};
use super::progress::Progress;
use crate::apply::{apply, local_user, new_run_id, ApplySettings, HostResult, Outcome, Values};
use crate::instance::{preflight, validation};
use crate::ops::plan::PlanRequest;
use crate::plan::Plan;
use crate::playbook::RetireOldUser;
use crate::report::{audit, render_table};
use crate::secret::{SecretRef, SecretResolver, SecretValue};

/// Set by Ctrl-C: no new host starts.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(signal: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    // A second Ctrl-C (or TERM) ends midfleet at once; the hosts'
    // transactions go on by themselves.
    // SAFETY: signal(2) is async-signal-safe.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
    }
}

/// From here on, Ctrl-C and SIGTERM (a service manager, `timeout`, a CI
/// job cancelled) stop starting new hosts (apply, rollback); the running
/// ones are followed to their end and reported.
pub fn catch_interrupt() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: installing a handler that only stores to an atomic and
        // calls signal(2).
        unsafe {
            libc::signal(signal, on_interrupt as *const () as libc::sighandler_t);
        }
    }
}

#[derive(Serialize)]
struct AuditRecord<'a> {
    time: String,
    user: String,
    command: &'static str,
    run: &'a str,
    playbook: &'a str,
    hosts: Vec<AuditHost<'a>>,
    interrupted: bool,
}

#[derive(Serialize)]
struct AuditHost<'a> {
    host: &'a str,
    result: Outcome,
    params: &'a [String],
}

#[derive(Serialize)]
struct Report<'a> {
    run: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<InstanceReport>,
    results: &'a [HostResult],
    interrupted: bool,
}

/// What was done on the instance before the hosts.
#[derive(Serialize)]
struct InstanceReport {
    changes: Vec<crate::plan::InstanceChange>,
    /// The new MID users whose login the instance accepted.
    logins_accepted: Vec<String>,
    /// After each host's restart: the MIDs invalidated and validated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    validated: Vec<Validated>,
    /// After the run: the old users locked, deactivated or kept.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    retired: Vec<preflight::Retired>,
}

/// One MID's Invalidate and Validate.
#[derive(Serialize)]
struct Validated {
    host: String,
    /// The MID's name: its `ecc_agent` record.
    mid: String,
    /// `validated`, or `not_validated` (`reason` says where it stopped).
    outcome: &'static str,
    /// The record's `validated` value before.
    #[serde(skip_serializing_if = "Option::is_none")]
    before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Invalidates, then validates, `host`'s MID when the plan says so
/// ([`validation::wanted`]) and midfleet can ([`validation::impossible`]:
/// the plan carries those hosts' warnings).
fn validate_mid(
    client: &crate::instance::Client,
    admin: &crate::instance::Credentials,
    host: &crate::plan::HostPlan,
    validate: Option<bool>,
    timeout: std::time::Duration,
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

/// Says on stderr how many MIDs were validated, and warns about each that
/// was not; true when any was not.
fn report_validations(console: &Console, validations: &[Validated]) -> bool {
    if validations.is_empty() {
        return false;
    }
    let done = validations
        .iter()
        .filter(|outcome| outcome.reason.is_none())
        .count();
    eprintln!(
        "instance: {done} of {} MID{} validated (Invalidate, then Validate)",
        validations.len(),
        if validations.len() == 1 { "" } else { "s" }
    );
    for outcome in validations {
        if let Some(reason) = &outcome.reason {
            console.warning(&format!(
                "instance: ecc_agent `{}` ({}) is not validated: {reason}",
                outcome.mid, outcome.host
            ));
        }
    }
    done < validations.len()
}

pub fn run(console: &Console, arguments: &ApplyArgs) -> Result<Exit, Failure> {
    let transport = arguments.connection.transport(true, console)?;
    let forks = usize::from(arguments.connection.forks);
    let mut read_timings: Vec<(String, crate::transport::Timings)> = Vec::new();
    let (plan, secrets, literals, kept) = match &arguments.plan {
        Some(path) => {
            let plan = read_plan(path)?;
            let secrets = re_resolve(console, &plan)?;
            (plan, secrets, Default::default(), Default::default())
        }
        None => {
            let ssh_config = load_ssh_config(&arguments.ssh_config)?;
            let playbook = arguments
                .playbook
                .as_deref()
                .ok_or_else(|| Failure::usage("a playbook or --plan is needed"))?;
            let planned = super::plan::plan(
                console,
                &transport,
                &PlanRequest {
                    inventory: &arguments.inventory,
                    playbook,
                    limit: arguments.limit.as_deref(),
                    shard: arguments.shard,
                    ssh_config: &ssh_config,
                    forks,
                    // With --yes nobody is asked: the apply follows the
                    // plan at once, on the read's own sessions. A plan that
                    // waits for a person's `yes` keeps none open.
                    keep_sessions: if arguments.yes {
                        crate::apply::KEEP_SESSIONS
                    } else {
                        0
                    },
                },
            )?;
            read_timings = planned.timings;
            (
                planned.plan,
                planned.secrets,
                planned.literals,
                planned.kept,
            )
        }
    };
    // The plan goes to stdout for people; with --output json, stdout is the
    // results, so the plan is shown on stderr.
    let shown = super::plan::human(console, &plan);
    match console.output {
        OutputFormat::Human => console.data(&shown),
        OutputFormat::Json => eprint!("{shown}"),
    }
    if plan.instance_failed() && plan.has_changes() {
        return Err(Failure::failed(
            "the instance preflight failed (shown above); no host was touched",
        )
        .with_hint(
            "fix the new credentials (or the instance section) and run again; nothing was changed",
        ));
    }
    if !plan.has_changes() {
        eprintln!("Nothing to apply.");
    } else if !confirm(arguments.yes, plan.changing().count())? {
        eprintln!("Apply cancelled; nothing was changed.");
        return Ok(Exit::Failed);
    }
    let mut instance = match &plan.instance {
        Some(instance) if plan.has_changes() => Some(prepare_instance(
            console,
            instance,
            &plan,
            &Values {
                secrets: &secrets,
                literals: &literals,
            },
        )?),
        _ => None,
    };
    let run = new_run_id();
    let health_timeout = plan.rollout.health_timeout;
    // With an instance section, health also waits for each MID's
    // ecc_agent record to be Up as its new user; then the MIDs whose key
    // pair was reset are invalidated and validated.
    let validated: std::sync::Arc<std::sync::Mutex<Vec<Validated>>> = Default::default();
    let after_apply: Option<crate::apply::AfterApply> = match &plan.instance {
        Some(section) if plan.has_changes() => {
            let (client, admin) = preflight::connect(section, &secrets).map_err(|message| {
                Failure::failed(format!("instance: {message}; no host was touched"))
            })?;
            let timeout = std::time::Duration::from_secs(health_timeout);
            let validate = section.validate;
            let validated = std::sync::Arc::clone(&validated);
            Some(std::sync::Arc::new(move |host: &crate::plan::HostPlan| {
                let mut warnings = preflight::wait_up(&client, &admin, host, timeout)?;
                if let Some(outcome) = validate_mid(&client, &admin, host, validate, timeout) {
                    if let Some(reason) = &outcome.reason {
                        warnings.push(format!(
                            "not validated: {reason}; validate ecc_agent `{}` on the instance by hand (Invalidate, then Validate)",
                            outcome.mid
                        ));
                    }
                    validated
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(outcome);
                }
                Ok(warnings)
            }))
        }
        _ => None,
    };
    catch_interrupt();
    let progress = Progress::new("apply", plan.changing().count());
    let mut results = apply(
        &plan,
        &Values {
            secrets: &secrets,
            literals: &literals,
        },
        &transport,
        &ApplySettings {
            run: run.clone(),
            forks,
            health_timeout,
            after_apply,
        },
        &progress,
        &INTERRUPTED,
        kept,
    );
    progress.finish();
    let interrupted = INTERRUPTED.load(Ordering::SeqCst);
    let mut retire_failed = false;
    let mut validations = std::mem::take(
        &mut *validated
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    validations.sort_by(|one, other| one.host.cmp(&other.host));
    let validate_failed = report_validations(console, &validations);
    if let Some(report) = instance.as_mut() {
        report.validated = validations;
    }
    if let (Some(section), Some(report)) = (&plan.instance, instance.as_mut()) {
        if section.retire_old_user != RetireOldUser::Keep && !interrupted {
            let applied = |host: &str| {
                results
                    .iter()
                    .any(|result| result.host == host && result.result == Outcome::Applied)
            };
            report.retired = match preflight::connect(section, &secrets) {
                Ok((client, admin)) => {
                    preflight::retire(&client, &admin, &plan, &applied, section.retire_old_user)
                }
                Err(message) => preflight::old_users(&plan)
                    .into_iter()
                    .map(|user| preflight::Retired {
                        user,
                        outcome: "failed",
                        reason: Some(message.clone()),
                    })
                    .collect(),
            };
            for retired in &report.retired {
                let reason = retired
                    .reason
                    .as_deref()
                    .map(|reason| format!(": {reason}"))
                    .unwrap_or_default();
                match retired.outcome {
                    "locked" | "deactivated" => {
                        eprintln!("instance: old user {} {}", retired.user, retired.outcome)
                    }
                    "failed" => {
                        retire_failed = true;
                        console.warning(&format!(
                            "instance: could not retire the old user {}{reason}",
                            retired.user
                        ));
                    }
                    _ => console.warning(&format!(
                        "instance: the old user {} is kept{reason}; retire it by hand once nothing uses it",
                        retired.user
                    )),
                }
            }
        }
    }
    let record = AuditRecord {
        time: crate::report::now_rfc3339(),
        user: local_user(),
        command: "apply",
        run: &run,
        playbook: &plan.playbook.path,
        hosts: results
            .iter()
            .map(|result| AuditHost {
                host: &result.host,
                result: result.result,
                params: &result.params,
            })
            .collect(),
        interrupted,
    };
    record_audit(console, arguments.audit_log.as_deref(), &record);
    if !arguments.connection.timings {
        results.iter_mut().for_each(|result| result.timings.clear());
    }
    match console.output {
        OutputFormat::Json => {
            let json = serde_json::to_string_pretty(&Report {
                run: &run,
                instance,
                results: &results,
                interrupted,
            })
            .map_err(|error| Failure::failed(error.to_string()))?;
            console.data(&format!("{json}\n"));
        }
        OutputFormat::Human => console.data(&human_results(&run, &results, interrupted)),
    }
    if arguments.connection.timings {
        // Per host: the plan's read session, then the apply's sessions
        // (the first of which may be the read's, continued).
        let rows: Vec<(String, Vec<&crate::transport::Timings>)> = results
            .iter()
            .map(|result| {
                let read = read_timings
                    .iter()
                    .filter(|(host, _)| *host == result.host && !result.continued_plan_session)
                    .map(|(_, timings)| timings);
                (result.host.clone(), read.chain(&result.timings).collect())
            })
            .collect();
        eprint!("{}", crate::report::render_timings(&rows));
    }
    let all_good = results.iter().all(|result| result.result.is_success());
    Ok(
        if all_good && !interrupted && !retire_failed && !validate_failed {
            Exit::Success
        } else {
            Exit::Failed
        },
    )
}

pub fn human_results(run: &str, results: &[HostResult], interrupted: bool) -> String {
    let rows: Vec<Vec<String>> = results
        .iter()
        .filter(|result| result.result != Outcome::Unchanged)
        .map(|result| {
            vec![
                result.host.clone(),
                result.result.as_str().to_string(),
                format!("{:.1}s", result.seconds),
                result.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut text = String::new();
    if !rows.is_empty() {
        text.push('\n');
        text.push_str(&render_table(&["HOST", "RESULT", "TIME", "DETAIL"], &rows));
    }
    for result in results {
        for warning in &result.warnings {
            text.push_str(&format!("warning: {}: {warning}\n", result.host));
        }
        if let (Some(backup), Outcome::Failed) = (&result.backup, result.result) {
            text.push_str(&format!("{}: the backup is in {backup}\n", result.host));
        }
    }
    let mut counts: Vec<(Outcome, usize)> = Vec::new();
    for result in results {
        match counts
            .iter_mut()
            .find(|(outcome, _)| *outcome == result.result)
        {
            Some((_, count)) => *count += 1,
            None => counts.push((result.result, 1)),
        }
    }
    let summary: Vec<String> = counts
        .iter()
        .map(|(outcome, count)| format!("{count} {}", outcome.as_str()))
        .collect();
    text.push_str(&format!("\nApply {run}: {}.\n", summary.join(", ")));
    if interrupted {
        text.push_str("Interrupted: hosts not started were skipped; running transactions finished on their hosts.\n");
    }
    text
}

/// The instance steps before any host (`docs/instance.md`): with
/// `ensure_user`, missing users created and `mid_server` granted; then
/// every new login checked. A failure stops the run: no host is touched.
fn prepare_instance(
    console: &Console,
    instance: &crate::plan::InstancePlan,
    plan: &Plan,
    values: &Values<'_>,
) -> Result<InstanceReport, Failure> {
    let (logins, unchecked) = preflight::logins(plan, values);
    if !unchecked.is_empty() {
        console.warning(&format!(
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
        .map_err(|message| Failure::failed(format!("instance: {message}; no host was touched")))?;
    match preflight::prepare(&client, &admin, instance.ensure_user, &logins) {
        Ok(prepared) => {
            for change in &prepared.changes {
                eprintln!(
                    "instance: {} {}{}",
                    change.action,
                    change.user,
                    change
                        .role
                        .as_deref()
                        .map(|role| format!(" {role}"))
                        .unwrap_or_default()
                );
            }
            for user in &prepared.accepted {
                eprintln!("instance: the new login of {user} is accepted");
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
            Err(Failure::failed(message).with_optional_hint(failure.hint))
        }
    }
}

/// Asks on the terminal; without one, `--yes` is required.
pub fn confirm(yes: bool, hosts: usize) -> Result<bool, Failure> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(Failure::usage(
            "apply changes hosts and needs --yes when not run on a terminal",
        )
        .with_hint("review the plan (`midfleet plan`), then run apply with --yes"));
    }
    eprint!(
        "\nApply these changes to {hosts} host{}? Only 'yes' is accepted: ",
        if hosts == 1 { "" } else { "s" }
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|error| Failure::failed(error.to_string()))?;
    Ok(answer.trim() == "yes")
}

/// Reads the plan file, refusing one that is not the effective user's
/// alone (`plan::file`).
fn read_plan(path: &std::path::Path) -> Result<Plan, Failure> {
    crate::plan::file::read(path).map_err(plan_file_failure)
}

fn plan_file_failure(error: crate::plan::file::PlanFileError) -> Failure {
    let hint = error.hint();
    Failure::usage(error.to_string()).with_hint(hint)
}

/// Resolves the plan's secrets again — only those its playbook, read again
/// and unchanged, holds; any that now resolves to another value stops the
/// run before any host is touched.
fn re_resolve(
    console: &Console,
    plan: &Plan,
) -> Result<std::collections::BTreeMap<SecretRef, SecretValue>, Failure> {
    // Every reference is checked before the first is resolved: a plan
    // file edited to add a `command:` never runs it.
    let references = crate::plan::file::secret_references(plan).map_err(plan_file_failure)?;
    let mut resolver = SecretResolver::new();
    let mut values = std::collections::BTreeMap::new();
    for (info, (reference, scope)) in plan.secrets.iter().zip(references) {
        let value = resolver.resolve_in(&reference, scope.as_ref());
        for warning in resolver.take_warnings() {
            console.diagnostic(&crate::ops::plan::secret_warning(&warning));
        }
        let value = value.map_err(|error| {
            let hint = error.hint().map(str::to_string);
            Failure::usage(error.to_string()).with_optional_hint(hint)
        })?;
        if !info.value_hash.matches(value.expose()) {
            return Err(Failure::failed(format!(
                "secret {reference} now resolves to a different value than when the plan was made; no host was touched"
            ))
            .with_hint("make the plan again (`midfleet plan … --out FILE`)"));
        }
        values.insert(reference, value);
    }
    Ok(values)
}

/// Appends `record` to the audit log (`--audit-log`, else the default); a
/// failure is a warning, never a reason to hide the results.
pub fn record_audit<T: Serialize>(console: &Console, path: Option<&std::path::Path>, record: &T) {
    let path = path.map_or_else(audit::default_path, std::path::Path::to_path_buf);
    if let Err(error) = audit::append(&path, record) {
        console.warning(&format!("cannot write the audit log: {error}"));
    }
}
