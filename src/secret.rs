//! Secret references (`env:NAME`, `file:PATH`, `command:CMD`,
//! `prompt:LABEL`) and the values they resolve to.
//!
//! Owns: parsing a reference, resolving it once per run, and the
//! [`SecretValue`] type, which redacts itself in `Debug`/`Display`,
//! serialises to `null`, and zeroises its memory when dropped. Must not:
//! put a value in an error message, an argv or an environment.
//!
//! Also owns [`protect_process`]: the process that holds resolved values
//! writes no core dump and cannot be read by others of its user.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// Keeps this process's memory, which will hold secrets, out of core dumps
/// and away from other processes of the same user: a core size limit of 0
/// (soft and hard, so a child cannot raise it back) and not dumpable (no
/// core even when the limit is raised by a debugger, `/proc/PID/mem`,
/// `environ` and friends owned by root, no same-user `ptrace`). Call it
/// first thing in `main`, before any secret is read. Children started
/// with `exec` (`command:` secrets, ssh helpers) are dumpable again, as
/// the kernel resets the flag on `execve`; the core limit they inherit.
pub fn protect_process() -> std::io::Result<()> {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads the struct passed by reference; prctl with
    // PR_SET_DUMPABLE takes plain integers.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Where a secret comes from. The reference itself is not secret and may be
/// shown; what it resolves to is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum SecretRef {
    /// An environment variable of midfleet's own process.
    Env(String),
    /// A file's contents, one trailing newline removed.
    File(PathBuf),
    /// A command run with `sh -c` on this machine; its stdout, one trailing
    /// newline removed.
    Command(String),
    /// Asked on the terminal, once per label.
    Prompt(String),
}

impl TryFrom<String> for SecretRef {
    type Error = String;

    fn try_from(text: String) -> Result<SecretRef, String> {
        text.parse().map_err(|error: SecretError| error.to_string())
    }
}

impl From<SecretRef> for String {
    fn from(reference: SecretRef) -> String {
        reference.to_string()
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(formatter, "env:{name}"),
            SecretRef::File(path) => write!(formatter, "file:{}", path.display()),
            SecretRef::Command(command) => write!(formatter, "command:{command}"),
            SecretRef::Prompt(label) => write!(formatter, "prompt:{label}"),
        }
    }
}

/// Why a reference could not be read or resolved. Never holds the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("`{0}` is not a secret reference")]
    Syntax(String, &'static str),
    #[error("secret `{reference}`: {reason}")]
    Resolve {
        reference: SecretRef,
        reason: String,
        hint: Option<&'static str>,
    },
}

impl SecretError {
    /// What the operator can do about it.
    pub fn hint(&self) -> Option<&str> {
        match self {
            SecretError::Syntax(_, hint) => Some(hint),
            SecretError::Resolve { hint, .. } => *hint,
        }
    }
}

const SYNTAX_HINT: &str =
    "write env:NAME, file:PATH, command:CMD or prompt:LABEL (e.g. env:MID_PASSWORD)";

impl std::str::FromStr for SecretRef {
    type Err = SecretError;

    fn from_str(text: &str) -> Result<SecretRef, SecretError> {
        let syntax = || SecretError::Syntax(text.to_string(), SYNTAX_HINT);
        let (scheme, rest) = text.split_once(':').ok_or_else(syntax)?;
        if rest.is_empty() {
            return Err(syntax());
        }
        match scheme {
            "env" if !rest.contains('=') && !rest.contains('\0') => {
                Ok(SecretRef::Env(rest.to_string()))
            }
            "file" => Ok(SecretRef::File(PathBuf::from(rest))),
            "command" => Ok(SecretRef::Command(rest.to_string())),
            "prompt" => Ok(SecretRef::Prompt(rest.to_string())),
            _ => Err(syntax()),
        }
    }
}

/// A secret's value: shown as `(sensitive)`, serialised as `null`, zeroised
/// on drop. Read it only with [`SecretValue::expose`] where it is written.
#[derive(Clone)]
pub struct SecretValue(SecretString);

impl SecretValue {
    pub fn new(value: String) -> SecretValue {
        SecretValue(SecretString::from(value))
    }

    /// The value itself, for the one place that writes it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("(sensitive)")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("(sensitive)")
    }
}

impl Serialize for SecretValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_none()
    }
}

/// Resolves references, each distinct one once per run: one prompt per
/// label, one run of each command.
#[derive(Default)]
pub struct SecretResolver {
    resolved: HashMap<SecretRef, SecretValue>,
}

impl SecretResolver {
    pub fn new() -> SecretResolver {
        SecretResolver::default()
    }

    /// The value of `reference`, resolving it on first use.
    pub fn resolve(&mut self, reference: &SecretRef) -> Result<SecretValue, SecretError> {
        if let Some(value) = self.resolved.get(reference) {
            return Ok(value.clone());
        }
        let value = resolve_uncached(reference)?;
        if value.expose().is_empty() {
            return Err(SecretError::Resolve {
                reference: reference.clone(),
                reason: "resolved to an empty value".to_string(),
                hint: Some("an empty password is almost always an unset variable or an empty file"),
            });
        }
        self.resolved.insert(reference.clone(), value.clone());
        Ok(value)
    }
}

