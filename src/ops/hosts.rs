//! `hosts`, and the selection every command that reaches hosts starts
//! with: the hosts a pattern ∧ `--limit` ∧ `--shard` select, each with the
//! endpoint it is reached at (inventory over `~/.ssh/config`).
//!
//! Must not: contact a host, or print (problems go to the operator).

use std::path::{Path, PathBuf};

use crate::ansible_cfg::{AnsibleCfg, Setting};
use crate::diagnostic::{Diagnostic, Diagnostics, Origin};
use crate::endpoint::Endpoint;
use crate::inventory::{
    parse_extra_vars, Host, HostDefaults, Inventory, Selection as PatternSelection, Shard,
    SshConfig, Vars,
};
use crate::template::Templates;

use super::{Operator, OpsError};

/// The inventory sources and what stands above and below their variables:
/// `-e` over every variable, ansible.cfg's connection defaults under them.
#[derive(Debug, Clone, Default)]
pub struct InventorySource {
    pub paths: Vec<PathBuf>,
    /// The vault passwords (from the command line, Ansible's environment,
    /// then ansible.cfg's `vault_password_file`), asked for or read once,
    /// when a vaulted value is first used.
    pub vault: std::sync::Arc<crate::vault::Keyring>,
    pub extra_vars: Vars,
    pub defaults: HostDefaults,
}

/// Where the fleet is described, and which part of it.
#[derive(Debug, Clone)]
pub struct Selection {
    pub inventory: InventorySource,
    pub limit: Option<String>,
    pub shard: Option<Shard>,
    /// The ssh client configuration (`~` is expanded).
    pub ssh_config: PathBuf,
}

impl Selection {
    /// The ssh configuration, `~` expanded.
    pub fn ssh_config(&self) -> Result<SshConfig, OpsError> {
        load_ssh_config(&self.ssh_config)
    }

    /// The hosts `pattern` ∧ `--limit` select, each with the endpoint it
    /// is reached at. Every problem goes to the operator; any error is bad
    /// input: nothing is contacted.
    pub fn select(
        &self,
        pattern: &str,
        operator: &dyn Operator,
    ) -> Result<Vec<(Host, Endpoint)>, OpsError> {
        let mut diagnostics = Diagnostics::new();
        let selected = select_hosts(
            &self.inventory,
            pattern,
            None,
            self.limit.as_deref(),
            self.shard,
            &Templates::new(),
            &mut diagnostics,
        );
        selected.report_files(operator);
        let errors = diagnostics.error_count();
        for diagnostic in diagnostics.merged() {
            operator.diagnostic(&diagnostic);
        }
        if errors > 0 {
            return Err(OpsError::input(format!(
                "{errors} problem{} in the inventory or pattern; no host was contacted",
                if errors == 1 { "" } else { "s" }
            )));
        }
        let ssh_config = self.ssh_config()?;
        selected
            .hosts
            .into_iter()
            .map(|host| {
                let endpoint = ssh_config
                    .endpoint(&host)
                    .map_err(|error| OpsError::input(format!("host {}: {error}", host.name)))?;
                Ok((host, endpoint))
            })
            .collect()
    }
}

impl InventorySource {
    /// The inventory of a command: `-i` when given, else ansible.cfg's
    /// `inventory` (or `ANSIBLE_INVENTORY`); `-e` parsed (its problems go to
    /// the operator; an error stops here); ansible.cfg's connection
    /// defaults for what the inventory leaves unset. The one place where the
    /// command line, the environment and ansible.cfg meet.
    pub fn new(
        paths: &[PathBuf],
        extra_vars: &[String],
        mut vault: crate::vault::VaultSettings,
        configuration: &AnsibleCfg,
        operator: &dyn Operator,
    ) -> Result<InventorySource, OpsError> {
        let paths = if !paths.is_empty() {
            paths.to_vec()
        } else if let Some(setting) = &configuration.inventory {
            setting.value.clone()
        } else {
            return Err(OpsError::input("no inventory: give one with -i").with_hint(
                "or set `inventory = PATH` under [defaults] in ansible.cfg, or ANSIBLE_INVENTORY \
                 (unlike Ansible, midfleet does not fall back to /etc/ansible/hosts)",
            ));
        };
        if vault.default_password_file.is_none() {
            vault.default_password_file = configuration
                .vault_password_file
                .as_ref()
                .map(|setting| (setting.value.clone(), "ansible.cfg".to_string()));
        }
        let keyring = std::sync::Arc::new(crate::vault::Keyring::new(
            crate::vault::VaultIds::from_settings(&vault),
        ));
        let (vars, diagnostics) = parse_extra_vars(extra_vars, &keyring);
        let errors = diagnostics.error_count();
        for diagnostic in diagnostics.merged() {
            operator.diagnostic(&diagnostic);
        }
        if errors > 0 {
            return Err(OpsError::input(format!(
                "{errors} problem{} in -e/--extra-vars; no host was contacted",
                if errors == 1 { "" } else { "s" }
            )));
        }
        Ok(InventorySource {
            paths,
            vault: keyring,
            extra_vars: vars,
            defaults: HostDefaults {
                user: setting_value(&configuration.remote_user),
                port: setting_value(&configuration.remote_port),
                identity_file: setting_value(&configuration.private_key_file),
                connect_timeout: setting_value(&configuration.timeout),
            },
        })
    }
}

