//! The connection variables midfleet reads itself — `address`, `port`,
//! `user`, `mid_home`, `mid_service`, … — with the Ansible names that set
//! them too (`ansible_host`, `ansible_port`, …), the Ansible variables it
//! ignores and why, and the check and conversion of each value to a typed
//! [`KnownValue`].
//!
//! Owns: which names set which setting, and what a valid value is (with a
//! [`VarError`] naming the variable when it is not). Must not: decide
//! precedence between scopes or render templates (`host.rs` does), or read
//! files.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::jump::{is_host_key_option, parse_jump, parse_ssh_arguments, JumpError};
use crate::yaml::{Node, Scalar};

/// Why the value of a known variable is refused; each names the variable
/// as it was written (`port` or `ansible_port`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VarError {
    #[error("`{name}` must be a string, not {found}")]
    NotText { name: String, found: &'static str },
    #[error("`{name}` must be {what} without spaces or control characters")]
    NotWord { name: String, what: &'static str },
    #[error("`{name}` `{user}` is not a valid user name")]
    UserName { name: String, user: String },
    #[error("`{name}` must be a number from {low} to {high}, not {found}")]
    Number {
        name: String,
        low: u64,
        high: u64,
        found: String,
    },
    #[error("`{name}` must be a boolean (yes/no, true/false, on/off), not {found}")]
    Boolean { name: String, found: String },
    #[error("`{name}` must be a path")]
    Path { name: String },
    #[error("`{name}`: {source}")]
    Jump { name: String, source: JumpError },
    #[error("`{name}` {source}")]
    RemotePath {
        name: String,
        source: RemotePathError,
    },
    #[error("`{name}` commands are `start`, `stop` and `status`, not `{key}`")]
    ServiceKey { name: String, key: String },
    #[error("`{name}`: each command must be a non-empty string")]
    EmptyCommand { name: String },
    #[error("`{name}` needs all three of `start`, `stop` and `status`")]
    MissingCommand { name: String },
    #[error("`{name}` must be auto, mid.sh, systemd:UNIT or a mapping of commands")]
    ServiceShape { name: String },
    #[error("`{name}`: `{unit}` is not a systemd unit name (letters, digits, `:_.@-`)")]
    UnitName { name: String, unit: String },
    #[error("`{name}` must be auto, mid.sh, systemd:UNIT or a mapping of start/stop/status commands, not `{text}`")]
    Service { name: String, text: String },
    #[error("`{name}` is `{method}`: midfleet becomes another user only with `sudo -n`")]
    BecomeMethod { name: String, method: String },
    #[error("`{name}` is `{exe}`: midfleet runs `sudo` as found on the host's PATH")]
    BecomeExe { name: String, exe: String },
    #[error(
        "`{name}`: `{flag}` would change how midfleet runs sudo (`sudo -n [-u USER] -- sh -s`)"
    )]
    BecomeFlag { name: String, flag: String },
}

