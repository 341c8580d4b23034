//! Ansible Vault end to end: values and files encrypted by the real
//! `ansible-vault` inside the test, decrypted by midfleet with Ansible's
//! options, applied as the new MID password on lab hosts and shown
//! nowhere; a wrong password stops everything before any host is
//! contacted.

use std::path::{Path, PathBuf};

use midfleet_lab::{Lab, LabSpec};

use crate::ansible::ansible_command;
use crate::lab::{lab, midsim, sshd_log_count};
use crate::support::{midfleet, Run};

/// The password of the whole vaulted group_vars file (label `default`).
const FILE_PASSWORD: &str = "Vault-file pw 1";
/// The password of the `prod` vault id, given by a client script.
const PROD_PASSWORD: &str = "Vault-prod pw 2";
/// The new MID password of the group, kept in the vaulted file.
const GROUP_SECRET: &str = "Gr0up-vaulted&<pw";
/// The new MID password of one host, a `!vault` string of vault id `prod`.
const HOST_SECRET: &str = "H0st-vaulted'\"pw";

fn write(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs `ansible-vault ARGUMENTS` in `directory`; its stdout.
fn ansible_vault(directory: &Path, arguments: &[&str]) -> String {
    let output = ansible_command("ansible-vault", directory)
        .current_dir(directory)
        .args(arguments)
        .output()
        .expect("run ansible-vault");
    assert!(
        output.status.success(),
        "ansible-vault {arguments:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

struct Vaulted {
    file_password: PathBuf,
    client_script: PathBuf,
    wrong_password: PathBuf,
    playbook: PathBuf,
}

/// Vaults the lab's secrets the way an Ansible user keeps them:
/// `group_vars/lab/vault.yml` encrypted whole (`vault_mid_password`),
/// `group_vars/lab/vars.yml` pointing `mid_password` at it, one host's
/// own `mid_password` as a `!vault` string of vault id `prod`, and a
/// vaulted variable nobody uses, under a password nobody gives.
fn vault_the_lab(lab: &Lab) -> Vaulted {
    let directory = &lab.directory;
    let secrets = directory.join("vault-secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let file_password = secrets.join("file-password");
    write(&file_password, &format!("{FILE_PASSWORD}\n"), 0o600);
    let prod_password = secrets.join("prod-password");
    write(&prod_password, PROD_PASSWORD, 0o600);
    let unknown_password = secrets.join("unknown-password");
    write(&unknown_password, "nobody gives this one", 0o600);
    let wrong_password = secrets.join("wrong-password");
    write(&wrong_password, "not the password\n", 0o600);
    // Ansible runs a `*-client` script with `--vault-id LABEL`.
    let client_script = secrets.join("vault-client.sh");
    write(
        &client_script,
        &format!(
            "#!/bin/sh\n[ \"$1\" = --vault-id ] && [ \"$2\" = prod ] || exit 2\ncat {}\n",
            prod_password.display()
        ),
        0o700,
    );

    let group_vars = directory.join("group_vars").join("lab");
    std::fs::create_dir_all(&group_vars).unwrap();
    let vault_file = group_vars.join("vault.yml");
    write(
        &vault_file,
        &format!("vault_mid_password: \"{GROUP_SECRET}\"\n"),
        0o600,
    );
    ansible_vault(
        directory,
        &[
            "encrypt",
            "--vault-password-file",
            file_password.to_str().unwrap(),
            vault_file.to_str().unwrap(),
        ],
    );
    assert!(std::fs::read_to_string(&vault_file)
        .unwrap()
        .starts_with("$ANSIBLE_VAULT;1.1;AES256"));
    let unused = ansible_vault(
        directory,
        &[
            "encrypt_string",
            "--vault-id",
            &format!("other@{}", unknown_password.display()),
            "--name",
            "unused_secret",
            "never-needed",
        ],
    );
    std::fs::write(
        group_vars.join("vars.yml"),
        format!("mid_password: \"{{{{ vault_mid_password }}}}\"\n{unused}"),
    )
    .unwrap();

    let host_vars = directory.join("host_vars");
    std::fs::create_dir_all(&host_vars).unwrap();
    let host = &lab.hosts[1].name;
    let own = ansible_vault(
        directory,
        &[
            "encrypt_string",
            "--vault-id",
            &format!("prod@{}", prod_password.display()),
            "--name",
            "mid_password",
            HOST_SECRET,
        ],
    );
    assert!(own.contains("$ANSIBLE_VAULT;1.2;AES256;prod"), "{own}");
    std::fs::write(host_vars.join(format!("{host}.yml")), own).unwrap();

    let playbook = directory.join("rotate-vault.yml");
    std::fs::write(
        &playbook,
        "hosts: lab\nset:\n  mid.instance.username: \"svc_{{ mid_name }}\"\n  \
         mid.instance.password: { secret: \"var:mid_password\" }\nhealth:\n  timeout: 20\nrollout:\n  serial: [100%]\n",
    )
    .unwrap();
    Vaulted {
        file_password,
        client_script,
        wrong_password,
        playbook,
    }
}

fn run(
    lab: &Lab,
    command: &str,
    playbook: &Path,
    extra: &[&str],
    environment: &[(&str, &str)],
) -> Run {
    let mut arguments = vec![
        command.to_string(),
        "-i".into(),
        lab.inventory.display().to_string(),
        playbook.display().to_string(),
        "--known-hosts".into(),
        lab.known_hosts.display().to_string(),
    ];
    if command == "apply" {
        arguments.push("--yes".into());
        arguments.push("--audit-log".into());
        arguments.push(lab.directory.join("audit.jsonl").display().to_string());
    }
    arguments.extend(extra.iter().map(|argument| argument.to_string()));
    midfleet(arguments, environment)
}

fn connections(lab: &Lab) -> usize {
    lab.hosts
        .iter()
        .map(|host| sshd_log_count(lab, &host.name, "Connection from"))
        .sum()
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [
        GROUP_SECRET,
        HOST_SECRET,
        FILE_PASSWORD,
        PROD_PASSWORD,
        "never-needed",
    ] {
        assert!(
            !text.contains(secret),
            "{what} shows a vaulted secret: {text}"
        );
    }
    // Nor as config.xml would escape them.
    assert!(!text.contains("Gr0up-vaulted&amp;"), "{what}: {text}");
}

#[test]
fn vaulted_passwords_are_applied_and_shown_nowhere() {
    let lab = lab(LabSpec::new(2, &midsim()));
    let vaulted = vault_the_lab(&lab);
    let new_user = |name: &str| format!("svc_{}", name.replace('-', ""));
    lab.add_instance_user(&new_user(&lab.hosts[0].name), GROUP_SECRET)
        .unwrap();
    lab.add_instance_user(&new_user(&lab.hosts[1].name), HOST_SECRET)
        .unwrap();
    let file_password = vaulted.file_password.display().to_string();
    let client = format!("prod@{}", vaulted.client_script.display());
    let wrong = format!("prod@{}", vaulted.wrong_password.display());

    // `hosts` and `check` need no password: nothing they do uses a vaulted
    // value; the vaulted file is named in a warning.
    let hosts = midfleet(
        ["hosts", "-i", lab.inventory.to_str().unwrap(), "lab", "-v"],
        &[],
    );
    assert_eq!(hosts.code, 0, "{}", hosts.all_output());
    assert!(
        hosts.stderr.contains("group_vars/lab/vault.yml"),
        "{}",
        hosts.stderr
    );
    assert!(
        hosts.stderr.contains("no vault password was given"),
        "{}",
        hosts.stderr
    );
    assert_no_secret("hosts", &hosts.all_output());

    // Without a password, the playbook's var: secret cannot be read: a
    // usage error, and no host contacted.
    let before = connections(&lab);
    let refused = run(&lab, "plan", &vaulted.playbook, &[], &[]);
    assert_eq!(refused.code, 3, "{}", refused.all_output());
    assert!(
        refused.stderr.contains("no host was contacted"),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains("vaulted file that could not be decrypted"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("--vault-password-file"),
        "{}",
        refused.stderr
    );

    // A wrong password for `prod`: an error naming the variable, where it
    // is written and the vault id; nothing contacted.
    let refused = run(
        &lab,
        "apply",
        &vaulted.playbook,
        &[
            "--vault-password-file",
            &file_password,
            "--vault-id",
            &wrong,
        ],
        &[],
    );
    assert_eq!(refused.code, 3, "{}", refused.all_output());
    let host_file = format!("host_vars/{}.yml", lab.hosts[1].name);
    for expected in [
        "cannot decrypt the vaulted variable `mid_password`",
        "vault id `prod`",
        host_file.as_str(),
        "no host was contacted",
    ] {
        assert!(
            refused.stderr.contains(expected),
            "`{expected}` in {}",
            refused.stderr
        );
    }
    assert_eq!(connections(&lab), before, "a host was contacted");
    assert_no_secret("the refusal", &refused.all_output());

    // The right passwords: the file's from ANSIBLE_VAULT_PASSWORD_FILE,
    // prod's from a client script. Planned, saved, applied: each MID logs
    // in with its vaulted password (the lab's instance accepts no other).
    let saved = lab.directory.join("vault.plan");
    let environment = [("ANSIBLE_VAULT_PASSWORD_FILE", file_password.as_str())];
    let plan = run(
        &lab,
        "plan",
        &vaulted.playbook,
        &[
            "--vault-id",
            &client,
            "--out",
            saved.to_str().unwrap(),
            "-v",
        ],
        &environment,
    );
    assert_eq!(plan.code, 0, "{}", plan.all_output());
    assert!(
        plan.stdout.contains("mid.instance.password = (sensitive)"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("Plan: 2 to change"), "{}", plan.stdout);
    assert_no_secret("plan", &plan.all_output());
    assert_no_secret("the plan file", &std::fs::read_to_string(&saved).unwrap());

    let applied = run(
        &lab,
        "apply",
        &vaulted.playbook,
        &["--vault-id", &client],
        &environment,
    );
    assert_eq!(applied.code, 0, "{}", applied.all_output());
    assert_no_secret("apply", &applied.all_output());
    assert_no_secret(
        "the audit log",
        &std::fs::read_to_string(lab.directory.join("audit.jsonl")).unwrap(),
    );
    for host in &lab.hosts {
        let config = String::from_utf8_lossy(&host.config()).into_owned();
        assert!(
            config.contains(&new_user(&host.name)),
            "{}: {config}",
            host.name
        );
    }

    // Applied: planning again finds nothing to change, so the values the
    // hosts hold are the vaulted ones.
    let again = run(
        &lab,
        "plan",
        &vaulted.playbook,
        &["--vault-id", &client],
        &environment,
    );
    assert_eq!(again.code, 0, "{}", again.all_output());
    assert!(
        again
            .stdout
            .contains("Plan: 0 to change, 0 to start, 2 unchanged"),
        "{}",
        again.all_output()
    );
    assert_no_secret("the second plan", &again.all_output());
}
