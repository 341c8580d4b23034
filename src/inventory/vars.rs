//! Inventory variables: where each was defined, the variables midfleet
//! knows (with their Ansible aliases and types), and conversion to template
//! values.

use std::fmt;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::diagnostic::Origin;
use crate::yaml::{Kind, Node, Scalar};

/// One variable definition: its YAML node and where it was written.
#[derive(Debug, Clone)]
pub struct Var {
    pub node: Node,
    pub origin: Origin,
}

impl Var {
    /// Whether the value holds a template that must be rendered per host.
    pub fn is_template(&self) -> bool {
        contains_template(&self.node)
    }
}

fn contains_template(node: &Node) -> bool {
    match &node.kind {
        Kind::Scalar { text, .. } => text.contains("{{") || text.contains("{%"),
        Kind::Sequence(items) => items.iter().any(contains_template),
        Kind::Mapping(entries) => entries.iter().any(|(_, value)| contains_template(value)),
    }
}

/// Variables of one scope (a group, a host, a group_vars file), in the order
/// they were written.
#[derive(Debug, Clone, Default)]
pub struct Vars(pub IndexMap<String, Var>);

impl Vars {
    pub fn insert(&mut self, name: String, var: Var) {
        self.0.insert(name, var);
    }

    /// Adds every variable of `other`, which wins on conflicts.
    pub fn merge(&mut self, other: &Vars) {
        for (name, var) in &other.0 {
            self.0.insert(name.clone(), var.clone());
        }
    }

    pub fn get(&self, name: &str) -> Option<&Var> {
        self.0.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Var)> {
        self.0.iter()
    }
}

/// A variable midfleet reads itself; each has a native name and Ansible's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    Address,
    Port,
    User,
    IdentityFile,
    Become,
    Jump,
    SshArguments,
    ConnectTimeout,
    MidHome,
    MidConfig,
    MidCluster,
    MidService,
}

