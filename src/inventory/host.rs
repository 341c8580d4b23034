//! One host resolved: its variables merged by precedence, the settings
//! midfleet uses rendered (when templated), checked and typed; the other
//! variables are left to render when a template needs them (`scope.rs`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::Serialize;

use crate::diagnostic::Diagnostic;
use crate::template::{Context, Templates};
use crate::yaml::{Kind, Node};

use super::jump::{parse_jump, parse_ssh_arguments, JumpHop};
use super::known::{
    check_become, check_remote_path, convert, Known, KnownValue, ServiceSpec, VarError,
};
use super::scope::{HostScope, ScopeHandle, Session};
use super::vars::{Var, Vars};
use super::vaulted::Vaulted;
use super::{Inventory, ALL};

/// Default of docs/SPEC.md.
pub const DEFAULT_MID_HOME: &str = "/opt/servicenow/mid";

/// Everything midfleet needs to reach and work on one host.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub name: String,
    /// `address`/`ansible_host`, else the host's name (`~/.ssh/config` may
    /// still map it to another `HostName`).
    pub address: String,
    /// `None`: `~/.ssh/config`, then 22, decided at connection time.
    pub port: Option<u16>,
    /// `None`: decided at connection time (`~/.ssh/config`, then the local
    /// user), as ssh does.
    pub user: Option<String>,
    pub identity_file: Option<PathBuf>,
    /// Whether commands run through `sudo -n` (`become`/`ansible_become`).
    #[serde(rename = "become")]
    pub become_root: bool,
    /// With become: the user sudo runs them as (`become_user`,
    /// `ansible_become_user`; root when unset). `None` without become.
    pub become_user: Option<String>,
    pub jump: Vec<JumpHop>,
    /// Seconds; `None`: `~/.ssh/config`'s `ConnectTimeout`, then 10.
    pub connect_timeout: Option<u64>,
    pub mid_home: String,
    pub config: String,
    pub mid_cluster: Option<String>,
    pub service: ServiceSpec,
    /// The groups it belongs to, sorted: Ansible's `group_names` (not
    /// `all`; `ungrouped` for a host in no other group).
    pub groups: Vec<String>,
    /// Its variables and Ansible's magic variables, each rendered when a
    /// template reads it.
    #[serde(skip)]
    pub template_context: Context,
    /// Its sensitive variables (`!vault` values, a vaulted file's values,
    /// templates over them): hidden from `template_context`, revealed
    /// only when used.
    #[serde(skip)]
    pub vaulted: Vaulted,
}

impl Host {
    /// The user commands run as through sudo, `None` without become.
    pub fn become_as(&self) -> Option<&str> {
        self.become_root
            .then(|| self.become_user.as_deref().unwrap_or("root"))
    }
}

impl Inventory {
    /// The variable layers of host `name`, lowest precedence first.
    /// Ansible's VARIABLE_PRECEDENCE: every inventory-file group variable
    /// (by depth), then group_vars/ (`all` first, then by depth), then the
    /// host's inventory variables, then host_vars/, then the extra vars.
    /// `groups` is [`Inventory::groups_of_host`] of `name`.
    fn layers(&self, name: &str, groups: &[(String, usize)]) -> Vec<&Vars> {
        let mut layers: Vec<&Vars> = Vec::new();
        let Some(entry) = self.host_entry(name) else {
            return layers;
        };
        let group_entries: Vec<&super::Group> = groups
            .iter()
            .filter_map(|(group, _)| self.group(group))
            .collect();
        layers.extend(group_entries.iter().map(|group| &group.vars));
        layers.extend(group_entries.iter().map(|group| &group.file_vars));
        layers.push(&entry.vars);
        layers.push(&entry.file_vars);
        layers.push(&self.extra_vars);
        layers
    }

    /// Host `name`'s variables merged by precedence, not rendered
    /// (`groups`: [`Inventory::groups_of_host`] of `name`).
    pub(crate) fn merged_vars(
        &self,
        name: &str,
        groups: &[(String, usize)],
    ) -> IndexMap<String, Var> {
        let mut merged: IndexMap<String, Var> = IndexMap::new();
        for layer in self.layers(name, groups) {
            for (key, var) in layer.iter() {
                merged.insert(key.clone(), var.clone());
            }
        }
        merged
    }

