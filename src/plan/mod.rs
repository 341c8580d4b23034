//! The plan: per host, what changes, the restart it needs, and the
//! fingerprint of the file it was computed from. Plain data (serde), saved
//! with `plan --out` and applied exactly with `apply --plan`: apply reads
//! only the plan, the secrets it re-resolves, and the playbook it was made
//! from (unchanged, by SHA-256), which says which secrets those may be.
//!
//! Owns: the plan's types and its versioned JSON form (`mod.rs`), reading
//! a plan file back with its owner, mode and playbook checked (`file.rs`),
//! building it from desired state × facts (`build.rs`, pure), and the
//! human rendering (`render.rs`). Must not: contact a host, or hold a secret value.

mod build;
pub mod file;
pub mod kind;
pub mod render;
pub mod rotation;
#[cfg(test)]
mod tests;
mod wrapper;

use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;
use crate::inventory::ServiceSpec;
use crate::playbook::{Health, Restart, RetireOldUser, Rollout};
use crate::secret::SecretRef;
use crate::state::SaltedHash;

pub use build::{build_host_plan, PlanInputs};
pub use render::render;
pub use wrapper::wrapper_path;

/// The warning a key pair reset carries until the MID is validated again
/// on the instance (which the `instance:` section can do).
pub const KEY_PAIR_WARNING: &str = "key pair reset: validate this MID on the instance";
/// The version of the plan file format. 2: the playbook's absolute path
/// and SHA-256 (`apply --plan` resolves only the secrets that playbook
/// holds). 3: each host's `become_user` (an older midfleet would ignore it
/// and run as root). 4: `wrapper_operations` and `wrapper_fingerprint`
/// (conf/wrapper-override.conf; an older midfleet would ignore them and
/// restart without the change). A plan of an older format is refused, to
/// be made again.
pub const FORMAT_VERSION: u32 = 4;

/// A whole run's plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub midfleet_version: String,
    /// When it was made (RFC 3339, UTC).
    pub created_at: String,
    pub playbook: PlaybookInfo,
    pub rollout: RolloutSettings,
    /// Each secret reference the plan uses, with a salted hash of the value
    /// it resolved to (so `apply --plan` can refuse a changed secret).
    pub secrets: Vec<SecretInfo>,
    pub hosts: Vec<HostPlan>,
    /// The `instance:` section, when the playbook has one.
    #[serde(default)]
    pub instance: Option<InstancePlan>,
    /// Instance-side changes: `instance.ensure_user`'s, made before any
    /// host is touched; `instance.retire_old_user`'s, after the run.
    #[serde(default)]
    pub instance_changes: Vec<InstanceChange>,
}

/// The `instance:` section as the plan applies it: references, never
/// values.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstancePlan {
    pub url: String,
    pub user: InstanceUserPlan,
    pub password: SecretRef,
    pub ca_file: Option<String>,
    pub ensure_user: bool,
    /// Seconds per request.
    pub timeout: u64,
    /// Each distinct new MID user and password, logged in with before any
    /// host is touched.
    pub preflight: Vec<PreflightLogin>,
    /// Changing hosts whose new credentials cannot be checked (their
    /// password is not written by this plan).
    pub unchecked_hosts: Vec<String>,
    /// After the run: lock or deactivate the users the hosts moved away
    /// from, when nothing uses them any more.
    #[serde(default)]
    pub retire_old_user: RetireOldUser,
    /// `instance.validate`: Invalidate, then Validate, after each restart
    /// (unset: the MIDs whose key pair is reset).
    #[serde(default)]
    pub validate: Option<bool>,
    /// Why the instance could not be asked when planning.
    pub error: Option<String>,
}

/// The integration user: its name, or the reference it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceUserPlan {
    Name(String),
    Secret(SecretRef),
}

