//! The instance's records and the Table API subset over them.

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::http::Request;

/// The tables served.
pub const TABLES: [&str; 7] = [
    "sys_user",
    "sys_user_role",
    "sys_user_has_role",
    "ecc_agent",
    "ecc_agent_config",
    "ecc_queue",
    "sys_user_certificate",
];

/// The `version` of an `ecc_agent` record that does not report one: the
/// shape a real MID's build stamp has (release, patch, build date).
pub const DEFAULT_MID_VERSION: &str = "australia-07-01-2026__patch0-06-18-2026_07-01-2026_1200";

/// The values an `ecc_agent` record starts with, where a new record (or
/// one loaded from a state file) has none: not validated, no container,
/// the instance's own certificate, the default build.
const ECC_AGENT_DEFAULTS: [(&str, &str); 4] = [
    ("validated", "false"),
    ("container_id", ""),
    ("is_using_custom_cert", "false"),
    ("version", DEFAULT_MID_VERSION),
];
/// The columns of each table that the emulator keeps. A real instance
/// ignores a field its table does not have, without an error: so does the
/// emulator, and a misspelt field is then missing when read back.
fn columns(table: &str) -> &'static [&'static str] {
    match table {
        "sys_user" => &[
            "sys_id",
            "user_name",
            "user_password",
            "first_name",
            "last_name",
            "email",
            "active",
            "locked_out",
            "password_needs_reset",
            "web_service_access_only",
            "internal_integration_user",
        ],
        "sys_user_role" => &["sys_id", "name", "description"],
        "sys_user_has_role" => &["sys_id", "user", "role", "state", "inherited"],
        "ecc_agent" => &[
            "sys_id",
            "name",
            "status",
            "validated",
            "user_name",
            "host_name",
            "ip_address",
            "version",
            "last_refreshed",
            "container_id",
            "is_using_custom_cert",
        ],
        // MID Server Configuration Parameters: `ecc_agent` is the sys_id
        // of the MID's `ecc_agent` record.
        "ecc_agent_config" => &["sys_id", "ecc_agent", "param_name", "value"],
        // A mutual-TLS MID's certificate (identity.rs): the PEM, the
        // sys_id of the user it logs in as, the MID's name.
        "sys_user_certificate" => &[
            "sys_id",
            "user",
            "name",
            "certificate",
            "user_role",
            "active",
        ],
        "ecc_queue" => &[
            "sys_id",
            "agent",
            "topic",
            "name",
            "source",
            "queue",
            "state",
            "priority",
            "payload",
            "response_to",
            "error_string",
            "sys_created_on",
        ],
        _ => &[],
    }
}

/// Stored in place of a `user_password` written without
/// `sysparm_input_display_value=true`: the instance would take the value as
/// already hashed, so no password logs in with it.
const HASHED_PREFIX: &str = "(stored as a hash) ";

pub type Record = Map<String, Value>;

/// Everything the instance holds; the `--state` file's shape.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub tables: BTreeMap<String, Vec<Record>>,
    #[serde(default)]
    pub next_id: u64,
    /// Every change of an `ecc_agent` record's `status`, oldest first —
    /// what the instance's MID Server list shows over time, kept so a test
    /// can tell how long each MID was Down. Only in the `--state` file: no
    /// Table API call reads it.
    #[serde(default)]
    pub ecc_agent_history: Vec<StatusChange>,
    /// Tables whose writes every user is refused (`--read-only TABLE`): an
    /// instance whose ACLs answer otherwise than midfleet expects.
    #[serde(skip)]
    pub read_only: Vec<String>,
    /// Tables that only `admin` may read (`--deny-read TABLE`): others get
    /// 403, as from an instance whose read ACL does not cover them.
    #[serde(skip)]
    pub deny_read: Vec<String>,
    /// IPKI registration keys and credentials (identity.rs).
    #[serde(default)]
    pub ipki: Ipki,
}

/// The IPKI records (in the `--state` file; no Table API reads them).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Ipki {
    #[serde(default)]
    pub keys: Vec<RegistrationKey>,
    #[serde(default)]
    pub credentials: Vec<Credential>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RegistrationKey {
    pub sha256: String,
    pub user: String,
    pub expires: u64,
    pub used: bool,
    pub failed_attempts: u32,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Credential {
    pub sha256: String,
    pub user: String,
    /// The MID's name.
    pub name: String,
    pub expires: u64,
}

/// One change of a MID's `ecc_agent` status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    /// The record's `name` (the MID's).
    pub name: String,
    pub status: String,
    /// The record's `user_name` after the change.
    pub user_name: String,
    /// Milliseconds since the epoch.
    pub at_ms: u64,
    /// `reported` (the MID wrote it) or why the instance set it (its
    /// user's password was reset, the user locked out or deactivated).
    pub cause: String,
}

/// What one request gets back.
pub struct Answer {
    pub status: u16,
    pub body: Value,
    /// Whether the state changed (to be saved).
    pub changed: bool,
    /// The user who logged in, for the request log.
    pub user: Option<String>,
}

impl Answer {
    /// A success that changed the state.
    pub fn ok(status: u16, body: Value) -> Answer {
        Answer {
            status,
            body,
            changed: true,
            user: None,
        }
    }

    /// 401: no login the instance accepts.
    pub fn unauthenticated() -> Answer {
        Answer::error(
            401,
            "User Not Authenticated",
            "Required to provide Auth information",
        )
    }

    pub fn error(status: u16, message: &str, detail: &str) -> Answer {
        Answer {
            status,
            body: json!({ "error": { "message": message, "detail": detail }, "status": "failure" }),
            changed: false,
            user: None,
        }
    }
}