/// Checks a become setting of a host that becomes another user: only sudo
/// (`ansible_become_method: sudo`, `ansible_become_exe: sudo`), and among
/// sudo's flags only Ansible's defaults `-H -S -n`, which change nothing
/// midfleet does (it never sends a password, so `-S` reads none; `-n` it
/// passes itself; `-H` only sets `HOME`, which its scripts do not read).
pub fn check_become(known: Known, name: &str, value: &str) -> Result<(), VarError> {
    match known {
        Known::BecomeMethod if value != "sudo" => Err(VarError::BecomeMethod {
            name: name.to_string(),
            method: value.to_string(),
        }),
        Known::BecomeExe if value.trim() != "sudo" => Err(VarError::BecomeExe {
            name: name.to_string(),
            exe: value.to_string(),
        }),
        Known::BecomeFlags => {
            for flag in value.split_whitespace() {
                let harmless = flag.len() > 1
                    && flag.starts_with('-')
                    && flag[1..].chars().all(|letter| "HSn".contains(letter));
                if !harmless {
                    return Err(VarError::BecomeFlag {
                        name: name.to_string(),
                        flag: flag.to_string(),
                    });
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Why a remote path is refused (the message follows the variable's name:
/// "`mid_home` must be an absolute path, …").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemotePathError {
    #[error("must be an absolute path, not `{path}`")]
    NotAbsolute { path: String },
    #[error("must not hold control characters (newlines, tabs…)")]
    Control,
    #[error("must not contain `..` (`{path}`)")]
    Parent { path: String },
}

/// A variable midfleet reads itself, under midfleet's own (native) name,
/// Ansible's names, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    Address,
    Port,
    User,
    IdentityFile,
    Become,
    BecomeUser,
    BecomeMethod,
    BecomeExe,
    BecomeFlags,
    Jump,
    SshArgs,
    SshCommonArgs,
    SshExtraArgs,
    ConnectTimeout,
    MidHome,
    MidConfig,
    MidCluster,
    MidService,
}

impl Known {
    /// midfleet's own name for it.
    pub fn native(self) -> Option<&'static str> {
        match self {
            Known::Address => Some("address"),
            Known::Port => Some("port"),
            Known::User => Some("user"),
            Known::IdentityFile => Some("identity_file"),
            Known::Become => Some("become"),
            Known::BecomeUser => Some("become_user"),
            Known::Jump => Some("jump"),
            Known::ConnectTimeout => Some("connect_timeout"),
            Known::MidHome => Some("mid_home"),
            Known::MidConfig => Some("mid_config"),
            Known::MidCluster => Some("mid_cluster"),
            Known::MidService => Some("mid_service"),
            Known::BecomeMethod
            | Known::BecomeExe
            | Known::BecomeFlags
            | Known::SshArgs
            | Known::SshCommonArgs
            | Known::SshExtraArgs => None,
        }
    }

    /// Ansible's names for it, in the order Ansible reads them: after
    /// merging every scope, the *last* of these that is set wins (the
    /// `vars:` list of the ssh connection and sudo become plugins, read by
    /// `ConfigManager._loop_entries`; `ansible_ssh_timeout` over
    /// `ansible_timeout` as `PlayContext` takes them).
    pub fn ansible(self) -> &'static [&'static str] {
        match self {
            Known::Address => &["ansible_host", "ansible_ssh_host"],
            Known::Port => &["ansible_port", "ansible_ssh_port"],
            Known::User => &["ansible_user", "ansible_ssh_user"],
            Known::IdentityFile => &["ansible_private_key_file", "ansible_ssh_private_key_file"],
            Known::Become => &["ansible_become"],
            Known::BecomeUser => &["ansible_become_user", "ansible_sudo_user"],
            Known::BecomeMethod => &["ansible_become_method"],
            Known::BecomeExe => &["ansible_become_exe", "ansible_sudo_exe"],
            Known::BecomeFlags => &["ansible_become_flags", "ansible_sudo_flags"],
            Known::Jump => &[],
            Known::SshArgs => &["ansible_ssh_args"],
            Known::SshCommonArgs => &["ansible_ssh_common_args"],
            Known::SshExtraArgs => &["ansible_ssh_extra_args"],
            Known::ConnectTimeout => &["ansible_timeout", "ansible_ssh_timeout"],
            Known::MidHome | Known::MidConfig | Known::MidCluster | Known::MidService => &[],
        }
    }

    /// Every name that sets it.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        self.native()
            .into_iter()
            .chain(self.ansible().iter().copied())
    }

    pub const ALL: [Known; 18] = [
        Known::Address,
        Known::Port,
        Known::User,
        Known::IdentityFile,
        Known::Become,
        Known::BecomeUser,
        Known::BecomeMethod,
        Known::BecomeExe,
        Known::BecomeFlags,
        Known::Jump,
        Known::SshArgs,
        Known::SshCommonArgs,
        Known::SshExtraArgs,
        Known::ConnectTimeout,
        Known::MidHome,
        Known::MidConfig,
        Known::MidCluster,
        Known::MidService,
    ];

    pub fn of(name: &str) -> Option<Known> {
        Known::ALL
            .into_iter()
            .find(|known| known.names().any(|known_name| known_name == name))
    }
}

/// Ansible connection variables midfleet does not use, with why.
pub fn ignored_ansible_variable(name: &str) -> Option<&'static str> {
    match name {
        "ansible_password" | "ansible_ssh_pass" | "ansible_ssh_password" => Some(
            "midfleet logs in with keys (identity_file or the ssh agent), never with a password; this variable is ignored",
        ),
        "ansible_become_password" | "ansible_become_pass" | "ansible_sudo_pass" => Some(
            "midfleet runs `sudo -n` and never sends a sudo password; this variable is ignored",
        ),
        "ansible_connection" => Some("midfleet always connects over SSH; this variable is ignored"),
        "ansible_host_key_checking" | "ansible_ssh_host_key_checking" => Some(
            "midfleet always checks host keys against known_hosts; this variable is ignored",
        ),
        _ => None,
    }
}

