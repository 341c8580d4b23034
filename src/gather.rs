//! Reading facts from many hosts at once: one SSH session and one exec per
//! host, at most `forks` hosts in flight, results in inventory order.
//!
//! Owns: the parallel loop and what one host's read means (connect, run the
//! facts script, parse). Must not: print — progress goes to a
//! [`Reporter`](crate::report::Reporter).

use serde::Serialize;

use crate::config_xml::{names, ConfigXml, SecretForm};
use crate::facts::{self, ConfigProblem, Facts};
use crate::inventory::Host;
use crate::report::Reporter;
use crate::transport::{
    check_become, shell_command, Endpoint, FailureKind, Timings, Transport, TransportError,
};

/// One host's read.
pub struct HostFacts {
    pub host: Host,
    pub endpoint: Endpoint,
    pub facts: Result<Facts, TransportError>,
    pub timings: Option<Timings>,
}

/// Reads every host in `hosts` (paired with its endpoint) with at most
/// `forks` in flight.
pub fn gather(
    transport: &Transport,
    hosts: Vec<(Host, Endpoint)>,
    forks: usize,
    reporter: &dyn Reporter,
) -> Result<Vec<HostFacts>, String> {
    use rayon::prelude::*;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(forks.max(1))
        .thread_name(|index| format!("midfleet-host-{index}"))
        .build()
        .map_err(|error| format!("cannot start {forks} worker threads: {error}"))?;
    Ok(pool.install(|| {
        hosts
            .into_par_iter()
            .map(|(host, endpoint)| {
                reporter.host_step(&host.name, "reading facts");
                let (facts, timings) = read_one(transport, &host, &endpoint);
                match &facts {
                    Ok(_) => reporter.host_done(&host.name, true, "ok"),
                    Err(error) => reporter.host_done(&host.name, false, &error.message),
                }
                HostFacts {
                    host,
                    endpoint,
                    facts,
                    timings,
                }
            })
            .collect()
    }))
}

/// Connect, one exec of the facts script, parse.
fn read_one(
    transport: &Transport,
    host: &Host,
    endpoint: &Endpoint,
) -> (Result<Facts, TransportError>, Option<Timings>) {
    let mut connection = match transport.connect(endpoint) {
        Ok(connection) => connection,
        Err(error) => return (Err(error), None),
    };
    let script = facts::script(host);
    let result = connection
        .exec(shell_command(host.become_root), script.as_bytes())
        .and_then(|output| {
            check_become(&host.name, &output)?;
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
            facts::parse(&output.stdout).map_err(|error| {
                TransportError::new(FailureKind::Protocol, &host.name, error.to_string())
            })
        });
    (result, Some(connection.timings))
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
