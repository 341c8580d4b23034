//! The seeded chaos run (issue 20, item 5): rounds of the user rotation on
//! a lab whose hosts sit behind the lab's link ([`crate::link`]), each
//! round with faults drawn from a seeded generator and landed at random
//! moments while `midfleet apply --yes` runs; after each round the
//! invariants are checked, and a clean run must converge.
//!
//! `cargo bench --bench chaos` runs it (`benches/chaos.rs`), and
//! `tests/integration/chaos.rs` runs three rounds of seed 1 in the suite:
//! both call [`run`]. A round's faults depend only on the seed and the
//! round's number ([`draw_faults`]), so a violation replays from the
//! command it prints.
//!
//! The faults ([`FaultKind`]): a cut of a host's link (every live
//! connection reset), a latency spike (500 ms round trip for a while),
//! a loss burst (30 % of chunks stall one RTO for a while), the link down
//! for a few seconds, SIGKILL or SIGTERM of midfleet, a MID that dies at
//! start (the `die_at_start` knob), a MID whose stop hangs (`stop_hangs`),
//! a full disk (the first host's own small tmpfs, filled to its last
//! byte), a host key change (the next clean run is given the new key,
//! as an operator would), and, for a lab with an instance, the instance
//! answering 503 or holding every request for a while.
//!
//! The invariants, after midfleet ended (or was killed) and every
//! transaction it left on a host ended by itself, with the faults cleared:
//!
//! 1. every host's config.xml parses (midfleet's own parser) and is the
//!    file from before the round, or the rotated one: the round's user,
//!    its password in plaintext or the MID's `encrypted:` form (which the
//!    MID writes only after the instance accepted it), every other
//!    parameter as before (`keypairs.mid_id` aside: it is reset);
//! 2. the round's password in plaintext nowhere under a host's mid_home
//!    but config.xml (`.midfleet/` runs and backups included), nor in
//!    midfleet's stdout, stderr or audit log;
//! 3. every MID runs, and its last start logged in as the user its
//!    config.xml names, one the instance holds active and unlocked — or
//!    midfleet (or, when it was killed, the transaction's own result)
//!    reported the host failed, rolled back or unreachable;
//! 4. a clean apply of the same playbook then exits 0 and a `plan
//!    --output json` after it shows no host with a change.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use midfleet::config_xml::{names, ConfigXml};

use crate::kinds::{KindsInstance, ADMIN_PASSWORD};
use crate::link::{sleep_until, LinkSettings};
pub use crate::rng::Rng;
use crate::{Lab, LabError, LabSpec};

/// The host whose disk can fill: the one [`LabSpec::small_disk_kib`] gives
/// a tmpfs of its own.
pub const DISK_HOST: &str = "lab-001";
/// The round trip of a latency spike.
pub const SPIKE_RTT: Duration = Duration::from_millis(500);
/// The share of chunks a loss burst stalls.
pub const BURST_LOSS: f64 = 0.3;
/// How long midfleet may take, faults and all, before the round counts
/// it as hung (a violation) and kills it: a hung stop costs the
/// transaction's 60 s stop timeout, and a rollback after it the health
/// timeout again.
const MIDFLEET_LIMIT: Duration = Duration::from_secs(300);
/// How long a transaction left on a host may take to end by itself.
const TRANSACTION_LIMIT: Duration = Duration::from_secs(300);
/// The chaos playbook's `instance.timeout` (seconds per request): an
/// instance hang drawn up to three times it outlasts a call's retries.
pub const INSTANCE_TIMEOUT: u64 = 2;

/// What a fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Every live connection to the host reset (`Lab::cut_link`).
    Cut,
    /// The host's link at [`SPIKE_RTT`] for `millis`, then back.
    Latency { millis: u64 },
    /// [`BURST_LOSS`] on the host's link for `millis`, then back.
    Loss { millis: u64 },
    /// The host's link down (data held) for `millis`, then up.
    Down { millis: u64 },
    /// SIGKILL to midfleet.
    KillMidfleet,
    /// SIGTERM to midfleet.
    TermMidfleet,
    /// The MID dies at each start (knob `die_at_start`) until the round
    /// ends.
    DiesAtStart,
    /// The MID ignores SIGTERM (knob `stop_hangs`) until the round ends.
    StopHangs,
    /// [`DISK_HOST`]'s disk full to its last byte until the round ends.
    DiskFull,
    /// The host's sshd key replaced.
    HostKey,
    /// The instance answers every request 503 (`Retry-After: 1`) for
    /// `millis`.
    InstanceUnavailable { millis: u64 },
    /// The instance holds every request unanswered for `millis`, then
    /// carries each out (answering clients that may have given up: the
    /// playbook's `instance.timeout` is [`INSTANCE_TIMEOUT`] s).
    InstanceHang { millis: u64 },
}

impl FaultKind {
    /// The name in counts and fault lists.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Cut => "link cut",
            FaultKind::Latency { .. } => "latency spike",
            FaultKind::Loss { .. } => "loss burst",
            FaultKind::Down { .. } => "link down",
            FaultKind::KillMidfleet => "SIGKILL midfleet",
            FaultKind::TermMidfleet => "SIGTERM midfleet",
            FaultKind::DiesAtStart => "MID dies at start",
            FaultKind::StopHangs => "MID stop hangs",
            FaultKind::DiskFull => "disk full",
            FaultKind::HostKey => "host key change",
            FaultKind::InstanceUnavailable { .. } => "instance 503s",
            FaultKind::InstanceHang { .. } => "instance hangs",
        }
    }

    /// How long it lasts before it is undone, for the link faults.
    fn lasts(self) -> Option<u64> {
        match self {
            FaultKind::Latency { millis }
            | FaultKind::Loss { millis }
            | FaultKind::Down { millis }
            | FaultKind::InstanceUnavailable { millis }
            | FaultKind::InstanceHang { millis } => Some(millis),
            _ => None,
        }
    }
}

/// One fault of a round: what, where, when (ms after midfleet started).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    /// `None` for a signal to midfleet.
    pub host: Option<String>,
    pub at_ms: u64,
}

