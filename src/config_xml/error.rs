//! Why a config.xml could not be read or edited. Every variant that comes
//! from the file carries a [`Location`]; none carries a parameter's value.

pub use crate::diagnostic::Location;

use super::escape::InvalidCharacter;

/// Why a file is not a config.xml midfleet will work on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("the file is {size} bytes; a MID Server config.xml is refused past {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("the file is not UTF-8 (invalid byte sequence)")]
    NotUtf8 { at: Location },
    #[error("malformed XML: {message}")]
    Malformed { message: String, at: Location },
    #[error(
        "a DOCTYPE is not allowed: no MID Server writes one, and its entity declarations could expand"
    )]
    DocumentType { at: Location },
    #[error(
        "the root element is <{found}>, not <parameters>: this is not a MID Server config.xml"
    )]
    WrongRoot { found: String, at: Location },
    #[error("<parameter> without a `name` attribute (or with an empty one)")]
    MissingName { at: Location },
    #[error("parameter `{name}` has no `value` attribute")]
    MissingValue { name: String, at: Location },
    #[error(
        "parameter `{name}` appears twice: on line {first_line} (as `{first_spelling}`) and here"
    )]
    Duplicate {
        name: String,
        first_spelling: String,
        first_line: usize,
        at: Location,
    },
}

impl ReadError {
    /// Where in the file the problem is, when it is at one place.
    pub fn location(&self) -> Option<Location> {
        match self {
            ReadError::TooLarge { .. } => None,
            ReadError::NotUtf8 { at }
            | ReadError::Malformed { at, .. }
            | ReadError::DocumentType { at }
            | ReadError::WrongRoot { at, .. }
            | ReadError::MissingName { at }
            | ReadError::MissingValue { at, .. }
            | ReadError::Duplicate { at, .. } => Some(*at),
        }
    }
}

/// Why an edit was refused. Nothing is written when an edit fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("the value for `{name}` cannot be written: {reason}")]
    InvalidValue {
        name: String,
        reason: InvalidCharacter,
    },
    #[error("invalid parameter name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("`{name}` is edited twice in one request (`{first}` and `{second}`)")]
    Conflict {
        name: String,
        first: String,
        second: String,
    },
    #[error("cannot add `{name}`: the root is an empty <parameters/> element")]
    EmptyRoot { name: String },
    #[error("internal error: the edited file did not verify ({0}); nothing was written")]
    Verification(String),
}
