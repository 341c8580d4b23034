//! Editing a wrapper-override.conf by splicing bytes: a value replaced in
//! place, a commented-out property uncommented in place, new lines
//! appended in the file's line ending, a property commented out (a
//! sensitive one removed with its line). Every other byte stays as it
//! was, and the result is read again and checked before it is handed back.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;

use crate::config_xml::{splice, Action, Change, Shown, Splice};

use super::document::{LineKind, Property, WrapperConf};
use super::{additional_number, is_key, is_sensitive, ADDITIONAL, RESERVED};

/// One requested change to the file.
#[derive(Clone, Copy)]
pub enum Operation<'a> {
    /// The property must be active with this value. `sensitive` marks a
    /// value that must never be shown, whatever its name.
    Set {
        key: &'a str,
        value: &'a str,
        sensitive: bool,
    },
    /// The property must not be active.
    Unset { key: &'a str },
    /// Each of these JVM arguments must be the value of an active
    /// `wrapper.java.additional.N` (any N).
    Arguments { values: &'a [String] },
}

impl fmt::Debug for Operation<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::Set { key, sensitive, .. } => formatter
                .debug_struct("Set")
                .field("key", key)
                .field("value", &"(not shown)")
                .field("sensitive", sensitive)
                .finish(),
            Operation::Unset { key } => formatter.debug_struct("Unset").field("key", key).finish(),
            Operation::Arguments { values } => formatter
                .debug_struct("Arguments")
                .field("count", &values.len())
                .finish(),
        }
    }
}

/// Why an edit cannot be made. Never holds a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("`{key}` is not a property name (letters, digits, `.`, `_` and `-` only)")]
    InvalidKey { key: String },
    #[error("the value for `{key}` {reason}")]
    InvalidValue { key: String, reason: &'static str },
    #[error("`{key}` is asked for twice")]
    Conflict { key: String },
    #[error("`{key}` is in the range ServiceNow reserves for its own lines (wrapper.java.additional.101 to .200) and is not in the file: only a line that is there may be changed")]
    Reserved { key: String },
    #[error("the edited file does not read back as asked: {0}")]
    Verification(String),
}

/// The result of an edit: the changes, warnings, and the new bytes when
/// anything changed (already read again and checked).
pub struct Edited {
    pub changes: Vec<Change>,
    pub warnings: Vec<String>,
    pub bytes: Option<Vec<u8>>,
}

impl fmt::Debug for Edited {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Edited")
            .field("changes", &self.changes)
            .field("warnings", &self.warnings)
            .field("bytes", &self.bytes.as_ref().map(Vec::len))
            .finish()
    }
}

fn check_value(key: &str, value: &str) -> Result<(), EditError> {
    if value.chars().any(char::is_control) {
        return Err(EditError::InvalidValue {
            key: key.to_string(),
            reason: "cannot hold a line break or another control character",
        });
    }
    if value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
        return Err(EditError::InvalidValue {
            key: key.to_string(),
            reason: "cannot start or end with a blank (the wrapper trims them)",
        });
    }
    Ok(())
}

