//! Dynamic inventory, as Ansible's `script` inventory plugin reads it
//! (ansible-core 2.19, `lib/ansible/plugins/inventory/script.py`): an
//! executable inventory source is run with `--list`, and with `--host NAME`
//! for each host when its output has no `_meta`; what it prints is one JSON
//! object of groups:
//!
//! ```json
//! { "emea": { "hosts": ["mid-emea-01"], "vars": {…}, "children": ["lab"] },
//!   "lab": ["mid-lab-01"],
//!   "_meta": { "hostvars": { "mid-emea-01": { "ansible_host": "10.0.0.1" } } } }
//! ```
//!
//! The same shape is read from a static `.json` or `.yml` file (which
//! Ansible's own `yaml` plugin refuses: see docs/inventory.md).
//!
//! Owns: running the program (no shell, its own process group, a timeout,
//! capped output) and reading the script shape into the inventory. Must
//! not: contact a host, or print (stderr comes back as a diagnostic).

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::diagnostic::{Diagnostic, Diagnostics, Location, Origin};
use crate::yaml::{self, Kind, Node, Scalar};

use super::vars::read_vars;
use super::{check_name, Inventory};

/// How long one run of an inventory script may take.
pub const TIMEOUT: Duration = Duration::from_secs(60);
/// The most an inventory script may print on stdout (a 10,000-host
/// inventory with its variables is a few MB).
const MAX_STDOUT: usize = 64 * 1024 * 1024;
/// How much of its stderr is kept (the start), to show.
const MAX_STDERR: usize = 64 * 1024;
/// How much of its stderr a message shows (the end of what was kept).
const SHOWN_STDERR: usize = 2000;

/// Whether `path` is a file someone may execute (Ansible's `os.access(X_OK)`
/// for the owner, group or others).
pub(super) fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Whether a file that is not executable looks like a script anyway (a
/// `#!` line): Ansible would then try it as INI, fail and skip it.
pub(super) fn looks_like_script(path: &Path) -> bool {
    let mut start = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut start))
        .is_ok()
        && &start == b"#!"
}

/// What running an executable inventory source came to.
pub(super) enum Outcome {
    /// Read (or failed with diagnostics): the source is a script.
    Ran,
    /// The kernel would not execute it (no `#!`, not a binary): Ansible
    /// then reads it as a static file, and so does midfleet.
    NotAProgram,
}

/// Runs the inventory script `path` and adds what it prints.
pub(super) fn load(
    inventory: &mut Inventory,
    path: &Path,
    diagnostics: &mut Diagnostics,
) -> Outcome {
    let program = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let listing = run_json(&program, path, &["--list"], diagnostics);
    let root = match listing {
        Ok(Some(root)) => root,
        Ok(None) => return Outcome::Ran,
        Err(NotAProgram) => return Outcome::NotAProgram,
    };
    let output = output_name(path, &["--list"]);
    let Some(shape) = load_shape(inventory, &output, &root, diagnostics) else {
        return Outcome::Ran;
    };
    if !shape.has_meta {
        // Ansible asks for each host's variables when `_meta` is absent.
        for host in shape.hosts {
            let arguments = ["--host", host.as_str()];
            let Ok(Some(vars)) = run_json(&program, path, &arguments, diagnostics) else {
                continue;
            };
            let output = output_name(path, &arguments);
            let vars = read_vars(
                &vars,
                &output,
                &format!("the variables of host `{host}`"),
                diagnostics,
            );
            if let Some(entry) = inventory.host_entry_mut(&host) {
                entry.vars.merge(&vars);
            }
        }
    }
    Outcome::Ran
}

/// The kernel refused to execute the file (ENOEXEC).
struct NotAProgram;

/// How one run's output is named in messages: `inv.py --list`.
fn output_name(path: &Path, arguments: &[&str]) -> PathBuf {
    PathBuf::from(format!("{} {}", path.display(), arguments.join(" ")))
}

