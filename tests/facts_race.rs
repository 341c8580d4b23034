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

const FACTS: &str = midfleet::facts::SCRIPT;
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
    open_to_all(directory.path());
    let home = directory.path().join("mid");
    let agent = home.join("agent");
    fs::create_dir_all(agent.join("bin")).expect("agent");
    fs::write(agent.join("config.xml"), CONFIG).expect("config");
    fs::File::create(agent.join("big"))
        .and_then(|file| file.set_len(64 << 20))
        .expect("sparse");
    give_to_mid_user(&home, "-R");
    let racer = Racer::start(
        python,
        directory.path(),
        &agent.join("config.xml"),
        &agent.join("big"),
    );
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
    drop(racer);
    assert!(
        largest < MAX_CONFIG + 4096,
        "the facts read sent {largest} bytes, past the {MAX_CONFIG} it checked"
    );
}

/// A MID folder for the facts script alone: `agent/config.xml` holding
/// `config`, `agent/bin/mid.sh`, no wrapper file, no `.midfleet`.
fn mid_folder(config: &str) -> tempfile::TempDir {
    let directory = tempfile::tempdir().expect("temp dir");
    let agent = directory.path().join("mid/agent");
    fs::create_dir_all(agent.join("bin")).expect("agent");
    fs::write(agent.join("config.xml"), config).expect("config");
    fs::write(agent.join("bin/mid.sh"), "#!/bin/sh\n").expect("mid.sh");
    directory
}

/// Runs the facts script as midfleet would, over the MID folder in
/// `directory`, with `path_first` (commands standing in for the host's)
/// before PATH and TMPDIR as given.
fn run_facts(
    directory: &Path,
    path_first: Option<&Path>,
    tmpdir: Option<&Path>,
) -> std::process::Output {
    run_facts_in("sh", directory, path_first, tmpdir)
}

/// The shells a MID host's `sh` may be: dash (Debian, Ubuntu) and bash
/// (RHEL and its kin), whichever of them this machine has.
fn host_shells() -> Vec<&'static str> {
    ["dash", "bash"]
        .into_iter()
        .filter(|shell| {
            Command::new(shell)
                .args(["-c", "true"])
                .status()
                .is_ok_and(|status| status.success())
        })
        .collect()
}

/// [`run_facts`] under `shell`.
fn run_facts_in(
    shell: &str,
    directory: &Path,
    path_first: Option<&Path>,
    tmpdir: Option<&Path>,
) -> std::process::Output {
    let home = directory.join("mid");
    let script = format!(
        "MID_HOME='{}'\nCONFIG='{}/agent/config.xml'\nSERVICE_KIND=mid.sh\nSERVICE_UNIT=\nSTATUS_COMMAND=\nMAX_CONFIG={MAX_CONFIG}\n{FACTS}",
        home.display(),
        home.display()
    );
    let mut command = Command::new(shell);
    command.arg("-c").arg(&script).stdin(Stdio::null());
    if let Some(first) = path_first {
        let path = std::env::var("PATH").unwrap_or_default();
        command.env("PATH", format!("{}:{path}", first.display()));
    }
    if let Some(tmpdir) = tmpdir {
        command.env("TMPDIR", tmpdir);
    }
    command.output().expect("facts")
}

/// A stand-in for one of the host's commands: `name` in `folder`, a
/// shell script.
fn stand_in(folder: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(folder).expect("bin");
    let file = folder.join(name);
    fs::write(&file, format!("#!/bin/sh\n{body}")).expect("stand-in");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// python3 to run the racer with, when this machine also has setpriv and
/// this test runs as root (the read is root's; the racer is uid 65534's).
fn race_tools() -> Option<&'static str> {
    let python = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|path| Path::new(path).exists())?;
    (is_root() && Path::new("/usr/bin/setpriv").exists()).then_some(python)
}

