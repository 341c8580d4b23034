//! SSH to MID hosts: sessions, strict host keys, key authentication, jump
//! hosts, `sudo -n`, and one exec with its input on stdin.
//!
//! Owns: connecting to an [`Endpoint`] (directly or through shared hops)
//! and running commands. Must not: know an inventory (an endpoint is all
//! it takes: [`crate::endpoint`] makes one of a host) or what a MID Server
//! is — it carries bytes and exit codes; scripts and their meaning live
//! with their callers.

mod auth;
mod error;
mod known_hosts;
mod shell;
mod tunnel;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use ssh2::Session;

pub use crate::endpoint::{home_directory, Endpoint};

pub use auth::{is_encrypted, Authenticated};
pub use error::{FailureKind, TransportError};
pub use known_hosts::{entry_name, HostKey, KnownHostsPolicy};
pub use shell::{last_input, Shell};

/// Host key algorithms in OpenSSH's order of preference.
const HOST_KEY_PREFERENCE: &str =
    "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa";

/// The chain key of a jump chain.
fn hop_key(chain: &[Endpoint]) -> String {
    chain
        .iter()
        .map(|hop| format!("{}@{}:{}", hop.user, hop.address, hop.port))
        .collect::<Vec<_>>()
        .join(",")
}

/// Time spent in each step of one connection, for `--timings`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub connect_ms: f64,
    pub handshake_ms: f64,
    pub auth_ms: f64,
    /// Exec channels opened: each is a remote process start (sshd's
    /// session child, the login shell, `sudo`).
    pub channels: usize,
    /// Each script run, in milliseconds: one per exec, or several on one
    /// kept [`Shell`].
    pub execs: Vec<f64>,
}

/// How one connection was made (`-v`): where, through which hops, with
/// which key, and the host key that was accepted and why.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionDetail {
    /// `ADDRESS:PORT` of the target.
    pub address: String,
    pub user: String,
    /// Each jump host, first to last.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub jumps: Vec<JumpDetail>,
    pub auth: Authenticated,
    pub host_key: HostKey,
    /// TCP connect (through the hops), handshake, host key and
    /// authentication.
    pub seconds: f64,
}

/// How one jump host was reached (shared by every target behind it).
#[derive(Debug, Clone, Serialize)]
pub struct JumpDetail {
    /// `USER@ADDRESS:PORT`.
    pub address: String,
    /// How it authenticated and its host key (`None` only where a hop's
    /// detail was not recorded: each hop records it once connected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<Authenticated>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_key: Option<HostKey>,
}

/// One exchange on a connection, in order (`-vv` shows the stderr of
/// scripts, `-vvv` every exchange): a channel opened with the command it
/// runs (fixed text: scripts and data go on stdin, never on a command
/// line), or a script sent on one with what came back.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    /// `channel` or `script`.
    pub kind: &'static str,
    /// The remote command of a channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Bytes sent on stdin (a script; its text is never kept: a staging
    /// script holds secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<usize>,
    /// Bytes received on stdout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
    pub milliseconds: f64,
    /// What the script printed on stderr, at most [`STDERR_KEPT`] bytes,
    /// as the host sent it: the caller, who knows the secrets, masks it
    /// before showing it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stderr: String,
}

/// The most of one script's stderr kept for `-vv`.
pub const STDERR_KEPT: usize = 4096;

