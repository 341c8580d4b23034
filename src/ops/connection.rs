//! How hosts are reached, as plain values (`--forks`, `--known-hosts`,
//! …): the transport they describe, and room in the open-files limit for
//! that many sessions at once.
//!
//! Must not: select hosts or print (warnings go to the operator).

use std::path::PathBuf;

use crate::transport::{KnownHostsPolicy, Transport, TransportOptions};

use super::{Operator, OpsError};

/// The connection options of a command.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Hosts worked on at once.
    pub forks: usize,
    /// known_hosts file to check host keys against (default: the user's
    /// and the system's).
    pub known_hosts: Option<PathBuf>,
    /// Record the keys of hosts seen for the first time.
    pub accept_new_host_keys: bool,
    /// Timeout in seconds of each SSH operation once connected.
    pub ssh_timeout: u64,
}

impl Connection {
    /// The transport these options describe. `secrets_follow` refuses
    /// `accept_new_host_keys` (apply).
    pub fn transport(
        &self,
        secrets_follow: bool,
        operator: &dyn Operator,
    ) -> Result<Transport, OpsError> {
        if secrets_follow && self.accept_new_host_keys {
            return Err(OpsError::input(
                "--accept-new-host-keys is refused here: secrets are never sent to a host key seen for the first time",
            )
            .with_hint("record the keys first with `midfleet facts --accept-new-host-keys`, after checking their fingerprints"));
        }
        let known_hosts =
            KnownHostsPolicy::new(self.known_hosts.as_deref(), self.accept_new_host_keys);
        for line in known_hosts.unsupported_lines() {
            operator.warning(&line);
        }
        Ok(Transport::new(TransportOptions {
            known_hosts,
            operation_timeout: std::time::Duration::from_secs(self.ssh_timeout.max(1)),
        }))
    }
}

/// Raises the soft limit on open files so `forks` sessions (a socket, and
/// for jump hosts a socket pair, each) fit; a warning when it cannot.
pub fn raise_file_limit(forks: usize) -> Option<String> {
    raise_file_limit_keeping(forks, 0).1
}

/// [`raise_file_limit`], with room for up to `keep` more sessions kept
/// open between a plan and its apply (two descriptors each at most):
/// returns how many of them fit (the rest are not kept), and the warning
/// about the forks, if any.
pub fn raise_file_limit_keeping(forks: usize, keep: usize) -> (usize, Option<String>) {
    let needed = (forks as u64) * 4 + 64;
    let wanted = needed + 2 * keep as u64;
    // SAFETY: getrlimit/setrlimit with a struct we own.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return (0, None);
        }
        if limit.rlim_cur < wanted {
            let raised = wanted.min(limit.rlim_max);
            let mut new_limit = limit;
            new_limit.rlim_cur = raised;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &new_limit) == 0 {
                limit = new_limit;
            }
        }
        let room = limit.rlim_cur.saturating_sub(needed) / 2;
        let kept = (keep as u64).min(room) as usize;
        if limit.rlim_cur < needed {
            return (
                kept,
                Some(format!(
                    "--forks {forks} needs about {needed} open files, but the limit is {}; raise it with `ulimit -n {needed}` or use fewer forks",
                    limit.rlim_cur
                )),
            );
        }
        (kept, None)
    }
}
