//! End-to-end tests of `midfleet-midsim`, the simulated MID agent of the
//! test lab: the built binary driven as `agent/bin/mid.sh` drives it, each
//! test with its own `<mid_home>` in a temp dir.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

const MIDSIM: &str = env!("CARGO_BIN_EXE_midfleet-midsim");
const SHIPPED: &str = include_str!("../../../tests/fixtures/shipped.xml");
const GLIDESOAP: &str = include_str!("../../../tests/fixtures/glidesoap.xml");
/// The shipped fixture's password value (a placeholder no key opens).
const SHIPPED_PASSWORD: &str = "encrypted:QUJDREVGR0hJSktMTU5PUA==";
const USER: &str = "svc_mid_old";
/// `N3w&Pa<ss` as written in config.xml.
const PASSWORD: &str = "N3w&Pa<ss";
const PASSWORD_ESCAPED: &str = "N3w&amp;Pa&lt;ss";
const KEY_PAIR_LINE: &str =
    "    <parameter name=\"keypairs.mid_id\" value=\"8f2f1f6a-6d5b-4c2a-9a53-0d4c2b1e7e10\"/>\n";
const WAIT: Duration = Duration::from_secs(10);

/// One `<mid_home>` with an agent folder, knobs and a credential store.
struct Lab {
    _home: tempfile::TempDir,
    home: PathBuf,
    agent: PathBuf,
}

impl Lab {
    /// A MID whose config.xml is `config`, a keystore already in place, and
    /// an instance that accepts [`USER`] with [`PASSWORD`]. `knobs` is added
    /// to the defaults every test wants.
    fn new(config: &str, knobs: &str) -> Lab {
        let home_dir = tempfile::tempdir().expect("temp dir");
        let home = home_dir.path().to_path_buf();
        let agent = home.join("agent");
        fs::create_dir_all(agent.join("security")).expect("agent dir");
        fs::write(agent.join("config.xml"), config).expect("config.xml");
        fs::write(agent.join("security/agent_keystore"), [7u8; 32]).expect("keystore");
        fs::write(
            home.join("instance.creds"),
            format!("someone:00\n{}\n", credential_line(USER, PASSWORD)),
        )
        .expect("credential store");
        fs::write(
            home.join(".midsim"),
            format!(
                "instance=instance.creds\nstart_delay_ms=50\nowner_pid={}\n{knobs}",
                std::process::id()
            ),
        )
        .expect("knobs");
        Lab {
            _home: home_dir,
            home,
            agent,
        }
    }

    fn midsim(&self, command: &str) -> Output {
        Command::new(MIDSIM)
            .arg(command)
            .arg("--agent")
            .arg(&self.agent)
            .output()
            .expect("run midfleet-midsim")
    }

    fn status_code(&self) -> Option<i32> {
        self.midsim("status").status.code()
    }

    fn start(&self) {
        let output = self.midsim("start");
        assert!(output.status.success(), "start: {output:?}");
    }

    fn stop(&self) {
        let output = self.midsim("stop");
        assert!(output.status.success(), "stop: {output:?}");
    }

    fn config(&self) -> String {
        fs::read_to_string(self.agent.join("config.xml")).expect("config.xml")
    }

    fn write_config(&self, config: &str) {
        fs::write(self.agent.join("config.xml"), config).expect("config.xml");
    }

    fn keystore(&self) -> Vec<u8> {
        fs::read(self.agent.join("security/agent_keystore")).expect("keystore")
    }

    fn log(&self, name: &str) -> String {
        fs::read_to_string(self.agent.join("logs").join(name)).unwrap_or_default()
    }

    fn agent_log(&self) -> String {
        self.log("agent0.log.0")
    }

    /// Waits until the agent log holds `needle` `count` times.
    fn wait_for_log(&self, needle: &str, count: usize) {
        let found = wait_until(|| self.agent_log().matches(needle).count() >= count);
        assert!(
            found,
            "no {needle:?} ×{count} in agent0.log.0:\n{}\nwrapper.log:\n{}",
            self.agent_log(),
            self.log("wrapper.log")
        );
    }