    /// Resolves host `name` (which must exist): precedence is `all` <
    /// parent group < child group (by depth, then name) < host, and within
    /// each, the inventory file < `group_vars/`/`host_vars/`. Only the
    /// variables midfleet reads are rendered here; the others are rendered
    /// when a template needs them.
    pub fn resolve(&self, name: &str, templates: &Templates) -> Result<Host, Vec<Diagnostic>> {
        let session = Session::new(self.shared(), templates.clone(), name);
        let scope = session
            .scope(name)
            .expect("resolve is called with a host of the inventory");
        let groups = scope.groups();
        let layers = self.layers(name, groups);
        let mut sorted_group_names: Vec<String> = groups
            .iter()
            .map(|(group, _)| group.clone())
            .filter(|group| group != ALL)
            .collect();
        sorted_group_names.sort();

        // Vaulted values, and templates over them, wait until used.
        let mut merged = self.merged_vars(name, groups);
        let vaulted = Vaulted::split(
            &mut merged,
            self.vault.clone(),
            self.unreadable_vault_files.clone(),
            templates,
        );
        let template_context =
            Context::with_scope(Arc::new(ScopeHandle::new(session, scope.clone())));
        let mut problems = Vec::new();
        let mut settings = Settings {
            host: name,
            layers: &layers,
            scope: &scope,
            rendered: HashMap::new(),
            problems: &mut problems,
            vaulted: &vaulted,
            context: &template_context,
            templates,
        };
        let address = settings
            .text(Known::Address)
            .unwrap_or_else(|| name.to_string());
        let port = settings
            .number(Known::Port)
            .and_then(|port| u16::try_from(port).ok());
        let user = settings.text(Known::User);
        let identity_file = settings.text(Known::IdentityFile).map(PathBuf::from);
        let become_root = settings.flag(Known::Become).unwrap_or(false);
        let become_user = settings.become_user(become_root);
        let connect_timeout = settings.number(Known::ConnectTimeout);
        let jump = settings.jump();
        let mid_home = settings
            .text(Known::MidHome)
            .unwrap_or_else(|| DEFAULT_MID_HOME.to_string());
        let mid_home = mid_home.trim_end_matches('/').to_string();
        let config = settings
            .text(Known::MidConfig)
            .unwrap_or_else(|| format!("{mid_home}/agent/config.xml"));
        let mid_cluster = settings.text(Known::MidCluster);
        let service = match settings.value(Known::MidService) {
            Some(KnownValue::Service(service)) => service,
            _ => ServiceSpec::Auto,
        };
        if let Some(note) = vaulted.unreadable_note() {
            for problem in &mut problems {
                if problem.message.contains("undefined") {
                    problem.message = format!("{}; {note}", problem.message);
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Host {
            name: name.to_string(),
            address,
            port,
            user,
            identity_file,
            become_root,
            become_user,
            jump,
            connect_timeout,
            mid_home,
            config,
            mid_cluster,
            service,
            groups: sorted_group_names,
            template_context,
            vaulted,
        })
    }
}

/// A rendered value as a YAML node, so that the checks of written values
/// apply: a string stays a string (`01` is not the number 1), numbers and
/// booleans keep their type.
fn value_node(value: &minijinja::Value, at: crate::diagnostic::Location) -> Node {
    use minijinja::value::ValueKind;
    match value.kind() {
        ValueKind::String => Node::scalar(value.as_str().unwrap_or_default(), false, at),
        ValueKind::Number | ValueKind::Bool => Node::scalar(value.to_string(), true, at),
        ValueKind::None | ValueKind::Undefined => Node::scalar("null", true, at),
        ValueKind::Seq | ValueKind::Iterable => Node {
            kind: Kind::Sequence(
                value
                    .try_iter()
                    .map(|items| items.map(|item| value_node(&item, at)).collect())
                    .unwrap_or_default(),
            ),
            at,
            tag: None,
        },
        ValueKind::Map => Node {
            kind: Kind::Mapping(
                value
                    .try_iter()
                    .map(|keys| {
                        keys.map(|key| {
                            let item = value.get_item(&key).unwrap_or_default();
                            (
                                Node::scalar(key.to_string(), false, at),
                                value_node(&item, at),
                            )
                        })
                        .collect()
                    })
                    .unwrap_or_default(),
            ),
            at,
            tag: None,
        },
        _ => Node::scalar(value.to_string(), false, at),
    }
}

/// Reads the known settings of one host, collecting problems.
struct Settings<'a> {
    host: &'a str,
    layers: &'a [&'a Vars],
    scope: &'a HostScope,
    /// Each variable read, rendered once (`None`: unset, omitted, or
    /// reported).
    rendered: HashMap<String, Option<Node>>,
    problems: &'a mut Vec<Diagnostic>,
    vaulted: &'a Vaulted,
    context: &'a Context,
    templates: &'a Templates,
}

