//! A lab that stays up: what `midfleet lab up|status|down|user|fault` and
//! the demo stand on. Its hosts and instance are daemons (own sessions,
//! stdio to files in the lab folder) that outlive the process that made
//! them, and one record per user (`state.json` in [`Place`]) says where
//! everything is.
//!
//! Owns: the per-user state folder and its record, bringing a kept lab up
//! (recording before anything is made: the folder is named in the record
//! before it exists, and every process the lab starts carries that folder
//! in its command line, so a kill at any moment leaves enough to find it),
//! taking it down (also a stale one: every process killed, every mount
//! namespace emptied, the folder and the record removed), its status, the
//! users of its instance, and the faults of its MIDs.
//!
//! Must not: touch a process, mount or folder that the record does not
//! lead to; put a password in an argv, an environment or a message.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use midfleet::instance::client::{Client, Credentials, Settings};
use midfleet::instance::table;
use midfleet::secret::SecretValue;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{Lab, LabError, LabSpec, INITIAL_PASSWORD, INITIAL_USER};

/// Overrides where the record lives (tests run labs side by side).
pub const STATE_VARIABLE: &str = "MIDFLEET_LAB_STATE";
/// The record's name in [`Place`].
const STATE_FILE: &str = "state.json";
/// The example playbook's name in the lab folder.
pub const PLAYBOOK: &str = "rotate.yml";
/// The password the example playbook reads (`env:LAB_PASSWORD`).
pub const PLAYBOOK_PASSWORD_VARIABLE: &str = "LAB_PASSWORD";
/// How long a `slow-start` MID takes before its first log line.
pub const SLOW_START_MS: u64 = 10_000;

/// Who made a kept lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `midfleet lab up`: stands until `midfleet lab down`.
    Lab,
    /// `midfleet demo`: lives as long as the demo's process.
    Demo,
}

/// How far the lab got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Being made by `owner`; stale once `owner` is gone.
    Starting,
    /// Every host and the instance are up.
    Up,
}

/// A process, told apart from a later one with the same pid by its start
/// time (`/proc/PID/stat` field 22).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: i32,
    pub start: u64,
}

impl ProcessId {
    /// The live process `pid`.
    pub fn of(pid: i32) -> Option<ProcessId> {
        let (start, _, state) = stat(pid)?;
        (state != 'Z').then_some(ProcessId { pid, start })
    }

    pub fn me() -> ProcessId {
        ProcessId::of(std::process::id() as i32).unwrap_or(ProcessId {
            pid: std::process::id() as i32,
            start: 0,
        })
    }

    /// Whether this very process still runs (not a zombie).
    pub fn alive(&self) -> bool {
        ProcessId::of(self.pid).is_some_and(|now| now.start == self.start)
    }
}

/// One host of a kept lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    pub name: String,
    pub address: String,
    pub port: u16,
    /// As seen on the host (and in the inventory).
    pub mid_home: String,
    /// As seen from this machine.
    pub local_mid_home: PathBuf,
    /// Its kind of MID (`lab up --kinds`); empty: plain.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
}

/// The emulated instance of a kept lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub url: String,
    /// The integration user `admin`'s password (a file of mode 0600).
    pub admin_password_file: PathBuf,
    /// The lab CA of an HTTPS instance (one with mutual-TLS hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl InstanceRecord {
    /// `admin`'s password, read from its file: what the kept lab's own
    /// checks and the instance-admin helpers log in with.
    pub fn admin_password(&self) -> Result<String, LabError> {
        let text = fs::read_to_string(&self.admin_password_file).map_err(|error| {
            LabError(format!("{}: {error}", self.admin_password_file.display()))
        })?;
        Ok(text.trim_end().to_string())
    }
}

/// The record of a kept lab: `state.json` in [`Place`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    pub kind: Kind,
    pub phase: Phase,
    /// The process making the lab (or running the demo); `None` once a
    /// `lab up` lab stands by itself.
    pub owner: Option<ProcessId>,
    /// The lab folder: named here before it is created.
    pub folder: PathBuf,
    /// Seconds since the epoch.
    pub created: u64,
    pub mount_namespaces: bool,
    pub hosts: Vec<HostRecord>,
    pub instance: Option<InstanceRecord>,
    /// The daemons started (sshd, the instance), as they started.
    pub processes: Vec<ProcessId>,
    /// The hosts' mount namespaces (inode numbers of /proc/PID/ns/mnt):
    /// `down` takes one for the lab's only when its mounts also name the
    /// lab folder, as the kernel reuses these numbers.
    pub namespaces: Vec<u64>,
    pub inventory: PathBuf,
    pub known_hosts: PathBuf,
    pub playbook: PathBuf,
}

impl Record {
    /// Whether the lab is in use: a `lab up` lab that finished starting, or
    /// one whose maker (the demo, a `lab up` still starting) still runs.
    /// Anything else is stale: left by a process killed on the way.
    pub fn live(&self) -> bool {
        match (self.kind, self.phase, self.owner) {
            (Kind::Lab, Phase::Up, _) => true,
            (_, _, Some(owner)) => owner.alive(),
            (_, _, None) => false,
        }
    }
}

/// Where a user's lab record lives: `$MIDFLEET_LAB_STATE` when set (a
/// relative path from the current folder); as
/// root `/run/midfleet-lab`; else `$XDG_RUNTIME_DIR/midfleet-lab`; else
/// `/tmp/midfleet-lab-UID`. The folder is the user's own, mode 0700; kept
/// labs' folders are made in it.
#[derive(Debug, Clone)]
pub struct Place {
    pub folder: PathBuf,
}

impl Place {
    /// This user's place (not created yet).
    pub fn for_user() -> Place {
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        let folder = match std::env::var_os(STATE_VARIABLE).filter(|value| !value.is_empty()) {
            // Absolute: the record names paths under it, read again from
            // other folders (and the lab's sshd and MIDs run elsewhere).
            Some(folder) => std::path::absolute(&folder).unwrap_or_else(|_| PathBuf::from(folder)),
            None if uid == 0 => PathBuf::from("/run/midfleet-lab"),
            None => match std::env::var_os("XDG_RUNTIME_DIR")
                .map(PathBuf::from)
                .filter(|folder| folder.is_absolute() && folder.is_dir())
            {
                Some(runtime) => runtime.join("midfleet-lab"),
                None => std::env::temp_dir().join(format!("midfleet-lab-{uid}")),
            },
        };
        Place { folder }
    }

    pub fn state_file(&self) -> PathBuf {
        self.folder.join(STATE_FILE)
    }

