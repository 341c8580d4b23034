//! Inventory variables: the table of one scope's variables (each with
//! where it was written), reading a `vars:` mapping with the checks made
//! where a variable is defined, and conversion to template values.
//!
//! Owns: [`Var`], [`Vars`], those definition checks (names, where a
//! `!vault` value may be, ignored Ansible variables, the type of a known
//! one), which values are sensitive as written ([`is_sensitive`]) and
//! [`to_template_value`]. Must not: know what a known variable means
//! (`known.rs` does) or decide a host's precedence (`host.rs` does).

use indexmap::IndexMap;

use super::known::{convert, definition_warnings, ignored_ansible_variable, near_miss, Known};
use crate::diagnostic::Origin;
use crate::yaml::{Kind, Node, Scalar};

/// One variable definition: its YAML node and where it was written.
#[derive(Clone)]
pub struct Var {
    pub node: Node,
    pub origin: Origin,
}

/// The tag given to the variables of a decrypted vaulted file: their
/// values are as sensitive as a `!vault` one's.
pub(crate) const VAULTED_FILE_TAG: &str = "midfleet-vaulted-file";

/// Whether the variable's value is sensitive as written: a `!vault` text
/// or a value of a decrypted vaulted file.
pub(crate) fn is_sensitive(node: &Node) -> bool {
    matches!(
        node.tag.as_deref(),
        Some(crate::vault::VAULT_TAG | VAULTED_FILE_TAG)
    )
}

/// A vaulted value (or a decrypted vaulted file's) shows as `(sensitive)`.
impl std::fmt::Debug for Var {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = formatter.debug_struct("Var");
        if is_sensitive(&self.node) {
            debug.field("node", &"(sensitive)");
        } else {
            debug.field("node", &self.node);
        }
        debug.field("origin", &self.origin).finish()
    }
}

impl Var {
    /// Whether the value holds a template that must be rendered per host.
    pub fn is_template(&self) -> bool {
        contains_template(&self.node)
    }
}

fn contains_template(node: &Node) -> bool {
    match &node.kind {
        Kind::Scalar { text, .. } => text.contains("{{") || text.contains("{%"),
        Kind::Sequence(items) => items.iter().any(contains_template),
        Kind::Mapping(entries) => entries.iter().any(|(_, value)| contains_template(value)),
    }
}

/// Variables of one scope (a group, a host, a group_vars file), in the order
/// they were written.
#[derive(Debug, Clone, Default)]
pub struct Vars(pub IndexMap<String, Var>);

impl Vars {
    pub fn insert(&mut self, name: String, var: Var) {
        self.0.insert(name, var);
    }

    /// Adds every variable of `other`, which wins on conflicts.
    pub fn merge(&mut self, other: &Vars) {
        for (name, var) in &other.0 {
            self.0.insert(name.clone(), var.clone());
        }
    }

    pub fn get(&self, name: &str) -> Option<&Var> {
        self.0.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Var)> {
        self.0.iter()
    }

    /// Marks the variables written in `file`, a decrypted vaulted file, as
    /// sensitive as a `!vault` value.
    pub(crate) fn mark_vaulted_file(&mut self, file: &std::path::Path) {
        for var in self.0.values_mut() {
            if var.origin.file == file {
                var.node.tag = Some(VAULTED_FILE_TAG.to_string());
            }
        }
    }
}

/// A template value for `node`: strings, numbers, booleans, lists and
/// mappings as minijinja sees them.
pub fn to_template_value(node: &Node) -> minijinja::Value {
    use minijinja::Value;
    match &node.kind {
        Kind::Scalar { .. } => match node.typed() {
            Some(Scalar::Null) | None => Value::from(()),
            Some(Scalar::Bool(value)) => Value::from(value),
            Some(Scalar::Integer(value)) => Value::from(value),
            Some(Scalar::Float(value)) => Value::from(value),
            Some(Scalar::String(text)) => Value::from(text),
        },
        Kind::Sequence(items) => {
            Value::from(items.iter().map(to_template_value).collect::<Vec<_>>())
        }
        Kind::Mapping(entries) => Value::from(
            entries
                .iter()
                .map(|(key, value)| {
                    (
                        key.text().unwrap_or_default().to_string(),
                        to_template_value(value),
                    )
                })
                .collect::<std::collections::BTreeMap<String, Value>>(),
        ),
    }
}

