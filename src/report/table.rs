//! Plain aligned tables for people (scripts use `--output json`).

/// `headers` and `rows` as left-aligned columns separated by two spaces,
/// without trailing spaces.
pub fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|header| header.chars().count())
        .collect();
    for row in rows {
        for (index, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(index) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let mut text = String::new();
    let header_row: Vec<String> = headers.iter().map(|header| header.to_string()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (index, cell) in row.iter().enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let padding = widths
                .get(index)
                .copied()
                .unwrap_or(0)
                .saturating_sub(cell.chars().count());
            line.extend(std::iter::repeat_n(' ', padding));
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// `--timings`: per host, each SSH session it took (in order) — TCP
/// connect, SSH handshake (key exchange and host key), authentication and
/// each script run, in milliseconds. A host's sessions are summed;
/// `SESSIONS`, `CHANNELS` (exec channels: remote process starts) and the
/// `+`-joined script runs show how many there were.
pub fn render_timings(rows: &[(String, Vec<&crate::transport::Timings>)]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .filter(|(_, sessions)| !sessions.is_empty())
        .map(|(host, sessions)| {
            let sum = |part: fn(&crate::transport::Timings) -> f64| {
                format!(
                    "{:.1}",
                    sessions.iter().map(|timings| part(timings)).sum::<f64>()
                )
            };
            vec![
                host.clone(),
                sessions.len().to_string(),
                sessions
                    .iter()
                    .map(|timings| timings.channels)
                    .sum::<usize>()
                    .to_string(),
                sum(|timings| timings.connect_ms),
                sum(|timings| timings.handshake_ms),
                sum(|timings| timings.auth_ms),
                sessions
                    .iter()
                    .flat_map(|timings| timings.execs.iter())
                    .map(|exec| format!("{exec:.1}"))
                    .collect::<Vec<_>>()
                    .join("+"),
            ]
        })
        .collect();
    format!(
        "\n{}",
        render_table(
            &[
                "HOST",
                "SESSIONS",
                "CHANNELS",
                "CONNECT_MS",
                "HANDSHAKE_MS",
                "AUTH_MS",
                "EXEC_MS"
            ],
            &rows
        )
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn aligns_columns() {
        let text = super::render_table(
            &["A", "BB"],
            &[vec!["long".into(), "x".into()], vec!["s".into(), "".into()]],
        );
        assert_eq!(text, "A     BB\nlong  x\ns\n");
    }
}
