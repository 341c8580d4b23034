//! `rotate.store`: a rotation's generated password kept where the
//! operator said, before the instance is changed (`docs/rotation.md`).
//!
//! Owns: running the store command (no shell; the password on its stdin
//! only; its own process group, killed whole past [`STORE_TIMEOUT`]; its
//! stdout sent to midfleet's stderr so it never mixes with data) and
//! writing the store file (0600, temporary file and rename). Must not: put
//! the password in an argv, the environment, a message or a log.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::plan::rotation::StoreTarget;
use crate::secret::SecretValue;

/// How long a store command may run.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(30);

/// Stores `password` at `target`. `Err` says why, never with the password.
pub fn store(target: &StoreTarget, password: &SecretValue) -> Result<(), String> {
    match target {
        StoreTarget::Command(words) => run(words, password, STORE_TIMEOUT),
        StoreTarget::File(path) => write_file(Path::new(path), password),
    }
}

fn run(words: &[String], password: &SecretValue, timeout: Duration) -> Result<(), String> {
    let (program, arguments) = words
        .split_first()
        .ok_or_else(|| "the store command is empty".to_string())?;
    let stdout = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|error| format!("cannot pass stderr to {program}: {error}"))?;
    let mut child = Command::new(program)
        .args(arguments)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .map_err(|error| format!("cannot run {program}: {error}"))?;
    let kill = |child: &mut std::process::Child| {
        // The whole group: what the program started too.
        // SAFETY: a plain kill(2) of the child's own process group.
        unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
        let _ = child.wait();
    };
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(password.expose().as_bytes()))
        .transpose();
    // stdin is closed here (dropped): end of file for the program. A
    // write that failed (the program exited without reading) is said
    // after its exit status, which tells more.
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => {
                return match &written {
                    Ok(_) => Ok(()),
                    Err(error) => Err(format!(
                        "{program} did not read the password on its stdin: {error}"
                    )),
                }
            }
            Ok(Some(status)) => return Err(format!("{program} failed ({status})")),
            Ok(None) if Instant::now() >= deadline => {
                kill(&mut child);
                return Err(format!(
                    "{program} did not finish within {} s and was killed",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(error) => {
                kill(&mut child);
                return Err(format!("cannot wait for {program}: {error}"));
            }
        }
    }
}

/// Runs `words` (a store's `read:`: no shell, stdin empty, its stderr
/// shown) for the password it prints; one trailing newline is removed.
/// Killed with its group after [`STORE_TIMEOUT`].
pub fn read(words: &[String]) -> Result<zeroize::Zeroizing<String>, String> {
    let (program, arguments) = words
        .split_first()
        .ok_or_else(|| "the read command is empty".to_string())?;
    let child = Command::new(program)
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .map_err(|error| format!("cannot run {program}: {error}"))?;
    let group = child.id() as libc::pid_t;
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(STORE_TIMEOUT).is_err() {
            // SAFETY: a plain kill(2) of the child's own process group.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
    });
    let output = child.wait_with_output();
    let _ = done.send(());
    let _ = watchdog.join();
    let output = output.map_err(|error| format!("cannot wait for {program}: {error}"))?;
    let mut stdout = zeroize::Zeroizing::new(output.stdout);
    if !output.status.success() {
        return Err(format!("{program} failed ({})", output.status));
    }
    if stdout.last() == Some(&b'\n') {
        stdout.pop();
    }
    let text = std::str::from_utf8(&stdout)
        .map_err(|_| format!("{program} printed something that is not UTF-8 text"))?;
    Ok(zeroize::Zeroizing::new(text.to_string()))
}

/// Writes `password` to `path`, 0600, through a new temporary file in the
/// same folder and a rename: the file holds the old password or the new
/// one, never part of either.
fn write_file(path: &Path, password: &SecretValue) -> Result<(), String> {
    let shown = path.display();
    let folder = path
        .parent()
        .filter(|folder| folder.is_dir())
        .ok_or_else(|| format!("{shown}: its folder does not exist"))?;
    let name = path
        .file_name()
        .ok_or_else(|| format!("{shown}: not a file name"))?;
    let temporary = folder.join(format!(
        ".{}.midfleet-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(password.expose().as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, path))
        .and_then(|()| std::fs::File::open(folder)?.sync_all());
    if let Err(error) = result {
        let _ = std::fs::remove_file(&temporary);
        return Err(format!("{shown}: {error}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_command_gets_the_password_on_stdin_only() {
        let directory = tempfile::tempdir().unwrap();
        let out = directory.path().join("out");
        let words = vec![
            "sh".to_string(),
            "-c".into(),
            "cat > \"$0\"; echo \"$@\" > \"$0.args\"".into(),
            out.display().to_string(),
            "user=svc_a".into(),
        ];
        let password = SecretValue::new("Pw-1!#%*+,-.=?@^_~".into());
        store(&StoreTarget::Command(words), &password).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), password.expose());
        let arguments = std::fs::read_to_string(directory.path().join("out.args")).unwrap();
        assert_eq!(arguments.trim(), "user=svc_a");
    }

    #[test]
    fn a_failing_or_hanging_command_is_an_error_without_the_password() {
        let password = SecretValue::new("Pw-secret-2".into());
        let failing = store(
            &StoreTarget::Command(vec![
                "sh".into(),
                "-c".into(),
                "cat >/dev/null; exit 3".into(),
            ]),
            &password,
        )
        .unwrap_err();
        assert!(failing.contains("sh failed"), "{failing}");
        assert!(!failing.contains("Pw-secret"));
        let missing = store(
            &StoreTarget::Command(vec!["/nonexistent/store".into()]),
            &password,
        )
        .unwrap_err();
        assert!(
            missing.contains("cannot run /nonexistent/store"),
            "{missing}"
        );
        let started = Instant::now();
        let hanging = run(
            &["sh".into(), "-c".into(), "sleep 30 & sleep 30".into()],
            &password,
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(hanging.contains("was killed"), "{hanging}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // Exiting without reading: its exit status, not a broken pipe.
        let early = store(
            &StoreTarget::Command(vec!["sh".into(), "-c".into(), "exit 4".into()]),
            &SecretValue::new("x".repeat(200_000)),
        )
        .unwrap_err();
        assert!(early.contains("sh failed (exit status: 4)"), "{early}");
        let ignoring = store(
            &StoreTarget::Command(vec!["true".into()]),
            &SecretValue::new("x".repeat(200_000)),
        )
        .unwrap_err();
        assert!(
            ignoring.contains("true did not read the password"),
            "{ignoring}"
        );
    }

    #[test]
    fn a_read_command_prints_the_stored_password() {
        let read_back = read(&["printf".into(), "Pw-4\\n".into()]).unwrap();
        assert_eq!(read_back.as_str(), "Pw-4");
        let failing = read(&["false".into()]).unwrap_err();
        assert!(failing.contains("false failed"), "{failing}");
    }

    #[test]
    fn a_file_is_written_0600_whole() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("lab001");
        std::fs::write(&path, "old").unwrap();
        let password = SecretValue::new("Pw-3".into());
        store(&StoreTarget::File(path.display().to_string()), &password).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "Pw-3");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            std::fs::read_dir(directory.path()).unwrap().count(),
            1,
            "no temporary left"
        );
        let missing = store(
            &StoreTarget::File(directory.path().join("no/such").display().to_string()),
            &password,
        )
        .unwrap_err();
        assert!(missing.contains("its folder does not exist"), "{missing}");
    }
}
