//! A plan file read back for `apply --plan`, and the playbook it was made
//! from: what decides which secrets the plan may resolve.
//!
//! A plan file names secret references, and resolving one runs a
//! `command:` or reads a file; so the file is read only when the user
//! running midfleet owns it and nobody else can write it (checked on the
//! opened descriptor, not on the path), and its references are resolved
//! only when the playbook the plan records — unchanged, by its SHA-256 —
//! holds them. Owns: those checks. Must not: resolve a secret or contact a
//! host.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{Plan, FORMAT_VERSION};
use crate::playbook::desired::SecretTemplate;
use crate::playbook::{InstanceUser, Playbook, SetValue};
use crate::secret::{FileScope, SecretRef};

/// Plan and playbook files larger than this are refused, not read.
const MAX_BYTES: u64 = 256 * 1024 * 1024;

const REGENERATE: &str = "make the plan again with `midfleet plan -i INVENTORY PLAYBOOK --out FILE` (it writes the file 0600, owned by you)";

/// Why a plan file, or the playbook it names, is not applied. Nothing has
/// been resolved or run when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error("cannot read the plan file {path}: {error}")]
    Unreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the plan file {path} is a symbolic link; midfleet reads a plan file only directly")]
    Link { path: PathBuf },
    #[error("the plan file {path} is not a regular file")]
    NotRegular { path: PathBuf },
    #[error(
        "the plan file {path} is owned by uid {owner} (mode {mode:04o}), not by the user running midfleet (uid {euid}); it was not read"
    )]
    Owner {
        path: PathBuf,
        owner: u32,
        mode: u32,
        euid: u32,
    },
    #[error(
        "the plan file {path} can be written by group or others (mode {mode:04o}, owner uid {owner}); it was not read"
    )]
    Writable {
        path: PathBuf,
        owner: u32,
        mode: u32,
    },
    #[error("the plan file {path} is larger than 256 MiB")]
    TooLarge { path: PathBuf },
    #[error("{path}: not a midfleet plan: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("{path}: plan format {found} is not the {FORMAT_VERSION} this midfleet applies; make the plan again with this midfleet (`midfleet plan PLAYBOOK --out FILE`)")]
    Version { path: PathBuf, found: String },
    #[error("the plan records no playbook digest, so its secret references cannot be checked; nothing was resolved or run")]
    NoPlaybook,
    #[error("cannot read the plan's playbook {path}: {error}; nothing was resolved or run")]
    PlaybookUnreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the playbook {path} changed since the plan was made (SHA-256 {found}, the plan says {recorded}); nothing was resolved or run")]
    PlaybookChanged {
        path: PathBuf,
        found: String,
        recorded: String,
    },
    #[error(
        "the plan's playbook {path} is no longer valid: {reason}; nothing was resolved or run"
    )]
    PlaybookInvalid { path: PathBuf, reason: String },
    #[error("the plan's secret reference `{reference}` is not in its playbook {path}; nothing was resolved or run")]
    Foreign { reference: String, path: PathBuf },
}

impl PlanFileError {
    /// What the operator can do about it.
    pub fn hint(&self) -> String {
        match self {
            PlanFileError::Owner { path, .. } | PlanFileError::Writable { path, .. } => format!(
                "a plan file decides which commands midfleet runs for secrets: keep it yours alone (`chmod 600 {}`, owned by the user who applies it), or {REGENERATE}",
                path.display()
            ),
            PlanFileError::Foreign { .. } => format!(
                "the plan file was edited, or made from another playbook; {REGENERATE}"
            ),
            _ => REGENERATE.to_string(),
        }
    }
}

fn current_euid() -> u32 {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// Reads the plan file at `path`: opened without following a link or
/// blocking, refused unless it is a regular file owned by the effective
/// user and writable by nobody else — all checked on the opened file —
/// then parsed, its format version first.
pub fn read(path: &Path) -> Result<Plan, PlanFileError> {
    let owned = || path.to_path_buf();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|error| match error.raw_os_error() {
            Some(libc::ELOOP) => PlanFileError::Link { path: owned() },
            _ => PlanFileError::Unreadable {
                path: owned(),
                error,
            },
        })?;
    let metadata = file.metadata().map_err(|error| PlanFileError::Unreadable {
        path: owned(),
        error,
    })?;
    if !metadata.file_type().is_file() {
        return Err(PlanFileError::NotRegular { path: owned() });
    }
    let (owner, mode, euid) = (metadata.uid(), metadata.mode() & 0o7777, current_euid());
    if owner != euid {
        return Err(PlanFileError::Owner {
            path: owned(),
            owner,
            mode,
            euid,
        });
    }
    if mode & 0o022 != 0 {
        return Err(PlanFileError::Writable {
            path: owned(),
            owner,
            mode,
        });
    }
    let mut bytes = Vec::new();
    (&file)
        .take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| PlanFileError::Unreadable {
            path: owned(),
            error,
        })?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(PlanFileError::TooLarge { path: owned() });
    }
    parse(path, &bytes)
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Plan, PlanFileError> {
    let format = |reason: String| PlanFileError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|error| format(error.to_string()))?;
    let version = value
        .get("format_version")
        .and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(FORMAT_VERSION)) {
        return Err(PlanFileError::Version {
            path: path.to_path_buf(),
            found: version.map_or("unknown".to_string(), |version| version.to_string()),
        });
    }
    serde_json::from_value(value).map_err(|error| format(error.to_string()))
}

