//! The one error a workflow returns: what went wrong, whether it was the
//! operator's input (nothing was touched) or something else, and what to
//! do. The CLI turns the kind into an exit code.
//!
//! Must not: print, or choose an exit code.

/// Why a workflow stopped.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// Bad usage, inventory, playbook, plan file or secret: nothing was
    /// touched.
    #[error("{message}")]
    Input {
        message: String,
        hint: Option<String>,
    },
    /// Something failed on the way (a host, the instance, a file).
    #[error("{message}")]
    Failed {
        message: String,
        hint: Option<String>,
    },
}

impl OpsError {
    /// Bad input: nothing was touched.
    pub fn input(message: impl Into<String>) -> OpsError {
        OpsError::Input {
            message: message.into(),
            hint: None,
        }
    }

    /// Something failed.
    pub fn failed(message: impl Into<String>) -> OpsError {
        OpsError::Failed {
            message: message.into(),
            hint: None,
        }
    }

    /// The same error, with what to do about it.
    pub fn with_hint(self, hint: impl Into<String>) -> OpsError {
        self.with_optional_hint(Some(hint))
    }

    /// [`OpsError::with_hint`] when there is one.
    pub fn with_optional_hint(mut self, new_hint: Option<impl Into<String>>) -> OpsError {
        if let Some(new_hint) = new_hint {
            match &mut self {
                OpsError::Input { hint, .. } | OpsError::Failed { hint, .. } => {
                    *hint = Some(new_hint.into())
                }
            }
        }
        self
    }

    /// What to do, when known.
    pub fn hint(&self) -> Option<&str> {
        match self {
            OpsError::Input { hint, .. } | OpsError::Failed { hint, .. } => hint.as_deref(),
        }
    }
}