fn resolve_uncached(reference: &SecretRef) -> Result<SecretValue, SecretError> {
    let failure = |reason: String, hint: Option<&'static str>| SecretError::Resolve {
        reference: reference.clone(),
        reason,
        hint,
    };
    match reference {
        SecretRef::Env(name) => match std::env::var(name) {
            Ok(value) => Ok(SecretValue::new(value)),
            Err(std::env::VarError::NotPresent) => Err(failure(
                format!("environment variable {name} is not set"),
                Some("export it in the shell that runs midfleet"),
            )),
            Err(std::env::VarError::NotUnicode(_)) => Err(failure(
                format!("environment variable {name} is not valid UTF-8"),
                None,
            )),
        },
        SecretRef::File(path) => {
            let bytes = std::fs::read(path).map_err(|error| {
                failure(format!("cannot read {}: {error}", path.display()), None)
            })?;
            let text = String::from_utf8(bytes).map_err(|error| {
                let mut bytes = error.into_bytes();
                bytes.zeroize();
                failure(format!("{} is not valid UTF-8", path.display()), None)
            })?;
            Ok(SecretValue::new(without_trailing_newline(text)))
        }
        SecretRef::Command(command) => {
            let output = Command::new("sh")
                .arg("-c")
                .arg(command)
                .stdin(Stdio::inherit())
                .stderr(Stdio::inherit())
                .stdout(Stdio::piped())
                .output()
                .map_err(|error| failure(format!("cannot run sh: {error}"), None))?;
            let mut stdout = output.stdout;
            if !output.status.success() {
                stdout.zeroize();
                return Err(failure(
                    format!("the command failed ({})", output.status),
                    Some("run the command by hand to see why; its stderr is shown above"),
                ));
            }
            let text = String::from_utf8(stdout).map_err(|error| {
                let mut bytes = error.into_bytes();
                bytes.zeroize();
                failure("the command's output is not valid UTF-8".to_string(), None)
            })?;
            Ok(SecretValue::new(without_trailing_newline(text)))
        }
        SecretRef::Prompt(label) => rpassword::prompt_password(format!("{label}: "))
            .map(SecretValue::new)
            .map_err(|error| {
                failure(
                    format!("cannot ask on the terminal: {error}"),
                    Some("prompt: needs a terminal; use env: or file: when running unattended"),
                )
            }),
    }
}

/// Removes one trailing newline (`\n` or `\r\n`) in place.
fn without_trailing_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind_and_refuses_others() {
        let cases = [
            (
                "env:MID_PASSWORD",
                Some(SecretRef::Env("MID_PASSWORD".into())),
            ),
            (
                "file:/run/secret",
                Some(SecretRef::File("/run/secret".into())),
            ),
            (
                "command:pass show x",
                Some(SecretRef::Command("pass show x".into())),
            ),
            (
                "prompt:MID password",
                Some(SecretRef::Prompt("MID password".into())),
            ),
            ("env:", None),
            ("env:A=B", None),
            ("vault:x", None),
            ("hunter2", None),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<SecretRef>().ok(), expected, "{text}");
        }
    }

    #[test]
    fn values_never_show_themselves() {
        let value = SecretValue::new("hunter2".into());
        assert_eq!(format!("{value} {value:?}"), "(sensitive) (sensitive)");
        assert_eq!(serde_json::to_string(&value).unwrap(), "null");
    }

    #[test]
    fn resolves_file_and_command_without_one_trailing_newline() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("secret");
        std::fs::write(&path, "s3cret\n\n").unwrap();
        let mut resolver = SecretResolver::new();
        let value = resolver.resolve(&SecretRef::File(path)).unwrap();
        assert_eq!(value.expose(), "s3cret\n");
        let value = resolver
            .resolve(&SecretRef::Command("printf 'a b\\r\\n'".into()))
            .unwrap();
        assert_eq!(value.expose(), "a b");
    }

    #[test]
    fn each_command_runs_once_per_run() {
        let directory = tempfile::tempdir().unwrap();
        let counter = directory.path().join("count");
        let command = format!("echo x >> {}; echo value", counter.display());
        let reference = SecretRef::Command(command);
        let mut resolver = SecretResolver::new();
        for _ in 0..3 {
            assert_eq!(resolver.resolve(&reference).unwrap().expose(), "value");
        }
        assert_eq!(std::fs::read_to_string(counter).unwrap(), "x\n");
    }

    #[test]
    fn failures_name_the_reference_not_the_value() {
        let mut resolver = SecretResolver::new();
        let error = resolver
            .resolve(&SecretRef::Command("echo leaked-value; exit 3".into()))
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("command:echo leaked-value; exit 3"));
        assert!(message.contains("failed"));
        let error = resolver
            .resolve(&SecretRef::Env("MIDFLEET_TEST_SURELY_UNSET".into()))
            .unwrap_err();
        assert!(error.to_string().contains("is not set"), "{error}");
        let error = resolver
            .resolve(&SecretRef::Command("true".into()))
            .unwrap_err();
        assert!(error.to_string().contains("empty"), "{error}");
    }
}