impl Known {
    /// The names that set it, the native one first (it wins when one scope
    /// sets both).
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Known::Address => &["address", "ansible_host"],
            Known::Port => &["port", "ansible_port"],
            Known::User => &["user", "ansible_user"],
            Known::IdentityFile => &["identity_file", "ansible_ssh_private_key_file"],
            Known::Become => &["become", "ansible_become"],
            Known::Jump => &["jump"],
            Known::SshArguments => &["ansible_ssh_common_args", "ansible_ssh_extra_args"],
            Known::ConnectTimeout => &["connect_timeout", "ansible_ssh_timeout", "ansible_timeout"],
            Known::MidHome => &["mid_home"],
            Known::MidConfig => &["mid_config"],
            Known::MidCluster => &["mid_cluster"],
            Known::MidService => &["mid_service"],
        }
    }

    pub const ALL: [Known; 12] = [
        Known::Address,
        Known::Port,
        Known::User,
        Known::IdentityFile,
        Known::Become,
        Known::Jump,
        Known::SshArguments,
        Known::ConnectTimeout,
        Known::MidHome,
        Known::MidConfig,
        Known::MidCluster,
        Known::MidService,
    ];

    pub fn of(name: &str) -> Option<Known> {
        Known::ALL
            .into_iter()
            .find(|known| known.names().contains(&name))
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
        _ => None,
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
pub fn convert(known: Known, name: &str, node: &Node) -> Result<KnownValue, String> {
    let text = || -> Result<&str, String> {
        match node.typed() {
            Some(Scalar::String(text)) => Ok(text),
            Some(Scalar::Integer(_) | Scalar::Float(_) | Scalar::Bool(_)) => {
                Ok(node.text().unwrap_or_default())
            }
            _ => Err(format!(
                "`{name}` must be a string, not {}",
                node.describe()
            )),
        }
    };
    let word = |what: &str| -> Result<String, String> {
        let value = text()?;
        if value.is_empty()
            || value
                .chars()
                .any(|character| character.is_whitespace() || character.is_control())
        {
            return Err(format!(
                "`{name}` must be {what} without spaces or control characters"
            ));
        }
        Ok(value.to_string())
    };
    match known {
        Known::Address => word("a host name or IP address").map(KnownValue::Text),
        Known::User => {
            let user = word("a user name")?;
            if user.starts_with('-') || user.contains(['@', ':', '/']) {
                return Err(format!("`{name}` `{user}` is not a valid user name"));
            }
            Ok(KnownValue::Text(user))
        }
        Known::Port => number(name, node, 1, 65_535).map(KnownValue::Number),
        Known::ConnectTimeout => number(name, node, 1, 3_600).map(KnownValue::Number),
        Known::Become => boolean(name, node).map(KnownValue::Flag),
        Known::IdentityFile => {
            let path = text()?;
            if path.is_empty() || path.chars().any(char::is_control) {
                return Err(format!("`{name}` must be a path"));
            }
            Ok(KnownValue::Text(path.to_string()))
        }
        Known::Jump => {
            let jump = text()?;
            parse_jump(jump).map_err(|reason| format!("`{name}`: {reason}"))?;
            Ok(KnownValue::Text(jump.to_string()))
        }
        Known::SshArguments => {
            let arguments = text()?;
            proxy_jump_from_ssh_arguments(arguments)
                .map_err(|reason| format!("`{name}`: {reason}"))?;
            Ok(KnownValue::Text(arguments.to_string()))
        }
        Known::MidHome | Known::MidConfig => {
            let path = text()?;
            check_remote_path(path).map_err(|reason| format!("`{name}` {reason}"))?;
            Ok(KnownValue::Text(path.to_string()))
        }
        Known::MidCluster => word("a cluster name").map(KnownValue::Text),
        Known::MidService => service(name, node).map(KnownValue::Service),
    }
}

/// A remote path midfleet will put (quoted) into shell commands: absolute,
/// normalised, printable. Anything else is refused rather than escaped
/// into something surprising.
pub fn check_remote_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("must be an absolute path, not `{path}`"));
    }
    if path.chars().any(char::is_control) {
        return Err("must not hold control characters (newlines, tabs…)".into());
    }
    if path.split('/').any(|part| part == "..") {
        return Err(format!("must not contain `..` (`{path}`)"));
    }
    Ok(())
}

fn number(name: &str, node: &Node, low: u64, high: u64) -> Result<u64, String> {
    let value = match node.typed() {
        Some(Scalar::Integer(value)) => u64::try_from(value).ok(),
        Some(Scalar::String(text)) => text.trim().parse::<u64>().ok(),
        _ => None,
    };
    match value {
        Some(value) if (low..=high).contains(&value) => Ok(value),
        _ => Err(format!(
            "`{name}` must be a number from {low} to {high}, not {}",
            shown(node)
        )),
    }
}

/// Ansible's booleans: yes/no, true/false, on/off, 1/0, in any case.
pub fn boolean(name: &str, node: &Node) -> Result<bool, String> {
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
    parsed.ok_or_else(|| {
        format!(
            "`{name}` must be a boolean (yes/no, true/false, on/off), not {}",
            shown(node)
        )
    })
}

fn shown(node: &Node) -> String {
    match node.text() {
        Some(text) => format!("`{text}`"),
        None => node.describe().to_string(),
    }
}

