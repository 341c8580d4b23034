//! The console as the operator the workflows (`ops`) report to: progress
//! bars or lines, warnings, problems, notes on stderr; the plan shown
//! before apply and rollback; the question asked on a terminal.

use super::console::{Console, OutputFormat};
use super::progress::Progress;
use crate::diagnostic::Diagnostic;
use crate::ops::{Operator, OpsError};
use crate::plan::Plan;

impl Operator for Console {
    fn progress(&self, task: &str, total: usize) -> Box<dyn crate::ops::Progress + '_> {
        Box::new(Progress::new(self, task, total))
    }

    fn warning(&self, message: &str) {
        Console::warning(self, message);
    }

    fn diagnostic(&self, diagnostic: &Diagnostic) {
        Console::diagnostic(self, diagnostic);
    }

    fn note(&self, message: &str) {
        Console::note(self, message);
    }

    /// With `-v`: `read KIND FILE`, once per file.
    fn file_read(&self, kind: &str, path: &std::path::Path) {
        if self.verbose == 0 {
            return;
        }
        let first = self
            .files_named
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(path.to_path_buf());
        if first {
            Console::note(self, &format!("read {kind} {}", path.display()));
        }
    }

    /// The plan goes to stdout for people; with `--output json`, stdout is
    /// the results, so the plan is shown on stderr.
    fn show_plan(&self, plan: &Plan) {
        let shown = super::plan::human(self, plan);
        match self.output {
            OutputFormat::Human => self.data(&shown),
            OutputFormat::Json => self.text(&shown),
        }
    }

    /// Asks on the terminal; without one, `--yes` is required.
    fn confirm(&self, command: &str, hosts: usize) -> Result<bool, OpsError> {
        let plural = if hosts == 1 { "" } else { "s" };
        let (question, hint) = if command == "rollback" {
            (
                format!("\nRoll back {hosts} host{plural}? Only 'yes' is accepted: "),
                "review what it restores (above), then run rollback with --yes",
            )
        } else {
            (
                format!("\nApply these changes to {hosts} host{plural}? Only 'yes' is accepted: "),
                "review the plan (`midfleet plan`), then run apply with --yes",
            )
        };
        match self.ask(&question) {
            None => Err(OpsError::input(format!(
                "{command} changes hosts and needs --yes when not run on a terminal"
            ))
            .with_hint(hint)),
            Some(Ok(answer)) => Ok(answer.trim() == "yes"),
            Some(Err(error)) => Err(OpsError::failed(error.to_string())),
        }
    }
}