/// Runs `program arguments` and parses its stdout as JSON; `Ok(None)` when
/// it failed (diagnosed), or printed nothing for `--host`.
fn run_json(
    program: &Path,
    path: &Path,
    arguments: &[&str],
    diagnostics: &mut Diagnostics,
) -> Result<Option<Node>, NotAProgram> {
    let command = output_name(path, arguments);
    let shown = command.display().to_string();
    let output = match run(program, arguments, TIMEOUT) {
        Ok(output) => output,
        Err(RunError::NotAProgram) => return Err(NotAProgram),
        Err(error) => {
            diagnostics.push(error.diagnostic(path, &shown));
            return Ok(None);
        }
    };
    if !output.stderr.trim().is_empty() {
        // Ansible shows a script's stderr even when it succeeds.
        diagnostics.push(Diagnostic::warning(
            Some(Origin::file(path)),
            format!(
                "inventory script `{shown}` wrote to stderr: {}",
                tail(&output.stderr)
            ),
        ));
    }
    if arguments[0] == "--host" && output.stdout.trim().is_empty() {
        return Ok(None);
    }
    match parse_json(&command, &output.stdout) {
        Ok(root) => Ok(Some(root)),
        Err(diagnostic) => {
            diagnostics.push(diagnostic);
            Ok(None)
        }
    }
}

/// A script's stdout as a node tree: positions from the YAML reader (JSON
/// is YAML) where it takes the text; JSON errors with serde_json's line
/// and column.
pub(super) fn parse_json(output: &Path, text: &str) -> Result<Node, Diagnostic> {
    let hint = format!(
        "run `{}` by hand to see it: an inventory script prints one JSON object (groups, and \
         `_meta.hostvars`) on stdout and anything else on stderr",
        output.display()
    );
    if let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        let at = Location {
            line: error.line().max(1),
            column: error.column().max(1),
        };
        let message = error.to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(start, _)| start);
        return Err(Diagnostic::error(
            Some(Origin::new(output, at)),
            format!("the inventory script's output is not JSON: {message}"),
        )
        .with_hint(hint));
    }
    match yaml::parse(text) {
        Ok(Some(root)) => Ok(root),
        Ok(None) => Err(Diagnostic::error(
            Some(Origin::file(output)),
            "the inventory script printed no JSON",
        )
        .with_hint(hint)),
        // Valid JSON the YAML reader refuses (a duplicate key…).
        Err(error) => Err(error.diagnostic(output)),
    }
}

/// What a script-shaped inventory held.
pub(super) struct Shape {
    /// Every host named in a group, in order.
    pub hosts: Vec<String>,
    /// Whether `_meta.hostvars` gave the hosts' variables.
    pub has_meta: bool,
}

/// Whether a parsed JSON/YAML file is in the script's shape rather than
/// Ansible's YAML shape: a top-level `_meta`, or a group given as a list,
/// or `hosts`/`children` given as lists.
pub(super) fn is_script_shape(root: &Node) -> bool {
    let Some(groups) = root.as_mapping() else {
        return false;
    };
    groups.iter().any(|(key, value)| {
        key.text() == Some("_meta")
            || value.as_sequence().is_some()
            || ["hosts", "children"].iter().any(|section| {
                value
                    .get(section)
                    .is_some_and(|node| node.as_sequence().is_some())
            })
    })
}