    /// Waits until `status` says not running.
    fn wait_for_exit(&self) {
        assert!(
            wait_until(|| self.status_code() == Some(1)),
            "the MID is still running:\n{}",
            self.log("wrapper.log")
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.midsim("stop");
    }
}

fn wait_until(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    condition()
}

fn credential_line(user: &str, password: &str) -> String {
    let digest = Sha256::digest(format!("{user}:{password}").as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{user}:{hex}")
}

/// The value of parameter `name` in `config`, raw as written.
fn value_of(config: &str, name: &str) -> Option<String> {
    let marker = format!("<parameter name=\"{name}\"");
    let line = config
        .lines()
        .find(|line| line.trim_start().starts_with(&marker))?;
    let (_, rest) = line.split_once("value=\"")?;
    Some(rest.split_once('"')?.0.to_string())
}

/// Asserts that `after` is `before` with `old_value` (at its one place)
/// replaced by an `encrypted:` value, every other byte identical; returns
/// the new value.
fn assert_only_sealed(before: &str, after: &str, old_value: &str) -> String {
    let quoted = format!("value=\"{old_value}\"");
    assert_eq!(before.matches(&quoted).count(), 1, "one place to seal");
    let (head, tail) = before.split_once(&quoted).expect("value");
    let head = format!("{head}value=\"");
    let tail = format!("\"{tail}");
    assert!(
        after.starts_with(&head),
        "bytes before the value changed:\n{after}"
    );
    assert!(
        after.ends_with(&tail),
        "bytes after the value changed:\n{after}"
    );
    let value = &after[head.len()..after.len() - tail.len()];
    assert!(value.starts_with("encrypted:"), "{value}");
    assert!(!value.contains('"') && !value.contains('\n'), "{value}");
    value.to_string()
}

fn shipped_with_password(value: &str) -> String {
    SHIPPED.replacen(SHIPPED_PASSWORD, value, 1)
}

#[test]
fn seals_the_password_keeps_every_other_byte_and_regenerates_keys() {
    let original = shipped_with_password(PASSWORD_ESCAPED);
    let lab = Lab::new(&original, "");
    assert_eq!(lab.status_code(), Some(1), "not running before start");

    lab.start();
    lab.wait_for_log("MID Server started", 1);
    let log = lab.agent_log();
    assert!(log.contains(&format!("Setting basic authentication with user {USER}")));
    assert!(log.contains("Successfully connected to instance: https://acme.service-now.com/"));
    let sealed_config = lab.config();
    let sealed = assert_only_sealed(&original, &sealed_config, PASSWORD_ESCAPED);
    assert!(!sealed_config.contains("N3w"));

    let status = lab.midsim("status");
    assert_eq!(status.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&status.stdout).starts_with("MID Server is running (PID "));
    // `start` while running does nothing.
    lab.start();

    lab.stop();
    let status = lab.midsim("status");
    assert_eq!(status.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&status.stdout),
        "MID Server is not running.\n"
    );
    assert!(lab.agent_log().contains("MID Server stopping"));
    assert!(!lab.agent.join("work/mid.pid").exists());
    lab.stop(); // stopping a stopped MID is fine

    // The sealed value opens with the same keystore (the MID logs in with
    // it), and nothing is rewritten.
    lab.start();
    lab.wait_for_log("MID Server started", 2);
    assert_eq!(lab.config(), sealed_config);

