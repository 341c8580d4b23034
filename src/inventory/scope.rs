//! A host's variables as templates see them, rendered only when a value is
//! needed: its merged inventory variables, Ansible's magic variables
//! (`inventory_hostname`, `group_names`, `groups`, `hostvars`, …) and
//! midfleet's visible defaults.
//!
//! Owns: [`Session`] (the hosts of one inventory, each rendered lazily,
//! with the guard against variables that refer to themselves) and
//! [`value_of`], the one place where a variable's YAML node becomes a
//! template value. Must not: decide precedence (`host.rs` builds the
//! merged variables) or check what a known variable holds (`known.rs`).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::thread::ThreadId;

use indexmap::IndexMap;
use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::Value;

use crate::template::{self, Context, Scope, TemplateError, Templates, OMIT};
use crate::yaml::{Kind, Node};

use super::vars::{to_template_value, Var};
use super::{Inventory, ALL, DEFAULT_MID_HOME, UNGROUPED};

/// Variables rendering variables may nest this deep (`hostvars` included).
const MAX_DEPTH: usize = 32;

/// The hosts of one inventory as templates see them, for one resolve (and
/// the renders of that host's playbook values afterwards).
pub struct Session {
    inventory: Arc<Inventory>,
    templates: Templates,
    /// The host resolved; other hosts are reached through `hostvars`.
    root: String,
    hosts: Mutex<HashMap<String, Arc<HostScope>>>,
    /// Variables being rendered, outermost first: (thread, host, name).
    /// A render runs on one thread; another thread's renders are no cycle.
    rendering: Mutex<Vec<(ThreadId, String, String)>>,
}

impl fmt::Debug for Session {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Session")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// One host's variables, rendered on demand and remembered.
pub struct HostScope {
    session: Weak<Session>,
    host: String,
    /// Its groups with their depth ([`Inventory::groups_of_host`]).
    groups: Vec<(String, usize)>,
    merged: IndexMap<String, Var>,
    magic: IndexMap<&'static str, Value>,
    cache: Mutex<HashMap<String, Rendered>>,
}

impl fmt::Debug for HostScope {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("HostScope")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// A templated variable once rendered.
#[derive(Clone)]
enum Rendered {
    Value(Value),
    /// It rendered to `omit`: as if unset.
    Omitted,
    /// Its template needed these undefined names.
    Undefined(Vec<template::Missing>),
}

impl Session {
    /// A session resolving `root` in `inventory`.
    pub fn new(inventory: Arc<Inventory>, templates: Templates, root: &str) -> Arc<Session> {
        Arc::new(Session {
            inventory,
            templates,
            root: root.to_string(),
            hosts: Mutex::new(HashMap::new()),
            rendering: Mutex::new(Vec::new()),
        })
    }

    /// The scope of host `name`, built on first use; `None` for a name the
    /// inventory does not hold.
    pub fn scope(self: &Arc<Session>, name: &str) -> Option<Arc<HostScope>> {
        if let Some(scope) = lock(&self.hosts).get(name) {
            return Some(scope.clone());
        }
        let entry = self.inventory.host_entry(name)?;
        let groups = self.inventory.groups_of_host(name);
        let merged = self.inventory.merged_vars(name, &groups);
        let mut group_names: Vec<String> = groups
            .iter()
            .map(|(group, _)| group.clone())
            .filter(|group| group != ALL)
            .collect();
        group_names.sort();
        let file = std::path::absolute(&entry.origin.file).unwrap_or(entry.origin.file.clone());
        let directory = file.parent().unwrap_or(Path::new("/")).to_path_buf();
        let mut magic: IndexMap<&'static str, Value> = IndexMap::new();
        magic.insert("inventory_hostname", Value::from(name));
        magic.insert(
            "inventory_hostname_short",
            Value::from(name.split('.').next().unwrap_or(name)),
        );
        magic.insert("group_names", Value::from(group_names));
        magic.insert(
            "groups",
            Value::from_object(Groups {
                session: Arc::downgrade(self),
            }),
        );
        magic.insert(
            "hostvars",
            Value::from_object(Hostvars {
                session: Arc::downgrade(self),
            }),
        );
        magic.insert("inventory_file", Value::from(file.to_string_lossy()));
        magic.insert("inventory_dir", Value::from(directory.to_string_lossy()));
        if let Some(directory) = self.templates.playbook_dir() {
            magic.insert("playbook_dir", Value::from(directory));
        }
        magic.insert("omit", Value::from(OMIT));
        let scope = Arc::new(HostScope {
            session: Arc::downgrade(self),
            host: name.to_string(),
            groups,
            merged,
            magic,
            cache: Mutex::new(HashMap::new()),
        });
        lock(&self.hosts).insert(name.to_string(), scope.clone());
        Some(scope)
    }