fn milliseconds(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Settings of a run's SSH connections.
pub struct TransportOptions {
    pub known_hosts: KnownHostsPolicy,
    /// Timeout of each blocking SSH operation once connected.
    pub operation_timeout: Duration,
}

/// Opens connections; shares hops between targets and asks each
/// passphrase once.
pub struct Transport {
    options: TransportOptions,
    passphrases: auth::Passphrases,
    hops: Mutex<HashMap<String, Arc<HopSlot>>>,
    /// How each hop was reached, by chain key (`-v`).
    hop_details: Mutex<HashMap<String, JumpDetail>>,
}

/// A hop, connected on first use by whichever target needs it first.
#[derive(Default)]
struct HopSlot {
    hop: Mutex<Option<Result<Arc<tunnel::Hop>, TransportError>>>,
}

/// An authenticated session to one target.
pub struct Connection {
    session: Session,
    label: String,
    pub timings: Timings,
    /// How it was made (`-v`).
    pub detail: ConnectionDetail,
    /// Its channels and scripts so far (`-vv`, `-vvv`).
    pub exchanges: Vec<Exchange>,
    /// Keeps the hop chain alive for as long as the connection.
    _hop: Option<Arc<tunnel::Hop>>,
}

/// What a command returned.
#[derive(Debug)]
pub struct ExecOutput {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Transport {
    pub fn new(options: TransportOptions) -> Transport {
        Transport {
            options,
            passphrases: auth::Passphrases::default(),
            hops: Mutex::new(HashMap::new()),
            hop_details: Mutex::new(HashMap::new()),
        }
    }

    /// Connects to `endpoint` (through its hops), checks its host key and
    /// authenticates.
    pub fn connect(&self, endpoint: &Endpoint) -> Result<Connection, TransportError> {
        let mut timings = Timings::default();
        let started = Instant::now();
        let timeout = Duration::from_secs(endpoint.connect_timeout);
        let (session, hop) = match endpoint.jump.is_empty() {
            true => {
                let stream = tcp_connect(endpoint, timeout)?;
                let mut session = new_session(&endpoint.label)?;
                session.set_tcp_stream(stream);
                (session, None)
            }
            false => {
                let hop = self.hop(&endpoint.jump)?;
                let stream = hop
                    .open(&endpoint.address, endpoint.port, timeout)
                    .map_err(|error| {
                        TransportError::new(
                            FailureKind::Unreachable,
                            &endpoint.label,
                            format!(
                                "through {}: {error}",
                                endpoint.jump.last().map_or("?", |hop| hop.label.as_str())
                            ),
                        )
                    })?;
                let mut session = new_session(&endpoint.label)?;
                session.set_tcp_stream(stream);
                (session, Some(hop))
            }
        };
        timings.connect_ms = milliseconds(started);
        let (connection, auth, host_key) =
            self.establish(session, endpoint, timeout, &mut timings)?;
        let detail = ConnectionDetail {
            address: format!("{}:{}", endpoint.address, endpoint.port),
            user: endpoint.user.clone(),
            jumps: self.jump_details(&endpoint.jump),
            auth,
            host_key,
            seconds: started.elapsed().as_secs_f64(),
        };
        Ok(Connection {
            session: connection,
            label: endpoint.label.clone(),
            timings,
            detail,
            exchanges: Vec::new(),
            _hop: hop,
        })
    }

    /// Handshake, host key, authentication.
    fn establish(
        &self,
        mut session: Session,
        endpoint: &Endpoint,
        timeout: Duration,
        timings: &mut Timings,
    ) -> Result<(Session, Authenticated, HostKey), TransportError> {
        let label = endpoint.label.as_str();
        session.set_timeout(timeout.as_millis().min(u32::MAX as u128) as u32);
        let _ = session.method_pref(ssh2::MethodType::HostKey, HOST_KEY_PREFERENCE);
        let started = Instant::now();
        session
            .handshake()
            .map_err(|error| TransportError::ssh(label, "SSH handshake", &error))?;
        timings.handshake_ms = milliseconds(started);
        let host_key = known_hosts::verify(
            &session,
            label,
            &endpoint.address,
            endpoint.port,
            &self.options.known_hosts,
        )?;
        let started = Instant::now();
        let authenticated = auth::authenticate(
            &session,
            label,
            &endpoint.user,
            &auth::Identities {
                explicit: endpoint.identity_file.as_deref(),
                configured: &endpoint.configured_identities,
            },
            &self.passphrases,
        )?;
        timings.auth_ms = milliseconds(started);
        session.set_timeout(
            self.options
                .operation_timeout
                .as_millis()
                .min(u32::MAX as u128) as u32,
        );
        // No libssh2 keepalive on blocking sessions: libssh2 then waits for
        // the socket only until the next keepalive is due and reports
        // "Timed out waiting on socket" — a read timeout of the keepalive
        // interval. TCP keepalives guard the socket instead, and long remote
        // work prints a heartbeat.
        Ok((session, authenticated, host_key))
    }

    /// How each hop of `chain` was reached, first to last.
    fn jump_details(&self, chain: &[Endpoint]) -> Vec<JumpDetail> {
        let details = self
            .hop_details
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (1..=chain.len())
            .map(|end| {
                let hop = &chain[end - 1];
                details
                    .get(&hop_key(&chain[..end]))
                    .cloned()
                    .unwrap_or_else(|| JumpDetail {
                        address: format!("{}@{}:{}", hop.user, hop.address, hop.port),
                        auth: None,
                        host_key: None,
                    })
            })
            .collect()
    }

    /// The hop session for `chain` (the last hop, connected through the
    /// ones before it), connecting it the first time.
    fn hop(&self, chain: &[Endpoint]) -> Result<Arc<tunnel::Hop>, TransportError> {
        let key = hop_key(chain);
        let slot = {
            let mut hops = self
                .hops
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            hops.entry(key).or_default().clone()
        };
        let mut state = slot
            .hop
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(result) = state.as_ref() {
            return result.clone();
        }
        let result = self.connect_hop(chain);
        *state = Some(result.clone());
        result
    }

    fn connect_hop(&self, chain: &[Endpoint]) -> Result<Arc<tunnel::Hop>, TransportError> {
        let (last, before) = chain.split_last().expect("a hop chain is not empty");
        let timeout = Duration::from_secs(last.connect_timeout);
        let mut timings = Timings::default();
        let (session, fd, previous) = if before.is_empty() {
            let stream = tcp_connect(last, timeout)?;
            let fd = stream.as_raw_fd();
            let mut session = new_session(&last.label)?;
            session.set_tcp_stream(stream);
            (session, fd, None)
        } else {
            let previous = self.hop(before)?;
            let stream = previous
                .open(&last.address, last.port, timeout)
                .map_err(|error| {
                    TransportError::new(
                        FailureKind::Unreachable,
                        &last.label,
                        format!("jump host: {error}"),
                    )
                })?;
            let fd = stream.as_raw_fd();
            let mut session = new_session(&last.label)?;
            session.set_tcp_stream(stream);
            (session, fd, Some(previous))
        };
        let (session, auth, host_key) = self
            .establish(session, last, timeout, &mut timings)
            .map_err(|error| TransportError {
                message: format!("jump host {}: {}", last.label, error.message),
                ..error
            })?;
        self.hop_details
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(
                hop_key(chain),
                JumpDetail {
                    address: format!("{}@{}:{}", last.user, last.address, last.port),
                    auth: Some(auth),
                    host_key: Some(host_key),
                },
            );
        // The previous hop must outlive this one: the pump keeps it.
        let hop = tunnel::Hop::start(session, fd, last.label.clone(), previous);
        Ok(Arc::new(hop))
    }
}

/// TCP keepalives (every 15 s after 30 s idle), so a dead peer is noticed
/// during a long wait without libssh2's keepalive (see `establish`).
fn set_tcp_keepalive(stream: &TcpStream) {
    let fd = stream.as_raw_fd();
    let on: libc::c_int = 1;
    let idle: libc::c_int = 30;
    let interval: libc::c_int = 15;
    let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: setsockopt on a socket we own, with pointers to live ints.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_KEEPALIVE,
            (&on as *const libc::c_int).cast(),
            size,
        );
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPIDLE,
            (&idle as *const libc::c_int).cast(),
            size,
        );
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPINTVL,
            (&interval as *const libc::c_int).cast(),
            size,
        );
    }
}