    // The user-change procedure: new plaintext password, keypairs.mid_id
    // removed. The MID makes a new key and writes a new id.
    let old_key = lab.keystore();
    let changed = sealed_config
        .replacen(&sealed, PASSWORD_ESCAPED, 1)
        .replacen(KEY_PAIR_LINE, "", 1);
    assert_eq!(value_of(&changed, "keypairs.mid_id"), None);
    lab.write_config(&changed);
    let restart = lab.midsim("restart");
    assert!(restart.status.success(), "restart: {restart:?}");
    lab.wait_for_log("MID Server started", 3);
    let new_key = lab.keystore();
    assert_eq!(new_key.len(), 32);
    assert_ne!(new_key, old_key, "a new keystore");
    let regenerated = lab.config();
    let mid_id = value_of(&regenerated, "keypairs.mid_id").expect("a new keypairs.mid_id");
    assert_ne!(mid_id, "8f2f1f6a-6d5b-4c2a-9a53-0d4c2b1e7e10");
    assert_eq!(mid_id.len(), 36);
    assert_eq!(mid_id.as_bytes()[14], b'4', "UUID v4: {mid_id}");
    let resealed = value_of(&regenerated, "mid.instance.password").expect("password");
    assert!(resealed.starts_with("encrypted:") && resealed != sealed);
    // Only the sealed value changed and the id line was added before
    // </parameters>; the commented-out CyberArk password is untouched.
    let expected = changed.replacen(PASSWORD_ESCAPED, &resealed, 1).replacen(
        "\n</parameters>",
        &format!("\n    <parameter name=\"keypairs.mid_id\" value=\"{mid_id}\"/>\n</parameters>"),
        1,
    );
    assert_eq!(regenerated, expected);
    assert!(regenerated.contains("value=\"cyberark: id=mid_user, type=password\""));
    lab.stop();
    assert_eq!(lab.status_code(), Some(1));
}

#[test]
fn an_old_encrypted_value_does_not_open_with_a_new_keystore() {
    let lab = Lab::new(&shipped_with_password(PASSWORD_ESCAPED), "");
    lab.start();
    lab.wait_for_log("MID Server started", 1);
    lab.stop();
    // keypairs.mid_id removed but the password left encrypted: the new key
    // cannot open it.
    lab.write_config(&lab.config().replacen(KEY_PAIR_LINE, "", 1));
    lab.start();
    lab.wait_for_exit();
    let log = lab.agent_log();
    let (_, second_start) = log.rsplit_once("Starting MID Server").expect("two starts");
    assert!(
        second_start.contains(
            "ERROR *** Unable to unsecure parameter mid.instance.password: Problem while decrypting"
        ),
        "{log}"
    );
    assert!(
        !second_start.contains("Setting basic authentication"),
        "{log}"
    );
}

#[test]
fn a_refused_login_is_retried_and_nothing_is_written() {
    let original = shipped_with_password("wrong-password");
    let lab = Lab::new(&original, "");
    lab.start();
    let refused = format!("Could not authenticate user '{USER}' on the ServiceNow instance.");
    lab.wait_for_log(&refused, 2);
    assert_eq!(lab.status_code(), Some(0), "a refused MID keeps running");
    assert_eq!(lab.config(), original, "nothing written");
    assert!(!lab.agent_log().contains("MID Server started"));

    // The instance learns the password: the next retry gets in.
    fs::write(
        lab.home.join("instance.creds"),
        credential_line(USER, "wrong-password"),
    )
    .expect("credential store");
    lab.wait_for_log("MID Server started", 1);
    assert_only_sealed(&original, &lab.config(), "wrong-password");
}

#[test]
fn a_glidesoap_password_is_sealed_too() {
    let original = GLIDESOAP.replacen("encrypted:b2xkZXJlbmNyeXB0ZWQ=", "legacy-pw", 1);
    let lab = Lab::new(&original, "");
    fs::write(
        lab.home.join("instance.creds"),
        credential_line("svc_mid_legacy", "legacy-pw"),
    )
    .expect("credential store");
    lab.start();
    lab.wait_for_log("MID Server started", 1);
    assert!(lab
        .agent_log()
        .contains("Setting basic authentication with user svc_mid_legacy"));
    assert_only_sealed(&original, &lab.config(), "legacy-pw");
}

