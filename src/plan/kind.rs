//! The kind of a MID — how it logs in (basic, mutual TLS, IPKI), who holds
//! its secrets (the default encrypter, DPAPI, a secret provider such as
//! CyberArk), and whether it runs in a container or is upgrading — told
//! from config.xml, the agent folder's markers and, with an `instance:`
//! section, its `ecc_agent` record; and what the plan may do on each kind
//! (docs/mid-server.md, "Kinds of MID").
//!
//! Owns: the classification and the per-kind rules, pure functions over
//! plain data ([`MidRecord`] is what the instance said, copied out of its
//! records by `instance::kinds`). Must not: contact a host or the
//! instance, or hold a secret value.

use serde::{Deserialize, Serialize};

use crate::config_xml::{names, ConfigXml};
use crate::facts::Markers;

/// `true` puts a MID into IPKI mode.
pub const IPKI_ENABLED: &str = "mid.ipki.enabled";
/// A single-use key the MID clears after its registration.
pub const IPKI_REGISTRATION_KEY: &str = "mid.ipki.registration_key";
/// The secured configuration provider (CyberArk, …).
pub const SECURE_CONFIG_PROVIDER: &str = "mid.secure_config.provider";
/// The encrypter of the default provider (DPAPI on Windows).
pub const SECURE_ENCRYPTER: &str = "mid.secure_encrypter";
/// The `ecc_agent` statuses of a MID its own upgrader owns.
pub const UPGRADING_STATUSES: [&str; 2] = ["Upgrading", "Upgrade Failed"];

/// Where the container recipe's secrets file usually is.
pub const SECRETS_FILE_PATHS: &str =
    "/opt/snc_mid_server/secrets/mid-secrets.properties (Kubernetes), /run/secrets/mid-secrets.properties (Docker Swarm)";

/// What the instance holds about one MID: its `ecc_agent` record and its
/// `ecc_agent_config` rows, as plain data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MidRecord {
    pub sys_id: String,
    pub name: String,
    pub status: String,
    pub container_id: String,
    pub is_using_custom_cert: bool,
    pub version: String,
    pub user_name: String,
    /// Its MID Server configuration parameters (`ecc_agent_config`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<ConfigRow>,
}

/// One `ecc_agent_config` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigRow {
    pub sys_id: String,
    pub param_name: String,
    pub value: String,
}

/// What the instance was asked about one MID.
#[derive(Debug, Clone, Copy)]
pub enum Instance<'a> {
    /// No `instance:` section (or it could not be asked).
    NotAsked,
    /// Asked: it has no `ecc_agent` record of this MID's `name`.
    NoRecord,
    Record(&'a MidRecord),
}

/// How a MID logs in to its instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// A user and password in config.xml.
    Basic,
    /// A client certificate (`manage-certificates.sh -m`): no user or
    /// password in config.xml.
    MutualTls,
    /// A certificate the instance issues and rotates (`mid.ipki.enabled`).
    Ipki,
}

/// Who holds the MID's secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Secrets {
    /// The default provider and encrypter: the MID encrypts plaintext at
    /// start.
    Default,
    /// The default provider with the Windows DPAPI encrypter: the OS
    /// encrypts plaintext at start (handled as the default).
    Dpapi,
    /// Another `mid.secure_config.provider` (CyberArk, Azure Key Vault, a
    /// custom one), or `cyberark:` values: the vault holds them.
    Provider,
}

/// The kind of one MID, and what told it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MidKind {
    pub auth: Auth,
    pub secrets: Secrets,
    /// The provider's class (or `cyberark` when only the values say so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub container: bool,
    pub upgrading: bool,
    /// What decided each of the above (never a secret value).
    pub signals: Vec<String>,
    /// What could not be told, and why (no instance: container and
    /// upgrading only from the host's files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undecided: Vec<String>,
}

/// Whether `value` is a secret provider's reference (`cyberark: id=…,
/// type=…`) rather than a secret.
pub fn is_provider_reference(value: &str) -> bool {
    value
        .trim_start()
        .get(..9)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("cyberark:"))
}

/// Whether a `mid.secure_config.provider` value is the default provider.
fn is_default_provider(value: &str) -> bool {
    let value = value.trim();
    value.is_empty() || value.ends_with("DefaultSecuredConfigProvider")
}

