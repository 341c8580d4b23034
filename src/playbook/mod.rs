//! The playbook: which hosts, the parameters they must hold or not hold,
//! and how the change rolls out.
//!
//! Owns: reading and checking a playbook file (every problem, with its
//! line and column), and the rollout arithmetic. Must not: read the
//! inventory or resolve secrets.

pub mod desired;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config_xml::names;
use crate::diagnostic::{did_you_mean, Diagnostic, Diagnostics, Origin};
use crate::instance::client::{is_loopback_authority, PLAIN_HTTP_REFUSED};
use crate::secret::SecretRef;
use crate::template::Templates;
use crate::yaml::{self, Node, Scalar};

const KEYS: [&str; 8] = [
    "name", "hosts", "set", "unset", "restart", "health", "rollout", "instance",
];
const DEFAULT_HEALTH_TIMEOUT: u64 = 300;

/// A checked playbook.
#[derive(Debug, Clone)]
pub struct Playbook {
    pub path: PathBuf,
    pub name: Option<String>,
    pub hosts: String,
    pub hosts_origin: Origin,
    pub set: Vec<SetEntry>,
    pub unset: Vec<UnsetEntry>,
    pub restart: Restart,
    pub health: Health,
    pub rollout: Rollout,
    /// The `instance:` section (`docs/instance.md`).
    pub instance: Option<Instance>,
}

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

const INSTANCE_KEYS: [&str; 8] = [
    "url",
    "user",
    "password",
    "ca_file",
    "ensure_user",
    "validate",
    "retire_old_user",
    "timeout",
];
/// Seconds per request to the instance, by default.
pub const DEFAULT_INSTANCE_TIMEOUT: u64 = 30;

/// `name: value` under `set:`.
#[derive(Debug, Clone)]
pub struct SetEntry {
    pub name: String,
    pub value: SetValue,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetValue {
    /// A minijinja template over the host's variables.
    Template(String),
    /// `{ secret: "REF" }`; `env:` names and `file:` paths may be templates.
    Secret(String),
}

#[derive(Debug, Clone)]
pub struct UnsetEntry {
    pub name: String,
    pub origin: Origin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    OnChange,
    Always,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Health {
    /// Seconds to wait for the MID to log in after a start.
    pub timeout: u64,
}

/// A number of hosts, or a share of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    Count(usize),
    Percent(u32),
}

impl Amount {
    /// The count this amount means out of `total` hosts (a percentage
    /// rounds down, as Ansible's `serial` does).
    pub fn of(self, total: usize) -> usize {
        match self {
            Amount::Count(count) => count,
            Amount::Percent(percent) => total * percent as usize / 100,
        }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amount::Count(count) => write!(formatter, "{count}"),
            Amount::Percent(percent) => write!(formatter, "{percent}%"),
        }
    }
}

impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Amount::Count(count) => serializer.serialize_u64(*count as u64),
            Amount::Percent(_) => serializer.collect_str(self),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rollout {
    /// Batch sizes; the last one repeats.
    pub serial: Vec<Amount>,
    /// Failed hosts tolerated before later batches are cancelled.
    pub max_fail: Amount,
}

impl Default for Rollout {
    /// A canary of one host, then all the rest.
    fn default() -> Rollout {
        Rollout {
            serial: vec![Amount::Count(1), Amount::Percent(100)],
            max_fail: Amount::Count(0),
        }
    }
}

impl Rollout {
    /// The sizes of the batches `total` hosts are rolled out in. Every
    /// batch holds at least one host.
    pub fn batches(&self, total: usize) -> Vec<usize> {
        let mut batches = Vec::new();
        let mut remaining = total;
        let mut index = 0;
        while remaining > 0 {
            let amount = self.serial[index.min(self.serial.len() - 1)];
            let size = amount.of(total).clamp(1, remaining);
            batches.push(size);
            remaining -= size;
            index += 1;
        }
        batches
    }
}

impl Playbook {
    /// Reads and checks the playbook at `path`. Problems are collected, and
    /// what could be read is returned even when there are errors (so that
    /// `check` can go on to find more): a caller that acts on the playbook
    /// must refuse it when the diagnostics hold an error.
    pub fn load(path: &Path) -> (Option<Playbook>, Diagnostics) {
        match crate::source_file::read(path) {
            Ok(text) => Playbook::from_text(path, &text),
            Err(diagnostic) => {
                let mut diagnostics = Diagnostics::new();
                diagnostics.push(diagnostic);
                (None, diagnostics)
            }
        }
    }

