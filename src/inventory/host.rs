//! One host resolved: its variables merged by precedence, templated
//! variables rendered, and the settings midfleet uses checked and typed.

use std::path::PathBuf;

use indexmap::IndexMap;
use serde::Serialize;

use crate::diagnostic::Diagnostic;
use crate::template::{Context, Templates};
use crate::yaml::Node;

use super::jump::{parse_jump, parse_ssh_arguments, JumpHop};
use super::known::{
    check_become, check_remote_path, convert, Known, KnownValue, ServiceSpec, VarError,
};
use super::vars::{to_template_value, Var, Vars};
use super::vaulted::Vaulted;
use super::{Inventory, ALL, UNGROUPED};

/// Default of SPEC.md.
pub const DEFAULT_MID_HOME: &str = "/opt/servicenow/mid";

/// Passes over templated variables that refer to other templated ones.
const TEMPLATE_PASSES: usize = 5;

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
    /// The groups it belongs to (not `all` or `ungrouped`), sorted.
    pub groups: Vec<String>,
    /// Its variables, rendered, plus `inventory_hostname` and `group_names`.
    #[serde(skip)]
    pub template_context: Context,
    /// Its sensitive variables (`!vault` values, a vaulted file's values,
    /// templates over them): not in `template_context`, revealed only
    /// when used.
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
    /// Resolves host `name` (which must exist): precedence is `all` <
    /// parent group < child group (by depth, then name) < host, and within
    /// each, the inventory file < `group_vars/`/`host_vars/`.
    pub fn resolve(&self, name: &str, templates: &Templates) -> Result<Host, Vec<Diagnostic>> {
        let entry = self
            .host_entry(name)
            .expect("resolve is called with a host of the inventory");
        let groups = self.groups_of_host(name);
        // Ansible's VARIABLE_PRECEDENCE: every inventory-file group variable
        // (by depth), then group_vars/ (`all` first, then by depth), then
        // the host's inventory variables, then host_vars/.
        let mut layers: Vec<&Vars> = Vec::new();
        let group_entries: Vec<&super::Group> = groups
            .iter()
            .filter_map(|(group, _)| self.group(group))
            .collect();
        layers.extend(group_entries.iter().map(|group| &group.vars));
        layers.extend(group_entries.iter().map(|group| &group.file_vars));
        layers.push(&entry.vars);
        layers.push(&entry.file_vars);
        // -e/--extra-vars: above everything, for every host.
        layers.push(&self.extra_vars);
        let mut merged: IndexMap<String, Var> = IndexMap::new();
        for layer in &layers {
            for (key, var) in layer.iter() {
                merged.insert(key.clone(), var.clone());
            }
        }
        let group_names: Vec<String> = groups
            .iter()
            .map(|(group, _)| group.clone())
            .filter(|group| group != ALL && group != UNGROUPED)
            .collect();
        let mut sorted_group_names = group_names.clone();
        sorted_group_names.sort();

        // Vaulted values, and templates over them, wait until used.
        let vaulted = Vaulted::split(
            &mut merged,
            self.vault.clone(),
            self.unreadable_vault_files.clone(),
            templates,
        );
        let mut problems = Vec::new();
        let rendered =
            render_variables(name, &merged, &sorted_group_names, templates, &mut problems);
        if let Some(note) = vaulted.unreadable_note() {
            for problem in &mut problems {
                if problem.message.contains("undefined") {
                    problem.message = format!("{}; {note}", problem.message);
                }
            }
        }
        let mut base_context: Context = rendered
            .iter()
            .map(|(key, node)| (key.clone(), to_template_value(node)))
            .collect();
        base_context.insert("inventory_hostname".into(), minijinja::Value::from(name));
        base_context.insert(
            "group_names".into(),
            minijinja::Value::from(sorted_group_names.clone()),
        );

        let mut settings = Settings {
            host: name,
            layers: &layers,
            rendered: &rendered,
            merged: &merged,
            problems: &mut problems,
            vaulted: &vaulted,
            context: &base_context,
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
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut template_context = base_context;
        // Defaults are visible to templates too, as Ansible's magic
        // variables are.
        template_context
            .entry("mid_home".into())
            .or_insert_with(|| minijinja::Value::from(mid_home.clone()));
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

/// Renders every templated variable against the others, a few passes deep
/// so that `mid_config: "{{ mid_home }}/agent/config.xml"` sees a rendered
/// `mid_home`. A variable still holding a template afterwards is reported.
fn render_variables(
    host: &str,
    merged: &IndexMap<String, Var>,
    group_names: &[String],
    templates: &Templates,
    problems: &mut Vec<Diagnostic>,
) -> IndexMap<String, Node> {
    let mut rendered: IndexMap<String, Node> = merged
        .iter()
        .map(|(key, var)| (key.clone(), var.node.clone()))
        .collect();
    // Ignored Ansible variables (`ansible_password: "{{ vault_… }}"`) are
    // never rendered: midfleet does not use them.
    let templated: Vec<&String> = merged
        .iter()
        .filter(|(key, var)| {
            var.is_template() && super::known::ignored_ansible_variable(key).is_none()
        })
        .map(|(key, _)| key)
        .collect();
    if templated.is_empty() {
        return rendered;
    }
    let mut failures: IndexMap<String, String> = IndexMap::new();
    for _ in 0..TEMPLATE_PASSES {
        let mut context: Context = rendered
            .iter()
            .filter(|(_, node)| !node.text().is_some_and(Templates::is_template))
            .map(|(key, node)| (key.clone(), to_template_value(node)))
            .collect();
        context.insert("inventory_hostname".into(), minijinja::Value::from(host));
        context.insert(
            "group_names".into(),
            minijinja::Value::from(group_names.to_vec()),
        );
        context
            .entry("mid_home".into())
            .or_insert_with(|| minijinja::Value::from(DEFAULT_MID_HOME));
        failures.clear();
        let mut progressed = false;
        for key in &templated {
            let Some(text) = rendered.get(*key).and_then(Node::text).map(str::to_string) else {
                continue;
            };
            if !Templates::is_template(&text) {
                continue;
            }
            match templates.render(&text, &context) {
                Ok(value) => {
                    let at = merged[*key].node.at;
                    // A rendered template is a string, as in Ansible: `01`
                    // stays `01`, not the number 1.
                    rendered.insert((*key).clone(), Node::scalar(value, false, at));
                    progressed = true;
                }
                Err(error) => {
                    failures.insert((*key).clone(), error.to_string());
                }
            }
        }
        if failures.is_empty() || !progressed {
            break;
        }
    }
    for (key, message) in failures {
        problems.push(
            Diagnostic::error(
                Some(merged[&key].origin.clone()),
                format!("variable `{key}`: {message}"),
            )
            .for_host(host)
            .with_hint("define the variable for this host or its groups, or fix the template"),
        );
    }
    rendered
}

/// Reads the known settings of one host, collecting problems.
struct Settings<'a> {
    host: &'a str,
    layers: &'a [&'a Vars],
    rendered: &'a IndexMap<String, Node>,
    merged: &'a IndexMap<String, Var>,
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
        self.merged.contains_key(name) || self.vaulted.holds(name)
    }

    /// The index of the highest-precedence layer that sets `name`.
    fn scope(&self, name: &str) -> Option<usize> {
        self.layers
            .iter()
            .rposition(|layer| layer.get(name).is_some())
    }

    fn value(&mut self, known: Known) -> Option<KnownValue> {
        let name = self.winner(known)?;
        if self.vaulted.holds(name) {
            return self.vaulted_value(known, name);
        }
        let node = self.rendered.get(name)?;
        if node
            .text()
            .is_some_and(crate::template::Templates::is_template)
        {
            return None; // reported by render_variables
        }
        match convert(known, name, node) {
            Ok(value) => Some(value),
            Err(error) => {
                let var = &self.merged[name];
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
                        let origin = self
                            .winner(known)
                            .map(|name| self.merged[name].origin.clone());
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
                    Diagnostic::error(Some(self.merged[name].origin.clone()), error.to_string())
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
                let origin = native.map(|name| self.merged[name].origin.clone());
                self.problems
                    .push(Diagnostic::error(origin, format!("jump: {error}")).for_host(self.host));
                Vec::new()
            }
        }
    }
}
