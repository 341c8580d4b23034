//! A unified diff of two versions of a config.xml with every sensitive value
//! masked, so `--diff` can be shown, logged and pasted safely.

use std::ops::Range;

use similar::TextDiff;

use crate::config_xml::{names, ConfigXml};

const MASK: &str = "(sensitive)";
const MASK_CHANGED: &str = "(sensitive, changed)";

/// The unified diff from `before` to `after`. The values of parameters that
/// are sensitive in either version, or named in `also_sensitive`, are
/// replaced by `(sensitive)`, or `(sensitive, changed)` in `after` when the
/// value differs, so a changed secret still shows as a changed line.
pub fn masked_unified_diff(
    before: &ConfigXml,
    after: &ConfigXml,
    also_sensitive: &[&str],
    label: &str,
) -> String {
    let is_sensitive = |name: &str| {
        also_sensitive
            .iter()
            .any(|other| names::same_parameter(other, name))
            || [before, after].iter().any(|document| {
                document
                    .get(name)
                    .is_some_and(|parameter| parameter.is_sensitive())
            })
    };
    let before_text = masked(before, |name, _| is_sensitive(name).then_some(MASK));
    let after_text = masked(after, |name, value| {
        is_sensitive(name).then(|| {
            let unchanged = before.get(name).is_some_and(|old| old.value() == value);
            if unchanged {
                MASK
            } else {
                MASK_CHANGED
            }
        })
    });
    TextDiff::from_lines(&before_text, &after_text)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{label}"), &format!("b/{label}"))
        .to_string()
}

/// The document's text with the value spans `mask` names replaced.
fn masked(document: &ConfigXml, mask: impl Fn(&str, &str) -> Option<&'static str>) -> String {
    let mut replacements: Vec<(Range<usize>, &str)> = document
        .parameters()
        .iter()
        .filter_map(|parameter| {
            mask(parameter.name(), parameter.value()).map(|text| (parameter.value_span(), text))
        })
        .collect();
    replacements.sort_by_key(|(range, _)| range.start);
    let bytes = document.bytes();
    let mut text = Vec::with_capacity(bytes.len());
    let mut cursor = 0;
    for (range, replacement) in replacements {
        text.extend_from_slice(&bytes[cursor..range.start]);
        text.extend_from_slice(replacement.as_bytes());
        cursor = range.end;
    }
    text.extend_from_slice(&bytes[cursor..]);
    // ConfigXml only holds UTF-8.
    String::from_utf8_lossy(&text).into_owned()
}
