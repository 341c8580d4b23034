//! Applying a plan: the rollout (batches, forks, one host per `mid_cluster`
//! at a time, `max_fail`), and per host the transaction of SPEC.md, run on
//! the host itself as a detached script that finishes or rolls back on its
//! own, followed through its journal.
//!
//! Owns: turning a host's plan into the files of a run (new config.xml,
//! state record, parameters), staging and starting it in one exec,
//! following it (reconnecting if the connection drops), and the results.
//! Must not: print — progress goes to the reporter.

mod error;
mod maintenance;
mod rollout;
pub mod stage;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config_xml::{names, ConfigXml, Operation};
use crate::facts;
use crate::plan::{HostPlan, Plan, PlannedOperation};
use crate::report::Reporter;
use crate::secret::SecretValue;
pub use crate::secret::Values;
use crate::state::{SaltedHash, StateRecord, FORMAT};
use crate::transport::{
    check_become, shell_command, shell_quote, Shell, Transport, TransportError,
};

pub use error::FilesError;
pub use maintenance::{rollback_plan, unlock, UnlockResult};
pub use rollout::rollout;

/// Seconds a stop may take before it counts as hung.
pub const STOP_TIMEOUT: u64 = 60;
/// Backups kept per host.
pub const KEEP_BACKUPS: u32 = 5;
/// At most this many hosts' plan-time sessions are kept open for an
/// `apply --yes` (`KeptRead`); the others are read again on a session of
/// their own. Each kept session holds a socket here and an sshd and a
/// shell on its host while earlier hosts run.
pub const KEEP_SESSIONS: usize = 512;

/// A host's result (SPEC.md's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Unchanged,
    Applied,
    RolledBack,
    Failed,
    Unreachable,
    Error,
    Stale,
    Locked,
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Unchanged => "unchanged",
            Outcome::Applied => "applied",
            Outcome::RolledBack => "rolled_back",
            Outcome::Failed => "failed",
            Outcome::Unreachable => "unreachable",
            Outcome::Error => "error",
            Outcome::Stale => "stale",
            Outcome::Locked => "locked",
            Outcome::Skipped => "skipped",
        }
    }

    /// Success for the exit code: `unchanged` or `applied`.
    pub fn is_success(self) -> bool {
        matches!(self, Outcome::Unchanged | Outcome::Applied)
    }

    fn parse(word: &str) -> Option<Outcome> {
        Some(match word {
            "applied" => Outcome::Applied,
            "unchanged" => Outcome::Unchanged,
            "rolled_back" => Outcome::RolledBack,
            "failed" => Outcome::Failed,
            "error" => Outcome::Error,
            "stale" => Outcome::Stale,
            "locked" => Outcome::Locked,
            _ => return None,
        })
    }
}

/// What happened on one host.
#[derive(Debug, Clone, Serialize)]
pub struct HostResult {
    pub host: String,
    pub result: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub warnings: Vec<String>,
    /// Parameters written (names only).
    pub params: Vec<String>,
    /// The backup folder on the host, when one was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    pub run: String,
    pub seconds: f64,
    /// The SSH sessions the apply took on this host, in order (`--timings`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timings: Vec<crate::transport::Timings>,
    /// The first of `timings` is the plan's read session, continued (its
    /// read is in it).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub continued_plan_session: bool,
}

/// A host's plan-time read whose session is still open: the apply stages
/// its transaction on the same remote shell, so the whole run on that host
/// is one session and one exec channel. The transaction itself still
/// refuses a config.xml that is not the planned one (`check stale`).
pub struct KeptRead {
    pub shell: Shell,
    pub facts: facts::Facts,
    /// When `facts` were read (their `time` is the host's clock then).
    pub read_at: Instant,
}

/// The read sessions kept open for the hosts that change, by host name
/// (`reads` and `hosts` in the same order). Only a host that changes has a
/// use for its session: the others' close here, side by side (each close
/// waits for its host's answer).
pub fn kept_for_changes(
    reads: Vec<crate::facts::gather::HostFacts>,
    hosts: &[HostPlan],
) -> BTreeMap<String, KeptRead> {
    let mut kept = BTreeMap::new();
    let mut unused = Vec::new();
    for (read, host) in reads.into_iter().zip(hosts) {
        let Some(shell) = read.kept else { continue };
        match read.facts {
            Ok(facts) if host.status == crate::plan::HostStatus::Change => {
                kept.insert(
                    read.host.name,
                    KeptRead {
                        shell: shell.shell,
                        facts,
                        read_at: shell.read_at,
                    },
                );
            }
            _ => unused.push(shell),
        }
    }
    close_side_by_side(unused);
    kept
}