/// Reads the script shape (`file` names it in messages) as Ansible's
/// script plugin does: each key a group (a list of hosts; or `hosts`,
/// `vars`, `children`; or, deprecated in Ansible, a mapping of variables
/// making the group its own single host); `_meta.hostvars` the hosts'
/// variables. `None` when the whole document is refused.
pub(super) fn load_shape(
    inventory: &mut Inventory,
    file: &Path,
    root: &Node,
    diagnostics: &mut Diagnostics,
) -> Option<Shape> {
    let Some(groups) = root.as_mapping() else {
        diagnostics.push(
            Diagnostic::error(
                Some(Origin::new(file, root.at)),
                format!(
                    "an inventory script prints a JSON object of groups, not {}",
                    root.describe()
                ),
            )
            .with_hint(
                "print `{\"group\": {\"hosts\": [\"name\"]}, \"_meta\": {\"hostvars\": {}}}`",
            ),
        );
        return None;
    };
    let mut hosts: Vec<String> = Vec::new();
    let mut hostvars = None;
    for (key, value) in groups {
        let Some(name) = key.text() else {
            continue;
        };
        if name == "_meta" {
            match value.get("hostvars") {
                Some(found) if found.as_mapping().is_some() => hostvars = Some(found),
                other => diagnostics.push(
                    Diagnostic::error(
                        Some(Origin::new(file, other.map_or(value.at, |node| node.at))),
                        format!(
                            "`_meta.hostvars` must be a mapping of host names to variables, not {}",
                            other.map_or("absent", Node::describe)
                        ),
                    )
                    .with_hint("print `\"_meta\": {\"hostvars\": {}}` when no host has variables"),
                ),
            }
            continue;
        }
        load_group(inventory, file, name, key, value, &mut hosts, diagnostics);
    }
    let has_meta = hostvars.is_some();
    if let Some(hostvars) = hostvars.and_then(Node::as_mapping) {
        for (key, value) in hostvars {
            let Some(host) = key.text() else {
                continue;
            };
            // Ansible keeps `_meta.hostvars` only for hosts some group lists.
            if !hosts.iter().any(|known| known == host) {
                continue;
            }
            let vars = read_vars(
                value,
                file,
                &format!("`_meta.hostvars` of host `{host}`"),
                diagnostics,
            );
            if let Some(entry) = inventory.host_entry_mut(host) {
                entry.vars.merge(&vars);
            }
        }
    }
    Some(Shape { hosts, has_meta })
}

fn load_group(
    inventory: &mut Inventory,
    file: &Path,
    name: &str,
    key: &Node,
    body: &Node,
    hosts: &mut Vec<String>,
    diagnostics: &mut Diagnostics,
) {
    let origin = Origin::new(file, key.at);
    if let Err(error) = check_name("group", name) {
        diagnostics.push(Diagnostic::error(Some(origin), error.to_string()));
        return;
    }
    inventory.group_mut(name, Some(origin.clone()));
    let deprecated = |what: &str| {
        Diagnostic::warning(
            Some(origin.clone()),
            format!("group `{name}` {what}; Ansible reads it with a deprecation warning (removed in ansible-core 2.23)"),
        )
    };
    let (host_list, vars, children) = match &body.kind {
        Kind::Sequence(_) => {
            diagnostics.push(
                deprecated("is a list of hosts")
                    .with_hint(format!("write `\"{name}\": {{\"hosts\": [...]}}`")),
            );
            (Some(body), None, None)
        }
        Kind::Mapping(_)
            if ["hosts", "vars", "children"]
                .iter()
                .all(|section| body.get(section).is_none()) =>
        {
            diagnostics.push(
                deprecated(
                    "holds neither hosts, vars nor children, so it is read as its own single host",
                )
                .with_hint(format!(
                    "write `\"{name}\": {{\"hosts\": [\"{name}\"], \"vars\": {{...}}}}`"
                )),
            );
            add_host(inventory, file, name, name, key, hosts, diagnostics);
            (None, Some(body), None)
        }
        Kind::Mapping(_) => (body.get("hosts"), body.get("vars"), body.get("children")),
        Kind::Scalar { .. } => {
            diagnostics.push(Diagnostic::error(
                Some(Origin::new(file, body.at)),
                format!(
                    "group `{name}` must be a list of hosts or an object with hosts, vars and children, not {}",
                    body.describe()
                ),
            ));
            return;
        }
    };
    if let Some(host_list) = host_list {
        match host_list.as_sequence() {
            Some(items) => {
                for item in items {
                    match item.typed() {
                        Some(Scalar::String(host)) => {
                            add_host(inventory, file, name, host, item, hosts, diagnostics)
                        }
                        _ => diagnostics.push(Diagnostic::error(
                            Some(Origin::new(file, item.at)),
                            format!(
                                "a host of group `{name}` must be a name, not {}",
                                item.describe()
                            ),
                        )),
                    }
                }
            }
            None => diagnostics.push(Diagnostic::error(
                Some(Origin::new(file, host_list.at)),
                format!(
                    "`{name}.hosts` must be a list of host names, not {}",
                    host_list.describe()
                ),
            )),
        }
    }
    if let Some(vars) = vars {
        let vars = read_vars(
            vars,
            file,
            &format!("`vars` of group `{name}`"),
            diagnostics,
        );
        inventory.group_mut(name, None).vars.merge(&vars);
    }
    if let Some(children) = children {
        let names: Vec<&Node> = match &children.kind {
            Kind::Sequence(items) => items.iter().collect(),
            Kind::Mapping(entries) => entries.iter().map(|(key, _)| key).collect(),
            Kind::Scalar { .. } => {
                diagnostics.push(Diagnostic::error(
                    Some(Origin::new(file, children.at)),
                    format!(
                        "`{name}.children` must be a list of group names, not {}",
                        children.describe()
                    ),
                ));
                Vec::new()
            }
        };
        for child in names {
            let Some(child_name) = child.text() else {
                continue;
            };
            let child_origin = Origin::new(file, child.at);
            if let Err(error) = check_name("group", child_name) {
                diagnostics.push(Diagnostic::error(Some(child_origin), error.to_string()));
                continue;
            }
            if child_name == name {
                diagnostics.push(Diagnostic::error(
                    Some(child_origin),
                    format!("group `{name}` lists itself as a child"),
                ));
                continue;
            }
            inventory.group_mut(child_name, Some(child_origin));
            inventory
                .group_mut(name, None)
                .children
                .insert(child_name.to_string());
        }
    }
}

