//! Reading facts from many hosts at once: one SSH session and one exec per
//! host, at most `forks` hosts in flight, results in inventory order.
//!
//! Owns: the parallel loop and what one host's read means (connect, run the
//! facts script, parse). Must not: print — progress goes to a
//! [`Reporter`](crate::report::Reporter).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::Serialize;

use crate::config_xml::{names, ConfigXml, SecretForm};
use crate::facts::{self, ConfigProblem, Facts};
use crate::inventory::Host;
use crate::report::Reporter;
use crate::transport::{
    check_become, shell_command, Endpoint, ExecOutput, FailureKind, Shell, Timings, Transport,
    TransportError,
};

/// One host's read.
pub struct HostFacts {
    pub host: Host,
    pub endpoint: Endpoint,
    pub facts: Result<Facts, TransportError>,
    pub timings: Option<Timings>,
    /// How the host was reached and how long the read took (`-v`).
    pub detail: Option<ReadDetail>,
    /// The read's remote shell, still open, when the read was asked to
    /// keep it ([`gather_keeping`]) and succeeded.
    pub kept: Option<KeptShell>,
}

/// How one host was read, for `-v`: its connection, the read's steps with
/// their times, and the session's exchanges (`-vv`, `-vvv`; a facts read
/// sends no secret).
#[derive(Debug, Clone, Serialize)]
pub struct ReadDetail {
    pub connection: crate::transport::ConnectionDetail,
    pub steps: Vec<crate::report::Step>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exchanges: Vec<crate::transport::Exchange>,
}

impl ReadDetail {
    fn new(connection: &crate::transport::Connection, read: std::time::Duration) -> ReadDetail {
        ReadDetail {
            connection: connection.detail.clone(),
            steps: vec![
                crate::report::Step {
                    step: "connect".into(),
                    detail: String::new(),
                    seconds: connection.detail.seconds,
                },
                crate::report::Step {
                    step: "read".into(),
                    detail: "facts".into(),
                    seconds: read.as_secs_f64(),
                },
            ],
            exchanges: connection.exchanges.clone(),
        }
    }
}

/// A host's read session, left open after the read for what follows.
pub struct KeptShell {
    pub shell: Shell,
    /// When the facts were read (their `time` is the host's clock then).
    pub read_at: Instant,
}

/// The worker threads of a read could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start {forks} worker threads: {source}")]
pub struct GatherError {
    pub forks: usize,
    #[source]
    pub source: rayon::ThreadPoolBuildError,
}

/// Reads every host in `hosts` (paired with its endpoint) with at most
/// `forks` in flight.
pub fn gather(
    transport: &Transport,
    hosts: Vec<(Host, Endpoint)>,
    forks: usize,
    reporter: &dyn Reporter,
) -> Result<Vec<HostFacts>, GatherError> {
    gather_keeping(transport, hosts, forks, 0, reporter)
}

/// [`gather`], keeping up to `keep` hosts' sessions open after their read
/// (the facts script runs on a kept [`Shell`], which can run the apply's
/// script next on the same channel).
pub fn gather_keeping(
    transport: &Transport,
    hosts: Vec<(Host, Endpoint)>,
    forks: usize,
    keep: usize,
    reporter: &dyn Reporter,
) -> Result<Vec<HostFacts>, GatherError> {
    use rayon::prelude::*;
    let kept = AtomicUsize::new(0);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(forks.max(1))
        .thread_name(|index| format!("midfleet-host-{index}"))
        .build()
        .map_err(|source| GatherError { forks, source })?;
    Ok(pool.install(|| {
        hosts
            .into_par_iter()
            .map(|(host, endpoint)| {
                reporter.host_step(&host.name, "reading facts");
                let keep_this = kept
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |count| {
                        (count < keep).then_some(count + 1)
                    })
                    .is_ok();
                let (facts, timings, detail, shell) =
                    read_one(transport, &host, &endpoint, keep_this);
                if keep_this && shell.is_none() {
                    // A read that failed keeps nothing: its slot is free.
                    kept.fetch_sub(1, Ordering::SeqCst);
                }
                match &facts {
                    Ok(_) => reporter.host_done(&host.name, true, "ok"),
                    Err(error) => reporter.host_done(&host.name, false, &error.message),
                }
                HostFacts {
                    host,
                    endpoint,
                    facts,
                    timings,
                    detail,
                    kept: shell,
                }
            })
            .collect()
    }))
}

