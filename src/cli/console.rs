//! Where the CLI's text goes: data to stdout, everything else to stderr,
//! with colour only on a terminal and never when NO_COLOR or --no-color
//! (then no escape sequence at all: progress is plain lines, unless
//! `--progress always` asks for bars).

use std::io::{IsTerminal, Write};

use clap::ValueEnum;

use super::exit::Failure;

/// How results are written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
}

/// How progress is shown on stderr (`--progress`, MIDFLEET_PROGRESS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// Plain lines, for logs and CI: one as each phase starts, one as each
    /// host finishes (`12:00:14 apply web1: applied (12.3 s)`); no escape
    /// sequence at all, so no colour either.
    Never,
    /// Live bars when stderr is a terminal and colour is allowed, plain
    /// lines otherwise.
    Auto,
    /// Live bars, even when stderr is not a terminal.
    Always,
}

/// The CLI's one way to write.
pub struct Console {
    pub output: OutputFormat,
    pub verbose: u8,
    pub progress: ProgressMode,
    /// Neither --no-color nor NO_COLOR: colour and live bars may be used
    /// (on a terminal).
    pub colour_allowed: bool,
    stdout_colour: bool,
    stderr_colour: bool,
    /// The input files named so far (`-v` names each once).
    pub(super) files_named: std::sync::Mutex<std::collections::HashSet<std::path::PathBuf>>,
}

/// ANSI styles used in output.
#[derive(Clone, Copy)]
pub enum Style {
    Add,
    Change,
    Remove,
    Error,
    Warning,
    Hint,
    Bold,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Add => "32",
            Style::Change => "33",
            Style::Remove => "31",
            Style::Error => "1;31",
            Style::Warning => "1;33",
            Style::Hint => "36",
            Style::Bold => "1",
        }
    }
}

impl Console {
    /// A console writing results as `output`, in colour unless `no_color`
    /// (or NO_COLOR, or not a terminal), saying more with `verbose`,
    /// showing progress as `progress` asks.
    pub fn new(
        output: OutputFormat,
        no_color: bool,
        verbose: u8,
        progress: ProgressMode,
    ) -> Console {
        // `--progress never` is output for a log: no escape sequence at all.
        let allowed = colour_allowed(no_color) && progress != ProgressMode::Never;
        Console {
            output,
            verbose,
            progress,
            colour_allowed: allowed,
            stdout_colour: allowed && std::io::stdout().is_terminal(),
            stderr_colour: allowed && std::io::stderr().is_terminal(),
            files_named: Default::default(),
        }
    }

    /// `text` in `style` for stdout.
    pub fn paint(&self, style: Style, text: &str) -> String {
        paint(self.stdout_colour, style, text)
    }

    /// Writes data to stdout. A closed pipe ends the write quietly.
    pub fn data(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }

    /// Text to stderr as it is (a rendering beside the data: the plan
    /// under `--output json`, `--timings`).
    pub fn text(&self, text: &str) {
        eprint!("{text}");
    }

    /// A line to stderr: what was done or happens next.
    pub fn note(&self, message: &str) {
        eprintln!("{message}");
    }

    /// Asks `question` on stderr and reads one line of answer from stdin;
    /// `None` when either is not a terminal (nobody can answer).
    pub fn ask(&self, question: &str) -> Option<std::io::Result<String>> {
        if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
            return None;
        }
        eprint!("{question}");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        Some(std::io::stdin().read_line(&mut answer).map(|_| answer))
    }

    /// A warning on stderr before the arguments are read (so without
    /// colour).
    pub fn early_warning(message: &str) {
        eprintln!("warning: {message}");
    }

    /// A warning on stderr.
    pub fn warning(&self, message: &str) {
        eprintln!(
            "{} {message}",
            paint(self.stderr_colour, Style::Warning, "warning:")
        );
    }

    /// A problem found in the operator's input, with its hint, on stderr.
    pub fn diagnostic(&self, diagnostic: &crate::diagnostic::Diagnostic) {
        let (style, label) = if diagnostic.is_error() {
            (Style::Error, "error:")
        } else {
            (Style::Warning, "warning:")
        };
        eprintln!("{} {diagnostic}", paint(self.stderr_colour, style, label));
        if let Some(hint) = &diagnostic.hint {
            eprintln!("{} {hint}", paint(self.stderr_colour, Style::Hint, "hint:"));
        }
    }

    /// An error and its hint on stderr.
    pub fn error(&self, failure: &Failure) {
        eprintln!(
            "{} {}",
            paint(self.stderr_colour, Style::Error, "error:"),
            failure.message
        );
        if let Some(hint) = &failure.hint {
            eprintln!("{} {hint}", paint(self.stderr_colour, Style::Hint, "hint:"));
        }
    }
}

/// Colour is allowed: not `no_color` (--no-color), and NO_COLOR unset or
/// empty (no-color.org).
pub fn colour_allowed(no_color: bool) -> bool {
    !no_color && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

fn paint(enabled: bool, style: Style, text: &str) -> String {
    if enabled {
        format!("\x1b[{}m{text}\x1b[0m", style.code())
    } else {
        text.to_string()
    }
}
