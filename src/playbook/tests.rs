//! The playbook reader's tests: every problem with its line and column.

use super::*;

#[test]
fn the_instance_user_cannot_be_a_secret_reference() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("p.yml");
    std::fs::write(
        &path,
        "hosts: all\nset:\n  mid.instance.username: { secret: \"env:U\" }\n",
    )
    .unwrap();
    let (_, diagnostics) = Playbook::load(&path);
    let messages: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    assert!(
        messages
            .iter()
            .any(|message| message.contains("cannot come from a secret reference")),
        "{messages:?}"
    );
}

fn load_text(text: &str) -> (Option<Playbook>, Vec<String>) {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("p.yml");
    std::fs::write(&path, text).unwrap();
    let (playbook, diagnostics) = Playbook::load(&path);
    let messages = diagnostics.iter().map(ToString::to_string).collect();
    (playbook, messages)
}

#[test]
fn the_instance_section_is_read_with_its_defaults() {
    let (playbook, messages) = load_text(
        "hosts: all\nset: { mid.log.level: debug }\ninstance:\n  url: https://acme.service-now.com/\n  user: midfleet_admin\n  \
         password: { secret: \"env:ADMIN_PW\" }\n  ca_file: ca.pem\n  ensure_user: true\n  retire_old_user: lock\n",
    );
    let instance = playbook.unwrap().instance.unwrap();
    assert_eq!(instance.url, "https://acme.service-now.com");
    assert_eq!(instance.user, InstanceUser::Name("midfleet_admin".into()));
    assert_eq!(instance.password, SecretRef::Env("ADMIN_PW".into()));
    assert!(instance.ca_file.unwrap().ends_with("ca.pem"));
    assert!(instance.ensure_user);
    assert_eq!(instance.retire_old_user, RetireOldUser::Lock);
    assert_eq!(instance.timeout, DEFAULT_INSTANCE_TIMEOUT);
    assert!(messages.is_empty(), "{messages:?}");
}

#[test]
fn instance_problems_are_found_with_their_line() {
    let base =
        "hosts: all\nset: { mid.log.level: debug }\ninstance:\n  url: https://x.service-now.com\n  user: admin\n";
    let password = "  password: { secret: \"env:P\" }\n";
    let cases = [
        (format!("{base}  password: hunter2\n"), "p.yml:6:13", "must be a secret reference"),
        (format!("{base}{password}  validate: yes please\n"), "p.yml:7:13", "must be true or false"),
        (format!("{base}{password}  retire_old_user: delete\n"), "p.yml:7:20", "`keep`, `lock` or `deactivate`"),
        (format!("{base}{password}  ensure_users: true\n"), "p.yml:7:3", "unknown key `instance.ensure_users`"),
        (format!("{base}{password}  ensure_user: maybe\n"), "p.yml:7:16", "must be true or false"),
        (format!("{base}  password: {{ secret: \"env:P_{{{{ mid_name }}}}\" }}\n"), "p.yml:6:23", "cannot be a template"),
        ("hosts: all\ninstance:\n  user: admin\n  password: { secret: \"env:P\" }\n".to_string(), "p.yml:3:3", "has no `url`"),
        ("hosts: all\ninstance:\n  url: acme.service-now.com\n  user: a\n  password: { secret: \"env:P\" }\n".to_string(), "p.yml:3:8", "must start with https://"),
        ("hosts: all\ninstance:\n  url: https://u:p@acme\n  user: a\n  password: { secret: \"env:P\" }\n".to_string(), "p.yml:3:8", "must not hold credentials"),
        ("hosts: all\ninstance:\n  url: http://acme.service-now.com\n  user: a\n  password: { secret: \"env:P\" }\n".to_string(), "p.yml:3:8", "plain http:// is accepted only for an instance on this machine"),
        ("hosts: all\ninstance:\n  url: http://10.1.2.3:8080/\n  user: a\n  password: { secret: \"env:P\" }\n".to_string(), "p.yml:3:8", "passwords would cross the network in clear"),
    ];
    for (text, at, expected) in cases {
        let (playbook, messages) = load_text(&text);
        assert!(
            messages
                .iter()
                .any(|message| message.contains(at) && message.contains(expected)),
            "{expected} at {at}: {messages:?}"
        );
        assert!(
            playbook.is_none_or(|playbook| playbook.instance.is_none()),
            "{text}"
        );
    }
}

