//! `cargo bench --bench facts`: `midfleet facts` over a lab of hosts
//! against the floor — connect, authenticate and run one trivial exec on
//! each host, with the same parallelism — measured in the same run, and the
//! ratio between them. A benchmark, not a test: it prints figures and
//! fails only when it cannot run.
//!
//! Environment: `MIDFLEET_BENCH_HOSTS` (default 100), `MIDFLEET_BENCH_FORKS`
//! (default 32), `MIDFLEET_BENCH_ROUNDS` (default 5).

mod common;

use std::process::Command;
use std::time::Instant;

use common::{cpu_seconds, median, setting, Floor};
use midfleet_lab::{Lab, LabSpec};

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let hosts = setting("MIDFLEET_BENCH_HOSTS", 100);
    let forks = setting("MIDFLEET_BENCH_FORKS", 32);
    let rounds = setting("MIDFLEET_BENCH_ROUNDS", 5).max(1);
    let midsim = midfleet_lab::midsim();
    let midfleet = env!("CARGO_BIN_EXE_midfleet");
    let started = Instant::now();
    let lab =
        Lab::start(&LabSpec::new(hosts, &midsim)).unwrap_or_else(|error| panic!("lab: {error}"));
    eprintln!(
        "lab of {hosts} hosts up in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let floor_bench = Floor::new(&lab, forks);
    let floor_round = || floor_bench.round(&lab);
    let facts_round = || {
        let started = Instant::now();
        let cpu = cpu_seconds(libc::RUSAGE_CHILDREN);
        let output = Command::new(midfleet)
            .args(["facts", "-i"])
            .arg(&lab.inventory)
            .arg("--known-hosts")
            .arg(&lab.known_hosts)
            .args(["--forks", &forks.to_string(), "--output", "json"])
            .env("HOME", &lab.directory)
            .output()
            .expect("run midfleet facts");
        assert!(
            output.status.success(),
            "facts failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        (started.elapsed(), cpu_seconds(libc::RUSAGE_CHILDREN) - cpu)
    };

    // Warm up both (page cache, sshd's first forks), then alternate rounds
    // so that noise on this shared machine falls on both alike.
    floor_round();
    facts_round();
    let mut floor = Vec::new();
    let mut facts = Vec::new();
    let mut floor_cpu = Vec::new();
    let mut facts_cpu = Vec::new();
    for _ in 0..rounds {
        let (wall, cpu) = floor_round();
        floor.push(wall);
        floor_cpu.push(cpu);
        let (wall, cpu) = facts_round();
        facts.push(wall);
        facts_cpu.push(cpu);
    }
    let floor_cpu_median = floor_cpu[floor_cpu.len() / 2] * 1000.0 / hosts as f64;
    let facts_cpu_median = facts_cpu[facts_cpu.len() / 2] * 1000.0 / hosts as f64;
    let (floor, facts) = (median(floor), median(facts));
    let ratio = facts.as_secs_f64() / floor.as_secs_f64();
    println!("hosts {hosts}, forks {forks}, rounds {rounds} (medians)");
    println!("| run | wall | client CPU per host |");
    println!("|---|---|---|");
    println!(
        "| floor: connect + auth + `true` | {:.3} s | {floor_cpu_median:.2} ms |",
        floor.as_secs_f64()
    );
    println!(
        "| `midfleet facts` (whole process) | {:.3} s | {facts_cpu_median:.2} ms |",
        facts.as_secs_f64()
    );
    println!("ratio facts/floor: {ratio:.2} (target ≤ 1.3)");
}
