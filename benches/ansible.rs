//! `cargo bench --bench ansible`: midfleet against the tool operators use
//! today — Ansible with `community.general.xml` and a restart handler — on
//! the same lab hosts, at the same forks, in one run:
//!
//! 1. the floor (connect + auth + `true` per host, in-process);
//! 2. `midfleet plan` vs `ansible-playbook --check --diff`;
//! 3. the Ansible rotation, then the same playbook again;
//! 4. the midfleet rotation, then the same playbook again;
//!
//! counting MID restarts (the lab MIDs' `MID Server started` lines) and
//! client CPU per host (user+sys of the controlling process tree, including
//! Ansible's persistent ssh control masters, divided by hosts). Ansible is
//! installed when missing: `ansible` and `lxml` from PyPI into a venv under
//! `target/ansible-venv` (the `ansible` package carries community.general).
//!
//! Environment: `MIDFLEET_BENCH_HOSTS` (default 100), `MIDFLEET_BENCH_FORKS`
//! (default 32), `MIDFLEET_BENCH_START_MS` (the MIDs' start, default 200),
//! `MIDFLEET_BENCH_ROUNDS` (plan/check rounds, default 3).

mod common;

use std::process::Command;
use std::time::Duration;

use common::ansible::{ansible, ansible_command, control_masters_cpu, ANSIBLE_PLAYBOOK};
use common::{median, run_tree, setting, start_lab, starts, Floor};

const PASSWORD: &str = "bench-Password-1";

struct Measured {
    wall: Duration,
    cpu_ms_per_host: f64,
    restarts: usize,
    /// Peak RSS of the largest process of the run.
    peak_kib: i64,
}

