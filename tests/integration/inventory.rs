//! `midfleet hosts` and `midfleet check` on inventories written the way
//! Ansible users write them, and on broken ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::midfleet;

const YAML: &str = "tests/fixtures/inventories/ansible-yaml/inventory.yml";
const INI: &str = "tests/fixtures/inventories/ansible-ini/hosts";
const BROKEN: &str = "tests/fixtures/inventories/broken";

const PATTERNS: [&str; 7] = [
    "all",
    "emea",
    "europe:!mid-emea-02",
    "mid-amer-*:&amer",
    "all:!europe:!lab",
    "mid-emea-01,mid-lab-01",
    "!amer",
];

#[test]
fn hosts_selects_and_resolves_as_ansible_would() {
    let mut snapshot = String::new();
    for pattern in PATTERNS {
        let run = midfleet(["hosts", "-i", YAML, pattern], &[]);
        assert_eq!(run.code, 0, "{pattern}: {}", run.stderr);
        assert_eq!(run.stderr, "", "{pattern}");
        snapshot.push_str(&format!(
            "$ midfleet hosts -i inventory.yml '{pattern}'\n{}\n",
            run.stdout
        ));
    }
    insta::assert_snapshot!("hosts_patterns", snapshot);
}

#[test]
fn the_same_fleet_as_ini_with_group_vars_resolves_identically() {
    for pattern in PATTERNS {
        let yaml = midfleet(["hosts", "-i", YAML, pattern, "--output", "json"], &[]);
        let ini = midfleet(["hosts", "-i", INI, pattern, "--output", "json"], &[]);
        assert_eq!(
            (yaml.code, ini.code),
            (0, 0),
            "{pattern}: {} {}",
            yaml.stderr,
            ini.stderr
        );
        assert_eq!(yaml.stdout, ini.stdout, "{pattern}");
    }
}

