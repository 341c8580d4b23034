//! Shared checks for the fuzz targets in `fuzz_targets/`: the config.xml
//! reader and editor ([`check_document`], [`check_edit`]), and the input
//! loaders ([`check_inventory`], [`check_playbook`], [`check_facts`]).
//!
//! Every check panics (with a message that names the broken invariant) when
//! midfleet does something it must never do; an input that midfleet
//! refuses with an error (or reports in its diagnostics) is never a failure
//! here.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::OnceLock;

use midfleet::config_xml::{
    check_xml_chars, names, unescape_attribute, ConfigXml, EditError, Location, Operation, Shown,
    BOM,
};
use midfleet::diagnostic::{self, Diagnostic};
use midfleet::facts::{self, ConfigProblem, Facts};
use midfleet::inventory::{Host, Inventory, ALL, UNGROUPED};
use midfleet::playbook::{Amount, Playbook, SetValue};
use midfleet::template::Templates;
use sha2::{Digest, Sha256};

/// How many operations one edit input may carry (more only slows the fuzzer).
pub const MAX_OPERATIONS: usize = 8;

/// Invariants of a successfully parsed document:
///
/// - spans: each value span and element span lies within the bytes, spans
///   come in file order without overlapping, the element starts with `<` and
///   ends with `>`, and the value sits between two of its quote characters;
/// - the raw bytes of each value span unescape to `value()`;
/// - names are non-empty and unique, counting the `glide.glidesoap.*` aliases;
/// - parsing `doc.bytes()` again gives the same parameters;
/// - an independent XML parser (roxmltree, namespace-unaware comparison of
///   the raw tag name) finds the same parameters with the same names, values
///   and `secure`/`encrypt` flags.
pub fn check_document(doc: &ConfigXml) {
    let bytes = doc.bytes();
    let mut previous_end = 0usize;
    for (index, parameter) in doc.parameters().iter().enumerate() {
        // `name=""` is refused as `MissingName`: no operation can name it.
        assert!(
            !parameter.name().is_empty(),
            "parameter {index}: accepted with an empty name"
        );
        let value = parameter.value_span();
        let element = parameter.element_span();
        assert!(
            value.start <= value.end && value.end <= bytes.len(),
            "parameter {index}: value span {value:?} outside the {} bytes",
            bytes.len()
        );
        assert!(
            element.start < element.end && element.end <= bytes.len(),
            "parameter {index}: element span {element:?} outside the {} bytes",
            bytes.len()
        );
        assert!(
            element.start >= previous_end,
            "parameter {index}: element span {element:?} starts before the previous one ends ({previous_end})"
        );
        previous_end = element.end;
        assert!(
            element.start < value.start && value.end < element.end,
            "parameter {index}: value span {value:?} not inside element span {element:?}"
        );
        assert_eq!(
            bytes[element.start], b'<',
            "parameter {index}: element does not start with `<`"
        );
        assert_eq!(
            bytes[element.end - 1],
            b'>',
            "parameter {index}: element does not end with `>`"
        );
        let quote = parameter.quote();
        assert!(
            quote == b'"' || quote == b'\'',
            "parameter {index}: quote {quote:#x}"
        );
        assert_eq!(
            bytes[value.start - 1],
            quote,
            "parameter {index}: no opening quote before the value span"
        );
        assert_eq!(
            bytes[value.end], quote,
            "parameter {index}: no closing quote after the value span"
        );
        let raw = std::str::from_utf8(&bytes[value.clone()]).unwrap_or_else(|_| {
            panic!("parameter {index}: value span {value:?} splits a UTF-8 character")
        });
        assert!(
            !raw.as_bytes().contains(&quote),
            "parameter {index}: value span holds its own quote"
        );
        let unescaped = unescape_attribute(raw).unwrap_or_else(|error| {
            panic!(
                "parameter {index}: raw value does not unescape: {}",
                error.message
            )
        });
        assert!(
            unescaped == parameter.value(),
            "parameter {index}: raw value unescapes to something other than value()"
        );
        assert_eq!(
            parameter.location(),
            Location::of_offset(bytes, element.start),
            "parameter {index}: location() is not where the element span starts"
        );
        assert_eq!(
            parameter.is_sensitive(),
            parameter.is_secure() || names::is_password(parameter.name()),
            "parameter {index}: is_sensitive"
        );
    }
    let root_start = doc.layout().root_start;
    assert!(
        bytes[root_start..].starts_with(b"<parameters")
            && doc
                .parameters()
                .first()
                .is_none_or(|first| root_start < first.element_span().start),
        "layout().root_start {root_start} is not where `<parameters` is"
    );
    if let Some(close_tag) = doc.layout().close_tag {
        assert!(
            close_tag >= previous_end && bytes[close_tag..].starts_with(b"</parameters"),
            "layout().close_tag {close_tag} is not where `</parameters` is"
        );
    }
    let parameters = doc.parameters();
    for (index, parameter) in parameters.iter().enumerate() {
        for earlier in &parameters[..index] {
            assert!(
                !names::same_parameter(earlier.name(), parameter.name()),
                "parameters {:?} and {:?} are the same parameter",
                earlier.name(),
                parameter.name()
            );
        }
        let found = doc
            .get(parameter.name())
            .expect("get() misses a listed parameter");
        assert_eq!(
            found.element_span(),
            parameter.element_span(),
            "get() finds another parameter"
        );
    }

    let again = ConfigXml::parse(bytes).expect("the bytes of a parsed document no longer parse");
    assert_eq!(
        summary(doc),
        summary(&again),
        "parsing doc.bytes() again gives other parameters"
    );
    assert_eq!(
        doc.layout(),
        again.layout(),
        "parsing doc.bytes() again gives another layout"
    );

    let expected = oracle(bytes);
    let found: Vec<(&str, &str)> = parameters
        .iter()
        .map(|parameter| (parameter.name(), parameter.value()))
        .collect();
    let expected_names: Vec<(&str, &str)> = expected
        .iter()
        .map(|read| (read.name.as_str(), read.value.as_str()))
        .collect();
    if found != expected_names {
        panic!(
            "midfleet and roxmltree read different parameters:\n midfleet: {found:?}\n roxmltree: {expected_names:?}"
        );
    }
    for (parameter, read) in parameters.iter().zip(&expected) {
        assert_eq!(
            parameter.is_secure(),
            read.secure,
            "parameter {:?}: midfleet reads secure={}, an XML parser's normalised secure/encrypt \
             value says {}",
            parameter.name(),
            parameter.is_secure(),
            read.secure
        );
    }
}