    /// Checks a playbook's text as [`Playbook::load`] checks the file's;
    /// `path` names it in diagnostics. For tests and fuzzing.
    pub fn from_text(path: &Path, text: &str) -> (Option<Playbook>, Diagnostics) {
        let mut diagnostics = Diagnostics::new();
        let root = match yaml::parse(text) {
            Ok(Some(root)) => root,
            Ok(None) => {
                diagnostics.push(Diagnostic::error(
                    Some(Origin::file(path)),
                    "the playbook is empty",
                ));
                return (None, diagnostics);
            }
            Err(error) => {
                diagnostics.push(error.diagnostic(path));
                return (None, diagnostics);
            }
        };
        let mut reader = Reader {
            path,
            diagnostics: &mut diagnostics,
        };
        let playbook = reader.playbook(&root);
        (playbook, diagnostics)
    }
}

struct Reader<'a> {
    path: &'a Path,
    diagnostics: &'a mut Diagnostics,
}

impl Reader<'_> {
    fn origin(&self, node: &Node) -> Origin {
        Origin::new(self.path, node.at)
    }

    /// Records an error at `node`; the caller may add a hint to it.
    fn error(&mut self, node: &Node, message: impl Into<String>) -> &mut Diagnostic {
        let diagnostic = Diagnostic::error(Some(self.origin(node)), message);
        self.diagnostics.push(diagnostic);
        self.diagnostics.last_mut().expect("just pushed")
    }

    fn playbook(&mut self, root: &Node) -> Option<Playbook> {
        let Some(entries) = root.as_mapping() else {
            let hint = if root.as_sequence().is_some() {
                "an Ansible playbook is a list of plays; a midfleet playbook is one mapping (name, hosts, set, unset, …)"
            } else {
                "a playbook is a mapping with hosts, set, unset, restart, health and rollout"
            };
            self.error(
                root,
                format!("a playbook must be a mapping, not {}", root.describe()),
            )
            .hint = Some(hint.into());
            return None;
        };
        let mut name = None;
        let mut hosts = None;
        let mut set = Vec::new();
        let mut unset = Vec::new();
        let mut restart = Restart::OnChange;
        let mut health = Health {
            timeout: DEFAULT_HEALTH_TIMEOUT,
        };
        let mut rollout = Rollout::default();
        let mut instance = None;
        for (key, value) in entries {
            match key.text().unwrap_or_default() {
                "name" => name = self.string(value, "name").map(str::to_string),
                "hosts" => {
                    hosts = self
                        .hosts(value)
                        .map(|pattern| (pattern, self.origin(value)))
                }
                "set" => set = self.set(value),
                "unset" => unset = self.unset(value),
                "restart" => match value.text() {
                    Some("on-change") => restart = Restart::OnChange,
                    Some("always") => restart = Restart::Always,
                    _ => {
                        self.error(value, "`restart` is `on-change` or `always`");
                    }
                },
                "health" => health = self.health(value),
                "rollout" => rollout = self.rollout(value),
                "instance" => instance = self.instance(value),
                other => {
                    let hint =
                        did_you_mean(other, KEYS).map(|close| format!("did you mean `{close}`?"));
                    self.error(key, format!("unknown key `{other}`")).hint =
                        Some(hint.unwrap_or_else(|| {
                            format!("a playbook's keys are {}", KEYS.join(", "))
                        }));
                }
            }
        }
        self.check_overlaps(&set, &unset);
        let Some((hosts, hosts_origin)) = hosts else {
            self.error(root, "the playbook has no `hosts:` pattern")
                .hint = Some("add e.g. `hosts: all` or `hosts: emea:!mid-emea-03`".into());
            return None;
        };
        if set.is_empty() && unset.is_empty() {
            self.diagnostics.push(Diagnostic::warning(
                Some(Origin::file(self.path)),
                "the playbook sets and unsets nothing; it only keeps the MIDs running",
            ));
        }
        Some(Playbook {
            path: self.path.to_path_buf(),
            name,
            hosts,
            hosts_origin,
            set,
            unset,
            restart,
            health,
            rollout,
            instance,
        })
    }

    fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match node.typed() {
            Some(Scalar::Bool(flag)) => Some(flag),
            _ => {
                self.error(
                    node,
                    format!("`{what}` must be true or false, not {}", node.describe()),
                );
                None
            }
        }
    }

    /// A `{ secret: REF }` that needs no template: the instance section is
    /// the same for every host.
    fn instance_secret(&mut self, name: &str, node: &Node) -> Option<SecretRef> {
        let text = self.secret(name, node)?;
        if Templates::is_template(&text) {
            let at = node
                .as_mapping()
                .and_then(|entries| entries.first())
                .map_or(node, |(_, value)| value);
            self.error(at, format!("`{name}`: the instance section is the same for every host, so its secret reference cannot be a template"));
            return None;
        }
        text.parse().ok()
    }

    fn instance(&mut self, node: &Node) -> Option<Instance> {
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
            origin: self.origin(node),
        })
        .filter(|_| !problems)
    }

    fn string<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n str> {
        match node.typed() {
            Some(Scalar::String(text)) => Some(text),
            _ => {
                self.error(
                    node,
                    format!("`{what}` must be a string, not {}", node.describe()),
                );
                None
            }
        }
    }

    fn hosts(&mut self, node: &Node) -> Option<String> {
        if let Some(items) = node.as_sequence() {
            let parts: Vec<&str> = items
                .iter()
                .filter_map(|item| self.string(item, "hosts"))
                .collect();
            if parts.is_empty() {
                self.error(node, "`hosts` is empty");
                return None;
            }
            return Some(parts.join(","));
        }
        let pattern = self.string(node, "hosts")?;
        if pattern.trim().is_empty() {
            self.error(node, "`hosts` is empty");
            return None;
        }
        Some(pattern.to_string())
    }

    fn parameter_name(&mut self, node: &Node, section: &str) -> Option<String> {
        let name = match node.text() {
            Some(name)
                if !name.is_empty()
                    && !name.chars().any(|c| c.is_control() || c.is_whitespace()) =>
            {
                name
            }
            _ => {
                self.error(
                    node,
                    format!("a parameter name in `{section}` must be a non-empty word"),
                );
                return None;
            }
        };
        if names::WRITTEN_BY_MID.contains(&name) {
            self.error(
                node,
                format!(
                    "`{name}` is written by the MID Server itself and cannot be in `{section}`"
                ),
            )
            .hint = Some(if name == names::KEY_PAIR_ID {
                "midfleet removes keypairs.mid_id by itself when mid.instance.username changes, and the MID writes a new one at start".into()
            } else {
                "the MID writes mid_sys_id when it registers with the instance".into()
            });
            return None;
        }
        Some(name.to_string())
    }

    fn set(&mut self, node: &Node) -> Vec<SetEntry> {
        if node.is_null() {
            return Vec::new();
        }
        let Some(entries) = node.as_mapping() else {
            self.error(
                node,
                format!(
                    "`set` must be a mapping of parameter: value, not {}",
                    node.describe()
                ),
            );
            return Vec::new();
        };
        let mut set = Vec::new();
        for (key, value) in entries {
            let Some(name) = self.parameter_name(key, "set") else {
                continue;
            };
            let origin = self.origin(value);
            let value = match &value.kind {
                yaml::Kind::Scalar { text, .. } => match value.typed() {
                    Some(Scalar::Null) => {
                        self.error(value, format!("`{name}` has no value")).hint =
                            Some(format!("to remove the parameter, list it under `unset:`; for an empty value write `{name}: \"\"`"));
                        continue;
                    }
                    Some(Scalar::Bool(flag)) => SetValue::Template(flag.to_string()),
                    _ => SetValue::Template(text.clone()),
                },
                yaml::Kind::Mapping(_) if names::canonical(&name) == names::USERNAME => {
                    self.error(value, format!("`{name}` cannot come from a secret reference")).hint = Some(
                        "the MID logs its user name in clear, and midfleet checks the login by it: write it as a value".into(),
                    );
                    continue;
                }
                yaml::Kind::Mapping(_) => match self.secret(&name, value) {
                    Some(reference) => SetValue::Secret(reference),
                    None => continue,
                },
                yaml::Kind::Sequence(_) => {
                    self.error(
                        value,
                        format!("`{name}` must be a string or {{ secret: REF }}, not a list"),
                    );
                    continue;
                }
            };
            if let SetValue::Template(text) = &value {
                if names::is_password(&name) {
                    self.diagnostics.push(
                        Diagnostic::warning(
                            Some(origin.clone()),
                            format!("`{name}` is sensitive but its value is written in the playbook"),
                        )
                        .with_hint(format!("use `{name}: {{ secret: \"env:NAME\" }}` (or file:, command:, prompt:)")),
                    );
                } else if let Err(reason) = crate::config_xml::check_xml_chars(text) {
                    self.diagnostics.push(Diagnostic::error(
                        Some(origin.clone()),
                        format!("`{name}`: {reason}"),
                    ));
                    continue;
                }
            }
            set.push(SetEntry {
                name,
                value,
                origin,
            });
        }
        set
    }

    fn secret(&mut self, name: &str, node: &Node) -> Option<String> {
        let entries = node.as_mapping().unwrap_or_default();
        let reference = match entries {
            [(key, value)] if key.text() == Some("secret") => value,
            _ => {
                self.error(
                    node,
                    format!("`{name}`: a mapping value must be `{{ secret: REF }}`"),
                )
                .hint = Some("REF is env:NAME, file:PATH, command:CMD or prompt:LABEL".into());
                return None;
            }
        };
        let text = self.string(reference, "secret")?.to_string();
        let scheme = text.split_once(':').map(|(scheme, _)| scheme);
        match scheme {
            Some("env" | "file") => {
                // Templates are allowed here; the reference is checked once
                // rendered for each host.
            }
            Some("command" | "prompt") if Templates::is_template(&text) => {
                self.diagnostics.push(
                    Diagnostic::warning(
                        Some(self.origin(reference)),
                        format!("`{name}`: {} references are not templates; `{{{{ … }}}}` is used as written", scheme.unwrap_or_default()),
                    )
                    .with_hint("inventory values must never become commands; use env: or file: with a template instead"),
                );
            }
            _ => {}
        }
        if !Templates::is_template(&text) {
            if let Err(error) = text.parse::<SecretRef>() {
                let hint = error.hint().map(str::to_string);
                let diagnostic = self.error(reference, format!("`{name}`: {error}"));
                diagnostic.hint = hint;
                return None;
            }
        }
        Some(text)
    }

    fn unset(&mut self, node: &Node) -> Vec<UnsetEntry> {
        if node.is_null() {
            return Vec::new();
        }
        let Some(items) = node.as_sequence() else {
            self.error(
                node,
                format!(
                    "`unset` must be a list of parameter names, not {}",
                    node.describe()
                ),
            )
            .hint = Some("write `unset: [mid.proxy.use_proxy]`".into());
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| {
                let name = self.parameter_name(item, "unset")?;
                Some(UnsetEntry {
                    name,
                    origin: self.origin(item),
                })
            })
            .collect()
    }

    /// One parameter (counting the `glide.glidesoap.*` aliases) may appear
    /// once across `set` and `unset`.
    fn check_overlaps(&mut self, set: &[SetEntry], unset: &[UnsetEntry]) {
        let all: Vec<(&str, &Origin)> = set
            .iter()
            .map(|entry| (entry.name.as_str(), &entry.origin))
            .chain(
                unset
                    .iter()
                    .map(|entry| (entry.name.as_str(), &entry.origin)),
            )
            .collect();
        for (index, (name, origin)) in all.iter().enumerate() {
            if let Some((first, first_origin)) = all[..index]
                .iter()
                .find(|(earlier, _)| names::same_parameter(earlier, name))
            {
                let line = first_origin.at.map_or(0, |at| at.line);
                self.diagnostics.push(
                    Diagnostic::error(
                        Some((*origin).clone()),
                        format!("`{name}` is already given as `{first}` on line {line}"),
                    )
                    .with_hint("give each parameter once across set and unset; glide.glidesoap.* names are aliases of mid.instance.*"),
                );
            }
        }
    }

    fn seconds(&mut self, node: &Node, what: &str, high: u64) -> Option<u64> {
        match node.typed() {
            Some(Scalar::Integer(value)) if value >= 1 && value as u64 <= high => {
                Some(value as u64)
            }
            _ => {
                self.error(
                    node,
                    format!("`{what}` must be a whole number of seconds from 1 to {high}"),
                );
                None
            }
        }
    }

    fn health(&mut self, node: &Node) -> Health {
        let mut health = Health {
            timeout: DEFAULT_HEALTH_TIMEOUT,
        };
        let Some(entries) = node.as_mapping() else {
            self.error(node, "`health` must be a mapping (timeout)");
            return health;
        };
        for (key, value) in entries {
            match key.text().unwrap_or_default() {
                "timeout" => {
                    if let Some(timeout) = self.seconds(value, "health.timeout", 86_400) {
                        health.timeout = timeout;
                    }
                }
                other => {
                    self.error(key, format!("unknown key `health.{other}`"))
                        .hint = Some("`health` takes `timeout`".into());
                }
            }
        }
        health
    }

    fn amount(&mut self, node: &Node, what: &str, zero_allowed: bool) -> Option<Amount> {
        let low = usize::from(!zero_allowed);
        let amount = match node.typed() {
            Some(Scalar::Integer(count)) if count >= low as i64 => {
                Some(Amount::Count(count as usize))
            }
            Some(Scalar::String(text)) => text
                .trim()
                .strip_suffix('%')
                .and_then(|percent| percent.trim().parse::<u32>().ok())
                .filter(|percent| (low as u32..=100).contains(percent))
                .map(Amount::Percent),
            _ => None,
        };
        if amount.is_none() {
            self.error(
                node,
                format!("`{what}` must be a number of hosts or a percentage like 25%"),
            );
        }
        amount
    }

    fn rollout(&mut self, node: &Node) -> Rollout {
        let mut rollout = Rollout::default();
        let Some(entries) = node.as_mapping() else {
            self.error(node, "`rollout` must be a mapping (serial, max_fail)");
            return rollout;
        };
        for (key, value) in entries {
            match key.text().unwrap_or_default() {
                "serial" => {
                    let items: Vec<&Node> = match value.as_sequence() {
                        Some(items) => items.iter().collect(),
                        None => vec![value],
                    };
                    if items.is_empty() {
                        self.error(value, "`rollout.serial` is an empty list");
                        continue;
                    }
                    let serial: Vec<Amount> = items
                        .into_iter()
                        .filter_map(|item| self.amount(item, "rollout.serial", false))
                        .collect();
                    if !serial.is_empty() {
                        rollout.serial = serial;
                    }
                }
                "max_fail" => {
                    if let Some(amount) = self.amount(value, "rollout.max_fail", true) {
                        rollout.max_fail = amount;
                    }
                }
                other => {
                    let hint = did_you_mean(other, ["serial", "max_fail"]).map_or_else(
                        || "`rollout` takes `serial` and `max_fail`".to_string(),
                        |close| format!("did you mean `{close}`?"),
                    );
                    self.error(key, format!("unknown key `rollout.{other}`"))
                        .hint = Some(hint);
                }
            }
        }
        rollout
    }
}