impl State {
    /// Adds what a fresh instance has, unless the state already holds it:
    /// the roles `admin`, `mid_server`, `security_admin`, and the
    /// integration user `admin` holding `admin`.
    pub fn seed(&mut self, admin_password: &str) {
        for table in TABLES {
            self.tables.entry(table.to_string()).or_default();
        }
        // Records loaded without a sys_id get one.
        for table in TABLES {
            let count = self.tables[table].len();
            for index in 0..count {
                if self.tables[table][index].get("sys_id").is_none() {
                    let id = self.new_id();
                    self.tables.get_mut(table).expect("seeded")[index]
                        .insert("sys_id".into(), Value::String(id));
                }
            }
        }
        for record in self.tables.get_mut("ecc_agent").expect("seeded") {
            for (field, default) in ECC_AGENT_DEFAULTS {
                record.entry(field).or_insert(Value::String(default.into()));
            }
        }
        for role in ["admin", "mid_server", "security_admin"] {
            if self.find("sys_user_role", "name", role).is_none() {
                let id = self.new_id();
                self.push("sys_user_role", json!({ "sys_id": id, "name": role }));
            }
        }
        if self.find("sys_user", "user_name", "admin").is_none() {
            let id = self.new_id();
            self.push(
                "sys_user",
                json!({
                    "sys_id": id, "user_name": "admin", "user_password": admin_password,
                    "active": "true", "locked_out": "false",
                    "web_service_access_only": "false", "internal_integration_user": "true",
                }),
            );
            let role = self.find("sys_user_role", "name", "admin").expect("seeded");
            let grant = self.new_id();
            self.push(
                "sys_user_has_role",
                json!({ "sys_id": grant, "user": id, "role": role }),
            );
        }
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("{:032x}", self.next_id)
    }

    fn push(&mut self, table: &str, record: Value) {
        if let Value::Object(record) = record {
            self.tables.entry(table.into()).or_default().push(record);
        }
    }

    /// The sys_id of the first `table` record whose `field` is `value`.
    fn find(&self, table: &str, field: &str, value: &str) -> Option<String> {
        self.tables.get(table)?.iter().find_map(|record| {
            (text(record, field) == value).then(|| text(record, "sys_id").to_string())
        })
    }

    pub fn roles_of(&self, user_sys_id: &str) -> Vec<String> {
        let grants = &self.tables["sys_user_has_role"];
        grants
            .iter()
            .filter(|grant| text(grant, "user") == user_sys_id)
            .filter_map(|grant| {
                self.tables["sys_user_role"]
                    .iter()
                    .find(|role| text(role, "sys_id") == text(grant, "role"))
                    .map(|role| text(role, "name").to_string())
            })
            .collect()
    }

