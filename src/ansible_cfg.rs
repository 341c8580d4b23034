//! `ansible.cfg`, found and read as Ansible finds and reads it, and the
//! `ANSIBLE_*` environment variables that stand for the same settings.
//!
//! Where (ansible-core's `find_ini_config_file`): `ANSIBLE_CONFIG` (a file,
//! or a directory holding `ansible.cfg`), `./ansible.cfg` unless the
//! working directory is world-writable, `~/.ansible.cfg`,
//! `/etc/ansible/ansible.cfg`; the first that exists and can be read is the
//! only one read. How (Python's `configparser` as Ansible sets it up):
//! `[section]` headers, `key = value` or `key: value`, keys in any case,
//! whole-line comments starting with `#` or `;`, inline comments only after
//! whitespace and `;`, indented continuation lines, a `[DEFAULT]` section
//! every section inherits, no `%` interpolation (Ansible reads values raw).
//! A relative path in the file is relative to the file's folder; in the
//! environment, to the working directory; `~` and `$VAR` are expanded.
//!
//! Owns: discovery, the INI reader with file:line errors, the settings
//! midfleet uses ([`AnsibleCfg`]) with env over file, and the refusals and
//! warnings about settings that would weaken host key checking or change
//! where hosts are reached. Must not: print, read clap types, contact a
//! host. The command line beats both; the cli layer applies that.

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::diagnostic::{Diagnostic, Diagnostics, Location, Origin};
use crate::inventory::unquote;

/// What discovery and expansion look at: environment variables, the
/// working directory, the home folder and the system-wide file (tests give
/// their own; [`Environment::current`] is the process's).
#[derive(Debug, Clone)]
pub struct Environment {
    pub variables: BTreeMap<String, String>,
    /// `None` when the working directory cannot be read (Ansible then
    /// skips `./ansible.cfg`).
    pub working_directory: Option<PathBuf>,
    pub home: PathBuf,
    /// `/etc/ansible/ansible.cfg`.
    pub system_file: PathBuf,
}

/// Ansible's system-wide configuration file.
pub const SYSTEM_FILE: &str = "/etc/ansible/ansible.cfg";

impl Environment {
    /// The process's environment (variables that are not UTF-8 are left
    /// out, as if unset).
    pub fn current() -> Environment {
        Environment {
            variables: std::env::vars_os()
                .filter_map(|(name, value)| {
                    Some((name.into_string().ok()?, value.into_string().ok()?))
                })
                .collect(),
            working_directory: std::env::current_dir().ok(),
            home: crate::endpoint::home_directory(),
            system_file: PathBuf::from(SYSTEM_FILE),
        }
    }

    fn variable(&self, name: &str) -> Option<&str> {
        self.variables.get(name).map(String::as_str)
    }

    /// `path` as Ansible's `unfrackpath` makes it: `$VAR`/`${VAR}` then `~`
    /// expanded, made absolute against `base` (the working directory when
    /// `None`), `.`/`..` folded, symlinks kept.
    pub fn resolve_path(&self, path: &str, base: Option<&Path>) -> PathBuf {
        let expanded = self.expand_user(&self.expand_variables(path));
        let path = PathBuf::from(expanded);
        let absolute = if path.is_absolute() {
            path
        } else {
            let base = base
                .map(Path::to_path_buf)
                .or_else(|| self.working_directory.clone())
                .unwrap_or_else(|| PathBuf::from("/"));
            base.join(path)
        };
        normalize(&absolute)
    }

    /// Python's `os.path.expandvars`: `$NAME` and `${NAME}` of set
    /// variables; anything else stays as written.
    fn expand_variables(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            let after = &rest[dollar + 1..];
            let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
                match braced.find('}') {
                    Some(end) => (&braced[..end], end + 2),
                    None => ("", 0),
                }
            } else {
                let end = after
                    .find(|character: char| {
                        !(character.is_ascii_alphanumeric() || character == '_')
                    })
                    .unwrap_or(after.len());
                (&after[..end], end)
            };
            match self.variable(name).filter(|_| !name.is_empty()) {
                Some(value) => out.push_str(value),
                None => out.push_str(&rest[dollar..dollar + 1 + consumed]),
            }
            rest = &after[consumed..];
        }
        out.push_str(rest);
        out
    }

    /// `~` and `~/…` (Python's `expanduser` uses HOME); `~user` stays.
    fn expand_user(&self, text: &str) -> String {
        if text == "~" {
            return self.home.display().to_string();
        }
        match text.strip_prefix("~/") {
            Some(rest) => self.home.join(rest).display().to_string(),
            None => text.to_string(),
        }
    }
}