/// Drops `items` on up to 32 threads at once.
fn close_side_by_side<T: Send>(items: Vec<T>) {
    const AT_ONCE: usize = 32;
    if items.len() <= 1 {
        return;
    }
    let mut groups: Vec<Vec<T>> = (0..AT_ONCE.min(items.len())).map(|_| Vec::new()).collect();
    let count = groups.len();
    for (index, item) in items.into_iter().enumerate() {
        groups[index % count].push(item);
    }
    std::thread::scope(|scope| {
        for group in groups {
            scope.spawn(move || drop(group));
        }
    });
}

/// A check made after a host's transaction ended `applied` (the
/// instance's `ecc_agent` record, `docs/instance.md`): warnings to add to
/// the result, or why the host failed — then it is rolled back.
pub type AfterApply =
    std::sync::Arc<dyn Fn(&HostPlan) -> Result<Vec<String>, String> + Send + Sync>;

/// Settings of one apply run.
pub struct ApplySettings {
    pub run: String,
    pub forks: usize,
    pub health_timeout: u64,
    /// Health beyond the host: see [`AfterApply`].
    pub after_apply: Option<AfterApply>,
}

/// A new run id: sortable by time, unique enough (`20261127T114500Z-1a2b3c`).
pub fn new_run_id() -> String {
    let stamp = crate::report::now_rfc3339().replace(['-', ':'], "");
    let mut random = [0u8; 3];
    let _ = std::fs::File::open("/dev/urandom")
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut random));
    format!(
        "{stamp}-{}",
        random
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    )
}

/// Applies the plan of every changing host, in the rollout's batches;
/// `kept` holds the plan's read sessions still open, by host.
pub fn apply(
    plan: &Plan,
    values: &Values<'_>,
    transport: &Transport,
    settings: &ApplySettings,
    reporter: &dyn Reporter,
    interrupted: &AtomicBool,
    kept: BTreeMap<String, KeptRead>,
) -> Vec<HostResult> {
    let kept = std::sync::Mutex::new(kept);
    rollout(plan, settings, interrupted, reporter, &|host: &HostPlan| {
        let started = Instant::now();
        let read = kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&host.host);
        let mut result = run_host(host, values, transport, settings, reporter, read);
        if let (Outcome::Applied, Some(check)) = (result.result, &settings.after_apply) {
            reporter.host_step(&host.host, "waiting for the instance");
            match check(host) {
                Ok(warnings) => result.warnings.extend(warnings),
                Err(reason) => {
                    result = roll_back_after(host, result, &reason, transport, settings, reporter)
                }
            }
        }
        result.seconds = started.elapsed().as_secs_f64();
        reporter.host_done(&host.host, result.result.is_success(), &summary(&result));
        result
    })
}