/// One `<parameter>` as roxmltree reads it.
struct OracleParameter {
    name: String,
    value: String,
    /// `secure` or `encrypt` whose normalised value, trimmed, is `true`
    /// (case-insensitive): midfleet's documented rule on what the MID reads.
    secure: bool,
}

type Summary = Vec<(
    String,
    String,
    bool,
    u8,
    std::ops::Range<usize>,
    std::ops::Range<usize>,
)>;

fn summary(doc: &ConfigXml) -> Summary {
    doc.parameters()
        .iter()
        .map(|parameter| {
            (
                parameter.name().to_string(),
                parameter.value().to_string(),
                parameter.is_secure(),
                parameter.quote(),
                parameter.value_span(),
                parameter.element_span(),
            )
        })
        .collect()
}

/// Each `<parameter>` child of the root, as roxmltree reads a file midfleet
/// accepted.
fn oracle(bytes: &[u8]) -> Vec<OracleParameter> {
    let text = std::str::from_utf8(bytes).expect("midfleet accepted a file that is not UTF-8");
    let body = text
        .strip_prefix(std::str::from_utf8(BOM).unwrap())
        .unwrap_or(text);
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: 200_000,
        ..roxmltree::ParsingOptions::default()
    };
    let document = roxmltree::Document::parse_with_options(body, options)
        .unwrap_or_else(|error| panic!("midfleet accepted a file roxmltree refuses: {error}"));
    let root = document.root_element();
    assert_eq!(
        raw_tag_name(body, root),
        "parameters",
        "midfleet accepted another root"
    );
    root.children()
        .filter(|node| node.is_element() && raw_tag_name(body, *node) == "parameter")
        .map(|node| {
            // Attributes by their name as written: roxmltree reads
            // `:secure` as `secure`, midfleet (rightly) does not.
            let named = |qname: &str| {
                node.attributes()
                    .find(|attribute| &body[attribute.range_qname()] == qname)
                    .map(|attribute| attribute.value())
            };
            let is_true = |text: &str| text.trim().eq_ignore_ascii_case("true");
            let secure = node
                .attributes()
                .filter(|attribute| matches!(&body[attribute.range_qname()], "secure" | "encrypt"))
                .any(|attribute| is_true(attribute.value()));
            OracleParameter {
                name: named("name").expect("parameter without name").to_string(),
                value: named("value").expect("parameter without value").to_string(),
                secure,
            }
        })
        .collect()
}

/// The element's name as written, prefix and all (midfleet compares names
/// without resolving namespaces).
fn raw_tag_name<'a>(body: &'a str, node: roxmltree::Node<'_, '_>) -> &'a str {
    let tag = &body[node.range().start + 1..];
    let end = tag
        .find(|character: char| {
            character.is_ascii_whitespace() || character == '/' || character == '>'
        })
        .unwrap_or(tag.len());
    &tag[..end]
}

/// One operation decoded from fuzz input, owning its strings.
#[derive(Debug, Clone)]
pub enum OwnedOperation {
    Set {
        name: String,
        value: String,
        sensitive: bool,
    },
    Unset {
        name: String,
    },
}

impl OwnedOperation {
    pub fn as_operation(&self) -> Operation<'_> {
        match self {
            OwnedOperation::Set {
                name,
                value,
                sensitive,
            } => Operation::Set {
                name,
                value,
                sensitive: *sensitive,
            },
            OwnedOperation::Unset { name } => Operation::Unset { name },
        }
    }

    pub fn name(&self) -> &str {
        match self {
            OwnedOperation::Set { name, .. } | OwnedOperation::Unset { name } => name,
        }
    }
}

