//! Reading and atomically replacing a config.xml on this machine, for
//! `midfleet edit`.
//!
//! Owns: the local write protocol — an exclusive lock on the directory
//! (between midfleet runs), removing the temp files a killed run left, an
//! exclusive 0600 temp file in the same directory written and fsynced while
//! only its owner can read it, a check that the file did not change
//! meanwhile, then the original owner, group and mode, rename, fsync of the
//! file and the directory. Nothing is ever half-written: until the rename,
//! the original is untouched, and a failure removes the temp file. Must
//! not: print, or know what the bytes mean.

use std::ffi::{CString, OsStr};
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

/// What every temp file's name ends with: `.config.xml.XXXXXX.midfleet-tmp`.
const TEMPORARY_SUFFIX: &str = ".midfleet-tmp";
/// The random letters and digits between the file name and the suffix.
const TEMPORARY_RANDOM: usize = 6;
/// The test failpoint beside the file: see [`failpoint`].
pub const FAILPOINT_NAME: &str = ".midfleet-failpoint-edit-rename";
/// The longest pause a failpoint asks for, in seconds.
const FAILPOINT_MAX_SECONDS: u64 = 120;

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
/// stays a link) and its bytes, zeroised when dropped (they may hold a
/// plaintext password).
pub struct LocalFile {
    pub path: PathBuf,
    pub bytes: Zeroizing<Vec<u8>>,
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
    let bytes = read_regular(&real, limit)
        .map_err(|error| LocalFileError::new(path, "cannot read", error))?;
    if bytes.len() > limit {
        return Err(LocalFileError::new(
            path,
            "cannot edit",
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("more than the {limit} bytes accepted for a config.xml"),
            ),
        ));
    }
    Ok(LocalFile { path: real, bytes })
}

/// The bytes of the regular file at `path`, at most `limit` + 1 of them
/// (more than `limit`: the caller decides): opened without following a
/// final link and without waiting (a FIFO put in its place is refused at
/// once, never read), checked on the open file.
fn read_regular(path: &Path, limit: usize) -> io::Result<Zeroizing<Vec<u8>>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    // Sized once: a growing buffer would leave unwiped copies behind.
    let size = metadata.len().min(limit as u64) as usize + 1;
    let mut bytes = Zeroizing::new(Vec::with_capacity(size));
    file.take(limit as u64 + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The file's name, as its temp files start with it.
fn file_name(path: &Path) -> &OsStr {
    path.file_name().unwrap_or(OsStr::new("config.xml"))
}

/// Whether `name` is one of midfleet's temp files for `file_name`:
/// `.` + `file_name` + `.` + six ASCII letters or digits + `.midfleet-tmp`,
/// nothing more, nothing less.
pub fn is_temporary_name(file_name: &OsStr, name: &OsStr) -> bool {
    let name = name.as_bytes();
    let Some(rest) = name.strip_prefix(b".") else {
        return false;
    };
    let Some(rest) = rest.strip_prefix(file_name.as_bytes()) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix(b".") else {
        return false;
    };
    let Some(random) = rest.strip_suffix(TEMPORARY_SUFFIX.as_bytes()) else {
        return false;
    };
    random.len() == TEMPORARY_RANDOM && random.iter().all(u8::is_ascii_alphanumeric)
}

/// The directory of the file, opened without following a link and locked
/// exclusively (`flock`) for as long as it lives: two midfleet runs on one
/// directory take turns, so a temp file seen while holding it belongs to a
/// run that is gone.
struct LockedDirectory {
    handle: File,
    locked: bool,
}

impl LockedDirectory {
    fn open(directory: &Path) -> io::Result<LockedDirectory> {
        let handle = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(directory)?;
        let locked = loop {
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(handle.as_raw_fd(), libc::LOCK_EX) } == 0 {
                break true;
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                // A file system without flock (some NFS): no lock, and then
                // no sweep, since another run's temp file may be live.
                break false;
            }
        };
        Ok(LockedDirectory { handle, locked })
    }

    /// Unlinks each of midfleet's temp files for `file_name` in this
    /// directory — regular files and symlinks only, never opened, never
    /// followed — and returns their names.
    fn sweep(&self, directory: &Path, file_name: &OsStr) -> io::Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        if !self.locked {
            return Ok(removed);
        }
        for entry in fs::read_dir(directory)? {
            let entry = entry?;
            let name = entry.file_name();
            if !is_temporary_name(file_name, &name) {
                continue;
            }
            // The type of the entry itself (d_type or lstat), not of what a
            // link points to.
            let kind = entry.file_type()?;
            if !(kind.is_file() || kind.is_symlink()) {
                continue;
            }
            let name_c = CString::new(name.as_bytes())
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
            // unlinkat without AT_REMOVEDIR never removes a directory, and
            // is relative to the locked directory itself.
            // SAFETY: a valid descriptor and a NUL-terminated name.
            if unsafe { libc::unlinkat(self.handle.as_raw_fd(), name_c.as_ptr(), 0) } != 0 {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::NotFound {
                    return Err(error);
                }
                continue;
            }
            removed.push(directory.join(&name));
        }
        Ok(removed)
    }
}