    /// The sys_id of the user the `Authorization` header logs in.
    pub fn authenticate(&self, authorization: Option<&str>) -> Option<String> {
        let encoded = authorization?.strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, password) = decoded.split_once(':')?;
        self.tables["sys_user"].iter().find_map(|record| {
            let accepted = text(record, "user_name").eq_ignore_ascii_case(user)
                && text(record, "active") == "true"
                && text(record, "locked_out") != "true"
                && text(record, "user_password") == password;
            accepted.then(|| text(record, "sys_id").to_string())
        })
    }

    /// Serves one Table API request of a user logging in with a password
    /// (the server calls `identity::handle`, which also serves the other
    /// logins, and IPKI): for the tables' own tests.
    #[cfg(test)]
    pub fn handle(&mut self, request: &Request) -> Answer {
        match self.authenticate(request.authorization.as_deref()) {
            Some(user) => self.serve_as(request, &user),
            None => Answer::unauthenticated(),
        }
    }

    /// Serves one Table API request as the user whose sys_id is `user`.
    pub fn serve_as(&mut self, request: &Request, user: &str) -> Answer {
        let user_name = self.tables["sys_user"]
            .iter()
            .find(|record| text(record, "sys_id") == user)
            .map(|record| text(record, "user_name").to_string());
        let mut answer = self.route(request, user);
        answer.user = user_name;
        answer
    }

    fn route(&mut self, request: &Request, user: &str) -> Answer {
        let Some(rest) = request.path.strip_prefix("/api/now/table/") else {
            return Answer::error(
                400,
                "Requested URI does not represent any resource",
                &request.path,
            );
        };
        let (table, sys_id) = match rest.split_once('/') {
            Some((table, sys_id)) => (table, Some(sys_id)),
            None => (rest, None),
        };
        if !TABLES.contains(&table) {
            return Answer::error(400, "Invalid table", table);
        }
        let roles = self.roles_of(user);
        let admin = roles.iter().any(|role| role == "admin");
        let mid = roles.iter().any(|role| role == "mid_server");
        // A MID (mid_server) reads and writes its own ecc_agent record,
        // and its ecc_queue records.
        let trusted = admin || (matches!(table, "ecc_agent" | "ecc_queue") && mid);
        // It reads its configuration parameters at start; only an admin
        // writes them.
        let reads = trusted || (table == "ecc_agent_config" && mid);
        if matches!(request.method.as_str(), "POST" | "PATCH")
            && self.read_only.iter().any(|name| name == table)
        {
            return Answer::error(
                403,
                "Operation Failed",
                &format!("ACL restricts writing {table} (fault knob --read-only)"),
            );
        }
        if request.method == "GET" && !admin && self.deny_read.iter().any(|name| name == table) {
            return Answer::error(
                403,
                "Operation Failed",
                &format!("ACL restricts reading {table} (fault knob --deny-read)"),
            );
        }
        let display_values = request.query_value("sysparm_input_display_value") == Some("true");
        match (request.method.as_str(), sys_id) {
            ("GET", None) => self.get(request, table, user, reads),
            ("POST", None) | ("PATCH", Some(_)) if !trusted => {
                Answer::error(403, "Operation Failed", "the user may not write this table")
            }
            ("POST", None) => match body_record(request) {
                Ok(record) => self.insert(table, record, display_values),
                Err(answer) => answer,
            },
            ("PATCH", Some(sys_id)) => match body_record(request) {
                Ok(record) => self.update(table, sys_id, record, display_values),
                Err(answer) => answer,
            },
            _ => Answer::error(405, "Method not supported", &request.method),
        }
    }

    fn get(&self, request: &Request, table: &str, user: &str, admin: bool) -> Answer {
        let (conditions, order) =
            match parse_query(request.query_value("sysparm_query").unwrap_or("")) {
                Ok(query) => query,
                Err(detail) => return Answer::error(400, "Invalid query", &detail),
            };
        let limit = match request
            .query_value("sysparm_limit")
            .map(str::parse::<usize>)
        {
            None => usize::MAX,
            Some(Ok(limit)) => limit,
            Some(Err(_)) => return Answer::error(400, "Invalid sysparm_limit", ""),
        };
        let fields: Option<Vec<&str>> = request
            .query_value("sysparm_fields")
            .filter(|fields| !fields.is_empty())
            .map(|fields| fields.split(',').map(str::trim).collect());
        let mut found: Vec<&Record> = self.tables[table]
            .iter()
            // ACLs: other users see only their own sys_user record.
            .filter(|record| admin || (table == "sys_user" && text(record, "sys_id") == user))
            .filter(|record| {
                conditions
                    .iter()
                    .all(|(field, values)| values.iter().any(|value| text(record, field) == value))
            })
            .collect();
        // A stable sort: ties keep the order the records were made in.
        if let Some(order) = &order {
            found.sort_by(|one, other| {
                let ordering = text(one, &order.field).cmp(text(other, &order.field));
                if order.descending {
                    ordering.reverse()
                } else {
                    ordering
                }
            });
        }
        let result: Vec<Value> = found
            .into_iter()
            .take(limit)
            .map(|record| {
                let shown: Record = record
                    .iter()
                    .filter(|(name, _)| *name != "user_password")
                    .filter(|(name, _)| {
                        fields
                            .as_ref()
                            .is_none_or(|fields| fields.contains(&name.as_str()))
                    })
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect();
                Value::Object(shown)
            })
            .collect();
        Answer {
            status: 200,
            body: json!({ "result": result }),
            changed: false,
            user: None,
        }
    }

    fn insert(&mut self, table: &str, mut record: Record, display_values: bool) -> Answer {
        record.retain(|name, _| columns(table).contains(&name.as_str()));
        if let Some(refusal) = self.business_rules(table, &record) {
            return refusal;
        }
        store_password(&mut record, display_values);
        let id = self.new_id();
        record.insert("sys_id".into(), Value::String(id));
        let defaults: &[(&str, &str)] = match table {
            "sys_user" => &[("active", "true"), ("locked_out", "false")],
            // A MID's record is not validated until someone validates it.
            "ecc_agent" => &ECC_AGENT_DEFAULTS,
            "ecc_queue" => &[("state", "ready"), ("queue", "input")],
            _ => &[],
        };
        for (field, default) in defaults {
            record
                .entry(*field)
                .or_insert(Value::String((*default).into()));
        }
        if table == "ecc_queue" {
            record.insert("sys_created_on".into(), Value::String(created_on()));
        }
        if table == "ecc_agent" && !text(&record, "status").is_empty() {
            self.note_status(&record, "reported");
        }
        self.tables
            .get_mut(table)
            .expect("known table")
            .push(record.clone());
        record.remove("user_password");
        Answer {
            status: 201,
            body: json!({ "result": record }),
            changed: true,
            user: None,
        }
    }

    fn update(
        &mut self,
        table: &str,
        sys_id: &str,
        mut fields: Record,
        display_values: bool,
    ) -> Answer {
        fields.retain(|name, _| columns(table).contains(&name.as_str()));
        store_password(&mut fields, display_values);
        let Some(record) = self
            .tables
            .get_mut(table)
            .expect("known table")
            .iter_mut()
            .find(|record| text(record, "sys_id") == sys_id)
        else {
            return Answer::error(
                404,
                "No Record found",
                "Record doesn't exist or ACL restricts the record retrieval",
            );
        };
        fields.remove("sys_id");
        let status_before = text(record, "status").to_string();
        record.extend(fields.clone());
        let mut shown = record.clone();
        shown.remove("user_password");
        if table == "ecc_agent" && text(&shown, "status") != status_before {
            self.note_status(&shown, "reported");
        }
        if table == "sys_user" {
            let cause = if fields.contains_key("user_password") {
                Some("password reset")
            } else if text(&fields, "locked_out") == "true" {
                Some("user locked out")
            } else if text(&fields, "active") == "false" {
                Some("user deactivated")
            } else {
                None
            };
            if let Some(cause) = cause {
                self.take_down(text(&shown, "user_name"), cause);
            }
        }
        Answer {
            status: 200,
            body: json!({ "result": shown }),
            changed: true,
            user: None,
        }
    }

    fn note_status(&mut self, record: &Record, cause: &str) {
        self.ecc_agent_history.push(StatusChange {
            name: text(record, "name").to_string(),
            status: text(record, "status").to_string(),
            user_name: text(record, "user_name").to_string(),
            at_ms: now_ms(),
            cause: cause.to_string(),
        });
    }

    /// A MID whose user's password changes, or whose user is locked out or
    /// deactivated, is refused at its next call and goes Down at once
    /// (KB0746702: "Changing the password in the instance causes the MID
    /// Server to go down immediately"): every Up record logged in as
    /// `user_name` is set Down.
    fn take_down(&mut self, user_name: &str, cause: &str) {
        let mut changed = Vec::new();
        for record in self.tables.get_mut("ecc_agent").expect("seeded") {
            if text(record, "status") == "Up"
                && text(record, "user_name").eq_ignore_ascii_case(user_name)
            {
                record.insert("status".into(), Value::String("Down".into()));
                changed.push(record.clone());
            }
        }
        for record in changed {
            self.note_status(&record, cause);
        }
    }

    /// The instance's business rule: `mid_server` and `security_admin`
    /// cannot share a user.
    fn business_rules(&self, table: &str, record: &Record) -> Option<Answer> {
        if table != "sys_user_has_role" {
            return None;
        }
        let role = self.tables["sys_user_role"]
            .iter()
            .find(|role| text(role, "sys_id") == text(record, "role"))
            .map(|role| text(role, "name").to_string())?;
        let mut roles = self.roles_of(text(record, "user"));
        roles.push(role);
        let both = ["mid_server", "security_admin"]
            .iter()
            .all(|needed| roles.iter().any(|role| role == needed));
        both.then(|| {
            Answer::error(
                403,
                "Operation Failed",
                "Error during insert of sys_user_has_role: the mid_server and security_admin roles cannot be granted to the same user",
            )
        })
    }
}

