//! Property tests: generated MID config files in many layouts, random edits,
//! and an independent model of the bytes each edit must produce.
//!
//! The generator builds a structured [`Doc`] (prolog, root style, lines of
//! parameters, comments, CDATA, processing instructions and blank lines) and
//! renders it, writing every value with a randomly chosen but correct
//! escaping for its quote. The model applies the operations to the structure
//! (a value re-escaped in place, a line or an element dropped, new lines
//! before `</parameters>`) and renders it again: the engine's output must be
//! exactly those bytes.

use std::ops::Range;

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

use super::{Action, Change, ConfigXml, EditError, Operation, Shown};

/// Parameter names by identity: each group holds the spellings of one
/// parameter (the credential pairs have two).
const GROUPS: &[&[&str]] = &[
    &["mid.instance.username", "glide.glidesoap.username"],
    &["mid.instance.password", "glide.glidesoap.password"],
    &["url"],
    &["name"],
    &["mid.proxy.use_proxy"],
    &["mid.proxy.password"],
    &["keypairs.mid_id"],
    &["mid_sys_id"],
    &["mid.log.level"],
    &["threads.max"],
    &["ünï.cödé"],
    &["odd&<>\"'name"],
    &["weird&<>\"'.Password"],
];

/// Groups holding the instance credentials, whose spelling follows the file.
const CREDENTIAL_GROUPS: [usize; 2] = [0, 1];

/// Groups whose names say `password`: added with `secure="true"`, never shown.
const PASSWORD_GROUPS: [usize; 3] = [1, 5, 12];

/// Characters values are made of: markup, both quotes, the whitespace XML
/// normalises, non-ASCII (NEL and LINE SEPARATOR, which XML 1.0 leaves alone).
const VALUE_CHARS: &[char] = &[
    'a', 'b', 'Z', ']', '0', '7', ' ', ' ', '&', '<', '>', '"', '\'', '\t', '\n', '\r', 'é', '€',
    '𝄞', '\u{A0}', '\u{85}', '\u{2028}', '\u{FFFD}', '\u{E000}', '=', '/', ';', '#', '-', '.', ':',
    '?', '%',
];

/// Pieces of comment, CDATA and processing-instruction text. None can form
/// `--`, `]]>`, `?>` or `<!--`, and none ends in `-`. `\n` stands for a line
/// break in the file's style.
const MISC_PIECES: &[&str] = &[
    " ",
    "note",
    "<parameter name=\"url\" value=\"https://old.example\"/>",
    "<parameter name='mid.instance.password' value='old secret'/>",
    "<parameter name=\"glide.glidesoap.username\" value=\"x\" />",
    "&amp; & <",
    ">",
    "é€𝄞",
    "a-b",
    "\n",
    "\"'",
];

/// `secure`/`encrypt` attributes: key, raw value, whether it marks secure.
const SECURE_ATTRIBUTES: &[(&str, &str, bool)] = &[
    ("secure", "true", true),
    ("encrypt", "true", true),
    ("secure", " TRUE ", true),
    ("secure", "false", false),
];

fn is_password_group(group: usize) -> bool {
    PASSWORD_GROUPS.contains(&group)
}

fn spelling(group: usize, index: usize) -> &'static str {
    GROUPS[group][index % GROUPS[group].len()]
}

fn quote_char(single: bool) -> char {
    if single {
        '\''
    } else {
        '"'
    }
}

// ---------------------------------------------------------------------------
// The generated document
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Element {
    group: usize,
    spelling: usize,
    /// Escaping choices for the name's characters, used cyclically (empty:
    /// the plainest form).
    name_choices: Vec<u8>,
    /// The value's characters, each with its escaping choice.
    value: Vec<(char, u8)>,
    /// Single quotes (`true`) or double quotes for name, value and secure.
    single_quotes: [bool; 3],
    secure: Option<usize>,
    /// An attribute the MID does not know, with its encoded characters.
    extra: Option<Vec<(char, u8)>>,
    /// Attribute order, as a Lehmer code.
    order: u8,
    /// Whitespace before each attribute (index into the separator styles).
    separators: [u8; 4],
    spaced_equals: bool,
    /// `/>`, ` />`, `></parameter>`, `>` newline `</parameter>`, newline `/>`.
    close: u8,
    /// Set by the model: the value as the engine must write it.
    rewritten_value: Option<String>,
}

impl Element {
    fn name(&self) -> &'static str {
        spelling(self.group, self.spelling)
    }

    fn value(&self) -> String {
        self.value.iter().map(|(character, _)| *character).collect()
    }

    fn value_quote(&self) -> char {
        quote_char(self.single_quotes[1])
    }

    fn is_secure(&self) -> bool {
        self.secure.is_some_and(|index| SECURE_ATTRIBUTES[index].2)
    }

    fn is_sensitive(&self) -> bool {
        self.is_secure() || is_password_group(self.group)
    }
}

