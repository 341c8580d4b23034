//! `run`: the MID Server itself, in the foreground. After the start delay it
//! reads config.xml strictly, loads (or, without `keypairs.mid_id`,
//! replaces) the keystore, opens every secure `encrypted:` value, logs in to
//! the instance (retrying every 2 s while refused), then seals every
//! plaintext secure value and adds `keypairs.mid_id` through midfleet's
//! byte-preserving editor, and runs until SIGTERM or until the lab that
//! owns it is gone. With an emulated instance, it reports its `ecc_agent`
//! record Up and Down (completing a Validate: `validating` becomes `true`
//! when it goes Up) and answers the `SystemCommand`s queued for it
//! (`restartService` restarts the JVM in this same process, as Tanuki's
//! wrapper does).
//!
//! Exit codes: 0 stopped, 1 the start failed (reason in both logs), 2 the
//! knobs file is wrong (reason in wrapper.log).

use std::fmt;
use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use midfleet::config_xml::{names, ConfigXml, Operation, ReadError, SecretForm};
use zeroize::Zeroizing;

use super::knobs::{self, Knobs, LogsAtStart};
use super::logs::{Logs, JVM, MID_SERVER, STARTUP, WRAPPER};
use super::process::{self, PidFile};
use super::{cipher, config_file, heap, instance, keystore, overrides, random};

/// How often a refused MID tries to log in again.
const LOGIN_RETRY: Duration = Duration::from_secs(2);
/// How often SIGTERM and the owner are checked.
const TICK: Duration = Duration::from_millis(100);

pub fn run(agent_dir: &Path) -> u8 {
    let logs = Logs::new(agent_dir);
    let code = run_until_stopped(agent_dir, &logs);
    PidFile::new(agent_dir).remove_if_holds(std::process::id());
    code
}

fn run_until_stopped(agent_dir: &Path, logs: &Logs) -> u8 {
    let knobs = match knobs::read(agent_dir) {
        Ok(knobs) => knobs,
        Err(message) => {
            logs.wrapper("ERROR", WRAPPER, &format!("midsim knobs: {message}"));
            return 2;
        }
    };
    process::handle_terminate(knobs.stop_hangs);
    let watch = Watch {
        owner: knobs.owner_pid,
        agent_dir: agent_dir.to_path_buf(),
    };
    // The JVMs this wrapper launched, and how many failed in a row.
    let (mut launches, mut failed) = (0, 0);
    loop {
        launches += 1;
        match run_jvm(agent_dir, &knobs, logs, &watch, launches) {
            Jvm::Stopped(interrupt) => {
                logs.wrapper("STATUS", WRAPPER, &interrupt.to_string());
                logs.wrapper("STATUS", WRAPPER, "<-- Wrapper Stopped");
                return 0;
            }
            Jvm::Failed => return 1,
            // The wrapper (this process, its pid file unchanged) launches
            // the JVM again, as Tanuki's does.
            Jvm::Restart => {
                failed = 0;
                logs.wrapper("STATUS", WRAPPER, "JVM requested a restart.");
            }
            Jvm::HeapRefused => {
                failed += 1;
                if failed >= heap::MAX_FAILED_LAUNCHES {
                    heap::give_up(logs);
                    return 1;
                }
                if let Some(interrupt) = watch.sleep(heap::RESTART_DELAY) {
                    logs.wrapper("STATUS", WRAPPER, &interrupt.to_string());
                    logs.wrapper("STATUS", WRAPPER, "<-- Wrapper Stopped");
                    return 0;
                }
            }
        }
    }
}

/// How one run of the JVM ended.
enum Jvm {
    Stopped(Interrupt),
    Failed,
    /// The instance asked for a restart (`restartService`).
    Restart,
    /// The JVM could not reserve its heap ([`heap`]): the wrapper launches
    /// it again, up to its limit.
    HeapRefused,
}

