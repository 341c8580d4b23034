//! One host's apply: read (or reuse the plan's read), check the
//! fingerprint, stage and start the transaction on one remote shell,
//! follow it to its end (reconnecting when the connection drops), and the
//! checks after it (the instance's `ecc_agent` record), rolling back when
//! they fail.
//!
//! Must not: print (progress goes to the reporter) or decide what a run's
//! files hold (`files.rs`).

use std::time::{Duration, Instant};

use crate::facts;
use crate::plan::HostPlan;
use crate::report::Reporter;
use crate::transport::{shell_command, Transport, TransportError};

use super::*;

/// Puts back the files `applied` replaced, because a check after the
/// transaction failed for `reason`: the host's newest backup (the one this
/// run made) is restored, restarted and checked, as `midfleet rollback`
/// does, under a run of its own.
pub(super) fn roll_back_after(
    host: &HostPlan,
    applied: HostResult,
    reason: &str,
    transport: &Transport,
    settings: &ApplySettings,
    reporter: &dyn Reporter,
) -> HostResult {
    reporter.host_step(&host.host, "rolling back");
    let mut result = applied;
    let pair = (host_for_facts(host), host.connection.clone());
    let read = crate::facts::gather::gather(transport, vec![pair], 1, reporter)
        .ok()
        .and_then(|reads| reads.into_iter().next());
    let restore = match read.as_ref().map(rollback_plan) {
        Some(restore) if restore.status == crate::plan::HostStatus::Change => restore,
        other => {
            let why = other
                .and_then(|restore| restore.error)
                .unwrap_or_else(|| "the host could not be read again".into());
            result.result = Outcome::Failed;
            result.message = Some(format!("{reason}; not rolled back: {why}"));
            return result;
        }
    };
    let rollback_settings = ApplySettings {
        run: new_run_id(),
        kind: RunKind::Rollback,
        forks: 1,
        health_timeout: settings.health_timeout,
        after_apply: None,
    };
    let empty = BTreeMap::new();
    let literals = BTreeMap::new();
    let restored = run_host(
        &restore,
        &Values {
            secrets: &empty,
            literals: &literals,
        },
        transport,
        &rollback_settings,
        reporter,
        None,
    );
    let backup = result
        .backup
        .as_deref()
        .map(|backup| format!("; the backup is {backup} on the host"))
        .unwrap_or_default();
    result
        .steps
        .extend(restored.steps.iter().map(|step| crate::report::Step {
            step: format!("rollback {}", step.step),
            ..step.clone()
        }));
    result.exchanges.extend(restored.exchanges.iter().cloned());
    if restored.result == Outcome::Applied {
        result.result = Outcome::RolledBack;
        result.message = Some(format!(
            "{reason}; rolled back: the previous files are back and the MID runs on them{backup}"
        ));
    } else {
        result.result = Outcome::Failed;
        result.message = Some(format!(
            "{reason}; the rollback failed too: {}",
            restored
                .message
                .unwrap_or_else(|| restored.result.as_str().into())
        ));
    }
    result
}

pub(super) fn summary(result: &HostResult) -> String {
    let name = result.result.name(result.kind);
    match &result.message {
        Some(message) => format!("{name}: {message}"),
        None => name.to_string(),
    }
}

pub(super) fn result(
    host: &HostPlan,
    settings: &ApplySettings,
    outcome: Outcome,
    message: Option<String>,
) -> HostResult {
    HostResult {
        host: host.host.clone(),
        result: outcome,
        kind: settings.kind,
        message,
        warnings: Vec::new(),
        params: Vec::new(),
        backup: None,
        run: settings.run.clone(),
        seconds: 0.0,
        timings: Vec::new(),
        continued_plan_session: false,
        connection: None,
        steps: Vec::new(),
        log_line: None,
        exchanges: Vec::new(),
    }
}

pub(super) fn from_transport(
    host: &HostPlan,
    settings: &ApplySettings,
    error: &TransportError,
) -> HostResult {
    let outcome = if error.kind.is_unreachable() {
        Outcome::Unreachable
    } else {
        Outcome::Error
    };
    let mut message = error.message.clone();
    if let Some(hint) = &error.hint {
        message = format!("{message} (hint: {hint})");
    }
    result(host, settings, outcome, Some(message))
}

/// A host that ended on its first session: that session's timings
/// (`--timings`) go with its result.
pub(super) fn with_session(
    mut ended: HostResult,
    shell: &crate::transport::Shell,
    continued: bool,
) -> HostResult {
    ended.timings = vec![shell.connection().timings.clone()];
    ended.continued_plan_session = continued;
    ended.connection = Some(shell.connection().detail.clone());
    ended.exchanges = shell.connection().exchanges.clone();
    ended
}