/// Splits an edit input into a file and operations.
///
/// Layout: `FILE \0 OP \0 OP …`. The file is everything before the first NUL
/// (a NUL can never appear in an XML file, so a plain config.xml is a valid
/// input with no operations). Each `OP` is one kind byte and a body:
/// `u` = Unset (the body is the name), `p` = Set marked sensitive, any other
/// byte = Set; a Set's body is `NAME \x1f VALUE` (no `\x1f`: empty value).
/// Names and values are decoded as lossy UTF-8. At most [`MAX_OPERATIONS`]
/// are used; empty chunks are skipped.
pub fn split_edit_input(data: &[u8]) -> (&[u8], Vec<OwnedOperation>) {
    let (file, rest) = match data.iter().position(|byte| *byte == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, &data[data.len()..]),
    };
    let text = |bytes: &[u8]| -> String { String::from_utf8_lossy(bytes).into_owned() };
    let operations = rest
        .split(|byte| *byte == 0)
        .filter(|chunk| !chunk.is_empty())
        .take(MAX_OPERATIONS)
        .map(|chunk| {
            let (kind, body) = (chunk[0], &chunk[1..]);
            let (name, value) = match body.iter().position(|byte| *byte == 0x1f) {
                Some(separator) => (&body[..separator], &body[separator + 1..]),
                None => (body, &body[body.len()..]),
            };
            match kind {
                b'u' => OwnedOperation::Unset { name: text(body) },
                kind => OwnedOperation::Set {
                    name: text(name),
                    value: text(value),
                    sensitive: kind == b'p',
                },
            }
        })
        .collect();
    (file, operations)
}

/// The bytes outside every parameter element, ASCII whitespace removed.
fn skeleton(doc: &ConfigXml) -> Vec<u8> {
    let bytes = doc.bytes();
    let mut outside = Vec::with_capacity(bytes.len());
    let mut cursor = 0;
    for parameter in doc.parameters() {
        let element = parameter.element_span();
        outside.extend_from_slice(&bytes[cursor..element.start]);
        cursor = element.end;
    }
    outside.extend_from_slice(&bytes[cursor..]);
    outside.retain(|byte| !byte.is_ascii_whitespace());
    outside
}

/// Whether `doc` already holds what `operations` ask.
fn satisfies(doc: &ConfigXml, operations: &[OwnedOperation]) -> bool {
    operations.iter().all(|operation| match operation {
        OwnedOperation::Set { name, value, .. } => doc
            .get(name)
            .is_some_and(|parameter| parameter.value() == value),
        OwnedOperation::Unset { name } => doc.get(name).is_none(),
    })
}

