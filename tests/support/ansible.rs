//! The real Ansible, for tests that compare midfleet with it: ansible-core
//! (pinned) installed from PyPI into a venv under `target/`, once per
//! checkout. When it cannot be installed the caller panics with the reason:
//! a comparison suite never skips silently.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The ansible-core release the comparisons are made against.
pub const ANSIBLE_CORE: &str = "ansible-core==2.19.14";

/// The venv's `bin/` (ansible, ansible-inventory, ansible-vault, …),
/// installed on first use. Safe to call from parallel tests and from
/// several test binaries at once (a file lock guards the install).
pub fn ansible_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| match install() {
        Ok(bin) => bin,
        Err(reason) => panic!(
            "Ansible is needed for this test and could not be installed: {reason}\n\
             (python3 with venv and pip, and access to PyPI, are needed; \
             or install {ANSIBLE_CORE} into target/ansible-core-venv by hand)"
        ),
    })
}

fn install() -> Result<PathBuf, String> {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let venv = target.join("ansible-core-venv");
    let bin = venv.join("bin");
    let marker = venv.join(".installed");
    std::fs::create_dir_all(&target).map_err(|error| format!("{}: {error}", target.display()))?;
    let lock_path = target.join("ansible-core-venv.lock");
    let lock = std::fs::File::create(&lock_path)
        .map_err(|error| format!("{}: {error}", lock_path.display()))?;
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor this function owns; released when
        // `lock` is dropped at the end of the function.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(format!(
                "flock {}: {}",
                lock_path.display(),
                std::io::Error::last_os_error()
            ));
        }
    }
    let installed = std::fs::read_to_string(&marker).unwrap_or_default();
    if installed.trim() == ANSIBLE_CORE && bin.join("ansible-inventory").exists() {
        return Ok(bin);
    }
    eprintln!("installing {ANSIBLE_CORE} into {}", venv.display());
    let _ = std::fs::remove_dir_all(&venv);
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .map_err(|error| format!("python3 -m venv: {error}"))?;
    if !status.success() {
        return Err(format!(
            "python3 -m venv {} failed ({status})",
            venv.display()
        ));
    }
    let status = Command::new(bin.join("pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            ANSIBLE_CORE,
        ])
        .status()
        .map_err(|error| format!("pip install {ANSIBLE_CORE}: {error}"))?;
    if !status.success() {
        return Err(format!("pip install {ANSIBLE_CORE} failed ({status})"));
    }
    std::fs::write(&marker, format!("{ANSIBLE_CORE}\n"))
        .map_err(|error| format!("{}: {error}", marker.display()))?;
    drop(lock);
    Ok(bin)
}

/// An `ansible*` command from the venv, with an environment that keeps
/// Ansible to the test's own files: no user or system ansible.cfg, no
/// collections path outside the test, no colour, no cowsay.
pub fn ansible_command(program: &str, home: &Path) -> Command {
    let mut command = Command::new(ansible_bin().join(program));
    command
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", ansible_bin().display()))
        .env("HOME", home)
        .env("LANG", "C.UTF-8")
        .env("ANSIBLE_CONFIG", home.join("no-ansible.cfg"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_NOCOWS", "1")
        .env("ANSIBLE_LOCAL_TEMP", home.join(".ansible/tmp"))
        .env("ANSIBLE_HOME", home.join(".ansible"));
    command
}

#[test]
fn the_pinned_ansible_core_is_installed() {
    let home = tempfile::tempdir().unwrap();
    let output = ansible_command("ansible-inventory", home.path())
        .arg("--version")
        .output()
        .expect("ansible-inventory --version");
    let text = String::from_utf8_lossy(&output.stdout);
    let pinned = ANSIBLE_CORE.trim_start_matches("ansible-core==");
    assert!(output.status.success(), "{text}");
    assert!(text.contains(&format!("[core {pinned}]")), "{text}");
}
