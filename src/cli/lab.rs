//! `midfleet lab`: the command line of the lab that stays up, and its
//! launcher. The lab is a test double kept out of the product: its body is
//! `midfleet-lab`, a binary of the `midfleet-lab` crate; clap knows the
//! command here (for `--help`, completions and man pages), and `midfleet
//! lab …` execs `midfleet-lab` from beside midfleet with the same
//! arguments, as `midfleet demo` execs `midfleet-demo`.

use std::ffi::OsString;

use clap::{Args, Subcommand};

use super::exit::{Exit, Failure};
use crate::secret::SecretRef;

/// A local fleet that stays up, to rehearse on: real sshd hosts on this
/// machine with simulated MIDs, and a simulated instance with --instance.
///
/// `lab up` prints its inventory, known_hosts and an example playbook,
/// ready for every other command (`midfleet plan -i …/inventory.yml
/// --known-hosts …/known_hosts …/rotate.yml`). One lab per user; it stays
/// up until `midfleet lab down`, which also removes a lab left behind by
/// a killed `lab up` or `demo`. Needs openssh-server; as root each host
/// gets its own /opt/servicenow, as a normal user its own folder.
///
/// The lab stands on test doubles kept out of midfleet: this runs
/// `midfleet-lab` from beside midfleet (`cargo build --release
/// --workspace` builds both).
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  midfleet lab up --hosts 3 --instance
  midfleet lab up --hosts 12 --instance --kinds cyberark=2,mtls=1,ipki=1,upgrading=1,container=1,override=1
  midfleet lab user svc_mid_lab001 --password env:LAB_PASSWORD
  midfleet lab fault lab-002 dies-at-start
  midfleet lab up --hosts 5 --link 'rtt=150 jitter=5 loss=1%'
  midfleet lab link lab-003 rtt=400
  midfleet lab link all cut
  midfleet lab status
  midfleet lab down

Exit codes: 0 done; 1 failed, or no lab is up (status, user, fault, link); 3 bad usage.
The lab's record: $MIDFLEET_LAB_STATE, else /run/midfleet-lab as root,
$XDG_RUNTIME_DIR/midfleet-lab, or /tmp/midfleet-lab-UID.")]
pub struct LabArgs {
    #[command(subcommand)]
    pub command: LabCommand,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Start a lab that stays up after this command returns, and print
    /// where its inventory, known_hosts and example playbook are, and the
    /// commands to try next. A lab left by a killed `lab up` or demo is
    /// removed first; a lab that is up is left alone (one per user).
    Up {
        /// How many MID hosts (lab-001, lab-002, …).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=250))]
        hosts: u16,
        /// Also start a simulated ServiceNow instance (Table API) that the
        /// MIDs log in to; the example playbook then has an `instance:`
        /// section, so apply checks users and validates MIDs there.
        #[arg(long)]
        instance: bool,
        /// Kinds of MID for the first hosts, KIND=COUNT joined by commas
        /// (the rest are plain; --hosts grows to hold them): cyberark,
        /// mtls, ipki, upgrading, upgrade-failed, container, override
        /// (`mid.instance.username` in its ecc_agent_config), plain.
        /// mtls, ipki and override need --instance (mtls makes it HTTPS).
        /// See docs/lab.md.
        #[arg(long, value_name = "KIND=N,…")]
        kinds: Option<String>,
        /// Put every host behind a network link with this round trip,
        /// jitter and loss, e.g. 'rtt=150 jitter=5 loss=1%' (ms; loss as
        /// a share or a percentage): the lab's own TCP relay stands at
        /// each host's address, so the inventory does not change. Change
        /// it later, per host, with `midfleet lab link`. See docs/lab.md.
        #[arg(long, value_name = "SETTINGS")]
        link: Option<String>,
    },
    /// Each host (address, sshd, MID running or stopped, its instance
    /// user, its fault), the instance's URL and users. Exit 1 when no lab
    /// is up (none, or one still starting), a host's sshd is down, its
    /// instance does not answer, or the lab is stale (its maker was killed: `midfleet lab down` removes it).
    Status,
    /// Stop every process of the lab, and remove its folder and record.
    /// Also removes a stale lab (its `lab up` or demo killed); nothing to
    /// do is not an error.
    Down,
    /// Make user NAME log in with a password on the lab's instance,
    /// holding the mid_server role (created, or its password set), so a
    /// rotation to NAME can succeed. Without --instance, the MIDs'
    /// credential store learns it.
    User {
        /// The instance user name.
        name: String,
        /// Where the password comes from: env:NAME, file:PATH,
        /// command:CMD or prompt:LABEL (never the password itself).
        /// Default: asked on the terminal.
        #[arg(long, value_name = "SECRETREF")]
        password: Option<SecretRef>,
    },
    /// Make HOST's simulated MID misbehave from its next start, stop or
    /// login (replacing the fault it had); `none` clears it.
    Fault {
        /// A lab host (lab-001, …).
        host: String,
        /// dies-at-start: the MID exits at start without a log line;
        /// hangs-at-stop: it ignores the stop; slow-start: it takes 10 s
        /// to start; refused-login: the instance refuses its user;
        /// heap-limit=MB: the host gives its JVM at most MB of heap, so a
        /// larger wrapper.java.maxmemory (conf/wrapper-override.conf)
        /// fails every launch and the wrapper gives up; none (or clear):
        /// no fault.
        #[arg(value_parser = LabFault::parse, value_name = "KIND")]
        kind: LabFault,
    },
    /// Show or change HOST's network link (a lab started with --link):
    /// live connections feel a change within 20 ms. Without SETTINGS,
    /// shows it.
    Link {
        /// A lab host (lab-001, …), or `all`.
        host: String,
        /// rtt=MS, jitter=MS, loss=SHARE or PERCENT%; `down` (data
        /// waits, connections hang) and `up`; `cut` (reset every live
        /// connection now).
        #[arg(value_name = "SETTINGS")]
        settings: Vec<String>,
    },
}

