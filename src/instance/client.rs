//! A blocking HTTP client for the instance's REST Table API: basic auth,
//! JSON, bounded timeouts, and bounded retries with exponential backoff.
//!
//! Owns: TLS roots (this machine's store plus `ca_file`), one request and
//! its retries, turning answers into JSON or an [`InstanceError`]. Must
//! not: know what a MID or a plan is, or let a password or the
//! `Authorization` header reach an error, a log or `Debug` output.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use zeroize::Zeroizing;

use super::InstanceError;
use crate::secret::SecretValue;

/// Largest answer read (a Table API page of a few users is a few KiB).
const BODY_LIMIT: u64 = 8 * 1024 * 1024;

/// Timeouts and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// One request, from connecting to the last byte of the answer.
    pub timeout: Duration,
    /// Connecting (DNS, TCP, TLS handshake).
    pub connect_timeout: Duration,
    /// Attempts per call, the first included.
    pub attempts: u32,
    /// All attempts of one call and the waits between them: an attempt is
    /// started only when it can end (timeout included) within this.
    pub total: Duration,
    /// The first wait between attempts; it doubles each time.
    pub first_backoff: Duration,
    /// The longest wait between attempts (also caps `Retry-After`).
    pub max_backoff: Duration,
}

impl Settings {
    /// The settings for `timeout` seconds per request: connecting gets at
    /// most 10 s of it, a call at most 5 attempts within 3 × `timeout`.
    pub fn with_timeout(seconds: u64) -> Settings {
        let timeout = Duration::from_secs(seconds.max(1));
        Settings {
            timeout,
            connect_timeout: timeout.min(Duration::from_secs(10)),
            attempts: 5,
            total: timeout * 3,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
        }
    }
}

impl Default for Settings {
    fn default() -> Settings {
        Settings::with_timeout(30)
    }
}

/// A user and password for basic auth. `Debug` and errors show the user
/// only — or, for a user that came from a secret reference, the reference.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: SecretValue,
    /// How errors name the user when its name is itself a secret.
    pub shown_as: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Credentials")
            .field("user", &self.shown())
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// A user named in the open.
    pub fn new(user: String, password: SecretValue) -> Credentials {
        Credentials {
            user,
            password,
            shown_as: None,
        }
    }

    /// The user as errors and logs may name it.
    pub fn shown(&self) -> &str {
        self.shown_as.as_deref().unwrap_or(&self.user)
    }

    fn header(&self) -> Result<ureq::http::HeaderValue, InstanceError> {
        let pair = Zeroizing::new(format!("{}:{}", self.user, self.password.expose()));
        let encoded = Zeroizing::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())
        ));
        let mut value =
            ureq::http::HeaderValue::from_str(&encoded).map_err(|_| InstanceError::Name {
                reason: format!(
                    "the user name of {} cannot be sent in a header",
                    self.shown()
                ),
            })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// The methods midfleet uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
        }
    }

    /// GET and PATCH (setting fields to values) may be sent again after any
    /// failure; a POST only when the instance surely did not act on it.
    fn idempotent(self) -> bool {
        !matches!(self, Method::Post)
    }
}

/// A 2xx answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub json: Value,
}

/// The instance at one base URL.
pub struct Client {
    agent: ureq::Agent,
    /// `https://host[:port][/prefix]`, without a trailing `/`.
    base: String,
    /// The `/prefix` part of `base`, for error messages.
    base_path: String,
    settings: Settings,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Client")
            .field("base", &self.base)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the instance at `url`, trusting this machine's CA
    /// store plus the certificates in `ca_file`.
    pub fn new(
        url: &str,
        ca_file: Option<&Path>,
        settings: Settings,
    ) -> Result<Client, InstanceError> {
        let (base, base_path, https) = check_url(url)?;
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // A redirect is a login page or a proxy, never the Table API:
            // credentials are not sent anywhere else.
            .max_redirects(0)
            .timeout_connect(Some(settings.connect_timeout))
            .timeout_per_call(Some(settings.timeout))
            .user_agent(format!("midfleet/{}", env!("CARGO_PKG_VERSION")))
            .accept("application/json");
        if https {
            config = config.tls_config(tls_config(ca_file)?);
        } else if let Some(path) = ca_file {
            return Err(InstanceError::CaFile {
                path: path.display().to_string(),
                reason: "given for a plain http:// url".into(),
            });
        }
        Ok(Client {
            agent: config.build().new_agent(),
            base,
            base_path,
            settings,
        })
    }

    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// The path of a Table API resource below the base URL.
    pub fn table_path(table: &str, sys_id: Option<&str>) -> String {
        match sys_id {
            Some(sys_id) => format!("/api/now/table/{table}/{sys_id}"),
            None => format!("/api/now/table/{table}"),
        }
    }

