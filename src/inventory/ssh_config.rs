//! An inventory host as an [`Endpoint`]: its connection variables first,
//! then `~/.ssh/config` (read once per run), then ssh's defaults — as
//! Ansible's ssh connection leaves to ssh what the inventory does not say.
//!
//! Owns: reading `~/.ssh/config` and deciding each endpoint setting. Must
//! not: connect (the transport does).

use std::path::{Path, PathBuf};

use crate::endpoint::{home_directory, local_user, Endpoint, DEFAULT_CONNECT_TIMEOUT};

use super::{parse_jump, Host, JumpError, JumpHop};

/// Why `~/.ssh/config` (or the file given) cannot be used for an endpoint.
#[derive(Debug, thiserror::Error)]
pub enum SshConfigError {
    #[error("{}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", .path.display())]
    Parse {
        path: PathBuf,
        source: ssh2_config::SshParserError,
    },
    /// A `ProxyJump` that `host` gets from the file is not a jump chain.
    #[error("ProxyJump in ~/.ssh/config: {source}")]
    ProxyJump { host: String, source: JumpError },
}

/// `~/.ssh/config`, read once per run; inventory settings win over it.
#[derive(Default)]
pub struct SshConfig {
    config: Option<ssh2_config::SshConfig>,
}

impl SshConfig {
    /// Reads `path`, or `~/.ssh/config` when `None`; a missing file is an
    /// empty configuration. Options midfleet does not use are ignored.
    pub fn load(path: Option<&Path>) -> Result<SshConfig, SshConfigError> {
        let path = path.map_or_else(|| home_directory().join(".ssh/config"), Path::to_path_buf);
        if !path.exists() {
            return Ok(SshConfig::default());
        }
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(source) => return Err(SshConfigError::Read { path, source }),
        };
        let rules = ssh2_config::ParseRule::ALLOW_UNKNOWN_FIELDS
            | ssh2_config::ParseRule::ALLOW_UNSUPPORTED_FIELDS;
        let config = ssh2_config::SshConfig::default()
            .parse(&mut std::io::BufReader::new(file), rules)
            .map_err(|source| SshConfigError::Parse {
                path: path.clone(),
                source,
            })?;
        Ok(SshConfig {
            config: Some(config),
        })
    }

    fn query(&self, name: &str) -> Option<ssh2_config::HostParams> {
        self.config.as_ref().map(|config| config.query(name))
    }

    /// The endpoint for an inventory host.
    pub fn endpoint(&self, host: &Host) -> Result<Endpoint, SshConfigError> {
        let params = self.query(&host.address);
        let jump = if host.jump.is_empty() {
            match params.as_ref().and_then(|params| params.proxy_jump.clone()) {
                Some(hops) if !(hops.len() == 1 && hops[0] == "none") => hops
                    .iter()
                    .map(|hop| parse_jump(hop).map(|mut parsed| parsed.remove(0)))
                    .collect::<Result<Vec<JumpHop>, JumpError>>()
                    .map_err(|source| SshConfigError::ProxyJump {
                        host: host.name.clone(),
                        source,
                    })?,
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
            hop.identity_file.as_deref().map(expand_home),
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

/// `~/key` as ssh reads an `-i ~/key` (only a leading `~/`).
fn expand_home(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => crate::endpoint::home_directory().join(rest),
        None => PathBuf::from(path),
    }
}
