//! The `wrapper:` section's part of one host's plan: desired properties ×
//! the host's conf/wrapper-override.conf, a pure function. The edit is
//! made here with the resolved values (and thrown away) so that what it
//! would change, and whether it can be made, is known now.

use zeroize::Zeroizing;

use crate::config_xml::{Action, Shown};
use crate::facts::{ConfigProblem, Facts};
use crate::playbook::desired::{DesiredValue, DesiredWrapperValue};
use crate::wrapper_conf::{self, Operation, WrapperConf, FILE_NAME};

use super::{HostPlan, PlanInputs, PlannedChange, WrapperOperation};

/// Where the file is on the host: `conf/` beside config.xml.
pub fn wrapper_path(config: &str) -> String {
    let folder = std::path::Path::new(config)
        .parent()
        .map_or_else(String::new, |folder| folder.display().to_string());
    format!("{folder}/conf/{FILE_NAME}")
}

/// Adds the wrapper file's changes, operations, fingerprint and warnings
/// to `plan`; an error is the host's.
pub(super) fn plan_wrapper(
    plan: &mut HostPlan,
    inputs: &PlanInputs<'_>,
    facts: &Facts,
) -> Result<(), String> {
    let desired = &inputs.desired.wrapper;
    if desired.is_empty() {
        return Ok(());
    }
    let path = wrapper_path(&inputs.desired.host.config);
    let file = match &facts.wrapper {
        Ok(file) => file,
        Err(ConfigProblem::Missing) => {
            return Err(format!(
                "{path} does not exist, and the playbook has a `wrapper:` section (hint: a MID ships this file, and its wrapper.conf includes it; restore it, owned by the MID's user, or leave this host out of the playbook)"
            ))
        }
        Err(problem) => {
            return Err(format!(
                "{path}: {}",
                problem.to_string().replacen("config.xml", FILE_NAME, 1)
            ))
        }
    };
    let document = WrapperConf::parse(&file.bytes).map_err(|error| format!("{path}: {error}"))?;
    let mut operations = Vec::new();
    let mut values: Vec<(String, Zeroizing<String>, bool)> = Vec::new();
    let mut unset = Vec::new();
    let mut arguments: Option<Vec<String>> = None;
    for wanted in desired {
        let key = &wanted.key;
        match &wanted.value {
            DesiredWrapperValue::Unset => {
                unset.push(key.clone());
                operations.push(WrapperOperation::Unset { key: key.clone() });
            }
            DesiredWrapperValue::Arguments(list) => {
                if list
                    .iter()
                    .any(|value| wrapper_conf::is_sensitive(&format!("{key}.1"), Some(value)))
                {
                    return Err(format!(
                        "`{key}`: a JVM argument that holds a password cannot be in a list (a plan would keep it); give it its number and a secret: `{key}.N: {{ secret: REF }}`"
                    ));
                }
                arguments = Some(list.clone());
                operations.push(WrapperOperation::Arguments {
                    values: list.clone(),
                });
            }
            DesiredWrapperValue::Set(parameter) => {
                let (value, operation) = match &parameter.value {
                    DesiredValue::Literal(value) => {
                        let sensitive = parameter.sensitive
                            || wrapper_conf::is_sensitive(key, Some(value))
                            || document
                                .get(key)
                                .is_some_and(|found| wrapper_conf::is_sensitive(key, Some(found)));
                        let operation = if sensitive {
                            WrapperOperation::SetLiteralSensitive { key: key.clone() }
                        } else {
                            WrapperOperation::Set {
                                key: key.clone(),
                                value: value.clone(),
                            }
                        };
                        (Some(Zeroizing::new(value.clone())), operation)
                    }
                    DesiredValue::Secret(reference) => (
                        (inputs.secret)(reference),
                        WrapperOperation::SetSecret {
                            key: key.clone(),
                            reference: reference.clone(),
                        },
                    ),
                };
                let Some(value) = value else {
                    return Err(format!("the secret for `{key}` is not resolved"));
                };
                let sensitive = !matches!(operation, WrapperOperation::Set { .. });
                values.push((key.clone(), value, sensitive));
                operations.push(operation);
            }
        }
    }
    let edit: Vec<Operation<'_>> = values
        .iter()
        .map(|(key, value, sensitive)| Operation::Set {
            key,
            value,
            sensitive: *sensitive,
        })
        .chain(unset.iter().map(|key| Operation::Unset { key }))
        .chain(
            arguments
                .iter()
                .map(|values| Operation::Arguments { values }),
        )
        .collect();
    let edited = document
        .edit(&edit)
        .map_err(|error| format!("{path}: {error}"))?;
    plan.wrapper_fingerprint = Some(file.sha256.clone());
    plan.warnings.extend(edited.warnings);
    if edited.bytes.is_none() {
        return Ok(());
    }
    for change in edited.changes {
        let shown = |value: Shown| match value {
            Shown::Value(value) => Some(value),
            Shown::Absent | Shown::Sensitive => None,
        };
        plan.changes.push(PlannedChange {
            action: match change.action {
                Action::Update => "update",
                Action::Add => "add",
                Action::Remove => "remove",
            }
            .into(),
            param: Some(change.param),
            before: shown(change.before),
            after: shown(change.after),
            sensitive: change.sensitive,
            reason: None,
            file: Some(FILE_NAME.into()),
        });
    }
    plan.wrapper_operations = operations;
    Ok(())
}
