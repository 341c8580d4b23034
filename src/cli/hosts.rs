//! `midfleet hosts -i INVENTORY [PATTERN]`: the arguments to
//! [`crate::ops::hosts`], the hosts rendered.

use serde::Serialize;

use super::args::HostsArgs;
use super::console::Console;
use super::console::OutputFormat;
use super::exit::{Exit, Failure};
use crate::inventory::{Host, ServiceSpec};
use crate::report::render_table;
use crate::transport::Endpoint;

/// One row of `hosts --output json`.
#[derive(Serialize)]
struct HostRow<'a> {
    name: &'a str,
    address: &'a str,
    port: u16,
    user: &'a str,
    jump: Vec<String>,
    #[serde(rename = "become")]
    become_root: bool,
    /// With become, the user commands run as (`root` by default).
    become_user: Option<&'a str>,
    config: &'a str,
    service: &'a ServiceSpec,
    mid_cluster: Option<&'a str>,
    groups: &'a [String],
}

impl<'a> HostRow<'a> {
    /// The host as it will be reached: inventory settings over
    /// `~/.ssh/config` over defaults.
    fn new(host: &'a Host, endpoint: &'a Endpoint) -> HostRow<'a> {
        HostRow {
            name: &host.name,
            address: &endpoint.address,
            port: endpoint.port,
            user: &endpoint.user,
            jump: endpoint
                .jump
                .iter()
                .map(|hop| format!("{}@{}:{}", hop.user, hop.address, hop.port))
                .collect(),
            become_root: host.become_root,
            become_user: host.become_user.as_deref(),
            config: &host.config,
            service: &host.service,
            mid_cluster: host.mid_cluster.as_deref(),
            groups: &host.groups,
        }
    }
}

pub fn run(console: &Console, arguments: &HostsArgs) -> Result<Exit, Failure> {
    let configuration = super::ansible_cfg(console)?;
    let selected = crate::ops::hosts::hosts(
        &arguments.inventory.selection(&configuration, console)?,
        &arguments.pattern,
        console,
    )?;
    let rows: Vec<HostRow<'_>> = selected
        .iter()
        .map(|(host, endpoint)| HostRow::new(host, endpoint))
        .collect();
    match console.output {
        OutputFormat::Json => {
            let json = serde_json::to_string_pretty(&rows)
                .map_err(|error| Failure::failed(error.to_string()))?;
            console.data(&format!("{json}\n"));
        }
        OutputFormat::Human => {
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|row| {
                    vec![
                        row.name.to_string(),
                        row.address.to_string(),
                        row.port.to_string(),
                        row.user.to_string(),
                        if row.jump.is_empty() {
                            "-".into()
                        } else {
                            row.jump.join(",")
                        },
                        match (row.become_root, row.become_user) {
                            (false, _) => "no".into(),
                            (true, Some(user)) if user != "root" => format!("as {user}"),
                            (true, _) => "yes".into(),
                        },
                        row.config.to_string(),
                        row.service.to_string(),
                    ]
                })
                .collect();
            let headers = [
                "NAME", "ADDRESS", "PORT", "USER", "JUMP", "BECOME", "CONFIG", "SERVICE",
            ];
            let mut text = render_table(&headers, &table);
            text.push_str(&format!(
                "{} host{}\n",
                rows.len(),
                if rows.len() == 1 { "" } else { "s" }
            ));
            console.data(&text);
        }
    }
    Ok(Exit::Success)
}
