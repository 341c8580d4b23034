//! The kinds of lab MID (docs/lab.md, "Kinds of MID"): what the lab writes
//! on a host and on the instance so that its MID is a CyberArk, mutual-TLS,
//! IPKI, upgrading or container one, or has an `ecc_agent_config`
//! override; and the lab's PKI (a CA, the HTTPS instance's certificate, the
//! MIDs' client certificates).
//!
//! Owns: [`HostKind`], [`LabPki`], the per-kind files and instance records.
//!
//! Must not: put a password or a key in an argv, an environment or a message.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use midfleet::instance::client::{Client, Credentials, Method, Settings};
use midfleet::instance::table;
use midfleet::secret::SecretValue;
use serde_json::json;

use crate::kept::write_private;
use crate::{LabError, LabHost, INITIAL_PASSWORD, INITIAL_USER};

/// The CyberArk provider's class, as config.xml names it.
pub const CYBERARK_PROVIDER: &str =
    "com.service_now.mid.services.config.CyberArkSecuredConfigProvider";
/// The user the `override` host's `ecc_agent_config` row names: the one
/// its config.xml holds, as the instance's mirror of it shows (research
/// §4a). The MID keeps logging in (the row outranks config.xml at its next
/// start: a rotation to another user written into config.xml alone is
/// undone by the row).
pub const OVERRIDE_USER: &str = INITIAL_USER;

/// What kind of MID a lab host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKind {
    /// Basic authentication, the default provider: the password is
    /// encrypted by the MID.
    #[default]
    Plain,
    /// `mid.secure_config.provider` = CyberArk; username and password are
    /// `cyberark: id=…, type=…` references resolved from the lab's vault.
    CyberArk,
    /// No user or password: a client certificate in the keystore.
    MutualTls,
    /// `mid.ipki.enabled`: registers with a single-use key, then a bearer.
    Ipki,
    /// Reports `Upgrading` after its start and refuses stop/restart.
    Upgrading,
    /// Reports `Upgrade Failed` and runs on.
    UpgradeFailed,
    /// The container recipe's `.container`, `.initialized` and secrets file.
    Container,
    /// Plain, with a row `mid.instance.username` = [`OVERRIDE_USER`] in its
    /// `ecc_agent_config` (needs an instance).
    ConfigOverride,
}

impl HostKind {
    pub const ALL: [HostKind; 8] = [
        HostKind::Plain,
        HostKind::CyberArk,
        HostKind::MutualTls,
        HostKind::Ipki,
        HostKind::Upgrading,
        HostKind::UpgradeFailed,
        HostKind::Container,
        HostKind::ConfigOverride,
    ];

    /// The name `midfleet lab up --kinds` takes.
    pub fn name(self) -> &'static str {
        match self {
            HostKind::Plain => "plain",
            HostKind::CyberArk => "cyberark",
            HostKind::MutualTls => "mtls",
            HostKind::Ipki => "ipki",
            HostKind::Upgrading => "upgrading",
            HostKind::UpgradeFailed => "upgrade-failed",
            HostKind::Container => "container",
            HostKind::ConfigOverride => "override",
        }
    }

    /// Whether the lab needs an instance (and its admin) for this kind.
    pub fn needs_instance(self) -> bool {
        matches!(
            self,
            HostKind::MutualTls | HostKind::Ipki | HostKind::ConfigOverride
        )
    }

    /// The `ecc_agent.status` its MID settles on.
    pub fn expected_status(self) -> &'static str {
        match self {
            HostKind::Upgrading => "Upgrading",
            HostKind::UpgradeFailed => "Upgrade Failed",
            _ => "Up",
        }
    }
}

impl fmt::Display for HostKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

impl FromStr for HostKind {
    type Err = String;
    fn from_str(text: &str) -> Result<HostKind, String> {
        HostKind::ALL
            .into_iter()
            .find(|kind| kind.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = HostKind::ALL.iter().map(|kind| kind.name()).collect();
                format!("unknown kind `{text}` (kinds: {})", names.join(", "))
            })
    }
}

