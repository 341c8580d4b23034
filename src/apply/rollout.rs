//! The rollout: batches as `serial` says; within a batch at most `forks`
//! hosts at once and never two of one `mid_cluster`; after a batch with more
//! failures than `max_fail`, the rest are skipped; after Ctrl-C no new host
//! starts.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

use crate::plan::{HostPlan, HostStatus, Plan};
use crate::playbook::{Amount, Rollout};
use crate::report::Reporter;

use super::{result, ApplySettings, HostResult, Outcome};

/// Runs `execute` on every changing host of `plan`, in batches; returns a
/// result for every host of the plan, in plan order.
pub fn rollout(
    plan: &Plan,
    settings: &ApplySettings,
    interrupted: &AtomicBool,
    reporter: &dyn Reporter,
    execute: &(dyn Fn(&HostPlan) -> HostResult + Sync),
) -> Vec<HostResult> {
    let mut results: Vec<Option<HostResult>> = plan
        .hosts
        .iter()
        .map(|host| match host.status {
            HostStatus::Unchanged => Some(result(host, settings, Outcome::Unchanged, None)),
            HostStatus::Error => Some(result(host, settings, Outcome::Error, host.error.clone())),
            HostStatus::Skipped => {
                Some(result(host, settings, Outcome::Left, host.skipped.clone()))
            }
            HostStatus::Change => None,
        })
        .collect();
    let changing: Vec<usize> = (0..plan.hosts.len())
        .filter(|index| results[*index].is_none())
        .collect();
    let rollout = parse_rollout(plan);
    let total = changing.len();
    let max_fail = rollout.max_fail.of(total);
    let mut failures = 0;
    let mut next = 0;
    let mut cancelled: Option<String> = None;
    for size in rollout.batches(total) {
        let batch = &changing[next..next + size];
        next += size;
        if cancelled.is_none() && interrupted.load(Ordering::SeqCst) {
            cancelled = Some("interrupted (Ctrl-C) before its batch started".into());
        }
        if let Some(reason) = &cancelled {
            for &index in batch {
                let host = &plan.hosts[index];
                reporter.host_skipped(&host.host);
                results[index] = Some(result(
                    host,
                    settings,
                    Outcome::Skipped,
                    Some(reason.clone()),
                ));
            }
            continue;
        }
        let batch_results = run_batch(
            plan,
            batch,
            settings.forks,
            interrupted,
            reporter,
            execute,
            settings,
        );
        for (index, host_result) in batch_results {
            if !host_result.result.is_success() {
                failures += 1;
            }
            results[index] = Some(host_result);
        }
        if failures > max_fail {
            cancelled = Some(format!(
                "cancelled: {failures} failed host{} max_fail {max_fail}",
                if failures == 1 {
                    " exceeds"
                } else {
                    "s exceed"
                },
            ));
        }
    }
    results
        .into_iter()
        .zip(&plan.hosts)
        .map(|(host_result, host)| {
            host_result.unwrap_or_else(|| result(host, settings, Outcome::Skipped, None))
        })
        .collect()
}

fn parse_rollout(plan: &Plan) -> Rollout {
    let amount = |text: &str| -> Amount {
        match text.strip_suffix('%') {
            Some(percent) => Amount::Percent(percent.parse().unwrap_or(100)),
            None => Amount::Count(text.parse().unwrap_or(1)),
        }
    };
    let serial: Vec<Amount> = plan
        .rollout
        .serial
        .iter()
        .map(|text| amount(text))
        .collect();
    Rollout {
        serial: if serial.is_empty() {
            Rollout::default().serial
        } else {
            serial
        },
        max_fail: amount(&plan.rollout.max_fail),
    }
}

struct Queue {
    waiting: VecDeque<usize>,
    busy_clusters: BTreeSet<String>,
    running: usize,
}

/// One batch: `forks` workers take hosts in order, skipping (for now) a
/// host whose cluster already has one in flight.
fn run_batch(
    plan: &Plan,
    batch: &[usize],
    forks: usize,
    interrupted: &AtomicBool,
    reporter: &dyn Reporter,
    execute: &(dyn Fn(&HostPlan) -> HostResult + Sync),
    settings: &ApplySettings,
) -> Vec<(usize, HostResult)> {
    let queue = Mutex::new(Queue {
        waiting: batch.iter().copied().collect(),
        busy_clusters: BTreeSet::new(),
        running: 0,
    });
    let changed = Condvar::new();
    let results = Mutex::new(Vec::new());
    let workers = forks.max(1).min(batch.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let taken = {
                    let mut state = queue
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    loop {
                        if interrupted.load(Ordering::SeqCst) {
                            // No new host starts; what is waiting is skipped.
                            for index in state.waiting.drain(..) {
                                let host = &plan.hosts[index];
                                reporter.host_skipped(&host.host);
                                results
                                    .lock()
                                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                                    .push((
                                        index,
                                        result(
                                            host,
                                            settings,
                                            Outcome::Skipped,
                                            Some("interrupted (Ctrl-C) before it started".into()),
                                        ),
                                    ));
                            }
                        }
                        if state.waiting.is_empty() {
                            break None;
                        }
                        let position = state.waiting.iter().position(|index| {
                            plan.hosts[*index]
                                .mid_cluster
                                .as_ref()
                                .is_none_or(|cluster| !state.busy_clusters.contains(cluster))
                        });
                        match position {
                            Some(position) => {
                                let index = state
                                    .waiting
                                    .remove(position)
                                    .expect("position is in range");
                                if let Some(cluster) = &plan.hosts[index].mid_cluster {
                                    state.busy_clusters.insert(cluster.clone());
                                }
                                state.running += 1;
                                break Some(index);
                            }
                            None => {
                                state = changed
                                    .wait_timeout(state, std::time::Duration::from_millis(200))
                                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                                    .0;
                            }
                        }
                    }
                };
                let Some(index) = taken else {
                    changed.notify_all();
                    return;
                };
                let host = &plan.hosts[index];
                let host_result = execute(host);
                results
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push((index, host_result));
                let mut state = queue
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if let Some(cluster) = &host.mid_cluster {
                    state.busy_clusters.remove(cluster);
                }
                state.running -= 1;
                drop(state);
                changed.notify_all();
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
