//! Building one host's plan: desired state × facts, a pure function.

use crate::config_xml::{names, ConfigXml, SecretForm};
use crate::endpoint::Endpoint;
use crate::facts::Facts;
use crate::playbook::desired::{DesiredHost, DesiredValue};
use crate::playbook::Restart;
use crate::secret::SecretRef;
use crate::state::StateRecord;
use zeroize::Zeroizing;

use super::kind::{self, Instance, Rules, Wanted};
use super::{HostPlan, HostStatus, PlannedChange, PlannedOperation};

/// What one host's plan is built from.
pub struct PlanInputs<'a> {
    pub desired: &'a DesiredHost,
    pub endpoint: &'a Endpoint,
    /// The host's facts, or why they could not be read.
    pub facts: Result<&'a Facts, &'a str>,
    /// The value a secret reference resolved to (a copy wiped on drop).
    pub secret: &'a dyn Fn(&SecretRef) -> Option<Zeroizing<String>>,
    pub restart: Restart,
    /// What the instance said of this MID (`instance:`): its `ecc_agent`
    /// record and `ecc_agent_config` rows.
    pub instance: Instance<'a>,
    /// `instance.allow_override`: write a parameter an `ecc_agent_config`
    /// row sets otherwise (a warning instead of an error).
    pub allow_override: bool,
}

