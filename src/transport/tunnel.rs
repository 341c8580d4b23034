//! Jump hosts: a session on a hop carries `direct-tcpip` channels to the
//! next hop or the target. libssh2 needs a real socket under each session,
//! so every channel is bridged to one end of a Unix socket pair; the other
//! end becomes the next session's "TCP stream".
//!
//! One pump thread owns each hop's session, in non-blocking mode, and moves
//! the bytes of all its tunnels: many targets share a hop without queueing
//! behind each other, and no lock is held across a blocking call.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ssh2::{Channel, Session};

/// Bytes buffered per direction before the pump stops reading.
const BUFFER: usize = 64 * 1024;
/// How long the pump sleeps in `poll` when nothing moved.
const IDLE_POLL: Duration = Duration::from_millis(20);
/// Keepalives on the hop, so a NAT or firewall between keeps it open.
const KEEPALIVE: Duration = Duration::from_secs(15);

struct Request {
    host: String,
    port: u16,
    reply: Sender<io::Result<UnixStream>>,
    deadline: Instant,
}

/// A hop session serving tunnels. Dropping it ends the pump, which closes
/// every tunnel and the session.
pub struct Hop {
    requests: Option<Sender<Request>>,
    thread: Option<thread::JoinHandle<()>>,
    /// The hop this one is reached through, kept alive as long as this one.
    _through: Option<Arc<Hop>>,
}

impl Hop {
    /// Hands `session` (authenticated, blocking) to a new pump thread.
    /// `session_fd` is the descriptor of the socket under the session.
    pub fn start(
        session: Session,
        session_fd: RawFd,
        label: String,
        through: Option<Arc<Hop>>,
    ) -> Hop {
        let (sender, receiver) = mpsc::channel();
        let thread = thread::Builder::new()
            .name(format!("midfleet-hop-{label}"))
            .spawn(move || pump(session, session_fd, receiver))
            .ok();
        Hop {
            requests: Some(sender),
            thread,
            _through: through,
        }
    }

    /// A socket connected through this hop to `host:port`.
    pub fn open(&self, host: &str, port: u16, timeout: Duration) -> io::Result<UnixStream> {
        let (reply, response) = mpsc::channel();
        let sender = self
            .requests
            .as_ref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "the hop is closed"))?;
        sender
            .send(Request {
                host: host.to_string(),
                port,
                reply,
                deadline: Instant::now() + timeout,
            })
            .map_err(|_| io::Error::new(io::ErrorKind::NotConnected, "the hop session ended"))?;
        response
            .recv_timeout(timeout + Duration::from_secs(1))
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the hop did not open the channel in time",
                )
            })?
    }
}

impl Drop for Hop {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One bridged channel.
struct Tunnel {
    channel: Channel,
    socket: UnixStream,
    to_socket: VecDeque<u8>,
    to_channel: VecDeque<u8>,
    channel_eof: bool,
    socket_eof: bool,
    sent_eof: bool,
    closed: bool,
}

fn would_block(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::WouldBlock
}

fn pump(session: Session, session_fd: RawFd, requests: Receiver<Request>) {
    session.set_blocking(false);
    session.set_keepalive(false, KEEPALIVE.as_secs() as u32);
    let mut pending: Vec<Request> = Vec::new();
    let mut tunnels: Vec<Tunnel> = Vec::new();
    let mut requests_open = true;
    let mut last_keepalive = Instant::now();
    loop {
        loop {
            match requests.try_recv() {
                Ok(request) => pending.push(request),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    requests_open = false;
                    break;
                }
            }
        }
        if !requests_open && pending.is_empty() && tunnels.is_empty() {
            break;
        }
        let mut progressed = false;
        pending.retain(|request| {
            match session.channel_direct_tcpip(&request.host, request.port, None) {
                Ok(channel) => {
                    progressed = true;
                    match UnixStream::pair() {
                        Ok((ours, theirs)) => {
                            let _ = ours.set_nonblocking(true);
                            tunnels.push(Tunnel {
                                channel,
                                socket: ours,
                                to_socket: VecDeque::new(),
                                to_channel: VecDeque::new(),
                                channel_eof: false,
                                socket_eof: false,
                                sent_eof: false,
                                closed: false,
                            });
                            let _ = request.reply.send(Ok(theirs));
                        }
                        Err(error) => {
                            let _ = request.reply.send(Err(error));
                        }
                    }
                    false
                }
                Err(error)
                    if error.code()
                        == ssh2::ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_EAGAIN) =>
                {
                    if Instant::now() > request.deadline {
                        let _ = request.reply.send(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "opening the channel timed out",
                        )));
                        return false;
                    }
                    true
                }
                Err(error) => {
                    let _ = request.reply.send(Err(io::Error::other(format!(
                        "the hop could not reach {}:{}: {}",
                        request.host,
                        request.port,
                        error.message()
                    ))));
                    false
                }
            }
        });
        for tunnel in &mut tunnels {
            progressed |= move_bytes(tunnel);
        }
        tunnels.retain(|tunnel| !tunnel.closed);
        if last_keepalive.elapsed() >= KEEPALIVE {
            let _ = session.keepalive_send();
            last_keepalive = Instant::now();
        }
        if !progressed {
            wait(session_fd, &tunnels);
        }
    }
    let _ = session.disconnect(None, "midfleet: done", None);
}