impl MidKind {
    /// A short name for tables: `basic`, `mtls`, `ipki`, `dpapi`,
    /// `cyberark` or `provider`, `container`, `upgrading`, joined with `+`
    /// (`mtls+container`); `basic` only when nothing else applies.
    pub fn label(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        match self.auth {
            Auth::Basic => {}
            Auth::MutualTls => parts.push("mtls"),
            Auth::Ipki => parts.push("ipki"),
        }
        match self.secrets {
            Secrets::Default => {}
            Secrets::Dpapi => parts.push("dpapi"),
            Secrets::Provider
                if self
                    .provider
                    .as_deref()
                    .is_some_and(|provider| provider.to_ascii_lowercase().contains("cyberark")) =>
            {
                parts.push("cyberark")
            }
            Secrets::Provider => parts.push("provider"),
        }
        if self.container {
            parts.push("container");
        }
        if self.upgrading {
            parts.push("upgrading");
        }
        if parts.is_empty() {
            "basic".into()
        } else {
            parts.join("+")
        }
    }

    /// A basic-auth MID with the default encrypter, not in a container,
    /// not upgrading: the kind every rule of the plan was written for (a
    /// plan shows the kind of the others).
    pub fn is_plain(&self) -> bool {
        self.auth == Auth::Basic
            && self.secrets == Secrets::Default
            && !self.container
            && !self.upgrading
    }
}

/// The kind of the MID whose config.xml is `document`, whose agent folder
/// shows `markers`, and of which the instance said `instance`.
pub fn classify(document: &ConfigXml, markers: &Markers, instance: Instance<'_>) -> MidKind {
    let mut signals = Vec::new();
    let mut undecided = Vec::new();
    let value = |name: &str| document.get(name).map(|parameter| parameter.value().trim());
    let has_user = document.get(names::USERNAME).is_some();
    let has_password = document.get(names::PASSWORD).is_some();
    let auth = if value(IPKI_ENABLED).is_some_and(|enabled| enabled.eq_ignore_ascii_case("true")) {
        signals.push(format!("config.xml: {IPKI_ENABLED}=true"));
        Auth::Ipki
    } else if !has_user && !has_password {
        signals.push(format!(
            "config.xml: neither {} nor {} (mutual TLS)",
            names::USERNAME,
            names::PASSWORD
        ));
        Auth::MutualTls
    } else {
        Auth::Basic
    };
    let record = match instance {
        Instance::Record(record) => Some(record),
        _ => None,
    };
    if record.is_some_and(|record| record.is_using_custom_cert) {
        signals.push(match auth {
            Auth::Basic => "ecc_agent.is_using_custom_cert=true (a custom certificate; not mutual TLS: config.xml has credentials)".into(),
            _ => "ecc_agent.is_using_custom_cert=true".into(),
        });
    }
    let provider_value = value(SECURE_CONFIG_PROVIDER).filter(|found| !is_default_provider(found));
    let references: Vec<&str> = document
        .parameters()
        .iter()
        .filter(|parameter| is_provider_reference(parameter.value()))
        .map(|parameter| parameter.name())
        .collect();
    let (secrets, provider) = if let Some(provider) = provider_value {
        signals.push(format!("config.xml: {SECURE_CONFIG_PROVIDER}={provider}"));
        (Secrets::Provider, Some(provider.to_string()))
    } else if !references.is_empty() {
        (Secrets::Provider, Some("cyberark".to_string()))
    } else if value(SECURE_ENCRYPTER).is_some_and(|found| found.ends_with("WindowsDPAPIEncrypter"))
    {
        signals.push(format!(
            "config.xml: {SECURE_ENCRYPTER}=…WindowsDPAPIEncrypter"
        ));
        (Secrets::Dpapi, None)
    } else {
        (Secrets::Default, None)
    };
    if !references.is_empty() {
        signals.push(format!(
            "config.xml: cyberark: reference in {}",
            references.join(", ")
        ));
    }
    let mut container = false;
    if markers.container {
        signals.push("agent folder: .container".into());
        container = true;
    }
    if markers.initialized {
        signals.push("agent folder: .initialized".into());
    }
    if let Some(record) = record.filter(|record| !record.container_id.trim().is_empty()) {
        signals.push(format!("ecc_agent.container_id={}", record.container_id));
        container = true;
    }
    let mut upgrading = false;
    if markers.upgrade_temp {
        signals.push("agent folder: work/upgrade_temp/ is not empty".into());
        upgrading = true;
    }
    if let Some(record) = record {
        if UPGRADING_STATUSES.contains(&record.status.as_str()) {
            signals.push(format!("ecc_agent.status={}", record.status));
            upgrading = true;
        }
    }
    match instance {
        Instance::NotAsked => undecided.push(
            "container and upgrading told from the host's files only (no instance asked: give a playbook with an `instance:` section)".into(),
        ),
        Instance::NoRecord => undecided.push(
            "the instance has no ecc_agent record of this MID's name: container and upgrading told from the host's files only".into(),
        ),
        Instance::Record(_) => {}
    }
    MidKind {
        auth,
        secrets,
        provider,
        container,
        upgrading,
        signals,
        undecided,
    }
}

