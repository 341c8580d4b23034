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
    /// The client, made at the first call and kept: the ECC queue is read
    /// every 0.5 s, and an HTTPS client loads the CA store when made.
    pub connection: std::sync::OnceLock<Connection>,
    /// How a MID without a password logs in (mutual TLS, IPKI).
    pub identity: Option<super::kinds::Identity>,
    /// What the MID's kind adds to its record (`container_id`, …).
    pub fields: serde_json::Value,
}

type Connection = (midfleet::instance::Client, midfleet::instance::Credentials);

impl Registration {
    fn connect(
        &self,
    ) -> io::Result<(
        &midfleet::instance::Client,
        &midfleet::instance::Credentials,
    )> {
        use midfleet::instance::{Client, Credentials, Settings};
        if self.connection.get().is_none() {
            let client = Client::new(
                &self.url,
                self.ca_file.as_deref(),
                Settings::with_timeout(5),
            )
            .map_err(io::Error::other)?;
            let credentials = Credentials::new(
                self.user.clone(),
                midfleet::secret::SecretValue::new(self.password.to_string()),
            );
            // Only this MID's one thread calls: the first set wins.
            let _ = self.connection.set((client, credentials));
        }
        let (client, credentials) = self.connection.get().expect("set above");
        Ok((client, credentials))
    }
}

/// What [`report`] did besides the status.
#[derive(Debug, PartialEq, Eq)]
pub enum Reported {
    Plain,
    /// The record said `validating` (the instance's Validate had asked
    /// for this restart): going Up completed the validation.
    Validated,
}

/// Creates or updates the MID's `ecc_agent` record with `status`, as the
/// MID's user (which needs the `mid_server` role). Going Up while the
/// record is `validating` sets it `validated` — what a MID does after the
/// restart the instance's Validate action queues.
pub fn report(registration: &Registration, status: &str) -> io::Result<Reported> {
    use midfleet::instance::table;
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    if let Some(identity) = &registration.identity {
        let mut body = registration.fields.clone();
        body["status"] = serde_json::json!(status);
        body["host_name"] = serde_json::json!(host_name.trim());
        return super::kinds::report(
            &registration.url,
            registration.ca_file.as_deref(),
            identity,
            &registration.name,
            &body,
        )
        .map(|()| Reported::Plain)
        .map_err(io::Error::other);
    }
    let (client, credentials) = registration.connect()?;
    let mut body = serde_json::json!({
        "name": registration.name,
        "status": status,
        "user_name": registration.user,
        "host_name": host_name.trim(),
    });
    if let (Some(body), Some(fields)) = (body.as_object_mut(), registration.fields.as_object()) {
        body.extend(fields.clone());
    }
    let found =
        table::mid_record(client, credentials, &registration.name).map_err(io::Error::other)?;
    let mut reported = Reported::Plain;
    match &found {
        Some(record) => {
            if status == "Up" && table::field(record, "validated") == "validating" {
                body["validated"] = serde_json::json!("true");
                reported = Reported::Validated;
            }
            table::update(
                client,
                credentials,
                "ecc_agent",
                table::field(record, "sys_id"),
                &body,
                false,
            )
        }
        None => table::insert(client, credentials, "ecc_agent", &body, false),
    }
    .map(|_| reported)
    .map_err(io::Error::other)
}

/// Whether `error` (from a call to the instance) is the instance refusing
/// the MID's login (401).
pub fn is_refusal(error: &io::Error) -> bool {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<midfleet::instance::InstanceError>())
        .is_some_and(|inner| {
            matches!(
                inner,
                midfleet::instance::InstanceError::Unauthorized { .. }
            )
        })
}

/// A `SystemCommand` the instance queued for this MID.
pub struct Command {
    pub sys_id: String,
    /// The command: `restartService`, `delete_mid_keypair`, …
    pub source: String,
    /// Its argument (`Invalidate` for `delete_mid_keypair`).
    pub name: String,
}

/// The commands queued for this MID and not picked up yet, oldest first.
pub fn commands(registration: &Registration) -> io::Result<Vec<Command>> {
    use midfleet::instance::table;
    // A MID with a certificate cannot be validated, re-keyed or sent
    // commands by the lab (docs: "cannot be re-keyed or validated as a UI
    // action on the instance").
    if registration.identity.is_some() {
        return Ok(Vec::new());
    }
    let (client, credentials) = registration.connect()?;
    let records = table::ready_system_commands(client, credentials, &registration.name, None)
        .map_err(io::Error::other)?;
    Ok(records
        .iter()
        .map(|record| Command {
            sys_id: table::field(record, "sys_id").to_string(),
            source: table::field(record, "source").to_string(),
            name: table::field(record, "name").to_string(),
        })
        .collect())
}

/// Marks `command` picked up (`processing`) or done (`processed`); once
/// done, also answers it with an input record (`response_to`), as a MID
/// answers every probe.
pub fn mark(registration: &Registration, command: &Command, state: &str) -> io::Result<()> {
    use midfleet::instance::table;
    let (client, credentials) = registration.connect()?;
    table::set_queue_state(client, credentials, &command.sys_id, state)
        .map_err(io::Error::other)?;
    if state == "processed" {
        let mut answer = serde_json::json!({
            "agent": table::mid_agent(&registration.name),
            "queue": "input",
            "state": "ready",
            "topic": table::SYSTEM_COMMAND,
            "source": command.source,
            "response_to": command.sys_id,
        });
        if !command.name.is_empty() {
            answer["name"] = serde_json::json!(command.name);
        }
        table::insert(client, credentials, "ecc_queue", &answer, false)
            .map_err(io::Error::other)?;
    }
    Ok(())
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
