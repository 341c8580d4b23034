//! Editing a config.xml by splicing bytes: a value replaced inside its
//! quotes, a parameter added as a new line before `</parameters>`, a
//! parameter removed with its line. Every other byte stays as it was, and the
//! result is re-read strictly before it is handed back.

use std::fmt;
use std::ops::Range;

use serde::Serialize;

use super::document::{leading_indent, line_start, ConfigXml, Parameter};
use super::error::EditError;
use super::escape::{check_xml_chars, escape_attribute};
use super::names;

/// One requested change to a file.
#[derive(Clone, Copy)]
pub enum Operation<'a> {
    /// The parameter must exist with this value. `sensitive` marks a value
    /// that must never be shown, whatever the parameter's name.
    Set {
        name: &'a str,
        value: &'a str,
        sensitive: bool,
    },
    /// The parameter must be absent.
    Unset { name: &'a str },
}

impl Operation<'_> {
    fn name(&self) -> &str {
        match self {
            Operation::Set { name, .. } | Operation::Unset { name } => name,
        }
    }
}

impl fmt::Debug for Operation<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::Set {
                name, sensitive, ..
            } => formatter
                .debug_struct("Set")
                .field("name", name)
                .field("value", &"(not shown)")
                .field("sensitive", sensitive)
                .finish(),
            Operation::Unset { name } => {
                formatter.debug_struct("Unset").field("name", name).finish()
            }
        }
    }
}

/// What an edit does to one parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Update,
    Add,
    Remove,
}

impl Action {
    /// Terraform's symbol for the action.
    pub fn symbol(self) -> char {
        match self {
            Action::Update => '~',
            Action::Add => '+',
            Action::Remove => '-',
        }
    }
}

/// A value as it may be shown: sensitive values are never carried.
#[derive(Clone, PartialEq, Eq)]
pub enum Shown {
    Absent,
    Sensitive,
    Value(String),
}

impl Shown {
    fn of(value: Option<&str>, sensitive: bool) -> Shown {
        match value {
            None => Shown::Absent,
            Some(_) if sensitive => Shown::Sensitive,
            Some(value) => Shown::Value(value.to_string()),
        }
    }
}

impl fmt::Debug for Shown {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, formatter)
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shown::Absent => formatter.write_str("(absent)"),
            Shown::Sensitive => formatter.write_str("(sensitive)"),
            Shown::Value(value) => write!(formatter, "{value:?}"),
        }
    }
}

impl Serialize for Shown {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Shown::Value(value) => serializer.serialize_str(value),
            Shown::Absent | Shown::Sensitive => serializer.serialize_none(),
        }
    }
}

/// One change an edit made, safe to print and serialise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub action: Action,
    /// The parameter as spelt in the file (or as added).
    pub param: String,
    pub before: Shown,
    pub after: Shown,
    pub sensitive: bool,
    /// 1-based line of the parameter in the original file; for an added
    /// parameter, the line of `</parameters>`.
    pub line: usize,
}

/// The result of an edit: the changes, and the new document when there are
/// any (already re-read and verified).
#[derive(Debug)]
pub struct Edited {
    pub changes: Vec<Change>,
    pub document: Option<ConfigXml>,
}

/// Bytes to put in place of `range` of the original (empty to delete,
/// an empty range to insert).
pub(crate) struct Splice {
    pub(crate) range: Range<usize>,
    pub(crate) bytes: Vec<u8>,
}