/// One run of the JVM: the start delay, the start-up sequence, then
/// serving until stopped or asked to restart.
fn run_jvm(agent_dir: &Path, knobs: &Knobs, logs: &Logs, watch: &Watch, number: u32) -> Jvm {
    logs.wrapper("STATUS", WRAPPER, "Launching a JVM...");
    if heap::refused(agent_dir, logs, number) {
        return Jvm::HeapRefused;
    }
    if let Some(interrupt) = watch.sleep(knobs.start_delay) {
        return Jvm::Stopped(interrupt);
    }
    let user_dies = knobs.die_at_start_if_user.as_deref().is_some_and(|user| {
        std::fs::read(agent_dir.join("config.xml"))
            .ok()
            .and_then(|bytes| midfleet::config_xml::ConfigXml::parse(&bytes).ok())
            .and_then(|document| {
                document
                    .get(midfleet::config_xml::names::USERNAME)
                    .map(|parameter| parameter.value() == user)
            })
            .unwrap_or(false)
    });
    if knobs.die_at_start || user_dies {
        logs.wrapper("ERROR", WRAPPER, "JVM exited unexpectedly.");
        return Jvm::Failed;
    }
    let (end, registration) = match start(agent_dir, knobs, logs, watch) {
        Ok(registration) => (
            serve(registration.as_ref(), knobs, logs, watch),
            registration,
        ),
        Err(Stop::Interrupted(interrupt)) => (Jvm::Stopped(interrupt), None),
        Err(Stop::Failed(message)) => {
            logs.agent(STARTUP, &format!("SEVERE *** ERROR *** {message}"));
            logs.wrapper("INFO", JVM, &format!("*** ERROR *** {message}"));
            logs.wrapper("ERROR", WRAPPER, "JVM exited unexpectedly with code 1.");
            return Jvm::Failed;
        }
    };
    logs.agent(MID_SERVER, "MID Server stopping");
    if let Some(registration) = &registration {
        report(registration, "Down", logs);
    }
    end
}

/// How often a running MID looks for the commands queued for it.
const ECC_POLL: Duration = Duration::from_millis(500);

/// Runs until stopped; with an instance, reads the ECC queue every
/// [`ECC_POLL`] (logging a refused login as a real MID does) and, unless
/// told to ignore them, picks up the
/// `SystemCommand`s queued for this MID, oldest first: `restartService`
/// (what the instance's Validate queues) restarts the JVM;
/// `delete_mid_keypair` (Invalidate) is acknowledged — the key pair this
/// MID made at its start is what Validate will have the instance trust.
fn serve(
    registration: Option<&instance::Registration>,
    knobs: &Knobs,
    logs: &Logs,
    watch: &Watch,
) -> Jvm {
    let Some(registration) = registration else {
        return Jvm::Stopped(watch.wait());
    };
    loop {
        if let Some(interrupt) = watch.sleep(ECC_POLL) {
            return Jvm::Stopped(interrupt);
        }
        // Every call logs in again, as a real MID's do: once its user's
        // password is reset on the instance (or the user locked out or
        // deactivated), the next one is refused, and the MID says so.
        let commands = match instance::commands(registration) {
            Ok(commands) => commands,
            Err(error) if instance::is_refusal(&error) => {
                logs.agent(
                    MID_SERVER,
                    &format!(
                        "SEVERE Could not authenticate user '{}' on the ServiceNow instance.",
                        registration.user
                    ),
                );
                continue;
            }
            Err(error) => {
                logs.agent(
                    MID_SERVER,
                    &format!("WARNING Unable to read the ECC queue: {error}"),
                );
                continue;
            }
        };
        if !knobs.answer_commands {
            continue;
        }
        for command in commands {
            if let Err(error) = instance::mark(registration, &command, "processing") {
                logs.agent(
                    MID_SERVER,
                    &format!(
                        "WARNING Unable to pick up SystemCommand {}: {error}",
                        command.source
                    ),
                );
                continue;
            }
            let restart = match command.source.as_str() {
                "restartService" => {
                    logs.agent(
                        MID_SERVER,
                        "SystemCommand restartService: restarting the MID Server",
                    );
                    true
                }
                "delete_mid_keypair" => {
                    logs.agent(
                        MID_SERVER,
                        &format!(
                            "SystemCommand delete_mid_keypair ({}): the instance drops this MID's key pair until it is validated",
                            command.name
                        ),
                    );
                    false
                }
                other => {
                    logs.agent(
                        MID_SERVER,
                        &format!("WARNING SystemCommand {other} is not simulated: ignored"),
                    );
                    false
                }
            };
            if let Err(error) = instance::mark(registration, &command, "processed") {
                logs.agent(
                    MID_SERVER,
                    &format!(
                        "WARNING Unable to answer SystemCommand {}: {error}",
                        command.source
                    ),
                );
            }
            if restart {
                return Jvm::Restart;
            }
        }
    }
}

/// Why the MID stops before it has started.
enum Stop {
    Interrupted(Interrupt),
    Failed(String),
}

/// Updates the MID's `ecc_agent` record on the emulated instance; a
/// failure is logged, as a real MID's would be, and changes nothing else.
fn report(registration: &instance::Registration, status: &str, logs: &Logs) {
    match instance::report(registration, status) {
        Ok(reported) => {
            logs.agent(
                MID_SERVER,
                &format!("ecc_agent {} is {status}", registration.name),
            );
            if reported == instance::Reported::Validated {
                logs.agent(
                    MID_SERVER,
                    &format!("ecc_agent {} is validated", registration.name),
                );
            }
        }
        Err(error) => logs.agent(
            MID_SERVER,
            &format!(
                "WARNING Unable to update ecc_agent {}: {error}",
                registration.name
            ),
        ),
    }
}