fn new_session(label: &str) -> Result<Session, TransportError> {
    Session::new().map_err(|error| TransportError::ssh(label, "creating an SSH session", &error))
}

/// TCP connection within `timeout`, trying each address the name resolves
/// to.
fn tcp_connect(endpoint: &Endpoint, timeout: Duration) -> Result<TcpStream, TransportError> {
    let label = endpoint.label.as_str();
    let addresses: Vec<_> = (endpoint.address.as_str(), endpoint.port)
        .to_socket_addrs()
        .map_err(|error| {
            TransportError::new(
                FailureKind::Unreachable,
                label,
                format!("cannot resolve {}: {error}", endpoint.address),
            )
        })?
        .collect();
    let mut last_error = None;
    for address in addresses {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                set_tcp_keepalive(&stream);
                return Ok(stream);
            }
            Err(error) => last_error = Some(error),
        }
    }
    let error = last_error.map_or_else(|| "no address".to_string(), |error| error.to_string());
    let kind = if error.contains("timed out") {
        FailureKind::Timeout
    } else {
        FailureKind::Unreachable
    };
    let message = match kind {
        FailureKind::Timeout => format!(
            "no answer from {}:{} within {} s",
            endpoint.address,
            endpoint.port,
            timeout.as_secs()
        ),
        _ => format!(
            "cannot connect to {}:{}: {error}",
            endpoint.address, endpoint.port
        ),
    };
    Err(TransportError::new(kind, label, message).with_hint(
        "check the address and port, and that sshd runs and a firewall lets the jump host through",
    ))
}

