//! Secret references the inventory can steer, and plan files: bounded,
//! checked, and never a way to run what the playbook does not say
//! (security issue 14).

use std::path::Path;

use crate::support::midfleet;

/// An inventory of two hosts whose `mid_name` is `emea01` and `hostile`.
fn inventory(directory: &Path, hostile: &str) -> String {
    let path = directory.join("inventory.yml");
    std::fs::write(
        &path,
        format!(
            "all:\n  hosts:\n    mid-emea-01:\n      ansible_host: 127.0.0.1\n      mid_home: /opt/mid\n      mid_name: emea01\n    mid-evil-01:\n      ansible_host: 127.0.0.1\n      mid_home: /opt/mid\n      mid_name: \"{hostile}\"\n"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

fn playbook(directory: &Path, reference: &str) -> String {
    let path = directory.join("playbook.yml");
    std::fs::write(
        &path,
        format!("hosts: all\nset:\n  mid.instance.password: {{ secret: \"{reference}\" }}\n"),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn a_host_variable_cannot_lead_a_file_reference_out_of_its_folder() {
    let directory = tempfile::tempdir().unwrap();
    let secrets = directory.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("emea01"), "inside-value\n").unwrap();
    let reference = format!("file:{}/{{{{ mid_name }}}}", secrets.display());
    let playbook = playbook(directory.path(), &reference);
    for hostile in [
        "../../../../etc/hostname",
        "../../../../dev/zero",
        "/etc/hostname",
    ] {
        let inventory = inventory(directory.path(), hostile);
        let run = midfleet(
            ["check", "-i", &inventory, &playbook, "--resolve-secrets"],
            &[],
        );
        assert_eq!(run.code, 3, "{hostile}: {}", run.all_output());
        // The diagnostic names the playbook line, the host, the parameter
        // and the template as written.
        assert!(run.stderr.contains("playbook.yml:3:"), "{}", run.stderr);
        assert!(run.stderr.contains("host mid-evil-01"), "{}", run.stderr);
        assert!(
            run.stderr.contains(&format!("in `{reference}`")),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("leaves"), "{}", run.stderr);
        assert!(
            run.stderr
                .contains("must stay in the folder its template starts with"),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("mid-emea-01"), "{}", run.stderr);
        let hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        if !hostname.trim().is_empty() {
            assert!(
                !run.all_output().contains(hostname.trim()),
                "{}",
                run.all_output()
            );
        }
    }
    // A name that stays inside is read (and warned about: 0644).
    let inventory = inventory(directory.path(), "emea01");
    let run = midfleet(
        ["check", "-i", &inventory, &playbook, "--resolve-secrets"],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(
        run.stderr
            .contains("is readable by group or others (mode 0644)"),
        "{}",
        run.stderr
    );
    assert!(!run.all_output().contains("inside-value"));
}

#[test]
fn a_host_variable_cannot_make_an_env_name_of_other_characters() {
    let directory = tempfile::tempdir().unwrap();
    let playbook = playbook(directory.path(), "env:MID_PW_{{ mid_name }}");
    for hostile in ["x.y", "../PATH", "A=B"] {
        let inventory = inventory(directory.path(), hostile);
        let run = midfleet(["check", "-i", &inventory, &playbook], &[]);
        assert_eq!(run.code, 3, "{hostile}: {}", run.all_output());
        assert!(
            run.stderr.contains(&format!(
                "`env:MID_PW_{hostile}`: an environment variable name may hold only letters, digits and `_`"
            )),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("host mid-evil-01"), "{}", run.stderr);
        assert!(
            run.stderr.contains("in `env:MID_PW_{{ mid_name }}`"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("playbook.yml:3:"), "{}", run.stderr);
    }
}
