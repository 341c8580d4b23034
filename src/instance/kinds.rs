//! What the instance says of each MID's kind: its `ecc_agent` record
//! (`status`, `container_id`, `is_using_custom_cert`, `version`) and its
//! `ecc_agent_config` rows (MID Server configuration parameters), read for
//! all the MIDs of a plan or a `facts` run in a few requests
//! (`docs/instance.md`, "Kinds of MID").
//!
//! Owns: the two queries and copying their records into the plan's plain
//! [`MidRecord`]. Must not: decide anything (the plan's `kind` does), or
//! print.

use std::collections::BTreeMap;

use super::table::{self, field, Record};
use super::{Client, Credentials, InstanceError};
use crate::plan::kind::{ConfigRow, MidRecord};

/// The `ecc_agent` fields read.
pub const MID_FIELDS: [&str; 7] = [
    "sys_id",
    "name",
    "status",
    "container_id",
    "is_using_custom_cert",
    "version",
    "user_name",
];
/// The `ecc_agent_config` fields read.
pub const CONFIG_FIELDS: [&str; 4] = ["sys_id", "ecc_agent", "param_name", "value"];
/// Names (or sys_ids) per `IN` query, which keeps each URL short.
const PER_QUERY: usize = 50;
/// Rows read per MID at most (a MID has a few dozen parameters).
const ROWS_PER_MID: usize = 500;

/// The record and rows of each MID named in `names` (their `name`
/// parameter) that the instance has, by name as given. A name the
/// instance cannot be asked about (`^`, `=`) is left out, as is one it has
/// no record of.
pub fn mid_records(
    client: &Client,
    credentials: &Credentials,
    names: &[String],
) -> Result<BTreeMap<String, MidRecord>, InstanceError> {
    let mut wanted: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|name| table::check_mid_name(name).is_ok())
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found: Vec<Record> = Vec::new();
    // A name holding a comma cannot be in an IN list: asked alone.
    let (alone, listed): (Vec<&str>, Vec<&str>) =
        wanted.iter().partition(|name| name.contains(','));
    for name in alone {
        found.extend(table::query(
            client,
            credentials,
            "ecc_agent",
            &format!("name={name}"),
            &MID_FIELDS,
            10,
        )?);
    }
    for chunk in listed.chunks(PER_QUERY) {
        found.extend(table::query(
            client,
            credentials,
            "ecc_agent",
            &format!("nameIN{}", chunk.join(",")),
            &MID_FIELDS,
            chunk.len() * 4,
        )?);
    }
    let mut records: BTreeMap<String, MidRecord> = BTreeMap::new();
    for name in &wanted {
        // The instance compares names ignoring case; an exact match first.
        let record = found
            .iter()
            .find(|record| field(record, "name") == *name)
            .or_else(|| {
                found
                    .iter()
                    .find(|record| field(record, "name").eq_ignore_ascii_case(name))
            });
        if let Some(record) = record {
            records.insert(name.to_string(), mid_record(record));
        }
    }
    let ids: Vec<String> = records
        .values()
        .map(|record| record.sys_id.clone())
        // (A sys_id is 32 hex digits; anything that could end an IN
        // list or a condition is left out.)
        .filter(|id| {
            !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .collect();
    for chunk in ids.chunks(PER_QUERY) {
        let rows = table::query(
            client,
            credentials,
            "ecc_agent_config",
            &format!("ecc_agentIN{}", chunk.join(",")),
            &CONFIG_FIELDS,
            chunk.len() * ROWS_PER_MID,
        )?;
        for row in &rows {
            let agent = field(row, "ecc_agent");
            for record in records.values_mut().filter(|record| record.sys_id == agent) {
                record.config.push(ConfigRow {
                    sys_id: field(row, "sys_id").to_string(),
                    param_name: field(row, "param_name").to_string(),
                    value: field(row, "value").to_string(),
                });
            }
        }
    }
    Ok(records)
}

/// An `ecc_agent` record as plain data.
fn mid_record(record: &Record) -> MidRecord {
    MidRecord {
        sys_id: field(record, "sys_id").to_string(),
        name: field(record, "name").to_string(),
        status: field(record, "status").to_string(),
        container_id: field(record, "container_id").to_string(),
        is_using_custom_cert: field(record, "is_using_custom_cert") == "true",
        version: field(record, "version").to_string(),
        user_name: field(record, "user_name").to_string(),
        config: Vec::new(),
    }
}