/// `cyberark=2,mtls=1,…` → the kinds in order, each repeated.
pub fn parse_kinds(text: &str) -> Result<Vec<HostKind>, String> {
    let mut kinds = Vec::new();
    for part in text
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        let (name, count) = part.split_once('=').unwrap_or((part, "1"));
        let kind: HostKind = name.trim().parse()?;
        let count: usize = count
            .trim()
            .parse()
            .map_err(|_| format!("`{part}`: the count is not a number (KIND=COUNT)"))?;
        kinds.extend(std::iter::repeat_n(kind, count));
    }
    Ok(kinds)
}

/// The lab's certificate authority and the HTTPS instance's certificate
/// (for 127.0.0.1 and localhost), as PEM files in a folder; it also signs
/// the mutual-TLS MIDs' client certificates. ECDSA P-256 keys (rcgen with
/// ring generates no RSA; ServiceNow requires RSA 2048 — not modelled).
pub struct LabPki {
    /// The CA certificate: the instance trusts it for client
    /// certificates (`--client-ca`), the MIDs and midfleet for the server.
    pub ca_file: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    ca_params: rcgen::CertificateParams,
    ca_key: rcgen::KeyPair,
}

impl fmt::Debug for LabPki {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("LabPki")
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl LabPki {
    /// Makes a CA and a server certificate in `directory` (created).
    pub fn create(directory: &Path) -> Result<LabPki, LabError> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
        let failed = |error: rcgen::Error| LabError(format!("the lab's PKI: {error}"));
        fs::create_dir_all(directory)
            .map_err(|error| LabError(format!("{}: {error}", directory.display())))?;
        let ca_key = KeyPair::generate().map_err(failed)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "midfleet lab CA");
        let ca_cert = ca_params.self_signed(&ca_key).map_err(failed)?;
        let server_key = KeyPair::generate().map_err(failed)?;
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).map_err(failed)?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        let server_cert = params
            .signed_by(&server_key, &Issuer::from_params(&ca_params, &ca_key))
            .map_err(failed)?;
        let pki = LabPki {
            ca_file: directory.join("lab-ca.pem"),
            server_cert: directory.join("instance.pem"),
            server_key: directory.join("instance.key"),
            ca_params,
            ca_key,
        };
        crate::write(&pki.ca_file, &ca_cert.pem())?;
        crate::write(&pki.server_cert, &server_cert.pem())?;
        write_private(&pki.server_key, &server_key.serialize_pem())?;
        Ok(pki)
    }

    /// A client certificate for the MID named `name` (CN), signed by the
    /// CA: the PEM chain (leaf, CA) then its PKCS#8 key, as
    /// `manage-certificates.sh -a` takes it. Returns (chain and key, leaf).
    pub fn client_certificate(&self, name: &str) -> Result<(String, String), LabError> {
        use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair};
        let failed = |error: rcgen::Error| LabError(format!("the lab's PKI: {error}"));
        let key = KeyPair::generate().map_err(failed)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let leaf = params
            .signed_by(&key, &Issuer::from_params(&self.ca_params, &self.ca_key))
            .map_err(failed)?;
        let ca = fs::read_to_string(&self.ca_file)
            .map_err(|error| LabError(format!("{}: {error}", self.ca_file.display())))?;
        Ok((
            format!("{}{ca}{}", leaf.pem(), key.serialize_pem()),
            leaf.pem(),
        ))
    }
}

/// The lab's instance, as its `admin`.
pub struct Admin {
    client: Client,
    credentials: Credentials,
}