#[test]
fn hosts_json_has_the_documented_keys() {
    let run = midfleet(
        ["hosts", "-i", YAML, "mid-emea-02", "--output", "json"],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let hosts: Vec<BTreeMap<String, serde_json::Value>> =
        serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(hosts.len(), 1);
    let host = &hosts[0];
    for key in [
        "name", "address", "port", "user", "jump", "become", "config", "service",
    ] {
        assert!(host.contains_key(key), "missing {key}");
    }
    assert_eq!(host["name"], "mid-emea-02");
    assert_eq!(host["address"], "10.20.0.12");
    assert_eq!(host["port"], 2222);
    assert_eq!(host["user"], "ops");
    assert_eq!(
        host["jump"],
        serde_json::json!(["ops@bastion-emea.example.com:22"])
    );
    assert_eq!(host["become"], true);
    assert_eq!(host["config"], "/opt/servicenow/mid/agent/config.xml");
    assert_eq!(host["service"], serde_json::json!({ "kind": "auto" }));
}

#[test]
fn an_unknown_pattern_name_is_an_error_with_a_suggestion() {
    let run = midfleet(["hosts", "-i", YAML, "emae:!lab"], &[]);
    assert_eq!(run.code, 3);
    assert_eq!(run.stdout, "");
    insta::assert_snapshot!("hosts_unknown_pattern", run.stderr);
    let run = midfleet(["hosts", "-i", YAML, "--limit", "mid-emea-1"], &[]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr
            .contains("--limit: no group or host is named `mid-emea-1`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did you mean `mid-emea-01`?"),
        "{}",
        run.stderr
    );
}

#[test]
fn check_with_a_missing_playbook_says_it_was_not_read() {
    let run = midfleet(["check", "-i", YAML, "nope.yml"], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("nope.yml"), "{}", run.stderr);
    insta::assert_snapshot!("check_missing_playbook_summary", run.stdout);
}

#[test]
fn check_reports_every_problem_with_its_location() {
    let inventory = format!("{BROKEN}/inventory.yml");
    let playbook = format!("{BROKEN}/playbook.yml");
    let run = midfleet(["check", "-i", &inventory, &playbook], &[]);
    assert_eq!(run.code, 3);
    insta::assert_snapshot!("check_broken_inventory_and_playbook", run.stderr);
    insta::assert_snapshot!("check_broken_summary", run.stdout);
}

/// `hosts` counts the problems it lists (errors, not warnings).
#[test]
fn hosts_on_a_broken_inventory_counts_the_problems_it_lists() {
    let run = midfleet(["hosts", "-i", &format!("{BROKEN}/playbook.yml")], &[]);
    assert_eq!(run.code, 3);
    let listed = run
        .stderr
        .lines()
        .filter(|line| line.starts_with("error: ") && !line.contains(" problems in "))
        .count();
    assert!(
        run.stderr
            .contains(&format!("error: {listed} problems in the inventory")),
        "{}",
        run.stderr
    );
    insta::assert_snapshot!("hosts_broken_inventory", run.stderr);
}

#[test]
fn check_reports_yaml_syntax_errors_with_line_and_column() {
    let run = midfleet(["check", "-i", &format!("{BROKEN}/syntax.yml")], &[]);
    assert_eq!(run.code, 3);
    insta::assert_snapshot!("check_yaml_syntax", run.stderr);
}

#[test]
fn check_names_host_parameter_and_template_of_an_undefined_variable() {
    let run = midfleet(
        [
            "check",
            "-i",
            YAML,
            "tests/fixtures/inventories/undefined-variable.yml",
        ],
        &[],
    );
    assert_eq!(run.code, 3);
    insta::assert_snapshot!("check_undefined_variable", run.stderr);
}

#[test]
fn examples_in_the_repository_pass_check() {
    let run = midfleet(
        [
            "check",
            "-i",
            "inventory/example.yml",
            "playbooks/rotate-user.yml",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "");
    assert!(run.stdout.contains("5 hosts selected"), "{}", run.stdout);
    assert!(!run.stdout.contains("instance"), "{}", run.stdout);

    // Its commented-out instance section, switched on, passes too, and
    // check says what it will do.
    let directory = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string("playbooks/rotate-user.yml").unwrap();
    let enabled: String = text
        .lines()
        .map(|line| match line.strip_prefix("# instance:") {
            Some(_) => "instance:".to_string(),
            None => match line.strip_prefix("#   ") {
                Some(rest) => format!("  {rest}"),
                None => line.to_string(),
            },
        })
        .collect::<Vec<_>>()
        .join("\n");
    let playbook = directory.path().join("rotate-user.yml");
    std::fs::write(&playbook, enabled).unwrap();
    let run = midfleet(
        [
            "check",
            "-i",
            "inventory/example.yml",
            playbook.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(
            "instance https://acme.service-now.com: check each new login before any host, \
             create missing users with mid_server, wait for each ecc_agent record Up as its new user, \
             Invalidate and Validate the MIDs whose key pair is reset, lock the old users after the run"
        ),
        "{}",
        run.stdout
    );
}

/// `check` (and `plan`, `apply`, which load the playbook the same way)
/// refuse an `http://` instance that is not on this machine, at its line
/// and column, and accept one on loopback without a word.
#[test]
fn check_refuses_plain_http_to_a_remote_instance_but_not_to_loopback() {
    let directory = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string("playbooks/rotate-user.yml").unwrap();
    let with_url = |url: &str| -> String {
        let enabled: Vec<String> = text
            .lines()
            .map(|line| match line.strip_prefix("# instance:") {
                Some(_) => "instance:".to_string(),
                None => match line.strip_prefix("#   ") {
                    Some(rest) => {
                        format!("  {}", rest.replace("https://acme.service-now.com", url))
                    }
                    None => line.to_string(),
                },
            })
            .collect();
        let line = enabled
            .iter()
            .position(|line| line.starts_with("  url: "))
            .expect("the example's instance url");
        let playbook = directory.path().join("rotate-user.yml");
        std::fs::write(&playbook, enabled.join("\n")).unwrap();
        format!("{}:{}:8", playbook.display(), line + 1)
    };
    let at = with_url("http://acme.service-now.com");
    let playbook = at.split(':').next().unwrap().to_string();
    let run = midfleet(["check", "-i", "inventory/example.yml", &playbook], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "error: {at}: `instance.url`: plain http:// is accepted only for an instance on this machine"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("hint: use https:// (a private CA goes in `ca_file`)"),
        "{}",
        run.stderr
    );

    with_url("http://127.0.0.1:8080");
    let run = midfleet(["check", "-i", "inventory/example.yml", &playbook], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "");
    assert!(
        run.stdout.contains("instance http://127.0.0.1:8080"),
        "{}",
        run.stdout
    );
}

/// Issue 16: unused templates over facts, other hosts and magic variables
/// never block, and `default(…)` works in the playbook.
#[test]
fn check_passes_an_inventory_full_of_unused_fact_templates_and_defaults() {
    let directory = "tests/fixtures/inventories/ansible-habits";
    let run = midfleet(
        [
            "check",
            "-i",
            &format!("{directory}/inventory.yml"),
            &format!("{directory}/rotate.yml"),
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "");
    assert!(run.stdout.contains("3 hosts selected"), "{}", run.stdout);

    // The same playbook reading a fact is refused, saying why.
    let temporary = tempfile::tempdir().unwrap();
    let playbook = temporary.path().join("facts.yml");
    std::fs::write(&playbook, "hosts: emea\nset:\n  name: \"{{ node_ip }}\"\n").unwrap();
    let run = midfleet(
        [
            "check",
            "-i",
            &format!("{directory}/inventory.yml"),
            playbook.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "needs the Ansible fact `ansible_default_ipv4` (through `node_ip`), which midfleet does not gather"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("mid-emea-01.example.com"),
        "{}",
        run.stderr
    );
}

#[test]
fn check_json_is_parseable() {
    let inventory = format!("{BROKEN}/inventory.yml");
    let run = midfleet(["check", "-i", &inventory, "--output", "json"], &[]);
    assert_eq!(run.code, 3);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let diagnostics = report["diagnostics"].as_array().unwrap();
    assert_eq!(
        report["errors"].as_u64().unwrap() as usize,
        diagnostics
            .iter()
            .filter(|d| d["severity"] == "error")
            .count()
    );
    let port = diagnostics
        .iter()
        .find(|diagnostic| {
            diagnostic["message"]
                .as_str()
                .unwrap()
                .contains("ansible_port")
        })
        .unwrap();
    assert_eq!(port["origin"]["file"], inventory);
    assert_eq!(port["origin"]["line"], 7);
    assert_eq!(port["origin"]["column"], 64);
}

/// Every file under `root`, with its bytes.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(directory) = stack.pop() {
        for entry in std::fs::read_dir(&directory).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[test]
fn a_secret_appears_in_nothing_check_and_hosts_print_or_write() {
    const SECRET: &str = "Zq9-unique-secret-value-7Hx";
    let home = tempfile::tempdir().unwrap();
    let secret_file = home.path().join("password");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let playbook = home.path().join("playbook.yml");
    std::fs::write(
        &playbook,
        format!(
            "hosts: all\nset:\n  mid.instance.password: {{ secret: \"env:MID_PASSWORD\" }}\n  mid.proxy.password: {{ secret: \"file:{}\" }}\n  custom.token: {{ secret: \"command:printf %s $MID_PASSWORD\" }}\n",
            secret_file.display()
        ),
    )
    .unwrap();
    let before = tree(home.path());
    let fixtures_before = tree(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .as_path(),
    );
    let environment = [
        ("MID_PASSWORD", SECRET),
        ("HOME", home.path().to_str().unwrap()),
    ];
    let playbook = playbook.to_str().unwrap();
    let runs = [
        midfleet(
            ["check", "-i", YAML, playbook, "--resolve-secrets"],
            &environment,
        ),
        midfleet(
            [
                "check",
                "-i",
                YAML,
                playbook,
                "--resolve-secrets",
                "--output",
                "json",
            ],
            &environment,
        ),
        midfleet(["check", "-i", YAML, playbook, "-v"], &environment),
        midfleet(["hosts", "-i", YAML], &environment),
        midfleet(["hosts", "-i", YAML, "--output", "json"], &environment),
    ];
    assert_eq!(runs[0].code, 0, "{}", runs[0].stderr);
    assert!(
        runs[0].stdout.contains("3 secrets resolved"),
        "{}",
        runs[0].stdout
    );
    for run in &runs {
        assert!(
            !run.all_output().contains(SECRET),
            "leaked: {}",
            run.all_output()
        );
        assert!(
            !run.all_output().contains("unique-secret"),
            "leaked part: {}",
            run.all_output()
        );
    }
    assert_eq!(tree(home.path()), before, "check and hosts write nothing");
    assert_eq!(
        tree(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .as_path()
        ),
        fixtures_before
    );
}

#[test]
fn shards_split_the_selection_into_disjoint_parts_that_cover_it() {
    let names = |arguments: &[&str]| -> Vec<String> {
        let mut all = vec!["hosts", "-i", YAML, "--output", "json"];
        all.extend_from_slice(arguments);
        let run = midfleet(all, &[]);
        assert_eq!(run.code, 0, "{arguments:?}: {}", run.stderr);
        let hosts: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        hosts
            .as_array()
            .unwrap()
            .iter()
            .map(|host| host["name"].as_str().unwrap().to_string())
            .collect()
    };
    let everything = names(&[]);
    assert!(everything.len() >= 4, "{everything:?}");
    let mut seen: Vec<String> = Vec::new();
    for part in ["1/3", "2/3", "3/3"] {
        let hosts = names(&["--shard", part]);
        assert!(hosts.len() < everything.len(), "{part}: {hosts:?}");
        // The `emea` cluster's members stay together in one part.
        let emea = hosts
            .iter()
            .filter(|host| host.starts_with("mid-emea-"))
            .count();
        assert!(emea == 0 || emea == 3, "{part}: {hosts:?}");
        for host in hosts {
            assert!(!seen.contains(&host), "{host} in two parts");
            seen.push(host);
        }
        // With a pattern and --limit, the part is taken of their selection.
        let limited = names(&["emea", "--shard", part]);
        assert!(limited.iter().all(|host| seen.contains(host)));
    }
    seen.sort();
    let mut expected = everything.clone();
    expected.sort();
    assert_eq!(seen, expected, "the parts cover the selection");
    let refused = midfleet(["hosts", "-i", YAML, "--shard", "4/3"], &[]);
    assert_eq!(refused.code, 3);
    assert!(refused.stderr.contains("K/N"), "{}", refused.stderr);
}

// ---------------------------------------------------------------------------
// Dynamic inventory: executable `-i` sources, as Ansible's script plugin
// ---------------------------------------------------------------------------

/// Writes `text` to `directory/name` with the given mode.
fn write_file(directory: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = directory.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// A python3 inventory script: groups with hosts, vars and children, a
/// list-shaped group, `_meta.hostvars`; it logs each call to `calls.log`.
const SCRIPT: &str = r#"#!/usr/bin/env python3
import json, os, sys
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "calls.log"), "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\n")
if sys.argv[1:] != ["--list"]:
    sys.exit("only --list")
print(json.dumps({
    "europe": {"children": ["emea"]},
    "emea": {"hosts": ["mid-emea-02", "mid-emea-01"], "vars": {"ansible_user": "ops"}},
    "amer": {"hosts": ["mid-amer-01"], "vars": {"ansible_port": 2201}},
    "_meta": {"hostvars": {
        "mid-emea-01": {"ansible_host": "10.20.0.11"},
        "mid-amer-01": {"ansible_host": "10.30.0.11", "ansible_user": "amer"},
    }},
}))
"#;

/// Compares what `midfleet hosts --output json` printed with `expected`
/// (name, address, port, user; a user `-` is not compared: it is the
/// operator's own).
fn assert_endpoints(stdout: &str, expected: &[(String, String, u64, String)]) {
    let mut found = endpoints(stdout);
    for (found, expected) in found.iter_mut().zip(expected) {
        if expected.3 == "-" {
            found.3 = "-".to_string();
        }
    }
    assert_eq!(found, expected);
}

/// The names, addresses, ports and users `midfleet hosts --output json`
/// printed.
fn endpoints(stdout: &str) -> Vec<(String, String, u64, String)> {
    let hosts: Vec<serde_json::Value> = serde_json::from_str(stdout).unwrap();
    hosts
        .iter()
        .map(|host| {
            (
                host["name"].as_str().unwrap().to_string(),
                host["address"].as_str().unwrap().to_string(),
                host["port"].as_u64().unwrap(),
                host["user"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

fn endpoint(name: &str, address: &str, port: u64, user: &str) -> (String, String, u64, String) {
    (name.into(), address.into(), port, user.into())
}

#[test]
fn an_executable_inventory_is_run_with_list_as_ansible_runs_it() {
    let directory = tempfile::tempdir().unwrap();
    let script = write_file(directory.path(), "inventory.py", SCRIPT, 0o755);
    let script = script.to_str().unwrap();
    let run = midfleet(["hosts", "-i", script, "--output", "json"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "");
    // The order `ansible -i inventory.py all --list-hosts` gives
    // (ansible-core 2.19.14): amer, then europe's child emea.
    assert_endpoints(
        &run.stdout,
        &[
            endpoint("mid-amer-01", "10.30.0.11", 2201, "amer"),
            endpoint("mid-emea-02", "mid-emea-02", 22, "ops"),
            endpoint("mid-emea-01", "10.20.0.11", 22, "ops"),
        ],
    );
    // `_meta` was there: run once, with --list only.
    let calls = std::fs::read_to_string(directory.path().join("calls.log")).unwrap();
    assert_eq!(calls, "--list\n");
    // Patterns and -l over a script's hosts.
    let run = midfleet(
        ["hosts", "-i", script, "europe[0]", "--output", "json"],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(endpoints(&run.stdout)[0].0, "mid-emea-02");
    let run = midfleet(
        [
            "hosts",
            "-i",
            script,
            "-l",
            "~mid-(amer|emea)-01",
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let names: Vec<String> = endpoints(&run.stdout)
        .into_iter()
        .map(|host| host.0)
        .collect();
    assert_eq!(names, ["mid-amer-01", "mid-emea-01"]);
}

#[test]
fn without_meta_each_host_is_asked_with_host() {
    let directory = tempfile::tempdir().unwrap();
    let script = write_file(
        directory.path(),
        "cmdb",
        r#"#!/usr/bin/env python3
import json, sys
if sys.argv[1:] == ["--list"]:
    print(json.dumps({"web": ["web-1", "web-2"]}))
elif sys.argv[1] == "--host":
    print(json.dumps({"ansible_host": "192.0.2." + sys.argv[2][-1]}))
"#,
        0o700,
    );
    let run = midfleet(
        ["hosts", "-i", script.to_str().unwrap(), "--output", "json"],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_endpoints(
        &run.stdout,
        &[
            endpoint("web-1", "192.0.2.1", 22, "-"),
            endpoint("web-2", "192.0.2.2", 22, "-"),
        ],
    );
    // A group given as a list: Ansible's deprecation, said once.
    assert!(
        run.stderr.contains("group `web` is a list of hosts"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_failing_inventory_script_is_an_error_naming_it_with_its_stderr() {
    let directory = tempfile::tempdir().unwrap();
    let script = write_file(
        directory.path(),
        "inventory.sh",
        "#!/bin/sh\necho 'cannot reach the CMDB at cmdb.example.com' >&2\nexit 3\n",
        0o755,
    );
    let script = script.to_str().unwrap();
    let run = midfleet(["hosts", "-i", script], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains(&format!(
            "error: {script}: inventory script `{script} --list` exited with code 3\n\
             hint: its stderr: cannot reach the CMDB at cmdb.example.com"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("no host was contacted"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_inventory_script_printing_bad_json_is_an_error_with_line_and_column() {
    let directory = tempfile::tempdir().unwrap();
    let script = write_file(
        directory.path(),
        "inventory.py",
        "#!/usr/bin/env python3\nprint('{\"web\": {\"hosts\": [\"a\",\\n ]}}')\n",
        0o755,
    );
    let script = script.to_str().unwrap();
    let run = midfleet(["check", "-i", script], &[]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    // Python's json module says "line 2 column 2" too.
    assert!(
        run.stderr.contains(&format!(
            "error: {script} --list:2:2: the inventory script's output is not JSON: expected value"
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn an_inventory_directory_mixes_files_scripts_and_group_vars_as_ansible_reads_it() {
    let directory = tempfile::tempdir().unwrap();
    let root = directory.path();
    write_file(root, "01-static.ini", "[web]\nw1\n", 0o644);
    write_file(
        root,
        "02-dynamic.py",
        "#!/usr/bin/env python3\nimport json\nprint(json.dumps({\"web\": {\"hosts\": [\"w2\"]}, \
         \"db\": {\"hosts\": [\"d1\"], \"vars\": {\"ansible_port\": 2222}}, \
         \"_meta\": {\"hostvars\": {\"w2\": {\"ansible_host\": \"10.1.1.2\"}}}}))\n",
        0o755,
    );
    write_file(
        root,
        "03-hosts.yml",
        "all:\n  children:\n    app:\n      hosts:\n        a1:\n",
        0o644,
    );
    // Executable, but no `#!`: the system will not run it; read as INI.
    write_file(root, "04-more", "[db]\nd3\n", 0o755);
    write_file(root, "group_vars/web.yml", "ansible_user: ops\n", 0o644);
    write_file(root, "sub/more.ini", "[db]\nd2\n", 0o644);
    // What Ansible skips in a directory.
    for ignored in [
        "ansible.cfg",
        "README.md",
        "notes.txt",
        "hosts.bak",
        "hosts~",
        ".hidden",
    ] {
        write_file(root, ignored, "not an inventory [\n", 0o644);
    }
    // A script without its executable bit: skipped with a warning.
    write_file(
        root,
        "helper.py",
        "#!/usr/bin/env python3\nprint(1)\n",
        0o644,
    );
    let run = midfleet(
        ["hosts", "-i", root.to_str().unwrap(), "--output", "json"],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // `ansible -i DIR all --list-hosts` (ansible-core 2.19.14) lists a1 w1
    // w2 d1 d2 d3 here (and `print(1)`, from helper.py read as INI).
    assert_endpoints(
        &run.stdout,
        &[
            endpoint("a1", "a1", 22, "-"),
            endpoint("w1", "w1", 22, "ops"),
            endpoint("w2", "10.1.1.2", 22, "ops"),
            endpoint("d1", "d1", 2222, "-"),
            endpoint("d3", "d3", 2222, "-"),
            endpoint("d2", "d2", 2222, "-"),
        ],
    );
    assert!(
        run.stderr
            .contains("helper.py: skipped: this file starts with `#!` but is not executable"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_script_that_is_not_executable_is_an_error_with_a_hint() {
    let directory = tempfile::tempdir().unwrap();
    let script = write_file(directory.path(), "inventory.py", SCRIPT, 0o644);
    let run = midfleet(["hosts", "-i", script.to_str().unwrap()], &[]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("starts with `#!` but is not executable")
            && run.stderr.contains("chmod +x"),
        "{}",
        run.stderr
    );
}

#[test]
fn limit_has_a_short_form_and_reads_pattern_files() {
    let directory = tempfile::tempdir().unwrap();
    let limit = write_file(
        directory.path(),
        "canaries.txt",
        "# canaries\nemea[0]\n!mid-lab-01\namer[-1]\n",
        0o644,
    );
    let limit = format!("@{}", limit.display());
    let short = midfleet(["hosts", "-i", YAML, "-l", &limit, "--output", "json"], &[]);
    let long = midfleet(
        ["hosts", "-i", YAML, "--limit", &limit, "--output", "json"],
        &[],
    );
    assert_eq!(short.code, 0, "{}", short.stderr);
    assert_eq!(short.stdout, long.stdout);
    let names: Vec<String> = endpoints(&short.stdout)
        .into_iter()
        .map(|host| host.0)
        .collect();
    // `ansible -i inventory.yml all -l @canaries.txt --list-hosts` (ansible-core
    // 2.19.14) gives these two, in this order (the `#` line it warns about).
    assert_eq!(names, ["mid-amer-03", "mid-emea-01"]);
}

#[test]
fn check_resolve_secrets_resolves_the_wrapper_sections_secrets_too() {
    let directory = tempfile::tempdir().unwrap();
    let playbook = directory.path().join("heap.yml");
    std::fs::write(
        &playbook,
        "hosts: all\nwrapper:\n  wrapper.java.maxmemory: 2048\n  \
         wrapper.ntservice.password: { secret: \"env:MIDFLEET_TEST_NO_SUCH_SECRET\" }\n",
    )
    .unwrap();
    let playbook = playbook.to_str().unwrap();
    let run = midfleet(["check", "-i", YAML, playbook, "--resolve-secrets"], &[]);
    assert_ne!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("MIDFLEET_TEST_NO_SUCH_SECRET"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    let run = midfleet(
        ["check", "-i", YAML, playbook, "--resolve-secrets"],
        &[("MIDFLEET_TEST_NO_SUCH_SECRET", "s3cret-service-pw")],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("1 secret resolved"), "{}", run.stdout);
    assert!(!run.all_output().contains("s3cret-service-pw"));
}
