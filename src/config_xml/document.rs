//! Reading a config.xml: a strict well-formedness check, then quick-xml's
//! tokens mapped back to the exact bytes of each parameter and its value.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use zeroize::Zeroize;

use super::error::{Location, ReadError};
use super::escape::unescape_attribute;
use super::names;
use super::BOM;

/// Files larger than this are refused: a shipped config.xml is about 10 KiB,
/// and a file this size is a mistake or an attack, not a MID configuration.
pub const MAX_CONFIG_BYTES: usize = 4 * 1024 * 1024;

/// Elements past this count are refused by the strict check (a real file has
/// a few hundred nodes), bounding the work any input can cause.
const MAX_NODES: u32 = 200_000;

/// One `<parameter name="…" value="…"/>` child of `<parameters>`.
#[derive(Clone)]
pub struct Parameter {
    name: String,
    value: String,
    secure: bool,
    quote: u8,
    value_span: Range<usize>,
    element_span: Range<usize>,
    location: Location,
}

impl Parameter {
    /// The name as the file spells it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value as an XML parser reads it (unescaped, normalised).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Marked `secure="true"` or `encrypt="true"`: the MID encrypts it.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Whether its value must never be shown: marked secure, or a password.
    pub fn is_sensitive(&self) -> bool {
        self.secure || names::is_password(&self.name)
    }

    /// Byte range of the raw value between its quotes.
    pub fn value_span(&self) -> Range<usize> {
        self.value_span.clone()
    }

    /// Byte range of the whole element, `<` to its last `>`.
    pub fn element_span(&self) -> Range<usize> {
        self.element_span.clone()
    }

    /// The quote character delimiting the value (`"` or `'`).
    pub fn quote(&self) -> u8 {
        self.quote
    }

    /// Where the element starts.
    pub fn location(&self) -> Location {
        self.location
    }
}

impl fmt::Debug for Parameter {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value: &dyn fmt::Debug = if self.is_sensitive() {
            &"(sensitive)"
        } else {
            &self.value
        };
        formatter
            .debug_struct("Parameter")
            .field("name", &self.name)
            .field("value", value)
            .field("secure", &self.secure)
            .field("location", &self.location)
            .finish()
    }
}

impl Drop for Parameter {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

/// The line ending a file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnding {
    Lf,
    CrLf,
}

impl LineEnding {
    pub fn as_str(self) -> &'static str {
        match self {
            LineEnding::Lf => "\n",
            LineEnding::CrLf => "\r\n",
        }
    }
}

/// How new parameter lines should look so that they match the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The file's line ending (the first one found; LF when there is none).
    pub line_ending: LineEnding,
    /// Indentation of parameter lines.
    pub indent: String,
    /// The quote character parameters use.
    pub quote: u8,
    /// `/>` or ` />`, as the file closes empty elements.
    pub empty_element_end: &'static str,
    /// Byte offset of `</parameters>`; `None` for an empty `<parameters/>`.
    pub close_tag: Option<usize>,
    /// Byte offset of `<parameters`.
    pub root_start: usize,
}

/// A parsed MID Server config.xml: the original bytes, its parameters with
/// the spans of their values, and its layout. Immutable; edits produce a new
/// one (see [`ConfigXml::edit`](super::ConfigXml::edit)).
pub struct ConfigXml {
    bytes: Vec<u8>,
    parameters: Vec<Parameter>,
    layout: Layout,
}

impl fmt::Debug for ConfigXml {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: a value set as sensitive is not marked so in the file.
        let names: Vec<&str> = self.parameters.iter().map(Parameter::name).collect();
        formatter
            .debug_struct("ConfigXml")
            .field("bytes", &self.bytes.len())
            .field("parameters", &names)
            .field("layout", &self.layout)
            .finish()
    }
}

impl Drop for ConfigXml {
    fn drop(&mut self) {
        // The file may hold a plaintext password between edit and encryption.
        self.bytes.zeroize();
    }
}

