//! The MID's two logs, appended to line by line (rotated or truncated
//! only when a knob asks, see [`Logs::rotate`]):
//!
//! ```text
//! logs/agent0.log.0  11/27/26 11:02:03 (123) StartupSequencer MID Server started
//! logs/wrapper.log   STATUS | wrapper  | 2026/11/27 11:02:03 | --> Wrapper Started as Daemon
//! ```

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The MID's start-up thread, as real agent logs name it.
pub const STARTUP: &str = "StartupSequencer";
/// The MID's main thread.
pub const MID_SERVER: &str = "MIDServer";
/// The wrapper itself, in wrapper.log.
pub const WRAPPER: &str = "wrapper";
/// The JVM's output, in wrapper.log.
pub const JVM: &str = "jvm 1";

pub struct Logs {
    agent: PathBuf,
    wrapper: PathBuf,
}

impl Logs {
    pub fn new(agent_dir: &Path) -> Logs {
        let directory = agent_dir.join("logs");
        Logs {
            agent: directory.join("agent0.log.0"),
            wrapper: directory.join("wrapper.log"),
        }
    }

    pub fn wrapper_path(&self) -> &Path {
        &self.wrapper
    }

    /// Log rotation as log4j and the wrapper do it: each log renamed to
    /// `.1` (replacing an older one), the next line starting a new file.
    pub fn rotate(&self) {
        // agent0.log.0 → agent0.log.1, wrapper.log → wrapper.log.1.
        for (log, rotated) in [
            (&self.agent, self.agent.with_extension("1")),
            (&self.wrapper, self.wrapper.with_extension("log.1")),
        ] {
            if let Err(error) = fs::rename(log, &rotated) {
                eprintln!("midfleet-midsim: cannot rotate {}: {error}", log.display());
            }
        }
    }

    /// The agent log emptied in place (copytruncate).
    pub fn truncate(&self) {
        if let Err(error) = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&self.agent)
        {
            eprintln!(
                "midfleet-midsim: cannot truncate {}: {error}",
                self.agent.display()
            );
        }
    }

    /// A line of the MID's own log.
    pub fn agent(&self, thread: &str, message: &str) {
        let time = LocalTime::now();
        let line = format!(
            "{:02}/{:02}/{:02} {:02}:{:02}:{:02} ({:03}) {thread} {}\n",
            time.month,
            time.day,
            time.year % 100,
            time.hour,
            time.minute,
            time.second,
            time.millisecond,
            one_line(message)
        );
        append(&self.agent, &line);
    }

    /// A line of wrapper.log; `level` is `STATUS`, `INFO` or `ERROR`.
    pub fn wrapper(&self, level: &str, source: &str, message: &str) {
        let time = LocalTime::now();
        let line = format!(
            "{level:<6} | {source:<8} | {:04}/{:02}/{:02} {:02}:{:02}:{:02} | {}\n",
            time.year,
            time.month,
            time.day,
            time.hour,
            time.minute,
            time.second,
            one_line(message)
        );
        append(&self.wrapper, &line);
    }
}

fn one_line(message: &str) -> String {
    message.replace(['\r', '\n'], " ")
}

/// Appends `line` in one write, so that lines from the wrapper and the MID
/// never interleave. A log that cannot be written is reported on stderr
/// (wrapper.log, when detached) and otherwise ignored, as a JVM would.
fn append(path: &Path, line: &str) {
    let result = path
        .parent()
        .map_or(Ok(()), fs::create_dir_all)
        .and_then(|()| OpenOptions::new().create(true).append(true).open(path))
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(error) = result {
        eprintln!("midfleet-midsim: cannot write {}: {error}", path.display());
    }
}

struct LocalTime {
    year: i32,
    month: i32,
    day: i32,
    hour: i32,
    minute: i32,
    second: i32,
    millisecond: u32,
}

impl LocalTime {
    fn now() -> LocalTime {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let seconds = since_epoch.as_secs() as libc::time_t;
        // SAFETY: `tm` is plain data; localtime_r only writes into it.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        unsafe { libc::localtime_r(&seconds, &mut tm) };
        LocalTime {
            year: tm.tm_year + 1900,
            month: tm.tm_mon + 1,
            day: tm.tm_mday,
            hour: tm.tm_hour,
            minute: tm.tm_min,
            second: tm.tm_sec,
            millisecond: since_epoch.subsec_millis(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_the_real_shapes() {
        let directory = tempfile::tempdir().expect("temp dir");
        let logs = Logs::new(directory.path());
        logs.agent(STARTUP, "MID Server\nstarted");
        logs.wrapper("STATUS", WRAPPER, "--> Wrapper Started as Daemon");
        let agent = fs::read_to_string(directory.path().join("logs/agent0.log.0")).expect("agent");
        let wrapper = fs::read_to_string(logs.wrapper_path()).expect("wrapper");
        let agent_shape = agent.as_bytes();
        assert_eq!(agent.lines().count(), 1);
        assert!(
            agent.ends_with(") StartupSequencer MID Server started\n"),
            "{agent}"
        );
        for (index, separator) in [(2, b'/'), (5, b'/'), (8, b' '), (11, b':'), (14, b':')] {
            assert_eq!(agent_shape[index], separator, "{agent}");
        }
        assert_eq!(&agent_shape[17..19], b" (");
        assert!(wrapper.starts_with("STATUS | wrapper  | "), "{wrapper}");
        assert!(
            wrapper.ends_with(" | --> Wrapper Started as Daemon\n"),
            "{wrapper}"
        );
    }

    #[test]
    fn rotation_and_truncation_start_the_logs_again() {
        let directory = tempfile::tempdir().expect("temp dir");
        let logs = Logs::new(directory.path());
        logs.agent(STARTUP, "before");
        logs.wrapper("STATUS", WRAPPER, "before");
        logs.rotate();
        logs.agent(STARTUP, "after");
        let read =
            |name: &str| fs::read_to_string(directory.path().join("logs").join(name)).expect(name);
        assert!(read("agent0.log.1").ends_with("before\n"));
        assert!(read("wrapper.log.1").ends_with("before\n"));
        assert!(read("agent0.log.0").ends_with("after\n"));
        assert_eq!(read("agent0.log.0").lines().count(), 1);
        logs.truncate();
        assert_eq!(read("agent0.log.0"), "");
    }
}
