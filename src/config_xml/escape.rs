//! Attribute values as the MID's XML parser sees them: unescaping with XML's
//! attribute-value normalisation, and escaping for a given quote character so
//! that a written value reads back exactly as it was meant.
//!
//! Pure string work; knows nothing about parameters.

use std::fmt;

/// A character XML 1.0 cannot hold (a control character other than tab,
/// newline and carriage return, or U+FFFE/U+FFFF). Only its position is kept,
/// never the character or its neighbours: the value may be a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidCharacter {
    /// 1-based position of the character in the value, counted in characters.
    pub position: usize,
}

impl fmt::Display for InvalidCharacter {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "character {} of the value cannot be stored in XML (a control character or a non-character)",
            self.position
        )
    }
}

pub use crate::xml_char::is_xml_char;

/// Checks that every character of `value` can be written into XML.
pub fn check_xml_chars(value: &str) -> Result<(), InvalidCharacter> {
    match value.chars().position(|character| !is_xml_char(character)) {
        Some(index) => Err(InvalidCharacter {
            position: index + 1,
        }),
        None => Ok(()),
    }
}

/// Escapes `value` for an attribute delimited by `quote` (`"` or `'`).
///
/// `&`, `<`, `>` and the delimiting quote become entity references; tab,
/// newline and carriage return become character references, so attribute
/// normalisation cannot turn them into spaces. The caller has checked the
/// characters with [`check_xml_chars`].
pub fn escape_attribute(value: &str, quote: u8) -> String {
    let mut escaped = String::with_capacity(value.len() + 8);
    for character in value.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' if quote == b'"' => escaped.push_str("&quot;"),
            '\'' if quote == b'\'' => escaped.push_str("&apos;"),
            '\t' => escaped.push_str("&#9;"),
            '\n' => escaped.push_str("&#10;"),
            '\r' => escaped.push_str("&#13;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Why a raw attribute value could not be unescaped. The strict
/// well-formedness check runs first, so this only guards the reader itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnescapeError {
    /// Byte offset of the offending reference within the raw value.
    pub offset: usize,
    pub message: &'static str,
}

/// The value an XML parser reports for the raw attribute text `raw`:
/// line ends normalised, literal whitespace turned into spaces, entity and
/// character references replaced.
pub fn unescape_attribute(raw: &str) -> Result<String, UnescapeError> {
    let mut value = String::with_capacity(raw.len());
    let mut characters = raw.char_indices().peekable();
    while let Some((offset, character)) = characters.next() {
        match character {
            '&' => {
                let rest = &raw[offset + 1..];
                let end = rest.find(';').ok_or(UnescapeError {
                    offset,
                    message: "`&` that does not start a reference (write `&amp;`)",
                })?;
                let reference = &rest[..end];
                value.push(resolve_reference(reference).ok_or(UnescapeError {
                    offset,
                    message: "unknown or invalid entity reference",
                })?);
                // Skip the reference's name and its `;`.
                for _ in 0..reference.chars().count() + 1 {
                    characters.next();
                }
            }
            '<' => {
                return Err(UnescapeError {
                    offset,
                    message: "`<` inside an attribute value",
                })
            }
            '\r' => {
                if matches!(characters.peek(), Some((_, '\n'))) {
                    characters.next();
                }
                value.push(' ');
            }
            '\n' | '\t' => value.push(' '),
            other => value.push(other),
        }
    }
    Ok(value)
}

fn resolve_reference(reference: &str) -> Option<char> {
    match reference {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let number = reference.strip_prefix('#')?;
            let code = match number.strip_prefix('x') {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse::<u32>().ok()?,
            };
            char::from_u32(code).filter(|character| is_xml_char(*character))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_the_delimiting_quote_only() {
        let cases = [
            ("plain", b'"', "plain"),
            ("a&b<c>d", b'"', "a&amp;b&lt;c&gt;d"),
            ("say \"hi\" 'x'", b'"', "say &quot;hi&quot; 'x'"),
            ("say \"hi\" 'x'", b'\'', "say \"hi\" &apos;x&apos;"),
            ("tab\there\nnl\rcr", b'"', "tab&#9;here&#10;nl&#13;cr"),
            ("", b'"', ""),
            ("ünï €", b'"', "ünï €"),
        ];
        for (value, quote, expected) in cases {
            assert_eq!(escape_attribute(value, quote), expected, "value {value:?}");
        }
    }

    #[test]
    fn unescape_reverses_escape() {
        for value in ["a&b<c>d\"'", "\t\n\r x", "&amp;", "", "€𝄞"] {
            for quote in [b'"', b'\''] {
                let escaped = escape_attribute(value, quote);
                assert_eq!(unescape_attribute(&escaped).unwrap(), value);
            }
        }
    }

    #[test]
    fn unescape_normalises_literal_whitespace_like_an_xml_parser() {
        assert_eq!(unescape_attribute("a\tb\nc\r\nd\re").unwrap(), "a b c d e");
        assert_eq!(unescape_attribute("&#x41;&#66;&#9;").unwrap(), "AB\t");
    }

    #[test]
    fn unescape_refuses_bad_references() {
        for raw in ["a&b", "&nbsp;", "&#0;", "&#xFFFE;", "&#xZZ;", "a<b", "&;"] {
            assert!(
                unescape_attribute(raw).is_err(),
                "{raw:?} should be refused"
            );
        }
    }

    #[test]
    fn refuses_characters_xml_cannot_hold_by_position_only() {
        assert_eq!(check_xml_chars("ok\t\n\r"), Ok(()));
        assert_eq!(
            check_xml_chars("ab\u{1}c"),
            Err(InvalidCharacter { position: 3 })
        );
        assert_eq!(
            check_xml_chars("\u{FFFF}"),
            Err(InvalidCharacter { position: 1 })
        );
        assert!(!InvalidCharacter { position: 3 }
            .to_string()
            .contains('\u{1}'));
    }
}
