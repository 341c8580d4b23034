//! YAML read into a tree that remembers where every node came from, so an
//! error in an inventory or playbook can name its line and column, and so
//! that every problem can be reported, not just the first.
//!
//! Owns: parsing (saphyr-parser events), aliases and `<<` merge keys with
//! a bound on expansion, duplicate-key detection, and YAML 1.2 core-schema
//! typing of plain scalars. Must not: know what an inventory or playbook is.

use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Span};

use crate::diagnostic::Location;

/// More nodes than this (counting every alias expansion) is refused: a
/// "billion laughs" file must not exhaust memory.
const MAX_NODES: usize = 1_000_000;
/// More scalar text than this coming from alias expansions is refused too:
/// an alias of a long string costs its length, not one node (a 3 KB file
/// aliasing a 2,000-character string under 1,000,000 nodes would take 2 GB).
/// As much as the largest input file (`source_file`).
const MAX_ALIAS_TEXT_BYTES: usize = 16 * 1024 * 1024;

/// One YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub at: Location,
    /// A local tag such as `!vault`, without its `!`.
    pub tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `plain` is false for quoted and block scalars, which are always
    /// strings.
    Scalar {
        text: String,
        plain: bool,
    },
    Sequence(Vec<Node>),
    Mapping(Vec<(Node, Node)>),
}

/// A scalar typed by YAML 1.2's core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Null,
    Bool(bool),
    Integer(i64),
    Float(f64),
    String(&'a str),
}

impl Node {
    pub fn scalar(text: impl Into<String>, plain: bool, at: Location) -> Node {
        Node {
            kind: Kind::Scalar {
                text: text.into(),
                plain,
            },
            at,
            tag: None,
        }
    }

    /// A word for error messages: "a mapping", "a list", "a string"…
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Mapping(_) => "a mapping",
            Kind::Sequence(_) => "a list",
            Kind::Scalar { .. } => match self.typed() {
                Some(Scalar::Null) => "empty",
                Some(Scalar::Bool(_)) => "a boolean",
                Some(Scalar::Integer(_)) => "an integer",
                Some(Scalar::Float(_)) => "a number",
                _ => "a string",
            },
        }
    }

    /// The scalar's text, whatever its type.
    pub fn text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The scalar typed by the core schema (quoted scalars are strings).
    pub fn typed(&self) -> Option<Scalar<'_>> {
        let Kind::Scalar { text, plain } = &self.kind else {
            return None;
        };
        if !plain {
            return Some(Scalar::String(text));
        }
        Some(match text.as_str() {
            "" | "~" | "null" | "Null" | "NULL" => Scalar::Null,
            "true" | "True" | "TRUE" => Scalar::Bool(true),
            "false" | "False" | "FALSE" => Scalar::Bool(false),
            other => {
                if let Some(integer) = parse_integer(other) {
                    Scalar::Integer(integer)
                } else if let Some(float) = parse_float(other) {
                    Scalar::Float(float)
                } else {
                    Scalar::String(other)
                }
            }
        })
    }

    pub fn is_null(&self) -> bool {
        matches!(self.typed(), Some(Scalar::Null))
    }

    pub fn as_mapping(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Mapping(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_sequence(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Sequence(items) => Some(items),
            _ => None,
        }
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_mapping()?
            .iter()
            .find(|(name, _)| name.text() == Some(key))
            .map(|(_, value)| value)
    }
}

fn parse_integer(text: &str) -> Option<i64> {
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let value = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(octal) = digits.strip_prefix("0o") {
        i64::from_str_radix(octal, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    Some(sign * value)
}

fn parse_float(text: &str) -> Option<f64> {
    let looks_numeric = text
        .bytes()
        .all(|byte| byte.is_ascii_digit() || b"+-.eE".contains(&byte))
        && text.bytes().any(|byte| byte.is_ascii_digit());
    match text {
        ".inf" | ".Inf" | ".INF" | "+.inf" => Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Some(f64::NAN),
        _ if looks_numeric => text.parse().ok(),
        _ => None,
    }
}

/// A YAML syntax error, or a structure YAML allows but midfleet refuses
/// (duplicate keys, runaway aliases, several documents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub message: String,
    pub at: Location,
}

impl YamlError {
    /// The error as a diagnostic of `file`, with the usual hint.
    pub fn diagnostic(&self, file: &std::path::Path) -> crate::diagnostic::Diagnostic {
        crate::diagnostic::Diagnostic::error(
            Some(crate::diagnostic::Origin::new(file, self.at)),
            format!("YAML syntax: {}", self.message),
        )
        .with_hint("check the indentation and the `:` after each key")
    }
}

impl fmt::Display for YamlError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.message)
    }
}