    /// Creates the folder (0700) and checks that it is this user's own
    /// folder, not a link or someone else's (it may be under /tmp).
    fn create(&self) -> Result<(), LabError> {
        match fs::DirBuilder::new().mode(0o700).create(&self.folder) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => {
                return Err(LabError(format!(
                    "cannot create {}: {error}",
                    self.folder.display()
                )))
            }
        }
        self.verify()
    }

    /// Checks that the folder is this user's own, not a link, and that no
    /// one else can write in it: under /tmp another user could have made
    /// it, with a record of their own naming an instance and a password
    /// file (`lab status` would send that file to their URL).
    fn verify(&self) -> Result<(), LabError> {
        let metadata = fs::symlink_metadata(&self.folder)
            .map_err(|error| LabError(format!("{}: {error}", self.folder.display())))?;
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        if !metadata.is_dir() || metadata.uid() != uid || metadata.mode() & 0o022 != 0 {
            return Err(LabError(format!(
                "{} is not a folder of this user's that only they can write: the lab keeps its record there \
                 (remove it, or set {STATE_VARIABLE} to another folder)",
                self.folder.display()
            )));
        }
        Ok(())
    }

    /// The record, when there is one: only from a folder and a file of this
    /// user's own ([`Place::verify`]; the file not a link).
    pub fn read(&self) -> Result<Option<Record>, LabError> {
        match fs::symlink_metadata(&self.folder) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            _ => self.verify()?,
        }
        let path = self.state_file();
        let opened = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .and_then(|mut file| {
                let metadata = file.metadata()?;
                // SAFETY: geteuid has no preconditions.
                if !metadata.is_file() || metadata.uid() != unsafe { libc::geteuid() } {
                    return Err(std::io::Error::other(
                        "not a file of this user's: not read (remove it)",
                    ));
                }
                let mut text = String::new();
                std::io::Read::read_to_string(&mut file, &mut text)?;
                Ok(text)
            });
        match opened {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|error| {
                LabError(format!(
                    "{}: not a lab record ({error}); remove it by hand after checking no lab runs",
                    path.display()
                ))
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(LabError(format!("{}: {error}", path.display()))),
        }
    }

    /// Writes the record atomically (readers never see half of one) and
    /// durably (it is what cleans up after a crash).
    pub fn write(&self, record: &Record) -> Result<(), LabError> {
        self.create()?;
        let path = self.state_file();
        let temporary = self
            .folder
            .join(format!(".{STATE_FILE}.{}", std::process::id()));
        let text =
            serde_json::to_string_pretty(record).map_err(|error| LabError(error.to_string()))?;
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(|error| LabError(format!("{}: {error}", temporary.display())))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|error| LabError(format!("{}: {error}", temporary.display())))?;
        fs::rename(&temporary, &path)
            .map_err(|error| LabError(format!("{}: {error}", path.display())))
    }

    fn remove(&self) -> Result<(), LabError> {
        match fs::remove_file(self.state_file()) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(LabError(format!(
                "{}: {error}",
                self.state_file().display()
            ))),
            _ => {
                // The folder goes too when nothing else is in it.
                let _ = fs::remove_dir(&self.folder);
                Ok(())
            }
        }
    }

    /// Holds the place's lock (a `flock` of its folder) until dropped:
    /// one `lab up`, `lab down` or demo at a time changes the record.
    fn lock(&self) -> Result<Lock, LabError> {
        self.create()?;
        let file = fs::File::open(&self.folder)
            .map_err(|error| LabError(format!("{}: {error}", self.folder.display())))?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a folder this process opened; blocks until free.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(LabError(format!(
                "{}: cannot lock: {}",
                self.folder.display(),
                std::io::Error::last_os_error()
            )));
        }
        Ok(Lock { _file: file })
    }
}

struct Lock {
    _file: fs::File,
}

/// What [`up`] builds.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub kind: Kind,
    pub hosts: usize,
    /// Start an emulated instance (`midfleet-instancesim`) the MIDs log in to.
    pub instance: bool,
    pub midsim: PathBuf,
    pub instancesim: PathBuf,
    /// The kinds of the first hosts (`lab up --kinds`); the rest plain.
    pub kinds: Vec<crate::HostKind>,
    /// Every host behind the lab's link (`lab up --link`).
    pub link: Option<crate::link::LinkSettings>,
}

/// Why [`up`] did not bring a lab up.
#[derive(Debug)]
pub enum UpError {
    /// A lab is up already (only one per user).
    AlreadyUp(Box<Record>),
    Failed(LabError),
}

impl From<LabError> for UpError {
    fn from(error: LabError) -> UpError {
        UpError::Failed(error)
    }
}

/// A stale lab [`up`] found and removed before making its own.
#[derive(Debug)]
pub struct Cleaned {
    pub record: Record,
    pub down: Down,
}

/// Brings a kept lab up and records it; returns the running lab (dropping
/// it stops nothing) and its record. A stale lab of this user is removed
/// first (`stale` says what was found). On failure, whatever was made is
/// taken down again.
pub fn up(
    place: &Place,
    options: &UpOptions,
    stale: &mut dyn FnMut(&Cleaned),
) -> Result<(Lab, Record), UpError> {
    let _lock = place.lock()?;
    if let Some(record) = place.read()? {
        if record.live() {
            return Err(UpError::AlreadyUp(Box::new(record)));
        }
        let down = take_down(place, &record)?;
        stale(&Cleaned { record, down });
    }
    let me = ProcessId::me();
    let folder = place.folder.join(format!("lab-{}-{}", me.pid, me.start));
    let mut record = Record {
        version: 1,
        kind: options.kind,
        phase: Phase::Starting,
        owner: Some(me),
        folder: folder.clone(),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|time| time.as_secs())
            .unwrap_or(0),
        mount_namespaces: false,
        hosts: Vec::new(),
        instance: None,
        processes: Vec::new(),
        namespaces: Vec::new(),
        inventory: folder.join("inventory.yml"),
        known_hosts: folder.join("known_hosts"),
        playbook: folder.join(PLAYBOOK),
    };
    // Write-ahead: the folder is recorded before it exists.
    place.write(&record)?;
    match build(place, options, &mut record) {
        Ok(lab) => Ok((lab, record)),
        Err(error) => {
            let _ = take_down(place, &record);
            Err(UpError::Failed(error))
        }
    }
}