/// One new MID login and what the instance said to it when planning.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreflightLogin {
    pub user: String,
    pub hosts: Vec<String>,
    pub status: LoginStatus,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginStatus {
    /// The instance accepted the user and password.
    Accepted,
    /// The instance refused them (401): applying would stop here.
    Refused,
    /// The user does not exist yet; `ensure_user` creates it first.
    AfterCreation,
    /// A rotation's user: checked after its password is reset.
    AfterReset,
    /// A rotation's user that a MID logs in as now: it cannot be reset,
    /// so its hosts are errors of the plan (the others go on).
    InUse,
    /// The instance could not be asked.
    Error,
}

/// One change on the instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceChange {
    /// `create_user`, `set_password`, `grant_role`; after each host's
    /// restart `validate_mid` (`user` is then the MID's name); after the
    /// run `lock_user` or `deactivate_user`.
    pub action: String,
    /// The Table API table written.
    pub table: String,
    pub user: String,
    pub role: Option<String>,
    /// For people: what exactly is written.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlaybookInfo {
    /// As given on the command line (for people and the audit log).
    pub path: String,
    pub name: Option<String>,
    /// The absolute path `apply --plan` reads the playbook again from
    /// (none for a rollback's plan, which is never saved).
    #[serde(default)]
    pub file: Option<String>,
    /// Lowercase hex SHA-256 of the playbook's bytes when the plan was
    /// made.
    #[serde(default)]
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RolloutSettings {
    pub serial: Vec<String>,
    pub max_fail: String,
    pub health_timeout: u64,
    pub restart: String,
}

impl RolloutSettings {
    pub fn new(rollout: &Rollout, health: &Health, restart: Restart) -> RolloutSettings {
        RolloutSettings {
            serial: rollout.serial.iter().map(ToString::to_string).collect(),
            max_fail: rollout.max_fail.to_string(),
            health_timeout: health.timeout,
            restart: match restart {
                Restart::OnChange => "on-change".into(),
                Restart::Always => "always".into(),
            },
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretInfo {
    pub reference: String,
    pub value_hash: SaltedHash,
}

/// One host's plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostPlan {
    pub host: String,
    pub connection: Endpoint,
    #[serde(rename = "become")]
    pub become_root: bool,
    /// With become, the user sudo runs as (`None`: root).
    #[serde(default)]
    pub become_user: Option<String>,
    pub mid_home: String,
    pub config: String,
    pub mid_cluster: Option<String>,
    /// How the service is run, as configured and as found on the host.
    pub service: ServiceSpec,
    pub service_found: Option<String>,
    pub service_unit: Option<String>,
    /// SHA-256 of config.xml when planned.
    pub fingerprint: Option<String>,
    /// SHA-256 of conf/wrapper-override.conf when planned, when the plan
    /// edits it: a file changed since refuses the apply as config.xml does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapper_fingerprint: Option<String>,
    /// What to write into conf/wrapper-override.conf (empty: nothing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wrapper_operations: Vec<WrapperOperation>,
    pub status: HostStatus,
    pub changes: Vec<PlannedChange>,
    /// The MID must be (re)started: restarted after a write, or started
    /// because it is stopped.
    pub restart: bool,
    pub start_only: bool,
    pub key_pair_reset: bool,
    /// The user the MID must log in as after the start.
    pub expect_user: Option<String>,
    /// The user it logs in as now (expected after a rollback).
    pub current_user: Option<String>,
    /// The MID's `name` parameter: its `ecc_agent` record on the instance.
    #[serde(default)]
    pub mid_name: Option<String>,
    /// What to write: parameters and where their values come from.
    pub operations: Vec<PlannedOperation>,
    pub error: Option<String>,
    pub warnings: Vec<String>,
    /// `midfleet rollback`: the backup folder to restore instead of
    /// writing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<String>,
    /// With `rotate:`: whether the host rotates now, and to whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<rotation::RotationPlan>,
    /// The kind of MID, when it is not a plain basic-auth one (mutual
    /// TLS, IPKI, a secret provider, DPAPI, a container, upgrading).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<kind::MidKind>,
    /// Why the host is left alone (status `skipped`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    Change,
    Unchanged,
    Error,
    /// Left alone on purpose, not an error (an upgrading MID): never
    /// touched by apply; the exit code is as for `unchanged`.
    Skipped,
}

/// One change as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedChange {
    /// `update`, `add`, `remove`, `start`, `restart`.
    pub action: String,
    pub param: Option<String>,
    /// Absent for sensitive values.
    pub before: Option<String>,
    pub after: Option<String>,
    pub sensitive: bool,
    pub reason: Option<String>,
    /// The file changed, when it is not config.xml
    /// (`wrapper-override.conf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// One parameter to write at apply time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PlannedOperation {
    /// A literal, non-sensitive value (kept in the plan).
    Set {
        param: String,
        value: String,
    },
    /// A value from a secret reference, re-resolved at apply.
    SetSecret {
        param: String,
        reference: SecretRef,
    },
    /// A literal sensitive value from the playbook: never stored in a plan
    /// file, so only a plan applied at once (not `apply --plan`) can write it.
    SetLiteralSensitive {
        param: String,
    },
    Unset {
        param: String,
    },
}

/// One property to write into conf/wrapper-override.conf at apply time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WrapperOperation {
    /// A literal, non-sensitive value (kept in the plan).
    Set { key: String, value: String },
    /// A value from a secret reference, re-resolved at apply.
    SetSecret { key: String, reference: SecretRef },
    /// A literal sensitive value: never in a plan file (as
    /// [`PlannedOperation::SetLiteralSensitive`]).
    SetLiteralSensitive { key: String },
    /// Commented out (a sensitive line removed).
    Unset { key: String },
    /// JVM arguments that must each be on a `wrapper.java.additional.N`.
    Arguments { values: Vec<String> },
}