#[test]
fn plain_http_is_refused_with_a_hint_except_on_loopback() {
    let text = |url: &str| {
        format!("hosts: all\nset: {{ mid.log.level: debug }}\ninstance:\n  url: {url}\n  user: a\n  password: {{ secret: \"env:P\" }}\n")
    };
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("p.yml");
    std::fs::write(&path, text("http://acme.service-now.com")).unwrap();
    let (_, diagnostics) = Playbook::load(&path);
    let refusal = diagnostics
        .iter()
        .find(|diagnostic| diagnostic.is_error())
        .expect("an error");
    assert_eq!(
        refusal.hint.as_deref(),
        Some("use https:// (a private CA goes in `ca_file`)")
    );
    for url in [
        "http://127.0.0.1:8080",
        "http://[::1]:9/x",
        "http://localhost",
        "https://acme.service-now.com",
    ] {
        let (playbook, messages) = load_text(&text(url));
        assert!(messages.is_empty(), "{url}: {messages:?}");
        assert_eq!(
            playbook.unwrap().instance.unwrap().url,
            url.trim_end_matches('/')
        );
    }
}

#[test]
fn batches_follow_serial_and_the_last_size_repeats() {
    let rollout = |serial: Vec<Amount>| Rollout {
        serial,
        max_fail: Amount::Count(0),
    };
    assert_eq!(Rollout::default().batches(20), [1, 19]);
    assert_eq!(Rollout::default().batches(1), [1]);
    assert_eq!(Rollout::default().batches(0), Vec::<usize>::new());
    assert_eq!(
        rollout(vec![Amount::Count(1), Amount::Percent(25)]).batches(20),
        [1, 5, 5, 5, 4]
    );
    assert_eq!(
        rollout(vec![Amount::Percent(10)]).batches(5),
        [1, 1, 1, 1, 1]
    );
    assert_eq!(rollout(vec![Amount::Count(3)]).batches(7), [3, 3, 1]);
}

#[test]
fn undocumented_parameter_names_get_a_warning_with_did_you_mean() {
    let (playbook, messages) = load_text(
        "hosts: all\nset:\n  mid.instanse.username: svc_mid\n  acme.team: ops\n  mid.httpclient.protocol.p1.port: \"8443\"\nunset: [mid.proxy.hots]\n",
    );
    let playbook = playbook.expect("unknown names stay allowed");
    assert_eq!(playbook.set.len(), 3);
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(
        messages[0].ends_with("p.yml:3:3: `mid.instanse.username` in `set` is not a documented MID Server parameter; did you mean `mid.instance.username`?"),
        "{messages:?}"
    );
    assert!(
        messages[1]
            .ends_with("p.yml:4:3: `acme.team` in `set` is not a documented MID Server parameter"),
        "{messages:?}"
    );
    assert!(
        messages[2].contains("`mid.proxy.hots` in `unset`")
            && messages[2].ends_with("did you mean `mid.proxy.host`?"),
        "{messages:?}"
    );
}

