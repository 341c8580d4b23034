//! Errors of the instance client. They name the method, the URL path and
//! the status — never a query string, a header or a password.

/// Why a call to the instance failed.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// The `url:` of the `instance:` section cannot be used.
    #[error("instance url `{url}`: {reason}")]
    Url { url: String, reason: String },
    /// A user name that cannot be sent to the instance as it is (in a
    /// header, or in a query it could widen).
    #[error("{reason}")]
    Name { reason: String },
    /// A MID name that cannot go into an encoded query (it could widen
    /// it).
    #[error("the MID name `{name}` cannot be looked up on the instance")]
    MidName { name: String },
    /// A secret of the `instance:` section (its user or password) that was
    /// not resolved before connecting.
    #[error("the secret {reference} of the instance section is not resolved")]
    Unresolved { reference: crate::secret::SecretRef },
    /// The `ca_file:` cannot be read or holds no certificate.
    #[error("instance ca_file {path}: {reason}")]
    CaFile { path: String, reason: String },
    /// The instance answered with a status midfleet does not accept.
    #[error("{method} {path}: the instance answered {status}{}", detail_suffix(.detail))]
    Status {
        method: &'static str,
        path: String,
        status: u16,
        detail: Option<String>,
    },
    /// The instance refused the credentials (401).
    #[error("{method} {path}: the instance refused the login of `{user}` (401)")]
    Unauthorized {
        method: &'static str,
        path: String,
        user: String,
    },
    /// No answer in time, after every attempt.
    #[error("{method} {path}: the instance did not answer within {timeout} s ({attempts} attempt{}, {elapsed:.1} s in all)", if *.attempts == 1 { "" } else { "s" })]
    Timeout {
        method: &'static str,
        path: String,
        timeout: u64,
        attempts: u32,
        elapsed: f64,
    },
    /// Could not connect, or the connection broke, after every attempt.
    #[error("{method} {path}: {reason} ({attempts} attempt{})", if *.attempts == 1 { "" } else { "s" })]
    Connection {
        method: &'static str,
        path: String,
        reason: String,
        attempts: u32,
    },
    /// A 2xx answer that is not the JSON the Table API returns.
    #[error("{method} {path}: the answer is not Table API JSON: {reason}")]
    Body {
        method: &'static str,
        path: String,
        reason: String,
    },
}

fn detail_suffix(detail: &Option<String>) -> String {
    detail
        .as_deref()
        .map(|detail| format!(": {detail}"))
        .unwrap_or_default()
}

impl InstanceError {
    /// What the operator can do about it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            InstanceError::Url { .. } => Some("write the instance's base URL, e.g. https://acme.service-now.com"),
            InstanceError::Name { .. }
            | InstanceError::MidName { .. }
            | InstanceError::Unresolved { .. } => None,
            InstanceError::CaFile { .. } => Some("ca_file is a PEM file with the CA certificate(s) that signed the instance's certificate"),
            InstanceError::Status { status: 403, .. } => Some("the integration user lacks a role or ACL for this table, or a business rule refused the change"),
            InstanceError::Status { .. } => None,
            InstanceError::Unauthorized { .. } => Some("check the user name and password, and that the user is active and not locked out"),
            InstanceError::Timeout { .. } => Some("check that the instance is reachable from here (proxy, firewall); `instance.timeout` sets the seconds per request"),
            InstanceError::Connection { .. } => Some("check the url, DNS, the proxy settings (HTTPS_PROXY, NO_PROXY) and, for a private CA, ca_file"),
            InstanceError::Body { .. } => Some("check that the url points at the instance itself, not at a login page or proxy"),
        }
    }

    /// The HTTP status, when the instance answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            InstanceError::Status { status, .. } => Some(*status),
            InstanceError::Unauthorized { .. } => Some(401),
            _ => None,
        }
    }
}
