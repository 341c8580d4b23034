//! Unit tests for the config.xml engine, against the fixtures in
//! `tests/fixtures/` and small inline files.

use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn parse(text: &str) -> ConfigXml {
    ConfigXml::parse(text.as_bytes()).unwrap_or_else(|error| panic!("{error:?}"))
}

fn set<'a>(name: &'a str, value: &'a str) -> Operation<'a> {
    Operation::Set {
        name,
        value,
        sensitive: false,
    }
}

fn unset(name: &str) -> Operation<'_> {
    Operation::Unset { name }
}

/// The edited file as text.
fn edited(text: &str, operations: &[Operation<'_>]) -> String {
    let document = parse(text);
    let edited = document.edit(operations).unwrap();
    let new = edited.document.expect("a change");
    String::from_utf8(new.bytes().to_vec()).unwrap()
}

fn read_error(text: &[u8]) -> ReadError {
    ConfigXml::parse(text).expect_err("should be refused")
}

#[test]
fn shipped_file_skips_commented_out_parameters() {
    let document = ConfigXml::parse(&fixture("shipped.xml")).unwrap();
    let names: Vec<&str> = document.parameters().iter().map(Parameter::name).collect();
    assert_eq!(
        names,
        [
            "url",
            "mid.instance.username",
            "mid.instance.password",
            "name",
            "mid.proxy.use_proxy",
            "threads.max",
            "mid.log.level",
            "mid_sys_id",
            "keypairs.mid_id",
        ]
    );
    let password = document.get(names::PASSWORD).unwrap();
    assert!(password.is_secure());
    assert_eq!(
        password.location(),
        Location {
            line: 14,
            column: 5
        }
    );
    assert_eq!(
        SecretForm::classify(password.value()),
        SecretForm::Encrypted
    );
    assert!(document.get("mid.proxy.host").is_none());
    let layout = document.layout();
    assert_eq!(layout.line_ending, LineEnding::Lf);
    assert_eq!(layout.indent, "    ");
    assert_eq!(layout.quote, b'"');
    assert_eq!(layout.empty_element_end, "/>");
}

#[test]
fn each_fixture_reads_with_its_own_layout() {
    // (file, line ending, indent, quote, empty element end, user, password form)
    let cases = [
        (
            "crlf-bom.xml",
            LineEnding::CrLf,
            "\t",
            b'"',
            "/>",
            "svc_mid_win",
            SecretForm::Plaintext,
        ),
        (
            "dom-reserialized.xml",
            LineEnding::Lf,
            "  ",
            b'\'',
            " />",
            "svc_mid_dom",
            SecretForm::Encrypted,
        ),
        (
            "encrypted.xml",
            LineEnding::Lf,
            "    ",
            b'"',
            "/>",
            "svc_mid_emea02",
            SecretForm::Encrypted,
        ),
        (
            "cyberark.xml",
            LineEnding::Lf,
            "    ",
            b'"',
            "/>",
            "svc_mid_vault",
            SecretForm::ProviderReference,
        ),
        (
            "glidesoap.xml",
            LineEnding::Lf,
            "\t",
            b'"',
            "/>",
            "svc_mid_legacy",
            SecretForm::Encrypted,
        ),
    ];
    for (file, line_ending, indent, quote, end, user, form) in cases {
        let document = ConfigXml::parse(&fixture(file)).unwrap();
        let layout = document.layout();
        assert_eq!(layout.line_ending, line_ending, "{file}");
        assert_eq!(layout.indent, indent, "{file}");
        assert_eq!(layout.quote, quote, "{file}");
        assert_eq!(layout.empty_element_end, end, "{file}");
        assert_eq!(
            document.get(names::USERNAME).unwrap().value(),
            user,
            "{file}"
        );
        let password = document.get(names::PASSWORD).unwrap();
        assert!(password.is_secure(), "{file}");
        assert_eq!(SecretForm::classify(password.value()), form, "{file}");
    }
}

#[test]
fn values_are_read_unescaped_and_attribute_order_does_not_matter() {
    let document = ConfigXml::parse(&fixture("crlf-bom.xml")).unwrap();
    assert_eq!(
        document.get(names::PASSWORD).unwrap().value(),
        "Plain&Text<1"
    );
    let document = ConfigXml::parse(&fixture("dom-reserialized.xml")).unwrap();
    assert_eq!(
        document.get(names::USERNAME).unwrap().value(),
        "svc_mid_dom"
    );
    assert_eq!(
        document.get("mid.proxy.use_proxy").unwrap().value(),
        "false"
    );
}

#[test]
fn set_replaces_only_the_value_bytes() {
    let original = fixture("shipped.xml");
    let document = ConfigXml::parse(&original).unwrap();
    let edited = document
        .edit(&[set(names::USERNAME, "svc_mid_new")])
        .unwrap();
    let expected = String::from_utf8(original)
        .unwrap()
        .replace("value=\"svc_mid_old\"", "value=\"svc_mid_new\"");
    assert_eq!(edited.document.unwrap().bytes(), expected.as_bytes());
    assert_eq!(
        edited.changes,
        [Change {
            action: Action::Update,
            param: names::USERNAME.into(),
            before: Shown::Value("svc_mid_old".into()),
            after: Shown::Value("svc_mid_new".into()),
            sensitive: false,
            line: 13,
        }]
    );
}

#[test]
fn crlf_bom_file_keeps_bom_line_endings_and_indentation() {
    let original = String::from_utf8(fixture("crlf-bom.xml")).unwrap();
    let result = edited(
        &original,
        &[
            set(names::USERNAME, "svc_new"),
            unset(names::KEY_PAIR_ID),
            set("mid.log.level", "debug"),
        ],
    );
    let expected = original
        .replace("svc_mid_win", "svc_new")
        .replace("\t<parameter name=\"keypairs.mid_id\" value=\"0f6c4f0e-1d7c-4f76-9b8a-5b8f3f6c2a11\"/>\r\n", "")
        .replace("</parameters>", "\t<parameter name=\"mid.log.level\" value=\"debug\"/>\r\n</parameters>");
    assert_eq!(result, expected);
    assert!(result.starts_with('\u{feff}'));
}

#[test]
fn glidesoap_spelling_is_the_one_edited_and_added() {
    let original = String::from_utf8(fixture("glidesoap.xml")).unwrap();
    let result = edited(&original, &[set(names::USERNAME, "svc_new")]);
    assert_eq!(result, original.replace("svc_mid_legacy", "svc_new"));

    let without_password = "<parameters>\n  <parameter name=\"glide.glidesoap.username\" value=\"u\"/>\n</parameters>\n";
    let result = edited(without_password, &[set(names::PASSWORD, "pw")]);
    assert_eq!(
        result,
        "<parameters>\n  <parameter name=\"glide.glidesoap.username\" value=\"u\"/>\n  \
         <parameter name=\"glide.glidesoap.password\" secure=\"true\" value=\"pw\"/>\n</parameters>\n"
    );
}

#[test]
fn additions_follow_the_files_quote_and_element_style() {
    let original = String::from_utf8(fixture("dom-reserialized.xml")).unwrap();
    let result = edited(&original, &[set("mid.log.level", "it's <fine>")]);
    let expected = original.replace(
        "</parameters>",
        "  <parameter name='mid.log.level' value='it&apos;s &lt;fine&gt;' />\n</parameters>",
    );
    assert_eq!(result, expected);
    assert!(
        !result.ends_with('\n'),
        "a missing trailing newline stays missing"
    );
}

#[test]
fn password_parameters_are_added_secure() {
    let result = edited(
        "<parameters>\n    <parameter name=\"url\" value=\"u\"/>\n</parameters>",
        &[set(names::PASSWORD, "pw"), set("mid.proxy.password", "p2")],
    );
    assert_eq!(
        result,
        "<parameters>\n    <parameter name=\"url\" value=\"u\"/>\n    \
         <parameter name=\"mid.instance.password\" secure=\"true\" value=\"pw\"/>\n    \
         <parameter name=\"mid.proxy.password\" secure=\"true\" value=\"p2\"/>\n</parameters>"
    );
}

#[test]
fn additions_where_the_close_tag_does_not_start_a_line() {
    let cases = [
        (
            "<parameters><parameter name=\"a\" value=\"1\"/></parameters>",
            "<parameters><parameter name=\"a\" value=\"1\"/><parameter name=\"b\" value=\"2\"/></parameters>",
        ),
        (
            "<parameters>\n  <parameter name=\"a\" value=\"1\"/></parameters>\n",
            "<parameters>\n  <parameter name=\"a\" value=\"1\"/>\n  <parameter name=\"b\" value=\"2\"/></parameters>\n",
        ),
        (
            "<?xml version=\"1.0\"?>\n<parameters><parameter name=\"a\" value=\"1\"/></parameters>",
            "<?xml version=\"1.0\"?>\n<parameters><parameter name=\"a\" value=\"1\"/><parameter name=\"b\" value=\"2\"/></parameters>",
        ),
        (
            "<parameters>\n</parameters>\n",
            "<parameters>\n    <parameter name=\"b\" value=\"2\"/>\n</parameters>\n",
        ),
    ];
    for (original, expected) in cases {
        assert_eq!(edited(original, &[set("b", "2")]), expected, "{original:?}");
    }
}

#[test]
fn removal_takes_the_whole_line_only_when_the_element_stands_alone() {
    let cases = [
        (
            "<parameters>\n  <parameter name=\"a\" value=\"1\"/>\n  <parameter name=\"b\" value=\"2\"/>  \n</parameters>",
            "<parameters>\n  <parameter name=\"a\" value=\"1\"/>\n</parameters>",
        ),
        (
            "<parameters>\n  <parameter name=\"a\" value=\"1\"/><parameter name=\"b\" value=\"2\"/>\n</parameters>",
            "<parameters>\n  <parameter name=\"a\" value=\"1\"/>\n</parameters>",
        ),
        (
            "<parameters>\r\n  <parameter name=\"b\" value=\"2\"></parameter>\r\n  <parameter name=\"a\" value=\"1\"/>\r\n</parameters>",
            "<parameters>\r\n  <parameter name=\"a\" value=\"1\"/>\r\n</parameters>",
        ),
        (
            "<parameters><parameter name=\"b\" value=\"2\"/> <!-- b --></parameters>",
            "<parameters> <!-- b --></parameters>",
        ),
    ];
    for (original, expected) in cases {
        assert_eq!(edited(original, &[unset("b")]), expected, "{original:?}");
    }
}

#[test]
fn nothing_changes_when_the_file_already_holds_what_was_asked() {
    let document = ConfigXml::parse(&fixture("shipped.xml")).unwrap();
    let edited = document
        .edit(&[
            set(names::USERNAME, "svc_mid_old"),
            set("threads.max", "25"),
            unset("mid.proxy.host"),
            unset("not.there"),
        ])
        .unwrap();
    assert!(edited.document.is_none());
    assert!(edited.changes.is_empty());
}

#[test]
fn values_are_compared_as_a_parser_reads_them() {
    let text = "<parameters>\n<parameter name='a' value='x &amp; &#x79;'/>\n</parameters>\n";
    let edited = parse(text).edit(&[set("a", "x & y")]).unwrap();
    assert!(
        edited.document.is_none(),
        "the same value, escaped differently"
    );
}

#[test]
fn a_hostile_password_round_trips_through_a_strict_parser() {
    let password = "a&b<c>d\"e'f\tg\nh\ri  j";
    let original = String::from_utf8(fixture("shipped.xml")).unwrap();
    for quote_file in [original.clone(), original.replace('"', "'")] {
        let result = edited(
            &quote_file,
            &[Operation::Set {
                name: names::PASSWORD,
                value: password,
                sensitive: true,
            }],
        );
        let strict = roxmltree::Document::parse(&result).unwrap();
        let read_back = strict
            .descendants()
            .find(|node| node.attribute("name") == Some(names::PASSWORD))
            .and_then(|node| node.attribute("value"))
            .unwrap();
        assert_eq!(read_back, password);
        assert_eq!(
            parse(&result).get(names::PASSWORD).unwrap().value(),
            password
        );
    }
}

#[test]
fn sensitive_values_are_never_carried_in_changes_or_debug() {
    let document = ConfigXml::parse(&fixture("crlf-bom.xml")).unwrap();
    let edited = document
        .edit(&[
            set(names::PASSWORD, "n3w-s3cret"),
            Operation::Set {
                name: "custom.token",
                value: "t0ken-value",
                sensitive: true,
            },
        ])
        .unwrap();
    let shown = format!("{:?} {:?}", edited, document);
    for secret in ["n3w-s3cret", "t0ken-value", "Plain&Text", "Plain&amp;Text"] {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }
    assert!(edited.changes.iter().all(|change| change.sensitive));
    let json = serde_json::to_string(&edited.changes).unwrap();
    assert!(
        !json.contains("n3w-s3cret") && !json.contains("t0ken"),
        "{json}"
    );
}

#[test]
fn malformed_and_foreign_files_are_refused_with_a_location() {
    let cases: [(&[u8], Location, &str); 10] = [
        (b"<parameters>\n  <parameter name=\"a\" value=\"1\">\n</parameters>", Location { line: 3, column: 1 }, "malformed"),
        (b"<parameters>\n<parameter name=\"a\" value=\"1\"/>", Location { line: 1, column: 1 }, "malformed"),
        (b"<parameters>\n<parameter name=\"a\" value=\"a & b\"/>\n</parameters>", Location { line: 2, column: 30 }, "malformed"),
        (b"<parameters/>\n<x/>", Location { line: 2, column: 1 }, "malformed"),
        (b"<?xml version=\"1.0\"?>\n<config>\n</config>", Location { line: 2, column: 1 }, "not <parameters>"),
        (b"<parameters>\n  <parameter value=\"1\"/>\n</parameters>", Location { line: 2, column: 3 }, "without a `name`"),
        (b"<parameters>\n  <parameter name=\"a\"/>\n</parameters>", Location { line: 2, column: 3 }, "no `value`"),
        (
            b"<parameters>\n <parameter name=\"a\" value=\"1\"/>\n <parameter name=\"a\" value=\"2\"/>\n</parameters>",
            Location { line: 3, column: 2 },
            "on line 2",
        ),
        (
            b"<?xml version=\"1.0\"?>\n<!DOCTYPE p [<!ENTITY x \"xx\">]>\n<parameters/>",
            Location { line: 2, column: 1 },
            "DOCTYPE",
        ),
        (b"<parameters>\n<parameter name=\"a\" value=\"\xff\"/>\n</parameters>", Location { line: 2, column: 28 }, "UTF-8"),
    ];
    for (text, location, message) in cases {
        let error = read_error(text);
        assert_eq!(
            error.location(),
            Some(location),
            "{error} for {:?}",
            String::from_utf8_lossy(text)
        );
        assert!(error.to_string().contains(message), "{error}");
    }
}

#[test]
fn both_spellings_of_an_alias_are_a_duplicate() {
    let error = read_error(
        b"<parameters>\n<parameter name=\"glide.glidesoap.username\" value=\"a\"/>\n\
          <parameter name=\"mid.instance.username\" value=\"b\"/>\n</parameters>",
    );
    assert_eq!(
        error,
        ReadError::Duplicate {
            name: names::USERNAME.into(),
            first_spelling: names::GLIDESOAP_USERNAME.into(),
            first_line: 2,
            at: Location { line: 3, column: 1 },
        }
    );
}

#[test]
fn entity_expansion_tricks_are_refused_without_expanding() {
    let billion_laughs = b"<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\">\
        <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>\n\
        <parameters><parameter name=\"a\" value=\"&lol2;\"/></parameters>";
    assert!(matches!(
        read_error(billion_laughs),
        ReadError::DocumentType { .. }
    ));
    let undeclared = b"<parameters><parameter name=\"a\" value=\"&secret;\"/></parameters>";
    assert!(matches!(
        read_error(undeclared),
        ReadError::Malformed { .. }
    ));
}

#[test]
fn oversized_files_are_refused_before_parsing() {
    let mut big = b"<parameters>".to_vec();
    big.resize(MAX_CONFIG_BYTES + 1, b' ');
    assert!(matches!(read_error(&big), ReadError::TooLarge { .. }));
}

#[test]
fn cdata_processing_instructions_and_nested_elements_are_not_parameters() {
    let document = parse(
        "<?xml version=\"1.0\"?>\n<?midfleet note?>\n<parameters>\n\
         <![CDATA[<parameter name=\"x\" value=\"cdata\"/>]]>\n\
         <group><parameter name=\"y\" value=\"nested\"/></group>\n\
         <parameter name=\"z\" value=\"real\"/>\n</parameters>\n",
    );
    let names: Vec<&str> = document.parameters().iter().map(Parameter::name).collect();
    assert_eq!(names, ["z"]);
}

#[test]
fn edits_that_cannot_be_written_are_refused() {
    let document = ConfigXml::parse(&fixture("shipped.xml")).unwrap();
    let error = document
        .edit(&[set(names::PASSWORD, "bad\u{1}char")])
        .unwrap_err();
    assert_eq!(
        error,
        EditError::InvalidValue {
            name: names::PASSWORD.into(),
            reason: InvalidCharacter { position: 4 },
        }
    );
    assert!(!error.to_string().contains("bad"));
    let error = document
        .edit(&[
            set(names::USERNAME, "a"),
            set(names::GLIDESOAP_USERNAME, "b"),
        ])
        .unwrap_err();
    assert!(matches!(error, EditError::Conflict { .. }), "{error}");
    assert!(matches!(
        document.edit(&[set("", "x")]).unwrap_err(),
        EditError::InvalidName { .. }
    ));
    let empty_root = parse("<parameters/>");
    assert!(matches!(
        empty_root.edit(&[set("a", "1")]).unwrap_err(),
        EditError::EmptyRoot { .. }
    ));
    assert!(empty_root.edit(&[unset("a")]).unwrap().document.is_none());
}

#[test]
fn editing_twice_is_editing_once() {
    for file in [
        "shipped.xml",
        "crlf-bom.xml",
        "dom-reserialized.xml",
        "glidesoap.xml",
        "cyberark.xml",
    ] {
        let document = ConfigXml::parse(&fixture(file)).unwrap();
        let operations = [
            set(names::USERNAME, "svc_twice"),
            set(names::PASSWORD, "pw & more"),
            unset(names::KEY_PAIR_ID),
            set("new.one", "v"),
        ];
        let once = document.edit(&operations).unwrap().document.unwrap();
        let twice = once.edit(&operations).unwrap();
        assert!(
            twice.document.is_none() && twice.changes.is_empty(),
            "{file}"
        );
    }
}

#[test]
fn fuzzing_finds_stay_fixed() {
    // Two BOMs: refused (quick-xml would skip the second and shift every
    // offset, so an unset could leave `"/>` behind).
    let double_bom = b"\xEF\xBB\xBF\xEF\xBB\xBF<parameters>\n  <parameter name=\"a\" value=\"1\"/>\n</parameters>\n";
    assert!(matches!(
        read_error(double_bom),
        ReadError::Malformed { .. }
    ));
    // `secure` is read as a parser reads it.
    let document = parse(
        "<parameters><parameter name=\"t\" encrypt=\"&#116;rue\" value=\"s3cret\"/></parameters>",
    );
    assert!(document.get("t").unwrap().is_secure());
    let edited = document.edit(&[set("t", "other")]).unwrap();
    assert!(!format!("{:?}", edited.changes).contains("s3cret"));
    // An empty name is not a parameter midfleet can address.
    assert!(matches!(
        read_error(b"<parameters><parameter name=\"\" value=\"\"/></parameters>"),
        ReadError::MissingName { .. }
    ));
}

#[test]
fn an_edit_past_the_size_limit_does_not_tell_the_new_size() {
    // A file just under the limit: any value written pushes it over, and
    // the new size would tell the value's length.
    let filler = "f".repeat(MAX_CONFIG_BYTES - 200);
    let text = format!(
        "<?xml version=\"1.0\"?>\n<parameters>\n<parameter name=\"filler\" value=\"{filler}\"/>\n</parameters>\n"
    );
    let document = parse(&text);
    let secret = "s".repeat(4321);
    let error = document
        .edit(&[set(names::PASSWORD, &secret)])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&format!(
            "the edited file would be larger than the {MAX_CONFIG_BYTES} bytes accepted"
        )),
        "{error}"
    );
    // No other number: neither the new size nor the value's length.
    let rest = error.replace(&MAX_CONFIG_BYTES.to_string(), "");
    assert!(
        !rest.chars().any(|character| character.is_ascii_digit()),
        "{error}"
    );
    assert!(!error.contains("sss"), "{error}");
}