/// `.` and `..` folded without touching the file system (`os.path.normpath`).
fn normalize(path: &Path) -> PathBuf {
    let mut parts: Vec<std::path::Component<'_>> = Vec::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if matches!(parts.last(), Some(std::path::Component::Normal(_))) {
                    parts.pop();
                }
            }
            other => parts.push(other),
        }
    }
    parts.iter().collect()
}

/// The configuration file Ansible would read, if any, and what is worth
/// saying about the search.
#[derive(Debug, Default)]
pub struct Discovery {
    pub file: Option<PathBuf>,
    /// Every place looked at, in order (for `-v` when none was found).
    pub searched: Vec<PathBuf>,
    pub warnings: Vec<Diagnostic>,
}

/// Finds the configuration file as ansible-core does.
pub fn find(environment: &Environment) -> Discovery {
    let mut discovery = Discovery::default();
    let mut candidates: Vec<PathBuf> = Vec::new();
    let from_environment = environment.variable("ANSIBLE_CONFIG").map(|value| {
        let path = environment.resolve_path(value, None);
        if path.is_dir() {
            path.join("ansible.cfg")
        } else {
            path
        }
    });
    if let Some(path) = &from_environment {
        candidates.push(path.clone());
    }
    let mut skipped_world_writable = None;
    if let Some(directory) = &environment.working_directory {
        let file = directory.join("ansible.cfg");
        match std::fs::metadata(directory) {
            Ok(metadata) if metadata.permissions().mode() & 0o002 != 0 => {
                if file.exists() {
                    skipped_world_writable = Some(directory.clone());
                }
            }
            Ok(_) => candidates.push(file),
            Err(_) => {}
        }
    }
    candidates.push(environment.home.join(".ansible.cfg"));
    candidates.push(environment.system_file.clone());
    let mut skipped_writable = None;
    for candidate in candidates {
        discovery.searched.push(candidate.clone());
        if readable(&candidate) {
            // Unlike Ansible: a file anyone may change could send the
            // inventory (and the new passwords) anywhere.
            let writable = std::fs::metadata(&candidate)
                .is_ok_and(|metadata| metadata.permissions().mode() & 0o002 != 0);
            if writable {
                discovery.warnings.push(
                    Diagnostic::warning(
                        Some(Origin::file(&candidate)),
                        "ignored: anyone may change this file (it is writable by others); it could point midfleet at any inventory",
                    )
                    .with_hint("remove the write permission for others: `chmod o-w FILE`"),
                );
                skipped_writable = Some(candidate);
                continue;
            }
            discovery.file = Some(candidate);
            break;
        }
    }
    if let Some(path) = &from_environment {
        if discovery.file.as_ref() != Some(path) && skipped_writable.as_ref() != Some(path) {
            discovery.warnings.push(
                Diagnostic::warning(
                    Some(Origin::file(path)),
                    "ANSIBLE_CONFIG names a file that does not exist or cannot be read; looking further, as Ansible does",
                )
                .with_hint("fix or unset ANSIBLE_CONFIG"),
            );
        }
    }
    if let Some(directory) = skipped_world_writable {
        if from_environment.is_none() || discovery.file != from_environment {
            discovery.warnings.push(
                Diagnostic::warning(
                    Some(Origin::file(&directory.join("ansible.cfg"))),
                    "ignored: the working directory is world-writable (anyone could have put this file there); Ansible ignores it too",
                )
                .with_hint("remove the write permission for others (`chmod o-w .`) or point ANSIBLE_CONFIG at the file"),
            );
        }
    }
    discovery
}

