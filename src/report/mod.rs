//! Rendering results for people and scripts. The library computes; this
//! module turns results into text. It never decides what happens.

pub mod audit;
mod diff;
mod table;

pub use diff::masked_unified_diff;
pub use table::{render_table, render_timings};

/// Where the library reports progress. Implementations are in the CLI
/// (live bars on a terminal, plain lines otherwise); the library never
/// prints.
pub trait Reporter: Sync {
    /// A host began a step ("connecting", "stopping", …).
    fn host_step(&self, host: &str, step: &str);
    /// A host is done.
    fn host_done(&self, host: &str, ok: bool, summary: &str);
    /// How many hosts there are, once known (`plan` learns it after
    /// reading the inventory and the playbook).
    fn set_total(&self, _total: usize) {}
    /// A host was skipped: it never started (a cancelled rollout, Ctrl-C).
    fn host_skipped(&self, host: &str) {
        self.host_done(host, false, "skipped");
    }
}

/// One step of a host's run, as data (`-v`, the `steps` of JSON results):
/// what it was, its detail (the journal's word, a path), and how long it
/// took as seen from midfleet: from the end of the step before to the end
/// of this one (the host's progress is polled every 0.2 s).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub step: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    pub seconds: f64,
}

/// A line of the MID's own log behind a health decision: its file (below
/// agent/logs), its line number there (`+N`: the Nth line since the start,
/// when the file rotated or was too large to count), and its text
/// (control characters removed; the caller masks secrets). As JSON:
/// `{file, line, since_start, text}`, `line` a number (scripts compare
/// it), `since_start` true for a `+N` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub file: String,
    pub line: String,
    pub text: String,
}

impl serde::Serialize for LogLine {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let (number, since_start) = match self.line.strip_prefix('+') {
            Some(since) => (since, true),
            None => (self.line.as_str(), false),
        };
        let mut state = serializer.serialize_struct("LogLine", 4)?;
        state.serialize_field("file", &self.file)?;
        match number.parse::<u64>() {
            Ok(number) => state.serialize_field("line", &number)?,
            // Never from the health check (`N` or `+N` only).
            Err(_) => state.serialize_field("line", &self.line)?,
        }
        state.serialize_field("since_start", &since_start)?;
        state.serialize_field("text", &self.text)?;
        state.end()
    }
}

impl LogLine {
    /// `agent0.log.0 line 1432: "…"`.
    pub fn cited(&self) -> String {
        let line = match self.line.strip_prefix('+') {
            Some(since) => format!("line {since} since the start"),
            None => format!("line {}", self.line),
        };
        format!("{} {line}: \"{}\"", self.file, self.text)
    }
}

/// A reporter that says nothing (tests, benchmarks).
pub struct Silent;

impl Reporter for Silent {
    fn host_step(&self, _host: &str, _step: &str) {}
    fn host_done(&self, _host: &str, _ok: bool, _summary: &str) {}
}

/// Now as RFC 3339 in UTC (`2026-11-27T11:45:00Z`), without a date crate.
pub fn now_rfc3339() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    rfc3339(seconds)
}

/// `seconds` since the epoch as RFC 3339 in UTC.
pub fn rfc3339(seconds: u64) -> String {
    let days = seconds / 86_400;
    let time = seconds % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        time / 3600,
        time / 60 % 60,
        time % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_log_line_is_json_with_a_numeric_line() {
        let line = |line: &str| super::LogLine {
            file: "agent0.log.0".into(),
            line: line.into(),
            text: "Started".into(),
        };
        assert_eq!(
            serde_json::to_value(line("1432")).unwrap(),
            serde_json::json!({"file": "agent0.log.0", "line": 1432, "since_start": false, "text": "Started"})
        );
        assert_eq!(
            serde_json::to_value(line("+3")).unwrap(),
            serde_json::json!({"file": "agent0.log.0", "line": 3, "since_start": true, "text": "Started"})
        );
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_779_900), "2026-11-27T11:45:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