/// Puts back the files `applied` replaced, because a check after the
/// transaction failed for `reason`: the host's newest backup (the one this
/// run made) is restored, restarted and checked, as `midfleet rollback`
/// does, under a run of its own.
fn roll_back_after(
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
    if restored.result == Outcome::Applied {
        result.result = Outcome::RolledBack;
        result.message = Some(format!(
            "{reason}; rolled back: the previous files are back and the MID runs on them"
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

fn summary(result: &HostResult) -> String {
    match &result.message {
        Some(message) => format!("{}: {message}", result.result.as_str()),
        None => result.result.as_str().to_string(),
    }
}

fn result(
    host: &HostPlan,
    settings: &ApplySettings,
    outcome: Outcome,
    message: Option<String>,
) -> HostResult {
    HostResult {
        host: host.host.clone(),
        result: outcome,
        message,
        warnings: Vec::new(),
        params: Vec::new(),
        backup: None,
        run: settings.run.clone(),
        seconds: 0.0,
        timings: Vec::new(),
        continued_plan_session: false,
    }
}

fn from_transport(host: &HostPlan, settings: &ApplySettings, error: &TransportError) -> HostResult {
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
fn with_session(
    mut ended: HostResult,
    shell: &crate::transport::Shell,
    continued: bool,
) -> HostResult {
    ended.timings = vec![shell.connection().timings.clone()];
    ended.continued_plan_session = continued;
    ended
}

/// One host: read, check the fingerprint, build the run's files, stage and
/// start the transaction, follow it to its end. The read is the plan's,
/// when its session is still open (`kept`); else a new session reads
/// config.xml again. Either way the read and the staging run on one
/// remote shell: one session, one exec channel.
fn run_host(
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
    let (mut shell, facts, read_at) = match kept {
        Some(kept) => (kept.shell, kept.facts, kept.read_at),
        None => {
            reporter.host_step(&host.host, "connecting");
            let shell = transport
                .connect(&host.connection)
                .and_then(|connection| connection.shell(shell_command(host.become_root)));
            let mut shell = match shell {
                Ok(shell) => shell,
                Err(error) => return from_transport(host, settings, &error),
            };
            reporter.host_step(&host.host, "reading config.xml");
            let inventory_host = host_for_facts(host);
            let read_at = Instant::now();
            let read = shell
                .run(facts::script(&inventory_host).as_bytes())
                .and_then(|output| crate::facts::gather::parse_read(&inventory_host, &output));
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
    let files = match run_files(host, values, &facts, read_at, &original.bytes, settings) {
        Ok(files) => files,
        Err(error) => return ended_early(Outcome::Error, error.to_string()),
    };
    reporter.host_step(&host.host, "starting the transaction");
    let staging = stage::staging_script(
        &host.mid_home,
        &host.config,
        &settings.run,
        &[
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
        ],
    );
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
        std::thread::sleep(Duration::from_secs(1));
        let mut again = match transport.connect(&host.connection) {
            Ok(again) => again,
            Err(error) => {
                lost = Some(error);
                continue;
            }
        };
        let script = stage::follow_script(&host.mid_home, &settings.run, follower.lines);
        let followed = again.exec(shell_command(host.become_root), script.as_bytes());
        sessions.push(again.timings.clone());
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
    if host_result.result.is_success() {
        host_result.warnings = host.warnings.clone();
    }
    host_result
}

/// The inventory-shaped host the facts script needs.
fn host_for_facts(host: &HostPlan) -> crate::inventory::Host {
    crate::inventory::Host {
        name: host.host.clone(),
        address: host.connection.address.clone(),
        port: Some(host.connection.port),
        user: Some(host.connection.user.clone()),
        identity_file: host.connection.identity_file.clone(),
        become_root: host.become_root,
        jump: Vec::new(),
        connect_timeout: Some(host.connection.connect_timeout),
        mid_home: host.mid_home.clone(),
        config: host.config.clone(),
        mid_cluster: host.mid_cluster.clone(),
        service: host.service.clone(),
        groups: Vec::new(),
        template_context: Default::default(),
    }
}

/// The files of one run.
struct RunFiles {
    params: String,
    new: Option<zeroize::Zeroizing<Vec<u8>>>,
    state: String,
    history: String,
    written: Vec<String>,
    lease_seconds: u64,
}

fn run_files(
    host: &HostPlan,
    values: &Values<'_>,
    facts: &facts::Facts,
    read_at: Instant,
    original: &[u8],
    settings: &ApplySettings,
) -> Result<RunFiles, FilesError> {
    let document = ConfigXml::parse(original).map_err(|source| FilesError::Read {
        config: host.config.clone(),
        source,
    })?;
    let mut resolved: Vec<(String, SecretValue, bool)> = Vec::new();
    let mut unset: Vec<String> = Vec::new();
    for operation in &host.operations {
        match operation {
            PlannedOperation::Set { param, value } => {
                resolved.push((param.clone(), SecretValue::new(value.clone()), false))
            }
            PlannedOperation::SetSecret { param, reference } => {
                let value =
                    values
                        .secrets
                        .get(reference)
                        .ok_or_else(|| FilesError::Unresolved {
                            reference: reference.clone(),
                            param: param.clone(),
                        })?;
                resolved.push((param.clone(), value.clone(), true));
            }
            PlannedOperation::SetLiteralSensitive { param } => {
                let value = values
                    .literals
                    .get(&(host.host.clone(), param.clone()))
                    .ok_or_else(|| FilesError::Literal {
                        param: param.clone(),
                    })?;
                resolved.push((param.clone(), value.clone(), true));
            }
            PlannedOperation::Unset { param } => unset.push(param.clone()),
        }
    }
    let operations: Vec<Operation<'_>> = resolved
        .iter()
        .map(|(param, value, sensitive)| Operation::Set {
            name: param,
            value: value.expose(),
            sensitive: *sensitive,
        })
        .chain(unset.iter().map(|param| Operation::Unset { name: param }))
        .collect();
    let edited = document
        .edit(&operations)
        .map_err(|source| FilesError::Edit {
            config: host.config.clone(),
            source,
        })?;
    let new = edited
        .document
        .map(|document| zeroize::Zeroizing::new(document.bytes().to_vec()));

    // The state record: earlier records carried over, new ones for every
    // sensitive value written now, none for removed parameters.
    let mut record = facts
        .state
        .as_deref()
        .and_then(|bytes| StateRecord::parse(bytes).ok())
        .unwrap_or_default();
    record.format = FORMAT;
    record.run = settings.run.clone();
    if host.restore_from.is_some() {
        // The restored files are not what midfleet last wrote: no record,
        // so the next plan shows the drift and rewrites.
        record.written.clear();
    }
    for param in &unset {
        record.written.remove(names::canonical(param));
    }
    for (param, value, sensitive) in &resolved {
        let sensitive = *sensitive
            || names::is_password(param)
            || document
                .get(param)
                .is_some_and(|found| found.is_sensitive());
        if sensitive {
            record.written.insert(
                names::canonical(param).to_string(),
                SaltedHash::new(value.expose())?,
            );
        }
    }
    let action = if host.restore_from.is_some() {
        "rollback"
    } else if new.is_some() {
        "apply"
    } else if host.start_only {
        "start"
    } else {
        "restart"
    };
    let written: Vec<String> = resolved
        .iter()
        .map(|(param, _, _)| param.clone())
        .chain(unset.iter().cloned())
        .collect();
    let (kind, unit, start, stop, status) = match &host.service {
        crate::inventory::ServiceSpec::Commands {
            start,
            stop,
            status,
        } => (
            "commands",
            String::new(),
            start.clone(),
            stop.clone(),
            status.clone(),
        ),
        _ => (
            host.service_found.as_deref().unwrap_or("mid.sh"),
            host.service_unit.clone().unwrap_or_default(),
            String::new(),
            String::new(),
            String::new(),
        ),
    };
    // The MID will rewrite the file when midfleet wrote a plaintext value
    // into a parameter marked secure (or one it adds as secure).
    let expect_rewrite = new.as_ref().is_some_and(|bytes| {
        ConfigXml::parse(bytes).is_ok_and(|document| {
            resolved.iter().any(|(param, _, _)| {
                document.get(param).is_some_and(|found| {
                    found.is_secure()
                        && crate::config_xml::SecretForm::classify(found.value())
                            == crate::config_xml::SecretForm::Plaintext
                })
            })
        })
    });
    let lease_seconds = STOP_TIMEOUT * 2 + settings.health_timeout * 2 + 90;
    // The host's clock when it was read, plus the time since: a kept read
    // may be minutes old when a later batch stages it.
    let host_now = facts
        .time
        .map_or_else(now, |time| time + read_at.elapsed().as_secs());
    let deadline = host_now + lease_seconds;
    let params = [
        ("RUN", settings.run.clone()),
        ("MID_HOME", host.mid_home.clone()),
        ("CONFIG", host.config.clone()),
        ("ACTION", action.to_string()),
        ("SERVICE_KIND", kind.to_string()),
        ("SERVICE_UNIT", unit),
        ("START_COMMAND", start),
        ("STOP_COMMAND", stop),
        ("STATUS_COMMAND", status),
        ("EXPECT_USER", host.expect_user.clone().unwrap_or_default()),
        (
            "ROLLBACK_USER",
            host.current_user.clone().unwrap_or_default(),
        ),
        (
            "KEY_PAIR_RESET",
            if host.key_pair_reset { "1" } else { "0" }.to_string(),
        ),
        ("DEADLINE", deadline.to_string()),
        ("HEALTH_TIMEOUT", settings.health_timeout.to_string()),
        ("STOP_TIMEOUT", STOP_TIMEOUT.to_string()),
        ("KEEP_BACKUPS", KEEP_BACKUPS.to_string()),
        (
            "RESTORE_FROM",
            host.restore_from.clone().unwrap_or_default(),
        ),
        (
            "EXPECT_REWRITE",
            if expect_rewrite { "1" } else { "0" }.to_string(),
        ),
    ]
    .iter()
    .map(|(name, value)| format!("{name}={}\n", shell_quote(value)))
    .collect::<String>();
    let history = format!(
        "{{\"run\":{},\"action\":{},\"params\":{},\"user\":{},\"started\":{}",
        json(&settings.run),
        json(action),
        serde_json::to_string(&written).unwrap_or_default(),
        json(&local_user()),
        now()
    );
    Ok(RunFiles {
        params,
        new,
        state: record.to_json(),
        history,
        written,
        lease_seconds,
    })
}

fn json(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Who runs midfleet (for history and audit).
pub fn local_user() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into())
}

/// Reads the transaction's progress lines.
struct Follower<'a> {
    host: &'a str,
    reporter: &'a dyn Reporter,
    lines: usize,
    started: bool,
    gone: bool,
    /// The transaction process is gone without its `end`.
    dead: bool,
    last_step: String,
    backup: Option<String>,
    stage_failure: Option<String>,
    outcome: Option<(Outcome, Option<String>)>,
}

impl<'a> Follower<'a> {
    fn new(host: &'a HostPlan, reporter: &'a dyn Reporter) -> Follower<'a> {
        Follower {
            host: &host.host,
            reporter,
            lines: 0,
            started: false,
            gone: false,
            dead: false,
            last_step: "none".into(),
            backup: None,
            stage_failure: None,
            outcome: None,
        }
    }

    /// Takes a chunk of output; the outcome once the run has ended.
    fn feed(&mut self, output: &[u8]) -> Option<(Outcome, Option<String>)> {
        for line in String::from_utf8_lossy(output).lines() {
            if let Some(failure) = line.strip_prefix("midfleet-stage failed ") {
                self.stage_failure = Some(failure.to_string());
                continue;
            }
            if line == "midfleet-stage started" {
                self.started = true;
                continue;
            }
            if line == "midfleet-stage waiting" {
                continue;
            }
            if line == "midfleet-stage dead" {
                self.dead = true;
                continue;
            }
            if line == "midfleet-stage gone" {
                self.gone = true;
                continue;
            }
            self.lines += 1;
            let mut words = line.splitn(3, ' ');
            let (_time, step, detail) = (
                words.next(),
                words.next().unwrap_or_default(),
                words.next().unwrap_or_default(),
            );
            self.last_step = step.to_string();
            match step {
                "stop" => self.reporter.host_step(self.host, "stopping"),
                "backup" => {
                    self.backup = Some(detail.to_string());
                    self.reporter.host_step(self.host, "backing up");
                }
                "write" => self.reporter.host_step(self.host, "writing"),
                "start" => self.reporter.host_step(self.host, "starting"),
                "health" if detail.is_empty() || detail == "wait" => {
                    self.reporter.host_step(self.host, "waiting for login")
                }
                "rollback" => self.reporter.host_step(self.host, "rolling back"),
                "result" => {
                    let mut parts = detail.splitn(2, ' ');
                    let word = parts.next().unwrap_or_default();
                    let reason = parts
                        .next()
                        .map(str::to_string)
                        .filter(|reason| !reason.is_empty());
                    if let Some(outcome) = Outcome::parse(word) {
                        let reason = match (outcome, reason) {
                            (Outcome::Stale, None) => Some(
                                "config.xml changed since the plan was made; it was left as it is (plan again)"
                                    .to_string(),
                            ),
                            (_, reason) => reason.map(|reason| explain(&reason)),
                        };
                        self.outcome = Some((outcome, reason));
                    }
                }
                "end" => {
                    return self.outcome.clone().or(Some((
                        Outcome::Error,
                        Some("the run ended without a result".into()),
                    )))
                }
                _ => {}
            }
        }
        None
    }
}

/// The transaction's reason word, with what it means and what to do where
/// the word alone would not say (the refusals that keep root out of what
/// the MID's user can write, `docs/apply.md`). Other reasons as they are.
fn explain(reason: &str) -> String {
    let (meaning, hint) = match reason {
        "agent-folder-symlink" => (
            "agent/ is reached through a symlink below mid_home; midfleet acts only in real folders there",
            "set mid_home to the real folder that holds agent/",
        ),
        "config-folder-symlink" => (
            "config.xml's folder is reached through a symlink below mid_home",
            "set mid_config to config.xml's real path",
        ),
        "other-file-system" => (
            "config.xml's folder or agent/ is on another file system or mount than mid_home/.midfleet, where midfleet builds each file before one rename puts it in place",
            "keep mid_home/.midfleet on the same mount as agent/",
        ),
        "run-folder-moved" | "midfleet-folder-moved" => (
            "mid_home/.midfleet was moved or replaced while the run started (someone who can write mid_home)",
            "look at who changed mid_home/.midfleet; run again",
        ),
        "midfleet-folder-owner" => (
            "mid_home/.midfleet is not this login's own 0700 folder",
            "remove it (midfleet makes it again) or chown it to the login",
        ),
        "config-not-a-regular-file" => (
            "config.xml is not a regular file (a link, a FIFO, a device), or changed while it was read; nothing read it",
            "make config.xml a regular file again",
        ),
        "config-hard-linked" => (
            "config.xml has more than one hard link, so it may be another file too; nothing was written",
            "give config.xml a single link (copy it, then rename the copy over it)",
        ),
        "mid-sh-missing" => (
            "agent/bin/mid.sh is missing or not a regular file",
            "name the service with mid_service (systemd:UNIT or commands)",
        ),
        "mid-sh-owners" => (
            "mid_home and the files under agent/ belong to more than one user besides root; mid.sh runs as the one user who can change it, and that is not clear",
            "chown mid_home and agent/ to the MID's service user",
        ),
        "mid-sh-writable-by-others" => (
            "mid.sh would run as root, but a folder from / to mid_home, or something under agent/, is writable by others than root",
            "chown agent/ to the MID's service user (mid.sh then runs as that user), or make that path root's alone",
        ),
        "mid-sh-no-setpriv" => (
            "the host has no setpriv, runuser or su to run mid.sh as its owner, and midfleet never runs another user's mid.sh as root",
            "install util-linux, or name the service with mid_service",
        ),
        "mid-sh-other-user" => (
            "mid.sh belongs to another user than this login, which cannot switch to it",
            "set become: yes",
        ),
        "mid-sh-user-unknown" => (
            "the user who owns mid.sh has no passwd entry, so it has no group of its own to run with",
            "give the MID's service user a passwd entry (or bring its directory service back)",
        ),
        "mid-sh-mount-inside" => (
            "mid.sh would run as root, but something is mounted below mid_home, whose files may say any owner",
            "unmount it, or chown agent/ to the MID's service user",
        ),
        "keystore-too-large" => (
            "agent/security or agent/keystore holds more than 1000 entries; a MID's hold a handful, and their backup must end within the run's lease",
            "look at what filled the keystore folders and remove it",
        ),
        "mid-sh-unreadable" => (
            "the owners of mid_home and agent/ could not be read",
            "check that the login can read agent/ (become: yes)",
        ),
        other => return other.to_string(),
    };
    format!("{reason}: {meaning} (hint: {hint})")
}

#[cfg(test)]
mod explain_tests {
    use super::explain;

    #[test]
    fn refusals_say_what_they_mean_and_what_to_do() {
        let text = explain("other-file-system");
        assert!(text.starts_with("other-file-system: "), "{text}");
        assert!(text.contains("(hint: "), "{text}");
        assert_eq!(explain("could-not-authenticate"), "could-not-authenticate");
        assert_eq!(explain("restore /x/backups/R"), "restore /x/backups/R");
    }
}
