//! End-to-end tests of the kinds of lab MID (docs/lab.md, "Kinds of
//! MID"): real sshd hosts and simulated MIDs logging in to an emulated
//! HTTPS instance that asks for client certificates.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use midfleet::instance::table;
use midfleet_lab::kinds::{KindsInstance, ADMIN_PASSWORD};
use midfleet_lab::{HostKind, Lab, LabHost, LabPki, INITIAL_PASSWORD, INITIAL_USER};

const MIDSIM: &str = env!("CARGO_BIN_EXE_midfleet-midsim");
const INSTANCESIM: &str = env!("CARGO_BIN_EXE_midfleet-instancesim");
const WAIT: Duration = Duration::from_secs(20);

fn wait_for_log(host: &LabHost, needle: &str) {
    assert!(
        host.wait_for_log(needle, WAIT),
        "{}: no {needle:?} in agent0.log.0:\n{}",
        host.name,
        host.agent_log()
    );
}

fn keystore(host: &LabHost) -> PathBuf {
    host.agent().join("security/agent_keystore")
}

#[test]
fn a_mutual_tls_mid_logs_in_with_its_certificate_and_a_wrong_one_is_refused() {
    let instance = KindsInstance::start(Path::new(INSTANCESIM)).expect("instance");
    let lab =
        Lab::start(&instance.spec(Path::new(MIDSIM), &[(HostKind::MutualTls, 1)], 0)).expect("lab");
    let host = &lab.hosts[0];
    let config = midfleet::config_xml::ConfigXml::parse(&host.config()).expect("config.xml");
    assert!(config.get("mid.instance.username").is_none());
    assert!(config.get("mid.instance.password").is_none());
    wait_for_log(host, "Configured MID to use mutual authentication");
    instance.wait_for_field(&host.name, "status", "Up");
    instance.wait_for_field(&host.name, "is_using_custom_cert", "true");
    // The instance maps the certificate to the MID's user.
    instance.wait_for_field(&host.name, "user_name", INITIAL_USER);

    // A certificate from a CA the instance does not trust.
    let other = tempfile::tempdir().expect("temp dir");
    let stranger = LabPki::create(other.path()).expect("other pki");
    let (chain, _) = stranger.client_certificate(&host.name).expect("cert");
    assert!(host.mid("stop").expect("stop"));
    let mut bytes = fs::read(keystore(host)).expect("keystore");
    bytes.truncate(32);
    bytes.extend_from_slice(format!("alias=defaultsecuritykeypairhandle\n{chain}").as_bytes());
    fs::write(keystore(host), &bytes).expect("keystore");
    assert!(host.mid("start").expect("start"));
    wait_for_log(
        host,
        "SEVERE Could not authenticate the MID Server on the ServiceNow instance (mTLS authentication refused: TLS handshake refused: received fatal alert",
    );
    assert_eq!(host.agent_log().matches("MID Server started").count(), 1);

    // A certificate the CA signed but no sys_user_certificate names.
    let (chain, _) = instance
        .pki
        .client_certificate("unregistered")
        .expect("cert");
    assert!(host.mid("stop").expect("stop"));
    bytes.truncate(32);
    bytes.extend_from_slice(format!("alias=defaultsecuritykeypairhandle\n{chain}").as_bytes());
    fs::write(keystore(host), &bytes).expect("keystore");
    let before = host
        .agent_log()
        .matches("mTLS authentication refused: User Not Authenticated")
        .count();
    assert!(host.mid("start").expect("start"));
    assert!(
        wait(|| host
            .agent_log()
            .matches("mTLS authentication refused: User Not Authenticated")
            .count()
            > before),
        "{}",
        host.agent_log()
    );
    assert_eq!(host.agent_log().matches("MID Server started").count(), 1);

    // A key that is not PKCS#8: the start fails as the real one does.
    assert!(host.mid("stop").expect("stop"));
    let leaf_only: String = chain
        .split("-----BEGIN PRIVATE KEY-----")
        .next()
        .expect("chain")
        .to_string();
    bytes.truncate(32);
    bytes.extend_from_slice(
        format!("alias=defaultsecuritykeypairhandle\n{leaf_only}-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n").as_bytes(),
    );
    fs::write(keystore(host), &bytes).expect("keystore");
    assert!(host.mid("start").expect("start"));
    wait_for_log(
        host,
        "SEVERE *** ERROR *** Could not find valid private key",
    );
}

