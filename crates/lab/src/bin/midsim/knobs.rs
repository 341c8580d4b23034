//! The lab's knobs, `<mid_home>/.midsim`: `key=value` lines, all optional;
//! blank lines and `#` comments are skipped. An unknown key or a bad value
//! is an error, so that a typo in a test fails loudly instead of testing
//! nothing.
//!
//! | key              | default | effect                                          |
//! |------------------|---------|-------------------------------------------------|
//! | `instance`       | none    | credential store file (relative: to mid_home); none = every login succeeds |
//! | `instance_url`   | none    | log in against this emulated instance (`midfleet-instancesim`) instead of the credential store, and report the MID's `ecc_agent` record Up and Down there |
//! | `instance_ca`    | none    | a PEM CA file trusted for an `https://` `instance_url` |
//! | `start_delay_ms` | 200     | time before the MID writes its first log line   |
//! | `die_at_start`   | false   | the JVM exits 1 after the delay, no agent log   |
//! | `die_at_start_if_user` | none | as `die_at_start`, only while config.xml names this instance user (a start that fails with the new config only) |
//! | `login_stalls_if_user` | none | while config.xml names this instance user, the MID logs `Setting basic authentication with user …` and then nothing until stopped: a start stalled at its login (docs/mid-server.md: an instance still holding an Up record of the same name) |
//! | `stop_hangs`     | false   | the MID ignores SIGTERM (read at start, and again when SIGTERM comes) |
//! | `owner_pid`      | none    | the MID exits when this process is gone         |
//! | `logs_at_start`  | keep    | `rotate`: agent0.log.0 and wrapper.log move to `.1` and start again; `truncate`: agent0.log.0 is emptied — both after the first start-up line, as log rotation in the middle of a start would |
//! | `heap_limit_mb`  | none    | the most heap the host can give a JVM, in MB: a launch whose `wrapper.java.maxmemory` (agent/conf/wrapper-override.conf) is larger fails to reserve it, 5 times, and the wrapper gives up (read at each JVM launch; [`super::heap`]) |
//! | `ecc_commands`   | answer  | with `instance_url`: `answer` polls `ecc_queue` for the `SystemCommand`s queued for `mid.server.<name>` and answers them (`delete_mid_keypair`, `restartService`); `ignore` never picks them up |

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Knobs {
    pub instance: Option<PathBuf>,
    pub instance_url: Option<String>,
    pub instance_ca: Option<PathBuf>,
    pub start_delay: Duration,
    pub die_at_start: bool,
    pub die_at_start_if_user: Option<String>,
    pub login_stalls_if_user: Option<String>,
    pub stop_hangs: bool,
    pub owner_pid: Option<i32>,
    pub logs_at_start: LogsAtStart,
    /// Whether a running MID with `instance_url` picks up and answers the
    /// `SystemCommand`s the instance queues for it in `ecc_queue`
    /// (`ecc_commands = answer | ignore`; ignore: a MID the instance cannot
    /// reach).
    pub answer_commands: bool,
    /// The most heap (MB) the host can give a JVM (`heap_limit_mb`).
    pub heap_limit_mb: Option<u64>,
}

/// What happens to the logs in the middle of a start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogsAtStart {
    Keep,
    Rotate,
    Truncate,
}

impl Default for Knobs {
    fn default() -> Knobs {
        Knobs {
            instance: None,
            instance_url: None,
            instance_ca: None,
            start_delay: Duration::from_millis(200),
            die_at_start: false,
            die_at_start_if_user: None,
            login_stalls_if_user: None,
            stop_hangs: false,
            owner_pid: None,
            logs_at_start: LogsAtStart::Keep,
            answer_commands: true,
            heap_limit_mb: None,
        }
    }
}

/// `<mid_home>/.midsim` for `<mid_home>/agent`.
pub fn path(agent_dir: &Path) -> PathBuf {
    mid_home(agent_dir).join(".midsim")
}

fn mid_home(agent_dir: &Path) -> PathBuf {
    match agent_dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => agent_dir.join(".."),
    }
}

/// The knobs for this agent; defaults when there is no knobs file.
pub fn read(agent_dir: &Path) -> Result<Knobs, String> {
    let path = path(agent_dir);
    match fs::read_to_string(&path) {
        Ok(text) => parse(&text, &mid_home(agent_dir))
            .map_err(|(line, message)| format!("{}:{line}: {message}", path.display())),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Knobs::default()),
        Err(error) => Err(format!("{}: {error}", path.display())),
    }
}