/// Whether this test runs as root (the facts read's races are root's).
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `chmod 0755 FOLDER` (a temporary folder is 0700): the MID user, and
/// the race's exchanger running as it, can enter it.
fn open_to_all(folder: &Path) {
    fs::set_permissions(folder, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
}

/// `chown FLAG 65534:65534 PATH`: the MID user's, as in its folders.
fn give_to_mid_user(path: &Path, flag: &str) {
    assert!(Command::new("chown")
        .args([flag, "65534:65534"])
        .arg(path)
        .status()
        .expect("chown")
        .success());
}

/// The MID user (uid 65534) exchanging two names in a loop
/// (`support/exchanger.py`); stopped when dropped, also when a test fails.
struct Racer(std::process::Child);

impl Racer {
    fn start(python: &str, directory: &Path, first: &Path, second: &Path) -> Racer {
        fs::write(directory.join("racer.py"), RACER).expect("racer");
        let child = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--",
                python,
            ])
            .arg(directory.join("racer.py"))
            .arg(first)
            .arg(second)
            .spawn()
            .expect("racer");
        Racer(child)
    }
}

impl Racer {
    /// Whether the exchanger still runs (a test whose race never ran
    /// proves nothing).
    fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for Racer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Review of the facts cut (stop 26): its frames are files in TMPDIR,
/// sent by one `cat`. A TMPDIR the MID's user has filled (a shared /tmp)
/// must not let a frame go missing and config.xml's bytes — the MID
/// user's to write — be read as reply lines (a forged `time`, lock or
/// chosen backup): the read fails instead.
#[test]
fn a_full_tmpdir_fails_the_read_and_never_unframes_a_file() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root (a tmpfs to fill): skipped");
        return;
    }
    let forged = "<parameters/>\ntime 4000000000\nbackup-chosen 20990101T000000Z-evil\n";
    let directory = mid_folder(forged);
    let tiny = directory.path().join("tiny");
    fs::create_dir(&tiny).expect("tiny");
    // Room for the tmpfs root, the script's folder, config.xml's copy and
    // one frame file: the next frame cannot be made.
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m,nr_inodes=4", "midfleet-test"])
        .arg(&tiny)
        .status()
        .expect("mount");
    if !mounted.success() {
        eprintln!("cannot mount a tmpfs here: skipped");
        return;
    }
    let output = run_facts(directory.path(), None, Some(&tiny));
    let _ = Command::new("umount").arg(&tiny).status();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !output.status.success(),
        "the read succeeded with its TMPDIR full: {stdout}"
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("No space left"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Whatever was printed before the failure, config.xml's lines never
    // stand as reply lines.
    assert!(!stdout.contains("\ntime 4000000000"), "{stdout}");
    assert!(!stdout.contains("\nbackup-chosen"), "{stdout}");
}

/// An owner or group whose name has a space (an AD or sssd group such as
/// `domain users`) never shifts the owner and mode read: the stat line
/// keeps the names whole, and midfleet refuses the line it cannot carry.
#[test]
fn a_group_name_with_a_space_never_shifts_the_owner_and_mode() {
    let directory = mid_folder(CONFIG);
    let bin = directory.path().join("bin");
    stand_in(
        &bin,
        "stat",
        "real=$(PATH=/usr/bin:/bin command -v stat)\n\
         fmt=$2; shift 3\n\
         for file; do \"$real\" -c \"$(printf '%s' \"$fmt\" | sed 's/%G/domain users/')\" -- \"$file\" || exit 1; done\n",
    );
    let output = run_facts(directory.path(), Some(&bin), None);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("\nconfig-stat ") && stdout.contains(" domain users\n"),
        "{stdout}"
    );
    let parsed = midfleet::facts::parse(&output.stdout);
    assert!(
        parsed.is_err(),
        "accepted: {:?}",
        parsed.map(|facts| facts.uid)
    );
}

