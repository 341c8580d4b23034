//! The parity suite: midfleet against the real Ansible (ansible-core,
//! pinned in `tests/support/ansible.rs`) on the inventories under
//! `tests/integration/parity/`, one folder each with a `case.json`.
//!
//! For every case, Ansible's answers are measured, never written down:
//! - the hosts of each pattern, in order: `ansible -i INV PATTERN
//!   --list-hosts` (one run per pattern, as an operator types it);
//! - each host's groups: `ansible-inventory -i INV --list` (Ansible's
//!   `group_names`: every group the host is in through children, without
//!   `all`, with `ungrouped`);
//! - each host's address, port, user, jump hops, become and become user:
//!   the ssh command line Ansible runs for `ansible -i INV all -m raw -a
//!   true`, recorded by a fake ssh (one per host, through
//!   `ansible_ssh_executable`, so that each recording is known to be that
//!   host's; a recorder named `ssh` is also first in PATH so no real ssh is
//!   ever started). The argv is read with ssh's own rules (the first value
//!   of an option wins; `-J`, `ProxyJump` and `ProxyCommand "ssh -W %h:%p
//!   …"` are hops; sudo's `-u` in the remote command is the become user).
//!
//! midfleet's answers come from `midfleet hosts … --output json`, the keys
//! `name`, `address`, `port`, `user`, `jump`, `become`, `become_user` and
//! `groups`. Every difference is listed (case, pattern, host, field, both
//! values) and the test fails with all of them. No value is ever expected
//! from a list kept here: a case folder holds only the inventory and the
//! patterns to ask.
//!
//! case.json: `inventory` (the `-i` arguments, relative to the case folder;
//! empty: Ansible's ansible.cfg in that folder decides), `patterns`
//! (strings, or `{"pattern": P, "limit": L}` for `-l L`, with
//! `"midfleet_refuses": TEXT` where midfleet refuses what Ansible only
//! warns about), optional `vault`
//! (`{"password": …, "id": …, "script": true}`: the password given as a
//! file, as `--vault-id ID@FILE`, or as an executable script; with
//! `"give": false` the values are encrypted but no tool gets the password),
//! optional
//! `arguments` (more arguments given to both tools, e.g. `-e`).
//! Before a case runs, a copy of its folder is made; in the copy every
//! `NAME.vault-plain` file is encrypted by `ansible-vault` into `NAME`, and
//! every `!vault-encrypt TEXT` at the end of a line becomes the `!vault |`
//! block `ansible-vault encrypt_string` gives for TEXT.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;

use crate::ansible::{ansible_bin, ansible_command};
use crate::support::midfleet_command;

const CASES: &str = "tests/integration/parity";

/// One difference between midfleet and Ansible.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Mismatch {
    case: String,
    pattern: String,
    host: String,
    field: String,
    midfleet: String,
    ansible: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{} | pattern {} | host {} | {}: midfleet {} | ansible {}",
            self.case, self.pattern, self.host, self.field, self.midfleet, self.ansible
        )
    }
}

/// How a host is reached, as one tool sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reached {
    address: String,
    port: u16,
    user: String,
    /// Each hop as `user@address:port`, first hop first.
    jump: Vec<String>,
    become_root: bool,
    /// Only when becoming.
    become_user: Option<String>,
}

/// A pattern to ask, with an optional `-l`.
#[derive(Debug, Clone)]
struct Pattern {
    pattern: String,
    limit: Option<String>,
    /// Where midfleet is deliberately stricter than Ansible (a name no
    /// host or group has, a subscript past a group's end: Ansible warns
    /// and goes on with what is left, midfleet refuses): the text its
    /// error must hold, exit 3. Each such pattern is listed in
    /// docs/inventory.md.
    refused: Option<String>,
}

impl Pattern {
    fn label(&self) -> String {
        match &self.limit {
            Some(limit) => format!("{} -l {limit}", self.pattern),
            None => self.pattern.clone(),
        }
    }
}

/// One case, copied into a temporary directory and prepared.
struct Case {
    name: String,
    /// The prepared copy (the working directory of both tools).
    folder: PathBuf,
    /// `-i …`, vault and other arguments, the same for both tools.
    arguments: Vec<String>,
    /// No `-i`: ansible.cfg in the folder names the inventory.
    uses_ansible_cfg: bool,
    patterns: Vec<Pattern>,
    /// Scratch space: the fake ssh, its recordings, Ansible's home.
    scratch: PathBuf,
    _temporary: tempfile::TempDir,
}