impl Connection {
    /// A new exec channel running `command`: one remote process start,
    /// counted in the timings.
    fn open_channel(&mut self, command: &str) -> Result<ssh2::Channel, TransportError> {
        let label = self.label.clone();
        let failure = |doing: &'static str| {
            let label = label.clone();
            move |error: ssh2::Error| TransportError::ssh(&label, doing, &error)
        };
        let mut channel = self
            .session
            .channel_session()
            .map_err(failure("opening a channel"))?;
        channel
            .exec(command)
            .map_err(failure("starting the remote command"))?;
        self.timings.channels += 1;
        self.exchanges.push(Exchange {
            kind: "channel",
            command: Some(command.to_string()),
            sent: None,
            received: None,
            status: None,
            milliseconds: 0.0,
            stderr: String::new(),
        });
        Ok(channel)
    }

    /// A script ran: its time in the timings, the exchange kept.
    fn record_script(&mut self, started: Instant, sent: usize, output: &ExecOutput) {
        let elapsed = milliseconds(started);
        self.timings.execs.push(elapsed);
        let kept = &output.stderr[..output.stderr.len().min(STDERR_KEPT)];
        self.exchanges.push(Exchange {
            kind: "script",
            command: None,
            sent: Some(sent),
            received: Some(output.stdout.len()),
            status: Some(output.status),
            milliseconds: elapsed,
            stderr: String::from_utf8_lossy(kept).into_owned(),
        });
    }

    /// Starts `command` (a shell reading scripts on stdin) on one exec
    /// channel and keeps it open for several scripts: see [`Shell`].
    pub fn shell(self, command: &str) -> Result<Shell, TransportError> {
        Shell::open(self, command)
    }

    /// Runs `command` (fixed text: data goes on `stdin`), feeding `stdin`
    /// and collecting everything it prints.
    pub fn exec(&mut self, command: &str, stdin: &[u8]) -> Result<ExecOutput, TransportError> {
        self.exec_streaming(command, stdin, &mut |_| {})
    }

    /// [`exec`](Self::exec), also handing each piece of stdout to
    /// `on_output` as it arrives (for following long remote work).
    pub fn exec_streaming(
        &mut self,
        command: &str,
        stdin: &[u8],
        on_output: &mut dyn FnMut(&[u8]),
    ) -> Result<ExecOutput, TransportError> {
        let started = Instant::now();
        let label = self.label.clone();
        let failure = |doing: &str| {
            let label = label.clone();
            let doing = doing.to_string();
            move |error: ssh2::Error| TransportError::ssh(&label, &doing, &error)
        };
        let mut channel = self.open_channel(command)?;
        channel.write_all(stdin).map_err(|error| {
            TransportError::new(
                FailureKind::Protocol,
                &self.label,
                format!("sending input: {error}"),
            )
        })?;
        channel.send_eof().map_err(failure("closing the input"))?;
        let mut stdout = Vec::new();
        let mut buffer = [0u8; 32 * 1024];
        loop {
            match channel.read(&mut buffer) {
                Ok(0) => break,
                Ok(count) => {
                    on_output(&buffer[..count]);
                    push_output(&mut stdout, &buffer[..count], &self.label)?;
                }
                Err(error) => return Err(read_failure(&self.label, error)),
            }
        }
        let mut stderr = Vec::new();
        channel
            .stderr()
            .take(MAX_OUTPUT as u64)
            .read_to_end(&mut stderr)
            .map_err(|error| read_failure(&self.label, error))?;
        channel
            .wait_close()
            .map_err(failure("closing the channel"))?;
        let status = channel
            .exit_status()
            .map_err(failure("reading the exit status"))?;
        let output = ExecOutput {
            status,
            stdout,
            stderr,
        };
        self.record_script(started, stdin.len(), &output);
        Ok(output)
    }
}

