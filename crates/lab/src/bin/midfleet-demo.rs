//! `midfleet-demo`: what `midfleet demo` runs — a throwaway lab fleet,
//! planned and applied. The product cannot link the lab, so `midfleet demo`
//! execs this binary from beside itself with its own arguments (global
//! flags such as `--no-color` mean what they mean to `midfleet`), and each
//! step runs a midfleet command in this process, as a user would type it.

use std::ffi::OsString;
use std::process::ExitCode;

use midfleet::cli::{Cli, Command, Console, Exit, Failure};
use midfleet_lab::{Lab, LabSpec};

const HOSTS: usize = 5;
const PASSWORD: &str = "demo-Rotated-pw";

fn main() -> ExitCode {
    // As `midfleet` does, before anything reads a secret (the demo's
    // apply resolves one): no core dump, no same-user ptrace.
    if let Err(error) = midfleet::secret::protect_process() {
        eprintln!(
            "warning: cannot keep secrets out of core dumps (setrlimit RLIMIT_CORE / prctl PR_SET_DUMPABLE): {error}"
        );
    }
    // `midfleet demo` passes its arguments (`demo` and any global flag);
    // run by hand without `demo`, this binary is `midfleet demo` all the
    // same (`midfleet-demo --help` is the demo's help, not midfleet's).
    let mut arguments: Vec<OsString> = std::env::args_os().collect();
    if !arguments.iter().skip(1).any(|argument| argument == "demo") {
        arguments.insert(1.min(arguments.len()), "demo".into());
    }
    let cli = match Cli::parse_arguments(&arguments) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            // `--help` and `--version` are answers, not usage errors.
            return match error.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => Exit::Usage.into(),
            };
        }
    };
    // Each step is a midfleet command run in this process with its own
    // arguments: `--no-color` reaches them (and their progress bars) as
    // NO_COLOR, which every one of them honours.
    if cli.global.no_color {
        std::env::set_var("NO_COLOR", "1");
    }
    // `--progress` reaches them the same way.
    std::env::set_var(
        "MIDFLEET_PROGRESS",
        match cli.global.progress {
            midfleet::cli::ProgressMode::Never => "never",
            midfleet::cli::ProgressMode::Auto => "auto",
            midfleet::cli::ProgressMode::Always => "always",
        },
    );
    let console = cli.global.console();
    let outcome = match cli.command {
        Command::Demo => run(&console),
        _ => Err(Failure::usage("midfleet-demo runs only the demo")
            .with_hint("run `midfleet demo`, or the command with `midfleet`")),
    };
    match outcome {
        Ok(exit) => exit.into(),
        Err(failure) => {
            console.error(&failure);
            failure.exit.into()
        }
    }
}

fn run(console: &Console) -> Result<Exit, Failure> {
    let midsim = std::env::current_exe()
        .map_err(|error| Failure::failed(format!("cannot find midfleet-demo itself: {error}")))?
        .with_file_name("midfleet-midsim");
    if !midsim.exists() {
        return Err(Failure::failed(format!("{} is missing", midsim.display()))
            .with_hint("build it with `cargo build --release --workspace` (the demo's MIDs are simulated by it)"));
    }
    if !std::path::Path::new("/usr/sbin/sshd").exists() {
        return Err(Failure::failed(
            "the demo runs real OpenSSH servers, and /usr/sbin/sshd is missing",
        )
        .with_hint(
            "install the openssh-server package (as root: apt-get install openssh-server)",
        ));
    }
    step(console, &format!("Starting a throwaway fleet of {HOSTS} MID hosts: real sshd servers, simulated MID agents"));
    let lab = Lab::start(&LabSpec::new(HOSTS, &midsim))
        .map_err(|error| Failure::failed(format!("the lab did not start: {error}")))?;
    println!("  lab in {}", lab.directory.display());
    for host in &lab.hosts {
        let user = format!("svc_mid_{}", host.name.replace('-', ""));
        lab.add_instance_user(&user, PASSWORD)
            .map_err(|error| Failure::failed(error.to_string()))?;
    }
    let playbook = lab.directory.join("rotate-user.yml");
    std::fs::write(
        &playbook,
        "name: Rotate the MID Server instance user\nhosts: all\nset:\n  mid.instance.username: \"svc_mid_{{ mid_name }}\"\n  \
         mid.instance.password: { secret: \"env:MIDFLEET_DEMO_PASSWORD\" }\nrollout:\n  serial: [1, 100%]\nhealth:\n  timeout: 30\n",
    )
    .map_err(|error| Failure::failed(error.to_string()))?;
    // The demo's own password, for its own child invocations only.
    std::env::set_var("MIDFLEET_DEMO_PASSWORD", PASSWORD);
    let inventory = lab.inventory.display().to_string();
    let known_hosts = lab.known_hosts.display().to_string();
    let playbook = playbook.display().to_string();
    let common = ["--known-hosts", known_hosts.as_str()];

    step(console, "midfleet facts — what each host runs now");
    invoke(&["facts", "-i", &inventory, common[0], common[1]]);
    step(
        console,
        "midfleet plan — the user rotation (new user, new password, key pair reset)",
    );
    invoke(&["plan", "-i", &inventory, &playbook, common[0], common[1]]);
    step(console, "midfleet apply — a canary, then the rest; each host a transaction that rolls back by itself");
    let applied = invoke(&[
        "apply", "-i", &inventory, &playbook, common[0], common[1], "--yes",
    ]);
    step(
        console,
        "midfleet plan — again: empty, although every MID encrypted its new password",
    );
    let again = invoke(&[
        "plan",
        "-i",
        &inventory,
        &playbook,
        common[0],
        common[1],
        "--detailed-exitcode",
    ]);
    step(
        console,
        "midfleet facts — every MID logged in as its new user",
    );
    invoke(&["facts", "-i", &inventory, common[0], common[1]]);
    drop(lab);
    step(
        console,
        "The lab is torn down: sshd servers, MIDs and files are gone.",
    );
    Ok(if applied == 0 && again == 0 {
        Exit::Success
    } else {
        Exit::Failed
    })
}

fn step(_console: &Console, text: &str) {
    println!("\n==> {text}\n");
}

/// Runs one midfleet command in this process, as a user would type it.
fn invoke(arguments: &[&str]) -> u8 {
    let mut full: Vec<OsString> = vec!["midfleet".into()];
    full.extend(arguments.iter().map(OsString::from));
    println!("$ midfleet {}", arguments.join(" "));
    let code = midfleet::cli::run_code(full);
    println!("(exit {code})");
    code
}
