//! What `midfleet-demo` and `midfleet-lab` share as front ends of
//! `midfleet demo` and `midfleet lab …`: their start (process protection,
//! midfleet's own command line), the lab's binaries found beside them, and
//! their end (the lab settled, the outcome as an exit code).
//!
//! Must not: hold a command's work (each binary's `run` does).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use midfleet::cli::{Cli, Console, Exit, Failure};

/// Starts a front end of `midfleet SUBCOMMAND`: no core dump and no
/// same-user ptrace (as `midfleet` does before anything reads a secret),
/// then this process's arguments parsed by midfleet's own command line —
/// with `subcommand` put in when run by hand without it, and the program
/// named `program` in help and usage when given. `Err` is the exit code
/// of a parse that answered (`--help`, `--version`: 0) or failed (usage).
pub fn start(subcommand: &str, program: Option<&str>) -> Result<Cli, ExitCode> {
    if let Err(error) = midfleet::secret::protect_process() {
        eprintln!(
            "warning: cannot keep secrets out of core dumps (setrlimit RLIMIT_CORE / prctl PR_SET_DUMPABLE): {error}"
        );
    }
    let mut arguments: Vec<OsString> = std::env::args_os().collect();
    if !arguments
        .iter()
        .skip(1)
        .any(|argument| argument == subcommand)
    {
        arguments.insert(1.min(arguments.len()), subcommand.into());
    }
    if let Some(program) = program {
        arguments[0] = program.into();
    }
    Cli::parse_arguments(&arguments).map_err(|error| {
        let _ = error.print();
        // `--help` and `--version` are answers, not usage errors.
        match error.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                ExitCode::SUCCESS
            }
            _ => Exit::Usage.into(),
        }
    })
}

/// The lab's binary `name` (the simulated MID, the instance), beside this
/// one; `built` says, in the hint, why the build makes it.
pub fn beside(name: &str, built: &str) -> Result<PathBuf, Failure> {
    let this = std::env::current_exe()
        .map_err(|error| Failure::failed(format!("cannot find this program itself: {error}")))?;
    let path = this.with_file_name(name);
    if !path.is_file() {
        return Err(
            Failure::failed(format!("{} is missing", path.display())).with_hint(format!(
                "build it with `cargo build --release --workspace` ({built})"
            )),
        );
    }
    Ok(path)
}

/// Ends a front end: the lab's own children reaped ([`crate::kept::settle`]),
/// a failure written, the outcome as the exit code.
pub fn finish(console: &Console, outcome: Result<Exit, Failure>) -> ExitCode {
    crate::kept::settle();
    match outcome {
        Ok(exit) => exit.into(),
        Err(failure) => {
            console.error(&failure);
            failure.exit.into()
        }
    }
}
