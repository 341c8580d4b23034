//! The operator as a workflow sees them: where progress, warnings,
//! problems in the input and notes go while a command runs, and the one
//! question apply and rollback ask. The CLI implements it (on its console
//! and progress bars); tests can implement it silently.
//!
//! Must not: decide anything; a workflow never prints but through this.

use crate::diagnostic::Diagnostic;
use crate::plan::Plan;
use crate::report::Reporter;

use super::OpsError;

/// Progress of one task over hosts ([`Reporter`]), ended by `finish`.
pub trait Progress: Reporter {
    /// Takes the progress away (before results are shown).
    fn finish(&self);
}

/// Where a workflow reports to.
pub trait Operator: Sync {
    /// Progress for `task` over `total` hosts (0 when not known yet).
    fn progress(&self, task: &str, total: usize) -> Box<dyn Progress + '_>;
    /// Something the operator should know; the run goes on.
    fn warning(&self, message: &str);
    /// A problem found in the operator's input (an error or a warning).
    fn diagnostic(&self, diagnostic: &Diagnostic);
    /// A line saying what was done or what happens next.
    fn note(&self, message: &str);
    /// A file of the operator's input was read: `kind` says what it is
    /// (`inventory`, `variables`, `vaulted variables`, `playbook`). The
    /// CLI names each once with `-v`.
    fn file_read(&self, _kind: &str, _path: &std::path::Path) {}
    /// The plan about to be acted on, for people.
    fn show_plan(&self, plan: &Plan);
    /// Asks whether `command` (`apply`, `rollback`) may change `hosts`
    /// hosts: `Ok(true)` only for a yes; an error when nobody can be asked.
    fn confirm(&self, command: &str, hosts: usize) -> Result<bool, OpsError>;
}
