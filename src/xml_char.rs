//! Which characters XML 1.0 can hold: shared by the config.xml engine and
//! by the checks of secret values (which must fit a config.xml), so that
//! the two never disagree and neither imports the other.

/// Whether XML 1.0 allows `character` anywhere in a document.
pub fn is_xml_char(character: char) -> bool {
    matches!(character, '\t' | '\n' | '\r')
        || ('\u{20}'..='\u{D7FF}').contains(&character)
        || ('\u{E000}'..='\u{FFFD}').contains(&character)
        || character >= '\u{10000}'
}