#[test]
fn midfleet_reads_every_inventory_as_ansible_does() {
    ansible_bin();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(CASES);
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .unwrap_or_else(|error| panic!("{}: {error}", root.display()))
        .map(|entry| {
            entry
                .expect("case entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| root.join(name).join("case.json").is_file())
        .collect();
    names.sort();
    assert!(
        names.len() >= 25,
        "the parity suite needs at least 25 inventories, found {}",
        names.len()
    );
    let queue = Mutex::new(names.clone());
    let found: Mutex<Vec<Mismatch>> = Mutex::new(Vec::new());
    let patterns_asked = Mutex::new(0usize);
    let workers = std::thread::available_parallelism()
        .map_or(2, usize::from)
        .clamp(2, 4);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let Some(name) = queue.lock().unwrap().pop() else {
                    break;
                };
                let case = prepare(&root, &name);
                let (mismatches, asked) = compare(&case);
                *patterns_asked.lock().unwrap() += asked;
                found.lock().unwrap().extend(mismatches);
            });
        }
    });
    let mut found = found.into_inner().unwrap();
    found.sort();
    let asked = patterns_asked.into_inner().unwrap();
    assert!(
        asked >= 5 * names.len(),
        "at least 5 patterns per inventory are asked ({asked} for {} inventories)",
        names.len()
    );
    assert!(
        found.is_empty(),
        "midfleet differs from Ansible {} time{} ({} inventories, {asked} patterns):\n{}",
        found.len(),
        if found.len() == 1 { "" } else { "s" },
        names.len(),
        found
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// ---------------------------------------------------------------- cases --

fn prepare(root: &Path, name: &str) -> Case {
    let source = root.join(name);
    let description: Value =
        serde_json::from_slice(&std::fs::read(source.join("case.json")).expect("read case.json"))
            .unwrap_or_else(|error| panic!("{name}/case.json: {error}"));
    let temporary = tempfile::tempdir().expect("temporary directory");
    let scratch = temporary.path().to_path_buf();
    let folder = scratch.join("case");
    copy_tree(&source, &folder);
    std::fs::remove_file(folder.join("case.json")).expect("remove case.json from the copy");
    std::fs::create_dir_all(scratch.join("home/.ansible/tmp")).expect("ansible home");

    let mut arguments = Vec::new();
    let inventory: Vec<String> = description["inventory"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}/case.json: `inventory` is a list"))
        .iter()
        .map(|value| {
            value
                .as_str()
                .expect("inventory entries are strings")
                .to_string()
        })
        .collect();
    for source in &inventory {
        arguments.push("-i".to_string());
        arguments.push(source.clone());
    }
    if let Some(vault) = description.get("vault") {
        let password = vault["password"].as_str().expect("vault.password");
        let file = if vault["script"].as_bool() == Some(true) {
            let script = scratch.join("vault-password.sh");
            std::fs::write(&script, format!("#!/bin/sh\necho '{password}'\n"))
                .expect("vault script");
            make_executable(&script);
            script
        } else {
            let file = scratch.join("vault-password");
            std::fs::write(&file, format!("{password}\n")).expect("vault password file");
            file
        };
        let vault_argument = match vault["id"].as_str() {
            Some(id) => vec!["--vault-id".to_string(), format!("{id}@{}", file.display())],
            None => vec![
                "--vault-password-file".to_string(),
                file.display().to_string(),
            ],
        };
        encrypt_case(&folder, &scratch, &vault_argument, vault["id"].as_str());
        // `"give": false`: encrypted, but neither tool gets the password.
        if vault["give"].as_bool() != Some(false) {
            arguments.extend(vault_argument);
        }
    }
    if let Some(more) = description.get("arguments") {
        for value in more.as_array().expect("arguments is a list") {
            arguments.push(value.as_str().expect("arguments are strings").to_string());
        }
    }
    let patterns: Vec<Pattern> = description["patterns"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}/case.json: `patterns` is a list"))
        .iter()
        .map(|value| match value {
            Value::String(pattern) => Pattern {
                pattern: pattern.clone(),
                limit: None,
                refused: None,
            },
            other => Pattern {
                pattern: other["pattern"].as_str().expect("pattern").to_string(),
                limit: other["limit"].as_str().map(str::to_string),
                refused: other["midfleet_refuses"].as_str().map(str::to_string),
            },
        })
        .collect();
    assert!(
        patterns.len() >= 5,
        "{name}/case.json: at least 5 patterns per inventory ({} given)",
        patterns.len()
    );
    Case {
        name: name.to_string(),
        folder,
        arguments,
        uses_ansible_cfg: inventory.is_empty(),
        patterns,
        scratch,
        _temporary: temporary,
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy");
    for entry in std::fs::read_dir(from).expect("read case folder") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            // std::fs::copy keeps the mode: a script stays executable.
            std::fs::copy(entry.path(), &target).expect("copy case file");
        }
    }
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn files_under(folder: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).expect("read folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Encrypts the case's `*.vault-plain` files and `!vault-encrypt` strings
/// with the real `ansible-vault`.
fn encrypt_case(folder: &Path, scratch: &Path, vault_argument: &[String], id: Option<&str>) {
    let home = scratch.join("home");
    let mut encrypt_as = vault_argument.to_vec();
    if let Some(id) = id {
        encrypt_as.extend(["--encrypt-vault-id".to_string(), id.to_string()]);
    }
    for file in files_under(folder) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(plain_name) = name.strip_suffix(".vault-plain") {
            let target = file.with_file_name(plain_name);
            let output = ansible_command("ansible-vault", &home)
                .arg("encrypt")
                .args(&encrypt_as)
                .arg("--output")
                .arg(&target)
                .arg(&file)
                .output()
                .expect("run ansible-vault encrypt");
            assert!(
                output.status.success(),
                "ansible-vault encrypt {}: {}",
                file.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            std::fs::remove_file(&file).expect("remove the plain text");
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        if !text.contains("!vault-encrypt ") {
            continue;
        }
        let mut rewritten = String::new();
        for line in text.lines() {
            let Some((before, plain)) = line.split_once("!vault-encrypt ") else {
                rewritten.push_str(line);
                rewritten.push('\n');
                continue;
            };
            let output = ansible_command("ansible-vault", &home)
                .arg("encrypt_string")
                .args(&encrypt_as)
                .arg("--")
                .arg(plain)
                .output()
                .expect("run ansible-vault encrypt_string");
            assert!(
                output.status.success(),
                "ansible-vault encrypt_string: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let block = String::from_utf8(output.stdout).expect("UTF-8");
            let indent = " ".repeat(line.len() - line.trim_start().len() + 4);
            rewritten.push_str(before);
            rewritten.push_str("!vault |\n");
            for cipher_line in block.lines().skip(1) {
                rewritten.push_str(&indent);
                rewritten.push_str(cipher_line.trim());
                rewritten.push('\n');
            }
        }
        std::fs::write(&file, rewritten).expect("write encrypted strings");
    }
}

// -------------------------------------------------------------- Ansible --

fn ansible(case: &Case, program: &str) -> Command {
    let mut command = ansible_command(program, &case.scratch.join("home"));
    command.current_dir(&case.folder);
    command.env("PYTHONWARNINGS", "ignore");
    if case.uses_ansible_cfg {
        // Ansible finds ./ansible.cfg itself, as for an operator.
        command.env_remove("ANSIBLE_CONFIG");
    }
    command
}

fn run(mut command: Command, what: &str) -> Result<String, String> {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            output.status,
            first_lines(&String::from_utf8_lossy(&output.stderr), 4),
            first_lines(&stdout, 4)
        ))
    }
}

fn first_lines(text: &str, count: usize) -> String {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .take(count)
        .collect::<Vec<_>>()
        .join(" / ")
}

/// The argv of `ansible … PATTERN --list-hosts [-l LIMIT]`.
fn list_hosts_argv(case: &Case, pattern: &Pattern) -> Vec<String> {
    let mut argv = vec!["ansible".to_string()];
    argv.extend(case.arguments.iter().cloned());
    argv.extend([pattern.pattern.clone(), "--list-hosts".to_string()]);
    if let Some(limit) = &pattern.limit {
        argv.extend(["-l".to_string(), limit.clone()]);
    }
    argv
}

/// `  hosts (N):` then one host a line: the hosts, in Ansible's order.
fn read_list_hosts(stdout: &str) -> Result<Vec<String>, String> {
    let mut lines = stdout
        .lines()
        .skip_while(|line| !line.trim_start().starts_with("hosts ("));
    let header = lines
        .next()
        .ok_or_else(|| format!("no host list in {stdout:?}"))?;
    let hosts: Vec<String> = lines
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect();
    let count = header
        .trim()
        .trim_start_matches("hosts (")
        .trim_end_matches("):");
    if count != hosts.len().to_string() {
        return Err(format!(
            "{count} hosts announced, {} listed: {stdout:?}",
            hosts.len()
        ));
    }
    Ok(hosts)
}

/// The hosts of each pattern, as `ansible … PATTERN --list-hosts` lists
/// them: all asked of one Python process (tests/support/ansible_cli.py,
/// Ansible's own AdHocCLI), and one of them checked against a separate
/// `ansible` process, so that the shortcut can never hide a difference.
fn ansible_hosts(case: &Case, patterns: &[Pattern]) -> Vec<Result<Vec<String>, String>> {
    let argvs: Vec<Vec<String>> = patterns
        .iter()
        .map(|pattern| list_hosts_argv(case, pattern))
        .collect();
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/ansible_cli.py");
    let mut command = ansible(case, "python");
    command
        .arg(&driver)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("run tests/support/ansible_cli.py");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(serde_json::to_string(&argvs).unwrap().as_bytes())
            .expect("write the command lines");
    }
    let output = child.wait_with_output().expect("wait for ansible_cli.py");
    assert!(
        output.status.success(),
        "{}: ansible_cli.py failed: {}",
        case.name,
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "{}: ansible_cli.py printed no JSON list ({error}): {}",
            case.name,
            String::from_utf8_lossy(&output.stdout)
        )
    });
    assert_eq!(
        results.len(),
        argvs.len(),
        "{}: one answer per pattern",
        case.name
    );
    let answers: Vec<Result<Vec<String>, String>> = results
        .iter()
        .map(|result| {
            let stdout = result["stdout"].as_str().unwrap_or_default();
            if result["status"].as_i64() == Some(0) {
                read_list_hosts(stdout)
            } else {
                Err(format!(
                    "ansible failed ({}): {}",
                    result["status"],
                    first_lines(result["error"].as_str().unwrap_or_default(), 3)
                ))
            }
        })
        .collect();
    // The cross-check: the most intricate pattern (the last one asked)
    // through a real `ansible` process.
    if let Some(last) = argvs.last() {
        let mut command = ansible(case, "ansible");
        command.args(&last[1..]);
        let real = run(command, "ansible --list-hosts").and_then(|stdout| read_list_hosts(&stdout));
        assert_eq!(
            real.as_ref().ok(),
            answers.last().unwrap().as_ref().ok(),
            "{}: `{}` — ansible_cli.py and a separate `ansible` disagree: the oracle is broken",
            case.name,
            last.join(" ")
        );
    }
    answers
}

