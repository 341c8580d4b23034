//! The kinds of MID beyond basic authentication with the default provider
//! (docs/lab.md, "Kinds of MID"), each a small hook in [`super::agent`]:
//!
//! - container: `agent/.container` marks it; at each start the recipe's
//!   secrets file `<mid_home>/secrets/mid-secrets.properties` (Java
//!   properties keyed by config.xml parameter names) is re-applied over
//!   config.xml, and the `ecc_agent` record gets a `container_id`.
//! - CyberArk: `mid.secure_config.provider` = [`CYBERARK_PROVIDER`]; values
//!   `cyberark: id=…, type=…` are resolved at start from the lab's vault
//!   file (the `cyberark_vault` knob), never encrypted nor rewritten.
//! - mutual TLS: no `mid.instance.username`/`password`; the client
//!   certificate under [`MTLS_ALIAS`] in the keystore logs in
//!   ([`super::client`]).
//! - IPKI: `mid.ipki.enabled=true`; the first start registers with
//!   `mid.ipki.registration_key` (then emptied, byte-exact elsewhere), keeps
//!   the credential in the keystore, and logs in with it as a bearer token.
//! - upgrading: the `upgrade` knob: after its start the MID reports
//!   `Upgrading` (keeping `work/upgrade_temp/` filled, refusing stop and
//!   restart) or `Upgrade Failed` (running the old version).

use std::fs;
use std::path::{Path, PathBuf};

use midfleet::config_xml::{names, ConfigXml, Operation, SecretForm};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::client::{self, Auth, CallError};
use super::keystore::{self, Key};
use super::knobs::Upgrade;
use super::logs::{Logs, MID_SERVER, STARTUP};
use super::{cipher, config_file};

pub const CYBERARK_PROVIDER: &str =
    "com.service_now.mid.services.config.CyberArkSecuredConfigProvider";
/// The keystore alias of the client certificate (and of the IPKI
/// credential), as `manage-certificates.sh -a` writes it.
pub const MTLS_ALIAS: &str = "defaultsecuritykeypairhandle";
pub const IPKI_ENABLED: &str = "mid.ipki.enabled";
pub const IPKI_USER: &str = "mid.ipki.user";
pub const IPKI_REGISTRATION_KEY: &str = "mid.ipki.registration_key";
/// The version an upgrading MID runs (and an Upgrade Failed one stays on).
pub const OLD_VERSION: &str = "australia-07-01-2026__patch0-06-18-2026_07-01-2026_1200";
/// The version it upgrades to.
pub const NEW_VERSION: &str = "brazil-12-01-2026__patch0-11-18-2026_12-01-2026_1200";

// ---------------------------------------------------------------- container

/// `<mid_home>/secrets/mid-secrets.properties` for `<mid_home>/agent`.
pub fn secrets_file(agent_dir: &Path) -> PathBuf {
    agent_dir
        .parent()
        .unwrap_or(agent_dir)
        .join("secrets")
        .join("mid-secrets.properties")
}

pub fn is_container(agent_dir: &Path) -> bool {
    agent_dir.join(".container").is_file()
}