/// The most one exec may send back on stdout (or stderr): far past any
/// reply midfleet asks for (a facts read is a config.xml of at most 4 MiB
/// and a few small files), and small enough that a host whose files
/// someone swapped for a huge one cannot run the operator's midfleet out
/// of memory.
pub const MAX_OUTPUT: usize = 64 << 20;

/// Appends `piece` to `output`, or fails once the output would pass
/// [`MAX_OUTPUT`].
pub(crate) fn push_output(
    output: &mut Vec<u8>,
    piece: &[u8],
    label: &str,
) -> Result<(), TransportError> {
    if output.len() + piece.len() > MAX_OUTPUT {
        return Err(TransportError::new(
            FailureKind::Protocol,
            label,
            format!(
                "the host sent more than {} MiB: midfleet stopped reading (a file swapped for a huge one?)",
                MAX_OUTPUT >> 20
            ),
        ));
    }
    output.extend_from_slice(piece);
    Ok(())
}

fn read_failure(label: &str, error: std::io::Error) -> TransportError {
    let timed_out =
        error.kind() == std::io::ErrorKind::TimedOut || error.to_string().contains("Timed out");
    let failure = TransportError::new(
        if timed_out {
            FailureKind::Timeout
        } else {
            FailureKind::Protocol
        },
        label,
        format!("reading the remote output: {error}"),
    );
    if timed_out {
        failure.with_hint(
            "the host sent nothing for --ssh-timeout seconds (60 by default): a host too busy to answer, or fewer --forks / a larger --ssh-timeout",
        )
    } else {
        failure
    }
}

/// How a command is run on a host: directly (`become_user` `None`), or
/// through `sudo -n` (never a password, never a tty) as root or as another
/// user (`sudo -n -u USER`, for a sudoers rule as narrow as `(mid)`). The
/// command itself is always `sh -s`: the script comes on stdin, so no data
/// ever sits on a remote command line.
pub fn shell_command(become_user: Option<&str>) -> String {
    match become_user {
        None => "sh -s".to_string(),
        Some("root") => "sudo -n -- sh -s".to_string(),
        Some(user) => format!("sudo -n -u {} -- sh -s", shell_quote(user)),
    }
}

/// Turns `sudo`'s own refusals into a clear error for `host`.
pub fn check_become(label: &str, output: &ExecOutput) -> Result<(), TransportError> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status != 0 && stderr.contains("sudo:") {
        if stderr.contains("password is required") {
            return Err(TransportError::new(
                FailureKind::Become,
                label,
                "become: sudo wants a password (midfleet runs `sudo -n` and never sends one)",
            )
            .with_hint("allow the login user to run `sudo -n sh` without a password (NOPASSWD), or log in as the MID's owner without become"));
        }
        if stderr.contains("tty") {
            return Err(TransportError::new(
                FailureKind::Become,
                label,
                "become: sudo requires a tty (`Defaults requiretty`)",
            )
            .with_hint("add `Defaults:<user> !requiretty` for the login user on this host"));
        }
        return Err(TransportError::new(
            FailureKind::Become,
            label,
            format!(
                "become: {}",
                stderr
                    .lines()
                    .find(|line| line.contains("sudo:"))
                    .unwrap_or("sudo failed")
            ),
        ));
    }
    Ok(())
}

/// Quotes `text` for a POSIX shell: the result is one word, whatever it
/// holds.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_past_the_cap_is_an_error_not_memory() {
        let mut output = Vec::new();
        let piece = vec![b'x'; 1 << 20];
        for _ in 0..(MAX_OUTPUT >> 20) {
            push_output(&mut output, &piece, "lab-001").unwrap();
        }
        let error = push_output(&mut output, b"y", "lab-001").unwrap_err();
        assert!(error.to_string().contains("more than 64 MiB"), "{error}");
        assert_eq!(output.len(), MAX_OUTPUT, "nothing past the cap was kept");
    }

    #[test]
    fn quoting_survives_hostile_text() {
        for text in [
            "plain",
            "it's",
            "$(reboot)",
            "`id`",
            "a\nb",
            "'; rm -rf / #",
            "",
        ] {
            let output = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(text)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(output.stdout).unwrap(), text);
        }
    }
}
