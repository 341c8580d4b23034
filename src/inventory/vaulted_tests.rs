//! Vaulted variables end to end inside the library: an inventory with
//! `!vault` values and a vaulted group_vars file (texts made by the real
//! `ansible-vault`), resolved hosts, and a playbook rendered for them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diagnostic::Diagnostic;
use crate::inventory::{Host, Inventory};
use crate::playbook::desired::{self, DesiredHost, DesiredValue};
use crate::playbook::Playbook;
use crate::template::Templates;
use crate::vault::{Keyring, VaultIds, VaultSettings};

// Made by the real ansible-vault: V11 (password `correct horse`) of
// `S3cret-MID!`, V12_PROD (id `prod`, `battery staple`) of `prod-pass`,
// FILE_V11 (`correct horse`) of `mid_password: from-file\nother: 5\n`.
use crate::vault::tests::{FILE_V11, V11, V12_PROD};

struct Fleet {
    folder: tempfile::TempDir,
}

impl Fleet {
    fn new(inventory: &str) -> Fleet {
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("inventory.yml"), inventory).unwrap();
        std::fs::create_dir(folder.path().join("group_vars")).unwrap();
        Fleet { folder }
    }

    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.folder.path().join(relative);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn password(&self, name: &str, password: &str) -> String {
        let path = self.write(name, password);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path.display().to_string()
    }

    fn load(&self, vault_ids: &[String]) -> (Inventory, Vec<Diagnostic>) {
        let keyring = Keyring::new(VaultIds::from_settings(&VaultSettings {
            vault_ids: vault_ids.to_vec(),
            ..VaultSettings::default()
        }));
        let (inventory, diagnostics) = Inventory::load_with_vault(
            &[self.folder.path().join("inventory.yml")],
            Arc::new(keyring),
        );
        (inventory, diagnostics.into_vec())
    }

    fn render(&self, host: &Host, playbook: &str) -> Result<DesiredHost, Vec<Diagnostic>> {
        let path = self.write("playbook.yml", playbook);
        let (playbook, diagnostics) = Playbook::from_text(Path::new(&path), playbook);
        assert!(!diagnostics.has_errors(), "{:?}", diagnostics.merged());
        desired::render(&playbook.unwrap(), host, &Templates::new())
    }
}

fn inventory_text(with_template: bool) -> String {
    let indent = |text: &str| {
        text.lines()
            .map(|line| format!("        {line}\n"))
            .collect::<String>()
    };
    format!(
        "all:\n  vars:\n    mid_password: !vault |\n{}    prod_password: !vault |\n{}{}  hosts:\n    mid-01:\n",
        indent(V11),
        indent(V12_PROD),
        if with_template {
            "    from_file: \"{{ vault_mid_password }}\"\n"
        } else {
            ""
        }
    )
}

fn literal(desired: &DesiredHost, name: &str) -> (String, bool) {
    let parameter = desired
        .set
        .iter()
        .find(|parameter| parameter.name == name)
        .unwrap();
    match &parameter.value {
        DesiredValue::Literal(value) => (value.clone(), parameter.sensitive),
        other => panic!("{other:?}"),
    }
}