impl Admin {
    pub fn new(url: &str, ca_file: Option<&Path>, password: &str) -> Result<Admin, LabError> {
        let client = Client::new(url, ca_file, Settings::with_timeout(5))
            .map_err(|error| LabError(error.to_string()))?;
        Ok(Admin {
            client,
            credentials: Credentials::new("admin".into(), SecretValue::new(password.to_string())),
        })
    }

    fn error(error: midfleet::instance::InstanceError) -> LabError {
        LabError(format!("the lab's instance: {error}"))
    }

    /// The sys_id of the instance user `user_name`.
    pub fn user_sys_id(&self, user_name: &str) -> Result<String, LabError> {
        let records = table::query(
            &self.client,
            &self.credentials,
            "sys_user",
            &format!("user_name={user_name}"),
            &["sys_id"],
            1,
        )
        .map_err(Admin::error)?;
        records
            .first()
            .map(|record| table::field(record, "sys_id").to_string())
            .ok_or_else(|| LabError(format!("the lab's instance has no user `{user_name}`")))
    }

    /// A single-use IPKI registration key for the user `user_sys_id`.
    pub fn registration_key(&self, user_sys_id: &str) -> Result<String, LabError> {
        let answer = self
            .client
            .call(
                Method::Post,
                "/api/now/mid/ipki/registration_key",
                &[],
                Some(&json!({ "user": user_sys_id })),
                &self.credentials,
            )
            .map_err(Admin::error)?;
        answer.json["result"]["key"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| LabError("the lab's instance issued no registration key".into()))
    }

    /// The `sys_user_certificate` record that maps `certificate` (PEM) to
    /// the user `user_sys_id`, for the MID named `name`.
    pub fn add_user_certificate(
        &self,
        user_sys_id: &str,
        name: &str,
        certificate: &str,
    ) -> Result<(), LabError> {
        table::insert(
            &self.client,
            &self.credentials,
            "sys_user_certificate",
            &json!({ "user": user_sys_id, "name": name, "certificate": certificate,
                     "user_role": "MID Server", "active": "true" }),
            false,
        )
        .map_err(Admin::error)?;
        Ok(())
    }
}

/// The `admin` password of a [`KindsInstance`].
pub const ADMIN_PASSWORD: &str = "Adm1n-pw";

/// An emulated instance for a lab of kinds (tests): HTTPS with the lab's
/// PKI, asking clients for a certificate (mutual TLS), seeded with the
/// lab MIDs' first user holding `mid_server`; killed when dropped.
pub struct KindsInstance {
    child: std::process::Child,
    pub url: String,
    pub pki: std::sync::Arc<LabPki>,
    /// The instance's fault file (`--faults`): see [`KindsInstance::set_fault`].
    pub faults: PathBuf,
    _directory: tempfile::TempDir,
}

impl KindsInstance {
    /// Starts `midfleet-instancesim` (the binary at `instancesim`).
    pub fn start(instancesim: &Path) -> Result<KindsInstance, LabError> {
        let failed = |error: std::io::Error| LabError(format!("the lab's instance: {error}"));
        let directory = tempfile::tempdir().map_err(failed)?;
        let pki = LabPki::create(&directory.path().join("pki"))?;
        let state = directory.path().join("state.json");
        let seed = json!({ "tables": {
            "sys_user_role": [ { "sys_id": "role-mid-server", "name": "mid_server" } ],
            "sys_user": [
                { "sys_id": "user-initial", "user_name": INITIAL_USER, "user_password": INITIAL_PASSWORD,
                  "active": "true", "locked_out": "false", "web_service_access_only": "true" },
            ],
            "sys_user_has_role": [
                { "sys_id": "grant-initial", "user": "user-initial", "role": "role-mid-server" },
            ],
        } });
        write_private(&state, &seed.to_string())?;
        let faults = directory.path().join("faults");
        let mut child = std::process::Command::new(instancesim)
            .arg("--state")
            .arg(&state)
            .arg("--faults")
            .arg(&faults)
            .arg("--cert")
            .arg(&pki.server_cert)
            .arg("--key")
            .arg(&pki.server_key)
            .arg("--client-ca")
            .arg(&pki.ca_file)
            // A test password, not a secret: the seeded admin's.
            .arg("--admin-password")
            .arg(ADMIN_PASSWORD)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .map_err(failed)?;
        let url = crate::instancesim_url(&mut child)?;
        Ok(KindsInstance {
            url,
            child,
            pki: std::sync::Arc::new(pki),
            faults,
            _directory: directory,
        })
    }

