//! `midfleet rollback`: the arguments to [`ops::rollback`], its results
//! rendered.

use super::args::RollbackArgs;
use super::console::{Console, OutputFormat};
use super::exit::{Exit, Failure};
use crate::ops::rollback::{self as ops, RollbackRequest, RolledBack};

pub fn run(console: &Console, arguments: &RollbackArgs) -> Result<Exit, Failure> {
    let configuration = super::ansible_cfg(console)?;
    let request = RollbackRequest {
        selection: arguments.inventory.selection(&configuration, console)?,
        connection: arguments.connection.connection(&configuration),
        yes: arguments.yes,
        health_timeout: arguments.health_timeout,
        audit_log: arguments.audit_log.clone(),
    };
    let (run, results) = match ops::rollback(&request, console)? {
        RolledBack::Nothing { failed } => {
            console.note("Nothing to roll back.");
            return Ok(if failed { Exit::Failed } else { Exit::Success });
        }
        RolledBack::Cancelled => {
            console.note("Rollback cancelled; nothing was changed.");
            return Ok(Exit::Failed);
        }
        RolledBack::Done { run, results } => (run, results),
    };
    let mut results = results;
    super::apply::show_detail(console, &mut results);
    match console.output {
        OutputFormat::Json => console.data(&format!(
            "{}\n",
            serde_json::to_string_pretty(&results)
                .map_err(|error| Failure::failed(error.to_string()))?
        )),
        OutputFormat::Human => console.data(&super::apply::rollback_results(&run, &results, false)),
    }
    Ok(if results.iter().all(|result| result.result.is_success()) {
        Exit::Success
    } else {
        Exit::Failed
    })
}
