//! `midfleet-relay`: the lab's network link — a userspace TCP relay in
//! front of each lab host's sshd with latency, jitter, loss and cuts
//! ([`midfleet_lab::link`]). The lab starts one per lab; it is not meant
//! to be run by hand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use midfleet_lab::link::{serve, Route};

/// The lab's link: a TCP relay with latency, jitter, loss and cuts.
#[derive(Parser)]
#[command(name = "midfleet-relay", version)]
struct Arguments {
    /// The lab's links folder: one settings file per host, and the
    /// control socket.
    #[arg(long, value_name = "DIR")]
    links: PathBuf,
    /// Seeds the jitter and loss draws (which chunks they fall on depends
    /// on timing).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// HOST=LISTEN=TARGET: clients connect to LISTEN, the relay to TARGET.
    #[arg(long = "route", value_name = "HOST=LISTEN=TARGET", value_parser = Route::parse, required = true)]
    routes: Vec<Route>,
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    match serve(&arguments.links, arguments.routes, arguments.seed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("midfleet-relay: {error}");
            ExitCode::from(1)
        }
    }
}