fn service(name: &str, node: &Node) -> Result<ServiceSpec, String> {
    if let Some(entries) = node.as_mapping() {
        let mut commands = [None, None, None];
        for (key, value) in entries {
            let slot = match key.text() {
                Some("start") => 0,
                Some("stop") => 1,
                Some("status") => 2,
                other => {
                    return Err(format!(
                        "`{name}` commands are `start`, `stop` and `status`, not `{}`",
                        other.unwrap_or("?")
                    ))
                }
            };
            let command = value
                .text()
                .filter(|command| !command.trim().is_empty())
                .ok_or_else(|| format!("`{name}`: each command must be a non-empty string"))?;
            commands[slot] = Some(command.to_string());
        }
        return match commands {
            [Some(start), Some(stop), Some(status)] => Ok(ServiceSpec::Commands {
                start,
                stop,
                status,
            }),
            _ => Err(format!(
                "`{name}` needs all three of `start`, `stop` and `status`"
            )),
        };
    }
    let text = node.text().ok_or_else(|| {
        format!("`{name}` must be auto, mid.sh, systemd:UNIT or a mapping of commands")
    })?;
    match text {
        "auto" => Ok(ServiceSpec::Auto),
        "mid.sh" => Ok(ServiceSpec::MidSh),
        _ => match text.strip_prefix("systemd:") {
            Some(unit) if is_unit_name(unit) => Ok(ServiceSpec::Systemd { unit: unit.to_string() }),
            Some(unit) => Err(format!(
                "`{name}`: `{unit}` is not a systemd unit name (letters, digits, `:_.@-`)"
            )),
            None => Err(format!(
                "`{name}` must be auto, mid.sh, systemd:UNIT or a mapping of start/stop/status commands, not `{text}`"
            )),
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

/// One hop of a `jump` chain: `[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JumpHop {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl fmt::Display for JumpHop {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(formatter, "{user}@")?;
        }
        if self.host.contains(':') {
            write!(formatter, "[{}]", self.host)?;
        } else {
            formatter.write_str(&self.host)?;
        }
        if let Some(port) = self.port {
            write!(formatter, ":{port}")?;
        }
        Ok(())
    }
}

/// Parses `[user@]host[:port][,…]` (IPv6 hosts in brackets).
pub fn parse_jump(text: &str) -> Result<Vec<JumpHop>, String> {
    if text.trim().is_empty() {
        return Err("an empty jump host".into());
    }
    text.split(',').map(|hop| parse_hop(hop.trim())).collect()
}

fn parse_hop(hop: &str) -> Result<JumpHop, String> {
    let invalid = || format!("`{hop}` is not [user@]host[:port]");
    let (user, rest) = match hop.rsplit_once('@') {
        Some((user, rest)) => (Some(user.to_string()), rest),
        None => (None, hop),
    };
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or_else(invalid)?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err(invalid()),
        };
        (host, port)
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    let port = port
        .map(|port| {
            port.parse::<u16>()
                .ok()
                .filter(|port| *port > 0)
                .ok_or_else(invalid)
        })
        .transpose()?;
    let printable = |text: &str| {
        !text.is_empty()
            && !text.starts_with('-')
            && text.chars().all(|c| !c.is_whitespace() && !c.is_control())
    };
    if !printable(host) || user.as_deref().is_some_and(|user| !printable(user)) {
        return Err(invalid());
    }
    Ok(JumpHop {
        user,
        host: host.to_string(),
        port,
    })
}

/// The ProxyJump an operator put in `ansible_ssh_common_args` or
/// `ansible_ssh_extra_args` (`-o ProxyJump=…`, `-oProxyJump=…`,
/// `-o ProxyJump …`, `-J …`); other options are not midfleet's business.
pub fn proxy_jump_from_ssh_arguments(arguments: &str) -> Result<Option<String>, String> {
    let words = split_shell_words(arguments)?;
    let mut jump = None;
    let mut index = 0;
    while index < words.len() {
        let word = &words[index];
        let option = if word == "-o" {
            index += 1;
            words.get(index).cloned()
        } else {
            word.strip_prefix("-o")
                .filter(|rest| !rest.is_empty())
                .map(str::to_string)
        };
        if let Some(option) = option {
            let (key, value) = match option.split_once('=') {
                Some((key, value)) => (key.trim().to_string(), Some(value.trim().to_string())),
                None => {
                    let mut parts = option.splitn(2, char::is_whitespace);
                    let key = parts.next().unwrap_or_default().to_string();
                    let inline = parts.next().map(|value| value.trim().to_string());
                    let value = match inline {
                        Some(value) if !value.is_empty() => Some(value),
                        _ if key.eq_ignore_ascii_case("proxyjump") => {
                            index += 1;
                            words.get(index).cloned()
                        }
                        _ => None,
                    };
                    (key, value)
                }
            };
            if key.eq_ignore_ascii_case("proxyjump") {
                jump = Some(value.ok_or("`-o ProxyJump` without a value")?);
            }
        } else if word == "-J" {
            index += 1;
            jump = Some(words.get(index).cloned().ok_or("`-J` without a value")?);
        } else if let Some(value) = word.strip_prefix("-J").filter(|value| !value.is_empty()) {
            jump = Some(value.to_string());
        }
        index += 1;
    }
    if let Some(jump) = &jump {
        parse_jump(jump)?;
    }
    Ok(jump)
}

