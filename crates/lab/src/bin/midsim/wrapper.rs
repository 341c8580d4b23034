//! `start`, `stop`, `restart` and `status`, as Tanuki's `mid.sh` does them.
//! `start` returns as soon as the MID process is launched: exit 0 says the
//! wrapper started, not that the MID did (read the logs for that).
//!
//! Exit codes: `status` 0 running, 1 not running; the others 0, or 2 when
//! the MID cannot be launched (bad knobs, unwritable folders).

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::knobs;
use super::logs::{Logs, WRAPPER};
use super::process::{self, PidFile};

/// How long `stop` waits after SIGTERM before it sends SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

pub fn start(agent_dir: &Path) -> u8 {
    let pid_file = PidFile::new(agent_dir);
    if let Some(pid) = pid_file.running() {
        println!("MID Server is already running (PID {pid}).");
        return 0;
    }
    // Refuse bad knobs here, where the lab sees the message at once.
    if let Err(message) = knobs::read(agent_dir) {
        eprintln!("midfleet-midsim: {message}");
        return 2;
    }
    match launch(agent_dir) {
        Ok(pid) => {
            println!("Starting MID Server...");
            println!("Wrapper started (PID {pid}); the MID Server is starting.");
            0
        }
        Err(error) => {
            eprintln!("midfleet-midsim: cannot launch the MID Server: {error}");
            2
        }
    }
}

/// Spawns `run` in a new session, detached from this process's terminal and
/// pipes, with its output appended to wrapper.log, and records its pid.
fn launch(agent_dir: &Path) -> io::Result<u32> {
    let logs = Logs::new(agent_dir);
    let wrapper_log_path = logs.wrapper_path();
    if let Some(directory) = wrapper_log_path.parent() {
        fs::create_dir_all(directory)?;
    }
    let wrapper_log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(wrapper_log_path)?;
    logs.wrapper("STATUS", WRAPPER, "--> Wrapper Started as Daemon");
    let mut command = Command::new(std::env::current_exe()?);
    command
        .arg("run")
        .arg("--agent")
        .arg(agent_dir)
        .current_dir(agent_dir)
        .stdin(Stdio::null())
        .stdout(wrapper_log.try_clone()?)
        .stderr(wrapper_log);
    // SAFETY: setsid is async-signal-safe, as pre_exec requires.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // The child is not waited for: once this process exits, init adopts it.
    let child = command.spawn()?;
    PidFile::new(agent_dir).write(child.id())?;
    Ok(child.id())
}

/// While the MID is Upgrading, `stop` and `restart` are refused
/// (ServiceNow: "While in the Upgrading state, you cannot resume or
/// restart the MID Server").
fn refused_while_upgrading(agent_dir: &Path) -> bool {
    let upgrading = PidFile::new(agent_dir).running().is_some()
        && knobs::read(agent_dir)
            .is_ok_and(|knobs| super::kinds::is_upgrading(agent_dir, knobs.upgrade));
    if upgrading {
        println!(
            "The MID Server is Upgrading: while in the Upgrading state, you cannot resume or restart the MID Server. Wait until the upgrade ends (status Up on the instance)."
        );
    }
    upgrading
}

pub fn stop(agent_dir: &Path) -> u8 {
    if refused_while_upgrading(agent_dir) {
        return 1;
    }
    let pid_file = PidFile::new(agent_dir);
    let Some(pid) = pid_file.running() else {
        pid_file.remove();
        println!("MID Server is not running.");
        return 0;
    };
    println!("Stopping MID Server...");
    let logs = Logs::new(agent_dir);
    let stopped =
        process::send(pid, libc::SIGTERM).is_ok() && process::wait_for_exit(pid, STOP_TIMEOUT);
    if !stopped {
        logs.wrapper(
            "ERROR",
            WRAPPER,
            "Shutdown failed: Timed out waiting for the JVM to exit.  Killing it.",
        );
        let _ = process::send(pid, libc::SIGKILL);
        process::wait_for_exit(pid, STOP_TIMEOUT);
        println!("The MID Server did not stop in time and was killed.");
    }
    pid_file.remove();
    println!("Stopped MID Server.");
    0
}

pub fn restart(agent_dir: &Path) -> u8 {
    if refused_while_upgrading(agent_dir) {
        return 1;
    }
    stop(agent_dir);
    start(agent_dir)
}

pub fn status(agent_dir: &Path) -> u8 {
    match PidFile::new(agent_dir).running() {
        Some(pid) => {
            println!("MID Server is running (PID {pid}).");
            0
        }
        None => {
            println!("MID Server is not running.");
            1
        }
    }
}
