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

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
    "write env:NAME, file:PATH, command:CMD or prompt:LABEL (e.g. env:MID_PASSWORD)";

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

/// Why one resolution failed, before the reference is attached.
struct Refusal {
    reason: String,
    hint: Option<&'static str>,
}

impl Refusal {
    fn new(reason: impl Into<String>, hint: Option<&'static str>) -> Refusal {
        Refusal {
            reason: reason.into(),
            hint,
        }
    }
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
                let bytes = read_secret_file(path, scope, |message, hint| {
                    self.warnings.push(SecretWarning {
                        reference: reference.clone(),
                        message,
                        hint,
                    })
                })?;
                value_of(&bytes, true)
            }
            SecretRef::Command(command) => {
                let output = run_command(command, self.command_timeout)?;
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

const FILE_HINT: &str = "point the reference at a regular file of at most 64 KiB";

/// Reads the secret file at `path`: opened without blocking and without
/// following a symbolic link (one is followed only when it and its target
/// belong to root or to this user), a regular file of at most
/// [`MAX_SECRET_BYTES`], inside `scope` when there is one. `warn` hears of
/// a file others can read or that belongs to another user.
fn read_secret_file(
    path: &Path,
    scope: Option<&FileScope>,
    mut warn: impl FnMut(String, String),
) -> Result<Zeroizing<Vec<u8>>, Refusal> {
    let shown = path.display();
    let cannot =
        |error: std::io::Error| Refusal::new(format!("cannot read {shown}: {error}"), None);
    let open = |follow: bool| {
        let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
        if !follow {
            flags |= libc::O_NOFOLLOW;
        }
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(path)
    };
    let euid = current_euid();
    let trusted = |uid: u32| uid == 0 || uid == euid;
    let (file, through_link) = match open(false) {
        Ok(file) => (file, false),
        Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
            let link = std::fs::symlink_metadata(path).map_err(cannot)?;
            if !link.file_type().is_symlink() {
                return Err(cannot(error));
            }
            if !trusted(link.uid()) {
                return Err(Refusal::new(
                    format!(
                        "{shown} is a symbolic link owned by uid {}, neither root nor this user (uid {euid})",
                        link.uid()
                    ),
                    Some("a secret file reached through a link must have the link and its target owned by root or the user running midfleet; point the reference at the file itself"),
                ));
            }
            (open(true).map_err(cannot)?, true)
        }
        Err(error) => return Err(cannot(error)),
    };
    let metadata = file.metadata().map_err(cannot)?;
    let file_type = metadata.file_type();
    if !file_type.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let kind = if file_type.is_dir() {
            "a directory"
        } else if file_type.is_fifo() {
            "a FIFO"
        } else if file_type.is_char_device() || file_type.is_block_device() {
            "a device"
        } else if file_type.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(Refusal::new(
            format!("{shown} is {kind}, not a regular file"),
            Some(FILE_HINT),
        ));
    }
    if through_link && !trusted(metadata.uid()) {
        return Err(Refusal::new(
            format!(
                "{shown} is a symbolic link to a file owned by uid {}, neither root nor this user (uid {euid})",
                metadata.uid()
            ),
            Some("a secret file reached through a link must have the link and its target owned by root or the user running midfleet; point the reference at the file itself"),
        ));
    }
    if let Some(scope) = scope {
        check_scope(path, &file, scope)?;
    }
    let mode = metadata.mode() & 0o7777;
    if mode & 0o044 != 0 {
        warn(
            format!("{shown} is readable by group or others (mode {mode:04o})"),
            format!("chmod 600 {shown}"),
        );
    }
    if !trusted(metadata.uid()) {
        warn(
            format!(
                "{shown} is owned by uid {}, neither root nor this user (uid {euid})",
                metadata.uid()
            ),
            format!("make the user that runs midfleet (or root) own {shown}"),
        );
    }
    let mut buffer = Zeroizing::new(vec![0u8; MAX_SECRET_BYTES + 1]);
    let mut length = 0;
    let mut reader = &file;
    while length < buffer.len() {
        match reader.read(&mut buffer[length..]) {
            Ok(0) => break,
            Ok(read) => length += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(cannot(error)),
        }
    }
    if length > MAX_SECRET_BYTES {
        return Err(Refusal::new(
            format!("{shown} is larger than 64 KiB"),
            Some(FILE_HINT),
        ));
    }
    buffer.truncate(length);
    Ok(buffer)
}

