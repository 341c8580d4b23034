//! The instance client against `midfleet-instancesim`: the Table API
//! subset, retries, timeouts, HTTPS with a private CA, and errors that
//! never hold a password. No root, no lab: plain loopback HTTP(S).

#[path = "support/instancesim.rs"]
mod instancesim;

use std::time::{Duration, Instant};

use midfleet::instance::{table, Client, Credentials, InstanceError, Settings};
use midfleet::secret::SecretValue;
use serde_json::json;

use instancesim::{test_ca, user_record, Instance, ADMIN_PASSWORD};

fn admin() -> Credentials {
    Credentials::new("admin".into(), SecretValue::new(ADMIN_PASSWORD.into()))
}

fn quick() -> Settings {
    Settings {
        first_backoff: Duration::from_millis(100),
        ..Settings::with_timeout(5)
    }
}

fn client(instance: &Instance) -> Client {
    Client::new(&instance.url, None, quick()).expect("client")
}

/// An instance serving HTTPS with a certificate of a test CA made in
/// `directory`.
fn https_instance(directory: &std::path::Path) -> (Instance, instancesim::TestCa) {
    let ca = test_ca(directory);
    let instance = Instance::start(
        None,
        &[
            "--cert",
            ca.cert.to_str().unwrap(),
            "--key",
            ca.key.to_str().unwrap(),
        ],
    );
    (instance, ca)
}

fn secret(text: &str) -> SecretValue {
    SecretValue::new(text.into())
}

#[test]
fn a_user_is_created_with_its_password_and_the_mid_server_role() {
    let instance = Instance::start(None, &[]);
    let client = client(&instance);
    let state = table::user_state(&client, &admin(), "svc_mid").unwrap();
    assert_eq!(state.sys_id, None);
    let sys_id = table::create_user(&client, &admin(), "svc_mid", &secret("Mid-pw-1")).unwrap();
    table::grant_role(&client, &admin(), &sys_id, table::MID_SERVER_ROLE).unwrap();
    let state = table::user_state(&client, &admin(), "svc_mid").unwrap();
    assert_eq!(state.sys_id.as_deref(), Some(sys_id.as_str()));
    assert!(state.active && !state.locked_out && state.has_mid_server_role);
    table::login_check(&client, "svc_mid", &secret("Mid-pw-1")).unwrap();
    let record = instance.user("svc_mid").unwrap();
    assert_eq!(record["web_service_access_only"], "true");
    assert_eq!(record["internal_integration_user"], "true");
    assert_eq!(instance.roles_of("svc_mid"), ["mid_server"]);
    // The password was sent as a display value: the emulator stores it as
    // given only then.
    assert_eq!(record["user_password"], "Mid-pw-1");
}

#[test]
fn a_wrong_password_is_a_401_naming_the_user_only() {
    let instance = Instance::start(
        Some(json!({ "tables": { "sys_user": [user_record("svc_mid", "right-pw")] } })),
        &[],
    );
    let client = client(&instance);
    table::login_check(&client, "svc_mid", &secret("right-pw")).unwrap();
    let error = table::login_check(&client, "svc_mid", &secret("Wr0ng-S3cret")).unwrap_err();
    assert!(
        matches!(error, InstanceError::Unauthorized { .. }),
        "{error:?}"
    );
    let shown = format!("{error} {error:?} {}", error.hint().unwrap_or_default());
    assert!(shown.contains("svc_mid"), "{shown}");
    assert!(shown.contains("/api/now/table/sys_user"), "{shown}");
    assert!(shown.contains("401"), "{shown}");
    assert!(!shown.contains("Wr0ng-S3cret"), "{shown}");
    assert!(
        !shown.contains("sysparm_query"),
        "no query in errors: {shown}"
    );
    // A 401 is an answer: not retried.
    assert_eq!(instance.requests().len(), 2);
}

