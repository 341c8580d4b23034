//! Running `midfleet-instancesim` in tests: start it, learn its URL, seed
//! and read its state, read its request log; killed when dropped. Also a
//! test CA and a server certificate for HTTPS (rcgen).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The integration user's password on every emulated instance.
pub const ADMIN_PASSWORD: &str = "Adm1n-pw";

/// A running emulated instance.
pub struct Instance {
    child: Child,
    /// `http://127.0.0.1:PORT` (or https).
    pub url: String,
    /// Holds the state and log files; removed when dropped.
    _directory: tempfile::TempDir,
    pub state: PathBuf,
    pub log: PathBuf,
}

/// Certificates for an HTTPS instance.
pub struct TestCa {
    pub ca_file: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Instance {
    /// Starts an instance seeded with `seed` (the state file's JSON, e.g.
    /// `{"tables":{"sys_user":[…]}}`) and `arguments` (fault knobs…).
    pub fn start(seed: Option<Value>, arguments: &[&str]) -> Instance {
        let directory = tempfile::tempdir().expect("temporary directory");
        let state = directory.path().join("state.json");
        let log = directory.path().join("requests.jsonl");
        if let Some(seed) = seed {
            std::fs::write(&state, seed.to_string()).expect("write the seed");
        }
        let mut child = Command::new(midfleet_lab::instancesim())
            .arg("--state")
            .arg(&state)
            .arg("--log")
            .arg(&log)
            .arg("--admin-password")
            .arg(ADMIN_PASSWORD)
            .args(arguments)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start midfleet-instancesim");
        let url = midfleet_lab::instancesim_url(&mut child).expect("its URL");
        Instance {
            child,
            url,
            _directory: directory,
            state,
            log,
        }
    }

    /// The state as saved after the last change.
    pub fn state(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(&self.state).expect("read state"))
            .expect("state is JSON")
    }

    /// The `sys_user` record of `user_name`.
    pub fn user(&self, user_name: &str) -> Option<Value> {
        self.records("sys_user")
            .into_iter()
            .find(|record| record["user_name"] == user_name)
    }

    pub fn records(&self, table: &str) -> Vec<Value> {
        self.state()["tables"][table]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The names of the roles `user_name` holds.
    pub fn roles_of(&self, user_name: &str) -> Vec<String> {
        let Some(user) = self.user(user_name) else {
            return Vec::new();
        };
        let roles = self.records("sys_user_role");
        self.records("sys_user_has_role")
            .iter()
            .filter(|grant| grant["user"] == user["sys_id"])
            .filter_map(|grant| {
                roles
                    .iter()
                    .find(|role| role["sys_id"] == grant["role"])
                    .and_then(|role| role["name"].as_str().map(str::to_string))
            })
            .collect()
    }

    /// The instance's `admin`, to set a MID's `ecc_agent` fields or add
    /// its `ecc_agent_config` rows as an administrator would (HTTP only).
    #[allow(dead_code)]
    pub fn admin(&self) -> midfleet_lab::InstanceAdmin {
        midfleet_lab::InstanceAdmin::new(&self.url, None, ADMIN_PASSWORD).expect("admin client")
    }

    /// Every request served, one JSON object each.
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("log line is JSON"))
            .collect()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `sys_user` seed record that logs in with `password`.
pub fn user_record(user_name: &str, password: &str) -> Value {
    serde_json::json!({
        "user_name": user_name, "user_password": password,
        "active": "true", "locked_out": "false",
    })
}

/// A CA and a certificate for 127.0.0.1 and localhost that it signed,
/// written as PEM files in `directory`.
pub fn test_ca(directory: &Path) -> TestCa {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "midfleet test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let server_key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().expect("address")));
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let server_cert = params
        .signed_by(&server_key, &issuer)
        .expect("server certificate");
    let ca = TestCa {
        ca_file: directory.join("ca.pem"),
        cert: directory.join("server.pem"),
        key: directory.join("server.key"),
    };
    std::fs::write(&ca.ca_file, ca_cert.pem()).expect("write CA");
    std::fs::write(&ca.cert, server_cert.pem()).expect("write cert");
    std::fs::write(&ca.key, server_key.serialize_pem()).expect("write key");
    ca
}
