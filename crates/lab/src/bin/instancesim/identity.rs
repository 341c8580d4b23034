//! Logins without a password (docs/lab.md, "Kinds of MID"):
//!
//! - mutual TLS: the server asks for a client certificate (`--client-ca`,
//!   the CA the instance trusts, as `sys_ca_certificate` would); a
//!   certificate that CA signed logs in as the user of the active
//!   `sys_user_certificate` record holding the same certificate (PEM in
//!   `certificate`, the user's sys_id in `user`). No record: 401.
//! - IPKI: an admin issues a single-use registration key for a MID user
//!   (`POST /api/now/mid/ipki/registration_key` `{"user": SYS_ID,
//!   "expires_in_seconds": N}`, default 24 h); the MID registers with it
//!   (`POST /api/now/mid/ipki/register` `{"registration_key", "user",
//!   "name"}`, no login) and gets a credential valid 60 days, which it
//!   sends as `Authorization: Bearer …` to log in as that user. A key is
//!   spent by its first use, refused once expired, and revoked after 5
//!   failed attempts (`sn_mid_infra.registration_key.max_use_count`). Only
//!   SHA-256 digests of keys and credentials are kept.

use std::time::{SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::http::Request;
use super::tables::{Answer, Credential, RegistrationKey, State};

/// A registration key's life (ServiceNow: "expires within 24 hours").
const KEY_SECONDS: u64 = 24 * 3600;
/// An IPKI certificate's life ("IPKI certificates expire after 60 days").
const CREDENTIAL_SECONDS: u64 = 60 * 24 * 3600;
/// Failed attempts before a key is revoked.
const MAX_FAILED_ATTEMPTS: u32 = 5;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|time| time.as_secs())
        .unwrap_or(0)
}

fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn random_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut bytes))
        .map_err(|error| format!("/dev/urandom: {error}"))?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

fn field<'a>(record: &'a serde_json::Map<String, Value>, name: &str) -> &'a str {
    record.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// Serves one request: the IPKI endpoints here, then the Table API as the
/// user the request logs in as — by password (basic), bearer token (IPKI)
/// or client certificate (mutual TLS).
pub fn handle(state: &mut State, request: &Request) -> Answer {
    let basic = state.authenticate(request.authorization.as_deref());
    let is_admin = |state: &State| {
        basic
            .as_ref()
            .is_some_and(|user| state.roles_of(user).iter().any(|role| role == "admin"))
    };
    if let Some(answer) = route(state, request, is_admin) {
        return answer;
    }
    match basic.or_else(|| user(state, request)) {
        Some(user) => state.serve_as(request, &user),
        None => Answer::unauthenticated(),
    }
}

/// The sys_id of the user a request logs in as without a password: its
/// bearer token (IPKI) or its client certificate (mutual TLS).
pub fn user(state: &State, request: &Request) -> Option<String> {
    if let Some(token) = request
        .authorization
        .as_deref()
        .and_then(|header| header.strip_prefix("Bearer "))
    {
        let sha256 = digest(token.trim());
        let time = now();
        return state
            .ipki
            .credentials
            .iter()
            .find(|credential| credential.sha256 == sha256 && credential.expires > time)
            .map(|credential| credential.user.clone());
    }
    if request.authorization.is_some() {
        return None;
    }
    let leaf = request.client_certificate.as_deref()?;
    state
        .tables
        .get("sys_user_certificate")?
        .iter()
        .filter(|record| field(record, "active") != "false")
        .find(|record| {
            CertificateDer::pem_slice_iter(field(record, "certificate").as_bytes())
                .next()
                .and_then(Result::ok)
                .is_some_and(|certificate| certificate.as_ref() == leaf)
        })
        .map(|record| field(record, "user").to_string())
}

/// Serves the IPKI endpoints; `None` for any other path. `admin` is
/// whether the request's basic login is an admin's.
pub fn route(
    state: &mut State,
    request: &Request,
    admin: impl Fn(&State) -> bool,
) -> Option<Answer> {
    let answer = match (request.method.as_str(), request.path.as_str()) {
        ("POST", "/api/now/mid/ipki/registration_key") => {
            if !admin(state) {
                return Some(Answer::error(
                    401,
                    "User Not Authenticated",
                    "an admin (or agent_admin) generates registration keys",
                ));
            }
            issue_key(state, request)
        }
        ("POST", "/api/now/mid/ipki/register") => register(state, request),
        _ => return None,
    };
    Some(answer)
}

fn body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap_or(Value::Null)
}

fn issue_key(state: &mut State, request: &Request) -> Answer {
    let body = body(request);
    let user = body["user"].as_str().unwrap_or_default().to_string();
    let known = state
        .tables
        .get("sys_user")
        .is_some_and(|users| users.iter().any(|record| field(record, "sys_id") == user));
    if !known {
        return Answer::error(400, "Invalid user", "`user` must be a sys_user sys_id");
    }
    let seconds = body["expires_in_seconds"].as_u64().unwrap_or(KEY_SECONDS);
    let key = match random_token() {
        Ok(key) => key,
        Err(error) => return Answer::error(500, "Key generation failed", &error),
    };
    let expires = now() + seconds;
    state.ipki.keys.push(RegistrationKey {
        sha256: digest(&key),
        user,
        expires,
        used: false,
        failed_attempts: 0,
    });
    Answer::ok(
        201,
        json!({ "result": { "key": key, "expires": expires.to_string() } }),
    )
}

