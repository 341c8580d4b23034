//! Reading a wrapper-override.conf into lines, every byte kept.

use std::fmt;
use std::ops::Range;

use super::is_key;

/// The largest file midfleet reads (the facts read stops past it). A MID's
/// wrapper-override.conf is a few kilobytes.
pub const MAX_WRAPPER_BYTES: usize = 1024 * 1024;

/// What one line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineKind {
    /// Only whitespace.
    Blank,
    /// `#…` that is neither a directive nor a commented-out property, or a
    /// line that is not `key=value`.
    Other,
    /// `#include …` (also `#include.required`, `#include.debug`) or
    /// `#encoding=…`: the wrapper acts on them; never uncommented, never
    /// taken for a property.
    Directive,
    /// `key=value`, active (`commented` false) or behind a `#`
    /// (`#key=value`, `# key = value`).
    Property {
        key: Range<usize>,
        value: Range<usize>,
        /// The `#` and the blanks after it (empty when active).
        comment: Range<usize>,
        commented: bool,
    },
}

/// One line: its bytes without the line break, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Content, without the line break (byte offsets into the file).
    pub span: Range<usize>,
    /// The line break after it (`\n`, `\r\n`, or empty on the last line).
    pub end: Range<usize>,
    pub kind: LineKind,
    /// 1-based.
    pub number: usize,
}

/// A parsed wrapper-override.conf: the original bytes and its lines.
#[derive(Clone, PartialEq, Eq)]
pub struct WrapperConf {
    bytes: Vec<u8>,
    lines: Vec<Line>,
    /// Where the first line starts (after a BOM).
    body: usize,
}

impl fmt::Debug for WrapperConf {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("WrapperConf")
            .field("bytes", &self.bytes.len())
            .field("lines", &self.lines.len())
            .finish()
    }
}

/// A property as found: its key and value (trimmed, as the wrapper reads
/// them), where it is, and whether it is commented out.
#[derive(Debug, Clone, Copy)]
pub struct Property<'a> {
    pub key: &'a str,
    pub value: &'a str,
    pub line: &'a Line,
    pub commented: bool,
}

impl WrapperConf {
    /// Reads `bytes`. Never fails on content (a line that is not a property
    /// is kept as it is); refuses a file that is not UTF-8 or too large.
    pub fn parse(bytes: &[u8]) -> Result<WrapperConf, String> {
        if bytes.len() > MAX_WRAPPER_BYTES {
            return Err(format!(
                "larger than the {MAX_WRAPPER_BYTES} bytes midfleet reads"
            ));
        }
        if let Err(error) = std::str::from_utf8(bytes) {
            let line = bytes[..error.valid_up_to()]
                .iter()
                .filter(|byte| **byte == b'\n')
                .count()
                + 1;
            return Err(format!("line {line}: not UTF-8"));
        }
        let body = if bytes.starts_with(crate::config_xml::BOM) {
            crate::config_xml::BOM.len()
        } else {
            0
        };
        let mut lines = Vec::new();
        let mut start = body;
        while start < bytes.len() {
            let newline = bytes[start..]
                .iter()
                .position(|byte| *byte == b'\n')
                .map(|at| start + at);
            let (content_end, end) = match newline {
                Some(at) if at > start && bytes[at - 1] == b'\r' => (at - 1, at - 1..at + 1),
                Some(at) => (at, at..at + 1),
                None => (bytes.len(), bytes.len()..bytes.len()),
            };
            let span = start..content_end;
            let kind = classify(bytes, span.clone());
            lines.push(Line {
                span,
                end: end.clone(),
                kind,
                number: lines.len() + 1,
            });
            start = end.end;
        }
        Ok(WrapperConf {
            bytes: bytes.to_vec(),
            lines,
            body,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// Where the first line starts (after a BOM).
    pub fn body_start(&self) -> usize {
        self.body
    }

    fn text(&self, range: &Range<usize>) -> &str {
        // Checked UTF-8 as a whole in `parse`; ranges end on ASCII bytes.
        std::str::from_utf8(&self.bytes[range.clone()]).unwrap_or_default()
    }

    /// Every property line, active and commented out, in file order.
    pub fn properties(&self) -> impl Iterator<Item = Property<'_>> {
        self.lines.iter().filter_map(move |line| match &line.kind {
            LineKind::Property {
                key,
                value,
                commented,
                ..
            } => Some(Property {
                key: self.text(key),
                value: self.text(value),
                line,
                commented: *commented,
            }),
            _ => None,
        })
    }

    /// The active lines of `key`, in file order (the wrapper uses the last).
    pub fn active(&self, key: &str) -> Vec<Property<'_>> {
        self.properties()
            .filter(|property| !property.commented && property.key == key)
            .collect()
    }

    /// The value the wrapper reads for `key`: its last active line's.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.active(key).last().map(|property| property.value)
    }

    /// The line ending new lines get: the file's first one, else LF.
    pub fn line_ending(&self) -> &'static str {
        match self.lines.iter().find(|line| !line.end.is_empty()) {
            Some(line) if line.end.len() == 2 => "\r\n",
            _ => "\n",
        }
    }

    /// Whether the file ends without a line break after its last line.
    pub fn missing_final_newline(&self) -> bool {
        self.lines.last().is_some_and(|line| line.end.is_empty())
    }
}

fn is_blank(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

/// What the line `span` of `bytes` is.
fn classify(bytes: &[u8], span: Range<usize>) -> LineKind {
    let line = &bytes[span.clone()];
    let indent = line.iter().take_while(|byte| is_blank(**byte)).count();
    if indent == line.len() {
        return LineKind::Blank;
    }
    let mut at = indent;
    let mut comment = span.start + at..span.start + at;
    let commented = line[at] == b'#';
    if commented {
        let rest = &line[at + 1..];
        // Directives: `#include FILE`, `#include.required FILE`,
        // `#include.debug`, `#encoding=UTF-8` (no blank after the `#`).
        let directive = ["include", "encoding="].iter().any(|word| {
            rest.starts_with(word.as_bytes())
                && (word.ends_with('=')
                    || rest
                        .get(word.len())
                        .is_none_or(|next| is_blank(*next) || *next == b'.'))
        });
        if directive {
            return LineKind::Directive;
        }
        at += 1;
        at += line[at..]
            .iter()
            .take_while(|byte| is_blank(**byte))
            .count();
        comment = span.start + indent..span.start + at;
    }
    let Some(equals) = line[at..].iter().position(|byte| *byte == b'=') else {
        return LineKind::Other;
    };
    let key_end = at
        + line[at..at + equals]
            .iter()
            .rposition(|byte| !is_blank(*byte))
            .map_or(0, |last| last + 1);
    let key = &line[at..key_end];
    if !is_key(std::str::from_utf8(key).unwrap_or_default()) {
        return LineKind::Other;
    }
    let mut value_start = at + equals + 1;
    value_start += line[value_start..]
        .iter()
        .take_while(|byte| is_blank(**byte))
        .count();
    let value_end = line
        .iter()
        .rposition(|byte| !is_blank(*byte))
        .map_or(value_start, |last| (last + 1).max(value_start));
    LineKind::Property {
        key: span.start + at..span.start + key_end,
        value: span.start + value_start..span.start + value_end,
        comment,
        commented,
    }
}
