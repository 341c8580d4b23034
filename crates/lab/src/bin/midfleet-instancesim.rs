//! `midfleet-instancesim`: an emulated ServiceNow instance for midfleet's
//! tests — the Table API subset midfleet uses, over HTTP or HTTPS, with
//! its state in memory or in a JSON file, and failure knobs. What it
//! implements is described in [`instancesim`].

mod instancesim;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// An emulated ServiceNow instance (Table API subset) for midfleet's tests.
#[derive(Parser)]
#[command(name = "midfleet-instancesim", version)]
struct Arguments {
    /// Address to listen on; port 0 picks a free one. The first line on
    /// stdout is `listening on URL`.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// JSON state: loaded at start when it exists, written after each change.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (needs --key).
    #[arg(long, value_name = "PEM", requires = "key")]
    cert: Option<PathBuf>,
    /// The PEM private key of --cert.
    #[arg(long, value_name = "PEM", requires = "cert")]
    key: Option<PathBuf>,
    /// With --cert: ask clients for a certificate signed by this PEM CA
    /// (mutual TLS: the one of an active `sys_user_certificate` record logs
    /// in as its user); clients without one may still use a password.
    #[arg(long, value_name = "PEM", requires = "cert")]
    client_ca: Option<PathBuf>,
    /// The password of the seeded integration user `admin`.
    #[arg(long, default_value = "admin")]
    admin_password: String,
    /// Answer 503 to the first N requests.
    #[arg(long, default_value_t = 0, value_name = "N")]
    fail_first: u64,
    /// With --fail-first: send `Retry-After: SECONDS` with each 503.
    #[arg(long, value_name = "SECONDS")]
    retry_after: Option<u64>,
    /// Accept connections and never answer.
    #[arg(long)]
    hang: bool,
    /// A fault file read at each request, so faults come and go while the
    /// instance runs: `503` answers 503 to every request (with
    /// `Retry-After: 1`); `hang` holds each request unanswered while the
    /// file says so, then carries it out and answers (to a client that
    /// may have given up: an instance that acted on a request whose answer
    /// was lost); anything else, or no file, is no fault.
    #[arg(long, value_name = "FILE")]
    faults: Option<PathBuf>,
    /// Refuse every write (POST, PATCH) to TABLE with 403, as an instance
    /// whose ACLs forbid it would. Repeatable.
    #[arg(long, value_name = "TABLE")]
    read_only: Vec<String>,
    /// Refuse every read (GET) of TABLE by a user without `admin` with 403,
    /// as an instance whose read ACL does not cover them would. Repeatable.
    #[arg(long, value_name = "TABLE")]
    deny_read: Vec<String>,
    /// Append one JSON line per request (method, path, query, user,
    /// status, and the number of the connection it came on; never a
    /// password).
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    let options = instancesim::server::Options {
        listen: arguments.listen,
        state: arguments.state,
        tls: arguments.cert.zip(arguments.key),
        client_ca: arguments.client_ca,
        admin_password: arguments.admin_password,
        fail_first: arguments.fail_first,
        retry_after: arguments.retry_after,
        hang: arguments.hang,
        faults: arguments.faults,
        read_only: arguments.read_only,
        deny_read: arguments.deny_read,
        log: arguments.log,
    };
    match instancesim::server::run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("midfleet-instancesim: {error}");
            ExitCode::from(2)
        }
    }
}
