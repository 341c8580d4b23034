//! Byte-preserving reading and editing of a MID Server's
//! `agent/conf/wrapper-override.conf` (the Tanuki Java Service Wrapper's
//! properties: `key=value` lines, `#` comments, `#include` and `#encoding=`
//! directives).
//!
//! Owns: splitting the file into lines (any mix of LF and CRLF, a BOM, a
//! missing final newline), telling active, commented-out and directive
//! lines apart, and edits that splice only what they must: a value replaced
//! in place, a commented-out property uncommented in place, a new line
//! appended in the file's line ending, a property commented out to unset
//! it; `wrapper.java.additional.N` numbering (never renumbered; new numbers
//! after the highest one outside ServiceNow's reserved 101–200). Every
//! result is read again and checked before it is handed back.
//! Must not: do I/O, know about hosts or playbooks, or print. Values of
//! sensitive properties never appear in its errors or `Debug` output.

mod document;
mod edit;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use document::{Line, LineKind, WrapperConf, MAX_WRAPPER_BYTES};
pub use edit::{EditError, Edited, Operation};

/// The file's name, in `conf/` of the agent folder.
pub const FILE_NAME: &str = "wrapper-override.conf";

/// The prefix of the numbered JVM arguments.
pub const ADDITIONAL: &str = "wrapper.java.additional";

/// `wrapper.java.additional.N` numbers ServiceNow keeps for its own lines
/// ("Parameters 101 through 200 are reserved for ServiceNow out-of-the-box
/// parameters"): changed only by editing or uncommenting the line that is
/// there, never taken for a new argument.
pub const RESERVED: std::ops::RangeInclusive<u32> = 101..=200;

/// Whether a property's value must never be shown: its name says password
/// (`wrapper.ntservice.password`, as config.xml's names rule), or it is a
/// JVM argument `-Dname=value` whose name says password
/// (`-Djavax.net.ssl.trustStorePassword=…`, also quoted, as the wrapper
/// takes an argument with blanks).
pub fn is_sensitive(key: &str, value: Option<&str>) -> bool {
    if crate::config_xml::names::is_password(key) {
        return true;
    }
    additional_number(key).is_some()
        && value.is_some_and(|value| {
            value
                .trim_start_matches(['"', '\''])
                .strip_prefix("-D")
                .and_then(|rest| rest.split_once('='))
                .is_some_and(|(name, _)| crate::config_xml::names::is_password(name))
        })
}

/// N of `wrapper.java.additional.N`, when the key is one.
pub fn additional_number(key: &str) -> Option<u32> {
    let number = key.strip_prefix(ADDITIONAL)?.strip_prefix('.')?;
    if number.is_empty() || !number.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    number.parse().ok()
}

/// Whether `key` can be a property name midfleet reads and writes:
/// letters, digits, `.`, `_` and `-`, not empty.
pub fn is_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
}