/// Parses one YAML document; `None` when the file holds none (empty, or
/// only comments).
pub fn parse(text: &str) -> Result<Option<Node>, YamlError> {
    let mut builder = Builder {
        anchors: HashMap::new(),
        stack: Vec::new(),
        nodes: 0,
        alias_text_bytes: 0,
        document: None,
        documents: 0,
        lines: Lines::new(text),
    };
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|error| YamlError {
            message: error.info().to_string(),
            at: builder.lines.location(*error.marker()),
        })?;
        builder.event(event, span)?;
    }
    Ok(builder.document)
}

/// Turns saphyr's markers into [`Location`]s whose lines end at `\n` only,
/// as `Location::of_offset` and the INI reader count them. saphyr also
/// ends a line at a lone `\r`, puts the end of a file that lacks a final
/// newline on a line past the last, and (0.3.4) advances its column by
/// bytes instead of characters over a reserved directive (`%ü`): so its
/// line and column are mapped back to a character offset, kept within that
/// line, and placed again.
struct Lines {
    /// Each of saphyr's lines: the character offsets of its start and of
    /// its line break (or the end of the text).
    yaml: Vec<(usize, usize)>,
    /// The character offset where each `\n`-ended line starts.
    starts: Vec<usize>,
    /// The length of the text in characters.
    length: usize,
}

impl Lines {
    fn new(text: &str) -> Lines {
        let mut yaml = Vec::new();
        let mut starts = vec![0];
        let mut start = 0;
        let mut index = 0;
        let mut characters = text.chars().peekable();
        while let Some(character) = characters.next() {
            if character == '\r' && characters.peek() == Some(&'\n') {
                characters.next();
                yaml.push((start, index));
                index += 1;
                start = index + 1;
                starts.push(start);
            } else if character == '\n' {
                yaml.push((start, index));
                start = index + 1;
                starts.push(start);
            } else if character == '\r' {
                yaml.push((start, index));
                start = index + 1;
            }
            index += 1;
        }
        yaml.push((start, index));
        Lines {
            yaml,
            starts,
            length: index,
        }
    }

    fn location(&self, marker: Marker) -> Location {
        let offset = match self.yaml.get(marker.line().max(1) - 1) {
            Some(&(start, end)) => (start + marker.col()).min(end),
            None => self.length,
        };
        // At least 1: the first line starts at 0.
        let line = self.starts.partition_point(|start| *start <= offset);
        Location {
            line,
            column: offset - self.starts[line - 1] + 1,
        }
    }
}

enum Open {
    Sequence {
        node: Node,
        anchor: usize,
    },
    Mapping {
        node: Node,
        anchor: usize,
        pending_key: Option<Node>,
        /// Entries from `<<` merges, added at the end where no explicit
        /// key of the mapping overrides them.
        merged: Vec<(Node, Node)>,
    },
}

