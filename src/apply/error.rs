//! Why the files of one host's transaction (the edited config.xml, the
//! state record, the parameters script) could not be made, before anything
//! was staged on the host.
//!
//! Owns: [`FilesError`], whose variants name the config.xml path or the
//! parameter. Must not: hold a secret's value, nor its length.

use crate::config_xml::{EditError, ReadError};
use crate::secret::SecretRef;
use crate::state::StateError;

/// Why a host's transaction files could not be made; nothing was touched.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The config.xml read from the host does not parse.
    #[error("{config}: {source}")]
    Read { config: String, source: ReadError },
    #[error("the secret {reference} for `{param}` is not resolved")]
    Unresolved { reference: SecretRef, param: String },
    /// A plan file never holds literal sensitive values.
    #[error("`{param}` has a literal value in the playbook, or a host's variable (`var:`), which a plan file never holds: apply the playbook itself, or use an env:, file:, command: or prompt: reference")]
    Literal { param: String },
    #[error("{config}: {source}")]
    Edit { config: String, source: EditError },
    /// conf/wrapper-override.conf cannot be read or edited as planned.
    #[error("{path}: {reason}")]
    Wrapper { path: String, reason: String },
    #[error(transparent)]
    Hash(#[from] StateError),
    /// `MIDFLEET_NOW` (a test hook) is not a time.
    #[error("{0}")]
    Clock(String),
}
