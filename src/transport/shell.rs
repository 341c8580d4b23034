//! One remote shell kept open on one exec channel, so that several scripts
//! run one after another cost one remote process start (one sshd session
//! child, one login shell and its rc files, one `sudo`) instead of one
//! each.
//!
//! Every script but the last runs in a subshell with its stdin on
//! `/dev/null` (so no command in it can read the scripts that follow),
//! and then the shell prints an end line that carries a marker drawn at
//! random for this shell, and the subshell's exit status: no file a
//! script prints can forge it. The last script is sent as one `{ … }`
//! group, followed by end of input; its output is read to the channel's
//! close, like an exec's.
//!
//! Either way the shell parses a whole script before running any of it,
//! so it keeps reading while a large script is sent: a script that ends
//! the shell early cannot leave the sender waiting for an SSH window that
//! no one will open again (libssh2 does not stop a write when the channel
//! closes), and one with a syntax error runs nothing.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use ssh2::Channel;

use super::{push_output, read_failure, Connection, ExecOutput, FailureKind, TransportError};

/// A shell waiting for scripts on its stdin. Dropping it closes the
/// channel: the shell reads end of input and exits.
pub struct Shell {
    connection: Connection,
    channel: Channel,
    marker: String,
    /// The shell has exited (end of its output seen): nothing more runs.
    closed: bool,
    /// The size of the script being run (for its [`super::Exchange`]).
    sending: usize,
}

impl Shell {
    /// Starts `command` (a shell that reads its script on stdin, such as
    /// `sh -s`) on a new exec channel of `connection`.
    pub(super) fn open(mut connection: Connection, command: &str) -> Result<Shell, TransportError> {
        let channel = connection.open_channel(command)?;
        Ok(Shell {
            connection,
            channel,
            marker: random_marker(),
            closed: false,
            sending: 0,
        })
    }

    /// The connection under the shell (its timings).
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Runs `script` in a subshell and returns what it printed and its
    /// exit status; the shell stays open for the next script. When the
    /// shell itself ends instead (a `sudo` that refused, a killed shell),
    /// the output is the channel's, with its exit status, and the shell is
    /// closed.
    pub fn run(&mut self, script: &[u8]) -> Result<ExecOutput, TransportError> {
        self.usable()?;
        self.sending = script.len();
        let started = Instant::now();
        let end_line = format!(
            "\n) </dev/null\nprintf '\\n%s %s\\n' '{}' \"$?\"\n",
            self.end_word()
        );
        if let Err(error) = self.send(&enclosed(b"(\n", script, end_line.as_bytes())) {
            return self.ended_instead(error, started);
        }
        let end = format!("\n{} ", self.end_word()).into_bytes();
        let mut stdout = Vec::new();
        let mut buffer = [0u8; 32 * 1024];
        // Where the end line may begin: bytes before were searched.
        let mut searched = 0;
        let status = loop {
            if let Some(found) = find(&stdout[searched..], &end).map(|at| at + searched) {
                let rest = &stdout[found + end.len()..];
                if let Some(line_end) = rest.iter().position(|byte| *byte == b'\n') {
                    let status = std::str::from_utf8(&rest[..line_end])
                        .ok()
                        .and_then(|word| word.trim().parse::<i32>().ok())
                        .unwrap_or(-1);
                    stdout.truncate(found);
                    break status;
                }
                searched = found;
            } else {
                searched = stdout.len().saturating_sub(end.len());
            }
            match self.channel.read(&mut buffer) {
                Ok(0) => {
                    // The shell ended before the script's end line.
                    return self.closed_output(stdout, started);
                }
                Ok(count) => {
                    if let Err(error) =
                        push_output(&mut stdout, &buffer[..count], &self.connection.label)
                    {
                        // The shell's stream is no longer in step: never reused.
                        self.closed = true;
                        return Err(error);
                    }
                }
                Err(error) => {
                    self.closed = true;
                    return Err(read_failure(&self.connection.label, error));
                }
            }
        };
        let stderr = self.drain_stderr();
        let output = ExecOutput {
            status,
            stdout,
            stderr,
        };
        self.connection
            .record_script(started, script.len(), &output);
        Ok(output)
    }

    /// Whether the shell still answers within `timeout`: a builtin echo,
    /// no process started. A session kept idle may have been cut (a NAT,
    /// a restarted sshd, a rebooted host).
    pub fn alive(&mut self, timeout: Duration) -> Result<(), TransportError> {
        self.usable()?;
        let session = self.connection.session.clone();
        let previous = session.timeout();
        session.set_timeout(timeout.as_millis().clamp(1, u32::MAX as u128) as u32);
        let answered = self.echo();
        // A shell that did not answer is dropped next: its close keeps the
        // short timeout, not a whole operation timeout on a dead link.
        if answered.is_ok() {
            session.set_timeout(previous);
        }
        answered
    }

    fn echo(&mut self) -> Result<(), TransportError> {
        let word = format!("{}-alive", self.end_word());
        self.send(format!("printf '%s\\n' '{word}'\n").as_bytes())?;
        let expected = format!("{word}\n").into_bytes();
        let mut received = Vec::new();
        let mut buffer = [0u8; 1024];
        while find(&received, &expected).is_none() {
            match self.channel.read(&mut buffer) {
                Ok(0) => {
                    self.closed = true;
                    return Err(TransportError::new(
                        FailureKind::Protocol,
                        &self.connection.label,
                        "the remote shell has ended",
                    ));
                }
                Ok(count) => received.extend_from_slice(&buffer[..count]),
                Err(error) => {
                    self.closed = true;
                    return Err(read_failure(&self.connection.label, error));
                }
            }
        }
        Ok(())
    }

