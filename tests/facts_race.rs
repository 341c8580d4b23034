//! Review of issue 14 (h-review): the facts read (`plan`, `apply`,
//! `rollback`, `unlock`) as root against a config.xml its MID's user swaps.
//!
//! facts.sh checks config.xml's size with `stat` and then reads it with
//! `dd` — no cap on the read. The MID's user exchanges config.xml with a
//! huge sparse file (renameat2 RENAME_EXCHANGE in a loop): the stat sees
//! the small file, dd the big one. Root copies it into $TMPDIR (twice:
//! the scratch file and `config_copy`) and prints it all to midfleet,
//! whose `exec` collects stdout into one Vec without a bound: a 100 GiB
//! hole fills /tmp on the host and the operator's memory.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

const FACTS: &str = include_str!("../src/facts/facts.sh");
const CONFIG: &str = include_str!("../crates/lab/src/config.xml");
const MAX_CONFIG: u64 = 4 * 1024 * 1024;

/// Exchanges two names in a loop, as the MID's user can in its folders.
const RACER: &str = include_str!("support/exchanger.py");

#[test]
fn a_config_swapped_for_a_huge_file_after_its_size_check_is_never_sent_whole() {
    let python = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|path| Path::new(path).exists());
    let (Some(python), true) = (python, Path::new("/usr/bin/setpriv").exists()) else {
        eprintln!("no python3 or setpriv: skipped");
        return;
    };
    let directory = tempfile::tempdir().expect("temp dir");
    fs::set_permissions(
        directory.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let home = directory.path().join("mid");
    let agent = home.join("agent");
    fs::create_dir_all(agent.join("bin")).expect("agent");
    fs::write(agent.join("config.xml"), CONFIG).expect("config");
    fs::File::create(agent.join("big"))
        .and_then(|file| file.set_len(64 << 20))
        .expect("sparse");
    assert!(Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&home)
        .status()
        .expect("chown")
        .success());
    fs::write(directory.path().join("racer.py"), RACER).expect("racer");
    let mut racer = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            python,
        ])
        .arg(directory.path().join("racer.py"))
        .arg(agent.join("config.xml"))
        .arg(agent.join("big"))
        .spawn()
        .expect("racer");
    let script = format!(
        "MID_HOME='{}'\nCONFIG='{}/config.xml'\nSERVICE_KIND=mid.sh\nSERVICE_UNIT=\nSTATUS_COMMAND=\nMAX_CONFIG={MAX_CONFIG}\n{FACTS}",
        home.display(),
        agent.display()
    );
    let mut largest = 0;
    for _ in 0..20 {
        let output = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .expect("facts");
        largest = largest.max(output.stdout.len() as u64);
    }
    let _ = racer.kill();
    let _ = racer.wait();
    assert!(
        largest < MAX_CONFIG + 4096,
        "the facts read sent {largest} bytes, past the {MAX_CONFIG} it checked"
    );
}