/// The container's id (64 hex, as Docker's): stable for this agent folder
/// and its `.container` recipe fields.
pub fn container_id(agent_dir: &Path) -> String {
    let recipe = fs::read(agent_dir.join(".container")).unwrap_or_default();
    let mut digest = Sha256::new();
    digest.update(agent_dir.as_os_str().as_encoded_bytes());
    digest.update(&recipe);
    digest
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// `key=value` (or `key: value`) lines of a Java properties file; blank
/// lines and `#`/`!` comments skipped. No line continuations or escapes.
fn properties(text: &str) -> Vec<(String, Zeroizing<String>)> {
    text.lines()
        .map(str::trim_start)
        .filter(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with('!'))
        .filter_map(|line| {
            let split = line.find(['=', ':'])?;
            let key = line[..split].trim().to_string();
            let value = line[split + 1..].trim_start().to_string();
            (!key.is_empty()).then(|| (key, Zeroizing::new(value)))
        })
        .collect()
}

/// The recipe's init: every parameter of the secrets file written over
/// config.xml ("these have precedence and overwrite any existing values").
/// A value that config.xml held otherwise (an edit made inside the
/// container, by SSH) is logged as overwritten. An encrypted value equal
/// to the secret once decrypted is left as it is. Returns the new
/// config.xml when it changed.
pub fn reapply_secrets(
    agent_dir: &Path,
    config: &ConfigXml,
    key: &Key,
    logs: &Logs,
) -> Result<Option<ConfigXml>, String> {
    let path = secrets_file(agent_dir);
    let text = match fs::read_to_string(&path) {
        Ok(text) => Zeroizing::new(text),
        Err(error) => {
            logs.agent(
                STARTUP,
                &format!(
                    "WARNING Container init: no secrets file {} ({error}): config.xml kept as it is",
                    path.display()
                ),
            );
            return Ok(None);
        }
    };
    let secrets = properties(&text);
    let mut operations = Vec::new();
    let mut overwritten = Vec::new();
    for (name, value) in &secrets {
        if let Some(parameter) = config.get(name) {
            let same = match SecretForm::classify(parameter.value()) {
                SecretForm::Encrypted => cipher::decrypt(key, parameter.value())
                    .is_ok_and(|plaintext| plaintext.as_str() == value.as_str()),
                _ => parameter.value() == value.as_str(),
            };
            if same {
                continue;
            }
            overwritten.push(name.as_str());
        }
        operations.push(Operation::Set {
            name,
            value,
            sensitive: names::is_password(name),
        });
    }
    logs.agent(
        STARTUP,
        &format!(
            "Container init: applying {} parameter(s) of the secrets file {} over config.xml",
            secrets.len(),
            path.display()
        ),
    );
    for name in &overwritten {
        logs.agent(
            STARTUP,
            &format!(
                "WARNING Container init: config.xml parameter {name} differed from the secrets file (changed inside the container): overwritten"
            ),
        );
    }
    if operations.is_empty() {
        return Ok(None);
    }
    let edited = config
        .edit(&operations)
        .map_err(|error| format!("Container init: unable to update config.xml: {error}"))?;
    let Some(document) = edited.document else {
        return Ok(None);
    };
    let config_path = agent_dir.join("config.xml");
    config_file::replace(&config_path, document.bytes())
        .map_err(|error| format!("Unable to write {}: {error}", config_path.display()))?;
    Ok(Some(document))
}

// ------------------------------------------------------------------ CyberArk

pub fn is_cyberark(config: &ConfigXml) -> bool {
    config
        .get("mid.secure_config.provider")
        .is_some_and(|parameter| parameter.value().trim() == CYBERARK_PROVIDER)
}

/// Checks what the provider needs before any value is resolved.
pub fn check_cyberark(agent_dir: &Path, logs: &Logs) -> Result<(), String> {
    let jar = agent_dir.join("extlib").join("JavaPasswordSDK.jar");
    if !jar.is_file() {
        return Err(format!(
            "Unable to load secured config provider {CYBERARK_PROVIDER}: java.lang.NoClassDefFoundError: javapasswordsdk/PSDKPasswordRequest ({} is missing)",
            jar.display()
        ));
    }
    logs.agent(
        STARTUP,
        &format!("Using secured config provider {CYBERARK_PROVIDER}"),
    );
    Ok(())
}

/// `id` and `type` of a `cyberark: id=…, type=…` value.
fn reference(value: &str) -> Option<(String, String)> {
    let rest = value.trim().strip_prefix("cyberark:")?;
    let mut id = None;
    let mut kind = None;
    for part in rest.split(',') {
        match part.split_once('=') {
            Some((key, value)) if key.trim() == "id" => id = Some(value.trim().to_string()),
            Some((key, value)) if key.trim() == "type" => kind = Some(value.trim().to_string()),
            _ => {}
        }
    }
    Some((id?, kind?))
}

/// The secret `value` (a `cyberark:` reference) stands for, from the vault
/// file (`<type>/<id>=<secret>` lines); anything else is returned as is.
pub fn resolve(
    name: &str,
    value: &str,
    vault: Option<&Path>,
    logs: &Logs,
) -> Result<Zeroizing<String>, String> {
    if !value.trim().starts_with("cyberark:") {
        return Ok(Zeroizing::new(value.to_string()));
    }
    let (id, kind) = reference(value).ok_or_else(|| {
        format!("Unable to unsecure parameter {name}: {value:?} is not `cyberark: id=<account>, type=<platform>`")
    })?;
    let vault = vault.ok_or_else(|| {
        format!("Unable to unsecure parameter {name}: CyberArk is not reachable (no vault: the cyberark_vault knob)")
    })?;
    let text = Zeroizing::new(fs::read_to_string(vault).map_err(|error| {
        format!(
            "Unable to unsecure parameter {name}: CyberArk is not reachable ({}: {error})",
            vault.display()
        )
    })?);
    let wanted = format!("{kind}/{id}");
    let secret = text.lines().find_map(|line| {
        let (account, secret) = line.split_once('=')?;
        (account.trim() == wanted).then(|| Zeroizing::new(secret.to_string()))
    });
    match secret {
        Some(secret) => {
            logs.agent(
                STARTUP,
                &format!("CyberArk: resolved parameter {name} (id={id}, type={kind})"),
            );
            Ok(secret)
        }
        None => Err(format!(
            "Unable to unsecure parameter {name}: CyberArk has no account id={id}, type={kind} (APPAP004E Password object matching query [Object={id}] was not found)"
        )),
    }
}

// ------------------------------------------------------ mutual TLS and IPKI

/// How a MID without a password logs in.
pub struct Identity {
    pub auth: Auth,
    /// `mTLS` or `IPKI`, for the log.
    pub kind: &'static str,
}

pub fn is_ipki(config: &ConfigXml) -> bool {
    config
        .get(IPKI_ENABLED)
        .is_some_and(|parameter| parameter.value().trim().eq_ignore_ascii_case("true"))
}

/// The mutual-TLS identity: the keystore's `DefaultSecurityKeyPairHandle`
/// entry, which must hold a certificate and a PKCS#8 key.
pub fn mtls_identity(agent_dir: &Path, logs: &Logs) -> Result<Identity, String> {
    let keystore = keystore::path(agent_dir);
    let Some(pem) = keystore::entry(&keystore, MTLS_ALIAS) else {
        return Err(format!(
            "No mid.instance.username and no certificate under alias DefaultSecurityKeyPairHandle in {}: add one with manage-certificates.sh -a DefaultSecurityKeyPairHandle <pem>, or set a user and password",
            keystore.display()
        ));
    };
    if !client::has_valid_identity(&pem) {
        return Err("Could not find valid private key".into());
    }
    logs.agent(STARTUP, "Configured MID to use mutual authentication");
    Ok(Identity {
        auth: Auth::ClientCertificate(pem.to_string()),
        kind: "mTLS",
    })
}

/// The IPKI identity: registers first when config.xml holds a
/// registration key (then empties it), else uses the credential in the
/// keystore. Returns config.xml as it is afterwards.
pub fn ipki_identity(
    agent_dir: &Path,
    config: ConfigXml,
    url: Option<&str>,
    ca_file: Option<&Path>,
    logs: &Logs,
) -> Result<(Identity, ConfigXml), String> {
    let keystore = keystore::path(agent_dir);
    let user = config
        .get(IPKI_USER)
        .map(|parameter| parameter.value().trim().to_string())
        .unwrap_or_default();
    let registration_key = config
        .get(IPKI_REGISTRATION_KEY)
        .map(|parameter| Zeroizing::new(parameter.value().trim().to_string()))
        .filter(|key| !key.is_empty());
    let Some(registration_key) = registration_key else {
        let credential = keystore::entry(&keystore, MTLS_ALIAS)
            .and_then(|pem| {
                pem.lines()
                    .find_map(|line| line.strip_prefix("ipki-credential "))
                    .map(|token| token.trim().to_string())
            })
            .ok_or_else(|| {
                format!(
                    "IPKI: no instance-issued certificate in {} and no mid.ipki.registration_key: generate a single-use registration key on the instance and set it in config.xml to reregister",
                    keystore.display()
                )
            })?;
        logs.agent(
            STARTUP,
            "IPKI: using the instance-issued certificate in the keystore",
        );
        return Ok((
            Identity {
                auth: Auth::Bearer(credential),
                kind: "IPKI",
            },
            config,
        ));
    };
    if user.is_empty() {
        return Err(format!(
            "IPKI: {IPKI_USER} is missing in config.xml (the sys_id of the MID Server user)"
        ));
    }
    let url = url.ok_or("IPKI: no instance to register with (the instance_url knob)")?;
    let name = config
        .get("name")
        .map_or("", |parameter| parameter.value())
        .to_string();
    logs.agent(
        STARTUP,
        "IPKI: registering with the instance using the registration key",
    );
    let body = json!({ "registration_key": registration_key.as_str(), "user": user, "name": name });
    let (_, answer) = client::call(
        url,
        ca_file,
        &Auth::None,
        "POST",
        "/api/now/mid/ipki/register",
        Some(&body),
    )
    .map_err(|error| format!("IPKI registration failed: {error}"))?;
    let credential = answer["result"]["credential"]
        .as_str()
        .filter(|token| !token.is_empty())
        .ok_or("IPKI registration failed: the instance issued no certificate")?
        .to_string();
    let expires = answer["result"]["expires"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    keystore::set_entry(
        &keystore,
        MTLS_ALIAS,
        &format!("ipki-credential {credential}\nipki-expires {expires}\n"),
    )
    .map_err(|error| {
        format!(
            "IPKI: unable to store the certificate in {}: {error}",
            keystore.display()
        )
    })?;
    logs.agent(
        STARTUP,
        &format!("IPKI: registration succeeded: the instance issued this MID Server's certificate (expires {expires}); stored under alias DefaultSecurityKeyPairHandle"),
    );
    // "Cleared automatically after use": only that value becomes empty.
    let edited = config
        .edit(&[Operation::Set {
            name: IPKI_REGISTRATION_KEY,
            value: "",
            sensitive: true,
        }])
        .map_err(|error| format!("Unable to update config.xml: {error}"))?;
    let config = match edited.document {
        Some(document) => {
            let config_path = agent_dir.join("config.xml");
            config_file::replace(&config_path, document.bytes())
                .map_err(|error| format!("Unable to write {}: {error}", config_path.display()))?;
            logs.agent(
                STARTUP,
                &format!("Updated config.xml: cleared {IPKI_REGISTRATION_KEY}"),
            );
            document
        }
        None => config,
    };
    Ok((
        Identity {
            auth: Auth::Bearer(credential),
            kind: "IPKI",
        },
        config,
    ))
}

/// One login check with `identity`: the MID reads its own `ecc_agent`
/// record (what a `mid_server` user may). Ok(None) accepted,
/// Ok(Some(why)) refused.
pub fn accepts(
    url: &str,
    ca_file: Option<&Path>,
    identity: &Identity,
    name: &str,
) -> Result<Option<String>, String> {
    let path = format!(
        "/api/now/table/ecc_agent?sysparm_query=name%3D{}&sysparm_limit=1",
        encode(name)
    );
    match client::call(url, ca_file, &identity.auth, "GET", &path, None) {
        Ok(_) => Ok(None),
        Err(CallError::Refused(why)) => Ok(Some(why)),
        Err(CallError::Failed(message)) => Err(message),
    }
}

/// Creates or updates the MID's `ecc_agent` record with `fields`, logged
/// in with `identity`.
pub fn report(
    url: &str,
    ca_file: Option<&Path>,
    identity: &Identity,
    name: &str,
    fields: &Value,
) -> Result<(), String> {
    let path = format!(
        "/api/now/table/ecc_agent?sysparm_query=name%3D{}&sysparm_limit=1",
        encode(name)
    );
    let (_, found) = client::call(url, ca_file, &identity.auth, "GET", &path, None)
        .map_err(|error| error.to_string())?;
    let mut body = fields.clone();
    body["name"] = json!(name);
    // Who the instance says the MID acts as: a user reads its own
    // sys_user record only.
    if let Ok((_, own)) = client::call(
        url,
        ca_file,
        &identity.auth,
        "GET",
        "/api/now/table/sys_user?sysparm_fields=user_name&sysparm_limit=1",
        None,
    ) {
        if let Some(user) = own["result"][0]["user_name"].as_str() {
            body["user_name"] = json!(user);
        }
    }
    let existing = found["result"]
        .as_array()
        .and_then(|records| records.first())
        .and_then(|record| record["sys_id"].as_str())
        .map(str::to_string);
    let result = match existing {
        Some(sys_id) => client::call(
            url,
            ca_file,
            &identity.auth,
            "PATCH",
            &format!("/api/now/table/ecc_agent/{sys_id}"),
            Some(&body),
        ),
        None => client::call(
            url,
            ca_file,
            &identity.auth,
            "POST",
            "/api/now/table/ecc_agent",
            Some(&body),
        ),
    };
    result.map(|_| ()).map_err(|error| error.to_string())
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

// ----------------------------------------------------------------- upgrades

/// `work/upgrade_temp` of an agent.
pub fn upgrade_temp(agent_dir: &Path) -> PathBuf {
    agent_dir.join("work").join("upgrade_temp")
}

/// After the start: the upgrade the `upgrade` knob asks for, logged as
/// ServiceNow's upgrader logs it. Returns the status to report
/// (`Upgrading`, `Upgrade Failed`), or `None` for no upgrade.
pub fn upgrade(agent_dir: &Path, upgrade: Upgrade, logs: &Logs) -> Option<&'static str> {
    let package = format!("mid-upgrade.{NEW_VERSION}.linux.x86-64.zip");
    let incoming = agent_dir.join("package").join("incoming");
    match upgrade {
        Upgrade::None => None,
        Upgrade::Upgrading => {
            logs.agent(MID_SERVER, "Performing pre-upgrade validation tests.");
            logs.agent(
                MID_SERVER,
                "Pre-upgrade validation tests successful. Continuing with upgrade process.",
            );
            logs.agent(
                MID_SERVER,
                &format!(
                    "Downloading package to {} from https://install.service-now.com/glide/distribution/builds/package/app-signed/{package}",
                    incoming.join(&package).display()
                ),
            );
            let temp = upgrade_temp(agent_dir);
            let written = fs::create_dir_all(&incoming)
                .and_then(|()| fs::write(incoming.join(&package), b"PK\x05\x06 midsim package\n"))
                .and_then(|()| fs::create_dir_all(temp.join("agent").join("lib")))
                .and_then(|()| {
                    fs::write(
                        temp.join("agent").join("lib").join("mid.jar"),
                        format!("midsim {NEW_VERSION}\n"),
                    )
                });
            if let Err(error) = written {
                logs.agent(
                    MID_SERVER,
                    &format!("SEVERE Unable to extract the upgrade package: {error}"),
                );
            }
            logs.agent(
                MID_SERVER,
                "Package was successfully downloaded from https://install.service-now.com/",
            );
            logs.agent(MID_SERVER, "Upgrading MID server");
            logs.agent(
                MID_SERVER,
                &format!(
                    "Extracting package {} to {}",
                    incoming.join(&package).display(),
                    temp.display()
                ),
            );
            logs.agent(MID_SERVER, "Stopping MID server. Bootstrapping upgrade");
            Some("Upgrading")
        }
        Upgrade::Failed => {
            logs.agent(MID_SERVER, "Performing pre-upgrade validation tests.");
            logs.agent(
                MID_SERVER,
                &format!(
                    "Downloading package to {} from https://install.service-now.com/glide/distribution/builds/package/app-signed/{package}",
                    incoming.join(&package).display()
                ),
            );
            logs.agent(
                MID_SERVER,
                &format!(
                    "SEVERE Upgrade failed: unable to download package {package}: the MID Server continues with version {OLD_VERSION}"
                ),
            );
            Some("Upgrade Failed")
        }
    }
}

/// Whether the MID is in the middle of an upgrade: running, the knob
/// says so, and `work/upgrade_temp/` holds the extracted package.
pub fn is_upgrading(agent_dir: &Path, upgrade: Upgrade) -> bool {
    upgrade == Upgrade::Upgrading
        && fs::read_dir(upgrade_temp(agent_dir)).is_ok_and(|mut entries| entries.next().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_names_its_id_and_type() {
        assert_eq!(
            reference("cyberark: id=mid_user, type=password"),
            Some(("mid_user".into(), "password".into()))
        );
        assert_eq!(reference("cyberark: id=a"), None);
        assert_eq!(reference("plain"), None);
    }

    #[test]
    fn properties_are_key_value_lines() {
        let found = properties("# c\n! c\n\nmid.instance.password = a=b\nname: x\n");
        let found: Vec<(&str, &str)> = found
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        assert_eq!(found, [("mid.instance.password", "a=b"), ("name", "x")]);
    }
}
