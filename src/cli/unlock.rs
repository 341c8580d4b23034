//! `midfleet unlock`: the arguments to [`ops::unlock`], its results
//! rendered.

use super::args::UnlockArgs;
use super::console::{Console, OutputFormat};
use super::exit::{Exit, Failure};
use crate::ops::unlock::{self as ops, UnlockRequest};
use crate::report::render_table;

pub fn run(console: &Console, arguments: &UnlockArgs) -> Result<Exit, Failure> {
    let configuration = super::ansible_cfg(console)?;
    let results = ops::unlock(
        &UnlockRequest {
            selection: arguments.inventory.selection(&configuration, console)?,
            connection: arguments.connection.connection(&configuration),
            force: arguments.force,
            audit_log: arguments.audit_log.clone(),
        },
        console,
    )?;
    match console.output {
        OutputFormat::Json => console.data(&format!(
            "{}\n",
            serde_json::to_string_pretty(&results)
                .map_err(|error| Failure::failed(error.to_string()))?
        )),
        OutputFormat::Human => {
            let rows: Vec<Vec<String>> = results
                .iter()
                .map(|result| {
                    vec![
                        result.host.clone(),
                        result.result.to_string(),
                        result.message.clone(),
                    ]
                })
                .collect();
            console.data(&render_table(&["HOST", "RESULT", "DETAIL"], &rows));
        }
    }
    Ok(
        if results
            .iter()
            .any(|result| matches!(result.result, "refused" | "error"))
        {
            Exit::Failed
        } else {
            Exit::Success
        },
    )
}
