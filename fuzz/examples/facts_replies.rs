//! Writes real replies of the facts script, and cut-short copies, as seeds
//! for the `facts_parse` target (`fuzz/make-seeds.sh` runs it):
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example facts_replies -- fuzz/seeds/facts_parse
//! ```
//!
//! Each reply is what the local `sh` answers to `midfleet::facts::script`
//! for a host whose mid_home is a temporary directory built from
//! `tests/fixtures/` (its path holds a quote, a space and `$(…)`, as in the
//! unit tests of `src/facts.rs`), the way sshd would run it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use midfleet::inventory::{Host, ServiceSpec};

fn host(mid_home: &Path, service: ServiceSpec) -> Host {
    Host {
        name: "lab".into(),
        address: "lab".into(),
        port: None,
        user: None,
        identity_file: None,
        become_root: false,
        become_user: None,
        jump: Vec::new(),
        connect_timeout: None,
        mid_home: mid_home.display().to_string(),
        config: mid_home.join("agent/config.xml").display().to_string(),
        mid_cluster: None,
        service,
        groups: Vec::new(),
        template_context: Default::default(),
        vaulted: Default::default(),
    }
}

/// Runs the facts script with the local `sh`, as sshd would.
fn reply(host: &Host) -> Vec<u8> {
    let mut child = Command::new("sh")
        .arg("-s")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sh runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(midfleet::facts::script(host).as_bytes())
        .expect("the script is written");
    let output = child.wait_with_output().expect("sh ends");
    assert!(output.status.success(), "the facts script failed");
    output.stdout
}

/// A fresh mid_home under `root` with `agent/bin/mid.sh` answering
/// `status` with `running` or not.
fn mid_home(root: &Path, name: &str, running: bool) -> PathBuf {
    let home = root.join(name).join("mid 'home' $(id)");
    let bin = home.join("agent/bin");
    fs::create_dir_all(&bin).unwrap();
    let status = if running { 0 } else { 3 };
    fs::write(bin.join("mid.sh"), format!("#!/bin/sh\nexit {status}\n")).unwrap();
    fs::set_permissions(bin.join("mid.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    home
}

fn write_config(home: &Path, bytes: &[u8]) {
    let config = home.join("agent/config.xml");
    fs::write(&config, bytes).unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o640)).unwrap();
}

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: facts_replies OUTDIR"),
    );
    fs::create_dir_all(&out).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let root = std::env::temp_dir().join(format!("midfleet-facts-seeds-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    let mut replies: Vec<(String, Vec<u8>)> = Vec::new();

    // Each config.xml fixture, as a running MID holds it.
    let mut fixture_files: Vec<PathBuf> = fs::read_dir(&fixtures)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "xml"))
        .collect();
    fixture_files.sort();
    for fixture in &fixture_files {
        let name = fixture.file_stem().unwrap().to_string_lossy().into_owned();
        let home = mid_home(&root, &name, true);
        write_config(&home, &fs::read(fixture).unwrap());
        replies.push((name, reply(&host(&home, ServiceSpec::Auto))));
    }

    // Everything midfleet keeps on a host: state, journal, lock, the config
    // after a start, and two backups (the newer one equal to config.xml, so
    // the older one is chosen); the MID stopped.
    let shipped = fs::read(fixtures.join("shipped.xml")).unwrap();
    let home = mid_home(&root, "full", false);
    write_config(&home, &shipped);
    let own = home.join(".midfleet");
    fs::create_dir_all(own.join("backups/20261126T090000Z")).unwrap();
    fs::create_dir_all(own.join("backups/20261127T100000Z")).unwrap();
    fs::write(
        own.join("state.json"),
        b"{\"version\":1,\"run\":\"20261127T100000Z\",\"sha256\":\"00\"}\n",
    )
    .unwrap();
    fs::write(own.join("journal"), b"step stop\nstep write\n").unwrap();
    fs::write(own.join("lock"), b"20261127T100000Z 1795000000\n").unwrap();
    fs::write(own.join("config.after"), &shipped).unwrap();
    fs::write(
        own.join("backups/20261126T090000Z/config.xml"),
        fs::read(fixtures.join("glidesoap.xml")).unwrap(),
    )
    .unwrap();
    fs::write(own.join("backups/20261127T100000Z/config.xml"), &shipped).unwrap();
    let full = reply(&host(&home, ServiceSpec::Auto));
    replies.push(("full".into(), full.clone()));

    // config.xml missing, a symlink, a directory, too large, empty.
    let home = mid_home(&root, "missing", false);
    fs::remove_file(home.join("agent/bin/mid.sh")).unwrap();
    replies.push(("missing".into(), reply(&host(&home, ServiceSpec::Auto))));
    let home = mid_home(&root, "symlink", true);
    fs::write(home.join("elsewhere.xml"), b"<parameters/>").unwrap();
    symlink(home.join("elsewhere.xml"), home.join("agent/config.xml")).unwrap();
    replies.push(("symlink".into(), reply(&host(&home, ServiceSpec::Auto))));
    let home = mid_home(&root, "directory", true);
    fs::create_dir_all(home.join("agent/config.xml")).unwrap();
    replies.push(("not-a-file".into(), reply(&host(&home, ServiceSpec::Auto))));
    let home = mid_home(&root, "large", true);
    let large = fs::File::create(home.join("agent/config.xml")).unwrap();
    large
        .set_len(midfleet::config_xml::MAX_CONFIG_BYTES as u64 + 1)
        .unwrap();
    replies.push(("too-large".into(), reply(&host(&home, ServiceSpec::Auto))));
    let home = mid_home(&root, "empty", true);
    write_config(&home, b"");
    replies.push((
        "empty-config".into(),
        reply(&host(&home, ServiceSpec::Auto)),
    ));

    // The other service kinds.
    let home = mid_home(&root, "services", true);
    write_config(&home, b"<parameters/>\n");
    let commands = ServiceSpec::Commands {
        start: "true".into(),
        stop: "true".into(),
        status: "true".into(),
    };
    replies.push(("commands".into(), reply(&host(&home, commands))));
    let systemd = ServiceSpec::Systemd { unit: "mid".into() };
    replies.push(("systemd".into(), reply(&host(&home, systemd))));

    for (name, bytes) in &replies {
        midfleet::facts::parse(bytes)
            .unwrap_or_else(|error| panic!("the reply {name} is refused: {error}"));
        fs::write(out.join(format!("{name}.reply")), bytes).unwrap();
    }
    // The full reply cut short: after the first line, inside the config
    // blob, before `end`, and by its last byte.
    let first_line = full.iter().position(|byte| *byte == b'\n').unwrap() + 1;
    let in_blob = full
        .windows(11)
        .position(|window| window == b"<parameters")
        .unwrap()
        + 40;
    let before_end = full.len() - 4;
    for (label, cut) in [
        ("header", first_line),
        ("blob", in_blob),
        ("end", before_end),
        ("last-byte", full.len() - 1),
    ] {
        assert!(midfleet::facts::parse(&full[..cut]).is_err());
        fs::write(out.join(format!("full.cut-{label}")), &full[..cut]).unwrap();
    }
    fs::remove_dir_all(&root).unwrap();
    println!("{} replies, 4 cut short", replies.len());
}
