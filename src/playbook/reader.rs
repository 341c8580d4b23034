//! Reading a playbook file: every key checked, every problem collected
//! with its line and column (the `instance:` section's own part is in
//! `instance.rs`).
//!
//! Must not: read the inventory or resolve secrets.

use super::*;

/// Wrapper properties seen in MIDs' wrapper-override.conf, for did-you-mean.
const WRAPPER_KEYS: [&str; 9] = [
    "wrapper.java.maxmemory",
    "wrapper.java.initmemory",
    "wrapper.java.additional",
    "wrapper.java.command",
    "wrapper.ntservice.account",
    "wrapper.ntservice.password",
    "wrapper.name",
    "wrapper.displayname",
    "wrapper.ignore_sequence_gaps",
];

pub(super) struct Reader<'a> {
    pub(super) path: &'a Path,
    pub(super) diagnostics: &'a mut Diagnostics,
}

impl Reader<'_> {
    pub(super) fn origin(&self, node: &Node) -> Origin {
        Origin::new(self.path, node.at)
    }

    /// Records an error at `node`; the caller may add a hint to it.
    pub(super) fn error(&mut self, node: &Node, message: impl Into<String>) -> &mut Diagnostic {
        let diagnostic = Diagnostic::error(Some(self.origin(node)), message);
        self.diagnostics.push(diagnostic);
        self.diagnostics.last_mut().expect("just pushed")
    }

    pub(super) fn playbook(&mut self, root: &Node) -> Option<Playbook> {
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
        let mut rotate = None;
        let mut rotate_origin = None;
        let mut retire_given = false;
        let mut wrapper = Vec::new();
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
                "instance" => {
                    retire_given = value.as_mapping().is_some_and(|entries| {
                        entries
                            .iter()
                            .any(|(key, _)| key.text() == Some("retire_old_user"))
                    });
                    instance = self.instance(value)
                }
                "wrapper" => wrapper = self.wrapper(value),
                "rotate" => {
                    rotate_origin = Some(self.origin(value));
                    rotate = self.rotate(value)
                }
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
        if let Some(origin) = &rotate_origin {
            self.check_rotate(origin, instance.as_ref(), &set, &unset);
            // A rotation locks the user each MID leaves, unless told
            // otherwise (`retire_old_user: keep` or `deactivate`).
            if let Some(instance) = instance.as_mut().filter(|_| !retire_given) {
                instance.retire_old_user = RetireOldUser::Lock;
            }
        }
        let Some((hosts, hosts_origin)) = hosts else {
            self.error(root, "the playbook has no `hosts:` pattern")
                .hint = Some("add e.g. `hosts: all` or `hosts: emea:!mid-emea-03`".into());
            return None;
        };
        if set.is_empty() && unset.is_empty() && rotate.is_none() && wrapper.is_empty() {
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
            rotate,
            wrapper,
        })
    }

    pub(super) fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
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

    pub(super) fn string<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n str> {
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

    pub(super) fn hosts(&mut self, node: &Node) -> Option<String> {
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

    pub(super) fn parameter_name(&mut self, node: &Node, section: &str) -> Option<String> {
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
        self.undocumented(node, name, section);
        Some(name.to_string())
    }

    /// A warning for a name ServiceNow does not document as a config.xml
    /// parameter, with the documented name it most likely misspells. The
    /// name stays allowed: MIDs read undocumented parameters too.
    fn undocumented(&mut self, node: &Node, name: &str, section: &str) {
        use crate::config_xml::documented;
        if documented::is_documented(name) {
            return;
        }
        let origin = self.origin(node);
        let diagnostic = match documented::closest(name) {
            Some(close) => Diagnostic::warning(
                Some(origin),
                format!("`{name}` in `{section}` is not a documented MID Server parameter; did you mean `{close}`?"),
            )
            .with_hint(format!("midfleet would write `{name}` as written into every selected config.xml; fix the spelling, or keep it if the name is meant")),
            None => Diagnostic::warning(
                Some(origin),
                format!("`{name}` in `{section}` is not a documented MID Server parameter"),
            )
            .with_hint("check the spelling against ServiceNow's \"MID Server parameters\" page; a name of your own is still written as given"),
        };
        self.diagnostics.push(diagnostic);
    }

    /// An optional section's body as `view` reads it: `None` for an empty
    /// section, and for one of another shape after an error saying what it
    /// `must_be` (with `hint`). `set:`, `wrapper:` and `unset:` open so.
    fn section<'n, T>(
        &mut self,
        node: &'n Node,
        view: impl FnOnce(&'n Node) -> Option<T>,
        must_be: &str,
        hint: Option<&str>,
    ) -> Option<T> {
        if node.is_null() {
            return None;
        }
        let body = view(node);
        if body.is_none() {
            self.error(node, format!("{must_be}, not {}", node.describe()))
                .hint = hint.map(str::to_string);
        }
        body
    }

    /// The warning for a sensitive `name` whose value is written in the
    /// playbook (not a template, not a secret reference), under `set:` and
    /// `wrapper:` alike; true when it warned.
    fn warn_literal_sensitive(&mut self, name: &str, text: &str, origin: &Origin) -> bool {
        // A template (`"{{ vault_mid_password }}"`) takes the value from
        // the inventory, a vault among others: only a literal is written in
        // the playbook.
        let literal = !text.contains("{{") && !text.contains("{%");
        if !(names::is_password(name) && literal) {
            return false;
        }
        self.diagnostics.push(
            Diagnostic::warning(
                Some(origin.clone()),
                format!("`{name}` is sensitive but its value is written in the playbook"),
            )
            .with_hint(format!("use `{name}: {{ secret: \"env:NAME\" }}` (or file:, command:, prompt:, or var:NAME for a vaulted inventory variable)")),
        );
        true
    }

    pub(super) fn set(&mut self, node: &Node) -> Vec<SetEntry> {
        let Some(entries) = self.section(
            node,
            Node::as_mapping,
            "`set` must be a mapping of parameter: value",
            None,
        ) else {
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
                // A literal password is warned about; any other value must
                // be text config.xml can store.
                let warned = self.warn_literal_sensitive(&name, text, &origin);
                if let (false, Err(reason)) = (warned, crate::config_xml::check_xml_chars(text)) {
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

    /// The `wrapper:` section: `wrapper.KEY: value` (a value as under
    /// `set:`), `wrapper.KEY: null` to unset, `wrapper.java.additional:
    /// [ARG, …]` for JVM arguments that must be present.
    pub(super) fn wrapper(&mut self, node: &Node) -> Vec<WrapperEntry> {
        use crate::wrapper_conf::{is_key, ADDITIONAL};
        let Some(entries) = self.section(
            node,
            Node::as_mapping,
            "`wrapper` must be a mapping of property: value",
            Some("e.g. `wrapper: { wrapper.java.maxmemory: 2048 }`"),
        ) else {
            return Vec::new();
        };
        let mut wrapper = Vec::new();
        for (key_node, value) in entries {
            let key = key_node.text().unwrap_or_default().to_string();
            if !key.starts_with("wrapper.") || !is_key(&key) {
                let bare: Vec<&str> = WRAPPER_KEYS
                    .iter()
                    .map(|known| &known["wrapper.".len()..])
                    .collect();
                let close = did_you_mean(&key, WRAPPER_KEYS)
                    .map(str::to_string)
                    .or_else(|| {
                        did_you_mean(&key, bare.iter().copied())
                            .map(|close| format!("wrapper.{close}"))
                    });
                let hint = match close {
                    Some(close) => format!("did you mean `{close}`?"),
                    None if crate::config_xml::documented::is_documented(&key) => format!(
                        "`{key}` is a config.xml parameter: put it under `set:`; the properties of conf/wrapper-override.conf start with `wrapper.`"
                    ),
                    None => "the properties of conf/wrapper-override.conf start with `wrapper.` and hold only letters, digits, `.`, `_` and `-`".into(),
                };
                self.error(
                    key_node,
                    format!("`{key}` in `wrapper` is not a wrapper property"),
                )
                .hint = Some(hint);
                continue;
            }
            let origin = self.origin(value);
            let parsed = match &value.kind {
                yaml::Kind::Sequence(items) if key == ADDITIONAL => {
                    let mut arguments = Vec::new();
                    for item in items {
                        match item.typed() {
                            Some(Scalar::String(text))
                                if !text.trim().is_empty()
                                    && !text.chars().any(char::is_control) =>
                            {
                                arguments.push(text.to_string())
                            }
                            Some(Scalar::String(_)) => {
                                self.error(item, format!("a JVM argument in `{key}` must be a non-empty line of text"));
                            }
                            _ => {
                                self.error(
                                    item,
                                    format!(
                                        "a JVM argument in `{key}` must be a string, not {}",
                                        item.describe()
                                    ),
                                );
                            }
                        }
                    }
                    WrapperValue::Arguments(arguments)
                }
                _ if key == ADDITIONAL => {
                    self.error(value, format!("`{key}` takes a list of JVM arguments, not {}", value.describe()))
                        .hint = Some(format!("e.g. `{key}: [\"-Dhttps.proxyHost=proxy\"]` (each gets the next free wrapper.java.additional.N), or name a number: `{key}.4: \"-Dx=1\"`"));
                    continue;
                }
                yaml::Kind::Scalar { text, .. } => match value.typed() {
                    Some(Scalar::Null) => WrapperValue::Unset,
                    Some(Scalar::Bool(flag)) => {
                        WrapperValue::Set(SetValue::Template(flag.to_string()))
                    }
                    _ if text.chars().any(char::is_control) => {
                        self.error(value, format!("`{key}`: a wrapper property's value is one line, without control characters"));
                        continue;
                    }
                    _ => WrapperValue::Set(SetValue::Template(text.clone())),
                },
                yaml::Kind::Mapping(_) => match self.secret(&key, value) {
                    Some(reference) => WrapperValue::Set(SetValue::Secret(reference)),
                    None => continue,
                },
                yaml::Kind::Sequence(_) => {
                    self.error(value, format!("`{key}` must be a string, a number, {{ secret: REF }} or null, not a list"));
                    continue;
                }
            };
            if let WrapperValue::Set(SetValue::Template(text)) = &parsed {
                self.warn_literal_sensitive(&key, text, &origin);
            }
            wrapper.push(WrapperEntry {
                key,
                value: parsed,
                origin,
            });
        }
        wrapper
    }

    pub(super) fn secret(&mut self, name: &str, node: &Node) -> Option<String> {
        let entries = node.as_mapping().unwrap_or_default();
        let reference = match entries {
            [(key, value)] if key.text() == Some("secret") => value,
            _ => {
                self.error(
                    node,
                    format!("`{name}`: a mapping value must be `{{ secret: REF }}`"),
                )
                .hint = Some("REF is env:NAME, file:PATH, command:CMD, prompt:LABEL or var:NAME (the host's inventory variable)".into());
                return None;
            }
        };
        let text = self.string(reference, "secret")?.to_string();
        if let Some(variable) = text.strip_prefix(super::HOST_VARIABLE_SCHEME) {
            if !crate::inventory::is_variable_name(variable) {
                self.error(
                    reference,
                    format!("`{name}`: `{text}` does not name a variable"),
                )
                .hint = Some("write var:NAME with the inventory variable's name (letters, digits, `_`), e.g. var:mid_password".into());
                return None;
            }
            return Some(text);
        }
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

    pub(super) fn unset(&mut self, node: &Node) -> Vec<UnsetEntry> {
        let Some(items) = self.section(
            node,
            Node::as_sequence,
            "`unset` must be a list of parameter names",
            Some("write `unset: [mid.proxy.use_proxy]`"),
        ) else {
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
    pub(super) fn check_overlaps(&mut self, set: &[SetEntry], unset: &[UnsetEntry]) {
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

    pub(super) fn seconds(&mut self, node: &Node, what: &str, high: u64) -> Option<u64> {
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

    pub(super) fn health(&mut self, node: &Node) -> Health {
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

    pub(super) fn amount(&mut self, node: &Node, what: &str, zero_allowed: bool) -> Option<Amount> {
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

    pub(super) fn rollout(&mut self, node: &Node) -> Rollout {
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
