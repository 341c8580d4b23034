//! The playbook's `instance:` section: the instance, the credentials
//! midfleet uses there, the MID users to ensure and what to do with the
//! old ones — its types and its reading.
//!
//! Must not: contact the instance (the `instance` module does).

use super::reader::Reader;
use super::*;

/// The `instance:` section: how to reach the instance, and what to do there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The base URL, e.g. `https://acme.service-now.com`.
    pub url: String,
    /// The integration user allowed to manage users.
    pub user: InstanceUser,
    /// Its password: always a secret reference.
    pub password: SecretRef,
    /// A PEM file of CA certificates added to this machine's roots
    /// (relative paths: to the playbook's folder).
    pub ca_file: Option<PathBuf>,
    /// Create the MID user and grant `mid_server` when missing.
    pub ensure_user: bool,
    /// Invalidate, then Validate, each MID after its restart: unset, the
    /// MIDs whose key pair is reset; `true`, every changing MID; `false`,
    /// none (each reset one then carries a warning to do it by hand).
    pub validate: Option<bool>,
    pub retire_old_user: RetireOldUser,
    /// Seconds per request to the instance.
    pub timeout: u64,
    /// Write a parameter that one of the MID's `ecc_agent_config` rows
    /// (MID Server configuration parameters) sets to another value: a
    /// warning instead of the host's error (docs/SPEC.md).
    pub allow_override: bool,
    /// Where the section starts.
    pub origin: Origin,
}

/// The integration user's name: written out, or a secret reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceUser {
    Name(String),
    Secret(SecretRef),
}

/// What to do with the MID user a rotation moved away from, after the
/// run, when nothing uses it any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetireOldUser {
    #[default]
    Keep,
    Lock,
    Deactivate,
}

const INSTANCE_KEYS: [&str; 9] = [
    "url",
    "user",
    "password",
    "ca_file",
    "ensure_user",
    "validate",
    "retire_old_user",
    "timeout",
    "allow_override",
];
/// Seconds per request to the instance, by default.
pub const DEFAULT_INSTANCE_TIMEOUT: u64 = 30;

use super::HOST_VARIABLE_SCHEME;

