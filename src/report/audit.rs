//! The local audit log: one JSON line per apply, rollback and unlock —
//! who, when, which hosts, which parameters, what happened. Never a value.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// `$XDG_STATE_HOME/midfleet/audit.jsonl`, or
/// `~/.local/state/midfleet/audit.jsonl`.
pub fn default_path() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|path| path.is_absolute())
        .unwrap_or_else(|| crate::endpoint::home_directory().join(".local/state"));
    base.join("midfleet/audit.jsonl")
}

/// Why a line could not be added to the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Making the folder, or opening or writing the file, at `path`.
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Serialize(serde_json::Error),
}

/// Appends `record` as one line (the folder is made 0700, the file 0600).
pub fn append<T: Serialize>(path: &Path, record: &T) -> Result<(), AuditError> {
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| AuditError::Io { path, source }
    };
    if let Some(directory) = path.parent() {
        if !directory.exists() {
            std::fs::create_dir_all(directory).map_err(failed(directory))?;
            let _ = std::fs::set_permissions(directory, std::fs::Permissions::from_mode(0o700));
        }
    }
    let mut line = serde_json::to_string(record).map_err(AuditError::Serialize)?;
    line.push('\n');
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(failed(path))?;
    file.write_all(line.as_bytes()).map_err(failed(path))
}