#[test]
fn a_host_variable_secret_names_a_variable_and_stays_out_of_the_instance_section() {
    let (playbook, messages) =
        load_text("hosts: all\nset:\n  mid.instance.password: { secret: \"var:mid_password\" }\n");
    assert!(messages.is_empty(), "{messages:?}");
    assert_eq!(
        playbook.unwrap().set[0].value,
        SetValue::Secret("var:mid_password".into())
    );
    for bad in ["var:", "var:mid-password", "var:{{ name }}", "var:1x"] {
        let (_, messages) = load_text(&format!(
            "hosts: all\nset:\n  mid.instance.password: {{ secret: \"{bad}\" }}\n"
        ));
        assert!(
            messages
                .iter()
                .any(|message| message.contains("does not name a variable")),
            "{bad}: {messages:?}"
        );
    }
    let (_, messages) = load_text(
        "hosts: all\nset: { name: b }\ninstance:\n  url: https://acme.service-now.com/\n  user: admin\n  \
         password: { secret: \"var:admin_password\" }\n",
    );
    assert!(
        messages
            .iter()
            .any(|message| message.contains("cannot take a host's variable (`var:`)")),
        "{messages:?}"
    );
}

/// A playbook as Ansible users write them: defaults over host variables,
/// `omit`, and a fact in a value no host needs.
#[test]
fn values_render_lazily_with_ansibles_defaults_and_omit() {
    let (playbook, messages) = load_text(
        r#"hosts: all
set:
  mid.instance.username: "{{ new_user | default('newmiduser') }}"
  mid.proxy.host: "{{ proxy_host | default(omit) }}"
  mid.proxy.port: "{{ proxy_port | default(3128) | int }}"
  name: "{{ mid_name | default(inventory_hostname_short) | upper }}"
"#,
    );
    assert!(messages.is_empty(), "{messages:?}");
    let playbook = playbook.unwrap();
    let (inventory, diagnostics) = crate::inventory::Inventory::from_text(
        std::path::Path::new("inventory.yml"),
        r#"all:
  vars:
    iface: "{{ ansible_default_ipv4.interface }}"
  hosts:
    mid-01.example.com:
    mid-02.example.com: { new_user: svc_two, proxy_host: proxy.example.com, mid_name: two }
"#,
    );
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let templates = crate::template::Templates::new();
    let values = |name: &str| -> Vec<(String, String)> {
        let host = inventory.resolve(name, &templates).unwrap();
        let desired = desired::render(&playbook, &host, &templates).unwrap();
        desired
            .set
            .iter()
            .map(|parameter| match &parameter.value {
                desired::DesiredValue::Literal(value) => (parameter.name.clone(), value.clone()),
                desired::DesiredValue::Secret(_) => panic!("no secret here"),
            })
            .collect()
    };
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    };
    assert_eq!(
        values("mid-01.example.com"),
        pairs(&[
            ("mid.instance.username", "newmiduser"),
            ("mid.proxy.port", "3128"),
            ("name", "MID-01"),
        ]),
        "omit leaves mid.proxy.host alone"
    );
    assert_eq!(
        values("mid-02.example.com"),
        pairs(&[
            ("mid.instance.username", "svc_two"),
            ("mid.proxy.host", "proxy.example.com"),
            ("mid.proxy.port", "3128"),
            ("name", "TWO"),
        ])
    );

    // A value that reads a fact: an error for the host, saying so.
    let (playbook, _) = load_text("hosts: all\nset:\n  name: \"{{ iface }}\"\n");
    let host = inventory.resolve("mid-01.example.com", &templates).unwrap();
    let problems = desired::render(&playbook.unwrap(), &host, &templates).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].message.contains(
            "needs the Ansible fact `ansible_default_ipv4` (through `iface`), which midfleet does not gather"
        ),
        "{}",
        problems[0].message
    );
    assert_eq!(problems[0].hosts, ["mid-01.example.com"]);
    assert!(problems[0].hint.as_deref().unwrap().contains("inventory"));
}