impl Reader<'_> {
    /// A `{ secret: REF }` that needs no template: the instance section is
    /// the same for every host.
    pub(super) fn instance_secret(&mut self, name: &str, node: &Node) -> Option<SecretRef> {
        let text = self.secret(name, node)?;
        if Templates::is_template(&text) {
            let at = node
                .as_mapping()
                .and_then(|entries| entries.first())
                .map_or(node, |(_, value)| value);
            self.error(at, format!("`{name}`: the instance section is the same for every host, so its secret reference cannot be a template"));
            return None;
        }
        if text.starts_with(HOST_VARIABLE_SCHEME) {
            let at = node
                .as_mapping()
                .and_then(|entries| entries.first())
                .map_or(node, |(_, value)| value);
            self.error(at, format!("`{name}`: the instance section is the same for every host, so it cannot take a host's variable (`var:`)")).hint =
                Some("use env:, file:, command: or prompt: here".into());
            return None;
        }
        text.parse().ok()
    }

    pub(super) fn instance(&mut self, node: &Node) -> Option<Instance> {
        let Some(entries) = node.as_mapping() else {
            self.error(
                node,
                format!(
                    "`instance` must be a mapping (url, user, password, …), not {}",
                    node.describe()
                ),
            );
            return None;
        };
        let mut url = None;
        let mut user = None;
        let mut password = None;
        let mut ca_file = None;
        let mut ensure_user = false;
        let mut validate = None;
        let mut retire_old_user = RetireOldUser::Keep;
        let mut timeout = DEFAULT_INSTANCE_TIMEOUT;
        let mut allow_override = false;
        let mut problems = false;
        for (key, value) in entries {
            match key.text().unwrap_or_default() {
                "url" => match self.string(value, "instance.url") {
                    Some(text) => match instance_url_problem(text) {
                        None => {
                            url = Some(text.trim_end_matches('/').to_string());
                        }
                        Some(PLAIN_HTTP_REFUSED) => {
                            self.error(value, format!("`instance.url`: {PLAIN_HTTP_REFUSED}"))
                                .hint =
                                Some("use https:// (a private CA goes in `ca_file`)".into());
                            problems = true;
                        }
                        Some(reason) => {
                            self.error(value, format!("`instance.url`: {reason}")).hint = Some(
                                "write the instance's base URL, e.g. https://acme.service-now.com"
                                    .into(),
                            );
                            problems = true;
                        }
                    },
                    None => problems = true,
                },
                "user" => {
                    user = if value.as_mapping().is_some() {
                        self.instance_secret("instance.user", value)
                            .map(InstanceUser::Secret)
                    } else {
                        self.string(value, "instance.user")
                            .filter(|name| !name.trim().is_empty())
                            .map(|name| InstanceUser::Name(name.to_string()))
                    };
                    problems |= user.is_none();
                }
                "password" => {
                    if value.as_mapping().is_some() {
                        password = self.instance_secret("instance.password", value);
                    } else {
                        self.error(value, "`instance.password` must be a secret reference").hint = Some(
                            "write `password: { secret: \"env:NAME\" }` (or file:, command:, prompt:)".into(),
                        );
                    }
                    problems |= password.is_none();
                }
                "ca_file" => match self.string(value, "instance.ca_file") {
                    Some(text) if !text.is_empty() => {
                        let path = PathBuf::from(text);
                        ca_file = Some(if path.is_relative() {
                            self.path.parent().unwrap_or(Path::new(".")).join(path)
                        } else {
                            path
                        });
                    }
                    _ => problems = true,
                },
                "ensure_user" => match self.boolean(value, "instance.ensure_user") {
                    Some(flag) => ensure_user = flag,
                    None => problems = true,
                },
                "allow_override" => match self.boolean(value, "instance.allow_override") {
                    Some(flag) => allow_override = flag,
                    None => problems = true,
                },
                "validate" => match self.boolean(value, "instance.validate") {
                    Some(flag) => validate = Some(flag),
                    None => problems = true,
                },
                "retire_old_user" => match value.text() {
                    Some("keep") => retire_old_user = RetireOldUser::Keep,
                    Some("lock") => retire_old_user = RetireOldUser::Lock,
                    Some("deactivate") => retire_old_user = RetireOldUser::Deactivate,
                    _ => {
                        self.error(
                            value,
                            "`instance.retire_old_user` is `keep`, `lock` or `deactivate`",
                        );
                        problems = true;
                    }
                },
                "timeout" => match self.seconds(value, "instance.timeout", 600) {
                    Some(seconds) => timeout = seconds,
                    None => problems = true,
                },
                other => {
                    let hint = did_you_mean(other, INSTANCE_KEYS).map_or_else(
                        || format!("`instance` takes {}", INSTANCE_KEYS.join(", ")),
                        |close| format!("did you mean `{close}`?"),
                    );
                    self.error(key, format!("unknown key `instance.{other}`"))
                        .hint = Some(hint);
                    problems = true;
                }
            }
        }
        for (present, name) in [
            (url.is_some(), "url"),
            (user.is_some(), "user"),
            (password.is_some(), "password"),
        ] {
            let given = entries.iter().any(|(key, _)| key.text() == Some(name));
            if !present && !given {
                self.error(node, format!("the `instance` section has no `{name}`")).hint = Some(
                    "`instance` needs url, user (the integration user) and password: { secret: REF }".into(),
                );
                problems = true;
            }
        }
        Some(Instance {
            url: url?,
            user: user?,
            password: password?,
            ca_file,
            ensure_user,
            validate,
            retire_old_user,
            timeout,
            allow_override,
            origin: self.origin(node),
        })
        .filter(|_| !problems)
    }
}

/// Why `url` cannot be an instance's base URL, if it cannot.
pub(super) fn instance_url_problem(url: &str) -> Option<&'static str> {
    let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Some(
            "it must start with https:// (or http:// for a test instance on this machine)",
        );
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        Some("it has no host")
    } else if authority.contains('@') {
        Some("it must not hold credentials; use `user` and `password`")
    } else if url.contains(['?', '#', ' ']) || url.chars().any(char::is_control) {
        Some("it must be a base URL, without query, fragment or spaces")
    } else if !https && !is_loopback_authority(authority) {
        Some(PLAIN_HTTP_REFUSED)
    } else {
        None
    }
}