/// Parses `file`, applies `operations`, and checks the result:
///
/// - an edit never fails verification (`EditError::Verification` is
///   midfleet's own "internal error");
/// - `document` is `None` exactly when there are no changes, and then the
///   file already held what was asked;
/// - the new document passes [`check_document`], each set value reads back,
///   each unset name is gone;
/// - every parameter no operation names keeps its exact bytes, in order,
///   and no parameter appears that no Set asked for;
/// - a change to a sensitive parameter never carries its value;
/// - editing the result again with the same operations changes nothing.
pub fn check_edit(file: &[u8], operations: &[OwnedOperation]) {
    let Ok(original) = ConfigXml::parse(file) else {
        return;
    };
    let borrowed: Vec<Operation<'_>> = operations
        .iter()
        .map(OwnedOperation::as_operation)
        .collect();
    let edited = match original.edit(&borrowed) {
        Ok(edited) => edited,
        Err(EditError::Verification(message)) => {
            panic!("edit failed its own verification: {message}")
        }
        Err(EditError::EmptyRoot { .. }) => {
            assert!(
                original.layout().close_tag.is_none(),
                "EmptyRoot for a root with a close tag"
            );
            return;
        }
        Err(_) => return,
    };
    assert_eq!(
        edited.changes.is_empty(),
        edited.document.is_none(),
        "changes and document disagree: {} changes, document {}",
        edited.changes.len(),
        if edited.document.is_some() {
            "present"
        } else {
            "absent"
        }
    );
    assert!(
        edited.changes.len() <= operations.len(),
        "more changes than operations"
    );
    for change in &edited.changes {
        let operation = operations
            .iter()
            .find(|operation| names::same_parameter(operation.name(), &change.param))
            .unwrap_or_else(|| panic!("change to {:?} that no operation asked for", change.param));
        let sensitive = matches!(
            operation,
            OwnedOperation::Set {
                sensitive: true,
                ..
            }
        ) || names::is_password(&change.param)
            || original
                .get(operation.name())
                .is_some_and(|parameter| parameter.is_sensitive());
        assert_eq!(
            change.sensitive, sensitive,
            "change to {:?}: sensitive flag",
            change.param
        );
        if sensitive {
            assert!(
                !matches!(change.before, Shown::Value(_))
                    && !matches!(change.after, Shown::Value(_)),
                "change to sensitive {:?} carries a value",
                change.param
            );
        }
    }
    let Some(document) = edited.document else {
        assert!(
            satisfies(&original, operations),
            "no change, but the file does not hold what was asked"
        );
        return;
    };

    check_document(&document);
    let reread = ConfigXml::parse(document.bytes()).expect("the edited bytes do not parse");
    for operation in operations {
        let found = reread.get(operation.name());
        match operation {
            OwnedOperation::Set { name, value, .. } => {
                let parameter =
                    found.unwrap_or_else(|| panic!("set {name:?} is missing after the edit"));
                assert!(
                    parameter.value() == value,
                    "set {name:?} reads back another value"
                );
            }
            OwnedOperation::Unset { name } => {
                assert!(
                    found.is_none(),
                    "unset {name:?} is still there after the edit"
                );
            }
        }
    }

    // Parameters no operation names keep their exact bytes and their order;
    // the only other parameters are the ones a Set asked for.
    let named = |name: &str| {
        operations
            .iter()
            .any(|operation| names::same_parameter(operation.name(), name))
    };
    let untouched = |doc: &ConfigXml| -> Vec<Vec<u8>> {
        doc.parameters()
            .iter()
            .filter(|parameter| !named(parameter.name()))
            .map(|parameter| doc.bytes()[parameter.element_span()].to_vec())
            .collect()
    };
    assert!(
        untouched(&original) == untouched(&reread),
        "parameters no operation names changed, moved or appeared"
    );
    // Outside the parameter elements, an edit only adds or removes
    // whitespace (indentation and line ends): comments, the declaration, the
    // root's tags and any other bytes stay as they were.
    assert!(
        skeleton(&original) == skeleton(&reread),
        "the edit changed bytes outside the parameter elements:\n before: {:?}\n after:  {:?}",
        String::from_utf8_lossy(&skeleton(&original)),
        String::from_utf8_lossy(&skeleton(&reread))
    );
    let sets = operations
        .iter()
        .filter(|operation| matches!(operation, OwnedOperation::Set { .. }))
        .count();
    assert_eq!(
        reread.parameters().len(),
        untouched(&original).len() + sets,
        "the edited file has parameters nobody asked for"
    );

    // Idempotence: the same operations on the result change nothing.
    let again = reread
        .edit(&borrowed)
        .unwrap_or_else(|error| panic!("editing the result again fails: {error}"));
    assert!(
        again.changes.is_empty() && again.document.is_none(),
        "editing the result again changes {:?}",
        again
            .changes
            .iter()
            .map(|change| &change.param)
            .collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------
// The input loaders: inventory, playbook, facts reply.

/// Hosts, groups and patterns checked one by one per input (a range can
/// expand to 100,000 hosts; checking each would only slow the fuzzer).
pub const MAX_NAMES_CHECKED: usize = 8;

/// Panics unless `at` is a position in `text`: an existing line (lines end
/// at `\n`, as `Location::of_offset` and the INI reader count them) and a
/// column from 1 to one past the line's last character.
pub fn check_text_location(text: &str, at: diagnostic::Location, what: &dyn std::fmt::Display) {
    let lines = text.split('\n').count();
    let line = at
        .line
        .checked_sub(1)
        .and_then(|index| text.split('\n').nth(index))
        .unwrap_or_else(|| panic!("{what}: line {} of a text of {lines} lines", at.line));
    let width = line.chars().count();
    assert!(
        (1..=width + 1).contains(&at.column),
        "{what}: column {} of line {}, which has {width} characters",
        at.column,
        at.line
    );
}

/// Every location `diagnostics` give lies in `text`, and every origin is
/// the one file read (`path`).
pub fn check_diagnostic_locations<'a>(
    path: &Path,
    text: &str,
    diagnostics: impl IntoIterator<Item = &'a Diagnostic>,
) {
    for diagnostic in diagnostics {
        assert!(
            !diagnostic.message.is_empty(),
            "a diagnostic without a message"
        );
        let Some(origin) = &diagnostic.origin else {
            continue;
        };
        assert_eq!(
            origin.file, path,
            "diagnostic `{diagnostic}` names another file"
        );
        if let Some(at) = origin.at {
            check_text_location(text, at, diagnostic);
        }
    }
}

/// The text of an input file as midfleet's file readers take it; when it
/// is refused (not UTF-8, Ansible Vault), checks the refusal instead and
/// returns `None`. A not-UTF-8 location counts characters of the raw bytes
/// (a byte that does not continue a UTF-8 sequence starts one).
pub fn decode_input(path: &Path, bytes: &[u8]) -> Option<String> {
    let diagnostic = match midfleet::source_file::decode(path, bytes.to_vec()) {
        Ok(text) => {
            assert!(
                !text.starts_with('\u{feff}') || bytes.starts_with(b"\xEF\xBB\xBF\xEF\xBB\xBF"),
                "a BOM left at the start of the text"
            );
            return Some(text);
        }
        Err(diagnostic) => diagnostic,
    };
    assert!(diagnostic.is_error(), "a refusal that is not an error");
    let origin = diagnostic
        .origin
        .as_ref()
        .expect("a refusal without a file");
    assert_eq!(origin.file, path, "a refusal names another file");
    if let Some(at) = origin.at {
        let lines = bytes.split(|byte| *byte == b'\n').count();
        let line = at
            .line
            .checked_sub(1)
            .and_then(|index| bytes.split(|byte| *byte == b'\n').nth(index))
            .unwrap_or_else(|| panic!("{diagnostic}: line {} of {lines}", at.line));
        let line = if at.line == 1 {
            line.strip_prefix(BOM).unwrap_or(line)
        } else {
            line
        };
        let width = line.iter().filter(|byte| (**byte & 0xC0) != 0x80).count();
        assert!(
            (1..=width + 1).contains(&at.column),
            "{diagnostic}: column {} of a line of {width} characters",
            at.column
        );
    }
    None
}

/// The SHA-256 of `value`'s `Debug` text, hashed as it is written (the
/// text of a large inventory would double the memory the check takes).
fn debug_digest(value: &impl std::fmt::Debug) -> [u8; 32] {
    struct Hashing(Sha256);
    impl std::fmt::Write for Hashing {
        fn write_str(&mut self, text: &str) -> std::fmt::Result {
            self.0.update(text.as_bytes());
            Ok(())
        }
    }
    let mut hashing = Hashing(Sha256::new());
    write!(hashing, "{value:?}").expect("Debug never fails");
    hashing.0.finalize().into()
}

/// The rule `check_name` enforces on every host and group name.
fn is_clean_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && !name.chars().any(|character| {
            character.is_whitespace() || character.is_control() || ",:!&".contains(character)
        })
}