#[test]
fn an_ipki_mid_registers_once_empties_its_key_byte_exactly_and_logs_in_with_a_bearer() {
    let instance = KindsInstance::start(Path::new(INSTANCESIM)).expect("instance");
    let mut spec = instance.spec(Path::new(MIDSIM), &[(HostKind::Ipki, 1)], 0);
    spec.directory = None;
    let lab = Lab::start(&spec).expect("lab");
    let host = &lab.hosts[0];
    wait_for_log(host, "IPKI: registration succeeded");
    instance.wait_for_field(&host.name, "status", "Up");
    instance.wait_for_field(&host.name, "user_name", INITIAL_USER);
    let config = String::from_utf8(host.config()).expect("utf-8");
    let key_line = config
        .lines()
        .find(|line| line.contains("mid.ipki.registration_key"))
        .expect("the key's parameter stays");
    assert_eq!(
        key_line,
        "    <parameter name=\"mid.ipki.registration_key\" value=\"\"/>"
    );
    // Byte-exact: the lab's file with the key emptied, plus the key pair
    // id the MID adds at its first start.
    let without_mid_id: String = config
        .split_inclusive('\n')
        .filter(|line| !line.contains("keypairs.mid_id"))
        .collect();
    let user = instance_user_sys_id(&instance);
    let expected = include_str!("../src/config.xml")
        .replace("{NAME}", &host.name)
        .replace(
            "    <parameter name=\"mid.instance.username\" value=\"{USER}\"/>\n    <parameter name=\"mid.instance.password\" secure=\"true\" value=\"{PASSWORD}\"/>\n",
            &format!(
                "    <parameter name=\"mid.ipki.enabled\" value=\"true\"/>\n    <parameter name=\"mid.ipki.user\" value=\"{user}\"/>\n    <parameter name=\"mid.ipki.registration_key\" value=\"\"/>\n"
            ),
        );
    assert_eq!(without_mid_id, expected);

    // A restart logs in with the credential kept in the keystore.
    assert!(host.mid("restart").expect("restart"));
    wait_for_log(
        host,
        "IPKI: using the instance-issued certificate in the keystore",
    );
    assert!(wait(|| host
        .agent_log()
        .matches("MID Server started")
        .count()
        == 2));
    instance.wait_for_field(&host.name, "status", "Up");
    let log = host.agent_log();
    assert_eq!(
        log.matches("IPKI: registration succeeded").count(),
        1,
        "{log}"
    );

    // A key is single use: a new key registers once; put back, the same
    // key is refused (the keystore emptied, as when it is corrupted).
    let admin =
        midfleet_lab::kinds::Admin::new(&instance.url, Some(&instance.pki.ca_file), ADMIN_PASSWORD)
            .expect("admin");
    let key = admin.registration_key(&user).expect("key");
    let with_key = config.replace(
        "name=\"mid.ipki.registration_key\" value=\"\"",
        &format!("name=\"mid.ipki.registration_key\" value=\"{key}\""),
    );
    for attempt in 1..=2 {
        assert!(host.mid("stop").expect("stop"));
        fs::write(keystore(host), [9u8; 32]).expect("empty keystore");
        fs::write(host.config_path(), &with_key).expect("config");
        assert!(host.mid("start").expect("start"));
        if attempt == 1 {
            assert!(
                wait(|| host
                    .agent_log()
                    .matches("IPKI: registration succeeded")
                    .count()
                    == 2),
                "{}",
                host.agent_log()
            );
            assert!(wait(|| host
                .agent_log()
                .matches("MID Server started")
                .count()
                == 3));
        } else {
            wait_for_log(
                host,
                "SEVERE *** ERROR *** IPKI registration failed: Invalid registration key: the registration key was already used",
            );
        }
    }
}

fn instance_user_sys_id(instance: &KindsInstance) -> String {
    let (client, credentials) = instance.admin();
    let records = table::query(
        &client,
        &credentials,
        "sys_user",
        &format!("user_name={INITIAL_USER}"),
        &["sys_id"],
        1,
    )
    .expect("sys_user");
    table::field(&records[0], "sys_id").to_string()
}

