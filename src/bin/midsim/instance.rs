//! The lab's stand-in for the instance's login check: a credential store
//! file with one `user:<sha256 hex of "user:password">` line per user that
//! can log in. Read at every attempt, so the lab can change a password
//! "on the instance" while MIDs keep retrying. Or, with the `instance_url`
//! knob, an emulated instance (`midfleet-instancesim`) over HTTP.

use std::fs;
use std::io;
use std::path::Path;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Whether the instance accepts `user` with `password`. Without a store
/// every login succeeds.
pub fn accepts(store: Option<&Path>, user: &str, password: &str) -> io::Result<bool> {
    let Some(store) = store else {
        return Ok(true);
    };
    let text = fs::read_to_string(store)?;
    let expected = credential_line(user, password);
    // ServiceNow user names are case-insensitive, and so is hex.
    Ok(text
        .lines()
        .any(|line| line.trim().eq_ignore_ascii_case(&expected)))
}

/// Whether the emulated instance at `url` accepts `user` with `password`:
/// the same login check midfleet's preflight makes (a GET of the user's
/// own `sys_user` record), as a MID's first call would be.
pub fn accepts_url(
    url: &str,
    ca_file: Option<&Path>,
    user: &str,
    password: &str,
) -> io::Result<bool> {
    use midfleet::instance::{table, Client, InstanceError, Settings};
    let client = Client::new(url, ca_file, Settings::with_timeout(5)).map_err(io::Error::other)?;
    let password = midfleet::secret::SecretValue::new(password.to_string());
    match table::login_check(&client, user, &password) {
        Ok(()) => Ok(true),
        Err(InstanceError::Unauthorized { .. }) => Ok(false),
        Err(error) => Err(io::Error::other(error.to_string())),
    }
}

/// A MID's record on the emulated instance: what it reports as it goes
/// Up and Down.
pub struct Registration {
    pub url: String,
    pub ca_file: Option<std::path::PathBuf>,
    pub user: String,
    pub password: Zeroizing<String>,
    /// The MID's `name` parameter.
    pub name: String,
}

/// Creates or updates the MID's `ecc_agent` record with `status`, as the
/// MID's user (which needs the `mid_server` role).
pub fn report(registration: &Registration, status: &str) -> io::Result<()> {
    use midfleet::instance::{table, Client, Credentials, Settings};
    let client = Client::new(
        &registration.url,
        registration.ca_file.as_deref(),
        Settings::with_timeout(5),
    )
    .map_err(io::Error::other)?;
    let credentials = Credentials {
        user: registration.user.clone(),
        password: midfleet::secret::SecretValue::new(registration.password.to_string()),
    };
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let body = serde_json::json!({
        "name": registration.name,
        "status": status,
        "user_name": registration.user,
        "host_name": host_name.trim(),
    });
    let found = table::query(
        &client,
        &credentials,
        "ecc_agent",
        &format!("name={}", registration.name),
        &["sys_id"],
        1,
    )
    .map_err(io::Error::other)?;
    match found.first() {
        Some(record) => table::update(
            &client,
            &credentials,
            "ecc_agent",
            table::field(record, "sys_id"),
            &body,
            false,
        ),
        None => table::insert(&client, &credentials, "ecc_agent", &body, false),
    }
    .map(|_| ())
    .map_err(io::Error::other)
}

/// The store line that lets `user` log in with `password`.
pub fn credential_line(user: &str, password: &str) -> String {
    let pair = Zeroizing::new(format!("{user}:{password}"));
    let digest = Sha256::digest(pair.as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{user}:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_the_sha256_of_user_colon_password() {
        // printf 'svc:pw' | sha256sum
        assert_eq!(
            credential_line("svc", "pw"),
            "svc:38f6cc269128f40a89a6de779dfbd6cf807c1508fb46a4b43136be1e49037651"
        );
    }

    #[test]
    fn only_listed_credentials_log_in() {
        let directory = tempfile::tempdir().expect("temp dir");
        let store = directory.path().join("instance");
        assert!(accepts(None, "anyone", "anything").expect("no store"));
        assert!(accepts(Some(&store), "svc", "pw").is_err(), "missing store");
        fs::write(
            &store,
            format!("other:00\n{}\n", credential_line("svc", "pw")),
        )
        .expect("write");
        assert!(accepts(Some(&store), "svc", "pw").expect("read"));
        assert!(!accepts(Some(&store), "svc", "pw2").expect("read"));
        assert!(!accepts(Some(&store), "other", "pw").expect("read"));
    }
}
