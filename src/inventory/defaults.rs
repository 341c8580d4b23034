//! Connection defaults from outside the inventory (ansible.cfg's
//! `remote_user`, `remote_port`, `private_key_file`, `timeout` and their
//! `ANSIBLE_*` variables): below every inventory variable, above
//! `~/.ssh/config` — as in Ansible, where they reach ssh as `-o User=…`,
//! `-o Port=…`, `-o IdentityFile=…`, `-o ConnectTimeout=…` only when no
//! inventory variable sets them.
//!
//! Owns: [`HostDefaults`] and filling a resolved host's unset settings.
//! Must not: read a file or the environment (the caller gives the values).

use std::path::PathBuf;

use super::Host;

/// Defaults for what a host's inventory variables leave unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostDefaults {
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_file: Option<PathBuf>,
    /// Seconds.
    pub connect_timeout: Option<u64>,
}

impl HostDefaults {
    /// Fills the settings `host`'s variables left unset.
    pub fn apply(&self, host: &mut Host) {
        if host.user.is_none() {
            host.user.clone_from(&self.user);
        }
        if host.port.is_none() {
            host.port = self.port;
        }
        if host.identity_file.is_none() {
            host.identity_file.clone_from(&self.identity_file);
        }
        if host.connect_timeout.is_none() {
            host.connect_timeout = self.connect_timeout;
        }
    }
}
