//! The inventory as a whole: files written into a temporary directory the
//! way Ansible users write them (YAML, INI, `group_vars/`, `host_vars/`),
//! loaded, selected and resolved, asserting exact values and exact error
//! locations. The parts (`range`, `pattern::glob_match`, `vars`) have their
//! own unit tests beside them.

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::{Host, Inventory, JumpHop, ServiceSpec, Vars, ALL};
use crate::diagnostic::{Diagnostic, Diagnostics, Location, Origin, Severity};
use crate::template::Templates;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A temporary directory to write inventories into.
struct Fixture {
    directory: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            directory: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.directory.path().join(relative)
    }

    /// Writes `text` to `relative`, creating folders on the way.
    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.path(relative);
        let folder = path.parent().expect("a file inside the fixture");
        fs::create_dir_all(folder).expect("create the folder");
        fs::write(&path, text).expect("write the file");
        path
    }
}

fn load(sources: &[PathBuf]) -> (Inventory, Diagnostics) {
    Inventory::load(sources)
}

/// Loads `sources`, which must raise no diagnostic at all.
fn load_clean(sources: &[PathBuf]) -> Inventory {
    let (inventory, diagnostics) = load(sources);
    let diagnostics = diagnostics.into_vec();
    assert!(
        diagnostics.is_empty(),
        "unexpected diagnostics: {diagnostics:#?}"
    );
    inventory
}

fn resolve(inventory: &Inventory, name: &str) -> Host {
    inventory
        .resolve(name, &Templates::new())
        .unwrap_or_else(|problems| panic!("resolving {name}: {problems:#?}"))
}

/// The variables templates see, rendered to text, but those that name the
/// inventory's files or reach other hosts.
fn plain_variables(host: &Host) -> std::collections::BTreeMap<String, String> {
    host.template_context
        .names()
        .into_iter()
        .filter(|name| {
            !matches!(
                name.as_str(),
                "inventory_file" | "inventory_dir" | "hostvars" | "groups" | "vars"
            )
        })
        .map(|name| {
            let value = variable(host, &name);
            (name, value)
        })
        .collect()
}

/// A variable as templates see it, rendered to text.
fn variable(host: &Host, name: &str) -> String {
    host.template_context
        .get(name)
        .unwrap_or_else(|| panic!("{}: no variable `{name}`", host.name))
        .to_string()
}

/// The hosts `pattern` selects, which must raise no warning.
fn selected(inventory: &Inventory, pattern: &str) -> Vec<String> {
    let selection = inventory
        .select(pattern, None)
        .unwrap_or_else(|errors| panic!("pattern {pattern}: {errors:#?}"));
    assert!(
        selection.warnings.is_empty(),
        "pattern {pattern}: {:#?}",
        selection.warnings
    );
    selection.hosts
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

fn location(diagnostic: &Diagnostic) -> Option<(usize, usize)> {
    diagnostic
        .origin
        .as_ref()
        .and_then(|origin| origin.at)
        .map(|at| (at.line, at.column))
}

/// Every text a diagnostic can show: message, hint, its display and JSON.
fn shown(diagnostic: &Diagnostic) -> String {
    format!(
        "{}\n{}\n{}\n{}",
        diagnostic.message,
        diagnostic.hint.as_deref().unwrap_or_default(),
        diagnostic,
        serde_json::to_string(diagnostic).expect("a diagnostic serializes"),
    )
}

/// What one resolved host must hold.
struct Expected {
    name: &'static str,
    address: &'static str,
    port: Option<u16>,
    user: Option<&'static str>,
    identity_file: Option<&'static str>,
    become_root: bool,
    jump: Vec<JumpHop>,
    connect_timeout: Option<u64>,
    mid_home: &'static str,
    config: &'static str,
    mid_cluster: Option<&'static str>,
    service: ServiceSpec,
    groups: &'static [&'static str],
}

impl Default for Expected {
    fn default() -> Expected {
        Expected {
            name: "",
            address: "",
            port: None,
            user: None,
            identity_file: None,
            become_root: false,
            jump: Vec::new(),
            connect_timeout: None,
            mid_home: "/opt/servicenow/mid",
            config: "/opt/servicenow/mid/agent/config.xml",
            mid_cluster: None,
            service: ServiceSpec::Auto,
            groups: &[],
        }
    }
}

fn assert_host(host: &Host, expected: &Expected) {
    let name = expected.name;
    assert_eq!(host.name, name);
    assert_eq!(host.address, expected.address, "{name}: address");
    assert_eq!(host.port, expected.port, "{name}: port");
    assert_eq!(host.user.as_deref(), expected.user, "{name}: user");
    assert_eq!(
        host.identity_file.as_deref(),
        expected.identity_file.map(Path::new),
        "{name}: identity_file"
    );
    assert_eq!(host.become_root, expected.become_root, "{name}: become");
    assert_eq!(host.jump, expected.jump, "{name}: jump");
    assert_eq!(
        host.connect_timeout, expected.connect_timeout,
        "{name}: connect_timeout"
    );
    assert_eq!(host.mid_home, expected.mid_home, "{name}: mid_home");
    assert_eq!(host.config, expected.config, "{name}: config");
    assert_eq!(
        host.mid_cluster.as_deref(),
        expected.mid_cluster,
        "{name}: mid_cluster"
    );
    assert_eq!(host.service, expected.service, "{name}: service");
    assert_eq!(host.groups, strings(expected.groups), "{name}: groups");
}

fn hop(user: Option<&str>, host: &str, port: Option<u16>) -> JumpHop {
    JumpHop {
        user: user.map(str::to_string),
        host: host.to_string(),
        port,
        identity_file: None,
    }
}

// ---------------------------------------------------------------------------
// 1. An inventory as Ansible users write it
// ---------------------------------------------------------------------------

const ANSIBLE_FLEET: &str = r#"# The fleet as an Ansible user keeps it.
all:
  vars:
    ansible_user: ops
    ansible_become: yes
    mid_home: /opt/servicenow/mid
  children:
    europe:
      vars:
        ansible_ssh_common_args: "-o ProxyJump=ops@bastion"
      children:
        emea:
          vars:
            mid_cluster: emea
          children:
            emea_prod:
              hosts:
                mid-emea-01:
                  ansible_host: 10.20.0.11
                  ansible_port: 2222
                  ansible_ssh_private_key_file: ~/.ssh/mid_ed25519
                  mid_service: systemd:mid
                mid-emea-02:
                  ansible_host: 10.20.0.12
                  ansible_become: Yes
                  ansible_user: svc_mid
          hosts:
            mid-emea-03:
              ansible_host: mid-emea-03.example.com
              ansible_ssh_common_args: "-o StrictHostKeyChecking=yes -J ops@bastion-2:2200,jump3"
    lab:
      vars:
        ansible_become: no
      hosts:
        mid-lab-01:
          ansible_become: TRUE
          mid_home: /opt/snc_mid_server/
          ansible_timeout: 30
          mid_service:
            start: sudo systemctl start mid
            stop: sudo systemctl stop mid
            status: systemctl is-active mid
        mid-lab-02:
          ansible_become: on
          ansible_ssh_common_args: "-o StrictHostKeyChecking=yes"
        mid-lab-03:
"#;

#[test]
fn an_ansible_yaml_inventory_resolves_to_exact_settings() {
    let fixture = Fixture::new();
    let path = fixture.write("inventory.yml", ANSIBLE_FLEET);
    let inventory = load_clean(std::slice::from_ref(&path));
    assert_eq!(inventory.files, vec![path]);
    assert_eq!(inventory.host_count(), 6);
    // Ansible's order (observed from `ansible -i inventory.yml all
    // --list-hosts`, ansible-core 2.19.14): the groups one level down
    // first (lab), then the group below europe (emea).
    assert_eq!(
        selected(&inventory, "all"),
        strings(&[
            "mid-lab-01",
            "mid-lab-02",
            "mid-lab-03",
            "mid-emea-03",
            "mid-emea-01",
            "mid-emea-02",
        ])
    );
    let bastion = || vec![hop(Some("ops"), "bastion", None)];
    let expected = [
        Expected {
            name: "mid-emea-01",
            address: "10.20.0.11",
            port: Some(2222),
            user: Some("ops"),
            identity_file: Some("~/.ssh/mid_ed25519"),
            become_root: true,
            jump: bastion(),
            mid_cluster: Some("emea"),
            service: ServiceSpec::Systemd { unit: "mid".into() },
            groups: &["emea", "emea_prod", "europe"],
            ..Expected::default()
        },
        Expected {
            name: "mid-emea-02",
            address: "10.20.0.12",
            user: Some("svc_mid"),
            become_root: true,
            jump: bastion(),
            mid_cluster: Some("emea"),
            groups: &["emea", "emea_prod", "europe"],
            ..Expected::default()
        },
        Expected {
            name: "mid-emea-03",
            address: "mid-emea-03.example.com",
            user: Some("ops"),
            become_root: true,
            jump: vec![
                hop(Some("ops"), "bastion-2", Some(2200)),
                hop(None, "jump3", None),
            ],
            mid_cluster: Some("emea"),
            groups: &["emea", "europe"],
            ..Expected::default()
        },
        Expected {
            name: "mid-lab-01",
            address: "mid-lab-01",
            user: Some("ops"),
            become_root: true,
            connect_timeout: Some(30),
            mid_home: "/opt/snc_mid_server",
            config: "/opt/snc_mid_server/agent/config.xml",
            service: ServiceSpec::Commands {
                start: "sudo systemctl start mid".into(),
                stop: "sudo systemctl stop mid".into(),
                status: "systemctl is-active mid".into(),
            },
            groups: &["lab"],
            ..Expected::default()
        },
        Expected {
            name: "mid-lab-02",
            address: "mid-lab-02",
            user: Some("ops"),
            become_root: true,
            groups: &["lab"],
            ..Expected::default()
        },
        Expected {
            name: "mid-lab-03",
            address: "mid-lab-03",
            user: Some("ops"),
            become_root: false,
            groups: &["lab"],
            ..Expected::default()
        },
    ];
    for expected in &expected {
        assert_host(&resolve(&inventory, expected.name), expected);
    }
    // The template context holds the host's variables and Ansible's magic
    // ones.
    let host = resolve(&inventory, "mid-emea-02");
    assert_eq!(variable(&host, "inventory_hostname"), "mid-emea-02");
    assert_eq!(variable(&host, "ansible_host"), "10.20.0.12");
    assert_eq!(variable(&host, "mid_cluster"), "emea");
    assert_eq!(
        variable(&host, "group_names"),
        "['emea', 'emea_prod', 'europe']"
    );
}

#[test]
fn the_example_inventory_of_the_repository_loads_cleanly() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("inventory/example.yml");
    let inventory = load_clean(&[path]);
    let host = resolve(&inventory, "mid-amer-02");
    assert_eq!(
        host.jump,
        vec![hop(Some("ops"), "bastion-amer.example.com", None)]
    );
    assert_eq!(host.service, ServiceSpec::Systemd { unit: "mid".into() });
    assert_eq!(variable(&host, "mid_name"), "amer02");
    let lab = resolve(&inventory, "mid-lab-01");
    assert!(!lab.become_root);
    assert_eq!(lab.user.as_deref(), Some("mid"));
    assert_eq!(lab.config, "/opt/snc_mid_server/agent/config.xml");
}

