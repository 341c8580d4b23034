//! `midfleet demo`: a launcher. The demo stands on the lab (real sshd
//! hosts, simulated MIDs), which is a test double and stays out of the
//! product: its body is `midfleet-demo`, a binary of the `midfleet-lab`
//! crate built with the workspace. This execs it from beside the running
//! `midfleet`, with the same arguments; its output and exit code are the
//! demo's.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

use super::exit::{Exit, Failure};

/// The demo's binary, looked for beside `midfleet`.
const DEMO: &str = "midfleet-demo";

/// Replaces this process with `midfleet-demo arguments…` (`arguments`
/// without the program name); returns only when that cannot be done.
pub fn run(arguments: &[OsString]) -> Result<Exit, Failure> {
    exec_beside(DEMO, "the demo", arguments)
}

/// Replaces this process with `binary arguments…`, `binary` (what = "the
/// demo", "the lab") being a binary of the midfleet-lab crate beside
/// midfleet.
pub fn exec_beside(binary: &str, what: &str, arguments: &[OsString]) -> Result<Exit, Failure> {
    let demo = std::env::current_exe()
        .map_err(|error| Failure::failed(format!("cannot find midfleet itself: {error}")))?
        .with_file_name(binary);
    if !demo.is_file() {
        return Err(Failure::failed(format!(
            "{} is missing: {what} is a binary of the midfleet-lab crate, beside midfleet",
            demo.display()
        ))
        .with_hint("build it with `cargo build --release --workspace` (scripts/demo does)"));
    }
    let error = std::process::Command::new(&demo).args(arguments).exec();
    Err(Failure::failed(format!(
        "cannot run {}: {error}",
        demo.display()
    )))
}