    /// Sends one call to `api_path` (below the base URL), retrying as [`Settings`] allows: on 429 and 5xx
    /// answers, timeouts and broken connections (a POST only on 429, 503
    /// and refused connections, which the instance did not act on).
    pub fn call(
        &self,
        method: Method,
        api_path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        credentials: &Credentials,
    ) -> Result<Answer, InstanceError> {
        let url = format!("{}{api_path}", self.base);
        // Errors name the path, never the query (nor the host's answer body).
        let path = &format!("{}{api_path}", self.base_path);
        let authorization = credentials.header()?;
        let body = body.map(|body| Zeroizing::new(body.to_string()));
        let started = Instant::now();
        let deadline = started + self.settings.total;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = self.send_once(
                method,
                &url,
                query,
                body.as_ref().map(|body| body.as_str()),
                &authorization,
            );
            let (retry, wait, failure) = match outcome {
                Ok((status, _, text)) if (200..300).contains(&status) => {
                    let json = if text.trim().is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_str(&text).map_err(|error| InstanceError::Body {
                            method: method.as_str(),
                            path: path.to_string(),
                            reason: error.to_string(),
                        })?
                    };
                    return Ok(Answer { status, json });
                }
                Ok((401, _, _)) => {
                    return Err(InstanceError::Unauthorized {
                        method: method.as_str(),
                        path: path.to_string(),
                        user: credentials.shown().to_string(),
                    })
                }
                Ok((status, retry_after, text)) => {
                    let retry =
                        status == 429 || status == 503 || (status >= 500 && method.idempotent());
                    let failure = InstanceError::Status {
                        method: method.as_str(),
                        path: path.to_string(),
                        status,
                        detail: error_detail(&text),
                    };
                    (retry, retry_after, failure)
                }
                Err(Failed::Timeout) => (
                    method.idempotent(),
                    None,
                    InstanceError::Timeout {
                        method: method.as_str(),
                        path: path.to_string(),
                        timeout: self.settings.timeout.as_secs(),
                        attempts: attempt,
                        elapsed: 0.0,
                    },
                ),
                Err(Failed::Connection { reason, refused }) => (
                    refused || method.idempotent(),
                    None,
                    InstanceError::Connection {
                        method: method.as_str(),
                        path: path.to_string(),
                        reason,
                        attempts: attempt,
                    },
                ),
                Err(Failed::Final(reason)) => {
                    return Err(InstanceError::Connection {
                        method: method.as_str(),
                        path: path.to_string(),
                        reason,
                        attempts: attempt,
                    })
                }
            };
            let wait = wait
                .unwrap_or_else(|| backoff(&self.settings, attempt))
                .min(self.settings.max_backoff);
            let now = Instant::now();
            // Another attempt only when it can end, wait and timeout
            // included, within the call's budget.
            if !retry
                || attempt >= self.settings.attempts
                || now + wait + self.settings.timeout > deadline
            {
                return Err(with_totals(failure, attempt, started.elapsed()));
            }
            std::thread::sleep(wait);
        }
    }

    fn send_once(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, &str)],
        body: Option<&str>,
        authorization: &ureq::http::HeaderValue,
    ) -> Result<(u16, Option<Duration>, String), Failed> {
        let result = match method {
            Method::Get => self
                .agent
                .get(url)
                .header("Authorization", authorization.clone())
                .query_pairs(query.iter().copied())
                .call(),
            Method::Post | Method::Patch => {
                let request = if method == Method::Post {
                    self.agent.post(url)
                } else {
                    self.agent.patch(url)
                };
                request
                    .header("Authorization", authorization.clone())
                    .header("Content-Type", "application/json")
                    .query_pairs(query.iter().copied())
                    .send(body.unwrap_or("{}"))
            }
        };
        let mut response = result.map_err(classify)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_string()
            .map_err(classify)?;
        Ok((status, retry_after, text))
    }
}

