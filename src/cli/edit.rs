//! `midfleet edit FILE`: the config.xml engine on one local file.

use std::path::Path;

use serde::Serialize;

use super::args::EditArgs;
use super::console::OutputFormat;
use super::console::{Console, Style};
use super::exit::{Exit, Failure};
use crate::config_xml::{names, Action, Change, ConfigXml, EditError, Operation, MAX_CONFIG_BYTES};
use crate::local_file;
use crate::report::masked_unified_diff;
use crate::secret::{SecretRef, SecretResolver, SecretValue};

/// One requested operation, before secrets are resolved.
enum Requested {
    Set { name: String, value: String },
    SetSecret { name: String, reference: SecretRef },
    Unset { name: String },
}

impl Requested {
    fn name(&self) -> &str {
        match self {
            Requested::Set { name, .. }
            | Requested::SetSecret { name, .. }
            | Requested::Unset { name } => name,
        }
    }
}

#[derive(Serialize)]
struct EditReport<'a> {
    file: String,
    check: bool,
    changed: bool,
    written: bool,
    changes: &'a [Change],
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<String>,
}

pub fn run(console: &Console, arguments: &EditArgs) -> Result<Exit, Failure> {
    let requested = requested_operations(arguments)?;
    let label = arguments.file.display().to_string();
    let file = local_file::read(&arguments.file, MAX_CONFIG_BYTES).map_err(|error| {
        let hint = error.hint();
        Failure::failed(error.to_string()).with_optional_hint(hint)
    })?;
    let document = ConfigXml::parse(&file.bytes).map_err(|error| {
        let location = error
            .location()
            .map(|location| format!(":{location}"))
            .unwrap_or_default();
        Failure::failed(format!("{label}{location}: {error}"))
            .with_hint("the file was not changed; fix it by hand or restore it from a backup")
    })?;

    let mut resolver = SecretResolver::new();
    let mut secrets: Vec<(usize, SecretValue)> = Vec::new();
    for (index, operation) in requested.iter().enumerate() {
        if let Requested::SetSecret { reference, .. } = operation {
            let value = resolver.resolve(reference);
            for warning in resolver.take_warnings() {
                console.diagnostic(&crate::ops::plan::secret_warning(&warning));
            }
            let value = value.map_err(|error| {
                let hint = error.hint().map(str::to_string);
                Failure::failed(error.to_string()).with_optional_hint(hint)
            })?;
            secrets.push((index, value));
        }
        if let Requested::Set { name, .. } = operation {
            let marked_secure = document
                .get(name)
                .is_some_and(|parameter| parameter.is_sensitive());
            if names::is_password(name) || marked_secure {
                console.warning(&format!(
                    "--set gives the sensitive parameter `{name}` a literal value on the command line, \
                     where process lists and shell history can see it; use --set-secret {name}=env:VAR"
                ));
            }
        }
    }
    let operations: Vec<Operation<'_>> = requested
        .iter()
        .enumerate()
        .map(|(index, operation)| match operation {
            Requested::Set { name, value } => Operation::Set {
                name,
                value,
                sensitive: false,
            },
            Requested::SetSecret { name, .. } => Operation::Set {
                name,
                value: secrets
                    .iter()
                    .find(|(secret_index, _)| *secret_index == index)
                    .map_or("", |(_, value)| value.expose()),
                sensitive: true,
            },
            Requested::Unset { name } => Operation::Unset { name },
        })
        .collect();

    let edited = document.edit(&operations).map_err(|error| {
        let from_command_line = match &error {
            EditError::InvalidValue { name, .. } => requested.iter().any(
                |operation| matches!(operation, Requested::Set { name: set, .. } if set == name),
            ),
            EditError::InvalidName { .. } | EditError::Conflict { .. } => true,
            EditError::EmptyRoot { .. } | EditError::Verification(_) => false,
        };
        let failure = Failure {
            exit: if from_command_line {
                Exit::Usage
            } else {
                Exit::Failed
            },
            message: format!("{label}: {error}"),
            hint: None,
        };
        failure.with_hint("the file was not changed")
    })?;

    let also_sensitive: Vec<&str> = requested
        .iter()
        .filter(|operation| matches!(operation, Requested::SetSecret { .. }))
        .map(Requested::name)
        .collect();
    let diff = match (&edited.document, arguments.diff) {
        (Some(after), true) => Some(masked_unified_diff(
            &document,
            after,
            &also_sensitive,
            &file_name(&file.path),
        )),
        (None, true) => Some(String::new()),
        _ => None,
    };

    let local_failure = |error: local_file::LocalFileError| {
        let hint = error.hint();
        Failure::failed(error.to_string()).with_optional_hint(hint)
    };
    let (written, removed) = match (&edited.document, arguments.check) {
        (Some(after), false) => {
            if let Some(pause) = local_file::failpoint(&file) {
                console.warning(&format!(
                    "a test failpoint is set: this edit pauses {} s before the rename (remove {})",
                    pause.as_secs(),
                    file.path
                        .with_file_name(local_file::FAILPOINT_NAME)
                        .display()
                ));
            }
            (
                true,
                local_file::replace(&file, after.bytes()).map_err(local_failure)?,
            )
        }
        (None, false) => (false, local_file::sweep(&file).map_err(local_failure)?),
        (_, true) => (false, Vec::new()),
    };
    for path in &removed {
        console.warning(&format!(
            "removed {}, left by an earlier edit that was killed (it may have held a password)",
            path.display()
        ));
    }
    let changed = edited.document.is_some();

    match console.output {
        OutputFormat::Json => {
            let report = EditReport {
                file: file.path.display().to_string(),
                check: arguments.check,
                changed,
                written,
                changes: &edited.changes,
                diff,
            };
            let json = serde_json::to_string_pretty(&report)
                .map_err(|error| Failure::failed(error.to_string()))?;
            console.data(&format!("{json}\n"));
        }
        OutputFormat::Human => {
            let mut text = diff.unwrap_or_default();
            text.push_str(&render_changes(console, &edited.changes));
            text.push_str(&summary(&label, &edited.changes, arguments.check, written));
            console.data(&text);
        }
    }
    Ok(if arguments.check && changed {
        Exit::Pending
    } else {
        Exit::Success
    })
}