/// Splits an inventory input: the first byte picks the file name (`i`:
/// `hosts.ini`, `y`: `inventory.yml`, anything else: `hosts`, whose format
/// is sniffed as Ansible does), the file is the rest up to the first NUL,
/// and what follows the NUL (lossy UTF-8) is a host pattern to select.
pub fn split_inventory_input(data: &[u8]) -> Option<(&'static Path, &[u8], Option<String>)> {
    let (&kind, rest) = data.split_first()?;
    let path = Path::new(match kind {
        b'i' => "hosts.ini",
        b'y' => "inventory.yml",
        _ => "hosts",
    });
    Some(match rest.iter().position(|byte| *byte == 0) {
        Some(nul) => (
            path,
            &rest[..nul],
            Some(String::from_utf8_lossy(&rest[nul + 1..]).into_owned()),
        ),
        None => (path, rest, None),
    })
}

/// Loads an inventory file's bytes through midfleet's reader and checks:
///
/// - every diagnostic's location is in the text, and names this file;
/// - loading the same text again gives the same inventory and diagnostics;
/// - the graph: `all` exists; every host and group name is clean (see
///   `check_name`); group members and children exist; no group is its own
///   child; every host is in some group other than `all` (`ungrouped` at
///   least);
/// - patterns: `all` selects every host; a group selects its hosts, a host
///   itself, `all:!G` all but G's hosts, `G:&H` the hosts in both, `NAME*`
///   at least NAME; any selection is inventory hosts without repeats, in
///   the order of `all` when it narrows `all`;
/// - resolving a host (variables, templates) gives diagnostics in the text,
///   and a host with its own name, a `mid_home` without trailing `/` and an
///   absolute `config`.
pub fn check_inventory(data: &[u8]) {
    let Some((path, file, pattern)) = split_inventory_input(data) else {
        return;
    };
    let Some(text) = decode_input(path, file) else {
        return;
    };
    // One inventory at a time: a range can make one of hundreds of MB.
    let (first, first_diagnostics) = Inventory::from_text(path, &text);
    let first_digest = debug_digest(&first);
    drop(first);
    let (inventory, diagnostics) = Inventory::from_text(path, &text);
    assert!(
        debug_digest(&inventory) == first_digest,
        "loading the same text twice gives two inventories"
    );
    assert!(
        first_diagnostics.into_vec() == diagnostics.clone().into_vec(),
        "loading the same text twice gives other diagnostics"
    );
    check_diagnostic_locations(path, &text, diagnostics.iter());

    check_inventory_graph(&inventory);
    check_selections(&inventory, pattern.as_deref());

    let templates = Templates::new();
    let hosts: Vec<String> = inventory
        .host_entries()
        .take(MAX_NAMES_CHECKED)
        .map(|entry| entry.name.clone())
        .collect();
    for name in hosts {
        match inventory.resolve(&name, &templates) {
            Ok(host) => {
                assert_eq!(host.name, name, "resolved under another name");
                assert!(
                    !host.mid_home.ends_with('/'),
                    "host {name}: mid_home ends with `/`"
                );
                assert!(
                    host.config.starts_with('/'),
                    "host {name}: config is not absolute"
                );
                // The facts script quotes every value: building it must work
                // for any host that resolves.
                let script = facts::script(&host);
                assert!(script.contains("midfleet-facts 1"));
            }
            Err(problems) => {
                assert!(!problems.is_empty(), "host {name}: Err without a problem");
                assert!(
                    problems.iter().all(Diagnostic::is_error),
                    "host {name}: a warning returned as a failure"
                );
                check_diagnostic_locations(path, &text, &problems);
            }
        }
    }
}

