//! `midfleet completions SHELL`: the shell's completion script, generated
//! by clap_complete from the command line as clap sees it.

use clap::CommandFactory;

use super::args::{Cli, CompletionsArgs};
use super::console::Console;
use super::exit::{Exit, Failure};

pub fn run(console: &Console, arguments: &CompletionsArgs) -> Result<Exit, Failure> {
    let mut script = Vec::new();
    clap_complete::generate(
        arguments.shell,
        &mut Cli::command(),
        "midfleet",
        &mut script,
    );
    let script = String::from_utf8(script)
        .map_err(|error| Failure::failed(format!("completion script is not UTF-8: {error}")))?;
    console.data(&script);
    Ok(Exit::Success)
}