/// Refuses an opened file whose real path (through every link) is not in
/// `scope`'s real folder.
fn check_scope(path: &Path, file: &File, scope: &FileScope) -> Result<(), Refusal> {
    let hint = Some("a file: reference rendered from host variables must stay in the folder its template starts with; fix the variable, or the link");
    let folder = std::fs::canonicalize(scope.folder()).map_err(|error| {
        Refusal::new(
            format!(
                "cannot resolve the folder {}: {error}",
                scope.folder().display()
            ),
            None,
        )
    })?;
    let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .or_else(|_| std::fs::canonicalize(path))
        .map_err(|error| {
            Refusal::new(format!("cannot resolve {}: {error}", path.display()), None)
        })?;
    if !real.starts_with(&folder) {
        return Err(Refusal::new(
            format!(
                "{} leaves {} (it is {})",
                path.display(),
                folder.display(),
                real.display()
            ),
            hint,
        ));
    }
    Ok(())
}

fn current_euid() -> u32 {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

const COMMAND_HINT: &str = "run the command by hand to see why; its stderr is shown above";

/// Runs `sh -c command` in its own process group and returns its stdout,
/// read as it comes: more than [`MAX_SECRET_BYTES`], or not done within
/// `timeout`, and the whole group is killed.
fn run_command(command: &str, timeout: Duration) -> Result<Zeroizing<Vec<u8>>, Refusal> {
    let deadline = Instant::now() + timeout;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::inherit())
        .stderr(Stdio::inherit())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|error| Refusal::new(format!("cannot run sh: {error}"), None))?;
    let terminal = Terminal::hand_to(&child);
    let result = read_output(&mut child, deadline, timeout);
    if result.is_err() {
        kill_group(&mut child);
    }
    drop(terminal);
    let output = result?;
    let status = child
        .wait()
        .map_err(|error| Refusal::new(format!("cannot wait for sh: {error}"), None))?;
    if !status.success() {
        return Err(Refusal::new(
            format!("the command failed ({status})"),
            Some(COMMAND_HINT),
        ));
    }
    Ok(output)
}

/// Reads `child`'s stdout to its end, then waits for `child` to end, both
/// by `deadline`.
fn read_output(
    child: &mut Child,
    deadline: Instant,
    timeout: Duration,
) -> Result<Zeroizing<Vec<u8>>, Refusal> {
    let too_slow = || {
        Refusal::new(
            format!(
                "the command did not finish within {} s and was killed",
                timeout.as_secs_f64()
            ),
            Some("a command: secret must print the value and exit; run it by hand to see where it waits"),
        )
    };
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| Refusal::new("no pipe to the command's stdout", None))?;
    let mut buffer = Zeroizing::new(vec![0u8; MAX_SECRET_BYTES + 1]);
    let mut length = 0;
    loop {
        if !wait_readable(stdout.as_raw_fd(), deadline) {
            return Err(too_slow());
        }
        match stdout.read(&mut buffer[length..]) {
            Ok(0) => break,
            Ok(read) => length += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => {
                return Err(Refusal::new(
                    format!("cannot read the command's output: {error}"),
                    None,
                ))
            }
        }
        if length > MAX_SECRET_BYTES {
            return Err(Refusal::new(
                "the command's output is larger than 64 KiB; it was killed",
                Some("a command: secret must print only the value"),
            ));
        }
    }
    buffer.truncate(length);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return Ok(buffer),
            Ok(None) if Instant::now() >= deadline => return Err(too_slow()),
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(error) => {
                return Err(Refusal::new(
                    format!("cannot wait for the command: {error}"),
                    None,
                ))
            }
        }
    }
}

/// Whether `fd` has something to read (or its end) before `deadline`.
fn wait_readable(fd: libc::c_int, deadline: Instant) -> bool {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let milliseconds = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd, for the duration of the call.
        let ready = unsafe { libc::poll(&mut poll, 1, milliseconds) };
        if ready > 0 {
            return true;
        }
        if ready < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return true; // let read(2) report it
        }
    }
}

/// Kills `child`'s whole process group (what `sh -c` started too) and
/// reaps `child`.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) on the group this child leads (process_group(0)).
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// While a command runs in its own process group, the terminal (when
/// midfleet holds it in the foreground) belongs to that group, so that a
/// command that asks for a passphrase can read it; it is taken back when
/// this is dropped.
struct Terminal {
    ours: libc::pid_t,
}

