//! The desired state of one host: the playbook's `set`/`unset` rendered
//! with the host's variables. Secrets stay references here; they are
//! resolved only where a value is needed.

use std::fmt;

use serde::Serialize;

use crate::config_xml::{check_xml_chars, names};
use crate::diagnostic::Diagnostic;
use crate::inventory::Host;
use crate::playbook::{Playbook, SetEntry, SetValue, WrapperValue, HOST_VARIABLE_SCHEME};
use crate::secret::{FileScope, SecretRef, SecretValue};
use crate::template::{TemplateError, Templates};

/// A templated `file:` path that rendered outside the folder of its
/// literal prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the file: path `{path}` leaves {folder}: {why}")]
pub struct ScopeError {
    pub path: String,
    pub folder: String,
    pub why: &'static str,
}
/// What one host must hold.
#[derive(Debug, Clone, Serialize)]
pub struct DesiredHost {
    pub host: Host,
    pub set: Vec<DesiredParameter>,
    pub unset: Vec<String>,
    /// The `wrapper:` section, rendered.
    #[serde(default)]
    pub wrapper: Vec<DesiredWrapper>,
    /// With `rotate:`, the host's two users, rendered (A, B).
    pub rotation_users: Option<[String; 2]>,
}

/// One property of wrapper-override.conf and what it must be.
#[derive(Debug, Clone, Serialize)]
pub struct DesiredWrapper {
    pub key: String,
    pub value: DesiredWrapperValue,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DesiredWrapperValue {
    /// The value, rendered as a `set:` value is (`name` is the key).
    Set(DesiredParameter),
    Unset,
    /// JVM arguments that must each be on a `wrapper.java.additional.N`.
    Arguments(Vec<String>),
}

/// One parameter and its desired value.
#[derive(Debug, Clone, Serialize)]
pub struct DesiredParameter {
    pub name: String,
    pub value: DesiredValue,
    /// For a `file:` reference rendered from a template: the folder it
    /// must stay in.
    #[serde(skip)]
    pub scope: Option<FileScope>,
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

/// One `set:` entry for `host`; `None` (with the problem recorded, or for
/// `omit`) when there is nothing to write.
fn render_entry(
    entry: &SetEntry,
    host: &Host,
    templates: &Templates,
    problems: &mut Vec<Diagnostic>,
) -> Option<DesiredParameter> {
    let failure = |message: String, template: &str| {
        Diagnostic::error(
            Some(entry.origin.clone()),
            format!("`{}`: {message} in `{template}`", entry.name),
        )
        .for_host(&host.name)
        .with_hint(TEMPLATE_HINT)
    };
    let sensitive_name = names::is_password(&entry.name);
    // A template over a vaulted variable sees it revealed; what it
    // renders is then sensitive.
    let vaulted_context = match &entry.value {
        SetValue::Template(template) => {
            match host
                .vaulted
                .context_for(&host.name, template, &host.template_context, templates)
            {
                Ok(context) => context,
                Err(problem) => {
                    problems.push(problem);
                    return None;
                }
            }
        }
        SetValue::Secret(_) => None,
    };
    let from_vault = vaulted_context.is_some();
    let context = vaulted_context.as_ref().unwrap_or(&host.template_context);
    match &entry.value {
        SetValue::Secret(reference) if reference.starts_with(HOST_VARIABLE_SCHEME) => {
            let name = &reference[HOST_VARIABLE_SCHEME.len()..];
            match host_variable(host, name, templates) {
                Ok(value) => {
                    // Where the character is would tell of the value.
                    if check_xml_chars(value.expose()).is_err() {
                        problems.push(
                            Diagnostic::error(
                                Some(entry.origin.clone()),
                                format!("`{}`: variable `{name}` holds a control character or another character config.xml cannot store", entry.name),
                            )
                            .for_host(&host.name),
                        );
                        return None;
                    }
                    Some(DesiredParameter {
                        name: entry.name.clone(),
                        value: DesiredValue::Literal(value.expose().to_string()),
                        scope: None,
                        sensitive: true,
                    })
                }
                // Where the reference is written, when the problem
                // has no place of its own (a variable defined nowhere).
                Err(mut problem) => {
                    if problem.origin.is_none() {
                        problem.origin = Some(entry.origin.clone());
                    }
                    problems.push(problem);
                    None
                }
            }
        }
        SetValue::Template(template) => match templates.render(template, context) {
            // Ansible's `omit`: the parameter is left as it is, neither
            // set nor removed.
            Ok(value) if value == crate::template::OMIT => None,
            Ok(value) => {
                if let Err(reason) = check_xml_chars(&value) {
                    // From a vault, where the character is would tell
                    // of the value.
                    let reason = if from_vault {
                        "a control character or another character config.xml cannot store"
                            .to_string()
                    } else {
                        reason.to_string()
                    };
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
                    return None;
                }
                Some(DesiredParameter {
                    name: entry.name.clone(),
                    value: DesiredValue::Literal(value),
                    scope: None,
                    sensitive: sensitive_name || from_vault,
                })
            }
            Err(error) => {
                let mut message = error.to_string();
                if let (TemplateError::Undefined(_), Some(note)) =
                    (&error, host.vaulted.unreadable_note())
                {
                    message = format!("{message} ({note})");
                }
                problems.push(failure(message, template).with_hint(error.hint()));
                None
            }
        },
        SetValue::Secret(reference) => match render_reference(reference, templates, host) {
            Ok((rendered, scope)) => Some(DesiredParameter {
                name: entry.name.clone(),
                value: DesiredValue::Secret(rendered),
                scope,
                sensitive: true,
            }),
            Err(problem) => {
                problems.push(failure(problem.message, reference).with_hint(problem.hint));
                None
            }
        },
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
        if let Some(parameter) = render_entry(entry, host, templates, &mut problems) {
            set.push(parameter);
        }
    }
    let mut wrapper = Vec::new();
    for entry in &playbook.wrapper {
        let value = match &entry.value {
            WrapperValue::Unset => DesiredWrapperValue::Unset,
            WrapperValue::Set(value) => {
                let as_set = SetEntry {
                    name: entry.key.clone(),
                    value: value.clone(),
                    origin: entry.origin.clone(),
                };
                match render_entry(&as_set, host, templates, &mut problems) {
                    Some(parameter) => DesiredWrapperValue::Set(parameter),
                    None => continue,
                }
            }
            WrapperValue::Arguments(templates_list) => {
                let mut arguments = Vec::new();
                for template in templates_list {
                    match templates.render(template, &host.template_context) {
                        Ok(value) if value == crate::template::OMIT => {}
                        Ok(value) if value.trim() == value && !value.is_empty() && !value.chars().any(char::is_control) => arguments.push(value),
                        Ok(_) => problems.push(
                            Diagnostic::error(
                                Some(entry.origin.clone()),
                                format!("`{}`: `{template}` renders to an empty value, or one with control characters or blanks at either end", entry.key),
                            )
                            .for_host(&host.name),
                        ),
                        Err(error) => problems.push(
                            Diagnostic::error(
                                Some(entry.origin.clone()),
                                format!("`{}`: {error} in `{template}`", entry.key),
                            )
                            .for_host(&host.name)
                            .with_hint(error.hint()),
                        ),
                    }
                }
                DesiredWrapperValue::Arguments(arguments)
            }
        };
        wrapper.push(DesiredWrapper {
            key: entry.key.clone(),
            value,
        });
    }
    let rotation_users = playbook.rotate.as_ref().and_then(|rotate| {
        let mut rendered = Vec::new();
        for template in &rotate.users {
            match templates.render(template, &host.template_context) {
                Ok(user)
                    if !user.trim().is_empty()
                        && !user.contains(['^', '=', ':'])
                        && !user.chars().any(|c| c.is_control() || c.is_whitespace()) =>
                {
                    rendered.push(user)
                }
                Ok(user) => problems.push(
                    Diagnostic::error(
                        Some(rotate.origin.clone()),
                        format!("`rotate.users`: `{template}` renders to `{user}`, which is not a user name (empty, or holding whitespace, `^`, `=`, `:` or a control character)"),
                    )
                    .for_host(&host.name),
                ),
                Err(error) => problems.push(
                    Diagnostic::error(
                        Some(rotate.origin.clone()),
                        format!("`rotate.users`: {error} in `{template}`"),
                    )
                    .for_host(&host.name)
                    .with_hint(error.hint()),
                ),
            }
        }
        let [a, b] = <[String; 2]>::try_from(rendered).ok()?;
        if a.eq_ignore_ascii_case(&b) {
            problems.push(
                Diagnostic::error(
                    Some(rotate.origin.clone()),
                    format!("`rotate.users` render to the same user `{a}` for this host"),
                )
                .for_host(&host.name)
                .with_hint("the two templates must differ for every host, e.g. ending in _a and _b"),
            );
            return None;
        }
        Some([a, b])
    });
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(DesiredHost {
        rotation_users,
        host: host.clone(),
        set,
        wrapper,
        unset: playbook
            .unset
            .iter()
            .map(|entry| entry.name.clone())
            .collect(),
    })
}

/// The value of the host's variable `name` for a `var:` secret: a vaulted
/// one decrypted now, a plain one as rendered. Only text and numbers.
fn host_variable(
    host: &Host,
    name: &str,
    templates: &Templates,
) -> Result<SecretValue, Diagnostic> {
    if host.vaulted.holds(name) {
        return host
            .vaulted
            .reveal_text(&host.name, name, &host.template_context, templates);
    }
    let Some(value) = host.template_context.get(name) else {
        let mut message = format!("the host has no variable `{name}` (var:{name})");
        if let Some(note) = host.vaulted.unreadable_note() {
            message = format!("{message}; {note}");
        }
        return Err(Diagnostic::error(None, message)
            .for_host(&host.name)
            .with_hint("define it for this host (inventory vars, group_vars/, host_vars/), e.g. as a `!vault` value"));
    };
    use minijinja::value::ValueKind;
    match value.kind() {
        ValueKind::String | ValueKind::Number | ValueKind::Bool
            if !value.to_string().is_empty() =>
        {
            Ok(SecretValue::new(value.to_string()))
        }
        _ => Err(Diagnostic::error(
            None,
            format!("variable `{name}` (var:{name}) is empty or not a string"),
        )
        .for_host(&host.name)
        .with_hint("a var: secret takes a host variable holding text")),
    }
}

/// Why a secret reference could not be rendered for a host.
struct ReferenceProblem {
    message: String,
    hint: String,
}

const TEMPLATE_HINT: &str =
    "define the variable for this host (inventory vars, group_vars/, host_vars/) or fix the template";
const CONFINED_HINT: &str = "a file: path rendered from host variables must stay in the folder its template starts with; fix the host's variable, or write the path out without a template";

/// A secret reference for `host`: the name of an `env:` reference and the
/// path of a `file:` one are templates; `command:` and `prompt:` are taken
/// as written, so inventory values can never become a command. A templated
/// `file:` path must stay in the folder of its literal prefix
/// ([`SecretTemplate`]); the returned scope lets the resolver check that
/// again on the real path.
fn render_reference(
    reference: &str,
    templates: &Templates,
    host: &Host,
) -> Result<(SecretRef, Option<FileScope>), ReferenceProblem> {
    let template = SecretTemplate::new(reference);
    let rendered = match reference.split_once(':') {
        Some((scheme @ ("env" | "file"), rest)) => format!(
            "{scheme}:{}",
            templates
                .render(rest, &host.template_context)
                .map_err(|error| ReferenceProblem {
                    message: error.to_string(),
                    hint: error.hint().to_string(),
                })?
        ),
        _ => reference.to_string(),
    };
    let parsed = rendered
        .parse::<SecretRef>()
        .map_err(|error| ReferenceProblem {
            message: error.to_string(),
            hint: error.hint().unwrap_or(TEMPLATE_HINT).to_string(),
        })?;
    let scope = match &parsed {
        SecretRef::File(path) => template
            .file_scope(&path.to_string_lossy())
            .map_err(|error| ReferenceProblem {
                message: error.to_string(),
                hint: CONFINED_HINT.to_string(),
            })?,
        _ => None,
    };
    Ok((parsed, scope))
}

/// A secret reference as the playbook writes it, perhaps a template.
pub struct SecretTemplate<'a> {
    text: &'a str,
}

impl<'a> SecretTemplate<'a> {
    pub fn new(text: &'a str) -> SecretTemplate<'a> {
        SecretTemplate { text }
    }

    /// The body of a templated `env:`/`file:` reference split around its
    /// template parts: the literal text before the first tag and after the
    /// last one. `None` when it is no template (or not of those schemes).
    fn literal_ends(&self) -> Option<(&'a str, &'a str, &'a str)> {
        let (scheme, body) = self.text.split_once(':')?;
        if !matches!(scheme, "env" | "file") || !Templates::is_template(body) {
            return None;
        }
        let start = ["{{", "{%", "{#"]
            .iter()
            .filter_map(|open| body.find(open))
            .min()?;
        let end = ["}}", "%}", "#}"]
            .iter()
            .filter_map(|close| body.rfind(close).map(|at| at + close.len()))
            .max()
            .filter(|end| *end >= start)
            .unwrap_or(body.len());
        Some((scheme, &body[..start], &body[end..]))
    }

    /// For a templated `file:` reference rendered to `path`: the folder
    /// of its literal prefix (the prefix up to its last `/`; `.` when it
    /// has none), after checking that the rendered part neither is
    /// absolute nor holds a `..` component. `None` for a path written out.
    pub fn file_scope(&self, path: &str) -> Result<Option<FileScope>, ScopeError> {
        let Some(("file", prefix, _)) = self.literal_ends() else {
            return Ok(None);
        };
        // `{{-` trims the whitespace before it.
        let prefix = prefix.trim_end();
        let folder = &prefix[..prefix.rfind('/').map_or(0, |slash| slash + 1)];
        let leaves = |why: &'static str| ScopeError {
            path: path.to_string(),
            folder: if folder.is_empty() { "." } else { folder }.to_string(),
            why,
        };
        let (Some(inside), Some(rendered)) = (path.strip_prefix(folder), path.strip_prefix(prefix))
        else {
            return Err(leaves(
                "it does not start with the template's literal prefix",
            ));
        };
        if rendered.starts_with('/') || inside.starts_with('/') {
            return Err(leaves(
                "the part rendered from host variables is an absolute path",
            ));
        }
        if inside.split('/').any(|component| component == "..") {
            return Err(leaves(
                "the part rendered from host variables holds a `..` component",
            ));
        }
        let folder = if folder.is_empty() { "." } else { folder };
        Ok(Some(FileScope::new(folder)))
    }