/// Adds `host` to `group` as written (no ranges, no `:port`: the script
/// plugin takes names as they are).
fn add_host(
    inventory: &mut Inventory,
    file: &Path,
    group: &str,
    host: &str,
    node: &Node,
    hosts: &mut Vec<String>,
    diagnostics: &mut Diagnostics,
) {
    let origin = Origin::new(file, node.at);
    if let Err(error) = check_name("host", host) {
        diagnostics.push(Diagnostic::error(Some(origin), error.to_string()));
        return;
    }
    inventory.add_host(group, host, Default::default(), origin);
    if !hosts.iter().any(|known| known == host) {
        hosts.push(host.to_string());
    }
}

/// What one run printed.
struct Output {
    stdout: String,
    stderr: String,
}

/// Why a run gave no usable output.
#[derive(Debug)]
enum RunError {
    NotAProgram,
    /// Someone other than root or this user could change it.
    Untrusted(String),
    Spawn(std::io::Error),
    TimedOut(Duration),
    Failed {
        status: ExitStatus,
        stderr: String,
    },
    TooLarge,
    NotUtf8 {
        stderr: String,
    },
}

impl RunError {
    fn diagnostic(&self, path: &Path, command: &str) -> Diagnostic {
        let origin = Some(Origin::file(path));
        let stderr_hint = |stderr: &str| {
            if stderr.trim().is_empty() {
                format!("it wrote nothing to stderr; run `{command}` by hand to see why")
            } else {
                format!("its stderr: {}", tail(stderr))
            }
        };
        match self {
            RunError::NotAProgram => Diagnostic::error(origin, "not a program the system can run"),
            RunError::Untrusted(reason) => Diagnostic::error(
                origin,
                format!("inventory script `{command}` is not run: {reason}"),
            )
            .with_hint(crate::secret::UNTRUSTED_PROGRAM_HINT),
            RunError::Spawn(error) => Diagnostic::error(
                origin,
                format!("cannot run inventory script `{command}`: {error}"),
            )
            .with_hint(if error.kind() == std::io::ErrorKind::NotFound {
                "the program its `#!` line names is not installed (or the script has CRLF line ends)"
            } else {
                "an executable inventory source is run as a script, as Ansible does: make it \
                 runnable, or remove its executable bit to read it as a static file"
            }),
            RunError::TimedOut(timeout) => Diagnostic::error(
                origin,
                format!(
                    "inventory script `{command}` did not finish within {} s; it was stopped",
                    timeout.as_secs()
                ),
            )
            .with_hint(
                "an inventory script must print its JSON and exit; check what it waits for (a \
                 network call, or input: it gets none on stdin)",
            ),
            RunError::Failed { status, stderr } => {
                let how = match (status.code(), status.signal()) {
                    (Some(code), _) => format!("exited with code {code}"),
                    (None, Some(signal)) => format!("was killed by signal {signal}"),
                    (None, None) => "failed".to_string(),
                };
                Diagnostic::error(origin, format!("inventory script `{command}` {how}"))
                    .with_hint(stderr_hint(stderr))
            }
            RunError::TooLarge => Diagnostic::error(
                origin,
                format!(
                    "inventory script `{command}` printed more than {} MiB",
                    MAX_STDOUT / (1024 * 1024)
                ),
            ),
            RunError::NotUtf8 { stderr } => Diagnostic::error(
                origin,
                format!("the output of inventory script `{command}` is not UTF-8"),
            )
            .with_hint(stderr_hint(stderr)),
        }
    }
}

