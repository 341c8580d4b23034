//! The Table API calls midfleet makes: reading and creating users, the
//! `mid_server` role, and the login check. Every call goes through
//! [`Client::call`] (retries, timeouts, errors without secrets).

use serde_json::{json, Map, Value};

use super::{Client, Credentials, InstanceError, Method};
use crate::secret::SecretValue;

/// The role a MID Server's user needs.
pub const MID_SERVER_ROLE: &str = "mid_server";

/// A record as the Table API returns it (every value a string).
pub type Record = Map<String, Value>;

/// A field of a record, as text.
pub fn field<'a>(record: &'a Record, name: &str) -> &'a str {
    record.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// A user name that can go into an encoded query (`^` joins conditions).
pub fn check_user_name(user: &str) -> Result<(), InstanceError> {
    if user.is_empty()
        || user.contains(['^', '=', '\n', '\r'])
        || user.chars().any(char::is_control)
    {
        return Err(InstanceError::Name {
            reason: format!("`{user}` is not a user name the instance can be asked about"),
        });
    }
    Ok(())
}

/// GET `table` records matching an encoded `query` (`field=value^…`).
pub fn query(
    client: &Client,
    credentials: &Credentials,
    table: &str,
    query: &str,
    fields: &[&str],
    limit: usize,
) -> Result<Vec<Record>, InstanceError> {
    let fields = fields.join(",");
    let limit = limit.to_string();
    let path = Client::table_path(table, None);
    let answer = client.call(
        Method::Get,
        &path,
        &[
            ("sysparm_query", query),
            ("sysparm_fields", &fields),
            ("sysparm_limit", &limit),
            ("sysparm_exclude_reference_link", "true"),
        ],
        None,
        credentials,
    )?;
    match answer.json.get("result") {
        Some(Value::Array(records)) => Ok(records
            .iter()
            .filter_map(|record| record.as_object().cloned())
            .collect()),
        _ => Err(InstanceError::Body {
            method: "GET",
            path,
            reason: "no `result` list".into(),
        }),
    }
}

/// POST a new `table` record; `display_values` sends
/// `sysparm_input_display_value=true`, without which the instance stores
/// a `user_password` as if it were already hashed.
pub fn insert(
    client: &Client,
    credentials: &Credentials,
    table: &str,
    body: &Value,
    display_values: bool,
) -> Result<Record, InstanceError> {
    let path = Client::table_path(table, None);
    let mut query = vec![("sysparm_exclude_reference_link", "true")];
    if display_values {
        query.push(("sysparm_input_display_value", "true"));
    }
    let answer = client.call(Method::Post, &path, &query, Some(body), credentials)?;
    result_record(answer.json, "POST", &path)
}

/// PATCH fields of one `table` record.
pub fn update(
    client: &Client,
    credentials: &Credentials,
    table: &str,
    sys_id: &str,
    body: &Value,
    display_values: bool,
) -> Result<Record, InstanceError> {
    let path = Client::table_path(table, Some(sys_id));
    let mut query = vec![("sysparm_exclude_reference_link", "true")];
    if display_values {
        query.push(("sysparm_input_display_value", "true"));
    }
    let answer = client.call(Method::Patch, &path, &query, Some(body), credentials)?;
    result_record(answer.json, "PATCH", &path)
}

fn result_record(json: Value, method: &'static str, path: &str) -> Result<Record, InstanceError> {
    match json {
        Value::Object(mut object) => match object.remove("result") {
            Some(Value::Object(record)) => Ok(record),
            _ => Err(InstanceError::Body {
                method,
                path: path.to_string(),
                reason: "no `result` record".into(),
            }),
        },
        _ => Err(InstanceError::Body {
            method,
            path: path.to_string(),
            reason: "not a JSON object".into(),
        }),
    }
}

