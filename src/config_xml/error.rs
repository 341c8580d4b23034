//! Why a config.xml could not be read or edited. Every variant that comes
//! from the file carries a [`Location`]; none carries a parameter's value.

use std::fmt;

use super::escape::InvalidCharacter;

/// A 1-based line and column (in characters) in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` of `bytes` (a UTF-8 BOM does not count).
    pub fn of_offset(bytes: &[u8], offset: usize) -> Location {
        let offset = offset.min(bytes.len());
        let before = &bytes[..offset];
        let line_start = before
            .iter()
            .rposition(|byte| *byte == b'\n')
            .map_or(0, |newline| newline + 1);
        let line = 1 + before.iter().filter(|byte| **byte == b'\n').count();
        let mut column_bytes = &before[line_start..];
        if line == 1 {
            column_bytes = column_bytes
                .strip_prefix(super::BOM)
                .unwrap_or(column_bytes);
        }
        // Count characters, not bytes: continuation bytes do not start one.
        let column = 1 + column_bytes
            .iter()
            .filter(|byte| (**byte & 0xC0) != 0x80)
            .count();
        Location { line, column }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}", self.line, self.column)
    }
}

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
    #[error("<parameter> without a `name` attribute")]
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
