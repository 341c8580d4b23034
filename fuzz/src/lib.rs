//! Shared checks for the fuzz targets in `fuzz_targets/`.
//!
//! Every check panics (with a message that names the broken invariant) when
//! midfleet's reader or editor does something it must never do; an input
//! that midfleet refuses with an error is never a failure here.

use midfleet::config_xml::{
    names, unescape_attribute, ConfigXml, EditError, Location, Operation, Shown, BOM,
};

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