/// One desired parameter as the kind rules see it: its name, its value
/// (resolved; `None` when unresolved) and whether it is sensitive.
pub struct Wanted<'a> {
    pub name: &'a str,
    pub value: Option<&'a str>,
    pub sensitive: bool,
}

/// What the kind rules decide for one host before its parameters are
/// planned.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Screened {
    /// The host is left alone, and why (`upgrading`).
    pub skip: Option<String>,
    /// Why the host cannot be planned (each reason, with what to do).
    pub errors: Vec<String>,
    /// Desired parameters that are not planned (the cleared IPKI
    /// registration key).
    pub ignored: Vec<String>,
    pub warnings: Vec<String>,
}

/// What the rules need besides the kind.
pub struct Rules<'a> {
    pub kind: &'a MidKind,
    pub document: &'a ConfigXml,
    pub record: Option<&'a MidRecord>,
    pub wanted: &'a [Wanted<'a>],
    /// The playbook rotates this host's credentials (`rotate:`).
    pub rotating: bool,
    /// `instance.allow_override`: a differing `ecc_agent_config` row is a
    /// warning, not an error.
    pub allow_override: bool,
}

/// The per-kind rules of the plan (docs/SPEC.md, "Kinds of MID").
pub fn screen(rules: &Rules<'_>) -> Screened {
    let mut screened = Screened::default();
    let kind = rules.kind;
    if kind.upgrading {
        let why = kind
            .signals
            .iter()
            .filter(|signal| {
                signal.starts_with("ecc_agent.status") || signal.contains("upgrade_temp")
            })
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        screened.skip = Some(format!(
            "upgrading ({why}): the MID's own upgrader owns its stop and start, and the instance may retry a failed upgrade at any time; plan again once its ecc_agent record is Up"
        ));
        return screened;
    }
    let credentials: Vec<&str> = rules
        .wanted
        .iter()
        .filter(|wanted| {
            matches!(
                names::canonical(wanted.name),
                names::USERNAME | names::PASSWORD
            )
        })
        .map(|wanted| wanted.name)
        .collect();
    let asked = if rules.rotating {
        "`rotate:` rotates its credentials".to_string()
    } else {
        format!(
            "the playbook sets {}",
            credentials
                .iter()
                .map(|name| format!("`{name}`"))
                .collect::<Vec<_>>()
                .join(" and ")
        )
    };
    if rules.rotating || !credentials.is_empty() {
        match kind.auth {
            Auth::MutualTls => screened.errors.push(format!(
                "this MID logs in with a client certificate (mutual TLS: config.xml has no {} or {}), but {asked}: writing credentials into it is wrong. Leave this host out of the credentials (--limit, or a group without them); renew its certificate with `bin/scripts/manage-certificates.sh -a DefaultSecurityKeyPairHandle <pem>` run from the agent folder with the MID stopped. midfleet does not switch a MID back to basic auth (`manage-certificates.sh -b`): the procedure is not documented well enough to automate",
                names::USERNAME,
                names::PASSWORD
            )),
            Auth::Ipki => screened.errors.push(format!(
                "this MID logs in with an instance-issued certificate (IPKI: {IPKI_ENABLED}=true), but {asked}: it has no password to set, and the instance rotates its certificate itself (mid.ipki.rotation_trigger_threshold). Leave this host out of the credentials (--limit, or a group without them)"
            )),
            Auth::Basic => {}
        }
    }
    if kind.secrets == Secrets::Provider {
        let provider = kind.provider.as_deref().unwrap_or("a secret provider");
        if rules.rotating {
            screened.errors.push(format!(
                "this MID's secrets are in a vault ({provider}), but `rotate:` rotates its credentials: rotate them in the vault, then restart the MID (a playbook with `restart: always` and nothing to set for it)"
            ));
        }
        for wanted in rules.wanted {
            let Some(value) = wanted.value else { continue };
            let credential = matches!(
                names::canonical(wanted.name),
                names::USERNAME | names::PASSWORD
            );
            if is_provider_reference(value) || (rules.rotating && credential) {
                continue;
            }
            let current = rules.document.get(wanted.name);
            match current.map(|found| found.value()) {
                Some(reference) if is_provider_reference(reference) => {
                    screened.errors.push(format!(
                        "`{}` is the vault reference `{}`, which the MID resolves at start: midfleet never writes a plaintext over it. Rotate the secret in the vault, then restart the MID (`restart: always`, without `{}` in `set:`); or give a reference as the desired value",
                        current.map_or(wanted.name, |found| found.name()),
                        reference.trim(),
                        wanted.name
                    ));
                }
                _ if wanted.sensitive => {
                    screened.errors.push(format!(
                        "this MID's secrets come from {provider}, which does not encrypt config.xml: a plaintext `{}` would stay readable there. Give a vault reference (`cyberark: id=…, type=…`) as its value, or store the secret in the vault",
                        wanted.name
                    ));
                }
                _ => {}
            }
        }
    }
    // The cleared registration key: the MID empties it after use.
    for wanted in rules.wanted {
        if wanted.name != IPKI_REGISTRATION_KEY {
            continue;
        }
        let current = rules
            .document
            .get(IPKI_REGISTRATION_KEY)
            .map(|found| found.value());
        if current.is_none_or(str::is_empty) {
            screened.ignored.push(wanted.name.to_string());
            if wanted.value.is_some_and(|value| !value.is_empty()) {
                screened.warnings.push(format!(
                    "{IPKI_REGISTRATION_KEY} is not written: the MID clears this single-use key after registering, so it is never drift; to re-register, put a new key into config.xml once (e.g. `midfleet edit`) and restart the MID"
                ));
            }
        }
    }
    // The instance's own configuration parameters outrank config.xml.
    if let Some(record) = rules.record {
        for wanted in rules.wanted {
            if screened.ignored.iter().any(|name| name == wanted.name) {
                continue;
            }
            let Some(value) = wanted.value else { continue };
            for row in record
                .config
                .iter()
                .filter(|row| names::same_parameter(&row.param_name, wanted.name))
            {
                if row.value == value {
                    continue;
                }
                let shown = if wanted.sensitive || names::is_password(&row.param_name) {
                    String::new()
                } else {
                    format!(" = {:?} (midfleet would write {value:?})", row.value)
                };
                let message = format!(
                    "the instance's MID Server configuration parameter ecc_agent_config {} sets `{}`{shown}: it outranks config.xml at the MID's next start, so writing config.xml would do nothing",
                    row.sys_id, row.param_name
                );
                if rules.allow_override {
                    screened.warnings.push(format!(
                        "{message}; written anyway (instance.allow_override)"
                    ));
                } else {
                    screened.errors.push(format!(
                        "{message}. Change or delete that record on the instance (MID Server > Configuration Parameters), or set `instance.allow_override: true` to write config.xml anyway"
                    ));
                }
            }
        }
    }
    screened
}

