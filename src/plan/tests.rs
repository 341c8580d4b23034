//! Fixture tests of [`build_host_plan`], in pyinfra's style: given a
//! desired state and a host's facts, the plan is exactly this — with no
//! host.
//!
//! One folder per planning rule under `fixtures/`, named as its test:
//! - `playbook.yml`: the desired state, a real playbook (its `name:` says
//!   the rule), rendered for the host below as `plan` renders it;
//! - `secrets.json` (optional): what each secret reference resolves to;
//! - `facts.txt`: the facts script's reply, line for line, where
//!   `blob NAME @FILE` stands for that file of the folder sent as a blob
//!   (`config.xml`, `state.json`, `config.after`, `journal`); or
//!   `facts-error.txt`: why the host could not be read;
//! - `plan.snap`: the expected plan, as `plan --output json` shows a host
//!   (insta; review a new one by eye before accepting it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::{build_host_plan, HostPlan, PlanInputs};
use crate::endpoint::Endpoint;
use crate::facts::{self, Facts};
use crate::inventory::{Host, ServiceSpec};
use crate::playbook::{desired, Playbook};
use crate::secret::SecretRef;
use crate::template::Templates;

fn folder(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/plan/fixtures")
        .join(name)
}

/// Every fixture plans the same host: `mid-emea-01`, its MID in
/// `/opt/servicenow/mid`, reached as root.
fn host() -> Host {
    Host {
        name: "mid-emea-01".into(),
        address: "10.0.8.21".into(),
        port: None,
        user: None,
        identity_file: None,
        become_root: false,
        become_user: None,
        jump: Vec::new(),
        connect_timeout: None,
        mid_home: "/opt/servicenow/mid".into(),
        config: "/opt/servicenow/mid/agent/config.xml".into(),
        mid_cluster: None,
        service: ServiceSpec::Auto,
        groups: Vec::new(),
        template_context: Default::default(),
        vaulted: Default::default(),
    }
}

fn endpoint() -> Endpoint {
    Endpoint {
        label: "mid-emea-01".into(),
        address: "10.0.8.21".into(),
        port: 22,
        user: "root".into(),
        identity_file: None,
        configured_identities: Vec::new(),
        jump: Vec::new(),
        connect_timeout: 10,
    }
}

/// `facts.txt` made a reply: each `blob NAME @FILE` line becomes the blob
/// header with the file's length, the file's bytes and a newline.
fn reply(folder: &Path, facts: &str) -> Vec<u8> {
    let mut reply = Vec::new();
    for line in facts.lines() {
        match line.split(' ').collect::<Vec<_>>().as_slice() {
            ["blob", name, file] if file.starts_with('@') => {
                let path = folder.join(file.trim_start_matches('@'));
                let bytes = std::fs::read(&path)
                    .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
                reply.extend_from_slice(format!("blob {name} {}\n", bytes.len()).as_bytes());
                reply.extend_from_slice(&bytes);
                reply.push(b'\n');
            }
            _ => {
                reply.extend_from_slice(line.as_bytes());
                reply.push(b'\n');
            }
        }
    }
    reply
}

/// A fixture's inputs, read.
struct Fixture {
    playbook: Playbook,
    secrets: BTreeMap<String, String>,
    facts: Result<Facts, String>,
    /// `instance.json` (optional): the MID's `ecc_agent` record and rows,
    /// or `null` when the instance has none.
    instance: Option<Option<super::kind::MidRecord>>,
}

fn read(name: &str) -> Fixture {
    let folder = folder(name);
    let text = |file: &str| std::fs::read_to_string(folder.join(file)).ok();
    let path = folder.join("playbook.yml");
    let (playbook, diagnostics) =
        Playbook::from_text(&path, &text("playbook.yml").expect("playbook.yml"));
    assert!(!diagnostics.has_errors(), "{name}: {diagnostics:?}");
    let secrets = text("secrets.json")
        .map(|json| serde_json::from_str(&json).expect("secrets.json: a map of strings"))
        .unwrap_or_default();
    let facts = match (text("facts.txt"), text("facts-error.txt")) {
        (Some(facts), None) => Ok(facts::parse(&reply(&folder, &facts))
            .unwrap_or_else(|error| panic!("{name}/facts.txt: {error}"))),
        (None, Some(error)) => Err(error.trim_end().to_string()),
        _ => panic!("{name}: give facts.txt or facts-error.txt"),
    };
    let instance = text("instance.json")
        .map(|json| serde_json::from_str(&json).expect("instance.json: a MID record or null"));
    Fixture {
        playbook: playbook.expect("a playbook"),
        secrets,
        facts,
        instance,
    }
}

fn plan(fixture: &Fixture) -> HostPlan {
    let desired = desired::render(&fixture.playbook, &host(), &Templates::new())
        .expect("the playbook renders for the host");
    let lookup = |reference: &SecretRef| {
        fixture
            .secrets
            .get(&reference.to_string())
            .map(|value| Zeroizing::new(value.clone()))
    };
    build_host_plan(&PlanInputs {
        desired: &desired,
        endpoint: &endpoint(),
        facts: fixture.facts.as_ref().map_err(String::as_str),
        secret: &lookup,
        restart: fixture.playbook.restart,
        instance: match &fixture.instance {
            Some(Some(record)) => super::kind::Instance::Record(record),
            Some(None) => super::kind::Instance::NoRecord,
            None => super::kind::Instance::NotAsked,
        },
        allow_override: fixture
            .playbook
            .instance
            .as_ref()
            .is_some_and(|instance| instance.allow_override),
    })
}

