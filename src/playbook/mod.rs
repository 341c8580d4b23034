//! The playbook: which hosts, the parameters they must hold or not hold,
//! and how the change rolls out.
//!
//! Owns: reading and checking a playbook file (every problem, with its
//! line and column), and the rollout arithmetic. Must not: read the
//! inventory or resolve secrets.

pub mod desired;
mod instance;
mod reader;
mod rollout;
mod rotate;

pub use instance::{Instance, InstanceUser, RetireOldUser, DEFAULT_INSTANCE_TIMEOUT};
use reader::Reader;
pub use rollout::{Amount, Rollout};
pub use rotate::{PasswordPolicy, Rotate, Store as RotateStore, SYMBOLS as PASSWORD_SYMBOLS};

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config_xml::names;
use crate::diagnostic::{did_you_mean, Diagnostic, Diagnostics, Origin};
use crate::instance::client::{is_loopback_authority, PLAIN_HTTP_REFUSED};
use crate::secret::SecretRef;
use crate::template::Templates;
use crate::yaml::{self, Node, Scalar};

const KEYS: [&str; 10] = [
    "name", "hosts", "set", "unset", "restart", "health", "rollout", "instance", "rotate",
    "wrapper",
];
const DEFAULT_HEALTH_TIMEOUT: u64 = 300;

/// A checked playbook.
#[derive(Debug, Clone)]
pub struct Playbook {
    pub path: PathBuf,
    pub name: Option<String>,
    pub hosts: String,
    pub hosts_origin: Origin,
    pub set: Vec<SetEntry>,
    pub unset: Vec<UnsetEntry>,
    pub restart: Restart,
    pub health: Health,
    pub rollout: Rollout,
    /// The `instance:` section (`docs/instance.md`).
    pub instance: Option<Instance>,
    /// The `rotate:` section (`docs/rotation.md`).
    pub rotate: Option<Rotate>,
    /// The `wrapper:` section: properties of `conf/wrapper-override.conf`
    /// (`docs/wrapper.md`).
    pub wrapper: Vec<WrapperEntry>,
}

/// `key: value` under `wrapper:`.
#[derive(Debug, Clone)]
pub struct WrapperEntry {
    pub key: String,
    pub value: WrapperValue,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WrapperValue {
    /// A value, as under `set:` (a template or a secret reference).
    Set(SetValue),
    /// `key: null` (or `~`): the property must not be active (commented out).
    Unset,
    /// `wrapper.java.additional: [ARG, …]`: each JVM argument (a template)
    /// must be on some `wrapper.java.additional.N` line.
    Arguments(Vec<String>),
}

/// `name: value` under `set:`.
#[derive(Debug, Clone)]
pub struct SetEntry {
    pub name: String,
    pub value: SetValue,
    pub origin: Origin,
}

/// `{ secret: "var:NAME" }`: the host's inventory variable NAME (a
/// `!vault` value, a vaulted file's, or a plain one), per host.
pub const HOST_VARIABLE_SCHEME: &str = "var:";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetValue {
    /// A minijinja template over the host's variables.
    Template(String),
    /// `{ secret: "REF" }`; `env:` names and `file:` paths may be templates;
    /// `var:NAME` is the host's variable ([`HOST_VARIABLE_SCHEME`]).
    Secret(String),
}

#[derive(Debug, Clone)]
pub struct UnsetEntry {
    pub name: String,
    pub origin: Origin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    OnChange,
    Always,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Health {
    /// Seconds to wait for the MID to log in after a start.
    pub timeout: u64,
}

impl Playbook {
    /// Reads and checks the playbook at `path`. Problems are collected, and
    /// what could be read is returned even when there are errors (so that
    /// `check` can go on to find more): a caller that acts on the playbook
    /// must refuse it when the diagnostics hold an error.
    pub fn load(path: &Path) -> (Option<Playbook>, Diagnostics) {
        match crate::source_file::read(path) {
            Ok(text) => Playbook::from_text(path, &text),
            Err(diagnostic) => {
                let mut diagnostics = Diagnostics::new();
                diagnostics.push(diagnostic);
                (None, diagnostics)
            }
        }
    }

    /// Checks a playbook's text as [`Playbook::load`] checks the file's;
    /// `path` names it in diagnostics. For tests and fuzzing.
    pub fn from_text(path: &Path, text: &str) -> (Option<Playbook>, Diagnostics) {
        let mut diagnostics = Diagnostics::new();
        let root = match yaml::parse(text) {
            Ok(Some(root)) => root,
            Ok(None) => {
                diagnostics.push(Diagnostic::error(
                    Some(Origin::file(path)),
                    "the playbook is empty",
                ));
                return (None, diagnostics);
            }
            Err(error) => {
                diagnostics.push(error.diagnostic(path));
                return (None, diagnostics);
            }
        };
        let mut reader = Reader {
            path,
            diagnostics: &mut diagnostics,
        };
        let playbook = reader.playbook(&root);
        (playbook, diagnostics)
    }
}

#[cfg(test)]
mod tests;