/// Each host's `group_names`, from `ansible-inventory --list`.
fn ansible_groups(case: &Case) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut command = ansible(case, "ansible-inventory");
    command.args(&case.arguments).arg("--list");
    let stdout = run(command, "ansible-inventory --list")?;
    let tree: Value = serde_json::from_str(&stdout).map_err(|error| error.to_string())?;
    let object = tree.as_object().ok_or("--list is not an object")?;
    // Each group's direct hosts and children; then membership through
    // children, walked upward from every group.
    let mut direct: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut parents: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (group, body) in object {
        if group == "_meta" {
            continue;
        }
        for host in body["hosts"].as_array().into_iter().flatten() {
            direct
                .entry(group.clone())
                .or_default()
                .push(host.as_str().unwrap_or_default().to_string());
        }
        for child in body["children"].as_array().into_iter().flatten() {
            parents
                .entry(child.as_str().unwrap_or_default().to_string())
                .or_default()
                .push(group.clone());
        }
    }
    let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (group, hosts) in &direct {
        let mut ancestry = BTreeSet::new();
        let mut pending = vec![group.clone()];
        while let Some(next) = pending.pop() {
            if ancestry.insert(next.clone()) {
                pending.extend(parents.get(&next).cloned().unwrap_or_default());
            }
        }
        ancestry.remove("all");
        for host in hosts {
            groups
                .entry(host.clone())
                .or_default()
                .extend(ancestry.iter().cloned());
        }
    }
    Ok(groups
        .into_iter()
        .map(|(host, set)| (host, set.into_iter().collect()))
        .collect())
}

