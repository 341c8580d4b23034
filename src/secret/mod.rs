//! Secret references (`env:NAME`, `file:PATH`, `command:CMD`,
//! `prompt:LABEL`) and the values they resolve to.
//!
//! Owns: parsing a reference, resolving it once per run within bounds (a
//! regular file of at most 64 KiB, a command's output of at most 64 KiB
//! within 30 s), and the [`SecretValue`] type, which redacts itself in
//! `Debug`/`Display`, serialises to `null`, and zeroises its memory when
//! dropped. Must not: put a value, or its length, in a message, an argv or
//! an environment.
//!
//! Also owns [`protect_process`]: the process that holds resolved values
//! writes no core dump and cannot be read by others of its user.
//!
//! Here: references, [`SecretValue`], the resolver (with `env:` and
//! `prompt:`, a few lines each) and the checks every value passes;
//! `file.rs` reads `file:` secrets, `command.rs` runs `command:` ones.

mod command;
mod file;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// The most a `file:` or `command:` secret may hold: passwords are short,
/// and a bound keeps `/dev/zero` or a runaway command from filling memory.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;
/// How long a `command:` secret may run before its process group is
/// killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

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
    type Error = SecretError;

    fn try_from(text: String) -> Result<SecretRef, SecretError> {
        text.parse()
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

/// Why a reference could not be read or resolved. Never holds the value,
/// nor its length.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("`{0}` is not a secret reference")]
    Syntax(String, &'static str),
    #[error("`{0}`: an environment variable name may hold only letters, digits and `_`")]
    EnvName(String),
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
            SecretError::EnvName(_) => Some(
                "write the name as [A-Za-z0-9_] (e.g. env:MID_PASSWORD_EMEA01); when it is a template, check the host variables it uses",
            ),
            SecretError::Resolve { hint, .. } => *hint,
        }
    }
}

const SYNTAX_HINT: &str =
    "write env:NAME, file:PATH, command:CMD, prompt:LABEL, or var:NAME for a host's inventory variable in a playbook's set: (e.g. env:MID_PASSWORD)";

/// Whether `name` is an environment variable name midfleet reads:
/// `[A-Za-z0-9_]+`.
pub fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

impl std::str::FromStr for SecretRef {
    type Err = SecretError;

    fn from_str(text: &str) -> Result<SecretRef, SecretError> {
        let syntax = || SecretError::Syntax(text.to_string(), SYNTAX_HINT);
        let (scheme, rest) = text.split_once(':').ok_or_else(syntax)?;
        if rest.is_empty() {
            return Err(syntax());
        }
        match scheme {
            "env" if is_env_name(rest) => Ok(SecretRef::Env(rest.to_string())),
            "env" => Err(SecretError::EnvName(text.to_string())),
            "file" if !rest.contains('\0') => Ok(SecretRef::File(PathBuf::from(rest))),
            "command" => Ok(SecretRef::Command(rest.to_string())),
            "prompt" => Ok(SecretRef::Prompt(rest.to_string())),
            _ => Err(syntax()),
        }
    }
}

/// The folder a `file:` reference rendered from a template must stay in:
/// the folder of the reference's literal prefix (the part before the first
/// `{{`/`{%`), checked again on the real path when the file is opened, so
/// that a symbolic link cannot lead out of it either.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileScope(PathBuf);

impl FileScope {
    pub fn new(folder: impl Into<PathBuf>) -> FileScope {
        FileScope(folder.into())
    }

    pub fn folder(&self) -> &Path {
        &self.0
    }
}

/// A secret's value: shown as `(sensitive)`, serialised as `null`, zeroised
/// on drop. Read it only with [`SecretValue::expose`] where it is written.
#[derive(Clone)]
pub struct SecretValue(SecretString);

impl SecretValue {
    /// Takes `value`, wiping the `String`'s own buffer: the value is
    /// copied once into an allocation of exactly its length, so that the
    /// conversion into the secret's box does not reallocate (which would
    /// free a copy without wiping it).
    pub fn new(mut value: String) -> SecretValue {
        let secret = SecretValue::from_str_exact(&value);
        value.zeroize();
        secret
    }

