//! `midfleet completions SHELL` and `midfleet man`: the scripts load in
//! their shell, the pages render in man without warnings, and both name
//! every command `midfleet --help` lists.

use std::process::Command;

use crate::support::midfleet;

/// The commands `midfleet --help` lists (without clap's `help`).
fn commands() -> Vec<String> {
    let commands = subcommands(&[]);
    for expected in ["check", "plan", "apply", "rollback", "completions", "man"] {
        assert!(commands.iter().any(|name| name == expected), "{commands:?}");
    }
    commands
}

/// The commands `midfleet PARENT… --help` lists (none for a leaf).
fn subcommands(parent: &[&str]) -> Vec<String> {
    let mut arguments: Vec<&str> = parent.to_vec();
    arguments.push("--help");
    let run = midfleet(&arguments, &[]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let Some(listing) = run.stdout.split("Commands:\n").nth(1) else {
        return Vec::new();
    };
    listing
        .split("\n\n")
        .next()
        .unwrap()
        .lines()
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completion_loads_in_bash_and_completes_commands() {
    let run = midfleet(["completions", "bash"], &[]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let directory = tempfile::tempdir().unwrap();
    let script = directory.path().join("midfleet.bash");
    std::fs::write(&script, &run.stdout).unwrap();
    // Sourced in a real bash: `complete -p` shows it registered; then its
    // function, called as bash calls it on Tab after `midfleet pl`,
    // offers `plan`.
    let output = Command::new("bash")
        .args(["--norc", "--noprofile", "-c"])
        .arg(
            r#"set -e
source "$1"
registration=$(complete -p midfleet)
echo "$registration"
function=$(sed -n 's/.*-F \([^ ]*\).*/\1/p' <<<"$registration")
COMP_WORDS=(midfleet pl); COMP_CWORD=1; COMP_LINE="midfleet pl"; COMP_POINT=${#COMP_LINE}
"$function" midfleet pl midfleet
echo "offered: ${COMPREPLY[*]}"
COMP_WORDS=(midfleet completions ''); COMP_CWORD=2; COMP_LINE="midfleet completions "; COMP_POINT=${#COMP_LINE}
COMPREPLY=()
"$function" midfleet '' completions
echo "shells: ${COMPREPLY[*]}""#,
        )
        .arg("bash")
        .arg(&script)
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut lines = stdout.lines();
    let registration = lines.next().unwrap();
    assert!(
        registration.starts_with("complete ")
            && registration.contains(" -F ")
            && registration.ends_with(" midfleet"),
        "{stdout}"
    );
    assert_eq!(lines.next(), Some("offered: plan"), "{stdout}");
    let shells = lines.next().unwrap();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        assert!(
            shells.split_whitespace().any(|word| word == shell),
            "{stdout}"
        );
    }
}

#[test]
fn other_shells_scripts_name_every_command() {
    let commands = commands();
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let run = midfleet(["completions", shell], &[]);
        assert_eq!(run.code, 0, "{shell}: {}", run.all_output());
        assert!(run.stderr.is_empty(), "{shell}: {}", run.stderr);
        assert!(run.stdout.contains("midfleet"), "{shell}");
        for command in &commands {
            assert!(
                run.stdout.contains(command.as_str()),
                "{shell}'s script lacks {command}"
            );
        }
    }
    let zsh = midfleet(["completions", "zsh"], &[]).stdout;
    assert!(zsh.starts_with("#compdef midfleet"), "{zsh}");
}

#[test]
fn unknown_shell_is_a_usage_error_naming_the_shells() {
    let run = midfleet(["completions", "tcsh"], &[]);
    assert_eq!(run.code, 3, "{}", run.all_output());
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.contains("tcsh") && run.stderr.contains("powershell"),
        "{}",
        run.stderr
    );
}

#[test]
fn man_prints_a_roff_page_naming_every_command() {
    let run = midfleet(["man"], &[]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let page = &run.stdout;
    assert!(page.contains("\n.TH midfleet 1 "), "{page}");
    assert!(page.contains("\n.SH NAME\nmidfleet \\- "), "{page}");
    assert!(page.contains("\n.SH SUBCOMMANDS\n"), "{page}");
    for command in commands() {
        assert!(
            page.contains(&format!("midfleet\\-{command}(1)")),
            "the page does not point at midfleet-{command}(1)"
        );
    }
}

#[test]
fn man_dir_writes_a_page_per_command_that_man_renders_without_warnings() {
    let directory = tempfile::tempdir().unwrap();
    let run = midfleet(["man", "--dir"], &[]);
    assert_eq!(run.code, 3, "--dir takes a folder: {}", run.all_output());
    let run = midfleet(
        [
            "man".as_ref(),
            "--dir".as_ref(),
            directory.path().as_os_str(),
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    // A page per command, then one per subcommand (`midfleet-lab-up.1`).
    let mut expected = vec![directory.path().join("midfleet.1")];
    for command in commands() {
        expected.push(directory.path().join(format!("midfleet-{command}.1")));
        for subcommand in subcommands(&[&command]) {
            expected.push(
                directory
                    .path()
                    .join(format!("midfleet-{command}-{subcommand}.1")),
            );
        }
    }
    assert!(
        expected.contains(&directory.path().join("midfleet-lab-up.1")),
        "{expected:?}"
    );
    let printed: Vec<std::path::PathBuf> = run.stdout.lines().map(Into::into).collect();
    assert_eq!(printed, expected, "the paths written, in order");
    let mut on_disk: Vec<_> = std::fs::read_dir(directory.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    on_disk.sort();
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(on_disk, sorted, "nothing else is written");

    // man-db is installed by scripts/test and .ci/run: never skipped.
    let man = Command::new("man").arg("--version").output();
    assert!(
        man.is_ok_and(|output| output.status.success()),
        "`man` (man-db) is missing: apt-get install man-db groff-base"
    );
    for page in &expected {
        let output = Command::new("man")
            .args(["-l", "--warnings"])
            .arg(page)
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .env_remove("MANOPT")
            .output()
            .expect("man runs");
        let rendered = String::from_utf8_lossy(&output.stdout);
        let warnings = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{}: {warnings}", page.display());
        assert!(warnings.is_empty(), "{}: {warnings}", page.display());
        let name = page.file_stem().unwrap().to_string_lossy().to_string();
        assert!(rendered.contains("NAME"), "{}: {rendered}", page.display());
        assert!(rendered.contains(&name), "{}: {rendered}", page.display());
    }
    let plan = std::fs::read_to_string(directory.path().join("midfleet-plan.1")).unwrap();
    assert!(
        plan.contains("\n.TH midfleet-plan 1  \"midfleet "),
        "{plan}"
    );
}

#[test]
fn man_dir_that_is_not_a_folder_is_refused_with_a_hint() {
    let directory = tempfile::tempdir().unwrap();
    let missing = directory.path().join("man1");
    let run = midfleet(["man".as_ref(), "--dir".as_ref(), missing.as_os_str()], &[]);
    assert_eq!(run.code, 3, "{}", run.all_output());
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(run.stderr.contains("man1: not a folder"), "{}", run.stderr);
    assert!(run.stderr.contains("mkdir -p"), "{}", run.stderr);
    assert!(!missing.exists());
}