/// Runs `raw` on every host with a fake ssh per host and reads each argv.
fn ansible_reached(case: &Case, hosts: &[String]) -> BTreeMap<String, Result<Reached, String>> {
    let recordings = case.scratch.join("ssh-argv");
    let links = case.scratch.join("ssh-per-host");
    let path_bin = case.scratch.join("ssh-in-path");
    for folder in [&recordings, &links, &path_bin] {
        std::fs::create_dir_all(folder).expect("fake ssh folders");
    }
    let recorder = case.scratch.join("record-ssh");
    std::fs::write(
        &recorder,
        format!(
            "#!/bin/bash\n# Records its argv (NUL-separated) under its own name and fails as ssh does.\nprintf '%s\\0' \"$@\" > '{}'/\"$(basename \"$0\")\"\nexit 255\n",
            recordings.display()
        ),
    )
    .expect("write the fake ssh");
    make_executable(&recorder);
    std::os::unix::fs::symlink(&recorder, path_bin.join("ssh")).expect("ssh in PATH");
    for host in hosts {
        std::os::unix::fs::symlink(&recorder, links.join(host)).expect("per-host ssh");
    }
    let mut command = ansible(case, "ansible");
    command
        .env(
            "PATH",
            format!(
                "{}:{}:/usr/bin:/bin",
                path_bin.display(),
                ansible_bin().display()
            ),
        )
        .args(&case.arguments)
        .args(["all", "-m", "raw", "-a", "true", "-T", "2", "--forks", "10"])
        .arg("-e")
        .arg(format!(
            "ansible_ssh_executable={}/{{{{ inventory_hostname }}}}",
            links.display()
        ));
    let output = command.output().expect("run ansible raw");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let local = local_user();
    hosts
        .iter()
        .map(|host| {
            let recorded = std::fs::read(recordings.join(host));
            let reached = match recorded {
                Ok(bytes) => {
                    let argv: Vec<String> = bytes
                        .split(|byte| *byte == 0)
                        .map(|part| String::from_utf8_lossy(part).into_owned())
                        .collect();
                    // printf leaves a last empty field after the final NUL.
                    let argv = &argv[..argv.len().saturating_sub(1)];
                    read_ssh_argv(argv, &local)
                }
                Err(_) => Err(format!(
                    "Ansible ran no ssh for it: {}",
                    ansible_message(&stdout, host)
                )),
            };
            (host.clone(), reached)
        })
        .collect()
}

/// What Ansible printed for `host` (`host | FAILED! => {… "msg": …}`).
fn ansible_message(stdout: &str, host: &str) -> String {
    let start = format!("{host} | ");
    let mut lines = stdout.lines().skip_while(|line| !line.starts_with(&start));
    let Some(first) = lines.next() else {
        return "no result for the host".to_string();
    };
    let message = lines
        .take_while(|line| *line != "}")
        .find(|line| line.trim_start().starts_with("\"msg\""))
        .unwrap_or("");
    format!("{} {}", first.trim(), message.trim())
}

fn local_user() -> String {
    // ssh's default login is the passwd entry of the uid, not $USER.
    // SAFETY: getpwuid returns a pointer into static storage or null; the
    // name is copied out at once.
    unsafe {
        let entry = libc::getpwuid(libc::getuid());
        assert!(!entry.is_null(), "no passwd entry for this uid");
        std::ffi::CStr::from_ptr((*entry).pw_name)
            .to_string_lossy()
            .into_owned()
    }
}