/// Logs in as `user` with `password`: a GET of the user's own `sys_user`
/// record. Any 2xx proves the password (ACLs may hide the record itself),
/// and so does a 403: the login was accepted, and only a read ACL refused
/// the table. A refusal of the login is [`InstanceError::Unauthorized`].
pub fn login_check(
    client: &Client,
    user: &str,
    password: &SecretValue,
) -> Result<(), InstanceError> {
    check_user_name(user)?;
    let credentials = Credentials::new(user.to_string(), password.clone());
    match query(
        client,
        &credentials,
        "sys_user",
        &format!("user_name={user}"),
        &["sys_id"],
        1,
    ) {
        Ok(_) | Err(InstanceError::Status { status: 403, .. }) => Ok(()),
        Err(error) => Err(error),
    }
}

/// What the instance holds about a MID user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserState {
    /// `None`: no such user.
    pub sys_id: Option<String>,
    pub active: bool,
    pub locked_out: bool,
    pub has_mid_server_role: bool,
}

/// Reads `user`'s record and whether it holds `mid_server`, as the
/// integration user `admin`.
pub fn user_state(
    client: &Client,
    admin: &Credentials,
    user: &str,
) -> Result<UserState, InstanceError> {
    check_user_name(user)?;
    let users = query(
        client,
        admin,
        "sys_user",
        &format!("user_name={user}"),
        &["sys_id", "user_name", "active", "locked_out"],
        1,
    )?;
    let Some(record) = users.first() else {
        return Ok(UserState::default());
    };
    let sys_id = field(record, "sys_id").to_string();
    let has_role = match role_id(client, admin, MID_SERVER_ROLE)? {
        Some(role) => !query(
            client,
            admin,
            "sys_user_has_role",
            &format!("user={sys_id}^role={role}"),
            &["sys_id"],
            1,
        )?
        .is_empty(),
        None => false,
    };
    Ok(UserState {
        sys_id: Some(sys_id),
        active: field(record, "active") == "true",
        locked_out: field(record, "locked_out") == "true",
        has_mid_server_role: has_role,
    })
}

/// The sys_id of the role named `name`.
pub fn role_id(
    client: &Client,
    admin: &Credentials,
    name: &str,
) -> Result<Option<String>, InstanceError> {
    let roles = query(
        client,
        admin,
        "sys_user_role",
        &format!("name={name}"),
        &["sys_id", "name"],
        1,
    )?;
    Ok(roles
        .first()
        .map(|record| field(record, "sys_id").to_string()))
}

/// Creates `user` as a MID Server user: active, web services access only,
/// internal integration user, with `password`. Returns its sys_id.
pub fn create_user(
    client: &Client,
    admin: &Credentials,
    user: &str,
    password: &SecretValue,
) -> Result<String, InstanceError> {
    check_user_name(user)?;
    let body = json!({
        "user_name": user,
        "user_password": password.expose(),
        "active": "true",
        "web_service_access_only": "true",
        "internal_integration_user": "true",
    });
    let record = insert(client, admin, "sys_user", &body, true)?;
    drop(body);
    Ok(field(&record, "sys_id").to_string())
}

/// Gives the existing user `sys_id` a new `password` (through
/// `sysparm_input_display_value=true`, as for a new user), and makes it
/// active and not locked out: the rotation's reset of an idle user.
pub fn reset_user(
    client: &Client,
    admin: &Credentials,
    sys_id: &str,
    password: &SecretValue,
) -> Result<(), InstanceError> {
    let body = json!({
        "user_password": password.expose(),
        "locked_out": "false",
        "active": "true",
    });
    let answer = update(client, admin, "sys_user", sys_id, &body, true);
    drop(body);
    answer.map(|_| ())
}

/// Grants the role named `role` to the user with `user_sys_id`.
pub fn grant_role(
    client: &Client,
    admin: &Credentials,
    user_sys_id: &str,
    role: &str,
) -> Result<(), InstanceError> {
    let Some(role_sys_id) = role_id(client, admin, role)? else {
        return Err(InstanceError::Status {
            method: "GET",
            path: Client::table_path("sys_user_role", None),
            status: 404,
            detail: Some(format!("the instance has no `{role}` role")),
        });
    };
    insert(
        client,
        admin,
        "sys_user_has_role",
        &json!({ "user": user_sys_id, "role": role_sys_id }),
        false,
    )
    .map(|_| ())
}