fn register(state: &mut State, request: &Request) -> Answer {
    let body = body(request);
    let sha256 = digest(body["registration_key"].as_str().unwrap_or_default());
    let user = body["user"].as_str().unwrap_or_default().to_string();
    let name = body["name"].as_str().unwrap_or_default().to_string();
    let time = now();
    let Some(key) = state.ipki.keys.iter_mut().find(|key| key.sha256 == sha256) else {
        return refused("unknown registration key");
    };
    let reason = if key.used {
        Some("the registration key was already used")
    } else if key.failed_attempts >= MAX_FAILED_ATTEMPTS {
        Some("the registration key was revoked after too many failed attempts")
    } else if key.expires <= time {
        Some("the registration key has expired")
    } else if key.user != user {
        key.failed_attempts += 1;
        Some("the registration key was issued for another user (mid.ipki.user)")
    } else {
        None
    };
    if let Some(reason) = reason {
        let mut answer = refused(reason);
        answer.changed = true;
        return answer;
    }
    key.used = true;
    let credential = match random_token() {
        Ok(credential) => credential,
        Err(error) => return Answer::error(500, "Certificate issue failed", &error),
    };
    let expires = time + CREDENTIAL_SECONDS;
    state.ipki.credentials.push(Credential {
        sha256: digest(&credential),
        user,
        name,
        expires,
    });
    Answer::ok(
        201,
        json!({ "result": { "credential": credential, "expires": expires.to_string() } }),
    )
}

fn refused(detail: &str) -> Answer {
    Answer::error(401, "Invalid registration key", detail)
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    fn request(method: &str, path: &str, authorization: Option<String>, body: Value) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            authorization,
            body: body.to_string().into_bytes(),
            ..Request::default()
        }
    }

    fn basic(user: &str, password: &str) -> Option<String> {
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        ))
    }

    /// A seeded state and the admin's sys_id (the MID user here).
    fn seeded() -> (State, String) {
        let mut state = State::default();
        state.seed("pw");
        let admin = state.tables["sys_user"][0]["sys_id"]
            .as_str()
            .expect("admin")
            .to_string();
        (state, admin)
    }

    fn issue(state: &mut State, user: &str, seconds: u64) -> String {
        let answer = handle(
            state,
            &request(
                "POST",
                "/api/now/mid/ipki/registration_key",
                basic("admin", "pw"),
                json!({ "user": user, "expires_in_seconds": seconds }),
            ),
        );
        assert_eq!(answer.status, 201, "{}", answer.body);
        answer.body["result"]["key"]
            .as_str()
            .expect("key")
            .to_string()
    }

    fn register(state: &mut State, key: &str, user: &str) -> Answer {
        handle(
            state,
            &request(
                "POST",
                "/api/now/mid/ipki/register",
                None,
                json!({ "registration_key": key, "user": user, "name": "mid1" }),
            ),
        )
    }

    #[test]
    fn a_key_registers_once_and_its_credential_logs_in_as_a_bearer() {
        let (mut state, user) = seeded();
        // Only an admin issues keys.
        let refused = handle(
            &mut state,
            &request(
                "POST",
                "/api/now/mid/ipki/registration_key",
                None,
                json!({ "user": user }),
            ),
        );
        assert_eq!(refused.status, 401);
        let key = issue(&mut state, &user, 60);
        let answer = register(&mut state, &key, &user);
        assert_eq!(answer.status, 201, "{}", answer.body);
        let credential = answer.body["result"]["credential"]
            .as_str()
            .expect("credential")
            .to_string();
        let again = register(&mut state, &key, &user);
        assert_eq!(again.status, 401);
        assert!(again.body.to_string().contains("already used"));
        let get = |token: &str| {
            request(
                "GET",
                "/api/now/table/sys_user",
                Some(format!("Bearer {token}")),
                Value::Null,
            )
        };
        let read = handle(&mut state, &get(&credential));
        assert_eq!(read.status, 200);
        assert_eq!(read.user.as_deref(), Some("admin"));
        assert_eq!(handle(&mut state, &get("forged")).status, 401);
        // Only digests are kept.
        let saved = serde_json::to_string(&state).expect("state");
        assert!(!saved.contains(&credential) && !saved.contains(&key));
    }

    #[test]
    fn an_expired_key_is_refused_and_five_failures_revoke_one() {
        let (mut state, user) = seeded();
        let expired = issue(&mut state, &user, 0);
        let answer = register(&mut state, &expired, &user);
        assert_eq!(answer.status, 401);
        assert!(answer.body.to_string().contains("expired"));
        let key = issue(&mut state, &user, 60);
        for _ in 0..MAX_FAILED_ATTEMPTS {
            let wrong = register(&mut state, &key, "someone-else");
            assert!(wrong.body.to_string().contains("another user"));
        }
        let answer = register(&mut state, &key, &user);
        assert_eq!(answer.status, 401);
        assert!(answer.body.to_string().contains("revoked"));
    }

    #[test]
    fn a_client_certificate_logs_in_only_as_the_user_of_its_record() {
        let (mut state, user) = seeded();
        let pem = "-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n";
        let mut get = request("GET", "/api/now/table/sys_user", None, Value::Null);
        get.client_certificate = Some(vec![1, 2, 3]);
        assert_eq!(handle(&mut state, &get).status, 401, "no record yet");
        let record = json!({ "user": user, "name": "mid1", "certificate": pem, "active": "true" });
        if let Value::Object(record) = record {
            state
                .tables
                .get_mut("sys_user_certificate")
                .expect("table")
                .push(record);
        }
        assert_eq!(handle(&mut state, &get).status, 200);
        get.client_certificate = Some(vec![1, 2, 4]);
        assert_eq!(handle(&mut state, &get).status, 401, "another certificate");
    }
}
