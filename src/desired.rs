//! The desired state of one host: the playbook's `set`/`unset` rendered
//! with the host's variables. Secrets stay references here; they are
//! resolved only where a value is needed.

use std::fmt;

use serde::Serialize;

use crate::config_xml::{check_xml_chars, names};
use crate::diagnostic::Diagnostic;
use crate::inventory::Host;
use crate::playbook::{Playbook, SetValue};
use crate::secret::SecretRef;
use crate::template::Templates;

/// What one host must hold.
#[derive(Debug, Clone, Serialize)]
pub struct DesiredHost {
    pub host: Host,
    pub set: Vec<DesiredParameter>,
    pub unset: Vec<String>,
}

/// One parameter and its desired value.
#[derive(Debug, Clone, Serialize)]
pub struct DesiredParameter {
    pub name: String,
    pub value: DesiredValue,
    /// Never shown: a password name, or a value from a secret reference.
    pub sensitive: bool,
}

#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DesiredValue {
    Literal(String),
    Secret(SecretRef),
}

impl fmt::Debug for DesiredValue {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DesiredValue::Literal(_) => formatter.write_str("Literal(…)"),
            DesiredValue::Secret(reference) => write!(formatter, "Secret({reference})"),
        }
    }
}

/// Renders `playbook` for `host`. Every problem is reported, each naming
/// the host, the parameter and the template.
pub fn render(
    playbook: &Playbook,
    host: &Host,
    templates: &Templates,
) -> Result<DesiredHost, Vec<Diagnostic>> {
    let mut problems = Vec::new();
    let mut set = Vec::new();
    for entry in &playbook.set {
        let failure = |message: String, template: &str| {
            Diagnostic::error(Some(entry.origin.clone()), format!("`{}`: {message} in `{template}`", entry.name))
                .for_host(&host.name)
                .with_hint("define the variable for this host (inventory vars, group_vars/, host_vars/) or fix the template")
        };
        let sensitive_name = names::is_password(&entry.name);
        match &entry.value {
            SetValue::Template(template) => {
                match templates.render(template, &host.template_context) {
                    Ok(value) => {
                        if let Err(reason) = check_xml_chars(&value) {
                            problems.push(
                                Diagnostic::error(
                                    Some(entry.origin.clone()),
                                    format!(
                                        "`{}` renders to a value XML cannot hold: {reason}",
                                        entry.name
                                    ),
                                )
                                .for_host(&host.name),
                            );
                            continue;
                        }
                        set.push(DesiredParameter {
                            name: entry.name.clone(),
                            value: DesiredValue::Literal(value),
                            sensitive: sensitive_name,
                        });
                    }
                    Err(message) => problems.push(failure(message, template)),
                }
            }
            SetValue::Secret(reference) => match render_reference(reference, templates, host) {
                Ok(reference) => set.push(DesiredParameter {
                    name: entry.name.clone(),
                    value: DesiredValue::Secret(reference),
                    sensitive: true,
                }),
                Err(message) => problems.push(failure(message, reference)),
            },
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(DesiredHost {
        host: host.clone(),
        set,
        unset: playbook
            .unset
            .iter()
            .map(|entry| entry.name.clone())
            .collect(),
    })
}

/// A secret reference for `host`: the name of an `env:` reference and the
/// path of a `file:` one are templates; `command:` and `prompt:` are taken
/// as written, so inventory values can never become a command.
fn render_reference(
    reference: &str,
    templates: &Templates,
    host: &Host,
) -> Result<SecretRef, String> {
    let rendered = match reference.split_once(':') {
        Some((scheme @ ("env" | "file"), rest)) => {
            format!(
                "{scheme}:{}",
                templates.render(rest, &host.template_context)?
            )
        }
        _ => reference.to_string(),
    };
    rendered
        .parse::<SecretRef>()
        .map_err(|error| error.to_string())
}
