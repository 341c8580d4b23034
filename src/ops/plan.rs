//! Making a plan from an inventory and a playbook: validate (as `check`),
//! resolve the secrets, read every host (one exec each), and build each
//! host's plan. Shared by `plan` and `apply`.
//!
//! Must not: print (progress and warnings go to the operator) or change a
//! host.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::apply::{KeptRead, Values};
use crate::config_xml::names;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::facts::gather::gather_keeping;
use crate::instance::preflight;
use crate::inventory::SshConfig;
use crate::ops::hosts::select_hosts;
use crate::plan::{
    build_host_plan, InstanceChange, InstancePlan, InstanceUserPlan, Plan, PlanInputs,
    PlaybookInfo, RolloutSettings, SecretInfo, FORMAT_VERSION,
};
use crate::playbook::desired::{self, DesiredHost, DesiredParameter, DesiredValue};
use crate::playbook::{Instance, InstanceUser, Playbook};
use crate::report::Reporter;
use crate::secret::{SecretRef, SecretResolver, SecretValue, SecretWarning};
use crate::state::SaltedHash;
use crate::template::Templates;
use crate::transport::Transport;

use super::connection::{raise_file_limit_keeping, Connection};
use super::hosts::Selection;
use super::{Operator, OpsError};

/// What a plan is made from.
pub struct PlanRequest<'a> {
    pub inventory: &'a super::hosts::InventorySource,
    pub playbook: &'a std::path::Path,
    pub limit: Option<&'a str>,
    pub shard: Option<crate::inventory::Shard>,
    pub ssh_config: &'a SshConfig,
    pub forks: usize,
    /// Hosts whose read session to keep open for an apply that follows at
    /// once (0: none; see `KeptRead`).
    pub keep_sessions: usize,
    /// `--rotate-now`: every host of a `rotate:` playbook rotates.
    pub rotate_now: bool,
}