#[test]
fn an_integration_user_from_a_secret_is_named_by_its_reference() {
    let instance = Instance::start(None, &[]);
    let client = client(&instance);
    let credentials = Credentials {
        user: "admin".into(),
        password: SecretValue::new("not-its-password".into()),
        shown_as: Some("the integration user (env:SN_USER)".into()),
    };
    let error = table::user_state(&client, &credentials, "svc_mid").unwrap_err();
    let shown = format!("{error} {error:?} {credentials:?}");
    assert!(
        shown.contains("the integration user (env:SN_USER)"),
        "{shown}"
    );
    assert!(
        !shown.contains("`admin`") && !shown.contains("\"admin\""),
        "{shown}"
    );
    assert!(!shown.contains("not-its-password"), "{shown}");
}

#[test]
fn a_login_whose_read_an_acl_refuses_is_accepted_a_wrong_password_is_not() {
    let instance = Instance::start(
        Some(json!({ "tables": { "sys_user": [user_record("svc_mid", "right-pw")] } })),
        &["--deny-read", "sys_user"],
    );
    let client = client(&instance);
    // 403: the instance took the login; only its read ACL said no.
    table::login_check(&client, "svc_mid", &secret("right-pw")).unwrap();
    let error = table::login_check(&client, "svc_mid", &secret("wrong-pw")).unwrap_err();
    assert!(
        matches!(error, InstanceError::Unauthorized { .. }),
        "{error:?}"
    );
    let statuses: Vec<u64> = instance
        .requests()
        .iter()
        .map(|request| request["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [403, 401]);
}

#[test]
fn the_business_rule_refusal_names_path_and_status() {
    let instance = Instance::start(None, &[]);
    let client = client(&instance);
    let sys_id = table::create_user(&client, &admin(), "svc_both", &secret("pw")).unwrap();
    table::grant_role(&client, &admin(), &sys_id, "security_admin").unwrap();
    let error = table::grant_role(&client, &admin(), &sys_id, table::MID_SERVER_ROLE).unwrap_err();
    let shown = error.to_string();
    assert_eq!(error.status(), Some(403), "{shown}");
    assert!(
        shown.starts_with("POST /api/now/table/sys_user_has_role: the instance answered 403"),
        "{shown}"
    );
    assert!(shown.contains("mid_server and security_admin"), "{shown}");
}

#[test]
fn two_503s_then_an_answer_succeed_with_backoff() {
    let instance = Instance::start(None, &["--fail-first", "2"]);
    let client = client(&instance);
    let started = Instant::now();
    table::login_check(&client, "admin", &secret(ADMIN_PASSWORD)).unwrap();
    let elapsed = started.elapsed();
    let statuses: Vec<u64> = instance
        .requests()
        .iter()
        .map(|request| request["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [503, 503, 200]);
    // 100 ms, then 200 ms.
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
}

#[test]
fn retry_after_is_waited_for() {
    let instance = Instance::start(None, &["--fail-first", "1", "--retry-after", "1"]);
    let client = client(&instance);
    let started = Instant::now();
    table::login_check(&client, "admin", &secret(ADMIN_PASSWORD)).unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn retries_are_bounded_in_number() {
    let instance = Instance::start(None, &["--fail-first", "100"]);
    let client = client(&instance);
    let error = table::login_check(&client, "admin", &secret(ADMIN_PASSWORD)).unwrap_err();
    assert_eq!(error.status(), Some(503), "{error}");
    assert_eq!(instance.requests().len(), quick().attempts as usize);
}

#[test]
fn an_instance_that_never_answers_times_out_in_bounded_time() {
    let instance = Instance::start(None, &["--hang"]);
    let settings = Settings::with_timeout(1);
    let client = Client::new(&instance.url, None, settings).unwrap();
    let started = Instant::now();
    let error = table::login_check(&client, "admin", &secret(ADMIN_PASSWORD)).unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(error, InstanceError::Timeout { .. }), "{error:?}");
    let shown = error.to_string();
    assert!(shown.contains("did not answer within 1 s"), "{shown}");
    // Three attempts of 1 s fit in the 3 s budget at most, with the waits.
    assert!(
        elapsed <= settings.total + Duration::from_secs(2),
        "{elapsed:?}"
    );
}

#[test]
fn a_refused_connection_is_retried_then_reported() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = Client::new(&format!("http://127.0.0.1:{port}"), None, quick()).unwrap();
    let error = table::login_check(&client, "admin", &secret(ADMIN_PASSWORD)).unwrap_err();
    let shown = error.to_string();
    assert!(shown.contains("connection refused"), "{shown}");
    assert!(shown.contains("5 attempts"), "{shown}");
}

#[test]
fn https_with_the_private_ca_in_ca_file_and_not_without() {
    let certificates = tempfile::tempdir().unwrap();
    let (instance, ca) = https_instance(certificates.path());
    assert!(
        instance.url.starts_with("https://127.0.0.1:"),
        "{}",
        instance.url
    );
    let trusted = Client::new(&instance.url, Some(&ca.ca_file), quick()).unwrap();
    table::login_check(&trusted, "admin", &secret(ADMIN_PASSWORD)).unwrap();

    let untrusted = Client::new(&instance.url, None, quick()).unwrap();
    let started = Instant::now();
    let error = table::login_check(&untrusted, "admin", &secret(ADMIN_PASSWORD)).unwrap_err();
    let shown = error.to_string();
    assert!(
        shown.contains("TLS") && shown.contains("certificate"),
        "{shown}"
    );
    assert!(
        shown.contains("1 attempt"),
        "a certificate problem is not retried: {shown}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    let error = Client::new(&instance.url, Some(&ca.key), quick()).unwrap_err();
    assert!(error.to_string().contains("no PEM certificate"), "{error}");
}

/// As an instance's front end does, the emulator keeps a client's
/// connection open: one TLS handshake serves a run's calls (a wide-area
/// round trip or more each, saved per call), and a second user's calls
/// share it too, each with its own login.
#[test]
fn a_clients_calls_share_one_kept_connection() {
    let certificates = tempfile::tempdir().unwrap();
    let (instance, ca) = https_instance(certificates.path());
    let client = Client::new(&instance.url, Some(&ca.ca_file), quick()).unwrap();
    let sys_id = table::create_user(&client, &admin(), "svc_kept", &secret("Kept-pw-1")).unwrap();
    table::grant_role(&client, &admin(), &sys_id, table::MID_SERVER_ROLE).unwrap();
    table::login_check(&client, "svc_kept", &secret("Kept-pw-1")).unwrap();
    let error = table::login_check(&client, "svc_kept", &secret("wrong")).unwrap_err();
    assert!(
        matches!(error, InstanceError::Unauthorized { .. }),
        "{error}"
    );
    table::user_state(&client, &admin(), "svc_kept").unwrap();
    let requests = instance.requests();
    let users: Vec<&str> = requests
        .iter()
        .map(|request| request["user"].as_str().unwrap_or("-"))
        .collect();
    assert!(
        users.contains(&"admin") && users.contains(&"svc_kept") && users.contains(&"-"),
        "{users:?}"
    );
    assert!(requests[0]["connection"].is_u64(), "{requests:?}");
    assert!(
        requests
            .iter()
            .all(|request| request["connection"] == requests[0]["connection"]),
        "{requests:?}"
    );
}

#[test]
fn state_is_seeded_from_and_saved_to_the_file() {
    let instance = Instance::start(
        Some(json!({ "tables": { "sys_user": [user_record("svc_old", "old-pw")] } })),
        &[],
    );
    assert!(
        instance.user("svc_old").unwrap()["sys_id"].is_string(),
        "given an id"
    );
    assert!(instance.user("admin").is_some(), "seeded");
    let client = client(&instance);
    let sys_id = table::user_state(&client, &admin(), "svc_old")
        .unwrap()
        .sys_id
        .unwrap();
    table::update(
        &client,
        &admin(),
        "sys_user",
        &sys_id,
        &json!({ "locked_out": "true" }),
        false,
    )
    .unwrap();
    assert_eq!(instance.user("svc_old").unwrap()["locked_out"], "true");
    let error = table::login_check(&client, "svc_old", &secret("old-pw")).unwrap_err();
    assert_eq!(error.status(), Some(401), "a locked out user cannot log in");
}

#[test]
fn an_admin_sets_a_mids_record_and_its_configuration_parameters() {
    let mut mid = user_record("svc_mid", "Mid-pw-1");
    mid["sys_id"] = json!("user-mid");
    let instance = Instance::start(
        Some(json!({ "tables": {
            "sys_user": [mid],
            "sys_user_role": [{ "sys_id": "role-mid", "name": "mid_server" }],
            "sys_user_has_role": [{ "user": "user-mid", "role": "role-mid" }],
        } })),
        &[],
    );
    let client = client(&instance);
    let as_mid = Credentials::new("svc_mid".into(), secret("Mid-pw-1"));
    for name in ["mid1", "mid2"] {
        table::insert(
            &client,
            &as_mid,
            "ecc_agent",
            &json!({ "name": name, "status": "Up", "user_name": "svc_mid" }),
            false,
        )
        .unwrap();
    }
    let admin = instance.admin();
    admin.set_mid_status("mid1", "Upgrading").unwrap();
    admin.set_mid_container_id("mid2", "4f2a9c").unwrap();
    let row = admin
        .add_mid_config("mid2", "mid.instance.username", "svc_other")
        .unwrap();
    assert!(admin
        .set_mid_status("gone", "Down")
        .unwrap_err()
        .0
        .contains("`gone`"));
    let records = table::query(
        &client,
        &as_mid,
        "ecc_agent",
        "nameINmid1,mid2",
        &["name", "status", "container_id", "is_using_custom_cert"],
        10,
    )
    .unwrap();
    let shown: Vec<String> = records
        .iter()
        .map(|record| {
            ["name", "status", "container_id", "is_using_custom_cert"]
                .map(|field| table::field(record, field))
                .join(" ")
        })
        .collect();
    assert_eq!(shown, ["mid1 Upgrading  false", "mid2 Up 4f2a9c false"]);
    // The MID reads its own rows; the admin's list is the same.
    let mid2 = admin.mid_sys_id("mid2").unwrap();
    let rows = table::query(
        &client,
        &as_mid,
        "ecc_agent_config",
        &format!("ecc_agentIN{mid2},nothing"),
        &["sys_id", "ecc_agent", "param_name", "value"],
        10,
    )
    .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(table::field(&rows[0], "sys_id"), row);
    assert_eq!(table::field(&rows[0], "value"), "svc_other");
    assert_eq!(
        admin.mid_config("mid2").unwrap(),
        [("mid.instance.username".to_string(), "svc_other".to_string())]
    );
    assert!(admin.mid_config("mid1").unwrap().is_empty());
}

/// One user spelt in two cases, with one password (which `conflict` lets
/// through): apply's preparation reads every state at once, and still
/// creates the user once — the instance compares names ignoring case.
#[test]
fn one_user_in_two_spellings_is_created_once() {
    use midfleet::instance::preflight::{prepare, Login};
    let instance = Instance::start(None, &[]);
    let login = |user: &str, host: &str| Login {
        user: user.into(),
        password: secret("Same-pw-1"),
        hosts: vec![host.into()],
        rotation: false,
        used_by: Vec::new(),
    };
    let logins = [login("svc_twice", "h1"), login("SVC_TWICE", "h2")];
    let prepared = prepare(&client(&instance), &admin(), true, &logins).unwrap();
    let created: Vec<_> = instance
        .records("sys_user")
        .into_iter()
        .filter(|record| {
            record["user_name"]
                .as_str()
                .is_some_and(|name| name.eq_ignore_ascii_case("svc_twice"))
        })
        .collect();
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(prepared.accepted.len(), 2, "{prepared:?}");
}