struct Builder {
    anchors: HashMap<usize, Node>,
    stack: Vec<Open>,
    nodes: usize,
    alias_text_bytes: usize,
    document: Option<Node>,
    documents: usize,
    lines: Lines,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), YamlError> {
        let at = self.lines.location(span.start);
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(YamlError {
                        message: "a second YAML document (`---`) in one file".into(),
                        at,
                    });
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let node = Node {
                    kind: Kind::Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                    },
                    at,
                    tag: tag.map(|tag| tag.suffix.clone()),
                };
                self.complete(node, anchor)?;
            }
            Event::SequenceStart(anchor, tag) => self.stack.push(Open::Sequence {
                node: Node {
                    kind: Kind::Sequence(Vec::new()),
                    at,
                    tag: tag.map(|tag| tag.suffix.clone()),
                },
                anchor,
            }),
            Event::MappingStart(anchor, tag) => self.stack.push(Open::Mapping {
                node: Node {
                    kind: Kind::Mapping(Vec::new()),
                    at,
                    tag: tag.map(|tag| tag.suffix.clone()),
                },
                anchor,
                pending_key: None,
                merged: Vec::new(),
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Open::Sequence { node, anchor }) => (node, anchor),
                    Some(Open::Mapping {
                        mut node,
                        anchor,
                        merged,
                        ..
                    }) => {
                        if let Kind::Mapping(entries) = &mut node.kind {
                            for (key, value) in merged {
                                if !entries.iter().any(|(existing, _)| same_key(existing, &key)) {
                                    entries.push((key, value));
                                }
                            }
                        }
                        (node, anchor)
                    }
                    None => return Ok(()),
                };
                self.complete(node, anchor)?;
            }
            Event::Alias(id) => {
                let (nodes, text_bytes) =
                    self.anchors.get(&id).map(size).ok_or_else(|| YamlError {
                        message: "an alias to an unknown anchor".into(),
                        at,
                    })?;
                self.count(nodes, at)?;
                self.alias_text_bytes += text_bytes;
                if self.alias_text_bytes > MAX_ALIAS_TEXT_BYTES {
                    return Err(YamlError {
                        message: format!(
                            "aliases expand to more than {MAX_ALIAS_TEXT_BYTES} bytes of text (runaway aliases?)"
                        ),
                        at,
                    });
                }
                let mut node = self.anchors[&id].clone();
                node.at = at;
                self.complete(node, 0)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn count(&mut self, nodes: usize, at: Location) -> Result<(), YamlError> {
        self.nodes += nodes;
        if self.nodes > MAX_NODES {
            return Err(YamlError {
                message: format!("more than {MAX_NODES} nodes (runaway aliases?)"),
                at,
            });
        }
        Ok(())
    }

    fn complete(&mut self, node: Node, anchor: usize) -> Result<(), YamlError> {
        self.count(1, node.at)?;
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.document = Some(node),
            Some(Open::Sequence { node: parent, .. }) => {
                if let Kind::Sequence(items) = &mut parent.kind {
                    items.push(node);
                }
            }
            Some(Open::Mapping {
                node: parent,
                pending_key,
                merged,
                ..
            }) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => {
                    if let Kind::Mapping(entries) = &mut parent.kind {
                        insert_entry(entries, merged, key, node)?;
                    }
                }
            },
        }
        Ok(())
    }
}

/// Adds `key: value`, refusing duplicate keys; a `<<` merge's entries go to
/// `merged` (the mapping's own keys win over merged ones, as YAML says).
fn insert_entry(
    entries: &mut Vec<(Node, Node)>,
    merged: &mut Vec<(Node, Node)>,
    key: Node,
    value: Node,
) -> Result<(), YamlError> {
    let is_merge = matches!(&key.kind, Kind::Scalar { text, plain: true } if text == "<<");
    if is_merge {
        let sources: Vec<&Node> = match &value.kind {
            Kind::Mapping(_) => vec![&value],
            Kind::Sequence(items) => items.iter().collect(),
            Kind::Scalar { .. } => Vec::new(),
        };
        if sources.is_empty() || sources.iter().any(|source| source.as_mapping().is_none()) {
            return Err(YamlError {
                message: "`<<` merges a mapping or a list of mappings".into(),
                at: value.at,
            });
        }
        for source in sources {
            for (merged_key, merged_value) in source.as_mapping().unwrap_or_default() {
                // With several sources, the first one to give a key wins.
                if !merged
                    .iter()
                    .any(|(existing, _)| same_key(existing, merged_key))
                {
                    merged.push((merged_key.clone(), merged_value.clone()));
                }
            }
        }
        return Ok(());
    }
    if let Some((existing, _)) = entries
        .iter()
        .find(|(existing, _)| same_key(existing, &key))
    {
        return Err(YamlError {
            message: format!(
                "duplicate key `{}` (first on line {})",
                key.text().unwrap_or("?"),
                existing.at.line
            ),
            at: key.at,
        });
    }
    entries.push((key, value));
    Ok(())
}

fn same_key(left: &Node, right: &Node) -> bool {
    match (&left.kind, &right.kind) {
        (Kind::Scalar { text: left, .. }, Kind::Scalar { text: right, .. }) => left == right,
        _ => false,
    }
}

