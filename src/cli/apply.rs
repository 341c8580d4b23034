//! `midfleet apply`: the arguments to [`ops::apply`], its report rendered.

use serde::Serialize;

use super::args::ApplyArgs;
use super::console::{Console, OutputFormat};
use super::exit::{Exit, Failure};
use crate::apply::{HostResult, Outcome, RunKind};
use crate::ops::apply::{self as ops, Applied, ApplyReport, ApplyRequest, Source};
use crate::ops::instance::InstanceReport;
use crate::report::render_table;

/// `apply --output json`.
#[derive(Serialize)]
struct Report<'a> {
    run: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<&'a InstanceReport>,
    results: &'a [HostResult],
    interrupted: bool,
}

pub fn run(console: &Console, arguments: &ApplyArgs) -> Result<Exit, Failure> {
    let configuration = super::ansible_cfg(console)?;
    let source = match (&arguments.plan, &arguments.playbook) {
        (Some(path), _) => Source::Plan(path.clone()),
        (None, Some(playbook)) => Source::Playbook {
            selection: arguments.selection(&configuration, console)?,
            playbook: playbook.clone(),
            rotate_now: arguments.rotate_now,
        },
        (None, None) => return Err(Failure::usage("a playbook or --plan is needed")),
    };
    let request = ApplyRequest {
        source,
        yes: arguments.yes,
        connection: arguments.connection.connection(&configuration),
        audit_log: arguments.audit_log.clone(),
    };
    let mut report = match ops::apply(&request, console)? {
        Applied::Cancelled => {
            console.note("Apply cancelled; nothing was changed.");
            return Ok(Exit::Failed);
        }
        Applied::Done(report) => report,
    };
    let timings = arguments.connection.timings;
    if !timings {
        report
            .results
            .iter_mut()
            .for_each(|result| result.timings.clear());
    }
    show_detail(console, &mut report.results);
    match console.output {
        OutputFormat::Json => {
            let json = serde_json::to_string_pretty(&Report {
                run: &report.run,
                instance: report.instance.as_ref(),
                results: &report.results,
                interrupted: report.interrupted,
            })
            .map_err(|error| Failure::failed(error.to_string()))?;
            console.data(&format!("{json}\n"));
        }
        OutputFormat::Human => console.data(&human_results(
            &report.run,
            &report.results,
            report.interrupted,
        )),
    }
    if timings {
        console.text(&timings_table(&report));
    }
    Ok(if report.succeeded() {
        Exit::Success
    } else {
        Exit::Failed
    })
}

/// `-v`…`-vvv`: each host's detail as lines on stderr (people), or kept
/// in the results as far as the level asks (JSON).
pub fn show_detail(console: &Console, results: &mut [HostResult]) {
    for result in results.iter_mut() {
        super::detail::keep_for(result, console.verbose);
        if console.verbose > 0 && console.output == OutputFormat::Human {
            for line in super::detail::result_lines(result, console.verbose) {
                console.note(&line);
            }
        }
    }
}

/// `--timings`, per host: the plan's read session, then the apply's
/// sessions (the first of which may be the read's, continued).
fn timings_table(report: &ApplyReport) -> String {
    let rows: Vec<(String, Vec<&crate::transport::Timings>)> = report
        .results
        .iter()
        .map(|result| {
            let read = report
                .read_timings
                .iter()
                .filter(|(host, _)| *host == result.host && !result.continued_plan_session)
                .map(|(_, timings)| timings);
            (result.host.clone(), read.chain(&result.timings).collect())
        })
        .collect();
    crate::report::render_timings(&rows)
}

/// The results of apply or rollback for people: the hosts that did
/// something, their warnings and backups, and a summary line.
pub fn human_results(run: &str, results: &[HostResult], interrupted: bool) -> String {
    results_text("Apply", Outcome::as_str, run, results, interrupted)
}

/// `rollback`'s results: its transaction put the backup in, so a host it
/// `applied` is rolled back; one its transaction undid (the MID did not
/// come up on the backup) is not.
pub fn rollback_results(run: &str, results: &[HostResult], interrupted: bool) -> String {
    results_text("Rollback", rollback_word, run, results, interrupted)
}

fn rollback_word(outcome: Outcome) -> &'static str {
    outcome.name(RunKind::Rollback)
}

