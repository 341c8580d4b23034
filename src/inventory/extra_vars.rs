//! `-e/--extra-vars`, read as Ansible's `load_extra_vars` reads them:
//! `@FILE` (a YAML or JSON mapping), an argument starting with `{` or `[`
//! (inline YAML or JSON), otherwise `key=value` words split as Ansible's
//! `split_args`/`parse_kv` split them (quotes group words, one pair of outer
//! quotes is removed, `\n`-style escapes are decoded, every value is a
//! string). Later arguments override earlier ones. They are the top layer of
//! every host's variables ([`super::Inventory::set_extra_vars`]).
//!
//! Owns: that parsing, with diagnostics naming the argument (`-e #2`) or
//! the file, line and column. Must not: put a value in a diagnostic (extra
//! vars often carry passwords), or decide precedence (`host.rs` does).

use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Diagnostics, Location, Origin};
use crate::source_file::Text;
use crate::vault::Keyring;
use crate::yaml::Node;

use super::vars::{check_definition, read_vars, Var, Vars};

/// The variables of every `-e` argument in order, later ones winning. A
/// vaulted `@FILE` is decrypted with `keyring`, as Ansible does; its
/// values are then as sensitive as a `!vault` one's.
pub fn parse_extra_vars(arguments: &[String], keyring: &Keyring) -> (Vars, Diagnostics) {
    let mut vars = Vars::default();
    let mut diagnostics = Diagnostics::new();
    for (index, argument) in arguments.iter().enumerate() {
        let label = PathBuf::from(format!("-e #{}", index + 1));
        let parsed = parse_one(argument, &label, keyring, &mut diagnostics);
        vars.merge(&parsed);
    }
    (vars, diagnostics)
}

fn parse_one(
    argument: &str,
    label: &Path,
    keyring: &Keyring,
    diagnostics: &mut Diagnostics,
) -> Vars {
    if argument.is_empty() {
        return Vars::default();
    }
    if let Some(file) = argument.strip_prefix('@') {
        return parse_file(Path::new(file), keyring, diagnostics);
    }
    if argument.starts_with('/') || argument.starts_with('.') {
        diagnostics.push(
            Diagnostic::error(
                Some(Origin::file(label)),
                "looks like a file name: give a file of variables as @FILE",
            )
            .with_hint(format!("write `-e @{argument}`")),
        );
        return Vars::default();
    }
    if argument.starts_with('{') || argument.starts_with('[') {
        return parse_yaml(argument, label, diagnostics);
    }
    parse_key_values(argument, label, diagnostics)
}

/// `@FILE`: a YAML (or JSON) mapping of variables, decrypted first when
/// it is vaulted whole.
fn parse_file(path: &Path, keyring: &Keyring, diagnostics: &mut Diagnostics) -> Vars {
    let name = |message: &str| format!("-e @{}: {message}", path.display());
    match crate::source_file::read_allowing_vault(path) {
        Ok(Text::Plain(text)) => parse_yaml(&text, path, diagnostics),
        Ok(Text::Vaulted(text)) => match crate::vault::reveal(&text, keyring) {
            Ok(plaintext) => {
                let plaintext = plaintext.expose();
                let plaintext = plaintext.strip_prefix('\u{feff}').unwrap_or(plaintext);
                let mut vars = parse_yaml(plaintext, path, diagnostics);
                vars.mark_vaulted_file(path);
                vars
            }
            Err(error) => {
                diagnostics.push(
                    Diagnostic::error(
                        Some(Origin::file(path)),
                        format!("-e @FILE: cannot decrypt the vaulted file: {error}"),
                    )
                    .with_hint(error.hint()),
                );
                Vars::default()
            }
        },
        Err(mut diagnostic) => {
            diagnostic.message = name(&diagnostic.message);
            diagnostics.push(diagnostic);
            Vars::default()
        }
    }
}