    /// From the next request on, the instance answers every request 503
    /// (`Some("503")`), holds each unanswered (`Some("hang")`: carried out
    /// once the fault is cleared), or serves as usual (`None`).
    pub fn set_fault(&self, fault: Option<&str>) -> Result<(), LabError> {
        let failed = |error: std::io::Error| {
            LabError(format!(
                "the lab's instance: {}: {error}",
                self.faults.display()
            ))
        };
        match fault {
            Some(fault) => {
                // Written whole, then renamed: a request never reads half.
                let temporary = self.faults.with_extension("tmp");
                std::fs::write(&temporary, fault).map_err(failed)?;
                std::fs::rename(&temporary, &self.faults).map_err(failed)
            }
            None => match std::fs::remove_file(&self.faults) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(failed(error)),
                _ => Ok(()),
            },
        }
    }

    /// The `sys_user` record of `user_name`: `(active, locked_out)`, or
    /// `None` when the instance has no such user.
    pub fn user(&self, user_name: &str) -> Result<Option<(bool, bool)>, LabError> {
        let (client, credentials) = self.admin();
        let records = table::query(
            &client,
            &credentials,
            "sys_user",
            &format!("user_name={user_name}"),
            &["active", "locked_out"],
            1,
        )
        .map_err(|error| LabError(format!("the lab's instance: {error}")))?;
        Ok(records.first().map(|record| {
            (
                table::field(record, "active") == "true",
                table::field(record, "locked_out") == "true",
            )
        }))
    }

    /// A spec of hosts of `kinds` then `plain` plain ones, whose MIDs log
    /// in to this instance.
    pub fn spec(&self, midsim: &Path, kinds: &[(HostKind, usize)], plain: usize) -> crate::LabSpec {
        let mut spec = crate::LabSpec::new(0, midsim).with_kinds(kinds);
        spec.hosts = spec.kinds.len() + plain;
        spec.instance_url = Some(self.url.clone());
        spec.instance_ca = Some(self.pki.ca_file.clone());
        spec.instance_admin_password = Some(ADMIN_PASSWORD.into());
        spec.pki = Some(std::sync::Arc::clone(&self.pki));
        spec
    }

    /// `admin`'s client and credentials.
    pub fn admin(&self) -> (Client, Credentials) {
        let client = Client::new(
            &self.url,
            Some(&self.pki.ca_file),
            Settings::with_timeout(5),
        )
        .expect("a client for the lab's instance");
        let credentials =
            Credentials::new("admin".into(), SecretValue::new(ADMIN_PASSWORD.to_string()));
        (client, credentials)
    }

    /// The MID named `name`'s `ecc_agent` record field, if it has a record.
    pub fn mid_field(&self, name: &str, field: &str) -> Option<String> {
        let (client, credentials) = self.admin();
        table::query(
            &client,
            &credentials,
            "ecc_agent",
            &format!("name={name}"),
            &[field],
            1,
        )
        .ok()?
        .first()
        .map(|record| table::field(record, field).to_string())
    }

    /// Waits (20 s at most) until the MID named `name`'s record has
    /// `field` = `value`; panics otherwise.
    pub fn wait_for_field(&self, name: &str, field: &str, value: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if self.mid_field(name, field).as_deref() == Some(value) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "{name}: ecc_agent.{field} is {:?}, not {value:?}",
            self.mid_field(name, field)
        );
    }
}