/// Why a container MID's config.xml is not edited over SSH.
pub fn container_error() -> String {
    format!(
        "this MID runs in a container (the recipe's .container marker or ecc_agent.container_id): its start writes config.xml and conf/wrapper-override.conf again from the container's environment (MID_INSTANCE_*, MID_CONFIG_*, MID_WRAPPER_*) and secrets file (MID_SECRETS_FILE, usually {SECRETS_FILE_PATHS}), so an edit over SSH is lost or wrong. Change the secrets file or the deployment, then restart the container"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(parameters: &[(&str, &str)]) -> ConfigXml {
        let mut text = String::from("<parameters>\n");
        for (name, value) in parameters {
            text.push_str(&format!("<parameter name=\"{name}\" value=\"{value}\"/>\n"));
        }
        text.push_str("<!-- <parameter name=\"mid.instance.username\" value=\"commented\"/> -->\n");
        text.push_str("</parameters>\n");
        ConfigXml::parse(text.as_bytes()).expect("a config.xml")
    }

    const BASIC: [(&str, &str); 2] = [
        ("mid.instance.username", "svc_mid"),
        ("mid.instance.password", "encrypted:AAAA"),
    ];

    fn record(status: &str, container_id: &str, custom_cert: bool) -> MidRecord {
        MidRecord {
            sys_id: "a1".into(),
            name: "mid01".into(),
            status: status.into(),
            container_id: container_id.into(),
            is_using_custom_cert: custom_cert,
            ..MidRecord::default()
        }
    }

    #[test]
    fn each_kind_is_told_and_labelled() {
        let none = Markers::default();
        let container = Markers {
            container: true,
            initialized: true,
            ..Markers::default()
        };
        let upgrade = Markers {
            upgrade_temp: true,
            ..Markers::default()
        };
        let up = record("Up", "", false);
        type Case<'a> = (
            &'a str,
            Vec<(&'a str, &'a str)>,
            Markers,
            Instance<'a>,
            &'a str,
        );
        let cases: Vec<Case<'_>> = vec![
            ("basic", BASIC.to_vec(), none, Instance::NotAsked, "basic"),
            // The commented-out username does not count: mutual TLS.
            (
                "mtls",
                vec![("url", "https://x")],
                none,
                Instance::NotAsked,
                "mtls",
            ),
            (
                "ipki",
                vec![
                    ("mid.ipki.enabled", "true"),
                    ("mid.ipki.registration_key", ""),
                ],
                none,
                Instance::NotAsked,
                "ipki",
            ),
            (
                "ipki with a user left in config.xml",
                [BASIC.to_vec(), vec![("mid.ipki.enabled", "TRUE")]].concat(),
                none,
                Instance::NotAsked,
                "ipki",
            ),
            (
                "cyberark provider",
                [
                    BASIC.to_vec(),
                    vec![(
                        SECURE_CONFIG_PROVIDER,
                        "com.service_now.mid.services.config.CyberArkSecuredConfigProvider",
                    )],
                ]
                .concat(),
                none,
                Instance::NotAsked,
                "cyberark",
            ),
            (
                "cyberark values only (the url a reference too)",
                vec![
                    ("url", "cyberark: id=url, type=url"),
                    ("mid.instance.username", "svc"),
                    ("mid.instance.password", "cyberark: id=svc, type=password"),
                ],
                none,
                Instance::NotAsked,
                "cyberark",
            ),
            (
                "another provider",
                [
                    BASIC.to_vec(),
                    vec![(SECURE_CONFIG_PROVIDER, "com.acme.VaultProvider")],
                ]
                .concat(),
                none,
                Instance::NotAsked,
                "provider",
            ),
            (
                "dpapi",
                [
                    BASIC.to_vec(),
                    vec![(
                        SECURE_ENCRYPTER,
                        "com.service_now.mid.services.config.WindowsDPAPIEncrypter",
                    )],
                ]
                .concat(),
                none,
                Instance::NotAsked,
                "dpapi",
            ),
            (
                "container marker",
                BASIC.to_vec(),
                container,
                Instance::NotAsked,
                "container",
            ),
            (
                "upgrade_temp",
                BASIC.to_vec(),
                upgrade,
                Instance::NotAsked,
                "upgrading",
            ),
            (
                "record Up",
                BASIC.to_vec(),
                none,
                Instance::Record(&up),
                "basic",
            ),
        ];
        for (what, parameters, markers, instance, label) in cases {
            let kind = classify(&document(&parameters), &markers, instance);
            assert_eq!(kind.label(), label, "{what}: {kind:?}");
        }
    }

    #[test]
    fn the_instance_tells_containers_and_upgrades_and_custom_certs_are_not_mtls() {
        let none = Markers::default();
        let basic = document(&BASIC);
        let upgrading = record("Upgrading", "", false);
        let failed = record("Upgrade Failed", "", false);
        let container = record("Up", "4e1f0c", true);
        assert_eq!(
            classify(&basic, &none, Instance::Record(&upgrading)).label(),
            "upgrading"
        );
        assert_eq!(
            classify(&basic, &none, Instance::Record(&failed)).label(),
            "upgrading"
        );
        // A custom certificate on a MID with credentials: basic auth.
        let kind = classify(&basic, &none, Instance::Record(&container));
        assert_eq!(kind.label(), "container");
        assert!(kind
            .signals
            .iter()
            .any(|signal| signal.contains("not mutual TLS")));
        // No credentials, a container record: both at once.
        let mtls = document(&[("url", "https://x")]);
        assert_eq!(
            classify(&mtls, &none, Instance::Record(&container)).label(),
            "mtls+container"
        );
        // What could not be told without the instance is said.
        assert!(!classify(&basic, &none, Instance::NotAsked)
            .undecided
            .is_empty());
        assert!(!classify(&basic, &none, Instance::NoRecord)
            .undecided
            .is_empty());
        assert!(classify(&basic, &none, Instance::Record(&container))
            .undecided
            .is_empty());
    }

    #[test]
    fn provider_references() {
        assert!(is_provider_reference("cyberark: id=a, type=b"));
        assert!(is_provider_reference("  CyberArk:id=a"));
        assert!(!is_provider_reference("cyberark"));
        assert!(!is_provider_reference("encrypted:abc"));
        assert!(!is_provider_reference(""));
    }

    fn screened(
        parameters: &[(&str, &str)],
        wanted: &[(&str, &str, bool)],
        record: Option<&MidRecord>,
        rotating: bool,
        allow_override: bool,
    ) -> Screened {
        let document = document(parameters);
        let instance = record.map_or(Instance::NotAsked, Instance::Record);
        let kind = classify(&document, &Markers::default(), instance);
        let wanted: Vec<Wanted<'_>> = wanted
            .iter()
            .map(|(name, value, sensitive)| Wanted {
                name,
                value: Some(value),
                sensitive: *sensitive,
            })
            .collect();
        screen(&Rules {
            kind: &kind,
            document: &document,
            record,
            wanted: &wanted,
            rotating,
            allow_override,
        })
    }

    #[test]
    fn rotations_are_refused_on_certificate_and_vault_mids() {
        let mtls = screened(&[("url", "x")], &[], None, true, false);
        assert!(mtls.errors[0].contains("`rotate:`"), "{mtls:?}");
        let ipki = screened(
            &[("mid.ipki.enabled", "true")],
            &[("mid.instance.username", "svc", false)],
            None,
            false,
            false,
        );
        assert!(ipki.errors[0].contains("IPKI"), "{ipki:?}");
        let vault = [
            ("mid.instance.username", "svc"),
            ("mid.instance.password", "cyberark: id=svc, type=password"),
        ];
        let rotated = screened(
            &vault,
            &[
                ("mid.instance.username", "svc2", false),
                ("mid.instance.password", "generated", true),
            ],
            None,
            true,
            false,
        );
        assert_eq!(rotated.errors.len(), 1, "{rotated:?}");
        assert!(rotated.errors[0].contains("rotate them in the vault"));
        // A plaintext password where there was none yet: the provider
        // would leave it readable.
        let plaintext = screened(
            &[
                ("mid.instance.username", "svc"),
                (SECURE_CONFIG_PROVIDER, "com.acme.Vault"),
            ],
            &[("mid.instance.password", "s3cret", true)],
            None,
            false,
            false,
        );
        assert!(plaintext.errors[0].contains("clear") || plaintext.errors[0].contains("readable"));
        // A non-sensitive parameter on a vault MID: planned.
        assert_eq!(
            screened(
                &vault,
                &[("mid.log.level", "debug", false)],
                None,
                false,
                false
            ),
            Screened::default()
        );
    }

    #[test]
    fn a_sensitive_override_is_named_without_its_value() {
        let mut with_row = record("Up", "", false);
        with_row.config.push(ConfigRow {
            sys_id: "r1".into(),
            param_name: "glide.glidesoap.password".into(),
            value: "hunter2".into(),
        });
        let found = screened(
            &BASIC,
            &[("mid.instance.password", "n3w", true)],
            Some(&with_row),
            false,
            false,
        );
        assert_eq!(found.errors.len(), 1);
        assert!(found.errors[0].contains("ecc_agent_config r1"));
        assert!(!found.errors[0].contains("hunter2") && !found.errors[0].contains("n3w"));
        let allowed = screened(
            &BASIC,
            &[("mid.instance.password", "n3w", true)],
            Some(&with_row),
            false,
            true,
        );
        assert!(allowed.errors.is_empty() && allowed.warnings.len() == 1);
    }

    #[test]
    fn a_registration_key_is_written_only_over_a_present_one() {
        let cleared = screened(
            &[("mid.ipki.enabled", "true"), (IPKI_REGISTRATION_KEY, "")],
            &[(IPKI_REGISTRATION_KEY, "", false)],
            None,
            false,
            false,
        );
        assert_eq!(cleared.ignored, vec![IPKI_REGISTRATION_KEY.to_string()]);
        assert!(cleared.warnings.is_empty());
        let absent = screened(
            &[("mid.ipki.enabled", "true")],
            &[(IPKI_REGISTRATION_KEY, "k", false)],
            None,
            false,
            false,
        );
        assert_eq!(absent.ignored.len(), 1);
        let present = screened(
            &[("mid.ipki.enabled", "true"), (IPKI_REGISTRATION_KEY, "old")],
            &[(IPKI_REGISTRATION_KEY, "new", false)],
            None,
            false,
            false,
        );
        assert!(present.ignored.is_empty());
    }
}
