//! `-v`, `-vv`, `-vvv` for people: what the workflows collected as data
//! (how each host was reached, its steps with their times, the MID's log
//! line behind its health, the remote stderr, the transport's exchanges)
//! as lines on stderr, each prefixed by its host. Shown once the progress
//! is finished, so no line breaks a bar.
//!
//! Must not: collect anything itself — the data comes with the results
//! (`apply::HostResult`, `facts::gather::ReadDetail`), secrets already
//! masked by the workflow that knew them.

use crate::apply::HostResult;
use crate::facts::gather::ReadDetail;
use crate::report::{LogLine, Step};
use crate::transport::{ConnectionDetail, Exchange};

/// The lines of a facts read (`facts`, `plan`) at `verbose`.
pub fn read_lines(host: &str, detail: &ReadDetail, verbose: u8) -> Vec<String> {
    let mut lines = connection_lines(host, &detail.connection);
    lines.extend(step_lines(host, &detail.steps));
    lines.extend(exchange_lines(host, &detail.exchanges, verbose));
    lines
}

/// The lines of an apply's or rollback's host at `verbose`.
pub fn result_lines(result: &HostResult, verbose: u8) -> Vec<String> {
    let host = result.host.as_str();
    let mut lines = Vec::new();
    if let Some(connection) = &result.connection {
        lines.extend(connection_lines(host, connection));
    }
    lines.extend(step_lines(host, &result.steps));
    if let Some(line) = &result.log_line {
        lines.push(log_line(host, line));
    }
    lines.extend(exchange_lines(host, &result.exchanges, verbose));
    lines
}

/// Removes from `result` what `verbose` does not show (JSON carries the
/// same detail as the lines: `-v` the connection, steps and log line,
/// `-vv` the scripts with stderr, `-vvv` every exchange).
pub fn keep_for(result: &mut HostResult, verbose: u8) {
    if verbose == 0 {
        result.connection = None;
        result.steps.clear();
        result.log_line = None;
    }
    keep_exchanges(&mut result.exchanges, verbose);
}

/// [`keep_for`] of a read's exchanges; `None` without `-v`.
pub fn keep_read(detail: &mut Option<ReadDetail>, verbose: u8) {
    if verbose == 0 {
        *detail = None;
    } else if let Some(detail) = detail {
        keep_exchanges(&mut detail.exchanges, verbose);
    }
}

/// `-vv` keeps the scripts (their stderr; numbered as at `-vvv`), `-vvv`
/// the channels too.
fn keep_exchanges(exchanges: &mut Vec<Exchange>, verbose: u8) {
    match verbose {
        0 | 1 => exchanges.clear(),
        2 => exchanges.retain(|exchange| exchange.kind == "script"),
        _ => {}
    }
}

fn seconds(value: f64) -> String {
    format!("{value:.3} s")
}

fn connection_lines(host: &str, connection: &ConnectionDetail) -> Vec<String> {
    let mut lines = vec![format!(
        "{host}: connected to {} as {} in {}",
        connection.address,
        connection.user,
        seconds(connection.seconds)
    )];
    for (index, jump) in connection.jumps.iter().enumerate() {
        let mut line = format!("{host}:   jump {}: {}", index + 1, jump.address);
        if let Some(auth) = &jump.auth {
            line.push_str(&format!(", {} {}", auth.method, auth.key));
        }
        if let Some(key) = &jump.host_key {
            line.push_str(&format!(
                ", host key {} {} ({})",
                key.key_type, key.fingerprint, key.known_hosts
            ));
        }
        lines.push(line);
    }
    lines.push(format!(
        "{host}:   authenticated by {} {}",
        connection.auth.method, connection.auth.key
    ));
    lines.push(format!(
        "{host}:   host key {} {} ({})",
        connection.host_key.key_type,
        connection.host_key.fingerprint,
        connection.host_key.known_hosts
    ));
    lines
}

fn step_lines(host: &str, steps: &[Step]) -> Vec<String> {
    steps
        .iter()
        .map(|step| {
            let detail = if step.detail.is_empty() {
                String::new()
            } else {
                format!(" {}", step.detail)
            };
            format!(
                "{host}: step {}{detail}: {}",
                step.step,
                seconds(step.seconds)
            )
        })
        .collect()
}

fn log_line(host: &str, line: &LogLine) -> String {
    format!("{host}: health decided by {}", line.cited())
}

fn exchange_lines(host: &str, exchanges: &[Exchange], verbose: u8) -> Vec<String> {
    let mut lines = Vec::new();
    if verbose < 2 {
        return lines;
    }
    let mut script = 0;
    for exchange in exchanges {
        match exchange.kind {
            "channel" => {
                if verbose >= 3 {
                    lines.push(format!(
                        "{host}:   channel opened: exec `{}`",
                        exchange.command.as_deref().unwrap_or_default()
                    ));
                }
            }
            _ => {
                script += 1;
                if verbose >= 3 {
                    lines.push(format!(
                        "{host}:   script {script}: sent {} bytes, received {} bytes, exit {}, {:.1} ms",
                        exchange.sent.unwrap_or_default(),
                        exchange.received.unwrap_or_default(),
                        exchange
                            .status
                            .map_or_else(|| "?".to_string(), |status| status.to_string()),
                        exchange.milliseconds
                    ));
                }
                for text in exchange.stderr.lines() {
                    let text: String = text.chars().filter(|c| !c.is_control()).collect();
                    lines.push(format!(
                        "{host}:   remote stderr of script {script}: {text}"
                    ));
                }
            }
        }
    }
    lines
}
