//! `cargo bench --bench network`: midfleet and Ansible over a real
//! network's round trips — the lab's link (`midfleet_lab::link`: a
//! userspace TCP relay per host with latency, jitter and loss) — at
//! several link settings, in one run, on the same hosts:
//!
//! 1. the relay's own cost: the floor straight to each sshd against the
//!    floor through a 0 ms link, alternated;
//! 2. at each link setting: the floor (connect + auth + `true`) and
//!    `midfleet plan` alternated, `midfleet apply` of the rotation and the
//!    same apply again, and — where asked — `ansible-playbook --check
//!    --diff`, Ansible's rotation and its rerun;
//!
//! and `midfleet plan` of the same rotation with an `instance:` section
//! (`ensure_user`: every MID's user read on the instance, the instance
//! behind a link of the same setting),
//!
//! each with its wall time, its ratio to that setting's floor, and the
//! round trips it spent per host as the link counted them at the client's
//! end (connects, and each time the client sent after hearing from the
//! server: `docs/performance.md`). The apply is also set against its own
//! floor: its plan, then ⌈hosts/forks⌉ waves of MID restarts (a local
//! `mid.sh restart` to `MID Server started`, measured in the same run),
//! then half a round trip for the last report; and against that floor
//! measured: its plan, then every MID restarted over SSH and seen started
//! (`restart_command`), `forks` at a time, on the same links and with the
//! hosts' work on the same cores as the apply's, less the floor's own
//! connect + auth + exec (the apply restarts on its plan's session).
//! Each setting also prints what the targets leave on this machine's
//! cores: the CPU per host that plan within 1.15× of the floor leaves
//! the facts read, and that apply within 1.2× of its measured floor
//! leaves the transaction, against what each spent.
//!
//! Environment: `MIDFLEET_BENCH_HOSTS` (100), `MIDFLEET_BENCH_FORKS` (32),
//! `MIDFLEET_BENCH_ROUNDS` (floor/plan rounds, 3), `MIDFLEET_BENCH_START_MS`
//! (the MIDs' start, 200), `MIDFLEET_BENCH_LINKS` (the settings: round trip
//! in ms, optionally `/LOSS%`, comma-separated; `0,50,150,150/1%`),
//! `MIDFLEET_BENCH_ANSIBLE_AT` (the settings Ansible runs at: `all`,
//! `none`, or a comma-separated list of the same labels; `150`),
//! `MIDFLEET_BENCH_SEED` (the link's jitter and loss draws, 1).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::ansible::{ansible, ansible_command, control_masters_cpu, ANSIBLE_PLAYBOOK};
use common::{median, run_tree, setting, starts, Floor};
use midfleet_lab::link::{self, LinkSettings};
use midfleet_lab::{Lab, LabSpec};

const PASSWORD: &str = "bench-Password-1";

struct Setting {
    label: String,
    link: LinkSettings,
    ansible: bool,
}

/// `MIDFLEET_BENCH_LINKS` and `MIDFLEET_BENCH_ANSIBLE_AT`.
fn settings() -> Vec<Setting> {
    let links = std::env::var("MIDFLEET_BENCH_LINKS").unwrap_or_else(|_| "0,50,150,150/1%".into());
    let ansible_at = std::env::var("MIDFLEET_BENCH_ANSIBLE_AT").unwrap_or_else(|_| "150".into());
    links
        .split(',')
        .map(|label| {
            let label = label.trim().to_string();
            let (rtt, loss) = match label.split_once('/') {
                Some((rtt, loss)) => (rtt, format!("loss={loss}")),
                None => (label.as_str(), String::new()),
            };
            let link = LinkSettings::parse(&format!("rtt={rtt} {loss}"))
                .unwrap_or_else(|error| panic!("MIDFLEET_BENCH_LINKS: {label}: {error}"));
            let ansible = match ansible_at.as_str() {
                "all" => true,
                "none" => false,
                list => list.split(',').any(|wanted| wanted.trim() == label),
            };
            Setting {
                label,
                link,
                ansible,
            }
        })
        .collect()
}