/// Ansible variables that are neither [`Known`] nor ignored with a warning
/// but are real names, so never taken for a misspelling of a known one.
const OTHER_ANSIBLE_NAMES: [&str; 10] = [
    "ansible_python_interpreter",
    "ansible_shell_type",
    "ansible_shell_executable",
    "ansible_pipelining",
    "ansible_ssh_pipelining",
    "ansible_ssh_executable",
    "ansible_sftp_extra_args",
    "ansible_scp_extra_args",
    "ansible_ssh_transfer_method",
    "ansible_ssh_retries",
];

/// The known variable `name` is probably a misspelling of: one edit away
/// (a letter added, dropped, changed, or two swapped: `ansible_hots`,
/// `becom`, `mid_hom`), never a plural (`users`), never a name that is
/// itself a real one, and only for names of four letters or more, so that
/// an operator's own variables are not flagged.
pub fn near_miss(name: &str) -> Option<&'static str> {
    if Known::of(name).is_some()
        || ignored_ansible_variable(name).is_some()
        || OTHER_ANSIBLE_NAMES.contains(&name)
    {
        return None;
    }
    Known::ALL
        .into_iter()
        .flat_map(Known::names)
        .chain([
            "ansible_password",
            "ansible_ssh_pass",
            "ansible_become_password",
            "ansible_become_pass",
            "ansible_connection",
        ])
        .filter(|candidate| candidate.len() >= 4)
        .filter(|candidate| {
            name.strip_suffix('s') != Some(*candidate) && candidate.strip_suffix('s') != Some(name)
        })
        .find(|candidate| strsim::osa_distance(name, candidate) == 1)
}

/// Warnings about a valid value of a known variable: the ssh options
/// midfleet ignores.
pub fn definition_warnings(known: Known, name: &str, value: &KnownValue) -> Vec<String> {
    match (known, value) {
        (Known::SshArgs | Known::SshCommonArgs | Known::SshExtraArgs, KnownValue::Text(text)) => {
            parse_ssh_arguments(text)
                .map(|parsed| parsed.ignored)
                .unwrap_or_default()
                .into_iter()
                .map(|option| {
                    let key = option
                        .strip_prefix("-o ")
                        .and_then(|option| option.split('=').next())
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    if is_host_key_option(&key) {
                        format!(
                            "`{name}`: `{option}` is ignored: midfleet always checks host keys against ~/.ssh/known_hosts (record new keys with `midfleet facts --accept-new-host-keys`)"
                        )
                    } else {
                        format!(
                            "`{name}`: `{option}` is ignored: midfleet makes its own ssh connections"
                        )
                    }
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// A typed value of a known variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KnownValue {
    Text(String),
    Number(u64),
    Flag(bool),
    Service(ServiceSpec),
}

/// How the MID service is started and stopped on a host (`mid_service`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ServiceSpec {
    /// The systemd unit named by `APP_NAME` when it exists, else `mid.sh`;
    /// decided on the host.
    Auto,
    /// `{{ mid_home }}/agent/bin/mid.sh start|stop|status`.
    MidSh,
    Systemd {
        unit: String,
    },
    /// The operator's own commands, run as written (the inventory is
    /// trusted like code).
    Commands {
        start: String,
        stop: String,
        status: String,
    },
}

impl fmt::Display for ServiceSpec {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceSpec::Auto => formatter.write_str("auto"),
            ServiceSpec::MidSh => formatter.write_str("mid.sh"),
            ServiceSpec::Systemd { unit } => write!(formatter, "systemd:{unit}"),
            ServiceSpec::Commands { .. } => formatter.write_str("commands"),
        }
    }
}

/// Checks and converts the value of a known variable (already rendered when
/// it was a template). The error says what was expected.
pub fn convert(known: Known, name: &str, node: &Node) -> Result<KnownValue, VarError> {
    let text = || -> Result<&str, VarError> {
        match node.typed() {
            Some(Scalar::String(text)) => Ok(text),
            Some(Scalar::Integer(_) | Scalar::Float(_) | Scalar::Bool(_)) => {
                Ok(node.text().unwrap_or_default())
            }
            _ => Err(VarError::NotText {
                name: name.to_string(),
                found: node.describe(),
            }),
        }
    };
    let word = |what: &'static str| -> Result<String, VarError> {
        let value = text()?;
        if value.is_empty()
            || value
                .chars()
                .any(|character| character.is_whitespace() || character.is_control())
        {
            return Err(VarError::NotWord {
                name: name.to_string(),
                what,
            });
        }
        Ok(value.to_string())
    };
    match known {
        Known::Address => word("a host name or IP address").map(KnownValue::Text),
        Known::User | Known::BecomeUser => {
            let user = word("a user name")?;
            if user.starts_with('-') || user.contains(['@', ':', '/']) {
                return Err(VarError::UserName {
                    name: name.to_string(),
                    user,
                });
            }
            Ok(KnownValue::Text(user))
        }
        Known::Port => number(name, node, 1, 65_535).map(KnownValue::Number),
        Known::ConnectTimeout => number(name, node, 1, 3_600).map(KnownValue::Number),
        Known::Become => boolean(name, node).map(KnownValue::Flag),
        Known::BecomeMethod => word("a become method").map(KnownValue::Text),
        Known::BecomeExe | Known::BecomeFlags => {
            text().map(|text| KnownValue::Text(text.to_string()))
        }
        Known::IdentityFile => {
            let path = text()?;
            if path.is_empty() || path.chars().any(char::is_control) {
                return Err(VarError::Path {
                    name: name.to_string(),
                });
            }
            Ok(KnownValue::Text(path.to_string()))
        }
        Known::Jump => {
            let jump = text()?;
            parse_jump(jump).map_err(|source| VarError::Jump {
                name: name.to_string(),
                source,
            })?;
            Ok(KnownValue::Text(jump.to_string()))
        }
        Known::SshArgs | Known::SshCommonArgs | Known::SshExtraArgs => {
            let arguments = text()?;
            parse_ssh_arguments(arguments).map_err(|source| VarError::Jump {
                name: name.to_string(),
                source,
            })?;
            Ok(KnownValue::Text(arguments.to_string()))
        }
        Known::MidHome | Known::MidConfig => {
            let path = text()?;
            check_remote_path(path).map_err(|source| VarError::RemotePath {
                name: name.to_string(),
                source,
            })?;
            Ok(KnownValue::Text(path.to_string()))
        }
        Known::MidCluster => word("a cluster name").map(KnownValue::Text),
        Known::MidService => service(name, node).map(KnownValue::Service),
    }
}