    /// How a variable is named in messages: `x` on the host resolved,
    /// `hostvars['other'].x` on another.
    fn label(&self, host: &str, name: &str) -> String {
        if host == self.root {
            name.to_string()
        } else {
            format!("hostvars['{host}'].{name}")
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl HostScope {
    pub fn groups(&self) -> &[(String, usize)] {
        &self.groups
    }

    /// The variable `name` as defined (merged), before rendering.
    pub fn var(&self, name: &str) -> Option<&Var> {
        self.merged.get(name)
    }

    /// The value of `name` for a setting midfleet reads: `Ok(None)` when it
    /// is not set (or renders to `omit`), the render's error otherwise.
    pub fn setting(&self, name: &str) -> Result<Option<Value>, TemplateError> {
        // The message names `name` already: its own part of the chains goes.
        let unchain = |through: &mut Vec<String>| {
            if through.first().is_some_and(|first| first == name) {
                through.remove(0);
            }
        };
        template::demand(|| self.lookup(name)).map_err(|error| match error {
            TemplateError::Undefined(mut missing) => {
                missing
                    .iter_mut()
                    .for_each(|miss| unchain(&mut miss.through));
                TemplateError::Undefined(missing)
            }
            TemplateError::NeedsFact { fact, mut through } => {
                unchain(&mut through);
                TemplateError::NeedsFact { fact, through }
            }
            TemplateError::InVariable { name: inner, error } if inner == name => *error,
            error => error,
        })
    }

    fn lookup_merged(&self, name: &str) -> Option<Value> {
        let var = self.merged.get(name)?;
        let session = self.session.upgrade()?;
        if let Some(rendered) = lock(&self.cache).get(name).cloned() {
            return self.replay(&session, name, rendered);
        }
        if template::failed() {
            return Some(Value::UNDEFINED);
        }
        let context = Context::with_scope(Arc::new(ScopeHandle {
            session: session.clone(),
            scope: session.scope(&self.host)?,
        }));
        let thread = std::thread::current().id();
        let key = (thread, self.host.clone(), name.to_string());
        {
            let mut rendering = lock(&session.rendering);
            let mine: Vec<&(ThreadId, String, String)> = rendering
                .iter()
                .filter(|(owner, _, _)| *owner == thread)
                .collect();
            if let Some(start) = mine.iter().position(|entry| **entry == key) {
                let mut cycle: Vec<String> = mine[start..]
                    .iter()
                    .map(|(_, host, name)| session.label(host, name))
                    .collect();
                cycle.push(session.label(&self.host, name));
                template::fail(TemplateError::Cycle(cycle));
                return Some(Value::UNDEFINED);
            }
            if mine.len() >= MAX_DEPTH {
                template::fail(TemplateError::Render(format!(
                    "variables render variables more than {MAX_DEPTH} deep"
                )));
                return Some(Value::UNDEFINED);
            }
            rendering.push(key);
        }
        let result = value_of(var, &session.templates, &context);
        {
            let mut rendering = lock(&session.rendering);
            if let Some(last) = rendering.iter().rposition(|(owner, _, _)| *owner == thread) {
                rendering.remove(last);
            }
        }
        let rendered = match result {
            Ok(value) if value.as_str() == Some(OMIT) => Rendered::Omitted,
            Ok(value) => Rendered::Value(value),
            Err(TemplateError::Undefined(missing)) => Rendered::Undefined(missing),
            Err(error) => {
                let label = session.label(&self.host, name);
                template::fail(match error {
                    TemplateError::NeedsFact { fact, mut through } => {
                        through.insert(0, label);
                        TemplateError::NeedsFact { fact, through }
                    }
                    error @ (TemplateError::Cycle(_) | TemplateError::InVariable { .. }) => error,
                    error => TemplateError::InVariable {
                        name: label,
                        error: Box::new(error),
                    },
                });
                return Some(Value::UNDEFINED);
            }
        };
        lock(&self.cache).insert(name.to_string(), rendered.clone());
        self.replay(&session, name, rendered)
    }

    /// A remembered render, as the render in progress sees it: its value,
    /// or its undefined names recorded again.
    fn replay(&self, session: &Session, name: &str, rendered: Rendered) -> Option<Value> {
        match rendered {
            Rendered::Value(value) => Some(value),
            Rendered::Omitted => None,
            Rendered::Undefined(missing) => {
                let label = session.label(&self.host, name);
                for miss in missing {
                    let mut through = vec![label.clone()];
                    through.extend(miss.through);
                    template::missing(&miss.name, through, miss.magic);
                }
                Some(Value::UNDEFINED)
            }
        }
    }
}

/// The value of one variable: the one place where a variable's YAML node
/// becomes a template value (templates in it rendered with `context`).
/// A sensitive node (`!vault`, a vaulted file's value) is never a value
/// here: `Host::vaulted` reveals it where it may be used.
pub fn value_of(
    var: &Var,
    templates: &Templates,
    context: &Context,
) -> Result<Value, TemplateError> {
    node_value(&var.node, templates, context)
}

fn node_value(
    node: &Node,
    templates: &Templates,
    context: &Context,
) -> Result<Value, TemplateError> {
    if super::vars::is_sensitive(node) {
        return Err(TemplateError::Render(
            "a vaulted value, revealed only for a playbook value, a `var:` secret or a \
             setting midfleet reads"
                .to_string(),
        ));
    }
    match &node.kind {
        Kind::Scalar { text, .. } if Templates::is_template(text) => {
            templates.evaluate(text, context)
        }
        Kind::Scalar { .. } => Ok(to_template_value(node)),
        Kind::Sequence(items) => items
            .iter()
            .map(|item| node_value(item, templates, context))
            .collect::<Result<Vec<Value>, _>>()
            .map(Value::from),
        Kind::Mapping(entries) => entries
            .iter()
            .map(|(key, value)| {
                Ok((
                    key.text().unwrap_or_default().to_string(),
                    node_value(value, templates, context)?,
                ))
            })
            .collect::<Result<std::collections::BTreeMap<String, Value>, _>>()
            .map(Value::from),
    }
}

impl Scope for HostScope {
    fn lookup(&self, name: &str) -> Option<Value> {
        if name == "vars" {
            let session = self.session.upgrade()?;
            return session.scope(&self.host).map(Value::from_dyn_object);
        }
        if let Some(value) = self.magic.get(name) {
            return Some(value.clone());
        }
        if self.merged.contains_key(name) {
            return self.lookup_merged(name);
        }
        // midfleet's defaults are visible to templates, as Ansible's magic
        // variables are.
        (name == "mid_home").then(|| Value::from(DEFAULT_MID_HOME))
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.magic.keys().map(|name| name.to_string()).collect();
        names.extend(self.merged.keys().cloned());
        if !self.merged.contains_key("mid_home") {
            names.push("mid_home".to_string());
        }
        names
    }
}

/// `hostvars['h']` and `vars`: a host's variables as a mapping.
impl Object for HostScope {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        let value = Scope::lookup(self.as_ref(), name);
        if value.is_none() {
            let label = match self.session.upgrade() {
                Some(session) => session.label(&self.host, name),
                None => name.to_string(),
            };
            template::missing(&label, Vec::new(), false);
        }
        value
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        // Not `hostvars` and `groups` (still there when asked for by
        // name): printing `hostvars['h']` would print every host's
        // `hostvars` in turn, without end (a stack overflow).
        Enumerator::Values(
            Scope::names(self.as_ref())
                .into_iter()
                .filter(|name| name != "hostvars" && name != "groups")
                .map(Value::from)
                .collect(),
        )
    }
}

/// What a [`Host`](super::Host) keeps: its scope, and the session that
/// renders it (and the other hosts `hostvars` reaches).
#[derive(Debug)]
pub struct ScopeHandle {
    session: Arc<Session>,
    scope: Arc<HostScope>,
}

impl ScopeHandle {
    pub fn new(session: Arc<Session>, scope: Arc<HostScope>) -> ScopeHandle {
        ScopeHandle { session, scope }
    }
}

impl Scope for ScopeHandle {
    fn lookup(&self, name: &str) -> Option<Value> {
        let _alive = &self.session;
        self.scope.lookup(name)
    }

    fn names(&self) -> Vec<String> {
        self.scope.names()
    }
}

/// `groups`: every group's hosts, in inventory order (`all` and
/// `ungrouped` included).
struct Groups {
    session: Weak<Session>,
}

impl fmt::Debug for Groups {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("groups")
    }
}

impl Object for Groups {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        let session = self.session.upgrade()?;
        if session.inventory.group(name).is_none() && name != UNGROUPED {
            template::missing(&format!("groups['{name}']"), Vec::new(), false);
            return None;
        }
        let hosts: Vec<Value> = session
            .inventory
            .hosts_of_group(name)
            .into_iter()
            .map(Value::from)
            .collect();
        Some(Value::from(hosts))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let Some(session) = self.session.upgrade() else {
            return Enumerator::Empty;
        };
        let mut names: Vec<Value> = session
            .inventory
            .groups()
            .map(|group| Value::from(group.name.as_str()))
            .collect();
        if session.inventory.group(UNGROUPED).is_none() {
            names.push(Value::from(UNGROUPED));
        }
        Enumerator::Values(names)
    }
}

/// `hostvars`: every host's variables, each rendered on demand.
struct Hostvars {
    session: Weak<Session>,
}

impl fmt::Debug for Hostvars {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("hostvars")
    }
}

impl Object for Hostvars {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        let session = self.session.upgrade()?;
        match session.scope(name) {
            Some(scope) => Some(Value::from_dyn_object(scope)),
            None => {
                template::missing(&format!("hostvars['{name}']"), Vec::new(), false);
                None
            }
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let Some(session) = self.session.upgrade() else {
            return Enumerator::Empty;
        };
        Enumerator::Values(
            session
                .inventory
                .host_entries()
                .map(|entry| Value::from(entry.name.as_str()))
                .collect(),
        )
    }
}