/// The plan for one host.
pub fn build_host_plan(inputs: &PlanInputs<'_>) -> HostPlan {
    let host = &inputs.desired.host;
    let mut plan = HostPlan::new(host, inputs.endpoint);
    let facts = match inputs.facts {
        Ok(facts) => facts,
        Err(error) => return failed(plan, error.to_string()),
    };
    plan.service_found = Some(facts.service.kind.clone());
    plan.service_unit = facts.service.unit.clone();
    if facts.service.state == "unsafe" {
        return failed(
            plan,
            format!(
                "the MID service's state was not read: this host's dd is not GNU's, so a read cannot refuse a link or a FIFO, and a user other than root and the login can change {}/agent's work/ or bin/ folder, which hold the pid file and mid.shconf (hint: install GNU coreutils on the host)",
                host.mid_home.trim_end_matches('/')
            ),
        );
    }
    if facts.service.state == "missing" {
        return failed(
            plan,
            format!(
                "the MID service ({}) was not found on the host",
                facts.service.kind
            ),
        );
    }
    let file = match &facts.config {
        Ok(file) => file,
        Err(problem) => return failed(plan, format!("{}: {problem}", host.config)),
    };
    plan.fingerprint = Some(file.sha256.clone());
    let document = match ConfigXml::parse(&file.bytes) {
        Ok(document) => document,
        Err(error) => {
            let location = error
                .location()
                .map(|at| format!(":{at}"))
                .unwrap_or_default();
            return failed(plan, format!("{}{location}: {error}", host.config));
        }
    };
    if let Some(journal) = &facts.journal {
        let last = String::from_utf8_lossy(journal)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string();
        plan.warnings.push(format!(
            "an earlier midfleet run did not finish on this host (last journal line: `{}`)",
            last.chars().take(120).collect::<String>()
        ));
    }
    for point in &facts.failpoints {
        plan.warnings.push(format!(
            "a test failpoint is set on this host: every transaction pauses at `{point}` (remove {}/.midfleet/failpoints/{point})",
            host.mid_home
        ));
    }
    let record = facts.state.as_deref().map(StateRecord::parse);
    if let Some(Err(problem)) = &record {
        plan.warnings
            .push(format!("{problem}; sensitive values are rewritten once"));
    }
    let record = record.and_then(Result::ok);
    let after = facts
        .after
        .as_deref()
        .and_then(|bytes| ConfigXml::parse(bytes).ok());
    plan.current_user = document
        .get(names::USERNAME)
        .map(|parameter| parameter.value().to_string());
    plan.expect_user = plan.current_user.clone();
    plan.mid_name = document
        .get("name")
        .map(|parameter| parameter.value().to_string());
    // The kind of MID decides, before any parameter, what may be done.
    let mid_kind = kind::classify(&document, &facts.markers, inputs.instance);
    if !mid_kind.is_plain() {
        plan.kind = Some(mid_kind.clone());
    }
    let screened = screen_kind(inputs, &document, &mid_kind);
    if let Some(reason) = screened.skip {
        return skipped(plan, reason);
    }
    if !screened.errors.is_empty() {
        return failed(plan, screened.errors.join("; "));
    }
    plan.warnings.extend(screened.warnings);

    let mut username_changes = false;
    // Sensitive values the MID already encrypted as desired: kept, unless
    // the key pair is reset (then they must be written again, see below).
    let mut kept_encrypted: Vec<(PlannedChange, PlannedOperation)> = Vec::new();
    let mut encrypted_desired: Option<String> = None;
    for parameter in inputs
        .desired
        .set
        .iter()
        .filter(|parameter| !screened.ignored.contains(&parameter.name))
    {
        let existing = document.get(&parameter.name);
        let spelled = existing.map_or(parameter.name.clone(), |found| found.name().to_string());
        // Sensitive: a password name, a secret reference, or marked
        // secure/encrypt in this host's file (then a literal must not be
        // kept in a plan file either).
        let sensitive = parameter.sensitive || existing.is_some_and(|found| found.is_sensitive());
        let (value, operation) = match &parameter.value {
            DesiredValue::Literal(value) => {
                let operation = if sensitive {
                    PlannedOperation::SetLiteralSensitive {
                        param: parameter.name.clone(),
                    }
                } else {
                    PlannedOperation::Set {
                        param: parameter.name.clone(),
                        value: value.clone(),
                    }
                };
                (Some(Zeroizing::new(value.clone())), operation)
            }
            DesiredValue::Secret(reference) => (
                (inputs.secret)(reference),
                PlannedOperation::SetSecret {
                    param: parameter.name.clone(),
                    reference: reference.clone(),
                },
            ),
        };
        let Some(value) = value else {
            return failed(
                plan,
                format!("the secret for `{}` is not resolved", parameter.name),
            );
        };
        if SecretForm::classify(&value) == SecretForm::Encrypted {
            encrypted_desired.get_or_insert_with(|| parameter.name.clone());
        }
        if names::canonical(&parameter.name) == names::USERNAME {
            plan.expect_user = Some(value.to_string());
        }
        let reason = match existing {
            None => Some("missing".to_string()),
            Some(found) if found.value() == value.as_str() => None,
            Some(found) if sensitive => {
                let canonical = names::canonical(&parameter.name).to_string();
                let recorded = record
                    .as_ref()
                    .and_then(|record| record.written.get(&canonical));
                // Only an encrypted: value counts as what the MID made.
                let made_by_mid = after
                    .as_ref()
                    .and_then(|after| after.get(&parameter.name))
                    .is_some_and(|after| {
                        after.value() == found.value()
                            && SecretForm::classify(after.value()) == SecretForm::Encrypted
                    });
                match recorded {
                    Some(hash) if hash.matches(&value) && made_by_mid => None,
                    Some(hash) if hash.matches(&value) => {
                        Some("changed outside midfleet".to_string())
                    }
                    Some(_) => {
                        Some("the desired value differs from the one midfleet wrote".to_string())
                    }
                    None if SecretForm::classify(found.value()) == SecretForm::Encrypted => Some(
                        "encrypted, and midfleet has no record of writing it: written once"
                            .to_string(),
                    ),
                    None => Some("differs".to_string()),
                }
            }
            Some(_) => Some(String::new()),
        };
        let Some(reason) = reason else {
            if let Some(found) = existing.filter(|found| {
                sensitive && SecretForm::classify(found.value()) == SecretForm::Encrypted
            }) {
                kept_encrypted.push((
                    PlannedChange {
                        action: "update".into(),
                        param: Some(found.name().to_string()),
                        before: None,
                        after: None,
                        sensitive: true,
                        reason: Some(
                            "the key pair is reset: written again for the MID to encrypt with its new key"
                                .into(),
                        ),
                        file: None,
                    },
                    operation,
                ));
            }
            continue;
        };
        if names::canonical(&parameter.name) == names::USERNAME {
            username_changes = true;
        }
        plan.changes.push(PlannedChange {
            action: if existing.is_some() { "update" } else { "add" }.into(),
            param: Some(spelled),
            before: existing
                .filter(|_| !sensitive)
                .map(|found| found.value().to_string()),
            after: (!sensitive).then(|| value.to_string()),
            sensitive,
            reason: (!reason.is_empty()).then_some(reason),
            file: None,
        });
        plan.operations.push(operation);
    }
    for name in &inputs.desired.unset {
        if let Some(found) = document.get(name) {
            plan.changes.push(PlannedChange {
                action: "remove".into(),
                param: Some(found.name().to_string()),
                before: (!found.is_sensitive()).then(|| found.value().to_string()),
                after: None,
                sensitive: found.is_sensitive(),
                reason: None,
                file: None,
            });
            plan.operations.push(PlannedOperation::Unset {
                param: name.clone(),
            });
        }
    }
    if username_changes {
        // The documented procedure: a new user means a new key pair. The
        // new key pair cannot decrypt what the old one encrypted, so every
        // `encrypted:` value must be written again in plaintext — which
        // only the playbook can do.
        // A desired value that is itself `encrypted:` was made with the
        // old key: written back, the new key pair could not read it.
        if let Some(name) = &encrypted_desired {
            return failed(
                plan,
                format!(
                    "the instance user changes, so the MID makes a new key pair, which cannot decrypt the `encrypted:` value desired for `{name}`: give the plaintext (as a secret)"
                ),
            );
        }
        let orphaned: Vec<&str> = document
            .parameters()
            .iter()
            .filter(|found| SecretForm::classify(found.value()) == SecretForm::Encrypted)
            .filter(|found| {
                !inputs
                    .desired
                    .set
                    .iter()
                    .any(|wanted| names::same_parameter(&wanted.name, found.name()))
                    && !inputs
                        .desired
                        .unset
                        .iter()
                        .any(|unset| names::same_parameter(unset, found.name()))
            })
            .map(|found| found.name())
            .collect();
        if !orphaned.is_empty() {
            return failed(
                plan,
                format!(
                    "the instance user changes, so the MID makes a new key pair, which cannot decrypt {}: add {} to the playbook's `set:` (as a secret) so that it is written again",
                    orphaned.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", "),
                    if orphaned.len() == 1 { "it" } else { "them" }
                ),
            );
        }
        for (change, operation) in kept_encrypted {
            plan.changes.push(change);
            plan.operations.push(operation);
        }
        plan.key_pair_reset = true;
        if let Some(found) = document.get(names::KEY_PAIR_ID) {
            plan.changes.push(PlannedChange {
                action: "remove".into(),
                param: Some(found.name().to_string()),
                before: Some(found.value().to_string()),
                after: None,
                sensitive: false,
                reason: Some(
                    "the instance user changes: the MID makes a new key pair at start".into(),
                ),
                file: None,
            });
            plan.operations.push(PlannedOperation::Unset {
                param: names::KEY_PAIR_ID.to_string(),
            });
        }
        plan.warnings.push(format!(
            "{} (there is no `instance:` section to do it)",
            super::KEY_PAIR_WARNING
        ));
    }
    if let Err(error) = super::wrapper::plan_wrapper(&mut plan, inputs, facts) {
        return failed(plan, error);
    }
    // A container's start writes config.xml and wrapper-override.conf
    // again (the recipe's MID_CONFIG_*/MID_WRAPPER_* and secrets file, or
    // a profile's sync): neither is midfleet's to edit there.
    if mid_kind.container && !(plan.operations.is_empty() && plan.wrapper_operations.is_empty()) {
        return failed(plan, kind::container_error());
    }
    let running = facts.service.is_running();
    let service_change = if !plan.operations.is_empty() || !plan.wrapper_operations.is_empty() {
        let reason = if running {
            "to read the new values"
        } else {
            "the MID is stopped"
        };
        Some(("restart", reason))
    } else if !running {
        plan.start_only = true;
        Some((
            "start",
            "the MID is stopped; desired state includes a running MID",
        ))
    } else if inputs.restart == Restart::Always {
        Some(("restart", "restart: always"))
    } else {
        None
    };
    if let Some((action, reason)) = service_change {
        plan.restart = true;
        plan.status = HostStatus::Change;
        plan.changes.push(PlannedChange {
            action: action.into(),
            param: None,
            before: None,
            after: None,
            sensitive: false,
            reason: Some(reason.into()),
            file: None,
        });
    }
    if plan.status == HostStatus::Unchanged {
        plan.warnings
            .retain(|warning| !warning.starts_with("key pair reset"));
    }
    // Every change stages its run in .midfleet; an edit also writes a temp
    // file beside config.xml. Refuse now rather than stop a MID for it.
    if plan.status == HostStatus::Change {
        for (what, folder) in [
            ("midfleet-folder", format!("{}/.midfleet", host.mid_home)),
            (
                "config-folder",
                std::path::Path::new(&host.config).parent().map_or_else(
                    || host.config.clone(),
                    |folder| folder.display().to_string(),
                ),
            ),
        ] {
            if what == "config-folder"
                && plan.operations.is_empty()
                && plan.wrapper_operations.is_empty()
            {
                continue;
            }
            if facts.not_writable.iter().any(|found| found == what) {
                let hint = if facts.uid == 0 {
                    "a read-only file system?"
                } else {
                    "set `become: yes`?"
                };
                return failed(
                    plan,
                    format!(
                        "{folder} is not writable as uid {} ({hint}); nothing was changed",
                        facts.uid
                    ),
                );
            }
        }
    }
    // The edit itself must be possible (characters, aliases…): check it now
    // with the resolved values, never keeping the result.
    if !plan.operations.is_empty() {
        let values: Vec<(String, Zeroizing<String>)> = plan
            .operations
            .iter()
            .filter_map(|operation| match operation {
                PlannedOperation::Set { param, value } => {
                    Some((param.clone(), Zeroizing::new(value.clone())))
                }
                PlannedOperation::SetSecret { param, reference } => {
                    (inputs.secret)(reference).map(|value| (param.clone(), value))
                }
                PlannedOperation::SetLiteralSensitive { param } => inputs
                    .desired
                    .set
                    .iter()
                    .find_map(|parameter| match &parameter.value {
                        DesiredValue::Literal(value) if &parameter.name == param => {
                            Some((param.clone(), Zeroizing::new(value.clone())))
                        }
                        _ => None,
                    }),
                PlannedOperation::Unset { .. } => None,
            })
            .collect();
        let operations: Vec<crate::config_xml::Operation<'_>> = plan
            .operations
            .iter()
            .filter_map(|operation| match operation {
                PlannedOperation::Unset { param } => {
                    Some(crate::config_xml::Operation::Unset { name: param })
                }
                _ => None,
            })
            .chain(
                values
                    .iter()
                    .map(|(param, value)| crate::config_xml::Operation::Set {
                        name: param,
                        value,
                        sensitive: true,
                    }),
            )
            .collect();
        if let Err(error) = document.edit(&operations) {
            return failed(plan, format!("{}: {error}", host.config));
        }
    }
    plan
}