fn check_inventory_graph(inventory: &Inventory) {
    assert!(inventory.group(ALL).is_some(), "no group `all`");
    let host_names: Vec<&str> = inventory
        .host_entries()
        .map(|entry| entry.name.as_str())
        .collect();
    let mut in_a_group = BTreeSet::new();
    for group in inventory.groups() {
        assert!(is_clean_name(&group.name), "group {:?}", group.name);
        assert!(
            !group.children.contains(&group.name),
            "group {} is its own child",
            group.name
        );
        for child in &group.children {
            assert!(
                inventory.group(child).is_some(),
                "group {}: child {child} does not exist",
                group.name
            );
        }
        for host in &group.hosts {
            assert!(
                inventory.host_entry(host).is_some(),
                "group {}: host {host} does not exist",
                group.name
            );
            if group.name != ALL {
                in_a_group.insert(host.as_str());
            }
        }
    }
    for entry in inventory.host_entries() {
        assert!(is_clean_name(&entry.name), "host {:?}", entry.name);
        assert!(
            in_a_group.contains(entry.name.as_str()),
            "host {} is in no group (not even `ungrouped`)",
            entry.name
        );
    }
    // Every host, in Ansible's order (which is not the inventory's).
    let all: BTreeSet<String> = inventory.hosts_of_group(ALL).into_iter().collect();
    let every: BTreeSet<String> = host_names.iter().map(|name| name.to_string()).collect();
    assert!(all == every, "the hosts of `all` are not every host");
}

/// The inventory's hosts.
type Positions<'a> = HashMap<&'a str, usize>;

/// The hosts `pattern` selects; checks they are inventory hosts, each
/// once. `None` when the pattern is refused.
fn selected(inventory: &Inventory, positions: &Positions, pattern: &str) -> Option<Vec<String>> {
    let selection = inventory.select(pattern, None).ok()?;
    let mut seen = HashSet::new();
    for host in &selection.hosts {
        assert!(
            positions.contains_key(host.as_str()),
            "pattern {pattern:?} selects {host:?}, not in the inventory"
        );
        assert!(
            seen.insert(host.as_str()),
            "pattern {pattern:?}: {host:?} repeated"
        );
    }
    Some(selection.hosts)
}

/// A name that `select` takes as that group or host, and nothing else: no
/// glob, regex, subscript or `.` (which Ansible also matches against
/// hosts).
fn plain_term(name: &str) -> bool {
    !matches!(name, "all" | "*" | UNGROUPED)
        && !name.starts_with(['@', '~'])
        && !name.contains(['*', '?', '[', ']', '.'])
}

fn check_selections(inventory: &Inventory, pattern: Option<&str>) {
    let every: Vec<String> = inventory
        .host_entries()
        .map(|entry| entry.name.clone())
        .collect();
    let positions: Positions = every
        .iter()
        .enumerate()
        .map(|(index, host)| (host.as_str(), index))
        .collect();
    let selected = |pattern: &str| selected(inventory, &positions, pattern);
    let all: Vec<String> = inventory.hosts_of_group("all").into_iter().collect();
    let all_set: HashSet<&String> = all.iter().collect();
    assert!(
        selected("all").as_ref() == Some(&all) && all_set == every.iter().collect(),
        "`all` does not select every host"
    );
    // `@FILE` reads a file: never from fuzz input.
    if let Some(pattern) = pattern.filter(|pattern| !pattern.contains('@')) {
        selected(pattern);
    }
    let hosts_of =
        |group: &str| -> Vec<String> { inventory.hosts_of_group(group).into_iter().collect() };
    let groups: Vec<String> = inventory
        .groups()
        .map(|group| group.name.clone())
        .filter(|name| plain_term(name))
        .take(MAX_NAMES_CHECKED)
        .collect();
    for (index, group) in groups.iter().enumerate() {
        let members = hosts_of(group);
        assert!(
            selected(group).as_ref() == Some(&members),
            "group {group:?} does not select its hosts"
        );
        let member_set: HashSet<&String> = members.iter().collect();
        let rest: Vec<String> = all
            .iter()
            .filter(|host| !member_set.contains(host))
            .cloned()
            .collect();
        assert!(
            selected(&format!("all:!{group}")).as_ref() == Some(&rest),
            "`all:!{group}` does not select all but the group's hosts"
        );
        let other = &groups[(index + 1) % groups.len()];
        let other_members: HashSet<String> = hosts_of(other).into_iter().collect();
        let both: Vec<String> = members
            .iter()
            .filter(|host| other_members.contains(*host))
            .cloned()
            .collect();
        assert!(
            selected(&format!("{group}:&{other}")).as_ref() == Some(&both),
            "`{group}:&{other}` does not select the hosts in both"
        );
    }
    for host in every
        .iter()
        .filter(|host| plain_term(host) && inventory.group(host).is_none())
        .take(MAX_NAMES_CHECKED)
    {
        assert!(
            selected(host).as_deref() == Some(std::slice::from_ref(host)),
            "host {host:?} does not select itself"
        );
        if !host.contains(['*', '?', '[']) {
            let glob = format!("{host}*");
            if inventory.group(&glob).is_none() && inventory.host_entry(&glob).is_none() {
                let found = selected(&glob).unwrap_or_else(|| panic!("glob {glob:?} refused"));
                assert!(found.contains(host), "glob {glob:?} misses {host:?}");
            }
        }
    }
}

