//! The playbook's `rotate:` section: the pair of MID users each host
//! alternates between, the generated password's policy and how old a
//! host's credentials may get — its types, its reading, and the password
//! generator (`docs/rotation.md`).
//!
//! Must not: read the inventory, contact a host or the instance, or put a
//! generated password anywhere but the `SecretValue` it returns.

use std::io::Read;

use super::reader::Reader;
use super::*;
use crate::secret::SecretValue;

/// The `rotate:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotate {
    /// Templates of the two users a MID alternates between (A, B).
    pub users: [String; 2],
    /// The generated password's policy.
    pub password: PasswordPolicy,
    /// A host rotates when its last rotation is older than this.
    pub max_age_days: u64,
    /// Where each generated password goes before the instance is changed.
    pub store: Option<Store>,
    /// Where the section starts.
    pub origin: Origin,
}

/// `store:` — where a generated password is kept, before the instance is
/// changed. Templates over the host's variables and `rotate_user` (the
/// user the MID moves to); rendered per host by the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// `command: [PROGRAM, ARG…]`: run without a shell, the password on
    /// its stdin (no newline, then end of file). The program is taken as
    /// written; each argument is a template rendered to one argument.
    /// `read: [PROGRAM, ARG…]` (optional) prints a stored password on its
    /// stdout: what a group of hosts sharing a pair needs to finish a run
    /// that did not.
    Command {
        program: String,
        arguments: Vec<String>,
        read: Option<(String, Vec<String>)>,
    },
    /// `file: PATH`: written 0600, atomically (temporary file and rename)
    /// in an existing folder. The path is a template; the part rendered
    /// from variables may not leave the folder of its literal prefix.
    File { path: String },
}

/// `password: { generate: { length: N, symbols: BOOL } }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub length: usize,
    /// Whether [`SYMBOLS`] are drawn from too.
    pub symbols: bool,
}

pub const DEFAULT_LENGTH: usize = 32;
pub const MIN_LENGTH: usize = 16;
pub const MAX_LENGTH: usize = 128;
pub const MAX_AGE_LIMIT_DAYS: u64 = 3650;

const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &[u8] = b"0123456789";
/// Symbols that need no escaping in an XML attribute (no `&`, `<`, `>`,
/// quotes), hold no whitespace, backslash, `$` or `{}` (no variable or
/// escape syntax in config.xml, the wrapper's property files or a shell
/// a person pastes into), and no `:` (kept out of basic-auth's
/// `user:password` for tools that split at the last colon).
pub const SYMBOLS: &[u8] = b"!#%*+,-.=?@^_~";

const ROTATE_KEYS: [&str; 4] = ["users", "password", "max_age", "store"];

impl PasswordPolicy {
    /// A new password: `length` characters drawn uniformly from the
    /// alphabet (lower and upper case letters, digits and, unless
    /// `symbols: false`, [`SYMBOLS`]) with the OS's CSPRNG
    /// (`/dev/urandom`), holding at least one of each class — what
    /// ServiceNow's default password policy asks for.
    pub fn generate(&self) -> Result<SecretValue, std::io::Error> {
        let mut classes: Vec<&[u8]> = vec![LOWER, UPPER, DIGITS];
        if self.symbols {
            classes.push(SYMBOLS);
        }
        let alphabet: Vec<u8> = classes.concat();
        let mut random = std::fs::File::open("/dev/urandom")?;
        loop {
            let mut password = zeroize::Zeroizing::new(String::with_capacity(self.length));
            while password.len() < self.length {
                let mut byte = [0u8; 1];
                random.read_exact(&mut byte)?;
                // Rejection sampling: only bytes below the largest
                // multiple of the alphabet's size, so each character is
                // equally likely.
                let limit = 256 - 256 % alphabet.len();
                if usize::from(byte[0]) < limit {
                    password.push(char::from(alphabet[usize::from(byte[0]) % alphabet.len()]));
                }
            }
            let complete = classes
                .iter()
                .all(|class| password.bytes().any(|byte| class.contains(&byte)));
            if complete {
                return Ok(SecretValue::new(password.to_string()));
            }
        }
    }