#[derive(Clone, Debug)]
enum MiscKind {
    Comment,
    CData,
    Instruction,
}

#[derive(Clone, Debug)]
struct Misc {
    kind: MiscKind,
    pieces: Vec<usize>,
}

#[derive(Clone, Debug)]
enum Item {
    Param {
        indent: String,
        /// Something on the same line before the element.
        prefix: Option<Misc>,
        /// `None` once the model removed just the element.
        element: Option<Element>,
        trailing: String,
        /// Something on the same line after the element (and `trailing`).
        suffix: Option<Misc>,
    },
    Misc {
        indent: String,
        misc: Misc,
    },
    Blank {
        whitespace: String,
    },
}

#[derive(Clone, Debug)]
enum Root {
    /// One item per line.
    Multi {
        open_indent: String,
        /// The first item on the line of `<parameters>`.
        open_inline: bool,
        close_indent: String,
        /// `</parameters>` right after the last item, on its line.
        close_inline: bool,
    },
    /// Everything inside the root on one line.
    Single,
    /// `<parameters/>` or `<parameters />`.
    Empty { spaced: bool },
}

#[derive(Clone, Debug)]
struct Doc {
    bom: bool,
    /// Single-quoted, followed by a line break.
    declaration: Option<(bool, bool)>,
    crlf: bool,
    prolog: Option<Vec<usize>>,
    root: Root,
    items: Vec<Item>,
    epilog: Option<Vec<usize>>,
    trailing_newline: bool,
    /// Set by the model: what the engine inserts before `</parameters>`.
    insertion: String,
}

impl Doc {
    /// Makes a generated document valid: one element per parameter group
    /// (counting aliases), and `<parameters>`/`</parameters>` sharing a line
    /// only with content.
    fn normalise(mut self) -> Doc {
        let mut seen = Vec::new();
        self.items.retain(|item| match item {
            Item::Param {
                element: Some(element),
                ..
            } => {
                let fresh = !seen.contains(&element.group);
                seen.push(element.group);
                fresh
            }
            _ => true,
        });
        let last_is_blank = matches!(self.items.last(), None | Some(Item::Blank { .. }));
        let empty = self.items.is_empty();
        match &mut self.root {
            Root::Multi {
                open_inline,
                close_inline,
                ..
            } => {
                *open_inline &= !empty;
                *close_inline &= !last_is_blank;
            }
            Root::Empty { .. } => self.items.clear(),
            Root::Single => {}
        }
        self
    }

    fn eol(&self) -> &'static str {
        if self.crlf {
            "\r\n"
        } else {
            "\n"
        }
    }

    fn is_single(&self) -> bool {
        matches!(self.root, Root::Single)
    }

    /// Line breaks inside the root: the file's, or spaces on a single line.
    fn inner_newline(&self) -> &'static str {
        if self.is_single() {
            " "
        } else {
            self.eol()
        }
    }

    fn elements(&self) -> impl Iterator<Item = (usize, &Element)> {
        self.items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| match item {
                Item::Param {
                    element: Some(element),
                    ..
                } => Some((index, element)),
                _ => None,
            })
    }

    fn find(&self, group: usize) -> Option<(usize, &Element)> {
        self.elements().find(|(_, element)| element.group == group)
    }

    /// Whether the element of item `index` stands at the start of its line.
    fn starts_line(&self, index: usize) -> bool {
        let open_inline = matches!(
            self.root,
            Root::Multi {
                open_inline: true,
                ..
            }
        );
        matches!(self.root, Root::Multi { .. })
            && matches!(self.items[index], Item::Param { prefix: None, .. })
            && !(open_inline && index == 0)
    }

    /// Whether `</parameters>` starts its own line.
    fn close_starts_line(&self) -> bool {
        matches!(
            self.root,
            Root::Multi {
                close_inline: false,
                ..
            }
        )
    }
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

/// A character written into an attribute delimited by `quote`: one of the
/// ways an XML parser reads back as `character` (choice 0 is the plainest).
fn encode_char(character: char, choice: u8, quote: char, literal_newline: &str) -> String {
    let code = character as u32;
    let decimal = format!("&#{code};");
    let hex_upper = format!("&#x{code:X};");
    let hex_lower = format!("&#x{code:x};");
    let choices: Vec<String> = match character {
        '&' => vec!["&amp;".into(), decimal, hex_upper],
        '<' => vec!["&lt;".into(), decimal, hex_lower],
        '>' => vec![">".into(), "&gt;".into(), decimal],
        '"' if quote == '"' => vec!["&quot;".into(), decimal, hex_upper],
        '\'' if quote == '\'' => vec!["&apos;".into(), decimal, hex_lower],
        '"' => vec!["\"".into(), "&quot;".into()],
        '\'' => vec!["'".into(), "&apos;".into()],
        '\t' | '\n' | '\r' => vec![decimal, hex_upper, hex_lower],
        // Literal tabs and line breaks are normalised to spaces.
        ' ' => vec![" ".into(), decimal, "\t".into(), literal_newline.into()],
        other => vec![other.to_string(), decimal, hex_upper, hex_lower],
    };
    choices[usize::from(choice) % choices.len()].clone()
}