/// The fixture's plan, compared with its `plan.snap`.
fn check(name: &str) -> HostPlan {
    let fixture = read(name);
    let plan = plan(&fixture);
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(folder(name));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_description(fixture.playbook.name.clone().unwrap_or_default());
    settings.bind(|| insta::assert_snapshot!("plan", decided(&plan)));
    plan
}

/// The plan as JSON without what it copies from the inventory (the same
/// in every fixture, checked here once): what planning decided.
fn decided(plan: &HostPlan) -> String {
    let host = host();
    assert_eq!(plan.host, host.name);
    assert_eq!(plan.connection, endpoint());
    assert_eq!(
        (
            plan.become_root,
            &plan.mid_home,
            &plan.config,
            &plan.mid_cluster
        ),
        (
            host.become_root,
            &host.mid_home,
            &host.config,
            &host.mid_cluster
        )
    );
    assert_eq!(plan.service, host.service);
    assert_eq!(plan.become_user, host.become_user);
    let mut json = serde_json::to_value(plan).expect("a plan serializes");
    let object = json.as_object_mut().expect("an object");
    for copied in [
        "connection",
        "become",
        "become_user",
        "mid_home",
        "config",
        "mid_cluster",
        "service",
    ] {
        object.remove(copied);
    }
    serde_json::to_string_pretty(&json).expect("JSON")
}

macro_rules! fixtures {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            check(stringify!($name));
        }
    )*};
}

fixtures! {
    // Plain values.
    unchanged_host,
    literal_update_add_and_remove,
    // Sensitive values and idempotency (docs/state.md's table).
    idempotent_through_the_state_record,
    changed_outside_midfleet,
    desired_secret_changed_since_midfleet_wrote_it,
    encrypted_value_the_mid_wrote_without_a_record,
    unreadable_state_record_is_ignored_with_a_warning,
    desired_plaintext_in_the_file_is_unchanged,
    secure_marked_literal,
    alias_spelling_kept,
    // A new instance user: the key pair reset.
    key_pair_reset,
    key_pair_reset_refuses_to_orphan_an_encrypted_value,
    key_pair_reset_refuses_a_desired_encrypted_value,
    // The service.
    stopped_mid_is_planned_as_start,
    stopped_mid_with_changes_is_restarted,
    restart_always,
    service_missing,
    service_state_unsafe_without_gnu_dd,
    // Warnings that leave the plan as it is.
    journal_left_over_warns,
    failpoint_warns,
    // Hosts planned as errors: nothing to do on them.
    facts_read_failed,
    config_missing,
    config_does_not_parse,
    secret_not_resolved,
    value_xml_cannot_hold,
    midfleet_folder_not_writable_without_become,
    config_folder_not_writable_as_root,
    start_does_not_need_the_config_folder,
    // The kinds of MID (plan/kind.rs).
    kind_mutual_tls_refuses_credentials,
    kind_mutual_tls_other_parameters_are_planned,
    kind_mutual_tls_refuses_a_rotation,
    kind_cyberark_refuses_a_rotation,
    kind_ipki_refuses_credentials,
    kind_ipki_cleared_registration_key_is_not_a_change,
    kind_cyberark_refuses_a_plaintext_over_a_reference,
    kind_cyberark_a_desired_reference_is_a_change,
    kind_cyberark_restart_always_only_restarts,
    kind_dpapi_is_planned_as_the_default_encrypter,
    kind_upgrading_on_the_host_is_skipped,
    kind_upgrading_on_the_instance_is_skipped,
    kind_container_refuses_a_write,
    kind_container_refuses_a_wrapper_change,
    kind_container_on_the_instance_with_mutual_tls,
    kind_instance_parameter_that_differs_is_an_error,
    kind_instance_parameter_allowed_warns_and_writes,
    kind_instance_parameter_equal_is_fine,
    // The `wrapper:` section: conf/wrapper-override.conf.
    wrapper_heap_arguments_and_secret,
    wrapper_already_as_desired,
    wrapper_file_missing,
}

/// Stale: the plan is for the exact bytes it read. Its fingerprint is
/// their SHA-256 (written out here, as `sha256sum` prints it), and a file
/// that differs only where no parameter is (a comment) gives the same
/// changes but another fingerprint, which apply then finds `stale`.
#[test]
fn stale_fingerprint() {
    let planned = check("stale_fingerprint");
    assert_eq!(
        planned.fingerprint.as_deref(),
        Some("955b0cc32b90551dea7df85bc37133f8f31745da22ae0421ec7ced2e499c1214")
    );
    let mut fixture = read("stale_fingerprint");
    let Ok(facts) = fixture.facts.as_mut() else {
        panic!("stale_fingerprint has facts");
    };
    let Ok(file) = facts.config.as_mut() else {
        panic!("stale_fingerprint has a config.xml");
    };
    file.bytes
        .extend_from_slice(b"<!-- edited on the host after the plan -->\n");
    file.sha256 = facts::sha256_hex(&file.bytes);
    let edited_sha256 = file.sha256.clone();
    let edited = plan(&fixture);
    assert_eq!(edited.changes, planned.changes);
    assert_eq!(edited.operations, planned.operations);
    assert_ne!(edited.fingerprint, planned.fingerprint);
    assert_eq!(edited.fingerprint, Some(edited_sha256));
}
