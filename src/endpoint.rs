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
        .ok()
        .or_else(uid_user_name)
        .unwrap_or_else(|| "root".to_string())
}

/// The name of the user midfleet runs as, from the password database
/// (`USER` and `LOGNAME` may be unset: cron, systemd units, `env -i`).
pub fn uid_user_name() -> Option<String> {
    let mut buffer = vec![0u8; 4096];
    loop {
        // SAFETY: `entry` and `buffer` outlive the call; getpwuid_r writes
        // the strings it points to into `buffer`, whose length is passed.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let status = unsafe {
            libc::getpwuid_r(
                libc::getuid(),
                &mut entry,
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                &mut found,
            )
        };
        if status == libc::ERANGE && buffer.len() < 1 << 20 {
            buffer.resize(buffer.len() * 4, 0);
            continue;
        }
        if status != 0 || found.is_null() || entry.pw_name.is_null() {
            return None;
        }
        // SAFETY: pw_name points to a NUL-terminated string in `buffer`.
        let name = unsafe { std::ffi::CStr::from_ptr(entry.pw_name) };
        return Some(name.to_string_lossy().into_owned()).filter(|name| !name.is_empty());
    }
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_uid_user_name_is_what_id_says() {
        let id = std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap();
        let expected = String::from_utf8(id.stdout).unwrap();
        assert_eq!(super::uid_user_name().as_deref(), Some(expected.trim()));
    }
}
