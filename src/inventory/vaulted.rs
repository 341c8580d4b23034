//! A host's sensitive variables: `!vault` values, values from a vaulted
//! variables file, and templates that use either. They stay out of the
//! host's template context and are revealed one by one, only when used
//! (a setting midfleet reads, a playbook template, a `var:` secret), so
//! that a vaulted variable nobody uses never needs a password.
//!
//! Owns: [`Vaulted`] and its `reveal`, which calls `vault::reveal` where a
//! vaulted node becomes a value; what is said about vaulted files that
//! could not be read. Must not: print, or put a revealed value in a
//! message.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;

use crate::diagnostic::Diagnostic;
use crate::secret::SecretValue;
use crate::template::{Context, Templates};
use crate::vault::Keyring;
use crate::yaml::{Kind, Node};

use super::vars::{is_sensitive, to_template_value, Var, VAULTED_FILE_TAG};

/// How deep a template over sensitive variables may refer to another.
const REVEAL_DEPTH: usize = 8;

/// A vaulted file that could not be decrypted, and why (no password, the
/// wrong one…): its variables are unknown.
#[derive(Debug, Clone)]
pub struct UnreadableVaultFile {
    pub path: PathBuf,
    pub reason: String,
}

impl std::fmt::Debug for Vaulted {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Vaulted")
            .field("values", &self.values.keys().collect::<Vec<_>>())
            .field("templates", &self.templates.keys().collect::<Vec<_>>())
            .field("unreadable", &self.unreadable)
            .finish()
    }
}

/// One host's sensitive variables (see the module). `Debug` shows their
/// names only.
#[derive(Clone, Default)]
pub struct Vaulted {
    keyring: Arc<Keyring>,
    /// Sensitive as written, by name.
    values: BTreeMap<String, Var>,
    /// Templates that use a sensitive variable, by name.
    templates: BTreeMap<String, Var>,
    unreadable: Vec<UnreadableVaultFile>,
}

impl Vaulted {
    /// Takes the sensitive variables, and the templates that use them
    /// (directly or through another such template), out of `merged`.
    pub(crate) fn split(
        merged: &mut IndexMap<String, Var>,
        keyring: Arc<Keyring>,
        unreadable: Vec<UnreadableVaultFile>,
        templates: &Templates,
    ) -> Vaulted {
        let mut vaulted = Vaulted {
            keyring,
            unreadable,
            ..Vaulted::default()
        };
        let sensitive: Vec<String> = merged
            .iter()
            .filter(|(_, var)| is_sensitive(&var.node))
            .map(|(name, _)| name.clone())
            .collect();
        for name in sensitive {
            if let Some(var) = merged.shift_remove(&name) {
                vaulted.values.insert(name, var);
            }
        }
        // With a vaulted file unread, a template over a variable defined
        // nowhere may need that file: it waits too, and says so if used.
        let unread = !vaulted.unreadable.is_empty();
        if vaulted.values.is_empty() && !unread {
            // Nothing vaulted: no template to parse (the common case).
            return vaulted;
        }
        loop {
            let using: Vec<String> = merged
                .iter()
                .filter(|(_, var)| {
                    var.node.text().is_some_and(|text| {
                        Templates::is_template(text)
                            && templates.variables(text).iter().any(|used| {
                                vaulted.holds(used) || (unread && !merged.contains_key(used))
                            })
                    })
                })
                .map(|(name, _)| name.clone())
                .collect();
            if using.is_empty() {
                break;
            }
            for name in using {
                if let Some(var) = merged.shift_remove(&name) {
                    vaulted.templates.insert(name, var);
                }
            }
        }
        vaulted
    }

    /// Whether `name` is one of these variables.
    pub fn holds(&self, name: &str) -> bool {
        self.values.contains_key(name) || self.templates.contains_key(name)
    }

    /// Where `name` is defined, when it is one of these variables.
    pub fn origin(&self, name: &str) -> Option<&crate::diagnostic::Origin> {
        self.values
            .get(name)
            .or_else(|| self.templates.get(name))
            .map(|var| &var.origin)
    }

    /// The value of `name` (one of these variables) for `host`, as a
    /// template value, decrypted or rendered now; `context` is the host's
    /// template context.
    pub fn reveal_value(
        &self,
        host: &str,
        name: &str,
        context: &Context,
        templates: &Templates,
    ) -> Result<minijinja::Value, Diagnostic> {
        self.reveal_at(host, name, context, templates, 0)
    }

    /// The value of `name` (one of these variables) as a YAML node, for a
    /// setting midfleet reads: a vaulted file's value as written, a
    /// `!vault` text's plaintext or a template's rendering as a string.
    /// The hook where a vaulted variable's node becomes a value.
    pub fn reveal_node(
        &self,
        host: &str,
        name: &str,
        context: &Context,
        templates: &Templates,
    ) -> Result<Node, Diagnostic> {
        if let Some(var) = self
            .values
            .get(name)
            .filter(|var| var.node.tag.as_deref() == Some(VAULTED_FILE_TAG))
        {
            let mut node = var.node.clone();
            node.tag = None;
            return Ok(node);
        }
        let Some(at) = self
            .values
            .get(name)
            .or_else(|| self.templates.get(name))
            .map(|var| var.node.at)
        else {
            return Err(
                Diagnostic::error(None, format!("variable `{name}` is undefined")).for_host(host),
            );
        };
        let value = self.reveal_value(host, name, context, templates)?;
        let text = text_of(&value).ok_or_else(|| {
            Diagnostic::error(
                self.origin(name).cloned(),
                format!("variable `{name}` is not a string or a number"),
            )
            .for_host(host)
        })?;
        Ok(Node::scalar(text.expose(), false, at))
    }