fn readable(path: &Path) -> bool {
    path.is_file() && std::fs::File::open(path).is_ok()
}

/// One `key = value` of an INI file, with the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: String,
    pub line: usize,
}

/// An INI file as Python's `configparser` reads it (keys lowercased).
#[derive(Debug, Default)]
pub struct Ini {
    sections: IndexMap<String, IndexMap<String, Entry>>,
    defaults: IndexMap<String, Entry>,
}

impl Ini {
    /// `key` of `section`, or of `[DEFAULT]` when the section exists but
    /// does not set it (`None` when the section does not exist, as
    /// `configparser.get(…, fallback=None)`).
    pub fn get(&self, section: &str, key: &str) -> Option<&Entry> {
        let entries = self.sections.get(section)?;
        entries.get(key).or_else(|| self.defaults.get(key))
    }

    /// Every `(section, key)` set, `[DEFAULT]` ones under "DEFAULT".
    pub fn keys(&self) -> impl Iterator<Item = (&str, &str)> {
        self.defaults
            .keys()
            .map(|key| ("DEFAULT", key.as_str()))
            .chain(self.sections.iter().flat_map(|(section, entries)| {
                entries
                    .keys()
                    .map(move |key| (section.as_str(), key.as_str()))
            }))
    }
}

/// Reads INI `text` (from `path`, for the errors) as Ansible's
/// `configparser.ConfigParser(inline_comment_prefixes=(';',))` does; every
/// problem is reported with its line.
pub fn parse_ini(path: &Path, text: &str) -> Result<Ini, Vec<Diagnostic>> {
    let mut ini = Ini::default();
    let mut problems = Vec::new();
    let error = |line: usize, message: String, hint: &str| {
        Diagnostic::error(
            Some(Origin::new(path, Location { line, column: 1 })),
            message,
        )
        .with_hint(hint.to_string())
    };
    // (section, key) of the value being continued; None in [DEFAULT].
    let mut section: Option<Option<String>> = None;
    let mut current_key: Option<String> = None;
    let mut indent_level = 0usize;
    let mut seen_sections: Vec<String> = Vec::new();
    let mut pending_blank_lines = 0usize;
    for (index, raw_line) in text.lines().enumerate() {
        let number = index + 1;
        let raw_line = raw_line
            .strip_prefix('\u{feff}')
            .filter(|_| index == 0)
            .unwrap_or(raw_line);
        let comment_start = inline_comment_start(raw_line);
        let trimmed = raw_line.trim();
        let whole_line_comment = trimmed.starts_with('#') || trimmed.starts_with(';');
        let value = if whole_line_comment {
            ""
        } else {
            raw_line[..comment_start.unwrap_or(raw_line.len())].trim()
        };
        if value.is_empty() {
            // configparser keeps blank lines inside a value being
            // continued (not comment lines), trimmed at the end.
            if comment_start.is_none() && !whole_line_comment && current_key.is_some() {
                pending_blank_lines += 1;
            }
            continue;
        }
        let indent = raw_line.len() - raw_line.trim_start().len();
        if let (Some(current_section), Some(key)) = (&section, &current_key) {
            if indent > indent_level {
                let entries = match current_section {
                    None => &mut ini.defaults,
                    Some(name) => ini.sections.entry(name.clone()).or_default(),
                };
                if let Some(entry) = entries.get_mut(key) {
                    for _ in 0..pending_blank_lines {
                        entry.value.push('\n');
                    }
                    entry.value.push('\n');
                    entry.value.push_str(value);
                }
                pending_blank_lines = 0;
                continue;
            }
        }
        pending_blank_lines = 0;
        indent_level = indent;
        if let Some(header) = section_header(value) {
            current_key = None;
            if header == "DEFAULT" {
                section = Some(None);
                continue;
            }
            if seen_sections.iter().any(|seen| seen == header) {
                problems.push(error(
                    number,
                    format!("section [{header}] appears twice"),
                    "merge the two sections into one (Ansible refuses this file too)",
                ));
            } else {
                seen_sections.push(header.to_string());
                ini.sections.entry(header.to_string()).or_default();
            }
            section = Some(Some(header.to_string()));
            continue;
        }
        let Some(current_section) = &section else {
            problems.push(error(
                number,
                "a setting before any [section] header".to_string(),
                "put settings under a section such as [defaults]",
            ));
            // configparser stops at this error.
            return Err(problems);
        };
        let Some(delimiter) = value.find(['=', ':']) else {
            problems.push(error(
                number,
                "not a `key = value` line".to_string(),
                "write settings as `key = value`; start comments with # or ;",
            ));
            current_key = None;
            continue;
        };
        let key = value[..delimiter].trim_end().to_lowercase();
        if key.is_empty() {
            problems.push(error(
                number,
                "a setting with no name before its `=`".to_string(),
                "write settings as `key = value`",
            ));
            current_key = None;
            continue;
        }
        let entries = match current_section {
            None => &mut ini.defaults,
            Some(name) => ini.sections.entry(name.clone()).or_default(),
        };
        if entries.contains_key(&key) {
            let where_ = current_section.as_deref().unwrap_or("DEFAULT");
            problems.push(error(
                number,
                format!("`{key}` is set twice in [{where_}]"),
                "keep one of the two lines (Ansible refuses this file too)",
            ));
            current_key = None;
            continue;
        }
        entries.insert(
            key.clone(),
            Entry {
                value: value[delimiter + 1..].trim().to_string(),
                line: number,
            },
        );
        current_key = Some(key);
    }
    if problems.is_empty() {
        Ok(ini)
    } else {
        Err(problems)
    }
}