/// How long a MID takes from `mid.sh restart` to its `MID Server
/// started` line, run on the host itself (no SSH): the median of 3.
fn restart_time(host: &midfleet_lab::LabHost) -> Duration {
    let started_lines = || host.agent_log().matches("MID Server started").count();
    let mut times = Vec::new();
    for _ in 0..3 {
        let before = started_lines();
        let started = std::time::Instant::now();
        assert!(
            host.mid("restart").expect("mid.sh restart"),
            "mid.sh restart failed"
        );
        while started_lines() == before {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the MID did not start again"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        times.push(started.elapsed());
    }
    median(times)
}

/// The command that restarts `name`'s MID and returns once its agent log
/// says `MID Server started` once more (looked at every 0.1 s, as
/// midfleet's health wait does at first): the least a rotation does on a
/// host after its plan.
fn restart_command(lab: &Lab, name: &str) -> String {
    let host = lab
        .hosts
        .iter()
        .find(|host| host.name == name)
        .expect("a lab host");
    format!(
        "cd '{}/agent' && before=$(grep -c 'MID Server started' logs/agent0.log.0) && \
         bin/mid.sh restart >/dev/null 2>&1 && \
         while [ \"$(grep -c 'MID Server started' logs/agent0.log.0)\" -le \"$before\" ]; do sleep 0.1; done",
        host.mid_home
    )
}

/// One measured run.
struct Measured {
    wall: Duration,
    cpu_ms_per_host: f64,
    /// Every process's CPU on this machine during the run (the client,
    /// the hosts' sshd sessions and scripts, the MIDs, the relay), per
    /// host: the lab's hosts share the client's cores.
    machine_ms_per_host: f64,
    restarts: usize,
    round_trips_per_host: f64,
}

/// CPU seconds this machine's processors spent busy so far (all
/// processes: `/proc/stat`'s first line, less idle, iowait and steal).
/// Anything else running on the machine counts too: take the figures on
/// an otherwise idle machine.
fn machine_busy() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|field| field.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy: f64 = ticks
        .iter()
        .enumerate()
        .filter(|(index, _)| ![3, 4].contains(index) && *index < 7)
        .map(|(_, value)| value)
        .sum();
    // SAFETY: sysconf has no preconditions.
    busy / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// The round trips the link counted for every host since the last
/// reset, per host (and resets the count).
fn round_trips(lab: &Lab) -> f64 {
    let stats = lab.reset_link_stats().expect("link stats");
    stats.values().map(|host| host.turns as f64).sum::<f64>() / lab.hosts.len() as f64
}

/// The lab's inventory and known_hosts, pointed at each host's sshd
/// port instead of its link.
fn direct_files(lab: &Lab) -> (PathBuf, PathBuf) {
    let mut inventory = std::fs::read_to_string(&lab.inventory).unwrap();
    let mut known_hosts = std::fs::read_to_string(&lab.known_hosts).unwrap();
    for host in &lab.hosts {
        let sshd = host.sshd_port.expect("a linked host");
        inventory = inventory.replace(
            &format!(
                "ansible_host: {}, ansible_port: {},",
                host.address, host.port
            ),
            &format!("ansible_host: {}, ansible_port: {sshd},", host.address),
        );
        known_hosts = known_hosts.replace(
            &format!("[{}]:{} ", host.address, host.port),
            &format!("[{}]:{sshd} ", host.address),
        );
    }
    let paths = (
        lab.directory.join("inventory-direct.yml"),
        lab.directory.join("known_hosts-direct"),
    );
    std::fs::write(&paths.0, inventory).unwrap();
    std::fs::write(&paths.1, known_hosts).unwrap();
    (paths.0, paths.1)
}

fn main() {
    let hosts = setting("MIDFLEET_BENCH_HOSTS", 100);
    let forks = setting("MIDFLEET_BENCH_FORKS", 32);
    let rounds = setting("MIDFLEET_BENCH_ROUNDS", 3).max(1);
    let start_ms = setting("MIDFLEET_BENCH_START_MS", 200);
    let seed = setting("MIDFLEET_BENCH_SEED", 1) as u64;
    let settings = settings();
    let bin = if settings.iter().any(|setting| setting.ansible) {
        Some(ansible())
    } else {
        None
    };
    let midsim = midfleet_lab::midsim();
    let mut spec = LabSpec::new(hosts, &midsim);
    spec.start_delay = Duration::from_millis(start_ms as u64);
    spec.link = Some(LinkSettings::default());
    spec.link_seed = seed;
    let started = std::time::Instant::now();
    let lab = Lab::start(&spec).unwrap_or_else(|error| panic!("lab: {error}"));
    eprintln!(
        "lab of {hosts} hosts behind their links up in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Each setting's rotation is a real one: new users for midfleet (mN)
    // and Ansible (aN) at setting N.
    for index in 0..settings.len() {
        for host in &lab.hosts {
            for tool in ["m", "a"] {
                lab.add_instance_user(
                    &format!("{tool}{index}_{}", host.name.replace('-', "")),
                    PASSWORD,
                )
                .unwrap();
            }
        }
    }
    // The instance, behind a link of its own (a relay in this process).
    let instance = midfleet_lab::kinds::KindsInstance::start(&midfleet_lab::instancesim())
        .unwrap_or_else(|error| panic!("instance: {error}"));
    let instance_links = lab.directory.join("instance-links");
    std::fs::create_dir_all(&instance_links).unwrap();
    link::write_settings(&instance_links, "instance", &LinkSettings::default()).unwrap();
    let instance_target: std::net::SocketAddr = instance
        .url
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .parse()
        .expect("the instance's address");
    let instance_listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    {
        let links = instance_links.clone();
        let route = link::Route {
            host: "instance".into(),
            listen: instance_listen,
            target: instance_target,
        };
        std::thread::spawn(move || link::serve(&links, vec![route], seed));
    }
    while !instance_links.join("control.sock").exists() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let admin_password = lab.directory.join("admin-password");
    std::fs::write(&admin_password, midfleet_lab::kinds::ADMIN_PASSWORD).unwrap();
    let control_dir = lab.directory.join("cp");
    std::fs::create_dir_all(&control_dir).unwrap();
    let ansible_playbook = lab.directory.join("rotate-ansible.yml");
    std::fs::write(&ansible_playbook, ANSIBLE_PLAYBOOK).unwrap();

    let measure = |command: &mut Command, label: &str| -> Measured {
        round_trips(&lab);
        let before = starts(&lab);
        let busy = machine_busy();
        let run = run_tree(
            command
                .env("BENCH_PASSWORD", PASSWORD)
                .env("HOME", &lab.directory),
            label,
        );
        let machine_ms_per_host = (machine_busy() - busy) * 1000.0 / hosts as f64;
        let round_trips_per_host = round_trips(&lab);
        let masters = control_masters_cpu(&control_dir);
        // Let restarts the run triggered finish logging before counting.
        std::thread::sleep(Duration::from_millis(start_ms as u64 + 500));
        Measured {
            wall: run.wall,
            cpu_ms_per_host: (run.cpu_seconds + masters) * 1000.0 / hosts as f64,
            machine_ms_per_host,
            restarts: starts(&lab) - before,
            round_trips_per_host,
        }
    };
    let midfleet_command = |verb: &str, playbook: &Path| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_midfleet"));
        command
            .arg(verb)
            .arg("-i")
            .arg(&lab.inventory)
            .arg(playbook)
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

    // 1: the relay's own cost, at 0 ms.
    let (direct_inventory, direct_known_hosts) = direct_files(&lab);
    let direct = Floor::over(&direct_inventory, &direct_known_hosts, forks);
    let relayed = Floor::new(&lab, forks);
    direct.round(&lab);
    relayed.round(&lab);
    let (mut direct_walls, mut relayed_walls) = (Vec::new(), Vec::new());
    for _ in 0..rounds.max(3) {
        direct_walls.push(direct.round(&lab).0);
        relayed_walls.push(relayed.round(&lab).0);
    }
    let (direct_wall, relayed_wall) = (median(direct_walls), median(relayed_walls));
    let restart = restart_time(&lab.hosts[0]);
    let waves = hosts.div_ceil(forks);

    // 2: each setting.
    let seconds = |duration: Duration| duration.as_secs_f64();
    let mut table = Vec::new();
    let mut summary = Vec::new();
    for (index, setting) in settings.iter().enumerate() {
        eprintln!("link {}: {}", setting.label, setting.link.to_line().trim());
        lab.set_links(setting.link).unwrap();
        link::write_settings(&instance_links, "instance", &setting.link).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let playbook = lab.directory.join(format!("rotate-{index}.yml"));
        std::fs::write(
            &playbook,
            format!(
                "hosts: lab\nset:\n  mid.instance.username: \"m{index}_{{{{ mid_name }}}}\"\n  \
                 mid.instance.password: {{ secret: \"env:BENCH_PASSWORD\" }}\nhealth:\n  timeout: 300\n\
                 rollout:\n  serial: [100%]\n"
            ),
        )
        .unwrap();
        let with_instance = lab.directory.join(format!("rotate-{index}-instance.yml"));
        std::fs::write(
            &with_instance,
            format!(
                "{}instance:\n  url: https://{instance_listen}\n  ca_file: {}\n  user: admin\n  \
                 password: {{ secret: \"file:{}\" }}\n  ensure_user: true\n",
                std::fs::read_to_string(&playbook).unwrap(),
                instance.pki.ca_file.display(),
                admin_password.display()
            ),
        )
        .unwrap();
        relayed.round(&lab);
        let (mut floors, mut floor_trips, mut plans) = (Vec::new(), Vec::new(), Vec::new());
        let mut floor_busy = Vec::new();
        for round in 0..rounds {
            eprintln!("  round {}/{rounds}: floor, midfleet plan", round + 1);
            round_trips(&lab);
            let busy = machine_busy();
            floors.push(relayed.round(&lab).0);
            floor_busy.push((machine_busy() - busy) * 1000.0 / hosts as f64);
            floor_trips.push(round_trips(&lab));
            plans.push(measure(
                &mut midfleet_command("plan", &playbook),
                "midfleet plan",
            ));
        }
        let floor = seconds(median(floors));
        let middle = |mut values: Vec<f64>| {
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        let floor_trips = middle(floor_trips);
        let floor_busy = middle(floor_busy);
        let plan_wall = seconds(median(plans.iter().map(|run| run.wall).collect()));
        let plan = Measured {
            wall: Duration::from_secs_f64(plan_wall),
            cpu_ms_per_host: middle(plans.iter().map(|run| run.cpu_ms_per_host).collect()),
            machine_ms_per_host: middle(plans.iter().map(|run| run.machine_ms_per_host).collect()),
            restarts: 0,
            round_trips_per_host: middle(
                plans.iter().map(|run| run.round_trips_per_host).collect(),
            ),
        };
        eprintln!("  midfleet plan with the instance");
        link::control(&instance_links, "reset").unwrap();
        let planned = measure(
            &mut midfleet_command("plan", &with_instance),
            "midfleet plan (instance)",
        );
        let instance_trips = link::control(&instance_links, "reset").unwrap()["instance"].turns;
        // The apply's floor, measured: what any tool's rotation must do
        // after its plan — restart every MID and see it started — over
        // SSH, forks at a time, on these links, with the hosts' share of
        // the machine's cores for it as the apply has.
        eprintln!("  floor: restart every MID over SSH");
        let busy = machine_busy();
        let restart_round = seconds(relayed.exec_round(|name| restart_command(&lab, name)).0);
        let restart_busy = (machine_busy() - busy) * 1000.0 / hosts as f64;
        eprintln!("  midfleet apply, and again");
        let apply = measure(&mut midfleet_command("apply", &playbook), "midfleet apply");
        let again = measure(
            &mut midfleet_command("apply", &playbook),
            "midfleet apply again",
        );
        // The apply's floor: its own plan (one read of every host), then
        // each wave of forks restarting its MIDs at once, the last
        // report half a round trip away.
        let apply_floor =
            plan_wall + waves as f64 * seconds(restart) + seconds(setting.link.rtt) / 2.0;
        summary.push(format!(
            "at {}: apply {:.2} s against its floor {apply_floor:.2} s (plan {plan_wall:.2} s + {waves} × restart {:.2} s + ½ round trip): {:.2}×; the machine's CPU per host: apply {:.1} ms, plan {:.1} ms",
            setting.label,
            seconds(apply.wall),
            seconds(restart),
            seconds(apply.wall) / apply_floor,
            apply.machine_ms_per_host,
            plan.machine_ms_per_host
        ));
        // The restart round opens a session per host, which the apply
        // does not (it restarts on the plan's session): its work past
        // the floor's connect + auth + exec is what the floor adds.
        let restart_work = (restart_round - floor).max(0.0);
        let measured_floor = plan_wall + restart_work + seconds(setting.link.rtt) / 2.0;
        summary.push(format!(
            "at {}: apply {:.2} s against its floor measured {measured_floor:.2} s (plan {plan_wall:.2} s + every MID restarted over SSH, {forks} at a time, {restart_round:.2} s less the floor's {floor:.2} s for its sessions + ½ round trip): {:.2}×; the machine's CPU per host: restarts {restart_busy:.1} ms",
            setting.label,
            seconds(apply.wall),
            seconds(apply.wall) / measured_floor,
        ));
        // What apply within 1.2× of that floor would leave the
        // transaction itself on this machine: every core's time after
        // the plan, less what the restarts cost it past the floor's
        // sessions (the apply restarts on the plan's session). Against
        // it, what the transaction spent: the apply's CPU less the
        // plan's and the restarts'.
        let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get()) as f64;
        let after_plan = 1.2 * measured_floor - plan_wall;
        let restart_own = (restart_busy - floor_busy).max(0.0);
        let budget = after_plan * cores * 1000.0 / hosts as f64 - restart_own;
        let spent = apply.machine_ms_per_host - plan.machine_ms_per_host - restart_own;
        summary.push(format!(
            "at {}: apply within 1.2× of its floor measured ends {after_plan:.2} s after its plan: {cores} cores' time then, less the restarts' own {restart_own:.1} ms (restarts {restart_busy:.1} less floor {floor_busy:.1} ms), leaves {budget:.1} ms of CPU per host for the transaction, were every core free for it throughout; it spent {spent:.1} ms (apply {:.1} less plan {:.1} and the restarts' own)",
            setting.label,
            apply.machine_ms_per_host,
            plan.machine_ms_per_host,
        ));
        summary.push(format!(
            "at {}: plan with the instance {:.2} s ({:.2}× plan without), {instance_trips} round trips to the instance for {hosts} users",
            setting.label,
            seconds(planned.wall),
            seconds(planned.wall) / plan_wall
        ));
        let apply_wall = seconds(apply.wall);
        let mut rows = vec![
            ("`midfleet plan`", plan),
            ("`midfleet plan` with `instance:` (ensure_user)", planned),
            ("`midfleet apply` (rotation)", apply),
            ("`midfleet apply` again", again),
        ];
        if let Some(bin) = bin.as_ref().filter(|_| setting.ansible) {
            let prefix = format!("a{index}");
            let ansible_run = |check: bool, label: &str| {
                eprintln!("  {label}");
                measure(
                    &mut ansible_command(
                        bin,
                        &lab,
                        &ansible_playbook,
                        &control_dir,
                        forks,
                        check,
                        &prefix,
                    ),
                    label,
                )
            };
            let check = ansible_run(true, "ansible-playbook --check --diff");
            let rotation = ansible_run(false, "ansible-playbook (rotation)");
            let rerun = ansible_run(false, "ansible-playbook again");
            summary.push(format!(
                "at {}: --check/plan {:.1}×, Ansible's rotation/midfleet's {:.1}×",
                setting.label,
                seconds(check.wall) / plan_wall,
                seconds(rotation.wall) / apply_wall
            ));
            rows.push(("`ansible-playbook --check --diff`", check));
            rows.push(("`ansible-playbook` (rotation)", rotation));
            rows.push(("`ansible-playbook` again", rerun));
        }
        // Where plan's time over the floor went: on this machine the
        // hosts' work takes the client's cores.
        summary.push(format!(
            "at {}: plan/floor {:.2}; the machine's CPU per host: floor {floor_busy:.1} ms, plan {:.1} ms (busy {:.0}% and {:.0}% of {cores} cores; the {:.1} ms more would be {:.2} s of wall on saturated cores; plan within 1.15× the floor would leave the facts read {:.1} ms of CPU per host past the floor's, were every core free for it throughout)",
            setting.label,
            plan_wall / floor,
            rows[0].1.machine_ms_per_host,
            floor_busy * hosts as f64 / 1000.0 / floor / cores * 100.0,
            rows[0].1.machine_ms_per_host * hosts as f64 / 1000.0 / plan_wall / cores * 100.0,
            rows[0].1.machine_ms_per_host - floor_busy,
            (rows[0].1.machine_ms_per_host - floor_busy) * hosts as f64 / 1000.0 / cores,
            1.15 * floor * cores * 1000.0 / hosts as f64 - floor_busy
        ));
        table.push(format!(
            "| {} | floor: connect + auth + `true` | {floor:.2} s | 1.00 | {floor_trips:.1} | — | {floor_busy:.1} ms | 0 |",
            setting.label
        ));
        for (label, run) in rows {
            // Also as each setting ends: a run that fails later keeps them.
            eprintln!(
                "  {label}: {:.2} s, {:.1} round trips per host, {} MID restarts",
                seconds(run.wall),
                run.round_trips_per_host,
                run.restarts
            );
            table.push(format!(
                "| {} | {label} | {:.2} s | {:.2} | {:.1} | {:.2} ms | {:.1} ms | {} |",
                setting.label,
                seconds(run.wall),
                seconds(run.wall) / floor,
                run.round_trips_per_host,
                run.cpu_ms_per_host,
                run.machine_ms_per_host,
                run.restarts
            ));
        }
    }

    println!(
        "hosts {hosts}, forks {forks}, MID start {start_ms} ms, {rounds} rounds of floor/plan (medians), link seed {seed}"
    );
    println!(
        "the relay at 0 ms: floor {:.2} s through it, {:.2} s straight to sshd: {:.3}×",
        seconds(relayed_wall),
        seconds(direct_wall),
        seconds(relayed_wall) / seconds(direct_wall)
    );
    println!("| link (ms round trip) | run | wall | × floor | round trips per host | client CPU per host | machine CPU per host | MID restarts |");
    println!("|---|---|---|---|---|---|---|---|");
    for row in table {
        println!("{row}");
    }
    for line in summary {
        println!("{line}");
    }
}
