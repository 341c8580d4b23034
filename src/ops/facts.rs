//! `facts`, and the read every host-wide command starts with: select the
//! hosts, make room for the sessions, read each host once (one session,
//! one exec) with progress.
//!
//! Must not: change a host, or print (progress and warnings go to the
//! operator).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::config_xml::ConfigXml;
use crate::facts::gather::{gather, gather_keeping, FactsSummary, HostFacts};
use crate::plan::kind::{self, MidKind, MidRecord};
use crate::playbook::{InstanceUser, Playbook};
use crate::secret::SecretResolver;
use crate::transport::Transport;

use super::connection::{raise_file_limit, raise_file_limit_keeping, Connection};
use super::hosts::Selection;
use super::{Operator, OpsError};

/// What `facts` shows of one host: its read, and the kind of MID.
#[derive(Debug, Serialize)]
pub struct HostSummary {
    #[serde(flatten)]
    pub facts: FactsSummary,
    /// `basic`, `mtls`, `ipki`, `cyberark`, `container`… (joined with
    /// `+`); absent when config.xml could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// What decided it (and what could not be told).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind_detail: Option<MidKind>,
    /// The MID's ecc_agent record (status, version…) with `--playbook`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecc_agent: Option<MidRecord>,
}

/// `facts`: every selected host read, as summaries; `None` when no host
/// is selected (nothing was contacted). With `playbook`, its `instance:`
/// section is asked for each MID's record, for its kind.
pub fn facts(
    selection: &Selection,
    connection: &Connection,
    playbook: Option<&Path>,
    operator: &dyn Operator,
) -> Result<Option<Vec<HostSummary>>, OpsError> {
    // The playbook first: a bad one is bad input, before any host.
    let instance = playbook
        .map(|path| instance_section(path, operator))
        .transpose()?
        .flatten();
    let hosts = selection.select("all", operator)?;
    if hosts.is_empty() {
        return Ok(None);
    }
    if let Some(warning) = raise_file_limit(connection.forks) {
        operator.warning(&warning);
    }
    let transport = connection.transport(false, operator)?;
    let progress = operator.progress("facts", hosts.len());
    let reads = gather(&transport, hosts, connection.forks, &*progress)
        .map_err(|error| OpsError::failed(error.to_string()));
    progress.finish();
    let reads = reads?;
    let documents: Vec<Option<ConfigXml>> = reads
        .iter()
        .map(|read| {
            let file = read.facts.as_ref().ok()?.config.as_ref().ok()?;
            ConfigXml::parse(&file.bytes).ok()
        })
        .collect();
    let records = match &instance {
        Some((settings, secrets)) => {
            let names: Vec<String> = documents
                .iter()
                .flatten()
                .filter_map(|document| Some(document.get("name")?.value().to_string()))
                .collect();
            let asked = crate::instance::preflight::connect(settings, secrets).and_then(
                |(client, admin)| crate::instance::kinds::mid_records(&client, &admin, &names),
            );
            match asked {
                Ok(records) => Some(records),
                Err(error) => {
                    operator.warning(&format!(
                        "the instance could not be asked for the MIDs' records ({error}): the kinds are told from the hosts only"
                    ));
                    None
                }
            }
        }
        None => None,
    };
    Ok(Some(
        reads
            .iter()
            .zip(&documents)
            .map(|(read, document)| summary(read, document.as_ref(), records.as_ref()))
            .collect(),
    ))
}

fn summary(
    read: &HostFacts,
    document: Option<&ConfigXml>,
    records: Option<&BTreeMap<String, MidRecord>>,
) -> HostSummary {
    let mut summary = HostSummary {
        facts: FactsSummary::new(read),
        kind: None,
        kind_detail: None,
        ecc_agent: None,
    };
    let (Some(document), Ok(facts)) = (document, read.facts.as_ref()) else {
        return summary;
    };
    let record = records.and_then(|records| {
        document
            .get("name")
            .and_then(|name| records.get(name.value()))
    });
    let instance = match (records, record) {
        (None, _) => kind::Instance::NotAsked,
        (Some(_), None) => kind::Instance::NoRecord,
        (Some(_), Some(record)) => kind::Instance::Record(record),
    };
    let found = kind::classify(document, &facts.markers, instance);
    summary.kind = Some(found.label());
    summary.kind_detail = Some(found);
    summary.ecc_agent = record.map(|record| MidRecord {
        // Its configuration rows may hold values people should not read
        // here: only the record's own fields are shown.
        config: Vec::new(),
        ..record.clone()
    });
    summary
}

/// The `instance:` section of `path` with its secrets resolved, as a plan
/// holds it; `None` (with a warning) when the playbook has none.
type InstanceSettings = (
    crate::plan::InstancePlan,
    BTreeMap<crate::secret::SecretRef, crate::secret::SecretValue>,
);

fn instance_section(
    path: &Path,
    operator: &dyn Operator,
) -> Result<Option<InstanceSettings>, OpsError> {
    let (playbook, diagnostics) = Playbook::load(path);
    let bad = |diagnostics: &[crate::diagnostic::Diagnostic]| {
        diagnostics
            .iter()
            .for_each(|diagnostic| operator.diagnostic(diagnostic));
        OpsError::input(format!(
            "{}: the playbook has problems; no host was contacted",
            path.display()
        ))
    };
    if diagnostics.has_errors() {
        return Err(bad(&diagnostics.merged()));
    }
    let Some(instance) = playbook.and_then(|playbook| playbook.instance) else {
        operator.warning(&format!(
            "{} has no `instance:` section: the kinds are told from the hosts only",
            path.display()
        ));
        return Ok(None);
    };
    let mut resolver = SecretResolver::new();
    let mut secrets = BTreeMap::new();
    let mut references = vec![&instance.password];
    if let InstanceUser::Secret(reference) = &instance.user {
        references.push(reference);
    }
    for reference in references {
        match resolver.resolve(reference) {
            Ok(value) => {
                secrets.insert(reference.clone(), value);
            }
            Err(error) => {
                let mut diagnostic = crate::diagnostic::Diagnostic::error(
                    Some(instance.origin.clone()),
                    format!("instance: {error}"),
                );
                diagnostic.hint = error.hint().map(str::to_string);
                return Err(bad(&[diagnostic]));
            }
        }
    }
    for warning in resolver.take_warnings() {
        operator.diagnostic(&super::plan::secret_warning(&warning));
    }
    Ok(Some((super::plan::instance_settings(&instance), secrets)))
}

/// Reads every selected host (for rollback and unlock) as `task`, keeping
/// up to `keep` read sessions open for what follows.
pub fn read_hosts(
    selection: &Selection,
    transport: &Transport,
    forks: usize,
    keep: usize,
    task: &str,
    operator: &dyn Operator,
) -> Result<Vec<HostFacts>, OpsError> {
    let pairs = selection.select("all", operator)?;
    // Room for the forks' sessions, and for as many kept ones as fit.
    let (keep, warning) = raise_file_limit_keeping(forks, keep);
    if let Some(warning) = warning {
        operator.warning(&warning);
    }
    let progress = operator.progress(task, pairs.len());
    let reads = gather_keeping(transport, pairs, forks, keep, &*progress)
        .map_err(|error| OpsError::failed(error.to_string()));
    progress.finish();
    reads
}
