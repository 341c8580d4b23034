//! `cargo bench --bench apply`: the user rotation applied to a lab of
//! hosts, then applied again — wall time, MID restarts and midfleet's peak
//! memory for each. A benchmark, not a test.
//!
//! Environment: `MIDFLEET_BENCH_HOSTS` (default 100), `MIDFLEET_BENCH_FORKS`
//! (default 32), `MIDFLEET_BENCH_START_MS` (the MIDs' start time, default
//! 200; 30000 for a realistic MID).

mod common;

use std::process::Command;
use std::time::Instant;

use common::{children_max_rss_kib, setting, start_lab, starts};

fn main() {
    let hosts = setting("MIDFLEET_BENCH_HOSTS", 100);
    let forks = setting("MIDFLEET_BENCH_FORKS", 32);
    let start_ms = setting("MIDFLEET_BENCH_START_MS", 200);
    let lab = start_lab(hosts, start_ms);
    for host in &lab.hosts {
        lab.add_instance_user(
            &format!("svc_{}", host.name.replace('-', "")),
            "bench-Password-1",
        )
        .unwrap();
    }
    let playbook = lab.directory.join("rotate.yml");
    std::fs::write(
        &playbook,
        "hosts: all\nset:\n  mid.instance.username: \"svc_{{ mid_name }}\"\n  mid.instance.password: { secret: \"env:BENCH_PASSWORD\" }\nhealth:\n  timeout: 300\nrollout:\n  serial: [1, 100%]\n",
    )
    .unwrap();
    let apply = |label: &str| {
        let before = starts(&lab);
        let started = Instant::now();
        let output = Command::new(env!("CARGO_BIN_EXE_midfleet"))
            .args(["apply", "-i"])
            .arg(&lab.inventory)
            .arg(&playbook)
            .arg("--known-hosts")
            .arg(&lab.known_hosts)
            .args(["--yes", "--forks", &forks.to_string(), "--audit-log"])
            .arg(lab.directory.join("audit.jsonl"))
            .env("BENCH_PASSWORD", "bench-Password-1")
            .env("HOME", &lab.directory)
            .output()
            .expect("run midfleet apply");
        let wall = started.elapsed();
        assert!(
            output.status.success(),
            "{label} failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        (wall, starts(&lab) - before, children_max_rss_kib())
    };
    let (first_wall, first_restarts, first_rss) = apply("apply");
    let (second_wall, second_restarts, second_rss) = apply("re-apply");
    println!("hosts {hosts}, forks {forks}, MID start {start_ms} ms, serial [1, 100%]");
    println!("| run | wall | MID restarts | midfleet peak RSS |");
    println!("|---|---|---|---|");
    println!(
        "| apply (rotation) | {:.2} s | {first_restarts} | {:.1} MiB |",
        first_wall.as_secs_f64(),
        first_rss as f64 / 1024.0
    );
    println!(
        "| re-apply | {:.2} s | {second_restarts} | {:.1} MiB |",
        second_wall.as_secs_f64(),
        second_rss.max(first_rss) as f64 / 1024.0
    );
}
