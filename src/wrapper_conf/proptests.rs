//! Property tests: generated wrapper-override.conf files (comments,
//! directives, blank lines, active and commented-out properties with
//! blanks around `=`, LF and CRLF mixed, a BOM, a missing final newline),
//! random edits, and an independent model: the structure is edited and
//! rendered again, and the editor's bytes must be exactly those.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use super::{Operation, WrapperConf};

const KEYS: &[&str] = &[
    "wrapper.java.maxmemory",
    "wrapper.java.initmemory",
    "wrapper.name",
    "wrapper.java.additional.1",
    "wrapper.java.additional.106",
];

const VALUE_CHARS: &[char] = &[
    'a', 'Z', '0', '7', ' ', '=', '#', '-', '.', ':', '"', 'é', '€',
];

#[derive(Debug, Clone)]
enum Kind {
    Blank(String),
    Comment(String),
    Directive(String),
    Property {
        indent: String,
        commented: Option<String>,
        key: usize,
        around: (String, String),
        value: String,
        trailing: String,
    },
}

#[derive(Debug, Clone)]
struct Doc {
    bom: bool,
    lines: Vec<(Kind, bool)>,
    final_newline: bool,
}

impl Doc {
    fn render(&self) -> String {
        let mut text = String::new();
        if self.bom {
            text.push('\u{FEFF}');
        }
        let count = self.lines.len();
        for (index, (kind, crlf)) in self.lines.iter().enumerate() {
            match kind {
                Kind::Blank(blank) => text.push_str(blank),
                Kind::Comment(comment) => text.push_str(comment),
                Kind::Directive(directive) => text.push_str(directive),
                Kind::Property {
                    indent,
                    commented,
                    key,
                    around,
                    value,
                    trailing,
                } => {
                    text.push_str(indent);
                    if let Some(comment) = commented {
                        text.push_str(comment);
                    }
                    text.push_str(&format!(
                        "{}{}={}{value}{trailing}",
                        KEYS[*key], around.0, around.1
                    ));
                }
            }
            if index + 1 < count || self.final_newline {
                text.push_str(if *crlf { "\r\n" } else { "\n" });
            }
        }
        text
    }

    /// The model of `Set`: the last active line's value; else the last
    /// commented-out line uncommented; else a new line at the end.
    fn set(&mut self, key: usize, new: &str) {
        let find = |commented: bool| {
            self.lines.iter().rposition(|(kind, _)| {
                matches!(kind, Kind::Property { key: found, commented: comment, .. }
                    if *found == key && comment.is_some() == commented)
            })
        };
        if let Some(at) = find(false).or_else(|| find(true)) {
            if let Kind::Property {
                value,
                commented,
                around,
                trailing,
                ..
            } = &mut self.lines[at].0
            {
                // An empty value: the blanks after `=` all stand before it.
                if value.is_empty() {
                    around.1.push_str(trailing);
                    trailing.clear();
                }
                *value = new.to_string();
                *commented = None;
            }
            return;
        }
        // The file's line ending: its first line break's, else LF.
        let crlf = self.lines.first().is_some_and(|(_, crlf)| *crlf)
            && (self.lines.len() > 1 || self.final_newline);
        if !self.final_newline {
            if let Some(last) = self.lines.last_mut() {
                last.1 = crlf;
            }
        }
        let added = (
            Kind::Property {
                indent: String::new(),
                commented: None,
                key,
                around: (String::new(), String::new()),
                value: new.to_string(),
                trailing: String::new(),
            },
            crlf,
        );
        if self.lines.is_empty() {
            self.final_newline = true;
        }
        self.lines.push(added);
    }
}

fn blanks() -> impl Strategy<Value = String> {
    select(vec!["", " ", "\t", "  "]).prop_map(str::to_string)
}

fn value() -> impl Strategy<Value = String> {
    vec(select(VALUE_CHARS), 0..8).prop_map(|chars| {
        let text: String = chars.into_iter().collect();
        text.trim_matches(' ').to_string()
    })
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        blanks().prop_map(Kind::Blank),
        select(vec![
            "# OPTIONAL: Maximum Java Heap Size (in MB)",
            "#",
            "# a=b c",
            "  # see wrapper.java.additional.1 = x? no",
        ])
        .prop_map(str::to_string)
        .prop_map(Kind::Comment),
        select(vec![
            "#include ../conf/wrapper-profile-sync.conf",
            "#include.required x.conf",
            "#encoding=UTF-8",
        ])
        .prop_map(str::to_string)
        .prop_map(Kind::Directive),
        (
            blanks(),
            proptest::option::of(select(vec!["#", "# ", "#\t"]).prop_map(str::to_string)),
            0..KEYS.len(),
            (blanks(), blanks()),
            value(),
            blanks(),
        )
            .prop_map(
                |(indent, commented, key, around, value, trailing)| Kind::Property {
                    indent,
                    commented,
                    key,
                    around,
                    value,
                    trailing,
                }
            ),
    ]
}