fn setting_value<T: Clone>(setting: &Option<Setting<T>>) -> Option<T> {
    setting.as_ref().map(|setting| setting.value.clone())
}

/// `hosts`: the hosts `pattern` selects, as they will be reached.
pub fn hosts(
    selection: &Selection,
    pattern: &str,
    operator: &dyn Operator,
) -> Result<Vec<(Host, Endpoint)>, OpsError> {
    selection.select(pattern, operator)
}

/// Reads an ssh configuration file, `~` expanded.
pub fn load_ssh_config(path: &Path) -> Result<SshConfig, OpsError> {
    let path = match path.strip_prefix("~") {
        Ok(rest) => crate::endpoint::home_directory().join(rest),
        Err(_) => path.to_path_buf(),
    };
    SshConfig::load(Some(&path))
        .map_err(|error| OpsError::input(format!("cannot read the ssh configuration: {error}")))
}

/// A loaded inventory and the hosts a pattern and `--limit` select,
/// resolved. Shared by the commands that work on hosts.
pub struct Selected {
    pub inventory: Inventory,
    pub hosts: Vec<Host>,
    /// The pattern or `--limit` could not be applied (unknown name…); then
    /// `hosts` is empty.
    pub pattern_failed: bool,
}

/// Loads the inventory and resolves the hosts `pattern` ∧ `limit` select,
/// with every problem in `diagnostics`. It goes on after errors, so that
/// one run finds them all: a caller that acts on hosts must stop when
/// `diagnostics` holds an error.
pub fn select_hosts(
    source: &InventorySource,
    pattern: &str,
    pattern_origin: Option<&Origin>,
    limit: Option<&str>,
    shard: Option<Shard>,
    templates: &Templates,
    diagnostics: &mut Diagnostics,
) -> Selected {
    let (mut inventory, loaded) = Inventory::load_with_vault(&source.paths, source.vault.clone());
    diagnostics.extend(loaded);
    inventory.set_extra_vars(source.extra_vars.clone());
    let mut names = apply_pattern(inventory.select(pattern, pattern_origin), "", diagnostics);
    if let (Some(limit), Some(selected)) = (limit, names.as_mut()) {
        match apply_pattern(
            inventory.select_limit(limit, None),
            "--limit: ",
            diagnostics,
        ) {
            Some(limited) => selected.retain(|name| limited.contains(name)),
            None => names = None,
        }
    }
    let pattern_failed = names.is_none();
    let mut hosts = Vec::new();
    for name in names.unwrap_or_default() {
        match inventory.resolve(&name, templates) {
            Ok(mut host) => {
                source.defaults.apply(&mut host);
                hosts.push(host)
            }
            Err(problems) => problems
                .into_iter()
                .for_each(|problem| diagnostics.push(problem)),
        }
    }
    for warning in inventory.vault_warnings() {
        diagnostics.push(warning);
    }
    // A cluster's members stay in one part (keyed by the cluster's name):
    // parts run their rollouts independently, and members must never
    // restart together.
    if let Some(shard) = shard {
        hosts.retain(|host| shard.holds(host.mid_cluster.as_deref().unwrap_or(&host.name)));
    }
    Selected {
        inventory,
        hosts,
        pattern_failed,
    }
}

/// The host names a pattern selected, or `None` (with the errors recorded).
fn apply_pattern(
    selected: Result<PatternSelection, Vec<Diagnostic>>,
    prefix: &str,
    diagnostics: &mut Diagnostics,
) -> Option<Vec<String>> {
    match selected {
        Ok(selection) => {
            selection
                .warnings
                .into_iter()
                .for_each(|warning| diagnostics.push(warning));
            Some(selection.hosts)
        }
        Err(errors) => {
            for error in errors {
                diagnostics.push(Diagnostic {
                    message: format!("{prefix}{}", error.message),
                    ..error
                });
            }
            None
        }
    }
}

impl Selected {
    /// Names every inventory and variables file read to `operator`.
    pub fn report_files(&self, operator: &dyn Operator) {
        for file in &self.inventory.files {
            operator.file_read("inventory", file);
        }
        for (file, vaulted) in &self.inventory.vars_files {
            let kind = if *vaulted {
                "vaulted variables"
            } else {
                "variables"
            };
            operator.file_read(kind, file);
        }
    }
}