/// How one attempt failed before a whole answer came.
enum Failed {
    Timeout,
    /// `refused`: the connection was never made, so nothing was sent.
    Connection {
        reason: String,
        refused: bool,
    },
    /// Sending again cannot help (a certificate the roots do not trust…).
    Final(String),
}

fn classify(error: ureq::Error) -> Failed {
    match error {
        ureq::Error::Timeout(_) => Failed::Timeout,
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => Failed::Timeout,
            std::io::ErrorKind::ConnectionRefused => Failed::Connection {
                reason: "connection refused".into(),
                refused: true,
            },
            // rustls reports certificate and handshake problems as
            // InvalidData: the same certificate fails every time.
            std::io::ErrorKind::InvalidData => Failed::Final(format!("TLS: {io}")),
            _ => Failed::Connection {
                reason: io.to_string(),
                refused: false,
            },
        },
        ureq::Error::HostNotFound => Failed::Connection {
            reason: "host not found (DNS)".into(),
            refused: true,
        },
        ureq::Error::ConnectionFailed => Failed::Connection {
            reason: "connection failed".into(),
            refused: true,
        },
        ureq::Error::Tls(reason) => Failed::Final(format!("TLS: {reason}")),
        ureq::Error::BodyExceedsLimit(limit) => {
            Failed::Final(format!("the answer is larger than {limit} bytes"))
        }
        other => Failed::Connection {
            reason: other.to_string(),
            refused: false,
        },
    }
}

/// The wait before attempt `attempt + 1`: first_backoff × 2^(attempt-1).
fn backoff(settings: &Settings, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    settings.first_backoff.saturating_mul(factor)
}

fn with_totals(error: InstanceError, attempts: u32, elapsed: Duration) -> InstanceError {
    match error {
        InstanceError::Timeout {
            method,
            path,
            timeout,
            ..
        } => InstanceError::Timeout {
            method,
            path,
            timeout,
            attempts,
            elapsed: elapsed.as_secs_f64(),
        },
        InstanceError::Connection {
            method,
            path,
            reason,
            ..
        } => InstanceError::Connection {
            method,
            path,
            reason,
            attempts,
        },
        other => other,
    }
}

/// The `error.message` (and `detail`) of a Table API error answer, cut
/// short; other bodies are not repeated.
fn error_detail(text: &str) -> Option<String> {
    let json: Value = serde_json::from_str(text).ok()?;
    let error = json.get("error")?;
    let message = error.get("message").and_then(Value::as_str).unwrap_or("");
    let detail = error.get("detail").and_then(Value::as_str).unwrap_or("");
    let joined = match (message.is_empty(), detail.is_empty()) {
        (false, false) => format!("{message} ({detail})"),
        (false, true) => message.to_string(),
        (true, false) => detail.to_string(),
        (true, true) => return None,
    };
    Some(joined.chars().take(300).collect())
}

/// Why plain http is refused: what `check`, `plan` and `apply` say.
pub const PLAIN_HTTP_REFUSED: &str =
    "plain http:// is accepted only for an instance on this machine (127.0.0.0/8, ::1, localhost): \
     anywhere else the integration user's and the MID users' passwords would cross the network in clear";

/// Whether the host of `authority` (`host`, `host:port`, `[v6]:port`) is
/// a loopback address or `localhost`, the only hosts plain http may reach.
pub fn is_loopback_authority(authority: &str) -> bool {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        match rest.split_once(']') {
            Some((host, after)) if after.is_empty() || after.starts_with(':') => host,
            _ => return false,
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port))
                if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                host
            }
            Some(_) => return false,
            None => authority,
        }
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|address| address.is_loopback())
}