/// Where an inline `;` comment starts: at the start of the line or after
/// whitespace.
fn inline_comment_start(line: &str) -> Option<usize> {
    line.char_indices()
        .find(|&(index, character)| {
            character == ';'
                && (index == 0
                    || line[..index]
                        .chars()
                        .next_back()
                        .is_some_and(char::is_whitespace))
        })
        .map(|(index, _)| index)
}

/// `[name]`: everything between the first `[` and the last `]`
/// (configparser's permissive header).
fn section_header(value: &str) -> Option<&str> {
    let inner = value.strip_prefix('[')?;
    let end = inner.rfind(']')?;
    let name = &inner[..end];
    (!name.is_empty()).then_some(name)
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An environment variable.
    Environment(&'static str),
    /// A line of the configuration file.
    File { path: PathBuf, line: usize },
}

impl fmt::Display for Source {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Environment(name) => write!(formatter, "{name}"),
            Source::File { path, line } => write!(formatter, "{}:{line}", path.display()),
        }
    }
}

impl Source {
    fn origin(&self) -> Option<Origin> {
        match self {
            Source::Environment(_) => None,
            Source::File { path, line } => Some(Origin::new(
                path,
                Location {
                    line: *line,
                    column: 1,
                },
            )),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub source: Source,
}

/// The settings of ansible.cfg and `ANSIBLE_*` that midfleet uses, each
/// from the environment when set there, else from the file. The command
/// line beats both (the cli layer's business).
#[derive(Debug, Clone, Default)]
pub struct AnsibleCfg {
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// Every place looked at for it.
    pub searched: Vec<PathBuf>,
    /// `inventory` / `ANSIBLE_INVENTORY`: the default of `-i`.
    pub inventory: Option<Setting<Vec<PathBuf>>>,
    /// `forks` / `ANSIBLE_FORKS`: the default of `--forks`.
    pub forks: Option<Setting<u16>>,
    /// `remote_user` / `ANSIBLE_REMOTE_USER`: below inventory variables.
    pub remote_user: Option<Setting<String>>,
    /// `private_key_file` / `ANSIBLE_PRIVATE_KEY_FILE`: below inventory
    /// variables.
    pub private_key_file: Option<Setting<PathBuf>>,
    /// `vault_password_file` / `ANSIBLE_VAULT_PASSWORD_FILE`: the default
    /// of `--vault-password-file` (read by the vault, not here).
    pub vault_password_file: Option<Setting<PathBuf>>,
    /// `timeout` / `ANSIBLE_TIMEOUT`: the connect timeout in seconds, below
    /// inventory variables.
    pub timeout: Option<Setting<u64>>,
    /// `remote_port` / `ANSIBLE_REMOTE_PORT`: the port below `ansible_port`.
    pub remote_port: Option<Setting<u16>>,
    /// `[section] key` of the file that midfleet does not use (for `-v`).
    pub unused: Vec<String>,
}

/// `[defaults]` keys this module reads, and the other keys it checks.
const USED: [&str; 7] = [
    "remote_port",
    "inventory",
    "forks",
    "remote_user",
    "private_key_file",
    "vault_password_file",
    "timeout",
];

impl AnsibleCfg {
    /// Finds and reads the configuration as Ansible would, with the
    /// environment over the file. Problems (a file that cannot be read or
    /// parsed, a bad value, a setting midfleet refuses) are errors; a
    /// setting that would weaken host key checking is a warning saying it
    /// is ignored.
    pub fn load(environment: &Environment) -> (AnsibleCfg, Diagnostics) {
        let mut diagnostics = Diagnostics::new();
        let discovery = find(environment);
        discovery
            .warnings
            .into_iter()
            .for_each(|warning| diagnostics.push(warning));
        let mut configuration = AnsibleCfg {
            file: discovery.file.clone(),
            searched: discovery.searched,
            ..AnsibleCfg::default()
        };
        let ini = match &discovery.file {
            None => Ini::default(),
            Some(path) => match read_file(path) {
                Ok(text) => match parse_ini(path, &text) {
                    Ok(ini) => ini,
                    Err(problems) => {
                        problems
                            .into_iter()
                            .for_each(|problem| diagnostics.push(problem));
                        return (configuration, diagnostics);
                    }
                },
                Err(problem) => {
                    diagnostics.push(problem);
                    return (configuration, diagnostics);
                }
            },
        };
        configuration.read(&ini, environment, &mut diagnostics);
        (configuration, diagnostics)
    }

    /// The settings of `ini` (read from `self.file`) and the environment.
    fn read(&mut self, ini: &Ini, environment: &Environment, diagnostics: &mut Diagnostics) {
        let lookup = Lookup {
            ini,
            file: self.file.as_deref(),
            environment,
        };
        let base = self.file.as_deref().and_then(Path::parent);
        self.inventory = lookup
            .raw("inventory", "ANSIBLE_INVENTORY")
            .map(|(text, source)| {
                let base = file_base(&source, base);
                Setting {
                    value: text
                        .split(',')
                        .map(str::trim)
                        .filter(|part| !part.is_empty())
                        .map(|part| environment.resolve_path(part, base))
                        .collect(),
                    source,
                }
            });
        self.forks = lookup
            .number("forks", "ANSIBLE_FORKS", 1, 1024, diagnostics)
            .map(|setting| Setting {
                value: u16::try_from(setting.value).unwrap_or(1024),
                source: setting.source,
            });
        self.timeout = lookup.number("timeout", "ANSIBLE_TIMEOUT", 1, 3600, diagnostics);
        self.remote_port = lookup
            .number("remote_port", "ANSIBLE_REMOTE_PORT", 1, 65_535, diagnostics)
            .map(|setting| Setting {
                value: u16::try_from(setting.value).unwrap_or(u16::MAX),
                source: setting.source,
            });
        self.remote_user = lookup
            .raw("remote_user", "ANSIBLE_REMOTE_USER")
            .map(|(text, source)| Setting {
                value: match source {
                    Source::File { .. } => unquote(&text).to_string(),
                    Source::Environment(_) => text,
                },
                source,
            })
            .filter(|setting| !setting.value.is_empty());
        self.private_key_file = lookup.path("private_key_file", "ANSIBLE_PRIVATE_KEY_FILE", base);
        self.vault_password_file =
            lookup.path("vault_password_file", "ANSIBLE_VAULT_PASSWORD_FILE", base);
        check_host_key_settings(&lookup, diagnostics);
        check_become_settings(&lookup, diagnostics);
        self.unused = ini
            .keys()
            .filter(|(section, key)| !is_checked(section, key))
            .map(|(section, key)| format!("[{section}] {key}"))
            .collect();
    }
}

/// Reads the configuration file as UTF-8 text.
fn read_file(path: &Path) -> Result<String, Diagnostic> {
    let bytes = std::fs::read(path).map_err(|error| {
        Diagnostic::error(
            Some(Origin::file(path)),
            format!("cannot read the Ansible configuration: {error}"),
        )
        .with_hint("fix its permissions, or point ANSIBLE_CONFIG at another file")
    })?;
    String::from_utf8(bytes).map_err(|error| {
        let at = Location::of_offset(error.as_bytes(), error.utf8_error().valid_up_to());
        Diagnostic::error(
            Some(Origin::new(path, at)),
            "the Ansible configuration is not UTF-8 text",
        )
        .with_hint("save it as UTF-8 (Ansible refuses it too)")
    })
}

fn file_base<'a>(source: &Source, base: Option<&'a Path>) -> Option<&'a Path> {
    match source {
        Source::File { .. } => base,
        Source::Environment(_) => None,
    }
}

