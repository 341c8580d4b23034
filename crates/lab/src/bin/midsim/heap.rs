//! The JVM's heap: at each launch the wrapper reads the active
//! `wrapper.java.maxmemory` of `agent/conf/wrapper-override.conf` (Tanuki
//! Java-properties style: `key=value` lines, the last active one wins;
//! `#` lines are comments, and `#include`/`#encoding` directives, which
//! the simulation does not follow) and passes it to the JVM as `-Xmx`.
//! When the host cannot give that much (the `heap_limit_mb` knob: what the
//! host allows), the JVM fails as HotSpot does — `Error occurred during
//! initialization of VM`, `Could not reserve enough space for NKB object
//! heap` on its output, which the wrapper copies to wrapper.log — and the
//! wrapper says `JVM exited while loading the application.`, waits and
//! launches again; after [`MAX_FAILED_LAUNCHES`] failed launches in a row
//! it gives up and exits (Tanuki's `wrapper.max_failed_invocations`, 5,
//! and `wrapper.successful_invocation_time`, 300 s). The MID never
//! connects. Without the file or an active line the JVM gets no `-Xmx`
//! (its own default), which fits any limit.
//!
//! Owns: reading the file, the heap check, the JVM's and the wrapper's
//! lines for a refused heap.
//!
//! Must not: write the file (the MID never does).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::knobs;
use super::logs::{Logs, WRAPPER};

/// Failed launches in a row after which the wrapper gives up (Tanuki's
/// `wrapper.max_failed_invocations` default).
pub const MAX_FAILED_LAUNCHES: u32 = 5;
/// The wait between a failed launch and the next. Tanuki's
/// `wrapper.restart.delay` is 5 s; the lab's is shorter, so a failing host
/// gives up in seconds.
pub const RESTART_DELAY: Duration = Duration::from_millis(500);
/// The property the wrapper turns into `-Xmx<N>m`.
pub const MAX_MEMORY: &str = "wrapper.java.maxmemory";

/// `agent/conf/wrapper-override.conf`.
pub fn override_path(agent_dir: &Path) -> PathBuf {
    agent_dir.join("conf").join("wrapper-override.conf")
}

/// The active value of `key` in a wrapper configuration text: the last
/// `key=value` line that is not a comment or a directive.
pub fn active_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .rev()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .find(|(name, _)| name.trim() == key)
        .map(|(_, value)| value.trim())
}

/// The `-Xmx` the wrapper gives the JVM, in MB: the active
/// `wrapper.java.maxmemory` when it is a positive number (Tanuki adds no
/// `-Xmx` for 0, and ignores a value it cannot read).
pub fn max_memory_mb(agent_dir: &Path) -> Option<u64> {
    let text = fs::read_to_string(override_path(agent_dir)).ok()?;
    active_value(&text, MAX_MEMORY)?
        .parse::<u64>()
        .ok()
        .filter(|megabytes| *megabytes > 0)
}

/// Whether the JVM of launch number `jvm` (1 for the wrapper's first)
/// fails to reserve its heap; when it does, its lines and the wrapper's
/// are in wrapper.log. The knobs are read again at each launch, so a limit
/// set or cleared while the wrapper relaunches counts from the next launch.
pub fn refused(agent_dir: &Path, logs: &Logs, jvm: u32) -> bool {
    let limit = knobs::read(agent_dir)
        .ok()
        .and_then(|knobs| knobs.heap_limit_mb);
    let (Some(limit), Some(heap)) = (limit, max_memory_mb(agent_dir)) else {
        return false;
    };
    if heap <= limit {
        return false;
    }
    let source = format!("jvm {jvm}");
    logs.wrapper(
        "INFO",
        &source,
        "Error occurred during initialization of VM",
    );
    logs.wrapper(
        "INFO",
        &source,
        &format!(
            "Could not reserve enough space for {}KB object heap",
            heap * 1024
        ),
    );
    logs.wrapper(
        "ERROR",
        WRAPPER,
        "JVM exited while loading the application.",
    );
    true
}

