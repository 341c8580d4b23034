use crate::config_xml::{Action, Shown};

use super::*;

fn set<'a>(key: &'a str, value: &'a str) -> Operation<'a> {
    Operation::Set {
        key,
        value,
        sensitive: false,
    }
}

fn edited(input: &str, operations: &[Operation<'_>]) -> String {
    let document = WrapperConf::parse(input.as_bytes()).expect("parses");
    let edited = document.edit(operations).expect("edits");
    String::from_utf8(edited.bytes.unwrap_or_else(|| input.as_bytes().to_vec())).expect("utf-8")
}

const SHIPPED: &str = "# OPTIONAL: Maximum Java Heap Size (in MB)\nwrapper.java.maxmemory=1024\n\n#include ../conf/wrapper-profile-sync.conf\n";

#[test]
fn a_value_is_replaced_in_place() {
    assert_eq!(
        edited(SHIPPED, &[set("wrapper.java.maxmemory", "2048")]),
        SHIPPED.replace("=1024", "=2048")
    );
}

#[test]
fn crlf_bom_and_blanks_around_the_equals_are_kept() {
    let input = "\u{FEFF}# heap\r\n  wrapper.java.maxmemory = 1024  \r\nwrapper.name=mid\r\n";
    assert_eq!(
        edited(input, &[set("wrapper.java.maxmemory", "2048")]),
        "\u{FEFF}# heap\r\n  wrapper.java.maxmemory = 2048  \r\nwrapper.name=mid\r\n"
    );
    // A new line takes the file's line ending.
    assert_eq!(
        edited(input, &[set("wrapper.java.initmemory", "512")]),
        format!("{input}wrapper.java.initmemory=512\r\n")
    );
}

#[test]
fn a_missing_final_newline_stays_missing() {
    let input = "wrapper.java.maxmemory=1024";
    assert_eq!(
        edited(input, &[set("wrapper.java.maxmemory", "2048")]),
        "wrapper.java.maxmemory=2048"
    );
    assert_eq!(
        edited(input, &[set("wrapper.name", "mid")]),
        "wrapper.java.maxmemory=1024\nwrapper.name=mid"
    );
    assert_eq!(
        edited("", &[set("wrapper.name", "mid")]),
        "wrapper.name=mid\n"
    );
}

#[test]
fn a_commented_out_key_is_uncommented_in_place() {
    let input = "# OPTIONAL: Maximum Java Heap Size (in MB)\n#wrapper.java.maxmemory=1024\nwrapper.name=mid\n";
    let document = WrapperConf::parse(input.as_bytes()).expect("parses");
    assert_eq!(document.get("wrapper.java.maxmemory"), None);
    let result = document
        .edit(&[set("wrapper.java.maxmemory", "2048")])
        .expect("edits");
    assert_eq!(
        String::from_utf8(result.bytes.expect("changed")).expect("utf-8"),
        "# OPTIONAL: Maximum Java Heap Size (in MB)\nwrapper.java.maxmemory=2048\nwrapper.name=mid\n"
    );
    assert_eq!(result.changes[0].action, Action::Add);
    assert_eq!(result.changes[0].line, 2);
    // `# key = value`: the `#` and the blank after it go, the rest stays.
    assert_eq!(
        edited("  # wrapper.x = y\n", &[set("wrapper.x", "z")]),
        "  wrapper.x = z\n"
    );
}

#[test]
fn directives_are_never_properties() {
    let input = "#include ../conf/wrapper.conf\n#include.required x=y\n#encoding=UTF-8\n";
    let document = WrapperConf::parse(input.as_bytes()).expect("parses");
    assert!(document
        .lines()
        .iter()
        .all(|line| line.kind == LineKind::Directive));
    assert_eq!(
        edited(input, &[set("encoding", "latin1")]),
        format!("{input}encoding=latin1\n")
    );
    // `# include` with a blank is an ordinary comment.
    let comment = WrapperConf::parse(b"# include me\n").expect("parses");
    assert_eq!(comment.lines()[0].kind, LineKind::Other);
}

#[test]
fn the_last_duplicate_counts_and_is_edited_with_a_warning() {
    let input = "wrapper.java.maxmemory=512\n# x\nwrapper.java.maxmemory=1024\n";
    let document = WrapperConf::parse(input.as_bytes()).expect("parses");
    assert_eq!(document.get("wrapper.java.maxmemory"), Some("1024"));
    let result = document
        .edit(&[set("wrapper.java.maxmemory", "2048")])
        .expect("edits");
    assert_eq!(
        String::from_utf8(result.bytes.expect("changed")).expect("utf-8"),
        "wrapper.java.maxmemory=512\n# x\nwrapper.java.maxmemory=2048\n"
    );
    assert_eq!(result.warnings.len(), 1, "{:?}", result.warnings);
    assert!(result.warnings[0].contains("lines 1, 3"));
    // Nothing to do: no change, no warning.
    let same = document
        .edit(&[set("wrapper.java.maxmemory", "1024")])
        .expect("edits");
    assert!(same.bytes.is_none() && same.changes.is_empty() && same.warnings.is_empty());
}

#[test]
fn unset_comments_out_and_removes_secrets() {
    let input = "wrapper.a=1\nwrapper.a=2\nwrapper.ntservice.password=hunter2\r\nwrapper.b=3";
    let result = WrapperConf::parse(input.as_bytes())
        .expect("parses")
        .edit(&[
            Operation::Unset { key: "wrapper.a" },
            Operation::Unset {
                key: "wrapper.ntservice.password",
            },
            Operation::Unset { key: "wrapper.c" },
        ])
        .expect("edits");
    assert_eq!(
        String::from_utf8(result.bytes.clone().expect("changed")).expect("utf-8"),
        "#wrapper.a=1\n#wrapper.a=2\nwrapper.b=3"
    );
    assert_eq!(result.changes.len(), 2);
    assert_eq!(result.changes[1].before, Shown::Sensitive);
    assert!(!format!("{result:?}").contains("hunter2"));
}

#[test]
fn sensitive_values_are_never_shown() {
    let result = WrapperConf::parse(b"wrapper.ntservice.password=old\n")
        .expect("parses")
        .edit(&[set("wrapper.ntservice.password", "new")])
        .expect("edits");
    assert_eq!(result.changes[0].before, Shown::Sensitive);
    assert_eq!(result.changes[0].after, Shown::Sensitive);
    let values = ["-Djavax.net.ssl.trustStorePassword=s3cret".to_string()];
    let result = WrapperConf::parse(b"")
        .expect("parses")
        .edit(&[Operation::Arguments { values: &values }])
        .expect("edits");
    assert!(result.changes[0].sensitive);
    assert_eq!(result.changes[0].after, Shown::Sensitive);
    assert!(is_sensitive(
        "wrapper.java.additional.3",
        Some("-Djavax.net.ssl.trustStorePassword=x")
    ));
    assert!(!is_sensitive("wrapper.java.additional.3", Some("-Dx=1")));
}

#[test]
fn numbering_takes_the_next_number_outside_the_reserved_range() {
    let input = "wrapper.java.additional.1=-Da=1\n#wrapper.java.additional.4=-Dold=1\n#wrapper.java.additional.109=-Djava.net.preferIPv6Addresses=false\nwrapper.java.additional.106=-Dfips=true\n";
    let values = [
        "-Da=1".to_string(),
        "-Dx=1".to_string(),
        "-Dy=2".to_string(),
    ];
    let document = WrapperConf::parse(input.as_bytes()).expect("parses");
    assert_eq!(document.next_additional(), 5);
    let result = document
        .edit(&[Operation::Arguments { values: &values }])
        .expect("edits");
    assert_eq!(
        String::from_utf8(result.bytes.expect("changed")).expect("utf-8"),
        format!("{input}wrapper.java.additional.5=-Dx=1\nwrapper.java.additional.6=-Dy=2\n")
    );
    // Already there under some N: nothing to do (idempotent).
    let again = edited(
        &format!("{input}wrapper.java.additional.5=-Dx=1\nwrapper.java.additional.6=-Dy=2\n"),
        &[Operation::Arguments { values: &values }],
    );
    assert!(again.ends_with(".6=-Dy=2\n"));
    // Gaps are kept; 100 is followed by 201, never by a reserved number.
    let high =
        WrapperConf::parse(b"wrapper.java.additional.100=-Da\nwrapper.java.additional.150=-Db\n")
            .expect("parses");
    assert_eq!(high.next_additional(), 201);
    let only_reserved = WrapperConf::parse(b"wrapper.java.additional.150=-Db\n").expect("parses");
    assert_eq!(only_reserved.next_additional(), 1);
}

#[test]
fn a_reserved_commented_line_is_uncommented_not_added() {
    let input = "#wrapper.java.additional.109=-Djava.net.preferIPv6Addresses=false\n";
    let values = ["-Djava.net.preferIPv6Addresses=false".to_string()];
    assert_eq!(
        edited(input, &[Operation::Arguments { values: &values }]),
        "wrapper.java.additional.109=-Djava.net.preferIPv6Addresses=false\n"
    );
    // By number: uncommented with the new value.
    assert_eq!(
        edited(
            input,
            &[set(
                "wrapper.java.additional.109",
                "-Djava.net.preferIPv6Addresses=true"
            )]
        ),
        "wrapper.java.additional.109=-Djava.net.preferIPv6Addresses=true\n"
    );
    // A reserved number that is not in the file is refused.
    let error = WrapperConf::parse(b"")
        .expect("parses")
        .edit(&[set("wrapper.java.additional.150", "-Dx")])
        .expect_err("reserved");
    assert!(matches!(error, EditError::Reserved { .. }), "{error}");
    // An explicit N outside the range is set as asked, never renumbered.
    assert_eq!(
        edited(
            "wrapper.java.additional.2=-Da\n",
            &[set("wrapper.java.additional.7", "-Db")]
        ),
        "wrapper.java.additional.2=-Da\nwrapper.java.additional.7=-Db\n"
    );
}

#[test]
fn bad_values_and_keys_are_refused() {
    let document = WrapperConf::parse(b"").expect("parses");
    for operation in [
        set("wrapper.x", "a\nb"),
        set("wrapper.x", " a"),
        set("wrapper x", "a"),
    ] {
        assert!(document.edit(&[operation]).is_err(), "{operation:?}");
    }
    assert!(matches!(
        document.edit(&[set("wrapper.x", "1"), Operation::Unset { key: "wrapper.x" }]),
        Err(EditError::Conflict { .. })
    ));
    assert!(WrapperConf::parse(b"\xff\n").is_err());
}

#[test]
fn a_numbered_set_and_a_list_in_one_edit_never_share_a_number() {
    let values = ["-Dnew".to_string()];
    assert_eq!(
        edited(
            "wrapper.java.additional.4=-Da\n",
            &[
                set("wrapper.java.additional.5", "-Db"),
                Operation::Arguments { values: &values },
            ]
        ),
        "wrapper.java.additional.4=-Da\nwrapper.java.additional.5=-Db\nwrapper.java.additional.6=-Dnew\n"
    );
}

#[test]
fn a_list_never_uncomments_a_line_another_operation_or_value_took() {
    // A number set by name whose commented-out line also holds a listed
    // value: one line, two splices (a panic); two commented-out lines
    // with one number: two active lines, the wrapper reads the last.
    let values = ["-Dbar".to_string()];
    assert_eq!(
        edited(
            "#wrapper.java.additional.3=-Dbar\n",
            &[
                set("wrapper.java.additional.3", "-Dfoo"),
                Operation::Arguments { values: &values },
            ]
        ),
        "wrapper.java.additional.3=-Dfoo\nwrapper.java.additional.4=-Dbar\n"
    );
    let values = ["-Da".to_string(), "-Db".to_string()];
    assert_eq!(
        edited(
            "#wrapper.java.additional.3=-Da\n#wrapper.java.additional.3=-Db\n",
            &[Operation::Arguments { values: &values }]
        ),
        "wrapper.java.additional.3=-Da\n#wrapper.java.additional.3=-Db\nwrapper.java.additional.4=-Db\n"
    );
    // An argument on a line a later duplicate hides is not there.
    let values = ["-Da".to_string()];
    assert_eq!(
        edited(
            "wrapper.java.additional.3=-Da\nwrapper.java.additional.3=-Db\n",
            &[Operation::Arguments { values: &values }]
        ),
        "wrapper.java.additional.3=-Da\nwrapper.java.additional.3=-Db\nwrapper.java.additional.4=-Da\n"
    );
}

#[test]
fn a_quoted_jvm_argument_holding_a_password_is_sensitive() {
    // The wrapper takes a quoted argument (wrapper.java.additional.N.stripquotes).
    assert!(is_sensitive(
        "wrapper.java.additional.3",
        Some("\"-Djavax.net.ssl.trustStorePassword=s3cret\"")
    ));
    let result = WrapperConf::parse(
        b"wrapper.java.additional.3=\"-Djavax.net.ssl.trustStorePassword=s3cret\"\n",
    )
    .expect("parses")
    .edit(&[Operation::Unset {
        key: "wrapper.java.additional.3",
    }])
    .expect("edits");
    assert_eq!(result.changes[0].before, Shown::Sensitive);
    assert_eq!(
        result.bytes.as_deref(),
        Some(&b""[..]),
        "not left in a comment"
    );
}