/// Reads one setting: environment first, then `[defaults]`.
struct Lookup<'a> {
    ini: &'a Ini,
    file: Option<&'a Path>,
    environment: &'a Environment,
}

impl Lookup<'_> {
    /// The text of `[section] key` or the first set variable of
    /// `variables`, environment first.
    fn raw_in(
        &self,
        section: &str,
        key: &str,
        variables: &[&'static str],
    ) -> Option<(String, Source)> {
        for name in variables {
            if let Some(value) = self.environment.variable(name) {
                return Some((value.to_string(), Source::Environment(name)));
            }
        }
        let entry = self.ini.get(section, key)?;
        Some((
            entry.value.clone(),
            Source::File {
                path: self.file?.to_path_buf(),
                line: entry.line,
            },
        ))
    }

    fn raw(&self, key: &str, variable: &'static str) -> Option<(String, Source)> {
        self.raw_in("defaults", key, &[variable])
    }

    fn path(
        &self,
        key: &str,
        variable: &'static str,
        base: Option<&Path>,
    ) -> Option<Setting<PathBuf>> {
        let (text, source) = self.raw(key, variable)?;
        if text.is_empty() {
            return None;
        }
        Some(Setting {
            value: self
                .environment
                .resolve_path(&text, file_base(&source, base)),
            source,
        })
    }

    /// A whole number in `low..=high` (Ansible's `integer`: `10`, `10.0`).
    fn number(
        &self,
        key: &str,
        variable: &'static str,
        low: u64,
        high: u64,
        diagnostics: &mut Diagnostics,
    ) -> Option<Setting<u64>> {
        let (text, source) = self.raw(key, variable)?;
        if text.is_empty() && matches!(source, Source::Environment(_)) {
            return None; // Ansible: an empty variable means the default
        }
        let trimmed = text.trim();
        let value = trimmed.parse::<u64>().ok().or_else(|| {
            trimmed
                .strip_suffix(".0")
                .and_then(|whole| whole.parse().ok())
        });
        match value {
            Some(value) if (low..=high).contains(&value) => Some(Setting { value, source }),
            _ => {
                let message = match &source {
                    Source::Environment(name) => {
                        format!("{name} must be a whole number from {low} to {high}")
                    }
                    Source::File { .. } => {
                        format!("`{key}` must be a whole number from {low} to {high}")
                    }
                };
                diagnostics.push(
                    Diagnostic::error(source.origin(), message)
                        .with_hint(format!("write e.g. `{key} = {}`", low.max(10).min(high))),
                );
                None
            }
        }
    }
}