/// How many nodes `node` holds, itself included, and the bytes of their
/// scalar text.
fn size(node: &Node) -> (usize, usize) {
    let add = |(nodes, bytes): (usize, usize), child: &Node| {
        let (child_nodes, child_bytes) = size(child);
        (nodes + child_nodes, bytes + child_bytes)
    };
    match &node.kind {
        Kind::Scalar { text, .. } => (1, text.len()),
        Kind::Sequence(items) => items.iter().fold((1, 0), add),
        Kind::Mapping(entries) => entries
            .iter()
            .flat_map(|(key, value)| [key, value])
            .fold((1, 0), add),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Node {
        parse(text).unwrap().unwrap()
    }

    #[test]
    fn nodes_know_where_they_are() {
        let root = parsed("all:\n  hosts:\n    web1: { port: 2222 }\n");
        let web1 = root
            .get("all")
            .unwrap()
            .get("hosts")
            .unwrap()
            .get("web1")
            .unwrap();
        assert_eq!(
            web1.at,
            Location {
                line: 3,
                column: 11
            }
        );
        let port = web1.get("port").unwrap();
        assert_eq!(
            port.at,
            Location {
                line: 3,
                column: 19
            }
        );
        assert_eq!(port.typed(), Some(Scalar::Integer(2222)));
    }

    #[test]
    fn core_schema_typing_and_quoted_strings() {
        let root = parsed("a: yes\nb: true\nc: '22'\nd: 0x1F\ne: 1.5\nf:\ng: ~\nh: \"true\"\n");
        let typed = |key| root.get(key).unwrap().typed().unwrap();
        assert_eq!(typed("a"), Scalar::String("yes"));
        assert_eq!(typed("b"), Scalar::Bool(true));
        assert_eq!(typed("c"), Scalar::String("22"));
        assert_eq!(typed("d"), Scalar::Integer(31));
        assert_eq!(typed("e"), Scalar::Float(1.5));
        assert_eq!(typed("f"), Scalar::Null);
        assert_eq!(typed("g"), Scalar::Null);
        assert_eq!(typed("h"), Scalar::String("true"));
    }

    #[test]
    fn tags_aliases_and_merges() {
        let root = parsed(
            "base: &base { user: ops, port: 22 }\nweb: { <<: *base, port: 2222 }\nsecret: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n",
        );
        let web = root.get("web").unwrap();
        assert_eq!(web.get("user").unwrap().text(), Some("ops"));
        assert_eq!(web.get("port").unwrap().text(), Some("2222"));
        assert_eq!(root.get("secret").unwrap().tag.as_deref(), Some("vault"));
    }

    #[test]
    fn refuses_duplicates_syntax_errors_and_alias_bombs() {
        let error = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(error.at, Location { line: 3, column: 1 });
        assert!(error.message.contains("first on line 1"), "{error}");

        let error = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(error.at.line >= 1, "{error:?}");

        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..10 {
            let previous = level - 1;
            bomb.push_str(&format!(
                "a{level}: &a{level} [*a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}]\n"
            ));
        }
        let error = parse(&bomb).unwrap_err();
        assert!(error.message.contains("runaway aliases"), "{error}");

        // Few nodes, long strings: 960,000 copies of 2,000 characters.
        let long = "x".repeat(2000);
        let stars = |name: &str, count: usize| vec![format!("*{name}"); count].join(", ");
        let bomb = format!(
            "s: &s {long}\nl1: &l1 [{}]\nl2: &l2 [{}]\nl3: [{}]\n",
            stars("s", 100),
            stars("l1", 100),
            stars("l2", 96)
        );
        let error = parse(&bomb).unwrap_err();
        assert!(error.message.contains("bytes of text"), "{error}");
        assert_eq!(error.at.line, 3, "{error:?}");
    }

    #[test]
    fn locations_end_lines_at_newlines_only() {
        // The end of a file without a final newline is on its last line.
        let error = parse("a: 1\nb: { c: 2").unwrap_err();
        assert_eq!(
            error.at,
            Location {
                line: 2,
                column: 10
            }
        );
        // A lone `\r` does not end a line (a `\r\n` does, by its `\n`).
        let error = parse("a: 1\rb: 2\r\nc: 3\r\na: 4\r\n").unwrap_err();
        assert_eq!(error.at, Location { line: 3, column: 1 });
        // saphyr counts a reserved directive's name in bytes (its column
        // would be 8): the location stays on the line.
        let error = parse("%üü x\u{feff}").unwrap_err();
        assert_eq!(error.at, Location { line: 1, column: 7 });
        let root = parsed("a: 1\r\nb:  é\r\nc: [x, ü]\n");
        let c = root.get("c").unwrap().as_sequence().unwrap();
        assert_eq!(root.get("b").unwrap().at, Location { line: 2, column: 5 });
        assert_eq!(c[1].at, Location { line: 3, column: 8 });
    }

    #[test]
    fn empty_files_have_no_document() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("# only a comment\n").unwrap(), None);
    }
}