/// Parses a knobs file; relative paths are taken from `base`. Errors carry
/// the 1-based line.
fn parse(text: &str, base: &Path) -> Result<Knobs, (usize, String)> {
    let mut knobs = Knobs::default();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fail = |message: String| (index + 1, message);
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| fail(format!("expected key=value, found {line:?}")))?;
        let (key, value) = (key.trim(), value.trim());
        match key {
            "instance" => knobs.instance = Some(base.join(value)),
            "instance_url" => knobs.instance_url = Some(value.to_string()),
            "instance_ca" => knobs.instance_ca = Some(base.join(value)),
            "start_delay_ms" => {
                let milliseconds = value
                    .parse()
                    .map_err(|_| fail(format!("start_delay_ms: {value:?} is not a number")))?;
                knobs.start_delay = Duration::from_millis(milliseconds);
            }
            "die_at_start" => knobs.die_at_start = boolean(key, value).map_err(fail)?,
            "die_at_start_if_user" => knobs.die_at_start_if_user = Some(value.to_string()),
            "login_stalls_if_user" => knobs.login_stalls_if_user = Some(value.to_string()),
            "stop_hangs" => knobs.stop_hangs = boolean(key, value).map_err(fail)?,
            "owner_pid" => {
                let pid = value
                    .parse()
                    .ok()
                    .filter(|pid| *pid > 0)
                    .ok_or_else(|| fail(format!("owner_pid: {value:?} is not a process id")))?;
                knobs.owner_pid = Some(pid);
            }
            "logs_at_start" => {
                knobs.logs_at_start = match value {
                    "keep" => LogsAtStart::Keep,
                    "rotate" => LogsAtStart::Rotate,
                    "truncate" => LogsAtStart::Truncate,
                    _ => {
                        return Err(fail(format!(
                            "logs_at_start: {value:?} is not keep, rotate or truncate"
                        )))
                    }
                }
            }
            "heap_limit_mb" => {
                let megabytes = value
                    .parse()
                    .ok()
                    .filter(|megabytes| *megabytes > 0)
                    .ok_or_else(|| {
                        fail(format!("heap_limit_mb: {value:?} is not a number of MB"))
                    })?;
                knobs.heap_limit_mb = Some(megabytes);
            }
            "ecc_commands" => {
                knobs.answer_commands = match value {
                    "answer" => true,
                    "ignore" => false,
                    _ => {
                        return Err(fail(format!(
                            "ecc_commands: {value:?} is neither answer nor ignore"
                        )))
                    }
                }
            }
            _ => return Err(fail(format!("unknown knob {key:?}"))),
        }
    }
    Ok(knobs)
}

fn boolean(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{key}: {value:?} is neither true nor false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_knob() {
        let text = "# lab\n\ninstance = creds\nstart_delay_ms=50\ndie_at_start=true\n\
                    stop_hangs=false\nowner_pid=42\ndie_at_start_if_user=svc_x\n\
                    logs_at_start=rotate\ninstance_url=http://127.0.0.1:9\n\
                    ecc_commands=ignore\nlogin_stalls_if_user=svc_y\n\
                    heap_limit_mb=1536\n";
        let knobs = parse(text, Path::new("/mid")).expect("parses");
        assert_eq!(
            knobs,
            Knobs {
                instance: Some(PathBuf::from("/mid/creds")),
                instance_url: Some("http://127.0.0.1:9".into()),
                instance_ca: None,
                start_delay: Duration::from_millis(50),
                die_at_start: true,
                die_at_start_if_user: Some("svc_x".into()),
                login_stalls_if_user: Some("svc_y".into()),
                stop_hangs: false,
                owner_pid: Some(42),
                logs_at_start: LogsAtStart::Rotate,
                answer_commands: false,
                heap_limit_mb: Some(1536),
            }
        );
        assert_eq!(parse("", Path::new("/")).expect("empty"), Knobs::default());
    }

    #[test]
    fn mistakes_are_errors_with_their_line() {
        let cases = [
            ("start_delay=50", 1),
            ("\nstart_delay_ms=soon", 2),
            ("die_at_start=yes", 1),
            ("owner_pid=0", 1),
            ("owner_pid=-1", 1),
            ("# ok\nstop_hangs", 2),
            ("logs_at_start=gzip", 1),
            ("heap_limit_mb=0", 1),
            ("heap_limit_mb=2g", 1),
        ];
        for (text, line) in cases {
            assert_eq!(
                parse(text, Path::new("/")).err().map(|error| error.0),
                Some(line),
                "{text:?}"
            );
        }
    }

    #[test]
    fn the_knobs_file_lives_in_mid_home() {
        assert_eq!(
            path(Path::new("/opt/mid/agent")),
            PathBuf::from("/opt/mid/.midsim")
        );
        assert_eq!(
            path(Path::new("/opt/mid/agent/")),
            PathBuf::from("/opt/mid/.midsim")
        );
    }
}