/// Ansible's non-strict boolean: `y`, `yes`, `on`, `1`, `true`, `t` (any
/// case) are true, anything else false.
fn ansible_boolean(text: &str) -> bool {
    matches!(
        unquote(text.trim()).to_ascii_lowercase().as_str(),
        "y" | "yes" | "on" | "1" | "true" | "t"
    )
}

/// `[section] key`s this module reads or checks: not "unused".
fn is_checked(section: &str, key: &str) -> bool {
    (section == "defaults" || section == "DEFAULT")
        && (USED.contains(&key) || key == "host_key_checking")
        || section == "ssh_connection"
            && matches!(
                key,
                "host_key_checking" | "ssh_args" | "ssh_common_args" | "ssh_extra_args"
            )
        || section == "paramiko_connection"
            && matches!(key, "host_key_checking" | "host_key_auto_add")
        || section == "privilege_escalation"
            && matches!(key, "become" | "become_user" | "become_method")
}

const STRICT_HINT: &str = "midfleet always checks host keys against known_hosts: record new hosts' keys with `midfleet facts --accept-new-host-keys` after checking their fingerprints";

/// Host key checking turned off, or ssh options that turn it off or change
/// where hosts are reached: the first are warned about and ignored
/// (midfleet stays strict), the second refused (they would reach hosts
/// some other way than Ansible does).
fn check_host_key_settings(lookup: &Lookup<'_>, diagnostics: &mut Diagnostics) {
    for (section, variables) in [
        ("defaults", &["ANSIBLE_HOST_KEY_CHECKING"][..]),
        ("ssh_connection", &["ANSIBLE_SSH_HOST_KEY_CHECKING"][..]),
        (
            "paramiko_connection",
            &["ANSIBLE_PARAMIKO_HOST_KEY_CHECKING"][..],
        ),
    ] {
        if let Some((text, source)) = lookup.raw_in(section, "host_key_checking", variables) {
            if !ansible_boolean(&text) {
                let what = match &source {
                    Source::Environment(name) => format!("{name}={text}"),
                    Source::File { .. } => format!("host_key_checking = {text} ([{section}])"),
                };
                diagnostics.push(
                    Diagnostic::warning(
                        source.origin(),
                        format!("{what} is ignored: midfleet never connects to a host whose key it cannot check"),
                    )
                    .with_hint(STRICT_HINT),
                );
            }
        }
    }
    if let Some((text, source)) = lookup.raw_in(
        "paramiko_connection",
        "host_key_auto_add",
        &["ANSIBLE_PARAMIKO_HOST_KEY_AUTO_ADD"],
    ) {
        if ansible_boolean(&text) {
            diagnostics.push(
                Diagnostic::warning(
                    source.origin(),
                    "host_key_auto_add is ignored: midfleet adds no key to known_hosts unless told on its command line",
                )
                .with_hint(STRICT_HINT),
            );
        }
    }
    for (key, variable) in [
        ("ssh_args", "ANSIBLE_SSH_ARGS"),
        ("ssh_common_args", "ANSIBLE_SSH_COMMON_ARGS"),
        ("ssh_extra_args", "ANSIBLE_SSH_EXTRA_ARGS"),
    ] {
        let Some((text, source)) = lookup.raw_in("ssh_connection", key, &[variable]) else {
            continue;
        };
        let name = match &source {
            Source::Environment(name) => (*name).to_string(),
            Source::File { .. } => format!("[ssh_connection] {key}"),
        };
        for option in ssh_options(&text) {
            match option {
                SshOption::WeakensHostKeys(option) => diagnostics.push(
                    Diagnostic::warning(
                        source.origin(),
                        format!("{name}: `{option}` is ignored: midfleet never connects to a host whose key it cannot check"),
                    )
                    .with_hint(STRICT_HINT),
                ),
                SshOption::Reroutes(option) => diagnostics.push(
                    Diagnostic::error(
                        source.origin(),
                        format!("{name}: `{option}` changes where or as whom hosts are reached, and midfleet does not take ssh options from ansible.cfg"),
                    )
                    .with_hint("give jump hosts in the inventory (`ansible_ssh_common_args` or `jump` in group_vars/all), users and ports as `ansible_user`/`ansible_port`; then remove the option here or point ANSIBLE_CONFIG elsewhere"),
                ),
            }
        }
    }
}