impl Terminal {
    fn hand_to(child: &Child) -> Option<Terminal> {
        let pid = libc::pid_t::try_from(child.id()).ok()?;
        // SAFETY: isatty, getpgrp, tcgetpgrp, tcsetpgrp and kill take
        // plain values.
        unsafe {
            if libc::isatty(libc::STDIN_FILENO) != 1 {
                return None;
            }
            let ours = libc::getpgrp();
            if libc::tcgetpgrp(libc::STDIN_FILENO) != ours {
                return None;
            }
            if libc::tcsetpgrp(libc::STDIN_FILENO, pid) != 0 {
                return None;
            }
            // It may have stopped on reading before it had the terminal.
            libc::kill(-pid, libc::SIGCONT);
            Some(Terminal { ours })
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        // Taking the terminal back from a background group raises
        // SIGTTOU, which would stop midfleet: ignore it meanwhile.
        // SAFETY: signal(2) and tcsetpgrp(3) with plain values; the old
        // disposition is put back.
        unsafe {
            let previous = libc::signal(libc::SIGTTOU, libc::SIG_IGN);
            libc::tcsetpgrp(libc::STDIN_FILENO, self.ours);
            libc::signal(libc::SIGTTOU, previous);
        }
    }
}

/// Where the values of a plan come from at apply time.
pub struct Values<'a> {
    pub secrets: &'a std::collections::BTreeMap<SecretRef, SecretValue>,
    /// Literal sensitive values by (host, parameter): only when applying a
    /// plan made in the same run (a plan file never holds them).
    pub literals: &'a std::collections::BTreeMap<(String, String), SecretValue>,
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
            ("env:A.B", None),
            ("env:A/B", None),
            ("env:MID-PASSWORD", None),
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

    /// What a refusal says, checked to hold `expected` and nothing of the
    /// value: neither `secret_bytes` nor a length.
    fn refused(
        result: Result<SecretValue, SecretError>,
        expected: &str,
        secret_bytes: &str,
    ) -> String {
        let error = match result {
            Ok(_) => panic!("resolved, but should be refused with `{expected}`"),
            Err(error) => error,
        };
        let message = format!("{error} {}", error.hint().unwrap_or_default());
        assert!(message.contains(expected), "{message}");
        if !secret_bytes.is_empty() {
            assert!(!message.contains(secret_bytes), "leaks bytes: {message}");
        }
        for length in ["65536", "65537", "100000", "1048576", "104857600"] {
            assert!(!message.contains(length), "leaks a length: {message}");
        }
        message
    }