    /// Sends `script` as the shell's last input (one group: parsed whole,
    /// then run) and reads everything it prints to the channel's close,
    /// handing each piece of stdout to `on_output` as it arrives.
    pub fn finish(
        &mut self,
        script: &[u8],
        on_output: &mut dyn FnMut(&[u8]),
    ) -> Result<ExecOutput, TransportError> {
        self.usable()?;
        self.sending = script.len();
        let started = Instant::now();
        if let Err(error) = self.send(&last_input(script)) {
            return self.ended_instead(error, started);
        }
        let label = self.connection.label.clone();
        self.channel
            .send_eof()
            .map_err(|error| TransportError::ssh(&label, "closing the input", &error))?;
        let mut stdout = Vec::new();
        let mut buffer = [0u8; 32 * 1024];
        loop {
            match self.channel.read(&mut buffer) {
                Ok(0) => break,
                Ok(count) => {
                    on_output(&buffer[..count]);
                    if let Err(error) = push_output(&mut stdout, &buffer[..count], &label) {
                        self.closed = true;
                        return Err(error);
                    }
                }
                Err(error) => return Err(read_failure(&label, error)),
            }
        }
        self.closed_output(stdout, started)
    }

    fn usable(&self) -> Result<(), TransportError> {
        if self.closed {
            return Err(TransportError::new(
                FailureKind::Protocol,
                &self.connection.label,
                "the remote shell has ended",
            ));
        }
        Ok(())
    }

    fn end_word(&self) -> String {
        format!("midfleet-end-{}", self.marker)
    }

    /// Writes `bytes` to the shell's stdin. (Never `flush`: on a libssh2
    /// channel that discards the output received and not yet read.)
    fn send(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        self.channel.write_all(bytes).map_err(|error| {
            self.closed = true;
            TransportError::new(
                FailureKind::Protocol,
                &self.connection.label,
                format!("sending input: {error}"),
            )
        })
    }

    /// Input could not be sent: when that is because the shell has ended
    /// (a `sudo` that refused), what it said and its status; else `error`.
    fn ended_instead(
        &mut self,
        error: TransportError,
        started: Instant,
    ) -> Result<ExecOutput, TransportError> {
        if !self.channel.eof() {
            return Err(error);
        }
        let mut stdout = Vec::new();
        let _ = self.channel.read_to_end(&mut stdout);
        self.closed_output(stdout, started).map_err(|_| error)
    }

    /// The end of the channel: stderr to its end, the exit status.
    fn closed_output(
        &mut self,
        stdout: Vec<u8>,
        started: Instant,
    ) -> Result<ExecOutput, TransportError> {
        self.closed = true;
        let label = self.connection.label.clone();
        let mut stderr = Vec::new();
        self.channel
            .stderr()
            .take(super::MAX_OUTPUT as u64)
            .read_to_end(&mut stderr)
            .map_err(|error| read_failure(&label, error))?;
        self.channel
            .wait_close()
            .map_err(|error| TransportError::ssh(&label, "closing the channel", &error))?;
        let status = self
            .channel
            .exit_status()
            .map_err(|error| TransportError::ssh(&label, "reading the exit status", &error))?;
        let output = ExecOutput {
            status,
            stdout,
            stderr,
        };
        self.connection
            .record_script(started, self.sending, &output);
        Ok(output)
    }

    /// What a script has printed on stderr so far, without waiting for
    /// more (the shell is still open, so stderr has no end to wait for).
    fn drain_stderr(&mut self) -> Vec<u8> {
        let session = self.connection.session.clone();
        let mut stderr = Vec::new();
        let mut buffer = [0u8; 4096];
        session.set_blocking(false);
        while let Ok(count) = self.channel.stderr().read(&mut buffer) {
            if count == 0 || stderr.len() + count > super::MAX_OUTPUT {
                break;
            }
            stderr.extend_from_slice(&buffer[..count]);
        }
        session.set_blocking(true);
        stderr
    }
}

/// `script` as [`Shell::finish`] sends it: one `{ … }` group, which the
/// shell parses whole before running any of it (cut short, it runs
/// nothing).
pub fn last_input(script: &[u8]) -> zeroize::Zeroizing<Vec<u8>> {
    enclosed(b"{\n", script, b"\n}\n")
}

/// `script` between `open` and `close`; wiped when dropped (a staging
/// script holds the new password).
fn enclosed(open: &[u8], script: &[u8], close: &[u8]) -> zeroize::Zeroizing<Vec<u8>> {
    let mut bytes =
        zeroize::Zeroizing::new(Vec::with_capacity(open.len() + script.len() + close.len()));
    bytes.extend_from_slice(open);
    bytes.extend_from_slice(script);
    bytes.extend_from_slice(close);
    bytes
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// 128 random bits as hex, from the kernel.
fn random_marker() -> String {
    let mut random = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom")
        .and_then(|mut file| file.read_exact(&mut random))
        .is_ok();
    if !read {
        // No urandom: time and address still make a marker no file on a
        // host can expect.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let address = &random as *const _ as usize as u128;
        random = (nanos ^ address.rotate_left(64)).to_le_bytes();
    }
    random.iter().map(|byte| format!("{byte:02x}")).collect()
}
