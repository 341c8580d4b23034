//! Where a problem is and what to do about it: the one shape every input
//! error takes (`error: FILE:LINE:COL: what` + `hint: …`), so that `check`
//! can collect them all instead of stopping at the first.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// A 1-based line and column (in characters) in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` of `bytes` (a leading UTF-8 BOM does
    /// not count as a column).
    pub fn of_offset(bytes: &[u8], offset: usize) -> Location {
        const BOM: &[u8] = b"\xEF\xBB\xBF";
        let offset = offset.min(bytes.len());
        let before = &bytes[..offset];
        let line_start = before
            .iter()
            .rposition(|byte| *byte == b'\n')
            .map_or(0, |newline| newline + 1);
        let line = 1 + before.iter().filter(|byte| **byte == b'\n').count();
        let mut column_bytes = &before[line_start..];
        if line == 1 {
            column_bytes = column_bytes.strip_prefix(BOM).unwrap_or(column_bytes);
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

/// A place in a file: what an error points at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Origin {
    pub file: PathBuf,
    #[serde(flatten)]
    pub at: Option<Location>,
}

impl Origin {
    pub fn new(file: &Path, at: Location) -> Origin {
        Origin {
            file: file.to_path_buf(),
            at: Some(at),
        }
    }

    pub fn file(file: &Path) -> Origin {
        Origin {
            file: file.to_path_buf(),
            at: None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some(at) => write!(formatter, "{}:{at}", self.file.display()),
            None => write!(formatter, "{}", self.file.display()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One problem found in the operator's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// The hosts it concerns, when it concerns some (the same problem on
    /// many hosts is one diagnostic).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(origin: Option<Origin>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            origin,
            hosts: Vec::new(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn warning(origin: Option<Origin>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(origin, message)
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    pub fn for_host(mut self, host: &str) -> Diagnostic {
        self.hosts = vec![host.to_string()];
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// `FILE:LINE:COL: host H: message` (the severity and hint are the
    /// printer's business).
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(origin) = &self.origin {
            write!(formatter, "{origin}: ")?;
        }
        const NAMED: usize = 3;
        match self.hosts.as_slice() {
            [] => {}
            [host] => write!(formatter, "host {host}: ")?,
            hosts if hosts.len() <= NAMED => write!(formatter, "hosts {}: ", hosts.join(", "))?,
            hosts => write!(
                formatter,
                "hosts {} and {} more: ",
                hosts[..NAMED].join(", "),
                hosts.len() - NAMED
            )?,
        }
        formatter.write_str(&self.message)
    }
}

/// Problems collected while reading input; errors and warnings together.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    pub fn new() -> Diagnostics {
        Diagnostics::default()
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    pub fn last_mut(&mut self) -> Option<&mut Diagnostic> {
        self.0.last_mut()
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    /// The errors as [`Diagnostics::merged`] shows them: one problem
    /// reported for several hosts counts once.
    pub fn error_count(&self) -> usize {
        let mut seen: Vec<(&Option<Origin>, &String, &Option<String>)> = Vec::new();
        for diagnostic in self.0.iter().filter(|diagnostic| diagnostic.is_error()) {
            let key = (&diagnostic.origin, &diagnostic.message, &diagnostic.hint);
            if !seen.contains(&key) {
                seen.push(key);
            }
        }
        seen.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.0
    }

    /// The same problem found on several hosts becomes one diagnostic
    /// naming them all; exact repeats are dropped. Order of first
    /// appearance is kept.
    pub fn merged(self) -> Vec<Diagnostic> {
        let mut merged: Vec<Diagnostic> = Vec::new();
        for diagnostic in self.0 {
            let same = merged.iter_mut().find(|existing| {
                (
                    existing.severity,
                    &existing.origin,
                    &existing.message,
                    &existing.hint,
                ) == (
                    diagnostic.severity,
                    &diagnostic.origin,
                    &diagnostic.message,
                    &diagnostic.hint,
                )
            });
            match same {
                Some(existing) => {
                    for host in diagnostic.hosts {
                        if !existing.hosts.contains(&host) {
                            existing.hosts.push(host);
                        }
                    }
                }
                None => merged.push(diagnostic),
            }
        }
        merged
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The closest of `candidates` to `word`, when one is close enough to be a
/// likely typo: the "did you mean" of every unknown-name error.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(word, candidate), candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|left, right| left.0.total_cmp(&right.0))
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let names = ["emea", "apac", "mid-emea-01", "amer"];
        assert_eq!(did_you_mean("emae", names), Some("emea"));
        assert_eq!(did_you_mean("mid-emea-1", names), Some("mid-emea-01"));
        assert_eq!(did_you_mean("zzz", names), None);
    }

    #[test]
    fn locations_count_characters_not_bytes() {
        let text = "\u{feff}ab\nü€x";
        assert_eq!(
            Location::of_offset(text.as_bytes(), 3),
            Location { line: 1, column: 1 }
        );
        assert_eq!(
            Location::of_offset(text.as_bytes(), text.len() - 1),
            Location { line: 2, column: 3 }
        );
    }

    #[test]
    fn one_problem_of_several_hosts_counts_once_as_it_is_shown() {
        let origin = Origin::new(Path::new("inventory.ini"), Location { line: 2, column: 4 });
        let mut diagnostics = Diagnostics::new();
        for host in ["a", "b"] {
            diagnostics.push(Diagnostic::error(Some(origin.clone()), "bad value").for_host(host));
        }
        diagnostics.push(Diagnostic::error(Some(origin), "another"));
        diagnostics.push(Diagnostic::warning(None, "only a warning"));
        assert_eq!(diagnostics.error_count(), 2);
        assert_eq!(
            diagnostics.merged().iter().filter(|d| d.is_error()).count(),
            2
        );
    }
}