// -------------------------------------------------------- ssh's argv --

/// ssh options that take an argument (OpenSSH's getopt string).
const SSH_OPTIONS_WITH_ARGUMENT: &str = "bceilmopBDEFIJLOPQRSwW";

/// The parts of an ssh command line that say where and as whom.
#[derive(Debug, Default)]
struct SshLine {
    /// Lower-cased option name → the first value given (ssh's rule).
    options: BTreeMap<String, String>,
    destination: Option<String>,
    command: Vec<String>,
    jump_flag_seen: bool,
}

impl SshLine {
    fn set(&mut self, key: &str, value: &str) {
        self.options
            .entry(key.to_ascii_lowercase())
            .or_insert_with(|| unquote(value.trim()).to_string());
    }
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(value)
}

fn parse_ssh(argv: &[String]) -> Result<SshLine, String> {
    let mut line = SshLine::default();
    let mut index = 0;
    while index < argv.len() {
        let word = &argv[index];
        index += 1;
        if word == "--" {
            break;
        }
        if !word.starts_with('-') || word.len() < 2 {
            line.destination = Some(word.clone());
            line.command = argv[index..].to_vec();
            return Ok(line);
        }
        let flags: Vec<char> = word[1..].chars().collect();
        for (position, flag) in flags.iter().enumerate() {
            if !SSH_OPTIONS_WITH_ARGUMENT.contains(*flag) {
                continue;
            }
            let rest: String = flags[position + 1..].iter().collect();
            let value = if rest.is_empty() {
                let value = argv
                    .get(index)
                    .ok_or_else(|| format!("ssh -{flag} without its argument"))?
                    .clone();
                index += 1;
                value
            } else {
                rest
            };
            match flag {
                'o' => {
                    let (key, value) = value
                        .split_once(['=', ' ', '\t'])
                        .ok_or_else(|| format!("ssh -o {value}: no value"))?;
                    line.set(key, value);
                }
                'p' => line.set("port", &value),
                'l' => line.set("user", &value),
                'J' => {
                    // ssh itself stops here: "Only a single -J option
                    // permitted", "Cannot specify -J with ProxyCommand".
                    if line.jump_flag_seen || line.options.contains_key("proxycommand") {
                        return Err(format!(
                            "ssh refuses this command line: -J {value} after another -J or a ProxyCommand"
                        ));
                    }
                    line.jump_flag_seen = true;
                    line.set("proxyjump", &value);
                }
                _ => {}
            }
            break;
        }
    }
    if index <= argv.len() && line.destination.is_none() {
        if let Some(destination) = argv.get(index) {
            line.destination = Some(destination.clone());
            line.command = argv[index + 1..].to_vec();
        }
    }
    Ok(line)
}

/// `[user@]host`: the user part of a destination, and the host.
fn split_destination(destination: &str) -> (Option<&str>, &str) {
    match destination.rsplit_once('@') {
        Some((user, host)) => (Some(user), host),
        None => (None, destination),
    }
}

/// One `-J`/`ProxyJump` hop, `[user@]host[:port]` (IPv6 in brackets).
fn jump_hop(spec: &str, local: &str) -> Result<String, String> {
    let spec = spec.strip_prefix("ssh://").unwrap_or(spec);
    let (user, rest) = split_destination(spec);
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("jump hop {spec}: no closing ]"))?;
        (host, after.strip_prefix(':'))
    } else if rest.matches(':').count() == 1 {
        let (host, port) = rest.split_once(':').unwrap();
        (host, Some(port))
    } else {
        (rest, None)
    };
    let port: u16 = port
        .map(str::parse)
        .transpose()
        .map_err(|error| format!("jump hop {spec}: port: {error}"))?
        .unwrap_or(22);
    Ok(format!("{}@{host}:{port}", user.unwrap_or(local)))
}

/// The hops a ProxyJump or `ProxyCommand ssh -W %h:%p …` value gives.
fn hops(line: &SshLine, local: &str) -> Result<Vec<String>, String> {
    if let Some(jump) = line.options.get("proxyjump") {
        if jump.eq_ignore_ascii_case("none") {
            return Ok(Vec::new());
        }
        return jump.split(',').map(|hop| jump_hop(hop, local)).collect();
    }
    let Some(proxy) = line.options.get("proxycommand") else {
        return Ok(Vec::new());
    };
    if proxy.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let words = shell_words(proxy)?;
    let is_ssh = words
        .first()
        .is_some_and(|program| program.rsplit('/').next() == Some("ssh"));
    let forwards = words
        .windows(2)
        .any(|pair| pair[0] == "-W" && pair[1] == "%h:%p")
        || words.iter().any(|word| word == "-W%h:%p");
    if !is_ssh || !forwards {
        return Err(format!("ProxyCommand that is no `ssh -W %h:%p`: {proxy}"));
    }
    let inner = parse_ssh(&words[1..])?;
    let destination = inner
        .destination
        .clone()
        .ok_or_else(|| format!("ProxyCommand without a host: {proxy}"))?;
    let (user_at, host) = split_destination(&destination);
    let host = inner.options.get("hostname").map_or(host, String::as_str);
    let user = inner
        .options
        .get("user")
        .map(String::as_str)
        .or(user_at)
        .unwrap_or(local);
    let port = inner.options.get("port").map_or("22", String::as_str);
    let mut all = hops(&inner, local)?;
    all.push(format!("{user}@{host}:{port}"));
    Ok(all)
}

