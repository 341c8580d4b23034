//! `midfleet-lab`: what `midfleet lab up|status|down|user|fault` runs — a
//! lab that stays up to rehearse on ([`midfleet_lab::kept`]). The product
//! cannot link the lab, so `midfleet lab …` execs this binary from beside
//! itself with its own arguments, parsed here by midfleet's own command
//! line (so `--output json`, `--no-color` mean what they mean there).

use std::path::Path;
use std::process::ExitCode;

use midfleet::cli::{Command, Console, Exit, Failure, LabCommand, LabFault, OutputFormat};
use midfleet::report::render_table;
use midfleet::secret::{SecretRef, SecretResolver};
use midfleet_lab::front;
use midfleet_lab::kept::{self, Fault, Kind, Phase, Place, Record, UpError, UpOptions};
use midfleet_lab::link::LinkSettings;
use midfleet_lab::LabError;

/// Why the build makes the binaries the lab runs (a missing one's hint).
const LAB_BUILT: &str = "the lab's MIDs and instance are its binaries";

fn main() -> ExitCode {
    // `lab user` reads a password: `start` protects the process first. Run
    // by hand without `lab`, this binary is `midfleet lab` all the same.
    let cli = match front::start("lab", Some("midfleet")) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let console = cli.global.console();
    let outcome = match &cli.command {
        Command::Lab(lab) => run(&console, &lab.command),
        _ => Err(Failure::usage("midfleet-lab runs only `midfleet lab …`")
            .with_hint("run the command with `midfleet`")),
    };
    front::finish(&console, outcome)
}

fn run(console: &Console, command: &LabCommand) -> Result<Exit, Failure> {
    let place = Place::for_user();
    match command {
        LabCommand::Up {
            hosts,
            instance,
            kinds,
            link,
        } => up(
            console,
            &place,
            usize::from(*hosts),
            *instance,
            kinds.as_deref(),
            link.as_deref(),
        ),
        LabCommand::Link { host, settings } => link(console, &place, host, settings),
        LabCommand::Status => status(console, &place),
        LabCommand::Down => down(console, &place),
        LabCommand::User { name, password } => user(console, &place, name, password.as_ref()),
        LabCommand::Fault { host, kind } => fault(console, &place, host, *kind),
    }
}

fn failed(error: midfleet_lab::LabError) -> Failure {
    Failure::failed(error.0)
}

/// Says what a stale lab found on the way was, and that it is gone.
pub fn say_stale(console: &Console, cleaned: &kept::Cleaned) {
    let by = match cleaned.record.kind {
        Kind::Lab => "a `midfleet lab up`",
        Kind::Demo => "a `midfleet demo`",
    };
    console.note(&format!(
        "Removed a stale lab left by {by} that was killed: {} stopped, {} removed.",
        kept::counted(cleaned.down.killed, "process", "processes"),
        cleaned.record.folder.display()
    ));
}

