//! What midfleet writes on a terminal, through a pty as `script` gives one:
//! with `--no-color` or NO_COLOR no command writes an escape sequence
//! (results, progress, clap's help and usage errors); nor with `--progress
//! never` (plain lines for a log: no bar, no colour); without them, colour
//! and bars do appear
//! (so these tests can fail). And `--progress` off a terminal: plain lines
//! with `never`, bars with `always`.

use std::path::{Path, PathBuf};

use midfleet_lab::{Lab, LabSpec};

use crate::lab::{lab, midsim};
use crate::support::{fixture, midfleet, regex_escape};

const PASSWORD: &str = "Terminal-pw_1";

/// What a command wrote to its terminal (stdout and stderr both).
struct Terminal {
    code: Option<i32>,
    text: String,
}

/// `arguments` quoted for `sh -c`.
fn shell_words(arguments: &[String]) -> String {
    arguments
        .iter()
        .map(|argument| format!("'{}'", argument.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs midfleet with `arguments` on a pty (stdin, stdout and stderr), in a
/// terminal that does colour (TERM=xterm-256color), without NO_COLOR or
/// MIDFLEET_PROGRESS unless `environment` sets them.
fn on_a_terminal(arguments: &[String], environment: &[(&str, &str)]) -> Terminal {
    let mut words = vec![env!("CARGO_BIN_EXE_midfleet").to_string()];
    words.extend(arguments.iter().cloned());
    // A demo brings up a lab, and one lab per user runs at a time: each
    // run has its own place for it, or two tests' demos refuse each other.
    let lab_place = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new("script");
    command
        .args(["-qefc", &shell_words(&words), "/dev/null"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("HOME", crate::support::empty_home())
        .env("USER", "tester")
        .env("TERM", "xterm-256color")
        .env("MIDFLEET_TEST_PASSWORD", PASSWORD)
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("MIDFLEET_PROGRESS")
        .env_remove("SSH_AUTH_SOCK")
        .env("MIDFLEET_LAB_STATE", lab_place.path())
        .stdin(std::process::Stdio::null());
    for (name, value) in environment {
        command.env(name, value);
    }
    let output = command.output().expect("script(1) from util-linux");
    Terminal {
        code: output.status.code(),
        text: String::from_utf8_lossy(&output.stdout).into_owned(),
    }
}

/// Runs midfleet with `arguments` on a pty, typing `answer` once it has
/// started; what it wrote.
fn on_a_terminal_answering(arguments: &[String], answer: &str) -> String {
    use std::io::Write;
    let mut words = vec![env!("CARGO_BIN_EXE_midfleet").to_string()];
    words.extend(arguments.iter().cloned());
    let mut child = std::process::Command::new("script")
        .args(["-qefc", &shell_words(&words), "/dev/null"])
        .env("HOME", crate::support::empty_home())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(answer.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The escape sequences in `text` that are not colour (SGR, `ESC [ … m`):
/// cursor moves, line clears.
fn other_escapes(text: &str) -> Vec<String> {
    text.split('\x1b')
        .skip(1)
        .filter_map(|rest| {
            let sequence: String = rest.chars().take(8).collect();
            let colour = rest.strip_prefix('[').is_some_and(|rest| {
                rest.chars()
                    .find(|c| !c.is_ascii_digit() && *c != ';')
                    .is_some_and(|end| end == 'm')
            });
            (!colour).then_some(sequence)
        })
        .collect()
}

/// A lab of two MID hosts whose new users the instance accepts, a rotation
/// playbook, and a config.xml to `edit`.
struct Fleet {
    lab: Lab,
    playbook: PathBuf,
    config: PathBuf,
}

fn fleet() -> Fleet {
    let lab = lab(LabSpec::new(2, &midsim()));
    for host in &lab.hosts {
        lab.add_instance_user(&format!("svc_{}", host.name.replace('-', "")), PASSWORD)
            .unwrap();
    }
    let playbook = lab.directory.join("rotate.yml");
    std::fs::write(
        &playbook,
        "name: rotate\nhosts: lab\nset:\n  mid.instance.username: \"svc_{{ mid_name }}\"\n  \
         mid.instance.password: { secret: \"env:MIDFLEET_TEST_PASSWORD\" }\nhealth:\n  timeout: 20\n",
    )
    .unwrap();
    let config = lab.directory.join("config.xml");
    std::fs::write(&config, fixture("shipped.xml")).unwrap();
    Fleet {
        lab,
        playbook,
        config,
    }
}

fn text(path: &Path) -> String {
    path.display().to_string()
}

/// Every command, as a user types it (hosts where one is needed): apply
/// changes the fleet and rollback puts it back, so the list can run again.
fn every_command(fleet: &Fleet, demo: bool) -> Vec<(&'static str, Vec<String>)> {
    let lab = &fleet.lab;
    let inventory = text(&lab.inventory);
    let known_hosts = text(&lab.known_hosts);
    let playbook = text(&fleet.playbook);
    let audit = text(&lab.directory.join("audit.jsonl"));
    let reach = |command: &str, extra: &[&str]| -> Vec<String> {
        let mut arguments: Vec<String> = vec![command.into(), "-i".into(), inventory.clone()];
        arguments.extend(extra.iter().map(|argument| argument.to_string()));
        if command != "check" && command != "hosts" {
            arguments.extend(["--known-hosts".to_string(), known_hosts.clone()]);
        }
        arguments
    };
    let words = |list: &[&str]| list.iter().map(|word| word.to_string()).collect::<Vec<_>>();
    let mut commands = vec![
        ("check", reach("check", &[&playbook])),
        ("hosts", reach("hosts", &[])),
        ("facts", reach("facts", &[])),
        ("plan", reach("plan", &[&playbook])),
        (
            "apply",
            reach("apply", &[&playbook, "--yes", "--audit-log", &audit]),
        ),
        (
            "rollback",
            reach(
                "rollback",
                &["--yes", "--health-timeout", "20", "--audit-log", &audit],
            ),
        ),
        ("unlock", reach("unlock", &["--audit-log", &audit])),
        (
            "edit",
            words(&[
                "edit",
                &text(&fleet.config),
                "--set",
                "mid.instance.username=svc_terminal",
                "--diff",
            ]),
        ),
        ("completions", words(&["completions", "bash"])),
        ("man", words(&["man"])),
        ("--help", words(&["--help"])),
        ("plan --help", words(&["plan", "--help"])),
        ("usage error", words(&["plan", "--no-such-option"])),
    ];
    if demo {
        commands.push(("demo", words(&["demo"])));
    }
    commands
}

/// Runs every command on a terminal with `flags` and `environment`, each
/// ending as it should; what each wrote.
fn run_every_command(
    fleet: &Fleet,
    flags: &[&str],
    environment: &[(&str, &str)],
    demo: bool,
) -> Vec<(&'static str, String)> {
    let mut written = Vec::new();
    for (name, arguments) in every_command(fleet, demo) {
        let mut all: Vec<String> = flags.iter().map(|flag| flag.to_string()).collect();
        all.extend(arguments);
        let run = on_a_terminal(&all, environment);
        let expected = if name == "usage error" { 3 } else { 0 };
        assert_eq!(
            run.code,
            Some(expected),
            "{name} with {flags:?} {environment:?}:\n{}",
            run.text
        );
        written.push((name, run.text));
    }
    written
}

#[test]
fn no_command_writes_an_escape_sequence_with_no_color_or_no_color_set() {
    let fleet = fleet();
    for (flags, environment) in [
        (&["--no-color"][..], &[][..]),
        (&[][..], &[("NO_COLOR", "1")][..]),
    ] {
        let demo = !flags.is_empty();
        for (name, text) in run_every_command(&fleet, flags, environment, demo) {
            assert!(
                !text.contains('\x1b'),
                "{name} with {flags:?} {environment:?} wrote an escape sequence:\n{text:?}"
            );
        }
    }
    // The config.xml `edit` changed, checked: every run did its work.
    let edited = std::fs::read_to_string(&fleet.config).unwrap();
    assert!(edited.contains("svc_terminal"), "{edited}");
}

#[test]
fn progress_never_writes_no_escape_and_without_flags_bars_and_colour_show() {
    let fleet = fleet();
    for (name, text) in run_every_command(&fleet, &["--progress", "never"], &[], true) {
        assert!(
            !text.contains('\x1b'),
            "{name} with --progress never wrote an escape sequence:\n{text:?}"
        );
        if name == "apply" {
            assert!(
                text.contains(" apply: 2 hosts") && text.contains(": applied ("),
                "plain progress lines:\n{text}"
            );
        }
    }
    // The control: on a terminal without either flag, colour shows in
    // clap's help and usage errors and in the plan, and the plan's progress
    // is drawn as live bars (cursor moves and line clears).
    let written = run_every_command(&fleet, &[], &[], false);
    let of = |wanted: &str| {
        &written
            .iter()
            .find(|(name, _)| *name == wanted)
            .expect("run")
            .1
    };
    for name in ["--help", "usage error", "plan", "apply"] {
        assert!(
            of(name).contains("\x1b["),
            "{name} without flags: no colour on a terminal:\n{:?}",
            of(name)
        );
    }
    for name in ["facts", "plan", "apply"] {
        assert!(
            !other_escapes(of(name)).is_empty(),
            "{name} without flags: no bars on a terminal:\n{:?}",
            of(name)
        );
    }
}

/// Off a terminal (stderr a pipe, as in CI): `never` and `auto` write
/// plain lines, a line per phase and per finished host with its time;
/// `always` draws bars all the same.
#[test]
fn progress_off_a_terminal_is_plain_lines_unless_always() {
    let fleet = fleet();
    let lab = &fleet.lab;
    let arguments = |command: &str, progress: &str| -> Vec<String> {
        let mut arguments: Vec<String> = vec![
            command.into(),
            "-i".into(),
            text(&lab.inventory),
            "--limit".into(),
            lab.hosts[0].name.clone(),
            "--known-hosts".into(),
            text(&lab.known_hosts),
            "--progress".into(),
            progress.into(),
        ];
        if command != "rollback" {
            arguments.push(text(&fleet.playbook));
        }
        if command != "plan" {
            arguments.push("--yes".into());
        }
        arguments
    };
    let password = [("MIDFLEET_TEST_PASSWORD", PASSWORD)];
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(&text(&lab.directory)), "[LAB]");
    settings.add_filter(r"(?m)^\d\d:\d\d:\d\d ", "[TIME] ");
    settings.add_filter(r"\(\d+\.\d s\)", "([SECONDS] s)");
    settings.set_prepend_module_to_snapshot(false);
    let plan = midfleet(arguments("plan", "never"), &password);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let apply = midfleet(arguments("apply", "never"), &password);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    // Unasked off a terminal, and asked on one: a rollback says so.
    let mut unasked = arguments("rollback", "never");
    unasked.retain(|argument| argument != "--yes");
    let refused = midfleet(&unasked, &password);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    let refusal: Vec<&str> = refused
        .stderr
        .lines()
        .filter(|line| line.starts_with("error:") || line.starts_with("hint:"))
        .collect();
    insta::assert_snapshot!("rollback_unasked", refusal.join("\n"));
    let asked = on_a_terminal_answering(&unasked, "no\n");
    assert!(
        asked.contains("Roll back 1 host? Only 'yes' is accepted: ")
            && asked.contains("Rollback cancelled; nothing was changed."),
        "{asked}"
    );
    let rollback = midfleet(arguments("rollback", "never"), &password);
    assert_eq!(rollback.code, 0, "{}", rollback.stderr);
    for run in [&plan, &apply, &rollback] {
        assert!(!run.stderr.contains('\x1b'), "{}", run.stderr);
    }
    settings.bind(|| {
        insta::assert_snapshot!(
            "progress_never_lines",
            format!(
                "plan:\n{}\napply:\n{}\nrollback:\n{}",
                plan.stderr, apply.stderr, rollback.stderr
            )
        )
    });
    // MIDFLEET_PROGRESS is --progress's default; `always` draws bars on a
    // pipe (the overall bar's `N/M hosts`).
    let mut always = arguments("plan", "auto");
    always.retain(|argument| argument != "--progress" && argument != "auto");
    let drawn = midfleet(
        always,
        &[
            ("MIDFLEET_TEST_PASSWORD", PASSWORD),
            ("MIDFLEET_PROGRESS", "always"),
        ],
    );
    assert_eq!(drawn.code, 0, "{}", drawn.stderr);
    assert!(
        drawn.stderr.contains('\x1b') && drawn.stderr.contains("/1 hosts"),
        "{:?}",
        drawn.stderr
    );
    // The same with `auto` off a terminal: plain lines.
    let plain = midfleet(arguments("plan", "auto"), &password);
    assert!(
        !plain.stderr.contains('\x1b') && plain.stderr.contains(" plan: started"),
        "{:?}",
        plain.stderr
    );
}