/// `(base, base_path, https)` of an instance URL.
fn check_url(url: &str) -> Result<(String, String, bool), InstanceError> {
    let failure = |reason: &str| InstanceError::Url {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(failure(
            "must start with https:// (or http:// for a test instance on this machine)",
        ));
    };
    if url.contains(['?', '#', ' ']) || url.chars().any(char::is_control) {
        return Err(failure(
            "must be a base URL, without query, fragment or spaces",
        ));
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.is_empty() {
        return Err(failure("has no host"));
    }
    if authority.contains('@') {
        return Err(failure(
            "must not hold credentials; use `user` and `password`",
        ));
    }
    if !https && !is_loopback_authority(authority) {
        return Err(failure(PLAIN_HTTP_REFUSED));
    }
    let path = path.trim_end_matches('/').to_string();
    let scheme = if https { "https" } else { "http" };
    Ok((format!("{scheme}://{authority}{path}"), path, https))
}

/// The roots: this machine's CA store, plus `ca_file`'s certificates.
fn tls_config(ca_file: Option<&Path>) -> Result<TlsConfig, InstanceError> {
    let mut roots: Vec<Certificate<'static>> = Vec::new();
    let native = rustls_native_certs::load_native_certs();
    roots.extend(
        native
            .certs
            .iter()
            .map(|der| Certificate::from_der(der.as_ref()).to_owned()),
    );
    if let Some(path) = ca_file {
        let failure = |reason: String| InstanceError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|error| failure(error.to_string()))?;
        let mut found = 0;
        for item in ureq::tls::parse_pem(&bytes) {
            match item {
                Ok(PemItem::Certificate(certificate)) => {
                    roots.push(certificate.to_owned());
                    found += 1;
                }
                Ok(_) => {}
                Err(error) => return Err(failure(format!("not PEM: {error}"))),
            }
        }
        if found == 0 {
            return Err(failure("holds no PEM certificate".into()));
        }
    }
    if roots.is_empty() {
        return Err(InstanceError::CaFile {
            path: "(none)".into(),
            reason: "this machine's CA store is empty and no ca_file is given".into(),
        });
    }
    Ok(TlsConfig::builder()
        .root_certs(RootCerts::Specific(Arc::new(roots)))
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_base_urls_without_credentials() {
        assert_eq!(
            check_url("https://acme.service-now.com/").unwrap(),
            ("https://acme.service-now.com".into(), String::new(), true)
        );
        assert_eq!(
            check_url("http://127.0.0.1:8080/prefix").unwrap(),
            (
                "http://127.0.0.1:8080/prefix".into(),
                "/prefix".into(),
                false
            )
        );
        for bad in [
            "acme.service-now.com",
            "ftp://x",
            "https://",
            "https://admin:pw@acme.service-now.com",
            "https://acme.service-now.com/?x=1",
            "http://acme.service-now.com",
            "http://10.0.0.1:8080",
            "http://127.0.0.1.example.com",
        ] {
            let error = check_url(bad).unwrap_err().to_string();
            assert!(!error.contains("pw@") || bad.contains("pw@"), "{error}");
        }
    }

    #[test]
    fn plain_http_only_to_loopback() {
        let cases = [
            ("127.0.0.1", true),
            ("127.0.0.1:8080", true),
            ("127.255.3.4:1", true),
            ("[::1]:8080", true),
            ("[::1]", true),
            ("localhost", true),
            ("LocalHost:80", true),
            ("10.0.0.1", false),
            ("128.0.0.1", false),
            ("acme.service-now.com", false),
            ("localhost.example.com", false),
            ("127.0.0.1.nip.io", false),
            ("[::2]:80", false),
            ("[::1]x", false),
            ("::1", false),
            ("localhost:x", false),
            ("[::ffff:127.0.0.1]", false),
        ];
        for (authority, expected) in cases {
            assert_eq!(is_loopback_authority(authority), expected, "{authority}");
        }
        let error = check_url("http://acme.service-now.com").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("only for an instance on this machine"),
            "{error}"
        );
        assert!(check_url("http://[::1]:8080").is_ok());
    }

    #[test]
    fn backoff_doubles_from_the_first_wait() {
        let settings = Settings::with_timeout(30);
        let waits: Vec<u128> = (1..=5)
            .map(|attempt| backoff(&settings, attempt).as_millis())
            .collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000]);
    }

    #[test]
    fn credentials_debug_and_errors_hold_no_password() {
        let credentials =
            Credentials::new("svc_mid".into(), SecretValue::new("hunter2-secret".into()));
        let shown = format!("{credentials:?}");
        assert!(
            shown.contains("svc_mid") && !shown.contains("hunter2"),
            "{shown}"
        );
        let header = credentials.header().unwrap();
        assert!(header.is_sensitive());
        assert!(!format!("{header:?}").contains("aHVudGVy"), "{header:?}");
    }

    #[test]
    fn table_api_error_details_are_short() {
        let text = r#"{"error":{"message":"Operation Failed","detail":"Error during insert"},"status":"failure"}"#;
        assert_eq!(
            error_detail(text).as_deref(),
            Some("Operation Failed (Error during insert)")
        );
        assert_eq!(error_detail("<html>login</html>"), None);
    }
}