/// `[privilege_escalation]` settings: how Ansible becomes another user on
/// every host. midfleet takes become from the inventory only; a warning
/// says so rather than leaving a run that sudoes nowhere unexplained.
fn check_become_settings(lookup: &Lookup<'_>, diagnostics: &mut Diagnostics) {
    for (key, variable, inventory) in [
        ("become", "ANSIBLE_BECOME", "ansible_become: true"),
        ("become_user", "ANSIBLE_BECOME_USER", "ansible_become_user"),
        (
            "become_method",
            "ANSIBLE_BECOME_METHOD",
            "ansible_become_method",
        ),
    ] {
        let Some((text, source)) = lookup.raw_in("privilege_escalation", key, &[variable]) else {
            continue;
        };
        if key == "become" && !ansible_boolean(&text) {
            continue;
        }
        let name = match &source {
            Source::Environment(name) => (*name).to_string(),
            Source::File { .. } => format!("[privilege_escalation] {key}"),
        };
        diagnostics.push(
            Diagnostic::warning(
                source.origin(),
                format!("{name} is not used: midfleet takes become from the inventory only"),
            )
            .with_hint(format!(
                "set `{inventory}` for the hosts (group_vars/all for every host)"
            )),
        );
    }
}

/// An ssh option midfleet has something to say about.
#[derive(Debug, PartialEq, Eq)]
enum SshOption {
    /// `StrictHostKeyChecking=no`, `UserKnownHostsFile=/dev/null`, …
    WeakensHostKeys(String),
    /// `ProxyCommand`, `ProxyJump`, `-J`, `HostName`, `Port`, `User`, `-p`,
    /// `-l`, `-i`.
    Reroutes(String),
}