fn build(place: &Place, options: &UpOptions, record: &mut Record) -> Result<Lab, LabError> {
    let folder = record.folder.clone();
    fs::DirBuilder::new()
        .mode(0o755)
        .create(&folder)
        .map_err(|error| LabError(format!("cannot create {}: {error}", folder.display())))?;
    // Readable by sshd's unprivileged side (authorized keys).
    crate::set_mode(&folder, 0o755)?;
    let mut spec = LabSpec::new(options.hosts, &options.midsim);
    spec.directory = Some(folder.clone());
    spec.detached = true;
    spec.kinds = options.kinds.clone();
    spec.link = options.link;
    spec.hosts = spec.hosts.max(spec.kinds.len());
    if options.instance {
        // Mutual TLS needs HTTPS: the lab's CA signs the instance's and
        // the MIDs' certificates.
        let pki = if options.kinds.contains(&crate::HostKind::MutualTls) {
            Some(std::sync::Arc::new(crate::LabPki::create(
                &folder.join("pki"),
            )?))
        } else {
            None
        };
        let instance =
            start_instance(&folder, &options.instancesim, record, place, pki.as_deref())?;
        spec.instance_url = Some(instance.url.clone());
        spec.instance_ca = instance.ca_file.clone();
        spec.instance_admin_password = Some(instance.admin_password()?);
        spec.pki = pki;
        record.instance = Some(instance);
        place.write(record)?;
    }
    let lab = Lab::start(&spec)?;
    record.mount_namespaces = lab.mount_namespaces;
    let own_namespace = namespace_of(std::process::id() as i32);
    for host in &lab.hosts {
        if let Some(process) = host.sshd_pid().and_then(|pid| ProcessId::of(pid as i32)) {
            record.processes.push(process);
            if let Some(namespace) = namespace_of(process.pid).filter(|n| Some(*n) != own_namespace)
            {
                record.namespaces.push(namespace);
            }
        }
        record.hosts.push(HostRecord {
            name: host.name.clone(),
            address: host.address.clone(),
            port: host.port,
            mid_home: host.mid_home.clone(),
            local_mid_home: host.local_mid_home.clone(),
            kind: match host.kind {
                crate::HostKind::Plain => String::new(),
                kind => kind.name().to_string(),
            },
        });
        // The knobs `lab fault none` goes back to.
        let knobs = host.local_mid_home.join(".midsim");
        fs::copy(&knobs, baseline(&folder, &host.name))
            .map_err(|error| LabError(format!("{}: {error}", knobs.display())))?;
    }
    crate::write(
        &record.playbook,
        &example_playbook(record.instance.as_ref()),
    )?;
    record.phase = Phase::Up;
    if options.kind == Kind::Lab {
        record.owner = None;
    }
    place.write(record)?;
    Ok(lab)
}

/// The rotation every kept lab comes with.
pub fn example_playbook(instance: Option<&InstanceRecord>) -> String {
    let mut text = format!(
        "# Rotate every lab MID to its own instance user (svc_mid_lab001, …),\n\
         # with the password in ${PLAYBOOK_PASSWORD_VARIABLE}. Make the users first:\n\
         #   midfleet lab user svc_mid_lab001 --password env:{PLAYBOOK_PASSWORD_VARIABLE}   (one per host)\n\
         name: Rotate the lab MIDs' instance user\n\
         hosts: all\n\
         set:\n  mid.instance.username: \"svc_mid_{{{{ mid_name }}}}\"\n  \
         mid.instance.password: {{ secret: \"env:{PLAYBOOK_PASSWORD_VARIABLE}\" }}\n\
         rollout:\n  serial: [1, 100%]\n\
         health:\n  timeout: 30\n"
    );
    if let Some(instance) = instance {
        text.push_str(&format!(
            "instance:\n  url: {}\n  user: admin\n  password: {{ secret: \"file:{}\" }}\n",
            instance.url,
            instance.admin_password_file.display()
        ));
        if let Some(ca_file) = &instance.ca_file {
            text.push_str(&format!("  ca_file: {}\n", ca_file.display()));
        }
    }
    text
}

fn baseline(folder: &Path, host: &str) -> PathBuf {
    folder.join("hosts").join(host).join("midsim.baseline")
}