impl fmt::Display for Fault {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{:>5} ms  {}", self.at_ms, self.kind.name())?;
        if let Some(host) = &self.host {
            write!(formatter, " of {host}")?;
        }
        if self.kind == FaultKind::TermMidfleet {
            write!(formatter, " (after the first host's transaction began)")?;
        }
        if let Some(millis) = self.kind.lasts() {
            write!(formatter, " for {millis} ms")?;
        }
        Ok(())
    }
}

/// The fault kinds with their weights: link faults most often, the rest
/// now and then (a hung stop costs a minute of the transaction's stop
/// timeout). The instance's (10, 11) last, drawn only for a lab with an
/// instance: without one, a seed draws what it drew before they existed.
const WEIGHTS: [(u8, u64); 12] = [
    (0, 4),  // cut
    (1, 3),  // latency
    (2, 3),  // loss
    (3, 3),  // down
    (4, 1),  // SIGKILL
    (5, 1),  // SIGTERM
    (6, 2),  // dies at start
    (7, 1),  // stop hangs
    (8, 1),  // disk full
    (9, 1),  // host key
    (10, 2), // instance 503s
    (11, 2), // instance hangs
];

/// Round `round`'s faults for a run of `seed` on `hosts`, at moments in
/// `0..window_ms` (a SIGTERM's counted from the first host's transaction),
/// in time order: one to four, at most one signal to midfleet, one full
/// disk, one host key change and one instance fault. `disk` says whether
/// [`DISK_HOST`] has a disk of its own to fill, `instance` whether the lab
/// has an instance (`midfleet-instancesim`) to fail.
pub fn draw_faults(
    seed: u64,
    round: usize,
    hosts: &[String],
    window_ms: u64,
    disk: bool,
    instance: bool,
) -> Vec<Fault> {
    let mut rng = Rng::for_round(seed, round);
    let count = rng.range(1, 5);
    let weights: Vec<(u8, u64)> = WEIGHTS
        .into_iter()
        .filter(|(kind, _)| instance || *kind < 10)
        .collect();
    let total: u64 = weights.iter().map(|(_, weight)| weight).sum();
    let mut faults = Vec::new();
    let (mut signalled, mut filled, mut rekeyed, mut instance_failed) =
        (false, false, false, false);
    while (faults.len() as u64) < count {
        let mut pick = rng.range(0, total);
        let mut which = 0;
        for &(kind, weight) in &weights {
            if pick < weight {
                which = kind;
                break;
            }
            pick -= weight;
        }
        let host = hosts[rng.range(0, hosts.len() as u64) as usize].clone();
        let at_ms = rng.range(0, window_ms);
        let (kind, host) = match which {
            0 => (FaultKind::Cut, Some(host)),
            1 => (
                FaultKind::Latency {
                    millis: rng.range(500, 3000),
                },
                Some(host),
            ),
            2 => (
                FaultKind::Loss {
                    millis: rng.range(500, 3000),
                },
                Some(host),
            ),
            3 => (
                FaultKind::Down {
                    millis: rng.range(1000, 5000),
                },
                Some(host),
            ),
            4 | 5 if signalled => continue,
            4 | 5 => {
                signalled = true;
                let kind = if which == 4 {
                    FaultKind::KillMidfleet
                } else {
                    FaultKind::TermMidfleet
                };
                (kind, None)
            }
            6 => (FaultKind::DiesAtStart, Some(host)),
            7 => (FaultKind::StopHangs, Some(host)),
            8 if filled || !disk => continue,
            8 => {
                filled = true;
                (FaultKind::DiskFull, Some(DISK_HOST.to_string()))
            }
            10 | 11 if instance_failed => continue,
            10 => {
                instance_failed = true;
                (
                    FaultKind::InstanceUnavailable {
                        millis: rng.range(500, 5000),
                    },
                    None,
                )
            }
            11 => {
                instance_failed = true;
                (
                    FaultKind::InstanceHang {
                        millis: rng.range(1000, 3 * INSTANCE_TIMEOUT * 1000),
                    },
                    None,
                )
            }
            _ if rekeyed => continue,
            _ => {
                rekeyed = true;
                (FaultKind::HostKey, Some(host))
            }
        };
        faults.push(Fault { kind, host, at_ms });
    }
    faults.sort_by_key(|fault| fault.at_ms);
    faults
}

/// A chaos run's parameters.
#[derive(Clone, Debug)]
pub struct Settings {
    pub seed: u64,
    /// The first round run (1-based): a later one replays that round's
    /// faults on a fresh lab.
    pub first_round: usize,
    /// The last round run.
    pub rounds: usize,
    pub hosts: usize,
    pub forks: usize,
    /// The `midfleet` binary.
    pub midfleet: PathBuf,
    /// The `midfleet-midsim` binary.
    pub midsim: PathBuf,
    /// The MIDs' start time.
    pub start_delay: Duration,
    /// Faults land in the first this many ms of midfleet's run.
    pub window_ms: u64,
    /// Give [`DISK_HOST`] a small disk of its own (root only), so the
    /// full-disk fault can be drawn.
    pub small_disk: bool,
    /// The MIDs log in to an emulated instance (`midfleet-instancesim`,
    /// HTTPS) and the playbook has an `instance:` section (`ensure_user`:
    /// midfleet creates each round's users there), so the instance's
    /// faults can be drawn. Without it the MIDs log in against the lab's
    /// credential store, and the round adds its users there.
    pub instance: bool,
    /// The `midfleet-instancesim` binary.
    pub instancesim: PathBuf,
}

impl Settings {
    /// The defaults of `cargo bench --bench chaos`.
    pub fn new(midfleet: &Path, midsim: &Path) -> Settings {
        Settings {
            seed: 1,
            first_round: 1,
            rounds: 20,
            hosts: 20,
            forks: 8,
            midfleet: midfleet.to_path_buf(),
            midsim: midsim.to_path_buf(),
            start_delay: Duration::from_millis(500),
            window_ms: 4000,
            // SAFETY: geteuid has no preconditions.
            small_disk: unsafe { libc::geteuid() } == 0,
            instance: true,
            instancesim: crate::instancesim(),
        }
    }

