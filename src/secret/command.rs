//! `command:` secrets: running `sh -c CMD` on this machine for its stdout.
//!
//! Owns: the command's process group (killed whole past
//! [`COMMAND_TIMEOUT`](super::COMMAND_TIMEOUT) or [`MAX_SECRET_BYTES`] of
//! output), reading its output as it comes, and lending it the terminal
//! while it runs so that it can ask for a passphrase. Must not: pass a
//! secret in an argv or the environment, or put the output, or its length,
//! in a message.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::{Refusal, MAX_SECRET_BYTES};

const COMMAND_HINT: &str = "run the command by hand to see why; its stderr is shown above";

/// Runs `sh -c command` in its own process group and returns its stdout,
/// read as it comes: more than [`MAX_SECRET_BYTES`], or not done within
/// `timeout`, and the whole group is killed.
pub(super) fn run_command(command: &str, timeout: Duration) -> Result<Zeroizing<Vec<u8>>, Refusal> {
    let mut program = Command::new("sh");
    program.arg("-c").arg(command);
    run_program(program, "sh", timeout)
}

/// Runs `program` (named `name` in messages) as [`run_command`] runs
/// `sh -c`: its own process group, stdout read within the bounds, stdin
/// and stderr inherited.
pub(super) fn run_program(
    mut program: Command,
    name: &str,
    timeout: Duration,
) -> Result<Zeroizing<Vec<u8>>, Refusal> {
    let deadline = Instant::now() + timeout;
    let mut child = program
        .stdin(Stdio::inherit())
        .stderr(Stdio::inherit())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|error| Refusal::new(format!("cannot run {name}: {error}"), None))?;
    let terminal = Terminal::hand_to(&child);
    let result = read_output(&mut child, deadline, timeout);
    if result.is_err() {
        kill_group(&mut child);
    }
    drop(terminal);
    let output = result?;
    let status = child
        .wait()
        .map_err(|error| Refusal::new(format!("cannot wait for {name}: {error}"), None))?;
    if !status.success() {
        return Err(Refusal::new(
            format!("the command failed ({status})"),
            Some(COMMAND_HINT),
        ));
    }
    Ok(output)
}

/// Reads `child`'s stdout to its end, then waits for `child` to end, both
/// by `deadline`.
fn read_output(
    child: &mut Child,
    deadline: Instant,
    timeout: Duration,
) -> Result<Zeroizing<Vec<u8>>, Refusal> {
    let too_slow = || {
        Refusal::new(
            format!(
                "the command did not finish within {} s and was killed",
                timeout.as_secs_f64()
            ),
            Some("a command: secret must print the value and exit; run it by hand to see where it waits"),
        )
    };
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| Refusal::new("no pipe to the command's stdout", None))?;
    let mut buffer = Zeroizing::new(vec![0u8; MAX_SECRET_BYTES + 1]);
    let mut length = 0;
    loop {
        if !wait_readable(stdout.as_raw_fd(), deadline) {
            return Err(too_slow());
        }
        match stdout.read(&mut buffer[length..]) {
            Ok(0) => break,
            Ok(read) => length += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => {
                return Err(Refusal::new(
                    format!("cannot read the command's output: {error}"),
                    None,
                ))
            }
        }
        if length > MAX_SECRET_BYTES {
            return Err(Refusal::new(
                "the command's output is larger than 64 KiB; it was killed",
                Some("a command: secret must print only the value"),
            ));
        }
    }
    buffer.truncate(length);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return Ok(buffer),
            Ok(None) if Instant::now() >= deadline => return Err(too_slow()),
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(error) => {
                return Err(Refusal::new(
                    format!("cannot wait for the command: {error}"),
                    None,
                ))
            }
        }
    }
}

/// Whether `fd` has something to read (or its end) before `deadline`.
fn wait_readable(fd: libc::c_int, deadline: Instant) -> bool {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let milliseconds = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd, for the duration of the call.
        let ready = unsafe { libc::poll(&mut poll, 1, milliseconds) };
        if ready > 0 {
            return true;
        }
        if ready < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return true; // let read(2) report it
        }
    }
}

/// Kills `child`'s whole process group (what `sh -c` started too) and
/// reaps `child`.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) on the group this child leads (process_group(0)).
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// While a command runs in its own process group, the terminal (when
/// midfleet holds it in the foreground) belongs to that group, so that a
/// command that asks for a passphrase can read it; it is taken back when
/// this is dropped.
struct Terminal {
    ours: libc::pid_t,
}

impl Terminal {
    fn hand_to(child: &Child) -> Option<Terminal> {
        let pid = libc::pid_t::try_from(child.id()).ok()?;
        // SAFETY: isatty, getpgrp, tcgetpgrp, tcsetpgrp and kill take
        // plain values.
        unsafe {
            if libc::isatty(libc::STDIN_FILENO) != 1 {
                return None;
            }
            let ours = libc::getpgrp();
            if libc::tcgetpgrp(libc::STDIN_FILENO) != ours {
                return None;
            }
            if libc::tcsetpgrp(libc::STDIN_FILENO, pid) != 0 {
                return None;
            }
            // It may have stopped on reading before it had the terminal.
            libc::kill(-pid, libc::SIGCONT);
            Some(Terminal { ours })
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        // Taking the terminal back from a background group raises
        // SIGTTOU, which would stop midfleet: ignore it meanwhile.
        // SAFETY: signal(2) and tcsetpgrp(3) with plain values; the old
        // disposition is put back.
        unsafe {
            let previous = libc::signal(libc::SIGTTOU, libc::SIG_IGN);
            libc::tcsetpgrp(libc::STDIN_FILENO, self.ours);
            libc::signal(libc::SIGTTOU, previous);
        }
    }
}
