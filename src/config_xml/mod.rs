//! Byte-preserving reading and editing of a MID Server's `agent/config.xml`.
//!
//! Owns: tokenising with quick-xml (comments, CDATA and processing
//! instructions are skipped, so commented-out parameters never match), the
//! strict well-formedness check every input and every result passes,
//! splicing edits into the original bytes, escaping, and the
//! `glide.glidesoap.*` aliases. Must not: do I/O, know about hosts or
//! playbooks, or print. Values of sensitive parameters never appear in its
//! errors or `Debug` output.

mod document;
pub mod documented;
mod edit;
mod error;
mod escape;
pub mod names;
mod secret_form;

pub use document::{ConfigXml, Layout, LineEnding, Parameter, MAX_CONFIG_BYTES};
pub(crate) use edit::{splice, Splice};
pub use edit::{Action, Change, Edited, Operation, Shown};
pub use error::{EditError, Location, ReadError};
pub use escape::{check_xml_chars, escape_attribute, unescape_attribute, InvalidCharacter};
pub use secret_form::SecretForm;

/// The UTF-8 byte order mark, which files saved by Windows tools start with.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