    /// The command that replays `round` of this run: alone on a fresh
    /// lab, and the whole run up to it.
    pub fn replay(&self, round: usize) -> String {
        let common = format!(
            "MIDFLEET_CHAOS_SEED={} MIDFLEET_CHAOS_HOSTS={} MIDFLEET_CHAOS_FORKS={} MIDFLEET_CHAOS_INSTANCE={}",
            self.seed,
            self.hosts,
            self.forks,
            u8::from(self.instance)
        );
        format!(
            "{common} MIDFLEET_CHAOS_FIRST_ROUND={round} MIDFLEET_CHAOS_ROUNDS={round} cargo bench --bench chaos\n  \
             (the run up to it: {common} MIDFLEET_CHAOS_FIRST_ROUND={} MIDFLEET_CHAOS_ROUNDS={round} cargo bench --bench chaos)",
            self.first_round
        )
    }
}

/// One broken invariant.
#[derive(Clone, Debug)]
pub struct Violation {
    pub round: usize,
    pub what: String,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Summary {
    pub rounds: usize,
    /// Faults landed, by kind (drawn ones midfleet ended before are not
    /// counted).
    pub landed: BTreeMap<&'static str, usize>,
    /// Faults drawn but not landed: midfleet had ended before their time.
    pub not_reached: usize,
    /// Hosts' results over all rounds (midfleet's report, or a killed
    /// run's transaction result), by word.
    pub results: BTreeMap<String, usize>,
    pub violations: Vec<Violation>,
    pub seconds: f64,
}

/// Runs the chaos rounds on a lab it starts; prints each round's faults
/// and every violation (with the command that replays it); stops after
/// the first round with a violation.
pub fn run(settings: &Settings) -> Result<Summary, LabError> {
    let started = Instant::now();
    let instance = if settings.instance {
        Some(KindsInstance::start(&settings.instancesim)?)
    } else {
        None
    };
    let mut spec = LabSpec::new(settings.hosts, &settings.midsim);
    if let Some(instance) = &instance {
        spec.instance_url = Some(instance.url.clone());
        spec.instance_ca = Some(instance.pki.ca_file.clone());
        spec.instance_admin_password = Some(ADMIN_PASSWORD.into());
    }
    spec.start_delay = settings.start_delay;
    spec.link = Some(LinkSettings::default());
    spec.link_seed = settings.seed;
    if settings.small_disk {
        spec.small_disk_kib = Some(16 * 1024);
    }
    let mut lab = Lab::start(&spec)?;
    let home = lab.directory.join("home");
    fs::create_dir_all(&home).map_err(|error| LabError(error.to_string()))?;
    println!(
        "chaos: seed {}, rounds {}..={}, {} hosts behind their links, forks {}, MID start {} ms, {}, lab {}",
        settings.seed,
        settings.first_round,
        settings.rounds,
        settings.hosts,
        settings.forks,
        settings.start_delay.as_millis(),
        match &instance {
            Some(instance) => format!("instance {}", instance.url),
            None => "no instance (the lab's credential store)".into(),
        },
        lab.directory.display()
    );
    let mut summary = Summary::default();
    for round in settings.first_round..=settings.rounds {
        let violations =
            Round::new(&mut lab, instance.as_ref(), settings, round)?.run(&mut summary)?;
        summary.rounds += 1;
        if !violations.is_empty() {
            for violation in &violations {
                println!(
                    "VIOLATION seed {} round {}: {}",
                    settings.seed, violation.round, violation.what
                );
            }
            println!("replay: {}", settings.replay(round));
            summary.violations = violations;
            break;
        }
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// The links' state a round's faults set on one host: how many latency
/// spikes, loss bursts and downs are active.
#[derive(Default, Clone, Copy)]
struct Active {
    latency: u32,
    loss: u32,
    down: u32,
}

impl Active {
    fn settings(self, cuts: u64) -> LinkSettings {
        LinkSettings {
            rtt: if self.latency > 0 {
                SPIKE_RTT
            } else {
                Duration::ZERO
            },
            loss: if self.loss > 0 { BURST_LOSS } else { 0.0 },
            down: self.down > 0,
            cuts,
            ..LinkSettings::default()
        }
    }
}

/// One round.
struct Round<'a> {
    lab: &'a mut Lab,
    instance: Option<&'a KindsInstance>,
    settings: &'a Settings,
    number: usize,
    user_prefix: String,
    password: String,
    playbook: PathBuf,
    faults: Vec<Fault>,
    /// config.xml of each host before the round.
    before: Vec<Vec<u8>>,
    /// The run folders each host had before the round.
    runs_before: Vec<HashSet<String>>,
    violations: Vec<Violation>,
    /// Everything midfleet printed in the round (chaos and clean runs).
    outputs: Vec<(String, String)>,
    /// The chaos apply's message for each host it reported on.
    messages: HashMap<String, String>,
    /// How many of `outputs` were searched for the password already.
    outputs_checked: usize,
    filler: Option<PathBuf>,
    /// How long the chaos apply ran.
    apply_seconds: f64,
}

impl<'a> Round<'a> {
    fn new(
        lab: &'a mut Lab,
        instance: Option<&'a KindsInstance>,
        settings: &'a Settings,
        number: usize,
    ) -> Result<Round<'a>, LabError> {
        let names: Vec<String> = lab.hosts.iter().map(|host| host.name.clone()).collect();
        let faults = draw_faults(
            settings.seed,
            number,
            &names,
            settings.window_ms,
            settings.small_disk,
            instance.is_some(),
        );
        // The password: the seed's, the round's, and a draw (a different
        // stream than the faults').
        let mut rng = Rng::for_round(settings.seed ^ 0x5EED, number);
        let password = format!(
            "Chaos-{}-{number}-{:08x}",
            settings.seed,
            rng.next_u64() as u32
        );
        let user_prefix = format!("c{number}_");
        let mut text = format!(
            "hosts: lab\nset:\n  mid.instance.username: \"{user_prefix}{{{{ mid_name }}}}\"\n  \
             mid.instance.password: {{ secret: \"env:CHAOS_PASSWORD\" }}\nhealth:\n  timeout: 20\n\
             rollout:\n  serial: [100%]\n  max_fail: 100%\n"
        );
        match instance {
            // midfleet creates the round's users (ensure_user), checks
            // each logs in before touching a host, and waits for each
            // MID's record Up as its new user.
            Some(instance) => text.push_str(&format!(
                "instance:\n  url: {}\n  ca_file: {}\n  user: admin\n  \
                 password: {{ secret: \"env:CHAOS_ADMIN_PASSWORD\" }}\n  ensure_user: true\n  \
                 timeout: {INSTANCE_TIMEOUT}\n",
                instance.url,
                instance.pki.ca_file.display()
            )),
            None => {
                for host in &lab.hosts {
                    lab.add_instance_user(
                        &format!("{user_prefix}{}", host.name.replace('-', "")),
                        &password,
                    )?;
                }
            }
        }
        let playbook = lab.directory.join(format!("chaos-{number}.yml"));
        fs::write(&playbook, text)
            .map_err(|error| LabError(format!("{}: {error}", playbook.display())))?;
        let before = lab.hosts.iter().map(|host| host.config()).collect();
        let runs_before = lab
            .hosts
            .iter()
            .map(|host| run_names(&host.local_mid_home))
            .collect();
        Ok(Round {
            lab,
            instance,
            settings,
            number,
            user_prefix,
            password,
            playbook,
            faults,
            before,
            runs_before,
            violations: Vec::new(),
            outputs: Vec::new(),
            messages: HashMap::new(),
            outputs_checked: 0,
            filler: None,
            apply_seconds: 0.0,
        })
    }

    fn violation(&mut self, what: String) {
        self.violations.push(Violation {
            round: self.number,
            what,
        });
    }

    fn new_user(&self, host: &str) -> String {
        format!("{}{}", self.user_prefix, host.replace('-', ""))
    }

    /// `midfleet VERB -i … PLAYBOOK --known-hosts … --forks N --output json`.
    fn midfleet(&self, verb: &str) -> Command {
        let mut command = Command::new(&self.settings.midfleet);
        command
            .arg(verb)
            .arg("-i")
            .arg(&self.lab.inventory)
            .arg(&self.playbook)
            .arg("--known-hosts")
            .arg(&self.lab.known_hosts)
            .args(["--forks", &self.settings.forks.to_string()])
            .args(["--output", "json"]);
        if verb == "apply" {
            command
                .arg("--yes")
                .arg("--audit-log")
                .arg(self.lab.directory.join("audit.jsonl"));
        }
        command
            .env("CHAOS_PASSWORD", &self.password)
            .env("CHAOS_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("HOME", self.lab.directory.join("home"))
            .env("NO_COLOR", "1")
            .env("MIDFLEET_PROGRESS", "never")
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null());
        command
    }

    fn run(mut self, summary: &mut Summary) -> Result<Vec<Violation>, LabError> {
        let round_started = Instant::now();
        println!(
            "round {} (seed {}): {} fault(s)",
            self.number,
            self.settings.seed,
            self.faults.len()
        );
        for fault in &self.faults {
            println!("  {fault}");
        }
        let (status, stdout, stderr, landed) = self.chaos_apply()?;
        for (fault, landed) in self.faults.iter().zip(&landed) {
            if *landed {
                *summary.landed.entry(fault.kind.name()).or_default() += 1;
            } else {
                summary.not_reached += 1;
            }
        }
        let reported = reported_results(&stdout);
        self.messages = reported_messages(&stdout);
        self.outputs.push((stdout.clone(), stderr.clone()));
        self.wait_for_transactions();
        self.clear_faults()?;
        let results = self.host_results(&reported);
        for result in results.iter().flatten() {
            *summary.results.entry(result.clone()).or_default() += 1;
        }
        let ended = match status {
            Some(status) => describe(status),
            None => "hung (killed by the chaos run)".into(),
        };
        let missed: Vec<String> = self
            .faults
            .iter()
            .zip(&landed)
            .filter(|(_, landed)| !**landed)
            .map(|(fault, _)| format!("{} at {} ms", fault.kind.name(), fault.at_ms))
            .collect();
        println!(
            "  midfleet {ended} after {:.1} s; hosts: {}{}",
            self.apply_seconds,
            tally(
                results
                    .iter()
                    .map(|result| result.as_deref().unwrap_or("none"))
            ),
            if missed.is_empty() {
                String::new()
            } else {
                format!("; not landed (midfleet had ended): {}", missed.join(", "))
            }
        );
        self.check_configs();
        self.check_mids(&results);
        self.check_plaintext("after the chaos apply");
        self.repair_hung_stops()?;
        self.clean_run();
        self.check_plaintext("after the clean run");
        println!(
            "  round {} checked in {:.1} s: {}",
            self.number,
            round_started.elapsed().as_secs_f64(),
            if self.violations.is_empty() {
                "every invariant holds".to_string()
            } else {
                format!("{} violation(s)", self.violations.len())
            }
        );
        Ok(self.violations)
    }

    /// Runs `midfleet apply --yes` and lands the faults at their moments;
    /// returns how midfleet ended (`None`: it outlived the limit and was
    /// killed), its stdout and stderr, and which faults landed.
    #[allow(clippy::type_complexity)]
    fn chaos_apply(&mut self) -> Result<(Option<ExitStatus>, String, String, Vec<bool>), LabError> {
        let out_path = self
            .lab
            .directory
            .join(format!("round-{}.out", self.number));
        let err_path = self
            .lab
            .directory
            .join(format!("round-{}.err", self.number));
        let file = |path: &Path| {
            fs::File::create(path).map_err(|error| LabError(format!("{}: {error}", path.display())))
        };
        let mut command = self.midfleet("apply");
        command.stdout(file(&out_path)?).stderr(file(&err_path)?);
        let mut child = command
            .spawn()
            .map_err(|error| LabError(format!("midfleet: {error}")))?;
        // Each fault's beginning, and a lasting fault's end, in time
        // order; a SIGTERM's moment counts from the first host's
        // transaction (a lock on a host), so that it lands while hosts are
        // changing, not while midfleet is still planning (which it ends
        // at once, nothing touched).
        let mut events: Vec<(u64, usize, bool)> = Vec::new();
        let mut term = None;
        for (index, fault) in self.faults.iter().enumerate() {
            if fault.kind == FaultKind::TermMidfleet {
                term = Some(index);
                continue;
            }
            events.push((fault.at_ms, index, true));
            if let Some(millis) = fault.kind.lasts() {
                events.push((fault.at_ms + millis, index, false));
            }
        }
        events.sort_by_key(|event| event.0);
        let mut landed = vec![false; self.faults.len()];
        let mut active: HashMap<String, Active> = HashMap::new();
        let started = Instant::now();
        let mut next = 0;
        let mut first_transaction: Option<u64> = None;
        let status = loop {
            if let Some(status) = child
                .try_wait()
                .map_err(|error| LabError(format!("midfleet: {error}")))?
            {
                break Some(status);
            }
            let elapsed = started.elapsed();
            if elapsed > MIDFLEET_LIMIT {
                self.violation(format!(
                    "midfleet apply did not end within {} s (faults and all): killed",
                    MIDFLEET_LIMIT.as_secs()
                ));
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            let now_ms = elapsed.as_millis() as u64;
            while next < events.len() && events[next].0 <= now_ms {
                let (_, index, begin) = events[next];
                next += 1;
                if begin {
                    self.land(index, &mut child, &mut active)?;
                    landed[index] = true;
                } else if landed[index] {
                    self.end_fault(index, &mut active)?;
                }
            }
            if let Some(index) = term {
                if first_transaction.is_none()
                    && self
                        .lab
                        .hosts
                        .iter()
                        .any(|host| host.local_mid_home.join(".midfleet/lock").exists())
                {
                    first_transaction = Some(now_ms);
                }
                if first_transaction.is_some_and(|began| now_ms >= began + self.faults[index].at_ms)
                {
                    self.land(index, &mut child, &mut active)?;
                    landed[index] = true;
                    term = None;
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.apply_seconds = started.elapsed().as_secs_f64();
        // A lasting fault that landed lasts as drawn, also past midfleet's
        // end: what it left on the hosts (after a SIGKILL) meets the same
        // world; no new fault lands.
        for &(at_ms, index, begin) in &events[next..] {
            if !begin && landed[index] {
                sleep_until(started + Duration::from_millis(at_ms));
                self.end_fault(index, &mut active)?;
            }
        }
        let read =
            |path: &Path| String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned();
        Ok((status, read(&out_path), read(&err_path), landed))
    }

    /// Lands fault `index` now.
    fn land(
        &mut self,
        index: usize,
        child: &mut Child,
        active: &mut HashMap<String, Active>,
    ) -> Result<(), LabError> {
        let fault = self.faults[index].clone();
        let host = fault.host.clone().unwrap_or_default();
        match fault.kind {
            FaultKind::Cut => self.lab.cut_link(&host)?,
            FaultKind::Latency { .. } | FaultKind::Loss { .. } | FaultKind::Down { .. } => {
                let state = active.entry(host.clone()).or_default();
                match fault.kind {
                    FaultKind::Latency { .. } => state.latency += 1,
                    FaultKind::Loss { .. } => state.loss += 1,
                    _ => state.down += 1,
                }
                let state = *state;
                let cuts = self.lab.link(&host)?.cuts;
                self.lab.set_link(&host, state.settings(cuts))?;
            }
            FaultKind::KillMidfleet | FaultKind::TermMidfleet => {
                let signal = if fault.kind == FaultKind::KillMidfleet {
                    libc::SIGKILL
                } else {
                    libc::SIGTERM
                };
                // SAFETY: a signal to the midfleet this round spawned (not
                // yet waited for, so its pid is still its own).
                unsafe {
                    libc::kill(child.id() as i32, signal);
                }
            }
            FaultKind::DiesAtStart => self.lab.host(&host).set_knob("die_at_start", "true")?,
            FaultKind::StopHangs => self.lab.host(&host).set_knob("stop_hangs", "true")?,
            FaultKind::DiskFull => {
                self.filler = Some(self.lab.host(&host).fill_disk(0)?);
            }
            FaultKind::HostKey => self.lab.change_host_key(&host)?,
            FaultKind::InstanceUnavailable { .. } => self.instance()?.set_fault(Some("503"))?,
            FaultKind::InstanceHang { .. } => self.instance()?.set_fault(Some("hang"))?,
        }
        Ok(())
    }

    /// The lab's instance, for an instance fault.
    fn instance(&self) -> Result<&'a KindsInstance, LabError> {
        self.instance
            .ok_or_else(|| LabError("an instance fault drawn for a lab without an instance".into()))
    }

    /// Undoes lasting fault `index`: the instance serves again, or the
    /// link is as before it (other faults on the same link stay).
    fn end_fault(
        &mut self,
        index: usize,
        active: &mut HashMap<String, Active>,
    ) -> Result<(), LabError> {
        let fault = &self.faults[index];
        if let FaultKind::InstanceUnavailable { .. } | FaultKind::InstanceHang { .. } = fault.kind {
            return self.instance()?.set_fault(None);
        }
        let host = fault.host.clone().unwrap_or_default();
        let state = active.entry(host.clone()).or_default();
        match fault.kind {
            FaultKind::Latency { .. } => state.latency -= 1,
            FaultKind::Loss { .. } => state.loss -= 1,
            FaultKind::Down { .. } => state.down -= 1,
            _ => return Ok(()),
        }
        let state = *state;
        let cuts = self.lab.link(&host)?.cuts;
        self.lab.set_link(&host, state.settings(cuts))
    }

    /// Waits until what midfleet left on the hosts has ended by itself:
    /// no SSH connection open through the link (a killed midfleet's last
    /// bytes can still be on their way, and a staging script that arrived
    /// whole runs: it writes the run's files and starts the transaction),
    /// no host holding a transaction's lock, and no transaction of this
    /// round's run folders still running. Checked before that, a late transaction's staged files
    /// looked like a leak (seed 1, round 111: midfleet SIGKILLed while
    /// eight hosts' staging scripts were in flight).
    fn wait_for_transactions(&mut self) {
        let deadline = Instant::now() + TRANSACTION_LIMIT;
        loop {
            let mut pending = Vec::new();
            match self.lab.link_stats() {
                Ok(stats) => {
                    let open: u64 = stats.values().map(|host| host.live).sum();
                    if open > 0 {
                        pending.push(format!("{open} connection(s) open through the link"));
                    }
                }
                Err(error) => pending.push(format!("the link relay: {error}")),
            }
            for (host, before) in self.lab.hosts.iter().zip(&self.runs_before) {
                if host.local_mid_home.join(".midfleet/lock").exists() {
                    pending.push(format!("{}: a transaction holds the lock", host.name));
                }
                let runs = host.local_mid_home.join(".midfleet/runs");
                for run in run_names(&host.local_mid_home) {
                    let folder = runs.join(&run);
                    if !before.contains(&run)
                        && !folder.join("result").exists()
                        && transaction_alive(&folder)
                    {
                        pending.push(format!("{}: run {run}'s transaction still runs", host.name));
                    }
                }
            }
            if pending.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                self.violation(format!(
                    "{} s after midfleet ended, what it left has not ended: {}",
                    TRANSACTION_LIMIT.as_secs(),
                    pending.join("; ")
                ));
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every fault of the round undone: links perfect again, the instance
    /// serving, knobs off, the disk freed, the hosts' keys as they are now
    /// in known_hosts.
    fn clear_faults(&mut self) -> Result<(), LabError> {
        if let Some(instance) = self.instance {
            instance.set_fault(None)?;
        }
        for index in 0..self.lab.hosts.len() {
            let name = self.lab.hosts[index].name.clone();
            let cuts = self.lab.link(&name)?.cuts;
            self.lab.set_link(&name, Active::default().settings(cuts))?;
        }
        for fault in &self.faults {
            let Some(host) = &fault.host else { continue };
            match fault.kind {
                FaultKind::DiesAtStart => self.lab.host(host).remove_knob("die_at_start")?,
                FaultKind::StopHangs => self.lab.host(host).remove_knob("stop_hangs")?,
                _ => {}
            }
        }
        if let Some(filler) = self.filler.take() {
            fs::remove_file(&filler)
                .map_err(|error| LabError(format!("{}: {error}", filler.display())))?;
        }
        if self
            .faults
            .iter()
            .any(|fault| fault.kind == FaultKind::HostKey)
        {
            self.lab.write_known_hosts()?;
        }
        Ok(())
    }

    /// Each host's result in the round: midfleet's report, else the
    /// result word of the round's newest transaction on the host (a killed
    /// midfleet reported nothing), else `None` (no run reached the host).
    fn host_results(&self, reported: &HashMap<String, String>) -> Vec<Option<String>> {
        self.lab
            .hosts
            .iter()
            .zip(&self.runs_before)
            .map(|(host, before)| {
                if let Some(result) = reported.get(&host.name) {
                    return Some(result.clone());
                }
                let runs = host.local_mid_home.join(".midfleet/runs");
                let mut new: Vec<String> = run_names(&host.local_mid_home)
                    .into_iter()
                    .filter(|name| !before.contains(name))
                    .collect();
                new.sort();
                new.last().map(|run| {
                    fs::read_to_string(runs.join(run).join("result"))
                        .map(|word| word.trim().to_string())
                        .unwrap_or_else(|_| "no-result".into())
                })
            })
            .collect()
    }

    /// Invariant 1: config.xml parses, and is the old file or the rotated
    /// one.
    fn check_configs(&mut self) {
        for index in 0..self.lab.hosts.len() {
            let host = &self.lab.hosts[index];
            let now = host.config();
            let name = host.name.clone();
            if now == self.before[index] {
                continue;
            }
            let document = match ConfigXml::parse(&now) {
                Ok(document) => document,
                Err(error) => {
                    self.violation(format!("{name}: config.xml does not parse: {error}"));
                    continue;
                }
            };
            let Ok(before) = ConfigXml::parse(&self.before[index]) else {
                self.violation(format!("{name}: config.xml before the round did not parse"));
                continue;
            };
            let value = |document: &ConfigXml, parameter: &str| {
                document
                    .get(parameter)
                    .map(|found| found.value().to_string())
            };
            let user = value(&document, names::USERNAME).unwrap_or_default();
            let password = value(&document, names::PASSWORD).unwrap_or_default();
            let expected = self.new_user(&name);
            if user != expected {
                self.violation(format!(
                    "{name}: config.xml changed, but its user is `{user}`, neither the file from before the round nor the rotated one (`{expected}`)"
                ));
                continue;
            }
            if password != self.password && !password.starts_with("encrypted:") {
                self.violation(format!(
                    "{name}: config.xml names the round's user with a password that is neither the new one nor the MID's encrypted form"
                ));
            }
            let others = |document: &ConfigXml| -> Vec<(String, String)> {
                document
                    .parameters()
                    .iter()
                    .filter(|parameter| {
                        ![
                            names::USERNAME,
                            names::PASSWORD,
                            names::KEY_PAIR_ID,
                            names::MID_SYS_ID,
                        ]
                        .contains(&parameter.name())
                    })
                    .map(|parameter| (parameter.name().to_string(), parameter.value().to_string()))
                    .collect()
            };
            if others(&document) != others(&before) {
                self.violation(format!(
                    "{name}: config.xml's other parameters changed in the rotation"
                ));
            }
        }
    }

    /// Invariant 3: each MID runs as its config's user, accepted by the
    /// instance, or its host was reported failed, rolled back or
    /// unreachable.
    fn check_mids(&mut self, results: &[Option<String>]) {
        let store = fs::read_to_string(&self.lab.instance).unwrap_or_default();
        let instance = self.instance;
        // Whether the instance (or the credential store) lets `user` in.
        let known = |user: &str| -> Result<bool, LabError> {
            match instance {
                Some(instance) => Ok(instance.user(user)? == Some((true, false))),
                None => Ok(store
                    .lines()
                    .any(|line| line.split(':').next() == Some(user))),
            }
        };
        for (index, result) in results.iter().enumerate() {
            let host = &self.lab.hosts[index];
            let name = host.name.clone();
            let result = result.clone().unwrap_or_else(|| "none".into());
            if host.mid_process().is_none() {
                if !["failed", "rolled_back", "unreachable"].contains(&result.as_str()) {
                    let message = self.messages.get(&name).cloned().unwrap_or_default();
                    let journal = newest_journal(&host.local_mid_home);
                    self.violation(format!(
                        "{name}: the MID is not running, and its host was reported `{result}`: {message}\n  its newest run's journal:\n{journal}"
                    ));
                }
                continue;
            }
            let config = host.config();
            let user = ConfigXml::parse(&config)
                .ok()
                .and_then(|document| {
                    document
                        .get(names::USERNAME)
                        .map(|found| found.value().to_string())
                })
                .unwrap_or_default();
            match last_start(&host.agent_log()) {
                Some((login, true)) if login == user => match known(&user) {
                    Ok(true) => {}
                    Ok(false) => self.violation(format!(
                        "{name}: the MID runs as `{user}`, a user the instance does not know, or not as active and unlocked"
                    )),
                    Err(error) => self.violation(format!(
                        "{name}: the instance cannot say whether it knows `{user}`: {error}"
                    )),
                },
                Some((login, started)) => self.violation(format!(
                    "{name}: the MID runs, but its last start logged in as `{login}` ({}) while config.xml names `{user}` (reported `{result}`)",
                    if started { "started" } else { "never logged `MID Server started`" }
                )),
                None => self.violation(format!(
                    "{name}: the MID runs, but its log shows no start (reported `{result}`)"
                )),
            }
        }
    }

    /// A MID that was told to hang at stop ignores SIGTERM for good (the
    /// knob is read at SIGTERM): the operator kills it and starts it again
    /// before the clean run, as they would on a real host.
    fn repair_hung_stops(&mut self) -> Result<(), LabError> {
        let hung: Vec<String> = self
            .faults
            .iter()
            .filter(|fault| fault.kind == FaultKind::StopHangs)
            .filter_map(|fault| fault.host.clone())
            .collect();
        for name in hung {
            let host = self.lab.host(&name);
            let Some((pid, _)) = host.mid_process() else {
                continue;
            };
            let starts = host.agent_log().matches("MID Server started").count();
            // SAFETY: kill(2) on the pid the MID's own pid file names,
            // checked live just now.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while host.mid_process().is_some() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if !host.mid("start")? {
                return Err(LabError(format!("{name}: mid.sh start failed")));
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while host.agent_log().matches("MID Server started").count() == starts {
                if Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// Invariant 4: a clean apply exits 0, then a plan shows no change.
    fn clean_run(&mut self) {
        let mut runs = Vec::new();
        for verb in ["apply", "plan"] {
            let output = match self.midfleet(verb).output() {
                Ok(output) => output,
                Err(error) => {
                    self.violation(format!("clean {verb}: cannot run midfleet: {error}"));
                    return;
                }
            };
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            self.outputs.push((stdout.clone(), stderr.clone()));
            runs.push((verb, output.status, stdout, stderr));
        }
        let (_, status, stdout, stderr) = &runs[0];
        if !status.success() {
            let failing: Vec<String> = reported_results(stdout)
                .into_iter()
                .filter(|(_, result)| !["applied", "unchanged"].contains(&result.as_str()))
                .map(|(host, _)| host)
                .collect();
            self.violation(format!(
                "the clean apply {}: {}\n{}{}{}",
                describe(*status),
                tally(reported_results(stdout).values().map(String::as_str)),
                excerpt(stdout),
                excerpt(stderr),
                self.lab_state(&failing)
            ));
            return;
        }
        let (_, status, stdout, stderr) = &runs[1];
        let changing: Vec<String> = serde_json::from_str::<serde_json::Value>(stdout)
            .ok()
            .and_then(|plan| plan["hosts"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter(|host| {
                host["status"] != "unchanged"
                    || host["changes"]
                        .as_array()
                        .is_some_and(|changes| !changes.is_empty())
            })
            .map(|host| format!("{} ({})", host["host"], host["status"]))
            .collect();
        if !status.success() || !changing.is_empty() || !stdout.contains("\"hosts\"") {
            self.violation(format!(
                "the plan after the clean apply ({}) is not empty: {}\n{}",
                describe(*status),
                changing.join(", "),
                excerpt(stderr)
            ));
        }
    }

    /// What the lab shows of `hosts` (for a violation that may be the
    /// lab's own): whether the link relay answers, each host's sshd
    /// listener alive, and its sshd.log's last lines.
    fn lab_state(&self, hosts: &[String]) -> String {
        let mut text = format!(
            "the lab: link relay {}\n",
            match self.lab.link_stats() {
                Ok(_) => "answers".to_string(),
                Err(error) => format!("does not answer: {error}"),
            }
        );
        let mut hosts = hosts.to_vec();
        hosts.sort();
        for name in hosts {
            let Some(host) = self.lab.hosts.iter().find(|host| host.name == name) else {
                continue;
            };
            let alive = host
                .sshd_pid()
                .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
            let log = fs::read_to_string(
                self.lab
                    .directory
                    .join("hosts")
                    .join(&name)
                    .join("sshd.log"),
            )
            .unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(6)..].join("\n    ");
            text.push_str(&format!(
                "  {name}: sshd listener {}; sshd.log ends:\n    {tail}\n",
                if alive { "alive" } else { "gone" }
            ));
        }
        text
    }

    /// Invariant 2: the round's password nowhere in plaintext but
    /// config.xml, nor in anything midfleet printed or logged.
    fn check_plaintext(&mut self, when: &str) {
        let needle = self.password.as_bytes().to_vec();
        let mut leaks = Vec::new();
        for host in &self.lab.hosts {
            let config = host.config_path();
            let mut stack = vec![host.local_mid_home.clone()];
            while let Some(folder) = stack.pop() {
                for entry in fs::read_dir(&folder).into_iter().flatten().flatten() {
                    let path = entry.path();
                    let Ok(kind) = entry.file_type() else {
                        continue;
                    };
                    if kind.is_dir() {
                        stack.push(path);
                    } else if kind.is_file()
                        && path != config
                        && fs::read(&path).is_ok_and(|bytes| contains(&bytes, &needle))
                    {
                        leaks.push(path.display().to_string());
                    }
                }
            }
        }
        let audit = self.lab.directory.join("audit.jsonl");
        if fs::read(&audit).is_ok_and(|bytes| contains(&bytes, &needle)) {
            leaks.push(audit.display().to_string());
        }
        for (index, (stdout, stderr)) in self.outputs.iter().enumerate().skip(self.outputs_checked)
        {
            let run = ["the chaos apply", "the clean apply", "the clean plan"]
                .get(index)
                .copied()
                .unwrap_or("a run");
            if stdout.contains(&self.password) {
                leaks.push(format!("{run}'s stdout"));
            }
            if stderr.contains(&self.password) {
                leaks.push(format!("{run}'s stderr"));
            }
        }
        self.outputs_checked = self.outputs.len();
        if !leaks.is_empty() {
            self.violation(format!(
                "{when}, the round's password in plaintext in: {}",
                leaks.join(", ")
            ));
        }
    }
}

/// Whether the transaction a run folder's `pid` names is alive (not a
/// zombie). One that ended without its `result` — it could not write it
/// on a full disk — is not waited for.
fn transaction_alive(folder: &Path) -> bool {
    crate::kept::read_pid(&folder.join("pid"))
        .and_then(crate::kept::ProcessId::of)
        .is_some()
}

/// The run folders under `mid_home/.midfleet/runs`.
fn run_names(mid_home: &Path) -> HashSet<String> {
    fs::read_dir(mid_home.join(".midfleet/runs"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The MID's last start in its agent log: the user it logged in as, and
/// whether it then logged `MID Server started`.
fn last_start(log: &str) -> Option<(String, bool)> {
    let at = log.rfind("Starting MID Server")?;
    let tail = &log[at..];
    let mut user = None;
    let mut started = false;
    for line in tail.lines() {
        if let Some((_, login)) = line.split_once("Setting basic authentication with user ") {
            user = Some(login.trim().to_string());
            started = false;
        }
        if line.ends_with(" MID Server started") {
            started = true;
        }
    }
    user.map(|user| (user, started))
}

/// Each host's `result` in an apply's JSON report (empty when there is
/// none: a killed run).
fn reported_results(stdout: &str) -> HashMap<String, String> {
    reported(stdout, "result")
}

/// Each host's `message` in an apply's JSON report.
fn reported_messages(stdout: &str) -> HashMap<String, String> {
    reported(stdout, "message")
}

/// Each host's `field` in an apply's JSON report.
fn reported(stdout: &str, field: &str) -> HashMap<String, String> {
    serde_json::from_str::<serde_json::Value>(stdout)
        .ok()
        .and_then(|report| report["results"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|result| {
            Some((
                result["host"].as_str()?.to_string(),
                result[field].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// The journal of the host's newest run (for a violation's text).
fn newest_journal(mid_home: &Path) -> String {
    let runs = mid_home.join(".midfleet/runs");
    let mut names: Vec<String> = run_names(mid_home).into_iter().collect();
    names.sort();
    names
        .last()
        .and_then(|run| fs::read_to_string(runs.join(run).join("journal")).ok())
        .unwrap_or_else(|| "(none)".into())
}

/// `applied 12, rolled_back 3, …`.
fn tally<'a>(words: impl Iterator<Item = &'a str>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for word in words {
        *counts.entry(word).or_default() += 1;
    }
    counts
        .iter()
        .map(|(word, count)| format!("{word} {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => "ended".into(),
    }
}

/// The last 40 lines of `text`.
fn excerpt(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(40);
    lines[from..].join("\n") + "\n"
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(count: usize) -> Vec<String> {
        (1..=count).map(|index| format!("lab-{index:03}")).collect()
    }

    #[test]
    fn a_rounds_faults_depend_only_on_the_seed_and_the_round() {
        let hosts = hosts(20);
        for round in 1..50 {
            let once = draw_faults(7, round, &hosts, 4000, true, true);
            assert_eq!(once, draw_faults(7, round, &hosts, 4000, true, true));
            assert!((1..=4).contains(&once.len()), "{once:?}");
            assert!(once.windows(2).all(|pair| pair[0].at_ms <= pair[1].at_ms));
            assert!(once.iter().all(|fault| fault.at_ms < 4000));
            let signals = once
                .iter()
                .filter(|fault| {
                    matches!(
                        fault.kind,
                        FaultKind::KillMidfleet | FaultKind::TermMidfleet
                    )
                })
                .count();
            assert!(signals <= 1, "{once:?}");
            let instance = once
                .iter()
                .filter(|fault| {
                    matches!(
                        fault.kind,
                        FaultKind::InstanceUnavailable { .. } | FaultKind::InstanceHang { .. }
                    )
                })
                .count();
            assert!(instance <= 1, "{once:?}");
        }
        assert_ne!(
            draw_faults(7, 1, &hosts, 4000, true, true),
            draw_faults(8, 1, &hosts, 4000, true, true)
        );
    }

    #[test]
    fn every_kind_is_drawn_and_the_disk_only_where_there_is_one() {
        let hosts = hosts(20);
        let mut seen = HashSet::new();
        for round in 1..400 {
            for fault in draw_faults(1, round, &hosts, 4000, true, true) {
                if fault.kind == FaultKind::DiskFull {
                    assert_eq!(fault.host.as_deref(), Some(DISK_HOST));
                }
                seen.insert(fault.kind.name());
            }
            assert!(draw_faults(1, round, &hosts, 4000, false, true)
                .iter()
                .all(|fault| fault.kind != FaultKind::DiskFull));
            // Without an instance: none of its faults, and the draws of
            // before they existed (seed 1's replays stay true).
            let plain = draw_faults(1, round, &hosts, 4000, true, false);
            assert!(plain.iter().all(|fault| !matches!(
                fault.kind,
                FaultKind::InstanceUnavailable { .. } | FaultKind::InstanceHang { .. }
            )));
        }
        assert_eq!(seen.len(), WEIGHTS.len(), "{seen:?}");
    }

    /// Seed 1's round 4 without an instance is the round that found the
    /// full disk (docs/reliability.md): the instance's faults, added later,
    /// change no draw of a lab without one.
    #[test]
    fn a_lab_without_an_instance_draws_what_it_drew_before() {
        let faults = draw_faults(1, 4, &hosts(20), 4000, true, false);
        assert!(
            faults.iter().any(|fault| fault.kind == FaultKind::DiskFull),
            "{faults:?}"
        );
    }

    #[test]
    fn the_last_start_is_read_from_the_log() {
        let log = "a StartupSequencer Starting MID Server\n\
                   b StartupSequencer Setting basic authentication with user svc_old\n\
                   c StartupSequencer MID Server started\n\
                   d StartupSequencer Starting MID Server\n\
                   e StartupSequencer Setting basic authentication with user c1_lab001\n\
                   f MIDServer Could not authenticate user 'c1_lab001' on the ServiceNow instance.\n";
        assert_eq!(last_start(log), Some(("c1_lab001".into(), false)));
        let started = format!("{log}g StartupSequencer MID Server started\n");
        assert_eq!(last_start(&started), Some(("c1_lab001".into(), true)));
        assert_eq!(last_start("nothing yet\n"), None);
    }
}