/// A remote path midfleet will put (quoted) into shell commands: absolute,
/// normalised, printable. Anything else is refused rather than escaped
/// into something surprising.
pub fn check_remote_path(path: &str) -> Result<(), RemotePathError> {
    if !path.starts_with('/') {
        return Err(RemotePathError::NotAbsolute {
            path: path.to_string(),
        });
    }
    if path.chars().any(char::is_control) {
        return Err(RemotePathError::Control);
    }
    if path.split('/').any(|part| part == "..") {
        return Err(RemotePathError::Parent {
            path: path.to_string(),
        });
    }
    Ok(())
}

fn number(name: &str, node: &Node, low: u64, high: u64) -> Result<u64, VarError> {
    let value = match node.typed() {
        Some(Scalar::Integer(value)) => u64::try_from(value).ok(),
        Some(Scalar::String(text)) => text.trim().parse::<u64>().ok(),
        _ => None,
    };
    match value {
        Some(value) if (low..=high).contains(&value) => Ok(value),
        _ => Err(VarError::Number {
            name: name.to_string(),
            low,
            high,
            found: shown(node),
        }),
    }
}

/// Ansible's booleans: yes/no, true/false, on/off, 1/0, in any case.
pub fn boolean(name: &str, node: &Node) -> Result<bool, VarError> {
    match node.typed() {
        Some(Scalar::Bool(value)) => return Ok(value),
        Some(Scalar::Integer(1)) => return Ok(true),
        Some(Scalar::Integer(0)) => return Ok(false),
        _ => {}
    }
    let parsed = node
        .text()
        .and_then(|text| match text.trim().to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "y" | "1" => Some(true),
            "no" | "false" | "off" | "n" | "0" => Some(false),
            _ => None,
        });
    parsed.ok_or_else(|| VarError::Boolean {
        name: name.to_string(),
        found: shown(node),
    })
}