#[test]
fn start_failures_are_logged_and_the_process_is_gone() {
    let unescaped = shipped_with_password("N3w&Pass");
    let cases: [(&str, &str, &str); 3] = [
        (&unescaped, "", "XML parser error: config.xml line 14"),
        (
            &shipped_with_password(PASSWORD_ESCAPED),
            "",
            "*** ERROR *** Unable to load keystore",
        ),
        (
            SHIPPED,
            "",
            "Unable to unsecure parameter mid.instance.password: Problem while decrypting",
        ),
    ];
    for (index, (config, knobs, message)) in cases.into_iter().enumerate() {
        let lab = Lab::new(config, knobs);
        if index == 1 {
            fs::remove_file(lab.agent.join("security/agent_keystore")).expect("rm keystore");
        }
        let before = lab.config();
        lab.start();
        lab.wait_for_exit();
        assert!(
            lab.agent_log().contains(message),
            "{message}: {}",
            lab.agent_log()
        );
        assert!(lab.agent_log().contains("SEVERE *** ERROR ***"));
        assert!(
            lab.log("wrapper.log").contains(message),
            "{}",
            lab.log("wrapper.log")
        );
        assert_eq!(lab.config(), before, "nothing written");
    }
}

#[test]
fn a_jvm_that_dies_at_start_leaves_only_a_wrapper_log_line() {
    let lab = Lab::new(
        &shipped_with_password(PASSWORD_ESCAPED),
        "die_at_start=true\n",
    );
    let start = lab.midsim("start");
    assert!(start.status.success(), "start returns 0 even so: {start:?}");
    lab.wait_for_exit();
    assert!(!lab.agent.join("logs/agent0.log.0").exists());
    assert!(lab.log("wrapper.log").contains("JVM exited unexpectedly."));
}

#[test]
fn the_mid_exits_by_itself_when_its_owner_is_gone() {
    let mut child = Command::new("true").spawn().expect("spawn true");
    child.wait().expect("reap");
    let dead = child.id();
    let lab = Lab::new(
        &shipped_with_password(PASSWORD_ESCAPED),
        &format!("owner_pid={dead}\n"),
    );
    lab.start();
    lab.wait_for_exit();
    assert!(lab
        .log("wrapper.log")
        .contains(&format!("Owner process {dead} is gone")));
}

#[test]
fn bad_knobs_fail_the_start() {
    let lab = Lab::new(SHIPPED, "stop_hangs=maybe\n");
    let start = lab.midsim("start");
    assert_eq!(start.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&start.stderr).contains(".midsim:4: stop_hangs"));
    assert_eq!(lab.status_code(), Some(1));
}

/// `stop_hangs` set after the start (`midfleet lab fault HOST
/// hangs-at-stop`) still makes the next stop hang: the MID reads its knobs
/// again when SIGTERM comes.
#[test]
fn stop_hangs_set_while_running_makes_the_next_stop_hang() {
    let lab = Lab::new(&shipped_with_password(PASSWORD_ESCAPED), "");
    lab.start();
    lab.wait_for_log("MID Server started", 1);
    let knobs = fs::read_to_string(lab.home.join(".midsim")).expect("knobs");
    fs::write(
        lab.home.join(".midsim"),
        format!("{knobs}stop_hangs=true\n"),
    )
    .expect("knobs");
    let pid: i32 = fs::read_to_string(lab.agent.join("work/mid.pid"))
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid");
    // SAFETY: kill(2) on the MID this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        lab.status_code(),
        Some(0),
        "SIGTERM was ignored: still running"
    );
    assert!(!lab.log("wrapper.log").contains("<-- Wrapper Stopped"));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    lab.wait_for_exit();
}

const INSTANCESIM: &str = env!("CARGO_BIN_EXE_midfleet-instancesim");
const ADMIN_PASSWORD: &str = "Adm1n-pw";

