//! The lab's network link: a userspace TCP relay in front of each host's
//! sshd that makes loopback behave like a wide-area link — latency,
//! jitter, loss and cuts, set per host and changed while connections live.
//!
//! This machine's kernel has no `netem` qdisc, so the link is the lab's
//! own. The relay (`midfleet-relay`, one process per lab) listens where
//! the inventory points (the host's address and port) and forwards to the
//! host's sshd (same address, the next port). For each chunk it reads it
//! knows the moment it arrived, and hands it on at
//!
//! - **arrival + half the round trip ± jitter** (uniform), never before a
//!   chunk read earlier in the same direction: TCP delivers in order;
//! - **+ one retransmission timeout** on the given share of chunks
//!   (`loss`): what a lost segment costs a TCP connection is a stall of
//!   about an RTO (Linux: the round trip plus its 200 ms minimum), and
//!   everything behind it waits too (head-of-line blocking);
//! - **never, while the link is down**: data waits (a connection through
//!   a dead link hangs, as a real one does until TCP gives up), and flows
//!   again when it comes back up;
//! - a **cut** ends every live connection at once (a FIN, then an RST
//!   when the relay closes it), also one still being set up, as a
//!   dropped NAT entry or a restarted firewall does.
//!
//! Settings live in one file per host (`<links>/<host>`, one line of
//! `key=value` words, [`LinkSettings`]); the relay reads them again within
//! 20 ms of a change, so a benchmark or a chaos run changes the link of a
//! live connection. A control socket (`<links>/control.sock`) answers
//! `stats` and `reset` ([`LinkStats`]).
//!
//! **Round trips** are counted at the client's end of the link: a *turn*
//! is each time the client sends after the server's data reached it since
//! its previous send — the client waited for the server — plus one for
//! each TCP connect (SYN, SYN-ACK). A client that pipelines requests
//! without waiting spends fewer turns; one that answers every message
//! (window adjusts included) more. On a link of round trip `R`, a command
//! cannot take less than turns × `R`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use super::LabError;
use crate::rng::Rng;

/// The longest round trip or jitter a link takes (10 minutes).
pub const MAX_MS: u64 = 600_000;

/// The minimum retransmission timeout of Linux TCP (`TCP_RTO_MIN`).
pub const RTO_MIN: Duration = Duration::from_millis(200);

/// One host's link. The default is a perfect link (no delay, no loss, up).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkSettings {
    /// The round trip the link adds (half each way).
    pub rtt: Duration,
    /// Each chunk's one-way delay varies by up to this much either way.
    pub jitter: Duration,
    /// The share of chunks (0.0–1.0) that stall one RTO, as a lost
    /// segment does.
    pub loss: f64,
    /// Data does not pass (held until the link is up again).
    pub down: bool,
    /// How many times the link was cut: raising it resets every live
    /// connection.
    pub cuts: u64,
}

impl LinkSettings {
    /// A link of round trip `rtt` with `loss` (0.0–1.0).
    pub fn new(rtt: Duration, loss: f64) -> LinkSettings {
        LinkSettings {
            rtt,
            loss,
            ..LinkSettings::default()
        }
    }

    /// The stall a lost segment costs: the round trip and Linux's
    /// minimum RTO.
    pub fn rto(&self) -> Duration {
        self.rtt + RTO_MIN
    }

    /// The file's text: `rtt_ms=150 jitter_ms=5 loss=0.01 down=0 cuts=0`.
    pub fn to_line(&self) -> String {
        format!(
            "rtt_ms={} jitter_ms={} loss={} down={} cuts={}\n",
            self.rtt.as_millis(),
            self.jitter.as_millis(),
            self.loss,
            u8::from(self.down),
            self.cuts
        )
    }

