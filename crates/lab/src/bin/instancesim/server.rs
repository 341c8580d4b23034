//! Listening, one thread per connection, TLS, the fault knobs, the request
//! log and the state file.

use std::io::{self, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;

use super::http::{read_request, write_response, Request};
use super::tables::State;

/// The command line, resolved.
pub struct Options {
    pub listen: String,
    pub state: Option<PathBuf>,
    /// `(certificate chain, private key)` PEM files: serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// With `tls`: ask clients for a certificate and verify it against
    /// this PEM CA (mutual TLS; a client without one may still log in
    /// with a password).
    pub client_ca: Option<PathBuf>,
    pub admin_password: String,
    pub fail_first: u64,
    pub retry_after: Option<u64>,
    pub hang: bool,
    /// Read at each request: `503` or `hang` (see [`Fault`]).
    pub faults: Option<PathBuf>,
    pub read_only: Vec<String>,
    pub deny_read: Vec<String>,
    pub log: Option<PathBuf>,
}

struct Shared {
    state: Mutex<State>,
    options: Options,
    requests: AtomicU64,
    /// Connections accepted: each request's log line names its own.
    connections: AtomicU64,
    log: Mutex<()>,
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// Serves until killed.
pub fn run(options: Options) -> Result<(), String> {
    let mut state = match &options.state {
        Some(path) if path.exists() => {
            let text = std::fs::read_to_string(path)
                .map_err(|error| format!("{}: {error}", path.display()))?;
            serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?
        }
        _ => State::default(),
    };
    state.seed(&options.admin_password);
    state.read_only = options.read_only.clone();
    state.deny_read = options.deny_read.clone();
    if let Some(path) = &options.state {
        save(path, &state).map_err(|error| format!("{}: {error}", path.display()))?;
    }
    let tls = match &options.tls {
        Some((cert, key)) => Some(server_config(cert, key, options.client_ca.as_deref())?),
        None => None,
    };
    let listener = TcpListener::bind(&options.listen)
        .map_err(|error| format!("{}: {error}", options.listen))?;
    let address = listener.local_addr().map_err(|error| error.to_string())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("listening on {scheme}://{address}");
    io::stdout().flush().map_err(|error| error.to_string())?;
    let shared = Arc::new(Shared {
        state: Mutex::new(state),
        options,
        requests: AtomicU64::new(0),
        connections: AtomicU64::new(0),
        log: Mutex::new(()),
    });
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        std::thread::spawn(move || {
            match connection(stream, &shared, tls) {
                // A client that gave up (or refused our certificate, or
                // stopped waiting for a request a `hang` fault held).
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::UnexpectedEof
                            | io::ErrorKind::BrokenPipe
                            | io::ErrorKind::ConnectionReset
                    ) => {}
                Err(error) => eprintln!("midfleet-instancesim: connection: {error}"),
                Ok(()) => {}
            }
        });
    }
    Ok(())
}

