//! What to tell an Ansible user who gives midfleet an option of
//! `ansible-playbook` that midfleet does not have: clap's own tip ("to pass
//! '-u' as a value, use '-- -u'") would send them the wrong way.
//!
//! Owns: the table of such options and their tips. Must not: accept an
//! option (flags midfleet has never reach this table: clap takes them).

/// The tip for an `ansible-playbook` option midfleet lacks, given as
/// `argument` (`-u`, `--user`, `--user=x`); `None` for anything else.
pub fn tip(argument: &str) -> Option<&'static str> {
    let option = argument
        .split_once('=')
        .map_or(argument, |(option, _)| option);
    let tip = match option {
        "-u" | "--user" => {
            "midfleet has no -u: the login user comes from the inventory (`ansible_user`), \
             then ansible.cfg's `remote_user` or ANSIBLE_REMOTE_USER, then ~/.ssh/config"
        }
        "-k" | "--ask-pass" | "--connection-password-file" => {
            "midfleet logs in with SSH keys only (ssh-agent or `ansible_ssh_private_key_file`); \
             it never asks for or sends a login password"
        }
        "-K" | "--ask-become-pass" | "--become-password-file" => {
            "midfleet runs sudo without a password (a NOPASSWD rule for the commands it runs); \
             it never asks for a sudo password"
        }
        "-b" | "--become" => "set `ansible_become: true` for the hosts in the inventory",
        "--become-user" => "set `ansible_become_user` for the hosts in the inventory",
        "--become-method" => "set `ansible_become_method` in the inventory (midfleet uses sudo)",
        "-C" | "--check" => {
            "`midfleet plan` shows what would change without changing anything; \
             `midfleet check` validates offline"
        }
        "-D" | "--diff" => "`midfleet plan` shows every change, sensitive values masked",
        "--list-hosts" => "`midfleet hosts PATTERN` lists the hosts a pattern selects",
        "--syntax-check" => "`midfleet check` validates the inventory and the playbook offline",
        "-t" | "--tags" | "--skip-tags" | "--list-tags" | "--list-tasks" | "--start-at-task"
        | "--step" => "a midfleet playbook has no tasks or tags: it declares config.xml values",
        "--private-key" | "--key-file" => {
            "set `ansible_ssh_private_key_file` in the inventory, or `private_key_file` in ansible.cfg"
        }
        "-T" | "--timeout" => {
            "the connect timeout comes from `ansible_ssh_timeout` in the inventory or `timeout` \
             in ansible.cfg; --ssh-timeout bounds each SSH operation once connected"
        }
        "-c" | "--connection" => "midfleet connects over SSH only",
        "--ssh-common-args" | "--ssh-extra-args" | "--scp-extra-args" | "--sftp-extra-args" => {
            "give jump hosts in the inventory (`ansible_ssh_common_args` with -J or ProxyJump, or `jump`)"
        }
        "-J" => "midfleet's --ask-vault-pass asks for the vault password (or give \
             --vault-password-file FILE, --vault-id, ANSIBLE_VAULT_PASSWORD_FILE or ansible.cfg's \
             `vault_password_file`)",
        "-M" | "--module-path" | "--flush-cache" | "--force-handlers" => {
            "midfleet runs no Ansible modules, facts cache or handlers"
        }
        _ => return None,
    };
    Some(tip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansible_options_get_a_tip_and_others_none() {
        assert!(tip("-u").unwrap().contains("ansible_user"));
        assert!(tip("--user=deploy").unwrap().contains("ansible_user"));
        assert!(tip("-C").unwrap().contains("midfleet plan"));
        assert!(tip("-J").unwrap().contains("--ask-vault-pass"));
        assert_eq!(tip("--frobnicate"), None);
        assert_eq!(tip("-x"), None);
    }
}
