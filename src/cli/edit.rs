//! `midfleet edit FILE`: the arguments to [`crate::ops::edit`], the
//! changes (and the masked diff) rendered.

use serde::Serialize;

use super::args::EditArgs;
use super::console::{Console, OutputFormat, Style};
use super::exit::{Exit, Failure};
use crate::config_xml::{Action, Change};
use crate::ops::edit::{edit, EditRequest};

#[derive(Serialize)]
struct EditReport<'a> {
    file: String,
    check: bool,
    changed: bool,
    written: bool,
    changes: &'a [Change],
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<String>,
}

pub fn run(console: &Console, arguments: &EditArgs) -> Result<Exit, Failure> {
    let edited = edit(
        &EditRequest {
            file: arguments.file.clone(),
            set: arguments.set.clone(),
            set_secret: arguments.set_secret.clone(),
            unset: arguments.unset.clone(),
            check: arguments.check,
            diff: arguments.diff,
        },
        console,
    )?;
    let label = arguments.file.display().to_string();
    match console.output {
        OutputFormat::Json => {
            let report = EditReport {
                file: edited.path.display().to_string(),
                check: arguments.check,
                changed: edited.changed,
                written: edited.written,
                changes: &edited.changes,
                diff: edited.diff,
            };
            let json = serde_json::to_string_pretty(&report)
                .map_err(|error| Failure::failed(error.to_string()))?;
            console.data(&format!("{json}\n"));
        }
        OutputFormat::Human => {
            let mut text = edited.diff.unwrap_or_default();
            text.push_str(&render_changes(console, &edited.changes));
            text.push_str(&summary(
                &label,
                &edited.changes,
                arguments.check,
                edited.written,
            ));
            console.data(&text);
        }
    }
    Ok(if arguments.check && edited.changed {
        Exit::Pending
    } else {
        Exit::Success
    })
}

fn render_changes(console: &Console, changes: &[Change]) -> String {
    let mut text = String::new();
    for change in changes {
        let style = match change.action {
            Action::Update => Style::Change,
            Action::Add => Style::Add,
            Action::Remove => Style::Remove,
        };
        let detail = match change.action {
            Action::Update if change.sensitive => " = (sensitive)".to_string(),
            Action::Update => format!(" = {} -> {}", change.before, change.after),
            Action::Add => format!(" = {}", change.after),
            Action::Remove => String::new(),
        };
        text.push_str(&format!(
            "  {} {}{detail}   (line {})\n",
            console.paint(style, &change.action.symbol().to_string()),
            console.paint(Style::Bold, &change.param),
            change.line
        ));
    }
    text
}

fn summary(label: &str, changes: &[Change], check: bool, written: bool) -> String {
    if changes.is_empty() {
        return format!("{label}: no changes\n");
    }
    let count = |action| {
        changes
            .iter()
            .filter(|change| change.action == action)
            .count()
    };
    let outcome = match (check, written) {
        (true, _) => "not written (--check)",
        (false, true) => "written",
        (false, false) => "not written",
    };
    format!(
        "{label}: {} to change, {} to add, {} to remove; {outcome}\n",
        count(Action::Update),
        count(Action::Add),
        count(Action::Remove)
    )
}
