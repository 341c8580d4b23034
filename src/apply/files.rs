//! The files of one run: the new config.xml (with the plan's values
//! resolved), the state record, the transaction's parameters and the
//! history line. Secrets live in zeroizing buffers only.
//!
//! Must not: talk to a host.

use std::time::Instant;

use crate::config_xml::{names, ConfigXml, Operation};
use crate::facts;
use crate::plan::{HostPlan, PlannedOperation};
use crate::secret::SecretValue;
use crate::state::{RotationRecord, SaltedHash, StateRecord, FORMAT};
use crate::transport::shell_quote;

use super::*;

/// The files of one run.
pub(super) struct RunFiles {
    pub(super) params: String,
    pub(super) new: Option<zeroize::Zeroizing<Vec<u8>>>,
    /// The new conf/wrapper-override.conf, when the plan edits it.
    pub(super) wrapper_new: Option<zeroize::Zeroizing<Vec<u8>>>,
    pub(super) state: String,
    pub(super) history: String,
    pub(super) written: Vec<String>,
    pub(super) lease_seconds: u64,
}

pub(super) fn run_files(
    host: &HostPlan,
    values: &Values<'_>,
    facts: &facts::Facts,
    read_at: Instant,
    original: &[u8],
    settings: &ApplySettings,
) -> Result<RunFiles, FilesError> {
    let document = ConfigXml::parse(original).map_err(|source| FilesError::Read {
        config: host.config.clone(),
        source,
    })?;
    let mut resolved: Vec<(String, SecretValue, bool)> = Vec::new();
    let mut unset: Vec<String> = Vec::new();
    for operation in &host.operations {
        let (param, source) = match operation {
            PlannedOperation::Set { param, value } => (param, Source::Plain(value)),
            PlannedOperation::SetSecret { param, reference } => (param, Source::Secret(reference)),
            PlannedOperation::SetLiteralSensitive { param } => (param, Source::Literal),
            PlannedOperation::Unset { param } => {
                unset.push(param.clone());
                continue;
            }
        };
        resolved.push(resolve(&host.host, param, source, values)?);
    }
    let operations: Vec<Operation<'_>> = resolved
        .iter()
        .map(|(param, value, sensitive)| Operation::Set {
            name: param,
            value: value.expose(),
            sensitive: *sensitive,
        })
        .chain(unset.iter().map(|param| Operation::Unset { name: param }))
        .collect();
    let edited = document
        .edit(&operations)
        .map_err(|source| FilesError::Edit {
            config: host.config.clone(),
            source,
        })?;
    let new = edited
        .document
        .map(|document| zeroize::Zeroizing::new(document.bytes().to_vec()));
    let (wrapper_new, wrapper_written) = wrapper_file(host, values, facts)?;

    // The state record: earlier records carried over, new ones for every
    // sensitive value written now, none for removed parameters.
    let mut record = facts
        .state
        .as_deref()
        .and_then(|bytes| StateRecord::parse(bytes).ok())
        .unwrap_or_default();
    record.format = FORMAT;
    record.run = settings.run.clone();
    if host.restore_from.is_some() {
        // The restored files are not what midfleet last wrote: no record,
        // so the next plan shows the drift and rewrites.
        record.written.clear();
    }
    for param in &unset {
        record.written.remove(names::canonical(param));
    }
    for (param, value, sensitive) in &resolved {
        let sensitive = *sensitive
            || names::is_password(param)
            || document
                .get(param)
                .is_some_and(|found| found.is_sensitive());
        if sensitive {
            record.written.insert(
                names::canonical(param).to_string(),
                SaltedHash::new(value.expose())?,
            );
        }
    }
    // A rotation records when, and to which user: the next plan's age.
    if let Some(rotation) = host.rotation.as_ref().filter(|rotation| rotation.due) {
        let now = crate::state::now_seconds().map_err(FilesError::Clock)?;
        record.rotation = Some(RotationRecord {
            at: crate::report::rfc3339(now),
            user: rotation.to_user.clone(),
            from: rotation.from_user.clone(),
        });
    }
    let action = if host.restore_from.is_some() {
        "rollback"
    } else if new.is_some() || wrapper_new.is_some() {
        "apply"
    } else if host.start_only {
        "start"
    } else {
        "restart"
    };
    let written: Vec<String> = resolved
        .iter()
        .map(|(param, _, _)| param.clone())
        .chain(unset.iter().cloned())
        .chain(wrapper_written)
        .collect();
    let (kind, unit, start, stop, status) = match &host.service {
        crate::inventory::ServiceSpec::Commands {
            start,
            stop,
            status,
        } => (
            "commands",
            String::new(),
            start.clone(),
            stop.clone(),
            status.clone(),
        ),
        _ => (
            host.service_found.as_deref().unwrap_or("mid.sh"),
            host.service_unit.clone().unwrap_or_default(),
            String::new(),
            String::new(),
            String::new(),
        ),
    };
    // The MID will rewrite the file when midfleet wrote a plaintext value
    // into a parameter marked secure (or one it adds as secure).
    let expect_rewrite = new.as_ref().is_some_and(|bytes| {
        ConfigXml::parse(bytes).is_ok_and(|document| {
            resolved.iter().any(|(param, _, _)| {
                document.get(param).is_some_and(|found| {
                    found.is_secure()
                        && crate::config_xml::SecretForm::classify(found.value())
                            == crate::config_xml::SecretForm::Plaintext
                })
            })
        })
    });
    let lease_seconds = STOP_TIMEOUT * 2 + settings.health_timeout * 2 + 90;
    // The host's clock when it was read, plus the time since: a kept read
    // may be minutes old when a later batch stages it.
    let host_now = facts
        .time
        .map_or_else(now, |time| time + read_at.elapsed().as_secs());
    let deadline = host_now + lease_seconds;
    let params = [
        ("RUN", settings.run.clone()),
        ("MID_HOME", host.mid_home.clone()),
        ("CONFIG", host.config.clone()),
        ("ACTION", action.to_string()),
        ("SERVICE_KIND", kind.to_string()),
        ("SERVICE_UNIT", unit),
        ("START_COMMAND", start),
        ("STOP_COMMAND", stop),
        ("STATUS_COMMAND", status),
        ("EXPECT_USER", host.expect_user.clone().unwrap_or_default()),
        (
            "ROLLBACK_USER",
            host.current_user.clone().unwrap_or_default(),
        ),
        (
            "KEY_PAIR_RESET",
            if host.key_pair_reset { "1" } else { "0" }.to_string(),
        ),
        ("DEADLINE", deadline.to_string()),
        ("HEALTH_TIMEOUT", settings.health_timeout.to_string()),
        ("STOP_TIMEOUT", STOP_TIMEOUT.to_string()),
        ("KEEP_BACKUPS", KEEP_BACKUPS.to_string()),
        (
            "RESTORE_FROM",
            host.restore_from.clone().unwrap_or_default(),
        ),
        (
            "WRAPPER",
            if wrapper_new.is_some() { "1" } else { "0" }.to_string(),
        ),
        (
            "EXPECT_REWRITE",
            if expect_rewrite { "1" } else { "0" }.to_string(),
        ),
    ]
    .iter()
    .map(|(name, value)| format!("{name}={}\n", shell_quote(value)))
    .collect::<String>();
    let history = format!(
        "{{\"run\":{},\"action\":{},\"params\":{},\"user\":{},\"started\":{}",
        json(&settings.run),
        json(action),
        serde_json::to_string(&written).unwrap_or_default(),
        json(&local_user()),
        now()
    );
    Ok(RunFiles {
        params,
        new,
        wrapper_new,
        state: record.to_json(),
        history,
        written,
        lease_seconds,
    })
}