/// Splits like a POSIX shell would, for option strings (quotes and
/// backslashes; no expansion of any kind).
fn split_shell_words(text: &str) -> Result<Vec<String>, String> {
    Ok(split_words(text)?
        .into_iter()
        .map(|word| word.text)
        .collect())
}

/// One word of a shell-like line.
pub(crate) struct Word {
    pub text: String,
    /// Whether any part of it was quoted.
    pub quoted: bool,
    /// Byte offset where it starts in the line.
    pub offset: usize,
}

/// Like [`split_shell_words`], also telling whether each word was quoted
/// and where it starts.
pub(crate) fn split_words(text: &str) -> Result<Vec<Word>, String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut start = 0;
    let mut characters = text.char_indices();
    while let Some((offset, character)) = characters.next() {
        if !in_word && !character.is_whitespace() {
            start = offset;
        }
        match character {
            '\'' => {
                in_word = true;
                quoted = true;
                loop {
                    match characters.next() {
                        Some((_, '\'')) => break,
                        Some((_, inner)) => current.push(inner),
                        None => return Err("an unclosed `'`".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                quoted = true;
                loop {
                    match characters.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match characters.next() {
                            Some((_, escaped)) => current.push(escaped),
                            None => return Err("a trailing `\\`".into()),
                        },
                        Some((_, inner)) => current.push(inner),
                        None => return Err("an unclosed `\"`".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                current.push(characters.next().ok_or("a trailing `\\`")?.1);
            }
            space if space.is_whitespace() => {
                if in_word {
                    words.push(Word {
                        text: std::mem::take(&mut current),
                        quoted,
                        offset: start,
                    });
                    in_word = false;
                    quoted = false;
                }
            }
            other => {
                in_word = true;
                current.push(other);
            }
        }
    }
    if in_word {
        words.push(Word {
            text: current,
            quoted,
            offset: start,
        });
    }
    Ok(words)
}

/// A template value for `node`: strings, numbers, booleans, lists and
/// mappings as minijinja sees them.
pub fn to_template_value(node: &Node) -> minijinja::Value {
    use minijinja::Value;
    match &node.kind {
        Kind::Scalar { .. } => match node.typed() {
            Some(Scalar::Null) | None => Value::from(()),
            Some(Scalar::Bool(value)) => Value::from(value),
            Some(Scalar::Integer(value)) => Value::from(value),
            Some(Scalar::Float(value)) => Value::from(value),
            Some(Scalar::String(text)) => Value::from(text),
        },
        Kind::Sequence(items) => {
            Value::from(items.iter().map(to_template_value).collect::<Vec<_>>())
        }
        Kind::Mapping(entries) => Value::from(
            entries
                .iter()
                .map(|(key, value)| {
                    (
                        key.text().unwrap_or_default().to_string(),
                        to_template_value(value),
                    )
                })
                .collect::<std::collections::BTreeMap<String, Value>>(),
        ),
    }
}

/// Checks one variable definition where it is written: vault values,
/// ignored Ansible variables, and the type of known variables (a templated
/// value is checked once rendered for a host).
pub(crate) fn check_definition(
    name: &str,
    var: &Var,
    diagnostics: &mut crate::diagnostic::Diagnostics,
) {
    use crate::diagnostic::Diagnostic;
    let origin = Some(var.origin.clone());
    if !is_identifier(name) {
        diagnostics.push(
            Diagnostic::error(origin, format!("`{name}` is not a valid variable name"))
                .with_hint("variable names are letters, digits and `_`, not starting with a digit"),
        );
        return;
    }
    if is_vault(&var.node) {
        diagnostics.push(
            Diagnostic::error(
                origin,
                format!("`{name}` is encrypted with Ansible Vault, which midfleet does not read"),
            )
            .with_hint(crate::source_file::VAULT_HINT),
        );
        return;
    }
    if let Some(reason) = ignored_ansible_variable(name) {
        diagnostics.push(Diagnostic::warning(origin, format!("`{name}`: {reason}")));
        return;
    }
    if let Some(known) = Known::of(name) {
        if !var.is_template() {
            if let Err(message) = convert(known, name, &var.node) {
                diagnostics.push(Diagnostic::error(origin, message));
            }
        }
    }
}

pub(crate) fn is_identifier(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && characters.all(|character| character.is_ascii_alphanumeric() || character == '_')
}

fn is_vault(node: &Node) -> bool {
    node.tag.as_deref() == Some("vault")
        || node
            .text()
            .is_some_and(|text| text.trim_start().starts_with("$ANSIBLE_VAULT;"))
        || match &node.kind {
            Kind::Sequence(items) => items.iter().any(is_vault),
            Kind::Mapping(entries) => entries.iter().any(|(_, value)| is_vault(value)),
            Kind::Scalar { .. } => false,
        }
}

/// Reads a mapping of variables (a `vars:` section, a host's mapping, a
/// `group_vars/` file), checking each definition.
pub(crate) fn read_vars(
    node: &Node,
    file: &std::path::Path,
    what: &str,
    diagnostics: &mut crate::diagnostic::Diagnostics,
) -> Vars {
    use crate::diagnostic::Diagnostic;
    let mut vars = Vars::default();
    if node.is_null() {
        return vars;
    }
    let Some(entries) = node.as_mapping() else {
        diagnostics.push(Diagnostic::error(
            Some(Origin::new(file, node.at)),
            format!(
                "{what} must be a mapping of variables, not {}",
                node.describe()
            ),
        ));
        return vars;
    };
    for (key, value) in entries {
        let Some(name) = key.text() else {
            diagnostics.push(Diagnostic::error(
                Some(Origin::new(file, key.at)),
                "a variable name must be a string",
            ));
            continue;
        };
        let var = Var {
            node: value.clone(),
            origin: Origin::new(file, value.at),
        };
        check_definition(name, &var, diagnostics);
        vars.insert(name.to_string(), var);
    }
    vars
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
            assert!(error.contains("from 1 to 65535"), "{error}");
        }
    }

    #[test]
    fn jump_chains() {
        assert_eq!(
            parse_jump("ops@bastion:2222,jump2").unwrap(),
            [
                JumpHop {
                    user: Some("ops".into()),
                    host: "bastion".into(),
                    port: Some(2222)
                },
                JumpHop {
                    user: None,
                    host: "jump2".into(),
                    port: None
                },
            ]
        );
        assert_eq!(parse_jump("[::1]:22").unwrap()[0].host, "::1");
        for bad in ["", "a b", "host:0", "host:x", "-oProxyCommand=x"] {
            assert!(parse_jump(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn proxy_jump_from_ansible_ssh_arguments() {
        let cases = [
            ("-o ProxyJump=ops@bastion", Some("ops@bastion")),
            (
                "-o StrictHostKeyChecking=no -oProxyJump=b1,b2",
                Some("b1,b2"),
            ),
            ("-o 'ProxyJump ops@b'", Some("ops@b")),
            ("-o ProxyJump ops@b", Some("ops@b")),
            ("-J ops@bastion:2222", Some("ops@bastion:2222")),
            ("-Jbastion", Some("bastion")),
            ("-o ServerAliveInterval=30", None),
            ("", None),
        ];
        for (arguments, expected) in cases {
            assert_eq!(
                proxy_jump_from_ssh_arguments(arguments).unwrap().as_deref(),
                expected,
                "{arguments}"
            );
        }
        assert!(proxy_jump_from_ssh_arguments("-o 'ProxyJump=x").is_err());
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
