//! The MID's configuration parameters on the instance (`ecc_agent_config`,
//! "MID Server Configuration Parameters"): read at each start, once the
//! MID has logged in and knows its `ecc_agent` record, as its own user
//! through the Table API. A row outranks config.xml for its parameter
//! (ServiceNow: "MID Configuration Parameter" comes first, and changes
//! "only take effect when the MID Server is started"): a
//! `mid.instance.username` row makes the MID log in as that user — with
//! config.xml's password, which the instance most likely refuses — and a
//! `mid.instance.password` row with that password. Other rows are logged
//! and change nothing the simulation uses.
//!
//! Owns: reading the rows, the log lines saying where a parameter comes
//! from, the credentials that result.
//!
//! Must not: log a password row's value; write config.xml (the instance
//! writes its parameters there only through the MID, which the lab does
//! not simulate).

use std::io;

use midfleet::config_xml::names;
use midfleet::instance::{table, Client, Credentials, Settings};
use midfleet::secret::SecretValue;
use zeroize::Zeroizing;

use super::instance::Registration;
use super::logs::{Logs, STARTUP};

/// One `ecc_agent_config` row of this MID.
pub struct Row {
    pub sys_id: String,
    pub name: String,
    pub value: Zeroizing<String>,
}

/// The rows of the MID's `ecc_agent` record (none when it has no record
/// yet: a first start), oldest first, read as the MID's user.
pub fn read(registration: &Registration) -> io::Result<Vec<Row>> {
    let client = Client::new(
        &registration.url,
        registration.ca_file.as_deref(),
        Settings::with_timeout(5),
    )
    .map_err(io::Error::other)?;
    let credentials = Credentials::new(
        registration.user.clone(),
        SecretValue::new(registration.password.to_string()),
    );
    let Some(record) =
        table::mid_record(&client, &credentials, &registration.name).map_err(io::Error::other)?
    else {
        return Ok(Vec::new());
    };
    let agent = table::field(&record, "sys_id");
    let rows = table::query(
        &client,
        &credentials,
        "ecc_agent_config",
        &format!("ecc_agent={agent}"),
        &["sys_id", "param_name", "value"],
        1000,
    )
    .map_err(io::Error::other)?;
    Ok(rows
        .iter()
        .map(|row| Row {
            sys_id: table::field(row, "sys_id").to_string(),
            name: table::field(row, "param_name").to_string(),
            value: Zeroizing::new(table::field(row, "value").to_string()),
        })
        .collect())
}

/// Whether a parameter's value is a secret (never logged).
fn is_secret(name: &str) -> bool {
    name == names::PASSWORD || name.contains("password")
}

/// The user and password the MID runs with once `rows` outrank config.xml
/// (`user`, `password`); logs one line per row. `None` when no row names
/// the credentials (the MID keeps the login it has).
pub fn credentials(
    rows: &[Row],
    user: &str,
    password: &Zeroizing<String>,
    logs: &Logs,
) -> Option<(String, Zeroizing<String>)> {
    let mut effective = (user.to_string(), password.clone());
    let mut changed = false;
    for row in rows {
        let shown = if is_secret(&row.name) {
            "********".to_string()
        } else {
            row.value.to_string()
        };
        logs.agent(
            STARTUP,
            &format!(
                "Parameter {} = {shown} comes from the instance's MID Server configuration parameters \
                 (ecc_agent_config {}), not from config.xml",
                row.name, row.sys_id
            ),
        );
        if row.name == names::USERNAME && row.value.as_str() != effective.0 {
            effective.0 = row.value.to_string();
            changed = true;
        } else if row.name == names::PASSWORD && row.value.as_str() != effective.1.as_str() {
            effective.1 = row.value.clone();
            changed = true;
        }
    }
    changed.then_some(effective)
}

/// Reads the rows of the MID behind `registration` and, when they change
/// its credentials, logs in again with `log_in` and keeps the new ones in
/// `registration`. A failed read is logged and leaves config.xml's.
pub fn apply<E>(
    registration: &mut Registration,
    logs: &Logs,
    log_in: impl FnOnce(&str, &str) -> Result<(), E>,
) -> Result<(), E> {
    let rows = match read(registration) {
        Ok(rows) => rows,
        Err(error) => {
            logs.agent(
                STARTUP,
                &format!("WARNING Unable to read the MID Server configuration parameters: {error}"),
            );
            return Ok(());
        }
    };
    if let Some((user, password)) =
        credentials(&rows, &registration.user, &registration.password, logs)
    {
        log_in(&user, &password)?;
        registration.user = user;
        registration.password = password;
    }
    Ok(())
}