/// The start-up sequence, up to `MID Server started`; with the
/// `instance_url` knob, the MID's record on the instance, reported Up.
fn start(
    agent_dir: &Path,
    knobs: &Knobs,
    logs: &Logs,
    watch: &Watch,
) -> Result<Option<instance::Registration>, Stop> {
    logs.agent(STARTUP, "Starting MID Server");
    match knobs.logs_at_start {
        LogsAtStart::Keep => {}
        LogsAtStart::Rotate => logs.rotate(),
        LogsAtStart::Truncate => logs.truncate(),
    }
    let config_path = agent_dir.join("config.xml");
    let bytes = Zeroizing::new(fs::read(&config_path).map_err(|error| {
        Stop::Failed(format!("Unable to read {}: {error}", config_path.display()))
    })?);
    let config = ConfigXml::parse(&bytes).map_err(|error| Stop::Failed(parser_error(&error)))?;

    let keystore_path = keystore::path(agent_dir);
    let needs_key_pair = config
        .get(names::KEY_PAIR_ID)
        .is_none_or(|parameter| parameter.value().trim().is_empty());
    let key = if needs_key_pair {
        logs.agent(
            STARTUP,
            "No keypairs.mid_id in config.xml: generating a new key pair",
        );
        keystore::create(&keystore_path).map_err(|error| {
            Stop::Failed(format!(
                "Unable to create keystore {}: {error}",
                keystore_path.display()
            ))
        })?
    } else {
        keystore::load(&keystore_path).map_err(|error| {
            Stop::Failed(format!(
                "Unable to load keystore {}: {error}",
                keystore_path.display()
            ))
        })?
    };

    let secrets = unsecure(&config, &key)?;
    let mut registration = None;
    if let Some(user) = config.get(names::USERNAME) {
        let password = match config.get(names::PASSWORD) {
            Some(parameter) => secrets
                .iter()
                .find(|secret| secret.name == parameter.name())
                .map_or_else(
                    || Zeroizing::new(parameter.value().to_string()),
                    |secret| secret.plaintext.clone(),
                ),
            None => Zeroizing::new(String::new()),
        };
        log_in(user.value(), &password, knobs, logs, watch)?;
        registration = knobs
            .instance_url
            .as_ref()
            .map(|url| instance::Registration {
                url: url.clone(),
                ca_file: knobs.instance_ca.clone(),
                user: user.value().to_string(),
                password: password.clone(),
                name: config
                    .get("name")
                    .map_or("", |parameter| parameter.value())
                    .to_string(),
                connection: std::sync::OnceLock::new(),
            });
        if let Some(found) = registration.as_mut() {
            overrides::apply(found, logs, |user, password| {
                log_in(user, password, knobs, logs, watch)
            })?;
        }
    } else {
        logs.agent(
            STARTUP,
            "No mid.instance.username: using mutual TLS authentication",
        );
    }

    let mut sealed = Vec::new();
    for secret in secrets.iter().filter(|secret| secret.was_plaintext) {
        let value = cipher::encrypt(&key, &secret.plaintext)
            .map_err(|error| Stop::Failed(format!("Unable to encrypt {}: {error}", secret.name)))?;
        sealed.push((secret.name.as_str(), value));
    }
    let mid_id = if needs_key_pair {
        Some(random::uuid_v4().map_err(|error| Stop::Failed(error.to_string()))?)
    } else {
        None
    };
    let mut operations: Vec<Operation<'_>> = sealed
        .iter()
        .map(|(name, value)| Operation::Set {
            name,
            value,
            sensitive: true,
        })
        .collect();
    if let Some(mid_id) = &mid_id {
        operations.push(Operation::Set {
            name: names::KEY_PAIR_ID,
            value: mid_id,
            sensitive: false,
        });
    }
    let edited = config
        .edit(&operations)
        .map_err(|error| Stop::Failed(format!("Unable to update config.xml: {error}")))?;
    if let Some(document) = edited.document {
        config_file::replace(&config_path, document.bytes()).map_err(|error| {
            Stop::Failed(format!(
                "Unable to write {}: {error}",
                config_path.display()
            ))
        })?;
        let changed: Vec<&str> = edited
            .changes
            .iter()
            .map(|change| change.param.as_str())
            .collect();
        logs.agent(
            STARTUP,
            &format!("Updated config.xml: {}", changed.join(", ")),
        );
    }

    let url = config.get("url").map_or("", |parameter| parameter.value());
    logs.agent(
        STARTUP,
        &format!("Successfully connected to instance: {url}"),
    );
    logs.agent(STARTUP, "MID Server started");
    if let Some(registration) = &registration {
        report(registration, "Up", logs);
    }
    Ok(registration)
}