/// The end of a script's stderr, for a message.
fn tail(stderr: &str) -> String {
    let trimmed = stderr.trim();
    let start = trimmed
        .char_indices()
        .rev()
        .nth(SHOWN_STDERR)
        .map_or(0, |(index, _)| index);
    let shown = &trimmed[start..];
    if start > 0 {
        format!("…{shown}")
    } else {
        shown.to_string()
    }
}

/// Runs `program arguments` directly (no shell), in its own process group
/// so that a timeout stops whatever it started, with stdin empty.
fn run(program: &Path, arguments: &[&str], timeout: Duration) -> Result<Output, RunError> {
    if let Some(reason) = crate::secret::untrusted_program(program) {
        return Err(RunError::Untrusted(reason));
    }
    let mut child = Command::new(program)
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|error| {
            if error.raw_os_error() == Some(libc::ENOEXEC) {
                RunError::NotAProgram
            } else {
                RunError::Spawn(error)
            }
        })?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    // Read on threads that report through channels: a program the script
    // left behind may hold the pipes open long after it exits, and the
    // deadline holds for them too.
    let reader = |pipe, cap| {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = sender.send(read_capped(pipe, cap));
        });
        receiver
    };
    let stdout = reader(
        stdout.map(|pipe| Box::new(pipe) as Box<dyn Read + Send>),
        MAX_STDOUT,
    );
    let stderr = reader(
        stderr.map(|pipe| Box::new(pipe) as Box<dyn Read + Send>),
        MAX_STDERR,
    );
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                kill_group(&mut child);
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(error) => {
                kill_group(&mut child);
                let _ = child.wait();
                return Err(RunError::Spawn(error));
            }
        }
    };
    let collect = |receiver: &std::sync::mpsc::Receiver<(Vec<u8>, bool)>| {
        let left = deadline.saturating_duration_since(Instant::now());
        receiver.recv_timeout(left.max(Duration::from_millis(100)))
    };
    let (stdout, stderr) = match (collect(&stdout), collect(&stderr)) {
        (Ok(stdout), Ok(stderr)) => (stdout, stderr),
        _ => {
            // What it left behind still holds its output open: stop what
            // is left of its group (the readers end with the pipes).
            kill_group(&mut child);
            return Err(RunError::TimedOut(timeout));
        }
    };
    let (stdout, stdout_overflow) = stdout;
    let stderr = String::from_utf8_lossy(&stderr.0).into_owned();
    if timed_out {
        return Err(RunError::TimedOut(timeout));
    }
    match status {
        Some(status) if status.success() => {}
        Some(status) => return Err(RunError::Failed { status, stderr }),
        None => return Err(RunError::TimedOut(timeout)),
    }
    if stdout_overflow {
        return Err(RunError::TooLarge);
    }
    let stdout = String::from_utf8(stdout).map_err(|_| RunError::NotUtf8 {
        stderr: stderr.clone(),
    })?;
    Ok(Output { stdout, stderr })
}