fn encode(characters: impl Iterator<Item = (char, u8)>, quote: char, newline: &str) -> String {
    let literal_newline = if newline == " " { "\t" } else { newline };
    characters
        .map(|(character, choice)| encode_char(character, choice, quote, literal_newline))
        .collect()
}

/// How the engine must escape a value it writes (independent of
/// `escape.rs`): markup, the delimiting quote and the whitespace XML would
/// normalise become references; everything else stays literal.
fn expected_escape(value: &str, quote: char) -> String {
    let mut escaped = String::new();
    for character in value.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' if quote == '"' => escaped.push_str("&quot;"),
            '\'' if quote == '\'' => escaped.push_str("&apos;"),
            '\t' => escaped.push_str("&#9;"),
            '\n' => escaped.push_str("&#10;"),
            '\r' => escaped.push_str("&#13;"),
            other => escaped.push(other),
        }
    }
    escaped
}

fn render_element(element: &Element, newline: &str, indent: &str) -> String {
    let [name_quote, value_quote, secure_quote] = element.single_quotes.map(quote_char);
    let equals = if element.spaced_equals { " = " } else { "=" };
    let name_choice = |index: usize| match element.name_choices.len() {
        0 => 0,
        length => element.name_choices[index % length],
    };
    let name = encode(
        element
            .name()
            .chars()
            .enumerate()
            .map(|(index, character)| (character, name_choice(index))),
        name_quote,
        newline,
    );
    let value = element
        .rewritten_value
        .clone()
        .unwrap_or_else(|| encode(element.value.iter().copied(), value_quote, newline));
    let mut attributes = vec![
        format!("name{equals}{name_quote}{name}{name_quote}"),
        format!("value{equals}{value_quote}{value}{value_quote}"),
    ];
    if let Some(index) = element.secure {
        let (key, raw, _) = SECURE_ATTRIBUTES[index];
        attributes.push(format!("{key}{equals}{secure_quote}{raw}{secure_quote}"));
    }
    if let Some(extra) = &element.extra {
        let text = encode(extra.iter().copied(), name_quote, newline);
        attributes.push(format!("description={name_quote}{text}{name_quote}"));
    }
    let mut code = usize::from(element.order);
    let mut text = String::from("<parameter");
    for separator in element.separators {
        if attributes.is_empty() {
            break;
        }
        let attribute = attributes.remove(code % attributes.len());
        code /= attributes.len() + 1;
        match separator {
            1 => text.push_str("  "),
            2 => text.push('\t'),
            3 => {
                text.push_str(newline);
                text.push_str(indent);
                text.push_str("    ");
            }
            _ => text.push(' '),
        }
        text.push_str(&attribute);
    }
    match element.close {
        1 => text.push_str(" />"),
        2 => text.push_str("></parameter>"),
        3 => {
            text.push('>');
            text.push_str(newline);
            text.push_str(indent);
            text.push_str("</parameter>");
        }
        4 => {
            text.push_str(newline);
            text.push_str(indent);
            text.push_str("/>");
        }
        _ => text.push_str("/>"),
    }
    text
}

fn render_misc(misc: &Misc, newline: &str) -> String {
    let text: String = misc
        .pieces
        .iter()
        .map(|piece| match MISC_PIECES[*piece] {
            "\n" => newline,
            other => other,
        })
        .collect();
    match misc.kind {
        MiscKind::Comment => format!("<!--{text}-->"),
        MiscKind::CData => format!("<![CDATA[{text}]]>"),
        MiscKind::Instruction => format!("<?midfleet-test {text}?>"),
    }
}

fn comment(pieces: &[usize]) -> Misc {
    Misc {
        kind: MiscKind::Comment,
        pieces: pieces.to_vec(),
    }
}

/// A rendered document and where its parts ended up.
struct Rendered {
    text: String,
    /// Byte range of each item's element, by item index.
    elements: Vec<Option<Range<usize>>>,
    /// Byte offset of `</parameters>`.
    close_tag: Option<usize>,
    /// Byte offset of `<parameters`.
    root_start: usize,
}

