//! Processes by pid: the pid file, liveness, signals, and the flag the MID's
//! SIGTERM handler raises. A pid is only ever signalled when it is positive:
//! `kill(0)` or `kill(-1)` would hit whole process groups.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// `agent/work/mid.pid`: the pid of the running MID.
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    pub fn new(agent_dir: &Path) -> PidFile {
        PidFile {
            path: agent_dir.join("work").join("mid.pid"),
        }
    }

    /// The pid in the file, when there is a file holding one.
    pub fn read(&self) -> Option<i32> {
        fs::read_to_string(&self.path)
            .ok()?
            .trim()
            .parse()
            .ok()
            .filter(|pid| *pid > 0)
    }

    /// The pid in the file, when that process is alive.
    pub fn running(&self) -> Option<i32> {
        self.read().filter(|pid| is_alive(*pid))
    }

    /// Writes `pid` (atomically: readers never see half a number).
    pub fn write(&self, pid: u32) -> io::Result<()> {
        let directory = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(directory)?;
        let temporary = directory.join(format!(".mid.pid.{}", std::process::id()));
        fs::write(&temporary, format!("{pid}\n"))?;
        fs::rename(&temporary, &self.path)
    }

    pub fn remove(&self) {
        let _ = fs::remove_file(&self.path);
    }

    /// Removes the file when it still names `pid`.
    pub fn remove_if_holds(&self, pid: u32) {
        if self.read().is_some_and(|held| held as u32 == pid) {
            self.remove();
        }
    }
}

/// Whether process `pid` exists and is not a zombie (an exited process its
/// parent has not reaped yet, which `kill(pid, 0)` still finds).
pub fn is_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let exists = unsafe { libc::kill(pid, 0) } == 0
        || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists && !is_zombie(pid)
}

fn is_zombie(pid: i32) -> bool {
    // `/proc/<pid>/stat` is `pid (comm) state …`; comm may hold ')'.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

pub fn send(pid: i32, signal: libc::c_int) -> io::Result<()> {
    if pid <= 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to signal pid {pid}"),
        ));
    }
    // SAFETY: plain syscall on a positive pid.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Waits until `pid` is gone; false when it outlived `timeout`.
pub fn wait_for_exit(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while is_alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
    true
}

static TERMINATE: AtomicBool = AtomicBool::new(false);

extern "C" fn on_terminate(_signal: libc::c_int) {
    TERMINATE.store(true, Ordering::SeqCst);
}

/// Raises the flag on SIGTERM, or ignores SIGTERM altogether (a MID whose
/// stop hangs).
pub fn handle_terminate(ignore: bool) {
    let handler = if ignore {
        libc::SIG_IGN
    } else {
        on_terminate as extern "C" fn(libc::c_int) as libc::sighandler_t
    };
    // SAFETY: the handler only stores to an atomic, which is signal-safe.
    unsafe { libc::signal(libc::SIGTERM, handler) };
}

/// Forgets a SIGTERM received (one the MID decided to ignore).
pub fn clear_terminate() {
    TERMINATE.store(false, Ordering::SeqCst);
}

pub fn terminate_requested() -> bool {
    TERMINATE.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness() {
        assert!(is_alive(std::process::id() as i32));
        assert!(!is_alive(0));
        assert!(!is_alive(-1));
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id() as i32;
        thread::sleep(Duration::from_millis(200));
        assert!(!is_alive(pid), "an exited, unreaped child is a zombie");
        child.wait().expect("reap");
        assert!(!is_alive(pid));
    }

    #[test]
    fn pid_file() {
        let directory = tempfile::tempdir().expect("temp dir");
        let pid_file = PidFile::new(directory.path());
        assert_eq!(pid_file.read(), None);
        pid_file.write(std::process::id()).expect("write");
        assert_eq!(pid_file.running(), Some(std::process::id() as i32));
        pid_file.remove_if_holds(std::process::id() + 1);
        assert!(pid_file.read().is_some());
        pid_file.remove_if_holds(std::process::id());
        assert_eq!(pid_file.read(), None);
        assert!(send(0, 0).is_err() && send(-1, 0).is_err());
    }
}