/// The options of an ssh argument string that weaken host key checking or
/// reroute the connection (other options — ControlMaster,
/// ServerAliveInterval… — do not concern midfleet's own SSH client).
fn ssh_options(text: &str) -> Vec<SshOption> {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|word| word.trim_matches(['"', '\'']).to_string())
        .collect();
    let mut found = Vec::new();
    let mut index = 0;
    while index < words.len() {
        let word = &words[index];
        let option = if word == "-o" {
            index += 1;
            words.get(index).cloned()
        } else {
            word.strip_prefix("-o")
                .filter(|rest| !rest.is_empty())
                .map(str::to_string)
        };
        if let Some(option) = option {
            let (key, value) = match option.split_once('=') {
                Some((key, value)) => (key.trim().to_ascii_lowercase(), value.trim().to_string()),
                None => {
                    index += 1;
                    (
                        option.to_ascii_lowercase(),
                        words.get(index).cloned().unwrap_or_default(),
                    )
                }
            };
            let shown = format!("-o {option}");
            match key.as_str() {
                "stricthostkeychecking"
                    if matches!(
                        value.to_ascii_lowercase().as_str(),
                        "no" | "off" | "accept-new"
                    ) =>
                {
                    found.push(SshOption::WeakensHostKeys(shown));
                }
                "userknownhostsfile" | "globalknownhostsfile" if value == "/dev/null" => {
                    found.push(SshOption::WeakensHostKeys(shown));
                }
                "proxycommand" | "proxyjump" | "hostname" | "port" | "user" | "identityfile" => {
                    found.push(SshOption::Reroutes(format!("-o {}", key_only(&option))));
                }
                _ => {}
            }
        } else if ["-J", "-p", "-l", "-i"].contains(&word.as_str()) {
            found.push(SshOption::Reroutes(word.clone()));
            index += 1;
        } else if ["-J", "-p", "-l", "-i"]
            .iter()
            .any(|flag| word.starts_with(flag) && word.len() > 2)
        {
            found.push(SshOption::Reroutes(word[..2].to_string()));
        }
        index += 1;
    }
    found
}

/// `ProxyCommand` of `ProxyCommand=ssh -W …`: the value may hold a host
/// name or a user, not shown.
fn key_only(option: &str) -> &str {
    option.split(['=', ' ']).next().unwrap_or(option)
}

#[cfg(test)]
mod tests;