/// A running `midfleet-instancesim` whose users are `users` (name,
/// password), each holding `mid_server`; killed when dropped.
struct Instance {
    child: std::process::Child,
    url: String,
    _directory: tempfile::TempDir,
}

impl Instance {
    fn start(users: &[(&str, &str)]) -> Instance {
        let directory = tempfile::tempdir().expect("temp dir");
        let state = directory.path().join("state.json");
        let records: Vec<serde_json::Value> = users
            .iter()
            .map(|(user, password)| {
                serde_json::json!({
                    "sys_id": format!("user-{user}"), "user_name": user, "user_password": password,
                    "active": "true", "locked_out": "false",
                })
            })
            .collect();
        let grants: Vec<serde_json::Value> = users
            .iter()
            .map(|(user, _)| serde_json::json!({ "user": format!("user-{user}"), "role": "role-mid" }))
            .collect();
        let seed = serde_json::json!({ "tables": {
            "sys_user": records,
            "sys_user_role": [{ "sys_id": "role-mid", "name": "mid_server" }],
            "sys_user_has_role": grants,
        } });
        fs::write(&state, seed.to_string()).expect("seed");
        let mut child = Command::new(INSTANCESIM)
            .arg("--state")
            .arg(&state)
            .arg("--admin-password")
            .arg(ADMIN_PASSWORD)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start midfleet-instancesim");
        let url = midfleet_lab::instancesim_url(&mut child).expect("its URL");
        Instance {
            child,
            url,
            _directory: directory,
        }
    }

    fn admin(&self) -> midfleet_lab::InstanceAdmin {
        midfleet_lab::InstanceAdmin::new(&self.url, None, ADMIN_PASSWORD).expect("admin")
    }

    /// `(status, user_name)` of the MID's `ecc_agent` record.
    fn agent(&self, name: &str) -> Option<(String, String)> {
        use midfleet::instance::{table, Client, Credentials, Settings};
        let client = Client::new(&self.url, None, Settings::with_timeout(5)).expect("client");
        let admin = Credentials::new(
            "admin".into(),
            midfleet::secret::SecretValue::new(ADMIN_PASSWORD.into()),
        );
        let record = table::mid_record(&client, &admin, name).expect("ecc_agent")?;
        Some((
            table::field(&record, "status").to_string(),
            table::field(&record, "user_name").to_string(),
        ))
    }