/// The playbook could not be read again to record its digest.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", .path.display())]
pub struct PlaybookDigestError {
    /// The path as given (not made absolute).
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// The playbook's path as the plan records it (absolute, so that `apply
/// --plan` finds it from any folder) and the SHA-256 of its bytes.
pub fn playbook_digest(path: &Path) -> Result<(String, String), PlaybookDigestError> {
    let failed = |source| PlaybookDigestError {
        path: path.to_path_buf(),
        source,
    };
    let absolute = std::path::absolute(path).map_err(failed)?;
    let bytes = read_playbook(&absolute).map_err(failed)?;
    Ok((
        absolute.display().to_string(),
        crate::facts::sha256_hex(&bytes),
    ))
}

fn read_playbook(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    if !file.metadata()?.file_type().is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(std::io::Error::other("larger than 256 MiB"));
    }
    Ok(bytes)
}

/// The plan's secret references, each with the `file:` scope its playbook
/// template gives it, once the playbook the plan records is read again,
/// found unchanged (same SHA-256), valid, and holding every one of them.
/// A plan without secrets needs no playbook.
pub fn secret_references(
    plan: &Plan,
) -> Result<Vec<(SecretRef, Option<FileScope>)>, PlanFileError> {
    if plan.secrets.is_empty() {
        return Ok(Vec::new());
    }
    let (Some(path), Some(recorded)) = (&plan.playbook.file, &plan.playbook.sha256) else {
        return Err(PlanFileError::NoPlaybook);
    };
    let path = PathBuf::from(path);
    let bytes = read_playbook(&path).map_err(|error| PlanFileError::PlaybookUnreadable {
        path: path.clone(),
        error,
    })?;
    let found = crate::facts::sha256_hex(&bytes);
    if found != *recorded {
        return Err(PlanFileError::PlaybookChanged {
            path,
            found,
            recorded: recorded.clone(),
        });
    }
    let invalid = |reason: String| PlanFileError::PlaybookInvalid {
        path: path.clone(),
        reason,
    };
    let text = crate::source_file::decode(&path, bytes)
        .map_err(|diagnostic| invalid(diagnostic.message))?;
    let (playbook, diagnostics) = Playbook::from_text(&path, &text);
    let playbook = match playbook {
        Some(playbook) if !diagnostics.has_errors() => playbook,
        _ => {
            let first = diagnostics
                .merged()
                .into_iter()
                .find(|diagnostic| diagnostic.is_error())
                .map_or("it cannot be read".to_string(), |diagnostic| {
                    diagnostic.to_string()
                });
            return Err(invalid(first));
        }
    };
    let templates = playbook_references(&playbook);
    plan.secrets
        .iter()
        .map(|info| {
            let foreign = || PlanFileError::Foreign {
                reference: info.reference.clone(),
                path: path.clone(),
            };
            let reference: SecretRef = info.reference.parse().map_err(|_| foreign())?;
            let scope = templates
                .iter()
                .find_map(|template| SecretTemplate::new(template).admits(&reference))
                .ok_or_else(foreign)?;
            Ok((reference, scope))
        })
        .collect()
}

/// Every secret reference the playbook writes, as written.
fn playbook_references(playbook: &Playbook) -> Vec<String> {
    let mut references: Vec<String> = playbook
        .set
        .iter()
        .filter_map(|entry| match &entry.value {
            SetValue::Secret(text) => Some(text.clone()),
            SetValue::Template(_) => None,
        })
        .collect();
    references.extend(
        playbook
            .wrapper
            .iter()
            .filter_map(|entry| match &entry.value {
                crate::playbook::WrapperValue::Set(SetValue::Secret(text)) => Some(text.clone()),
                _ => None,
            }),
    );
    if let Some(instance) = &playbook.instance {
        references.push(instance.password.to_string());
        if let InstanceUser::Secret(reference) = &instance.user {
            references.push(reference.to_string());
        }
    }
    references
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_of_another_format_is_refused_with_what_to_do() {
        let path = Path::new("/plans/old.plan");
        let error = parse(path, br#"{"format_version": 3, "hosts": []}"#).unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, PlanFileError::Version { ref found, .. } if found == "3"));
        assert!(
            text.starts_with("/plans/old.plan: plan format 3 is not the 4 ")
                && text.contains("make the plan again"),
            "{text}"
        );
        let unknown = parse(path, b"{}").unwrap_err();
        assert!(
            matches!(unknown, PlanFileError::Version { ref found, .. } if found == "unknown"),
            "{unknown}"
        );
    }
}