/// The kind rules for this host's desired parameters (values resolved
/// here, wiped on drop).
fn screen_kind(
    inputs: &PlanInputs<'_>,
    document: &ConfigXml,
    mid_kind: &kind::MidKind,
) -> kind::Screened {
    let values: Vec<Option<Zeroizing<String>>> = inputs
        .desired
        .set
        .iter()
        .map(|parameter| match &parameter.value {
            DesiredValue::Literal(value) => Some(Zeroizing::new(value.clone())),
            DesiredValue::Secret(reference) => (inputs.secret)(reference),
        })
        .collect();
    let wanted: Vec<Wanted<'_>> = inputs
        .desired
        .set
        .iter()
        .zip(&values)
        .map(|(parameter, value)| Wanted {
            name: &parameter.name,
            value: value.as_ref().map(|value| value.as_str()),
            sensitive: parameter.sensitive
                || document
                    .get(&parameter.name)
                    .is_some_and(|found| found.is_sensitive()),
        })
        .collect();
    kind::screen(&Rules {
        kind: mid_kind,
        document,
        record: match inputs.instance {
            Instance::Record(record) => Some(record),
            _ => None,
        },
        wanted: &wanted,
        rotating: inputs.desired.rotation_users.is_some(),
        allow_override: inputs.allow_override,
    })
}

fn skipped(mut plan: HostPlan, reason: String) -> HostPlan {
    plan.status = HostStatus::Skipped;
    plan.skipped = Some(reason);
    plan.changes.clear();
    plan.operations.clear();
    plan.restart = false;
    plan
}

fn failed(mut plan: HostPlan, error: String) -> HostPlan {
    plan.status = HostStatus::Error;
    plan.error = Some(error);
    plan.changes.clear();
    plan.operations.clear();
    plan.wrapper_operations.clear();
    plan.restart = false;
    plan
}