    /// The value of `name` as text, held as a secret: a `var:` secret.
    /// Lists and mappings are refused.
    pub fn reveal_text(
        &self,
        host: &str,
        name: &str,
        context: &Context,
        templates: &Templates,
    ) -> Result<SecretValue, Diagnostic> {
        let value = self.reveal_value(host, name, context, templates)?;
        text_of(&value).ok_or_else(|| {
            Diagnostic::error(
                self.origin(name).cloned(),
                format!("variable `{name}` is not a string or a number"),
            )
            .for_host(host)
        })
    }

    fn reveal_at(
        &self,
        host: &str,
        name: &str,
        context: &Context,
        templates: &Templates,
        depth: usize,
    ) -> Result<minijinja::Value, Diagnostic> {
        if let Some(var) = self.values.get(name) {
            return self.decrypt(host, name, var);
        }
        let Some(var) = self.templates.get(name) else {
            return Err(
                Diagnostic::error(None, format!("variable `{name}` is undefined")).for_host(host),
            );
        };
        let text = var.node.text().unwrap_or_default();
        if depth >= REVEAL_DEPTH {
            return Err(Diagnostic::error(
                Some(var.origin.clone()),
                format!("variable `{name}`: templates over vaulted values refer to each other more than {REVEAL_DEPTH} deep"),
            )
            .for_host(host));
        }
        let extended = self.context_at(host, text, context, templates, depth + 1)?;
        let rendered = templates.render(text, &extended).map_err(|error| {
            let mut message = format!("variable `{name}`: {error}");
            if let (crate::template::TemplateError::Undefined(_), Some(note)) =
                (&error, self.unreadable_note())
            {
                message = format!("{message}; {note}");
            }
            Diagnostic::error(Some(var.origin.clone()), message).for_host(host)
        })?;
        Ok(minijinja::Value::from(rendered))
    }

    /// `context` with every sensitive variable `template` uses revealed;
    /// `None` when it uses none (what it renders is sensitive otherwise).
    pub fn context_for(
        &self,
        host: &str,
        template: &str,
        context: &Context,
        templates: &Templates,
    ) -> Result<Option<Context>, Diagnostic> {
        if self.values.is_empty() && self.templates.is_empty()
            || !Templates::is_template(template)
            || !templates
                .variables(template)
                .iter()
                .any(|name| self.holds(name))
        {
            return Ok(None);
        }
        self.context_at(host, template, context, templates, 0)
            .map(Some)
    }

    fn context_at(
        &self,
        host: &str,
        template: &str,
        context: &Context,
        templates: &Templates,
        depth: usize,
    ) -> Result<Context, Diagnostic> {
        let mut extended = context.clone();
        let used: BTreeSet<String> = templates.variables(template);
        for name in used.iter().filter(|name| self.holds(name)) {
            let value = self.reveal_at(host, name, context, templates, depth)?;
            extended.insert(name.clone(), value);
        }
        Ok(extended)
    }

    fn decrypt(&self, host: &str, name: &str, var: &Var) -> Result<minijinja::Value, Diagnostic> {
        if var.node.tag.as_deref() == Some(VAULTED_FILE_TAG) {
            return Ok(to_template_value(&var.node));
        }
        let text = match &var.node.kind {
            Kind::Scalar { text, .. } => text,
            _ => {
                return Err(Diagnostic::error(
                    Some(var.origin.clone()),
                    format!(
                        "`{name}`: a `!vault` value must be the vaulted text, not {}",
                        var.node.describe()
                    ),
                )
                .for_host(host))
            }
        };
        let value = crate::vault::reveal(text, &self.keyring).map_err(|error| {
            Diagnostic::error(
                Some(var.origin.clone()),
                format!("cannot decrypt the vaulted variable `{name}`: {error}"),
            )
            .for_host(host)
            .with_hint(error.hint())
        })?;
        Ok(minijinja::Value::from(value.expose()))
    }

    /// A sentence naming the vaulted files that could not be read, for an
    /// undefined variable's error: it may be defined in one of them.
    pub fn unreadable_note(&self) -> Option<String> {
        if self.unreadable.is_empty() {
            return None;
        }
        let files: Vec<String> = self
            .unreadable
            .iter()
            .map(|file| format!("{} ({})", file.path.display(), file.reason))
            .collect();
        Some(format!(
            "it may be defined in a vaulted file that could not be decrypted: {}",
            files.join(", ")
        ))
    }
}

/// A template value as text: strings, numbers and booleans.
fn text_of(value: &minijinja::Value) -> Option<SecretValue> {
    use minijinja::value::ValueKind;
    match value.kind() {
        ValueKind::String | ValueKind::Number | ValueKind::Bool => {
            Some(SecretValue::new(value.to_string()))
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "vaulted_tests.rs"]
mod tests;