fn parser_error(error: &ReadError) -> String {
    match error.location() {
        Some(at) => format!(
            "XML parser error: config.xml line {}, column {}: {error}",
            at.line, at.column
        ),
        None => format!("XML parser error: config.xml: {error}"),
    }
}

/// A secure parameter's value in the clear.
struct Secret {
    name: String,
    plaintext: Zeroizing<String>,
    /// Written in the clear: the MID encrypts it once it has logged in.
    was_plaintext: bool,
}

/// Opens every secure parameter; empty values and provider references
/// (`cyberark: …`) are left alone.
fn unsecure(config: &ConfigXml, key: &keystore::Key) -> Result<Vec<Secret>, Stop> {
    let mut secrets = Vec::new();
    for parameter in config
        .parameters()
        .iter()
        .filter(|parameter| parameter.is_secure())
    {
        let name = parameter.name().to_string();
        match SecretForm::classify(parameter.value()) {
            SecretForm::Encrypted => {
                let plaintext = cipher::decrypt(key, parameter.value()).map_err(|error| {
                    Stop::Failed(format!(
                        "Unable to unsecure parameter {name}: Problem while decrypting: {error}"
                    ))
                })?;
                secrets.push(Secret {
                    name,
                    plaintext,
                    was_plaintext: false,
                });
            }
            SecretForm::Plaintext => secrets.push(Secret {
                name,
                plaintext: Zeroizing::new(parameter.value().to_string()),
                was_plaintext: true,
            }),
            SecretForm::Empty | SecretForm::ProviderReference => {}
        }
    }
    Ok(secrets)
}

/// Logs in, retrying every [`LOGIN_RETRY`] while the instance refuses, as a
/// real MID does (and so locks users out).
fn log_in(
    user: &str,
    password: &str,
    knobs: &Knobs,
    logs: &Logs,
    watch: &Watch,
) -> Result<(), Stop> {
    logs.agent(
        STARTUP,
        &format!("Setting basic authentication with user {user}"),
    );
    if knobs.login_stalls_if_user.as_deref() == Some(user) {
        // Stalled at the login: not a line more until stopped.
        return Err(Stop::Interrupted(watch.wait()));
    }
    loop {
        let accepted = match &knobs.instance_url {
            Some(url) => instance::accepts_url(url, knobs.instance_ca.as_deref(), user, password),
            None => instance::accepts(knobs.instance.as_deref(), user, password),
        };
        match accepted {
            Ok(true) => return Ok(()),
            Ok(false) => logs.agent(
                STARTUP,
                &format!("Could not authenticate user '{user}' on the ServiceNow instance."),
            ),
            Err(error) => logs.agent(
                STARTUP,
                &format!("SEVERE Unable to reach the ServiceNow instance (lab: {error})"),
            ),
        }
        if let Some(interrupt) = watch.sleep(LOGIN_RETRY) {
            return Err(Stop::Interrupted(interrupt));
        }
    }
}

/// What ends a MID from outside.
#[derive(Clone, Copy)]
enum Interrupt {
    Terminate,
    OwnerGone(i32),
}

impl fmt::Display for Interrupt {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Interrupt::Terminate => formatter.write_str("TERM trapped.  Shutting down."),
            Interrupt::OwnerGone(pid) => {
                write!(formatter, "Owner process {pid} is gone.  Shutting down.")
            }
        }
    }
}

/// Watches for SIGTERM and for the owner's exit.
struct Watch {
    owner: Option<i32>,
    /// Whose knobs are read again at SIGTERM: `stop_hangs` set since the
    /// start (`midfleet lab fault HOST hangs-at-stop`) makes this stop hang.
    agent_dir: std::path::PathBuf,
}

impl Watch {
    fn interrupted(&self) -> Option<Interrupt> {
        if process::terminate_requested() {
            if knobs::read(&self.agent_dir).is_ok_and(|knobs| knobs.stop_hangs) {
                process::handle_terminate(true);
                process::clear_terminate();
            } else {
                return Some(Interrupt::Terminate);
            }
        }
        self.owner
            .filter(|owner| !process::is_alive(*owner))
            .map(Interrupt::OwnerGone)
    }

    /// Sleeps `duration`, or less when interrupted.
    fn sleep(&self, duration: Duration) -> Option<Interrupt> {
        let deadline = Instant::now() + duration;
        loop {
            if let Some(interrupt) = self.interrupted() {
                return Some(interrupt);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            thread::sleep(left.min(TICK));
        }
    }

    /// Sleeps until interrupted.
    fn wait(&self) -> Interrupt {
        loop {
            if let Some(interrupt) = self.sleep(Duration::from_secs(3600)) {
                return interrupt;
            }
        }
    }
}