#[test]
fn a_password_from_a_template_is_not_written_in_the_playbook() {
    // The Ansible habit `"{{ vault_mid_password }}"` takes the password from
    // the inventory (its vault): no "written in the playbook" warning. A
    // literal still gets it, with var: in the hint.
    let (_, messages) =
        load_text("hosts: all\nset:\n  mid.instance.password: \"{{ vault_mid_password }}\"\n");
    assert!(messages.is_empty(), "{messages:?}");
    let (_, messages) = load_text("hosts: all\nset:\n  mid.instance.password: hunter2\n");
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains("p.yml:3:26: `mid.instance.password` is sensitive but its value is written in the playbook"), "{messages:?}");
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("p.yml");
    std::fs::write(
        &path,
        "hosts: all\nset:\n  mid.instance.password: hunter2\n",
    )
    .unwrap();
    let (_, diagnostics) = Playbook::load(&path);
    let hint = diagnostics
        .iter()
        .next()
        .and_then(|diagnostic| diagnostic.hint.clone());
    assert!(hint.is_some_and(|hint| hint.contains("var:NAME")));
}

#[test]
fn a_var_secret_naming_no_variable_is_an_error_where_it_is_written() {
    let (playbook, messages) = load_text(
        "hosts: all\nset:\n  mid.instance.password: { secret: \"var:vault_mid_password\" }\n",
    );
    assert!(messages.is_empty(), "{messages:?}");
    let (inventory, diagnostics) = crate::inventory::Inventory::from_text(
        std::path::Path::new("inventory.yml"),
        "all:\n  hosts:\n    mid-01:\n",
    );
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let templates = crate::template::Templates::new();
    let host = inventory.resolve("mid-01", &templates).unwrap();
    let problems = desired::render(&playbook.unwrap(), &host, &templates).unwrap_err();
    assert_eq!(problems.len(), 1);
    let shown = problems[0].to_string();
    assert!(
        shown.contains("p.yml:3:26:") && shown.contains("no variable `vault_mid_password`"),
        "{shown}"
    );
    assert_eq!(problems[0].hosts, ["mid-01"]);
}

const ROTATE_INSTANCE: &str =
    "instance:\n  url: https://x.service-now.com\n  user: admin\n  password: { secret: \"env:P\" }\n";

#[test]
fn the_rotate_section_is_read_with_its_defaults() {
    let (playbook, messages) = load_text(&format!(
        "hosts: all\nrotate:\n  users: [\"svc_{{{{ mid_name }}}}_a\", \"svc_{{{{ mid_name }}}}_b\"]\n  \
         password: {{ generate: {{ length: 40 }} }}\n  max_age: 60d\n{ROTATE_INSTANCE}"
    ));
    assert!(messages.is_empty(), "{messages:?}");
    let playbook = playbook.unwrap();
    let rotate = playbook.rotate.unwrap();
    assert_eq!(rotate.users[1], "svc_{{ mid_name }}_b");
    assert_eq!(rotate.password.length, 40);
    assert!(rotate.password.symbols);
    assert_eq!(rotate.max_age_days, 60);
    assert_eq!(
        playbook.instance.unwrap().retire_old_user,
        RetireOldUser::Lock,
        "a rotation locks the user left by default"
    );
    let (playbook, _) = load_text(&format!(
        "hosts: all\nrotate:\n  users: [a, b]\n  password: {{ generate: {{}} }}\n  max_age: 1d\n{ROTATE_INSTANCE}  retire_old_user: keep\n"
    ));
    let playbook = playbook.unwrap();
    assert_eq!(playbook.rotate.unwrap().password.length, 32);
    assert_eq!(
        playbook.instance.unwrap().retire_old_user,
        RetireOldUser::Keep
    );
}