/// Starts `midfleet-instancesim` as a daemon in `folder/instance`, seeded
/// with the integration user `admin` (a random password, in a 0600 file:
/// never in an argv) and the lab MIDs' first user with `mid_server`.
fn start_instance(
    folder: &Path,
    instancesim: &Path,
    record: &mut Record,
    place: &Place,
    pki: Option<&crate::LabPki>,
) -> Result<InstanceRecord, LabError> {
    if !instancesim.is_file() {
        return Err(LabError(format!(
            "{} is missing: build it with `cargo build --release --workspace`",
            instancesim.display()
        )));
    }
    let directory = folder.join("instance");
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&directory)
        .map_err(|error| LabError(format!("{}: {error}", directory.display())))?;
    let admin_password = random_password()?;
    let admin_password_file = directory.join("admin-password");
    write_private(&admin_password_file, &format!("{admin_password}\n"))?;
    let state = directory.join("state.json");
    let seed = json!({ "tables": {
        "sys_user_role": [
            { "sys_id": "role-admin", "name": "admin" },
            { "sys_id": "role-mid-server", "name": "mid_server" },
        ],
        "sys_user": [
            { "sys_id": "user-admin", "user_name": "admin", "user_password": admin_password,
              "active": "true", "locked_out": "false", "web_service_access_only": "false",
              "internal_integration_user": "true" },
            { "sys_id": "user-initial", "user_name": INITIAL_USER, "user_password": INITIAL_PASSWORD,
              "active": "true", "locked_out": "false", "web_service_access_only": "true",
              "internal_integration_user": "true" },
        ],
        "sys_user_has_role": [
            { "sys_id": "grant-admin", "user": "user-admin", "role": "role-admin" },
            { "sys_id": "grant-initial", "user": "user-initial", "role": "role-mid-server" },
        ],
    } });
    write_private(&state, &seed.to_string())?;
    let log = directory.join("instancesim.log");
    let output =
        fs::File::create(&log).map_err(|error| LabError(format!("{}: {error}", log.display())))?;
    let errors = output
        .try_clone()
        .map_err(|error| LabError(error.to_string()))?;
    let mut command = Command::new(instancesim);
    command
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--state")
        .arg(&state)
        .arg("--log")
        .arg(directory.join("requests.jsonl"));
    if let Some(pki) = pki {
        command
            .arg("--cert")
            .arg(&pki.server_cert)
            .arg("--key")
            .arg(&pki.server_key)
            .arg("--client-ca")
            .arg(&pki.ca_file);
    }
    command.stdin(Stdio::null()).stdout(output).stderr(errors);
    // SAFETY: setsid between fork and exec; async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let child = command
        .spawn()
        .map_err(|error| LabError(format!("cannot start {}: {error}", instancesim.display())))?;
    let process = ProcessId::of(child.id() as i32).unwrap_or(ProcessId {
        pid: child.id() as i32,
        start: 0,
    });
    record.processes.push(process);
    place.write(record)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let url = loop {
        let text = fs::read_to_string(&log).unwrap_or_default();
        if let Some(url) = text
            .lines()
            .find_map(|line| line.strip_prefix("listening on "))
        {
            break url.trim().to_string();
        }
        if !process.alive() || Instant::now() > deadline {
            return Err(LabError(format!(
                "the lab's instance did not start: {}",
                text.trim()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The child is reaped by init once this process is gone.
    std::mem::forget(child);
    Ok(InstanceRecord {
        url,
        admin_password_file,
        ca_file: pki.map(|pki| pki.ca_file.clone()),
    })
}

fn random_password() -> Result<String, LabError> {
    let mut bytes = [0u8; 18];
    fs::File::open("/dev/urandom")
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut bytes))
        .map_err(|error| LabError(format!("/dev/urandom: {error}")))?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Writes `text` to `path`, readable by its owner only (mode 0600 when it
/// creates the file): passwords, keys and seeds of the lab.
pub(crate) fn write_private(path: &Path, text: &str) -> Result<(), LabError> {
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|error| LabError(format!("{}: {error}", path.display())))
}

/// `count` and its noun, singular for one: "1 host", "2 hosts".
pub fn counted(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// What [`down`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Down {
    /// The lab folder removed.
    pub folder: Option<PathBuf>,
    /// Processes killed.
    pub killed: usize,
    /// Mount namespaces emptied (gone with their last process).
    pub namespaces: usize,
    /// Whether the lab was stale (left by a killed process).
    pub stale: bool,
    pub kind: Option<Kind>,
}

/// Takes this user's lab down (a stale one too); `None` when there is no
/// lab. Idempotent.
pub fn down(place: &Place) -> Result<Option<Down>, LabError> {
    let _lock = place.lock()?;
    match place.read()? {
        None => {
            let _ = fs::remove_dir(&place.folder);
            Ok(None)
        }
        Some(record) => take_down(place, &record).map(Some),
    }
}

/// Held by the thread taking the lab down after a signal.
static GATE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Waits, before the process ends by itself, for a lab being taken down
/// after a signal (which then ends the process with 130).
pub fn settle() {
    let _gate = GATE.lock();
}

/// From now on, Ctrl-C, SIGTERM and SIGHUP take down the lab this process
/// made
/// (while it is being made, or while the demo runs on it; a `lab up` lab
/// already made stays), say so on stderr, and end the process with 130. The signals are blocked in every
/// thread and taken by one of their own (children get the usual mask:
/// std resets it at spawn). Call it before any other thread starts.
pub fn take_down_when_interrupted(place: &Place) {
    // SAFETY: a sigset on the stack, filled by sigemptyset/sigaddset;
    // pthread_sigmask on the calling thread.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let place = place.clone();
    std::thread::spawn(move || {
        let mut signal: libc::c_int = 0;
        // SAFETY: sigwait on a set the caller blocked, into a local.
        if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
            return;
        }
        // Held until the exit: [`settle`] keeps the main thread from
        // ending the process half way through.
        let _gate = GATE.lock();
        eprintln!("\nInterrupted: taking the lab down…");
        // Under the place's lock: a `lab up` under way finishes its step.
        let _lock = place.lock();
        let me = ProcessId::me();
        let mine = format!("lab-{}-{}", me.pid, me.start);
        match place.read() {
            Ok(Some(record))
                if record
                    .folder
                    .file_name()
                    .is_some_and(|name| name == mine.as_str()) =>
            {
                match take_down(&place, &record) {
                    Ok(down) => eprintln!(
                        "The lab is down: {} stopped, {} removed.",
                        counted(down.killed, "process", "processes"),
                        record.folder.display()
                    ),
                    Err(error) => {
                        eprintln!("error: {error}\nhint: run `midfleet lab down` to finish")
                    }
                }
            }
            _ => {}
        }
        std::process::exit(130);
    });
}

/// Kills every process of the lab, waits until they and their mount
/// namespaces are gone, removes the folder, then the record (last: until
/// everything is gone, the record is what finds it).
fn take_down(place: &Place, record: &Record) -> Result<Down, LabError> {
    // What is killed and removed follows from the folder: only ever a
    // `lab-…` folder in this place, as `up` names it (a record edited by
    // hand, or from elsewhere, could name `/`).
    // The same folder as the place, however spelled (a link on the way).
    let same = |a: &Path, b: &Path| match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    };
    let in_place = record
        .folder
        .parent()
        .is_some_and(|parent| same(parent, &place.folder))
        && record
            .folder
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with("lab-") && name.len() > 4);
    if !in_place {
        return Err(LabError(format!(
            "{}: its lab folder {} is not a lab-… folder beside it; not touched (check it, then remove the record by hand)",
            place.state_file().display(),
            record.folder.display()
        )));
    }
    let stale = !record.live();
    let own_namespace = namespace_of(std::process::id() as i32);
    let me = std::process::id() as i32;
    let mut namespaces: Vec<u64> = Vec::new();
    let mut killed: Vec<i32> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = lab_processes(record, &mut namespaces, own_namespace, me);
        if found.is_empty() {
            break;
        }
        for pid in &found {
            // SAFETY: kill(2) on a positive pid the lab's record leads to.
            if *pid > 1 && unsafe { libc::kill(*pid, libc::SIGKILL) } == 0 && !killed.contains(pid)
            {
                killed.push(*pid);
            }
        }
        reap_children();
        if Instant::now() > deadline {
            return Err(LabError(format!(
                "processes of the lab in {} outlived SIGKILL for 20 s: {found:?}",
                record.folder.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let folder = if record.folder.exists() {
        fs::remove_dir_all(&record.folder).map_err(|error| {
            LabError(format!(
                "cannot remove {}: {error}",
                record.folder.display()
            ))
        })?;
        Some(record.folder.clone())
    } else {
        None
    };
    place.remove()?;
    Ok(Down {
        folder,
        killed: killed.len(),
        namespaces: namespaces.len(),
        stale,
        kind: Some(record.kind),
    })
}

/// Reaps children of this process that have exited (a demo's own sshd).
fn reap_children() {
    loop {
        // SAFETY: waitpid with WNOHANG on any child; no memory is passed.
        let pid = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
        if pid <= 0 {
            break;
        }
    }
}

/// Every live process of the lab: recorded (same start time), one of the
/// lab's programs naming the lab folder in its command line and run by
/// this user (another user's process, or a `tail -f` of a lab file, is
/// not the lab's), a descendant
/// of any of these, or living in one of the lab's mount namespaces (a
/// host's, where the MIDs started over ssh live, reparented away from
/// sshd). A namespace is the lab's when it is recorded, or found before
/// (`namespaces`), or holds one of the processes above, and, as the kernel
/// reuses inode numbers, its mounts name the lab folder (its
/// /opt/servicenow is the folder's bind mount). A namespace whose mounts
/// merely name the folder is not enough: a mount anyone makes (FUSE,
/// udisks) under a path naming it propagates into other services'
/// namespaces. Namespaces found join `namespaces`.
fn lab_processes(
    record: &Record,
    namespaces: &mut Vec<u64>,
    own_namespace: Option<u64>,
    me: i32,
) -> Vec<i32> {
    let folder = record.folder.as_os_str().as_encoded_bytes().to_vec();
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let mut table: Vec<Seen> = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me || pid <= 1 {
            continue;
        }
        let Some((start, parent, state)) = stat(pid) else {
            continue;
        };
        if state == 'Z' {
            continue;
        }
        let Ok(owner) = fs::metadata(format!("/proc/{pid}")).map(|metadata| metadata.uid()) else {
            continue;
        };
        let command = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        table.push(Seen {
            pid,
            start,
            parent,
            mine: owner == uid,
            names_folder: mentions(&command, &folder),
            lab_program: fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| {
                let name = exe
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned());
                // A binary rebuilt since it started reads `NAME (deleted)`.
                name.as_deref()
                    .map(|name| name.trim_end_matches(" (deleted)"))
                    .is_some_and(|name| LAB_PROGRAMS.contains(&name))
            }),
            namespace: namespace_of(pid).filter(|inode| Some(*inode) != own_namespace),
        });
    }
    select(record, &table, namespaces, |pid| {
        // Lossy: a mount point elsewhere on the machine may not be UTF-8.
        fs::read(format!("/proc/{pid}/mountinfo"))
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    })
}

/// The programs a lab runs with its folder in their argv: sshd (`-f`),
/// the simulated MIDs (`--agent`) and instance (`--state`), and the link
/// relay (`--links`). Only these are
/// taken for the lab's by their argv: a `tail -f`, an editor or a shell
/// of the user's naming a lab file (even the one running `lab down`) are
/// not the lab's.
const LAB_PROGRAMS: [&str; 6] = [
    "sshd",
    "sshd-session",
    "sshd-auth",
    "midfleet-midsim",
    "midfleet-instancesim",
    "midfleet-relay",
];

/// A process as [`lab_processes`] saw it in /proc.
#[derive(Debug, Clone)]
struct Seen {
    pid: i32,
    start: u64,
    parent: i32,
    /// Run by the user taking the lab down.
    mine: bool,
    names_folder: bool,
    /// One of [`LAB_PROGRAMS`].
    lab_program: bool,
    /// Its mount namespace, when not this process's.
    namespace: Option<u64>,
}

/// The rules of [`lab_processes`] over what it saw; `mounts` reads a
/// process's mountinfo.
fn select(
    record: &Record,
    table: &[Seen],
    namespaces: &mut Vec<u64>,
    mounts: impl Fn(i32) -> String,
) -> Vec<i32> {
    let name = record
        .folder
        .file_name()
        .map(|name| format!("/{}/", name.to_string_lossy()))
        .unwrap_or_default();
    let mut matched: Vec<bool> = table
        .iter()
        .map(|seen| {
            record
                .processes
                .iter()
                .any(|process| process.pid == seen.pid && process.start == seen.start)
                || (seen.names_folder && seen.mine && seen.lab_program)
        })
        .collect();
    descendants(table, &mut matched);
    // The lab's namespaces: known, or holding a process of the lab; and
    // naming the folder in their mounts.
    let mut candidates: Vec<u64> = record.namespaces.clone();
    candidates.extend(namespaces.iter().copied());
    for (seen, matched) in table.iter().zip(&matched) {
        if let (true, Some(inode)) = (*matched, seen.namespace) {
            candidates.push(inode);
        }
    }
    let mut checked: std::collections::HashMap<u64, bool> = std::collections::HashMap::new();
    for (index, seen) in table.iter().enumerate() {
        let Some(inode) = seen.namespace else {
            continue;
        };
        if name.is_empty() || !candidates.contains(&inode) {
            continue;
        }
        let lab = *checked
            .entry(inode)
            .or_insert_with(|| mounts(seen.pid).contains(&name));
        if lab {
            matched[index] = true;
            if !namespaces.contains(&inode) {
                namespaces.push(inode);
            }
        }
    }
    descendants(table, &mut matched);
    table
        .iter()
        .zip(matched)
        .filter(|(_, matched)| *matched)
        .map(|(seen, _)| seen.pid)
        .collect()
}

/// Marks the descendants of every marked process (sshd's sessions and what
/// they run).
fn descendants(table: &[Seen], matched: &mut [bool]) {
    loop {
        let parents: Vec<i32> = table
            .iter()
            .zip(matched.iter())
            .filter(|(_, matched)| **matched)
            .map(|(seen, _)| seen.pid)
            .collect();
        let mut grew = false;
        for (seen, matched) in table.iter().zip(matched.iter_mut()) {
            if !*matched && parents.contains(&seen.parent) {
                *matched = true;
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
}

/// Whether `command` (NUL-separated arguments) names `folder` or a path
/// under it.
fn mentions(command: &[u8], folder: &[u8]) -> bool {
    command.split(|byte| *byte == 0).any(|argument| {
        let mut rest = argument;
        while let Some(index) = find(rest, folder) {
            let after = rest.get(index + folder.len()).copied();
            if matches!(after, None | Some(b'/') | Some(b'"') | Some(b' ')) {
                return true;
            }
            rest = &rest[index + 1..];
        }
        false
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The pid a pid file names (above 1), if it names one.
pub(crate) fn read_pid(path: &Path) -> Option<i32> {
    fs::read_to_string(path)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|pid| *pid > 1)
}

/// Start time, parent and state of `pid` (`/proc/PID/stat`).
fn stat(pid: i32) -> Option<(u64, i32, char)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which may hold spaces or ')'.
    let rest = text.get(text.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let parent = fields.get(1)?.parse().ok()?;
    // Field 22 of the whole line is the 20th after the name.
    let start = fields.get(19)?.parse().ok()?;
    Some((start, parent, state))
}

/// The inode of `pid`'s mount namespace.
pub fn namespace_of(pid: i32) -> Option<u64> {
    fs::metadata(format!("/proc/{pid}/ns/mnt"))
        .ok()
        .map(|metadata| metadata.ino())
}

/// One host as `lab status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct HostStatus {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub sshd: bool,
    pub mid: &'static str,
    pub mid_user: Option<String>,
    /// The fault set with `lab fault` (`none`).
    pub fault: String,
    /// Its link's settings (`round trip 150 ms, …`), in a lab behind links.
    pub link: Option<String>,
}

/// The link relay of a lab behind links (`lab up --link`), as `lab
/// status` found it through its control socket.
#[derive(Debug, Clone, Serialize)]
pub struct LinkStatus {
    /// Whether it answered.
    pub relay: bool,
    /// Why it did not.
    pub error: Option<String>,
    /// Connections open through it, all hosts.
    pub open: u64,
}

/// A user of the lab's instance.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceUser {
    pub name: String,
    pub mid_server: bool,
}

/// `lab status`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub kind: Kind,
    /// `starting` while its `lab up` (or demo) is still making it: not up.
    pub phase: Phase,
    pub live: bool,
    pub folder: PathBuf,
    pub inventory: PathBuf,
    pub known_hosts: PathBuf,
    pub playbook: PathBuf,
    pub hosts: Vec<HostStatus>,
    pub instance_url: Option<String>,
    /// The instance's users, or the credential store's without an instance.
    pub users: Vec<InstanceUser>,
    /// Why the users could not be read.
    pub users_error: Option<String>,
    /// The link relay, in a lab behind links.
    pub link: Option<LinkStatus>,
}

/// The status of `record`'s lab, read from its hosts and instance.
pub fn status(record: &Record) -> Status {
    let links = crate::link::links_directory(&record.folder);
    let behind_links = links.is_dir();
    let hosts = record
        .hosts
        .iter()
        .map(|host| {
            let host_folder = record.folder.join("hosts").join(&host.name);
            let sshd = read_pid(&host_folder.join("sshd.pid"))
                .and_then(ProcessId::of)
                .is_some();
            let agent = host.local_mid_home.join("agent");
            let mid = match read_pid(&agent.join("work/mid.pid")).and_then(ProcessId::of) {
                Some(_) => "running",
                None => "stopped",
            };
            let mid_user = fs::read_to_string(agent.join("config.xml"))
                .ok()
                .and_then(|text| parameter(&text, "mid.instance.username"));
            HostStatus {
                name: host.name.clone(),
                address: host.address.clone(),
                port: host.port,
                sshd,
                mid,
                mid_user,
                fault: fault_of(record, &host.name),
                link: behind_links.then(|| {
                    crate::link::read_settings(&links, &host.name)
                        .map_or_else(|error| error.0, |settings| settings.summary())
                }),
            }
        })
        .collect();
    let link = behind_links.then(|| match crate::link::control(&links, "stats") {
        Ok(stats) => LinkStatus {
            relay: true,
            error: None,
            open: stats.values().map(|host| host.live).sum(),
        },
        Err(error) => LinkStatus {
            relay: false,
            error: Some(error.0),
            open: 0,
        },
    });
    let (users, users_error) = match users(record) {
        Ok(users) => (users, None),
        Err(error) => (Vec::new(), Some(error.0)),
    };
    Status {
        kind: record.kind,
        phase: record.phase,
        live: record.live(),
        folder: record.folder.clone(),
        inventory: record.inventory.clone(),
        known_hosts: record.known_hosts.clone(),
        playbook: record.playbook.clone(),
        hosts,
        instance_url: record
            .instance
            .as_ref()
            .map(|instance| instance.url.clone()),
        users,
        users_error,
        link,
    }
}

/// The `value` of config.xml's `<parameter name="NAME" value="…"/>`.
fn parameter(text: &str, name: &str) -> Option<String> {
    let start = text.find(&format!("name=\"{name}\""))?;
    let rest = &text[start..];
    let rest = &rest[rest.find("value=\"")? + 7..];
    Some(rest[..rest.find('"')?].to_string())
}

fn admin(record: &Record) -> Result<Option<(Client, Credentials)>, LabError> {
    let Some(instance) = &record.instance else {
        return Ok(None);
    };
    let password = instance.admin_password()?;
    // On this machine: a refused connection is not retried for seconds.
    let mut settings = Settings::with_timeout(5);
    settings.attempts = 2;
    settings.first_backoff = Duration::from_millis(100);
    let client = Client::new(&instance.url, instance.ca_file.as_deref(), settings)
        .map_err(|error| LabError(error.to_string()))?;
    Ok(Some((
        client,
        Credentials::new("admin".into(), SecretValue::new(password)),
    )))
}

/// The kept lab's instance `admin` (None without an instance), for
/// setting its MIDs' `ecc_agent` fields and `ecc_agent_config` rows.
pub fn instance_admin(record: &Record) -> Result<Option<crate::InstanceAdmin>, LabError> {
    let Some(instance) = &record.instance else {
        return Ok(None);
    };
    let password = instance.admin_password()?;
    crate::InstanceAdmin::new(&instance.url, instance.ca_file.as_deref(), &password).map(Some)
}

/// The users who can log in as MIDs: the instance's (with whether they
/// hold `mid_server`), or the credential store's.
fn users(record: &Record) -> Result<Vec<InstanceUser>, LabError> {
    match admin(record)? {
        Some((client, admin)) => {
            let error = |error: midfleet::instance::InstanceError| {
                LabError(format!("the lab's instance: {error}"))
            };
            let users = table::query(
                &client,
                &admin,
                "sys_user",
                "",
                &["sys_id", "user_name"],
                1000,
            )
            .map_err(error)?;
            let role = table::role_id(&client, &admin, "mid_server").map_err(error)?;
            let grants = match &role {
                Some(role) => table::query(
                    &client,
                    &admin,
                    "sys_user_has_role",
                    &format!("role={role}"),
                    &["user"],
                    1000,
                )
                .map_err(error)?,
                None => Vec::new(),
            };
            Ok(users
                .iter()
                .map(|user| {
                    let sys_id = table::field(user, "sys_id");
                    InstanceUser {
                        name: table::field(user, "user_name").to_string(),
                        mid_server: grants
                            .iter()
                            .any(|grant| table::field(grant, "user") == sys_id),
                    }
                })
                .collect())
        }
        None => {
            let store = record.folder.join("instance-credentials");
            let text = fs::read_to_string(&store)
                .map_err(|error| LabError(format!("{}: {error}", store.display())))?;
            Ok(text
                .lines()
                .filter_map(|line| line.split_once(':'))
                .map(|(user, _)| InstanceUser {
                    name: user.to_string(),
                    mid_server: true,
                })
                .collect())
        }
    }
}

/// What `lab user` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UserChange {
    Created,
    Updated,
}

/// Makes `user` log in with `password` on the lab's instance, holding
/// `mid_server` (or, without an instance, in the credential store the
/// MIDs log in against).
pub fn set_user(
    record: &Record,
    user: &str,
    password: &SecretValue,
) -> Result<UserChange, LabError> {
    if user.is_empty() || user.contains([':', '\n', '^', '=', '/']) {
        return Err(LabError(format!(
            "`{user}` is not a user name the lab can store (no `:`, `^`, `=`, `/` or newline)"
        )));
    }
    match admin(record)? {
        Some((client, admin)) => {
            let error = |error: midfleet::instance::InstanceError| {
                LabError(format!("the lab's instance: {error}"))
            };
            let state = table::user_state(&client, &admin, user).map_err(error)?;
            let (sys_id, change) = match state.sys_id {
                Some(sys_id) => {
                    let body = json!({
                        "user_password": password.expose(),
                        "active": "true",
                        "locked_out": "false",
                    });
                    table::update(&client, &admin, "sys_user", &sys_id, &body, true)
                        .map_err(error)?;
                    drop(body);
                    (sys_id, UserChange::Updated)
                }
                None => (
                    table::create_user(&client, &admin, user, password).map_err(error)?,
                    UserChange::Created,
                ),
            };
            if !state.has_mid_server_role {
                table::grant_role(&client, &admin, &sys_id, "mid_server").map_err(error)?;
            }
            Ok(change)
        }
        None => {
            let store = record.folder.join("instance-credentials");
            let text = fs::read_to_string(&store)
                .map_err(|error| LabError(format!("{}: {error}", store.display())))?;
            let prefix = format!("{user}:");
            let existed = text.lines().any(|line| line.starts_with(&prefix));
            let mut lines: Vec<String> = text
                .lines()
                .filter(|line| !line.starts_with(&prefix))
                .map(str::to_string)
                .collect();
            lines.push(crate::credential_line(user, password.expose()));
            crate::write(&store, &format!("{}\n", lines.join("\n")))?;
            Ok(if existed {
                UserChange::Updated
            } else {
                UserChange::Created
            })
        }
    }
}

/// The faults `lab fault` sets, each a knob of the simulated MID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// No fault: the knobs the host started with.
    None,
    /// `die_at_start`: every start dies without an agent log line (a
    /// rollback's too) until the fault is `None`.
    DiesAtStart,
    /// `stop_hangs`: every stop is ignored (SIGTERM) until the fault is `None`.
    HangsAtStop,
    /// `start_delay_ms` of [`SLOW_START_MS`].
    SlowStart,
    /// The MID's logins are refused (an empty credential store, no instance).
    RefusedLogin,
    /// `heap_limit_mb`: the host gives a JVM at most this many MB of heap;
    /// a larger `wrapper.java.maxmemory` fails every launch.
    HeapLimit(u64),
}

impl Fault {
    /// As `lab fault` takes it and `lab status` shows it.
    pub fn name(self) -> String {
        match self {
            Fault::None => "none".into(),
            Fault::DiesAtStart => "dies-at-start".into(),
            Fault::HangsAtStop => "hangs-at-stop".into(),
            Fault::SlowStart => "slow-start".into(),
            Fault::RefusedLogin => "refused-login".into(),
            Fault::HeapLimit(megabytes) => format!("heap-limit={megabytes}"),
        }
    }
}

fn fault_file(folder: &Path, host: &str) -> PathBuf {
    folder.join("hosts").join(host).join("fault")
}

fn fault_of(record: &Record, host: &str) -> String {
    fs::read_to_string(fault_file(&record.folder, host))
        .map(|text| text.trim().to_string())
        .unwrap_or_else(|_| "none".into())
}

/// Sets `host`'s fault (replacing the one before): its MID behaves so from
/// its next start, stop or login.
pub fn set_fault(record: &Record, host: &str, fault: Fault) -> Result<(), LabError> {
    let Some(found) = record.hosts.iter().find(|entry| entry.name == host) else {
        let names: Vec<&str> = record
            .hosts
            .iter()
            .map(|entry| entry.name.as_str())
            .collect();
        return Err(LabError(format!(
            "the lab has no host `{host}` (its hosts: {})",
            names.join(", ")
        )));
    };
    let base = fs::read_to_string(baseline(&record.folder, host)).map_err(|error| {
        LabError(format!(
            "{}: {error}",
            baseline(&record.folder, host).display()
        ))
    })?;
    let keep = |line: &&str, keys: &[&str]| {
        !keys
            .iter()
            .any(|key| line.split('=').next().map(str::trim) == Some(*key))
    };
    let mut lines: Vec<String> = match fault {
        Fault::RefusedLogin => base
            .lines()
            .filter(|line| keep(line, &["instance", "instance_url", "instance_ca"]))
            .map(str::to_string)
            .collect(),
        Fault::SlowStart => base
            .lines()
            .filter(|line| keep(line, &["start_delay_ms"]))
            .map(str::to_string)
            .collect(),
        _ => base.lines().map(str::to_string).collect(),
    };
    match fault {
        Fault::None => {}
        Fault::DiesAtStart => lines.push("die_at_start=true".into()),
        Fault::HangsAtStop => lines.push("stop_hangs=true".into()),
        Fault::SlowStart => lines.push(format!("start_delay_ms={SLOW_START_MS}")),
        Fault::HeapLimit(megabytes) => lines.push(format!("heap_limit_mb={megabytes}")),
        Fault::RefusedLogin => {
            let empty = record
                .folder
                .join("hosts")
                .join(host)
                .join("refuses-every-login");
            crate::write(&empty, "")?;
            lines.push(format!("instance={}", empty.display()));
        }
    }
    let knobs = found.local_mid_home.join(".midsim");
    crate::write(&knobs, &format!("{}\n", lines.join("\n")))?;
    crate::write(
        &fault_file(&record.folder, host),
        &format!("{}\n", fault.name()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_is_named_only_as_itself_or_a_parent() {
        let folder = b"/run/midfleet-lab/lab-12-5";
        assert!(mentions(
            b"/usr/sbin/sshd\0-f\0/run/midfleet-lab/lab-12-5/hosts/a/sshd_config\0",
            folder
        ));
        assert!(mentions(b"x\0/run/midfleet-lab/lab-12-5\0", folder));
        assert!(!mentions(b"x\0/run/midfleet-lab/lab-12-55/hosts\0", folder));
        assert!(!mentions(b"sshd: root@notty\0", folder));
    }

    fn seen(pid: i32, parent: i32, mine: bool, names_folder: bool, namespace: Option<u64>) -> Seen {
        Seen {
            pid,
            start: 7,
            parent,
            mine,
            names_folder,
            lab_program: names_folder,
            namespace,
        }
    }

    #[test]
    fn only_the_labs_own_processes_are_taken_down() {
        let mut record = Record {
            version: 1,
            kind: Kind::Lab,
            phase: Phase::Up,
            owner: None,
            folder: PathBuf::from("/run/midfleet-lab/lab-12-5"),
            created: 0,
            mount_namespaces: true,
            hosts: Vec::new(),
            instance: None,
            processes: vec![ProcessId { pid: 10, start: 7 }],
            namespaces: Vec::new(),
            inventory: PathBuf::new(),
            known_hosts: PathBuf::new(),
            playbook: PathBuf::new(),
        };
        let table = [
            // The recorded sshd, in the host's namespace 100, its session.
            seen(10, 1, true, true, Some(100)),
            seen(11, 10, false, false, Some(100)),
            // A MID started over ssh, reparented to init, in namespace 100.
            seen(12, 1, true, false, Some(100)),
            // Another user's process naming the folder, and its child.
            seen(20, 1, false, true, None),
            seen(21, 20, false, false, None),
            // A service's namespace 200, where a mount naming the lab
            // folder propagated (a FUSE or udisks mount of a user's).
            seen(30, 1, true, false, Some(200)),
            // This user's MID of a host whose sshd is gone: found by its
            // command line.
            seen(40, 1, true, true, None),
            // This user's `tail -f` of a lab log, and the shell that runs
            // `lab down` with the folder in its argv (`sh -c "ls DIR;
            // midfleet lab down"`): not the lab's.
            Seen {
                lab_program: false,
                ..seen(50, 1, true, true, None)
            },
            Seen {
                lab_program: false,
                ..seen(51, 1, true, true, None)
            },
        ];
        let mounts = |_pid: i32| {
            "68 46 254:0 /midfleet-lab/lab-12-5/hosts/lab-001/servicenow /opt/servicenow rw - tmpfs\n\
             90 46 0:50 / /media/user/lab-12-5/x rw - fuse\n"
                .to_string()
        };
        let mut namespaces = Vec::new();
        let mut found = select(&record, &table, &mut namespaces, mounts);
        found.sort();
        assert_eq!(found, vec![10, 11, 12, 40]);
        assert_eq!(namespaces, vec![100]);
        // Next round, the sshd gone: the namespace found before still
        // leads to the MID; a recorded namespace does too.
        let mut found = select(&record, &table[2..], &mut namespaces, mounts);
        found.sort();
        assert_eq!(found, vec![12, 40]);
        let mut none = Vec::new();
        record.namespaces = vec![200];
        let found = select(
            &record,
            &[seen(30, 1, true, false, Some(200))],
            &mut none,
            mounts,
        );
        assert_eq!(
            found,
            vec![30],
            "a recorded namespace naming the folder is the lab's"
        );
        let found = select(
            &record,
            &[seen(30, 1, true, false, Some(200))],
            &mut none,
            |_| "1 2 3:4 / / rw - ext4\n".to_string(),
        );
        assert!(
            found.is_empty(),
            "a reused inode whose mounts do not name the folder is not"
        );
    }

    #[test]
    fn a_record_in_a_folder_or_file_others_control_is_not_read() {
        use std::os::unix::fs::PermissionsExt;
        let holder = tempfile::tempdir().expect("temporary folder");
        let record = r#"{"version":1,"kind":"lab","phase":"up","owner":null,"folder":"/x/lab-1-1",
            "created":0,"mount_namespaces":false,"hosts":[],"instance":{"url":"http://127.0.0.1:9",
            "admin_password_file":"/home/victim/secret"},"processes":[],"namespaces":[],
            "inventory":"/x/i","known_hosts":"/x/k","playbook":"/x/p"}"#;
        let place = Place {
            folder: holder.path().join("place"),
        };
        assert!(place.read().expect("no folder").is_none());
        // Made by this user, as it should be: read.
        place.create().expect("create");
        fs::write(place.state_file(), record).expect("record");
        assert!(place.read().expect("own record").is_some());
        // A folder anyone can write in (another user's, under /tmp).
        fs::set_permissions(&place.folder, fs::Permissions::from_mode(0o777)).expect("chmod");
        let error = place.read().expect_err("a folder others write in");
        assert!(
            error.0.contains("is not a folder of this user's"),
            "{}",
            error.0
        );
        fs::set_permissions(&place.folder, fs::Permissions::from_mode(0o700)).expect("chmod");
        // The record a link to a file someone else wrote.
        let elsewhere = holder.path().join("elsewhere.json");
        fs::write(&elsewhere, record).expect("elsewhere");
        fs::remove_file(place.state_file()).expect("remove");
        std::os::unix::fs::symlink(&elsewhere, place.state_file()).expect("link");
        place.read().expect_err("a link");
        // The folder a link to a folder of the right kind.
        fs::remove_file(place.state_file()).expect("remove");
        let linked = Place {
            folder: holder.path().join("linked"),
        };
        std::os::unix::fs::symlink(&place.folder, &linked.folder).expect("link");
        fs::write(place.state_file(), record).expect("record");
        linked.read().expect_err("a linked folder");
        // A record file of another user's (as root, the tests can make one).
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(place.state_file(), Some(65534), Some(65534)).expect("chown");
            place.read().expect_err("another user's file");
        }
    }

    #[test]
    fn a_record_naming_a_folder_outside_its_place_is_not_taken_down() {
        let holder = tempfile::tempdir().expect("temporary folder");
        let place = Place {
            folder: holder.path().join("place"),
        };
        let victim = holder.path().join("victim");
        fs::create_dir_all(&victim).expect("victim");
        let record = Record {
            version: 1,
            kind: Kind::Lab,
            phase: Phase::Up,
            owner: None,
            folder: victim.clone(),
            created: 0,
            mount_namespaces: false,
            hosts: Vec::new(),
            instance: None,
            processes: Vec::new(),
            namespaces: Vec::new(),
            inventory: PathBuf::new(),
            known_hosts: PathBuf::new(),
            playbook: PathBuf::new(),
        };
        place.write(&record).expect("record");
        let error = down(&place).expect_err("a folder outside the place");
        assert!(error.0.contains("not touched"), "{}", error.0);
        assert!(victim.exists(), "the folder it named is kept");
        assert!(place.state_file().exists(), "the record is kept");
    }

    #[test]
    fn only_a_standing_lab_or_a_running_maker_is_live() {
        let mut record = Record {
            version: 1,
            kind: Kind::Lab,
            phase: Phase::Starting,
            owner: Some(ProcessId::me()),
            folder: PathBuf::from("/nowhere"),
            created: 0,
            mount_namespaces: false,
            hosts: Vec::new(),
            instance: None,
            processes: Vec::new(),
            namespaces: Vec::new(),
            inventory: PathBuf::new(),
            known_hosts: PathBuf::new(),
            playbook: PathBuf::new(),
        };
        assert!(record.live(), "its maker runs");
        record.owner = Some(ProcessId {
            pid: std::process::id() as i32,
            start: 1,
        });
        assert!(!record.live(), "another process had that pid");
        record.phase = Phase::Up;
        record.owner = None;
        assert!(record.live(), "a lab that is up stands alone");
        record.kind = Kind::Demo;
        assert!(!record.live(), "a demo's lab dies with the demo");
    }

    #[test]
    fn each_fault_is_its_knobs_over_the_baseline_and_none_goes_back() {
        let folder = tempfile::tempdir().expect("temporary folder");
        let mid_home = folder.path().join("hosts/lab-001/servicenow/mid");
        fs::create_dir_all(&mid_home).expect("mid_home");
        let base = "instance=/lab/instance-credentials\nstart_delay_ms=100\ninstance_url=http://127.0.0.1:9\n";
        fs::write(baseline(folder.path(), "lab-001"), base).expect("baseline");
        let record = Record {
            version: 1,
            kind: Kind::Lab,
            phase: Phase::Up,
            owner: None,
            folder: folder.path().to_path_buf(),
            created: 0,
            mount_namespaces: false,
            hosts: vec![HostRecord {
                name: "lab-001".into(),
                address: "127.0.0.1".into(),
                port: 22,
                mid_home: mid_home.display().to_string(),
                local_mid_home: mid_home.clone(),
                kind: String::new(),
            }],
            instance: None,
            processes: Vec::new(),
            namespaces: Vec::new(),
            inventory: PathBuf::new(),
            known_hosts: PathBuf::new(),
            playbook: PathBuf::new(),
        };
        let knobs = || fs::read_to_string(mid_home.join(".midsim")).expect("knobs");
        let refused = folder.path().join("hosts/lab-001/refuses-every-login");
        let cases = [
            (Fault::DiesAtStart, format!("{base}die_at_start=true\n")),
            (Fault::HangsAtStop, format!("{base}stop_hangs=true\n")),
            (
                Fault::SlowStart,
                "instance=/lab/instance-credentials\ninstance_url=http://127.0.0.1:9\nstart_delay_ms=10000\n".into(),
            ),
            (
                Fault::RefusedLogin,
                format!("start_delay_ms=100\ninstance={}\n", refused.display()),
            ),
            (Fault::HeapLimit(1536), format!("{base}heap_limit_mb=1536\n")),
            (Fault::None, base.to_string()),
        ];
        for (fault, expected) in cases {
            set_fault(&record, "lab-001", fault).expect("set");
            assert_eq!(knobs(), expected, "{fault:?}");
            assert_eq!(fault_of(&record, "lab-001"), fault.name());
        }
        assert_eq!(fs::read_to_string(refused).expect("empty store"), "");
        let error = set_fault(&record, "lab-002", Fault::None).expect_err("no such host");
        assert_eq!(
            error.0,
            "the lab has no host `lab-002` (its hosts: lab-001)"
        );
    }

    #[test]
    fn the_parameter_value_is_read_from_config_xml() {
        let text = "<parameter name=\"url\" value=\"u\"/>\n<parameter name=\"mid.instance.username\" value=\"svc_a\"/>";
        assert_eq!(
            parameter(text, "mid.instance.username").as_deref(),
            Some("svc_a")
        );
        assert_eq!(parameter(text, "missing"), None);
    }
}