/// Loads a playbook's bytes through midfleet's reader and checks:
///
/// - every diagnostic's location, and every origin the playbook keeps
///   (`hosts`, each `set` and `unset` entry), is in the text;
/// - loading the same text again gives the same playbook and diagnostics;
/// - what was accepted is in range: a non-empty `hosts`, parameter names
///   that are words and not the MID's own, serial sizes of at least one host
///   (percentages up to 100), a health timeout of 1 s to 1 day; the
///   rollout's batches cover the hosts exactly, each at least one host;
///   without errors, no parameter is given twice (aliases counted);
/// - rendering it for a host terminates (fuel; libFuzzer's `-timeout`
///   catches a hang) and gives, per `set` entry, a value XML can hold of at
///   most 64 KiB, sensitive when the name is a password or the value a
///   secret; or problems located in the text.
pub fn check_playbook(data: &[u8]) {
    let path = Path::new("playbook.yml");
    let Some(text) = decode_input(path, data) else {
        return;
    };
    let (playbook, diagnostics) = Playbook::from_text(path, &text);
    check_diagnostic_locations(path, &text, diagnostics.iter());
    let (again, diagnostics_again) = Playbook::from_text(path, &text);
    assert!(
        debug_digest(&playbook) == debug_digest(&again),
        "loading the same text twice gives two playbooks"
    );
    assert!(
        diagnostics.clone().into_vec() == diagnostics_again.into_vec(),
        "loading the same text twice gives other diagnostics"
    );
    let Some(playbook) = playbook else {
        assert!(diagnostics.has_errors(), "no playbook, and no error");
        return;
    };
    let origins = std::iter::once(&playbook.hosts_origin)
        .chain(playbook.set.iter().map(|entry| &entry.origin))
        .chain(playbook.unset.iter().map(|entry| &entry.origin));
    for origin in origins {
        assert_eq!(origin.file, path, "an origin names another file");
        let at = origin.at.expect("an entry without a location");
        check_text_location(&text, at, &format!("origin {origin}"));
    }
    assert!(!playbook.hosts.trim().is_empty(), "empty hosts accepted");
    let names = playbook
        .set
        .iter()
        .map(|entry| &entry.name)
        .chain(playbook.unset.iter().map(|entry| &entry.name));
    for name in names {
        assert!(
            !name.is_empty()
                && !name
                    .chars()
                    .any(|character| character.is_control() || character.is_whitespace()),
            "parameter name {name:?} accepted"
        );
        assert!(
            !names::WRITTEN_BY_MID.contains(&name.as_str()),
            "{name} accepted"
        );
    }
    let rollout = &playbook.rollout;
    assert!(!rollout.serial.is_empty(), "empty serial");
    for amount in &rollout.serial {
        assert!(
            matches!(amount, Amount::Count(1..) | Amount::Percent(1..=100)),
            "serial {amount} accepted"
        );
    }
    assert!(
        matches!(
            rollout.max_fail,
            Amount::Count(_) | Amount::Percent(0..=100)
        ),
        "max_fail {} accepted",
        rollout.max_fail
    );
    assert!(
        (1..=86_400).contains(&playbook.health.timeout),
        "health timeout {} accepted",
        playbook.health.timeout
    );
    for total in [0, 1, 2, 7, 100, 1000] {
        let batches = rollout.batches(total);
        assert!(
            batches.iter().all(|size| *size >= 1) && batches.iter().sum::<usize>() == total,
            "{total} hosts in batches {batches:?}"
        );
    }
    if !diagnostics.has_errors() {
        let all: Vec<&str> = playbook
            .set
            .iter()
            .map(|entry| entry.name.as_str())
            .chain(playbook.unset.iter().map(|entry| entry.name.as_str()))
            .collect();
        for (index, name) in all.iter().enumerate() {
            assert!(
                !all[..index]
                    .iter()
                    .any(|earlier| names::same_parameter(earlier, name)),
                "{name} given twice without an error"
            );
        }
    }

    match midfleet::playbook::desired::render(&playbook, fuzz_host(), &Templates::new()) {
        Ok(desired) => {
            assert_eq!(desired.set.len(), playbook.set.len(), "set entries lost");
            for (parameter, entry) in desired.set.iter().zip(&playbook.set) {
                assert_eq!(parameter.name, entry.name, "set entries reordered");
                match (&parameter.value, &entry.value) {
                    (
                        midfleet::playbook::desired::DesiredValue::Literal(value),
                        SetValue::Template(_),
                    ) => {
                        assert!(
                            check_xml_chars(value).is_ok(),
                            "{}: a value XML cannot hold",
                            entry.name
                        );
                        assert!(value.len() <= 64 * 1024, "{}: value too long", entry.name);
                        assert_eq!(
                            parameter.sensitive,
                            names::is_password(&entry.name),
                            "{}: sensitive flag",
                            entry.name
                        );
                    }
                    (midfleet::playbook::desired::DesiredValue::Secret(_), SetValue::Secret(_)) => {
                        assert!(
                            parameter.sensitive,
                            "{}: a secret not sensitive",
                            entry.name
                        );
                    }
                    _ => panic!("{}: a template became a secret or back", entry.name),
                }
            }
            let unset: Vec<&String> = playbook.unset.iter().map(|entry| &entry.name).collect();
            assert!(
                desired.unset.iter().collect::<Vec<_>>() == unset,
                "unset entries changed"
            );
        }
        Err(problems) => {
            assert!(!problems.is_empty(), "Err without a problem");
            check_diagnostic_locations(path, &text, &problems);
        }
    }
}