/// Splits a command as a POSIX shell would (quotes and backslashes).
fn shell_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut characters = text.chars();
    while let Some(character) = characters.next() {
        match character {
            '\'' => {
                in_word = true;
                loop {
                    match characters.next() {
                        Some('\'') => break,
                        Some(inner) => word.push(inner),
                        None => return Err(format!("unclosed ' in {text}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match characters.next() {
                        Some('"') => break,
                        Some('\\') => match characters.next() {
                            Some(escaped) => word.push(escaped),
                            None => return Err(format!("trailing \\ in {text}")),
                        },
                        Some(inner) => word.push(inner),
                        None => return Err(format!("unclosed \" in {text}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(escaped) = characters.next() {
                    word.push(escaped);
                }
            }
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Where and as whom the ssh command line Ansible ran connects, and what
/// the remote command becomes.
fn read_ssh_argv(argv: &[String], local: &str) -> Result<Reached, String> {
    let line = parse_ssh(argv)?;
    let destination = line
        .destination
        .clone()
        .ok_or_else(|| format!("no destination in ssh {argv:?}"))?;
    let (user_at, host) = split_destination(&destination);
    let address = line
        .options
        .get("hostname")
        .cloned()
        .unwrap_or_else(|| host.to_string());
    let user = line
        .options
        .get("user")
        .cloned()
        .or(user_at.map(str::to_string))
        .unwrap_or_else(|| local.to_string());
    let port = match line.options.get("port") {
        Some(port) => port
            .parse()
            .map_err(|error| format!("ssh Port={port}: {error}"))?,
        None => 22,
    };
    let jump = hops(&line, local)?;
    let remote = line.command.join(" ");
    let words = shell_words(&remote)?;
    let (become_root, become_user) = if words.first().map(String::as_str) == Some("sudo") {
        let user = words
            .windows(2)
            .find(|pair| pair[0] == "-u")
            .map_or_else(|| "root".to_string(), |pair| pair[1].clone());
        (true, Some(user))
    } else {
        (false, None)
    };
    Ok(Reached {
        address,
        port,
        user,
        jump,
        become_root,
        become_user,
    })
}

// ------------------------------------------------------------- midfleet --

/// `midfleet hosts … PATTERN --output json`: the rows, or why not.
fn midfleet_hosts(case: &Case, pattern: &Pattern) -> Result<Vec<Value>, String> {
    let mut arguments = vec!["hosts".to_string()];
    arguments.extend(case.arguments.iter().cloned());
    if let Some(limit) = &pattern.limit {
        arguments.extend(["-l".to_string(), limit.clone()]);
    }
    arguments.extend([
        pattern.pattern.clone(),
        "--output".to_string(),
        "json".to_string(),
    ]);
    let local = local_user();
    let mut command = midfleet_command(&arguments, &[("USER", local.as_str())]);
    command.current_dir(&case.folder);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ANSIBLE_") {
            command.env_remove(name);
        }
    }
    let output = command.output().expect("run midfleet");
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "error (exit {}): {}",
            output.status.code().unwrap_or(-1),
            first_lines(&String::from_utf8_lossy(&output.stderr), 3)
        ));
    }
    serde_json::from_str::<Vec<Value>>(&stdout)
        .map_err(|error| format!("hosts --output json is not a list: {error}: {stdout}"))
}

fn midfleet_reached(row: &Value, local: &str) -> Result<Reached, String> {
    let text = |key: &str| row[key].as_str().map(str::to_string);
    let become_root = row["become"]
        .as_bool()
        .ok_or("no boolean `become` in hosts JSON")?;
    let become_user = if become_root {
        Some(text("become_user").unwrap_or_else(|| "<no `become_user` in hosts JSON>".to_string()))
    } else {
        None
    };
    Ok(Reached {
        address: text("address").ok_or("no `address` in hosts JSON")?,
        port: row["port"]
            .as_u64()
            .and_then(|port| u16::try_from(port).ok())
            .ok_or("no `port` in hosts JSON")?,
        // null: decided at connection time, i.e. ssh's default.
        user: text("user").unwrap_or_else(|| local.to_string()),
        jump: row["jump"]
            .as_array()
            .ok_or("no `jump` list in hosts JSON")?
            .iter()
            .map(|hop| hop.as_str().unwrap_or_default().to_string())
            .collect(),
        become_root,
        become_user,
    })
}

// ----------------------------------------------------------- comparing --

fn names(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|row| row["name"].as_str().unwrap_or("<no name>").to_string())
        .collect()
}

fn show_list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

/// Compares one case; returns the mismatches and how many patterns were
/// asked.
fn compare(case: &Case) -> (Vec<Mismatch>, usize) {
    let mut found = Vec::new();
    let mut mismatch =
        |pattern: &str, host: &str, field: &str, midfleet: String, ansible: String| {
            found.push(Mismatch {
                case: case.name.clone(),
                pattern: pattern.to_string(),
                host: host.to_string(),
                field: field.to_string(),
                midfleet,
                ansible,
            });
        };

    let all = Pattern {
        pattern: "all".to_string(),
        limit: None,
        refused: None,
    };
    let mut asked_patterns = vec![all.clone()];
    asked_patterns.extend(case.patterns.iter().cloned());
    let mut ansible_answers = ansible_hosts(case, &asked_patterns).into_iter();
    let ansible_all = ansible_answers.next().expect("the answer for all");
    let midfleet_all = midfleet_hosts(case, &all);
    if let (Err(error), Ok(hosts)) = (&midfleet_all, &ansible_all) {
        // The whole inventory is refused: one line says it.
        mismatch(
            "all",
            "*",
            "inventory",
            error.clone(),
            format!("{} hosts: {}", hosts.len(), show_list(hosts)),
        );
        if std::env::var_os("PARITY_SHOW_ANSIBLE").is_some() {
            show_ansible(
                case,
                hosts,
                &ansible_groups(case),
                &ansible_reached(case, hosts),
            );
        }
        return (found, case.patterns.len());
    }
    let mut asked = 0;
    for (pattern, ansible) in case.patterns.iter().zip(ansible_answers) {
        asked += 1;
        let midfleet = midfleet_hosts(case, pattern).map(|rows| names(&rows));
        if let Some(expected) = &pattern.refused {
            match &midfleet {
                Err(error) if error.contains("exit 3") && error.contains(expected.as_str()) => {}
                other => mismatch(
                    &pattern.label(),
                    "-",
                    "refusal",
                    other
                        .as_ref()
                        .map_or_else(Clone::clone, |hosts| show_list(hosts)),
                    format!("midfleet refuses with `{expected}` (Ansible: {ansible:?})"),
                ),
            }
            continue;
        }
        match (&midfleet, &ansible) {
            (Ok(midfleet), Ok(ansible)) if midfleet == ansible => {}
            (Ok(midfleet), Ok(ansible)) => {
                let field = if BTreeSet::from_iter(midfleet) == BTreeSet::from_iter(ansible) {
                    "host order"
                } else {
                    "hosts"
                };
                mismatch(
                    &pattern.label(),
                    "-",
                    field,
                    show_list(midfleet),
                    show_list(ansible),
                );
            }
            (midfleet, ansible) => mismatch(
                &pattern.label(),
                "-",
                "hosts",
                midfleet
                    .as_ref()
                    .map_or_else(Clone::clone, |hosts| show_list(hosts)),
                ansible
                    .as_ref()
                    .map_or_else(Clone::clone, |hosts| show_list(hosts)),
            ),
        }
    }

    let ansible_all = match ansible_all {
        Ok(hosts) => hosts,
        Err(error) => {
            mismatch("all", "-", "inventory", "-".into(), error);
            return (found, asked);
        }
    };
    let rows = match midfleet_all {
        Ok(rows) => rows,
        Err(error) => {
            mismatch(
                "all",
                "*",
                "inventory",
                error,
                format!("{} hosts", ansible_all.len()),
            );
            return (found, asked);
        }
    };
    let by_name: BTreeMap<String, &Value> = rows
        .iter()
        .map(|row| (row["name"].as_str().unwrap_or_default().to_string(), row))
        .collect();
    let groups = ansible_groups(case);
    let reached = ansible_reached(case, &ansible_all);
    if std::env::var_os("PARITY_SHOW_ANSIBLE").is_some() {
        show_ansible(case, &ansible_all, &groups, &reached);
    }
    let local = local_user();
    for host in &ansible_all {
        let Some(row) = by_name.get(host) else {
            // Already in the `all` host list difference.
            continue;
        };
        match &groups {
            Ok(groups) => {
                let ansible: Vec<String> = groups.get(host).cloned().unwrap_or_default();
                let midfleet: Vec<String> = row["groups"]
                    .as_array()
                    .map(|list| {
                        let mut names: Vec<String> = list
                            .iter()
                            .map(|group| group.as_str().unwrap_or_default().to_string())
                            .collect();
                        names.sort();
                        names
                    })
                    .unwrap_or_else(|| vec!["<no `groups` in hosts JSON>".to_string()]);
                if midfleet != ansible {
                    mismatch(
                        "all",
                        host,
                        "groups",
                        show_list(&midfleet),
                        show_list(&ansible),
                    );
                }
            }
            Err(error) => mismatch("all", host, "groups", "-".into(), error.clone()),
        }
        let ansible = reached
            .get(host)
            .cloned()
            .unwrap_or_else(|| Err("not run".to_string()));
        let midfleet = midfleet_reached(row, &local);
        match (midfleet, ansible) {
            (Ok(midfleet), Ok(ansible)) => {
                let fields = [
                    ("address", midfleet.address.clone(), ansible.address.clone()),
                    ("port", midfleet.port.to_string(), ansible.port.to_string()),
                    ("user", midfleet.user.clone(), ansible.user.clone()),
                    ("jump", show_list(&midfleet.jump), show_list(&ansible.jump)),
                    (
                        "become",
                        midfleet.become_root.to_string(),
                        ansible.become_root.to_string(),
                    ),
                    (
                        "become_user",
                        format!("{:?}", midfleet.become_user),
                        format!("{:?}", ansible.become_user),
                    ),
                ];
                for (field, midfleet, ansible) in fields {
                    if midfleet != ansible {
                        mismatch("all", host, field, midfleet, ansible);
                    }
                }
            }
            (midfleet, ansible) => mismatch(
                "all",
                host,
                "connection",
                midfleet.map_or_else(|error| error, |reached| format!("{reached:?}")),
                ansible.map_or_else(|error| error, |reached| format!("{reached:?}")),
            ),
        }
    }
    (found, asked)
}

/// With `PARITY_SHOW_ANSIBLE=1`: what Ansible answered for each host, on
/// stderr, to read a case without midfleet (`--nocapture` shows it).
fn show_ansible(
    case: &Case,
    hosts: &[String],
    groups: &Result<BTreeMap<String, Vec<String>>, String>,
    reached: &BTreeMap<String, Result<Reached, String>>,
) {
    let mut text = format!("{}: Ansible's answers\n", case.name);
    for host in hosts {
        let host_groups = match groups {
            Ok(groups) => show_list(&groups.get(host).cloned().unwrap_or_default()),
            Err(error) => error.clone(),
        };
        let connection = match reached.get(host) {
            Some(Ok(reached)) => format!(
                "{}:{} user {} jump {} become {} {}",
                reached.address,
                reached.port,
                reached.user,
                show_list(&reached.jump),
                reached.become_root,
                reached.become_user.as_deref().unwrap_or("-")
            ),
            Some(Err(error)) => error.clone(),
            None => "not run".to_string(),
        };
        text.push_str(&format!("  {host}: groups {host_groups}; {connection}\n"));
    }
    eprint!("{text}");
}

// -------------------------------------------- the argv reader, checked --

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|word| (*word).to_string()).collect()
}