impl Drop for KindsInstance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CyberArk vault of a lab: `<lab>/cyberark/vault`, lines
/// `<type>/<id>=<secret>`.
pub fn vault_path(lab_directory: &Path) -> PathBuf {
    lab_directory.join("cyberark").join("vault")
}

/// Rewrites a lab config.xml (from the lab's template, with its
/// `mid.instance.username` and `mid.instance.password` lines) for `kind`;
/// `ipki` is (user sys_id, registration key) for an IPKI host.
pub fn config_xml(
    template: &str,
    host: &str,
    kind: HostKind,
    ipki: Option<(&str, &str)>,
) -> String {
    let user_line =
        format!("    <parameter name=\"mid.instance.username\" value=\"{INITIAL_USER}\"/>\n");
    let password_line = format!(
        "    <parameter name=\"mid.instance.password\" secure=\"true\" value=\"{INITIAL_PASSWORD}\"/>\n"
    );
    let credentials = format!("{user_line}{password_line}");
    match kind {
        HostKind::CyberArk => template.replace(
            &credentials,
            &format!(
                "    <parameter name=\"mid.secure_config.provider\" value=\"{CYBERARK_PROVIDER}\"/>\n\
                 \x20   <parameter name=\"mid.instance.username\" secure=\"true\" value=\"cyberark: id=lab/{host}/user, type=Username\"/>\n\
                 \x20   <parameter name=\"mid.instance.password\" secure=\"true\" value=\"cyberark: id=lab/{host}/password, type=Password\"/>\n"
            ),
        ),
        // manage-certificates.sh -m removes both parameters.
        HostKind::MutualTls => template.replace(&credentials, ""),
        HostKind::Ipki => {
            let (user, key) = ipki.unwrap_or_default();
            template.replace(
                &credentials,
                &format!(
                    "    <parameter name=\"mid.ipki.enabled\" value=\"true\"/>\n\
                     \x20   <parameter name=\"mid.ipki.user\" value=\"{user}\"/>\n\
                     \x20   <parameter name=\"mid.ipki.registration_key\" value=\"{key}\"/>\n"
                ),
            )
        }
        _ => template.to_string(),
    }
}

/// The files of `kind` on `host` besides config.xml; returns the knobs to
/// add. `client` is the PEM chain and key of a mutual-TLS host.
pub fn write_host_files(
    host: &LabHost,
    kind: HostKind,
    lab_directory: &Path,
    client: Option<&str>,
) -> Result<String, LabError> {
    let agent = host.agent();
    let mut knobs = String::new();
    match kind {
        HostKind::CyberArk => {
            fs::create_dir_all(agent.join("extlib"))
                .map_err(|error| LabError(error.to_string()))?;
            // Any bytes: the simulated provider only needs it present.
            crate::write(
                &agent.join("extlib/JavaPasswordSDK.jar"),
                "PK\u{5}\u{6} midfleet lab stand-in for CyberArk's JavaPasswordSDK.jar\n",
            )?;
            let vault = vault_path(lab_directory);
            knobs.push_str(&format!("cyberark_vault={}\n", vault.display()));
        }
        HostKind::MutualTls => {
            let pem = client.ok_or_else(|| {
                LabError(format!(
                    "{}: a mutual-TLS host needs the lab's PKI (LabSpec::pki)",
                    host.name
                ))
            })?;
            // What `manage-certificates.sh -a DefaultSecurityKeyPairHandle
            // <pem>` leaves: the keystore (32 key bytes, then the entry).
            let mut bytes = [0u8; 32];
            fs::File::open("/dev/urandom")
                .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut bytes))
                .map_err(|error| LabError(format!("/dev/urandom: {error}")))?;
            let mut keystore = bytes.to_vec();
            keystore
                .extend_from_slice(format!("alias=defaultsecuritykeypairhandle\n{pem}").as_bytes());
            let path = agent.join("security/agent_keystore");
            fs::write(&path, keystore)
                .map_err(|error| LabError(format!("{}: {error}", path.display())))?;
            crate::set_mode(&path, 0o600)?;
        }
        HostKind::Upgrading => knobs.push_str("upgrade=upgrading\n"),
        HostKind::UpgradeFailed => knobs.push_str("upgrade=failed\n"),
        HostKind::Container => {
            crate::write(
                &agent.join(".container"),
                &format!(
                    "ContainerDeploymentName={name}\nDeploymentMidId={name}-0\nContainerDeploymentNamespace=midfleet-lab\n",
                    name = host.name
                ),
            )?;
            crate::write(&agent.join(".initialized"), "")?;
            let secrets = host.local_mid_home.join("secrets");
            fs::create_dir_all(&secrets).map_err(|error| LabError(error.to_string()))?;
            write_private(
                &secrets.join("mid-secrets.properties"),
                &format!(
                    "# The container recipe's MID_SECRETS_FILE: re-applied over config.xml at each start.\n\
                     mid.instance.username={INITIAL_USER}\nmid.instance.password={INITIAL_PASSWORD}\n"
                ),
            )?;
        }
        _ => {}
    }
    Ok(knobs)
}