fn render(doc: &Doc) -> Rendered {
    let eol = doc.eol();
    let newline = doc.inner_newline();
    let mut text = String::new();
    let mut elements = vec![None; doc.items.len()];
    let mut close_tag = None;
    if doc.bom {
        text.push('\u{FEFF}');
    }
    if let Some((single, line_break)) = doc.declaration {
        let quote = quote_char(single);
        text.push_str(&format!(
            "<?xml version={quote}1.0{quote} encoding={quote}UTF-8{quote}?>"
        ));
        if line_break {
            text.push_str(eol);
        }
    }
    if let Some(pieces) = &doc.prolog {
        text.push_str(&render_misc(&comment(pieces), eol));
        text.push_str(eol);
    }
    let root_start = text.len();
    match &doc.root {
        Root::Empty { spaced } => {
            text.push_str(if *spaced {
                "<parameters />"
            } else {
                "<parameters/>"
            });
        }
        Root::Multi { .. } | Root::Single => {
            if let Root::Multi {
                open_indent,
                open_inline,
                ..
            } = &doc.root
            {
                text.push_str(open_indent);
                text.push_str("<parameters>");
                if !open_inline {
                    text.push_str(eol);
                }
            } else {
                text.push_str("<parameters>");
            }
            for (index, item) in doc.items.iter().enumerate() {
                match item {
                    Item::Param {
                        indent,
                        prefix,
                        element,
                        trailing,
                        suffix,
                    } => {
                        text.push_str(indent);
                        if let Some(prefix) = prefix {
                            text.push_str(&render_misc(prefix, newline));
                            text.push(' ');
                        }
                        if let Some(element) = element {
                            let start = text.len();
                            text.push_str(&render_element(element, newline, indent));
                            elements[index] = Some(start..text.len());
                        }
                        text.push_str(trailing);
                        if let Some(suffix) = suffix {
                            text.push_str(&render_misc(suffix, newline));
                        }
                    }
                    Item::Misc { indent, misc } => {
                        text.push_str(indent);
                        text.push_str(&render_misc(misc, newline));
                    }
                    Item::Blank { whitespace } => text.push_str(whitespace),
                }
                let last = index + 1 == doc.items.len();
                let inline_close = matches!(
                    doc.root,
                    Root::Multi {
                        close_inline: true,
                        ..
                    }
                );
                if !(doc.is_single() || last && inline_close) {
                    text.push_str(eol);
                }
            }
            text.push_str(&doc.insertion);
            if let Root::Multi {
                close_indent,
                close_inline: false,
                ..
            } = &doc.root
            {
                text.push_str(close_indent);
            }
            close_tag = Some(text.len());
            text.push_str("</parameters>");
        }
    }
    if let Some(pieces) = &doc.epilog {
        text.push_str(eol);
        text.push_str(&render_misc(&comment(pieces), eol));
    }
    if doc.trailing_newline {
        text.push_str(eol);
    }
    Rendered {
        text,
        elements,
        close_tag,
        root_start,
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    1 + text.as_bytes()[..offset]
        .iter()
        .filter(|byte| **byte == b'\n')
        .count()
}

// ---------------------------------------------------------------------------
// Operations and the model
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum OpKind {
    Set(String),
    /// Set to the value the file holds (a no-op), or to "same" when absent.
    SetSame,
    Unset,
}

#[derive(Clone, Debug)]
struct OpSpec {
    /// Aim at a parameter the file holds (picked by `pick`), when it has any.
    existing: bool,
    pick: prop::sample::Index,
    group: usize,
    spelling: usize,
    kind: OpKind,
    sensitive: bool,
}

/// An operation with its value resolved against the document.
#[derive(Clone, Debug)]
struct Op {
    group: usize,
    name: &'static str,
    value: Option<String>,
    sensitive: bool,
}

fn resolve(doc: &Doc, specs: &[OpSpec]) -> Vec<Op> {
    let mut ops: Vec<Op> = Vec::new();
    let present: Vec<usize> = doc.elements().map(|(_, element)| element.group).collect();
    for spec in specs {
        let group = if spec.existing && !present.is_empty() {
            present[spec.pick.index(present.len())]
        } else {
            spec.group
        };
        if ops.iter().any(|op| op.group == group) {
            continue;
        }
        let value = match &spec.kind {
            OpKind::Set(value) => Some(value.clone()),
            OpKind::SetSame => Some(
                doc.find(group)
                    .map_or_else(|| "same".to_string(), |(_, element)| element.value()),
            ),
            OpKind::Unset => None,
        };
        ops.push(Op {
            group,
            name: spelling(group, spec.spelling),
            value,
            sensitive: spec.sensitive,
        });
    }
    ops
}

fn operations(ops: &[Op]) -> Vec<Operation<'_>> {
    ops.iter()
        .map(|op| match &op.value {
            Some(value) => Operation::Set {
                name: op.name,
                value,
                sensitive: op.sensitive,
            },
            None => Operation::Unset { name: op.name },
        })
        .collect()
}