/// The argv reader is the suite's oracle: checked on command lines
/// Ansible 2.19 was seen to run.
#[test]
fn the_ssh_argv_reader_reads_ansibles_command_lines() {
    let common = ["-C", "-o", "ControlMaster=auto", "-o", "ControlPersist=60s"];
    let with = |middle: &[&str], tail: &[&str]| {
        let mut all = argv(&common);
        all.extend(argv(middle));
        all.extend(argv(&[
            "-o",
            "ConnectTimeout=2",
            "-o",
            "ControlPath=\"/h/.ansible/cp/76abfa7582\"",
        ]));
        all.extend(argv(tail));
        all
    };
    let plain = read_ssh_argv(&with(&[], &["-tt", "10.0.0.1", "true"]), "me").unwrap();
    assert_eq!(
        plain,
        Reached {
            address: "10.0.0.1".into(),
            port: 22,
            user: "me".into(),
            jump: vec![],
            become_root: false,
            become_user: None,
        }
    );
    let full = read_ssh_argv(
        &with(
            &[
                "-o",
                "Port=2222",
                "-o",
                "User=\"bob\"",
                "-o",
                "Port=1",
                "-o",
                "ProxyCommand=ssh -W %h:%p -q -p 2200 ops@bastion",
            ],
            &[
                "-tt",
                "2001:db8::2",
                "sudo -H -S -n  -u mid /bin/sh -c 'echo BECOME-SUCCESS-x ; true'",
            ],
        ),
        "me",
    )
    .unwrap();
    assert_eq!(full.address, "2001:db8::2");
    assert_eq!(full.port, 2222, "ssh keeps the first Port");
    assert_eq!(full.user, "bob");
    assert_eq!(full.jump, vec!["ops@bastion:2200"]);
    assert!(full.become_root);
    assert_eq!(full.become_user.as_deref(), Some("mid"));
    let jumps = read_ssh_argv(
        &with(&["-J", "a@j1,j2:2201,[2001:db8::9]:2202"], &["h", "true"]),
        "me",
    )
    .unwrap();
    assert_eq!(
        jumps.jump,
        vec!["a@j1:22", "me@j2:2201", "me@2001:db8::9:2202"]
    );
    let proxy_jump = read_ssh_argv(
        &with(&["-o", "ProxyJump=ops@b:2222", "-J", "x@y"], &["h", "true"]),
        "me",
    )
    .unwrap();
    assert_eq!(proxy_jump.jump, vec!["ops@b:2222"], "the first one wins");
    let two_jumps = read_ssh_argv(&with(&["-J", "a@b", "-J", "c@d"], &["h", "true"]), "me");
    assert!(two_jumps.is_err(), "ssh refuses two -J: {two_jumps:?}");
    let none = read_ssh_argv(&with(&["-o", "ProxyJump=none"], &["h", "true"]), "me").unwrap();
    assert_eq!(none.jump, Vec::<String>::new());
    let not_ssh = read_ssh_argv(
        &with(
            &["-o", "ProxyCommand=nc -X 5 -x proxy:1080 %h %p"],
            &["h", "true"],
        ),
        "me",
    );
    assert!(not_ssh.is_err(), "{not_ssh:?}");
    assert_eq!(
        shell_words(r#"ssh -W %h:%p -o "User=a b" 'x y'"#).unwrap(),
        vec!["ssh", "-W", "%h:%p", "-o", "User=a b", "x y"]
    );
}
