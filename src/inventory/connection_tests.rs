//! Connection variables as Ansible reads them: which of its names wins
//! when several are set (in any scope), become user and method, ssh
//! arguments turned into jumps or refused, near-miss names, and hosts
//! written as `host:port` or IPv6. Each expectation was checked against
//! ansible-core 2.19 (`ansible -m raw` with an `ssh` that records its
//! argv, and `ansible-inventory --list`).

use std::path::Path;

use super::{Host, Inventory, JumpHop};
use crate::diagnostic::{Diagnostic, Severity};
use crate::template::Templates;

fn load(name: &str, text: &str) -> (Inventory, Vec<Diagnostic>) {
    let (inventory, diagnostics) = Inventory::from_text(Path::new(name), text);
    (inventory, diagnostics.into_vec())
}

fn errors(diagnostics: &[Diagnostic]) -> Vec<String> {
    diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.severity == Severity::Error)
        .map(|diagnostic| diagnostic.message.clone())
        .collect()
}

fn warnings(diagnostics: &[Diagnostic]) -> Vec<String> {
    diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.severity == Severity::Warning)
        .map(|diagnostic| {
            format!(
                "{}{}",
                diagnostic.message,
                diagnostic
                    .hint
                    .as_ref()
                    .map(|hint| format!(" / {hint}"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// Loads an INI inventory that must raise no error, and resolves `host`.
fn host(text: &str, name: &str) -> Host {
    let (inventory, diagnostics) = load("inventory.ini", text);
    assert_eq!(errors(&diagnostics), Vec::<String>::new(), "{text}");
    inventory
        .resolve(name, &Templates::new())
        .unwrap_or_else(|problems| panic!("{name}: {problems:#?}"))
}

fn resolve_problems(text: &str, name: &str) -> Vec<Diagnostic> {
    let (inventory, _) = load("inventory.ini", text);
    inventory
        .resolve(name, &Templates::new())
        .expect_err("the host is refused")
}

fn hop(user: Option<&str>, host: &str, port: Option<u16>) -> JumpHop {
    JumpHop {
        user: user.map(str::to_string),
        host: host.to_string(),
        port,
        identity_file: None,
    }
}

#[test]
fn ansible_ssh_names_win_over_the_short_ones_in_any_scope() {
    // The issue's measurement: both on one line.
    let one_line = "h ansible_port=1717 ansible_ssh_port=1532 ansible_host=10.0.0.1 \
                    ansible_ssh_host=10.0.0.2 ansible_user=u1 ansible_ssh_user=u2\n";
    let resolved = host(one_line, "h");
    assert_eq!(
        (
            resolved.port,
            resolved.address.as_str(),
            resolved.user.as_deref()
        ),
        (Some(1532), "10.0.0.2", Some("u2"))
    );
    // The short names on the host lose to the `ansible_ssh_` ones on its
    // group: Ansible merges scopes first, then takes the last name of its
    // list that is set.
    let across_scopes = "[g]\nh ansible_port=1717 ansible_host=10.0.0.3 ansible_user=hostuser\n\
                         [g:vars]\nansible_ssh_port=1532\nansible_ssh_host=10.9.9.9\nansible_ssh_user=groupuser\n";
    let resolved = host(across_scopes, "h");
    assert_eq!(
        (
            resolved.port,
            resolved.address.as_str(),
            resolved.user.as_deref()
        ),
        (Some(1532), "10.9.9.9", Some("groupuser"))
    );
    // And the other way round: the `ansible_ssh_` name on the host.
    let reversed = "[g]\nh ansible_ssh_port=1532\n[g:vars]\nansible_port=1717\n";
    assert_eq!(host(reversed, "h").port, Some(1532));
    // A short name alone still counts.
    assert_eq!(host("h ansible_port=1717\n", "h").port, Some(1717));
}

#[test]
fn timeout_and_key_names_follow_ansible_too() {
    let resolved = host(
        "[g]\nh ansible_timeout=5 ansible_private_key_file=/k1\n\
         [g:vars]\nansible_ssh_timeout=7\nansible_ssh_private_key_file=/k2\n",
        "h",
    );
    assert_eq!(resolved.connect_timeout, Some(7));
    assert_eq!(resolved.identity_file.as_deref(), Some(Path::new("/k2")));
    let resolved = host("h ansible_timeout=5 ansible_private_key_file=/k1\n", "h");
    assert_eq!(resolved.connect_timeout, Some(5));
    assert_eq!(resolved.identity_file.as_deref(), Some(Path::new("/k1")));
}

#[test]
fn native_names_compete_with_ansible_s_by_scope() {
    // The native name in the higher scope wins …
    let resolved = host("[g]\nh port=2000\n[g:vars]\nansible_ssh_port=1532\n", "h");
    assert_eq!(resolved.port, Some(2000));
    // … in the same scope too …
    assert_eq!(
        host("h port=2000 ansible_ssh_port=1532\n", "h").port,
        Some(2000)
    );
    // … against Ansible's winner, whichever of Ansible's names it is:
    // here `ansible_ssh_port` (group) beats `ansible_port` (host), then
    // ties with `port` on scope …
    let resolved = host(
        "[g]\nh ansible_port=1717\n[g:vars]\nport=2000\nansible_ssh_port=1532\n",
        "h",
    );
    assert_eq!(resolved.port, Some(2000));
    // … and loses to it in a higher scope.
    let resolved = host("[g]\nh ansible_port=1717\n[g:vars]\nport=2000\n", "h");
    assert_eq!(resolved.port, Some(1717));
}

#[test]
fn become_user_and_its_sudo_command() {
    let resolved = host("h ansible_become=yes ansible_become_user=mid\n", "h");
    assert_eq!(resolved.become_as(), Some("mid"));
    assert_eq!(
        crate::transport::shell_command(resolved.become_as()),
        "sudo -n -u 'mid' -- sh -s"
    );
    // Root by default, with the command midfleet always ran.
    let resolved = host("h ansible_become=yes\n", "h");
    assert_eq!(resolved.become_user.as_deref(), Some("root"));
    assert_eq!(
        crate::transport::shell_command(resolved.become_as()),
        "sudo -n -- sh -s"
    );
    // Without become, Ansible ignores become_user, and so does midfleet.
    let resolved = host("h ansible_become_user=mid ansible_become_method=su\n", "h");
    assert_eq!(resolved.become_as(), None);
    assert_eq!(crate::transport::shell_command(None), "sh -s");
    // `ansible_sudo_user` is the last of the sudo plugin's names: it wins,
    // from any scope.
    let resolved = host(
        "[g]\nh ansible_become=yes ansible_become_user=mid\n[g:vars]\nansible_sudo_user=other\n",
        "h",
    );
    assert_eq!(resolved.become_as(), Some("other"));
    // Sudo's default flags and method are accepted.
    let resolved = host(
        "h ansible_become=yes ansible_become_method=sudo ansible_become_exe=sudo \
         ansible_become_flags='-H -S -n'\n",
        "h",
    );
    assert_eq!(resolved.become_as(), Some("root"));
}

#[test]
fn become_methods_programs_and_flags_other_than_sudo_s_are_refused() {
    for (line, says) in [
        (
            "ansible_become_method=su",
            "`ansible_become_method` is `su`: midfleet becomes another user only with `sudo -n`",
        ),
        (
            "ansible_become_method=doas",
            "`ansible_become_method` is `doas`",
        ),
        (
            "ansible_become_method=pbrun",
            "`ansible_become_method` is `pbrun`",
        ),
        (
            "ansible_become_exe=/usr/local/bin/sudo",
            "`ansible_become_exe` is `/usr/local/bin/sudo`",
        ),
        ("ansible_sudo_exe=dzdo", "`ansible_sudo_exe` is `dzdo`"),
        (
            "ansible_become_flags='-i'",
            "`ansible_become_flags`: `-i` would change",
        ),
        (
            "ansible_become_flags='-H -E'",
            "`ansible_become_flags`: `-E` would change",
        ),
    ] {
        let text = format!("h ansible_become=yes {line}\n");
        let problems = resolve_problems(&text, "h");
        assert_eq!(problems.len(), 1, "{line}: {problems:#?}");
        assert!(problems[0].message.contains(says), "{line}: {problems:#?}");
        assert_eq!(problems[0].hosts, ["h"], "{line}");
        assert!(problems[0].hint.is_some(), "{line}");
    }
}

#[test]
fn ssh_arguments_give_jumps_as_ssh_takes_them() {
    let bastion = vec![hop(Some("ops"), "bastion", None)];
    for (variables, expected) in [
        (
            r#"ansible_ssh_common_args='-o ProxyCommand="ssh -W %h:%p -q ops@bastion"'"#,
            bastion.clone(),
        ),
        (
            "ansible_ssh_extra_args='-J ops@bastion'",
            bastion.clone(),
        ),
        // common args come first on ssh's command line, and ssh takes the
        // first jump.
        (
            "ansible_ssh_common_args='-o ProxyJump=ops@bastion' ansible_ssh_extra_args='-o ProxyJump=other'",
            bastion.clone(),
        ),
        (
            "ansible_ssh_common_args='-o ServerAliveInterval=30' ansible_ssh_extra_args='-o ProxyJump=ops@bastion'",
            bastion.clone(),
        ),
        ("ansible_ssh_args='-C -o ProxyJump=ops@bastion'", bastion.clone()),
        ("ansible_ssh_common_args='-o ProxyCommand=none'", Vec::new()),
    ] {
        let resolved = host(&format!("h {variables}\n"), "h");
        assert_eq!(resolved.jump, expected, "{variables}");
    }
    // A ProxyCommand's `-p` and `-i` reach the hop.
    let resolved = host(
        r#"h ansible_ssh_common_args='-o ProxyCommand="ssh -W %h:%p -p 2222 -i /keys/b ops@bastion"'"#,
        "h",
    );
    assert_eq!(
        resolved.jump,
        [JumpHop {
            identity_file: Some("/keys/b".into()),
            ..hop(Some("ops"), "bastion", Some(2222))
        }]
    );
    // The host's common args beat the group's `jump` (higher scope); the
    // group's common args lose to the host's `jump`.
    let resolved = host(
        "[g]\nh ansible_ssh_common_args='-J ops@bastion'\n[g:vars]\njump=other\n",
        "h",
    );
    assert_eq!(resolved.jump, bastion);
    let resolved = host(
        "[g]\nh jump=ops@bastion\n[g:vars]\nansible_ssh_common_args='-J other'\n",
        "h",
    );
    assert_eq!(resolved.jump, bastion);
}

#[test]
fn ssh_arguments_that_change_the_connection_are_errors_where_written() {
    for (value, says) in [
        ("-p 2222", "`ansible_ssh_common_args`: `-p` sets the port behind Ansible's back: use `ansible_port`"),
        ("-F ./ssh_config", "reads another ssh config file"),
        (
            "-o ProxyCommand=\"nc -x proxy:1080 %h %p\"",
            "is not `ssh -W %h:%p",
        ),
    ] {
        let text = format!("[g]\nh\n[g:vars]\nansible_ssh_common_args='{value}'\n");
        let (_, diagnostics) = load("inventory.ini", &text);
        let errors = errors(&diagnostics);
        assert_eq!(errors.len(), 1, "{value}: {errors:?}");
        assert!(errors[0].contains(says), "{value}: {errors:?}");
        assert_eq!(diagnostics[0].origin.as_ref().and_then(|o| o.at).map(|at| at.line), Some(4));
    }
    let (_, diagnostics) = load(
        "inventory.ini",
        "h ansible_ssh_common_args='-o ServerAliveInterval=30 -o ControlPersist=60s -C'\n",
    );
    assert_eq!(
        warnings(&diagnostics),
        [
            "`ansible_ssh_common_args`: `-o ServerAliveInterval=30` is ignored: midfleet makes its own ssh connections",
            "`ansible_ssh_common_args`: `-o ControlPersist=60s` is ignored: midfleet makes its own ssh connections",
            "`ansible_ssh_common_args`: `-C` is ignored: midfleet makes its own ssh connections",
        ]
    ); // Turning host key checking off (the most common use of these
       // variables) is ignored with a warning, not an error: midfleet checks
       // host keys anyway.
    let (_, diagnostics) = load(
        "inventory.ini",
        "h ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'\n",
    );
    assert!(errors(&diagnostics).is_empty(), "{diagnostics:?}");
    assert_eq!(
        warnings(&diagnostics),
        [
            "`ansible_ssh_common_args`: `-o StrictHostKeyChecking=no` is ignored: midfleet always checks host keys against ~/.ssh/known_hosts (record new keys with `midfleet facts --accept-new-host-keys`)",
            "`ansible_ssh_common_args`: `-o UserKnownHostsFile=/dev/null` is ignored: midfleet always checks host keys against ~/.ssh/known_hosts (record new keys with `midfleet facts --accept-new-host-keys`)",
        ]
    );
}

#[test]
fn near_miss_names_are_warned_with_the_name_meant() {
    let (_, diagnostics) = load(
        "inventory.ini",
        "h ansible_hots=10.0.0.1 becom=yes ansible_prot=22 mid_hom=/opt/mid ansible_ssh_usr=ops\n",
    );
    assert_eq!(
        warnings(&diagnostics),
        [
            "`ansible_hots` is not a variable midfleet reads / did you mean `ansible_host`?",
            "`becom` is not a variable midfleet reads / did you mean `become`?",
            "`ansible_prot` is not a variable midfleet reads / did you mean `ansible_port`?",
            "`mid_hom` is not a variable midfleet reads / did you mean `mid_home`?",
            "`ansible_ssh_usr` is not a variable midfleet reads / did you mean `ansible_ssh_user`?",
        ]
    );
    // An operator's own names, plurals and Ansible's other variables are
    // left alone.
    let (_, diagnostics) = load(
        "inventory.ini",
        "h users=a ports=1 mid_name=x mid_homes=y ansible_python_interpreter=/usr/bin/python3 \
         ansible_shell_type=sh host=x env=prod region=emea\n",
    );
    assert_eq!(warnings(&diagnostics), Vec::<String>::new());
    // Turning host key checking off is said to be ignored.
    let (_, diagnostics) = load("inventory.ini", "h ansible_host_key_checking=false\n");
    assert_eq!(
        warnings(&diagnostics),
        ["`ansible_host_key_checking`: midfleet always checks host keys against known_hosts; this variable is ignored"]
    );
}

#[test]
fn ini_hosts_with_ports_and_ipv6_as_ansible_names_them() {
    let text = "h1:2222\nh2:2223 ansible_port=2999\n[2001:db8::1]:2224\n2001:db8::2\n\
                fe80::1%eth0\nmid-[01:02]:2225\n[10.0.0.5]:2226\n";
    let (inventory, diagnostics) = load("inventory.ini", text);
    assert_eq!(errors(&diagnostics), Vec::<String>::new());
    let names: Vec<&str> = inventory
        .host_entries()
        .map(|entry| entry.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "h1",
            "h2",
            "2001:db8::1",
            "2001:db8::2",
            "fe80::1%eth0",
            "mid-01",
            "mid-02",
            "10.0.0.5"
        ]
    );
    let port = |name: &str| inventory.resolve(name, &Templates::new()).unwrap().port;
    assert_eq!(port("h1"), Some(2222));
    assert_eq!(port("h2"), Some(2999), "a variable on the line wins");
    assert_eq!(port("2001:db8::1"), Some(2224));
    assert_eq!(port("2001:db8::2"), None);
    assert_eq!(port("mid-02"), Some(2225));
    assert_eq!(port("10.0.0.5"), Some(2226));
    let resolved = inventory.resolve("2001:db8::1", &Templates::new()).unwrap();
    assert_eq!(resolved.address, "2001:db8::1");

    let (_, diagnostics) = load("inventory.ini", "h:\n");
    assert_eq!(
        errors(&diagnostics),
        ["host `h:` ends with `:`, which is kept for a port"]
    );
    let (_, diagnostics) = load("inventory.ini", "h:99999\n");
    let (inventory, _) = load("inventory.ini", "h:99999\n");
    assert!(errors(&diagnostics).is_empty());
    let problems = inventory.resolve("h", &Templates::new()).unwrap_err();
    assert!(problems[0]
        .message
        .contains("`ansible_port` must be a number from 1 to 65535"));
}

#[test]
fn yaml_host_keys_with_ports_as_ansible_names_them() {
    let text = "all:\n  hosts:\n    y1:2222:\n    \"[2001:db8::5]:2230\": {ansible_user: u}\n    \
                2001:db8::6:\n    y-[1:2]:2231:\n    y3:2232: {ansible_port: 2999}\n";
    let (inventory, diagnostics) = load("inventory.yml", text);
    assert_eq!(errors(&diagnostics), Vec::<String>::new());
    let names: Vec<&str> = inventory
        .host_entries()
        .map(|entry| entry.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["y1", "2001:db8::5", "2001:db8::6", "y-1", "y-2", "y3"]
    );
    let resolved = |name: &str| inventory.resolve(name, &Templates::new()).unwrap();
    assert_eq!(resolved("y1").port, Some(2222));
    assert_eq!(resolved("2001:db8::5").port, Some(2230));
    assert_eq!(resolved("2001:db8::5").user.as_deref(), Some("u"));
    assert_eq!(resolved("2001:db8::6").port, None);
    assert_eq!(resolved("y-2").port, Some(2231));
    assert_eq!(resolved("y3").port, Some(2999));
}
