//! Applying a plan: the rollout (batches, forks, one host per `mid_cluster`
//! at a time, `max_fail`), and per host the transaction of docs/SPEC.md, run on
//! the host itself as a detached script that finishes or rolls back on its
//! own, followed through its journal.
//!
//! Owns: turning a host's plan into the files of a run (new config.xml,
//! state record, parameters), staging and starting it in one exec,
//! following it (reconnecting if the connection drops), and the results.
//! Must not: print — progress goes to the reporter.

mod error;
mod files;
mod follow;
mod host;
mod maintenance;
mod rollout;
pub mod stage;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Serialize;

use crate::facts;
use crate::plan::{HostPlan, Plan};
use crate::report::Reporter;
pub use crate::secret::Values;
use crate::transport::{check_become, Shell, Transport};

pub use error::FilesError;
pub use files::local_user;
use files::run_files;
use follow::Follower;
use host::{result, roll_back_after, run_host, summary};
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

/// A host's result (docs/SPEC.md's names).
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
    /// Left alone as the plan decided (an upgrading MID): `skipped`, but a
    /// success for the exit code, as `unchanged`.
    Left,
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
            Outcome::Skipped | Outcome::Left => "skipped",
        }
    }

    /// The result's name in a run of `kind` (docs/SPEC.md): in a rollback,
    /// a host whose backup was restored and runs is `rolled_back`, and one
    /// whose restore was itself undone (the MID did not come up on the
    /// backup) is `not_rolled_back`.
    pub fn name(self, kind: RunKind) -> &'static str {
        match (kind, self) {
            (RunKind::Rollback, Outcome::Applied) => "rolled_back",
            (RunKind::Rollback, Outcome::RolledBack) => "not_rolled_back",
            _ => self.as_str(),
        }
    }

    /// Success for the exit code: `unchanged` or `applied`.
    pub fn is_success(self) -> bool {
        matches!(self, Outcome::Unchanged | Outcome::Applied | Outcome::Left)
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

/// What a run does to its hosts: its results are named for it
/// ([`Outcome::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunKind {
    /// Writes the planned changes (`apply`).
    #[default]
    Apply,
    /// Restores each host's newest backup (`rollback`).
    Rollback,
}

/// What happened on one host. Written (JSON, audit log) with its result
/// named for the run's kind.
#[derive(Debug, Clone)]
pub struct HostResult {
    pub host: String,
    pub result: Outcome,
    /// The run's kind, which names `result`.
    pub kind: RunKind,
    pub message: Option<String>,
    pub warnings: Vec<String>,
    /// Parameters written (names only).
    pub params: Vec<String>,
    /// The backup folder on the host, when one was made.
    pub backup: Option<String>,
    pub run: String,
    pub seconds: f64,
    /// The SSH sessions the apply took on this host, in order (`--timings`).
    pub timings: Vec<crate::transport::Timings>,
    /// The first of `timings` is the plan's read session, continued (its
    /// read is in it).
    pub continued_plan_session: bool,
    /// How the host was reached (the apply's own session: the plan's when
    /// continued), for `-v`.
    pub connection: Option<crate::transport::ConnectionDetail>,
    /// Each step on the host with its time, for `-v`.
    pub steps: Vec<crate::report::Step>,
    /// The MID's log line that decided its health (the failure's, or the
    /// login when healthy), secrets masked.
    pub log_line: Option<crate::report::LogLine>,
    /// The channels and scripts of the apply's sessions, their stderr with
    /// secrets masked (`-vv`, `-vvv`).
    pub exchanges: Vec<crate::transport::Exchange>,
}