fn check_operations(operations: &[Operation<'_>]) -> Result<(), EditError> {
    let mut seen = BTreeSet::new();
    for operation in operations {
        let key = match operation {
            Operation::Set { key, value, .. } => {
                check_value(key, value)?;
                *key
            }
            Operation::Unset { key } => key,
            Operation::Arguments { values } => {
                for value in *values {
                    check_value(ADDITIONAL, value)?;
                    if value.is_empty() {
                        return Err(EditError::InvalidValue {
                            key: ADDITIONAL.to_string(),
                            reason: "cannot be empty",
                        });
                    }
                }
                ADDITIONAL
            }
        };
        if key != ADDITIONAL && !is_key(key) {
            return Err(EditError::InvalidKey {
                key: key.to_string(),
            });
        }
        if !seen.insert(key) {
            return Err(EditError::Conflict {
                key: key.to_string(),
            });
        }
    }
    Ok(())
}

fn shown(value: Option<&str>, sensitive: bool) -> Shown {
    match value {
        None => Shown::Absent,
        Some(_) if sensitive => Shown::Sensitive,
        Some(value) => Shown::Value(value.to_string()),
    }
}

impl WrapperConf {
    /// Applies `operations`; nothing changes when the file already holds
    /// what was asked.
    pub fn edit(&self, operations: &[Operation<'_>]) -> Result<Edited, EditError> {
        check_operations(operations)?;
        let mut splices = Vec::new();
        let mut appended: Vec<String> = Vec::new();
        let mut changes = Vec::new();
        let mut warnings = Vec::new();
        let next_line = self.lines().len() + 1;
        for operation in operations {
            match *operation {
                Operation::Set {
                    key,
                    value,
                    sensitive,
                } => {
                    let active = self.active(key);
                    if let Some(last) = active.last() {
                        if last.value == value {
                            continue;
                        }
                        let sensitive = sensitive
                            || is_sensitive(key, Some(last.value))
                            || is_sensitive(key, Some(value));
                        if active.len() > 1 {
                            let lines: Vec<String> = active
                                .iter()
                                .map(|property| property.line.number.to_string())
                                .collect();
                            warnings.push(format!(
                                "`{key}` is set on lines {} of {}: the wrapper uses the last one, line {}, which is the one changed",
                                lines.join(", "),
                                super::FILE_NAME,
                                last.line.number
                            ));
                        }
                        splices.push(Splice {
                            range: value_range(last),
                            bytes: value.as_bytes().to_vec(),
                        });
                        changes.push(Change {
                            action: Action::Update,
                            param: key.to_string(),
                            before: shown(Some(last.value), sensitive),
                            after: shown(Some(value), sensitive),
                            sensitive,
                            line: last.line.number,
                        });
                        continue;
                    }
                    let sensitive = sensitive || is_sensitive(key, Some(value));
                    let commented = self
                        .properties()
                        .filter(|property| property.commented && property.key == key)
                        .last();
                    let line = if let Some(commented) = commented {
                        splices.extend(uncomment(&commented, value));
                        commented.line.number
                    } else {
                        if additional_number(key).is_some_and(|number| RESERVED.contains(&number)) {
                            return Err(EditError::Reserved {
                                key: key.to_string(),
                            });
                        }
                        appended.push(format!("{key}={value}"));
                        next_line + appended.len() - 1
                    };
                    changes.push(Change {
                        action: Action::Add,
                        param: key.to_string(),
                        before: Shown::Absent,
                        after: shown(Some(value), sensitive),
                        sensitive,
                        line,
                    });
                }
                Operation::Unset { key } => {
                    let active = self.active(key);
                    let Some(last) = active.last() else { continue };
                    let sensitive = active
                        .iter()
                        .any(|property| is_sensitive(key, Some(property.value)));
                    for property in &active {
                        splices.push(if sensitive {
                            // A secret is not left behind in a comment.
                            Splice {
                                range: property.line.span.start..property.line.end.end,
                                bytes: Vec::new(),
                            }
                        } else {
                            Splice {
                                range: property.line.span.start..property.line.span.start,
                                bytes: b"#".to_vec(),
                            }
                        });
                    }
                    changes.push(Change {
                        action: Action::Remove,
                        param: key.to_string(),
                        before: shown(Some(last.value), sensitive),
                        after: Shown::Absent,
                        sensitive,
                        line: last.line.number,
                    });
                }
                Operation::Arguments { values } => {
                    // Past the numbers in the file and those this edit
                    // sets by name.
                    let named = operations
                        .iter()
                        .filter_map(|operation| match operation {
                            Operation::Set { key, .. } => additional_number(key),
                            _ => None,
                        })
                        .filter(|number| !RESERVED.contains(number))
                        .max()
                        .map_or(0, after);
                    let mut next = self.next_additional().max(named);
                    let mut done: Vec<&str> = Vec::new();
                    // Numbers this edit makes active already (by name, or
                    // a commented line uncommented for another value): a
                    // second line with one of them would hide the first,
                    // or splice the same bytes twice.
                    let mut taken: BTreeSet<&str> = operations
                        .iter()
                        .filter_map(|operation| match operation {
                            Operation::Set { key, .. } | Operation::Unset { key } => Some(*key),
                            Operation::Arguments { .. } => None,
                        })
                        .collect();
                    for value in values {
                        if done.contains(&value.as_str()) {
                            continue;
                        }
                        done.push(value);
                        let numbered = |property: &Property<'_>| {
                            additional_number(property.key).is_some() && property.value == value
                        };
                        // Present: the value the wrapper reads for its
                        // number (not a line a later duplicate hides).
                        if self.properties().any(|property| {
                            !property.commented
                                && numbered(&property)
                                && self.get(property.key) == Some(value.as_str())
                                && !taken.contains(property.key)
                        }) {
                            continue;
                        }
                        let sensitive = is_sensitive(ADDITIONAL, Some(value))
                            || is_sensitive(&format!("{ADDITIONAL}.1"), Some(value));
                        // A commented-out line with this very argument
                        // (ServiceNow's reserved examples) is uncommented.
                        let commented = self
                            .properties()
                            .filter(|property| {
                                property.commented
                                    && numbered(property)
                                    && !taken.contains(property.key)
                            })
                            .last()
                            .filter(|property| self.active(property.key).is_empty());
                        let (key, line) = if let Some(commented) = commented {
                            taken.insert(commented.key);
                            splices.extend(uncomment(&commented, value));
                            (commented.key.to_string(), commented.line.number)
                        } else {
                            let key = format!("{ADDITIONAL}.{next}");
                            next = after(next);
                            appended.push(format!("{key}={value}"));
                            (key, next_line + appended.len() - 1)
                        };
                        changes.push(Change {
                            action: Action::Add,
                            param: key,
                            before: Shown::Absent,
                            after: shown(Some(value), sensitive),
                            sensitive,
                            line,
                        });
                    }
                }
            }
        }
        if !appended.is_empty() {
            let eol = self.line_ending();
            let mut text = String::new();
            if self.missing_final_newline() {
                for line in &appended {
                    text.push_str(eol);
                    text.push_str(line);
                }
            } else {
                for line in &appended {
                    text.push_str(line);
                    text.push_str(eol);
                }
            }
            let end = self.bytes().len();
            splices.push(Splice {
                range: end..end,
                bytes: text.into_bytes(),
            });
        }
        if splices.is_empty() {
            return Ok(Edited {
                changes,
                warnings,
                bytes: None,
            });
        }
        let bytes = splice(self.bytes(), splices);
        verify(&bytes, operations)?;
        Ok(Edited {
            changes,
            warnings,
            bytes: Some(bytes),
        })
    }

    /// The number a new `wrapper.java.additional.N` gets: one past the
    /// highest N in the file (commented-out lines too) outside ServiceNow's
    /// reserved 101–200, never one in that range.
    pub fn next_additional(&self) -> u32 {
        let highest = self
            .properties()
            .filter_map(|property| additional_number(property.key))
            .filter(|number| !RESERVED.contains(number))
            .max()
            .unwrap_or(0);
        after(highest)
    }
}

/// The number after `number`, past the reserved range.
fn after(number: u32) -> u32 {
    let next = number.saturating_add(1);
    if RESERVED.contains(&next) {
        RESERVED.end() + 1
    } else {
        next
    }
}

fn value_range(property: &Property<'_>) -> Range<usize> {
    match &property.line.kind {
        LineKind::Property { value, .. } => value.clone(),
        _ => unreachable!("a property's line is a property line"),
    }
}

/// Splices that make a commented-out property active with `value`: its `#`
/// and the blanks after it go, its value is replaced; indentation and the
/// blanks around `=` stay.
fn uncomment(property: &Property<'_>, value: &str) -> [Splice; 2] {
    let LineKind::Property {
        comment,
        value: range,
        ..
    } = &property.line.kind
    else {
        unreachable!("a property's line is a property line")
    };
    [
        Splice {
            range: comment.clone(),
            bytes: Vec::new(),
        },
        Splice {
            range: range.clone(),
            bytes: value.as_bytes().to_vec(),
        },
    ]
}

fn verify(bytes: &[u8], operations: &[Operation<'_>]) -> Result<(), EditError> {
    let document = WrapperConf::parse(bytes).map_err(EditError::Verification)?;
    for operation in operations {
        let (key, holds) = match operation {
            Operation::Set { key, value, .. } => (*key, document.get(key) == Some(*value)),
            Operation::Unset { key } => (*key, document.get(key).is_none()),
            Operation::Arguments { values } => (
                ADDITIONAL,
                values.iter().all(|value| {
                    document.properties().any(|property| {
                        !property.commented
                            && additional_number(property.key).is_some()
                            && document.get(property.key) == Some(value.as_str())
                    })
                }),
            ),
        };
        if !holds {
            return Err(EditError::Verification(format!(
                "`{key}` does not read back as asked"
            )));
        }
    }
    Ok(())
}