    fn from_str_exact(text: &str) -> SecretValue {
        let mut exact = String::with_capacity(text.len());
        exact.push_str(text);
        SecretValue(SecretString::from(exact))
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

/// Something about a secret worth knowing that does not stop the run
/// (a secret file others can read, or owned by another user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretWarning {
    pub reference: SecretRef,
    pub message: String,
    pub hint: String,
}

impl fmt::Display for SecretWarning {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "secret `{}`: {}", self.reference, self.message)
    }
}

/// Resolves references, each distinct one once per run: one prompt per
/// label, one run of each command.
pub struct SecretResolver {
    resolved: HashMap<(SecretRef, Option<FileScope>), SecretValue>,
    warnings: Vec<SecretWarning>,
    command_timeout: Duration,
}

impl Default for SecretResolver {
    fn default() -> SecretResolver {
        SecretResolver {
            resolved: HashMap::new(),
            warnings: Vec::new(),
            command_timeout: COMMAND_TIMEOUT,
        }
    }
}

/// Why one resolution failed, before the reference is attached. Never
/// holds the value, nor its length.
#[derive(Debug)]
pub struct Refusal {
    reason: String,
    hint: Option<&'static str>,
}

impl Refusal {
    pub(super) fn new(reason: impl Into<String>, hint: Option<&'static str>) -> Refusal {
        Refusal {
            reason: reason.into(),
            hint,
        }
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }

    pub fn hint(&self) -> Option<&'static str> {
        self.hint
    }
}

/// Reads the file at `path` with every check a `file:` secret gets (no
/// blocking, no link unless it and its target are root's or this user's,
/// a regular file of at most [`MAX_SECRET_BYTES`]); `warn` hears of a file
/// others can read or own (message, hint). For other secret sources that
/// are files, such as Ansible Vault password files.
pub fn read_bounded_file(
    path: &Path,
    warn: impl FnMut(String, String),
) -> Result<Zeroizing<Vec<u8>>, Refusal> {
    file::read_secret_file(path, None, warn)
}

/// What to do about a program [`untrusted_program`] refuses.
pub const UNTRUSTED_PROGRAM_HINT: &str =
    "make it yours (or root's) and not writable by others: `chmod o-w FILE`, `chown $USER FILE`";

/// Why the program at `path` must not be run on the word of a file that
/// names it (an inventory script, a vault password script): anyone may
/// write it, or it belongs to someone other than root or this user, who
/// could then run anything as midfleet's user. `None`: it may be run.
pub fn untrusted_program(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let metadata = std::fs::metadata(path).ok()?;
    if metadata.mode() & 0o002 != 0 {
        return Some(format!(
            "anyone may change it (mode {:04o})",
            metadata.mode() & 0o7777
        ));
    }
    let owner = metadata.uid();
    if owner != 0 && owner != file::current_euid() {
        return Some(format!(
            "it belongs to user id {owner}, neither root nor the user running midfleet"
        ));
    }
    None
}

/// Runs `program` with `arguments` (no shell) within the bounds of a
/// `command:` secret ([`COMMAND_TIMEOUT`], [`MAX_SECRET_BYTES`] of
/// output, its process group killed past either) and returns its stdout;
/// a non-zero exit is refused. For other secret sources that are
/// programs, such as Ansible Vault password scripts.
pub fn run_bounded_program(
    program: &Path,
    arguments: &[&str],
) -> Result<Zeroizing<Vec<u8>>, Refusal> {
    if let Some(reason) = untrusted_program(program) {
        return Err(Refusal::new(
            format!("{} is not run: {reason}", program.display()),
            Some(UNTRUSTED_PROGRAM_HINT),
        ));
    }
    // The file named, never a program of the same name found on PATH
    // (`Command` searches PATH for a name without a `/`).
    let path = std::path::absolute(program).unwrap_or_else(|_| program.to_path_buf());
    let mut command = std::process::Command::new(path);
    command.args(arguments);
    command::run_program(command, &program.display().to_string(), COMMAND_TIMEOUT)
}

impl SecretResolver {
    pub fn new() -> SecretResolver {
        SecretResolver::default()
    }