/// The `ecc_queue` topic of the commands the instance sends a MID about
/// itself (restart, invalidate, …).
pub const SYSTEM_COMMAND: &str = "SystemCommand";

/// The `ecc_queue` agent of the MID named `name`.
pub fn mid_agent(name: &str) -> String {
    format!("mid.server.{name}")
}

/// A MID name that can go into an encoded query.
pub fn check_mid_name(name: &str) -> Result<(), InstanceError> {
    if name.is_empty() || name.contains(['^', '=']) || name.chars().any(char::is_control) {
        return Err(InstanceError::MidName {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Queues a `SystemCommand` for the MID named `mid_name`, as the
/// instance's own `MIDServerManage` does: an output record, ready, at
/// interactive priority, `source` the command and `name` its argument.
pub fn queue_system_command(
    client: &Client,
    credentials: &Credentials,
    mid_name: &str,
    source: &str,
    name: Option<&str>,
) -> Result<Record, InstanceError> {
    let mut body = json!({
        "agent": mid_agent(mid_name),
        "queue": "output",
        "state": "ready",
        "topic": SYSTEM_COMMAND,
        "source": source,
        "priority": "0",
    });
    if let Some(name) = name {
        body["name"] = json!(name);
    }
    insert(client, credentials, "ecc_queue", &body, false)
}

/// The `SystemCommand`s queued for the MID named `mid_name` that no one
/// has picked up yet (`state` ready), oldest first; only those with
/// `source` when given.
pub fn ready_system_commands(
    client: &Client,
    credentials: &Credentials,
    mid_name: &str,
    source: Option<&str>,
) -> Result<Vec<Record>, InstanceError> {
    let mut condition = format!(
        "agent={}^queue=output^topic={SYSTEM_COMMAND}^state=ready",
        mid_agent(mid_name)
    );
    if let Some(source) = source {
        condition.push_str(&format!("^source={source}"));
    }
    condition.push_str("^ORDERBYsys_created_on");
    query(
        client,
        credentials,
        "ecc_queue",
        &condition,
        &["sys_id", "source", "name", "state"],
        100,
    )
}

/// Sets one `field` of the `table` record `sys_id` to `value`.
pub fn set_field(
    client: &Client,
    credentials: &Credentials,
    table: &str,
    sys_id: &str,
    field: &str,
    value: &str,
) -> Result<(), InstanceError> {
    update(
        client,
        credentials,
        table,
        sys_id,
        &json!({ field: value }),
        false,
    )
    .map(|_| ())
}

/// Sets the `state` of the `ecc_queue` record `sys_id` (`processing`,
/// `processed`).
pub fn set_queue_state(
    client: &Client,
    credentials: &Credentials,
    sys_id: &str,
    state: &str,
) -> Result<(), InstanceError> {
    set_field(client, credentials, "ecc_queue", sys_id, "state", state)
}

/// The `ecc_agent` record of the MID named `name` (its `name` parameter),
/// with the fields midfleet and the lab's MIDs read.
pub fn mid_record(
    client: &Client,
    credentials: &Credentials,
    name: &str,
) -> Result<Option<Record>, InstanceError> {
    let records = query(
        client,
        credentials,
        "ecc_agent",
        &format!("name={name}"),
        &["sys_id", "name", "validated", "status", "user_name"],
        1,
    )?;
    Ok(records.into_iter().next())
}

/// Whether an `ecc_agent` record shows its MID Up, logged in as `user`
/// (user names compared as the instance does, ignoring case).
pub fn up_as(record: &Record, user: &str) -> bool {
    field(record, "status") == "Up" && field(record, "user_name").eq_ignore_ascii_case(user)
}