fn wait(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn a_cyberark_mid_resolves_its_references_from_the_vault_and_never_rewrites_them() {
    let instance = KindsInstance::start(Path::new(INSTANCESIM)).expect("instance");
    let lab =
        Lab::start(&instance.spec(Path::new(MIDSIM), &[(HostKind::CyberArk, 1)], 0)).expect("lab");
    let host = &lab.hosts[0];
    instance.wait_for_field(&host.name, "status", "Up");
    wait_for_log(
        host,
        "CyberArk: resolved parameter mid.instance.password (id=lab/lab-001/password, type=Password)",
    );
    let config = String::from_utf8(host.config()).expect("utf-8");
    assert!(config.contains(
        "<parameter name=\"mid.instance.password\" secure=\"true\" value=\"cyberark: id=lab/lab-001/password, type=Password\"/>"
    ));
    assert!(config.contains(
        "<parameter name=\"mid.instance.username\" secure=\"true\" value=\"cyberark: id=lab/lab-001/user, type=Username\"/>"
    ));
    assert!(!config.contains("encrypted:"), "{config}");
    let vault = midfleet_lab::kinds::vault_path(&lab.directory);
    // Root-owned (as the lab runs) and outside the MID's folders.
    assert!(!vault.starts_with(&host.local_mid_home));

    // A restart changes nothing in config.xml.
    assert!(host.mid("restart").expect("restart"));
    assert!(wait(|| host
        .agent_log()
        .matches("MID Server started")
        .count()
        == 2));
    assert_eq!(String::from_utf8(host.config()).expect("utf-8"), config);

    // Rotating in the vault to a password the instance does not know:
    // the MID resolves the new one and is refused.
    let text = fs::read_to_string(&vault).expect("vault");
    fs::write(
        &vault,
        text.replace(
            &format!("Password/lab/lab-001/password={INITIAL_PASSWORD}"),
            "Password/lab/lab-001/password=rotated-in-the-vault",
        ),
    )
    .expect("vault");
    assert!(host.mid("restart").expect("restart"));
    wait_for_log(
        host,
        &format!("Could not authenticate user '{INITIAL_USER}' on the ServiceNow instance."),
    );
    assert_eq!(String::from_utf8(host.config()).expect("utf-8"), config);

    // An account the vault does not hold: the start fails, saying so.
    fs::write(&vault, "# empty\n").expect("vault");
    assert!(host.mid("restart").expect("restart"));
    wait_for_log(
        host,
        "SEVERE *** ERROR *** Unable to unsecure parameter mid.instance.username: CyberArk has no account id=lab/lab-001/user, type=Username",
    );
    assert_eq!(String::from_utf8(host.config()).expect("utf-8"), config);

    // Without JavaPasswordSDK.jar the provider does not load.
    assert!(host.mid("stop").expect("stop"));
    fs::remove_file(host.agent().join("extlib/JavaPasswordSDK.jar")).expect("rm jar");
    assert!(host.mid("start").expect("start"));
    wait_for_log(
        host,
        "java.lang.NoClassDefFoundError: javapasswordsdk/PSDKPasswordRequest",
    );
}

#[test]
fn an_upgrading_mid_reports_upgrading_and_refuses_stop_and_restart() {
    let instance = KindsInstance::start(Path::new(INSTANCESIM)).expect("instance");
    let lab = Lab::start(&instance.spec(
        Path::new(MIDSIM),
        &[(HostKind::Upgrading, 1), (HostKind::UpgradeFailed, 1)],
        0,
    ))
    .expect("lab");
    let (upgrading, failed) = (&lab.hosts[0], &lab.hosts[1]);
    instance.wait_for_field(&upgrading.name, "status", "Upgrading");
    instance.wait_for_field(&failed.name, "status", "Upgrade Failed");
    instance.wait_for_field(
        &failed.name,
        "version",
        "australia-07-01-2026__patch0-06-18-2026_07-01-2026_1200",
    );
    for line in [
        "Performing pre-upgrade validation tests.",
        "Pre-upgrade validation tests successful. Continuing with upgrade process.",
        "Upgrading MID server",
        "Extracting package ",
        "Stopping MID server. Bootstrapping upgrade",
    ] {
        wait_for_log(upgrading, line);
    }
    let temp = upgrading.agent().join("work/upgrade_temp");
    assert!(fs::read_dir(&temp).expect("upgrade_temp").next().is_some());
    let pid = upgrading.mid_process().expect("running").0;
    assert!(
        !upgrading.mid("stop").expect("stop"),
        "stop must be refused"
    );
    assert!(
        !upgrading.mid("restart").expect("restart"),
        "restart must be refused"
    );
    assert_eq!(upgrading.mid_process().map(|(pid, _)| pid), Some(pid));
    instance.wait_for_field(&upgrading.name, "status", "Upgrading");

    // Upgrade Failed runs the old version on, and stops when asked.
    wait_for_log(failed, "SEVERE Upgrade failed");
    assert!(failed.mid("stop").expect("stop"));
    assert!(failed.mid_process().is_none());
}

#[test]
fn a_container_mid_reapplies_its_secrets_file_over_an_edited_config_xml() {
    let instance = KindsInstance::start(Path::new(INSTANCESIM)).expect("instance");
    let lab =
        Lab::start(&instance.spec(Path::new(MIDSIM), &[(HostKind::Container, 1)], 0)).expect("lab");
    let host = &lab.hosts[0];
    instance.wait_for_field(&host.name, "status", "Up");
    let container_id = instance
        .mid_field(&host.name, "container_id")
        .expect("record");
    assert_eq!(container_id.len(), 64, "{container_id}");
    assert!(
        host.agent().join(".container").is_file() && host.agent().join(".initialized").is_file()
    );
    let started = String::from_utf8(host.config()).expect("utf-8");

    // An SSH edit of config.xml (the user) while the MID is stopped.
    assert!(host.mid("stop").expect("stop"));
    let edited = started.replace(
        &format!("value=\"{INITIAL_USER}\""),
        "value=\"svc_edited_by_ssh\"",
    );
    assert_ne!(edited, started);
    fs::write(host.config_path(), &edited).expect("edit");
    assert!(host.mid("start").expect("start"));
    wait_for_log(
        host,
        "WARNING Container init: config.xml parameter mid.instance.username differed from the secrets file (changed inside the container): overwritten",
    );
    assert!(wait(|| host
        .agent_log()
        .matches("MID Server started")
        .count()
        == 2));
    assert_eq!(String::from_utf8(host.config()).expect("utf-8"), started);
    instance.wait_for_field(&host.name, "status", "Up");
    assert_eq!(
        instance.mid_field(&host.name, "container_id"),
        Some(container_id)
    );
}

#[test]
fn a_mixed_lab_of_twelve_comes_up_each_as_its_kind_expects() {
    let instance = KindsInstance::start(Path::new(INSTANCESIM)).expect("instance");
    let kinds = [
        (HostKind::CyberArk, 2),
        (HostKind::MutualTls, 1),
        (HostKind::Ipki, 1),
        (HostKind::Upgrading, 1),
        (HostKind::Container, 1),
        (HostKind::ConfigOverride, 1),
    ];
    let lab = Lab::start(&instance.spec(Path::new(MIDSIM), &kinds, 5)).expect("lab");
    assert_eq!(lab.hosts.len(), 12);
    let count = |kind: HostKind| lab.hosts.iter().filter(|host| host.kind == kind).count();
    assert_eq!(count(HostKind::Plain), 5);
    assert_eq!(count(HostKind::CyberArk), 2);
    for host in &lab.hosts {
        instance.wait_for_field(&host.name, "status", host.kind.expected_status());
        let custom = if host.kind == HostKind::MutualTls {
            "true"
        } else {
            "false"
        };
        assert_eq!(
            instance
                .mid_field(&host.name, "is_using_custom_cert")
                .as_deref(),
            Some(custom),
            "{}",
            host.name
        );
        let container = instance
            .mid_field(&host.name, "container_id")
            .unwrap_or_default();
        assert_eq!(
            !container.is_empty(),
            host.kind == HostKind::Container,
            "{}",
            host.name
        );
    }
    // The override host's ecc_agent_config row.
    let overridden = lab
        .hosts
        .iter()
        .find(|host| host.kind == HostKind::ConfigOverride)
        .expect("override host");
    let admin = midfleet_lab::InstanceAdmin::new(
        &instance.url,
        Some(&instance.pki.ca_file),
        ADMIN_PASSWORD,
    )
    .expect("admin");
    assert_eq!(
        admin.mid_config(&overridden.name).expect("rows"),
        [(
            "mid.instance.username".to_string(),
            midfleet_lab::kinds::OVERRIDE_USER.to_string()
        )]
    );
    // At its next start the row outranks config.xml, and the MID, whose
    // row names its own user, comes up again.
    assert!(overridden.mid("restart").expect("restart"));
    wait_for_log(
        overridden,
        "Parameter mid.instance.username = svc_mid_old comes from the instance's MID Server configuration parameters",
    );
    assert!(wait(|| overridden
        .agent_log()
        .matches("MID Server started")
        .count()
        == 2));
    instance.wait_for_field(&overridden.name, "status", "Up");
    // No other host has a row.
    for host in lab
        .hosts
        .iter()
        .filter(|host| host.kind != HostKind::ConfigOverride)
    {
        assert!(
            admin.mid_config(&host.name).expect("rows").is_empty(),
            "{}",
            host.name
        );
    }
}
