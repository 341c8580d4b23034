//! Ansible as the benchmarks run it: installed into a venv when missing,
//! the rotation as an Ansible user writes it, and its command line set up
//! the way its users are told to make it fast.

use std::path::{Path, PathBuf};
use std::process::Command;

use midfleet_lab::Lab;

/// The venv's bin folder, with Ansible and lxml in it.
pub fn ansible() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ansible-venv");
    let bin = venv.join("bin");
    if !bin.join("ansible-playbook").exists() {
        eprintln!("installing ansible and lxml into {}", venv.display());
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 -m venv");
        assert!(made.success(), "python3 -m venv failed");
        let installed = Command::new(bin.join("pip"))
            .args(["install", "--quiet", "ansible", "lxml"])
            .status()
            .expect("pip install ansible lxml");
        assert!(installed.success(), "pip install ansible lxml failed");
    }
    bin
}

/// The rotation as an Ansible user writes it.
pub const ANSIBLE_PLAYBOOK: &str = r#"- name: Rotate the MID Server instance user
  hosts: lab
  gather_facts: false
  vars:
    mid_config: "{{ mid_home }}/agent/config.xml"
  tasks:
    - name: Set the instance user
      community.general.xml:
        path: "{{ mid_config }}"
        xpath: "/parameters/parameter[@name='mid.instance.username']"
        attribute: value
        value: "{{ user_prefix }}_{{ mid_name }}"
      notify: Restart the MID
    - name: Set the instance password
      community.general.xml:
        path: "{{ mid_config }}"
        xpath: "/parameters/parameter[@name='mid.instance.password']"
        attribute: value
        value: "{{ lookup('ansible.builtin.env', 'BENCH_PASSWORD') }}"
      no_log: true
      notify: Restart the MID
    - name: Remove the key pair id (a new user needs a new key pair)
      community.general.xml:
        path: "{{ mid_config }}"
        xpath: "/parameters/parameter[@name='keypairs.mid_id']"
        state: absent
      notify: Restart the MID
  handlers:
    - name: Restart the MID
      ansible.builtin.command: "{{ mid_home }}/agent/bin/mid.sh restart"
"#;

/// CPU seconds of Ansible's persistent ssh control masters (not children
/// of anything this process waits for), which are then stopped.
pub fn control_masters_cpu(control_dir: &Path) -> f64 {
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let needle = control_dir.display().to_string();
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let command = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let command = String::from_utf8_lossy(&command);
        if !command.starts_with("ssh") || !command.contains(&needle) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|at| &stat[at + 2..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat: 11 and 12 after `)`.
        let used: f64 =
            fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0);
        total += used / ticks;
        // SAFETY: SIGTERM to an ssh master this benchmark's Ansible started.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    total
}

/// `ansible-playbook` of `playbook` over the lab's inventory at `forks`:
/// pipelining, ControlMaster/ControlPersist (sockets in `control_dir`),
/// host keys checked against the lab's known_hosts, the venv's Python on
/// the hosts; `--check --diff` when `check`. The play's users are
/// `PREFIX_MIDNAME`.
pub fn ansible_command(
    bin: &Path,
    lab: &Lab,
    playbook: &Path,
    control_dir: &Path,
    forks: usize,
    check: bool,
    prefix: &str,
) -> Command {
    let mut command = Command::new(bin.join("ansible-playbook"));
    command
        .arg("-i")
        .arg(&lab.inventory)
        .arg(playbook)
        .args(["-f", &forks.to_string(), "-e"])
        .arg(format!(
            "user_prefix={prefix} ansible_python_interpreter={}",
            bin.join("python").display()
        ))
        .env("ANSIBLE_PIPELINING", "True")
        .env("ANSIBLE_HOST_KEY_CHECKING", "True")
        .env(
            "ANSIBLE_SSH_ARGS",
            format!(
                "-C -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile={}",
                lab.known_hosts.display()
            ),
        )
        .env("ANSIBLE_SSH_CONTROL_PATH_DIR", control_dir)
        .env("ANSIBLE_LOCAL_TEMP", lab.directory.join("ansible-tmp"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "False");
    if check {
        command.args(["--check", "--diff"]);
    }
    command
}
