//! What the benchmarks share: settings, medians, CPU and memory readings,
//! MID start counts and the floor. Each bench uses part of it.
#![allow(dead_code)]

pub mod ansible;

use std::time::{Duration, Instant};

use midfleet::inventory::SshConfig;
use midfleet::transport::{KnownHostsPolicy, Transport, TransportOptions};
use midfleet_lab::Lab;
use rayon::prelude::*;

/// An integer from the environment, or `default`.
pub fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// user+sys CPU seconds so far of `who` (`RUSAGE_SELF`, or
/// `RUSAGE_CHILDREN` for finished children and their descendants).
pub fn cpu_seconds(who: libc::c_int) -> f64 {
    // SAFETY: getrusage fills a struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut usage);
        usage
    };
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Peak resident memory (KiB) of the largest child waited for so far.
pub fn children_max_rss_kib() -> i64 {
    // SAFETY: getrusage fills a struct we own.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage.ru_maxrss
    }
}

/// A lab of `hosts` hosts whose MIDs start in `start_ms`, timed.
pub fn start_lab(hosts: usize, start_ms: usize) -> Lab {
    let midsim = midfleet_lab::midsim();
    let mut spec = midfleet_lab::LabSpec::new(hosts, &midsim);
    spec.start_delay = Duration::from_millis(start_ms as u64);
    let started = Instant::now();
    let lab = Lab::start(&spec).unwrap_or_else(|error| panic!("lab: {error}"));
    eprintln!(
        "lab of {hosts} hosts up in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    lab
}

/// MID starts logged so far, over the lab.
pub fn starts(lab: &Lab) -> usize {
    lab.hosts
        .iter()
        .map(|host| host.agent_log().matches("MID Server started").count())
        .sum()
}

/// The floor: connect, authenticate and run one trivial exec (`true`) on
/// every lab host, `forks` at a time, with midfleet's own transport in this
/// process. Returns the wall time and this process's CPU seconds for it.
pub struct Floor {
    endpoints: Vec<midfleet::transport::Endpoint>,
    known_hosts: std::path::PathBuf,
    pool: rayon::ThreadPool,
}

impl Floor {
    /// The floor over the lab's inventory and known_hosts.
    pub fn new(lab: &Lab, forks: usize) -> Floor {
        Floor::over(&lab.inventory, &lab.known_hosts, forks)
    }

    /// The floor over another inventory of the same hosts (the lab's
    /// sshd ports, past its link).
    pub fn over(inventory: &std::path::Path, known_hosts: &std::path::Path, forks: usize) -> Floor {
        let inventory =
            midfleet::inventory::Inventory::load(std::slice::from_ref(&inventory.to_path_buf())).0;
        let templates = midfleet::template::Templates::new();
        let ssh_config = SshConfig::default();
        let endpoints = inventory
            .host_entries()
            .map(|entry| {
                let host = inventory
                    .resolve(&entry.name, &templates)
                    .expect("lab host resolves");
                ssh_config.endpoint(&host).expect("lab endpoint")
            })
            .collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(forks)
            .build()
            .expect("pool");
        Floor {
            endpoints,
            known_hosts: known_hosts.to_path_buf(),
            pool,
        }
    }

    pub fn round(&self, _lab: &Lab) -> (Duration, f64) {
        self.exec_round(|_| "true".to_string())
    }

    /// Connect, authenticate and run `command(host's inventory name)` on
    /// every host, `forks` at a time; each must exit 0. The wall time and
    /// this process's CPU seconds.
    pub fn exec_round(&self, command: impl Fn(&str) -> String + Sync) -> (Duration, f64) {
        let transport = Transport::new(TransportOptions {
            known_hosts: KnownHostsPolicy::new(Some(&self.known_hosts), false),
            operation_timeout: Duration::from_secs(300),
        });
        let started = Instant::now();
        let cpu = cpu_seconds(libc::RUSAGE_SELF);
        self.pool.install(|| {
            self.endpoints.par_iter().for_each(|endpoint| {
                let mut connection = transport.connect(endpoint).expect("floor connect");
                let output = connection
                    .exec(&command(&endpoint.label), b"")
                    .expect("floor exec");
                assert_eq!(output.status, 0, "{}: {output:?}", endpoint.label);
            })
        });
        (started.elapsed(), cpu_seconds(libc::RUSAGE_SELF) - cpu)
    }
}

/// One finished run of a command's whole process tree.
pub struct TreeRun {
    pub wall: Duration,
    /// user+sys of the process and every descendant it waited for.
    pub cpu_seconds: f64,
    /// Peak RSS of the tree's largest process.
    pub peak_kib: i64,
    pub stdout: String,
}

/// Runs `command` to its end (stdout and stderr to temporary files);
/// panics naming `label` unless it exits 0.
pub fn run_tree(command: &mut std::process::Command, label: &str) -> TreeRun {
    use std::io::{Read, Seek};
    let cpu = cpu_seconds(libc::RUSAGE_CHILDREN);
    let stdout = tempfile::tempfile().unwrap();
    let stderr = tempfile::tempfile().unwrap();
    let started = Instant::now();
    // Reaped by wait4 below, which Child::wait cannot replace.
    #[allow(clippy::zombie_processes)]
    let child = command
        .stdout(stdout.try_clone().unwrap())
        .stderr(stderr.try_clone().unwrap())
        .spawn()
        .unwrap_or_else(|error| panic!("{label}: {error}"));
    // wait4, not Child::wait: its rusage is this process tree's alone.
    // SAFETY: wait4 on our own child, into structs we own.
    let (status, peak_kib) = unsafe {
        let mut status = 0;
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::wait4(child.id() as i32, &mut status, 0, &mut usage);
        (status, usage.ru_maxrss)
    };
    let wall = started.elapsed();
    let read = |mut file: std::fs::File| {
        let mut text = String::new();
        file.seek(std::io::SeekFrom::Start(0)).unwrap();
        file.read_to_string(&mut text).unwrap();
        text
    };
    let output = read(stdout);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{label} failed ({status}): {output}{}",
        read(stderr)
    );
    TreeRun {
        wall,
        cpu_seconds: cpu_seconds(libc::RUSAGE_CHILDREN) - cpu,
        peak_kib,
        stdout: output,
    }
}