    #[test]
    fn env_names_hold_only_letters_digits_and_underscores() {
        for text in ["env:A.B", "env:../A", "env:A=B", "env:A B", "env:Ä"] {
            let error = text.parse::<SecretRef>().unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "`{text}`: an environment variable name may hold only letters, digits and `_`"
                )
            );
            assert!(error.hint().unwrap().contains("[A-Za-z0-9_]"));
        }
        assert!("env:mid_PASSWORD_01".parse::<SecretRef>().is_ok());
    }

    #[test]
    fn a_device_is_refused_without_reading_it() {
        let mut resolver = SecretResolver::new();
        refused(
            resolver.resolve(&SecretRef::File("/dev/zero".into())),
            "/dev/zero is a device, not a regular file",
            "",
        );
        refused(
            resolver.resolve(&SecretRef::File("/tmp".into())),
            "/tmp is a directory, not a regular file",
            "",
        );
    }

    #[test]
    fn a_fifo_is_refused_at_once() {
        let directory = tempfile::tempdir().unwrap();
        let fifo = directory.path().join("fifo");
        let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let started = Instant::now();
        let message = refused(
            SecretResolver::new().resolve(&SecretRef::File(fifo.clone())),
            "is a FIFO, not a regular file",
            "",
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{message}");
        assert!(message.contains(&fifo.display().to_string()), "{message}");
    }

    #[test]
    fn a_file_over_64_kib_is_refused_without_its_length() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("big");
        std::fs::write(&path, "k".repeat(100_000)).unwrap();
        refused(
            SecretResolver::new().resolve(&SecretRef::File(path.clone())),
            "is larger than 64 KiB",
            "kkkk",
        );
        // Exactly 64 KiB is still a value.
        std::fs::write(&path, "k".repeat(MAX_SECRET_BYTES)).unwrap();
        let value = SecretResolver::new()
            .resolve(&SecretRef::File(path))
            .unwrap();
        assert_eq!(value.expose().len(), MAX_SECRET_BYTES);
    }

    #[test]
    fn a_file_others_can_read_or_another_user_owns_is_used_with_a_warning() {
        use std::os::unix::fs::PermissionsExt;
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("secret");
        std::fs::write(&path, "w4rned-value\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut resolver = SecretResolver::new();
        resolver.resolve(&SecretRef::File(path.clone())).unwrap();
        assert_eq!(resolver.take_warnings(), Vec::new());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let mut resolver = SecretResolver::new();
        let value = resolver.resolve(&SecretRef::File(path.clone())).unwrap();
        assert_eq!(value.expose(), "w4rned-value");
        let warnings = resolver.take_warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let shown = format!("{} {}", warnings[0], warnings[0].hint);
        assert!(
            shown.contains("is readable by group or others (mode 0666)"),
            "{shown}"
        );
        assert!(shown.contains("chmod 600"), "{shown}");
        assert!(!shown.contains("w4rned"), "{shown}");
        if current_euid() == 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
            let mut resolver = SecretResolver::new();
            resolver.resolve(&SecretRef::File(path)).unwrap();
            let warnings = resolver.take_warnings();
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(
                warnings[0]
                    .message
                    .contains("is owned by uid 65534, neither root nor this user (uid 0)"),
                "{}",
                warnings[0]
            );
        }
    }

    #[test]
    fn a_link_is_followed_only_when_it_and_its_target_are_trusted() {
        let directory = tempfile::tempdir().unwrap();
        let target = directory.path().join("target");
        std::fs::write(&target, "l1nked-value").unwrap();
        let link = directory.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let value = SecretResolver::new()
            .resolve(&SecretRef::File(link.clone()))
            .unwrap();
        assert_eq!(value.expose(), "l1nked-value");
        if current_euid() != 0 {
            return; // the rest needs chown
        }
        std::os::unix::fs::lchown(&link, Some(65534), None).unwrap();
        refused(
            SecretResolver::new().resolve(&SecretRef::File(link.clone())),
            "is a symbolic link owned by uid 65534, neither root nor this user (uid 0)",
            "l1nked",
        );
        std::os::unix::fs::lchown(&link, Some(0), None).unwrap();
        std::os::unix::fs::chown(&target, Some(65534), None).unwrap();
        refused(
            SecretResolver::new().resolve(&SecretRef::File(link)),
            "is a symbolic link to a file owned by uid 65534",
            "l1nked",
        );
    }

    #[test]
    fn a_scoped_file_cannot_leave_its_folder_through_a_link() {
        let directory = tempfile::tempdir().unwrap();
        let secrets = directory.path().join("secrets");
        std::fs::create_dir(&secrets).unwrap();
        std::fs::write(secrets.join("emea01"), "1nside-value").unwrap();
        std::fs::write(directory.path().join("outside"), "0utside-value").unwrap();
        std::os::unix::fs::symlink(directory.path().join("outside"), secrets.join("escape"))
            .unwrap();
        let scope = FileScope::new(&secrets);
        let mut resolver = SecretResolver::new();
        let value = resolver
            .resolve_in(&SecretRef::File(secrets.join("emea01")), Some(&scope))
            .unwrap();
        assert_eq!(value.expose(), "1nside-value");
        let message = refused(
            resolver.resolve_in(&SecretRef::File(secrets.join("escape")), Some(&scope)),
            "leaves",
            "0utside",
        );
        assert!(message.contains("outside"), "{message}");
        // Unscoped (written out by the operator), the link is theirs.
        let value = resolver
            .resolve(&SecretRef::File(secrets.join("escape")))
            .unwrap();
        assert_eq!(value.expose(), "0utside-value");
    }

    #[test]
    fn a_command_that_does_not_end_is_killed_with_its_group() {
        let directory = tempfile::tempdir().unwrap();
        let pid_file = directory.path().join("pid");
        let command = format!(
            "echo $$ > {}; sleep 1000; printf 'la%s' te",
            pid_file.display()
        );
        let started = Instant::now();
        let mut resolver = SecretResolver::with_command_timeout(Duration::from_secs(1));
        refused(
            resolver.resolve(&SecretRef::Command(command)),
            "the command did not finish within 1 s and was killed",
            "late",
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        let group: libc::pid_t = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The `sleep` sh started is gone too (reaped by init soon after).
        let gone = (0..200).any(|_| {
            // SAFETY: signal 0 only checks that the group exists.
            let alive = unsafe { libc::kill(-group, 0) } == 0;
            if alive {
                std::thread::sleep(Duration::from_millis(10));
            }
            !alive
        });
        assert!(gone, "process group {group} still runs");
    }

    #[test]
    fn a_command_that_closes_stdout_but_goes_on_is_killed_too() {
        let started = Instant::now();
        refused(
            SecretResolver::with_command_timeout(Duration::from_secs(1)).resolve(
                &SecretRef::Command("printf 'v%s' 4lue; exec >&-; sleep 1000".into()),
            ),
            "did not finish within 1 s",
            "v4lue",
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    /// The process's peak resident memory, in KiB.
    fn peak_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    #[test]
    fn a_command_printing_100_mb_is_cut_off_in_bounded_memory() {
        let before = peak_kib();
        let started = Instant::now();
        refused(
            SecretResolver::new().resolve(&SecretRef::Command(
                "head -c 100M /dev/zero | tr '\\0' q".into(),
            )),
            "the command's output is larger than 64 KiB; it was killed",
            "qqqq",
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        let grown = peak_kib().saturating_sub(before);
        assert!(grown < 16 * 1024, "peak memory grew by {grown} KiB");
    }
}