/// `text` with every secret value `host` writes replaced by `********`:
/// every resolved secret reference, and the literal values of the
/// parameters the plan writes as sensitive (other literals, a user name,
/// stay readable).
pub fn mask(text: &str, host: &HostPlan, values: &Values<'_>) -> String {
    let sensitive_literals = host
        .operations
        .iter()
        .filter_map(|operation| match operation {
            crate::plan::PlannedOperation::SetLiteralSensitive { param } => {
                values.literals.get(&(host.host.clone(), param.clone()))
            }
            _ => None,
        })
        .chain(
            host.wrapper_operations
                .iter()
                .filter_map(|operation| match operation {
                    crate::plan::WrapperOperation::SetLiteralSensitive { key } => {
                        values.literals.get(&(host.host.clone(), key.clone()))
                    }
                    _ => None,
                }),
        );
    let mut masked = text.to_string();
    for value in values.secrets.values().chain(sensitive_literals) {
        let value = value.expose();
        if !value.is_empty() && masked.contains(value) {
            masked = masked.replace(value, "********");
        }
    }
    masked
}

impl Serialize for HostResult {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Written<'a> {
            host: &'a str,
            result: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            message: &'a Option<String>,
            warnings: &'a [String],
            params: &'a [String],
            #[serde(skip_serializing_if = "Option::is_none")]
            backup: &'a Option<String>,
            run: &'a str,
            seconds: f64,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            timings: &'a [crate::transport::Timings],
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            continued_plan_session: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            connection: &'a Option<crate::transport::ConnectionDetail>,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            steps: &'a [crate::report::Step],
            #[serde(skip_serializing_if = "Option::is_none")]
            log_line: &'a Option<crate::report::LogLine>,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            exchanges: &'a [crate::transport::Exchange],
        }
        Written {
            host: &self.host,
            result: self.result.name(self.kind),
            message: &self.message,
            warnings: &self.warnings,
            params: &self.params,
            backup: &self.backup,
            run: &self.run,
            seconds: self.seconds,
            timings: &self.timings,
            continued_plan_session: self.continued_plan_session,
            connection: &self.connection,
            steps: &self.steps,
            log_line: &self.log_line,
            exchanges: &self.exchanges,
        }
        .serialize(serializer)
    }
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
pub type AfterApply = std::sync::Arc<
    dyn Fn(&HostPlan) -> Result<Vec<String>, Box<dyn std::error::Error + Send + Sync>>
        + Send
        + Sync,
>;

/// Settings of one apply run.
pub struct ApplySettings {
    pub run: String,
    /// Names the results.
    pub kind: RunKind,
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
                    let reason = reason.to_string();
                    result = roll_back_after(host, result, &reason, transport, settings, reporter)
                }
            }
        }
        result.seconds = started.elapsed().as_secs_f64();
        reporter.host_done(&host.host, result.result.is_success(), &summary(&result));
        result
    })
}

#[cfg(test)]
mod mask_tests {
    use std::collections::BTreeMap;

    use super::{mask, Values};
    use crate::plan::PlannedOperation;
    use crate::secret::{SecretRef, SecretValue};

    #[test]
    fn secrets_and_sensitive_literals_are_masked_other_literals_not() {
        let mut host =
            crate::instance::preflight::tests::host_plan("mid-a", "old", "svc_new", Some("PW"));
        host.operations.push(PlannedOperation::SetLiteralSensitive {
            param: "mid.proxy.password".into(),
        });
        let secrets = BTreeMap::from([(
            SecretRef::Env("PW".into()),
            SecretValue::new("s3cret".into()),
        )]);
        let literals = BTreeMap::from([
            (
                ("mid-a".to_string(), "mid.proxy.password".to_string()),
                SecretValue::new("proxy-pw".into()),
            ),
            (
                ("mid-a".to_string(), "mid.instance.username".to_string()),
                SecretValue::new("svc_new".into()),
            ),
        ]);
        let values = Values {
            secrets: &secrets,
            literals: &literals,
        };
        assert_eq!(
            mask("user svc_new, s3cret and proxy-pw", &host, &values),
            "user svc_new, ******** and ********"
        );
    }
}