impl Settings<'_> {
    /// The name that sets `known` for this host. Ansible's names are
    /// decided as Ansible does: every scope merged first, then the last of
    /// [`Known::ansible`] that is set wins, whatever its scope
    /// (`ansible_port` on the host loses to `ansible_ssh_port` on a group).
    /// midfleet's native name then competes with that one by scope: the
    /// one set in the higher-precedence scope wins, the native one when
    /// both are in the same scope.
    fn winner(&self, known: Known) -> Option<&'static str> {
        let ansible = known
            .ansible()
            .iter()
            .rev()
            .copied()
            .find(|name| self.is_set(name));
        let native = known.native().filter(|name| self.is_set(name));
        match (native, ansible) {
            (Some(native), Some(ansible)) => {
                if self.scope(native) >= self.scope(ansible) {
                    Some(native)
                } else {
                    Some(ansible)
                }
            }
            (native, ansible) => native.or(ansible),
        }
    }

    /// Whether this host has variable `name`, plain or vaulted (a vaulted
    /// one waits in `vaulted` until used).
    fn is_set(&self, name: &str) -> bool {
        self.scope.var(name).is_some() || self.vaulted.holds(name)
    }

    /// The index of the highest-precedence layer that sets `name`.
    fn scope(&self, name: &str) -> Option<usize> {
        self.layers
            .iter()
            .rposition(|layer| layer.get(name).is_some())
    }

    fn origin(&self, name: &str) -> Option<crate::diagnostic::Origin> {
        self.scope.var(name).map(|var| var.origin.clone())
    }

    /// Variable `name` of this host, its template rendered; a failure is
    /// reported (once) where the variable is defined.
    fn rendered(&mut self, name: &str) -> Option<Node> {
        if let Some(node) = self.rendered.get(name) {
            return node.clone();
        }
        let var = self.scope.var(name)?;
        // A plain value is checked as written (its line and column); a
        // template, or a tagged node (`!vault`), becomes a value in
        // `scope::value_of` first.
        let node = if var.is_template() || var.node.tag.is_some() {
            match self.scope.setting(name) {
                Ok(value) => value.map(|value| value_node(&value, var.node.at)),
                Err(error) => {
                    let hint = error.hint();
                    self.problems.push(
                        Diagnostic::error(
                            Some(var.origin.clone()),
                            format!("variable `{name}`: {error}"),
                        )
                        .for_host(self.host)
                        .with_hint(hint),
                    );
                    None
                }
            }
        } else {
            Some(var.node.clone())
        };
        self.rendered.insert(name.to_string(), node.clone());
        node
    }

    fn value(&mut self, known: Known) -> Option<KnownValue> {
        let name = self.winner(known)?;
        if self.vaulted.holds(name) {
            return self.vaulted_value(known, name);
        }
        let node = self.rendered(name)?;
        match convert(known, name, &node) {
            Ok(value) => Some(value),
            Err(error) => {
                let var = self.scope.var(name)?;
                // A value written without a template was reported where
                // it is defined; only rendered values are this host's own.
                let mut diagnostic = Diagnostic::error(Some(var.origin.clone()), error.to_string());
                if var.is_template() {
                    diagnostic = diagnostic.for_host(self.host);
                }
                self.problems.push(diagnostic);
                None
            }
        }
    }

    /// A setting from a vaulted value (or a template over one): revealed
    /// now, as it is used; a value of the wrong type is reported without
    /// showing it.
    fn vaulted_value(&mut self, known: Known, name: &str) -> Option<KnownValue> {
        let node = match self
            .vaulted
            .reveal_node(self.host, name, self.context, self.templates)
        {
            Ok(node) => node,
            Err(problem) => {
                self.problems.push(problem);
                return None;
            }
        };
        match convert(known, name, &node) {
            Ok(value) => Some(value),
            Err(_) => {
                self.problems.push(
                    Diagnostic::error(
                        self.vaulted.origin(name).cloned(),
                        format!("`{name}` (a vaulted value) is not a valid value for it"),
                    )
                    .for_host(self.host)
                    .with_hint(
                        "check the value with `ansible-vault view` or `ansible-vault decrypt`",
                    ),
                );
                None
            }
        }
    }

    fn text(&mut self, known: Known) -> Option<String> {
        match self.value(known)? {
            KnownValue::Text(text) => {
                if matches!(known, Known::MidHome | Known::MidConfig) {
                    if let Err(source) = check_remote_path(&text) {
                        let origin = self.winner(known).and_then(|name| self.origin(name));
                        let error = VarError::RemotePath {
                            name: known.names().next().unwrap_or_default().to_string(),
                            source,
                        };
                        self.problems
                            .push(Diagnostic::error(origin, error.to_string()).for_host(self.host));
                        return None;
                    }
                }
                Some(text)
            }
            _ => None,
        }
    }

    fn number(&mut self, known: Known) -> Option<u64> {
        match self.value(known)? {
            KnownValue::Number(number) => Some(number),
            _ => None,
        }
    }

    fn flag(&mut self, known: Known) -> Option<bool> {
        match self.value(known)? {
            KnownValue::Flag(flag) => Some(flag),
            _ => None,
        }
    }

    /// With become on, the user to become (root when unset), after
    /// checking that the method, program and flags are sudo's; every
    /// refusal names the variable and the host. Without become, Ansible
    /// ignores all of them, and so does midfleet.
    fn become_user(&mut self, become_root: bool) -> Option<String> {
        if !become_root {
            return None;
        }
        for known in [Known::BecomeMethod, Known::BecomeExe, Known::BecomeFlags] {
            let Some(name) = self.winner(known) else {
                continue;
            };
            let Some(KnownValue::Text(value)) = self.value(known) else {
                continue;
            };
            if let Err(error) = check_become(known, name, &value) {
                let hint = match known {
                    Known::BecomeMethod => "use sudo with a NOPASSWD rule for the login user, or log in as the MID's owner without become",
                    _ => "remove it: midfleet runs `sudo -n -- sh -s`, or `sudo -n -u USER -- sh -s` with ansible_become_user",
                };
                self.problems.push(
                    Diagnostic::error(self.origin(name), error.to_string())
                        .for_host(self.host)
                        .with_hint(hint),
                );
            }
        }
        Some(
            self.text(Known::BecomeUser)
                .unwrap_or_else(|| "root".to_string()),
        )
    }

    /// The jump chain. ssh options are read as Ansible hands them to ssh
    /// (`ansible_ssh_args`, then `ansible_ssh_common_args`, then
    /// `ansible_ssh_extra_args`, each merged over every scope) and the
    /// first ProxyJump/ProxyCommand among them is the one ssh takes. The
    /// native `jump` competes with it by scope, as in [`Settings::winner`].
    fn jump(&mut self) -> Vec<JumpHop> {
        let mut from_arguments: Option<(&'static str, Vec<JumpHop>)> = None;
        for known in [Known::SshArgs, Known::SshCommonArgs, Known::SshExtraArgs] {
            let Some(name) = self.winner(known) else {
                continue;
            };
            let Some(KnownValue::Text(arguments)) = self.value(known) else {
                continue; // refused: reported by value()
            };
            if let Ok(parsed) = parse_ssh_arguments(&arguments) {
                if let (None, Some(hops)) = (&from_arguments, parsed.jump) {
                    from_arguments = Some((name, hops));
                }
            }
        }
        let native = self.winner(Known::Jump);
        let use_native = match (&from_arguments, native) {
            (Some((name, _)), Some(native)) => self.scope(native) >= self.scope(name),
            (None, Some(_)) => true,
            _ => false,
        };
        if !use_native {
            return from_arguments.map(|(_, hops)| hops).unwrap_or_default();
        }
        let Some(text) = self.text(Known::Jump) else {
            return Vec::new();
        };
        match parse_jump(&text) {
            Ok(hops) => hops,
            Err(error) => {
                let origin = native.and_then(|name| self.origin(name));
                self.problems
                    .push(Diagnostic::error(origin, format!("jump: {error}")).for_host(self.host));
                Vec::new()
            }
        }
    }
}