/// Why `url` cannot be an instance's base URL, if it cannot.
fn instance_url_problem(url: &str) -> Option<&'static str> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_instance_user_cannot_be_a_secret_reference() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("p.yml");
        std::fs::write(
            &path,
            "hosts: all\nset:\n  mid.instance.username: { secret: \"env:U\" }\n",
        )
        .unwrap();
        let (_, diagnostics) = Playbook::load(&path);
        let messages: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
        assert!(
            messages
                .iter()
                .any(|message| message.contains("cannot come from a secret reference")),
            "{messages:?}"
        );
    }

    fn load_text(text: &str) -> (Option<Playbook>, Vec<String>) {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("p.yml");
        std::fs::write(&path, text).unwrap();
        let (playbook, diagnostics) = Playbook::load(&path);
        let messages = diagnostics.iter().map(ToString::to_string).collect();
        (playbook, messages)
    }

    #[test]
    fn the_instance_section_is_read_with_its_defaults() {
        let (playbook, messages) = load_text(
            "hosts: all\nset: { a: b }\ninstance:\n  url: https://acme.service-now.com/\n  user: midfleet_admin\n  \
             password: { secret: \"env:ADMIN_PW\" }\n  ca_file: ca.pem\n  ensure_user: true\n  retire_old_user: lock\n",
        );
        let instance = playbook.unwrap().instance.unwrap();
        assert_eq!(instance.url, "https://acme.service-now.com");
        assert_eq!(instance.user, InstanceUser::Name("midfleet_admin".into()));
        assert_eq!(instance.password, SecretRef::Env("ADMIN_PW".into()));
        assert!(instance.ca_file.unwrap().ends_with("ca.pem"));
        assert!(instance.ensure_user);
        assert_eq!(instance.retire_old_user, RetireOldUser::Lock);
        assert_eq!(instance.timeout, DEFAULT_INSTANCE_TIMEOUT);
        assert!(messages.is_empty(), "{messages:?}");
    }

    #[test]
    fn instance_problems_are_found_with_their_line() {
        let base = "hosts: all\nset: { a: b }\ninstance:\n  url: https://x.service-now.com\n  user: admin\n";
        let password = "  password: { secret: \"env:P\" }\n";
        let cases = [
            (format!("{base}  password: hunter2\n"), "p.yml:6:13", "must be a secret reference"),
            (format!("{base}{password}  validate: yes please\n"), "p.yml:7:13", "must be true or false"),
            (format!("{base}{password}  retire_old_user: delete\n"), "p.yml:7:20", "`keep`, `lock` or `deactivate`"),
            (format!("{base}{password}  ensure_users: true\n"), "p.yml:7:3", "unknown key `instance.ensure_users`"),
            (format!("{base}{password}  ensure_user: maybe\n"), "p.yml:7:16", "must be true or false"),
            (format!("{base}  password: {{ secret: \"env:P_{{{{ mid_name }}}}\" }}\n"), "p.yml:6:23", "cannot be a template"),
            ("hosts: all\ninstance:\n  user: admin\n  password: { secret: \"env:P\" }\n".to_string(), "p.yml:3:3", "has no `url`"),
            ("hosts: all\ninstance:\n  url: acme.service-now.com\n  user: a\n  password: { secret: \"env:P\" }\n".to_string(), "p.yml:3:8", "must start with https://"),
            ("hosts: all\ninstance:\n  url: https://u:p@acme\n  user: a\n  password: { secret: \"env:P\" }\n".to_string(), "p.yml:3:8", "must not hold credentials"),
            ("hosts: all\ninstance:\n  url: http://acme.service-now.com\n  user: a\n  password: { secret: \"env:P\" }\n".to_string(), "p.yml:3:8", "plain http:// is accepted only for an instance on this machine"),
            ("hosts: all\ninstance:\n  url: http://10.1.2.3:8080/\n  user: a\n  password: { secret: \"env:P\" }\n".to_string(), "p.yml:3:8", "passwords would cross the network in clear"),
        ];
        for (text, at, expected) in cases {
            let (playbook, messages) = load_text(&text);
            assert!(
                messages
                    .iter()
                    .any(|message| message.contains(at) && message.contains(expected)),
                "{expected} at {at}: {messages:?}"
            );
            assert!(
                playbook.is_none_or(|playbook| playbook.instance.is_none()),
                "{text}"
            );
        }
    }

    #[test]
    fn plain_http_is_refused_with_a_hint_except_on_loopback() {
        let text = |url: &str| {
            format!("hosts: all\nset: {{ a: b }}\ninstance:\n  url: {url}\n  user: a\n  password: {{ secret: \"env:P\" }}\n")
        };
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("p.yml");
        std::fs::write(&path, text("http://acme.service-now.com")).unwrap();
        let (_, diagnostics) = Playbook::load(&path);
        let refusal = diagnostics
            .iter()
            .find(|diagnostic| diagnostic.is_error())
            .expect("an error");
        assert_eq!(
            refusal.hint.as_deref(),
            Some("use https:// (a private CA goes in `ca_file`)")
        );
        for url in [
            "http://127.0.0.1:8080",
            "http://[::1]:9/x",
            "http://localhost",
            "https://acme.service-now.com",
        ] {
            let (playbook, messages) = load_text(&text(url));
            assert!(messages.is_empty(), "{url}: {messages:?}");
            assert_eq!(
                playbook.unwrap().instance.unwrap().url,
                url.trim_end_matches('/')
            );
        }
    }

    #[test]
    fn batches_follow_serial_and_the_last_size_repeats() {
        let rollout = |serial: Vec<Amount>| Rollout {
            serial,
            max_fail: Amount::Count(0),
        };
        assert_eq!(Rollout::default().batches(20), [1, 19]);
        assert_eq!(Rollout::default().batches(1), [1]);
        assert_eq!(Rollout::default().batches(0), Vec::<usize>::new());
        assert_eq!(
            rollout(vec![Amount::Count(1), Amount::Percent(25)]).batches(20),
            [1, 5, 5, 5, 4]
        );
        assert_eq!(
            rollout(vec![Amount::Percent(10)]).batches(5),
            [1, 1, 1, 1, 1]
        );
        assert_eq!(rollout(vec![Amount::Count(3)]).batches(7), [3, 3, 1]);
    }
}