fn doc() -> impl Strategy<Value = Doc> {
    (
        any::<bool>(),
        vec((kind(), any::<bool>()), 0..10),
        any::<bool>(),
    )
        .prop_map(|(bom, lines, final_newline)| Doc {
            bom,
            lines,
            final_newline,
        })
        // A line that ends in blanks and has no break after it, or an
        // empty last line without a break, renders as a different line
        // list; keep generated files unambiguous.
        .prop_filter("last line renders", |doc| {
            doc.final_newline
                || !matches!(doc.lines.last(), Some((Kind::Blank(blank), _)) if blank.is_empty())
        })
}

fn value_nonblank() -> impl Strategy<Value = String> {
    value().prop_filter("no trailing tab", |value| !value.ends_with('\t'))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn set_splices_only_the_value_and_is_idempotent(
        mut doc in doc(),
        edits in vec((0..KEYS.len(), value_nonblank()), 1..4),
    ) {
        let input = doc.render();
        let mut document = WrapperConf::parse(input.as_bytes()).expect("parses");
        for (key, new) in &edits {
            // Reserved numbers not in the file are refused: not modelled.
            let refused = KEYS[*key].ends_with(".106")
                && !document.properties().any(|property| property.key == KEYS[*key]);
            let result = document.edit(&[Operation::Set { key: KEYS[*key], value: new, sensitive: false }]);
            if refused {
                prop_assert!(result.is_err());
                continue;
            }
            let result = result.expect("edits");
            doc.set(*key, new);
            let expected = doc.render();
            let bytes = result.bytes.clone().unwrap_or_else(|| document.bytes().to_vec());
            prop_assert_eq!(String::from_utf8(bytes.clone()).expect("utf-8"), expected);
            document = WrapperConf::parse(&bytes).expect("reparses");
            prop_assert_eq!(document.get(KEYS[*key]), Some(new.as_str()));
            // Again: nothing to do.
            let again = document
                .edit(&[Operation::Set { key: KEYS[*key], value: new, sensitive: false }])
                .expect("edits");
            prop_assert!(again.bytes.is_none() && again.changes.is_empty());
        }
    }

    #[test]
    fn unset_then_nothing_is_active_and_again_is_a_no_op(doc in doc(), key in 0..KEYS.len()) {
        let input = doc.render();
        let document = WrapperConf::parse(input.as_bytes()).expect("parses");
        let result = document.edit(&[Operation::Unset { key: KEYS[key] }]).expect("edits");
        let bytes = result.bytes.unwrap_or_else(|| input.as_bytes().to_vec());
        let after = WrapperConf::parse(&bytes).expect("reparses");
        prop_assert_eq!(after.get(KEYS[key]), None);
        prop_assert_eq!(after.lines().len(), document.lines().len());
        for (before, now) in document.properties().zip(after.properties()).filter(|(before, _)| before.key != KEYS[key]) {
            prop_assert_eq!(before.value, now.value);
        }
        let again = after.edit(&[Operation::Unset { key: KEYS[key] }]).expect("edits");
        prop_assert!(again.bytes.is_none());
    }

    #[test]
    fn arguments_are_added_once_below_the_reserved_range(
        doc in doc(),
        values in vec(select(vec!["-Da=1", "-Db", "-Dc=x y"]).prop_map(str::to_string), 1..4),
    ) {
        let input = doc.render();
        let document = WrapperConf::parse(input.as_bytes()).expect("parses");
        let result = document.edit(&[Operation::Arguments { values: &values }]).expect("edits");
        let bytes = result.bytes.unwrap_or_else(|| input.as_bytes().to_vec());
        prop_assert!(bytes.starts_with(&input.as_bytes()[..document.body_start()]));
        let after = WrapperConf::parse(&bytes).expect("reparses");
        for change in &result.changes {
            let number = super::additional_number(&change.param).expect("numbered");
            let was_there = document.properties().any(|property| property.key == change.param);
            prop_assert!(was_there || !super::RESERVED.contains(&number));
        }
        // Every earlier property keeps its number and value.
        for property in document.properties().filter(|property| !property.commented) {
            prop_assert!(after.properties().any(|now| !now.commented && now.key == property.key && now.value == property.value));
        }
        let again = after.edit(&[Operation::Arguments { values: &values }]).expect("edits");
        prop_assert!(again.bytes.is_none());
    }
}
