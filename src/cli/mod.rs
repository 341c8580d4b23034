//! The command line: clap arguments → library calls → text and exit code.
//!
//! Owns: argument parsing (usage errors exit 3, not clap's 2), turning
//! library errors into `error:`/`hint:` messages, and writing results to
//! stdout (data) and stderr (warnings, errors). Must not: hold logic the
//! library should own.

mod args;
mod check;
mod console;
mod edit;
mod exit;
mod facts;
mod hosts;
mod progress;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

pub use args::{
    CheckArgs, Cli, Command, EditArgs, GlobalArgs, HostsArgs, InventoryArgs, OutputFormat,
};
pub use console::Console;
pub use exit::{Exit, Failure};

/// Runs midfleet with `arguments` (the first is the program name).
pub fn run(arguments: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(arguments) {
        Ok(cli) => cli,
        Err(error) => {
            let exit = match error.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Exit::Success,
                _ => Exit::Usage,
            };
            // clap writes help to stdout and errors to stderr.
            let _ = error.print();
            return exit.into();
        }
    };
    let console = Console::new(&cli.global);
    let outcome = match &cli.command {
        Command::Check(arguments) => check::run(&console, arguments),
        Command::Hosts(arguments) => hosts::run(&console, arguments),
        Command::Facts(arguments) => facts::run(&console, arguments),
        Command::Edit(arguments) => edit::run(&console, arguments),
    };
    match outcome {
        Ok(exit) => exit.into(),
        Err(failure) => {
            console.error(&failure);
            failure.exit.into()
        }
    }
}
