//! Progress on stderr (`--progress`): live bars (an overall bar and a line
//! per host in flight, no more lines than the terminal holds), or plain
//! timestamped lines: one as the phase starts and one as each host
//! finishes (with `-v`, one per step too). Bars are drawn when asked
//! (`always`), or on a terminal when colour is allowed (`auto`): with
//! --no-color or NO_COLOR nothing writes an escape sequence.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use super::console::{Console, ProgressMode};
use crate::report::Reporter;

/// The CLI's reporter.
pub enum Progress<'a> {
    Bars(Bars),
    Lines(Lines<'a>),
}

pub struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    in_flight: Mutex<HashMap<String, ProgressBar>>,
    max_lines: usize,
    bold: bool,
}

/// Plain lines, for logs and CI.
pub struct Lines<'a> {
    task: String,
    console: &'a Console,
    created: Instant,
    /// When each host's first step was reported: its time when it finishes.
    started: Mutex<HashMap<String, Instant>>,
}

impl Progress<'_> {
    /// Progress for `task` over `total` hosts (0: not known yet), as the
    /// console's `--progress` asks; plain lines go to `console`.
    pub fn new<'a>(console: &'a Console, task: &str, total: usize) -> Progress<'a> {
        let terminal = std::io::stderr().is_terminal();
        let bars = match console.progress {
            ProgressMode::Never => false,
            ProgressMode::Always => true,
            ProgressMode::Auto => terminal && console.colour_allowed,
        };
        if !bars {
            let lines = Lines {
                task: task.to_string(),
                console,
                created: Instant::now(),
                started: Mutex::new(HashMap::new()),
            };
            lines.phase_started(total);
            return Progress::Lines(lines);
        }
        let (target, rows) = if terminal {
            (ProgressDrawTarget::stderr(), terminal_rows().unwrap_or(24))
        } else {
            // indicatif draws nothing on a stderr that is not a terminal;
            // `always` asks for bars there all the same.
            (ProgressDrawTarget::term_like(Box::new(Stderr)), 24)
        };
        Progress::Bars(Bars::new(
            target,
            task,
            total,
            rows,
            console.colour_allowed && terminal,
        ))
    }
}

impl Bars {
    fn new(target: ProgressDrawTarget, task: &str, total: usize, rows: usize, bold: bool) -> Bars {
        let multi = MultiProgress::with_draw_target(target);
        // A total not known yet (`plan`, until its hosts are selected) is
        // none, not 0: a full bar reading 0/0 until then.
        let overall = multi.add(if total == 0 {
            ProgressBar::no_length()
        } else {
            ProgressBar::new(total as u64)
        });
        overall.set_style(if total == 0 {
            ProgressStyle::with_template(if bold {
                "{prefix:.bold} {elapsed_precise}  {msg}"
            } else {
                "{prefix} {elapsed_precise}  {msg}"
            })
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
        } else {
            counted_style(bold)
        });
        overall.set_prefix(task.to_string());
        overall.enable_steady_tick(Duration::from_millis(200));
        Bars {
            multi,
            overall,
            in_flight: Mutex::new(HashMap::new()),
            max_lines: rows.saturating_sub(3).clamp(1, 40),
            bold,
        }
    }
}

impl Lines<'_> {
    /// The phase's first line: `12:00:01 apply: 5 hosts`.
    fn phase_started(&self, total: usize) {
        let hosts = if total == 0 {
            "started".to_string()
        } else {
            format!("{total} host{}", if total == 1 { "" } else { "s" })
        };
        self.console
            .note(&format!("{} {}: {hosts}", timestamp(), self.task));
    }

    fn step(&self, host: &str, step: &str) {
        self.started
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(host.to_string())
            .or_insert_with(Instant::now);
        if self.console.verbose > 0 {
            self.console
                .note(&format!("{} {} {host}: {step}", timestamp(), self.task));
        }
    }

    /// `12:00:14 apply web1: applied (12.3 s)`; a host that did not
    /// succeed says FAILED first.
    fn done(&self, host: &str, ok: bool, summary: &str) {
        let since = self
            .started
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(host)
            .unwrap_or(self.created);
        self.console.note(&format!(
            "{} {} {host}: {}{summary} ({:.1} s)",
            timestamp(),
            self.task,
            if ok { "" } else { "FAILED: " },
            since.elapsed().as_secs_f64()
        ));
    }
}

impl crate::ops::Progress for Progress<'_> {
    /// Removes the bars (before results are printed).
    fn finish(&self) {
        if let Progress::Bars(bars) = self {
            for (_, bar) in bars
                .in_flight
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .drain()
            {
                bar.finish_and_clear();
            }
            bars.overall.finish_and_clear();
        }
    }
}