/// A YAML or JSON mapping, from a file or inline (`label` is `-e #N`).
fn parse_yaml(text: &str, label: &Path, diagnostics: &mut Diagnostics) -> Vars {
    match crate::yaml::parse(text) {
        Ok(Some(root)) if root.as_mapping().is_some() => {
            read_vars(&root, label, "extra vars", diagnostics)
        }
        Ok(Some(root)) => {
            diagnostics.push(
                Diagnostic::error(
                    Some(Origin::new(label, root.at)),
                    format!(
                        "extra vars must be a mapping of variables, not {}",
                        root.describe()
                    ),
                )
                .with_hint("write `{\"name\": \"value\"}` or `name: value` lines"),
            );
            Vars::default()
        }
        Ok(None) => Vars::default(),
        Err(error) => {
            // The parser's message says what it expected, never the text.
            diagnostics.push(
                Diagnostic::error(
                    Some(Origin::new(label, error.at)),
                    format!("extra vars are not valid YAML or JSON: {}", error.message),
                )
                .with_hint(
                    "quote the whole -e argument for the shell, e.g. -e '{\"name\": \"value\"}'",
                ),
            );
            Vars::default()
        }
    }
}

/// `key=value key2="two words"`, as Ansible's `parse_kv`.
fn parse_key_values(argument: &str, label: &Path, diagnostics: &mut Diagnostics) -> Vars {
    let mut vars = Vars::default();
    let words = match split_args(argument) {
        Ok(words) => words,
        Err(()) => {
            diagnostics.push(
                Diagnostic::error(
                    Some(Origin::file(label)),
                    "unbalanced quotes or {{ }} in key=value extra vars",
                )
                .with_hint("close every quote; quote the whole -e argument for the shell"),
            );
            return vars;
        }
    };
    for (position, (offset, word)) in words.iter().enumerate() {
        let at = Location {
            line: 1,
            column: argument[..*offset].chars().count() + 1,
        };
        let decoded = decode_escapes(word);
        let Some(equals) = unescaped_equals(&decoded) else {
            diagnostics.push(
                Diagnostic::error(
                    Some(Origin::new(label, at)),
                    format!("word {} is not key=value", position + 1),
                )
                .with_hint("write name=value words, a {…} mapping, or @FILE"),
            );
            continue;
        };
        let name = decoded[..equals].trim().to_string();
        let value = unquote(decoded[equals + 1..].trim()).to_string();
        let var = Var {
            node: Node::scalar(value, false, at),
            origin: Origin::new(label, at),
        };
        check_definition(&name, &var, diagnostics);
        vars.insert(name, var);
    }
    vars
}

/// The first `=` after the first character that no backslash escapes.
fn unescaped_equals(word: &str) -> Option<usize> {
    word.char_indices()
        .skip(1)
        .find(|&(index, character)| character == '=' && !word[..index].ends_with('\\'))
        .map(|(index, _)| index)
}

/// One pair of matching outer quotes removed: Ansible's `unquote`, as it
/// applies it to `k=v` words and to INI strings (ansible.cfg).
pub(crate) fn unquote(text: &str) -> &str {
    let bytes = text.as_bytes();
    if bytes.len() > 1
        && bytes[0] == bytes[bytes.len() - 1]
        && (bytes[0] == b'"' || bytes[0] == b'\'')
        && bytes[bytes.len() - 2] != b'\\'
    {
        &text[1..text.len() - 1]
    } else {
        text
    }
}

