//! Exit codes (docs/SPEC.md) and the one error type the CLI reports.

use std::fmt;
use std::process::ExitCode;

/// What a command's exit code says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success: nothing to do, or everything done.
    Success = 0,
    /// Something failed.
    Failed = 1,
    /// Changes pending (`plan --detailed-exitcode`, `edit --check`).
    Pending = 2,
    /// Bad usage, inventory or playbook: nothing was touched.
    Usage = 3,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// An error as the operator sees it: what happened (with file, line and
/// column where there are some), and what to do.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
    pub hint: Option<String>,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Usage,
            message: message.into(),
            hint: None,
        }
    }

    pub fn failed(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Failed,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_optional_hint(self, hint: Option<impl Into<String>>) -> Failure {
        match hint {
            Some(hint) => self.with_hint(hint),
            None => self,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.message)
    }
}

/// A workflow's error as the operator sees it: bad input exits 3, any
/// other failure 1.
impl From<crate::ops::OpsError> for Failure {
    fn from(error: crate::ops::OpsError) -> Failure {
        let exit = match error {
            crate::ops::OpsError::Input { .. } => Exit::Usage,
            crate::ops::OpsError::Failed { .. } => Exit::Failed,
        };
        Failure {
            exit,
            message: error.to_string(),
            hint: error.hint().map(str::to_string),
        }
    }
}