fn connection(
    tcp: TcpStream,
    shared: &Shared,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> io::Result<()> {
    if shared.options.hang {
        // Accept, read nothing, answer nothing, keep the connection open.
        let _held = tcp;
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    // An idle kept-alive connection is let go after this.
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let (mut reader, certificate): (BufReader<Box<dyn Stream>>, _) = match tls {
        Some(config) => {
            let connection = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
            let mut stream = rustls::StreamOwned::new(connection, tcp);
            // The handshake first: the client's certificate, if any, is
            // then known for every request of the connection.
            while stream.conn.is_handshaking() {
                stream.conn.complete_io(&mut stream.sock)?;
            }
            let certificate = stream
                .conn
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| leaf.as_ref().to_vec());
            (
                BufReader::new(Box::new(stream) as Box<dyn Stream>),
                certificate,
            )
        }
        None => (BufReader::new(Box::new(tcp) as Box<dyn Stream>), None),
    };
    let number = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
    while let Some(mut request) = read_request(&mut reader)? {
        request.client_certificate = certificate.clone();
        let keep_alive = !request.close;
        answer(&request, number, shared, reader.get_mut(), keep_alive)?;
        if !keep_alive {
            break;
        }
    }
    Ok(())
}

/// Answers one request (the fault knobs first), logs it, and saves the
/// state when it changed.
fn answer(
    request: &Request,
    connection: u64,
    shared: &Shared,
    stream: &mut dyn Write,
    keep_alive: bool,
) -> io::Result<()> {
    let number = shared.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let mut fault = Fault::read(shared.options.faults.as_deref());
    if fault == Fault::Hang {
        // Held while the fault lasts (at most HANG_LIMIT), then carried
        // out: the answer goes to a client that may have given up.
        let held = std::time::Instant::now();
        while fault == Fault::Hang && held.elapsed() < HANG_LIMIT {
            std::thread::sleep(Duration::from_millis(20));
            fault = Fault::read(shared.options.faults.as_deref());
        }
    }
    let (status, body, user, headers) = if number <= shared.options.fail_first
        || fault == Fault::Unavailable
    {
        let headers: Vec<(&str, String)> = match (fault, shared.options.retry_after) {
            (Fault::Unavailable, _) => vec![("Retry-After", "1".to_string())],
            (_, Some(seconds)) => vec![("Retry-After", seconds.to_string())],
            (_, None) => Vec::new(),
        };
        let detail = if fault == Fault::Unavailable {
            "fault file: 503"
        } else {
            "fault knob --fail-first"
        };
        let body = json!({ "error": { "message": "Service Unavailable", "detail": detail }, "status": "failure" });
        (503, body, None, headers)
    } else {
        let mut state = shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let answer = super::identity::handle(&mut state, request);
        if answer.changed {
            if let Some(path) = &shared.options.state {
                save(path, &state)?;
            }
        }
        (answer.status, answer.body, answer.user, Vec::new())
    };
    if let Some(path) = &shared.options.log {
        // The query's parameter values are user names and field lists;
        // bodies (which may hold a password) are never logged.
        let line = json!({
            "method": request.method,
            "path": request.path,
            "query": request.query.iter().map(|(key, value)| format!("{key}={value}")).collect::<Vec<_>>(),
            "user": user,
            "status": status,
            "connection": connection,
        });
        let _guard = shared
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(file, "{line}")?;
    }
    write_response(stream, status, &headers, &body.to_string(), keep_alive)
}

/// The longest a `hang` fault holds one request.
const HANG_LIMIT: Duration = Duration::from_secs(600);

/// What the `--faults` file says now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    /// `503`: every request answered 503 Service Unavailable.
    Unavailable,
    /// `hang`: every request held unanswered.
    Hang,
}

impl Fault {
    fn read(path: Option<&Path>) -> Fault {
        let Some(text) = path.and_then(|path| std::fs::read_to_string(path).ok()) else {
            return Fault::None;
        };
        match text.trim() {
            "503" => Fault::Unavailable,
            "hang" => Fault::Hang,
            _ => Fault::None,
        }
    }
}

/// Writes the state atomically (temp file + rename).
fn save(path: &Path, state: &State) -> io::Result<()> {
    let temporary = path.with_extension("tmp-instancesim");
    let text = serde_json::to_string_pretty(state).map_err(io::Error::other)?;
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}

fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certificates| certificates.collect())
        .map_err(|error| format!("{}: {error}", cert.display()))?;
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|error| format!("{}: {error}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?;
    let builder = match client_ca {
        Some(client_ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for certificate in CertificateDer::pem_file_iter(client_ca)
                .map_err(|error| format!("{}: {error}", client_ca.display()))?
            {
                let certificate =
                    certificate.map_err(|error| format!("{}: {error}", client_ca.display()))?;
                roots
                    .add(certificate)
                    .map_err(|error| format!("{}: {error}", client_ca.display()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .allow_unauthenticated()
            .build()
            .map_err(|error| format!("{}: {error}", client_ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|error| error.to_string())?;
    Ok(Arc::new(config))
}
