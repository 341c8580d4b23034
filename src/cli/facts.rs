//! `midfleet facts -i INVENTORY`: the arguments to [`crate::ops::facts`],
//! the summaries rendered.

use super::args::FactsArgs;
use super::console::Console;
use super::console::OutputFormat;
use super::exit::{Exit, Failure};
use crate::ops::facts::HostSummary;
use crate::report::render_table;

pub fn run(console: &Console, arguments: &FactsArgs) -> Result<Exit, Failure> {
    let configuration = super::ansible_cfg(console)?;
    let Some(summaries) = crate::ops::facts::facts(
        &arguments.inventory.selection(&configuration, console)?,
        &arguments.connection.connection(&configuration),
        arguments.playbook.as_deref(),
        console,
    )?
    else {
        console.warning("no host selected");
        return Ok(Exit::Success);
    };
    let mut summaries = summaries;
    for summary in &mut summaries {
        let summary = &mut summary.facts;
        super::detail::keep_read(&mut summary.detail, console.verbose);
        if console.output == OutputFormat::Human {
            for line in summary.detail.iter().flat_map(|detail| {
                super::detail::read_lines(&summary.host, detail, console.verbose)
            }) {
                console.note(&line);
            }
        }
    }
    let failures = summaries
        .iter()
        .filter(|summary| summary.facts.status != "ok")
        .count();
    match console.output {
        OutputFormat::Json => {
            let mut values = serde_json::to_value(&summaries)
                .map_err(|error| Failure::failed(error.to_string()))?;
            if !arguments.connection.timings {
                if let Some(array) = values.as_array_mut() {
                    array.iter_mut().for_each(|value| {
                        value.as_object_mut().map(|object| object.remove("timings"));
                    });
                }
            }
            let json = serde_json::to_string_pretty(&values)
                .map_err(|error| Failure::failed(error.to_string()))?;
            console.data(&format!("{json}\n"));
        }
        OutputFormat::Human => {
            let rows: Vec<Vec<String>> = summaries.iter().map(row).collect();
            let headers = [
                "HOST", "STATUS", "KIND", "USER", "PASSWORD", "KEYPAIR", "SERVICE", "CONFIG",
                "OWNER", "MODE", "JOURNAL",
            ];
            let mut text = render_table(&headers, &rows);
            for summary in summaries
                .iter()
                .map(|summary| &summary.facts)
                .filter(|summary| summary.status != "ok")
            {
                text.push_str(&format!(
                    "{}: {}\n",
                    summary.host,
                    summary.error.as_deref().unwrap_or("failed")
                ));
                if let Some(hint) = &summary.hint {
                    text.push_str(&format!("  hint: {hint}\n"));
                }
            }
            if arguments.connection.timings {
                text.push_str(&timings_table(&summaries));
            }
            text.push_str(&format!(
                "{} host{}: {} ok, {} failed\n",
                summaries.len(),
                if summaries.len() == 1 { "" } else { "s" },
                summaries.len() - failures,
                failures
            ));
            console.data(&text);
            // What the kinds could not tell without the instance.
            if let Some(undecided) = summaries
                .iter()
                .filter_map(|summary| summary.kind_detail.as_ref())
                .find_map(|kind| kind.undecided.first())
            {
                console.note(&format!("KIND: {undecided}"));
            }
        }
    }
    Ok(if failures > 0 {
        Exit::Failed
    } else {
        Exit::Success
    })
}

fn row(host: &HostSummary) -> Vec<String> {
    let summary = &host.facts;
    let dash = || "-".to_string();
    let service = summary
        .service
        .as_ref()
        .map_or_else(dash, |service| match &service.unit {
            Some(unit) => format!("{}:{unit} {}", service.kind, service.state),
            None => format!("{} {}", service.kind, service.state),
        });
    vec![
        summary.host.clone(),
        summary.status.to_string(),
        host.kind.clone().unwrap_or_else(dash),
        summary.instance_user.clone().unwrap_or_else(dash),
        summary.password.map_or_else(dash, str::to_string),
        summary.key_pair.map_or_else(
            dash,
            |present| if present { "yes".into() } else { "no".into() },
        ),
        service,
        summary
            .config
            .as_ref()
            .map_or_else(dash, |config| config.sha256[..12].to_string()),
        summary
            .config
            .as_ref()
            .map_or_else(dash, |config| format!("{}:{}", config.owner, config.group)),
        summary
            .config
            .as_ref()
            .map_or_else(dash, |config| config.mode.clone()),
        if summary.unfinished_journal {
            "unfinished".into()
        } else {
            "-".into()
        },
    ]
}

fn timings_table(summaries: &[HostSummary]) -> String {
    let rows: Vec<(String, Vec<&crate::transport::Timings>)> = summaries
        .iter()
        .map(|summary| &summary.facts)
        .map(|summary| (summary.host.clone(), summary.timings.iter().collect()))
        .collect();
    crate::report::render_timings(&rows)
}