/// Ansible's `split_args`: words split on spaces and newlines, put back
/// together inside quotes and `{{ }}`/`{% %}`/`{# #}`; each with its byte
/// offset. `Err` when quotes or blocks are left open.
fn split_args(text: &str) -> Result<Vec<(usize, String)>, ()> {
    let mut words: Vec<(usize, String)> = Vec::new();
    let mut quote: Option<char> = None;
    let mut depths = [0usize; 3];
    let mut offset = 0usize;
    let lines: Vec<&str> = text.split('\n').collect();
    for (line_index, line) in lines.iter().enumerate() {
        let tokens: Vec<&str> = line.split(' ').collect();
        for (index, token) in tokens.iter().enumerate() {
            let token_offset = offset;
            offset += token.len() + 1;
            if token.is_empty() && index != 0 {
                if let Some(last) = words.last_mut() {
                    if quote.is_some() || depths.iter().any(|depth| *depth > 0) {
                        last.1.push(' ');
                    }
                }
                continue;
            }
            let was_quoted = quote.is_some();
            quote = quote_state(token, quote);
            let quoted = quote.is_some();
            let inside_block = depths.iter().any(|depth| *depth > 0);
            let mut appended = false;
            if quoted && !was_quoted && !inside_block {
                words.push((token_offset, (*token).to_string()));
                appended = true;
            } else if inside_block || quoted || was_quoted {
                if let Some(last) = words.last_mut() {
                    if !(index == 0 && was_quoted) && index > 0 {
                        last.1.push(' ');
                    }
                    last.1.push_str(token);
                    appended = true;
                }
            }
            for (depth, (open, close)) in
                depths
                    .iter_mut()
                    .zip([("{{", "}}"), ("{%", "%}"), ("{#", "#}")])
            {
                let before = *depth;
                let opened = token.matches(open).count();
                let closed = token.matches(close).count();
                if opened != closed {
                    *depth = (*depth + opened).saturating_sub(closed);
                }
                if *depth != before && !appended {
                    words.push((token_offset, (*token).to_string()));
                    appended = true;
                }
            }
            if depths.iter().all(|depth| *depth == 0) && !quoted && !appended && !token.is_empty() {
                words.push((token_offset, (*token).to_string()));
            }
        }
        if lines.len() > 1 && line_index != lines.len() - 1 {
            if let Some(last) = words.last_mut() {
                if quote.is_some() || depths.iter().any(|depth| *depth > 0) {
                    last.1.push('\n');
                }
            }
        }
    }
    if quote.is_some() || depths.iter().any(|depth| *depth > 0) {
        return Err(());
    }
    Ok(words)
}

/// The quote still open after `token`, starting with `quote` open.
fn quote_state(token: &str, mut quote: Option<char>) -> Option<char> {
    let mut previous = None;
    for character in token.chars() {
        if (character == '"' || character == '\'') && previous != Some('\\') {
            match quote {
                Some(open) if open == character => quote = None,
                Some(_) => {}
                None => quote = Some(character),
            }
        }
        previous = Some(character);
    }
    quote
}