/// Stops the script and everything in its process group.
fn kill_group(child: &mut std::process::Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with the group of a child we started.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
}

/// Reads a pipe to its end, keeping at most `cap` bytes (and draining the
/// rest, so the script never blocks on a full pipe); whether it overflowed.
fn read_capped(pipe: Option<Box<dyn Read + Send>>, cap: usize) -> (Vec<u8>, bool) {
    let Some(mut pipe) = pipe else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let mut overflow = false;
    let mut buffer = [0u8; 64 * 1024];
    loop {
        match pipe.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => {
                let room = cap.saturating_sub(kept.len());
                if read > room {
                    overflow = true;
                }
                kept.extend_from_slice(&buffer[..read.min(room)]);
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    (kept, overflow)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use super::{is_script_shape, load_shape, parse_json, run, RunError};
    use crate::diagnostic::{Diagnostics, Severity};
    use crate::inventory::Inventory;
    use crate::yaml;

    /// Reads `json` as a script's `--list` output into a fresh inventory.
    fn read(json: &str) -> (Inventory, Diagnostics) {
        let mut inventory = Inventory::default();
        inventory.group_mut("all", None);
        let mut diagnostics = Diagnostics::new();
        let output = Path::new("inv.py --list");
        let root = parse_json(output, json).expect("JSON");
        load_shape(&mut inventory, output, &root, &mut diagnostics);
        inventory.finish(&mut diagnostics);
        (inventory, diagnostics)
    }

    fn var(inventory: &Inventory, host: &str, name: &str) -> Option<String> {
        inventory
            .host_entry(host)?
            .vars
            .get(name)
            .and_then(|var| var.node.text().map(str::to_string))
    }

    fn messages(diagnostics: &Diagnostics, severity: Severity) -> Vec<String> {
        diagnostics
            .iter()
            .filter(|diagnostic| diagnostic.severity == severity)
            .map(|diagnostic| diagnostic.message.clone())
            .collect()
    }

    /// The shapes Ansible's script plugin accepts (ansible-core 2.19,
    /// `_parse_group`), each checked with `ansible-inventory --list`.
    #[test]
    fn every_shape_the_script_plugin_accepts() {
        let (inventory, diagnostics) = read(
            r#"{
              "full": {"hosts": ["h1", "h2"], "vars": {"v": "full"}, "children": ["kid"]},
              "kid": {"hosts": ["h3"]},
              "listed": ["h4", "h1"],
              "solo": {"ansible_host": "10.0.0.5"},
              "empty": {},
              "all": {"vars": {"everyone": "yes"}},
              "_meta": {"hostvars": {"h1": {"ansible_port": 2201}, "nowhere": {"x": 1}}}
            }"#,
        );
        assert!(!diagnostics.has_errors(), "{diagnostics:#?}");
        let groups = |name: &str| {
            inventory
                .hosts_of_group(name)
                .into_iter()
                .collect::<Vec<_>>()
        };
        assert_eq!(groups("full"), ["h1", "h2", "h3"]);
        assert_eq!(groups("listed"), ["h4", "h1"]);
        // A mapping with none of hosts/vars/children: the group is its own
        // single host with those variables.
        assert_eq!(groups("solo"), ["solo"]);
        let solo = inventory.group("solo").expect("group solo");
        assert_eq!(
            solo.vars
                .get("ansible_host")
                .and_then(|var| var.node.text()),
            Some("10.0.0.5")
        );
        assert_eq!(
            var(&inventory, "h1", "ansible_port").as_deref(),
            Some("2201")
        );
        assert!(inventory.host_entry("nowhere").is_none());
        assert_eq!(groups("empty"), ["empty"]);
        // `ansible -i shapes.sh all --list-hosts` (ansible-core 2.19.14).
        assert_eq!(groups("all"), ["h1", "h2", "h4", "solo", "empty", "h3"]);
        let warnings = messages(&diagnostics, Severity::Warning);
        assert_eq!(warnings.len(), 3, "{warnings:#?}");
        assert!(warnings[0].starts_with("group `listed` is a list of hosts"));
        assert!(warnings[1].starts_with("group `solo` holds neither hosts, vars nor children"));
        assert!(warnings[2].starts_with("group `empty` holds neither"));
    }

    #[test]
    fn shapes_the_script_plugin_refuses_are_errors_with_their_place() {
        let cases = [
            (r#"["a"]"#, "an inventory script prints a JSON object of groups, not a list", (1, 1)),
            (
                r#"{"_meta": {"other": 1}}"#,
                "`_meta.hostvars` must be a mapping of host names to variables, not absent",
                (1, 11),
            ),
            (
                "{\"_meta\": {\"hostvars\": []}}",
                "`_meta.hostvars` must be a mapping of host names to variables, not a list",
                (1, 24),
            ),
            (
                "{\"g\": {\"hosts\": \"h1\"}}",
                "`g.hosts` must be a list of host names, not a string",
                (1, 17),
            ),
            (
                "{\"g\": {\"hosts\": [1]}}",
                "a host of group `g` must be a name, not an integer",
                (1, 18),
            ),
            (
                "{\"g\": {\"hosts\": [\"-h\"]}}",
                "host name `-h` starts with `-`",
                (1, 18),
            ),
            ("{\"g\": {\"vars\": [1]}}", "`vars` of group `g` must be a mapping of variables, not a list", (1, 16)),
            ("{\"g\": 3}", "group `g` must be a list of hosts or an object with hosts, vars and children, not an integer", (1, 7)),
            // Ansible: "Value contains 'g.hosts' which is 'NoneType'".
            ("{\"g\": null}", "group `g` must be a list of hosts or an object with hosts, vars and children, not empty", (1, 7)),
        ];
        for (json, message, (line, column)) in cases {
            let mut inventory = Inventory::default();
            let mut diagnostics = Diagnostics::new();
            let output = Path::new("inv.py --list");
            let root = parse_json(output, json).expect("JSON");
            load_shape(&mut inventory, output, &root, &mut diagnostics);
            let errors: Vec<_> = diagnostics
                .merged()
                .into_iter()
                .filter(|diagnostic| diagnostic.severity == Severity::Error)
                .collect();
            assert_eq!(errors.len(), 1, "{json}: {errors:#?}");
            assert_eq!(errors[0].message, message, "{json}");
            let at = errors[0]
                .origin
                .as_ref()
                .and_then(|origin| origin.at)
                .expect("a place");
            assert_eq!((at.line, at.column), (line, column), "{json}");
        }
    }

    #[test]
    fn bad_json_is_located_as_pythons_json_module_locates_it() {
        // (output, message, line, column as Python's json.loads says)
        let cases = [
            ("", "EOF while parsing a value", 1, 1),
            ("{\"a\": [1,]}", "expected value", 1, 10),
            ("{\n  \"a\": 1\n  \"b\": 2}", "expected `,` or `}`", 3, 3),
            ("{\"a\": 1} trailing", "trailing characters", 1, 10),
        ];
        for (json, message, line, column) in cases {
            let error = parse_json(Path::new("x --list"), json).expect_err(json);
            assert_eq!(
                error.message,
                format!("the inventory script's output is not JSON: {message}"),
                "{json:?}"
            );
            let at = error
                .origin
                .as_ref()
                .and_then(|origin| origin.at)
                .expect("a place");
            assert_eq!((at.line, at.column), (line, column), "{json:?}");
        }
    }

    #[test]
    fn script_shape_is_told_from_ansibles_yaml_shape() {
        let shape = |text: &str| is_script_shape(&yaml::parse(text).unwrap().unwrap());
        assert!(shape("{\"_meta\": {\"hostvars\": {}}}"));
        assert!(shape("web: [a, b]"));
        assert!(shape("web: {hosts: [a]}"));
        assert!(shape("all: {children: [web]}"));
        assert!(!shape("all: {children: {web: {hosts: {a: }}}}"));
        assert!(!shape("web: {hosts: {a: {ansible_port: 22}}}"));
    }

    fn script(directory: &Path, text: &str) -> PathBuf {
        let path = directory.join("script");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn a_script_that_hangs_is_stopped_with_what_it_started() {
        let directory = tempfile::tempdir().unwrap();
        let marker = directory.path().join("survived");
        // A child in the background that would write the marker later.
        let path = script(
            directory.path(),
            &format!(
                "#!/bin/sh\n(sleep 3; touch {}) &\nsleep 30\n",
                marker.display()
            ),
        );
        let started = Instant::now();
        let error = run(&path, &["--list"], Duration::from_millis(300)).err();
        assert!(matches!(error, Some(RunError::TimedOut(_))), "{error:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_secs(4));
        assert!(
            !marker.exists(),
            "the script's background child outlived the timeout"
        );
    }

    /// A script that exits but leaves a program holding its stdout (in its
    /// group, or in a session of its own) is still bound by the timeout.
    #[test]
    fn a_program_left_holding_the_output_does_not_outlast_the_timeout() {
        let directory = tempfile::tempdir().unwrap();
        for left in ["sleep 20 &", "setsid sleep 20 &"] {
            let path = script(
                directory.path(),
                &format!("#!/bin/sh\n{left}\necho '{{}}'\n"),
            );
            let started = Instant::now();
            let error = run(&path, &["--list"], Duration::from_millis(500)).err();
            assert!(
                matches!(error, Some(RunError::TimedOut(_))),
                "{left}: {error:?}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{left}: {:?}",
                started.elapsed()
            );
        }
    }

    /// A script anyone may change is not run (it would run as midfleet's
    /// user, often root); one that is only the owner's is.
    #[test]
    fn a_script_anyone_may_change_is_not_run() {
        let directory = tempfile::tempdir().unwrap();
        let marker = directory.path().join("ran");
        let path = script(
            directory.path(),
            &format!("#!/bin/sh\ntouch {}\necho '{{}}'\n", marker.display()),
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        match run(&path, &["--list"], Duration::from_secs(30)) {
            Err(RunError::Untrusted(reason)) => {
                assert!(
                    reason.contains("anyone may change it (mode 0777)"),
                    "{reason}"
                )
            }
            other => panic!("{:?}", other.err()),
        }
        assert!(!marker.exists(), "the script was run");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(run(&path, &["--list"], Duration::from_secs(30)).is_ok());
        assert!(marker.exists());
    }

    #[test]
    fn output_is_capped_and_failures_keep_stderr() {
        let directory = tempfile::tempdir().unwrap();
        let path = script(directory.path(), "#!/bin/sh\nhead -c 70000000 /dev/zero\n");
        let error = run(&path, &["--list"], Duration::from_secs(30)).err();
        assert!(matches!(error, Some(RunError::TooLarge)), "{error:?}");
        let path = script(directory.path(), "#!/bin/sh\necho oops >&2\nkill -9 $$\n");
        match run(&path, &["--list"], Duration::from_secs(30)) {
            Err(RunError::Failed { status, stderr }) => {
                use std::os::unix::process::ExitStatusExt;
                assert_eq!(status.signal(), Some(9));
                assert_eq!(stderr, "oops\n");
            }
            other => panic!("{:?}", other.err()),
        }
        // No `#!`: the kernel refuses it, and the caller reads it as a file.
        let path = script(directory.path(), "[web]\nw1\n");
        assert!(matches!(
            run(&path, &["--list"], Duration::from_secs(30)).err(),
            Some(RunError::NotAProgram)
        ));
    }
}