fn shown(value: Option<&str>, sensitive: bool) -> Shown {
    match value {
        None => Shown::Absent,
        Some(_) if sensitive => Shown::Sensitive,
        Some(value) => Shown::Value(value.to_string()),
    }
}

/// What the model expects from an edit that is not refused.
struct Expected {
    doc: Doc,
    changes: Vec<Change>,
    /// Parameters of the result in file order: name and value.
    parameters: Vec<(String, String)>,
}

/// The expected result of `ops`, or `None` when the edit must be refused
/// because it adds to an empty `<parameters/>`.
fn model(doc: &Doc, rendered: &Rendered, ops: &[Op]) -> Option<Expected> {
    let mut after = doc.clone();
    let mut changes = Vec::new();
    let mut added: Vec<(String, String)> = Vec::new();
    let mut removed = Vec::new();
    let mut updated: Vec<(usize, String)> = Vec::new();
    let eol = doc.eol();

    // Layout of additions, from the original file.
    let last = doc.elements().last();
    let quote = last.map_or('"', |(_, element)| element.value_quote());
    let empty_end = match last {
        Some((index, _))
            if rendered.text[rendered.elements[index].clone().unwrap()].ends_with(" />") =>
        {
            " />"
        }
        _ => "/>",
    };
    let indent = doc
        .elements()
        .filter(|(index, _)| doc.starts_line(*index))
        .last()
        .map(|(index, _)| match &doc.items[index] {
            Item::Param { indent, .. } => indent.clone(),
            _ => unreachable!(),
        })
        .unwrap_or_else(|| match &doc.root {
            Root::Multi {
                close_indent,
                close_inline: false,
                ..
            } => format!("{close_indent}    "),
            _ => "    ".to_string(),
        });
    let sibling = doc
        .elements()
        .find(|(_, element)| CREDENTIAL_GROUPS.contains(&element.group))
        .map(|(_, element)| element.spelling);
    let newline_before_close = rendered
        .close_tag
        .is_some_and(|close| rendered.text[rendered.root_start..close].contains('\n'));

    for op in ops {
        let existing = doc.find(op.group);
        match (&op.value, existing) {
            (Some(value), Some((index, element))) => {
                if element.value() == *value {
                    continue;
                }
                let sensitive = op.sensitive || element.is_sensitive();
                updated.push((index, value.clone()));
                changes.push(Change {
                    action: Action::Update,
                    param: element.name().to_string(),
                    before: shown(Some(&element.value()), sensitive),
                    after: shown(Some(value), sensitive),
                    sensitive,
                    line: line_of(
                        &rendered.text,
                        rendered.elements[index].clone().unwrap().start,
                    ),
                });
            }
            (Some(value), None) => {
                // No `</parameters>` to add before: the engine refuses.
                let close_tag = rendered.close_tag?;
                let name = match sibling {
                    Some(sibling) if CREDENTIAL_GROUPS.contains(&op.group) => {
                        spelling(op.group, sibling)
                    }
                    _ => op.name,
                };
                let password = is_password_group(op.group);
                let secure = if password {
                    format!(" secure={quote}true{quote}")
                } else {
                    String::new()
                };
                let element = format!(
                    "<parameter name={quote}{}{quote}{secure} value={quote}{}{quote}{empty_end}",
                    expected_escape(name, quote),
                    expected_escape(value, quote),
                );
                let insertion = if doc.close_starts_line() {
                    format!("{indent}{element}{eol}")
                } else if !newline_before_close {
                    element
                } else {
                    format!("{eol}{indent}{element}")
                };
                after.insertion.push_str(&insertion);
                added.push((name.to_string(), value.clone()));
                let sensitive = op.sensitive || password;
                changes.push(Change {
                    action: Action::Add,
                    param: name.to_string(),
                    before: Shown::Absent,
                    after: shown(Some(value), sensitive),
                    sensitive,
                    line: line_of(&rendered.text, close_tag),
                });
            }
            (None, Some((index, element))) => {
                removed.push(index);
                let sensitive = element.is_sensitive();
                changes.push(Change {
                    action: Action::Remove,
                    param: element.name().to_string(),
                    before: shown(Some(&element.value()), sensitive),
                    after: Shown::Absent,
                    sensitive,
                    line: line_of(
                        &rendered.text,
                        rendered.elements[index].clone().unwrap().start,
                    ),
                });
            }
            (None, None) => {}
        }
    }

    for (index, value) in &updated {
        if let Item::Param {
            element: Some(element),
            ..
        } = &mut after.items[*index]
        {
            element.rewritten_value = Some(expected_escape(value, element.value_quote()));
            element.value = value.chars().map(|character| (character, 0)).collect();
        }
    }
    let inline_close = matches!(
        doc.root,
        Root::Multi {
            close_inline: true,
            ..
        }
    );
    let whole_lines: Vec<usize> = removed
        .iter()
        .copied()
        .filter(|index| {
            let last_item = index + 1 == doc.items.len();
            let alone = matches!(doc.items[*index], Item::Param { suffix: None, .. });
            doc.starts_line(*index) && alone && !(inline_close && last_item)
        })
        .collect();
    for index in &removed {
        if let Item::Param { element, .. } = &mut after.items[*index] {
            *element = None;
        }
    }
    let mut index = 0;
    after.items.retain(|_| {
        let keep = !whole_lines.contains(&index);
        index += 1;
        keep
    });

    let mut parameters: Vec<(String, String)> = after
        .elements()
        .map(|(_, element)| (element.name().to_string(), element.value()))
        .collect();
    parameters.extend(added);
    Some(Expected {
        doc: after,
        changes,
        parameters,
    })
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

/// Every `<!-- … -->` section, in order.
fn comments(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    let mut rest = bytes;
    while let Some(start) = find(rest, b"<!--") {
        let body = &rest[start + 4..];
        let Some(end) = find(body, b"-->") else {
            break;
        };
        found.push(rest[start..start + 4 + end + 3].to_vec());
        rest = &body[end + 3..];
    }
    found
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The `<parameter>` children of the root as roxmltree reads them.
fn roxmltree_parameters(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let text = std::str::from_utf8(bytes).map_err(|error| error.to_string())?;
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let document = roxmltree::Document::parse(text).map_err(|error| error.to_string())?;
    let root = document.root_element();
    if root.tag_name().name() != "parameters" {
        return Err(format!("root is <{}>", root.tag_name().name()));
    }
    Ok(root
        .children()
        .filter(|node| node.is_element() && node.tag_name().name() == "parameter")
        .map(|node| {
            (
                node.attribute("name").unwrap_or_default().to_string(),
                node.attribute("value").unwrap_or_default().to_string(),
            )
        })
        .collect())
}

fn engine_parameters(config: &ConfigXml) -> Vec<(String, String)> {
    config
        .parameters()
        .iter()
        .map(|parameter| (parameter.name().to_string(), parameter.value().to_string()))
        .collect()
}

fn check_edit(doc: Doc, specs: Vec<OpSpec>) -> Result<(), TestCaseError> {
    let doc = doc.normalise();
    let original = render(&doc);
    let text = &original.text;

    // (a) The generated file parses, and the engine and roxmltree read what
    // was written, with the spans where it was written.
    let config = match ConfigXml::parse(text.as_bytes()) {
        Ok(config) => config,
        Err(error) => {
            return Err(TestCaseError::fail(format!(
                "generated file refused: {error}\n{text:?}"
            )))
        }
    };
    let written: Vec<(String, String)> = doc
        .elements()
        .map(|(_, element)| (element.name().to_string(), element.value()))
        .collect();
    prop_assert_eq!(&engine_parameters(&config), &written, "file {:?}", text);
    prop_assert_eq!(
        roxmltree_parameters(text.as_bytes()),
        Ok(written.clone()),
        "file {:?}",
        text
    );
    for (index, element) in doc.elements() {
        let parameter = config.get(element.name()).unwrap();
        prop_assert_eq!(
            Some(parameter.element_span()),
            original.elements[index].clone(),
            "element span of {:?} in {:?}",
            element.name(),
            text
        );
        prop_assert_eq!(parameter.is_secure(), element.is_secure());
    }

    let ops = resolve(&doc, &specs);
    let operations = operations(&ops);
    let result = config.edit(&operations);
    let Some(Expected {
        doc: expected_doc,
        changes: expected_changes,
        parameters: expected_parameters,
    }) = model(&doc, &original, &ops)
    else {
        prop_assert!(
            matches!(result, Err(EditError::EmptyRoot { .. })),
            "expected EmptyRoot, got {:?}",
            result
        );
        return Ok(());
    };
    let edited = match result {
        Ok(edited) => edited,
        Err(error) => {
            return Err(TestCaseError::fail(format!(
                "edit refused: {error}\nfile {text:?}\nops {ops:?}"
            )))
        }
    };
    prop_assert_eq!(&edited.changes, &expected_changes, "file {:?}", text);
    let expected = render(&expected_doc).text;
    let Some(new) = edited.document else {
        prop_assert!(
            expected_changes.is_empty() && expected == *text,
            "no document, but the model expected changes"
        );
        return Ok(());
    };
    prop_assert!(!expected_changes.is_empty());
    let new_bytes = new.bytes();
    let new_text = String::from_utf8_lossy(new_bytes);

    // (f) Untouched parameters keep their exact element bytes.
    for (index, element) in doc.elements() {
        if expected_changes
            .iter()
            .any(|change| change.param == element.name())
        {
            continue;
        }
        let before = &text.as_bytes()[original.elements[index].clone().unwrap()];
        let parameter = new.get(element.name());
        prop_assert!(parameter.is_some(), "{:?} vanished", element.name());
        let after = &new_bytes[parameter.unwrap().element_span()];
        prop_assert_eq!(
            String::from_utf8_lossy(before),
            String::from_utf8_lossy(after),
            "untouched {:?} changed",
            element.name()
        );
    }

    // (e) Comments are byte-identical, none removed.
    prop_assert_eq!(
        comments(text.as_bytes()),
        comments(new_bytes),
        "comments differ: {:?} -> {:?}",
        text,
        new_text
    );

    // (b) The new file is the original with exactly the expected splices.
    prop_assert_eq!(&*new_text, &expected, "\nfrom {:?}\nops  {:?}", text, ops);

    // (c) The result reads back what was asked, as the engine and as
    // roxmltree see it.
    for op in &ops {
        let found = new.get(op.name);
        match &op.value {
            Some(value) => {
                prop_assert_eq!(
                    found.map(|parameter| parameter.value()),
                    Some(value.as_str())
                )
            }
            None => prop_assert!(found.is_none(), "{:?} still present", op.name),
        }
    }
    prop_assert_eq!(&engine_parameters(&new), &expected_parameters);
    prop_assert_eq!(roxmltree_parameters(new_bytes), Ok(expected_parameters));

    // (d) Applying the same operations again changes nothing.
    let again = new.edit(&operations);
    prop_assert!(again.is_ok(), "second edit refused: {:?}", again);
    let again = again.unwrap();
    prop_assert!(
        again.changes.is_empty() && again.document.is_none(),
        "second edit changed {:?}",
        again.changes
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

fn choice() -> impl Strategy<Value = u8> {
    prop_oneof![2 => Just(0u8), 1 => any::<u8>()]
}

fn element() -> impl Strategy<Value = Element> {
    (
        0..GROUPS.len(),
        0..2usize,
        prop_oneof![3 => Just(Vec::new()), 1 => vec(0u8..4, 1..4)],
        vec((select(VALUE_CHARS), choice()), 0..8),
        any::<[bool; 3]>(),
        option::weighted(0.3, 0..SECURE_ATTRIBUTES.len()),
        option::weighted(0.1, vec((select(VALUE_CHARS), choice()), 0..4)),
        any::<u8>(),
        [separator(), separator(), separator(), separator()],
        prop::bool::weighted(0.1),
        0u8..5,
    )
        .prop_map(
            |(
                group,
                spelling,
                name_choices,
                value,
                single_quotes,
                secure,
                extra,
                order,
                separators,
                spaced_equals,
                close,
            )| Element {
                group,
                spelling,
                name_choices,
                value,
                single_quotes,
                secure,
                extra,
                order,
                separators,
                spaced_equals,
                close,
                rewritten_value: None,
            },
        )
}

fn separator() -> impl Strategy<Value = u8> {
    prop_oneof![8 => Just(0u8), 1 => Just(1), 1 => Just(2), 1 => Just(3)]
}

fn pieces() -> impl Strategy<Value = Vec<usize>> {
    vec(0..MISC_PIECES.len(), 0..6)
}

fn misc() -> impl Strategy<Value = Misc> {
    let kind = prop_oneof![
        4 => Just(MiscKind::Comment),
        1 => Just(MiscKind::CData),
        1 => Just(MiscKind::Instruction),
    ];
    (kind, pieces()).prop_map(|(kind, pieces)| Misc { kind, pieces })
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        6 => (
            "[ \t]{0,6}",
            option::weighted(0.1, misc()),
            element(),
            "[ \t]{0,2}",
            option::weighted(0.1, misc()),
        )
            .prop_map(|(indent, prefix, element, trailing, suffix)| Item::Param {
                indent,
                prefix,
                element: Some(element),
                trailing,
                suffix,
            }),
        2 => ("[ \t]{0,6}", misc()).prop_map(|(indent, misc)| Item::Misc { indent, misc }),
        1 => "[ \t]{0,3}".prop_map(|whitespace| Item::Blank { whitespace }),
    ]
}

fn root() -> impl Strategy<Value = Root> {
    prop_oneof![
        6 => (
            "[ ]{0,2}",
            prop::bool::weighted(0.15),
            "[ \t]{0,4}",
            prop::bool::weighted(0.2),
        )
            .prop_map(|(open_indent, open_inline, close_indent, close_inline)| Root::Multi {
                open_indent,
                open_inline,
                close_indent,
                close_inline,
            }
        ),
        2 => Just(Root::Single),
        1 => any::<bool>().prop_map(|spaced| Root::Empty { spaced }),
    ]
}

fn doc() -> impl Strategy<Value = Doc> {
    (
        any::<bool>(),
        option::of(any::<(bool, bool)>()),
        any::<bool>(),
        option::weighted(0.3, pieces()),
        root(),
        vec(item(), 0..10),
        option::weighted(0.2, pieces()),
        any::<bool>(),
    )
        .prop_map(
            |(bom, declaration, crlf, prolog, root, items, epilog, trailing_newline)| Doc {
                bom,
                declaration,
                crlf,
                prolog,
                root,
                items,
                epilog,
                trailing_newline,
                insertion: String::new(),
            },
        )
}

fn op_spec() -> impl Strategy<Value = OpSpec> {
    let value = vec(select(VALUE_CHARS), 0..8).prop_map(String::from_iter);
    let kind = prop_oneof![
        4 => value.prop_map(OpKind::Set),
        1 => Just(OpKind::SetSame),
        2 => Just(OpKind::Unset),
    ];
    (
        prop::bool::weighted(0.6),
        any::<prop::sample::Index>(),
        0..GROUPS.len(),
        0..2usize,
        kind,
        any::<bool>(),
    )
        .prop_map(
            |(existing, pick, group, spelling, kind, sensitive)| OpSpec {
                existing,
                pick,
                group,
                spelling,
                kind,
                sensitive,
            },
        )
}

// proptest's default of 256 cases each; `PROPTEST_CASES=20000` runs more.
proptest! {
    /// Every property of an edit at once: the file parses, the result is the
    /// original with exactly the modelled splices, it reads back as asked
    /// (also for roxmltree), comments and untouched elements keep their
    /// bytes, and repeating the edit is a no-op.
    #[test]
    fn edits_splice_exactly_what_the_model_predicts(
        doc in doc(),
        specs in vec(op_spec(), 0..6),
    ) {
        check_edit(doc, specs)?;
    }

    /// Two operations on one parameter (either spelling) are refused.
    #[test]
    fn two_operations_on_one_parameter_are_refused(
        doc in doc(),
        specs in vec(op_spec(), 0..4),
        group in 0..GROUPS.len(),
        spellings in any::<(bool, bool)>(),
        position in any::<prop::sample::Index>(),
    ) {
        let doc = doc.normalise();
        let rendered = render(&doc);
        let config = ConfigXml::parse(rendered.text.as_bytes()).unwrap();
        let mut ops: Vec<Op> = resolve(&doc, &specs)
            .into_iter()
            .filter(|op| op.group != group)
            .collect();
        let conflicting = [spellings.0, spellings.1].map(|second| Op {
            group,
            name: spelling(group, usize::from(second)),
            value: None,
            sensitive: false,
        });
        let at = position.index(ops.len() + 1);
        ops.insert(at, conflicting[0].clone());
        ops.push(conflicting[1].clone());
        let result = config.edit(&operations(&ops));
        prop_assert!(
            matches!(result, Err(EditError::Conflict { .. })),
            "expected a conflict, got {:?}",
            result
        );
    }
}

/// Characters XML 1.0 cannot hold.
const INVALID_CHARS: &[char] = &[
    '\u{0}', '\u{1}', '\u{8}', '\u{B}', '\u{C}', '\u{E}', '\u{1F}', '\u{FFFE}', '\u{FFFF}',
];

proptest! {
    /// A value XML cannot hold is refused, by its position only, before
    /// anything else happens.
    #[test]
    fn values_xml_cannot_hold_are_refused(
        doc in doc(),
        specs in vec(op_spec(), 0..4),
        prefix in vec(select(VALUE_CHARS), 0..5),
        invalid in select(INVALID_CHARS),
        suffix in vec(select(VALUE_CHARS), 0..3),
        group in 0..GROUPS.len(),
        position in any::<prop::sample::Index>(),
    ) {
        let doc = doc.normalise();
        let rendered = render(&doc);
        let config = ConfigXml::parse(rendered.text.as_bytes()).unwrap();
        let value: String = prefix
            .iter()
            .chain([&invalid])
            .chain(&suffix)
            .collect();
        let mut ops: Vec<Op> = resolve(&doc, &specs)
            .into_iter()
            .filter(|op| op.group != group)
            .collect();
        let at = position.index(ops.len() + 1);
        ops.insert(at, Op {
            group,
            name: spelling(group, 0),
            value: Some(value),
            sensitive: false,
        });
        let result = config.edit(&operations(&ops));
        match result {
            Err(EditError::InvalidValue { name, reason }) => {
                prop_assert_eq!(name, spelling(group, 0));
                prop_assert_eq!(reason.position, prefix.len() + 1);
            }
            other => prop_assert!(false, "expected InvalidValue, got {:?}", other),
        }
    }
}