/// The wrapper's last lines when it gives up.
pub fn give_up(logs: &Logs) {
    logs.wrapper(
        "FATAL",
        WRAPPER,
        &format!(
            "There were {MAX_FAILED_LAUNCHES} failed launches in a row, each lasting less than 300 seconds.  Giving up."
        ),
    );
    logs.wrapper(
        "FATAL",
        WRAPPER,
        "  There may be a configuration problem: please check the logs.",
    );
    logs.wrapper("STATUS", WRAPPER, "<-- Wrapper Stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str =
        "# OPTIONAL: Maximum Java Heap Size (in MB)\nwrapper.java.maxmemory=1024\n";

    #[test]
    fn the_last_active_line_wins_comments_and_directives_do_not_count() {
        assert_eq!(active_value(SHIPPED, MAX_MEMORY), Some("1024"));
        let text = "#include ../conf/wrapper-profile-sync.conf\n\
                    #encoding=UTF-8\n\
                    wrapper.java.maxmemory = 512 \n\
                    #wrapper.java.maxmemory=4096\n\
                    \twrapper.java.maxmemory=2048\r\n\
                    wrapper.java.maxmemory.percent=50\n\
                    # wrapper.java.maxmemory=8192\n";
        assert_eq!(active_value(text, MAX_MEMORY), Some("2048"));
        assert_eq!(
            active_value("#wrapper.java.maxmemory=1024\n", MAX_MEMORY),
            None
        );
        assert_eq!(active_value("", MAX_MEMORY), None);
    }

    #[test]
    fn the_heap_is_read_from_the_agents_conf_folder() {
        let directory = tempfile::tempdir().expect("temp dir");
        let agent = directory.path().join("agent");
        assert_eq!(max_memory_mb(&agent), None, "no file");
        fs::create_dir_all(agent.join("conf")).expect("conf");
        for (text, expected) in [
            (SHIPPED, Some(1024)),
            ("wrapper.java.maxmemory=0\n", None),
            ("wrapper.java.maxmemory=2g\n", None),
            (
                "wrapper.java.maxmemory=1024\nwrapper.java.maxmemory=3072\n",
                Some(3072),
            ),
        ] {
            fs::write(override_path(&agent), text).expect("write");
            assert_eq!(max_memory_mb(&agent), expected, "{text:?}");
        }
    }

    #[test]
    fn a_heap_over_the_limit_is_refused_with_the_jvms_lines() {
        let directory = tempfile::tempdir().expect("temp dir");
        let agent = directory.path().join("agent");
        fs::create_dir_all(agent.join("conf")).expect("conf");
        fs::write(override_path(&agent), "wrapper.java.maxmemory=2048\n").expect("write");
        let logs = Logs::new(&agent);
        assert!(!refused(&agent, &logs, 1), "no limit");
        fs::write(directory.path().join(".midsim"), "heap_limit_mb=2048\n").expect("knobs");
        assert!(!refused(&agent, &logs, 1), "equal to the limit");
        fs::write(directory.path().join(".midsim"), "heap_limit_mb=1536\n").expect("knobs");
        assert!(refused(&agent, &logs, 3));
        let log = fs::read_to_string(logs.wrapper_path()).expect("wrapper.log");
        let messages: Vec<&str> = log
            .lines()
            .map(|line| line.splitn(4, " | ").collect::<Vec<_>>())
            .map(|fields| {
                assert_eq!(fields.len(), 4, "{log}");
                fields[1]
            })
            .collect();
        assert_eq!(messages, ["jvm 3   ", "jvm 3   ", "wrapper "]);
        assert!(log.contains("| Could not reserve enough space for 2097152KB object heap\n"));
        assert!(log.starts_with("INFO   | jvm 3    | "), "{log}");
        assert!(log.ends_with(" | JVM exited while loading the application.\n"));
    }
}