    /// How `midfleet lab link` and `lab status` show it: `round trip 150
    /// ms, jitter 5 ms, loss 1%, up`.
    pub fn summary(&self) -> String {
        format!(
            "round trip {} ms, jitter {} ms, loss {}%, {}",
            self.rtt.as_millis(),
            self.jitter.as_millis(),
            (self.loss * 100_000.0).round() / 1000.0,
            if self.down { "down" } else { "up" }
        )
    }

    /// Reads the words of [`LinkSettings::to_line`] (any order; missing
    /// ones keep their default). Also what `midfleet lab link` takes:
    /// `rtt=150ms`, `jitter=5ms`, `loss=1%` are accepted too.
    pub fn parse(text: &str) -> Result<LinkSettings, String> {
        let mut settings = LinkSettings::default();
        settings.apply(text)?;
        Ok(settings)
    }

    /// Changes the settings the words of `text` name, the rest kept.
    pub fn apply(&mut self, text: &str) -> Result<(), String> {
        for word in text.split_whitespace() {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| format!("`{word}`: expected KEY=VALUE"))?;
            let millis = |value: &str| -> Result<Duration, String> {
                let number = value.strip_suffix("ms").unwrap_or(value);
                number
                    .parse::<u64>()
                    .ok()
                    .filter(|millis| *millis <= MAX_MS)
                    .map(Duration::from_millis)
                    .ok_or_else(|| {
                        format!("`{word}`: {value} is not a whole number of milliseconds up to {MAX_MS}")
                    })
            };
            match key {
                "rtt" | "rtt_ms" | "latency" => self.rtt = millis(value)?,
                "jitter" | "jitter_ms" => self.jitter = millis(value)?,
                "loss" => {
                    let (number, scale) = match value.strip_suffix('%') {
                        Some(percent) => (percent, 100.0),
                        None => (value, 1.0),
                    };
                    let loss = number
                        .parse::<f64>()
                        .ok()
                        .map(|loss| loss / scale)
                        .filter(|loss| (0.0..=1.0).contains(loss))
                        .ok_or_else(|| {
                            format!("`{word}`: loss is a share from 0 to 1 (or 0% to 100%)")
                        })?;
                    self.loss = loss;
                }
                "down" => {
                    self.down = match value {
                        "1" | "true" | "yes" => true,
                        "0" | "false" | "no" => false,
                        _ => return Err(format!("`{word}`: down is 1 or 0")),
                    }
                }
                "cuts" => {
                    self.cuts = value
                        .parse()
                        .map_err(|_| format!("`{word}`: cuts is a count"))?
                }
                _ => {
                    return Err(format!(
                        "`{word}`: unknown link setting `{key}` (rtt, jitter, loss, down, cuts)"
                    ))
                }
            }
        }
        Ok(())
    }
}

/// Where a lab keeps its links: the settings files and the control socket.
pub fn links_directory(lab: &Path) -> PathBuf {
    lab.join("links")
}

/// Writes `settings` for `host` (whole or not at all: a temporary file
/// renamed over the old one); the relay takes it within 20 ms.
pub fn write_settings(links: &Path, host: &str, settings: &LinkSettings) -> Result<(), LabError> {
    let path = links.join(host);
    // Its own name per process: two writers at once never share one.
    let temporary = links.join(format!(".{host}.{}.new", std::process::id()));
    std::fs::write(&temporary, settings.to_line())
        .and_then(|()| std::fs::rename(&temporary, &path))
        .map_err(|error| LabError(format!("cannot write {}: {error}", path.display())))
}

/// Reads `host`'s settings file.
pub fn read_settings(links: &Path, host: &str) -> Result<LinkSettings, LabError> {
    let path = links.join(host);
    let text = std::fs::read_to_string(&path)
        .map_err(|error| LabError(format!("cannot read {}: {error}", path.display())))?;
    LinkSettings::parse(&text).map_err(|error| LabError(format!("{}: {error}", path.display())))
}