impl ConfigXml {
    /// Reads `bytes` as a MID config.xml. Refuses, with the line and column,
    /// anything that is not well-formed XML with a `<parameters>` root of
    /// named, valued, unique `<parameter>` elements.
    pub fn parse(bytes: &[u8]) -> Result<ConfigXml, ReadError> {
        if bytes.len() > MAX_CONFIG_BYTES {
            return Err(ReadError::TooLarge {
                size: bytes.len(),
                limit: MAX_CONFIG_BYTES,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|error| ReadError::NotUtf8 {
            at: Location::of_offset(bytes, error.valid_up_to()),
        })?;
        let bom_length = if bytes.starts_with(BOM) { BOM.len() } else { 0 };
        let body = &text[bom_length..];
        // A second BOM is not XML; quick-xml would skip it silently and
        // every offset after it would be off by three bytes.
        if body.starts_with('\u{feff}') {
            return Err(ReadError::Malformed {
                message: "a second byte order mark at the start of the file".into(),
                at: Location { line: 1, column: 1 },
            });
        }
        check_well_formed(body)?;

        let mut reader = Reader::from_str(body);
        reader.config_mut().check_end_names = true;
        let mut parameters: Vec<Parameter> = Vec::new();
        let mut depth = 0usize;
        let mut root_seen = false;
        let mut root_start = 0;
        let mut close_tag = None;
        let mut open_parameter: Option<Parameter> = None;
        loop {
            let start = bom_length + reader.buffer_position() as usize;
            let event = reader.read_event().map_err(|error| ReadError::Malformed {
                message: error.to_string(),
                at: Location::of_offset(bytes, bom_length + reader.error_position() as usize),
            })?;
            let end = bom_length + reader.buffer_position() as usize;
            match event {
                Event::Start(ref element) | Event::Empty(ref element) => {
                    let is_empty = matches!(event, Event::Empty(_));
                    if depth == 0 && !root_seen {
                        root_seen = true;
                        root_start = start;
                        let found = element.name().as_ref().to_string();
                        if found != "parameters" {
                            return Err(ReadError::WrongRoot {
                                found,
                                at: Location::of_offset(bytes, start),
                            });
                        }
                    } else if depth == 1 && element.name().as_ref() == "parameter" {
                        let parameter = read_parameter(bytes, element, start..end)?;
                        if is_empty {
                            parameters.push(parameter);
                        } else {
                            open_parameter = Some(parameter);
                        }
                    }
                    if !is_empty {
                        depth += 1;
                    }
                }
                Event::End(_) => {
                    depth = depth.saturating_sub(1);
                    if depth == 1 {
                        if let Some(mut parameter) = open_parameter.take() {
                            parameter.element_span.end = end;
                            parameters.push(parameter);
                        }
                    } else if depth == 0 {
                        close_tag = Some(start);
                    }
                }
                Event::Eof => break,
                // Comments, CDATA, processing instructions, text and
                // references are skipped: a commented-out parameter is not one.
                _ => {}
            }
        }
        check_unique(&parameters)?;
        let layout = detect_layout(bytes, &parameters, close_tag, root_start);
        Ok(ConfigXml {
            bytes: bytes.to_vec(),
            parameters,
            layout,
        })
    }

    /// The file's bytes, exactly as read.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The parameters in file order.
    pub fn parameters(&self) -> &[Parameter] {
        &self.parameters
    }

    /// The parameter called `name` or one of its aliases.
    pub fn get(&self, name: &str) -> Option<&Parameter> {
        self.parameters
            .iter()
            .find(|parameter| names::same_parameter(&parameter.name, name))
    }

    /// How new lines should look.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
}

/// The strict check: XML 1.0 well-formedness, no DTD, bounded size.
fn check_well_formed(body: &str) -> Result<(), ReadError> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..roxmltree::ParsingOptions::default()
    };
    match roxmltree::Document::parse_with_options(body, options) {
        Ok(_) => Ok(()),
        Err(roxmltree::Error::DtdDetected) => {
            let offset = body.find("<!DOCTYPE").unwrap_or(0);
            Err(ReadError::DocumentType {
                at: Location::of_offset(body.as_bytes(), offset),
            })
        }
        Err(error) => {
            let position = error.pos();
            let message = error.to_string().replace(&format!(" at {position}"), "");
            Err(ReadError::Malformed {
                message,
                at: Location {
                    line: position.row as usize,
                    column: position.col as usize,
                },
            })
        }
    }
}

