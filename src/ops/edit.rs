//! `edit`: the config.xml engine on one local file — the flags read into
//! operations (malformed or repeated ones refused before anything is
//! read), secrets resolved, the edit made and verified, the file replaced
//! atomically (or, with `check`, left alone).
//!
//! Must not: print (warnings go to the operator) or render the changes.

use std::path::{Path, PathBuf};

use crate::config_xml::{names, Change, ConfigXml, EditError, Operation, MAX_CONFIG_BYTES};
use crate::local_file;
use crate::report::masked_unified_diff;
use crate::secret::{SecretRef, SecretResolver, SecretValue};

use super::{Operator, OpsError};

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

/// What `edit` is asked to do.
pub struct EditRequest {
    /// The config.xml to edit.
    pub file: PathBuf,
    /// `NAME=VALUE` pairs.
    pub set: Vec<String>,
    /// `NAME=REF` pairs: the value is a secret.
    pub set_secret: Vec<String>,
    /// Names to remove.
    pub unset: Vec<String>,
    /// Write nothing.
    pub check: bool,
    /// Also make the masked diff.
    pub diff: bool,
}

/// What `edit` did.
pub struct Edited {
    /// The file as read (a link followed).
    pub path: PathBuf,
    pub changes: Vec<Change>,
    /// The masked unified diff (asked for; empty when nothing changes).
    pub diff: Option<String>,
    /// The file would change (or did).
    pub changed: bool,
    pub written: bool,
}

/// Edits `request.file` (see the module).
pub fn edit(request: &EditRequest, operator: &dyn Operator) -> Result<Edited, OpsError> {
    let requested = requested_operations(request)?;
    let label = request.file.display().to_string();
    let file = local_file::read(&request.file, MAX_CONFIG_BYTES).map_err(|error| {
        let hint = error.hint();
        OpsError::failed(error.to_string()).with_optional_hint(hint)
    })?;
    let document = ConfigXml::parse(&file.bytes).map_err(|error| {
        let location = error
            .location()
            .map(|location| format!(":{location}"))
            .unwrap_or_default();
        OpsError::failed(format!("{label}{location}: {error}"))
            .with_hint("the file was not changed; fix it by hand or restore it from a backup")
    })?;

    let mut resolver = SecretResolver::new();
    let mut secrets: Vec<(usize, SecretValue)> = Vec::new();
    for (index, operation) in requested.iter().enumerate() {
        if let Requested::SetSecret { reference, .. } = operation {
            let value = resolver.resolve(reference);
            for warning in resolver.take_warnings() {
                operator.diagnostic(&super::plan::secret_warning(&warning));
            }
            let value = value.map_err(|error| {
                let hint = error.hint().map(str::to_string);
                OpsError::failed(error.to_string()).with_optional_hint(hint)
            })?;
            secrets.push((index, value));
        }
        if let Requested::Set { name, .. } = operation {
            let marked_secure = document
                .get(name)
                .is_some_and(|parameter| parameter.is_sensitive());
            if names::is_password(name) || marked_secure {
                operator.warning(&format!(
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
        let message = format!("{label}: {error}");
        let failure = if from_command_line {
            OpsError::input(message)
        } else {
            OpsError::failed(message)
        };
        failure.with_hint("the file was not changed")
    })?;

    let also_sensitive: Vec<&str> = requested
        .iter()
        .filter(|operation| matches!(operation, Requested::SetSecret { .. }))
        .map(Requested::name)
        .collect();
    let diff = match (&edited.document, request.diff) {
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
        OpsError::failed(error.to_string()).with_optional_hint(hint)
    };
    let (written, removed) = match (&edited.document, request.check) {
        (Some(after), false) => {
            if let Some(pause) = local_file::failpoint(&file) {
                operator.warning(&format!(
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
        operator.warning(&format!(
            "removed {}, left by an earlier edit that was killed (it may have held a password)",
            path.display()
        ));
    }
    Ok(Edited {
        path: file.path,
        changed: edited.document.is_some(),
        changes: edited.changes,
        diff,
        written,
    })
}

/// Reads the flags into operations, refusing malformed ones and two
/// operations on one parameter (aliases included) before touching anything.
fn requested_operations(request: &EditRequest) -> Result<Vec<Requested>, OpsError> {
    let mut requested = Vec::new();
    for pair in &request.set {
        let (name, value) = pair.split_once('=').ok_or_else(|| {
            OpsError::input(format!(
                "--set takes NAME=VALUE; `{}` has no `=`",
                shown_name(pair)
            ))
        })?;
        requested.push(Requested::Set {
            name: name.to_string(),
            value: value.to_string(),
        });
    }
    for pair in &request.set_secret {
        let (name, reference) = pair.split_once('=').ok_or_else(|| {
            OpsError::input(format!("--set-secret takes NAME=REF; `{pair}` has no `=`"))
        })?;
        let reference = reference.parse::<SecretRef>().map_err(|error| {
            let hint = error.hint().map(str::to_string);
            OpsError::input(format!("--set-secret {name}=…: {error}")).with_optional_hint(hint)
        })?;
        requested.push(Requested::SetSecret {
            name: name.to_string(),
            reference,
        });
    }
    for name in &request.unset {
        requested.push(Requested::Unset { name: name.clone() });
    }
    for (index, operation) in requested.iter().enumerate() {
        if operation.name().is_empty() {
            return Err(OpsError::input("a parameter name cannot be empty"));
        }
        if let Some(earlier) = requested[..index]
            .iter()
            .find(|earlier| names::same_parameter(earlier.name(), operation.name()))
        {
            return Err(OpsError::input(format!(
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