    /// A resolver whose `command:` secrets get `timeout` instead of
    /// [`COMMAND_TIMEOUT`].
    pub fn with_command_timeout(timeout: Duration) -> SecretResolver {
        SecretResolver {
            command_timeout: timeout,
            ..SecretResolver::default()
        }
    }

    /// The value of `reference`, resolving it on first use.
    pub fn resolve(&mut self, reference: &SecretRef) -> Result<SecretValue, SecretError> {
        self.resolve_in(reference, None)
    }

    /// The value of `reference`, a `file:` one of which must stay in
    /// `scope` (when it was rendered from a template).
    pub fn resolve_in(
        &mut self,
        reference: &SecretRef,
        scope: Option<&FileScope>,
    ) -> Result<SecretValue, SecretError> {
        let key = (reference.clone(), scope.cloned());
        if let Some(value) = self.resolved.get(&key) {
            return Ok(value.clone());
        }
        let value =
            self.resolve_uncached(reference, scope)
                .map_err(|refusal| SecretError::Resolve {
                    reference: reference.clone(),
                    reason: refusal.reason,
                    hint: refusal.hint,
                })?;
        self.resolved.insert(key, value.clone());
        Ok(value)
    }

    /// The warnings found since the last call.
    pub fn take_warnings(&mut self) -> Vec<SecretWarning> {
        std::mem::take(&mut self.warnings)
    }

    fn resolve_uncached(
        &mut self,
        reference: &SecretRef,
        scope: Option<&FileScope>,
    ) -> Result<SecretValue, Refusal> {
        match reference {
            SecretRef::Env(name) => match std::env::var_os(name) {
                Some(value) => {
                    let value = Zeroizing::new(value.into_encoded_bytes());
                    value_of(&value, false)
                }
                None => Err(Refusal::new(
                    format!("environment variable {name} is not set"),
                    Some("export it in the shell that runs midfleet"),
                )),
            },
            SecretRef::File(path) => {
                let bytes = file::read_secret_file(path, scope, |message, hint| {
                    self.warnings.push(SecretWarning {
                        reference: reference.clone(),
                        message,
                        hint,
                    })
                })?;
                value_of(&bytes, true)
            }
            SecretRef::Command(command) => {
                let output = command::run_command(command, self.command_timeout)?;
                value_of(&output, true)
            }
            SecretRef::Prompt(label) => {
                let answer = rpassword::prompt_password(format!("{label}: ")).map_err(|error| {
                    Refusal::new(
                        format!("cannot ask on the terminal: {error}"),
                        Some("prompt: needs a terminal; use env: or file: when running unattended"),
                    )
                })?;
                let answer = Zeroizing::new(answer);
                value_of(answer.as_bytes(), false)
            }
        }
    }
}

/// The value `bytes` hold (one trailing newline removed when `trim`),
/// refused when empty, not UTF-8, or holding characters config.xml cannot
/// store. No message says where or how long.
fn value_of(bytes: &[u8], trim: bool) -> Result<SecretValue, Refusal> {
    let mut bytes = bytes;
    if trim {
        if let Some(rest) = bytes.strip_suffix(b"\n") {
            bytes = rest.strip_suffix(b"\r").unwrap_or(rest);
        }
    }
    if bytes.is_empty() {
        return Err(Refusal::new(
            "resolved to an empty value",
            Some("an empty password is almost always an unset variable or an empty file"),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| Refusal::new("is not valid UTF-8", None))?;
    if !text.chars().all(crate::xml_char::is_xml_char) {
        return Err(Refusal::new(
            "holds a control character or another character config.xml cannot store",
            Some("a password is printable text; check what the reference resolves to by hand"),
        ));
    }
    Ok(SecretValue::from_str_exact(text))
}

/// Where the values of a plan come from at apply time.
pub struct Values<'a> {
    pub secrets: &'a std::collections::BTreeMap<SecretRef, SecretValue>,
    /// Literal sensitive values by (host, parameter): only when applying a
    /// plan made in the same run (a plan file never holds them).
    pub literals: &'a std::collections::BTreeMap<(String, String), SecretValue>,
}