/// The faults of `lab fault`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabFault {
    DiesAtStart,
    HangsAtStop,
    SlowStart,
    RefusedLogin,
    /// `heap-limit=MB`.
    HeapLimit(u64),
    None,
}

impl LabFault {
    /// `dies-at-start`, `hangs-at-stop`, `slow-start`, `refused-login`,
    /// `heap-limit=MB` (MB a positive whole number), `none` or `clear`.
    pub fn parse(text: &str) -> Result<LabFault, String> {
        let fault = match text {
            "dies-at-start" => LabFault::DiesAtStart,
            "hangs-at-stop" => LabFault::HangsAtStop,
            "slow-start" => LabFault::SlowStart,
            "refused-login" => LabFault::RefusedLogin,
            "none" | "clear" => LabFault::None,
            _ => match text.strip_prefix("heap-limit=") {
                Some(megabytes) => megabytes
                    .parse()
                    .ok()
                    .filter(|megabytes| *megabytes > 0)
                    .map(LabFault::HeapLimit)
                    .ok_or_else(|| {
                        format!("`{megabytes}` is not a heap size: give whole MB, e.g. heap-limit=1536")
                    })?,
                None => {
                    return Err(
                        "possible values: dies-at-start, hangs-at-stop, slow-start, refused-login, heap-limit=MB, none"
                            .into(),
                    )
                }
            },
        };
        Ok(fault)
    }
}

/// Replaces this process with `midfleet-lab arguments…`.
pub fn run(arguments: &[OsString]) -> Result<Exit, Failure> {
    super::demo::exec_beside("midfleet-lab", "the lab", arguments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_faults_parse_with_a_heap_limit_in_whole_mb() {
        assert_eq!(LabFault::parse("dies-at-start"), Ok(LabFault::DiesAtStart));
        assert_eq!(LabFault::parse("clear"), Ok(LabFault::None));
        assert_eq!(
            LabFault::parse("heap-limit=1536"),
            Ok(LabFault::HeapLimit(1536))
        );
        for wrong in [
            "heap-limit=",
            "heap-limit=0",
            "heap-limit=2g",
            "heap-limit=-1",
        ] {
            let error = LabFault::parse(wrong).unwrap_err();
            assert!(error.contains("give whole MB"), "{wrong}: {error}");
        }
        let error = LabFault::parse("heap").unwrap_err();
        assert!(error.contains("heap-limit=MB"), "{error}");
    }
}