/// A plan, and what is needed to apply it at once.
pub struct Planned {
    pub plan: Plan,
    pub playbook: Playbook,
    /// What resolving the secrets warned about (a secret file others can
    /// read…), for the operator.
    pub warnings: Vec<Diagnostic>,
    /// Resolved secret values, by reference (never serialised).
    pub secrets: BTreeMap<SecretRef, SecretValue>,
    /// Literal values of sensitive parameters, by host and parameter.
    pub literals: BTreeMap<(String, String), SecretValue>,
    /// Each host's read session (`--timings`).
    pub timings: Vec<(String, crate::transport::Timings)>,
    /// How each host was reached and read (`-v`).
    pub details: Vec<(String, crate::facts::gather::ReadDetail)>,
    /// The input files read, with what each is (`-v`).
    pub files: Vec<(&'static str, std::path::PathBuf)>,
    /// Read sessions kept open for the apply, by host: only hosts whose
    /// plan changes something.
    pub kept: BTreeMap<String, KeptRead>,
}

/// Why no plan could be made.
pub enum PlanFailure {
    /// Bad inventory, playbook or secrets: nothing was contacted.
    Input(Vec<Diagnostic>),
    /// Something else (worker threads…).
    Other(String),
}

/// Validates, resolves secrets, reads every selected host and plans.
pub fn make_plan(
    request: &PlanRequest<'_>,
    transport: &Transport,
    reporter: &dyn Reporter,
) -> Result<Planned, PlanFailure> {
    let templates = Templates::new().with_playbook(request.playbook);
    let mut diagnostics = Diagnostics::new();
    let (playbook, found) = Playbook::load(request.playbook);
    diagnostics.extend(found);
    let Some(playbook) = playbook.filter(|_| !diagnostics.has_errors()) else {
        return Err(PlanFailure::Input(diagnostics.merged()));
    };
    // Recorded so that `apply --plan` resolves only this playbook's secrets.
    let (playbook_file, playbook_sha256) = crate::plan::file::playbook_digest(request.playbook)
        .map_err(|message| {
            PlanFailure::Input(vec![Diagnostic::error(
                Some(crate::diagnostic::Origin::file(request.playbook)),
                format!("cannot read the playbook again: {message}"),
            )])
        })?;
    let selected = select_hosts(
        request.inventory,
        &playbook.hosts,
        Some(&playbook.hosts_origin),
        request.limit,
        request.shard,
        &templates,
        &mut diagnostics,
    );
    let mut files = vec![("playbook", request.playbook.to_path_buf())];
    files.extend(
        selected
            .inventory
            .files
            .iter()
            .map(|file| ("inventory", file.clone())),
    );
    files.extend(selected.inventory.vars_files.iter().map(|(file, vaulted)| {
        let kind = if *vaulted {
            "vaulted variables"
        } else {
            "variables"
        };
        (kind, file.clone())
    }));
    let mut desired_hosts: Vec<DesiredHost> = Vec::new();
    for host in &selected.hosts {
        match desired::render(&playbook, host, &templates) {
            Ok(desired) => desired_hosts.push(desired),
            Err(problems) => problems
                .into_iter()
                .for_each(|problem| diagnostics.push(problem)),
        }
    }
    for warning in selected.inventory.vault_warnings() {
        diagnostics.push(warning);
    }
    let mut endpoints = Vec::new();
    for desired in &desired_hosts {
        match request.ssh_config.endpoint(&desired.host) {
            Ok(endpoint) => endpoints.push(endpoint),
            Err(error) => diagnostics
                .push(Diagnostic::error(None, error.to_string()).for_host(&desired.host.name)),
        }
    }
    if diagnostics.has_errors() {
        return Err(PlanFailure::Input(diagnostics.merged()));
    }
    // Secrets: each distinct reference once, before any host is contacted.
    let mut resolver = SecretResolver::new();
    let mut secrets = BTreeMap::new();
    let mut literals = BTreeMap::new();
    for desired in &desired_hosts {
        // `wrapper:` values are resolved as `set:` values are (their keys,
        // `wrapper.*`, never name a config.xml parameter).
        let wrapper_values = desired
            .wrapper
            .iter()
            .filter_map(|wanted| match &wanted.value {
                crate::playbook::desired::DesiredWrapperValue::Set(parameter) => Some(parameter),
                _ => None,
            });
        for parameter in desired.set.iter().chain(wrapper_values) {
            match &parameter.value {
                DesiredValue::Secret(reference) if !secrets.contains_key(reference) => {
                    match resolver.resolve_in(reference, parameter.scope.as_ref()) {
                        Ok(value) => {
                            secrets.insert(reference.clone(), value);
                        }
                        Err(error) => {
                            let hint = error.hint().map(str::to_string);
                            let mut diagnostic = Diagnostic::error(None, error.to_string());
                            diagnostic.hint = hint;
                            diagnostics.push(diagnostic);
                        }
                    }
                }
                // Every literal: one may be sensitive only because a
                // host's file marks the parameter secure.
                DesiredValue::Literal(value) => {
                    literals.insert(
                        (desired.host.name.clone(), parameter.name.clone()),
                        SecretValue::new(value.clone()),
                    );
                }
                _ => {}
            }
        }
    }
    // The instance section's own secrets, also before any host.
    if let Some(instance) = &playbook.instance {
        let mut references = vec![&instance.password];
        if let InstanceUser::Secret(reference) = &instance.user {
            references.push(reference);
        }
        for reference in references {
            if secrets.contains_key(reference) {
                continue;
            }
            match resolver.resolve(reference) {
                Ok(value) => {
                    secrets.insert(reference.clone(), value);
                }
                Err(error) => {
                    let hint = error.hint().map(str::to_string);
                    let mut diagnostic = Diagnostic::error(
                        Some(instance.origin.clone()),
                        format!("instance: {error}"),
                    );
                    diagnostic.hint = hint;
                    diagnostics.push(diagnostic);
                }
            }
        }
    }
    let warnings: Vec<Diagnostic> = resolver
        .take_warnings()
        .iter()
        .map(secret_warning)
        .collect();
    if diagnostics.has_errors() {
        warnings
            .iter()
            .for_each(|warning| diagnostics.push(warning.clone()));
        return Err(PlanFailure::Input(diagnostics.merged()));
    }
    let mut secret_infos = Vec::new();
    for (reference, value) in &secrets {
        let value_hash = SaltedHash::new(value.expose())
            .map_err(|error| PlanFailure::Other(error.to_string()))?;
        secret_infos.push(SecretInfo {
            reference: reference.to_string(),
            value_hash,
        });
    }
    let pairs = desired_hosts
        .iter()
        .map(|desired| desired.host.clone())
        .zip(endpoints.iter().cloned())
        .collect();
    reporter.set_total(endpoints.len());
    let reads = gather_keeping(
        transport,
        pairs,
        request.forks,
        request.keep_sessions,
        reporter,
    )
    .map_err(|error| PlanFailure::Other(error.to_string()))?;
    let lookup = |reference: &SecretRef| {
        secrets
            .get(reference)
            .map(|value| zeroize::Zeroizing::new(value.expose().to_string()))
    };
    // With `rotate:`, each host's rotation is decided from its facts; a
    // host that rotates now is given its new user and a password
    // generated here (or, joining its shared pair's group, the stored
    // one), held like a sensitive literal (never in a plan file).
    let mut rotations: Vec<Option<crate::plan::rotation::RotationPlan>> = Vec::new();
    let mut rotation_errors: Vec<(usize, String)> = Vec::new();
    if let Some(rotate) = &playbook.rotate {
        let now = crate::state::now_seconds()
            .map_err(|message| PlanFailure::Input(vec![Diagnostic::error(None, message)]))?;
        for (desired, read) in desired_hosts.iter().zip(&reads) {
            let mut decided = read
                .facts
                .as_ref()
                .ok()
                .and_then(|facts| rotation_of(rotate, desired, facts, now, request.rotate_now));
            if let (Some(decided), Some(store)) = (
                decided.as_mut().filter(|decided| decided.due),
                &rotate.store,
            ) {
                let read = match store {
                    crate::playbook::RotateStore::Command {
                        read: Some((program, arguments)),
                        ..
                    } => Some(crate::playbook::RotateStore::Command {
                        program: program.clone(),
                        arguments: arguments.clone(),
                        read: None,
                    }),
                    _ => None,
                };
                let read = read
                    .map(|read| render_store(&read, desired, &decided.to_user, &templates))
                    .transpose();
                match render_store(store, desired, &decided.to_user, &templates)
                    .and_then(|target| Ok((target, read?)))
                {
                    Ok((target, read)) => {
                        decided.store = Some(target);
                        decided.store_read = read.and_then(|read| match read {
                            crate::plan::rotation::StoreTarget::Command(words) => Some(words),
                            crate::plan::rotation::StoreTarget::File(_) => None,
                        });
                    }
                    Err(message) => diagnostics.push(
                        Diagnostic::error(Some(rotate.origin.clone()), message)
                            .for_host(&desired.host.name),
                    ),
                }
            }
            rotations.push(decided);
        }
        // One store file, one user: hosts moving to different users
        // whose file renders the same would each overwrite the password
        // stored before (and a group joining later would read another
        // user's password and try it on a user MIDs log in with).
        let mut by_path: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (index, decided) in rotations.iter().enumerate() {
            if let Some(crate::plan::rotation::StoreTarget::File(path)) = decided
                .as_ref()
                .filter(|decided| decided.due)
                .and_then(|decided| decided.store.as_ref())
            {
                by_path.entry(path.clone()).or_default().push(index);
            }
        }
        for (path, members) in &by_path {
            let to_user = |index: usize| {
                rotations[index]
                    .as_ref()
                    .map_or("", |decided| decided.to_user.as_str())
                    .to_ascii_lowercase()
            };
            if members
                .iter()
                .all(|&index| to_user(index) == to_user(members[0]))
            {
                continue;
            }
            let listed: Vec<String> = members
                .iter()
                .map(|&index| {
                    format!(
                        "{} (to {})",
                        desired_hosts[index].host.name,
                        rotations[index]
                            .as_ref()
                            .map_or("", |decided| decided.to_user.as_str())
                    )
                })
                .collect();
            for &index in members {
                rotation_errors.push((index, format!(
                    "`rotate.store.file` renders to `{path}` for {}: each would overwrite the password stored before; put {{{{ rotate_user }}}} in the path",
                    listed.join(" and ")
                )));
            }
        }
        let pairs: Vec<Option<&[String; 2]>> = desired_hosts
            .iter()
            .map(|desired| desired.rotation_users.as_ref())
            .collect();
        let names: Vec<&str> = desired_hosts
            .iter()
            .map(|desired| desired.host.name.as_str())
            .collect();
        let moves = crate::plan::rotation::group(&pairs, &mut rotations, &names);
        // Per host: the password it moves with.
        let mut passwords: BTreeMap<usize, SecretValue> = BTreeMap::new();
        let generate = || {
            rotate
                .password
                .generate()
                .map_err(|error| PlanFailure::Other(format!("cannot read /dev/urandom: {error}")))
        };
        // A group needs a store it can read its one password back from.
        let readable_store = matches!(
            rotate.store,
            Some(crate::playbook::RotateStore::File { .. })
                | Some(crate::playbook::RotateStore::Command { read: Some(_), .. })
        );
        for group in &moves {
            use crate::plan::rotation::GroupMove;
            let members = match group {
                GroupMove::Fresh { members }
                | GroupMove::Join { members, .. }
                | GroupMove::Refused { members, .. } => members,
            };
            if !readable_store {
                let listed: Vec<&str> = members.iter().map(|&index| names[index]).collect();
                for &index in members {
                    rotation_errors.push((index, format!(
                        "hosts {} (and the others of `{}`) share one pair of users: a shared pair needs `rotate.store` with a `file:`, or a `command:` and a `read:`, from which a run that did not finish takes the one password the group shares; or give each host its own pair, e.g. with {{{{ mid_name }}}} in `rotate.users`",
                        listed.join(", "),
                        pairs[index].map_or("", |pair| pair[0].as_str()),
                    )));
                }
                continue;
            }
            match group {
                GroupMove::Fresh { members } => {
                    let password = generate()?;
                    for &index in members {
                        passwords.insert(index, password.clone());
                    }
                }
                GroupMove::Join { members, user } => {
                    for &index in members {
                        match stored_password(rotations[index].as_ref()) {
                            Ok(password) => {
                                passwords.insert(index, password);
                            }
                            Err(message) => rotation_errors.push((index, format!(
                                "joining its group on `{user}` needs the stored password, and {message}"
                            ))),
                        }
                    }
                }
                GroupMove::Refused { members, reason } => {
                    for &index in members {
                        rotation_errors.push((index, reason.clone()));
                    }
                }
            }
        }
        // A pair shared with hosts outside `--limit`/`--shard` is a group
        // too: moving its selected members alone without a store the
        // group's one password can be read back from would leave the
        // others unable to follow (their next user in use, no password).
        if !readable_store && (request.limit.is_some() || request.shard.is_some()) {
            let everyone = select_hosts(
                request.inventory,
                &playbook.hosts,
                Some(&playbook.hosts_origin),
                None,
                None,
                &templates,
                &mut Diagnostics::default(),
            );
            let key = |pair: &[String; 2]| (pair[0].to_lowercase(), pair[1].to_lowercase());
            for (index, desired) in desired_hosts.iter().enumerate() {
                let (Some(pair), Some(_)) = (
                    desired.rotation_users.as_ref(),
                    rotations[index].as_ref().filter(|decided| decided.due),
                ) else {
                    continue;
                };
                if rotation_errors.iter().any(|(failed, _)| *failed == index) {
                    continue;
                }
                let outside: Vec<&str> = everyone
                    .hosts
                    .iter()
                    .filter(|host| !names.contains(&host.name.as_str()))
                    .filter(|host| {
                        let rendered: Vec<String> = rotate
                            .users
                            .iter()
                            .filter_map(|template| {
                                templates.render(template, &host.template_context).ok()
                            })
                            .collect();
                        <[String; 2]>::try_from(rendered)
                            .is_ok_and(|theirs| key(&theirs) == key(pair))
                    })
                    .map(|host| host.name.as_str())
                    .collect();
                if !outside.is_empty() {
                    rotation_errors.push((index, format!(
                        "{} shares its pair `{}`/`{}` with {} (not selected): a shared pair needs `rotate.store` with a `file:`, or a `command:` and a `read:`, from which the others take the one password the group shares; or give each host its own pair, e.g. with {{{{ mid_name }}}} in `rotate.users`",
                        desired.host.name,
                        pair[0],
                        pair[1],
                        outside.join(", "),
                    )));
                }
            }
        }
        for (index, desired) in desired_hosts.iter_mut().enumerate() {
            let Some(decided) = rotations[index].as_ref().filter(|decided| decided.due) else {
                continue;
            };
            if rotation_errors.iter().any(|(failed, _)| *failed == index) {
                continue;
            }
            let password = match passwords.remove(&index) {
                Some(password) => password,
                None => generate()?,
            };
            let password_name = names::PASSWORD.to_string();
            desired.set.push(DesiredParameter {
                name: names::USERNAME.to_string(),
                value: DesiredValue::Literal(decided.to_user.clone()),
                scope: None,
                sensitive: false,
            });
            desired.set.push(DesiredParameter {
                name: password_name.clone(),
                value: DesiredValue::Literal(password.expose().to_string()),
                scope: None,
                sensitive: true,
            });
            literals.insert((desired.host.name.clone(), password_name), password);
        }
    }
    if diagnostics.has_errors() {
        return Err(PlanFailure::Input(diagnostics.merged()));
    }
    // With `instance:`, what the instance says of each MID (its record
    // and configuration parameters) decides its kind: asked once, before
    // any host is planned, on the connection the survey then uses.
    let mut instance_read = playbook
        .instance
        .as_ref()
        .map(|instance| read_instance(instance, &reads, &secrets));
    let no_records = BTreeMap::new();
    let records = instance_read
        .as_ref()
        .and_then(|read| read.records.as_ref())
        .unwrap_or(&no_records);
    let mut hosts: Vec<crate::plan::HostPlan> = desired_hosts
        .iter()
        .zip(&reads)
        .map(|(desired, read)| {
            let instance = match instance_read.as_ref().filter(|read| read.records.is_some()) {
                None => crate::plan::kind::Instance::NotAsked,
                Some(_) => match mid_name(read).and_then(|name| records.get(&name)) {
                    Some(record) => crate::plan::kind::Instance::Record(record),
                    None => crate::plan::kind::Instance::NoRecord,
                },
            };
            build_host_plan(&PlanInputs {
                desired,
                endpoint: &read.endpoint,
                facts: read.facts.as_ref().map_err(|error| error.message.as_str()),
                secret: &lookup,
                restart: playbook.restart,
                instance,
                allow_override: playbook
                    .instance
                    .as_ref()
                    .is_some_and(|instance| instance.allow_override),
            })
        })
        .collect();
    for (host, rotation) in hosts.iter_mut().zip(rotations) {
        host.rotation = rotation;
    }
    for (index, message) in rotation_errors {
        let host = &mut hosts[index];
        host.status = crate::plan::HostStatus::Error;
        host.error = Some(format!("rotation: {message}"));
        host.changes.clear();
        host.operations.clear();
        host.restart = false;
        host.key_pair_reset = false;
        host.expect_user = host.current_user.clone();
    }
    let validations = match &playbook.instance {
        Some(instance) => crate::instance::validation::plan(&mut hosts, instance.validate),
        None => Vec::new(),
    };
    let mut plan = Plan {
        format_version: FORMAT_VERSION,
        midfleet_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: crate::report::now_rfc3339(),
        playbook: PlaybookInfo {
            path: request.playbook.display().to_string(),
            name: playbook.name.clone(),
            file: Some(playbook_file),
            sha256: Some(playbook_sha256),
        },
        rollout: RolloutSettings::new(&playbook.rollout, &playbook.health, playbook.restart),
        secrets: secret_infos,
        hosts,
        instance: None,
        instance_changes: Vec::new(),
    };
    let timings = reads
        .iter()
        .filter_map(|read| Some((read.host.name.clone(), read.timings.clone()?)))
        .collect();
    let details = reads
        .iter()
        .filter_map(|read| Some((read.host.name.clone(), read.detail.clone()?)))
        .collect();
    let kept = crate::apply::kept_for_changes(reads, &plan.hosts);
    if let Some(instance) = &playbook.instance {
        let (instance_plan, mut changes) =
            survey_instance(instance, instance_read.take(), &plan, &secrets, &literals);
        // A rotation whose idle user a MID logs in as now: those hosts
        // are errors, nothing is changed for them; the others go on.
        let blocked: Vec<(String, String)> = instance_plan
            .preflight
            .iter()
            .filter(|login| login.status == crate::plan::LoginStatus::InUse)
            .flat_map(|login| {
                let message = login.message.clone().unwrap_or_default();
                login
                    .hosts
                    .iter()
                    .map(move |host| (host.clone(), message.clone()))
            })
            .collect();
        let mut blocked_mids = Vec::new();
        for host in plan.hosts.iter_mut() {
            if let Some((_, message)) = blocked.iter().find(|(name, _)| *name == host.host) {
                host.status = crate::plan::HostStatus::Error;
                host.error = Some(format!("rotation: {message}"));
                host.changes.clear();
                host.operations.clear();
                host.restart = false;
                host.key_pair_reset = false;
                host.expect_user = host.current_user.clone();
                blocked_mids.extend(host.mid_name.clone());
            }
        }
        let validations: Vec<InstanceChange> = validations
            .into_iter()
            .filter(|change| !blocked_mids.contains(&change.user))
            .collect();
        // Made before any host, after each restart, after the run.
        changes.extend(validations);
        changes.extend(preflight::retirements(&plan, instance.retire_old_user));
        plan.instance = Some(instance_plan);
        plan.instance_changes = changes;
    }
    Ok(Planned {
        plan,
        playbook,
        warnings,
        secrets,
        literals,
        timings,
        details,
        files,
        kept,
    })
}

/// The password a host joining its shared pair's group moves with: what
/// its store file holds (the one the group's fresh move stored).
fn stored_password(
    rotation: Option<&crate::plan::rotation::RotationPlan>,
) -> Result<SecretValue, String> {
    use crate::plan::rotation::StoreTarget;
    let (text, source) = match (
        rotation.and_then(|rotation| rotation.store.as_ref()),
        rotation.and_then(|rotation| rotation.store_read.as_ref()),
    ) {
        (Some(StoreTarget::File(path)), _) => (
            zeroize::Zeroizing::new(
                std::fs::read_to_string(path).map_err(|error| format!("{path}: {error}"))?,
            ),
            path.clone(),
        ),
        (Some(StoreTarget::Command(_)), Some(read)) => (
            super::store::read(read)?,
            format!("`{}`", read.first().map_or("", String::as_str)),
        ),
        _ => return Err("the playbook has no `rotate.store` to read it from".into()),
    };
    if text.is_empty() || crate::config_xml::check_xml_chars(&text).is_err() {
        return Err(format!("{source} does not give a password"));
    }
    Ok(SecretValue::new(text.to_string()))
}

/// `rotate.store` for one host: templates over its variables and
/// `rotate_user` (the user it moves to). A file path's rendered part may
/// not leave the folder its template starts with.
fn render_store(
    store: &crate::playbook::RotateStore,
    desired: &DesiredHost,
    to_user: &str,
    templates: &Templates,
) -> Result<crate::plan::rotation::StoreTarget, String> {
    use crate::plan::rotation::StoreTarget;
    use crate::playbook::RotateStore;
    let mut context = desired.host.template_context.clone();
    context.insert("rotate_user", to_user.to_string());
    let render = |template: &str| {
        templates
            .render(template, &context)
            .map_err(|error| format!("`rotate.store`: {error} in `{template}`"))
    };
    match store {
        RotateStore::Command {
            program, arguments, ..
        } => {
            let mut words = vec![program.clone()];
            for argument in arguments {
                words.push(render(argument)?);
            }
            Ok(StoreTarget::Command(words))
        }
        RotateStore::File { path } => {
            let rendered = render(path)?;
            let literal = path.split("{{").next().unwrap_or_default();
            let literal = literal.split("{%").next().unwrap_or_default();
            let folder = &literal[..literal.rfind('/').map_or(0, |at| at + 1)];
            let inside = rendered.strip_prefix(folder).is_some_and(|rest| {
                !rest.is_empty()
                    && !rest.starts_with('/')
                    && rest
                        .split('/')
                        .all(|part| !part.is_empty() && part != ".." && part != ".")
            });
            if !inside {
                return Err(format!(
                    "`rotate.store.file`: `{path}` renders to `{rendered}`, which leaves {folder}"
                ));
            }
            Ok(StoreTarget::File(rendered))
        }
    }
}

/// A host's rotation from its facts: its current user (config.xml) and
/// its last rotation (state.json). `None` when its file cannot be read
/// (its plan says why) or its MID has no user (mutual TLS).
fn rotation_of(
    rotate: &crate::playbook::Rotate,
    desired: &DesiredHost,
    facts: &crate::facts::Facts,
    now: u64,
    force: bool,
) -> Option<crate::plan::rotation::RotationPlan> {
    let users = desired.rotation_users.as_ref()?;
    let file = facts.config.as_ref().ok()?;
    let document = crate::config_xml::ConfigXml::parse(&file.bytes).ok()?;
    let current = document.get(names::USERNAME)?.value().to_string();
    let record = facts
        .state
        .as_deref()
        .and_then(|bytes| crate::state::StateRecord::parse(bytes).ok())
        .and_then(|record| record.rotation);
    Some(crate::plan::rotation::decide(
        &crate::plan::rotation::RotationInputs {
            users,
            max_age_days: rotate.max_age_days,
            current_user: Some(&current),
            record: record.as_ref(),
            now,
            force,
        },
    ))
}

/// `plan`: `playbook` planned on every host it selects, read-only (no
/// session kept).
pub fn plan(
    selection: &Selection,
    playbook: &Path,
    connection: &Connection,
    rotate_now: bool,
    operator: &dyn Operator,
) -> Result<Planned, OpsError> {
    let ssh_config = selection.ssh_config()?;
    let transport = connection.transport(false, operator)?;
    plan_on(
        &PlanRequest {
            inventory: &selection.inventory,
            playbook,
            limit: selection.limit.as_deref(),
            shard: selection.shard,
            ssh_config: &ssh_config,
            forks: connection.forks,
            keep_sessions: 0,
            rotate_now,
        },
        &transport,
        operator,
    )
}

/// Plans with progress: the file limit raised for the forks (and the
/// sessions to keep), the plan's warnings to the operator; problems in the
/// input are bad input (each one to the operator).
pub fn plan_on(
    request: &PlanRequest<'_>,
    transport: &Transport,
    operator: &dyn Operator,
) -> Result<Planned, OpsError> {
    let (keep_sessions, warning) = raise_file_limit_keeping(request.forks, request.keep_sessions);
    if let Some(warning) = warning {
        operator.warning(&warning);
    }
    let progress = operator.progress("plan", 0);
    let result = make_plan(
        &PlanRequest {
            keep_sessions,
            ..*request
        },
        transport,
        &*progress,
    );
    progress.finish();
    match result {
        Ok(planned) => {
            for (kind, file) in &planned.files {
                operator.file_read(kind, file);
            }
            for warning in &planned.warnings {
                operator.diagnostic(warning);
            }
            Ok(planned)
        }
        Err(PlanFailure::Input(diagnostics)) => {
            let errors = diagnostics
                .iter()
                .filter(|diagnostic| diagnostic.is_error())
                .count();
            for diagnostic in &diagnostics {
                operator.diagnostic(diagnostic);
            }
            Err(OpsError::input(format!(
                "{errors} problem{} in the inventory, playbook or secrets; no host was contacted",
                if errors == 1 { "" } else { "s" }
            )))
        }
        Err(PlanFailure::Other(message)) => Err(OpsError::failed(message)),
    }
}

/// Writes the plan file: created 0600 (never readable by others, even for
/// a moment), replaced atomically.
pub fn save(path: &Path, plan: &Plan) -> Result<(), OpsError> {
    let json =
        serde_json::to_string_pretty(plan).map_err(|error| OpsError::failed(error.to_string()))?;
    let directory = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temporary = directory.join(format!(
        ".{}.midfleet-tmp",
        path.file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("plan")
    ));
    let failure = |error: std::io::Error| OpsError::failed(format!("{}: {error}", path.display()));
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(failure)?;
    file.write_all(json.as_bytes())
        .and_then(|_| file.write_all(b"\n"))
        .and_then(|_| file.sync_all())
        .map_err(failure)?;
    std::fs::rename(&temporary, path).map_err(failure)
}

/// A secret's warning as a diagnostic.
pub fn secret_warning(warning: &SecretWarning) -> Diagnostic {
    Diagnostic::warning(None, warning.to_string()).with_hint(warning.hint.clone())
}

/// What the instance said of the plan's MIDs before their hosts were
/// planned, and the connection it was asked on.
struct InstanceRead {
    connected: Option<(crate::instance::Client, crate::instance::Credentials)>,
    /// `None`: the instance could not be asked (`error` says why).
    records: Option<BTreeMap<String, crate::plan::kind::MidRecord>>,
    error: Option<String>,
}

/// The MID's `name` parameter, from its read config.xml.
fn mid_name(read: &crate::facts::gather::HostFacts) -> Option<String> {
    let facts = read.facts.as_ref().ok()?;
    let file = facts.config.as_ref().ok()?;
    let document = crate::config_xml::ConfigXml::parse(&file.bytes).ok()?;
    Some(document.get("name")?.value().to_string())
}

/// Connects to the instance and reads the `ecc_agent` record and
/// `ecc_agent_config` rows of every MID read.
fn read_instance(
    instance: &Instance,
    reads: &[crate::facts::gather::HostFacts],
    secrets: &BTreeMap<SecretRef, SecretValue>,
) -> InstanceRead {
    let names: Vec<String> = reads.iter().filter_map(mid_name).collect();
    match preflight::connect(&instance_settings(instance), secrets) {
        Ok((client, admin)) => match crate::instance::kinds::mid_records(&client, &admin, &names) {
            Ok(records) => InstanceRead {
                connected: Some((client, admin)),
                records: Some(records),
                error: None,
            },
            Err(error) => InstanceRead {
                connected: Some((client, admin)),
                records: None,
                error: Some(format!(
                    "reading the MIDs' ecc_agent records and configuration parameters: {error}"
                )),
            },
        },
        Err(error) => InstanceRead {
            connected: None,
            records: None,
            error: Some(error.to_string()),
        },
    }
}

/// The `instance:` section as a plan holds it (references only).
pub fn instance_settings(instance: &Instance) -> InstancePlan {
    InstancePlan {
        url: instance.url.clone(),
        user: match &instance.user {
            InstanceUser::Name(name) => InstanceUserPlan::Name(name.clone()),
            InstanceUser::Secret(reference) => InstanceUserPlan::Secret(reference.clone()),
        },
        password: instance.password.clone(),
        ca_file: instance
            .ca_file
            .as_ref()
            .map(|path| path.display().to_string()),
        ensure_user: instance.ensure_user,
        timeout: instance.timeout,
        preflight: Vec::new(),
        unchecked_hosts: Vec::new(),
        retire_old_user: instance.retire_old_user,
        validate: instance.validate,
        error: None,
    }
}

/// The instance part of a plan: its settings (references only), and what
/// the instance says now about each new login and about `ensure_user`
/// (asked on the connection of `read`, when there is one).
fn survey_instance(
    instance: &Instance,
    read: Option<InstanceRead>,
    plan: &Plan,
    secrets: &BTreeMap<SecretRef, SecretValue>,
    literals: &BTreeMap<(String, String), SecretValue>,
) -> (InstancePlan, Vec<InstanceChange>) {
    let mut instance_plan = instance_settings(instance);
    let (connected, error) = match read {
        Some(read) => (read.connected, read.error),
        None => (None, None),
    };
    instance_plan.error = error;
    let values = Values { secrets, literals };
    let (logins, unchecked) = preflight::logins(plan, &values);
    instance_plan.unchecked_hosts = unchecked;
    let mut changes = Vec::new();
    if !logins.is_empty() && instance_plan.error.is_none() {
        let connected = match connected {
            Some(connected) => Ok(connected),
            None => preflight::connect(&instance_plan, secrets),
        };
        match connected {
            Ok((client, admin)) => {
                changes = preflight::survey(&client, &admin, &mut instance_plan, &logins)
            }
            Err(error) => instance_plan.error = Some(error.to_string()),
        }
    }
    (instance_plan, changes)
}
