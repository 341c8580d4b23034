use std::os::unix::fs::PermissionsExt;

use super::*;

/// A sandbox: a home, a working directory and a "system" file, none of
/// them the machine's own.
struct Sandbox {
    _root: tempfile::TempDir,
    environment: Environment,
}

impl Sandbox {
    fn new() -> Sandbox {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        let work = root.path().join("work");
        let etc = root.path().join("etc");
        for directory in [&home, &work, &etc] {
            std::fs::create_dir_all(directory).unwrap();
            std::fs::set_permissions(directory, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let environment = Environment {
            variables: BTreeMap::from([("HOME".to_string(), home.display().to_string())]),
            working_directory: Some(work),
            home,
            system_file: etc.join("ansible.cfg"),
        };
        Sandbox {
            _root: root,
            environment,
        }
    }

    fn home(&self) -> &Path {
        &self.environment.home
    }

    fn work(&self) -> &Path {
        self.environment.working_directory.as_deref().unwrap()
    }

    fn set(&mut self, name: &str, value: &str) {
        self.environment
            .variables
            .insert(name.to_string(), value.to_string());
    }

    fn load(&self) -> (AnsibleCfg, Vec<Diagnostic>) {
        let (configuration, diagnostics) = AnsibleCfg::load(&self.environment);
        (configuration, diagnostics.into_vec())
    }
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

#[test]
fn discovery_takes_the_first_of_ansible_config_cwd_home_system() {
    let mut sandbox = Sandbox::new();
    assert_eq!(find(&sandbox.environment).file, None);
    assert_eq!(find(&sandbox.environment).searched.len(), 3);

    let system = write(&sandbox.environment.system_file.clone(), "[defaults]\n");
    assert_eq!(find(&sandbox.environment).file, Some(system));

    let home = write(&sandbox.home().join(".ansible.cfg"), "[defaults]\n");
    assert_eq!(find(&sandbox.environment).file, Some(home.clone()));

    let cwd = write(&sandbox.work().join("ansible.cfg"), "[defaults]\n");
    assert_eq!(find(&sandbox.environment).file, Some(cwd.clone()));

    // ANSIBLE_CONFIG: a file…
    let named = write(&sandbox.home().join("other.cfg"), "[defaults]\n");
    sandbox.set("ANSIBLE_CONFIG", &named.display().to_string());
    assert_eq!(find(&sandbox.environment).file, Some(named));
    // … `~` expanded, or a directory holding ansible.cfg…
    let folder = sandbox.home().join("project");
    std::fs::create_dir(&folder).unwrap();
    let in_folder = write(&folder.join("ansible.cfg"), "[defaults]\n");
    sandbox.set("ANSIBLE_CONFIG", "~/project");
    assert_eq!(find(&sandbox.environment).file, Some(in_folder));
    // … or missing: Ansible looks further, midfleet says so.
    sandbox.set("ANSIBLE_CONFIG", "/nonexistent/ansible.cfg");
    let discovery = find(&sandbox.environment);
    assert_eq!(discovery.file, Some(cwd));
    assert!(discovery.warnings[0].message.contains("ANSIBLE_CONFIG"));
}

#[test]
fn a_world_writable_working_directory_is_skipped_with_a_warning() {
    let sandbox = Sandbox::new();
    write(
        &sandbox.work().join("ansible.cfg"),
        "[defaults]\nforks = 3\n",
    );
    let home = write(
        &sandbox.home().join(".ansible.cfg"),
        "[defaults]\nforks = 7\n",
    );
    std::fs::set_permissions(sandbox.work(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let (configuration, diagnostics) = sandbox.load();
    assert_eq!(configuration.file, Some(home));
    assert_eq!(configuration.forks.unwrap().value, 7);
    assert_eq!(diagnostics.len(), 1);
    assert!(
        diagnostics[0].message.contains("world-writable"),
        "{diagnostics:?}"
    );
    assert!(!diagnostics[0].is_error());
}

/// A configuration file anyone may change is not read (it could point
/// midfleet at any inventory), wherever it is found, ANSIBLE_CONFIG too.
#[test]
fn a_configuration_file_anyone_may_change_is_skipped_with_a_warning() {
    let mut sandbox = Sandbox::new();
    let home = write(
        &sandbox.home().join(".ansible.cfg"),
        "[defaults]\nforks = 7\n",
    );
    let named = write(&sandbox.home().join("other.cfg"), "[defaults]\nforks = 3\n");
    std::fs::set_permissions(&named, std::fs::Permissions::from_mode(0o666)).unwrap();
    sandbox.set("ANSIBLE_CONFIG", &named.display().to_string());
    let (configuration, diagnostics) = sandbox.load();
    assert_eq!(configuration.file, Some(home));
    assert_eq!(configuration.forks.unwrap().value, 7);
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    assert!(
        diagnostics[0]
            .message
            .contains("anyone may change this file"),
        "{diagnostics:?}"
    );
    assert!(!diagnostics[0].is_error());
    std::fs::set_permissions(&named, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (configuration, diagnostics) = sandbox.load();
    assert_eq!(configuration.file, Some(named));
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
}

#[test]
fn the_ini_reader_follows_configparser() {
    let path = Path::new("ansible.cfg");
    let text = "\u{feff}# comment\n; comment\n[DEFAULT]\nshared = 1\n\n[defaults]\nInventory = hosts.yml ; inline comment\nremote_user: deploy\npassword = a;b#c%(x)s\nssh_args = -o One=1\n  -o Two=2\n\n    -o Three=3\n[ssh_connection]\n";
    let ini = parse_ini(path, text).unwrap();
    assert_eq!(ini.get("defaults", "inventory").unwrap().value, "hosts.yml");
    assert_eq!(ini.get("defaults", "inventory").unwrap().line, 7);
    assert_eq!(ini.get("defaults", "remote_user").unwrap().value, "deploy");
    // `;` only starts a comment after whitespace; `%` is not interpolated.
    assert_eq!(ini.get("defaults", "password").unwrap().value, "a;b#c%(x)s");
    assert_eq!(
        ini.get("defaults", "ssh_args").unwrap().value,
        "-o One=1\n-o Two=2\n\n-o Three=3"
    );
    // [DEFAULT] reaches every section that exists, and only those.
    assert_eq!(ini.get("ssh_connection", "shared").unwrap().value, "1");
    assert_eq!(ini.get("privilege_escalation", "shared"), None);
}

#[test]
fn ini_errors_name_the_line() {
    let path = Path::new("/p/ansible.cfg");
    let cases = [
        ("forks = 5\n", 1, "before any [section]"),
        ("[defaults]\nforks\n", 2, "not a `key = value` line"),
        ("[defaults]\n = 5\n", 2, "no name"),
        ("[defaults]\nforks = 5\nFORKS = 6\n", 3, "set twice"),
        ("[defaults]\n[x]\n[defaults]\n", 3, "appears twice"),
    ];
    for (text, line, message) in cases {
        let problems = parse_ini(path, text).unwrap_err();
        let shown = problems[0].to_string();
        assert!(
            shown.starts_with(&format!("/p/ansible.cfg:{line}:1: ")) && shown.contains(message),
            "{text:?}: {shown}"
        );
    }
}

#[test]
fn settings_are_read_with_the_environment_over_the_file() {
    let mut sandbox = Sandbox::new();
    let file = write(
        &sandbox.work().join("ansible.cfg"),
        "[defaults]\ninventory = inventory/hosts.yml, ~/more.ini,/abs/x\nforks = 8\nremote_user = \"deploy\"\nprivate_key_file = keys/id_ed25519\nvault_password_file = $VAULTDIR/pass\ntimeout = 25\nremote_port = 2202\ngathering = smart\n[privilege_escalation]\nbecome_ask_pass = false\n",
    );
    sandbox.set("VAULTDIR", "/secrets");
    let (configuration, diagnostics) = sandbox.load();
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    assert_eq!(configuration.file.as_ref(), Some(&file));
    let inventory = configuration.inventory.unwrap();
    assert_eq!(
        inventory.value,
        vec![
            sandbox.work().join("inventory/hosts.yml"),
            sandbox.home().join("more.ini"),
            PathBuf::from("/abs/x")
        ]
    );
    assert_eq!(
        inventory.source,
        Source::File {
            path: file.clone(),
            line: 2
        }
    );
    assert_eq!(configuration.forks.unwrap().value, 8);
    assert_eq!(configuration.remote_user.unwrap().value, "deploy");
    assert_eq!(
        configuration.private_key_file.unwrap().value,
        sandbox.work().join("keys/id_ed25519")
    );
    assert_eq!(
        configuration.vault_password_file.unwrap().value,
        PathBuf::from("/secrets/pass")
    );
    assert_eq!(configuration.timeout.unwrap().value, 25);
    assert_eq!(configuration.remote_port.unwrap().value, 2202);
    assert_eq!(
        configuration.unused,
        vec![
            "[defaults] gathering",
            "[privilege_escalation] become_ask_pass"
        ]
    );

    // The environment wins; its relative paths are the working directory's.
    let elsewhere = sandbox.home().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    sandbox.environment.working_directory = Some(elsewhere.clone());
    sandbox.set("ANSIBLE_CONFIG", &file.display().to_string());
    sandbox.set("ANSIBLE_INVENTORY", "env.yml");
    sandbox.set("ANSIBLE_FORKS", "3");
    sandbox.set("ANSIBLE_REMOTE_USER", "envuser");
    sandbox.set("ANSIBLE_PRIVATE_KEY_FILE", "id_env");
    sandbox.set("ANSIBLE_TIMEOUT", "4");
    let (configuration, diagnostics) = sandbox.load();
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    assert_eq!(
        configuration.inventory.as_ref().unwrap().value,
        vec![elsewhere.join("env.yml")]
    );
    assert_eq!(
        configuration.inventory.unwrap().source,
        Source::Environment("ANSIBLE_INVENTORY")
    );
    assert_eq!(configuration.forks.unwrap().value, 3);
    assert_eq!(configuration.remote_user.unwrap().value, "envuser");
    assert_eq!(
        configuration.private_key_file.unwrap().value,
        elsewhere.join("id_env")
    );
    assert_eq!(configuration.timeout.unwrap().value, 4);
}

#[test]
fn bad_values_are_errors_naming_their_source() {
    let mut sandbox = Sandbox::new();
    write(
        &sandbox.work().join("ansible.cfg"),
        "[defaults]\nforks = many\ntimeout = 0\n",
    );
    let (configuration, diagnostics) = sandbox.load();
    assert!(configuration.forks.is_none() && configuration.timeout.is_none());
    let shown: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    assert!(
        shown[0].ends_with("ansible.cfg:2:1: `forks` must be a whole number from 1 to 1024"),
        "{shown:?}"
    );
    assert!(shown[1].contains("ansible.cfg:3:1: `timeout`"), "{shown:?}");
    sandbox.set("ANSIBLE_FORKS", "0");
    let (_, diagnostics) = sandbox.load();
    assert!(
        diagnostics[0].message.starts_with("ANSIBLE_FORKS must be"),
        "{diagnostics:?}"
    );
}

#[test]
fn weakened_host_key_checking_is_warned_about_and_ignored() {
    let mut sandbox = Sandbox::new();
    write(
        &sandbox.work().join("ansible.cfg"),
        "[defaults]\nhost_key_checking = False\n[ssh_connection]\nssh_args = -o ControlMaster=auto -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null\n",
    );
    let (_, diagnostics) = sandbox.load();
    assert_eq!(diagnostics.len(), 3, "{diagnostics:?}");
    assert!(diagnostics.iter().all(|diagnostic| !diagnostic.is_error()));
    assert!(diagnostics[0]
        .to_string()
        .contains("ansible.cfg:2:1: host_key_checking = False ([defaults]) is ignored"));
    assert!(diagnostics[1]
        .message
        .contains("-o StrictHostKeyChecking=no"));
    assert!(diagnostics[2]
        .message
        .contains("-o UserKnownHostsFile=/dev/null"));

    // A true value says nothing; the environment is checked too.
    write(
        &sandbox.work().join("ansible.cfg"),
        "[defaults]\nhost_key_checking = yes\n",
    );
    assert!(sandbox.load().1.is_empty());
    sandbox.set("ANSIBLE_HOST_KEY_CHECKING", "False");
    let (_, diagnostics) = sandbox.load();
    assert_eq!(diagnostics.len(), 1);
    assert!(diagnostics[0]
        .message
        .starts_with("ANSIBLE_HOST_KEY_CHECKING=False is ignored"));
}

#[test]
fn ssh_options_that_reroute_are_refused_without_showing_their_values() {
    let sandbox = Sandbox::new();
    write(
        &sandbox.work().join("ansible.cfg"),
        "[ssh_connection]\nssh_common_args = -o ProxyCommand=\"ssh -W %h:%p secret-bastion\"\nssh_extra_args = -J jump.example.com\n",
    );
    let (_, diagnostics) = sandbox.load();
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.is_error())
        .map(ToString::to_string)
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].contains("[ssh_connection] ssh_common_args: `-o ProxyCommand`"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("[ssh_connection] ssh_extra_args: `-J`"),
        "{errors:?}"
    );
    assert!(errors.iter().all(|error| !error.contains("bastion")));
}

#[test]
fn paths_expand_like_unfrackpath() {
    let mut sandbox = Sandbox::new();
    sandbox.set("X", "/x");
    let environment = &sandbox.environment;
    assert_eq!(
        environment.resolve_path("$X/a/../b", None),
        PathBuf::from("/x/b")
    );
    assert_eq!(
        environment.resolve_path("${X}/c", None),
        PathBuf::from("/x/c")
    );
    assert_eq!(
        environment.resolve_path("$UNSET/c", Some(Path::new("/base"))),
        PathBuf::from("/base/$UNSET/c")
    );
    assert_eq!(
        environment.resolve_path("~/k", None),
        sandbox.home().join("k")
    );
    assert_eq!(
        environment.resolve_path("./k", None),
        sandbox.work().join("k")
    );
}

#[test]
fn become_in_the_configuration_is_warned_about() {
    let mut sandbox = Sandbox::new();
    write(
        &sandbox.work().join("ansible.cfg"),
        "[privilege_escalation]\nbecome = True\nbecome_user = mid\n",
    );
    let (configuration, diagnostics) = sandbox.load();
    let shown: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert!(shown[0].ends_with("ansible.cfg:2:1: [privilege_escalation] become is not used: midfleet takes become from the inventory only"), "{shown:?}");
    assert!(
        shown[1].contains("[privilege_escalation] become_user is not used"),
        "{shown:?}"
    );
    assert!(diagnostics.iter().all(|diagnostic| !diagnostic.is_error()));
    assert!(configuration.unused.is_empty());
    write(
        &sandbox.work().join("ansible.cfg"),
        "[privilege_escalation]\nbecome = no\n",
    );
    assert!(sandbox.load().1.is_empty());
    sandbox.set("ANSIBLE_BECOME", "yes");
    assert!(sandbox.load().1[0]
        .message
        .starts_with("ANSIBLE_BECOME is not used"));
}