#[test]
fn rotate_problems_are_found_with_their_line() {
    let users = "  users: [a, b]\n";
    let password = "  password: { generate: { length: 32 } }\n";
    let age = "  max_age: 60d\n";
    let cases = [
        (
            format!("hosts: all\nrotate:\n{users}{password}{age}"),
            "p.yml:3:3",
            "`rotate` needs an `instance:` section",
        ),
        (
            format!("hosts: all\nset:\n  mid.instance.password: {{ secret: \"env:X\" }}\nrotate:\n{users}{password}{age}{ROTATE_INSTANCE}"),
            "p.yml:3:26",
            "`mid.instance.password` cannot be in `set` together with `rotate`",
        ),
        (
            format!("hosts: all\nset:\n  glide.glidesoap.username: x\nrotate:\n{users}{password}{age}{ROTATE_INSTANCE}"),
            "p.yml:3:29",
            "`glide.glidesoap.username` cannot be in `set` together with `rotate`",
        ),
        (
            format!("hosts: all\nunset: [mid.instance.username]\nrotate:\n{users}{password}{age}{ROTATE_INSTANCE}"),
            "p.yml:2:9",
            "cannot be in `unset` together with `rotate`",
        ),
        (
            format!("hosts: all\nrotate:\n  users: [a, A]\n{password}{age}{ROTATE_INSTANCE}"),
            "p.yml:3:14",
            "the two users are the same",
        ),
        (
            format!("hosts: all\nrotate:\n  users: [a]\n{password}{age}{ROTATE_INSTANCE}"),
            "p.yml:3:10",
            "a list of two user names",
        ),
        (
            format!("hosts: all\nrotate:\n{users}  password: {{ generate: {{ length: 8 }} }}\n{age}{ROTATE_INSTANCE}"),
            "p.yml:4:35",
            "from 16 to 128",
        ),
        (
            format!("hosts: all\nrotate:\n{users}  password: hunter2\n{age}{ROTATE_INSTANCE}"),
            "p.yml:4:13",
            "must be `{ generate: { length: N } }`",
        ),
        (
            format!("hosts: all\nrotate:\n{users}{password}  max_age: 60\n{ROTATE_INSTANCE}"),
            "p.yml:5:12",
            "followed by `d`",
        ),
        (
            format!("hosts: all\nrotate:\n{users}{password}{age}  max_ages: 1d\n{ROTATE_INSTANCE}"),
            "p.yml:6:3",
            "unknown key `rotate.max_ages`",
        ),
        (
            format!("hosts: all\nrotate:\n{users}{age}{ROTATE_INSTANCE}"),
            "p.yml:3:3",
            "`rotate` needs `password`",
        ),
    ];
    let mut wrong = Vec::new();
    for (text, at, needle) in cases {
        let (_, messages) = load_text(&text);
        if !messages
            .iter()
            .any(|message| message.contains(at) && message.contains(needle))
        {
            wrong.push(format!("{needle} at {at}: {messages:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_documented_rotation_routine_reads_clean() {
    let (playbook, diagnostics) = Playbook::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/playbooks/rotate-routine.yml"
    )));
    let messages: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    assert!(messages.is_empty(), "{messages:?}");
    let playbook = playbook.unwrap();
    assert_eq!(playbook.rotate.unwrap().max_age_days, 60);
    assert_eq!(
        playbook.instance.unwrap().retire_old_user,
        RetireOldUser::Lock
    );
}

#[test]
fn a_store_command_may_have_a_read_command() {
    let (playbook, messages) = load_text(&format!(
        "hosts: all\nrotate:\n  users: [a, b]\n  password: {{ generate: {{}} }}\n  max_age: 1d\n  store:\n    command: [/bin/put, \"{{{{ rotate_user }}}}\"]\n    read: [/bin/get, \"{{{{ rotate_user }}}}\"]\n{ROTATE_INSTANCE}"
    ));
    assert!(messages.is_empty(), "{messages:?}");
    assert_eq!(
        playbook.unwrap().rotate.unwrap().store,
        Some(RotateStore::Command {
            program: "/bin/put".into(),
            arguments: vec!["{{ rotate_user }}".into()],
            read: Some(("/bin/get".into(), vec!["{{ rotate_user }}".into()])),
        })
    );
}

#[test]
fn the_wrapper_section_is_read_numbers_as_strings_null_as_unset() {
    let (playbook, messages) = load_text(
        "hosts: all\nwrapper:\n  wrapper.java.maxmemory: 2048\n  wrapper.java.additional: [\"-Dx=1\", \"-Dy=2\"]\n  \
         wrapper.java.additional.4: \"-Dz\"\n  wrapper.ntservice.password: { secret: \"env:SERVICE_PW\" }\n  wrapper.debug: ~\n",
    );
    assert!(messages.is_empty(), "{messages:?}");
    let wrapper = playbook.unwrap().wrapper;
    let values: Vec<(&str, &WrapperValue)> = wrapper
        .iter()
        .map(|entry| (entry.key.as_str(), &entry.value))
        .collect();
    assert_eq!(
        values,
        [
            (
                "wrapper.java.maxmemory",
                &WrapperValue::Set(SetValue::Template("2048".into()))
            ),
            (
                "wrapper.java.additional",
                &WrapperValue::Arguments(vec!["-Dx=1".into(), "-Dy=2".into()])
            ),
            (
                "wrapper.java.additional.4",
                &WrapperValue::Set(SetValue::Template("-Dz".into()))
            ),
            (
                "wrapper.ntservice.password",
                &WrapperValue::Set(SetValue::Secret("env:SERVICE_PW".into()))
            ),
            ("wrapper.debug", &WrapperValue::Unset),
        ]
    );
    // A wrapper: section alone is something to do (no "sets nothing").
    let (_, messages) = load_text("hosts: all\nwrapper: { wrapper.java.maxmemory: 2048 }\n");
    assert!(messages.is_empty(), "{messages:?}");
}

#[test]
fn wrapper_problems_are_found_with_their_line_and_a_hint() {
    let cases = [
        (
            "hosts: all\nwrapper:\n  java.maxmemory: 2048\n",
            "p.yml:3:3",
            "`java.maxmemory` in `wrapper` is not a wrapper property",
            "did you mean `wrapper.java.maxmemory`?",
        ),
        (
            "hosts: all\nwrapper:\n  wraper.java.maxmemory: 2048\n",
            "p.yml:3:3",
            "is not a wrapper property",
            "did you mean `wrapper.java.maxmemory`?",
        ),
        (
            "hosts: all\nwrapper:\n  mid.instance.username: x\n",
            "p.yml:3:3",
            "is not a wrapper property",
            "start with `wrapper.`",
        ),
        (
            "hosts: all\nwrapper:\n  wrapper.java.additional: \"-Dx=1\"\n",
            "p.yml:3:28",
            "takes a list of JVM arguments",
            "wrapper.java.additional.4",
        ),
        (
            "hosts: all\nwrapper:\n  wrapper.java.additional: [[1]]\n",
            "p.yml:3:29",
            "must be a string",
            "",
        ),
        (
            "hosts: all\nwrapper:\n  wrapper.name: [a]\n",
            "p.yml:3:17",
            "not a list",
            "",
        ),
        (
            "hosts: all\nwrapper: [wrapper.java.maxmemory]\n",
            "p.yml:2:10",
            "must be a mapping",
            "wrapper.java.maxmemory: 2048",
        ),
        (
            "hosts: all\nwrapper:\n  wrapper.name: { file: x }\n",
            "p.yml:3:17",
            "must be `{ secret: REF }`",
            "",
        ),
    ];
    for (text, at, expected, hint) in cases {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("p.yml");
        std::fs::write(&path, text).unwrap();
        let (_, diagnostics) = Playbook::load(&path);
        let found = diagnostics
            .iter()
            .find(|diagnostic| diagnostic.is_error())
            .unwrap_or_else(|| panic!("an error for {text}"));
        let message = found.to_string();
        assert!(
            message.contains(at) && message.contains(expected),
            "{expected} at {at}: {message}"
        );
        assert!(
            found.hint.as_deref().unwrap_or_default().contains(hint),
            "{hint}: {:?}",
            found.hint
        );
    }
    // A password written in the playbook is a warning, as under `set:`.
    let (_, messages) = load_text("hosts: all\nwrapper:\n  wrapper.ntservice.password: hunter2\n");
    assert!(
        messages.iter().any(
            |message| message.contains("is sensitive but its value is written in the playbook")
        ),
        "{messages:?}"
    );
}