    /// Sets `user`'s password, as an admin does in the user form.
    fn set_password(&self, user: &str, password: &str) {
        use midfleet::instance::{table, Client, Credentials, Settings};
        let client = Client::new(&self.url, None, Settings::with_timeout(5)).expect("client");
        let admin = Credentials::new(
            "admin".into(),
            midfleet::secret::SecretValue::new(ADMIN_PASSWORD.into()),
        );
        let body = serde_json::json!({ "user_password": password });
        table::update(
            &client,
            &admin,
            "sys_user",
            &format!("user-{user}"),
            &body,
            true,
        )
        .expect("password set");
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A MID Server configuration parameter (`ecc_agent_config`) outranks
/// config.xml at the MID's next start: a `mid.instance.username` row makes
/// it log in as that user with config.xml's password (refused, as a
/// rotation overridden on the instance is), a `mid.instance.password` row
/// with that password (never logged); config.xml is never rewritten.
#[test]
fn ecc_agent_config_rows_outrank_config_xml_at_the_next_start() {
    const OTHER: &str = "svc_mid_other";
    const ROW_PASSWORD: &str = "R0w-Pw-from-instance";
    let instance = Instance::start(&[(USER, PASSWORD), (OTHER, "Other-pw-1")]);
    let lab = Lab::new(
        &shipped_with_password(PASSWORD_ESCAPED),
        &format!("instance_url={}\n", instance.url),
    );
    lab.start();
    lab.wait_for_log("ecc_agent emea01 is Up", 1);
    assert_eq!(instance.agent("emea01"), Some(("Up".into(), USER.into())));
    assert!(!lab.agent_log().contains("configuration parameters"));
    let sealed = lab.config();

    let admin = instance.admin();
    let row = admin
        .add_mid_config("emea01", "mid.instance.username", OTHER)
        .expect("row");
    admin
        .add_mid_config("emea01", "mid.log.level", "debug")
        .expect("row");
    // Nothing happens before the next start.
    thread::sleep(Duration::from_millis(700));
    assert_eq!(
        lab.agent_log()
            .matches("Setting basic authentication")
            .count(),
        1
    );

    let restart = lab.midsim("restart");
    assert!(restart.status.success(), "{restart:?}");
    lab.wait_for_log(
        &format!("Could not authenticate user '{OTHER}' on the ServiceNow instance."),
        1,
    );
    let log = lab.agent_log();
    let (_, second) = log.rsplit_once("Starting MID Server").expect("two starts");
    assert!(
        second.contains(&format!(
            "Parameter mid.instance.username = {OTHER} comes from the instance's MID Server \
             configuration parameters (ecc_agent_config {row}), not from config.xml"
        )),
        "{second}"
    );
    assert!(second.contains("Parameter mid.log.level = debug comes from the instance's"));
    // It logged in as config.xml's user first (to read its rows), then as
    // the row's: never started.
    let users: Vec<&str> = second
        .lines()
        .filter_map(|line| line.split_once("Setting basic authentication with user "))
        .map(|(_, user)| user)
        .collect();
    assert_eq!(users, [USER, OTHER]);
    assert!(!second.contains("MID Server started"), "{second}");
    assert_eq!(lab.config(), sealed, "config.xml is not rewritten");
    assert_eq!(instance.agent("emea01"), Some(("Down".into(), USER.into())));

    // The row's user gets config.xml's password on the instance: the next
    // retry gets in, and the MID is Up as the row's user.
    instance.set_password(OTHER, PASSWORD);
    lab.wait_for_log("ecc_agent emea01 is Up", 2);
    assert_eq!(instance.agent("emea01"), Some(("Up".into(), OTHER.into())));

    // A password row: its value is used and never logged.
    admin
        .add_mid_config("emea01", "mid.instance.password", ROW_PASSWORD)
        .expect("row");
    instance.set_password(OTHER, ROW_PASSWORD);
    let restart = lab.midsim("restart");
    assert!(restart.status.success(), "{restart:?}");
    lab.wait_for_log("ecc_agent emea01 is Up", 3);
    assert_eq!(instance.agent("emea01"), Some(("Up".into(), OTHER.into())));
    let log = lab.agent_log();
    assert!(log.contains("Parameter mid.instance.password = ******** comes from"));
    assert!(!log.contains(ROW_PASSWORD), "{log}");
    assert!(!lab.log("wrapper.log").contains(ROW_PASSWORD));
    assert_eq!(lab.config(), sealed, "config.xml is not rewritten");
}

/// ServiceNow's shipped heap lines, as the lab writes them.
const WRAPPER_OVERRIDE: &str =
    "# OPTIONAL: Maximum Java Heap Size (in MB)\nwrapper.java.maxmemory=1024\n\
     #wrapper.java.additional.1=-Djavax.net.ssl.trustStore=/opt/servicenow/truststore.jks\n";

/// The JVM reserves `wrapper.java.maxmemory` at each launch: under the
/// host's limit it starts; over it, it fails as HotSpot does, the wrapper
/// relaunches it up to 5 times and gives up, and the MID never connects;
/// set back, the next start works again. `mid.sh start` returns 0 all the
/// same, as the real one does.
#[test]
fn a_heap_larger_than_the_host_allows_fails_five_launches_and_the_wrapper_gives_up() {
    let lab = Lab::new(
        &shipped_with_password(PASSWORD_ESCAPED),
        "heap_limit_mb=1536\n",
    );
    fs::create_dir_all(lab.agent.join("conf")).expect("conf");
    let conf = lab.agent.join("conf/wrapper-override.conf");
    fs::write(&conf, WRAPPER_OVERRIDE).expect("wrapper-override.conf");
    lab.start();
    lab.wait_for_log("MID Server started", 1);
    assert!(!lab.log("wrapper.log").contains("Could not reserve"));
    lab.stop();

    let bigger = WRAPPER_OVERRIDE.replace("maxmemory=1024", "maxmemory=2048");
    fs::write(&conf, &bigger).expect("wrapper-override.conf");
    let before = lab.log("wrapper.log");
    let start = lab.midsim("start");
    assert!(start.status.success(), "start returns 0 even so: {start:?}");
    lab.wait_for_exit();
    let log = lab.log("wrapper.log");
    let this_start = &log[before.len()..];
    let messages: Vec<(&str, &str)> = this_start
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.splitn(4, " | ").collect();
            assert_eq!(fields.len(), 4, "{line}");
            (fields[1].trim_end(), fields[3])
        })
        .collect();
    let mut expected = vec![("wrapper", "--> Wrapper Started as Daemon")];
    for jvm in ["jvm 1", "jvm 2", "jvm 3", "jvm 4", "jvm 5"] {
        expected.extend([
            ("wrapper", "Launching a JVM..."),
            (jvm, "Error occurred during initialization of VM"),
            (
                jvm,
                "Could not reserve enough space for 2097152KB object heap",
            ),
            ("wrapper", "JVM exited while loading the application."),
        ]);
    }
    expected.extend([
        (
            "wrapper",
            "There were 5 failed launches in a row, each lasting less than 300 seconds.  Giving up.",
        ),
        (
            "wrapper",
            "  There may be a configuration problem: please check the logs.",
        ),
        ("wrapper", "<-- Wrapper Stopped"),
    ]);
    assert_eq!(messages, expected, "{this_start}");
    assert!(
        this_start.contains("\nINFO   | jvm 1    | "),
        "{this_start}"
    );
    assert_eq!(
        lab.agent_log().matches("Starting MID Server").count(),
        1,
        "the JVM never got as far as the MID: {}",
        lab.agent_log()
    );
    assert_eq!(lab.status_code(), Some(1));
    assert_eq!(
        fs::read_to_string(&conf).expect("conf"),
        bigger,
        "never written"
    );