impl Reporter for Progress<'_> {
    fn host_step(&self, host: &str, step: &str) {
        match self {
            Progress::Bars(bars) => {
                let mut in_flight = bars
                    .in_flight
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if let Some(bar) = in_flight.get(host) {
                    bar.set_message(step.to_string());
                } else if in_flight.len() < bars.max_lines {
                    let bar = bars.multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("  {spinner} {prefix}: {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_prefix(host.to_string());
                    bar.set_message(step.to_string());
                    bar.enable_steady_tick(Duration::from_millis(120));
                    in_flight.insert(host.to_string(), bar);
                }
            }
            Progress::Lines(lines) => lines.step(host, step),
        }
    }

    fn host_done(&self, host: &str, ok: bool, summary: &str) {
        match self {
            Progress::Bars(bars) => {
                if let Some(bar) = bars
                    .in_flight
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .remove(host)
                {
                    bar.finish_and_clear();
                }
                if !ok {
                    bars.overall.set_message(format!("{host}: {summary}"));
                }
                // More hosts than announced: the total grows with them.
                if bars
                    .overall
                    .length()
                    .is_some_and(|length| bars.overall.position() >= length)
                {
                    bars.overall.inc_length(1);
                }
                bars.overall.inc(1);
            }
            Progress::Lines(lines) => lines.done(host, ok, summary),
        }
    }

    /// `plan` learns its host count after reading the inventory: the bar
    /// shows it before the first host is done, not a total counting up.
    fn set_total(&self, total: usize) {
        match self {
            Progress::Bars(bars) => {
                bars.overall.set_length(total as u64);
                bars.overall.set_style(counted_style(bars.bold));
                // Drawn now, past the draw rate's limit: a plan that reads
                // its hosts within that limit still shows its count once.
                bars.overall.force_draw();
            }
            Progress::Lines(lines) => lines.phase_started(total),
        }
    }

    /// Not a failure: the host was never started.
    fn host_skipped(&self, host: &str) {
        match self {
            Progress::Bars(_) => self.host_done(host, false, "skipped"),
            Progress::Lines(lines) => {
                lines
                    .console
                    .note(&format!("{} {} {host}: skipped", timestamp(), lines.task))
            }
        }
    }
}

/// The overall bar once its host total is known.
fn counted_style(bold: bool) -> ProgressStyle {
    ProgressStyle::with_template(if bold {
        "{prefix:.bold} [{bar:30}] {pos}/{len} hosts  {elapsed_precise}  {msg}"
    } else {
        "{prefix} [{bar:30}] {pos}/{len} hosts  {elapsed_precise}  {msg}"
    })
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

/// `HH:MM:SS` in UTC, for plain progress lines.
fn timestamp() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
        % 86_400;
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// stderr as indicatif's terminal when it is not one (`--progress
/// always`): ANSI cursor moves, 80 columns.
#[derive(Debug)]
struct Stderr;

impl Stderr {
    fn write(&self, text: &str) -> std::io::Result<()> {
        std::io::stderr().lock().write_all(text.as_bytes())
    }
}

impl TermLike for Stderr {
    fn width(&self) -> u16 {
        80
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.write(&format!("\x1b[{n}A"))
    }

    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.write(&format!("\x1b[{n}B"))
    }

    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.write(&format!("\x1b[{n}C"))
    }

    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.write(&format!("\x1b[{n}D"))
    }

    fn write_line(&self, line: &str) -> std::io::Result<()> {
        self.write(&format!("{line}\n"))
    }

    fn write_str(&self, text: &str) -> std::io::Result<()> {
        self.write(text)
    }

    fn clear_line(&self) -> std::io::Result<()> {
        self.write("\r\x1b[2K")
    }

    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

fn terminal_rows() -> Option<usize> {
    // SAFETY: TIOCGWINSZ fills a winsize struct we own; the fd is stderr.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        (libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) == 0 && size.ws_row > 0)
            .then_some(size.ws_row as usize)
    }
}

#[cfg(test)]
mod tests {
    use indicatif::ProgressDrawTarget;

    use super::{Bars, Progress};
    use crate::report::Reporter;

    #[test]
    fn the_plan_bar_knows_its_total_before_a_host_is_done() {
        let progress = Progress::Bars(Bars::new(ProgressDrawTarget::hidden(), "plan", 0, 24, true));
        if let Progress::Bars(bars) = &progress {
            assert_eq!(
                bars.overall.length(),
                None,
                "not 0/0 before the total is known"
            );
        }
        progress.set_total(3);
        let Progress::Bars(bars) = &progress else {
            unreachable!()
        };
        assert_eq!(bars.overall.length(), Some(3));
        progress.host_done("a", true, "ok");
        assert_eq!(
            (bars.overall.position(), bars.overall.length()),
            (1, Some(3))
        );
    }
}