fn main() {
    let hosts = setting("MIDFLEET_BENCH_HOSTS", 100);
    let forks = setting("MIDFLEET_BENCH_FORKS", 32);
    let start_ms = setting("MIDFLEET_BENCH_START_MS", 200);
    let rounds = setting("MIDFLEET_BENCH_ROUNDS", 3).max(1);
    let bin = ansible();
    let lab = start_lab(hosts, start_ms);
    for host in &lab.hosts {
        for prefix in ["ans", "svc"] {
            lab.add_instance_user(
                &format!("{prefix}_{}", host.name.replace('-', "")),
                PASSWORD,
            )
            .unwrap();
        }
    }
    let control_dir = lab.directory.join("cp");
    std::fs::create_dir_all(&control_dir).unwrap();
    let ansible_playbook = lab.directory.join("rotate-ansible.yml");
    std::fs::write(&ansible_playbook, ANSIBLE_PLAYBOOK).unwrap();
    let midfleet_playbook = lab.directory.join("rotate.yml");
    std::fs::write(
        &midfleet_playbook,
        "hosts: lab\nset:\n  mid.instance.username: \"svc_{{ mid_name }}\"\n  mid.instance.password: { secret: \"env:BENCH_PASSWORD\" }\nhealth:\n  timeout: 300\nrollout:\n  serial: [100%]\n",
    )
    .unwrap();
    let measure = |command: &mut Command, label: &str| -> Measured {
        let before = starts(&lab);
        let run = run_tree(
            command
                .env("BENCH_PASSWORD", PASSWORD)
                .env("HOME", &lab.directory),
            label,
        );
        let masters = control_masters_cpu(&control_dir);
        // Let restarts the run triggered finish logging before counting.
        std::thread::sleep(Duration::from_millis(start_ms as u64 + 500));
        Measured {
            wall: run.wall,
            cpu_ms_per_host: (run.cpu_seconds + masters) * 1000.0 / hosts as f64,
            restarts: starts(&lab) - before,
            peak_kib: run.peak_kib,
        }
    };
    let ansible_command = |check: bool, prefix: &str| {
        ansible_command(
            &bin,
            &lab,
            &ansible_playbook,
            &control_dir,
            forks,
            check,
            prefix,
        )
    };
    let midfleet_command = |verb: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_midfleet"));
        command
            .arg(verb)
            .arg("-i")
            .arg(&lab.inventory)
            .arg(&midfleet_playbook)
            .arg("--known-hosts")
            .arg(&lab.known_hosts)
            .args(["--forks", &forks.to_string()]);
        if verb == "apply" {
            command
                .arg("--yes")
                .arg("--audit-log")
                .arg(lab.directory.join("audit.jsonl"));
        }
        command
    };

    // 1–2: the floor, plan and check, alternated; medians.
    let floor = Floor::new(&lab, forks);
    floor.round(&lab);
    let (mut floor_walls, mut floor_cpu) = (Vec::new(), Vec::new());
    let (mut plans, mut checks) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        eprintln!(
            "round {}/{rounds}: floor, midfleet plan, ansible --check",
            round + 1
        );
        let (wall, cpu) = floor.round(&lab);
        floor_walls.push(wall);
        floor_cpu.push(cpu * 1000.0 / hosts as f64);
        plans.push(measure(&mut midfleet_command("plan"), "midfleet plan"));
        checks.push(measure(
            &mut ansible_command(true, "ans"),
            "ansible-playbook --check",
        ));
    }
    let middle = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let floor_wall = median(floor_walls);
    let floor_cpu = middle(floor_cpu);
    let plan_wall = median(plans.iter().map(|run| run.wall).collect());
    let plan_cpu = middle(plans.iter().map(|run| run.cpu_ms_per_host).collect());
    let check_wall = median(checks.iter().map(|run| run.wall).collect());
    let check_cpu = middle(checks.iter().map(|run| run.cpu_ms_per_host).collect());

    // 3–4: each tool's rotation and its rerun.
    eprintln!("ansible rotation");
    let ansible_apply = measure(&mut ansible_command(false, "ans"), "ansible-playbook");
    let ansible_again = measure(&mut ansible_command(false, "ans"), "ansible-playbook again");
    eprintln!("midfleet rotation");
    let midfleet_apply = measure(&mut midfleet_command("apply"), "midfleet apply");
    let midfleet_again = measure(&mut midfleet_command("apply"), "midfleet apply again");
    let rss = plans
        .iter()
        .chain([&midfleet_apply, &midfleet_again])
        .map(|run| run.peak_kib)
        .max()
        .unwrap_or(0);

    let seconds = |duration: Duration| duration.as_secs_f64();
    let floor_s = seconds(floor_wall);
    println!(
        "hosts {hosts}, forks {forks}, MID start {start_ms} ms, {rounds} rounds of plan/check (medians)"
    );
    println!("| run | wall | × floor | client CPU per host | MID restarts |");
    println!("|---|---|---|---|---|");
    println!("| floor: connect + auth + `true` | {floor_s:.2} s | 1.00 | {floor_cpu:.2} ms | 0 |");
    for (label, wall, cpu, restarts) in [
        ("`midfleet plan`", plan_wall, plan_cpu, 0),
        (
            "`ansible-playbook --check --diff`",
            check_wall,
            check_cpu,
            0,
        ),
        (
            "`midfleet apply` (rotation)",
            midfleet_apply.wall,
            midfleet_apply.cpu_ms_per_host,
            midfleet_apply.restarts,
        ),
        (
            "`ansible-playbook` (rotation)",
            ansible_apply.wall,
            ansible_apply.cpu_ms_per_host,
            ansible_apply.restarts,
        ),
        (
            "`midfleet apply` again",
            midfleet_again.wall,
            midfleet_again.cpu_ms_per_host,
            midfleet_again.restarts,
        ),
        (
            "`ansible-playbook` again",
            ansible_again.wall,
            ansible_again.cpu_ms_per_host,
            ansible_again.restarts,
        ),
    ] {
        println!(
            "| {label} | {:.2} s | {:.2} | {cpu:.2} ms | {restarts} |",
            seconds(wall),
            seconds(wall) / floor_s
        );
    }
    println!(
        "plan/floor {:.2} (target ≤ 1.3); check/plan {:.1}× (target ≥ 10); ansible apply/midfleet apply {:.1}× (target ≥ 6); midfleet peak RSS {:.1} MiB (ansible's largest process: {:.1} MiB)",
        seconds(plan_wall) / floor_s,
        seconds(check_wall) / seconds(plan_wall),
        seconds(ansible_apply.wall) / seconds(midfleet_apply.wall),
        rss as f64 / 1024.0,
        checks
            .iter()
            .chain([&ansible_apply, &ansible_again])
            .map(|run| run.peak_kib)
            .max()
            .unwrap_or(0) as f64
            / 1024.0,
    );
}