    /// The alphabet, as the docs and `plan` describe it.
    pub fn describe(&self) -> String {
        let symbols = if self.symbols {
            format!(" and `{}`", String::from_utf8_lossy(SYMBOLS))
        } else {
            String::new()
        };
        format!(
            "{} characters of a-z, A-Z, 0-9{symbols}, at least one of each",
            self.length
        )
    }
}

impl Reader<'_> {
    pub(super) fn rotate(&mut self, node: &Node) -> Option<Rotate> {
        let Some(entries) = node.as_mapping() else {
            self.error(
                node,
                format!(
                    "`rotate` must be a mapping (users, password, max_age), not {}",
                    node.describe()
                ),
            );
            return None;
        };
        let mut users = None;
        let mut password = None;
        let mut max_age_days = None;
        let mut store = None;
        let mut problems = false;
        for (key, value) in entries {
            match key.text().unwrap_or_default() {
                "users" => users = self.rotate_users(value),
                "password" => password = self.password_policy(value),
                "max_age" => max_age_days = self.max_age(value),
                "store" => {
                    store = self.store(value);
                    problems |= store.is_none();
                }
                other => {
                    problems = true;
                    let hint = did_you_mean(other, ROTATE_KEYS)
                        .map(|close| format!("did you mean `{close}`?"));
                    self.error(key, format!("unknown key `rotate.{other}`"))
                        .hint =
                        Some(hint.unwrap_or_else(|| {
                            format!("`rotate` takes {}", ROTATE_KEYS.join(", "))
                        }));
                }
            }
        }
        let mut missing = |what: &str, example: &str| {
            self.error(node, format!("`rotate` needs `{what}`")).hint = Some(example.into());
        };
        if users.is_none() && !problems {
            missing(
                "users",
                "e.g. `users: [\"svc_mid_{{ mid_name }}_a\", \"svc_mid_{{ mid_name }}_b\"]`",
            );
        }
        if password.is_none() && !problems {
            missing("password", "e.g. `password: { generate: { length: 32 } }`");
        }
        if max_age_days.is_none() && !problems {
            missing("max_age", "e.g. `max_age: 60d`");
        }
        Some(Rotate {
            users: users?,
            password: password?,
            max_age_days: max_age_days?,
            store,
            origin: self.origin(node),
        })
    }

    fn rotate_users(&mut self, node: &Node) -> Option<[String; 2]> {
        let items = node.as_sequence().filter(|items| items.len() == 2);
        let Some(items) = items else {
            self.error(
                node,
                "`rotate.users` must be a list of two user names (A, B)",
            )
            .hint = Some(
                "e.g. `users: [\"svc_mid_{{ mid_name }}_a\", \"svc_mid_{{ mid_name }}_b\"]`".into(),
            );
            return None;
        };
        let first = self.string(&items[0], "rotate.users");
        let second = self.string(&items[1], "rotate.users");
        let (first, second) = (first?.trim().to_string(), second?.trim().to_string());
        for (item, text) in items.iter().zip([&first, &second]) {
            if text.is_empty() {
                self.error(item, "`rotate.users`: a user name is empty");
                return None;
            }
        }
        if first.eq_ignore_ascii_case(&second) {
            self.error(&items[1], "`rotate.users`: the two users are the same")
                .hint = Some("a MID alternates between two users: give them different names, e.g. ending in _a and _b".into());
            return None;
        }
        Some([first, second])
    }

    fn password_policy(&mut self, node: &Node) -> Option<PasswordPolicy> {
        let generate = node.as_mapping().and_then(|entries| match entries {
            [(key, value)] if key.text() == Some("generate") => Some(value),
            _ => None,
        });
        let Some(generate) = generate else {
            self.error(
                node,
                "`rotate.password` must be `{ generate: { length: N } }`",
            )
            .hint =
                Some("midfleet generates each new password itself; nobody types or sees it".into());
            return None;
        };
        let mut policy = PasswordPolicy {
            length: DEFAULT_LENGTH,
            symbols: true,
        };
        if generate.text() == Some("") || generate.as_mapping().is_some_and(<[_]>::is_empty) {
            return Some(policy);
        }
        let Some(entries) = generate.as_mapping() else {
            self.error(
                generate,
                format!(
                    "`rotate.password.generate` must be a mapping (length, symbols), not {}",
                    generate.describe()
                ),
            );
            return None;
        };
        for (key, value) in entries {
            match key.text().unwrap_or_default() {
                "length" => match value.typed() {
                    Some(Scalar::Integer(length))
                        if (MIN_LENGTH as i64..=MAX_LENGTH as i64).contains(&length) =>
                    {
                        policy.length = length as usize;
                    }
                    _ => {
                        let shown = value.text().map_or_else(
                            || value.describe().to_string(),
                            |text| format!("`{text}`"),
                        );
                        self.error(
                            value,
                            format!("`rotate.password.generate.length` must be a number from {MIN_LENGTH} to {MAX_LENGTH}, not {shown}"),
                        );
                        return None;
                    }
                },
                "symbols" => {
                    policy.symbols = self.boolean(value, "rotate.password.generate.symbols")?
                }
                other => {
                    self.error(
                        key,
                        format!("unknown key `rotate.password.generate.{other}`"),
                    )
                    .hint = Some("`generate` takes length and symbols".into());
                    return None;
                }
            }
        }
        Some(policy)
    }

    fn store(&mut self, node: &Node) -> Option<Store> {
        const EXAMPLE: &str = "e.g. `store: { command: [vault, kv, put, \"secret/mid/{{ mid_name }}\", password=-] }` or `store: { file: \"/var/lib/midfleet/passwords/{{ mid_name }}\" }`";
        let entries = node.as_mapping().unwrap_or_default();
        let read_node = entries
            .iter()
            .find(|(key, _)| key.text() == Some("read"))
            .map(|(_, value)| value);
        let entry = match entries {
            [(key, value)] => Some((key.text().unwrap_or_default(), value)),
            [(first, value), (second, _)]
                if first.text() == Some("command") && second.text() == Some("read") =>
            {
                Some(("command", value))
            }
            [(first, _), (second, value)]
                if first.text() == Some("read") && second.text() == Some("command") =>
            {
                Some(("command", value))
            }
            _ => None,
        };
        match entry {
            Some(("command", value)) => {
                let (program, arguments) = self.program(value, "rotate.store.command", EXAMPLE)?;
                let read = match read_node {
                    Some(node) => Some(self.program(node, "rotate.store.read", EXAMPLE)?),
                    None => None,
                };
                Some(Store::Command {
                    program,
                    arguments,
                    read,
                })
            }
            Some(("file", value)) => {
                let path = self.string(value, "rotate.store.file")?;
                let prefix = path
                    .split("{{")
                    .next()
                    .unwrap_or_default()
                    .split("{%")
                    .next()
                    .unwrap_or_default();
                if !path.starts_with('/') || !prefix.contains('/') {
                    self.error(value, "`rotate.store.file` must be an absolute path whose folder is written out (templates only after it)")
                        .hint = Some(EXAMPLE.into());
                    return None;
                }
                Some(Store::File {
                    path: path.to_string(),
                })
            }
            _ => {
                self.error(
                    node,
                    "`rotate.store` is `{ command: [PROGRAM, ARG…] }` or `{ file: PATH }`",
                )
                .hint = Some(EXAMPLE.into());
                None
            }
        }
    }

    /// `[PROGRAM, ARG…]`: the program as written, the arguments templates.
    fn program(
        &mut self,
        value: &Node,
        what: &str,
        example: &str,
    ) -> Option<(String, Vec<String>)> {
        let Some(items) = value.as_sequence().filter(|items| !items.is_empty()) else {
            self.error(
                value,
                format!("`{what}` must be a list: the program, then its arguments (it runs without a shell)"),
            )
            .hint = Some(example.into());
            return None;
        };
        let mut words = Vec::new();
        for item in items {
            words.push(self.string(item, what)?.to_string());
        }
        let program = words.remove(0);
        if Templates::is_template(&program) || program.trim().is_empty() {
            self.error(&items[0], format!("`{what}`: the program is taken as written, never a template (inventory values cannot choose what runs)"));
            return None;
        }
        Some((program, words))
    }

    fn max_age(&mut self, node: &Node) -> Option<u64> {
        let days = node
            .text()
            .and_then(|text| text.trim().strip_suffix('d'))
            .and_then(|number| number.parse::<u64>().ok())
            .filter(|days| (1..=MAX_AGE_LIMIT_DAYS).contains(days));
        if days.is_none() {
            let shown = node
                .text()
                .map_or_else(|| node.describe().to_string(), |text| format!("`{text}`"));
            self.error(
                node,
                format!(
                    "`rotate.max_age` must be a number of days from 1 to {MAX_AGE_LIMIT_DAYS} followed by `d`, e.g. `60d`, not {shown}"
                ),
            );
        }
        days
    }

    /// What `rotate:` needs of the rest of the playbook: an `instance:`
    /// section, and no `set:`/`unset:` of the user or its password (the
    /// rotation chooses both).
    pub(super) fn check_rotate(
        &mut self,
        origin: &Origin,
        instance: Option<&Instance>,
        set: &[SetEntry],
        unset: &[UnsetEntry],
    ) {
        if instance.is_none() {
            let mut diagnostic = Diagnostic::error(
                Some(origin.clone()),
                "`rotate` needs an `instance:` section: the idle user is reset on the instance before each MID moves to it",
            );
            diagnostic.hint =
                Some("add `instance:` with url, user and password (docs/instance.md)".into());
            self.diagnostics.push(diagnostic);
        }
        let rotated = [names::USERNAME, names::PASSWORD];
        let entries = set
            .iter()
            .map(|entry| (&entry.name, &entry.origin, "set"))
            .chain(
                unset
                    .iter()
                    .map(|entry| (&entry.name, &entry.origin, "unset")),
            );
        for (name, origin, section) in entries {
            if rotated.contains(&names::canonical(name)) {
                let mut diagnostic = Diagnostic::error(
                    Some(origin.clone()),
                    format!("`{name}` cannot be in `{section}` together with `rotate`: the rotation chooses the user and generates its password"),
                );
                diagnostic.hint = Some(format!(
                    "remove `{name}` from `{section}`, or remove `rotate`"
                ));
                self.diagnostics.push(diagnostic);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_follow_the_policy() {
        for symbols in [true, false] {
            let policy = PasswordPolicy {
                length: 32,
                symbols,
            };
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..200 {
                let password = policy.generate().unwrap();
                let text = password.expose();
                assert_eq!(text.len(), 32);
                assert!(text.bytes().any(|byte| LOWER.contains(&byte)));
                assert!(text.bytes().any(|byte| UPPER.contains(&byte)));
                assert!(text.bytes().any(|byte| DIGITS.contains(&byte)));
                assert_eq!(text.bytes().any(|byte| SYMBOLS.contains(&byte)), symbols);
                assert!(text.bytes().all(|byte| LOWER.contains(&byte)
                    || UPPER.contains(&byte)
                    || DIGITS.contains(&byte)
                    || (symbols && SYMBOLS.contains(&byte))));
                assert!(seen.insert(text.to_string()), "no repeat in 200");
            }
        }
    }

    #[test]
    fn symbols_need_no_xml_escape_and_hold_no_syntax() {
        for byte in SYMBOLS {
            assert!(!b"&<>\"'\\${}: \t".contains(byte), "{}", char::from(*byte));
        }
        let xml = crate::config_xml::escape_attribute(std::str::from_utf8(SYMBOLS).unwrap(), b'"');
        assert_eq!(xml.as_bytes(), SYMBOLS, "written as they are");
    }

    #[test]
    fn every_character_is_drawn_about_equally() {
        let policy = PasswordPolicy {
            length: 128,
            symbols: true,
        };
        let mut counts = std::collections::BTreeMap::new();
        for _ in 0..200 {
            for byte in policy.generate().unwrap().expose().bytes() {
                *counts.entry(byte).or_insert(0u32) += 1;
            }
        }
        // 25,600 draws over 76 characters: about 337 each.
        let alphabet = LOWER.len() + UPPER.len() + DIGITS.len() + SYMBOLS.len();
        assert_eq!(counts.len(), alphabet);
        assert!(
            counts.values().all(|count| (200..500).contains(count)),
            "{counts:?}"
        );
    }
}