/// What crossed one host's link since the last reset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// TCP connections accepted.
    pub connections: u64,
    /// Round trips the clients waited: connects, and each send after
    /// the server's data reached the client (see the module's text).
    pub turns: u64,
    /// Bytes client → server, and server → client.
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Chunks that stalled one RTO (loss).
    pub stalls: u64,
    /// Connections reset by a cut.
    pub resets: u64,
    /// Connections open now (not reset by `reset`).
    pub live: u64,
}

impl LinkStats {
    fn line(&self, host: &str) -> String {
        format!(
            "{host} connections={} turns={} bytes_up={} bytes_down={} stalls={} resets={} live={}\n",
            self.connections,
            self.turns,
            self.bytes_up,
            self.bytes_down,
            self.stalls,
            self.resets,
            self.live
        )
    }

    fn parse(line: &str) -> Option<(String, LinkStats)> {
        let mut words = line.split_whitespace();
        let host = words.next()?.to_string();
        let mut stats = LinkStats::default();
        for word in words {
            let (key, value) = word.split_once('=')?;
            let value: u64 = value.parse().ok()?;
            match key {
                "connections" => stats.connections = value,
                "turns" => stats.turns = value,
                "bytes_up" => stats.bytes_up = value,
                "bytes_down" => stats.bytes_down = value,
                "stalls" => stats.stalls = value,
                "resets" => stats.resets = value,
                "live" => stats.live = value,
                _ => return None,
            }
        }
        Some((host, stats))
    }
}

/// Asks the relay of the lab whose links are in `links`: `stats` (every
/// host's counters) or `reset` (all back to 0; answers the counters as
/// they were).
pub fn control(links: &Path, request: &str) -> Result<HashMap<String, LinkStats>, LabError> {
    let path = links.join("control.sock");
    let failed = |error: std::io::Error| {
        LabError(format!(
            "the link relay's control socket {}: {error}",
            path.display()
        ))
    };
    let mut stream = UnixStream::connect(&path).map_err(failed)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(failed)?;
    stream
        .write_all(format!("{request}\n").as_bytes())
        .map_err(failed)?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(failed)?;
    let mut all = HashMap::new();
    for line in answer.lines() {
        if line == "ok" {
            return Ok(all);
        }
        let (host, stats) = LinkStats::parse(line)
            .ok_or_else(|| LabError(format!("the link relay answered `{line}`")))?;
        all.insert(host, stats);
    }
    Err(LabError(format!(
        "the link relay did not finish its answer to `{request}`: {answer}"
    )))
}

/// One host the relay serves.
#[derive(Clone, Debug)]
pub struct Route {
    pub host: String,
    /// Where clients connect (the inventory's address and port).
    pub listen: SocketAddr,
    /// The host's sshd.
    pub target: SocketAddr,
}

impl Route {
    /// `HOST=LISTEN=TARGET`, as `midfleet-relay --route` takes it.
    pub fn parse(text: &str) -> Result<Route, String> {
        let mut parts = text.splitn(3, '=');
        let (Some(host), Some(listen), Some(target)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("`{text}`: expected HOST=LISTEN=TARGET"));
        };
        let address = |value: &str| {
            value
                .parse::<SocketAddr>()
                .map_err(|error| format!("`{text}`: {value}: {error}"))
        };
        Ok(Route {
            host: host.to_string(),
            listen: address(listen)?,
            target: address(target)?,
        })
    }
}

/// One live connection's two sockets, for a cut.
struct Live {
    client: TcpStream,
    server: TcpStream,
}

/// A host's link as the relay holds it.
struct Link {
    host: String,
    settings: RwLock<LinkSettings>,
    /// Wakes writers waiting on a down link.
    changed: (Mutex<u64>, std::sync::Condvar),
    live: Mutex<HashMap<u64, Live>>,
    /// The jitter and loss draws: they repeat with the seed; which chunk
    /// each falls on depends on how the bytes were split into chunks,
    /// which is timing.
    draws: Mutex<Rng>,
    connections: AtomicU64,
    turns: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    stalls: AtomicU64,
    resets: AtomicU64,
    /// Connections whose threads have not ended.
    open: AtomicU64,
}

