//! Where and how to reach one machine: the [`Endpoint`] the transport
//! takes (plain data, also kept in plan files).
//!
//! Owns: the endpoint's shape and ssh's defaults. Must not: know an
//! inventory (`inventory::ssh_config` makes endpoints of hosts) or connect.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Seconds to wait for a TCP connection and the SSH handshake when neither
/// the inventory nor `~/.ssh/config` says.
pub const DEFAULT_CONNECT_TIMEOUT: u64 = 10;

/// The home directory (`$HOME`, as ssh uses it).
pub fn home_directory() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// The local user name, ssh's default login (not the operator named in
/// audit records: that is `apply::local_user`).
pub fn local_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".to_string())
}

/// One machine to reach: a target or a hop, with every setting decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The inventory name (or the hop as written), for messages.
    pub label: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    /// When set, the only key offered.
    pub identity_file: Option<PathBuf>,
    /// `IdentityFile`s from `~/.ssh/config`, offered after the agent's keys.
    #[serde(default)]
    pub configured_identities: Vec<PathBuf>,
    pub jump: Vec<Endpoint>,
    pub connect_timeout: u64,
}