/// config.xml swapped for a FIFO with no writer just before its read:
/// the nonblocking read returns nothing at once, and the stat after it
/// sees the FIFO: unreadable, never an empty config.xml.
#[test]
fn a_config_swapped_for_a_fifo_before_its_read_is_unreadable() {
    let directory = mid_folder(CONFIG);
    let bin = directory.path().join("bin");
    stand_in(
        &bin,
        "dd",
        "real=$(PATH=/usr/bin:/bin command -v dd)\n\
         for a; do case $a in if=*/config.xml) f=${a#if=}; rm -f \"$f\"; mkfifo \"$f\" ;; esac; done\n\
         exec \"$real\" \"$@\"\n",
    );
    let output = run_facts(directory.path(), Some(&bin), None);
    assert!(output.status.success(), "{output:?}");
    let facts = midfleet::facts::parse(&output.stdout).expect("a reply");
    assert_eq!(
        facts.config.err(),
        Some(midfleet::facts::ConfigProblem::Unreadable)
    );
}

/// Attack reviews of stop 26: the MID's user owns mid_home and swaps
/// root's `.midfleet` (RENAME_EXCHANGE in a loop) for a link to another
/// MID's `.midfleet`, root's too, after or during the facts read's
/// check. That folder's lock, state and backups must never be read as
/// this MID's: the read holds the folder it checked (a descriptor), asks
/// the kernel where that folder is (bash's $PWD after `cd -P` can be
/// made to lie), and never uses the name again. Under dash and bash.
#[test]
fn a_midfleet_folder_swapped_after_its_check_is_never_read_as_midfleets() {
    let Some(python) = race_tools() else {
        eprintln!("no python3, setpriv or root: skipped");
        return;
    };
    let directory = mid_folder(CONFIG);
    open_to_all(directory.path());
    let home = directory.path().join("mid");
    // root's own .midfleet, as a run leaves it.
    let midfleet = home.join(".midfleet");
    fs::create_dir_all(midfleet.join("backups/20261201T000000Z-aaaaaa")).expect(".midfleet");
    fs::write(midfleet.join("state.json"), "{}\n").expect("state");
    fs::write(
        midfleet.join("backups/20261201T000000Z-aaaaaa/config.xml"),
        CONFIG,
    )
    .expect("backup");
    fs::set_permissions(
        &midfleet,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("chmod");
    // Another MID's .midfleet, root's own too (0700), with its lock and
    // state: what the MID user links to in place of this one's, so that
    // whose the folder is cannot tell them apart, only where it is.
    let other = directory.path().join("other/.midfleet");
    fs::create_dir_all(other.join("backups/20991231T000000Z-forged")).expect("other");
    fs::write(other.join("lock"), "forged lock\n").expect("lock");
    fs::write(other.join("state.json"), "{\"forged\":1}\n").expect("state");
    fs::write(
        other.join("backups/20991231T000000Z-forged/config.xml"),
        "<forged/>",
    )
    .expect("backup");
    fs::set_permissions(&other, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod");
    let forged = home.join(".forged");
    std::os::unix::fs::symlink(&other, &forged).expect("link");
    // mid_home itself (not what is in it), agent/ and the MID user's link.
    for (path, flag) in [(&home, "-h"), (&home.join("agent"), "-R"), (&forged, "-h")] {
        give_to_mid_user(path, flag);
    }
    let racer = Racer::start(python, directory.path(), &midfleet, &forged);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut read = 0;
    let mut forged_reads = Vec::new();
    for shell in host_shells().into_iter().cycle().take(160) {
        let output = run_facts_in(shell, directory.path(), None, None);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if stdout.contains("forged") {
            forged_reads.push(stdout);
        } else if output.status.success() && stdout.contains("\nblob state ") {
            // root's own state.json, read through the folder it checked.
            read += 1;
        }
    }
    drop(racer);
    assert!(
        forged_reads.is_empty(),
        "{} of 160 reads (dash and bash) took the MID user's folder for midfleet's, e.g.:\n{}",
        forged_reads.len(),
        forged_reads[0]
    );
    assert!(read > 0, "no read found midfleet's own folder");
}

/// A second `service`, `uid` or `time` line (a name carrying a line
/// break, bytes come unframed) is never taken over the first.
#[test]
fn a_reply_saying_a_single_thing_twice_is_refused() {
    let output = run_facts(mid_folder(CONFIG).path(), None, None);
    assert!(midfleet::facts::parse(&output.stdout).is_ok());
    let text = String::from_utf8(output.stdout).unwrap();
    for line in [
        "service systemd sshd running\n",
        "uid 0\n",
        "time 4000000000\n",
    ] {
        let forged = text.replacen("\nend\n", &format!("\n{line}end\n"), 1);
        assert!(
            midfleet::facts::parse(forged.as_bytes()).is_err(),
            "accepted a second {line}"
        );
    }
}

/// Attack review of stop 26: the MID's user swaps `agent/` for a link to
/// a folder only root can read (RENAME_EXCHANGE in a loop). The facts
/// read, as root, must never send that folder's config.xml as this MID's:
/// it enters config.xml's folder once, checks where it is, and reads
/// through that descriptor.
#[test]
fn an_agent_folder_swapped_for_a_link_never_leads_the_read_elsewhere() {
    let Some(python) = race_tools() else {
        eprintln!("no python3, setpriv or root: skipped");
        return;
    };
    let directory = mid_folder(CONFIG);
    open_to_all(directory.path());
    let secret = directory.path().join("secret");
    fs::create_dir(&secret).expect("secret");
    fs::write(
        secret.join("config.xml"),
        "<parameters><parameter name=\"x\" value=\"ROOT-ONLY-SECRET\"/></parameters>\n",
    )
    .expect("secret config");
    fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod");
    let home = directory.path().join("mid");
    std::os::unix::fs::symlink(&secret, home.join("alt")).expect("link");
    for (path, flag) in [
        (&home, "-h"),
        (&home.join("alt"), "-h"),
        (&home.join("agent"), "-R"),
    ] {
        give_to_mid_user(path, flag);
    }
    let racer = Racer::start(
        python,
        directory.path(),
        &home.join("agent"),
        &home.join("alt"),
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut leaks = 0;
    let mut read = 0;
    for shell in host_shells().into_iter().cycle().take(160) {
        let output = run_facts_in(shell, directory.path(), None, None);
        if String::from_utf8_lossy(&output.stdout).contains("ROOT-ONLY-SECRET") {
            leaks += 1;
        } else if String::from_utf8_lossy(&output.stdout).contains("\nblob config ") {
            read += 1;
        }
    }
    drop(racer);
    assert_eq!(
        leaks, 0,
        "{leaks} of 80 reads sent the other folder's config.xml"
    );
    assert!(read > 0, "no read found this MID's config.xml");
}

/// A dd that is not GNU's (busybox, BSD, toybox): it refuses `iflag=`
/// before it opens anything, as they do (and leaves `refused-iflag`
/// beside itself, so a test can see it was asked); otherwise the host's
/// own dd.
fn without_gnu_dd(folder: &Path) {
    stand_in(
        folder,
        "dd",
        "for a; do case $a in iflag=*) : >\"${0%/*}/refused-iflag\"; echo \"dd: unknown operand $a\" >&2; exit 1 ;; esac; done\n\
         exec \"$(PATH=/usr/bin:/bin command -v dd)\" \"$@\"\n",
    );
}

/// The facts read's replies, under each of [`host_shells`], over the MID
/// folder in `directory` on a host whose dd is not GNU's; each read ended
/// well.
fn replies_without_gnu_dd(directory: &Path) -> Vec<(&'static str, std::process::Output)> {
    let bin = directory.join("bin");
    without_gnu_dd(&bin);
    host_shells()
        .into_iter()
        .map(|shell| {
            let output = run_facts_in(shell, directory, Some(&bin), None);
            assert!(output.status.success(), "{shell}: {output:?}");
            (shell, output)
        })
        .collect()
}

/// Without GNU dd the read cannot refuse a link or a FIFO in its open,
/// and a check before it can be raced. So where the MID's user owns
/// config.xml's folder, root never reads it there: the reply
/// says `config-unsafe`, with none of its bytes, and midfleet names why
/// and what to install. Under dash and bash.
#[test]
fn without_gnu_dd_a_config_the_mid_user_can_swap_is_never_read() {
    if !is_root() {
        eprintln!("not root: skipped");
        return;
    }
    let directory = mid_folder(CONFIG);
    open_to_all(directory.path());
    give_to_mid_user(&directory.path().join("mid"), "-R");
    for (shell, output) in replies_without_gnu_dd(directory.path()) {
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("\nconfig-unsafe\n"), "{shell}: {stdout}");
        assert!(!stdout.contains("<parameter"), "{shell}: {stdout}");
        let facts = midfleet::facts::parse(&output.stdout).expect("a reply");
        let problem = facts.config.expect_err("a problem");
        assert_eq!(problem, midfleet::facts::ConfigProblem::UnsafeRead);
        assert!(problem.to_string().contains("dd is not GNU's"), "{problem}");
    }
}

/// Where only root can change config.xml's folder, the same host reads
/// it, through head, whole.
#[test]
fn without_gnu_dd_a_config_only_root_can_swap_is_read_whole() {
    let directory = mid_folder(CONFIG);
    open_to_all(directory.path());
    for (shell, output) in replies_without_gnu_dd(directory.path()) {
        let facts = midfleet::facts::parse(&output.stdout).expect("a reply");
        let config = facts.config.expect("config.xml read");
        assert_eq!(config.bytes, CONFIG.as_bytes(), "{shell}");
    }
    assert!(
        directory.path().join("bin/refused-iflag").exists(),
        "the read asked the stand-in dd, which refused: head read it"
    );
}

/// Without GNU dd, a pid file in a folder the MID's user owns is not read
/// (a FIFO or a link could be swapped in), and the service's state is
/// `unsafe`, never a guess: plan refuses the host, naming why. config.xml,
/// in root's folder, is still read.
#[test]
fn without_gnu_dd_a_pid_file_the_mid_user_can_swap_leaves_the_state_unsafe() {
    if !is_root() {
        eprintln!("not root: skipped");
        return;
    }
    let directory = mid_folder(CONFIG);
    let work = directory.path().join("mid/agent/work");
    fs::create_dir(&work).expect("work");
    fs::write(work.join("mid.pid"), format!("{}\n", std::process::id())).expect("pid");
    give_to_mid_user(&work, "-R");
    for (shell, output) in replies_without_gnu_dd(directory.path()) {
        let facts = midfleet::facts::parse(&output.stdout).expect("a reply");
        assert_eq!(facts.service.state, "unsafe", "{shell}");
        assert!(facts.config.is_ok(), "{shell}");
    }
}

/// The attack review of the non-GNU reads (stop 27): mid_home is an
/// operator's link to a tree in the MID user's own folder (its home),
/// and the MID user exchanges the MID's root-owned tree there with a tree
/// of its own whose pid file links to a root-only file holding a live
/// pid. Judging the path's folders and then reading by the path was
/// raced (9 of 160 reads here said `running` on 6fa4757: root read the
/// root-only file). Each read now happens inside the folder it judged,
/// held. Under dash and bash; the reads must have met the swapped tree
/// (its config.xml seen as the MID user's or through a link), or the
/// race did not run.
#[test]
fn without_gnu_dd_a_tree_swapped_on_the_path_never_leads_a_read_elsewhere() {
    let Some(python) = race_tools() else {
        eprintln!("not root, or no python3 or setpriv: skipped");
        return;
    };
    let directory = tempfile::tempdir().expect("temp dir");
    let root = directory.path();
    fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let home = root.join("home");
    for tree in ["mid", "evil"] {
        let agent = home.join(tree).join("agent");
        fs::create_dir_all(agent.join("bin")).expect("bin");
        fs::create_dir_all(agent.join("work")).expect("work");
        fs::write(agent.join("config.xml"), CONFIG).expect("config");
        fs::write(agent.join("bin/mid.sh"), "#!/bin/sh\n").expect("mid.sh");
    }
    // The real MID is stopped: its pid file names no process.
    fs::write(home.join("mid/agent/work/mid.pid"), "999999\n").expect("pid");
    let secret = root.join("rootonly");
    fs::create_dir(&secret).expect("rootonly");
    fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod");
    fs::write(secret.join("pid"), format!("{}\n", std::process::id())).expect("secret");
    std::os::unix::fs::symlink(secret.join("pid"), home.join("evil/agent/work/mid.pid"))
        .expect("link");
    give_to_mid_user(&home.join("evil"), "-hR");
    give_to_mid_user(&home, "-h");
    let bin = root.join("bin");
    without_gnu_dd(&bin);
    // The operator's mid_home: a link (root's) to the tree in that home.
    let mid_home = root.join("mid");
    std::os::unix::fs::symlink(home.join("mid"), &mid_home).expect("mid_home");
    let mut racer = Racer::start(python, root, &home.join("mid"), &home.join("evil"));
    std::thread::sleep(std::time::Duration::from_millis(200));
    let script = format!(
        "MID_HOME='{}'\nCONFIG='{}/agent/config.xml'\nSERVICE_KIND=mid.sh\nSERVICE_UNIT=\nSTATUS_COMMAND=\nMAX_CONFIG={MAX_CONFIG}\n{FACTS}",
        mid_home.display(),
        mid_home.display()
    );
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut running = 0;
    let mut reads = 0;
    let mut swapped = 0;
    for shell in host_shells() {
        for _ in 0..80 {
            let output = Command::new(shell)
                .arg("-c")
                .arg(&script)
                .env("PATH", &path)
                .stdin(Stdio::null())
                .output()
                .expect("facts");
            reads += 1;
            assert!(output.status.success(), "{shell}: {output:?}");
            let stdout = String::from_utf8_lossy(&output.stdout);
            if stdout.contains("\nservice mid.sh - running\n") {
                running += 1;
            }
            if stdout.contains("\nconfig-unsafe\n") || stdout.contains("\nconfig-symlink ") {
                swapped += 1;
            }
        }
    }
    assert!(racer.alive(), "the exchanger stopped during the reads");
    drop(racer);
    assert_eq!(
        running, 0,
        "{running} of {reads} reads took the root-only file for the pid file"
    );
    assert!(swapped > 0, "no read of {reads} met the swapped tree");
}

/// Without GNU dd, a file of midfleet's own that the read may not take
/// safely (its `.midfleet` group-writable) ends the read, exit 70, naming
/// the file as the operator knows it, never as the descriptor it was
/// reached through.
#[test]
fn without_gnu_dd_an_unsafe_midfleet_folder_ends_the_read_naming_the_file() {
    let directory = mid_folder(CONFIG);
    let midfleet = directory.path().join("mid/.midfleet");
    fs::create_dir(&midfleet).expect(".midfleet");
    fs::write(midfleet.join("state.json"), "{}\n").expect("state");
    fs::set_permissions(
        &midfleet,
        std::os::unix::fs::PermissionsExt::from_mode(0o770),
    )
    .expect("chmod");
    let bin = directory.path().join("bin");
    without_gnu_dd(&bin);
    for shell in host_shells() {
        let output = run_facts_in(shell, directory.path(), Some(&bin), None);
        assert_eq!(output.status.code(), Some(70), "{shell}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "cannot read {}/state.json safely",
                midfleet.display()
            )),
            "{shell}: {stderr}"
        );
    }
}