/// The inventory of the host a fuzzed playbook is rendered for: variables
/// of each type a real inventory gives.
const FUZZ_HOST_INVENTORY: &str = "\
all:
  vars: { ansible_user: ops, ansible_become: yes }
  children:
    emea:
      vars: { mid_cluster: emea, instance: acme }
      hosts:
        mid-emea-01:
          ansible_host: 10.20.0.11
          ansible_port: 2222
          mid_name: emea01
          proxy: { host: proxy.example.com, port: 3128 }
          ports: [8080, 8443]
          ratio: 0.5
";

/// The host a fuzzed playbook is rendered for, resolved by midfleet from
/// [`FUZZ_HOST_INVENTORY`] (once).
pub fn fuzz_host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| {
        let (inventory, diagnostics) =
            Inventory::from_text(Path::new("fuzz-host.yml"), FUZZ_HOST_INVENTORY);
        assert!(diagnostics.is_empty(), "{:?}", diagnostics.into_vec());
        inventory
            .resolve("mid-emea-01", &Templates::new())
            .expect("the fuzz host resolves")
    })
}

/// A reply to the facts script that holds exactly `facts`, written from
/// the reply format (`src/facts/facts.sh`), not from the parser: the oracle the
/// parser must agree with (`parse(facts_reply(parse(x))) == parse(x)`).
pub fn facts_reply(facts: &Facts) -> Vec<u8> {
    fn line(reply: &mut Vec<u8>, text: &str) {
        reply.extend_from_slice(text.as_bytes());
        reply.push(b'\n');
    }
    let mut reply = Vec::new();
    line(&mut reply, "midfleet-facts 1");
    line(&mut reply, &format!("uid {}", facts.uid));
    if let Some(time) = facts.time {
        line(&mut reply, &format!("time {time}"));
    }
    let mut blobs: Vec<(&str, &[u8])> = Vec::new();
    let config = match &facts.config {
        Ok(file) => {
            blobs.push(("config", &file.bytes));
            format!(
                "config-stat {} {} {:o} {} {}",
                file.uid, file.gid, file.mode, file.owner, file.group
            )
        }
        Err(ConfigProblem::Missing) => "config-missing".into(),
        Err(ConfigProblem::Unreadable) => "config-unreadable".into(),
        Err(ConfigProblem::NotAFile) => "config-not-a-file".into(),
        Err(ConfigProblem::Symlink(target)) => format!("config-symlink {target}"),
        Err(ConfigProblem::TooLarge(size)) => format!("config-too-large {size}"),
        Err(ConfigProblem::UnsafeRead) => "config-unsafe".into(),
    };
    line(&mut reply, &config);
    let service = &facts.service;
    line(
        &mut reply,
        &format!(
            "service {} {} {}",
            service.kind,
            service.unit.as_deref().unwrap_or("-"),
            service.state
        ),
    );
    for backup in &facts.backups {
        line(&mut reply, &format!("backup {backup}"));
    }
    if let Some(chosen) = &facts.backup_chosen {
        line(&mut reply, &format!("backup-chosen {chosen}"));
    }
    let optional = [
        ("state", &facts.state),
        ("journal", &facts.journal),
        ("after", &facts.after),
        ("lock", &facts.lock),
        ("backup-config", &facts.backup_config),
    ];
    for (name, bytes) in optional {
        if let Some(bytes) = bytes {
            blobs.push((name, bytes));
        }
    }
    for (name, bytes) in blobs {
        line(&mut reply, &format!("blob {name} {}", bytes.len()));
        reply.extend_from_slice(bytes);
        reply.push(b'\n');
    }
    line(&mut reply, "end");
    reply
}

/// Parses a facts reply and, when it is accepted, checks:
///
/// - config.xml's `sha256` is the SHA-256 of its bytes (computed here with
///   `sha2`), as 64 lowercase hex digits;
/// - the reply written back from the parsed facts (`facts_reply`) parses
///   to the same facts: every blob has the length and bytes its header
///   says, every header field reads back;
/// - a reply cut short anywhere is refused (three cuts per input), and one
///   with bytes after `end` too.
pub fn check_facts(data: &[u8]) {
    let Ok(parsed) = facts::parse(data) else {
        return;
    };
    if let Ok(file) = &parsed.config {
        let digest = Sha256::digest(&file.bytes);
        let mut hex = String::with_capacity(64);
        for byte in digest {
            write!(hex, "{byte:02x}").unwrap();
        }
        assert_eq!(file.sha256, hex, "config.xml's sha256 is not its bytes'");
    }
    let reply = facts_reply(&parsed);
    let again = facts::parse(&reply)
        .unwrap_or_else(|error| panic!("the facts written back are refused: {error}"));
    assert!(again == parsed, "the facts written back read differently");
    let cuts = [
        data.len() - 1,
        data.len() / 2,
        usize::from(data[data.len() / 3]) * data.len() / 256,
    ];
    for cut in cuts {
        assert!(
            facts::parse(&data[..cut]).is_err(),
            "a reply cut at {cut} of {} bytes is accepted",
            data.len()
        );
    }
    let mut longer = data.to_vec();
    longer.push(b'\n');
    assert!(facts::parse(&longer).is_err(), "bytes after `end` accepted");
}