fn results_text(
    title: &str,
    word: fn(Outcome) -> &'static str,
    run: &str,
    results: &[HostResult],
    interrupted: bool,
) -> String {
    let rows: Vec<Vec<String>> = results
        .iter()
        .filter(|result| result.result != Outcome::Unchanged)
        .map(|result| {
            vec![
                result.host.clone(),
                word(result.result).to_string(),
                format!("{:.1}s", result.seconds),
                result.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut text = String::new();
    if !rows.is_empty() {
        text.push('\n');
        text.push_str(&render_table(&["HOST", "RESULT", "TIME", "DETAIL"], &rows));
    }
    // A warning many hosts share (the key pair reset of a rotation) is one
    // line naming them: the plan already showed it per host.
    let mut warnings: Vec<(&str, Vec<&str>)> = Vec::new();
    for result in results {
        for warning in &result.warnings {
            match warnings
                .iter_mut()
                .find(|(text, _)| *text == warning.as_str())
            {
                Some((_, hosts)) => hosts.push(&result.host),
                None => warnings.push((warning, vec![&result.host])),
            }
        }
    }
    for (warning, hosts) in &warnings {
        text.push_str(&format!("warning: {}: {warning}\n", host_list(hosts)));
    }
    for result in results {
        if let (Some(backup), Outcome::Failed) = (&result.backup, result.result) {
            text.push_str(&format!("{}: the backup is in {backup}\n", result.host));
        }
    }
    // By the word shown: a batch's cancelled hosts and the ones the plan
    // left alone are both `skipped`.
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for result in results {
        let shown = word(result.result);
        match counts.iter_mut().find(|(word, _)| *word == shown) {
            Some((_, count)) => *count += 1,
            None => counts.push((shown, 1)),
        }
    }
    let summary: Vec<String> = counts
        .iter()
        .map(|(word, count)| format!("{count} {}", word.replace('_', " ")))
        .collect();
    text.push_str(&format!("\n{title} {run}: {}.\n", summary.join(", ")));
    if interrupted {
        text.push_str("Interrupted: hosts not started were skipped; running transactions finished on their hosts.\n");
    }
    text
}

/// `a`, `a, b`, … up to five names, then `a, b, c, d, e and 7 more hosts`.
fn host_list(hosts: &[&str]) -> String {
    const SHOWN: usize = 5;
    let named = hosts[..hosts.len().min(SHOWN)].join(", ");
    match hosts.len().saturating_sub(SHOWN) {
        0 => named,
        1 => format!("{named} and 1 more host"),
        more => format!("{named} and {more} more hosts"),
    }
}

#[cfg(test)]
mod tests {
    use crate::apply::{HostResult, Outcome};

    fn result(host: &str, outcome: Outcome) -> HostResult {
        HostResult {
            host: host.into(),
            result: outcome,
            kind: crate::apply::RunKind::Apply,
            message: None,
            warnings: Vec::new(),
            params: Vec::new(),
            backup: None,
            run: "r1".into(),
            seconds: 1.0,
            timings: Vec::new(),
            continued_plan_session: false,
            connection: None,
            steps: Vec::new(),
            log_line: None,
            exchanges: Vec::new(),
        }
    }

    #[test]
    fn rollback_names_its_results_rolled_back() {
        let results = [
            result("a", Outcome::Applied),
            result("b", Outcome::RolledBack),
        ];
        let text = super::rollback_results("r1", &results, false);
        assert!(text.contains("a     rolled_back "), "{text}");
        assert!(text.contains("b     not_rolled_back "), "{text}");
        assert!(
            text.ends_with("\nRollback r1: 1 rolled back, 1 not rolled back.\n"),
            "{text}"
        );
        assert!(!text.contains("applied"), "{text}");
        let text = super::human_results("r1", &results, false);
        assert!(
            text.ends_with("\nApply r1: 1 applied, 1 rolled back.\n"),
            "{text}"
        );
    }

    /// JSON and the audit log name a rollback's results as its table does.
    #[test]
    fn a_rollback_writes_its_results_as_rolled_back() {
        let mut restored = result("a", Outcome::Applied);
        restored.kind = crate::apply::RunKind::Rollback;
        let mut undone = result("b", Outcome::RolledBack);
        undone.kind = crate::apply::RunKind::Rollback;
        let written = serde_json::to_value([&restored, &undone]).unwrap();
        assert_eq!(written[0]["result"], "rolled_back", "{written}");
        assert_eq!(written[1]["result"], "not_rolled_back", "{written}");
        assert!(written[0].get("kind").is_none(), "{written}");
        let applied = serde_json::to_value(result("c", Outcome::Applied)).unwrap();
        assert_eq!(applied["result"], "applied", "{applied}");
    }

    /// A warning every host shares is one line naming them, not one per
    /// host (the plan shown before already said it per host).
    #[test]
    fn a_warning_hosts_share_is_written_once() {
        let reset = "key pair reset: validate this MID on the instance";
        let results: Vec<HostResult> = (1..=7)
            .map(|index| {
                let mut host = result(&format!("lab-00{index}"), Outcome::Applied);
                host.warnings.push(reset.into());
                if index == 2 {
                    host.warnings.push("its own".into());
                }
                host
            })
            .collect();
        let text = super::human_results("r1", &results, false);
        assert_eq!(text.matches(reset).count(), 1, "{text}");
        assert!(
            text.contains(&format!(
                "warning: lab-001, lab-002, lab-003, lab-004, lab-005 and 2 more hosts: {reset}\n"
            )),
            "{text}"
        );
        assert!(text.contains("warning: lab-002: its own\n"), "{text}");
        let text = super::human_results("r1", &results[..2], false);
        assert!(
            text.contains(&format!("warning: lab-001, lab-002: {reset}\n")),
            "{text}"
        );
    }
}