/// Connect, one exec of the facts script, parse; with `keep`, the script
/// runs on a [`Shell`] that stays open when the read succeeds.
fn read_one(
    transport: &Transport,
    host: &Host,
    endpoint: &Endpoint,
    keep: bool,
) -> (
    Result<Facts, TransportError>,
    Option<Timings>,
    Option<ReadDetail>,
    Option<KeptShell>,
) {
    let mut connection = match transport.connect(endpoint) {
        Ok(connection) => connection,
        Err(error) => return (Err(error), None, None, None),
    };
    let script = facts::script(host);
    if !keep {
        let started = Instant::now();
        let output = connection.exec(shell_command(host.become_as()).as_str(), script.as_bytes());
        let detail = ReadDetail::new(&connection, started.elapsed());
        let facts = output.and_then(|output| parse_read(host, &output));
        return (facts, Some(connection.timings), Some(detail), None);
    }
    let mut shell = match connection.shell(shell_command(host.become_as()).as_str()) {
        Ok(shell) => shell,
        Err(error) => return (Err(error), None, None, None),
    };
    let read_at = Instant::now();
    let facts = shell
        .run(script.as_bytes())
        .and_then(|output| parse_read(host, &output));
    let timings = Some(shell.connection().timings.clone());
    let detail = Some(ReadDetail::new(shell.connection(), read_at.elapsed()));
    let kept = facts.is_ok().then_some(KeptShell { shell, read_at });
    (facts, timings, detail, kept)
}

/// The facts in one read's output, or why there are none.
pub fn parse_read(host: &Host, output: &ExecOutput) -> Result<Facts, TransportError> {
    check_become(&host.name, output)?;
    if output.status != 0 {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(TransportError::new(
            FailureKind::Protocol,
            &host.name,
            format!(
                "the facts script failed (exit {}): {}",
                output.status,
                stderr.lines().next().unwrap_or("no message")
            ),
        ));
    }
    facts::parse(&output.stdout)
        .map_err(|error| TransportError::new(FailureKind::Protocol, &host.name, error.to_string()))
}

/// What `midfleet facts` shows for one host.
#[derive(Debug, Serialize)]
pub struct FactsSummary {
    pub host: String,
    /// `ok`, `unreachable` or `error`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    pub address: String,
    pub port: u16,
    pub config_path: String,
    /// The instance user in config.xml (either spelling).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_user: Option<String>,
    /// `plaintext`, `encrypted`, `reference`, `empty` or `missing`; never
    /// the value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_pair: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<facts::ServiceFacts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigSummary>,
    /// A midfleet transaction on this host did not finish.
    pub unfinished_journal: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<Timings>,
    /// How the host was reached and read (`-v`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<ReadDetail>,
}

#[derive(Debug, Serialize)]
pub struct ConfigSummary {
    pub sha256: String,
    pub owner: String,
    pub group: String,
    /// Octal, e.g. `0640`.
    pub mode: String,
    pub size: usize,
    /// Why the file is not a valid MID config.xml, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
}

impl FactsSummary {
    pub fn new(read: &HostFacts) -> FactsSummary {
        let mut summary = FactsSummary {
            host: read.host.name.clone(),
            status: "ok",
            error: None,
            hint: None,
            address: read.endpoint.address.clone(),
            port: read.endpoint.port,
            config_path: read.host.config.clone(),
            instance_user: None,
            password: None,
            key_pair: None,
            service: None,
            config: None,
            unfinished_journal: false,
            timings: read.timings.clone(),
            detail: read.detail.clone(),
        };
        let facts = match &read.facts {
            Ok(facts) => facts,
            Err(error) => {
                summary.status = if error.kind.is_unreachable() {
                    "unreachable"
                } else {
                    "error"
                };
                summary.error = Some(error.message.clone());
                summary.hint = error.hint.clone();
                return summary;
            }
        };
        summary.service = Some(facts.service.clone());
        summary.unfinished_journal = facts
            .journal
            .as_ref()
            .is_some_and(|journal| !journal.is_empty());
        match &facts.config {
            Ok(file) => {
                let parsed = ConfigXml::parse(&file.bytes);
                let mut config = ConfigSummary {
                    sha256: file.sha256.clone(),
                    owner: file.owner.clone(),
                    group: file.group.clone(),
                    mode: format!("{:04o}", file.mode),
                    size: file.bytes.len(),
                    invalid: None,
                };
                match parsed {
                    Ok(document) => {
                        summary.instance_user = document
                            .get(names::USERNAME)
                            .map(|parameter| parameter.value().to_string());
                        summary.password = Some(match document.get(names::PASSWORD) {
                            Some(parameter) => SecretForm::classify(parameter.value()).as_str(),
                            None => "missing",
                        });
                        summary.key_pair = Some(document.get(names::KEY_PAIR_ID).is_some());
                    }
                    Err(error) => {
                        let location = error
                            .location()
                            .map(|at| format!("{at}: "))
                            .unwrap_or_default();
                        config.invalid = Some(format!("{location}{error}"));
                        summary.status = "error";
                        summary.error = Some(format!("{}:{location}{error}", read.host.config));
                    }
                }
                summary.config = Some(config);
            }
            Err(problem) => {
                summary.status = "error";
                summary.error = Some(format!("{}: {problem}", read.host.config));
                if matches!(problem, ConfigProblem::Unreadable) {
                    summary.hint = Some(
                        "set `become: yes` for this host, or log in as the MID's owner".into(),
                    );
                }
            }
        }
        summary
    }
}
