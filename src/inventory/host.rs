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

use super::jump::{parse_jump, proxy_jump_from_ssh_arguments, JumpHop};
use super::known::{check_remote_path, convert, Known, KnownValue, ServiceSpec, VarError};
use super::scope::{HostScope, ScopeHandle, Session};
use super::vars::{Var, Vars};
use super::{Inventory, ALL, UNGROUPED};

/// Default of SPEC.md.
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
    #[serde(rename = "become")]
    pub become_root: bool,
    pub jump: Vec<JumpHop>,
    /// Seconds; `None`: `~/.ssh/config`'s `ConnectTimeout`, then 10.
    pub connect_timeout: Option<u64>,
    pub mid_home: String,
    pub config: String,
    pub mid_cluster: Option<String>,
    pub service: ServiceSpec,
    /// The groups it belongs to (not `all` or `ungrouped`), sorted.
    pub groups: Vec<String>,
    /// Its variables and Ansible's magic variables, each rendered when a
    /// template reads it.
    #[serde(skip)]
    pub template_context: Context,
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
            .filter(|group| group != ALL && group != UNGROUPED)
            .collect();
        sorted_group_names.sort();

        let mut problems = Vec::new();
        let mut settings = Settings {
            host: name,
            layers: &layers,
            scope: &scope,
            rendered: HashMap::new(),
            problems: &mut problems,
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
        if !problems.is_empty() {
            return Err(problems);
        }
        let template_context = Context::with_scope(Arc::new(ScopeHandle::new(session, scope)));
        Ok(Host {
            name: name.to_string(),
            address,
            port,
            user,
            identity_file,
            become_root,
            jump,
            connect_timeout,
            mid_home,
            config,
            mid_cluster,
            service,
            groups: sorted_group_names,
            template_context,
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
}

impl Settings<'_> {
    /// The name that sets `known` for this host: the highest-precedence
    /// layer that sets any of its names; the native name within a layer.
    fn winner(&self, known: Known) -> Option<&'static str> {
        self.layers.iter().rev().find_map(|layer| {
            known
                .names()
                .iter()
                .copied()
                .find(|name| layer.get(name).is_some())
        })
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

    fn text(&mut self, known: Known) -> Option<String> {
        match self.value(known)? {
            KnownValue::Text(text) => {
                if matches!(known, Known::MidHome | Known::MidConfig) {
                    if let Err(source) = check_remote_path(&text) {
                        let origin = self.winner(known).and_then(|name| self.origin(name));
                        let error = VarError::RemotePath {
                            name: known.names()[0].to_string(),
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

    /// The jump chain from the highest-precedence scope that gives one:
    /// `jump`, or a ProxyJump in `ansible_ssh_extra_args` or
    /// `ansible_ssh_common_args` (ssh options without a ProxyJump do not
    /// hide a `jump` below them).
    fn jump(&mut self) -> Vec<JumpHop> {
        let mut winner = None;
        let layers = self.layers;
        'layers: for layer in layers.iter().rev() {
            if layer.get("jump").is_some() {
                winner = Some("jump");
                break;
            }
            for name in ["ansible_ssh_extra_args", "ansible_ssh_common_args"] {
                if layer.get(name).is_some()
                    && self.rendered(name).is_some_and(|node| {
                        node.text().is_some_and(|arguments| {
                            matches!(proxy_jump_from_ssh_arguments(arguments), Ok(Some(_)))
                        })
                    })
                {
                    winner = Some(name);
                    break 'layers;
                }
            }
        }
        let text = match winner {
            Some("jump") => self.text(Known::Jump),
            Some(name) => self.rendered(name).and_then(|node| {
                node.text()
                    .and_then(|arguments| proxy_jump_from_ssh_arguments(arguments).ok().flatten())
            }),
            None => None,
        };
        match text.map(|text| parse_jump(&text)) {
            Some(Ok(hops)) => hops,
            Some(Err(error)) => {
                let origin = self
                    .winner(Known::Jump)
                    .and_then(|name| self.origin(name))
                    .or_else(|| self.origin("ansible_ssh_common_args"));
                self.problems
                    .push(Diagnostic::error(origin, format!("jump: {error}")).for_host(self.host));
                Vec::new()
            }
            None => Vec::new(),
        }
    }
}
