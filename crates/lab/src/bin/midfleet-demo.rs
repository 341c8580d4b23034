//! `midfleet-demo`: what `midfleet demo` runs — a throwaway lab fleet
//! (the same kept lab as `midfleet lab up`, recorded the same way, so a
//! killed demo leaves nothing `midfleet lab down` or the next demo cannot
//! find), a rotation applied to it, then the lab taken down. The product cannot link the lab, so `midfleet demo`
//! execs this binary from beside itself with its own arguments (global
//! flags such as `--no-color` mean what they mean to `midfleet`), and each
//! step runs a midfleet command in this process, as a user would type it.

use std::ffi::OsString;
use std::process::ExitCode;

use midfleet::cli::{Command, Console, Exit, Failure};

use midfleet_lab::front;
use midfleet_lab::kept::{self, Kind, Place, UpError, UpOptions};

const HOSTS: usize = 5;
const PASSWORD: &str = "demo-Rotated-pw";

fn main() -> ExitCode {
    // `start` protects the process before anything reads a secret (the
    // demo's apply resolves one). Run by hand without `demo`, this binary
    // is `midfleet demo` all the same (`midfleet-demo --help` is the
    // demo's help, not midfleet's).
    let cli = match front::start("demo", None) {
        Ok(cli) => cli,
        Err(code) => return code,
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
    front::finish(&console, outcome)
}

fn run(console: &Console) -> Result<Exit, Failure> {
    let options = UpOptions {
        kind: Kind::Demo,
        hosts: HOSTS,
        instance: true,
        midsim: front::beside(
            "midfleet-midsim",
            "the demo's MIDs and instance are simulated by it",
        )?,
        instancesim: front::beside(
            "midfleet-instancesim",
            "the demo's MIDs and instance are simulated by it",
        )?,
        kinds: Vec::new(),
        link: None,
    };
    if !std::path::Path::new("/usr/sbin/sshd").exists() {
        return Err(Failure::failed(
            "the demo runs real OpenSSH servers, and /usr/sbin/sshd is missing",
        )
        .with_hint(
            "install the openssh-server package (as root: apt-get install openssh-server)",
        ));
    }
    let place = Place::for_user();
    // Ctrl-C (or a TERM, a hang-up) takes the demo's lab down; a SIGKILL
    // leaves its record, which the next demo or `midfleet lab down` reads.
    kept::take_down_when_interrupted(&place);
    step(console, &format!("Starting a throwaway fleet of {HOSTS} MID hosts: real sshd servers, simulated MIDs, a simulated instance"));
    let (lab, record) = match kept::up(&place, &options, &mut |cleaned| {
        println!(
            "  first removed a stale lab a killed {} left: {} stopped, {} removed",
            match cleaned.record.kind {
                Kind::Lab => "`midfleet lab up`",
                Kind::Demo => "demo",
            },
            kept::counted(cleaned.down.killed, "process", "processes"),
            cleaned.record.folder.display()
        );
    }) {
        Ok(done) => done,
        Err(UpError::AlreadyUp(record)) => {
            return Err(Failure::failed(format!(
                "a lab is up ({} in {}): the demo brings up its own, and one lab per user runs at a time",
                kept::counted(record.hosts.len(), "host", "hosts"),
                record.folder.display()
            ))
            .with_hint("rehearse on that lab, or take it down with `midfleet lab down`, then run the demo"))
        }
        Err(UpError::Failed(error)) => {
            return Err(Failure::failed(format!("the lab did not start: {}", error.0)))
        }
    };
    println!("  lab in {}", record.folder.display());
    // The fleet is up: what a test that kills the demo waits for.
    eprintln!("midfleet-demo: the fleet is up");
    let outcome = steps(console, &record);
    drop(lab);
    let down = kept::down(&place).map_err(|error| {
        Failure::failed(format!("the lab is not completely down: {}", error.0))
            .with_hint("run `midfleet lab down` to finish")
    })?;
    step(
        console,
        &format!(
            "The lab is torn down: {} processes (sshd servers, MIDs, the instance) stopped and its files removed.",
            down.map(|down| down.killed).unwrap_or(0)
        ),
    );
    outcome
}

fn steps(console: &Console, record: &kept::Record) -> Result<Exit, Failure> {
    // The demo's own password, for its own child invocations only.
    std::env::set_var(kept::PLAYBOOK_PASSWORD_VARIABLE, PASSWORD);
    step(
        console,
        "midfleet lab user — the new users exist on the instance, with the mid_server role",
    );
    let password = midfleet::secret::SecretValue::new(PASSWORD.to_string());
    for host in &record.hosts {
        let user = format!("svc_mid_{}", host.name.replace('-', ""));
        println!(
            "$ midfleet lab user {user} --password env:{}",
            kept::PLAYBOOK_PASSWORD_VARIABLE
        );
        kept::set_user(record, &user, &password)
            .map_err(|error| Failure::failed(error.to_string()))?;
    }
    let inventory = record.inventory.display().to_string();
    let known_hosts = record.known_hosts.display().to_string();
    let playbook = record.playbook.display().to_string();
    let common = ["--known-hosts", known_hosts.as_str()];

    step(console, "midfleet facts — what each host runs now");
    invoke(&["facts", "-i", &inventory, common[0], common[1]]);
    step(console, "midfleet apply — the plan (new user, new password, key pair reset), then a canary, then the rest; each host a transaction that rolls back by itself, each MID validated again on the instance");
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
