//! The agent keystore, `agent/security/agent_keystore`, mode 0600: 32
//! random bytes (the key `encrypted:` values are sealed with), then
//! optional entries, each a line `alias=<name>` followed by its PEM blocks
//! (a certificate chain and a PKCS#8 private key, as
//! `manage-certificates.sh -a <alias> <pem>` adds them; or the IPKI
//! credential). A new key replaces the old whenever config.xml lacks
//! `keypairs.mid_id`, which is what makes old `encrypted:` values
//! unreadable; the entries are kept (a custom `DefaultSecurityKeyPairHandle`
//! is never regenerated).

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

/// Reads the keystore's key; a missing file or one shorter than a key is
/// an error.
pub fn load(path: &Path) -> io::Result<Key> {
    let bytes = Zeroizing::new(fs::read(path)?);
    let key: [u8; KEY_BYTES] = bytes
        .get(..KEY_BYTES)
        .and_then(|head| head.try_into().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} bytes, not a {KEY_BYTES}-byte key", bytes.len()),
            )
        })?;
    Ok(Key::from_bytes(key))
}

/// The entries after the key, as written (empty when none or no file).
fn entries_text(path: &Path) -> Zeroizing<String> {
    let bytes = Zeroizing::new(fs::read(path).unwrap_or_default());
    Zeroizing::new(
        bytes
            .get(KEY_BYTES..)
            .map(|rest| String::from_utf8_lossy(rest).into_owned())
            .unwrap_or_default(),
    )
}

/// The PEM text of entry `alias` (case-insensitive, as the real keystore's
/// aliases are), when the keystore holds one.
pub fn entry(path: &Path, alias: &str) -> Option<Zeroizing<String>> {
    let text = entries_text(path);
    let mut found: Option<String> = None;
    for line in text.split_inclusive('\n') {
        if let Some(name) = line.trim_end().strip_prefix("alias=") {
            if found.is_some() {
                break;
            }
            if name.eq_ignore_ascii_case(alias) {
                found = Some(String::new());
            }
        } else if let Some(pem) = found.as_mut() {
            pem.push_str(line);
        }
    }
    found.map(Zeroizing::new)
}

/// Adds or replaces entry `alias`, keeping the key and the other entries.
pub fn set_entry(path: &Path, alias: &str, pem: &str) -> io::Result<()> {
    let key = load(path)?;
    let text = entries_text(path);
    let mut kept = String::new();
    let mut skipping = false;
    for line in text.split_inclusive('\n') {
        if let Some(name) = line.trim_end().strip_prefix("alias=") {
            skipping = name.eq_ignore_ascii_case(alias);
        }
        if !skipping {
            kept.push_str(line);
        }
    }
    let mut pem = pem.to_string();
    if !pem.ends_with('\n') {
        pem.push('\n');
    }
    kept.push_str(&format!("alias={alias}\n{pem}"));
    write(path, &key, &kept)
}

/// Makes a new random key and replaces the keystore with it (atomically,
/// mode 0600), keeping its entries.
pub fn create(path: &Path) -> io::Result<Key> {
    let key = Key::from_bytes(random::bytes::<KEY_BYTES>()?);
    let entries = entries_text(path);
    write(path, &key, &entries)?;
    Ok(key)
}

fn write(path: &Path, key: &Key, entries: &str) -> io::Result<()> {
    let directory = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(directory)?;
    // tempfile creates the file 0600.
    let mut temporary = tempfile::Builder::new()
        .prefix(".agent_keystore.")
        .tempfile_in(directory)?;
    temporary.write_all(key.bytes())?;
    temporary.write_all(entries.as_bytes())?;
    temporary
        .as_file()
        .set_permissions(Permissions::from_mode(0o600))?;
    temporary.as_file().sync_all()?;
    temporary.persist(path).map_err(|error| error.error)?;
    Ok(())
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
    fn entries_survive_a_new_key_and_are_replaced_by_alias() {
        let directory = tempfile::tempdir().expect("temp dir");
        let path = path(directory.path());
        create(&path).expect("create");
        assert!(entry(&path, "DefaultSecurityKeyPairHandle").is_none());
        set_entry(&path, "defaultsecuritykeypairhandle", "CERT\nKEY\n").expect("set");
        set_entry(&path, "other", "O").expect("set other");
        let first = load(&path).expect("load");
        let second = create(&path).expect("new key");
        assert_ne!(first.bytes(), second.bytes());
        assert_eq!(
            entry(&path, "DefaultSecurityKeyPairHandle")
                .as_deref()
                .map(String::as_str),
            Some("CERT\nKEY\n")
        );
        set_entry(&path, "DEFAULTSECURITYKEYPAIRHANDLE", "NEW").expect("replace");
        assert_eq!(
            entry(&path, "defaultsecuritykeypairhandle")
                .as_deref()
                .map(String::as_str),
            Some("NEW\n")
        );
        assert_eq!(
            entry(&path, "other").as_deref().map(String::as_str),
            Some("O\n")
        );
        assert_eq!(load(&path).expect("load").bytes(), second.bytes());
    }

    #[test]
    fn a_keystore_of_the_wrong_size_does_not_load_when_short() {
        let directory = tempfile::tempdir().expect("temp dir");
        let path = directory.path().join("agent_keystore");
        fs::write(&path, [7u8; 31]).expect("write");
        assert_eq!(
            load(&path).err().map(|error| error.kind()),
            Some(io::ErrorKind::InvalidData)
        );
    }
}
