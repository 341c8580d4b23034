//! Replacing config.xml the way the MID does at start: atomically (a temp
//! file beside it, renamed over it), keeping owner, group and mode, and a
//! symlink stays a link. Unlike `midfleet edit`, it does not check that the
//! file is unchanged since it was read: a real MID overwrites whatever is
//! there, which is why operators must stop it before editing.

use std::fs::{self, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let path = fs::canonicalize(path)?;
    let metadata = fs::metadata(&path)?;
    let directory = path.parent().unwrap_or(Path::new("."));
    let mut temporary = tempfile::Builder::new()
        .prefix(".config.xml.")
        .suffix(".midsim-tmp")
        .tempfile_in(directory)?;
    temporary.write_all(bytes)?;
    let file = temporary.as_file();
    let created = file.metadata()?;
    if (created.uid(), created.gid()) != (metadata.uid(), metadata.gid()) {
        std::os::unix::fs::fchown(file, Some(metadata.uid()), Some(metadata.gid()))?;
    }
    file.set_permissions(Permissions::from_mode(metadata.mode() & 0o7777))?;
    file.sync_all()?;
    temporary.persist(&path).map_err(|error| error.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_mode_and_the_link() {
        let directory = tempfile::tempdir().expect("temp dir");
        let target = directory.path().join("real.xml");
        let link = directory.path().join("config.xml");
        fs::write(&target, "old").expect("write");
        fs::set_permissions(&target, Permissions::from_mode(0o640)).expect("chmod");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        replace(&link, b"new").expect("replace");
        assert!(fs::symlink_metadata(&link)
            .expect("lstat")
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&target).expect("read"), b"new");
        assert_eq!(
            fs::metadata(&target).expect("stat").permissions().mode() & 0o7777,
            0o640
        );
        assert_eq!(
            fs::read_dir(directory.path()).expect("list").count(),
            2,
            "no temp left"
        );
    }
}