fn read_parameter(
    bytes: &[u8],
    element: &BytesStart<'_>,
    element_span: Range<usize>,
) -> Result<Parameter, ReadError> {
    let location = Location::of_offset(bytes, element_span.start);
    let mut name = None;
    let mut value = None;
    let mut secure = false;
    for attribute in element.attributes().with_checks(true) {
        let attribute = attribute.map_err(|error| ReadError::Malformed {
            message: error.to_string(),
            at: location,
        })?;
        let raw_text: &str = &attribute.value;
        let raw = raw_text.as_bytes();
        let malformed = |message: &str| ReadError::Malformed {
            message: message.to_string(),
            at: location,
        };
        match attribute.key.as_ref() {
            "name" => {
                name =
                    Some(unescape_attribute(raw_text).map_err(|error| malformed(error.message))?);
            }
            "value" => {
                let span_start = offset_within(bytes, raw)
                    .ok_or_else(|| malformed("attribute value is not part of the file"))?;
                let quote = bytes
                    .get(span_start.wrapping_sub(1))
                    .copied()
                    .filter(|quote| *quote == b'"' || *quote == b'\'')
                    .ok_or_else(|| malformed("attribute value without quotes"))?;
                let unescaped =
                    unescape_attribute(raw_text).map_err(|error| malformed(error.message))?;
                value = Some((unescaped, quote, span_start..span_start + raw.len()));
            }
            "secure" | "encrypt" => {
                // Compared as an XML parser reads it: `&#116;rue` is `true`.
                let flag =
                    unescape_attribute(raw_text).map_err(|error| malformed(error.message))?;
                secure |= flag.trim().eq_ignore_ascii_case("true");
            }
            _ => {}
        }
    }
    let name = name
        .filter(|name| !name.is_empty())
        .ok_or(ReadError::MissingName { at: location })?;
    let (value, quote, value_span) = value.ok_or_else(|| ReadError::MissingValue {
        name: name.clone(),
        at: location,
    })?;
    Ok(Parameter {
        name,
        value,
        secure,
        quote,
        value_span,
        element_span,
        location,
    })
}

/// Where `part` (a slice borrowed from `whole`) starts within `whole`.
fn offset_within(whole: &[u8], part: &[u8]) -> Option<usize> {
    let whole_start = whole.as_ptr() as usize;
    let part_start = part.as_ptr() as usize;
    let offset = part_start.checked_sub(whole_start)?;
    (offset + part.len() <= whole.len()).then_some(offset)
}

fn check_unique(parameters: &[Parameter]) -> Result<(), ReadError> {
    let mut seen: HashMap<&str, &Parameter> = HashMap::new();
    for parameter in parameters {
        let canonical = names::canonical(&parameter.name);
        if let Some(first) = seen.insert(canonical, parameter) {
            return Err(ReadError::Duplicate {
                name: parameter.name.clone(),
                first_spelling: first.name.clone(),
                first_line: first.location.line,
                at: parameter.location,
            });
        }
    }
    Ok(())
}

fn detect_layout(
    bytes: &[u8],
    parameters: &[Parameter],
    close_tag: Option<usize>,
    root_start: usize,
) -> Layout {
    let line_ending = match bytes.iter().position(|byte| *byte == b'\n') {
        Some(newline) if newline > 0 && bytes[newline - 1] == b'\r' => LineEnding::CrLf,
        _ => LineEnding::Lf,
    };
    // The last parameter that stands at the start of its own line shows the
    // indentation in use; without one, indent one level past the close tag.
    let indent = parameters
        .iter()
        .rev()
        .find_map(|parameter| leading_indent(bytes, parameter.element_span.start))
        .unwrap_or_else(|| {
            let base = close_tag
                .and_then(|offset| leading_indent(bytes, offset))
                .unwrap_or_default();
            format!("{base}    ")
        });
    let last = parameters.last();
    let quote = last.map_or(b'"', |parameter| parameter.quote);
    let empty_element_end = match last {
        Some(parameter) if bytes[..parameter.element_span.end].ends_with(b" />") => " />",
        _ => "/>",
    };
    Layout {
        line_ending,
        indent,
        quote,
        empty_element_end,
        close_tag,
        root_start,
    }
}

/// The whitespace between the start of the line and `offset`, when only
/// whitespace stands there.
pub(super) fn leading_indent(bytes: &[u8], offset: usize) -> Option<String> {
    let line_start = line_start(bytes, offset);
    let prefix = &bytes[line_start..offset];
    let prefix = if line_start == 0 {
        prefix.strip_prefix(BOM).unwrap_or(prefix)
    } else {
        prefix
    };
    prefix
        .iter()
        .all(|byte| *byte == b' ' || *byte == b'\t')
        .then(|| String::from_utf8_lossy(prefix).into_owned())
}

/// Offset of the first byte of the line holding `offset`.
pub(super) fn line_start(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset]
        .iter()
        .rposition(|byte| *byte == b'\n')
        .map_or(0, |newline| newline + 1)
}
