//! Running the binary and looking at what it left behind.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What one run of midfleet did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout and stderr together, for "appears nowhere" checks.
    pub fn all_output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs midfleet with `arguments` and extra environment variables, with
/// colour off and no terminal.
pub fn midfleet<I, S>(arguments: I, environment: &[(&str, &str)]) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = midfleet_command(arguments, environment)
        .output()
        .expect("run midfleet");
    Run {
        code: output.status.code().expect("midfleet exited, not killed"),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

/// The command [`midfleet`] runs, for a test that starts it itself.
pub fn midfleet_command<I, S>(arguments: I, environment: &[(&str, &str)]) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(env!("CARGO_BIN_EXE_midfleet"));
    command
        .args(arguments)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        // The operator's own ssh config, agent and keys stay out of tests.
        .env("HOME", empty_home())
        .env("USER", "tester")
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("MID_PASSWORD");
    for (name, value) in environment {
        command.env(name, value);
    }
    command
}

/// An empty directory used as `$HOME` by default.
pub fn empty_home() -> &'static Path {
    static HOME: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    HOME.get_or_init(|| tempfile::tempdir().expect("temporary home"))
        .path()
}

/// A fixture from `tests/fixtures/`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// A temporary directory holding `name` with `bytes`.
pub struct Scratch {
    pub directory: tempfile::TempDir,
    pub path: PathBuf,
}

impl Scratch {
    pub fn new(name: &str, bytes: &[u8]) -> Scratch {
        let directory = tempfile::tempdir().expect("temporary directory");
        let path = directory.path().join(name);
        std::fs::write(&path, bytes).expect("write scratch file");
        Scratch { directory, path }
    }

    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).expect("read scratch file")
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.bytes()).expect("UTF-8")
    }

    /// Every entry of the directory, to prove no temp file was left.
    pub fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.directory.path())
            .expect("list scratch directory")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    /// Path of the scratch directory as text, for snapshot filters.
    pub fn directory_text(&self) -> String {
        self.directory.path().display().to_string()
    }
}

/// Snapshot settings that replace the scratch directory with `[DIR]`.
pub fn settings_for(scratch: &Scratch) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(&scratch.directory_text()), "[DIR]");
    settings.set_prepend_module_to_snapshot(false);
    settings
}

pub fn regex_escape(text: &str) -> String {
    let mut escaped = String::new();
    for character in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(character) {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}