impl Link {
    fn stats(&self) -> LinkStats {
        LinkStats {
            connections: self.connections.load(Ordering::Relaxed),
            turns: self.turns.load(Ordering::Relaxed),
            bytes_up: self.bytes_up.load(Ordering::Relaxed),
            bytes_down: self.bytes_down.load(Ordering::Relaxed),
            stalls: self.stalls.load(Ordering::Relaxed),
            resets: self.resets.load(Ordering::Relaxed),
            live: self.open.load(Ordering::Relaxed),
        }
    }

    fn reset_stats(&self) {
        for counter in [
            &self.connections,
            &self.turns,
            &self.bytes_up,
            &self.bytes_down,
            &self.stalls,
            &self.resets,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }

    /// When a chunk read now, in a direction whose previous chunk is due
    /// at `previous`, is handed on.
    fn due(&self, now: Instant, previous: Instant) -> Instant {
        let settings = *self.settings.read().unwrap();
        let mut draws = self.draws.lock().unwrap();
        let half = settings.rtt / 2;
        let mut delay = half;
        if !settings.jitter.is_zero() {
            let swing = settings.jitter.as_secs_f64() * (2.0 * draws.unit() - 1.0);
            delay = Duration::from_secs_f64((half.as_secs_f64() + swing).max(0.0));
        }
        if settings.loss > 0.0 && draws.unit() < settings.loss {
            self.stalls.fetch_add(1, Ordering::Relaxed);
            delay += settings.rto();
        }
        (now + delay).max(previous)
    }

    /// As [`Link::due`], without drawing a loss (a connection's end).
    fn due_without_loss(&self, now: Instant, previous: Instant) -> Instant {
        (now + self.settings.read().unwrap().rtt / 2).max(previous)
    }

    /// Waits while the link is down.
    fn wait_up(&self) {
        let (lock, condvar) = &self.changed;
        let mut generation = lock.lock().unwrap();
        while self.settings.read().unwrap().down {
            generation = condvar
                .wait_timeout(generation, Duration::from_millis(50))
                .unwrap()
                .0;
        }
    }

    /// Takes new settings; a raised cut count ends every live connection:
    /// both its sockets shut down (a FIN each way), with SO_LINGER 0 so
    /// that the relay's close of them sends an RST.
    fn update(&self, settings: LinkSettings) {
        let before = *self.settings.read().unwrap();
        *self.settings.write().unwrap() = settings;
        {
            let (lock, condvar) = &self.changed;
            *lock.lock().unwrap() += 1;
            condvar.notify_all();
        }
        if settings.cuts > before.cuts {
            let live: Vec<Live> = self
                .live
                .lock()
                .unwrap()
                .drain()
                .map(|(_, live)| live)
                .collect();
            for connection in live {
                self.resets.fetch_add(1, Ordering::Relaxed);
                reset(&connection.client);
                reset(&connection.server);
            }
        }
    }
}

/// Closes `stream` with an RST, not a FIN.
fn reset(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we hold, with a struct we own.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// Serves `routes` until the process ends: one listener per route, a
/// watcher of the settings files in `links`, and the control socket.
/// Prints `ready` on stdout once every listener is bound.
pub fn serve(links: &Path, routes: Vec<Route>, seed: u64) -> Result<(), LabError> {
    let mut listeners = Vec::new();
    let mut all: Vec<Arc<Link>> = Vec::new();
    for (index, route) in routes.iter().enumerate() {
        let settings = read_settings(links, &route.host).unwrap_or_default();
        let listener = TcpListener::bind(route.listen).map_err(|error| {
            LabError(format!(
                "{}: the link cannot listen on {}: {error}",
                route.host, route.listen
            ))
        })?;
        let link = Arc::new(Link {
            host: route.host.clone(),
            settings: RwLock::new(settings),
            changed: (Mutex::new(0), std::sync::Condvar::new()),
            live: Mutex::new(HashMap::new()),
            draws: Mutex::new(Rng::from_state(
                seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .wrapping_add(index as u64 + 1),
            )),
            connections: AtomicU64::new(0),
            turns: AtomicU64::new(0),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
            stalls: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            open: AtomicU64::new(0),
        });
        listeners.push((listener, route.target, Arc::clone(&link)));
        all.push(link);
    }
    let control_path = links.join("control.sock");
    let _ = std::fs::remove_file(&control_path);
    let control = UnixListener::bind(&control_path).map_err(|error| {
        LabError(format!(
            "the link relay cannot listen on {}: {error}",
            control_path.display()
        ))
    })?;
    for (listener, target, link) in listeners {
        std::thread::spawn(move || accept(listener, target, link));
    }
    {
        let links = links.to_path_buf();
        let all = all.clone();
        std::thread::spawn(move || watch(&links, &all));
    }
    println!("ready");
    let _ = std::io::stdout().flush();
    for stream in control.incoming().flatten() {
        answer(stream, &all);
    }
    Ok(())
}

/// Re-reads each host's settings file when it changes.
fn watch(links: &Path, all: &[Arc<Link>]) {
    let mut seen: HashMap<String, (SystemTime, u64)> = HashMap::new();
    loop {
        for link in all {
            let path = links.join(&link.host);
            let Ok(metadata) = std::fs::metadata(&path) else {
                continue;
            };
            let stamp = (
                metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                std::os::unix::fs::MetadataExt::ino(&metadata),
            );
            if seen.get(&link.host) == Some(&stamp) {
                continue;
            }
            seen.insert(link.host.clone(), stamp);
            if let Ok(settings) = read_settings(links, &link.host) {
                if settings != *link.settings.read().unwrap() {
                    link.update(settings);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn answer(stream: UnixStream, all: &[Arc<Link>]) {
    // A client that never sends its line does not hold up the others.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reader = BufReader::new(&stream);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    let mut out = String::new();
    match request.trim() {
        "stats" | "reset" => {
            for link in all {
                out.push_str(&link.stats().line(&link.host));
                if request.trim() == "reset" {
                    link.reset_stats();
                }
            }
            out.push_str("ok\n");
        }
        other => out.push_str(&format!("unknown request `{other}` (stats, reset)\n")),
    }
    let _ = (&stream).write_all(out.as_bytes());
}

fn accept(listener: TcpListener, target: SocketAddr, link: Arc<Link>) {
    let mut next_id = 0u64;
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        let accepted = Instant::now();
        let id = next_id;
        next_id += 1;
        let link = Arc::clone(&link);
        std::thread::spawn(move || connection(client, target, link, id, accepted));
    }
}

/// One connection. The client's connect returned at once (the kernel
/// answers it on loopback), so the relay plays the handshake's round trip
/// itself, counting from the accept as the SYN: on a real link the
/// client's connect returns after one round trip, its first bytes reach
/// the server half a round trip later, and the server's first bytes
/// (sent when it accepts, on the client's ACK) reach the client two round
/// trips after the SYN. So sshd is connected one round trip after the
/// accept, the client's bytes go on no earlier than 1.5 round trips
/// after it, and the server's no earlier than 2. Then each direction is
/// a reader that stamps chunks and a writer that hands them on when due.
fn connection(client: TcpStream, target: SocketAddr, link: Arc<Link>, id: u64, accepted: Instant) {
    link.connections.fetch_add(1, Ordering::Relaxed);
    link.open.fetch_add(1, Ordering::Relaxed);
    let settings = *link.settings.read().unwrap();
    let rtt = settings.rtt;
    sleep_until(accepted + rtt);
    link.wait_up();
    // A cut while the connection was being set up cuts it too.
    let cut = link.settings.read().unwrap().cuts > settings.cuts;
    let server = match TcpStream::connect(target) {
        Ok(server) if !cut => server,
        _ => {
            if cut {
                link.resets.fetch_add(1, Ordering::Relaxed);
            }
            reset(&client);
            link.open.fetch_sub(1, Ordering::Relaxed);
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    if let (Ok(client_live), Ok(server_live)) = (client.try_clone(), server.try_clone()) {
        link.live.lock().unwrap().insert(
            id,
            Live {
                client: client_live,
                server: server_live,
            },
        );
        // Set when server data reached the client since its last send;
        // set at first, so that the first send counts the connect.
        let heard = AtomicBool::new(true);
        std::thread::scope(|scope| {
            let (up_from, up_to) = (client.try_clone(), server.try_clone());
            let (link, heard) = (&*link, &heard);
            scope.spawn(move || {
                if let (Ok(from), Ok(to)) = (up_from, up_to) {
                    direction(
                        from,
                        to,
                        link,
                        Direction::Up,
                        heard,
                        accepted + rtt + rtt / 2,
                    );
                }
            });
            direction(
                server,
                client,
                link,
                Direction::Down,
                heard,
                accepted + rtt * 2,
            );
        });
        link.live.lock().unwrap().remove(&id);
    }
    link.open.fetch_sub(1, Ordering::Relaxed);
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

enum Chunk {
    Data(Vec<u8>),
    /// `from` ended: cleanly (FIN), or by an error or reset.
    End {
        reset: bool,
    },
}

/// Moves one direction's bytes from `from` to `to`, each chunk when due;
/// at the end of `from`, ends `to`'s writing half (or resets it, when
/// `from` was reset), also when due.
fn direction(
    mut from: TcpStream,
    mut to: TcpStream,
    link: &Link,
    which: Direction,
    heard: &AtomicBool,
    not_before: Instant,
) {
    let (sender, receiver) = mpsc::channel::<(Instant, Chunk)>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut failed = false;
            for (due, chunk) in receiver {
                if failed {
                    continue;
                }
                sleep_until(due);
                link.wait_up();
                match chunk {
                    Chunk::Data(bytes) => {
                        // Before the write: the client may answer (and
                        // its answer be read) before a store after it.
                        if which == Direction::Down {
                            heard.store(true, Ordering::Release);
                        }
                        if to.write_all(&bytes).is_err() {
                            failed = true;
                        }
                    }
                    Chunk::End { reset: true } => reset(&to),
                    Chunk::End { reset: false } => {
                        let _ = to.shutdown(Shutdown::Write);
                    }
                }
            }
        });
        let mut previous = not_before;
        let mut buffer = vec![0u8; 64 * 1024];
        let reset = loop {
            match from.read(&mut buffer) {
                Ok(0) => break false,
                Ok(count) => {
                    let now = Instant::now();
                    if which == Direction::Up {
                        link.bytes_up.fetch_add(count as u64, Ordering::Relaxed);
                        if heard.swap(false, Ordering::AcqRel) {
                            link.turns.fetch_add(1, Ordering::Relaxed);
                        }
                    } else {
                        link.bytes_down.fetch_add(count as u64, Ordering::Relaxed);
                    }
                    previous = link.due(now, previous);
                    if sender
                        .send((previous, Chunk::Data(buffer[..count].to_vec())))
                        .is_err()
                    {
                        break true;
                    }
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break true,
            }
        };
        // The end travels the link as data does.
        let due = link.due_without_loss(Instant::now(), previous);
        let _ = sender.send((due, Chunk::End { reset }));
        // The writer ends when the last sender is gone: this one.
        drop(sender);
    });
}

/// Sleeps until `when` (at once when it has passed).
pub(crate) fn sleep_until(when: Instant) {
    let now = Instant::now();
    if when > now {
        std::thread::sleep(when - now);
    }
}