/// Reads the flags into operations, refusing malformed ones and two
/// operations on one parameter (aliases included) before touching anything.
fn requested_operations(arguments: &EditArgs) -> Result<Vec<Requested>, Failure> {
    let mut requested = Vec::new();
    for pair in &arguments.set {
        let (name, value) = pair.split_once('=').ok_or_else(|| {
            Failure::usage(format!(
                "--set takes NAME=VALUE; `{}` has no `=`",
                shown_name(pair)
            ))
        })?;
        requested.push(Requested::Set {
            name: name.to_string(),
            value: value.to_string(),
        });
    }
    for pair in &arguments.set_secret {
        let (name, reference) = pair.split_once('=').ok_or_else(|| {
            Failure::usage(format!("--set-secret takes NAME=REF; `{pair}` has no `=`"))
        })?;
        let reference = reference.parse::<SecretRef>().map_err(|error| {
            let hint = error.hint().map(str::to_string);
            Failure::usage(format!("--set-secret {name}=…: {error}")).with_optional_hint(hint)
        })?;
        requested.push(Requested::SetSecret {
            name: name.to_string(),
            reference,
        });
    }
    for name in &arguments.unset {
        requested.push(Requested::Unset { name: name.clone() });
    }
    for (index, operation) in requested.iter().enumerate() {
        if operation.name().is_empty() {
            return Err(Failure::usage("a parameter name cannot be empty"));
        }
        if let Some(earlier) = requested[..index]
            .iter()
            .find(|earlier| names::same_parameter(earlier.name(), operation.name()))
        {
            return Err(Failure::usage(format!(
                "`{}` is asked for twice (`{}` and `{}`)",
                names::canonical(operation.name()),
                earlier.name(),
                operation.name()
            ))
            .with_hint(
                "give each parameter once; glide.glidesoap.* names are aliases of mid.instance.*",
            ));
        }
    }
    Ok(requested)
}

/// The part of a malformed `--set` argument that is safe to echo: none of
/// it when it might be a password typed without its name.
fn shown_name(pair: &str) -> &str {
    if pair.len() <= 64 && pair.contains('.') {
        pair
    } else {
        "(argument not shown)"
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

fn render_changes(console: &Console, changes: &[Change]) -> String {
    let mut text = String::new();
    for change in changes {
        let style = match change.action {
            Action::Update => Style::Change,
            Action::Add => Style::Add,
            Action::Remove => Style::Remove,
        };
        let detail = match change.action {
            Action::Update if change.sensitive => " = (sensitive)".to_string(),
            Action::Update => format!(" = {} -> {}", change.before, change.after),
            Action::Add => format!(" = {}", change.after),
            Action::Remove => String::new(),
        };
        text.push_str(&format!(
            "  {} {}{detail}   (line {})\n",
            console.paint(style, &change.action.symbol().to_string()),
            console.paint(Style::Bold, &change.param),
            change.line
        ));
    }
    text
}

fn summary(label: &str, changes: &[Change], check: bool, written: bool) -> String {
    if changes.is_empty() {
        return format!("{label}: no changes\n");
    }
    let count = |action| {
        changes
            .iter()
            .filter(|change| change.action == action)
            .count()
    };
    let outcome = match (check, written) {
        (true, _) => "not written (--check)",
        (false, true) => "written",
        (false, false) => "not written",
    };
    format!(
        "{label}: {} to change, {} to add, {} to remove; {outcome}\n",
        count(Action::Update),
        count(Action::Add),
        count(Action::Remove)
    )
}
