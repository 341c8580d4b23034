//! A local fleet of real OpenSSH `sshd` hosts, each with its own host key,
//! its own MID agent folder and a simulated MID agent
//! (`midfleet-midsim`): what the integration tests, the benchmarks and
//! `midfleet demo` stand on.
//!
//! Where the process can make namespaces, each host gets its own mount
//! namespace (its own `/opt/servicenow`), and hosts behind bastions get
//! their own network namespaces, reachable only through them; elsewhere
//! hosts fall back to per-host paths. Addresses are loopback or inside
//! namespaces the lab made. Everything started is stopped when the `Lab`
//! is dropped — and, should the owning process die, sshd gets SIGKILL from
//! the kernel and each MID exits by itself. A detached lab
//! ([`LabSpec::detached`]) outlives its process instead: [`kept`] records
//! it and takes it down (`midfleet lab`, the demo).
//!
//! Must not: be used against anything but the machine it runs on.
//!
//! This crate holds midfleet's test doubles, out of the product: the lab
//! (here), `midfleet-midsim` (the simulated MID), `midfleet-instancesim`
//! (the emulated instance), `midfleet-demo` (what `midfleet demo` runs)
//! and `midfleet-lab` (what `midfleet lab …` runs).
//! It depends on `midfleet`; `midfleet` takes it only as a dev-dependency,
//! for its tests and benchmarks. Tests find the binaries with [`binary`].

pub mod chaos;
pub mod front;
pub mod instance_admin;
pub mod kept;
pub mod kinds;
pub mod link;
mod network;
pub mod rng;

pub use instance_admin::InstanceAdmin;
pub use kinds::{HostKind, LabPki};

use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

/// The simulated MID agent, for [`LabSpec::new`]: [`binary`]`("midfleet-midsim")`.
pub fn midsim() -> PathBuf {
    binary("midfleet-midsim")
}

/// The emulated instance: [`binary`]`("midfleet-instancesim")`.
pub fn instancesim() -> PathBuf {
    binary("midfleet-instancesim")
}

/// Puts the program `from` at `to` for a user who cannot reach `from`'s
/// folder: a hard link where both are on one file system, else a copy.
/// A link takes no disk (a debug binary is over 100 MB, and the suite
/// places several per test) and is never open for writing, so a child
/// forked meanwhile cannot make running it fail with ETXTBSY. Only a
/// program others can already read and run is linked; whether `to` is a
/// copy is returned, and only a copy may have its mode changed (a link's
/// would be the original's). `to` must not exist.
pub fn place_program(from: &Path, to: &Path) -> Result<bool, LabError> {
    let runnable = fs::metadata(from).is_ok_and(|meta| meta.permissions().mode() & 0o005 == 0o005);
    if runnable && fs::hard_link(from, to).is_ok() {
        return Ok(false);
    }
    fs::copy(from, to).map(|_| true).map_err(|error| {
        LabError(format!(
            "cannot place {} at {}: {error}",
            from.display(),
            to.display()
        ))
    })
}

/// The URL a `midfleet-instancesim` started with its stdout piped says it
/// listens on (its first line: `listening on URL`). When it says anything
/// else it is killed and reaped, and the error holds what it said.
pub fn instancesim_url(child: &mut Child) -> Result<String, LabError> {
    use std::io::BufRead;
    let mut line = String::new();
    let read = match child.stdout.take() {
        Some(stdout) => std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|error| error.to_string()),
        None => Err("its stdout is not piped".into()),
    };
    if let (Ok(_), Some(url)) = (&read, line.trim().strip_prefix("listening on ")) {
        return Ok(url.to_string());
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(LabError(format!(
        "the lab's instance did not start: {}",
        read.err().unwrap_or_else(|| line.trim().to_string())
    )))
}

/// One of this crate's binaries (`midfleet-midsim`, `midfleet-instancesim`,
/// `midfleet-demo`) as a test or benchmark of the workspace finds it: in
/// the target folder its own executable was built into (`target/debug`
/// for `target/debug/deps/integration-…`, `target/release` for a bench).
///
/// Binaries of another package are not `CARGO_BIN_EXE_` variables of the
/// tests, so `cargo test --workspace` (scripts/test) builds them: it builds
/// every member's binaries before any test runs.
///
/// # Panics
///
/// When the binary is missing, saying how to build it.
pub fn binary(name: &str) -> PathBuf {
    let executable = std::env::current_exe()
        .unwrap_or_else(|error| panic!("cannot find the running executable: {error}"));
    let mut folder = executable
        .parent()
        .unwrap_or_else(|| panic!("{} has no folder", executable.display()));
    if folder
        .file_name()
        .is_some_and(|name| name == "deps" || name == "examples")
    {
        folder = folder.parent().unwrap_or(folder);
    }
    let path = folder.join(name);
    if !path.is_file() {
        let how = if folder.file_name().is_some_and(|name| name == "release") {
            "`cargo build --release --workspace` before `cargo bench`"
        } else {
            "`cargo build --workspace`, or `cargo test --workspace` as scripts/test does"
        };
        panic!(
            "{} is missing: it is a binary of the midfleet-lab crate, which tests and benchmarks \
             find beside their own executable; build the whole workspace ({how})",
            path.display()
        );
    }
    path
}

/// Why the lab could not be built.
#[derive(Debug, Clone)]
pub struct LabError(pub String);

impl fmt::Display for LabError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for LabError {}

/// The wrapper settings every lab MID starts with, in its agent folder:
/// ServiceNow's shipped heap lines (`wrapper.java.maxmemory=1024`) and
/// commented-out `wrapper.java.additional.N` examples.
pub const WRAPPER_OVERRIDE: &str = "conf/wrapper-override.conf";

/// The instance user every lab MID starts with, and its password.
pub const INITIAL_USER: &str = "svc_mid_old";
pub const INITIAL_PASSWORD: &str = "old-lab-password";
/// A non-root login with passwordless sudo, and one whose sudo wants a
/// password (created by [`LabSpec::users`]).
pub const SUDO_USER: &str = "midfleet-lab";
pub const PASSWORD_SUDO_USER: &str = "midfleet-lab-pw";
/// The service user of a MID installed as a real one is
/// ([`LabSpec::mid_user`]): it owns mid_home and runs the MID.
pub const MID_USER: &str = "midfleet-mid";

const SSHD: &str = "/usr/sbin/sshd";
const IN_HOST_ROOT: &str = "/opt/servicenow";

/// What to build.
#[derive(Debug, Clone)]
pub struct LabSpec {
    /// Hosts on loopback addresses, reachable directly.
    pub hosts: usize,
    /// Hosts behind one bastion (in network namespaces).
    pub behind_one_hop: usize,
    /// Hosts behind two bastions.
    pub behind_two_hops: usize,
    /// Addresses that drop every packet (inventory group `silent`).
    pub silent: usize,
    /// Addresses where nothing listens (inventory group `closed`).
    pub closed: usize,
    /// The MIDs' start time.
    pub start_delay: Duration,
    /// Create [`SUDO_USER`] and [`PASSWORD_SUDO_USER`] (and sudoers rules).
    pub users: bool,
    /// The `midfleet-midsim` binary.
    pub midsim: PathBuf,
    /// Use per-host paths even where mount namespaces are possible (the
    /// fallback every other machine gets, tested here).
    pub without_mount_namespaces: bool,
    /// Give the first host a filesystem of its own of this many KiB (a
    /// tmpfs; root only), so a test can fill it.
    pub small_disk_kib: Option<u64>,
    /// Install each host's MID as a real install is (root only): the
    /// system user [`MID_USER`] owns mid_home and everything in it
    /// (folders 0755, or 0750 for `logs`, `security`, `work`; config.xml
    /// 0640; conf/wrapper-override.conf 0644), and the lab starts and stops the MID as that user.
    pub mid_user: bool,
    /// Build the lab in this folder (which must not exist) instead of a
    /// temporary one, and leave it in place when the `Lab` is dropped.
    pub directory: Option<PathBuf>,
    /// A lab that outlives its process (`midfleet lab up`, [`kept`]): each
    /// sshd in a session of its own with no parent-death signal, MIDs with
    /// no `owner_pid`, and dropping the `Lab` stops nothing — its record
    /// ([`kept::Record`]) and `midfleet lab down` do.
    pub detached: bool,
    /// The MIDs log in against this emulated instance (`midfleet-instancesim`)
    /// instead of the credential store: the `instance_url` knob.
    pub instance_url: Option<String>,
    /// The CA file of an `https://` instance (the `instance_ca` knob).
    pub instance_ca: Option<PathBuf>,
    /// The instance's `admin` password: the lab registers what the kinds
    /// need there (certificates, registration keys, overrides).
    pub instance_admin_password: Option<String>,
    /// The lab's PKI: signs the mutual-TLS hosts' client certificates.
    pub pki: Option<std::sync::Arc<LabPki>>,
    /// The kind of each plain host, in order ([`LabSpec::with_kinds`]);
    /// hosts past the end are [`HostKind::Plain`].
    pub kinds: Vec<HostKind>,
    /// Put each plain host behind the lab's link ([`link`]): a relay
    /// with this latency, jitter and loss listens at the host's address
    /// and port, and its sshd one port up. `None`: sshd listens there
    /// itself. Changed per host, live, with [`Lab::set_link`].
    pub link: Option<link::LinkSettings>,
    /// Seeds the link's jitter and loss draws.
    pub link_seed: u64,
}