/// Every spelling of Ansible's booleans, in YAML and INI, set on the host
/// over the opposite value set natively on its group.
#[test]
fn ansible_booleans_for_become_in_yaml_and_ini() {
    let cases: [(&str, &str, bool); 26] = [
        ("yes", "yes", true),
        ("Yes", "Yes", true),
        ("YES", "YES", true),
        ("on", "on", true),
        ("On", "On", true),
        ("ON", "ON", true),
        ("true", "true", true),
        ("True", "True", true),
        ("TRUE", "TRUE", true),
        ("y", "y", true),
        ("1", "1", true),
        ("'yes'", "'yes'", true),
        ("\"on\"", "\"on\"", true),
        ("no", "no", false),
        ("No", "No", false),
        ("NO", "NO", false),
        ("off", "off", false),
        ("Off", "Off", false),
        ("OFF", "OFF", false),
        ("false", "false", false),
        ("False", "False", false),
        ("FALSE", "FALSE", false),
        ("n", "n", false),
        ("0", "0", false),
        ("'no'", "'no'", false),
        ("\"false\"", "\"false\"", false),
    ];
    let mut yaml = String::from("all:\n  children:\n");
    let mut ini = String::new();
    for (group, default) in [("trues", "false"), ("falses", "true")] {
        yaml.push_str(&format!(
            "    {group}:\n      vars: {{ become: {default} }}\n      hosts:\n"
        ));
        ini.push_str(&format!("[{group}:vars]\nbecome={default}\n[{group}]\n"));
        for (index, (yaml_word, ini_word, expected)) in cases.iter().enumerate() {
            if *expected == (group == "trues") {
                yaml.push_str(&format!(
                    "        b{index:02}: {{ ansible_become: {yaml_word} }}\n"
                ));
                ini.push_str(&format!("b{index:02} ansible_become={ini_word}\n"));
            }
        }
    }
    let fixture = Fixture::new();
    for file in [
        fixture.write("booleans.yml", &yaml),
        fixture.write("booleans.ini", &ini),
    ] {
        let inventory = load_clean(std::slice::from_ref(&file));
        assert_eq!(inventory.host_count(), cases.len(), "{}", file.display());
        for (index, (yaml_word, ini_word, expected)) in cases.iter().enumerate() {
            let host = resolve(&inventory, &format!("b{index:02}"));
            assert_eq!(
                host.become_root,
                *expected,
                "{}: ansible_become {yaml_word} / {ini_word}",
                file.display()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// 2. Variable precedence
// ---------------------------------------------------------------------------

/// The eight places a group or host variable can be written for a host in
/// group `child` (a child of `parent`, a child of `all`), in the order
/// midfleet (and this brief) rank them.
const LAYERS: [&str; 8] = [
    "all: vars (inventory file)",
    "group_vars/all.yml",
    "parent: vars (inventory file)",
    "group_vars/parent.yml",
    "child: vars (inventory file)",
    "group_vars/child.yml",
    "host (inventory file)",
    "host_vars/mid-01.yml",
];

/// Ansible's own rank of those layers (`VARIABLE_PRECEDENCE`'s default:
/// all_inventory, groups_inventory, all_plugins_inventory,
/// groups_plugins_inventory, then host vars and host_vars/).
const ANSIBLE_RANK: [usize; 8] = [0, 3, 1, 4, 2, 5, 6, 7];

/// Writes the eight layers; `definitions[layer]` are the `name: value`
/// pairs of that layer.
fn write_layers(fixture: &Fixture, definitions: &[Vec<(String, String)>; 8]) -> PathBuf {
    let flow = |layer: usize| {
        let pairs: Vec<String> = definitions[layer]
            .iter()
            .map(|(name, value)| format!("{name}: {value}"))
            .collect();
        format!("{{ {} }}", pairs.join(", "))
    };
    let block = |layer: usize| {
        definitions[layer]
            .iter()
            .map(|(name, value)| format!("{name}: {value}\n"))
            .collect::<String>()
    };
    let inventory = format!(
        "all:\n  vars: {}\n  children:\n    parent:\n      vars: {}\n      children:\n        child:\n          vars: {}\n          hosts:\n            mid-01: {}\n",
        flow(0),
        flow(2),
        flow(4),
        flow(6)
    );
    fixture.write("group_vars/all.yml", &block(1));
    fixture.write("group_vars/parent.yml", &block(3));
    fixture.write("group_vars/child.yml", &block(5));
    fixture.write("host_vars/mid-01.yml", &block(7));
    fixture.write("inventory.yml", &inventory)
}

/// Every pair of layers defines a variable; the higher layer must win.
/// `rank` orders the layers; only pairs where `include` holds are checked.
fn check_layer_pairs(rank: [usize; 8], include: impl Fn(usize, usize) -> bool) {
    let mut definitions: [Vec<(String, String)>; 8] = Default::default();
    let mut expectations = Vec::new();
    for low in 0..8 {
        definitions[low].push((format!("single_{low}"), format!("L{low}")));
        expectations.push((format!("single_{low}"), format!("L{low}"), vec![low]));
        for high in low + 1..8 {
            if !include(low, high) {
                continue;
            }
            let name = format!("pair_{low}_{high}");
            definitions[low].push((name.clone(), format!("L{low}")));
            definitions[high].push((name.clone(), format!("L{high}")));
            let winner = if rank[high] > rank[low] { high } else { low };
            expectations.push((name, format!("L{winner}"), vec![low, high]));
        }
    }
    let fixture = Fixture::new();
    let path = write_layers(&fixture, &definitions);
    let inventory = load_clean(&[path]);
    let host = resolve(&inventory, "mid-01");
    let mut failures = Vec::new();
    for (name, expected, layers) in &expectations {
        let actual = variable(&host, name);
        if &actual != expected {
            let layers: Vec<&str> = layers.iter().map(|layer| LAYERS[*layer]).collect();
            failures.push(format!(
                "{name} set in {layers:?}: expected {expected}, got {actual}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The pairs of layers whose order midfleet's ranking and Ansible's agree
/// on: every pair but group_vars/all vs the inventory file's vars of a
/// group below `all`, and group_vars/parent vs the inventory file's vars
/// of its child.
fn ranks_agree(low: usize, high: usize) -> bool {
    ANSIBLE_RANK[high] > ANSIBLE_RANK[low]
}

#[test]
fn precedence_all_parent_child_host_and_files_over_inventory() {
    check_layer_pairs([0, 1, 2, 3, 4, 5, 6, 7], ranks_agree);
}

#[test]
fn precedence_group_vars_files_beat_inventory_file_group_vars_as_in_ansible() {
    // group_vars/all.yml beats `vars:` of `parent` and `child` written in
    // the inventory file, and group_vars/parent.yml beats `child`'s.
    check_layer_pairs(ANSIBLE_RANK, |low, high| !ranks_agree(low, high));
}

#[test]
fn precedence_between_groups_deeper_wins_then_later_name() {
    let fixture = Fixture::new();
    let path = fixture.write(
        "inventory.yml",
        r"all:
  vars: { who: all, depth: all, shared: all }
  children:
    # Defined before `alpha` but later by name: wins at the same depth.
    beta:
      vars: { who: beta, depth: beta, shared: beta }
      hosts:
        mid-01:
    alpha:
      vars: { who: alpha }
      hosts:
        mid-01:
      children:
        # Depth 2 beats beta (depth 1) although it sorts first.
        alpha_inner:
          vars: { depth: alpha_inner }
          hosts:
            mid-01:
        # Also a child of `all` below; the deepest path counts (2), so it
        # beats beta although it sorts before it.
        a_shared:
          vars: { shared: a_shared }
    a_shared:
      hosts:
        mid-01:
# A group at the root, beside `all`, is a child of `all`.
zeta:
  vars: { who: zeta }
  hosts:
    mid-02:
",
    );
    fixture.write("group_vars/alpha.yml", "who: alpha_file\n");
    let inventory = load_clean(&[path]);
    let host = resolve(&inventory, "mid-01");
    // group_vars/ files beat every inventory-file group variable, as in
    // Ansible's VARIABLE_PRECEDENCE: alpha's file wins over beta's vars.
    let cases = [
        ("who", "alpha_file"),
        ("depth", "alpha_inner"),
        ("shared", "a_shared"),
    ];
    for (name, expected) in cases {
        assert_eq!(variable(&host, name), expected, "{name}");
    }
    assert_eq!(
        host.groups,
        strings(&["a_shared", "alpha", "alpha_inner", "beta"])
    );
    let zeta = resolve(&inventory, "mid-02");
    assert_eq!(variable(&zeta, "who"), "zeta");
    assert_eq!(variable(&zeta, "depth"), "all");
    assert_eq!(zeta.groups, strings(&["zeta"]));
}

#[test]
fn precedence_a_host_written_twice_keeps_the_later_values() {
    let fixture = Fixture::new();
    let path = fixture.write(
        "inventory.yml",
        r"all:
  children:
    emea:
      hosts:
        mid-01: { ansible_port: 2201, first: emea }
    prod:
      hosts:
        mid-01: { ansible_port: 2202, second: prod }
",
    );
    let inventory = load_clean(&[path]);
    let host = resolve(&inventory, "mid-01");
    assert_eq!(host.port, Some(2202));
    assert_eq!(variable(&host, "first"), "emea");
    assert_eq!(variable(&host, "second"), "prod");
    assert_eq!(host.groups, strings(&["emea", "prod"]));
}

/// The scopes a native name and its Ansible alias can be set in, lowest
/// first.
const SCOPES: [&str; 6] = [
    "all (inventory)",
    "group_vars/all.yml",
    "group (inventory)",
    "group_vars/g.yml",
    "host (inventory)",
    "host_vars/h.yml",
];

#[test]
fn native_names_and_ansible_aliases_by_scope() {
    // (native, alias, native's value at scope i, alias's value at scope i,
    // how the resolved host shows it)
    type Value = fn(usize) -> String;
    type Show = fn(&Host) -> String;
    let settings: [(&str, &str, Value, Value, Show); 5] = [
        (
            "port",
            "ansible_port",
            |scope| format!("{}", 1000 + scope),
            |scope| format!("{}", 2000 + scope),
            |host| host.port.map(|port| port.to_string()).unwrap_or_default(),
        ),
        (
            "user",
            "ansible_user",
            |scope| format!("native{scope}"),
            |scope| format!("alias{scope}"),
            |host| host.user.clone().unwrap_or_default(),
        ),
        (
            "address",
            "ansible_host",
            |scope| format!("10.0.1.{scope}"),
            |scope| format!("10.0.2.{scope}"),
            |host| host.address.clone(),
        ),
        (
            "identity_file",
            "ansible_ssh_private_key_file",
            |scope| format!("/keys/native{scope}"),
            |scope| format!("/keys/alias{scope}"),
            |host| {
                host.identity_file
                    .as_ref()
                    .map(|path| path.display().to_string())
                    .unwrap_or_default()
            },
        ),
        (
            "become",
            "ansible_become",
            |_| "true".to_string(),
            |_| "false".to_string(),
            |host| host.become_root.to_string(),
        ),
    ];
    let mut checked = 0;
    for native_scope in 0..SCOPES.len() {
        for alias_scope in 0..SCOPES.len() {
            // group_vars/all.yml against the group's inventory vars is
            // ranked differently by Ansible (see the ignored precedence
            // test); left out here.
            let pair = (native_scope.min(alias_scope), native_scope.max(alias_scope));
            if pair == (1, 2) {
                continue;
            }
            let mut scopes: [String; 6] = Default::default();
            for (native, alias, native_value, alias_value, _) in &settings {
                scopes[native_scope]
                    .push_str(&format!("{native}: {}\n", native_value(native_scope)));
                scopes[alias_scope].push_str(&format!("{alias}: {}\n", alias_value(alias_scope)));
            }
            let indent = |text: &str, spaces: usize| -> String {
                text.lines()
                    .map(|line| format!("{}{line}\n", " ".repeat(spaces)))
                    .collect()
            };
            let fixture = Fixture::new();
            let inventory = format!(
                "all:\n  vars:\n    unused: x\n{}  children:\n    g:\n      vars:\n        unused: x\n{}      hosts:\n        h:\n          unused: x\n{}",
                indent(&scopes[0], 4),
                indent(&scopes[2], 8),
                indent(&scopes[4], 10),
            );
            let path = fixture.write("inventory.yml", &inventory);
            fixture.write("group_vars/all.yml", &format!("unused: x\n{}", scopes[1]));
            fixture.write("group_vars/g.yml", &format!("unused: x\n{}", scopes[3]));
            fixture.write("host_vars/h.yml", &format!("unused: x\n{}", scopes[5]));
            let inventory = load_clean(&[path]);
            let host = resolve(&inventory, "h");
            // In one scope the native name wins; otherwise the higher scope.
            let native_wins = native_scope >= alias_scope;
            for (native, alias, native_value, alias_value, show) in &settings {
                let expected = if native_wins {
                    native_value(native_scope)
                } else {
                    alias_value(alias_scope)
                };
                assert_eq!(
                    show(&host),
                    expected,
                    "`{native}` in {} and `{alias}` in {}",
                    SCOPES[native_scope],
                    SCOPES[alias_scope]
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, (36 - 2) * settings.len());
}

#[test]
fn a_proxy_jump_in_a_higher_scope_beats_jump_in_a_lower_one() {
    let fixture = Fixture::new();
    let path = fixture.write(
        "inventory.yml",
        r#"all:
  children:
    emea:
      vars:
        jump: ops@bastion-emea
      hosts:
        mid-emea-01:
        mid-emea-02:
          ansible_ssh_common_args: "-o ProxyJump=ops@bastion-special"
"#,
    );
    let inventory = load_clean(&[path]);
    assert_eq!(
        resolve(&inventory, "mid-emea-01").jump,
        vec![hop(Some("ops"), "bastion-emea", None)]
    );
    assert_eq!(
        resolve(&inventory, "mid-emea-02").jump,
        vec![hop(Some("ops"), "bastion-special", None)]
    );
}

// ---------------------------------------------------------------------------
// 3. The same fleet as INI and as YAML
// ---------------------------------------------------------------------------

const FLEET_YAML: &str = r#"all:
  vars:
    ansible_user: ops
    ansible_become: yes
  children:
    europe:
      children:
        emea:
          hosts:
            mid-emea-[01:03]:
          vars:
            mid_cluster: emea
    amer:
      hosts:
        mid-amer-01: { ansible_host: 10.30.0.11, ansible_port: 2222 }
        mid-amer-02: { ansible_host: 10.30.0.12, mid_name: "amer{{ inventory_hostname[-2:] }}" }
      vars:
        ansible_ssh_common_args: "-o ProxyJump=ops@bastion-amer"
        mid_service: systemd:mid
    lab:
      hosts:
        mid-lab-01:
          ansible_host: 192.0.2.10
          ansible_become: no
          ansible_ssh_private_key_file: ~/.ssh/lab_ed25519
          mid_home: /opt/snc_mid_server
"#;

const FLEET_INI: &str = r#"; The same fleet in Ansible's INI shape.
[all:vars]
ansible_user=ops
ansible_become=yes

[emea]
mid-emea-[01:03]

[emea:vars]
mid_cluster=emea

[europe:children]
emea

[amer]
mid-amer-01 ansible_host=10.30.0.11 ansible_port=2222
mid-amer-02 ansible_host=10.30.0.12   mid_name="amer{{ inventory_hostname[-2:] }}"  # a comment

[amer:vars]
ansible_ssh_common_args="-o ProxyJump=ops@bastion-amer"
mid_service=systemd:mid

[lab]
mid-lab-01 ansible_host=192.0.2.10 ansible_become=no ansible_ssh_private_key_file=~/.ssh/lab_ed25519 mid_home=/opt/snc_mid_server
"#;

/// `group_vars/` with a file, an extensionless file and a directory of
/// files; `host_vars/` with a file.
fn write_fleet_vars(fixture: &Fixture) {
    fixture.write("group_vars/emea.yml", "jump: ops@bastion-emea\n");
    fixture.write("group_vars/europe", "region: eu\n");
    fixture.write(
        "group_vars/all/10-mid.yml",
        "mid_home: /opt/servicenow/mid\nconnect_timeout: 15\n",
    );
    fixture.write("group_vars/all/20-override.yaml", "connect_timeout: 20\n");
    fixture.write("group_vars/all/notes.txt", "not: read\n");
    fixture.write("group_vars/all/.hidden.yml", "connect_timeout: 99\n");
    fixture.write("host_vars/mid-emea-02.yml", "ansible_port: 2202\n");
}

#[test]
fn the_same_fleet_in_ini_and_yaml_resolves_the_same() {
    let fixture = Fixture::new();
    write_fleet_vars(&fixture);
    let yaml_path = fixture.write("fleet.yml", FLEET_YAML);
    let ini_path = fixture.write("hosts", FLEET_INI);
    let yaml = load_clean(&[yaml_path]);
    let ini = load_clean(&[ini_path]);

    // Observed from `ansible -i fleet.yml all --list-hosts` and `-i hosts`
    // (ansible-core 2.19.14): amer and lab are one level down, emea two.
    let names = selected(&yaml, "all");
    assert_eq!(
        names,
        strings(&[
            "mid-amer-01",
            "mid-amer-02",
            "mid-lab-01",
            "mid-emea-01",
            "mid-emea-02",
            "mid-emea-03",
        ])
    );
    assert_eq!(selected(&ini, "all"), names);
    for pattern in ["europe", "emea", "amer", "lab", "ungrouped", "all:!europe"] {
        let yaml_selection = yaml.select(pattern, None).map(|selection| selection.hosts);
        let ini_selection = ini.select(pattern, None).map(|selection| selection.hosts);
        assert_eq!(
            format!("{yaml_selection:?}"),
            format!("{ini_selection:?}"),
            "{pattern}"
        );
    }
    for name in &names {
        let from_yaml = resolve(&yaml, name);
        let from_ini = resolve(&ini, name);
        assert_eq!(
            serde_json::to_value(&from_yaml).expect("a host serializes"),
            serde_json::to_value(&from_ini).expect("a host serializes"),
            "{name}"
        );
        assert_eq!(
            plain_variables(&from_yaml),
            plain_variables(&from_ini),
            "{name}: template variables"
        );
    }

    // And what they both resolve to, exactly.
    let emea = |name, port| Expected {
        name,
        address: name,
        port,
        user: Some("ops"),
        become_root: true,
        jump: vec![hop(Some("ops"), "bastion-emea", None)],
        connect_timeout: Some(20),
        mid_cluster: Some("emea"),
        groups: &["emea", "europe"],
        ..Expected::default()
    };
    let amer = |name, address, port| Expected {
        name,
        address,
        port,
        user: Some("ops"),
        become_root: true,
        jump: vec![hop(Some("ops"), "bastion-amer", None)],
        connect_timeout: Some(20),
        service: ServiceSpec::Systemd { unit: "mid".into() },
        groups: &["amer"],
        ..Expected::default()
    };
    let expected = [
        emea("mid-emea-01", None),
        emea("mid-emea-02", Some(2202)),
        emea("mid-emea-03", None),
        amer("mid-amer-01", "10.30.0.11", Some(2222)),
        amer("mid-amer-02", "10.30.0.12", None),
        Expected {
            name: "mid-lab-01",
            address: "192.0.2.10",
            user: Some("ops"),
            identity_file: Some("~/.ssh/lab_ed25519"),
            become_root: false,
            connect_timeout: Some(20),
            mid_home: "/opt/snc_mid_server",
            config: "/opt/snc_mid_server/agent/config.xml",
            groups: &["lab"],
            ..Expected::default()
        },
    ];
    for inventory in [&yaml, &ini] {
        for expected in &expected {
            assert_host(&resolve(inventory, expected.name), expected);
        }
        let host = resolve(inventory, "mid-emea-01");
        assert_eq!(variable(&host, "region"), "eu");
        let host = resolve(inventory, "mid-amer-02");
        assert_eq!(variable(&host, "mid_name"), "amer02");
    }
}

#[test]
fn ini_hosts_before_any_section_are_ungrouped() {
    let fixture = Fixture::new();
    let path = fixture.write(
        "inventory.ini",
        "mid-lab-01 ansible_host=192.0.2.10\n\n[emea]\nmid-emea-01\n",
    );
    let inventory = load_clean(&[path]);
    assert_eq!(selected(&inventory, "ungrouped"), strings(&["mid-lab-01"]));
    assert_eq!(selected(&inventory, "emea"), strings(&["mid-emea-01"]));
    let host = resolve(&inventory, "mid-lab-01");
    assert_eq!(host.address, "192.0.2.10");
    // Ansible's group_names: `ungrouped` for a host in no other group.
    assert_eq!(host.groups, strings(&["ungrouped"]));
}

#[test]
fn an_ini_inventory_without_sections_is_read_as_ini() {
    // Ansible reads it (its YAML plugin fails, the INI plugin takes it).
    let fixture = Fixture::new();
    let path = fixture.write(
        "hosts",
        "# the lab\nmid-lab-01 ansible_host=192.0.2.10\nmid-lab-02\n",
    );
    let inventory = load_clean(&[path]);
    assert_eq!(
        selected(&inventory, "all"),
        strings(&["mid-lab-01", "mid-lab-02"])
    );
    assert_eq!(resolve(&inventory, "mid-lab-01").address, "192.0.2.10");
}

#[test]
fn host_vars_files_for_hosts_named_by_fqdn() {
    let fixture = Fixture::new();
    let path = fixture.write(
        "inventory.yml",
        "all:\n  hosts:\n    mid-01.example.com:\n    mid-02.example.com:\n",
    );
    fixture.write("host_vars/mid-01.example.com.yml", "ansible_port: 2201\n");
    fixture.write(
        "host_vars/mid-02.example.com/main.yml",
        "ansible_port: 2202\n",
    );
    let inventory = load_clean(&[path]);
    assert_eq!(resolve(&inventory, "mid-01.example.com").port, Some(2201));
    assert_eq!(resolve(&inventory, "mid-02.example.com").port, Some(2202));
}

#[test]
fn extensionless_host_vars_file_for_a_host_named_by_fqdn_or_ip() {
    let fixture = Fixture::new();
    let path = fixture.write(
        "inventory.yml",
        "all:\n  hosts:\n    mid-01.example.com:\n    10.0.0.5:\n",
    );
    fixture.write("host_vars/mid-01.example.com", "ansible_port: 2201\n");
    fixture.write("host_vars/10.0.0.5", "ansible_port: 2205\n");
    let inventory = load_clean(&[path]);
    assert_eq!(resolve(&inventory, "mid-01.example.com").port, Some(2201));
    assert_eq!(resolve(&inventory, "10.0.0.5").port, Some(2205));
}

#[test]
fn group_vars_of_ungrouped_apply_to_ungrouped_hosts() {
    let fixture = Fixture::new();
    let path = fixture.write("inventory.yml", "all:\n  hosts:\n    mid-01:\n");
    fixture.write("group_vars/ungrouped.yml", "ansible_port: 2201\n");
    let inventory = load_clean(&[path]);
    assert_eq!(resolve(&inventory, "mid-01").port, Some(2201));
}

// ---------------------------------------------------------------------------
// 4. Host ranges
// ---------------------------------------------------------------------------

#[test]
fn host_ranges_in_yaml_keys_and_ini_lines() {
    let cases: [(&str, &[&str]); 7] = [
        ("mid-[01:03]", &["mid-01", "mid-02", "mid-03"]),
        ("mid-[001:003]", &["mid-001", "mid-002", "mid-003"]),
        ("mid-[8:11]", &["mid-8", "mid-9", "mid-10", "mid-11"]),
        ("mid-[09:11]", &["mid-09", "mid-10", "mid-11"]),
        (
            "db-[a:c].example.com",
            &["db-a.example.com", "db-b.example.com", "db-c.example.com"],
        ),
        ("web[0:4:2]", &["web0", "web2", "web4"]),
        ("r[1:2]-[a:b]", &["r1-a", "r1-b", "r2-a", "r2-b"]),
    ];
    for (pattern, expected) in cases {
        let fixture = Fixture::new();
        let yaml = fixture.write(
            "inventory.yml",
            &format!("all:\n  children:\n    fleet:\n      hosts:\n        {pattern}: {{ mid_cluster: c1 }}\n"),
        );
        let ini = fixture.write(
            "inventory.ini",
            &format!("[fleet]\n{pattern} mid_cluster=c1\n"),
        );
        for path in [yaml, ini] {
            let inventory = load_clean(std::slice::from_ref(&path));
            assert_eq!(
                selected(&inventory, "fleet"),
                strings(expected),
                "{pattern} in {}",
                path.display()
            );
            for name in expected {
                let host = resolve(&inventory, name);
                assert_eq!(host.mid_cluster.as_deref(), Some("c1"), "{name}");
                assert_eq!(host.address, *name);
                assert_eq!(host.groups, strings(&["fleet"]));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 5. Several sources; an inventory directory
// ---------------------------------------------------------------------------

#[test]
fn several_sources_union_hosts_and_later_vars_win() {
    let fixture = Fixture::new();
    let first = fixture.write(
        "first/inventory.yml",
        r"all:
  children:
    emea:
      vars: { mid_cluster: old, ansible_user: first_user }
      hosts:
        mid-emea-01: { ansible_host: 10.0.0.1 }
        mid-emea-02:
",
    );
    fixture.write(
        "first/group_vars/emea.yml",
        "from_files: first\nonly_first: yes\n",
    );
    let second = fixture.write(
        "second/hosts",
        r"[emea]
mid-emea-01 ansible_host=10.9.9.1
mid-emea-03

[emea:vars]
mid_cluster=new

[lab]
mid-lab-01
",
    );
    fixture.write("second/group_vars/emea.yml", "from_files: second\n");
    fixture.write("second/host_vars/mid-emea-01.yml", "ansible_port: 2201\n");

    // (sources, hosts in order, mid-emea-01's address, cluster, from_files)
    let cases = [
        (
            vec![first.clone(), second.clone()],
            vec!["mid-emea-01", "mid-emea-02", "mid-emea-03", "mid-lab-01"],
            "10.9.9.1",
            "new",
            "second",
        ),
        (
            vec![second.clone(), first.clone()],
            // Observed from `ansible -i second/hosts -i first/inventory.yml
            // all --list-hosts` (ansible-core 2.19.14): group emea's hosts
            // (01, 03, then 02 from the second source), then lab.
            vec!["mid-emea-01", "mid-emea-03", "mid-emea-02", "mid-lab-01"],
            "10.0.0.1",
            "old",
            "first",
        ),
    ];
    for (sources, hosts, address, cluster, from_files) in cases {
        let inventory = load_clean(&sources);
        assert_eq!(inventory.files, sources);
        assert_eq!(selected(&inventory, "all"), strings(&hosts), "{sources:?}");
        assert_eq!(
            selected(&inventory, "emea"),
            strings(
                &hosts
                    .iter()
                    .copied()
                    .filter(|name| name.starts_with("mid-emea"))
                    .collect::<Vec<_>>()
            )
        );
        let host = resolve(&inventory, "mid-emea-01");
        assert_eq!(host.address, address, "{sources:?}");
        assert_eq!(host.port, Some(2201));
        assert_eq!(host.user.as_deref(), Some("first_user"));
        assert_eq!(host.mid_cluster.as_deref(), Some(cluster), "{sources:?}");
        assert_eq!(variable(&host, "from_files"), from_files, "{sources:?}");
        assert_eq!(variable(&host, "only_first"), "yes");
        assert_eq!(resolve(&inventory, "mid-lab-01").groups, strings(&["lab"]));
    }
}

#[test]
fn an_inventory_directory_reads_its_files_in_name_order() {
    let fixture = Fixture::new();
    fixture.write(
        "inventory/20-amer",
        "[amer]\nmid-amer-01\n[emea:vars]\nmid_cluster=from_20\n",
    );
    fixture.write(
        "inventory/10-emea.yml",
        "all:\n  children:\n    emea:\n      vars: { mid_cluster: from_10 }\n      hosts:\n        mid-emea-01:\n",
    );
    fixture.write("inventory/30-lab.yaml", "lab:\n  hosts:\n    mid-lab-01:\n");
    // Not inventory files: skipped, or they would not parse.
    fixture.write("inventory/README.md", "# Not: [an inventory\n");
    fixture.write("inventory/notes.txt", "[broken\n");
    fixture.write("inventory/.hidden.yml", "{{ not yaml\n");
    fixture.write("inventory/10-emea.yml~", "{{ not yaml\n");
    fixture.write("inventory/old.retry", "mid-zombie\n");
    fixture.write("inventory/group_vars/all.yml", "ansible_user: ops\n");
    fixture.write(
        "inventory/host_vars/mid-amer-01.yml",
        "ansible_port: 2201\n",
    );
    let directory = fixture.path("inventory");
    let inventory = load_clean(std::slice::from_ref(&directory));
    assert_eq!(
        inventory.files,
        vec![
            directory.join("10-emea.yml"),
            directory.join("20-amer"),
            directory.join("30-lab.yaml"),
        ]
    );
    assert_eq!(
        selected(&inventory, "all"),
        strings(&["mid-emea-01", "mid-amer-01", "mid-lab-01"])
    );
    let emea = resolve(&inventory, "mid-emea-01");
    assert_eq!(emea.mid_cluster.as_deref(), Some("from_20"));
    assert_eq!(emea.user.as_deref(), Some("ops"));
    let amer = resolve(&inventory, "mid-amer-01");
    assert_eq!(amer.port, Some(2201));
    assert_eq!(amer.user.as_deref(), Some("ops"));
    assert_eq!(resolve(&inventory, "mid-lab-01").groups, strings(&["lab"]));
}

// ---------------------------------------------------------------------------
// 6. Host patterns
// ---------------------------------------------------------------------------

const PATTERN_FLEET: &str = r"all:
  children:
    emea:
      hosts:
        mid-emea-01:
        mid-emea-02:
        mid-emea-03:
    amer:
      hosts:
        mid-amer-01:
        mid-amer-02:
    prod:
      hosts:
        mid-amer-01:
        mid-emea-02:
        mid-emea-01:
    lab:
      hosts:
        mid-lab-01:
";

fn pattern_fleet(fixture: &Fixture) -> Inventory {
    load_clean(&[fixture.write("inventory.yml", PATTERN_FLEET)])
}

/// Every pattern form against the same fleet, with the hosts and their
/// order observed from `ansible -i inventory.yml PATTERN --list-hosts`
/// (and `-l` for --limit) with ansible-core 2.19.14.
#[test]
fn patterns_select_what_ansible_selects_in_its_order() {
    let fixture = Fixture::new();
    let inventory = pattern_fleet(&fixture);
    let every = [
        "mid-emea-01",
        "mid-emea-02",
        "mid-emea-03",
        "mid-amer-01",
        "mid-amer-02",
        "mid-lab-01",
    ];
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("all", every.to_vec()),
        ("*", every.to_vec()),
        ("emea", vec!["mid-emea-01", "mid-emea-02", "mid-emea-03"]),
        // A group's hosts in the order it lists them.
        ("prod", vec!["mid-amer-01", "mid-emea-02", "mid-emea-01"]),
        ("mid-lab-01", vec!["mid-lab-01"]),
        (
            "mid-emea-*",
            vec!["mid-emea-01", "mid-emea-02", "mid-emea-03"],
        ),
        ("mid-*-01", vec!["mid-emea-01", "mid-amer-01", "mid-lab-01"]),
        ("mid-?mer-02", vec!["mid-amer-02"]),
        ("em*", vec!["mid-emea-01", "mid-emea-02", "mid-emea-03"]),
        ("am*", vec!["mid-amer-01", "mid-amer-02"]),
        // A glob matches group names too, `all` included.
        ("a*", every.to_vec()),
        (
            "amer:emea",
            vec![
                "mid-amer-01",
                "mid-amer-02",
                "mid-emea-01",
                "mid-emea-02",
                "mid-emea-03",
            ],
        ),
        ("amer,lab", vec!["mid-amer-01", "mid-amer-02", "mid-lab-01"]),
        (
            " amer , lab ",
            vec!["mid-amer-01", "mid-amer-02", "mid-lab-01"],
        ),
        ("mid-lab-01:mid-emea-03", vec!["mid-lab-01", "mid-emea-03"]),
        ("emea:&prod", vec!["mid-emea-01", "mid-emea-02"]),
        ("emea,&prod", vec!["mid-emea-01", "mid-emea-02"]),
        ("emea:!prod", vec!["mid-emea-03"]),
        ("emea,!prod", vec!["mid-emea-03"]),
        ("!prod", vec!["mid-emea-03", "mid-amer-02", "mid-lab-01"]),
        ("&prod", vec!["mid-emea-01", "mid-emea-02", "mid-amer-01"]),
        ("prod:!mid-emea-*", vec!["mid-amer-01"]),
        ("all:!emea:!amer", vec!["mid-lab-01"]),
        (
            "amer:emea:&prod:!mid-emea-01",
            vec!["mid-amer-01", "mid-emea-02"],
        ),
        ("!prod:emea", vec!["mid-emea-03"]),
        // Subscripts count in the group's order; a range includes its end.
        ("prod[0]", vec!["mid-amer-01"]),
        ("prod[-1]", vec!["mid-emea-01"]),
        ("prod[0:1]", vec!["mid-amer-01", "mid-emea-02"]),
        ("prod[1:]", vec!["mid-emea-02", "mid-emea-01"]),
        ("all[2:3]", vec!["mid-emea-03", "mid-amer-01"]),
        (
            "prod:lab[0]",
            vec!["mid-amer-01", "mid-emea-02", "mid-emea-01", "mid-lab-01"],
        ),
        // Regexes match from the start of the name (Python's re.match).
        (
            "~mid-(emea|lab)-0[13]",
            vec!["mid-emea-01", "mid-emea-03", "mid-lab-01"],
        ),
        ("~.*-02", vec!["mid-emea-02", "mid-amer-02"]),
        ("~(?i)MID-LAB", vec!["mid-lab-01"]),
    ];
    for (pattern, expected) in cases {
        assert_eq!(
            selected(&inventory, pattern),
            strings(&expected),
            "pattern `{pattern}`"
        );
    }
    // `~MID` (case-sensitive) matches nothing: a warning, as in Ansible.
    let selection = inventory.select("~MID", None).expect("a regex");
    assert!(selection.hosts.is_empty());
    assert_eq!(
        selection.warnings[0].message,
        "pattern `~MID` matches no group or host"
    );
    // --limit files: one pattern per line, `!` lines applied after every
    // plain line wherever they are; `#` lines skipped.
    fixture.write(
        "limit.txt",
        "# EMEA but not prod\nemea\n\n   mid-lab-01   \n!prod\n",
    );
    let limit = fixture.path("limit.txt").display().to_string();
    let limits: Vec<(String, Vec<&str>)> = vec![
        (format!("@{limit}"), vec!["mid-emea-03", "mid-lab-01"]),
        (
            format!("@{limit},amer"),
            vec!["mid-emea-03", "mid-amer-02", "mid-lab-01"],
        ),
        (format!("@{limit}:!mid-lab-01"), vec!["mid-emea-03"]),
    ];
    for (limit, expected) in limits {
        let limited = inventory
            .select_limit(&limit, None)
            .unwrap_or_else(|errors| panic!("{limit}: {errors:#?}"));
        // `ansible all -l LIMIT` keeps the order of `all`.
        let hosts: Vec<String> = selected(&inventory, "all")
            .into_iter()
            .filter(|host| limited.hosts.contains(host))
            .collect();
        assert_eq!(hosts, strings(&expected), "--limit {limit}");
    }
}

#[test]
fn unknown_names_in_patterns_are_errors_with_a_suggestion() {
    let fixture = Fixture::new();
    let inventory = pattern_fleet(&fixture);
    let origin = Origin::new(
        &fixture.path("playbook.yml"),
        Location { line: 2, column: 8 },
    );
    // (pattern, the unknown name, the hint)
    let cases = [
        ("emae", "emae", "did you mean `emea`?"),
        ("mid-emea-1", "mid-emea-1", "did you mean `mid-emea-01`?"),
        ("emea:!prdo", "prdo", "did you mean `prod`?"),
        ("emea:&labb", "labb", "did you mean `lab`?"),
        (
            "zzzz",
            "zzzz",
            "`midfleet hosts -i INVENTORY` lists the hosts; groups are the inventory's keys",
        ),
    ];
    for (pattern, name, hint) in cases {
        let errors = inventory.select(pattern, Some(&origin)).expect_err(pattern);
        assert_eq!(errors.len(), 1, "{pattern}: {errors:#?}");
        let error = &errors[0];
        assert_eq!(error.severity, Severity::Error, "{pattern}");
        assert_eq!(
            error.message,
            format!("no group or host is named `{name}`"),
            "{pattern}"
        );
        assert_eq!(error.hint.as_deref(), Some(hint), "{pattern}");
        assert_eq!(error.origin.as_ref(), Some(&origin), "{pattern}");
    }
    // Every unknown name is reported, not only the first.
    let errors = inventory.select("emae:amre", None).expect_err("two typos");
    let messages: Vec<&str> = errors.iter().map(|error| error.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "no group or host is named `emae`",
            "no group or host is named `amre`"
        ]
    );
}

#[test]
fn malformed_patterns_are_errors() {
    let fixture = Fixture::new();
    let inventory = pattern_fleet(&fixture);
    for (pattern, message) in [
        ("", "an empty host pattern"),
        ("   ", "an empty host pattern"),
        ("emea:!", "`!` in pattern `emea:!` names nothing"),
        ("emea,&", "`&` in pattern `emea,&` names nothing"),
        (":::", "pattern `:::` names nothing"),
        // `::` is one address (IPv6), not two empty patterns.
        ("::", "no group or host is named `::`"),
        (
            "~mid-(",
            "`~mid-(` is not a regular expression midfleet reads: unclosed group",
        ),
        (
            "~mid(?!-lab)",
            "`~mid(?!-lab)` is not a regular expression midfleet reads: \
             look-around, including look-ahead and look-behind, is not supported",
        ),
        // Ansible: "No hosts matched the subscripted pattern 'emea[3]'".
        ("emea[3]", "`emea[3]` selects no host: `emea` has 3 hosts"),
        ("emea[-4]", "`emea[-4]` selects no host: `emea` has 3 hosts"),
        (
            "@limit.txt",
            "`@limit.txt`: a file of patterns is read only by --limit",
        ),
    ] {
        let errors = inventory.select(pattern, None).expect_err(pattern);
        assert_eq!(errors.len(), 1, "{pattern:?}");
        assert_eq!(errors[0].message, message, "{pattern:?}");
    }
    // `mid-emea-0[13]` is index 13 of `mid-emea-0`, not a glob (Ansible
    // selects nothing); the hint says how to match the names.
    let errors = inventory
        .select("mid-emea-0[13]", None)
        .expect_err("a subscript");
    assert_eq!(errors[0].message, "no group or host is named `mid-emea-0`");
    assert_eq!(
        errors[0].hint.as_deref(),
        Some(
            "`mid-emea-0[13]` is a subscript of `mid-emea-0`, as in Ansible (`g[1]` is the \
             second host of g); to match names by their characters, write a regex: \
             `~mid-emea-0[...]`"
        )
    );
}

/// Nested groups, an ungrouped host and a host in two groups: the hosts
/// and their order observed from `ansible -i hosts PATTERN --list-hosts`
/// with ansible-core 2.19.14 for each pattern.
#[test]
fn nested_groups_select_in_ansibles_order() {
    let text = "lone1\n[web]\nweb3\nweb1\nweb2\n[db]\ndb2\ndb1\n[emea:children]\nweb\ndb\n\
                [emea]\ngw-emea\n[amer]\namer1\namer2\n[prod:children]\nemea\n\
                [canary]\nweb2\namer2\n[mongo]\nmongo1\nmongo2\n";
    let (inventory, diagnostics) = Inventory::from_text(Path::new("hosts"), text);
    assert!(!diagnostics.has_errors(), "{diagnostics:#?}");
    let all = "lone1 amer1 amer2 web2 mongo1 mongo2 gw-emea web3 web1 db2 db1";
    let cases = [
        ("all", all),
        ("*", all),
        ("emea", "gw-emea web3 web1 web2 db2 db1"),
        ("prod", "gw-emea web3 web1 web2 db2 db1"),
        ("web[0]", "web3"),
        ("web[-1]", "web2"),
        ("web[-3]", "web3"),
        ("web[0:1]", "web3 web1"),
        ("web[1:]", "web1 web2"),
        // Not a subscript: a glob whose class is `:` or `2`.
        ("web[:2]", "web2"),
        ("emea[0:2]", "gw-emea web3 web1"),
        ("emea[2:100]", "web1 web2 db2 db1"),
        // A zero end reads as no end: `[1:0]` is `[1]`.
        ("web[1:0]", "web1"),
        ("mongo[1]", "mongo2"),
        ("mongo[1:2]", "mongo2"),
        ("~web[12]", "web1 web2"),
        ("~.*1$", "lone1 web1 db1 amer1 mongo1"),
        ("*1", "lone1 web1 db1 amer1 mongo1"),
        ("w*[0]", "web3"),
        ("e?ea", "gw-emea web3 web1 web2 db2 db1"),
        ("[!w]*", all),
        // `^` does not negate in Python's fnmatch.
        ("[^w]*", "web3 web1 web2"),
        ("emea:!web", "gw-emea db2 db1"),
        ("!web:emea", "gw-emea db2 db1"),
        ("emea:&canary", "web2"),
        ("&canary", "amer2 web2"),
        (
            "!canary",
            "lone1 amer1 mongo1 mongo2 gw-emea web3 web1 db2 db1",
        ),
        ("canary:web", "web2 amer2 web3 web1"),
        ("web,db", "web3 web1 web2 db2 db1"),
        ("web:db[0]", "web3 web1 web2 db2"),
        // Blanks separate like `:` when there is no `,`.
        ("web db", "web3 web1 web2 db2 db1"),
        ("ungrouped", "lone1"),
        ("db1:web1", "db1 web1"),
        ("db1,web1,db1", "db1 web1"),
        ("emea,lone1", "gw-emea web3 web1 web2 db2 db1 lone1"),
        ("amer,!amer2,&canary", ""),
    ];
    for (pattern, expected) in cases {
        let expected: Vec<&str> = expected.split_whitespace().collect();
        assert_eq!(
            selected(&inventory, pattern),
            strings(&expected),
            "pattern `{pattern}`"
        );
    }
    // `ansible -i hosts emea -l canary`: the pattern's order, narrowed.
    let limited = inventory.select_limit("canary", None).expect("a limit");
    let hosts: Vec<String> = selected(&inventory, "all")
        .into_iter()
        .filter(|host| limited.hosts.contains(host))
        .collect();
    assert_eq!(hosts, strings(&["amer2", "web2"]));
}

/// IPv6 host names (made legal elsewhere; added directly here): a pattern
/// that is one address stays whole, as Ansible's split_host_pattern keeps
/// it; with `,` they combine with other parts.
#[test]
fn ipv6_host_names_are_not_cut_by_patterns() {
    let mut inventory = Inventory::default();
    inventory.group_mut(ALL, None);
    let origin = Origin::file(Path::new("hosts"));
    for host in ["fe80::1", "2001:db8::2"] {
        inventory.add_host("v6", host, Vars::default(), origin.clone());
    }
    inventory.add_host("web", "web1", Vars::default(), origin);
    let mut diagnostics = Diagnostics::new();
    inventory.finish(&mut diagnostics);
    let cases = [
        ("fe80::1", vec!["fe80::1"]),
        ("2001:db8::2,web1", vec!["2001:db8::2", "web1"]),
        ("v6,!fe80::1", vec!["2001:db8::2"]),
        ("v6[-1]", vec!["2001:db8::2"]),
        ("~2001:", vec!["2001:db8::2"]),
        ("web:v6", vec!["web1", "fe80::1", "2001:db8::2"]),
    ];
    for (pattern, expected) in cases {
        assert_eq!(
            selected(&inventory, pattern),
            strings(&expected),
            "{pattern}"
        );
    }
}

#[test]
fn empty_ranges_and_old_dash_subscripts_warn() {
    let fixture = Fixture::new();
    let inventory = pattern_fleet(&fixture);
    // Observed with ansible-core 2.19.14: `emea[5:9]` selects nothing
    // (no error); `emea[0-1]` warns and reads as `emea[0:1]`.
    let selection = inventory.select("emea[5:9]", None).expect("a range");
    assert!(selection.hosts.is_empty());
    assert_eq!(selection.warnings[0].message, "`emea[5:9]` selects no host");
    let selection = inventory.select("emea[0-1]", None).expect("a dash range");
    assert_eq!(selection.hosts, strings(&["mid-emea-01", "mid-emea-02"]));
    assert_eq!(
        selection.warnings[0].message,
        "`emea[0-1]`: Ansible has removed `[x-y]` subscripts (it warns, and reads them as `[x:y]`)"
    );
}

#[test]
fn a_glob_matching_nothing_is_a_warning_only() {
    let fixture = Fixture::new();
    let inventory = pattern_fleet(&fixture);
    let cases = [
        ("mid-apac-*", vec![]),
        (
            "emea:!mid-apac-*",
            vec!["mid-emea-01", "mid-emea-02", "mid-emea-03"],
        ),
        ("lab:mid-apac-0?", vec!["mid-lab-01"]),
    ];
    for (pattern, expected) in cases {
        let selection = inventory
            .select(pattern, None)
            .unwrap_or_else(|errors| panic!("{pattern}: {errors:#?}"));
        assert_eq!(selection.hosts, strings(&expected), "{pattern}");
        assert_eq!(selection.warnings.len(), 1, "{pattern}");
        let warning = &selection.warnings[0];
        assert_eq!(warning.severity, Severity::Warning);
        let glob = pattern.rsplit([':', '!']).next().unwrap_or_default();
        assert_eq!(
            warning.message,
            format!("pattern `{glob}` matches no group or host"),
            "{pattern}"
        );
    }
}

#[test]
fn pattern_files_report_the_line_of_an_unknown_name() {
    let fixture = Fixture::new();
    let inventory = pattern_fleet(&fixture);
    let file = fixture.write("limit.txt", "emea\n# a comment\n\nprdo\nemea:lab\n");
    let errors = inventory
        .select_limit(&format!("@{}", file.display()), None)
        .expect_err("an unknown name in the file");
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(errors[0].message, "no group or host is named `prdo`");
    assert_eq!(errors[0].hint.as_deref(), Some("did you mean `prod`?"));
    let origin = errors[0].origin.as_ref().expect("an origin");
    assert_eq!(origin.file, file);
    assert_eq!(location(&errors[0]), Some((4, 1)));
    // Each line is one pattern, as Ansible reads it (it warns "Could not
    // match supplied host pattern, ignoring: emea:lab").
    assert_eq!(errors[1].message, "no group or host is named `emea:lab`");
    assert_eq!(location(&errors[1]), Some((5, 1)));
    assert!(
        errors[1]
            .hint
            .as_deref()
            .is_some_and(|hint| hint.contains("one pattern per line")),
        "{errors:#?}"
    );

    let missing = fixture.path("missing.txt");
    let errors = inventory
        .select_limit(&format!("@{}", missing.display()), None)
        .expect_err("a missing file");
    assert!(
        errors[0].message.starts_with("cannot read pattern file"),
        "{errors:#?}"
    );
}

// ---------------------------------------------------------------------------
// 7. Errors, with file, line and column
// ---------------------------------------------------------------------------

/// One problem expected from loading: which file (relative to the
/// fixture), where, its message and hint.
struct Problem {
    file: &'static str,
    at: Option<(usize, usize)>,
    severity: Severity,
    message: &'static str,
    hint: Option<&'static str>,
}

fn error(
    file: &'static str,
    at: Option<(usize, usize)>,
    message: &'static str,
    hint: Option<&'static str>,
) -> Problem {
    Problem {
        file,
        at,
        severity: Severity::Error,
        message,
        hint,
    }
}

/// Writes `files`, loads the first one and compares every diagnostic.
fn check_problems(case: &str, files: &[(&str, &str)], expected: &[Problem]) {
    let fixture = Fixture::new();
    for (path, text) in files {
        fixture.write(path, text);
    }
    let (_, diagnostics) = load(&[fixture.path(files[0].0)]);
    let diagnostics = diagnostics.into_vec();
    assert_eq!(
        diagnostics.len(),
        expected.len(),
        "{case}: {diagnostics:#?}"
    );
    for (diagnostic, expected) in diagnostics.iter().zip(expected) {
        let origin = diagnostic
            .origin
            .as_ref()
            .unwrap_or_else(|| panic!("{case}: no origin: {diagnostic:#?}"));
        assert_eq!(origin.file, fixture.path(expected.file), "{case}");
        assert_eq!(location(diagnostic), expected.at, "{case}: {diagnostic:#?}");
        assert_eq!(diagnostic.severity, expected.severity, "{case}");
        assert_eq!(diagnostic.message, expected.message, "{case}");
        assert_eq!(diagnostic.hint.as_deref(), expected.hint, "{case}");
        assert!(diagnostic.hosts.is_empty(), "{case}: {diagnostic:#?}");
    }
}

/// A case of problems: its name, the files to write (the first one is
/// loaded), and what loading must report.
type ProblemCase = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    Vec<Problem>,
);

/// `ansible-vault encrypt` (password `correct horse`) of
/// `mid_password: from-file\nother: 5\n`.
use crate::vault::tests::FILE_V11 as VAULT_FILE;

const YAML_INDENT_HINT: Option<&str> = Some("check the indentation and the `:` after each key");

#[test]
fn yaml_errors_name_file_line_and_column() {
    let bad_port = "`ansible_port` must be a number from 1 to 65535, not `ssh`";
    let bad_become = "`ansible_become` must be a boolean (yes/no, true/false, on/off), not `maybe`";
    let untagged = "`mid_password` looks like an Ansible Vault text without the `!vault` tag; as in Ansible, it is used as written, not decrypted";
    let untagged_hint = Some("write `mid_password: !vault |` before the vaulted text");
    let vault_file = "the vaulted variables file is not read, its variables are unavailable: it is encrypted with Ansible Vault and no vault password was given";
    let vault_hint = Some("give the vault password with --vault-password-file FILE, --vault-id [LABEL@]SOURCE or ANSIBLE_VAULT_PASSWORD_FILE");
    let cases: Vec<ProblemCase> = vec![
        (
            "YAML syntax: a second `:` on a line",
            vec![("inventory.yml", "all:\n  vars:\n    jump: ops@bastion: 22\n")],
            vec![error(
                "inventory.yml",
                Some((3, 22)),
                "YAML syntax: mapping values are not allowed in this context",
                YAML_INDENT_HINT,
            )],
        ),
        (
            "YAML syntax: bad indentation",
            vec![("inventory.yml", "all:\n  vars:\n    a: b\n   c: d\n")],
            vec![error(
                "inventory.yml",
                Some((4, 4)),
                "YAML syntax: while parsing a block mapping, did not find expected key",
                YAML_INDENT_HINT,
            )],
        ),
        (
            "YAML syntax: a duplicate host",
            vec![(
                "inventory.yml",
                "all:\n  hosts:\n    mid-01:\n    mid-02:\n    mid-01:\n",
            )],
            vec![error(
                "inventory.yml",
                Some((5, 5)),
                "YAML syntax: duplicate key `mid-01` (first on line 3)",
                YAML_INDENT_HINT,
            )],
        ),
        (
            "ansible_port: ssh",
            vec![(
                "inventory.yml",
                "all:\n  hosts:\n    mid-01:\n      ansible_port: ssh\n",
            )],
            vec![error("inventory.yml", Some((4, 21)), bad_port, None)],
        ),
        (
            "ansible_become: maybe",
            vec![(
                "inventory.yml",
                "all:\n  children:\n    emea:\n      vars:\n        ansible_become: maybe\n      hosts:\n        mid-01:\n",
            )],
            vec![error("inventory.yml", Some((5, 25)), bad_become, None)],
        ),
        (
            "every problem of a file is reported, in order",
            vec![(
                "inventory.yml",
                "all:\n  hosts:\n    mid-01: { ansible_port: ssh }\n    mid-02: { ansible_become: maybe }\n",
            )],
            vec![
                error("inventory.yml", Some((3, 29)), bad_port, None),
                error("inventory.yml", Some((4, 31)), bad_become, None),
            ],
        ),
        (
            "a !vault tagged value nobody uses: nothing to say",
            vec![(
                "inventory.yml",
                "all:\n  vars:\n    mid_password: !vault |\n      $ANSIBLE_VAULT;1.1;AES256\n      6231336539666234\n",
            )],
            vec![],
        ),
        (
            "a !vault value inside a list",
            vec![(
                "inventory.yml",
                "all:\n  vars:\n    passwords:\n      - !vault |\n        $ANSIBLE_VAULT;1.1;AES256\n        6231336539666234\n",
            )],
            vec![error(
                "inventory.yml",
                Some((4, 7)),
                "`passwords` holds a `!vault` value inside a list or mapping, which midfleet does not decrypt",
                Some("make the variable itself vaulted (`{name}: !vault |`), or put it in a vaulted variables file"),
            )],
        ),
        (
            "a vault text pasted without its tag, in group_vars",
            vec![
                ("inventory.yml", "all:\n  hosts:\n    mid-01:\n"),
                (
                    "group_vars/all.yml",
                    "mid_password: |\n  $ANSIBLE_VAULT;1.1;AES256\n  6231336539666234\n",
                ),
            ],
            // A block scalar starts at its first line of text.
            vec![Problem {
                severity: Severity::Warning,
                ..error("group_vars/all.yml", Some((2, 3)), untagged, untagged_hint)
            }],
        ),
        (
            "a group_vars file encrypted whole",
            vec![
                (
                    "inventory.yml",
                    "all:\n  children:\n    emea:\n      hosts:\n        mid-01:\n",
                ),
                ("group_vars/emea.yml", VAULT_FILE),
            ],
            vec![Problem {
                severity: Severity::Warning,
                ..error("group_vars/emea.yml", None, vault_file, vault_hint)
            }],
        ),
        (
            "a file encrypted whole in a group_vars directory",
            vec![
                ("inventory.yml", "all:\n  hosts:\n    mid-01:\n"),
                ("group_vars/all/vault.yml", VAULT_FILE),
                ("group_vars/all/vars.yml", "ansible_port: 2201\n"),
            ],
            vec![Problem {
                severity: Severity::Warning,
                ..error("group_vars/all/vault.yml", None, vault_file, vault_hint)
            }],
        ),
        (
            "an inventory encrypted whole",
            vec![("inventory.yml", VAULT_FILE)],
            vec![error(
                "inventory.yml",
                None,
                "cannot decrypt the vaulted inventory file: it is encrypted with Ansible Vault and no vault password was given",
                vault_hint,
            )],
        ),
        (
            "`host:` instead of `hosts:`",
            vec![(
                "inventory.yml",
                "all:\n  children:\n    emea:\n      host:\n        mid-01:\n",
            )],
            vec![error(
                "inventory.yml",
                Some((4, 7)),
                "group `emea` has an unknown key `host`",
                Some("did you mean `hosts`?"),
            )],
        ),
        (
            "`var:` instead of `vars:`",
            vec![("inventory.yml", "all:\n  var:\n    user: ops\n")],
            vec![error(
                "inventory.yml",
                Some((2, 3)),
                "group `all` has an unknown key `var`",
                Some("did you mean `vars`?"),
            )],
        ),
        (
            "a group key nothing like one",
            vec![(
                "inventory.yml",
                "all:\n  children:\n    emea:\n      members:\n        mid-01:\n",
            )],
            vec![error(
                "inventory.yml",
                Some((4, 7)),
                "group `emea` has an unknown key `members`",
                Some("a group holds `hosts`, `vars` and `children`; put a group under `children:`"),
            )],
        ),
        (
            "hosts given as a list",
            vec![(
                "inventory.yml",
                "all:\n  children:\n    emea:\n      hosts:\n        - mid-01\n        - mid-02\n",
            )],
            vec![error(
                "inventory.yml",
                Some((5, 9)),
                "`hosts` of group `emea` must be a mapping, not a list",
                Some("hosts is a mapping: write `hosts: { mid-01: , mid-02: }` or one `name:` per line, not a list"),
            )],
        ),
        (
            "host vars given as a list",
            vec![("inventory.yml", "all:\n  hosts:\n    mid-01: [a, b]\n")],
            vec![error(
                "inventory.yml",
                Some((3, 13)),
                "host `mid-01` must be a mapping of variables, not a list",
                None,
            )],
        ),
        (
            "a group cycle",
            vec![(
                "inventory.yml",
                "all:\n  children:\n    a:\n      children:\n        b:\n          children:\n            a:\n",
            )],
            vec![error(
                "inventory.yml",
                Some((3, 5)),
                "groups are their own ancestors: a → b → a",
                Some("a group cannot be a child of one of its children"),
            )],
        ),
        (
            "a host name starting with `-`",
            vec![("inventory.yml", "all:\n  hosts:\n    -mid-01:\n    mid-02:\n")],
            vec![error(
                "inventory.yml",
                Some((3, 5)),
                "host name `-mid-01` starts with `-`",
                None,
            )],
        ),
        (
            "a host name with a pattern operator",
            vec![("inventory.yml", "all:\n  hosts:\n    mid&01:\n")],
            vec![error(
                "inventory.yml",
                Some((3, 5)),
                "host name `mid&01` holds `&`",
                None,
            )],
        ),
        (
            "a range that runs backwards",
            vec![("inventory.yml", "all:\n  hosts:\n    mid-[03:01]:\n")],
            vec![error(
                "inventory.yml",
                Some((3, 5)),
                "`mid-[03:01]`: the range starts after it ends (03 > 01)",
                None,
            )],
        ),
        (
            "a variable name that is not one",
            vec![("inventory.yml", "all:\n  vars:\n    mid-name: x\n")],
            vec![error(
                "inventory.yml",
                Some((3, 15)),
                "`mid-name` is not a valid variable name",
                Some("variable names are letters, digits and `_`, not starting with a digit"),
            )],
        ),
        (
            "an inventory that is a list",
            vec![("inventory.yml", "- mid-01\n- mid-02\n")],
            vec![error(
                "inventory.yml",
                Some((1, 1)),
                "an inventory is a mapping of groups (`all:` …), not a list",
                None,
            )],
        ),
        (
            "a YAML syntax error in group_vars",
            vec![
                ("inventory.yml", "all:\n  hosts:\n    mid-01:\n"),
                ("group_vars/all.yml", "user: ops\n  become: yes\n"),
            ],
            vec![error(
                "group_vars/all.yml",
                Some((2, 9)),
                "YAML syntax: mapping values are not allowed in this context",
                Some("check the indentation and the `:` after each key"),
            )],
        ),
        (
            "group_vars for a group the inventory lacks",
            vec![
                (
                    "inventory.yml",
                    "all:\n  children:\n    emea:\n      hosts:\n        mid-01:\n",
                ),
                ("group_vars/emae.yml", "user: ops\n"),
            ],
            vec![Problem {
                file: "group_vars/emae.yml",
                at: None,
                severity: Severity::Warning,
                message: "no group `emae` in the inventory; these variables are not used",
                hint: Some("did you mean `emea`?"),
            }],
        ),
        (
            "an empty inventory",
            vec![("inventory.yml", "# nothing yet\n")],
            vec![Problem {
                file: "inventory.yml",
                at: None,
                severity: Severity::Warning,
                message: "the inventory file is empty",
                hint: None,
            }],
        ),
    ];
    for (case, files, expected) in &cases {
        check_problems(case, files, expected);
    }
}

#[test]
fn ini_errors_name_file_line_and_column() {
    let cases: Vec<(&str, &str, Vec<Problem>)> = vec![
        (
            "host ansible_port=0",
            "[emea]\nmid-01 ansible_port=0\n",
            vec![error(
                "hosts",
                Some((2, 21)),
                "`ansible_port` must be a number from 1 to 65535, not `0`",
                None,
            )],
        ),
        (
            "an indented host line",
            "[emea]\n  mid-01 ansible_host=10.0.0.1 ansible_port=70000\n",
            vec![error(
                "hosts",
                Some((2, 45)),
                "`ansible_port` must be a number from 1 to 65535, not `70000`",
                None,
            )],
        ),
        (
            "ansible_become=maybe in [group:vars]",
            "[emea]\nmid-01\n[emea:vars]\nansible_become=maybe\n",
            vec![error(
                "hosts",
                Some((4, 16)),
                "`ansible_become` must be a boolean (yes/no, true/false, on/off), not `maybe`",
                None,
            )],
        ),
        (
            "a vault value in [group:vars]",
            "[emea]\nmid-01\n[emea:vars]\nmid_password = $ANSIBLE_VAULT;1.1;AES256\n",
            vec![Problem {
                severity: Severity::Warning,
                ..error(
                    "hosts",
                    Some((4, 16)),
                    "`mid_password` looks like an Ansible Vault text without the `!vault` tag; as in Ansible, it is used as written, not decrypted",
                    Some("write `mid_password: !vault |` before the vaulted text"),
                )
            }],
        ),
        (
            "a host name starting with `-`",
            "[emea]\nmid-01\n-mid-02 ansible_port=22\n",
            vec![error(
                "hosts",
                Some((3, 1)),
                "host name `-mid-02` starts with `-`",
                None,
            )],
        ),
        (
            "a word that is not name=value",
            "[emea]\nmid-01 ansible_port\n",
            vec![error(
                "hosts",
                Some((2, 8)),
                "a word after the host name is not `name=value`",
                Some("host lines are `host name=value name=value …`, without spaces around `=`; quote values with spaces"),
            )],
        ),
        (
            "an unknown section kind",
            "[emea:hostz]\nmid-01\n",
            vec![error(
                "hosts",
                Some((1, 2)),
                "unknown section kind `:hostz`",
                Some("sections are [group], [group:vars] and [group:children]"),
            )],
        ),
        (
            "a [group:vars] line without `=`",
            "[emea:vars]\nansible_user ops\n",
            vec![error(
                "hosts",
                Some((2, 1)),
                "a [group:vars] line is `name=value`",
                None,
            )],
        ),
        (
            "a group cycle",
            "[a:children]\nb\n[b:children]\na\n",
            vec![error(
                "hosts",
                Some((1, 2)),
                "groups are their own ancestors: a → b → a",
                Some("a group cannot be a child of one of its children"),
            )],
        ),
        (
            "a range mixing numbers and letters",
            "[emea]\nmid-[1:c]\n",
            vec![error(
                "hosts",
                Some((2, 1)),
                "`mid-[1:c]`: `[1:c]` mixes numbers and letters or is not a range",
                None,
            )],
        ),
    ];
    for (case, text, expected) in &cases {
        check_problems(case, &[("hosts", text)], expected);
    }
}

#[test]
fn ini_value_columns_when_the_host_name_holds_the_variable_name() {
    check_problems(
        "port in the host name",
        &[("hosts", "[emea]\nport-scanner-01 port=0\n")],
        &[error(
            "hosts",
            Some((2, 22)),
            "`port` must be a number from 1 to 65535, not `0`",
            None,
        )],
    );
}

#[test]
fn ini_columns_count_characters_not_bytes() {
    check_problems(
        "non-ASCII before the value",
        &[("hosts", "[emea]\n\u{3000}müd-01 ansible_port=0 x\n")],
        &[
            error(
                "hosts",
                Some((2, 22)),
                "`ansible_port` must be a number from 1 to 65535, not `0`",
                None,
            ),
            error(
                "hosts",
                Some((2, 24)),
                "a word after the host name is not `name=value`",
                Some("host lines are `host name=value name=value …`, without spaces around `=`; quote values with spaces"),
            ),
        ],
    );
}

#[test]
fn a_missing_inventory_is_an_error() {
    let fixture = Fixture::new();
    let missing = fixture.path("nope.yml");
    let (inventory, diagnostics) = load(std::slice::from_ref(&missing));
    let diagnostics = diagnostics.into_vec();
    assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
    assert_eq!(diagnostics[0].origin, Some(Origin::file(&missing)));
    assert!(
        diagnostics[0]
            .message
            .starts_with("cannot read the inventory: "),
        "{diagnostics:#?}"
    );
    assert_eq!(
        diagnostics[0].hint.as_deref(),
        Some("give the inventory file or directory with -i")
    );
    assert_eq!(inventory.host_count(), 0);
}

#[test]
fn from_text_reads_a_file_as_load_does() {
    let fixture = Fixture::new();
    let text = "[emea]\nmid-0[1:2] ansible_port=0\n[europe:children]\nemea\n";
    let path = fixture.write("hosts", text);
    let (loaded, loaded_diagnostics) = load(std::slice::from_ref(&path));
    let (read, read_diagnostics) = Inventory::from_text(&path, text);
    let names = |inventory: &Inventory| inventory.names().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(names(&read), names(&loaded));
    assert_eq!(read.files, loaded.files);
    assert_eq!(read_diagnostics.into_vec(), loaded_diagnostics.into_vec());
}

#[test]
fn a_group_cycle_does_not_hang_selection_or_resolution() {
    let fixture = Fixture::new();
    let path = fixture.write(
        "inventory.yml",
        "all:\n  children:\n    a:\n      vars: { from: a }\n      hosts: { mid-01: }\n      children:\n        b:\n          vars: { from: b }\n          children:\n            a:\n",
    );
    let (inventory, diagnostics) = load(&[path]);
    assert_eq!(diagnostics.error_count(), 1);
    assert_eq!(selected(&inventory, "b"), strings(&["mid-01"]));
    assert_eq!(selected(&inventory, "a"), strings(&["mid-01"]));
    let host = resolve(&inventory, "mid-01");
    assert_eq!(host.groups, strings(&["a", "b"]));
}

// ---------------------------------------------------------------------------
// 8. Templates in inventory variables
// ---------------------------------------------------------------------------

#[test]
fn templated_variables_are_rendered_per_host() {
    let fixture = Fixture::new();
    let path = fixture.write(
        "inventory.yml",
        r#"all:
  vars:
    mid_home: /srv/mid
    mid_config: "{{ mid_home }}/agent/config.xml"
    service_user: "svc_{{ mid_name }}"
    chain_a: "{{ chain_b }}-a"
    chain_b: "{{ chain_c }}-b"
    chain_c: c
    groups_csv: "{{ group_names | join(',') }}"
  children:
    emea:
      vars:
        mid_home: /opt/emea/mid
        mid_name: "x{{ inventory_hostname[-2:] }}"
        ansible_port: "{{ 2200 + inventory_hostname[-1:] | int }}"
      hosts:
        mid-emea-01:
        mid-emea-02: { mid_home: /opt/special }
    lab:
      vars:
        mid_name: "lab-{{ inventory_hostname | upper }}"
      hosts:
        mid-lab-01:
"#,
    );
    let inventory = load_clean(&[path]);
    // (host, config, mid_name, service_user, port)
    let cases = [
        (
            "mid-emea-01",
            "/opt/emea/mid/agent/config.xml",
            "x01",
            "svc_x01",
            Some(2201),
        ),
        (
            "mid-emea-02",
            "/opt/special/agent/config.xml",
            "x02",
            "svc_x02",
            Some(2202),
        ),
        (
            "mid-lab-01",
            "/srv/mid/agent/config.xml",
            "lab-MID-LAB-01",
            "svc_lab-MID-LAB-01",
            None,
        ),
    ];
    for (name, config, mid_name, service_user, port) in cases {
        let host = resolve(&inventory, name);
        assert_eq!(host.config, config, "{name}");
        assert_eq!(variable(&host, "mid_config"), config, "{name}");
        assert_eq!(variable(&host, "mid_name"), mid_name, "{name}");
        assert_eq!(variable(&host, "service_user"), service_user, "{name}");
        assert_eq!(host.port, port, "{name}");
        assert_eq!(variable(&host, "chain_a"), "c-b-a", "{name}");
        assert_eq!(
            variable(&host, "groups_csv"),
            host.groups.join(","),
            "{name}"
        );
    }
}

#[test]
fn mid_config_template_sees_the_default_mid_home() {
    let fixture = Fixture::new();
    let path = fixture.write(
        "inventory.yml",
        "all:\n  vars:\n    mid_config: \"{{ mid_home }}/agent/config.xml\"\n    shown: \"{{ mid_home }}\"\n  hosts:\n    mid-01:\n",
    );
    let inventory = load_clean(&[path]);
    let host = resolve(&inventory, "mid-01");
    assert_eq!(host.mid_home, "/opt/servicenow/mid");
    assert_eq!(host.config, "/opt/servicenow/mid/agent/config.xml");
    assert_eq!(variable(&host, "shown"), "/opt/servicenow/mid");
    assert_eq!(variable(&host, "mid_home"), "/opt/servicenow/mid");
}

#[test]
fn rendered_templates_stay_strings() {
    let fixture = Fixture::new();
    let path = fixture.write(
        "inventory.yml",
        "all:\n  vars:\n    mid_name: \"{{ inventory_hostname[-2:] }}\"\n    octal_like: \"{{ '0o17' }}\"\n  hosts:\n    mid-01:\n",
    );
    let inventory = load_clean(&[path]);
    let host = resolve(&inventory, "mid-01");
    // What a playbook's `set:` would then render.
    let rendered = Templates::new()
        .render(
            "svc_mid_{{ mid_name }}/{{ octal_like }}",
            &host.template_context,
        )
        .expect("renders");
    assert_eq!(rendered, "svc_mid_01/0o17");
    let value = |name: &str| host.template_context.get(name).expect(name);
    assert_eq!(value("mid_name").as_str(), Some("01"));
    assert_eq!(value("octal_like").as_str(), Some("0o17"));
}

#[test]
fn an_undefined_variable_names_the_host_the_variable_and_where() {
    let fixture = Fixture::new();
    let path = fixture.write(
        "inventory.yml",
        r#"all:
  children:
    emea:
      vars:
        mid_cluster: "c_{{ mid_nmae }}"
        mid_name: "svc_{{ mid_nmae }}"
      hosts:
        mid-emea-01:
        mid-emea-02: { mid_name: emea02, mid_cluster: emea }
"#,
    );
    let inventory = load_clean(std::slice::from_ref(&path));
    let problems = inventory
        .resolve("mid-emea-01", &Templates::new())
        .expect_err("mid_nmae is undefined");
    // mid_cluster is read by midfleet: its template is rendered; mid_name
    // is not needed yet.
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let problem = &problems[0];
    assert_eq!(problem.severity, Severity::Error);
    assert_eq!(problem.hosts, ["mid-emea-01"]);
    assert_eq!(
        problem.message,
        "variable `mid_cluster`: undefined variable `mid_nmae`"
    );
    assert_eq!(
        problem.hint.as_deref(),
        Some("define the variable for this host (inventory vars, group_vars/, host_vars/), or give a default: `{{ name | default('value') }}`")
    );
    assert_eq!(
        problem.to_string(),
        format!(
            "{}:5:22: host mid-emea-01: variable `mid_cluster`: undefined variable `mid_nmae`",
            path.display()
        )
    );
    // The host that overrides both is fine, and a template using the
    // broken one says which variable needed which.
    let host = resolve(&inventory, "mid-emea-02");
    assert_eq!(variable(&host, "mid_name"), "emea02");
    let broken = Inventory::from_text(
        Path::new("inventory.yml"),
        "all:\n  vars:\n    mid_name: \"svc_{{ mid_nmae }}\"\n  hosts:\n    h1:\n",
    )
    .0;
    let host = resolve(&broken, "h1");
    let error = Templates::new()
        .render("{{ mid_name }}", &host.template_context)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "undefined variable `mid_nmae` (used by `mid_name`)"
    );
}

#[test]
fn templated_settings_are_checked_once_rendered() {
    let fixture = Fixture::new();
    let path = fixture.write(
        "inventory.yml",
        r#"all:
  vars:
    ssh_port: ssh
    home: relative/mid
  hosts:
    mid-01:
      ansible_port: "{{ ssh_port }}"
    mid-02:
      mid_home: "{{ home }}"
    mid-03:
      ansible_host: "{{ undefined_address }}"
"#,
    );
    let inventory = load_clean(std::slice::from_ref(&path));
    // (host, message, line, column)
    let cases = [
        (
            "mid-01",
            "`ansible_port` must be a number from 1 to 65535, not `ssh`",
            7,
            21,
        ),
        (
            "mid-02",
            "`mid_home` must be an absolute path, not `relative/mid`",
            9,
            17,
        ),
        (
            "mid-03",
            "variable `ansible_host`: undefined variable `undefined_address`",
            11,
            21,
        ),
    ];
    for (name, message, line, column) in cases {
        let problems = inventory.resolve(name, &Templates::new()).expect_err(name);
        assert_eq!(problems.len(), 1, "{name}: {problems:#?}");
        assert_eq!(problems[0].message, message, "{name}");
        assert_eq!(problems[0].hosts, [name]);
        assert_eq!(
            problems[0].origin,
            Some(Origin::new(&path, Location { line, column })),
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------
// 9. Ansible variables midfleet ignores, and secrets
// ---------------------------------------------------------------------------

const SECRET: &str = "hunter2-Sup3rSecret";

#[test]
fn ignored_ansible_variables_warn_and_never_show_their_value() {
    let password_reason = "midfleet logs in with keys (identity_file or the ssh agent), never with a password; this variable is ignored";
    let sudo_reason =
        "midfleet runs `sudo -n` and never sends a sudo password; this variable is ignored";
    let connection_reason = "midfleet always connects over SSH; this variable is ignored";
    let yaml = format!(
        "all:\n  vars:\n    ansible_password: {SECRET}\n  children:\n    emea:\n      vars:\n        ansible_become_password: \"{SECRET}\"\n      hosts:\n        mid-01:\n          ansible_ssh_pass: '{SECRET}'\n          ansible_connection: local\n"
    );
    let ini = format!(
        "[emea]\nmid-01 ansible_ssh_password={SECRET} ansible_sudo_pass=\"{SECRET}\"\n[emea:vars]\nansible_become_pass = {SECRET}\n"
    );
    // (file, text, expected warnings: (line, column, message))
    let cases = [
        (
            "inventory.yml",
            yaml,
            vec![
                (3, 23, format!("`ansible_password`: {password_reason}")),
                (7, 34, format!("`ansible_become_password`: {sudo_reason}")),
                (10, 29, format!("`ansible_ssh_pass`: {password_reason}")),
                (11, 31, format!("`ansible_connection`: {connection_reason}")),
            ],
        ),
        (
            "hosts",
            ini,
            vec![
                (2, 29, format!("`ansible_ssh_password`: {password_reason}")),
                (2, 67, format!("`ansible_sudo_pass`: {sudo_reason}")),
                (4, 23, format!("`ansible_become_pass`: {sudo_reason}")),
            ],
        ),
    ];
    for (file, text, expected) in cases {
        let fixture = Fixture::new();
        let path = fixture.write(file, &text);
        let (inventory, diagnostics) = load(std::slice::from_ref(&path));
        let diagnostics = diagnostics.into_vec();
        let found: Vec<(usize, usize, String)> = diagnostics
            .iter()
            .map(|diagnostic| {
                assert_eq!(diagnostic.severity, Severity::Warning, "{diagnostic:#?}");
                let (line, column) = location(diagnostic).expect("a location");
                (line, column, diagnostic.message.clone())
            })
            .collect();
        assert_eq!(found, expected, "{file}");
        for diagnostic in &diagnostics {
            assert!(!shown(diagnostic).contains(SECRET), "{diagnostic:#?}");
        }
        let host = resolve(&inventory, "mid-01");
        let serialized = serde_json::to_string(&host).expect("a host serializes");
        assert!(!serialized.contains(SECRET), "{serialized}");
    }
}

#[test]
fn an_ignored_variable_holding_a_template_does_not_fail_the_host() {
    let fixture = Fixture::new();
    let path = fixture.write(
        "inventory.yml",
        "all:\n  vars:\n    ansible_password: \"{{ vault_ansible_password }}\"\n    ansible_become_pass: \"{{ vault_become_pass }}\"\n  hosts:\n    mid-01:\n",
    );
    let (inventory, diagnostics) = load(&[path]);
    assert_eq!(diagnostics.error_count(), 0);
    let host = resolve(&inventory, "mid-01");
    assert_eq!(host.address, "mid-01");
}

#[test]
fn a_malformed_ini_password_assignment_does_not_echo_the_value() {
    let fixture = Fixture::new();
    let path = fixture.write(
        "hosts",
        &format!("[emea]\nmid-01 ansible_password = {SECRET}\n"),
    );
    let (_, diagnostics) = load(&[path]);
    assert!(diagnostics.has_errors());
    for diagnostic in diagnostics.iter() {
        assert!(!shown(diagnostic).contains(SECRET), "{diagnostic:#?}");
    }
}

#[test]
fn a_vaulted_value_nobody_uses_needs_no_password() {
    let fixture = Fixture::new();
    let path = fixture.write(
        "inventory.yml",
        "all:\n  vars:\n    ansible_password: !vault |\n      $ANSIBLE_VAULT;1.1;AES256\n      62313365396662343061393464336163\n    mid_pw: \"{{ ansible_password }}\"\n  hosts:\n    mid-01:\n",
    );
    let inventory = load_clean(&[path]);
    let host = resolve(&inventory, "mid-01");
    assert!(host.vaulted.holds("ansible_password"));
    // A template over it waits too, rather than failing as undefined.
    assert!(host.vaulted.holds("mid_pw"));
    assert!(host.template_context.get("ansible_password").is_none());
}

// ---------------------------------------------------------------------------
// 10. Lazy variables: Ansible's idioms, facts, magic variables
// ---------------------------------------------------------------------------

/// An inventory as Ansible users write them: templates over facts and
/// other hosts that midfleet never needs, defaults, omit.
const ANSIBLE_HABITS: &str = r#"all:
  vars:
    iface: "{{ ansible_default_ipv4.interface }}"
    home: "{{ ansible_env.HOME }}/mid"
    fqdn_name: "{{ ansible_fqdn }}"
    peers: "{{ groups['emea'] | map('extract', hostvars, 'ansible_host') | list }}"
    first_peer_name: "{{ hostvars[groups['emea'][1]].mid_name }}"
    fact_user: "svc_{{ ansible_hostname }}"
    cycle_a: "{{ cycle_b }}-a"
    cycle_b: "{{ cycle_a }}-b"
    self_loop: "{{ self_loop }}"
    new_mid_user: "{{ new_user | default('newmiduser') }}"
    chained: "{{ site.dc.name | default('dc1') }}"
    nested_default: "{{ broken | default('fallback') }}"
    broken: "{{ not_defined_anywhere }}"
    mid_cluster: "{{ cluster_name | default(omit) }}"
    short: "{{ inventory_hostname_short }}"
  children:
    emea:
      vars:
        mid_name: "e{{ inventory_hostname_short[-2:] }}"
      hosts:
        mid-01.emea.example.com: { ansible_host: 10.0.0.1 }
        mid-02.emea.example.com: { ansible_host: 10.0.0.2, cluster_name: pair }
  hosts:
    solo:
      ansible_port: "{{ custom_port | default(2222) }}"
"#;

fn habits() -> (Fixture, PathBuf, Inventory) {
    let fixture = Fixture::new();
    let path = fixture.write("inventory.yml", ANSIBLE_HABITS);
    let inventory = load_clean(std::slice::from_ref(&path));
    (fixture, path, inventory)
}

fn render(host: &Host, source: &str) -> Result<String, crate::template::TemplateError> {
    Templates::new().render(source, &host.template_context)
}

#[test]
fn unused_templates_over_facts_and_other_hosts_never_block() {
    let (_fixture, _path, inventory) = habits();
    for name in ["mid-01.emea.example.com", "mid-02.emea.example.com", "solo"] {
        resolve(&inventory, name);
    }
    let solo = resolve(&inventory, "solo");
    assert_eq!(solo.port, Some(2222), "default() of a known variable");
    assert_eq!(solo.mid_cluster, None, "omit: as if unset");
    let second = resolve(&inventory, "mid-02.emea.example.com");
    assert_eq!(second.mid_cluster.as_deref(), Some("pair"));
    assert_eq!(second.address, "10.0.0.2");
}

#[test]
fn defaults_and_is_defined_follow_ansible() {
    let (_fixture, _path, inventory) = habits();
    let host = resolve(&inventory, "mid-01.emea.example.com");
    let cases = [
        ("{{ new_mid_user }}", "newmiduser"),
        ("{{ chained }}", "dc1"),
        ("{{ nested_default }}", "fallback"),
        ("{{ mid_name }}", "e01"),
        ("{{ short }}", "mid-01"),
        ("{{ mid_cluster is defined }}", "False"),
        ("{{ mid_cluster | default('none') }}", "none"),
        ("{{ new_mid_user is defined }}", "True"),
        ("{{ undefined_thing is undefined }}", "True"),
        ("{{ mid_home }}", "/opt/servicenow/mid"),
    ];
    for (source, expected) in cases {
        assert_eq!(render(&host, source), Ok(expected.to_string()), "{source}");
    }
    let error = render(&host, "x{{ broken }}").unwrap_err();
    assert_eq!(
        error.to_string(),
        "undefined variable `not_defined_anywhere` (used by `broken`)"
    );
}

#[test]
fn magic_variables_are_ansibles() {
    let (_fixture, path, inventory) = habits();
    let first = resolve(&inventory, "mid-01.emea.example.com");
    let solo = resolve(&inventory, "solo");
    let absolute = std::path::absolute(&path).unwrap();
    let cases = [
        (
            &first,
            "{{ inventory_hostname }}",
            "mid-01.emea.example.com",
        ),
        (&first, "{{ inventory_hostname_short }}", "mid-01"),
        (&first, "{{ group_names | join(',') }}", "emea"),
        (&solo, "{{ group_names | join(',') }}", "ungrouped"),
        (
            &first,
            "{{ groups['emea'] | join(',') }}",
            "mid-01.emea.example.com,mid-02.emea.example.com",
        ),
        (&first, "{{ groups['ungrouped'] | join(',') }}", "solo"),
        (&first, "{{ groups['all'] | length }}", "3"),
        (&first, "{{ groups | length }}", "3"),
        (&first, "{{ hostvars['solo'].ansible_port }}", "2222"),
        (
            &solo,
            "{{ hostvars['mid-02.emea.example.com'].mid_name }}",
            "e02",
        ),
        (&solo, "{{ first_peer_name }}", "e02"),
        (
            &first,
            "{{ hostvars['nope'] | default('no such host') }}",
            "no such host",
        ),
        (&first, "{{ vars['mid_name'] }}", "e01"),
        (&first, "{{ inventory_file }}", absolute.to_str().unwrap()),
        (
            &first,
            "{{ inventory_dir }}",
            absolute.parent().unwrap().to_str().unwrap(),
        ),
    ];
    for (host, source, expected) in cases {
        assert_eq!(
            render(host, source),
            Ok(expected.to_string()),
            "{}: {source}",
            host.name
        );
    }
    // playbook_dir, when a playbook is given.
    let templates = Templates::new().with_playbook(Path::new("/srv/playbooks/rotate.yml"));
    let host = inventory.resolve("solo", &templates).unwrap();
    assert_eq!(
        templates.render("{{ playbook_dir }}", &host.template_context),
        Ok("/srv/playbooks".to_string())
    );
    assert!(render(&first, "{{ playbook_dir }}").is_err(), "no playbook");
}

#[test]
fn a_fact_used_is_an_error_that_says_midfleet_gathers_none() {
    let (_fixture, _path, inventory) = habits();
    let host = resolve(&inventory, "mid-01.emea.example.com");
    for (source, fact, through) in [
        ("{{ fact_user }}", "ansible_hostname", "`fact_user`"),
        ("{{ home }}", "ansible_env", "`home`"),
        ("{{ ansible_distribution }}", "ansible_distribution", ""),
        (
            "{{ hostvars['solo'].iface }}",
            "ansible_default_ipv4",
            "`hostvars['solo'].iface`",
        ),
    ] {
        let message = render(&host, source).unwrap_err().to_string();
        let expected = if through.is_empty() {
            format!("needs the Ansible fact `{fact}`, which midfleet does not gather")
        } else {
            format!("needs the Ansible fact `{fact}` (through {through}), which midfleet does not gather")
        };
        assert_eq!(message, expected, "{source}");
    }

    // A setting midfleet reads: the error is where the variable is written,
    // for the host, with what to do.
    let fixture = Fixture::new();
    let path = fixture.write(
        "inventory.yml",
        "all:\n  hosts:\n    mid-01:\n      ansible_host: \"{{ ansible_default_ipv4.address | default('10.1.1.1') }}\"\n",
    );
    let inventory = load_clean(std::slice::from_ref(&path));
    let problems = inventory.resolve("mid-01", &Templates::new()).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(
        problems[0].to_string(),
        format!(
            "{}:4:21: host mid-01: variable `ansible_host`: needs the Ansible fact `ansible_default_ipv4`, which midfleet does not gather",
            path.display()
        )
    );
    assert!(
        problems[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("give the value in the inventory"),
        "{:?}",
        problems[0].hint
    );
}

#[test]
fn variables_that_refer_to_themselves_are_named_in_order() {
    let (_fixture, _path, inventory) = habits();
    let host = resolve(&inventory, "solo");
    assert_eq!(
        render(&host, "{{ cycle_a }}").unwrap_err().to_string(),
        "variables refer to themselves: `cycle_a` → `cycle_b` → `cycle_a`"
    );
    assert_eq!(
        render(&host, "{{ self_loop | default('x') }}")
            .unwrap_err()
            .to_string(),
        "variables refer to themselves: `self_loop` → `self_loop`"
    );
    // Across hosts, through hostvars.
    let fixture = Fixture::new();
    let path = fixture.write(
        "inventory.yml",
        "all:\n  hosts:\n    h1: { x: \"{{ hostvars['h2'].x }}\", mid_cluster: \"{{ x }}\" }\n    h2: { x: \"{{ hostvars['h1'].x }}\" }\n",
    );
    let inventory = load_clean(&[path]);
    let problems = inventory.resolve("h1", &Templates::new()).unwrap_err();
    assert_eq!(
        problems[0].message,
        "variable `mid_cluster`: variables refer to themselves: `x` → `hostvars['h2'].x` → `x`"
    );
    assert_eq!(problems[0].hosts, ["h1"]);
}

#[test]
fn a_template_error_in_another_variable_is_reported_through_it() {
    let fixture = Fixture::new();
    let path = fixture.write(
        "inventory.yml",
        "all:\n  vars:\n    bad: \"{{ 1 +  }}\"\n    user: \"u{{ bad }}\"\n  hosts:\n    h1:\n",
    );
    let inventory = load_clean(&[path]);
    let problems = inventory.resolve("h1", &Templates::new()).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0]
            .message
            .starts_with("variable `user`: `bad`: template syntax"),
        "{}",
        problems[0].message
    );
}

#[test]
fn extra_vars_are_the_top_layer_and_templates_see_them() {
    let (mut inventory, diagnostics) = Inventory::from_text(
        Path::new("inventory.yml"),
        "all:\n  vars:\n    mid_name: \"svc_{{ site | default('none') }}\"\n  hosts:\n    h1: { ansible_port: 2201, mid_cluster: \"{{ mid_name }}\" }\n",
    );
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    assert_eq!(
        resolve(&inventory, "h1").mid_cluster.as_deref(),
        Some("svc_none")
    );
    let at = Location { line: 1, column: 1 };
    let mut extra = super::Vars::default();
    for (name, value) in [("ansible_port", "2299"), ("site", "emea")] {
        extra.insert(
            name.to_string(),
            super::Var {
                node: crate::yaml::Node::scalar(value, true, at),
                origin: Origin::new(Path::new("-e"), at),
            },
        );
    }
    inventory.set_extra_vars(extra);
    let host = resolve(&inventory, "h1");
    assert_eq!(host.port, Some(2299));
    assert_eq!(host.mid_cluster.as_deref(), Some("svc_emea"));
}

#[test]
fn variables_nest_a_bounded_depth() {
    let mut text = String::from("all:\n  vars:\n    v0: end\n");
    for level in 1..=40 {
        text.push_str(&format!("    v{level}: \"{{{{ v{} }}}}\"\n", level - 1));
    }
    text.push_str("  hosts:\n    h1:\n");
    let (inventory, diagnostics) = Inventory::from_text(Path::new("inventory.yml"), &text);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let host = resolve(&inventory, "h1");
    let error = Templates::new()
        .render("{{ v40 }}", &host.template_context)
        .unwrap_err();
    assert!(error.to_string().contains("more than 32 deep"), "{error}");
    assert_eq!(variable(&host, "v20"), "end");
}

/// Ansible's sort_groups: equal-depth groups merge by
/// `ansible_group_priority` (default 1, the higher wins), then by name;
/// a priority in group_vars/ does not count (Ansible reads it only from
/// the inventory file). Observed with ansible-core 2.19.14.
#[test]
fn ansible_group_priority_orders_groups_of_equal_depth() {
    let fixture = Fixture::new();
    let path = fixture.write(
        "inventory.yml",
        "all:\n  children:\n    alpha:\n      vars: { ansible_user: alpha, ansible_group_priority: 10 }\n      hosts: { h1: }\n    beta:\n      vars: { ansible_user: beta }\n      hosts: { h1: }\n    gamma:\n      vars: { ansible_port: 2003 }\n      hosts: { h1: }\n    delta:\n      vars: { ansible_port: 2004 }\n      hosts: { h1: }\n",
    );
    std::fs::create_dir_all(fixture.path("group_vars")).unwrap();
    fixture.write("group_vars/delta.yml", "ansible_group_priority: 50\n");
    let inventory = load_clean(&[path]);
    let host = resolve(&inventory, "h1");
    // beta would win by name; alpha's priority 10 puts it last.
    assert_eq!(host.user.as_deref(), Some("alpha"));
    // delta's priority in group_vars/ does not count: gamma wins by name.
    assert_eq!(host.port, Some(2003));
}

/// A YAML file for Ansible's `auto` plugin (`plugin: aws_ec2`) is one
/// clear error, not a group named `plugin`.
#[test]
fn an_inventory_plugin_configuration_is_refused_with_what_to_do() {
    let fixture = Fixture::new();
    let path = fixture.write(
        "aws_ec2.yml",
        "plugin: amazon.aws.aws_ec2\nregions:\n  - us-east-1\nkeyed_groups:\n  - key: tags\n",
    );
    let (inventory, diagnostics) = load(&[path]);
    let shown: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(
        shown[0].contains(
            "aws_ec2.yml:1:9: this file configures Ansible's inventory plugin `amazon.aws.aws_ec2`"
        ),
        "{shown:?}"
    );
    assert!(diagnostics
        .iter()
        .next()
        .unwrap()
        .hint
        .as_deref()
        .unwrap()
        .contains("ansible-inventory -i"));
    assert_eq!(inventory.host_count(), 0);
}

#[test]
fn ini_children_named_before_their_sections_follow_the_sections_order() {
    // openshift-ansible's shape: `[OSEv3:children]` first. Ansible's ini
    // plugin makes a child of a group named before its own section only
    // when that section is reached, so OSEv3's children (and hosts, and
    // `OSEv3[0]`) follow the sections' order, not the list's.
    let fixture = Fixture::new();
    let path = fixture.write(
        "hosts",
        "[top:children]\nb\na\nc\n\n[c:vars]\nx=1\n\n[a]\na1\n[b]\nb1\n[c]\nc1\n\
         [later:children]\nc\na\n",
    );
    let inventory = load_clean(&[path]);
    assert_eq!(selected(&inventory, "top"), strings(&["a1", "b1", "c1"]));
    assert_eq!(selected(&inventory, "top[0]"), strings(&["a1"]));
    // Declared already: in the list's order.
    assert_eq!(selected(&inventory, "later"), strings(&["c1", "a1"]));
    // Groups in the order Ansible creates them: `c` at `[c:vars]`.
    assert_eq!(
        selected(&inventory, "~[abc]$"),
        strings(&["c1", "a1", "b1"])
    );
}

#[test]
fn ini_child_group_without_a_section_is_an_error_at_its_line() {
    let fixture = Fixture::new();
    let path = fixture.write("hosts", "[top:children]\na\nghost\n[a]\na1\n");
    let (_, diagnostics) = load(&[path]);
    let errors: Vec<&Diagnostic> = diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.severity == Severity::Error)
        .collect();
    assert_eq!(errors.len(), 1, "{diagnostics:?}");
    assert_eq!(location(errors[0]), Some((3, 1)));
    assert!(shown(errors[0]).contains("`ghost`, which has no section"));
}

#[test]
fn ini_section_headers_may_end_with_a_comment() {
    // Ansible's own example: `[naughty:children] # only get coal`.
    let fixture = Fixture::new();
    let path = fixture.write(
        "hosts",
        "[web] # the frontends\nweb1\n[naughty:children]   # coal\nweb\n[web:vars]\t# vars\nx=1\n",
    );
    let inventory = load_clean(&[path]);
    assert_eq!(selected(&inventory, "naughty"), strings(&["web1"]));
    // Anything else after `]` is still refused, at the line.
    let path = fixture.write("other", "[web] ; not a comment\nweb1\n");
    let (_, diagnostics) = load(&[path]);
    assert!(
        diagnostics
            .iter()
            .any(|diagnostic| location(diagnostic) == Some((1, 1))
                && diagnostic.message.contains("must end with `]`")),
        "{diagnostics:?}"
    );
}

/// A chain of variables each using the previous one twice, deeper than
/// variables may nest: the failure at the bottom ends the render at once,
/// rather than being rendered again for every use above it (2^depth).
#[test]
fn a_failing_variable_is_not_rendered_again_for_each_use() {
    let mut text = String::from("all:\n  hosts:\n    h1:\n      v0: \"{{ 1 + }}\"\n");
    for level in 1..=24 {
        let below = level - 1;
        text.push_str(&format!(
            "      v{level}: \"{{{{ v{below} ~ v{below} | length * 0 }}}}\"\n"
        ));
    }
    text.push_str("      mid_cluster: \"{{ v24 }}\"\n");
    let (inventory, diagnostics) = Inventory::from_text(Path::new("inventory.yml"), &text);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let started = std::time::Instant::now();
    let problems = inventory.resolve("h1", &Templates::new()).unwrap_err();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        problems[0].message.contains("`v0`: template syntax"),
        "{}",
        problems[0].message
    );

    // Across hosts: each host's variable reads every host's, its own
    // included (a cycle); the first failure ends it.
    let mut text = String::from(
        "all:\n  vars:\n    a: \"{% for h in groups.all %}{{ hostvars[h].a | default('') | length }}{% endfor %}\"\n    mid_cluster: \"{{ a }}\"\n  hosts:\n",
    );
    for host in 1..=12 {
        text.push_str(&format!("    h{host}:\n"));
    }
    let (inventory, _) = Inventory::from_text(Path::new("inventory.yml"), &text);
    let started = std::time::Instant::now();
    let problems = inventory.resolve("h1", &Templates::new()).unwrap_err();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        problems[0].message.contains("refer to themselves"),
        "{}",
        problems[0].message
    );
}

/// Printing `hostvars['h']`, `hostvars` or `vars` ends (each host's
/// mapping does not list `hostvars` itself: it printed every host's
/// `hostvars` in turn until the stack overflowed), and `debug()` is no
/// function.
#[test]
fn printing_hostvars_ends() {
    let (inventory, _) = Inventory::from_text(
        Path::new("inventory.yml"),
        "all:\n  hosts:\n    h1: { x: one }\n    h2: { x: two }\n",
    );
    let host = resolve(&inventory, "h1");
    let printed = render(&host, "{{ hostvars['h1'] }}").unwrap();
    assert!(printed.contains("'x': 'one'"), "{printed}");
    let printed = render(&host, "{{ hostvars }}").unwrap();
    assert!(printed.contains("'x': 'two'"), "{printed}");
    assert_eq!(
        render(&host, "{{ hostvars['h2'].hostvars['h1'].x }}").unwrap(),
        "one"
    );
    assert!(render(&host, "{{ debug() }}").is_err());
}
