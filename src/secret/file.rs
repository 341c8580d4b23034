//! `file:` secrets: reading the file a reference names, with its checks.
//!
//! Owns: opening without blocking and without following a symbolic link
//! (unless the link and its target belong to root or this user), refusing
//! anything but a regular file of at most [`MAX_SECRET_BYTES`], keeping a
//! templated reference inside its [`FileScope`], and warning of a file
//! others can read or own. Must not: put the file's contents, or their
//! length, in a message; turn the bytes into a value (`mod.rs` does).

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use zeroize::Zeroizing;

use super::{FileScope, Refusal, MAX_SECRET_BYTES};

const FILE_HINT: &str = "point the reference at a regular file of at most 64 KiB";

/// Reads the secret file at `path`: opened without blocking and without
/// following a symbolic link (one is followed only when it and its target
/// belong to root or to this user), a regular file of at most
/// [`MAX_SECRET_BYTES`], inside `scope` when there is one. `warn` hears of
/// a file others can read or that belongs to another user.
pub(super) fn read_secret_file(
    path: &Path,
    scope: Option<&FileScope>,
    mut warn: impl FnMut(String, String),
) -> Result<Zeroizing<Vec<u8>>, Refusal> {
    let shown = path.display();
    let cannot =
        |error: std::io::Error| Refusal::new(format!("cannot read {shown}: {error}"), None);
    let open = |follow: bool| {
        let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
        if !follow {
            flags |= libc::O_NOFOLLOW;
        }
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(path)
    };
    let euid = current_euid();
    let trusted = |uid: u32| uid == 0 || uid == euid;
    let (file, through_link) = match open(false) {
        Ok(file) => (file, false),
        Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
            let link = std::fs::symlink_metadata(path).map_err(cannot)?;
            if !link.file_type().is_symlink() {
                return Err(cannot(error));
            }
            if !trusted(link.uid()) {
                return Err(Refusal::new(
                    format!(
                        "{shown} is a symbolic link owned by uid {}, neither root nor this user (uid {euid})",
                        link.uid()
                    ),
                    Some("a secret file reached through a link must have the link and its target owned by root or the user running midfleet; point the reference at the file itself"),
                ));
            }
            (open(true).map_err(cannot)?, true)
        }
        Err(error) => return Err(cannot(error)),
    };
    let metadata = file.metadata().map_err(cannot)?;
    let file_type = metadata.file_type();
    if !file_type.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let kind = if file_type.is_dir() {
            "a directory"
        } else if file_type.is_fifo() {
            "a FIFO"
        } else if file_type.is_char_device() || file_type.is_block_device() {
            "a device"
        } else if file_type.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(Refusal::new(
            format!("{shown} is {kind}, not a regular file"),
            Some(FILE_HINT),
        ));
    }
    if through_link && !trusted(metadata.uid()) {
        return Err(Refusal::new(
            format!(
                "{shown} is a symbolic link to a file owned by uid {}, neither root nor this user (uid {euid})",
                metadata.uid()
            ),
            Some("a secret file reached through a link must have the link and its target owned by root or the user running midfleet; point the reference at the file itself"),
        ));
    }
    if let Some(scope) = scope {
        check_scope(path, &file, scope)?;
    }
    let mode = metadata.mode() & 0o7777;
    if mode & 0o044 != 0 {
        warn(
            format!("{shown} is readable by group or others (mode {mode:04o})"),
            format!("chmod 600 {shown}"),
        );
    }
    if !trusted(metadata.uid()) {
        warn(
            format!(
                "{shown} is owned by uid {}, neither root nor this user (uid {euid})",
                metadata.uid()
            ),
            format!("make the user that runs midfleet (or root) own {shown}"),
        );
    }
    let mut buffer = Zeroizing::new(vec![0u8; MAX_SECRET_BYTES + 1]);
    let mut length = 0;
    let mut reader = &file;
    while length < buffer.len() {
        match reader.read(&mut buffer[length..]) {
            Ok(0) => break,
            Ok(read) => length += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(cannot(error)),
        }
    }
    if length > MAX_SECRET_BYTES {
        return Err(Refusal::new(
            format!("{shown} is larger than 64 KiB"),
            Some(FILE_HINT),
        ));
    }
    buffer.truncate(length);
    Ok(buffer)
}

/// Refuses an opened file whose real path (through every link) is not in
/// `scope`'s real folder.
fn check_scope(path: &Path, file: &File, scope: &FileScope) -> Result<(), Refusal> {
    let hint = Some("a file: reference rendered from host variables must stay in the folder its template starts with; fix the variable, or the link");
    let folder = std::fs::canonicalize(scope.folder()).map_err(|error| {
        Refusal::new(
            format!(
                "cannot resolve the folder {}: {error}",
                scope.folder().display()
            ),
            None,
        )
    })?;
    let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .or_else(|_| std::fs::canonicalize(path))
        .map_err(|error| {
            Refusal::new(format!("cannot resolve {}: {error}", path.display()), None)
        })?;
    if !real.starts_with(&folder) {
        return Err(Refusal::new(
            format!(
                "{} leaves {} (it is {})",
                path.display(),
                folder.display(),
                real.display()
            ),
            hint,
        ));
    }
    Ok(())
}

pub(super) fn current_euid() -> u32 {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}