/// Checks one variable definition where it is written: vault values,
/// ignored Ansible variables, and the type of known variables (a templated
/// value is checked once rendered for a host).
pub(crate) fn check_definition(
    name: &str,
    var: &Var,
    diagnostics: &mut crate::diagnostic::Diagnostics,
) {
    use crate::diagnostic::Diagnostic;
    let origin = Some(var.origin.clone());
    if !is_identifier(name) {
        diagnostics.push(
            Diagnostic::error(origin, format!("`{name}` is not a valid variable name"))
                .with_hint("variable names are letters, digits and `_`, not starting with a digit"),
        );
        return;
    }
    if is_nested_vault(&var.node) {
        diagnostics.push(
            Diagnostic::error(
                origin,
                format!("`{name}` holds a `!vault` value inside a list or mapping, which midfleet does not decrypt"),
            )
            .with_hint("make the variable itself vaulted (`{name}: !vault |`), or put it in a vaulted variables file"),
        );
        return;
    }
    if var.node.tag.is_none() && var.node.text().is_some_and(crate::vault::is_vaulted) {
        diagnostics.push(
            Diagnostic::warning(
                origin,
                format!("`{name}` looks like an Ansible Vault text without the `!vault` tag; as in Ansible, it is used as written, not decrypted"),
            )
            .with_hint(format!("write `{name}: !vault |` before the vaulted text")),
        );
        return;
    }
    if is_sensitive(&var.node) {
        // Decrypted only when a host uses it (`vaulted.rs`); its type is
        // checked then.
        return;
    }
    if let Some(reason) = ignored_ansible_variable(name) {
        diagnostics.push(Diagnostic::warning(origin, format!("`{name}`: {reason}")));
        return;
    }
    if let Some(known) = Known::of(name) {
        if !var.is_template() {
            match convert(known, name, &var.node) {
                Err(error) => diagnostics.push(Diagnostic::error(origin, error.to_string())),
                Ok(value) => {
                    for warning in definition_warnings(known, name, &value) {
                        diagnostics.push(Diagnostic::warning(origin.clone(), warning));
                    }
                }
            }
        }
    } else if let Some(close) = near_miss(name) {
        diagnostics.push(
            Diagnostic::warning(origin, format!("`{name}` is not a variable midfleet reads"))
                .with_hint(format!("did you mean `{close}`?")),
        );
    }
}

pub(crate) fn is_identifier(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && characters.all(|character| character.is_ascii_alphanumeric() || character == '_')
}

/// A `!vault` value below the variable's own value.
fn is_nested_vault(node: &Node) -> bool {
    let children: Vec<&Node> = match &node.kind {
        Kind::Sequence(items) => items.iter().collect(),
        Kind::Mapping(entries) => entries.iter().map(|(_, value)| value).collect(),
        Kind::Scalar { .. } => return false,
    };
    children.into_iter().any(|child| {
        child.tag.as_deref() == Some(crate::vault::VAULT_TAG) || is_nested_vault(child)
    })
}

/// Reads a mapping of variables (a `vars:` section, a host's mapping, a
/// `group_vars/` file), checking each definition.
pub(crate) fn read_vars(
    node: &Node,
    file: &std::path::Path,
    what: &str,
    diagnostics: &mut crate::diagnostic::Diagnostics,
) -> Vars {
    use crate::diagnostic::Diagnostic;
    let mut vars = Vars::default();
    if node.is_null() {
        return vars;
    }
    let Some(entries) = node.as_mapping() else {
        diagnostics.push(Diagnostic::error(
            Some(Origin::new(file, node.at)),
            format!(
                "{what} must be a mapping of variables, not {}",
                node.describe()
            ),
        ));
        return vars;
    };
    for (key, value) in entries {
        let Some(name) = key.text() else {
            diagnostics.push(Diagnostic::error(
                Some(Origin::new(file, key.at)),
                "a variable name must be a string",
            ));
            continue;
        };
        let var = Var {
            node: value.clone(),
            origin: Origin::new(file, value.at),
        };
        check_definition(name, &var, diagnostics);
        vars.insert(name.to_string(), var);
    }
    vars
}
