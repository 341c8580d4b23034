//! Progress on stderr: live bars on a terminal (an overall bar and a line
//! per host in flight, no more lines than the terminal holds), plain
//! timestamped lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::console::Console;
use crate::report::Reporter;

/// The CLI's reporter.
pub enum Progress<'a> {
    Bars(Bars),
    Lines { task: String, console: &'a Console },
}

pub struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    in_flight: Mutex<HashMap<String, ProgressBar>>,
    max_lines: usize,
}

impl Progress<'_> {
    /// Progress for `task` over `total` hosts; plain lines go to
    /// `console`.
    pub fn new<'a>(console: &'a Console, task: &str, total: usize) -> Progress<'a> {
        if !std::io::stderr().is_terminal() {
            return Progress::Lines {
                task: task.to_string(),
                console,
            };
        }
        let rows = terminal_rows().unwrap_or(24);
        Progress::Bars(Bars::new(ProgressDrawTarget::stderr(), task, total, rows))
    }
}

impl Bars {
    fn new(target: ProgressDrawTarget, task: &str, total: usize, rows: usize) -> Bars {
        let multi = MultiProgress::with_draw_target(target);
        // A total not known yet (`plan`, until its hosts are selected) is
        // none, not 0: a full bar reading 0/0 until then.
        let overall = multi.add(if total == 0 {
            ProgressBar::no_length()
        } else {
            ProgressBar::new(total as u64)
        });
        overall.set_style(if total == 0 {
            ProgressStyle::with_template("{prefix:.bold} {elapsed_precise}  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner())
        } else {
            counted_style()
        });
        overall.set_prefix(task.to_string());
        overall.enable_steady_tick(Duration::from_millis(200));
        Bars {
            multi,
            overall,
            in_flight: Mutex::new(HashMap::new()),
            max_lines: rows.saturating_sub(3).clamp(1, 40),
        }
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
            Progress::Lines { task, console } => {
                console.note(&format!("{} {task} {host}: {step}", timestamp()))
            }
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
            Progress::Lines { task, console } => {
                let outcome = if ok { "done" } else { "FAILED" };
                console.note(&format!(
                    "{} {task} {host}: {outcome}: {summary}",
                    timestamp()
                ));
            }
        }
    }

    /// `plan` learns its host count after reading the inventory: the bar
    /// shows it before the first host is done, not a total counting up.
    fn set_total(&self, total: usize) {
        if let Progress::Bars(bars) = self {
            bars.overall.set_length(total as u64);
            bars.overall.set_style(counted_style());
            bars.overall.tick();
        }
    }

    /// Not a failure: the host was never started.
    fn host_skipped(&self, host: &str) {
        match self {
            Progress::Bars(_) => self.host_done(host, false, "skipped"),
            Progress::Lines { task, console } => {
                console.note(&format!("{} {task} {host}: skipped", timestamp()))
            }
        }
    }
}

/// The overall bar once its host total is known.
fn counted_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix:.bold} [{bar:30}] {pos}/{len} hosts  {elapsed_precise}  {msg}",
    )
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
        let progress = Progress::Bars(Bars::new(ProgressDrawTarget::hidden(), "plan", 0, 24));
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