/// Adds `host`'s accounts to the lab's CyberArk vault (root-owned, 0644,
/// outside every MID's folders).
pub fn add_vault_accounts(lab_directory: &Path, hosts: &[&str]) -> Result<(), LabError> {
    if hosts.is_empty() {
        return Ok(());
    }
    let vault = vault_path(lab_directory);
    if let Some(folder) = vault.parent() {
        fs::create_dir_all(folder).map_err(|error| LabError(error.to_string()))?;
        crate::set_mode(folder, 0o755)?;
    }
    let mut text = String::from("# The lab's CyberArk vault: <type>/<id>=<secret>\n");
    for host in hosts {
        text.push_str(&format!(
            "Username/lab/{host}/user={INITIAL_USER}\nPassword/lab/{host}/password={INITIAL_PASSWORD}\n"
        ));
    }
    crate::write(&vault, &text)?;
    crate::set_mode(&vault, 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_with_counts() {
        assert_eq!(
            parse_kinds("cyberark=2, mtls,upgrading=0").expect("parses"),
            [HostKind::CyberArk, HostKind::CyberArk, HostKind::MutualTls]
        );
        assert!(parse_kinds("cyberark=two").is_err());
        assert!(parse_kinds("vault=1")
            .unwrap_err()
            .contains("kinds: plain, cyberark"));
    }

    #[test]
    fn each_kind_rewrites_only_the_credentials() {
        let template = include_str!("config.xml")
            .replace("{NAME}", "lab-001")
            .replace("{USER}", INITIAL_USER)
            .replace("{PASSWORD}", INITIAL_PASSWORD);
        let mtls = config_xml(&template, "lab-001", HostKind::MutualTls, None);
        let parsed = midfleet::config_xml::ConfigXml::parse(mtls.as_bytes()).expect("parses");
        assert!(parsed.get("mid.instance.username").is_none(), "{mtls}");
        assert!(parsed.get("mid.instance.password").is_none(), "{mtls}");
        assert!(parsed.get("url").is_some(), "{mtls}");
        let cyberark = config_xml(&template, "lab-001", HostKind::CyberArk, None);
        assert!(cyberark.contains("value=\"cyberark: id=lab/lab-001/password, type=Password\""));
        assert!(cyberark.contains(CYBERARK_PROVIDER));
        let ipki = config_xml(&template, "lab-001", HostKind::Ipki, Some(("u1", "k1")));
        assert!(ipki.contains("<parameter name=\"mid.ipki.registration_key\" value=\"k1\"/>"));
        assert_eq!(
            config_xml(&template, "lab-001", HostKind::Container, None),
            template
        );
    }
}