impl LabSpec {
    /// Hosts of these kinds first, in the order given (e.g.
    /// `[(HostKind::CyberArk, 2), (HostKind::MutualTls, 1)]`), then the
    /// plain ones; `hosts` grows to hold them all.
    pub fn with_kinds(mut self, kinds: &[(HostKind, usize)]) -> LabSpec {
        for (kind, count) in kinds {
            self.kinds.extend(std::iter::repeat_n(*kind, *count));
        }
        self.hosts = self.hosts.max(self.kinds.len());
        self
    }

    pub fn new(hosts: usize, midsim: &Path) -> LabSpec {
        LabSpec {
            hosts,
            behind_one_hop: 0,
            behind_two_hops: 0,
            silent: 0,
            closed: 0,
            start_delay: Duration::from_millis(100),
            users: false,
            midsim: midsim.to_path_buf(),
            without_mount_namespaces: false,
            small_disk_kib: None,
            mid_user: false,
            directory: None,
            detached: false,
            instance_url: None,
            instance_ca: None,
            instance_admin_password: None,
            pki: None,
            kinds: Vec::new(),
            link: None,
            link_seed: 1,
        }
    }
}

/// One lab host.
#[derive(Debug, Clone)]
pub struct LabHost {
    pub name: String,
    pub address: String,
    pub port: u16,
    /// `mid_home` as seen on the host.
    pub mid_home: String,
    /// The same folder as seen from this machine.
    pub local_mid_home: PathBuf,
    /// The inventory group: `lab`, `hidden1`, `hidden2`.
    pub group: &'static str,
    /// The jump chain, as an inventory `jump:` value.
    pub jump: Option<String>,
    /// The sshd host key's public line (`ssh-ed25519 AAAA…`).
    pub host_key: String,
    /// The network namespace it lives in, when not this machine's.
    pub namespace: Option<String>,
    sshd: Option<u32>,
    /// The uid and gid owning mid_home and running the MID
    /// ([`LabSpec::mid_user`]); `None`: the lab's own user.
    mid_owner: Option<(u32, u32)>,
    /// What kind of MID it runs.
    pub kind: HostKind,
    /// Behind the lab's link: sshd listens on this port (the relay on
    /// [`LabHost::port`]).
    pub sshd_port: Option<u16>,
}

impl LabHost {
    /// `agent/` as seen from this machine.
    pub fn agent(&self) -> PathBuf {
        self.local_mid_home.join("agent")
    }

    pub fn config_path(&self) -> PathBuf {
        self.agent().join("config.xml")
    }

    pub fn config(&self) -> Vec<u8> {
        fs::read(self.config_path()).unwrap_or_default()
    }

    /// The agent log as it is now.
    pub fn agent_log(&self) -> String {
        fs::read_to_string(self.agent().join("logs/agent0.log.0")).unwrap_or_default()
    }

    /// The wrapper log as it is now.
    pub fn wrapper_log(&self) -> String {
        fs::read_to_string(self.agent().join("logs/wrapper.log")).unwrap_or_default()
    }

    /// `agent/conf/wrapper-override.conf` as seen from this machine.
    pub fn wrapper_override_path(&self) -> PathBuf {
        self.agent().join(WRAPPER_OVERRIDE)
    }

    /// `agent/conf/wrapper-override.conf` as it is now.
    pub fn wrapper_override(&self) -> Vec<u8> {
        fs::read(self.wrapper_override_path()).unwrap_or_default()
    }

    /// The most heap (MB) the host can give the MID's JVM, from its next
    /// JVM launch: a larger `wrapper.java.maxmemory` fails to start, as a
    /// real JVM that cannot reserve its heap does (`None`: no limit). The
    /// `heap_limit_mb` knob.
    pub fn set_heap_limit_mb(&self, limit: Option<u64>) -> Result<(), LabError> {
        match limit {
            Some(megabytes) => self.set_knob("heap_limit_mb", &megabytes.to_string()),
            None => self.remove_knob("heap_limit_mb"),
        }
    }

    /// Removes a `.midsim` knob (its default again).
    pub fn remove_knob(&self, key: &str) -> Result<(), LabError> {
        let path = self.local_mid_home.join(".midsim");
        let text = fs::read_to_string(&path).unwrap_or_default();
        let kept: String = text
            .lines()
            .filter(|line| line.split('=').next() != Some(key))
            .map(|line| format!("{line}\n"))
            .collect();
        write(&path, &kept)
    }

    /// Sets a `.midsim` knob (`die_at_start`, `stop_hangs`, …).
    pub fn set_knob(&self, key: &str, value: &str) -> Result<(), LabError> {
        let path = self.local_mid_home.join(".midsim");
        let text = fs::read_to_string(&path).unwrap_or_default();
        let mut lines: Vec<String> = text
            .lines()
            .filter(|line| line.split('=').next() != Some(key))
            .map(str::to_string)
            .collect();
        lines.push(format!("{key}={value}"));
        write(&path, &format!("{}\n", lines.join("\n")))
    }

    /// Whether the progress of any midfleet run on the host holds `needle`
    /// (`" start"`: a transaction has reached its start step).
    pub fn run_progress_contains(&self, needle: &str) -> bool {
        self.runs_whose_progress_contains(needle) > 0
    }