fn shown(node: &Node) -> String {
    match node.text() {
        Some(text) => format!("`{text}`"),
        None => node.describe().to_string(),
    }
}

fn service(name: &str, node: &Node) -> Result<ServiceSpec, VarError> {
    if let Some(entries) = node.as_mapping() {
        let mut commands = [None, None, None];
        for (key, value) in entries {
            let slot = match key.text() {
                Some("start") => 0,
                Some("stop") => 1,
                Some("status") => 2,
                other => {
                    return Err(VarError::ServiceKey {
                        name: name.to_string(),
                        key: other.unwrap_or("?").to_string(),
                    })
                }
            };
            let command = value
                .text()
                .filter(|command| !command.trim().is_empty())
                .ok_or_else(|| VarError::EmptyCommand {
                    name: name.to_string(),
                })?;
            commands[slot] = Some(command.to_string());
        }
        return match commands {
            [Some(start), Some(stop), Some(status)] => Ok(ServiceSpec::Commands {
                start,
                stop,
                status,
            }),
            _ => Err(VarError::MissingCommand {
                name: name.to_string(),
            }),
        };
    }
    let text = node.text().ok_or_else(|| VarError::ServiceShape {
        name: name.to_string(),
    })?;
    match text {
        "auto" => Ok(ServiceSpec::Auto),
        "mid.sh" => Ok(ServiceSpec::MidSh),
        _ => match text.strip_prefix("systemd:") {
            Some(unit) if is_unit_name(unit) => Ok(ServiceSpec::Systemd {
                unit: unit.to_string(),
            }),
            Some(unit) => Err(VarError::UnitName {
                name: name.to_string(),
                unit: unit.to_string(),
            }),
            None => Err(VarError::Service {
                name: name.to_string(),
                text: text.to_string(),
            }),
        },
    }
}

fn is_unit_name(unit: &str) -> bool {
    !unit.is_empty()
        && !unit.starts_with('-')
        && unit
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || ":_.@-\\".contains(character))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Location;

    fn scalar(text: &str) -> Node {
        Node::scalar(text, true, Location { line: 1, column: 1 })
    }

    #[test]
    fn ansible_booleans_in_any_case() {
        for (text, expected) in [
            ("yes", true),
            ("No", false),
            ("TRUE", true),
            ("off", false),
            ("On", true),
            ("1", true),
        ] {
            assert_eq!(boolean("become", &scalar(text)), Ok(expected), "{text}");
        }
        assert!(boolean("become", &scalar("maybe")).is_err());
    }

    #[test]
    fn ports_are_numbers_in_range() {
        assert_eq!(
            convert(Known::Port, "port", &scalar("2222")),
            Ok(KnownValue::Number(2222))
        );
        assert_eq!(
            convert(
                Known::Port,
                "port",
                &Node::scalar("22", false, Location { line: 1, column: 1 })
            ),
            Ok(KnownValue::Number(22))
        );
        for bad in ["0", "65536", "ssh", "-1"] {
            let error = convert(Known::Port, "ansible_port", &scalar(bad)).unwrap_err();
            assert!(error.to_string().contains("from 1 to 65535"), "{error}");
        }
    }

    #[test]
    fn services() {
        let parse = |text: &str| convert(Known::MidService, "mid_service", &scalar(text));
        assert_eq!(parse("auto"), Ok(KnownValue::Service(ServiceSpec::Auto)));
        assert_eq!(
            parse("systemd:mid@emea.service"),
            Ok(KnownValue::Service(ServiceSpec::Systemd {
                unit: "mid@emea.service".into()
            }))
        );
        assert!(parse("systemd:mid; rm -rf /").is_err());
        assert!(parse("systemd:$(reboot)").is_err());
        assert!(parse("upstart").is_err());
        let commands = crate::yaml::parse("{start: a, stop: b}").unwrap().unwrap();
        assert!(convert(Known::MidService, "mid_service", &commands)
            .unwrap_err()
            .to_string()
            .contains("all three"));
    }

    #[test]
    fn remote_paths_are_absolute_and_printable() {
        assert!(check_remote_path("/opt/servicenow/mid").is_ok());
        assert!(
            check_remote_path("/opt/mid $(x)").is_ok(),
            "odd but quoted: it is data"
        );
        for bad in ["opt/mid", "/opt/\nmid", "/opt/../etc"] {
            assert!(check_remote_path(bad).is_err(), "{bad:?}");
        }
    }
}