    // Back to 1024 (or the limit raised): the next start works.
    fs::write(&conf, WRAPPER_OVERRIDE).expect("wrapper-override.conf");
    lab.start();
    lab.wait_for_log("MID Server started", 2);
    lab.stop();
    // A commented-out line gives no -Xmx: the JVM's default fits.
    fs::write(
        &conf,
        bigger.replace("wrapper.java.maxmemory", "#wrapper.java.maxmemory"),
    )
    .expect("wrapper-override.conf");
    lab.start();
    lab.wait_for_log("MID Server started", 3);
}

/// Stopped while the wrapper waits to relaunch a JVM that could not
/// reserve its heap: the wrapper stops at once.
#[test]
fn a_wrapper_relaunching_a_refused_jvm_stops_when_asked() {
    let lab = Lab::new(
        &shipped_with_password(PASSWORD_ESCAPED),
        "heap_limit_mb=512\n",
    );
    fs::create_dir_all(lab.agent.join("conf")).expect("conf");
    fs::write(
        lab.agent.join("conf/wrapper-override.conf"),
        WRAPPER_OVERRIDE,
    )
    .expect("conf");
    lab.start();
    assert!(wait_until(|| lab.log("wrapper.log").contains(
        "Could not reserve enough space for 1048576KB object heap"
    )));
    lab.stop();
    assert_eq!(lab.status_code(), Some(1));
    let log = lab.log("wrapper.log");
    assert!(log.contains("TERM trapped.  Shutting down."), "{log}");
    assert!(!log.contains("Giving up."), "{log}");
}