    /// Whether this reference, rendered for some host, can be `reference`:
    /// the same reference when it is written out; for a template, the same
    /// scheme, starting and ending with its literal text (and, for `file:`,
    /// staying in its folder). The `file:` scope comes with it.
    pub fn admits(&self, reference: &SecretRef) -> Option<Option<FileScope>> {
        let Some((scheme, prefix, suffix)) = self.literal_ends() else {
            let written = self.text.parse::<SecretRef>().ok()?;
            return (written == *reference).then_some(None);
        };
        let body = match (scheme, reference) {
            ("env", SecretRef::Env(name)) => name.clone(),
            ("file", SecretRef::File(path)) => path.to_str()?.to_string(),
            _ => return None,
        };
        let (prefix, suffix) = (prefix.trim_end(), suffix.trim_start());
        if body.len() < prefix.len() + suffix.len()
            || !body.starts_with(prefix)
            || !body.ends_with(suffix)
        {
            return None;
        }
        match reference {
            SecretRef::File(_) => self.file_scope(&body).ok(),
            _ => Some(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_templated_file_path_stays_in_the_folder_of_its_literal_prefix() {
        let cases = [
            // (template, rendered path, the folder it must stay in, or the refusal)
            (
                "file:/run/secrets/{{ mid_name }}",
                "/run/secrets/emea01",
                Ok(Some("/run/secrets/")),
            ),
            (
                "file:/run/secrets/mid-{{ n }}.txt",
                "/run/secrets/mid-01.txt",
                Ok(Some("/run/secrets/")),
            ),
            (
                "file:/run/secrets/{{ g }}/{{ n }}",
                "/run/secrets/emea/01",
                Ok(Some("/run/secrets/")),
            ),
            ("file:{{ n }}", "secrets/01", Ok(Some("."))),
            ("file:/run/secrets/pw", "/etc/hostname", Ok(None)),
            (
                "file:../shared/{{ n }}",
                "../shared/01",
                Ok(Some("../shared/")),
            ),
            (
                "file:/run/secrets/{{ mid_name }}",
                "/run/secrets/../../../../etc/hostname",
                Err("holds a `..` component"),
            ),
            (
                "file:/run/secrets/{{ mid_name }}",
                "/run/secrets/a/../../etc",
                Err("holds a `..` component"),
            ),
            // The prefix ends inside a name: the rendered part completes it.
            (
                "file:/run/secrets/.{{ n }}",
                "/run/secrets/../etc/hostname",
                Err("holds a `..` component"),
            ),
            (
                "file:/run/secrets/{{ n }}",
                "/run/secrets//etc/hostname",
                Err("is an absolute path"),
            ),
            (
                "file:/run/secrets/mid-{{ n }}",
                "/run/secrets/mid-/etc/hostname",
                Err("is an absolute path"),
            ),
            ("file:{{ n }}", "/etc/hostname", Err("is an absolute path")),
            (
                "file:{{ n }}",
                "../etc/hostname",
                Err("holds a `..` component"),
            ),
        ];
        for (template, path, expected) in cases {
            let found = SecretTemplate::new(template).file_scope(path);
            match expected {
                Ok(folder) => {
                    assert_eq!(found, Ok(folder.map(FileScope::new)), "{template} → {path}")
                }
                Err(reason) => {
                    let message = found.unwrap_err().to_string();
                    assert!(message.contains(reason), "{template} → {path}: {message}");
                    assert!(message.contains(path), "{message}");
                }
            }
        }
    }

    #[test]
    fn a_template_admits_only_references_it_can_render_to() {
        let admits = |template: &str, reference: &str| {
            SecretTemplate::new(template).admits(&reference.parse().unwrap())
        };
        assert_eq!(admits("env:MID_PASSWORD", "env:MID_PASSWORD"), Some(None));
        assert_eq!(admits("env:MID_PASSWORD", "env:OTHER"), None);
        assert_eq!(
            admits("command:pass show mid", "command:pass show mid"),
            Some(None)
        );
        assert_eq!(
            admits("command:pass show mid", "command:touch /tmp/pwned"),
            None
        );
        // command: and prompt: are never templates: `{{` is text.
        assert_eq!(
            admits("command:pass show {{ x }}", "command:pass show y"),
            None
        );
        assert_eq!(
            admits("env:PW_{{ n | upper }}", "env:PW_EMEA01"),
            Some(None)
        );
        assert_eq!(admits("env:PW_{{ n | upper }}", "env:OTHER"), None);
        assert_eq!(admits("env:PW_{{ n }}", "file:/run/PW_x"), None);
        assert_eq!(
            admits(
                "file:/run/secrets/{{ n }}.pw",
                "file:/run/secrets/emea01.pw"
            ),
            Some(Some(FileScope::new("/run/secrets/")))
        );
        assert_eq!(
            admits("file:/run/secrets/{{ n }}.pw", "file:/run/secrets/emea01"),
            None
        );
        assert_eq!(
            admits("file:/run/secrets/{{ n }}", "file:/etc/shadow"),
            None
        );
        assert_eq!(
            admits(
                "file:/run/secrets/{{ n }}",
                "file:/run/secrets/../../etc/shadow"
            ),
            None
        );
        assert_eq!(
            admits("file:/run/secrets/{{ n }}", "command:touch /tmp/pwned"),
            None
        );
    }
}
