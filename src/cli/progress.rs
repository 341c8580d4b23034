//! Progress on stderr: live bars on a terminal (an overall bar and a line
//! per host in flight, no more lines than the terminal holds), plain
//! timestamped lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::Reporter;

/// The CLI's reporter.
pub enum Progress {
    Bars(Bars),
    Lines { task: String },
}

pub struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    in_flight: Mutex<HashMap<String, ProgressBar>>,
    max_lines: usize,
}

impl Progress {
    /// Progress for `task` over `total` hosts.
    pub fn new(task: &str, total: usize) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress::Lines {
                task: task.to_string(),
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let overall = multi.add(ProgressBar::new(total as u64));
        overall.set_style(
            ProgressStyle::with_template(
                "{prefix:.bold} [{bar:30}] {pos}/{len} hosts  {elapsed_precise}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        overall.set_prefix(task.to_string());
        overall.enable_steady_tick(Duration::from_millis(200));
        let rows = terminal_rows().unwrap_or(24);
        Progress::Bars(Bars {
            multi,
            overall,
            in_flight: Mutex::new(HashMap::new()),
            max_lines: rows.saturating_sub(3).clamp(1, 40),
        })
    }

    /// Removes the bars (before results are printed).
    pub fn finish(&self) {
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

impl Reporter for Progress {
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
            Progress::Lines { task } => eprintln!("{} {task} {host}: {step}", timestamp()),
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
                // `plan` does not know its host count when it starts.
                if bars
                    .overall
                    .length()
                    .is_some_and(|length| bars.overall.position() >= length)
                {
                    bars.overall.inc_length(1);
                }
                bars.overall.inc(1);
            }
            Progress::Lines { task } => {
                let outcome = if ok { "done" } else { "FAILED" };
                eprintln!("{} {task} {host}: {outcome}: {summary}", timestamp());
            }
        }
    }
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

/// Raises the soft limit on open files so `forks` sessions (a socket, and
/// for jump hosts a socket pair, each) fit; a warning when it cannot.
pub fn raise_file_limit(forks: usize) -> Option<String> {
    raise_file_limit_keeping(forks, 0).1
}

/// [`raise_file_limit`], with room for up to `keep` more sessions kept
/// open between a plan and its apply (two descriptors each at most):
/// returns how many of them fit (the rest are not kept), and the warning
/// about the forks, if any.
pub fn raise_file_limit_keeping(forks: usize, keep: usize) -> (usize, Option<String>) {
    let needed = (forks as u64) * 4 + 64;
    let wanted = needed + 2 * keep as u64;
    // SAFETY: getrlimit/setrlimit with a struct we own.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return (0, None);
        }
        if limit.rlim_cur < wanted {
            let raised = wanted.min(limit.rlim_max);
            let mut new_limit = limit;
            new_limit.rlim_cur = raised;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &new_limit) == 0 {
                limit = new_limit;
            }
        }
        let room = limit.rlim_cur.saturating_sub(needed) / 2;
        let kept = (keep as u64).min(room) as usize;
        if limit.rlim_cur < needed {
            return (
                kept,
                Some(format!(
                    "--forks {forks} needs about {needed} open files, but the limit is {}; raise it with `ulimit -n {needed}` or use fewer forks",
                    limit.rlim_cur
                )),
            );
        }
        (kept, None)
    }
}