/// Removes the temp files an earlier, killed `edit` of `file` left beside
/// it (they may hold a plaintext password). Returns their paths.
pub fn sweep(file: &LocalFile) -> Result<Vec<PathBuf>, LocalFileError> {
    let path = &file.path;
    let directory = path.parent().unwrap_or(Path::new("."));
    let locked = LockedDirectory::open(directory)
        .map_err(|error| LocalFileError::new(path, "cannot open its directory", error))?;
    locked
        .sweep(directory, file_name(path))
        .map_err(|error| LocalFileError::new(path, "cannot remove an old temporary file", error))
}

/// A test failpoint, as the transaction script has (`docs/reliability.md`):
/// when `FAILPOINT_NAME` exists beside the file as a regular file owned by
/// root and writable by no one else, the edit pauses for the seconds it
/// holds (at most 120) after the temp file is written and flushed, before
/// the rename. Only root can arm it, and only for one directory; the pause
/// changes nothing that is written. Returns the pause when armed.
pub fn failpoint(file: &LocalFile) -> Option<Duration> {
    let directory = file.path.parent()?;
    let failpoint = directory.join(FAILPOINT_NAME);
    let metadata = fs::symlink_metadata(&failpoint).ok()?;
    if !metadata.is_file() || metadata.uid() != 0 || metadata.mode() & 0o022 != 0 {
        return None;
    }
    let text = fs::read(&failpoint).ok()?;
    let digits: String = text
        .iter()
        .take(8)
        .filter(|byte| byte.is_ascii_digit())
        .map(|&byte| char::from(byte))
        .collect();
    let seconds = digits.parse::<u64>().unwrap_or(0);
    Some(Duration::from_secs(seconds.min(FAILPOINT_MAX_SECONDS)))
}

