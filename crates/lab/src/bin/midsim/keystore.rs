//! The agent keystore, `agent/security/agent_keystore`: 32 random bytes,
//! mode 0600. A new one replaces the old whenever config.xml lacks
//! `keypairs.mid_id`, which is what makes old `encrypted:` values unreadable.

use std::fs::{self, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::random;

pub const KEY_BYTES: usize = 32;

/// The key `encrypted:` values are sealed with.
pub struct Key(Zeroizing<[u8; KEY_BYTES]>);

impl Key {
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Key {
        Key(Zeroizing::new(bytes))
    }

    pub fn bytes(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }
}

pub fn path(agent_dir: &Path) -> PathBuf {
    agent_dir.join("security").join("agent_keystore")
}

/// Reads the keystore; a missing file or one of the wrong size is an error.
pub fn load(path: &Path) -> io::Result<Key> {
    let bytes = Zeroizing::new(fs::read(path)?);
    let key: [u8; KEY_BYTES] = bytes.as_slice().try_into().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} bytes, not a {KEY_BYTES}-byte key", bytes.len()),
        )
    })?;
    Ok(Key::from_bytes(key))
}

/// Makes a new random key and replaces the keystore with it (atomically,
/// mode 0600).
pub fn create(path: &Path) -> io::Result<Key> {
    let key = Key::from_bytes(random::bytes::<KEY_BYTES>()?);
    let directory = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(directory)?;
    // tempfile creates the file 0600.
    let mut temporary = tempfile::Builder::new()
        .prefix(".agent_keystore.")
        .tempfile_in(directory)?;
    temporary.write_all(key.bytes())?;
    temporary
        .as_file()
        .set_permissions(Permissions::from_mode(0o600))?;
    temporary.as_file().sync_all()?;
    temporary.persist(path).map_err(|error| error.error)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_keystore_loads_back_and_replaces_the_old_one() {
        let directory = tempfile::tempdir().expect("temp dir");
        let path = path(directory.path());
        assert!(load(&path).is_err(), "no keystore yet");
        let first = create(&path).expect("create");
        assert_eq!(
            fs::metadata(&path).expect("stat").permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(load(&path).expect("load").bytes(), first.bytes());
        let second = create(&path).expect("create again");
        assert_ne!(first.bytes(), second.bytes());
        assert_eq!(load(&path).expect("load").bytes(), second.bytes());
    }

    #[test]
    fn a_keystore_of_the_wrong_size_does_not_load() {
        let directory = tempfile::tempdir().expect("temp dir");
        let path = directory.path().join("agent_keystore");
        fs::write(&path, [7u8; 31]).expect("write");
        assert_eq!(
            load(&path).err().map(|error| error.kind()),
            Some(io::ErrorKind::InvalidData)
        );
    }
}