/// Python's `unicode-escape` of the sequences Ansible decodes:
/// `\\ \' \" \a \b \f \n \r \t \v`, `\xHH`, `\uHHHH`, `\UHHHHHHHH`.
fn decode_escapes(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut characters = word.chars().peekable();
    while let Some(character) = characters.next() {
        if character != '\\' {
            out.push(character);
            continue;
        }
        let Some(&next) = characters.peek() else {
            out.push('\\');
            continue;
        };
        let simple = match next {
            '\\' => Some('\\'),
            '\'' => Some('\''),
            '"' => Some('"'),
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            _ => None,
        };
        if let Some(decoded) = simple {
            characters.next();
            out.push(decoded);
            continue;
        }
        let digits = match next {
            'x' => 2,
            'u' => 4,
            'U' => 8,
            _ => 0,
        };
        if digits > 0 {
            let rest: String = characters.clone().skip(1).take(digits).collect();
            if rest.len() == digits && rest.chars().all(|digit| digit.is_ascii_hexdigit()) {
                if let Some(decoded) = u32::from_str_radix(&rest, 16).ok().and_then(char::from_u32)
                {
                    for _ in 0..=digits {
                        characters.next();
                    }
                    out.push(decoded);
                    continue;
                }
            }
        }
        out.push('\\');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::{VaultIds, VaultSettings};
    use crate::yaml::Scalar;

    fn no_vault() -> Keyring {
        Keyring::new(VaultIds::from_settings(&VaultSettings::default()))
    }

    fn text(vars: &Vars, name: &str) -> String {
        match vars.get(name).map(|var| var.node.typed()) {
            Some(Some(Scalar::String(text))) => text.to_string(),
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn key_values_are_strings_split_as_ansible_splits_them() {
        let (vars, diagnostics) = parse_extra_vars(
            &[
                r#"ansible_port=2222 greeting="mid admin" empty= quoted='a b' esc=a\tb"#
                    .to_string(),
            ],
            &no_vault(),
        );
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert_eq!(text(&vars, "ansible_port"), "2222");
        assert_eq!(text(&vars, "greeting"), "mid admin");
        assert_eq!(text(&vars, "empty"), "");
        assert_eq!(text(&vars, "quoted"), "a b");
        assert_eq!(text(&vars, "esc"), "a\tb");
        // A string, as Ansible's: not the integer 2222.
        assert!(matches!(
            vars.get("ansible_port").unwrap().node.typed(),
            Some(Scalar::String(_))
        ));
    }

    #[test]
    fn templates_with_spaces_stay_one_word() {
        let (vars, diagnostics) = parse_extra_vars(
            &["greeting={{ 'hi' | upper }} other=1".to_string()],
            &no_vault(),
        );
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert_eq!(text(&vars, "greeting"), "{{ 'hi' | upper }}");
        assert_eq!(text(&vars, "other"), "1");
    }

    #[test]
    fn later_arguments_win_and_json_keeps_types() {
        let (vars, diagnostics) = parse_extra_vars(
            &[
                "a=1 b=2".to_string(),
                r#"{"b": 3, "list": [1, 2]}"#.to_string(),
                String::new(),
            ],
            &no_vault(),
        );
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert_eq!(text(&vars, "a"), "1");
        assert!(matches!(
            vars.get("b").unwrap().node.typed(),
            Some(Scalar::Integer(3))
        ));
        assert!(vars.get("list").is_some());
    }

    #[test]
    fn files_are_read_with_their_locations() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("vars.yml");
        std::fs::write(&path, "ansible_user: deploy\nnested:\n  key: [\n").unwrap();
        let (_, diagnostics) = parse_extra_vars(&[format!("@{}", path.display())], &no_vault());
        let problem = diagnostics.iter().next().expect("a YAML error");
        let origin = problem.origin.as_ref().unwrap();
        assert_eq!(origin.file, path);
        assert!(origin.at.is_some_and(|at| at.line >= 3), "{problem:?}");

        std::fs::write(&path, "ansible_user: deploy\n").unwrap();
        let (vars, diagnostics) = parse_extra_vars(&[format!("@{}", path.display())], &no_vault());
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert_eq!(text(&vars, "ansible_user"), "deploy");
        assert_eq!(vars.get("ansible_user").unwrap().origin.file, path);

        // A vaulted file (made by ansible-vault, password `correct horse`):
        // decrypted with the password, its values sensitive; without one,
        // an error saying how to give it.
        std::fs::write(&path, crate::vault::tests::FILE_V11).unwrap();
        let (vars, diagnostics) = parse_extra_vars(&[format!("@{}", path.display())], &no_vault());
        assert!(vars.get("mid_password").is_none());
        let error = diagnostics.iter().next().unwrap();
        assert!(
            error.message.contains("cannot decrypt the vaulted file"),
            "{error:?}"
        );
        assert!(
            error
                .hint
                .as_deref()
                .unwrap()
                .contains("--vault-password-file"),
            "{error:?}"
        );
        let password = directory.path().join("pw");
        std::fs::write(&password, "correct horse\n").unwrap();
        std::fs::set_permissions(
            &password,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let keyring = Keyring::new(VaultIds::from_settings(&VaultSettings {
            password_files: vec![password],
            ..VaultSettings::default()
        }));
        let (vars, diagnostics) = parse_extra_vars(&[format!("@{}", path.display())], &keyring);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let var = vars.get("mid_password").unwrap();
        assert_eq!(var.node.text(), Some("from-file"));
        assert!(super::super::vars::is_sensitive(&var.node));

        let (_, diagnostics) =
            parse_extra_vars(&["@/nonexistent/vars.yml".to_string()], &no_vault());
        assert!(diagnostics
            .iter()
            .next()
            .unwrap()
            .message
            .contains("-e @/nonexistent/vars.yml"));
    }

    #[test]
    fn problems_name_the_argument_and_never_the_value() {
        let (_, diagnostics) = parse_extra_vars(
            &[
                "ok=1".to_string(),
                "password=s3cr3t-value notakeyvalue".to_string(),
                "pw='s3cr3t-value".to_string(),
                "./vars.yml".to_string(),
                "[1, 2]".to_string(),
                r#"{"pw": "s3cr3t-value""#.to_string(),
            ],
            &no_vault(),
        );
        let all: Vec<String> = diagnostics
            .iter()
            .map(|problem| problem.to_string())
            .collect();
        assert_eq!(all.len(), 5, "{all:#?}");
        assert!(
            all[0].starts_with("-e #2:1:23: word 2 is not key=value"),
            "{all:#?}"
        );
        assert!(all[1].starts_with("-e #3: unbalanced quotes"), "{all:#?}");
        assert!(
            all[2].contains("give a file of variables as @FILE"),
            "{all:#?}"
        );
        assert!(all[3].contains("must be a mapping"), "{all:#?}");
        assert!(all[4].starts_with("-e #6:"), "{all:#?}");
        for message in &all {
            assert!(!message.contains("s3cr3t"), "{message}");
        }
    }

    #[test]
    fn bad_names_and_known_types_are_checked_where_given() {
        let (_, diagnostics) =
            parse_extra_vars(&["ansible_port=http 1bad=x".to_string()], &no_vault());
        let all: Vec<String> = diagnostics
            .iter()
            .map(|problem| problem.to_string())
            .collect();
        assert_eq!(all.len(), 2, "{all:#?}");
        assert!(
            all.iter().any(|message| message.contains("ansible_port")),
            "{all:#?}"
        );
        assert!(
            all.iter()
                .any(|message| message.contains("`1bad` is not a valid variable name")),
            "{all:#?}"
        );
    }

    #[test]
    fn extra_vars_beat_every_layer_and_reach_templates() {
        use crate::inventory::{HostDefaults, Inventory};
        use crate::template::Templates;
        let directory = tempfile::tempdir().unwrap();
        let root = directory.path();
        std::fs::create_dir_all(root.join("group_vars")).unwrap();
        std::fs::create_dir_all(root.join("host_vars")).unwrap();
        std::fs::write(
            root.join("hosts.ini"),
            "[all:vars]\nansible_port=2001\n[emea]\nmid1 ansible_port=2002 ansible_user=inventory\n[emea:vars]\nansible_port=2003\n",
        )
        .unwrap();
        std::fs::write(root.join("group_vars/all.yml"), "ansible_port: 2004\n").unwrap();
        std::fs::write(root.join("group_vars/emea.yml"), "ansible_port: 2005\n").unwrap();
        std::fs::write(
            root.join("host_vars/mid1.yml"),
            "ansible_port: 2006\nansible_host: 10.0.0.1\nnote: \"{{ ansible_host }}\"\n",
        )
        .unwrap();
        let (mut inventory, diagnostics) = Inventory::load(&[root.join("hosts.ini")]);
        assert!(!diagnostics.has_errors(), "{diagnostics:?}");
        let before = inventory.resolve("mid1", &Templates::new()).unwrap();
        assert_eq!(
            (before.port, before.address.as_str()),
            (Some(2006), "10.0.0.1")
        );

        let (vars, diagnostics) = parse_extra_vars(
            &["ansible_port=2222 ansible_host=10.9.9.9 extra=yes".to_string()],
            &no_vault(),
        );
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        inventory.set_extra_vars(vars);
        let mut host = inventory.resolve("mid1", &Templates::new()).unwrap();
        assert_eq!(host.port, Some(2222));
        assert_eq!(host.address, "10.9.9.9");
        assert_eq!(host.user.as_deref(), Some("inventory"));
        assert_eq!(
            host.template_context.get("note").unwrap().to_string(),
            "10.9.9.9"
        );
        assert_eq!(
            host.template_context.get("extra").unwrap().to_string(),
            "yes"
        );

        // ansible.cfg's defaults stay below the inventory.
        let defaults = HostDefaults {
            user: Some("cfg-user".into()),
            port: Some(2999),
            identity_file: Some("/keys/cfg".into()),
            connect_timeout: Some(33),
        };
        defaults.apply(&mut host);
        assert_eq!(host.user.as_deref(), Some("inventory"));
        assert_eq!(host.port, Some(2222));
        assert_eq!(host.identity_file, Some("/keys/cfg".into()));
        assert_eq!(host.connect_timeout, Some(33));
    }
}