fn messages(problems: &[Diagnostic]) -> String {
    problems
        .iter()
        .map(|problem| format!("{problem} {:?}", problem.hint))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn vaulted_values_and_files_become_sensitive_values_when_used() {
    let fleet = Fleet::new(&inventory_text(true));
    std::fs::create_dir(fleet.folder.path().join("group_vars/all")).unwrap();
    // `mid_password: from-file` inside the vaulted file is renamed so that
    // both forms are used: the file's `other`, and a template over it.
    fleet.write("group_vars/all/vault.yml", FILE_V11);
    fleet.write(
        "group_vars/all/vars.yml",
        "vault_mid_password: \"{{ other }}-x\"\n",
    );
    let pw1 = fleet.password("pw1", "correct horse\n");
    let pw2 = fleet.password("pw2", "battery staple");
    let (inventory, diagnostics) = fleet.load(&[pw1, format!("prod@{pw2}")]);
    assert!(diagnostics.is_empty(), "{}", messages(&diagnostics));
    let host = inventory.resolve("mid-01", &Templates::new()).unwrap();
    // The vaulted file's values win over the inventory's, as group_vars do.
    assert!(host.vaulted.holds("mid_password"));
    for name in ["mid_password", "prod_password", "other", "from_file"] {
        assert!(host.template_context.get(name).is_none(), "{name}");
    }
    let desired = fleet
        .render(
            &host,
            "hosts: all\nset:\n  mid.instance.password: { secret: \"var:mid_password\" }\n  a: { secret: \"var:prod_password\" }\n  b: \"pre-{{ from_file }}\"\n  c: { secret: \"var:from_file\" }\n  d: plain\n",
        )
        .unwrap();
    assert_eq!(
        literal(&desired, "mid.instance.password"),
        ("from-file".into(), true)
    );
    assert_eq!(literal(&desired, "a"), ("prod-pass".into(), true));
    assert_eq!(literal(&desired, "b"), ("pre-5-x".into(), true));
    assert_eq!(literal(&desired, "c"), ("5-x".into(), true));
    assert_eq!(literal(&desired, "d"), ("plain".into(), false));
    assert!(!format!("{desired:?}").contains("from-file"));
}

#[test]
fn a_wrong_password_names_the_variable_and_vault_id_and_shows_nothing() {
    let fleet = Fleet::new(&inventory_text(false));
    let wrong = fleet.password("wrong", "not it");
    let (inventory, diagnostics) = fleet.load(&[format!("prod@{wrong}")]);
    assert!(diagnostics.is_empty(), "{}", messages(&diagnostics));
    // Unused, the vaulted values block nothing.
    let host = inventory.resolve("mid-01", &Templates::new()).unwrap();
    let problems = fleet
        .render(
            &host,
            "hosts: all\nset:\n  mid.instance.password: { secret: \"var:prod_password\" }\n",
        )
        .unwrap_err();
    let shown = messages(&problems);
    assert_eq!(problems.len(), 1, "{shown}");
    assert!(
        shown.contains("cannot decrypt the vaulted variable `prod_password`"),
        "{shown}"
    );
    assert!(shown.contains("vault id `prod`"), "{shown}");
    assert_eq!(problems[0].hosts, vec!["mid-01".to_string()]);
    let origin = problems[0].origin.as_ref().unwrap();
    assert!(origin.file.ends_with("inventory.yml"), "{origin:?}");
    for secret in ["prod-pass", "not it", "battery"] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[test]
fn without_a_password_a_used_vaulted_value_says_how_to_give_one() {
    let fleet = Fleet::new(&inventory_text(false));
    fleet.write("group_vars/all.yml", FILE_V11);
    let (inventory, diagnostics) = fleet.load(&[]);
    // The vaulted file: a warning naming it; its variables unavailable.
    assert_eq!(diagnostics.len(), 1, "{}", messages(&diagnostics));
    assert!(diagnostics[0]
        .origin
        .as_ref()
        .unwrap()
        .file
        .ends_with("group_vars/all.yml"));
    let host = inventory.resolve("mid-01", &Templates::new()).unwrap();
    let problems = fleet
        .render(&host, "hosts: all\nset:\n  a: { secret: \"var:mid_password\" }\n  b: \"{{ other }}\"\n  c: { secret: \"var:other\" }\n")
        .unwrap_err();
    let shown = messages(&problems);
    assert_eq!(problems.len(), 3, "{shown}");
    assert!(shown.contains("no vault password was given"), "{shown}");
    assert!(shown.contains("--vault-password-file"), "{shown}");
    // An undefined variable names the vaulted file it may be in.
    assert_eq!(
        shown
            .matches("vaulted file that could not be decrypted")
            .count(),
        2,
        "{shown}"
    );
    assert!(shown.contains("group_vars/all.yml"), "{shown}");
}

#[test]
fn connection_settings_may_be_vaulted_and_are_revealed_when_read() {
    let fleet = Fleet::new("all:\n  hosts:\n    mid-01:\n");
    std::fs::create_dir(fleet.folder.path().join("host_vars")).unwrap();
    // A vaulted host_vars file setting the port and the user.
    let indent: String = V11.lines().map(|line| format!("  {line}\n")).collect();
    fleet.write(
        "host_vars/mid-01.yml",
        &format!("ansible_user: !vault |\n{indent}ansible_port: \"{{{{ port }}}}\"\nport: 2222\n"),
    );
    let pw1 = fleet.password("pw1", "correct horse");
    let (inventory, diagnostics) = fleet.load(&[pw1]);
    assert!(diagnostics.is_empty(), "{}", messages(&diagnostics));
    let host = inventory.resolve("mid-01", &Templates::new()).unwrap();
    assert_eq!(host.user.as_deref(), Some("S3cret-MID!"));
    assert_eq!(host.port, Some(2222));
    // Without the password, reading the setting is an error for the host.
    let (inventory, _) = fleet.load(&[]);
    let problems = inventory.resolve("mid-01", &Templates::new()).unwrap_err();
    let shown = messages(&problems);
    assert!(shown.contains("`ansible_user`"), "{shown}");
    assert!(shown.contains("no vault password was given"), "{shown}");
}

#[test]
fn a_vaulted_inventory_file_is_read_with_its_password() {
    let fleet = Fleet::new("");
    let folder = tempfile::tempdir().unwrap();
    let _ = folder;
    fleet.write("inventory.yml", FILE_V11);
    // The decrypted text is a mapping of variables, not an inventory: its
    // problems are reported as for a plain file, without the values.
    let pw1 = fleet.password("pw1", "correct horse");
    let (_, diagnostics) = fleet.load(&[pw1]);
    let shown = messages(&diagnostics);
    assert!(!shown.contains("from-file"), "{shown}");
    assert!(!shown.contains("decrypt"), "{shown}");
    let (_, diagnostics) = fleet.load(&[]);
    let shown = messages(&diagnostics);
    assert!(
        shown.contains("cannot decrypt the vaulted inventory file"),
        "{shown}"
    );
}
