//! `hosts`, and the selection every command that reaches hosts starts
//! with: the hosts a pattern ∧ `--limit` ∧ `--shard` select, each with the
//! endpoint it is reached at (inventory over `~/.ssh/config`).
//!
//! Must not: contact a host, or print (problems go to the operator).

use std::path::{Path, PathBuf};

use crate::diagnostic::Diagnostics;
use crate::endpoint::Endpoint;
use crate::inventory::{Host, Shard, SshConfig};
use crate::template::Templates;

use super::check::select_hosts;
use super::{Operator, OpsError};

/// Where the fleet is described, and which part of it.
#[derive(Debug, Clone)]
pub struct Selection {
    pub inventory: Vec<PathBuf>,
    pub limit: Option<String>,
    pub shard: Option<Shard>,
    /// The ssh client configuration (`~` is expanded).
    pub ssh_config: PathBuf,
    /// The vault passwords' sources.
    pub vault: crate::vault::VaultIds,
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
            super::check::InventorySources {
                paths: &self.inventory,
                vault: &self.vault,
            },
            pattern,
            None,
            self.limit.as_deref(),
            self.shard,
            &Templates::new(),
            &mut diagnostics,
        );
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
