//! Templates: minijinja with strict undefined, bounded work, and no access
//! to files, the environment or anything but the variables given.
//!
//! Owns: the one configured environment, rendering a string against a
//! host's variables, and naming the undefined variable when one is used.
//! Must not: load templates from disk or expose functions with effects.

use std::collections::{BTreeMap, BTreeSet};

use minijinja::{Environment, UndefinedBehavior, Value};

/// Instructions one render may execute: ample for `{{ a ~ b | upper }}`,
/// small enough that `{% for i in range(…) %}` loops end in milliseconds.
const FUEL: u64 = 50_000;
/// A rendered value longer than this is refused (config.xml values are
/// short).
const MAX_OUTPUT: usize = 64 * 1024;

/// The template environment midfleet renders with.
pub struct Templates {
    environment: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Templates {
        Templates::new()
    }
}

/// Why a template cannot be rendered; never holds a variable's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template syntax: {0}")]
    Syntax(String),
    /// Variables the template uses that the context does not hold.
    #[error("undefined variable {}", quoted(.0))]
    Undefined(Vec<String>),
    /// Rendering failed (an undefined attribute, a filter's error, out of
    /// fuel…), as minijinja describes it.
    #[error("{0}")]
    Render(String),
    #[error("renders to {0} bytes, more than the {MAX_OUTPUT} allowed")]
    TooLong(usize),
}

fn quoted(names: &[String]) -> String {
    let names: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    names.join(", ")
}

/// Variables a template sees: names to values.
pub type Context = BTreeMap<String, Value>;

impl Templates {
    pub fn new() -> Templates {
        let mut environment = Environment::new();
        environment.set_undefined_behavior(UndefinedBehavior::Strict);
        environment.set_fuel(Some(FUEL));
        environment.set_recursion_limit(32);
        Templates { environment }
    }

    /// Whether `text` holds template syntax at all.
    pub fn is_template(text: &str) -> bool {
        text.contains("{{") || text.contains("{%") || text.contains("{#")
    }

    /// The variables `source` reads from its context (none when it is no
    /// template or does not parse).
    pub fn variables(&self, source: &str) -> BTreeSet<String> {
        if !Templates::is_template(source) {
            return BTreeSet::new();
        }
        self.environment
            .template_from_str(source)
            .map(|template| template.undeclared_variables(false).into_iter().collect())
            .unwrap_or_default()
    }

    /// Renders `source` with `context`. The error names an undefined
    /// variable when that is the cause.
    pub fn render(&self, source: &str, context: &Context) -> Result<String, TemplateError> {
        if !Templates::is_template(source) {
            return Ok(source.to_string());
        }
        let template = self
            .environment
            .template_from_str(source)
            .map_err(|error| TemplateError::Syntax(describe(&error)))?;
        let undefined: BTreeSet<String> = template
            .undeclared_variables(false)
            .into_iter()
            .filter(|name| !context.contains_key(name))
            .collect();
        if !undefined.is_empty() {
            return Err(TemplateError::Undefined(undefined.into_iter().collect()));
        }
        let rendered = template
            .render(Value::from(context.clone()))
            .map_err(|error| TemplateError::Render(describe(&error)))?;
        if rendered.len() > MAX_OUTPUT {
            return Err(TemplateError::TooLong(rendered.len()));
        }
        Ok(rendered)
    }
}

fn describe(error: &minijinja::Error) -> String {
    let mut message = error.kind().to_string();
    if let Some(detail) = error.detail() {
        message = format!("{message}: {detail}");
    }
    if error.kind() == minijinja::ErrorKind::OutOfFuel {
        message.push_str(" (the template does too much work; loops are bounded)");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> Context {
        let mut context = Context::new();
        context.insert("mid_name".into(), Value::from("emea01"));
        context.insert("port".into(), Value::from(22));
        context
    }

    #[test]
    fn renders_filters_and_plain_text() {
        let templates = Templates::new();
        assert_eq!(
            templates
                .render("svc_mid_{{ mid_name }}", &context())
                .unwrap(),
            "svc_mid_emea01"
        );
        assert_eq!(
            templates
                .render("{{ mid_name | upper }}:{{ port }}", &context())
                .unwrap(),
            "EMEA01:22"
        );
        assert_eq!(
            templates.render("no template", &context()).unwrap(),
            "no template"
        );
    }

    #[test]
    fn undefined_variables_are_named() {
        let error = Templates::new()
            .render("svc_{{ mid_nmae }}", &context())
            .unwrap_err();
        assert_eq!(error.to_string(), "undefined variable `mid_nmae`");
        let error = Templates::new()
            .render("{{ mid_name.missing.deeper }}", &context())
            .unwrap_err();
        assert!(error.to_string().contains("undefined"), "{error}");
    }

    #[test]
    fn work_is_bounded_and_nothing_outside_is_reachable() {
        let templates = Templates::new();
        let error = templates
            .render(
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
                &context(),
            )
            .unwrap_err();
        assert!(!error.to_string().is_empty());
        for source in [
            "{% include '/etc/passwd' %}",
            "{{ env.HOME }}",
            "{{ lookup('file', '/etc/passwd') }}",
        ] {
            assert!(templates.render(source, &context()).is_err(), "{source}");
        }
        let error = templates
            .render("{{ 'x' * 100000 }}", &context())
            .unwrap_err();
        assert!(error.to_string().contains("more than"), "{error}");
    }

    #[test]
    fn syntax_errors_are_reported() {
        let error = Templates::new()
            .render("{{ mid_name ", &context())
            .unwrap_err();
        assert!(error.to_string().starts_with("template syntax"), "{error}");
    }
}