/// Where a planned value comes from, for a config.xml parameter and a
/// wrapper-override.conf property alike.
enum Source<'a> {
    /// Written in the plan (not sensitive).
    Plain(&'a str),
    /// A secret reference, resolved again at apply.
    Secret(&'a crate::secret::SecretRef),
    /// The playbook's literal sensitive value (a plan applied in the run
    /// that made it only).
    Literal,
}

/// The value to write for `name` on `host`, as (name, value, sensitive):
/// the one resolution config.xml's and wrapper-override.conf's operations
/// share.
fn resolve(
    host: &str,
    name: &str,
    source: Source<'_>,
    values: &Values<'_>,
) -> Result<(String, SecretValue, bool), FilesError> {
    let (value, sensitive) = match source {
        Source::Plain(value) => (SecretValue::new(value.to_string()), false),
        Source::Secret(reference) => {
            let value = values
                .secrets
                .get(reference)
                .ok_or_else(|| FilesError::Unresolved {
                    reference: reference.clone(),
                    param: name.to_string(),
                })?;
            (value.clone(), true)
        }
        Source::Literal => {
            let value = values
                .literals
                .get(&(host.to_string(), name.to_string()))
                .ok_or_else(|| FilesError::Literal {
                    param: name.to_string(),
                })?;
            (value.clone(), true)
        }
    };
    Ok((name.to_string(), value, sensitive))
}

/// A new file's bytes, when there is one (it may hold a secret).
type NewBytes = Option<zeroize::Zeroizing<Vec<u8>>>;

/// The new conf/wrapper-override.conf (`None`: the plan leaves it alone,
/// or it already holds what was asked), edited from the bytes read now
/// with the plan's operations and values; and the properties written, as
/// `wrapper-override.conf:KEY`.
fn wrapper_file(
    host: &HostPlan,
    values: &Values<'_>,
    facts: &facts::Facts,
) -> Result<(NewBytes, Vec<String>), FilesError> {
    use crate::plan::WrapperOperation;
    use crate::wrapper_conf::{Operation as WrapperEdit, WrapperConf, FILE_NAME};
    if host.wrapper_operations.is_empty() {
        return Ok((None, Vec::new()));
    }
    let path = crate::plan::wrapper_path(&host.config);
    let failure = |reason: String| FilesError::Wrapper {
        path: path.clone(),
        reason,
    };
    let file = facts
        .wrapper
        .as_ref()
        .map_err(|problem| failure(problem.to_string().replacen("config.xml", FILE_NAME, 1)))?;
    let document = WrapperConf::parse(&file.bytes).map_err(&failure)?;
    let mut resolved: Vec<(String, SecretValue, bool)> = Vec::new();
    let mut unset = Vec::new();
    let mut arguments = None;
    for operation in &host.wrapper_operations {
        let (key, source) = match operation {
            WrapperOperation::Set { key, value } => (key, Source::Plain(value)),
            WrapperOperation::SetSecret { key, reference } => (key, Source::Secret(reference)),
            WrapperOperation::SetLiteralSensitive { key } => (key, Source::Literal),
            WrapperOperation::Unset { key } => {
                unset.push(key.clone());
                continue;
            }
            WrapperOperation::Arguments { values } => {
                arguments = Some(values.clone());
                continue;
            }
        };
        resolved.push(resolve(&host.host, key, source, values)?);
    }
    let operations: Vec<WrapperEdit<'_>> = resolved
        .iter()
        .map(|(key, value, sensitive)| WrapperEdit::Set {
            key,
            value: value.expose(),
            sensitive: *sensitive,
        })
        .chain(unset.iter().map(|key| WrapperEdit::Unset { key }))
        .chain(
            arguments
                .iter()
                .map(|values| WrapperEdit::Arguments { values }),
        )
        .collect();
    let edited = document
        .edit(&operations)
        .map_err(|error| failure(error.to_string()))?;
    let written = edited
        .changes
        .iter()
        .map(|change| format!("{FILE_NAME}:{}", change.param))
        .collect();
    Ok((edited.bytes.map(zeroize::Zeroizing::new), written))
}

pub(super) fn json(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

pub(super) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Who runs midfleet (for history and audit).
pub fn local_user() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .or_else(crate::endpoint::uid_user_name)
        // SAFETY: getuid has no preconditions and cannot fail.
        .unwrap_or_else(|| format!("uid {}", unsafe { libc::getuid() }))
}