/// Replaces `file.path` with `new_bytes`, atomically, keeping owner, group
/// and mode. Refuses when the file no longer holds `file.bytes`. Returns
/// the temp files of killed earlier runs it removed first.
pub fn replace(file: &LocalFile, new_bytes: &[u8]) -> Result<Vec<PathBuf>, LocalFileError> {
    let path = &file.path;
    let fail =
        |action: &'static str| move |error: io::Error| LocalFileError::new(path, action, error);
    let directory = path.parent().unwrap_or(Path::new("."));
    let name = file_name(path);
    let locked = LockedDirectory::open(directory).map_err(fail("cannot open its directory"))?;
    let removed = locked
        .sweep(directory, name)
        .map_err(fail("cannot remove an old temporary file"))?;
    let metadata = fs::metadata(path).map_err(fail("cannot stat"))?;

    // Created exclusively, never through a link, readable by its owner
    // only: until the rename it is the new file, secret included.
    let mut temporary = tempfile::Builder::new()
        .prefix(&format!(".{}.", name.to_string_lossy()))
        .suffix(TEMPORARY_SUFFIX)
        .rand_bytes(TEMPORARY_RANDOM)
        .make_in(directory, |temporary_path| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(temporary_path)
        })
        .map_err(fail("cannot create a temporary file beside it"))?;
    temporary
        .write_all(new_bytes)
        .map_err(fail("cannot write the temporary file"))?;
    temporary
        .as_file()
        .sync_all()
        .map_err(fail("cannot flush the temporary file"))?;

    if let Some(pause) = failpoint(file) {
        std::thread::sleep(pause);
    }

    let current = read_regular(path, file.bytes.len()).map_err(fail("cannot re-read"))?;
    if *current != *file.bytes {
        return Err(LocalFileError::new(
            path,
            "not replaced",
            io::Error::other("the file changed while midfleet was editing it; run the edit again"),
        ));
    }
    // The original's owner and mode only now, just before the rename: a
    // run killed earlier leaves a 0600 file (removed by the next edit).
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
    let replaced = temporary.persist(path).map_err(|error| {
        LocalFileError::new(
            path,
            "cannot rename the temporary file over it",
            error.error,
        )
    })?;
    // The owner and mode given after the first flush, then the rename.
    replaced
        .sync_all()
        .map_err(fail("cannot flush the new file"))?;
    locked
        .handle
        .sync_all()
        .map_err(fail("cannot flush the directory"))?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_or_link_in_the_files_place_is_refused_without_waiting() {
        let directory = tempfile::tempdir().unwrap();
        let fifo = directory.path().join("config.xml");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let began = std::time::Instant::now();
        let error = read_regular(&fifo, 100).unwrap_err();
        assert_eq!(error.to_string(), "not a regular file");
        assert!(began.elapsed() < std::time::Duration::from_secs(5));
        let target = directory.path().join("target.xml");
        fs::write(&target, "<parameters/>").unwrap();
        let link = directory.path().join("link.xml");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(
            read_regular(&link, 100).is_err(),
            "a final link is never followed"
        );
        assert_eq!(&*read_regular(&target, 100).unwrap(), b"<parameters/>");
        // Past the limit: one byte more, for the caller to refuse.
        assert_eq!(read_regular(&target, 4).unwrap().len(), 5);
    }

    #[test]
    fn temporary_names_match_exactly() {
        let file = OsStr::new("config.xml");
        let cases = [
            (".config.xml.a1B2c3.midfleet-tmp", true),
            (".config.xml.000000.midfleet-tmp", true),
            (".config.xml.a1B2c.midfleet-tmp", false),
            (".config.xml.a1B2c3d.midfleet-tmp", false),
            (".config.xml.a1-2c3.midfleet-tmp", false),
            (".config.xml.a1B2c3.midfleet-tmp.bak", false),
            ("config.xml.a1B2c3.midfleet-tmp", false),
            (".other.xml.a1B2c3.midfleet-tmp", false),
            (".config.xml.a1B2c3.tmp", false),
            ("config.xml", false),
            (".config.xml..midfleet-tmp", false),
        ];
        for (name, expected) in cases {
            assert_eq!(
                is_temporary_name(file, OsStr::new(name)),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn replace_writes_a_0600_temp_then_the_original_mode_and_sweeps_only_its_own() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("config.xml");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o640)).unwrap();
        let elsewhere = directory.path().join("elsewhere");
        fs::write(&elsewhere, b"kept").unwrap();
        let stale_file = directory.path().join(".config.xml.Ab12Cd.midfleet-tmp");
        fs::write(&stale_file, b"secret").unwrap();
        let stale_link = directory.path().join(".config.xml.Ef34Gh.midfleet-tmp");
        std::os::unix::fs::symlink(&elsewhere, &stale_link).unwrap();
        let stale_directory = directory.path().join(".config.xml.Ij56Kl.midfleet-tmp");
        fs::create_dir(&stale_directory).unwrap();
        let other = directory
            .path()
            .join(".config.xml.Ab12Cd.midfleet-tmp.keep");
        fs::write(&other, b"not ours").unwrap();

        let file = read(&path, 1024).unwrap();
        let removed = replace(&file, b"new").unwrap();

        let mut removed_names: Vec<_> = removed
            .iter()
            .map(|path| path.file_name().unwrap().to_owned())
            .collect();
        removed_names.sort();
        assert_eq!(
            removed_names,
            [
                stale_file.file_name().unwrap(),
                stale_link.file_name().unwrap()
            ]
        );
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o640);
        assert_eq!(fs::read(&elsewhere).unwrap(), b"kept", "link not followed");
        assert!(stale_directory.is_dir(), "directories are never removed");
        assert!(other.exists(), "only exact names are removed");
        assert!(!stale_file.exists() && fs::symlink_metadata(&stale_link).is_err());
    }
}