impl ConfigXml {
    /// Applies `operations` and returns the changes and the new document.
    /// Nothing changes when the file already holds what was asked; values
    /// are compared as an XML parser reads them. Refuses values XML cannot
    /// hold, and two operations on one parameter (counting aliases).
    pub fn edit(&self, operations: &[Operation<'_>]) -> Result<Edited, EditError> {
        check_operations(operations)?;
        let mut splices = Vec::new();
        let mut changes = Vec::new();
        for operation in operations {
            let existing = self.get(operation.name());
            match (*operation, existing) {
                (
                    Operation::Set {
                        value, sensitive, ..
                    },
                    Some(parameter),
                ) => {
                    if parameter.value() == value {
                        continue;
                    }
                    let sensitive = sensitive || parameter.is_sensitive();
                    splices.push(Splice {
                        range: parameter.value_span(),
                        bytes: escape_attribute(value, parameter.quote()).into_bytes(),
                    });
                    changes.push(Change {
                        action: Action::Update,
                        param: parameter.name().to_string(),
                        before: Shown::of(Some(parameter.value()), sensitive),
                        after: Shown::of(Some(value), sensitive),
                        sensitive,
                        line: parameter.location().line,
                    });
                }
                (
                    Operation::Set {
                        name,
                        value,
                        sensitive,
                    },
                    None,
                ) => {
                    let (splice, change) = self.addition(name, value, sensitive)?;
                    splices.push(splice);
                    changes.push(change);
                }
                (Operation::Unset { .. }, Some(parameter)) => {
                    splices.push(Splice {
                        range: self.removal_range(parameter),
                        bytes: Vec::new(),
                    });
                    let sensitive = parameter.is_sensitive();
                    changes.push(Change {
                        action: Action::Remove,
                        param: parameter.name().to_string(),
                        before: Shown::of(Some(parameter.value()), sensitive),
                        after: Shown::Absent,
                        sensitive,
                        line: parameter.location().line,
                    });
                }
                (Operation::Unset { .. }, None) => {}
            }
        }
        if splices.is_empty() {
            return Ok(Edited {
                changes,
                document: None,
            });
        }
        let bytes = splice(self.bytes(), splices);
        let document = verify(bytes, operations)?;
        Ok(Edited {
            changes,
            document: Some(document),
        })
    }

    fn addition(
        &self,
        name: &str,
        value: &str,
        sensitive: bool,
    ) -> Result<(Splice, Change), EditError> {
        let layout = self.layout();
        let close_tag = layout.close_tag.ok_or_else(|| EditError::EmptyRoot {
            name: name.to_string(),
        })?;
        // Follow the file's spelling of the credential pair.
        let sibling = self
            .parameters()
            .iter()
            .find(|parameter| {
                matches!(
                    names::canonical(parameter.name()),
                    names::USERNAME | names::PASSWORD
                )
            })
            .map(Parameter::name);
        let spelled = sibling.map_or(name, |sibling| names::spelled_like(name, sibling));
        let password = names::is_password(spelled);
        let quote = layout.quote as char;
        let secure = if password {
            format!(" secure={quote}true{quote}")
        } else {
            String::new()
        };
        let element = format!(
            "<parameter name={quote}{}{quote}{secure} value={quote}{}{quote}{}",
            escape_attribute(spelled, layout.quote),
            escape_attribute(value, layout.quote),
            layout.empty_element_end,
        );
        let bytes = self.bytes();
        let eol = layout.line_ending.as_str();
        let splice = match leading_indent(bytes, close_tag) {
            // `</parameters>` starts its line: add a whole line before it.
            Some(_) => Splice {
                range: line_start(bytes, close_tag)..line_start(bytes, close_tag),
                bytes: format!("{}{element}{eol}", layout.indent).into_bytes(),
            },
            // The file has no line breaks inside the root: stay on the line.
            None if !bytes[layout.root_start..close_tag].contains(&b'\n') => Splice {
                range: close_tag..close_tag,
                bytes: element.into_bytes(),
            },
            None => Splice {
                range: close_tag..close_tag,
                bytes: format!("{eol}{}{element}", layout.indent).into_bytes(),
            },
        };
        let sensitive = sensitive || password;
        let change = Change {
            action: Action::Add,
            param: spelled.to_string(),
            before: Shown::Absent,
            after: Shown::of(Some(value), sensitive),
            sensitive,
            line: super::error::Location::of_offset(bytes, close_tag).line,
        };
        Ok((splice, change))
    }

    /// The element's whole line when nothing else stands on it, else just
    /// the element.
    fn removal_range(&self, parameter: &Parameter) -> Range<usize> {
        let bytes = self.bytes();
        let element = parameter.element_span();
        let rest_of_line = &bytes[element.end..];
        let trailing = rest_of_line
            .iter()
            .take_while(|byte| **byte == b' ' || **byte == b'\t')
            .count();
        let after = element.end + trailing;
        let line_end = match bytes.get(after) {
            Some(b'\n') => Some(after + 1),
            Some(b'\r') if bytes.get(after + 1) == Some(&b'\n') => Some(after + 2),
            None => Some(after),
            _ => None,
        };
        match (leading_indent(bytes, element.start), line_end) {
            (Some(_), Some(line_end)) => line_start(bytes, element.start)..line_end,
            _ => element,
        }
    }
}

fn check_operations(operations: &[Operation<'_>]) -> Result<(), EditError> {
    for (index, operation) in operations.iter().enumerate() {
        let name = operation.name();
        if name.is_empty() {
            return Err(EditError::InvalidName {
                name: name.to_string(),
                reason: "a parameter name cannot be empty",
            });
        }
        if check_xml_chars(name).is_err() || name.chars().any(char::is_control) {
            return Err(EditError::InvalidName {
                name: name.to_string(),
                reason:
                    "a parameter name cannot hold control characters or characters XML cannot store",
            });
        }
        if let Operation::Set { value, .. } = operation {
            check_xml_chars(value).map_err(|reason| EditError::InvalidValue {
                name: name.to_string(),
                reason,
            })?;
        }
        if let Some(earlier) = operations[..index]
            .iter()
            .find(|earlier| names::same_parameter(earlier.name(), name))
        {
            return Err(EditError::Conflict {
                name: names::canonical(name).to_string(),
                first: earlier.name().to_string(),
                second: name.to_string(),
            });
        }
    }
    Ok(())
}

/// `original` with `splices` (not overlapping) applied: every other byte
/// as it was. config.xml's and wrapper-override.conf's edits both write so.
pub(crate) fn splice(original: &[u8], mut splices: Vec<Splice>) -> Vec<u8> {
    // Stable sort: additions at one point keep the order they were asked in.
    splices.sort_by_key(|splice| (splice.range.start, splice.range.end));
    let added: usize = splices.iter().map(|splice| splice.bytes.len()).sum();
    let mut bytes = Vec::with_capacity(original.len() + added);
    let mut cursor = 0;
    for splice in &splices {
        bytes.extend_from_slice(&original[cursor..splice.range.start]);
        bytes.extend_from_slice(&splice.bytes);
        cursor = splice.range.end;
    }
    bytes.extend_from_slice(&original[cursor..]);
    bytes
}

/// Re-reads the result strictly and checks it holds what was asked.
fn verify(bytes: Vec<u8>, operations: &[Operation<'_>]) -> Result<ConfigXml, EditError> {
    let bytes = zeroize::Zeroizing::new(bytes);
    let document = ConfigXml::parse(&bytes).map_err(|error| {
        EditError::Verification(match error {
            // Its size would tell how long the values written are.
            super::ReadError::TooLarge { limit, .. } => {
                format!("the edited file would be larger than the {limit} bytes accepted")
            }
            error => error.to_string(),
        })
    })?;
    drop(bytes);
    for operation in operations {
        let found = document.get(operation.name());
        let holds = match operation {
            Operation::Set { value, .. } => {
                found.is_some_and(|parameter| parameter.value() == *value)
            }
            Operation::Unset { .. } => found.is_none(),
        };
        if !holds {
            return Err(EditError::Verification(format!(
                "`{}` does not read back as asked",
                operation.name()
            )));
        }
    }
    Ok(document)
}