impl HostPlan {
    /// The user commands run as through sudo, `None` without become.
    pub fn become_as(&self) -> Option<&str> {
        self.become_root
            .then(|| self.become_user.as_deref().unwrap_or("root"))
    }

    /// An empty plan for `host`, reached at `endpoint`: unchanged until
    /// changes are added.
    pub fn new(host: &crate::inventory::Host, endpoint: &Endpoint) -> HostPlan {
        HostPlan {
            host: host.name.clone(),
            connection: endpoint.clone(),
            become_root: host.become_root,
            become_user: host.become_user.clone(),
            mid_home: host.mid_home.clone(),
            config: host.config.clone(),
            mid_cluster: host.mid_cluster.clone(),
            service: host.service.clone(),
            service_found: None,
            service_unit: None,
            fingerprint: None,
            wrapper_fingerprint: None,
            wrapper_operations: Vec::new(),
            status: HostStatus::Unchanged,
            changes: Vec::new(),
            restart: false,
            start_only: false,
            key_pair_reset: false,
            expect_user: None,
            current_user: None,
            mid_name: None,
            operations: Vec::new(),
            error: None,
            warnings: Vec::new(),
            restore_from: None,
            rotation: None,
            kind: None,
            skipped: None,
        }
    }
}

impl Plan {
    /// Hosts with something to do.
    pub fn changing(&self) -> impl Iterator<Item = &HostPlan> {
        self.hosts
            .iter()
            .filter(|host| host.status == HostStatus::Change)
    }

    pub fn has_changes(&self) -> bool {
        self.changing().next().is_some()
    }

    pub fn has_errors(&self) -> bool {
        self.hosts
            .iter()
            .any(|host| host.status == HostStatus::Error)
            || self.instance_failed()
    }

    /// The instance could not be asked, or refused a new login: applying
    /// would stop before touching any host.
    pub fn instance_failed(&self) -> bool {
        self.instance.as_ref().is_some_and(|instance| {
            instance.error.is_some()
                || instance
                    .preflight
                    .iter()
                    .any(|login| matches!(login.status, LoginStatus::Refused | LoginStatus::Error))
        })
    }
}
