//! What an instance administrator does by hand, for tests: set a MID's
//! `ecc_agent` record fields (its `status` Upgrading, a `container_id`, …)
//! and add a MID Server configuration parameter (`ecc_agent_config`), as
//! `admin` through the Table API of an emulated instance
//! (`midfleet-instancesim`).
//!
//! Owns: those admin writes and the reads they need.
//!
//! Must not: put the admin password in a message, an argv or an
//! environment.

use std::path::Path;
use std::time::Duration;

use midfleet::instance::client::{Client, Credentials, Settings};
use midfleet::instance::table;
use midfleet::secret::SecretValue;
use serde_json::{Map, Value};

use crate::LabError;

/// The instance's `admin`, logged in.
pub struct InstanceAdmin {
    client: Client,
    credentials: Credentials,
}

impl InstanceAdmin {
    /// `admin` on the instance at `url` (`ca_file`: the CA of an HTTPS one).
    pub fn new(url: &str, ca_file: Option<&Path>, password: &str) -> Result<Self, LabError> {
        let mut settings = Settings::with_timeout(5);
        settings.attempts = 2;
        settings.first_backoff = Duration::from_millis(100);
        let client =
            Client::new(url, ca_file, settings).map_err(|error| LabError(error.to_string()))?;
        let credentials = Credentials::new("admin".into(), SecretValue::new(password.to_string()));
        Ok(InstanceAdmin {
            client,
            credentials,
        })
    }

    fn error(error: midfleet::instance::InstanceError) -> LabError {
        LabError(format!("the lab's instance: {error}"))
    }

    /// The sys_id of the `ecc_agent` record of the MID named `mid`.
    pub fn mid_sys_id(&self, mid: &str) -> Result<String, LabError> {
        let record = table::mid_record(&self.client, &self.credentials, mid)
            .map_err(Self::error)?
            .ok_or_else(|| {
                LabError(format!(
                    "the instance has no ecc_agent record named `{mid}`"
                ))
            })?;
        Ok(table::field(&record, "sys_id").to_string())
    }

    /// Sets `fields` of the `ecc_agent` record of the MID named `mid` (e.g.
    /// `status` = `Upgrading`, `container_id`, `is_using_custom_cert`,
    /// `version`), as an admin does in the MID Server form.
    pub fn set_mid_fields(&self, mid: &str, fields: &[(&str, &str)]) -> Result<(), LabError> {
        let sys_id = self.mid_sys_id(mid)?;
        let body: Map<String, Value> = fields
            .iter()
            .map(|(name, value)| ((*name).to_string(), Value::String((*value).to_string())))
            .collect();
        table::update(
            &self.client,
            &self.credentials,
            "ecc_agent",
            &sys_id,
            &Value::Object(body),
            false,
        )
        .map_err(Self::error)?;
        Ok(())
    }

    /// Sets the `status` of the MID named `mid`'s record.
    pub fn set_mid_status(&self, mid: &str, status: &str) -> Result<(), LabError> {
        self.set_mid_fields(mid, &[("status", status)])
    }

    /// Sets the `container_id` of the MID named `mid`'s record.
    pub fn set_mid_container_id(&self, mid: &str, container_id: &str) -> Result<(), LabError> {
        self.set_mid_fields(mid, &[("container_id", container_id)])
    }

    /// Adds a MID Server configuration parameter (`ecc_agent_config`) for
    /// the MID named `mid`: `param_name` = `value`. Returns the row's sys_id.
    pub fn add_mid_config(
        &self,
        mid: &str,
        param_name: &str,
        value: &str,
    ) -> Result<String, LabError> {
        let agent = self.mid_sys_id(mid)?;
        let body = serde_json::json!({
            "ecc_agent": agent,
            "param_name": param_name,
            "value": value,
        });
        let record = table::insert(
            &self.client,
            &self.credentials,
            "ecc_agent_config",
            &body,
            false,
        )
        .map_err(Self::error)?;
        Ok(table::field(&record, "sys_id").to_string())
    }

    /// The `ecc_agent_config` rows of the MID named `mid`, as
    /// `(param_name, value)`, in the order they were made.
    pub fn mid_config(&self, mid: &str) -> Result<Vec<(String, String)>, LabError> {
        let agent = self.mid_sys_id(mid)?;
        let records = table::query(
            &self.client,
            &self.credentials,
            "ecc_agent_config",
            &format!("ecc_agent={agent}"),
            &["param_name", "value"],
            1000,
        )
        .map_err(Self::error)?;
        Ok(records
            .iter()
            .map(|record| {
                (
                    table::field(record, "param_name").to_string(),
                    table::field(record, "value").to_string(),
                )
            })
            .collect())
    }
}