fn text<'a>(record: &'a Record, field: &str) -> &'a str {
    record
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Without display values, a password is taken as an already hashed value.
fn store_password(record: &mut Record, display_values: bool) {
    if let Some(Value::String(password)) = record.get_mut("user_password") {
        if !display_values {
            *password = format!("{HASHED_PREFIX}{password}");
        }
    }
}

/// The JSON object of a POST or PATCH body, every value as a string (as
/// the instance stores them).
fn body_record(request: &Request) -> Result<Record, Answer> {
    let value: Value = serde_json::from_slice(&request.body).map_err(|error| {
        Answer::error(400, "Exception while reading request", &error.to_string())
    })?;
    let Value::Object(object) = value else {
        return Err(Answer::error(
            400,
            "Exception while reading request",
            "not a JSON object",
        ));
    };
    Ok(object
        .into_iter()
        .map(|(name, value)| {
            let value = match value {
                Value::String(text) => Value::String(text),
                Value::Bool(flag) => Value::String(flag.to_string()),
                other => Value::String(other.to_string()),
            };
            (name, value)
        })
        .collect())
}

/// `field=value^fieldINa,b` → conditions (`IN`: the field is one of the
/// comma-separated values). Other operators are refused (a real instance
/// would ignore them and match every record), and so is a condition
/// joined by `^OR`/`^NQ` (a field name is lower case: `OR…` is the
/// operator, which would widen what a query matches).
pub fn parse_query(query: &str) -> Result<Query, String> {
    let is_field = |field: &str| {
        !field.is_empty()
            && field
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let mut conditions = Vec::new();
    let mut order = None;
    for term in query.split('^').filter(|term| !term.is_empty()) {
        let by = |field: &str, descending: bool| {
            is_field(field).then(|| Order {
                field: field.to_string(),
                descending,
            })
        };
        if let Some(field) = term.strip_prefix("ORDERBYDESC") {
            order = Some(by(field, true).ok_or_else(|| format!("`{term}`: no field to order by"))?);
        } else if let Some(field) = term.strip_prefix("ORDERBY") {
            order =
                Some(by(field, false).ok_or_else(|| format!("`{term}`: no field to order by"))?);
        } else {
            let equal = term
                .split_once('=')
                .filter(|(field, _)| is_field(field))
                .map(|(field, value)| (field, vec![value.to_string()]));
            let within = || {
                term.split_once("IN")
                    .filter(|(field, _)| is_field(field))
                    .map(|(field, values)| (field, values.split(',').map(String::from).collect()))
            };
            let (field, values) = equal
                .or_else(within)
                .ok_or_else(|| format!("`{term}` is not field=value or fieldINa,b"))?;
            conditions.push((field.to_string(), values));
        }
    }
    Ok((conditions, order))
}

/// An encoded query: its conditions (all must hold; each a field and the
/// values it may have) and its order.
pub type Query = (Vec<(String, Vec<String>)>, Option<Order>);

/// `ORDERBYfield` / `ORDERBYDESCfield` in an encoded query.
#[derive(Debug, PartialEq, Eq)]
pub struct Order {
    pub field: String,
    pub descending: bool,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// Now, as the instance writes `sys_created_on` (UTC, to the second).
fn created_on() -> String {
    let stamp = midfleet::report::now_rfc3339();
    stamp.trim_end_matches('Z').replacen('T', " ", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, target: &str, user: &str, password: &str, body: &str) -> Request {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Request {
            method: method.into(),
            path: path.into(),
            query: super::super::http::parse_query(query),
            authorization: Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )),
            body: body.as_bytes().to_vec(),
            client_certificate: None,
            close: false,
        }
    }

    fn seeded() -> State {
        let mut state = State::default();
        state.seed("pw");
        state
    }

    #[test]
    fn basic_auth_needs_an_active_unlocked_user_with_that_password() {
        let mut state = seeded();
        let get = |user: &str, password: &str| {
            request("GET", "/api/now/table/sys_user", user, password, "")
        };
        assert_eq!(state.handle(&get("admin", "pw")).status, 200);
        assert_eq!(state.handle(&get("admin", "wrong")).status, 401);
        assert_eq!(state.handle(&get("nobody", "pw")).status, 401);
        let admin_id = state.find("sys_user", "user_name", "admin").unwrap();
        state.tables.get_mut("sys_user").unwrap()[0].insert("locked_out".into(), "true".into());
        assert_eq!(state.handle(&get("admin", "pw")).status, 401, "{admin_id}");
    }

    #[test]
    fn a_password_set_without_display_values_never_logs_in() {
        let mut state = seeded();
        let created = state.handle(&request(
            "POST",
            "/api/now/table/sys_user",
            "admin",
            "pw",
            r#"{"user_name":"svc_a","user_password":"s3cret","active":true}"#,
        ));
        assert_eq!(created.status, 201);
        assert!(!created.body.to_string().contains("s3cret"));
        let login = request(
            "GET",
            "/api/now/table/sys_user?sysparm_query=user_name=svc_a",
            "svc_a",
            "s3cret",
            "",
        );
        assert_eq!(state.handle(&login).status, 401);
        let created = state.handle(&request(
            "POST",
            "/api/now/table/sys_user?sysparm_input_display_value=true",
            "admin",
            "pw",
            r#"{"user_name":"svc_b","user_password":"s3cret"}"#,
        ));
        assert_eq!(created.status, 201);
        let login = request(
            "GET",
            "/api/now/table/sys_user?sysparm_query=user_name=svc_b",
            "svc_b",
            "s3cret",
            "",
        );
        let answer = state.handle(&login);
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.body["result"].as_array().unwrap().len(),
            1,
            "its own record"
        );
    }

    #[test]
    fn a_reset_password_refuses_the_old_one_and_takes_its_mids_down() {
        let mut state = seeded();
        let login = |state: &mut State, user: &str, password: &str| {
            state
                .handle(&request(
                    "GET",
                    "/api/now/table/sys_user",
                    user,
                    password,
                    "",
                ))
                .status
        };
        mid_user(&mut state, "svc_a", "old");
        let user = state.find("sys_user", "user_name", "svc_a").unwrap();
        for name in ["mid1", "mid2"] {
            mid_record(&mut state, "svc_a", "old", name);
        }
        assert_eq!(login(&mut state, "svc_a", "old"), 200);
        // Without display values the new password is taken as a hash:
        // neither the old nor the new one logs in.
        let reset = |state: &mut State, query: &str, body: &str| {
            state
                .handle(&request(
                    "PATCH",
                    &format!("/api/now/table/sys_user/{user}{query}"),
                    "admin",
                    "pw",
                    body,
                ))
                .status
        };
        assert_eq!(reset(&mut state, "", r#"{"user_password":"new"}"#), 200);
        assert_eq!(login(&mut state, "svc_a", "old"), 401);
        assert_eq!(login(&mut state, "svc_a", "new"), 401);
        assert_eq!(
            reset(
                &mut state,
                "?sysparm_input_display_value=true",
                r#"{"user_password":"new"}"#
            ),
            200
        );
        assert_eq!(login(&mut state, "svc_a", "old"), 401);
        assert_eq!(login(&mut state, "svc_a", "new"), 200);
        // The first reset took both MIDs Down at once, as KB0746702 says.
        let history: Vec<(&str, &str, &str)> = state
            .ecc_agent_history
            .iter()
            .map(|change| {
                (
                    change.name.as_str(),
                    change.status.as_str(),
                    change.cause.as_str(),
                )
            })
            .collect();
        assert_eq!(
            history,
            [
                ("mid1", "Up", "reported"),
                ("mid2", "Up", "reported"),
                ("mid1", "Down", "password reset"),
                ("mid2", "Down", "password reset"),
            ]
        );
        assert!(state
            .ecc_agent_history
            .windows(2)
            .all(|pair| pair[0].at_ms <= pair[1].at_ms));
        // Inactive and locked-out users are refused whatever the password.
        assert_eq!(reset(&mut state, "", r#"{"active":"false"}"#), 200);
        assert_eq!(login(&mut state, "svc_a", "new"), 401);
        assert_eq!(
            reset(&mut state, "", r#"{"active":"true","locked_out":"true"}"#),
            200
        );
        assert_eq!(login(&mut state, "svc_a", "new"), 401);
        assert_eq!(reset(&mut state, "", r#"{"locked_out":"false"}"#), 200);
        assert_eq!(login(&mut state, "svc_a", "new"), 200);
        // A MID reporting Up again as another user is a change too.
        let mid1 = state.find("ecc_agent", "name", "mid1").unwrap();
        state.handle(&request(
            "PATCH",
            &format!("/api/now/table/ecc_agent/{mid1}"),
            "svc_a",
            "new",
            r#"{"status":"Up","user_name":"svc_a"}"#,
        ));
        let last = state.ecc_agent_history.last().unwrap();
        assert_eq!((last.name.as_str(), last.status.as_str()), ("mid1", "Up"));
    }

    #[test]
    fn queries_fields_and_limits() {
        let mut state = seeded();
        let answer = state.handle(&request(
            "GET",
            "/api/now/table/sys_user_role?sysparm_query=name%3Dmid_server&sysparm_fields=name&sysparm_limit=5",
            "admin",
            "pw",
            "",
        ));
        assert_eq!(answer.body, json!({ "result": [{ "name": "mid_server" }] }));
        let answer = state.handle(&request(
            "GET",
            "/api/now/table/sys_user_role?sysparm_limit=2",
            "admin",
            "pw",
            "",
        ));
        assert_eq!(answer.body["result"].as_array().unwrap().len(), 2);
        let answer = state.handle(&request(
            "GET",
            "/api/now/table/sys_user_role?sysparm_query=nameLIKEmid",
            "admin",
            "pw",
            "",
        ));
        assert_eq!(answer.status, 400);
        // `^OR` would widen a query to another record: refused.
        let answer = state.handle(&request(
            "GET",
            "/api/now/table/sys_user?sysparm_query=user_name%3Dx%5EORuser_name%3Dadmin",
            "admin",
            "pw",
            "",
        ));
        assert_eq!(answer.status, 400, "{}", answer.body);
        let answer = state.handle(&request(
            "GET",
            "/api/now/table/incident",
            "admin",
            "pw",
            "",
        ));
        assert_eq!(answer.status, 400);
    }

    #[test]
    fn a_field_the_table_has_not_is_dropped_as_a_real_instance_does() {
        let mut state = seeded();
        let created = state.handle(&request(
            "POST",
            "/api/now/table/sys_user",
            "admin",
            "pw",
            r#"{"user_name":"svc_a","web_services_access_only":"true","web_service_access_only":"true"}"#,
        ));
        assert_eq!(created.status, 201);
        let record = &created.body["result"];
        assert_eq!(record["web_service_access_only"], "true");
        assert!(record.get("web_services_access_only").is_none(), "{record}");
        let sys_id = record["sys_id"].as_str().unwrap();
        let updated = state.handle(&request(
            "PATCH",
            &format!("/api/now/table/sys_user/{sys_id}"),
            "admin",
            "pw",
            r#"{"lockedout":"true"}"#,
        ));
        assert_eq!(updated.status, 200);
        assert!(updated.body["result"].get("lockedout").is_none());
        assert_eq!(updated.body["result"]["locked_out"], "false");
    }

    #[test]
    fn mid_server_and_security_admin_cannot_share_a_user() {
        let mut state = seeded();
        let admin = state.find("sys_user", "user_name", "admin").unwrap();
        let grant = |state: &mut State, role: &str| {
            let role = state.find("sys_user_role", "name", role).unwrap();
            state
                .handle(&request(
                    "POST",
                    "/api/now/table/sys_user_has_role",
                    "admin",
                    "pw",
                    &format!(r#"{{"user":"{admin}","role":"{role}"}}"#),
                ))
                .status
        };
        assert_eq!(grant(&mut state, "security_admin"), 201);
        assert_eq!(grant(&mut state, "mid_server"), 403);
    }

    #[test]
    fn only_admins_write() {
        let mut state = seeded();
        state.handle(&request(
            "POST",
            "/api/now/table/sys_user?sysparm_input_display_value=true",
            "admin",
            "pw",
            r#"{"user_name":"svc_c","user_password":"x"}"#,
        ));
        let answer = state.handle(&request(
            "POST",
            "/api/now/table/sys_user",
            "svc_c",
            "x",
            r#"{"user_name":"evil"}"#,
        ));
        assert_eq!(answer.status, 403);
        let id = state.find("sys_user", "user_name", "svc_c").unwrap();
        let answer = state.handle(&request(
            "PATCH",
            &format!("/api/now/table/sys_user/{id}"),
            "admin",
            "pw",
            r#"{"locked_out":"true"}"#,
        ));
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["result"]["locked_out"], "true");
    }

    #[test]
    fn a_mid_reads_and_answers_its_ecc_queue_in_order() {
        let mut state = seeded();
        // A MID user: mid_server only.
        state.handle(&request(
            "POST",
            "/api/now/table/sys_user?sysparm_input_display_value=true",
            "admin",
            "pw",
            r#"{"user_name":"svc_mid","user_password":"m"}"#,
        ));
        let user = state.find("sys_user", "user_name", "svc_mid").unwrap();
        let role = state.find("sys_user_role", "name", "mid_server").unwrap();
        state.push(
            "sys_user_has_role",
            json!({ "sys_id": "g", "user": user, "role": role }),
        );
        let agent = state.handle(&request(
            "POST",
            "/api/now/table/ecc_agent",
            "svc_mid",
            "m",
            r#"{"name":"mid1","status":"Up"}"#,
        ));
        assert_eq!(agent.status, 201);
        assert_eq!(
            agent.body["result"]["validated"], "false",
            "new MIDs are not validated"
        );
        for source in ["delete_mid_keypair", "restartService"] {
            let queued = state.handle(&request(
                "POST",
                "/api/now/table/ecc_queue",
                "admin",
                "pw",
                &format!(r#"{{"agent":"mid.server.mid1","queue":"output","topic":"SystemCommand","source":"{source}"}}"#),
            ));
            assert_eq!(queued.status, 201);
            assert_eq!(queued.body["result"]["state"], "ready");
            assert!(
                queued.body["result"]["sys_created_on"]
                    .as_str()
                    .unwrap()
                    .len()
                    == 19
            );
        }
        let read = |state: &mut State, order: &str| {
            let answer = state.handle(&request(
                "GET",
                &format!("/api/now/table/ecc_queue?sysparm_query=agent=mid.server.mid1^state=ready^{order}&sysparm_fields=source"),
                "svc_mid",
                "m",
                "",
            ));
            assert_eq!(answer.status, 200);
            answer.body["result"]
                .as_array()
                .unwrap()
                .iter()
                .map(|record| record["source"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            read(&mut state, "ORDERBYsource"),
            ["delete_mid_keypair", "restartService"]
        );
        assert_eq!(
            read(&mut state, "ORDERBYDESCsource"),
            ["restartService", "delete_mid_keypair"]
        );
        // Ties keep the order the records were made in.
        assert_eq!(
            read(&mut state, "ORDERBYsys_created_on"),
            ["delete_mid_keypair", "restartService"]
        );
        let answer = state.handle(&request(
            "GET",
            "/api/now/table/ecc_queue?sysparm_query=ORDERBY",
            "admin",
            "pw",
            "",
        ));
        assert_eq!(answer.status, 400);
        // A MID marks its command processed; a user without mid_server
        // or admin may not.
        let id = state.find("ecc_queue", "source", "restartService").unwrap();
        let patch = |state: &mut State, user: &str, password: &str| {
            state
                .handle(&request(
                    "PATCH",
                    &format!("/api/now/table/ecc_queue/{id}"),
                    user,
                    password,
                    r#"{"state":"processed"}"#,
                ))
                .status
        };
        state.handle(&request(
            "POST",
            "/api/now/table/sys_user?sysparm_input_display_value=true",
            "admin",
            "pw",
            r#"{"user_name":"svc_other","user_password":"o"}"#,
        ));
        assert_eq!(patch(&mut state, "svc_other", "o"), 403);
        assert_eq!(patch(&mut state, "svc_mid", "m"), 200);
        assert_eq!(read(&mut state, ""), ["delete_mid_keypair"]);
    }

    #[test]
    fn read_only_tables_refuse_every_write() {
        let mut state = seeded();
        state.read_only = vec!["ecc_queue".into()];
        let answer = state.handle(&request(
            "POST",
            "/api/now/table/ecc_queue",
            "admin",
            "pw",
            r#"{"agent":"mid.server.x","topic":"SystemCommand"}"#,
        ));
        assert_eq!(answer.status, 403);
        assert!(answer
            .body
            .to_string()
            .contains("ACL restricts writing ecc_queue"));
        let answer = state.handle(&request(
            "POST",
            "/api/now/table/ecc_agent",
            "admin",
            "pw",
            r#"{"name":"x"}"#,
        ));
        assert_eq!(answer.status, 201);
    }

    #[test]
    fn queries_take_equal_and_in_conditions() {
        let (conditions, order) = parse_query("ecc_agentINa,b^param_name=x=y").unwrap();
        assert_eq!(
            conditions,
            [
                (
                    "ecc_agent".to_string(),
                    vec!["a".to_string(), "b".to_string()]
                ),
                ("param_name".to_string(), vec!["x=y".to_string()]),
            ]
        );
        assert_eq!(order, None);
        // A value holding `IN` or `=` after the operator is a value.
        let (conditions, _) = parse_query("name=MIDIN^nameINa=b").unwrap();
        assert_eq!(
            conditions,
            [
                ("name".to_string(), vec!["MIDIN".to_string()]),
                ("name".to_string(), vec!["a=b".to_string()]),
            ]
        );
        for refused in ["IN", "INa,b", "nameLIKEx", "NameINa", "^ORnameINa"] {
            assert!(parse_query(refused).is_err(), "{refused}");
        }
    }

    /// A user with the `mid_server` role only, logging in with `password`.
    fn mid_user(state: &mut State, user_name: &str, password: &str) {
        let created = state.handle(&request(
            "POST",
            "/api/now/table/sys_user?sysparm_input_display_value=true",
            "admin",
            "pw",
            &format!(r#"{{"user_name":"{user_name}","user_password":"{password}"}}"#),
        ));
        assert_eq!(created.status, 201);
        let user = state.find("sys_user", "user_name", user_name).unwrap();
        let role = state.find("sys_user_role", "name", "mid_server").unwrap();
        let grant = state.new_id();
        state.push(
            "sys_user_has_role",
            json!({ "sys_id": grant, "user": user, "role": role }),
        );
    }

    /// The `ecc_agent` record `user_name` creates for its MID `name`, as
    /// a MID does at its first start (Up, as itself).
    fn mid_record(state: &mut State, user_name: &str, password: &str, name: &str) -> Value {
        let created = state.handle(&request(
            "POST",
            "/api/now/table/ecc_agent",
            user_name,
            password,
            &format!(r#"{{"name":"{name}","status":"Up","user_name":"{user_name}"}}"#),
        ));
        assert_eq!(created.status, 201, "{}", created.body);
        created.body["result"].clone()
    }

    fn names(answer: &Answer, field: &str) -> Vec<String> {
        answer.body["result"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", answer.body))
            .iter()
            .map(|record| record[field].as_str().unwrap_or("<absent>").to_string())
            .collect()
    }

    #[test]
    fn ecc_agent_has_the_kind_columns_and_an_admin_sets_them() {
        let mut state = seeded();
        mid_user(&mut state, "svc_mid", "m");
        for name in ["mid1", "mid2", "mid3"] {
            let record = mid_record(&mut state, "svc_mid", "m", name);
            assert_eq!(record["container_id"], "");
            assert_eq!(record["is_using_custom_cert"], "false");
            assert_eq!(record["version"], DEFAULT_MID_VERSION);
        }
        let mid2 = state.find("ecc_agent", "name", "mid2").unwrap();
        let patched = state.handle(&request(
            "PATCH",
            &format!("/api/now/table/ecc_agent/{mid2}"),
            "admin",
            "pw",
            r#"{"status":"Upgrade Failed","container_id":"c0ffee","is_using_custom_cert":true}"#,
        ));
        assert_eq!(patched.status, 200);
        let mid3 = state.find("ecc_agent", "name", "mid3").unwrap();
        let patched = state.handle(&request(
            "PATCH",
            &format!("/api/now/table/ecc_agent/{mid3}"),
            "admin",
            "pw",
            r#"{"status":"Upgrading","version":"brazil-01-01-2027__patch0"}"#,
        ));
        assert_eq!(patched.status, 200);
        let read = state.handle(&request(
            "GET",
            "/api/now/table/ecc_agent?sysparm_query=nameINmid2,mid3,gone&sysparm_fields=sys_id,name,status,container_id,is_using_custom_cert,version,user_name",
            "admin",
            "pw",
            "",
        ));
        assert_eq!(read.status, 200);
        let result = read.body["result"].as_array().unwrap();
        assert_eq!(names(&read, "name"), ["mid2", "mid3"]);
        assert_eq!(
            result[0],
            json!({
                "sys_id": mid2, "name": "mid2", "status": "Upgrade Failed",
                "container_id": "c0ffee", "is_using_custom_cert": "true",
                "version": DEFAULT_MID_VERSION, "user_name": "svc_mid",
            })
        );
        assert_eq!(result[1]["status"], "Upgrading");
        assert_eq!(result[1]["version"], "brazil-01-01-2027__patch0");
        assert!(
            result[1].get("host_name").is_none(),
            "only the fields asked"
        );
        // A record from a state file without the new columns gets the
        // defaults when the instance starts.
        let mut state = seeded();
        state.push("ecc_agent", json!({ "sys_id": "old", "name": "old" }));
        state.seed("pw");
        let record = &state.tables["ecc_agent"][0];
        assert_eq!(text(record, "is_using_custom_cert"), "false");
        assert_eq!(text(record, "version"), DEFAULT_MID_VERSION);
    }

    #[test]
    fn ecc_agent_config_admins_write_it_and_mids_read_it() {
        let mut state = seeded();
        mid_user(&mut state, "svc_mid", "m");
        state.handle(&request(
            "POST",
            "/api/now/table/sys_user?sysparm_input_display_value=true",
            "admin",
            "pw",
            r#"{"user_name":"svc_plain","user_password":"p"}"#,
        ));
        let add = |state: &mut State, user: &str, password: &str, agent: &str, name: &str| {
            state.handle(&request(
                "POST",
                "/api/now/table/ecc_agent_config",
                user,
                password,
                &format!(r#"{{"ecc_agent":"{agent}","param_name":"{name}","value":"v-{agent}","other":"x"}}"#),
            ))
        };
        let created = add(&mut state, "admin", "pw", "a1", "mid.instance.username");
        assert_eq!(created.status, 201, "{}", created.body);
        let result = &created.body["result"];
        assert_eq!(result["param_name"], "mid.instance.username");
        assert!(result.get("other").is_none(), "{result}");
        assert_eq!(
            add(&mut state, "admin", "pw", "a2", "mid.log.level").status,
            201
        );
        assert_eq!(
            add(&mut state, "admin", "pw", "a3", "mid.log.level").status,
            201
        );
        // A MID reads, but does not write.
        assert_eq!(add(&mut state, "svc_mid", "m", "a1", "url").status, 403);
        let row = text(&state.tables["ecc_agent_config"][0], "sys_id").to_string();
        let patched = state.handle(&request(
            "PATCH",
            &format!("/api/now/table/ecc_agent_config/{row}"),
            "svc_mid",
            "m",
            r#"{"value":"mine"}"#,
        ));
        assert_eq!(patched.status, 403);
        let read = |state: &mut State, user: &str, password: &str, query: &str| {
            state.handle(&request(
                "GET",
                &format!("/api/now/table/ecc_agent_config?sysparm_query={query}&sysparm_fields=sys_id,ecc_agent,param_name,value"),
                user,
                password,
                "",
            ))
        };
        let one = read(&mut state, "svc_mid", "m", "ecc_agent=a1");
        assert_eq!(one.status, 200);
        assert_eq!(
            one.body["result"],
            json!([{ "sys_id": row, "ecc_agent": "a1", "param_name": "mid.instance.username", "value": "v-a1" }])
        );
        let some = read(&mut state, "admin", "pw", "ecc_agentINa1,a3");
        assert_eq!(names(&some, "ecc_agent"), ["a1", "a3"]);
        let some = read(
            &mut state,
            "admin",
            "pw",
            "ecc_agentINa2,a3^param_name=mid.log.level",
        );
        assert_eq!(names(&some, "value"), ["v-a2", "v-a3"]);
        // A user without mid_server or admin sees no rows.
        let none = read(&mut state, "svc_plain", "p", "ecc_agent=a1");
        assert_eq!(none.status, 200);
        assert_eq!(none.body["result"], json!([]));
        // An admin changes a row.
        let patched = state.handle(&request(
            "PATCH",
            &format!("/api/now/table/ecc_agent_config/{row}"),
            "admin",
            "pw",
            r#"{"value":"svc_other"}"#,
        ));
        assert_eq!(patched.status, 200);
        assert_eq!(
            names(&read(&mut state, "svc_mid", "m", "ecc_agent=a1"), "value"),
            ["svc_other"]
        );
    }
}
