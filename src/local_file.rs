//! Reading and atomically replacing a config.xml on this machine, for
//! `midfleet edit`.
//!
//! Owns: the local write protocol — an exclusive 0600 temp file in the same
//! directory, the original owner, group and mode, fsync, a check that the
//! file did not change meanwhile, rename, fsync of the directory. Nothing is
//! ever half-written: until the rename, the original is untouched, and a
//! failure removes the temp file. Must not: print, or know what the bytes
//! mean.

use std::fs::{self, File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why a local file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {action}: {source}")]
pub struct LocalFileError {
    pub path: PathBuf,
    pub action: &'static str,
    #[source]
    pub source: io::Error,
}

impl LocalFileError {
    fn new(path: &Path, action: &'static str, source: io::Error) -> LocalFileError {
        LocalFileError {
            path: path.to_path_buf(),
            action,
            source,
        }
    }

    /// What the operator can do about it.
    pub fn hint(&self) -> Option<&'static str> {
        match self.source.kind() {
            io::ErrorKind::PermissionDenied => Some(
                "run midfleet as the file's owner or as root; the directory must be writable for the atomic replace",
            ),
            io::ErrorKind::NotFound => Some("check the path"),
            io::ErrorKind::StorageFull => {
                Some("the file system is full; the original file is untouched")
            }
            _ => None,
        }
    }
}

/// A file read for editing: its real path (symlinks resolved, so the link
/// stays a link) and its bytes.
pub struct LocalFile {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// Reads `path`, refusing anything but a regular file and anything larger
/// than `limit` bytes (without reading it all).
pub fn read(path: &Path, limit: usize) -> Result<LocalFile, LocalFileError> {
    let real =
        fs::canonicalize(path).map_err(|error| LocalFileError::new(path, "cannot open", error))?;
    let metadata =
        fs::metadata(&real).map_err(|error| LocalFileError::new(path, "cannot stat", error))?;
    if !metadata.is_file() {
        return Err(LocalFileError::new(
            path,
            "cannot edit",
            io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
        ));
    }
    if metadata.len() > limit as u64 {
        return Err(LocalFileError::new(
            path,
            "cannot edit",
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} bytes, more than the {limit} bytes accepted for a config.xml",
                    metadata.len()
                ),
            ),
        ));
    }
    let bytes = fs::read(&real).map_err(|error| LocalFileError::new(path, "cannot read", error))?;
    Ok(LocalFile { path: real, bytes })
}

/// Replaces `file.path` with `new_bytes`, atomically, keeping owner, group
/// and mode. Refuses when the file no longer holds `file.bytes`.
pub fn replace(file: &LocalFile, new_bytes: &[u8]) -> Result<(), LocalFileError> {
    let path = &file.path;
    let fail =
        |action: &'static str| move |error: io::Error| LocalFileError::new(path, action, error);
    let directory = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map_or_else(|| "config.xml".into(), |name| name.to_string_lossy());
    let metadata = fs::metadata(path).map_err(fail("cannot stat"))?;

    // tempfile opens with O_CREAT|O_EXCL and mode 0600.
    let mut temporary = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".midfleet-tmp")
        .tempfile_in(directory)
        .map_err(fail("cannot create a temporary file beside it"))?;
    temporary
        .write_all(new_bytes)
        .map_err(fail("cannot write the temporary file"))?;
    let temporary_metadata = temporary
        .as_file()
        .metadata()
        .map_err(fail("cannot stat the temporary file"))?;
    if (temporary_metadata.uid(), temporary_metadata.gid()) != (metadata.uid(), metadata.gid()) {
        std::os::unix::fs::fchown(
            temporary.as_file(),
            Some(metadata.uid()),
            Some(metadata.gid()),
        )
        .map_err(fail(
            "cannot give the new file the original owner and group",
        ))?;
    }
    temporary
        .as_file()
        .set_permissions(Permissions::from_mode(metadata.mode() & 0o7777))
        .map_err(fail("cannot give the new file the original mode"))?;
    temporary
        .as_file()
        .sync_all()
        .map_err(fail("cannot flush the temporary file"))?;

    let current = fs::read(path).map_err(fail("cannot re-read"))?;
    if current != file.bytes {
        return Err(LocalFileError::new(
            path,
            "not replaced",
            io::Error::other("the file changed while midfleet was editing it; run the edit again"),
        ));
    }
    temporary.persist(path).map_err(|error| {
        LocalFileError::new(
            path,
            "cannot rename the temporary file over it",
            error.error,
        )
    })?;
    File::open(directory)
        .and_then(|directory| directory.sync_all())
        .map_err(fail("cannot flush the directory"))?;
    Ok(())
}