fn up(
    console: &Console,
    place: &Place,
    hosts: usize,
    instance: bool,
    kinds: Option<&str>,
    link: Option<&str>,
) -> Result<Exit, Failure> {
    let link = match link {
        Some(text) => Some(LinkSettings::parse(text).map_err(|error| {
            Failure::usage(format!("--link: {error}")).with_hint(
                "e.g. --link 'rtt=150 jitter=5 loss=1%' (milliseconds; loss as 0.01 or 1%)",
            )
        })?),
        None => None,
    };
    let kinds = match kinds {
        Some(text) => midfleet_lab::kinds::parse_kinds(text).map_err(|error| {
            Failure::usage(format!("--kinds: {error}"))
                .with_hint("write KIND=COUNT joined by commas, e.g. --kinds cyberark=2,mtls=1")
        })?,
        None => Vec::new(),
    };
    if let Some(kind) = kinds.iter().find(|kind| kind.needs_instance()) {
        if !instance {
            return Err(
                Failure::usage(format!("--kinds: a {kind} host needs the lab's instance"))
                    .with_hint("add --instance"),
            );
        }
    }
    let hosts = hosts.max(kinds.len());
    if !Path::new("/usr/sbin/sshd").exists() {
        return Err(Failure::failed(
            "the lab runs real OpenSSH servers, and /usr/sbin/sshd is missing",
        )
        .with_hint(
            "install the openssh-server package (as root: apt-get install openssh-server)",
        ));
    }
    let options = UpOptions {
        kind: Kind::Lab,
        hosts,
        instance,
        midsim: front::beside("midfleet-midsim", LAB_BUILT)?,
        instancesim: front::beside("midfleet-instancesim", LAB_BUILT)?,
        kinds,
        link,
    };
    if link.is_some() {
        front::beside("midfleet-relay", LAB_BUILT)?;
    }
    if let Some(record) = place.read().map_err(failed)?.filter(Record::live) {
        return Err(already_up(&record));
    }
    console.note(&format!(
        "Starting a lab of {hosts} MID host{} (real sshd servers, simulated MIDs){}…",
        if hosts == 1 { "" } else { "s" },
        if instance {
            " and a simulated instance"
        } else {
            ""
        }
    ));
    // Ctrl-C while the lab is being made takes it down again.
    kept::take_down_when_interrupted(place);
    let (lab, record) = match kept::up(place, &options, &mut |cleaned| say_stale(console, cleaned))
    {
        Ok(done) => done,
        Err(UpError::AlreadyUp(record)) => return Err(already_up(&record)),
        Err(UpError::Failed(error)) => {
            return Err(Failure::failed(format!("the lab did not start: {}", error.0)).with_hint(
                "nothing of it is left running; `midfleet lab down` removes anything a later kill leaves",
            ))
        }
    };
    // Dropping the detached lab stops nothing: it stays up.
    drop(lab);
    let next = next_commands(&record);
    match console.output {
        OutputFormat::Json => {
            let json = serde_json::json!({
                "folder": record.folder,
                "inventory": record.inventory,
                "known_hosts": record.known_hosts,
                "playbook": record.playbook,
                "client_key": record.folder.join("client_key"),
                "mount_namespaces": record.mount_namespaces,
                "instance_url": record.instance.as_ref().map(|instance| &instance.url),
                "hosts": record.hosts,
                "next": next,
            });
            console.data(&format!("{}\n", pretty(&json)?));
        }
        OutputFormat::Human => {
            let mut text = format!(
                "A lab of {} MID hosts is up, and stays up until `midfleet lab down`.\n\n",
                record.hosts.len()
            );
            let mut rows = vec![
                vec!["folder".to_string(), record.folder.display().to_string()],
                vec!["inventory".into(), record.inventory.display().to_string()],
                vec![
                    "known_hosts".into(),
                    record.known_hosts.display().to_string(),
                ],
                vec![
                    "playbook".into(),
                    format!(
                        "{}  (each MID to its own user svc_mid_<host>, password from ${})",
                        record.playbook.display(),
                        kept::PLAYBOOK_PASSWORD_VARIABLE
                    ),
                ],
            ];
            if let Some(instance) = &record.instance {
                rows.push(vec![
                    "instance".into(),
                    format!(
                        "{}  (user admin, password in {})",
                        instance.url,
                        instance.admin_password_file.display()
                    ),
                ]);
            }
            rows.push(vec![
                "hosts".into(),
                format!(
                    "{}  (mid_home {})",
                    record
                        .hosts
                        .iter()
                        .map(|host| match host.kind.as_str() {
                            "" => format!("{} {}:{}", host.name, host.address, host.port),
                            kind =>
                                format!("{} {}:{} ({kind})", host.name, host.address, host.port),
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                    record
                        .hosts
                        .first()
                        .map(|host| host.mid_home.clone())
                        .unwrap_or_default()
                ),
            ]);
            for row in rows {
                text.push_str(&format!("  {:<12} {}\n", row[0], row[1]));
            }
            text.push_str("\nTry next:\n");
            for line in &next {
                text.push_str(&format!("  {line}\n"));
            }
            console.data(&text);
        }
    }
    Ok(Exit::Success)
}

fn already_up(record: &Record) -> Failure {
    Failure::failed(format!(
        "a lab is up already ({} in {})",
        kept::counted(record.hosts.len(), "host", "hosts"),
        record.folder.display()
    ))
    .with_hint(
        "use it (`midfleet lab status` shows it), or take it down first with `midfleet lab down`",
    )
}

/// The commands to try on `record`'s lab, in order.
fn next_commands(record: &Record) -> Vec<String> {
    let inventory = record.inventory.display();
    let known_hosts = record.known_hosts.display();
    let playbook = record.playbook.display();
    let variable = kept::PLAYBOOK_PASSWORD_VARIABLE;
    let users = record
        .hosts
        .iter()
        .map(|host| host.name.replace('-', ""))
        .collect::<Vec<_>>()
        .join(" ");
    let second = record
        .hosts
        .get(1)
        .or(record.hosts.first())
        .map(|host| host.name.clone())
        .unwrap_or_default();
    let apply = format!("midfleet apply -i {inventory} --known-hosts {known_hosts} {playbook}");
    vec![
        format!("export {variable}='Rehearsal-pw-1'"),
        format!(
            "for host in {users}; do midfleet lab user svc_mid_$host --password env:{variable}; done"
        ),
        format!("midfleet plan -i {inventory} --known-hosts {known_hosts} {playbook}"),
        // The fault before the apply: once converged, an apply restarts
        // nothing, so a fault set after it would never show.
        format!(
            "midfleet lab fault {second} dies-at-start   # every start of its MID dies, a rollback's too: the apply fails on it and says why"
        ),
        apply.clone(),
        format!("midfleet lab fault {second} none   # cleared: the same apply again converges {second}"),
        apply,
        "midfleet lab status".into(),
        "midfleet lab down".into(),
    ]
}

fn pretty(json: &serde_json::Value) -> Result<String, Failure> {
    serde_json::to_string_pretty(json).map_err(|error| Failure::failed(error.to_string()))
}

/// The lab's record, or the failure that says there is none.
fn record(place: &Place) -> Result<Record, Failure> {
    match place.read().map_err(failed)? {
        Some(record) => Ok(record),
        None => Err(no_lab(place)),
    }
}

fn no_lab(place: &Place) -> Failure {
    Failure::failed(format!(
        "no lab is up (no record in {})",
        place.folder.display()
    ))
    .with_hint("start one with `midfleet lab up`")
}

fn status(console: &Console, place: &Place) -> Result<Exit, Failure> {
    let Some(record) = place.read().map_err(failed)? else {
        match console.output {
            OutputFormat::Json => console.data("{\n  \"lab\": null\n}\n"),
            OutputFormat::Human => console.data("No lab is up.\n"),
        }
        return Ok(Exit::Failed);
    };
    let status = kept::status(&record);
    match console.output {
        OutputFormat::Json => {
            let json = serde_json::json!({ "lab": status });
            console.data(&format!("{}\n", pretty(&json)?));
        }
        OutputFormat::Human => {
            let mut text = String::new();
            if !status.live {
                text.push_str(&format!(
                    "A stale lab: the {} that made it was killed. `midfleet lab down` removes it.\n",
                    match status.kind {
                        Kind::Lab => "`midfleet lab up`",
                        Kind::Demo => "`midfleet demo`",
                    }
                ));
            } else if status.phase == Phase::Starting {
                text.push_str(&format!(
                    "A lab is starting: its {} still runs. Run `midfleet lab status` again once it has printed where the lab is.\n",
                    match status.kind {
                        Kind::Lab => "`midfleet lab up`",
                        Kind::Demo => "`midfleet demo`",
                    }
                ));
            } else if status.kind == Kind::Demo {
                text.push_str("A `midfleet demo` is running on this lab.\n");
            }
            text.push_str(&format!(
                "Lab in {}\n  inventory    {}\n  known_hosts  {}\n  playbook     {}\n\n",
                status.folder.display(),
                status.inventory.display(),
                status.known_hosts.display(),
                status.playbook.display()
            ));
            let rows: Vec<Vec<String>> = status
                .hosts
                .iter()
                .map(|host| {
                    let mut row = vec![
                        host.name.clone(),
                        format!("{}:{}", host.address, host.port),
                        if host.sshd { "up" } else { "down" }.to_string(),
                        host.mid.to_string(),
                        host.mid_user.clone().unwrap_or_else(|| "-".into()),
                        host.fault.clone(),
                    ];
                    if status.link.is_some() {
                        row.push(host.link.clone().unwrap_or_else(|| "-".into()));
                    }
                    row
                })
                .collect();
            let mut headers = vec!["HOST", "ADDRESS", "SSHD", "MID", "MID USER", "FAULT"];
            if status.link.is_some() {
                headers.push("LINK");
            }
            text.push_str(&render_table(&headers, &rows));
            match &status.link {
                Some(link) if link.relay => text.push_str(&format!(
                    "\nLink relay answers: {} connection{} open\n",
                    link.open,
                    if link.open == 1 { "" } else { "s" }
                )),
                Some(link) => text.push_str(&format!(
                    "\nLink relay does not answer: {}\n",
                    link.error.as_deref().unwrap_or("no answer")
                )),
                None => {}
            }
            let users = status
                .users
                .iter()
                .map(|user| {
                    if user.mid_server || status.instance_url.is_none() {
                        user.name.clone()
                    } else {
                        format!("{} (no mid_server)", user.name)
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            match &status.instance_url {
                Some(url) => text.push_str(&format!("\nInstance {url}\n  users: {users}\n")),
                None => text.push_str(&format!(
                    "\nNo instance (lab up --instance starts one); the MIDs' credential store knows: {users}\n"
                )),
            }
            if let Some(error) = &status.users_error {
                text.push_str(&format!("  (users unreadable: {error})\n"));
            }
            console.data(&text);
        }
    }
    Ok(
        // The instance is part of the lab: unreadable, the lab is not up.
        if status.live
            && status.phase == Phase::Up
            && status.hosts.iter().all(|host| host.sshd)
            && status.users_error.is_none()
            // A lab behind links is reached through its relay.
            && status.link.as_ref().is_none_or(|link| link.relay)
        {
            Exit::Success
        } else {
            Exit::Failed
        },
    )
}

fn down(console: &Console, place: &Place) -> Result<Exit, Failure> {
    let down = kept::down(place).map_err(|error| {
        Failure::failed(format!("the lab is not completely down: {}", error.0))
            .with_hint("its record is kept: run `midfleet lab down` again")
    })?;
    match console.output {
        OutputFormat::Json => {
            let json = serde_json::json!({ "down": down });
            console.data(&format!("{}\n", pretty(&json)?));
        }
        OutputFormat::Human => match down {
            None => console.data("No lab is up; nothing to take down.\n"),
            Some(down) => {
                let what = if down.stale {
                    "A stale lab (its maker was killed) is removed"
                } else {
                    "The lab is down"
                };
                console.data(&format!(
                    "{what}: {} stopped, {} gone, {} removed.\n",
                    kept::counted(down.killed, "process", "processes"),
                    kept::counted(down.namespaces, "mount namespace", "mount namespaces"),
                    down.folder
                        .as_ref()
                        .map(|folder| folder.display().to_string())
                        .unwrap_or_else(|| "no folder left to be".into())
                ));
            }
        },
    }
    Ok(Exit::Success)
}

fn user(
    console: &Console,
    place: &Place,
    name: &str,
    password: Option<&SecretRef>,
) -> Result<Exit, Failure> {
    let record = record(place)?;
    let reference = password
        .cloned()
        .unwrap_or_else(|| SecretRef::Prompt(format!("password for {name}")));
    let mut resolver = SecretResolver::new();
    let value = resolver.resolve(&reference).map_err(|error| {
        let hint = error.hint().map(str::to_string);
        Failure::usage(error.to_string()).with_optional_hint(hint)
    })?;
    for warning in resolver.take_warnings() {
        console.warning(&format!(
            "secret `{}`: {}",
            warning.reference, warning.message
        ));
    }
    let change = kept::set_user(&record, name, &value).map_err(failed)?;
    let word = match change {
        kept::UserChange::Created => "created",
        kept::UserChange::Updated => "updated",
    };
    match console.output {
        OutputFormat::Json => {
            let json = serde_json::json!({ "user": name, "change": change, "instance_url": record.instance.as_ref().map(|instance| &instance.url) });
            console.data(&format!("{}\n", pretty(&json)?));
        }
        OutputFormat::Human => console.data(&match &record.instance {
            Some(instance) => format!(
                "User {name} {word} on the lab's instance ({}), with the mid_server role and the password of {reference}.\n",
                instance.url
            ),
            None => format!(
                "User {name} {word} in the lab MIDs' credential store, with the password of {reference}.\n"
            ),
        }),
    }
    Ok(Exit::Success)
}

fn fault(console: &Console, place: &Place, host: &str, kind: LabFault) -> Result<Exit, Failure> {
    let record = record(place)?;
    let fault = match kind {
        LabFault::DiesAtStart => Fault::DiesAtStart,
        LabFault::HangsAtStop => Fault::HangsAtStop,
        LabFault::SlowStart => Fault::SlowStart,
        LabFault::RefusedLogin => Fault::RefusedLogin,
        LabFault::HeapLimit(megabytes) => Fault::HeapLimit(megabytes),
        LabFault::None => Fault::None,
    };
    kept::set_fault(&record, host, fault)
        .map_err(|error| failed(error).with_hint("`midfleet lab status` lists the lab's hosts"))?;
    let effect: String = match fault {
        Fault::None => "behaves normally again from its next start".into(),
        Fault::DiesAtStart => {
            "dies at every start from now on (a rollback's too), before its first log line, until the fault is `none`".into()
        }
        Fault::HangsAtStop => "ignores every stop (SIGTERM) until the fault is `none`".into(),
        Fault::SlowStart => "takes 10 s to start from its next start".into(),
        Fault::RefusedLogin => "has its logins refused from its next start".into(),
        Fault::HeapLimit(megabytes) => format!(
            "gets at most {megabytes} MB of heap from its next JVM launch: a larger wrapper.java.maxmemory fails every launch, until the fault is `none`"
        ),
    };
    match console.output {
        OutputFormat::Json => {
            let json = serde_json::json!({ "host": host, "fault": fault.name() });
            console.data(&format!("{}\n", pretty(&json)?));
        }
        OutputFormat::Human => console.data(&format!("{host}: the MID {effect}.\n")),
    }
    Ok(Exit::Success)
}

/// `lab link HOST|all [SETTINGS…]`: shows, or changes and shows, each
/// named host's link.
fn link(console: &Console, place: &Place, host: &str, words: &[String]) -> Result<Exit, Failure> {
    let record = record(place)?;
    let links = midfleet_lab::link::links_directory(&record.folder);
    if !links.is_dir() {
        return Err(failed(LabError(format!(
            "this lab has no network link ({} is missing)",
            links.display()
        )))
        .with_hint("start the lab with one: midfleet lab down; midfleet lab up --link 'rtt=150'"));
    }
    let names: Vec<&str> = record
        .hosts
        .iter()
        .map(|entry| entry.name.as_str())
        .collect();
    let chosen: Vec<&str> = if host == "all" {
        names.clone()
    } else if names.contains(&host) {
        vec![host]
    } else {
        return Err(failed(LabError(format!(
            "the lab has no host `{host}` (its hosts: {}, or all)",
            names.join(", ")
        ))));
    };
    // Every word is checked before any host changes.
    let mut changes = Vec::new();
    for word in words {
        match word.as_str() {
            "cut" | "down" | "up" => changes.push(word.clone()),
            other => {
                LinkSettings::default().apply(other).map_err(|error| {
                    Failure::usage(error).with_hint(
                        "settings are rtt=MS, jitter=MS, loss=SHARE or PERCENT%, down, up, cut",
                    )
                })?;
                changes.push(other.to_string());
            }
        }
    }
    // Every host's new settings first, then the writes: a host whose
    // file cannot be read changes nothing.
    let mut shown = Vec::new();
    for name in chosen {
        let mut settings = midfleet_lab::link::read_settings(&links, name).map_err(failed)?;
        for change in &changes {
            match change.as_str() {
                "cut" => settings.cuts += 1,
                "down" => settings.down = true,
                "up" => settings.down = false,
                other => settings.apply(other).map_err(Failure::usage)?,
            }
        }
        shown.push((name.to_string(), settings));
    }
    if !changes.is_empty() {
        for (name, settings) in &shown {
            midfleet_lab::link::write_settings(&links, name, settings).map_err(failed)?;
        }
    }
    match console.output {
        OutputFormat::Json => {
            let hosts: Vec<serde_json::Value> = shown
                .iter()
                .map(|(name, settings)| {
                    serde_json::json!({
                        "host": name,
                        "rtt_ms": settings.rtt.as_millis() as u64,
                        "jitter_ms": settings.jitter.as_millis() as u64,
                        "loss": settings.loss,
                        "down": settings.down,
                        "cuts": settings.cuts,
                    })
                })
                .collect();
            console.data(&format!(
                "{}\n",
                pretty(&serde_json::json!({ "links": hosts }))?
            ));
        }
        OutputFormat::Human => {
            for (name, settings) in &shown {
                console.data(&format!(
                    "{name}: {}{}\n",
                    settings.summary(),
                    if changes.iter().any(|change| change == "cut") {
                        " (live connections cut)"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    Ok(Exit::Success)
}
