//! `cargo bench --bench scale`: `midfleet facts` and `midfleet plan` on a
//! lab of 1,000 hosts (root: each host its own sshd and MID), on a quarter,
//! a half and all of it (`--shard`), at 256 forks and at 64: wall time,
//! wall time per host per fork (constant when time grows linearly with
//! hosts/forks), client CPU per host and peak RSS. Also runs the largest
//! plan with the open-files soft limit lowered to 256, to show midfleet
//! raising it for 256 forks.
//!
//! Environment: `MIDFLEET_BENCH_HOSTS` (default 1000),
//! `MIDFLEET_BENCH_FORKS` (default `256,64`).

mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;

use common::{run_tree, setting, start_lab};

const PASSWORD: &str = "bench-Password-1";

fn main() {
    let hosts = setting("MIDFLEET_BENCH_HOSTS", 1000);
    let forks_list: Vec<usize> = std::env::var("MIDFLEET_BENCH_FORKS")
        .unwrap_or_else(|_| "256,64".into())
        .split(',')
        .filter_map(|forks| forks.trim().parse().ok())
        .collect();
    let lab = start_lab(hosts, 200);
    for host in &lab.hosts {
        lab.add_instance_user(&format!("svc_{}", host.name.replace('-', "")), PASSWORD)
            .unwrap();
    }
    let playbook = lab.directory.join("rotate.yml");
    std::fs::write(
        &playbook,
        "hosts: lab\nset:\n  mid.instance.username: \"svc_{{ mid_name }}\"\n  mid.instance.password: { secret: \"env:BENCH_PASSWORD\" }\n",
    )
    .unwrap();
    // The lab's inventory gives hosts 3 s to connect; 256 handshakes at
    // once on a machine that also runs the 1,000 servers need longer.
    let inventory = lab.directory.join("scale-inventory.yml");
    std::fs::write(
        &inventory,
        lab.inventory_text(&midfleet_lab::login_user(), false)
            .replace("connect_timeout: 3\n", "connect_timeout: 300\n"),
    )
    .unwrap();
    let command = |verb: &str, forks: usize, parts: usize, soft_files: Option<u64>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_midfleet"));
        command.arg(verb).arg("-i").arg(&inventory);
        if verb == "plan" {
            command.arg(&playbook);
        }
        command
            .arg("--known-hosts")
            .arg(&lab.known_hosts)
            .args(["--forks", &forks.to_string(), "--output", "json"])
            // The lab's 1,000 sshd and MID processes share this machine's
            // cores with the client: a session can wait minutes for CPU.
            .args(["--ssh-timeout", "600"])
            .args(["--shard", &format!("1/{parts}")])
            .env("BENCH_PASSWORD", PASSWORD)
            .env("HOME", &lab.directory);
        if let Some(soft) = soft_files {
            // SAFETY: setrlimit in the child between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    let mut limit: libc::rlimit = std::mem::zeroed();
                    libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
                    limit.rlim_cur = soft;
                    libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
                    Ok(())
                });
            }
        }
        command
    };
    // How many hosts a `--shard 1/parts` run reads: from facts' JSON.
    let count = |stdout: &str| -> usize {
        let value: serde_json::Value = serde_json::from_str(stdout).unwrap_or_default();
        value
            .as_array()
            .or_else(|| value["hosts"].as_array())
            .map_or(0, Vec::len)
    };
    println!("lab of {hosts} hosts; MIDs start in 200 ms");
    println!("| command | hosts | forks | wall | wall per host | wall / (hosts/forks) | client CPU per host | peak RSS |");
    println!("|---|---|---|---|---|---|---|---|");
    for &forks in &forks_list {
        for parts in [4, 2, 1] {
            for verb in ["facts", "plan"] {
                let run = run_tree(&mut command(verb, forks, parts, None), verb);
                let selected = count(&run.stdout).max(1);
                let wall = run.wall.as_secs_f64();
                println!(
                    "| `{verb}` | {selected} | {forks} | {wall:.2} s | {:.1} ms | {:.3} s | {:.2} ms | {:.1} MiB |",
                    wall * 1000.0 / selected as f64,
                    wall / (selected as f64 / forks as f64),
                    run.cpu_seconds * 1000.0 / selected as f64,
                    run.peak_kib as f64 / 1024.0
                );
            }
        }
    }
    let forks = forks_list.iter().copied().max().unwrap_or(256);
    let run = run_tree(
        &mut command("plan", forks, 1, Some(256)),
        "plan, soft limit 256",
    );
    println!(
        "plan of {} hosts at {forks} forks with the open-files soft limit at 256 (midfleet raises it): {:.2} s, {:.1} MiB",
        count(&run.stdout),
        run.wall.as_secs_f64(),
        run.peak_kib as f64 / 1024.0
    );
}
