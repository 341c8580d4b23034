//! The command line: clap arguments → plain inputs → one `ops` workflow →
//! its result rendered → exit code.
//!
//! Owns: argument parsing (usage errors exit 3, not clap's 2), turning
//! errors into `error:`/`hint:` messages and exit codes, and all output:
//! results to stdout (data), progress, warnings and errors to stderr, all
//! through the one [`Console`] (which is also the workflows' operator).
//! Must not: hold logic the library should own (selecting hosts, building
//! the transport, the steps of a command: those are `ops`).

mod ansible_flags;
mod apply;
mod args;
mod check;
mod completions;
mod console;
mod demo;
mod detail;
mod edit;
mod exit;
mod facts;
mod hosts;
mod lab;
mod man;
mod operator;
mod plan;
mod progress;
mod rollback;
mod unlock;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};

pub use args::{CheckArgs, Cli, Command, EditArgs, GlobalArgs, HostsArgs, InventoryArgs};
pub use console::{Console, OutputFormat, ProgressMode};
pub use exit::{Exit, Failure};
pub use lab::{LabArgs, LabCommand, LabFault};

/// Runs midfleet with `arguments` (the first is the program name), the
/// process first kept from dumping core or being traced (before anything
/// reads a secret).
pub fn run(arguments: impl IntoIterator<Item = OsString>) -> ExitCode {
    if let Err(error) = crate::secret::protect_process() {
        Console::early_warning(&format!(
            "cannot keep secrets out of core dumps (setrlimit RLIMIT_CORE / prctl PR_SET_DUMPABLE): {error}"
        ));
    }
    ExitCode::from(run_code(arguments))
}

/// ansible.cfg and the `ANSIBLE_*` variables, found and read as Ansible
/// does, for a command that reads an inventory or reaches hosts: its
/// warnings shown, an error in it a usage failure; with `-v`, which file
/// was read (or where none was found) and the settings midfleet ignores.
fn ansible_cfg(console: &Console) -> Result<crate::ansible_cfg::AnsibleCfg, Failure> {
    let environment = crate::ansible_cfg::Environment::current();
    let (configuration, diagnostics) = crate::ansible_cfg::AnsibleCfg::load(&environment);
    let errors = diagnostics.error_count();
    for diagnostic in diagnostics.merged() {
        console.diagnostic(&diagnostic);
    }
    if console.verbose > 0 {
        match &configuration.file {
            Some(file) => console.note(&format!("ansible.cfg: read {}", file.display())),
            None => console.note(&format!(
                "ansible.cfg: none found (looked at {})",
                configuration
                    .searched
                    .iter()
                    .map(|path| path.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
        if let Some(inventory) = &configuration.inventory {
            console.note(&format!(
                "ansible.cfg: inventory {} (from {})",
                inventory
                    .value
                    .iter()
                    .map(|path| path.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                inventory.source
            ));
        }
        if !configuration.unused.is_empty() {
            console.note(&format!(
                "ansible.cfg: not used by midfleet: {}",
                configuration.unused.join(", ")
            ));
        }
    }
    if errors > 0 {
        return Err(Failure::usage(format!(
            "{errors} problem{} in the Ansible configuration; nothing was contacted",
            if errors == 1 { "" } else { "s" }
        )));
    }
    Ok(configuration)
}

/// [`run`], returning the exit code as a number.
pub fn run_code(arguments: impl IntoIterator<Item = OsString>) -> u8 {
    let arguments: Vec<OsString> = arguments.into_iter().collect();
    let cli = match Cli::parse_arguments(&arguments) {
        Ok(cli) => cli,
        Err(mut error) => {
            if error.kind() == ErrorKind::UnknownArgument {
                // An ansible-playbook option midfleet lacks: a true tip
                // instead of clap's "to pass it as a value, use `--`".
                let tip = match error.get(ContextKind::InvalidArg) {
                    Some(ContextValue::String(argument)) => ansible_flags::tip(argument),
                    _ => None,
                };
                if let Some(tip) = tip {
                    error.insert(
                        ContextKind::Suggested,
                        ContextValue::StyledStrs(vec![tip.into()]),
                    );
                }
            }
            let exit = match error.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Exit::Success,
                _ => Exit::Usage,
            };
            // clap writes help to stdout and errors to stderr.
            let _ = error.print();
            return exit as u8;
        }
    };
    let console = cli.global.console();
    let outcome = match &cli.command {
        Command::Check(arguments) => check::run(&console, arguments),
        Command::Hosts(arguments) => hosts::run(&console, arguments),
        Command::Facts(arguments) => facts::run(&console, arguments),
        Command::Plan(arguments) => plan::run(&console, arguments),
        Command::Apply(arguments) => apply::run(&console, arguments),
        Command::Edit(arguments) => edit::run(&console, arguments),
        Command::Rollback(arguments) => rollback::run(&console, arguments),
        Command::Unlock(arguments) => unlock::run(&console, arguments),
        Command::Demo => demo::run(arguments.get(1..).unwrap_or_default()),
        Command::Lab(_) => lab::run(arguments.get(1..).unwrap_or_default()),
        Command::Completions(arguments) => completions::run(&console, arguments),
        Command::Man(arguments) => man::run(&console, arguments),
    };
    match outcome {
        Ok(exit) => exit as u8,
        Err(failure) => {
            console.error(&failure);
            failure.exit as u8
        }
    }
}