/// One host: read, check the fingerprint, build the run's files, stage and
/// start the transaction, follow it to its end. The read is the plan's,
/// when its session is still open (`kept`); else a new session reads
/// config.xml again. Either way the read and the staging run on one
/// remote shell: one session, one exec channel.
pub(super) fn run_host(
    host: &HostPlan,
    values: &Values<'_>,
    transport: &Transport,
    settings: &ApplySettings,
    reporter: &dyn Reporter,
    kept: Option<KeptRead>,
) -> HostResult {
    // A kept session may have been cut while it waited: it is used only
    // when its shell still answers (a builtin echo), else the host is read
    // again on a new session, as a host whose session was not kept. The
    // plan's `--timings` already show the read session either way.
    let kept = kept.and_then(|mut kept| {
        let timeout = Duration::from_secs(host.connection.connect_timeout);
        kept.shell.alive(timeout).is_ok().then_some(kept)
    });
    let continued = kept.is_some();
    let mut steps = Vec::new();
    let (mut shell, facts, read_at) = match kept {
        Some(kept) => {
            steps.push(crate::report::Step {
                step: "connect".into(),
                detail: "the plan's session, kept".into(),
                seconds: 0.0,
            });
            (kept.shell, kept.facts, kept.read_at)
        }
        None => {
            reporter.host_step(&host.host, "connecting");
            let shell = transport
                .connect(&host.connection)
                .and_then(|connection| connection.shell(shell_command(host.become_as()).as_str()));
            let mut shell = match shell {
                Ok(shell) => shell,
                Err(error) => return from_transport(host, settings, &error),
            };
            steps.push(crate::report::Step {
                step: "connect".into(),
                detail: String::new(),
                seconds: shell.connection().detail.seconds,
            });
            reporter.host_step(&host.host, "reading config.xml");
            let inventory_host = host_for_facts(host);
            let read_at = Instant::now();
            let read = shell
                .run(facts::script(&inventory_host).as_bytes())
                .and_then(|output| crate::facts::gather::parse_read(&inventory_host, &output));
            steps.push(crate::report::Step {
                step: "read".into(),
                detail: "facts".into(),
                seconds: read_at.elapsed().as_secs_f64(),
            });
            match read {
                Ok(facts) => (shell, facts, read_at),
                Err(error) => {
                    let failed = from_transport(host, settings, &error);
                    return with_session(failed, &shell, false);
                }
            }
        }
    };
    let ended_early = |outcome, message: String| {
        with_session(
            result(host, settings, outcome, Some(message)),
            &shell,
            continued,
        )
    };
    let original = match &facts.config {
        Ok(file) => file,
        Err(problem) => {
            return ended_early(Outcome::Error, format!("{}: {problem}", host.config));
        }
    };
    if host.fingerprint.as_deref() != Some(original.sha256.as_str()) {
        return ended_early(
            Outcome::Stale,
            "config.xml changed since the plan was made; nothing was touched (plan again)".into(),
        );
    }
    if !host.wrapper_operations.is_empty()
        && facts.wrapper.as_ref().ok().map(|file| file.sha256.as_str())
            != host.wrapper_fingerprint.as_deref()
    {
        return ended_early(
            Outcome::Stale,
            "wrapper-override.conf changed since the plan was made; nothing was touched (plan again)"
                .into(),
        );
    }
    // The MID's upgrader may have begun extracting since the plan (a saved
    // one may be hours old): its stop and start are the upgrader's.
    if facts.markers.upgrade_temp {
        return ended_early(
            Outcome::Left,
            "upgrading (agent folder: work/upgrade_temp/ is not empty since the plan was made): the MID's own upgrader owns its stop and start; nothing was touched (plan again once the upgrade is done)".into(),
        );
    }
    let files = match run_files(host, values, &facts, read_at, &original.bytes, settings) {
        Ok(files) => files,
        Err(error) => return ended_early(Outcome::Error, error.to_string()),
    };
    reporter.host_step(&host.host, "starting the transaction");
    let wrapper_original = facts
        .wrapper
        .as_ref()
        .map_or(&[][..], |file| file.bytes.as_slice());
    let wrapper_staged = files.wrapper_new.as_ref().map(|bytes| {
        [
            stage::StagedFile {
                name: "wrapper-original.conf",
                bytes: wrapper_original,
            },
            stage::StagedFile {
                name: "wrapper-new.conf",
                bytes: bytes.as_slice(),
            },
        ]
    });
    let mut staged = vec![
        stage::StagedFile {
            name: "params.sh",
            bytes: files.params.as_bytes(),
        },
        stage::StagedFile {
            name: "original.xml",
            bytes: &original.bytes,
        },
        stage::StagedFile {
            name: "new.xml",
            bytes: files.new.as_ref().map_or(&[][..], |bytes| bytes.as_slice()),
        },
        stage::StagedFile {
            name: "state.json",
            bytes: files.state.as_bytes(),
        },
        stage::StagedFile {
            name: "history.json",
            bytes: files.history.as_bytes(),
        },
    ];
    staged.extend(wrapper_staged.into_iter().flatten());
    let staging = stage::staging_script(&host.mid_home, &host.config, &settings.run, &staged);
    let mut follower = Follower::new(host, reporter);
    let deadline = Instant::now() + Duration::from_secs(files.lease_seconds + 30);
    let mut outcome = None;
    let mut lost: Option<TransportError> = None;
    {
        let mut pending = Vec::new();
        let first = shell.finish(staging.as_bytes(), &mut |chunk| {
            pending.extend_from_slice(chunk);
            if let Some(end) = pending.iter().rposition(|byte| *byte == b'\n') {
                let complete: Vec<u8> = pending.drain(..=end).collect();
                if outcome.is_none() {
                    outcome = follower.feed(&complete);
                }
            }
        });
        match first {
            Ok(output) => {
                if let Err(error) = check_become(&host.host, &output) {
                    return with_session(from_transport(host, settings, &error), &shell, continued);
                }
            }
            Err(error) => lost = Some(error),
        }
    }
    drop(staging);
    let mut sessions = vec![shell.connection().timings.clone()];
    let connection = shell.connection().detail.clone();
    let mut exchanges = shell.connection().exchanges.clone();
    drop(shell);
    // The connection dropped while following: the transaction goes on on
    // the host; reconnect and follow it while its lease lasts.
    // Also when the loss came before `started` was seen: staging may have
    // gone through (the follow script reports a run that never began).
    let staged_or_unknown = follower.stage_failure.is_none();
    while outcome.is_none()
        && staged_or_unknown
        && !follower.gone
        && !follower.dead
        && Instant::now() < deadline
    {
        reporter.host_step(&host.host, "reconnecting to follow the transaction");
        follower.poll("reconnect");
        std::thread::sleep(Duration::from_secs(1));
        let mut again = match transport.connect(&host.connection) {
            Ok(again) => again,
            Err(error) => {
                lost = Some(error);
                continue;
            }
        };
        let script = stage::follow_script(&host.mid_home, &settings.run, follower.lines);
        let followed = again.exec(shell_command(host.become_as()).as_str(), script.as_bytes());
        sessions.push(again.timings.clone());
        exchanges.extend(again.exchanges.iter().cloned());
        match followed {
            Ok(output) => {
                outcome = follower.feed(&output.stdout);
                if outcome.is_some() || follower.gone {
                    break;
                }
            }
            Err(error) => lost = Some(error),
        }
    }
    let mut host_result = match outcome {
        Some((outcome, detail)) => result(host, settings, outcome, detail),
        None if follower.stage_failure.is_some() => result(
            host,
            settings,
            Outcome::Error,
            Some(format!("staging the run failed: {}", follower.stage_failure.clone().unwrap_or_default())),
        ),
        None if follower.dead => result(
            host,
            settings,
            Outcome::Failed,
            Some(format!(
                "the transaction on the host died without finishing (last step: {}); config.xml is whole (every write is a rename), but the MID may be stopped: see `midfleet facts`, and `midfleet rollback` restores the backup",
                follower.last_step
            )),
        ),
        None if follower.gone && follower.lines == 0 => result(
            host,
            settings,
            Outcome::Error,
            Some("the connection was lost while staging the run; the transaction never began and nothing was changed".into()),
        ),
        None if !follower.started => result(
            host,
            settings,
            Outcome::Error,
            Some(match &lost {
                Some(error) => format!("the transaction did not start: {}", error.message),
                None => "the transaction did not start".into(),
            }),
        ),
        None => result(
            host,
            settings,
            Outcome::Unreachable,
            Some(format!(
                "lost the host while its transaction ran (last step: {}); it finishes or rolls back by itself — `midfleet plan` shows where it ended",
                follower.last_step
            )),
        ),
    };
    if host_result.result == Outcome::Applied {
        host_result.params = files.written;
    }
    host_result.backup = follower.backup.clone();
    host_result.timings = sessions;
    host_result.continued_plan_session = continued;
    host_result.connection = Some(connection);
    steps.append(&mut follower.steps);
    host_result.steps = steps;
    host_result.log_line = follower
        .deciding
        .clone()
        .or_else(|| follower.healthy.clone())
        .map(|line| crate::report::LogLine {
            text: mask(&line.text, host, values),
            ..line
        });
    host_result.message = host_result
        .message
        .map(|message| mask(&message, host, values));
    for exchange in &mut exchanges {
        exchange.stderr = mask(&exchange.stderr, host, values);
    }
    host_result.exchanges = exchanges;
    if host_result.result.is_success() {
        host_result.warnings = host.warnings.clone();
    }
    host_result
}

/// The inventory-shaped host the facts script needs.
pub(super) fn host_for_facts(host: &HostPlan) -> crate::inventory::Host {
    crate::inventory::Host {
        name: host.host.clone(),
        address: host.connection.address.clone(),
        port: Some(host.connection.port),
        user: Some(host.connection.user.clone()),
        identity_file: host.connection.identity_file.clone(),
        become_root: host.become_root,
        become_user: host.become_user.clone(),
        jump: Vec::new(),
        connect_timeout: Some(host.connection.connect_timeout),
        mid_home: host.mid_home.clone(),
        config: host.config.clone(),
        mid_cluster: host.mid_cluster.clone(),
        service: host.service.clone(),
        groups: Vec::new(),
        template_context: Default::default(),
        vaulted: Default::default(),
    }
}