    /// How many midfleet runs on the host have `needle` in their progress
    /// (a test that runs several times waits for this to grow).
    pub fn runs_whose_progress_contains(&self, needle: &str) -> usize {
        fs::read_dir(self.local_mid_home.join(".midfleet/runs"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|run| {
                fs::read_to_string(run.path().join("progress"))
                    .is_ok_and(|text| text.contains(needle))
            })
            .count()
    }

    /// Makes every later transaction on the host pause `seconds` at
    /// `point` (`backup`, `write`, `rename`, `start`: see `failpoint` in
    /// the transaction script); `None` removes it.
    pub fn set_failpoint(&self, point: &str, seconds: Option<u32>) -> Result<(), LabError> {
        let folder = self.local_mid_home.join(".midfleet/failpoints");
        let path = folder.join(point);
        match seconds {
            Some(seconds) => {
                fs::create_dir_all(&folder).map_err(|error| LabError(error.to_string()))?;
                set_mode(&self.local_mid_home.join(".midfleet"), 0o700)?;
                write(&path, &format!("{seconds}\n"))
            }
            None => match fs::remove_file(&path) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    Err(LabError(format!("{}: {error}", path.display())))
                }
                _ => Ok(()),
            },
        }
    }

    /// Fills the filesystem holding mid_home until `leave_kib` KiB are
    /// free (for the lab's small disk); returns the filler file, whose
    /// removal frees the space again.
    pub fn fill_disk(&self, leave_kib: u64) -> Result<PathBuf, LabError> {
        let root = self.local_mid_home.parent().unwrap_or(&self.local_mid_home);
        // Only the lab's own small disk: never this machine's real one.
        if !is_small_disk(root) {
            return Err(LabError(format!(
                "{}: no small disk of its own (LabSpec::small_disk_kib): refusing to fill {}",
                self.name,
                root.display()
            )));
        }
        let filler = root.join("filler");
        let free = free_bytes(root)?;
        let size = free.saturating_sub(leave_kib * 1024);
        let existing = fs::metadata(&filler).map(|found| found.len()).unwrap_or(0);
        write_bytes(&filler, existing + size)?;
        Ok(filler)
    }

    /// Runs `program arguments` in the host's own mount namespace (what
    /// its sshd, and so midfleet, sees of /opt/servicenow). Root labs
    /// with mount namespaces only.
    pub fn in_mount_namespace(&self, program: &str, arguments: &[&str]) -> Result<(), LabError> {
        let pid = self
            .sshd
            .ok_or_else(|| LabError(format!("{}: no sshd", self.name)))?
            .to_string();
        let mut all = vec!["-t", pid.as_str(), "-m", "--", program];
        all.extend_from_slice(arguments);
        network::run("nsenter", &all)
    }

    /// The pid of the host's listening sshd.
    pub fn sshd_pid(&self) -> Option<u32> {
        self.sshd
    }

    /// Drops every SSH connection to the host (kills the sshd processes
    /// serving them; the listener stays), as a network cut would.
    pub fn cut_connections(&self) -> usize {
        let Some(listener) = self.sshd else {
            return 0;
        };
        let parent = |pid: u32| -> Option<u32> {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The fields after the command name (which may hold spaces).
            let rest = &stat[stat.rfind(')')? + 2..];
            rest.split_whitespace().nth(1)?.parse().ok()
        };
        let mut killed = 0;
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u32>().ok())
            else {
                continue;
            };
            // Only sshd's own session processes: a cut network kills no
            // process on the host (the transaction must live on).
            let command = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if !command.starts_with(b"sshd") {
                continue;
            }
            // A session process is a child or grandchild of the listener.
            let mut ancestor = parent(pid);
            let mut depth = 0;
            while let Some(current) = ancestor {
                if current == listener {
                    // SAFETY: kill(2) on a process of the lab's own sshd.
                    unsafe {
                        libc::kill(pid as i32, libc::SIGKILL);
                    }
                    killed += 1;
                    break;
                }
                depth += 1;
                if depth > 2 || current <= 1 {
                    break;
                }
                ancestor = parent(current);
            }
        }
        killed
    }

    /// Runs `mid.sh COMMAND` on the host, as its service would: as the
    /// MID's own user when it has one ([`LabSpec::mid_user`]).
    pub fn mid(&self, command: &str) -> Result<bool, LabError> {
        let mut mid_sh = Command::new(self.agent().join("bin/mid.sh"));
        mid_sh
            .arg(command)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = self.mid_owner {
            // std drops the supplementary groups too (setgroups) when it
            // changes the uid of a root process.
            mid_sh.uid(uid).gid(gid);
        }
        // The MID starts with no signal blocked, whatever this process
        // blocks (the demo takes Ctrl-C in a thread of its own): a MID
        // with SIGTERM blocked would not stop.
        // SAFETY: sigemptyset and pthread_sigmask on a local set, between
        // fork and exec; async-signal-safe.
        unsafe {
            mid_sh.pre_exec(|| {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
                Ok(())
            });
        }
        let status = mid_sh
            .status()
            .map_err(|error| LabError(format!("{}: mid.sh {command}: {error}", self.name)))?;
        Ok(status.success())
    }

    /// The uid and gid of the MID's own user ([`LabSpec::mid_user`]).
    pub fn mid_owner(&self) -> Option<(u32, u32)> {
        self.mid_owner
    }

    /// The running MID, read as root from `agent/work/mid.pid` whoever
    /// wrote it: its pid and the uid it runs as; `None` when no live
    /// process holds the pid file's number.
    pub fn mid_process(&self) -> Option<(u32, u32)> {
        let pid: u32 = fs::read_to_string(self.agent().join("work/mid.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .map(str::trim)
        };
        if field("State:")?.starts_with('Z') {
            return None;
        }
        let uid = field("Uid:")?.split_whitespace().next()?.parse().ok()?;
        Some((pid, uid))
    }

    /// Waits until the agent log holds `line` (or `timeout` passes).
    pub fn wait_for_log(&self, line: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.agent_log().contains(line) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

/// A running lab.
pub struct Lab {
    pub directory: PathBuf,
    pub hosts: Vec<LabHost>,
    /// Inventory groups `silent` and `closed`: (name, address, port).
    pub unreachable: Vec<(String, String, u16, &'static str)>,
    pub inventory: PathBuf,
    pub known_hosts: PathBuf,
    pub ssh_config: PathBuf,
    pub client_key: PathBuf,
    pub instance: PathBuf,
    /// Whether hosts have their own mount namespace (`/opt/servicenow`).
    pub mount_namespaces: bool,
    /// The `midfleet-midsim` every mid.sh runs: the spec's, or a copy in
    /// the lab directory when the MID's own user could not run that one.
    midsim: PathBuf,
    /// [`LabHost::mid_owner`] of every host.
    mid_owner: Option<(u32, u32)>,
    bastions: Vec<LabHost>,
    processes: Vec<Child>,
    namespaces: Vec<network::Namespace>,
    route: Option<network::UnreachableRoute>,
    _temporary: Option<tempfile::TempDir>,
    /// [`LabSpec::detached`]: dropping stops nothing.
    detached: bool,
    /// Per host: what its kind needs from the instance and the PKI.
    kind_inputs: std::collections::HashMap<String, KindInput>,
    /// The link relay ([`LabSpec::link`]).
    relay: Option<Child>,
}

/// What a host's kind took from the instance and the PKI.
#[derive(Default)]
struct KindInput {
    /// An IPKI host's (user sys_id, registration key).
    ipki: Option<(String, String)>,
    /// A mutual-TLS host's PEM chain and key.
    client: Option<String>,
}

/// Unique per lab in this process, to keep addresses and names apart.
static LAB_COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Lab {
    /// Builds and starts a lab; every MID has started (and encrypted its
    /// password) when this returns.
    pub fn start(spec: &LabSpec) -> Result<Lab, LabError> {
        if !Path::new(SSHD).exists() {
            return Err(LabError(format!(
                "{SSHD} is missing: the lab runs real OpenSSH servers (install the openssh-server package)"
            )));
        }
        if !spec.midsim.exists() {
            return Err(LabError(format!(
                "{} is missing: build it with `cargo build`",
                spec.midsim.display()
            )));
        }
        network::reap_stale();
        let (mount_namespaces, network_namespaces) = network::capabilities();
        let mount_namespaces = mount_namespaces && !spec.without_mount_namespaces;
        let needs_network = spec.behind_one_hop + spec.behind_two_hops + spec.silent > 0;
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if spec.detached && (needs_network || spec.small_disk_kib.is_some()) {
            return Err(LabError(
                "a detached lab holds plain hosts only (no bastions, silent hosts or small disk)"
                    .into(),
            ));
        }
        if !root && (spec.users || spec.mid_user || needs_network) {
            return Err(LabError(
                "bastion, silent and become hosts and MID users need root (namespaces, users); plain hosts work as any user".into(),
            ));
        }
        if needs_network && !network_namespaces {
            return Err(LabError(
                "hosts behind bastions and silent hosts need network namespaces, which this process cannot make (run as root)"
                    .into(),
            ));
        }
        let _ = fs::create_dir_all("/run/sshd");
        if mount_namespaces {
            fs::create_dir_all(IN_HOST_ROOT).map_err(|error| {
                LabError(format!(
                    "cannot create the mount point {IN_HOST_ROOT}: {error}"
                ))
            })?;
        }
        let (temporary, directory) = match &spec.directory {
            Some(directory) => {
                fs::create_dir_all(directory).map_err(|error| {
                    LabError(format!("cannot create {}: {error}", directory.display()))
                })?;
                (None, directory.clone())
            }
            None => {
                let temporary = tempfile::Builder::new()
                    .prefix("midfleet-lab-")
                    .tempdir()
                    .map_err(|error| {
                        LabError(format!("cannot create the lab directory: {error}"))
                    })?;
                let directory = temporary.path().to_path_buf();
                (Some(temporary), directory)
            }
        };
        // Readable by the unprivileged login users (authorized keys).
        set_mode(&directory, 0o755)?;
        let counter = LAB_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}-{counter}", std::process::id());
        let slot = 16
            + (std::process::id()
                .wrapping_mul(31)
                .wrapping_add(counter * 7)
                % 200) as u8;
        let port = free_port(
            slot,
            spec.hosts,
            20_000 + ((std::process::id() % 1000) * 17 + counter * 101) as u16 % 20_000,
        );

        let client_key = directory.join("client_key");
        keygen(&client_key)?;
        let client_public = fs::read_to_string(client_key.with_extension("pub"))
            .map_err(|error| LabError(format!("cannot read the client key: {error}")))?;
        let keys = directory.join("authorized_keys");
        fs::create_dir_all(&keys).map_err(|error| LabError(error.to_string()))?;
        set_mode(&keys, 0o755)?;
        let login = login_user();
        for user in [login.as_str(), SUDO_USER, PASSWORD_SUDO_USER] {
            write(&keys.join(user), &client_public)?;
            set_mode(&keys.join(user), 0o644)?;
        }
        if spec.users {
            create_users()?;
        }
        let mid_owner = if spec.mid_user {
            Some(create_mid_user()?)
        } else {
            None
        };
        let midsim = if mid_owner.is_some() && !runnable_by_anyone(&spec.midsim) {
            let copy = directory.join("midfleet-midsim");
            if place_program(&spec.midsim, &copy)? {
                set_mode(&copy, 0o755)?;
            }
            copy
        } else {
            spec.midsim.clone()
        };
        let instance = directory.join("instance-credentials");
        write(
            &instance,
            &format!("{}\n", credential_line(INITIAL_USER, INITIAL_PASSWORD)),
        )?;
        set_mode(&instance, 0o644)?;

        let mut lab = Lab {
            directory: directory.clone(),
            hosts: Vec::new(),
            unreachable: Vec::new(),
            inventory: directory.join("inventory.yml"),
            known_hosts: directory.join("known_hosts"),
            ssh_config: directory.join("ssh_config"),
            client_key,
            instance,
            mount_namespaces,
            midsim,
            mid_owner,
            bastions: Vec::new(),
            processes: Vec::new(),
            namespaces: Vec::new(),
            route: None,
            _temporary: temporary,
            detached: spec.detached,
            kind_inputs: std::collections::HashMap::new(),
            relay: None,
        };
        if needs_network {
            lab.route = Some(network::UnreachableRoute::add(&format!(
                "10.{slot}.0.0/16"
            ))?);
        }

        // Plain hosts on loopback.
        let plain: Vec<LabHost> = (0..spec.hosts)
            .map(|index| {
                let name = format!("lab-{:03}", index + 1);
                let address = format!("127.{slot}.{}.{}", index / 250, index % 250 + 1);
                let mut host = lab.describe_host(&name, address, port, "lab", None);
                host.kind = spec.kinds.get(index).copied().unwrap_or_default();
                if spec.link.is_some() {
                    host.sshd_port = Some(port + 1);
                }
                host
            })
            .collect();
        lab.prepare_kinds(&plain, spec)?;
        // Bastions and hidden hosts in network namespaces.
        let mut hidden = Vec::new();
        if spec.behind_one_hop + spec.behind_two_hops > 0 {
            let b1 = lab.namespace_host(&id, slot, 0, None, "bastion-1", "bastions", None)?;
            let mut chain = format!("root@{}", b1.address);
            for index in 0..spec.behind_one_hop {
                let name = format!("hidden1-{:02}", index + 1);
                let host = lab.namespace_host(
                    &id,
                    slot,
                    10 + index,
                    Some(0),
                    &name,
                    "hidden1",
                    Some(chain.clone()),
                )?;
                hidden.push(host);
            }
            if spec.behind_two_hops > 0 {
                let b2 = lab.namespace_host(
                    &id,
                    slot,
                    1,
                    Some(0),
                    "bastion-2",
                    "bastions",
                    Some(chain.clone()),
                )?;
                chain = format!("{chain},root@{}", b2.address);
                for index in 0..spec.behind_two_hops {
                    let name = format!("hidden2-{:02}", index + 1);
                    let host = lab.namespace_host(
                        &id,
                        slot,
                        40 + index,
                        Some(1),
                        &name,
                        "hidden2",
                        Some(chain.clone()),
                    )?;
                    hidden.push(host);
                }
                lab.bastions.push(b2);
            }
            lab.bastions.insert(0, b1);
        }
        for index in 0..spec.silent {
            let link = 80 + index;
            let (parent, child) = link_addresses(slot, link);
            let name = format!("mfl{id}-s{index}");
            let interface = format!("mf{}s{index}", short_id(&id));
            lab.namespaces
                .push(network::create(&name, None, &interface, &parent, &child)?);
            network::black_hole(&interface, &child)?;
            lab.unreachable
                .push((format!("silent-{:02}", index + 1), child, 22, "silent"));
        }
        for index in 0..spec.closed {
            let address = format!("127.{slot}.255.{}", 250 - index);
            lab.unreachable
                .push((format!("closed-{:02}", index + 1), address, port, "closed"));
        }

        let mut all: Vec<LabHost> = plain;
        all.extend(hidden);
        let bastions = std::mem::take(&mut lab.bastions);
        // Host keys and files, in parallel (ssh-keygen is the slow part).
        let prepared: Vec<Result<LabHost, LabError>> = all
            .into_par_iter()
            .chain(bastions.into_par_iter())
            .map(|host| lab.prepare_host(host, spec))
            .collect();
        let mut prepared: Vec<LabHost> = prepared.into_iter().collect::<Result<_, _>>()?;
        for host in &mut prepared {
            let child = lab.spawn_sshd(host)?;
            host.sshd = Some(child.id());
            lab.processes.push(child);
        }
        lab.wait_for_sshd(&prepared)?;
        let (bastions, hosts): (Vec<LabHost>, Vec<LabHost>) = prepared
            .into_iter()
            .partition(|host| host.group == "bastions");
        lab.hosts = hosts;
        lab.bastions = bastions;
        if let Some(settings) = spec.link {
            lab.start_relay(settings, spec.link_seed)?;
        }
        lab.start_mids(spec.start_delay)?;
        lab.finish_kinds(spec)?;
        lab.write_client_files()?;
        Ok(lab)
    }

    /// Before the hosts are written: the CyberArk vault, and from the
    /// instance and the PKI what mutual-TLS and IPKI hosts need.
    fn prepare_kinds(&mut self, hosts: &[LabHost], spec: &LabSpec) -> Result<(), LabError> {
        let cyberark: Vec<&str> = hosts
            .iter()
            .filter(|host| host.kind == HostKind::CyberArk)
            .map(|host| host.name.as_str())
            .collect();
        kinds::add_vault_accounts(&self.directory, &cyberark)?;
        let Some(admin) = self.kinds_admin(hosts, spec)? else {
            return Ok(());
        };
        let user = admin.user_sys_id(INITIAL_USER)?;
        for host in hosts {
            let mut input = KindInput::default();
            match host.kind {
                HostKind::Ipki => {
                    input.ipki = Some((user.clone(), admin.registration_key(&user)?));
                }
                HostKind::MutualTls => {
                    let pki = spec.pki.as_ref().ok_or_else(|| {
                        LabError(format!(
                            "{}: a mutual-TLS host needs the lab's PKI (LabSpec::pki) and an HTTPS instance",
                            host.name
                        ))
                    })?;
                    let (chain, leaf) = pki.client_certificate(&host.name)?;
                    admin.add_user_certificate(&user, &host.name, &leaf)?;
                    input.client = Some(chain);
                }
                _ => continue,
            }
            self.kind_inputs.insert(host.name.clone(), input);
        }
        Ok(())
    }

    /// The instance's admin, when a host's kind needs it (an error when
    /// there is none).
    fn kinds_admin(
        &self,
        hosts: &[LabHost],
        spec: &LabSpec,
    ) -> Result<Option<kinds::Admin>, LabError> {
        let Some(needs) = hosts.iter().find(|host| host.kind.needs_instance()) else {
            return Ok(None);
        };
        let (Some(url), Some(password)) = (&spec.instance_url, &spec.instance_admin_password)
        else {
            return Err(LabError(format!(
                "{}: a {} host needs an instance and its admin password (LabSpec::instance_url, instance_admin_password)",
                needs.name, needs.kind
            )));
        };
        kinds::Admin::new(url, spec.instance_ca.as_deref(), password).map(Some)
    }

    /// After the MIDs started: the `ecc_agent_config` overrides (the
    /// record exists once the MID reported Up).
    fn finish_kinds(&self, spec: &LabSpec) -> Result<(), LabError> {
        let overridden: Vec<&LabHost> = self
            .hosts
            .iter()
            .filter(|host| host.kind == HostKind::ConfigOverride)
            .collect();
        if overridden.is_empty() {
            return Ok(());
        }
        let (Some(url), Some(password)) = (&spec.instance_url, &spec.instance_admin_password)
        else {
            return Err(LabError(
                "an override host needs an instance and its admin password".into(),
            ));
        };
        let admin = InstanceAdmin::new(url, spec.instance_ca.as_deref(), password)?;
        for host in overridden {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                match admin.add_mid_config(
                    &host.name,
                    "mid.instance.username",
                    kinds::OVERRIDE_USER,
                ) {
                    Ok(_) => break,
                    Err(error) if Instant::now() > deadline => return Err(error),
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        }
        Ok(())
    }

    fn describe_host(
        &self,
        name: &str,
        address: String,
        port: u16,
        group: &'static str,
        jump: Option<String>,
    ) -> LabHost {
        let local_root = self.directory.join("hosts").join(name).join("servicenow");
        let mid_home = if self.mount_namespaces {
            format!("{IN_HOST_ROOT}/mid")
        } else {
            local_root.join("mid").display().to_string()
        };
        LabHost {
            name: name.to_string(),
            address,
            port,
            mid_home,
            local_mid_home: local_root.join("mid"),
            group,
            jump,
            host_key: String::new(),
            namespace: None,
            sshd: None,
            mid_owner: self.mid_owner,
            kind: HostKind::Plain,
            sshd_port: None,
        }
    }

    /// A host in its own network namespace, linked to `parent_link`'s
    /// namespace (or this machine's), listening on port 22.
    #[allow(clippy::too_many_arguments)]
    fn namespace_host(
        &mut self,
        id: &str,
        slot: u8,
        link: usize,
        parent_link: Option<usize>,
        name: &str,
        group: &'static str,
        jump: Option<String>,
    ) -> Result<LabHost, LabError> {
        let (parent, child) = link_addresses(slot, link);
        let namespace = format!("mfl{id}-{link}");
        let parent_namespace = parent_link.map(|parent| format!("mfl{id}-{parent}"));
        let interface = format!("mf{}l{link}", short_id(id));
        self.namespaces.push(network::create(
            &namespace,
            parent_namespace.as_deref(),
            &interface,
            &parent,
            &child,
        )?);
        let mut host = self.describe_host(name, child, 22, group, jump);
        host.namespace = Some(namespace);
        Ok(host)
    }

    /// Host key, sshd_config, agent folder, knobs.
    fn prepare_host(&self, mut host: LabHost, spec: &LabSpec) -> Result<LabHost, LabError> {
        let host_directory = self.directory.join("hosts").join(&host.name);
        fs::create_dir_all(&host_directory).map_err(|error| LabError(error.to_string()))?;
        let key = host_directory.join("ssh_host_ed25519_key");
        keygen(&key)?;
        // The host's own /opt/servicenow, also for bastions (the bind mount
        // needs it).
        fs::create_dir_all(&host.local_mid_home).map_err(|error| LabError(error.to_string()))?;
        if let (Some(kib), true) = (spec.small_disk_kib, host.name == "lab-001") {
            let root = host.local_mid_home.parent().unwrap_or(&host.local_mid_home);
            network::run(
                "mount",
                &[
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={kib}k,mode=0755"),
                    "midfleet-lab",
                    &root.display().to_string(),
                ],
            )?;
            fs::create_dir_all(&host.local_mid_home)
                .map_err(|error| LabError(error.to_string()))?;
        }
        host.host_key = fs::read_to_string(key.with_extension("pub"))
            .map_err(|error| LabError(error.to_string()))?
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        // The login user's home on this host: a stock one, not the
        // machine's own (below, `host_home`). The name is quoted, so
        // sshd reads it as one name; one it cannot quote is refused.
        let home = host_home(&host_directory)?;
        let login = login_user();
        if login.is_empty()
            || login
                .chars()
                .any(|character| character == '"' || character.is_control())
        {
            return Err(LabError(format!(
                "the login user {login:?} cannot be named in sshd_config"
            )));
        }
        let home_block = format!(
            "Match User \"{login}\"\n    SetEnv HOME={}\n",
            home.display()
        );
        let config = format!(
            "Port {port}\nListenAddress {address}\nHostKey {key}\nPidFile {pid}\n\
             AuthorizedKeysFile {keys}/%u\nStrictModes no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin prohibit-password\n\
             AllowTcpForwarding yes\nMaxStartups 2000:30:4000\nMaxSessions 200\nUseDNS no\n\
             LogLevel VERBOSE\nSubsystem sftp internal-sftp\nPrintMotd no\n{home_block}",
            port = host.sshd_port.unwrap_or(host.port),
            address = host.address,
            key = key.display(),
            pid = host_directory.join("sshd.pid").display(),
            keys = self.directory.join("authorized_keys").display(),
        );
        write(&host_directory.join("sshd_config"), &config)?;
        if host.group != "bastions" {
            self.write_agent(&host, spec)?;
        }
        Ok(host)
    }

    fn write_agent(&self, host: &LabHost, spec: &LabSpec) -> Result<(), LabError> {
        let agent = host.agent();
        for folder in ["bin", "conf", "logs", "security", "work"] {
            fs::create_dir_all(agent.join(folder)).map_err(|error| LabError(error.to_string()))?;
        }
        let config = include_str!("config.xml")
            .replace("{NAME}", &host.name)
            .replace("{USER}", INITIAL_USER)
            .replace("{PASSWORD}", INITIAL_PASSWORD);
        let input = self.kind_inputs.get(&host.name);
        let ipki = input
            .and_then(|input| input.ipki.as_ref())
            .map(|(user, key)| (user.as_str(), key.as_str()));
        let config = kinds::config_xml(&config, &host.name, host.kind, ipki);
        write(&agent.join("config.xml"), &config)?;
        set_mode(&agent.join("config.xml"), 0o600)?;
        write(
            &agent.join(WRAPPER_OVERRIDE),
            &include_str!("wrapper-override.conf").replace("{NAME}", &host.name),
        )?;
        let mid_sh = format!(
            "#!/bin/sh\n# Lab MID Server wrapper: the simulated agent behind the real interface.\n\
             exec {} \"$1\" --agent \"$(cd \"$(dirname \"$0\")/..\" && pwd)\"\n",
            self.midsim.display()
        );
        write(&agent.join("bin/mid.sh"), &mid_sh)?;
        set_mode(&agent.join("bin/mid.sh"), 0o755)?;
        write(&agent.join("bin/mid.shconf"), "APP_NAME=mid\n")?;
        let client = self
            .kind_inputs
            .get(&host.name)
            .and_then(|input| input.client.as_deref());
        let kind_knobs = kinds::write_host_files(host, host.kind, &self.directory, client)?;
        write(
            &host.local_mid_home.join(".midsim"),
            &format!("{}{kind_knobs}", self.knobs(spec)),
        )?;
        match host.mid_owner {
            Some(owner) => install_as_mid_user(&host.local_mid_home, owner),
            None => Ok(()),
        }
    }

    /// The `.midsim` knobs every host starts with.
    fn knobs(&self, spec: &LabSpec) -> String {
        let mut knobs = format!(
            "instance={}\nstart_delay_ms={}\n",
            self.instance.display(),
            spec.start_delay.as_millis()
        );
        if let Some(url) = &spec.instance_url {
            knobs.push_str(&format!("instance_url={url}\n"));
        }
        if let Some(ca) = &spec.instance_ca {
            knobs.push_str(&format!("instance_ca={}\n", ca.display()));
        }
        // A detached MID outlives this process, as a real one would.
        if !spec.detached {
            knobs.push_str(&format!("owner_pid={}\n", std::process::id()));
        }
        knobs
    }

    /// A background process of the lab: in a detached lab, in a session
    /// of its own that outlives this process; otherwise killed by the
    /// kernel when this process dies.
    fn own_background(&self, command: &mut Command) {
        if self.detached {
            // Its own session and process group: no terminal's Ctrl-C or
            // hang-up reaches it, and it outlives this process.
            // SAFETY: setsid in the child between fork and exec; async-signal-safe.
            unsafe {
                command.pre_exec(|| {
                    libc::setsid();
                    Ok(())
                });
            }
        } else {
            // SAFETY: prctl in the child between fork and exec; async-signal-safe.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
    }

    fn spawn_sshd(&self, host: &LabHost) -> Result<Child, LabError> {
        let host_directory = self.directory.join("hosts").join(&host.name);
        let config = host_directory.join("sshd_config");
        let log = host_directory.join("sshd.log");
        let local_root = host.local_mid_home.parent().unwrap_or(&host.local_mid_home);
        let mut command = match &host.namespace {
            Some(namespace) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", namespace]);
                command
            }
            None => Command::new("env"),
        };
        if self.mount_namespaces {
            command.args([
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
            ]);
            command.arg("mount --bind \"$1\" \"$2\" && exec \"$3\" -D -f \"$4\" -E \"$5\"");
            command
                .args(["lab-sshd"])
                .arg(local_root)
                .arg(IN_HOST_ROOT)
                .arg(SSHD)
                .arg(&config)
                .arg(&log);
        } else {
            command
                .arg(SSHD)
                .arg("-D")
                .arg("-f")
                .arg(&config)
                .arg("-E")
                .arg(&log);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.own_background(&mut command);
        command
            .spawn()
            .map_err(|error| LabError(format!("{}: cannot start sshd: {error}", host.name)))
    }

    /// sshd writes its pid file once it listens.
    fn wait_for_sshd(&mut self, hosts: &[LabHost]) -> Result<(), LabError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        for (host, child) in hosts.iter().zip(self.processes.iter_mut()) {
            let pid_file = self
                .directory
                .join("hosts")
                .join(&host.name)
                .join("sshd.pid");
            loop {
                if pid_file.exists() {
                    break;
                }
                if let Ok(Some(status)) = child.try_wait() {
                    let log = fs::read_to_string(
                        self.directory
                            .join("hosts")
                            .join(&host.name)
                            .join("sshd.log"),
                    )
                    .unwrap_or_default();
                    return Err(LabError(format!(
                        "{}: sshd exited ({status}) before listening on {}:{}: {}",
                        host.name,
                        host.address,
                        host.port,
                        log.trim()
                    )));
                }
                if Instant::now() > deadline {
                    return Err(LabError(format!(
                        "{}: sshd did not start within 20 s",
                        host.name
                    )));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Ok(())
    }

    /// Starts every MID and waits until each has logged in (and so
    /// encrypted its password and written its key pair id).
    fn start_mids(&self, start_delay: Duration) -> Result<(), LabError> {
        // Start every MID first, then wait for them all: a wait per host
        // on rayon's few threads would start a slow fleet a few at a time.
        self.hosts.par_iter().try_for_each(|host| {
            if !host.mid("start")? {
                return Err(LabError(format!("{}: mid.sh start failed", host.name)));
            }
            Ok(())
        })?;
        let deadline = Instant::now() + start_delay + Duration::from_secs(30);
        for host in &self.hosts {
            let left = deadline.saturating_duration_since(Instant::now());
            if !host.wait_for_log("MID Server started", left.max(Duration::from_secs(1))) {
                return Err(LabError(format!(
                    "{}: the MID did not start; its log:\n{}",
                    host.name,
                    host.agent_log()
                )));
            }
        }
        Ok(())
    }

    /// Writes `known_hosts` from each host's key as it is now: after
    /// [`Lab::change_host_key`], what an operator does once the new key
    /// is checked.
    pub fn write_known_hosts(&self) -> Result<(), LabError> {
        let mut known_hosts = String::new();
        for host in self.hosts.iter().chain(&self.bastions) {
            known_hosts.push_str(&format!(
                "{} {}\n",
                midfleet::transport::entry_name(&host.address, host.port),
                host.host_key
            ));
        }
        write(&self.known_hosts, &known_hosts)
    }

    fn write_client_files(&self) -> Result<(), LabError> {
        self.write_known_hosts()?;
        // Bastions are reached with the lab key, as an operator's
        // ~/.ssh/config would say.
        let mut ssh_config = String::new();
        for bastion in &self.bastions {
            ssh_config.push_str(&format!(
                "Host {}\n    User root\n    IdentityFile {}\n\n",
                bastion.address,
                self.client_key.display()
            ));
        }
        write(&self.ssh_config, &ssh_config)?;
        write(&self.inventory, &self.inventory_text(&login_user(), false))
    }

    /// The lab as an Ansible-shaped inventory, logging in as `user`.
    pub fn inventory_text(&self, user: &str, become_root: bool) -> String {
        let mut text = format!(
            "# A midfleet lab fleet ({}).\nall:\n  vars:\n    ansible_user: {user}\n    ansible_become: {}\n    \
             ansible_ssh_private_key_file: {}\n    connect_timeout: 3\n  children:\n",
            self.directory.display(),
            if become_root { "yes" } else { "no" },
            self.client_key.display()
        );
        for group in ["lab", "hidden1", "hidden2"] {
            let members: Vec<&LabHost> = self
                .hosts
                .iter()
                .filter(|host| host.group == group)
                .collect();
            if members.is_empty() {
                continue;
            }
            text.push_str(&format!("    {group}:\n"));
            if let Some(jump) = members[0].jump.as_ref() {
                text.push_str(&format!("      vars:\n        jump: \"{jump}\"\n"));
            }
            text.push_str("      hosts:\n");
            for host in members {
                text.push_str(&format!(
                    "        {}: {{ ansible_host: {}, ansible_port: {}, mid_home: \"{}\", mid_name: {} }}\n",
                    host.name,
                    host.address,
                    host.port,
                    host.mid_home,
                    host.name.replace('-', "")
                ));
            }
        }
        for group in ["silent", "closed"] {
            let members: Vec<_> = self
                .unreachable
                .iter()
                .filter(|entry| entry.3 == group)
                .collect();
            if members.is_empty() {
                continue;
            }
            text.push_str(&format!("    {group}:\n      hosts:\n"));
            for (name, address, port, _) in members {
                text.push_str(&format!(
                    "        {name}: {{ ansible_host: {address}, ansible_port: {port} }}\n"
                ));
            }
        }
        text
    }

    /// Lets `user` log in to the lab's instance with `password`.
    pub fn add_instance_user(&self, user: &str, password: &str) -> Result<(), LabError> {
        let mut text = fs::read_to_string(&self.instance).unwrap_or_default();
        text.push_str(&credential_line(user, password));
        text.push('\n');
        write(&self.instance, &text)
    }

    /// Starts the link relay in front of every host that has a
    /// [`LabHost::sshd_port`], each link set to `settings`; returns once
    /// it listens.
    fn start_relay(&mut self, settings: link::LinkSettings, seed: u64) -> Result<(), LabError> {
        use std::io::BufRead;
        let links = link::links_directory(&self.directory);
        fs::create_dir_all(&links)
            .map_err(|error| LabError(format!("cannot create {}: {error}", links.display())))?;
        let mut command = Command::new(binary("midfleet-relay"));
        command
            .arg("--links")
            .arg(&links)
            .args(["--seed", &seed.to_string()]);
        for host in &self.hosts {
            let Some(sshd_port) = host.sshd_port else {
                continue;
            };
            link::write_settings(&links, &host.name, &settings)?;
            command.arg("--route").arg(format!(
                "{}={}:{}={}:{sshd_port}",
                host.name, host.address, host.port, host.address
            ));
        }
        // Its complaints go to a file: an inherited stderr would be held
        // open by a kept lab's relay long after `lab up` returned.
        let log = fs::File::create(links.join("relay.log")).map_err(|error| {
            LabError(format!(
                "cannot create {}: {error}",
                links.join("relay.log").display()
            ))
        })?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        self.own_background(&mut command);
        let mut child = command
            .spawn()
            .map_err(|error| LabError(format!("cannot start midfleet-relay: {error}")))?;
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped");
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        if line.trim() != "ready" {
            let status = child.wait().map(|status| status.to_string());
            return Err(LabError(format!(
                "midfleet-relay did not start ({}): it printed `{}`; {}",
                status.unwrap_or_else(|error| error.to_string()),
                line.trim(),
                fs::read_to_string(links.join("relay.log"))
                    .unwrap_or_default()
                    .trim()
            )));
        }
        self.relay = Some(child);
        Ok(())
    }

    /// The folder of the lab's link settings and control socket.
    pub fn links(&self) -> PathBuf {
        link::links_directory(&self.directory)
    }

    /// `host`'s link now.
    pub fn link(&self, host: &str) -> Result<link::LinkSettings, LabError> {
        link::read_settings(&self.links(), host)
    }

    /// Sets `host`'s link; live connections feel it within 20 ms.
    pub fn set_link(&self, host: &str, settings: link::LinkSettings) -> Result<(), LabError> {
        if self.relay.is_none() && !self.links().join(host).exists() {
            return Err(LabError(format!(
                "{host} has no link: build the lab with LabSpec::link"
            )));
        }
        link::write_settings(&self.links(), host, &settings)
    }

    /// Sets every linked host's link.
    pub fn set_links(&self, settings: link::LinkSettings) -> Result<(), LabError> {
        for host in self.hosts.iter().filter(|host| host.sshd_port.is_some()) {
            self.set_link(&host.name, settings)?;
        }
        Ok(())
    }

    /// Resets every live connection to `host` (a cut of its link).
    pub fn cut_link(&self, host: &str) -> Result<(), LabError> {
        let mut settings = self.link(host)?;
        settings.cuts += 1;
        self.set_link(host, settings)
    }

    /// What crossed each host's link since the last reset.
    pub fn link_stats(
        &self,
    ) -> Result<std::collections::HashMap<String, link::LinkStats>, LabError> {
        link::control(&self.links(), "stats")
    }

    /// Counts from 0 again; returns the counts as they were.
    pub fn reset_link_stats(
        &self,
    ) -> Result<std::collections::HashMap<String, link::LinkStats>, LabError> {
        link::control(&self.links(), "reset")
    }

    pub fn host(&self, name: &str) -> &LabHost {
        self.hosts
            .iter()
            .find(|host| host.name == name)
            .expect("a lab host of that name")
    }

    /// Replaces `host`'s sshd key with a new one (a "reinstalled" host);
    /// `known_hosts` keeps the old one until [`Lab::write_known_hosts`].
    pub fn change_host_key(&mut self, name: &str) -> Result<(), LabError> {
        let index = self
            .hosts
            .iter()
            .position(|host| host.name == name)
            .expect("a lab host of that name");
        let key = self
            .directory
            .join("hosts")
            .join(name)
            .join("ssh_host_ed25519_key");
        let _ = fs::remove_file(&key);
        let _ = fs::remove_file(key.with_extension("pub"));
        keygen(&key)?;
        self.hosts[index].host_key = fs::read_to_string(key.with_extension("pub"))
            .map_err(|error| LabError(error.to_string()))?
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        // Restart that sshd so it loads the new key.
        let pid = self.hosts[index].sshd;
        if let Some(position) = self
            .processes
            .iter()
            .position(|child| Some(child.id()) == pid)
        {
            let mut child = self.processes.remove(position);
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_file(self.directory.join("hosts").join(name).join("sshd.pid"));
        let host = self.hosts[index].clone();
        let child = self.spawn_sshd(&host)?;
        self.hosts[index].sshd = Some(child.id());
        self.processes.push(child);
        let host = self.hosts[index].clone();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self
            .directory
            .join("hosts")
            .join(name)
            .join("sshd.pid")
            .exists()
        {
            if Instant::now() > deadline {
                return Err(LabError(format!("{}: sshd did not restart", host.name)));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.detached {
            // Its record says what to stop (`kept::down`); the sshd
            // children are reaped by init once this process is gone.
            return;
        }
        // The MIDs first (they hold files in the lab), then sshd, then the
        // namespaces; the directory goes with the TempDir.
        for host in &self.hosts {
            if let Ok(pid) = fs::read_to_string(host.agent().join("work/mid.pid")) {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    // SAFETY: kill(2) on a pid read from the lab's own file.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
        }
        for child in self.processes.iter_mut().chain(self.relay.as_mut()) {
            let _ = child.kill();
        }
        for child in self.processes.iter_mut().chain(self.relay.as_mut()) {
            let _ = child.wait();
        }
        self.namespaces.clear();
        self.route.take();
        if let Some(host) = self.hosts.iter().find(|host| host.name == "lab-001") {
            if let Some(root) = host.local_mid_home.parent() {
                // Only a tmpfs the lab mounted (LabSpec::small_disk_kib).
                if is_small_disk(root) {
                    let _ = Command::new("umount").arg("-l").arg(root).output();
                }
            }
        }
    }
}

/// The home of the lab's login user on a host, `hosts/NAME/home`, with a
/// distribution's stock `~/.bashrc`, which returns at once in a shell that
/// is not interactive. sshd points `HOME` there (`SetEnv` for the login
/// user), so bash, which reads `~/.bashrc` when sshd runs it, reads this
/// one and not the machine user's own: that is the jump host's, with
/// whatever its developer added (here a `pyenv init`: about 150 processes
/// and 110 ms of CPU in every session), and no MID host has it. Every
/// session of every tool on every host paid for it, in the floor too.
fn host_home(host_directory: &Path) -> Result<PathBuf, LabError> {
    let home = host_directory.join("home");
    fs::create_dir_all(&home).map_err(|error| LabError(error.to_string()))?;
    write(&home.join(".bashrc"), include_str!("home.bashrc"))?;
    Ok(home)
}

/// Who logs in to lab hosts: root when the lab runs as root, else the user
/// running it (an unprivileged sshd serves logins as its own user only).
pub fn login_user() -> String {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return "root".into();
    }
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".into())
}

/// The port the lab's plain hosts listen on (each on its own loopback
/// address in 127.slot.0.0/16, and the port above it for the sshd behind
/// a link): `first`, or the next of a few candidates on which every host's
/// address is free now. Labs of other processes derive their slot and port
/// from their pid as this one does and may meet this one's; a bind that
/// then failed would leave a host's sshd down. (What another process binds
/// between this look and sshd's start can still collide: rare, and named
/// by the host's sshd.log.)
fn free_port(slot: u8, hosts: usize, first: u16) -> u16 {
    let free = |port: u16| {
        (0..hosts).all(|index| {
            let address = format!("127.{slot}.{}.{}", index / 250, index % 250 + 1);
            [port, port + 1]
                .iter()
                .all(|port| std::net::TcpListener::bind((address.as_str(), *port)).is_ok())
        })
    };
    (0..64u16)
        .map(|attempt| 20_000 + (first - 20_000 + attempt * 211) % 20_000)
        .find(|port| free(*port))
        .unwrap_or(first)
}

/// The parent and child addresses of link `link` (a /30 in 10.slot.x.0).
fn link_addresses(slot: u8, link: usize) -> (String, String) {
    let base = link * 4;
    (
        format!("10.{slot}.{}.{}", base / 256, base % 256 + 1),
        format!("10.{slot}.{}.{}", base / 256, base % 256 + 2),
    )
}

/// A short, interface-name-safe form of a lab id.
fn short_id(id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    digest
        .iter()
        .take(3)
        .map(|byte| format!("{byte:02x}"))
        .collect::<String>()[..5]
        .to_string()
}

/// The credential store line of the lab instance (as midsim reads it).
pub fn credential_line(user: &str, password: &str) -> String {
    let digest = Sha256::digest(format!("{user}:{password}").as_bytes());
    format!(
        "{user}:{}",
        digest
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    )
}

fn keygen(path: &Path) -> Result<(), LabError> {
    let output = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "midfleet-lab", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| LabError(format!("cannot run ssh-keygen: {error}")))?;
    if !output.status.success() {
        return Err(LabError(format!(
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), LabError> {
    fs::write(path, text).map_err(|error| LabError(format!("{}: {error}", path.display())))
}

/// Whether `root` is a small disk the lab mounted (`LabSpec::small_disk_kib`).
fn is_small_disk(root: &Path) -> bool {
    // Lossy: a mount point elsewhere on the machine may not be UTF-8.
    fs::read("/proc/mounts")
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
        .lines()
        .any(|line| line.starts_with("midfleet-lab ") && line.split(' ').nth(1) == root.to_str())
}

/// Free bytes for an unprivileged writer on the filesystem of `path`.
fn free_bytes(path: &Path) -> Result<u64, LabError> {
    let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|error| LabError(error.to_string()))?;
    // SAFETY: statvfs(3) fills the zeroed struct; the name is NUL-terminated.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(name.as_ptr(), &mut stat) } != 0 {
        return Err(LabError(format!(
            "{}: statvfs: {}",
            path.display(),
            std::io::Error::last_os_error()
        )));
    }
    Ok(stat.f_bavail as u64 * stat.f_frsize as u64)
}

/// Makes `path` `size` bytes of zeros, as far as the disk allows.
fn write_bytes(path: &Path, size: u64) -> Result<(), LabError> {
    use std::io::Write;
    let mut file = fs::File::create(path).map_err(|error| LabError(error.to_string()))?;
    let chunk = vec![0u8; 64 * 1024];
    let mut left = size;
    while left > 0 {
        let take = left.min(chunk.len() as u64) as usize;
        if file.write_all(&chunk[..take]).is_err() {
            break;
        }
        left -= take as u64;
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), LabError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|error| LabError(format!("{}: {error}", path.display())))
}

/// What a real MID install looks like on disk: `owner` owns mid_home and
/// everything in it; folders 0755, those holding the MID's logs, keys and
/// state 0750; config.xml 0640; the knobs file (the lab's, in mid_home)
/// 0644.
fn install_as_mid_user(mid_home: &Path, owner: (u32, u32)) -> Result<(), LabError> {
    let agent = mid_home.join("agent");
    for (path, mode) in [
        (mid_home.to_path_buf(), 0o755),
        (agent.clone(), 0o755),
        (agent.join("bin"), 0o755),
        (agent.join("logs"), 0o750),
        (agent.join("security"), 0o750),
        (agent.join("work"), 0o750),
        (agent.join("config.xml"), 0o640),
        (agent.join("conf"), 0o755),
        (agent.join(WRAPPER_OVERRIDE), 0o644),
        (agent.join("bin/mid.sh"), 0o755),
        (agent.join("bin/mid.shconf"), 0o644),
        (mid_home.join(".midsim"), 0o644),
    ] {
        set_mode(&path, mode)?;
    }
    chown_tree(mid_home, owner)
}

/// `chown -R -h`: every entry under `path` (links themselves, never what
/// they point to).
fn chown_tree(path: &Path, (uid, gid): (u32, u32)) -> Result<(), LabError> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .map_err(|error| LabError(format!("chown {}: {error}", path.display())))?;
    let metadata = fs::symlink_metadata(path)
        .map_err(|error| LabError(format!("{}: {error}", path.display())))?;
    if metadata.is_dir() {
        for entry in fs::read_dir(path).map_err(|error| LabError(error.to_string()))? {
            let entry = entry.map_err(|error| LabError(error.to_string()))?;
            chown_tree(&entry.path(), (uid, gid))?;
        }
    }
    Ok(())
}

/// Whether any user can run `program`: it and every folder above it are
/// executable by others.
fn runnable_by_anyone(program: &Path) -> bool {
    let Ok(program) = fs::canonicalize(program) else {
        return false;
    };
    program.ancestors().all(|path| {
        fs::metadata(path).is_ok_and(|metadata| metadata.permissions().mode() & 0o001 != 0)
    })
}

/// The MID service user, as a MID install creates it: a system user and
/// group, no home, no login (idempotent; it stays on the machine,
/// harmless). Its uid and gid.
pub fn create_mid_user() -> Result<(u32, u32), LabError> {
    let exists = Command::new("id")
        .arg(MID_USER)
        .output()
        .is_ok_and(|output| output.status.success());
    if !exists {
        let created = network::run(
            "useradd",
            &[
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                "--user-group",
                MID_USER,
            ],
        );
        // Another lab in another process may have created it meanwhile.
        if let Err(error) = created {
            if !Command::new("id")
                .arg(MID_USER)
                .output()
                .is_ok_and(|output| output.status.success())
            {
                return Err(error);
            }
        }
    }
    let id = |flag: &str| -> Result<u32, LabError> {
        let output = Command::new("id")
            .args([flag, MID_USER])
            .output()
            .map_err(|error| LabError(format!("cannot run id: {error}")))?;
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .map_err(|_| LabError(format!("`id {flag} {MID_USER}` gave no number")))
    };
    Ok((id("-u")?, id("-g")?))
}

/// The lab's login users and their sudo rules (idempotent; they stay on
/// the machine, harmless: they have no password and only the lab's key).
pub fn create_users() -> Result<(), LabError> {
    for user in [SUDO_USER, PASSWORD_SUDO_USER] {
        let exists = Command::new("id")
            .arg(user)
            .output()
            .is_ok_and(|output| output.status.success());
        if !exists {
            network::run(
                "useradd",
                &[
                    "--no-create-home",
                    "--shell",
                    "/bin/sh",
                    "--user-group",
                    user,
                ],
            )?;
        }
        // A locked password would refuse key logins too with UsePAM no.
        let _ = network::run("usermod", &["-p", "*", user]);
    }
    let sudoers =
        format!("{SUDO_USER} ALL=(ALL) NOPASSWD: ALL\n{PASSWORD_SUDO_USER} ALL=(ALL) ALL\n");
    let path = Path::new("/etc/sudoers.d/midfleet-lab");
    write(path, &sudoers)?;
    set_mode(path, 0o440)
}

#[cfg(test)]
mod tests {
    /// The lab's small disk is found among the machine's mounts when
    /// another mount point's name is not UTF-8 (one such mount once made
    /// every full-disk test refuse to fill the lab's disk).
    #[test]
    fn the_small_disk_is_found_beside_a_mount_point_that_is_not_utf8() {
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let scratch = tempfile::tempdir().unwrap();
        let disk = scratch.path().join("disk");
        let odd = scratch
            .path()
            .join(std::ffi::OsStr::from_bytes(b"odd\xffname"));
        std::fs::create_dir(&disk).unwrap();
        std::fs::create_dir(&odd).unwrap();
        let mount = |source: &str, at: &std::path::Path| {
            assert!(std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=64k", source])
                .arg(at)
                .status()
                .is_ok_and(|status| status.success()));
        };
        let _disk = Mounted(disk.clone());
        mount("midfleet-lab", &disk);
        let _odd = Mounted(odd.clone());
        mount("midfleet-test", &odd);
        assert!(super::is_small_disk(&disk));
    }

    /// Unmounts when dropped, also when an assert fails first.
    struct Mounted(std::path::PathBuf);

    impl Drop for Mounted {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }

    /// A port another lab (or anything) holds on one of the hosts'
    /// addresses is passed over for one where every address is free.
    #[test]
    fn a_port_taken_on_a_hosts_address_is_passed_over() {
        let slot = 251;
        // lab-002's address, a port in the labs' range.
        let (_taken, port) = (30_000..40_000)
            .find_map(|port| {
                std::net::TcpListener::bind(("127.251.0.2", port))
                    .ok()
                    .map(|listener| (listener, port))
            })
            .expect("a free port");
        let chosen = super::free_port(slot, 3, port);
        assert_ne!(chosen, port);
        assert_ne!(
            super::free_port(slot, 3, port - 1),
            port - 1,
            "its sshd behind a link would take the port above"
        );
        assert!((20_000..40_000).contains(&chosen), "{chosen}");
        assert_eq!(
            super::free_port(slot, 1, port),
            port,
            "lab-001's address is free"
        );
    }
}
