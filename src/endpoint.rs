//! Where and how to reach one machine: the [`Endpoint`] the transport
//! takes, made of an inventory host and `~/.ssh/config`.
//!
//! Owns: the endpoint (plain data, kept in plan files), and deciding each
//! of its settings — inventory first, then `~/.ssh/config`, then ssh's
//! defaults. Must not: connect (the transport does), or know a MID.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::inventory::{Host, JumpHop};

/// Seconds to wait for a TCP connection and the SSH handshake when neither
/// the inventory nor `~/.ssh/config` says.
pub const DEFAULT_CONNECT_TIMEOUT: u64 = 10;

/// The home directory (`$HOME`, as ssh uses it).
pub fn home_directory() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// The local user name, ssh's default login (not the operator named in
/// audit records: that is `apply::local_user`).
fn local_user() -> String {
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

/// `~/.ssh/config`, read once per run; inventory settings win over it.
#[derive(Default)]
pub struct SshConfig {
    config: Option<ssh2_config::SshConfig>,
}

impl SshConfig {
    /// Reads `path`, or `~/.ssh/config` when `None`; a missing file is an
    /// empty configuration. Options midfleet does not use are ignored.
    pub fn load(path: Option<&Path>) -> Result<SshConfig, String> {
        let path = path.map_or_else(|| home_directory().join(".ssh/config"), Path::to_path_buf);
        if !path.exists() {
            return Ok(SshConfig::default());
        }
        let file =
            std::fs::File::open(&path).map_err(|error| format!("{}: {error}", path.display()))?;
        let rules = ssh2_config::ParseRule::ALLOW_UNKNOWN_FIELDS
            | ssh2_config::ParseRule::ALLOW_UNSUPPORTED_FIELDS;
        let config = ssh2_config::SshConfig::default()
            .parse(&mut std::io::BufReader::new(file), rules)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        Ok(SshConfig {
            config: Some(config),
        })
    }

    fn query(&self, name: &str) -> Option<ssh2_config::HostParams> {
        self.config.as_ref().map(|config| config.query(name))
    }

    /// The endpoint for an inventory host.
    pub fn endpoint(&self, host: &Host) -> Result<Endpoint, String> {
        let params = self.query(&host.address);
        let jump = if host.jump.is_empty() {
            match params.as_ref().and_then(|params| params.proxy_jump.clone()) {
                Some(hops) if !(hops.len() == 1 && hops[0] == "none") => hops
                    .iter()
                    .map(|hop| crate::inventory::parse_jump(hop).map(|mut parsed| parsed.remove(0)))
                    .collect::<Result<Vec<JumpHop>, String>>()
                    .map_err(|error| format!("ProxyJump in ~/.ssh/config: {error}"))?,
                _ => Vec::new(),
            }
        } else {
            host.jump.clone()
        };
        let jump = jump.iter().map(|hop| self.hop(hop)).collect();
        Ok(self.build(
            &host.name,
            &host.address,
            host.port,
            host.user.clone(),
            host.identity_file.clone(),
            host.connect_timeout,
            jump,
            params,
        ))
    }

    fn hop(&self, hop: &JumpHop) -> Endpoint {
        let params = self.query(&hop.host);
        self.build(
            &hop.to_string(),
            &hop.host,
            hop.port,
            hop.user.clone(),
            None,
            None,
            Vec::new(),
            params,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        label: &str,
        address: &str,
        port: Option<u16>,
        user: Option<String>,
        identity_file: Option<PathBuf>,
        connect_timeout: Option<u64>,
        jump: Vec<Endpoint>,
        params: Option<ssh2_config::HostParams>,
    ) -> Endpoint {
        let params = params.unwrap_or_else(|| ssh2_config::HostParams::new(&Default::default()));
        Endpoint {
            label: label.to_string(),
            address: params
                .host_name
                .clone()
                .unwrap_or_else(|| address.to_string()),
            port: port.or(params.port).unwrap_or(22),
            user: user.or(params.user.clone()).unwrap_or_else(local_user),
            identity_file,
            configured_identities: params.identity_file.clone().unwrap_or_default(),
            jump,
            connect_timeout: connect_timeout
                .or(params
                    .connect_timeout
                    .map(|timeout| timeout.as_secs().max(1)))
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        }
    }
}