/// Moves what can move without blocking; whether anything did.
fn move_bytes(tunnel: &mut Tunnel) -> bool {
    let mut progressed = false;
    let mut buffer = [0u8; 16 * 1024];
    // channel → socket
    while !tunnel.channel_eof && tunnel.to_socket.len() < BUFFER {
        match tunnel.channel.read(&mut buffer) {
            Ok(0) => {
                if tunnel.channel.eof() {
                    tunnel.channel_eof = true;
                }
                break;
            }
            Ok(count) => {
                tunnel.to_socket.extend(&buffer[..count]);
                progressed = true;
            }
            Err(error) if would_block(&error) => break,
            Err(_) => {
                tunnel.channel_eof = true;
                break;
            }
        }
    }
    while !tunnel.to_socket.is_empty() {
        let (front, _) = tunnel.to_socket.as_slices();
        match tunnel.socket.write(front) {
            Ok(count) => {
                tunnel.to_socket.drain(..count);
                progressed = true;
            }
            Err(error) if would_block(&error) => break,
            Err(_) => {
                tunnel.to_socket.clear();
                tunnel.socket_eof = true;
                break;
            }
        }
    }
    if tunnel.channel_eof && tunnel.to_socket.is_empty() {
        let _ = tunnel.socket.shutdown(std::net::Shutdown::Write);
    }
    // socket → channel
    while !tunnel.socket_eof && tunnel.to_channel.len() < BUFFER {
        match tunnel.socket.read(&mut buffer) {
            Ok(0) => {
                tunnel.socket_eof = true;
                break;
            }
            Ok(count) => {
                tunnel.to_channel.extend(&buffer[..count]);
                progressed = true;
            }
            Err(error) if would_block(&error) => break,
            Err(_) => {
                tunnel.socket_eof = true;
                break;
            }
        }
    }
    while !tunnel.to_channel.is_empty() {
        let (front, _) = tunnel.to_channel.as_slices();
        match tunnel.channel.write(front) {
            Ok(count) => {
                tunnel.to_channel.drain(..count);
                progressed = true;
            }
            Err(error) if would_block(&error) => break,
            Err(_) => {
                tunnel.to_channel.clear();
                tunnel.channel_eof = true;
                break;
            }
        }
    }
    if tunnel.socket_eof && tunnel.to_channel.is_empty() && !tunnel.sent_eof {
        match tunnel.channel.send_eof() {
            Ok(()) => tunnel.sent_eof = true,
            Err(error)
                if error.code() == ssh2::ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_EAGAIN) => {}
            Err(_) => tunnel.sent_eof = true,
        }
    }
    if tunnel.channel_eof && tunnel.socket_eof && tunnel.sent_eof && tunnel.to_socket.is_empty() {
        match tunnel.channel.close() {
            Err(error)
                if error.code() == ssh2::ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_EAGAIN) => {}
            _ => tunnel.closed = true,
        }
    }
    progressed
}

/// Sleeps until the hop's socket or a tunnel socket is readable, or a
/// short while passes (the session's readiness is shared by all tunnels,
/// so the wait is bounded rather than trusted).
fn wait(session_fd: RawFd, tunnels: &[Tunnel]) {
    let mut descriptors: Vec<libc::pollfd> = Vec::with_capacity(tunnels.len() + 1);
    descriptors.push(libc::pollfd {
        fd: session_fd,
        events: libc::POLLIN,
        revents: 0,
    });
    for tunnel in tunnels {
        descriptors.push(libc::pollfd {
            fd: tunnel.socket.as_raw_fd(),
            events: if tunnel.socket_eof { 0 } else { libc::POLLIN },
            revents: 0,
        });
    }
    // SAFETY: `descriptors` is a valid, initialised array of pollfd whose
    // length is passed with it; poll only writes `revents`.
    unsafe {
        libc::poll(
            descriptors.as_mut_ptr(),
            descriptors.len() as libc::nfds_t,
            IDLE_POLL.as_millis() as libc::c_int,
        );
    }
}
