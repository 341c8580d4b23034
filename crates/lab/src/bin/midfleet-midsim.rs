//! `midfleet-midsim`: a simulated ServiceNow MID Server for midfleet's test
//! lab. The lab's `agent/bin/mid.sh` execs it as
//! `midfleet-midsim "$1" --agent AGENT_DIR`; `run` is the MID itself, the
//! other commands are the Tanuki wrapper around it. How it behaves, and the
//! `<mid_home>/.midsim` knobs that inject failures, are described in
//! [`midsim`].

mod midsim;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

use midsim::{agent, wrapper};

/// A simulated ServiceNow MID Server agent for midfleet's test lab.
#[derive(Parser)]
#[command(name = "midfleet-midsim", version)]
struct Arguments {
    /// What to do, as `agent/bin/mid.sh` takes it; `run` is the MID itself
    /// (in the foreground).
    #[arg(value_enum)]
    command: Command,
    /// The agent folder, `<mid_home>/agent`.
    #[arg(long, value_name = "AGENT_DIR")]
    agent: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum Command {
    Start,
    Stop,
    Restart,
    Status,
    Run,
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    // The detached MID runs in the agent folder: make the path absolute first.
    let agent_dir = match std::path::absolute(&arguments.agent) {
        Ok(path) => path,
        Err(error) => {
            eprintln!("midfleet-midsim: {}: {error}", arguments.agent.display());
            return ExitCode::from(2);
        }
    };
    let code = match arguments.command {
        Command::Start => wrapper::start(&agent_dir),
        Command::Stop => wrapper::stop(&agent_dir),
        Command::Restart => wrapper::restart(&agent_dir),
        Command::Status => wrapper::status(&agent_dir),
        Command::Run => agent::run(&agent_dir),
    };
    ExitCode::from(code)
}
