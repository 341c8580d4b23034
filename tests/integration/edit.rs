//! `midfleet edit` on local files: the Must-show list of the engine's issue.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{fixture, midfleet, midfleet_command, settings_for, Scratch};

const PASSWORD: &str = "N3w&<Pass>\"word'";

fn rotate_arguments(scratch: &Scratch, extra: &[&str]) -> Vec<String> {
    let mut arguments = vec![
        "edit".to_string(),
        scratch.path.display().to_string(),
        "--set".into(),
        "mid.instance.username=svc_mid_new".into(),
        "--set-secret".into(),
        "mid.instance.password=env:MID_PASSWORD".into(),
        "--unset".into(),
        "keypairs.mid_id".into(),
    ];
    arguments.extend(extra.iter().map(|argument| argument.to_string()));
    arguments
}

#[test]
fn rotation_changes_exactly_two_values_and_one_line() {
    let original = String::from_utf8(fixture("shipped.xml")).unwrap();
    let scratch = Scratch::new("config.xml", original.as_bytes());
    let run = midfleet(
        rotate_arguments(&scratch, &["--diff"]),
        &[("MID_PASSWORD", PASSWORD)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    settings_for(&scratch).bind(|| insta::assert_snapshot!("edit_rotation_diff", run.stdout));
    assert_eq!(run.stderr, "");

    let expected = original
        .replace(
            "value=\"svc_mid_old\"",
            "value=\"svc_mid_new\"",
        )
        .replace(
            "value=\"encrypted:QUJDREVGR0hJSktMTU5PUA==\"",
            "value=\"N3w&amp;&lt;Pass&gt;&quot;word'\"",
        )
        .replace(
            "    <parameter name=\"keypairs.mid_id\" value=\"8f2f1f6a-6d5b-4c2a-9a53-0d4c2b1e7e10\"/>\n",
            "",
        );
    assert_eq!(scratch.text(), expected);
    assert_eq!(
        scratch.entries(),
        ["config.xml"],
        "no temp file left behind"
    );
    for needle in [PASSWORD, "N3w&amp;", "N3w"] {
        assert!(!run.all_output().contains(needle), "{needle} leaked");
    }
}

#[test]
fn a_second_identical_edit_changes_nothing_not_even_the_mtime() {
    let scratch = Scratch::new("config.xml", &fixture("shipped.xml"));
    let environment = [("MID_PASSWORD", PASSWORD)];
    assert_eq!(
        midfleet(rotate_arguments(&scratch, &[]), &environment).code,
        0
    );
    let after_first = scratch.bytes();
    let modified = std::fs::metadata(&scratch.path)
        .unwrap()
        .modified()
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));

    let run = midfleet(rotate_arguments(&scratch, &[]), &environment);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.ends_with("config.xml: no changes\n"),
        "{}",
        run.stdout
    );
    assert_eq!(scratch.bytes(), after_first);
    assert_eq!(
        std::fs::metadata(&scratch.path)
            .unwrap()
            .modified()
            .unwrap(),
        modified
    );

    let check = midfleet(rotate_arguments(&scratch, &["--check"]), &environment);
    assert_eq!(check.code, 0, "{}", check.stderr);
}

#[test]
fn check_reports_pending_changes_with_exit_2_and_writes_nothing() {
    let original = fixture("shipped.xml");
    let scratch = Scratch::new("config.xml", &original);
    let run = midfleet(
        rotate_arguments(&scratch, &["--check"]),
        &[("MID_PASSWORD", PASSWORD)],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    settings_for(&scratch).bind(|| insta::assert_snapshot!("edit_check", run.stdout));
    assert_eq!(scratch.bytes(), original);
}

#[test]
fn an_encrypted_value_never_equals_a_plaintext_one() {
    // `edit` compares what is in the file: the MID encrypted the password,
    // so setting the plaintext again is a change (the playbook's state
    // record, not `edit`, knows better).
    let scratch = Scratch::new("config.xml", &fixture("encrypted.xml"));
    let run = midfleet(
        [
            "edit",
            scratch.path.to_str().unwrap(),
            "--set-secret",
            "mid.instance.password=env:MID_PASSWORD",
            "--check",
        ],
        &[("MID_PASSWORD", PASSWORD)],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn a_hostile_password_is_written_escaped_and_reads_back_equal() {
    let password = "a&b<c>d\"e'f\tg\nh";
    let secret_directory = tempfile::tempdir().unwrap();
    let secret_file = secret_directory.path().join("password");
    std::fs::write(&secret_file, format!("{password}\n")).unwrap();
    for fixture_name in ["shipped.xml", "dom-reserialized.xml", "crlf-bom.xml"] {
        let scratch = Scratch::new("config.xml", &fixture(fixture_name));
        let run = midfleet(
            [
                "edit".to_string(),
                scratch.path.display().to_string(),
                "--set-secret".into(),
                format!("mid.instance.password=file:{}", secret_file.display()),
                "--diff".into(),
            ],
            &[],
        );
        assert_eq!(run.code, 0, "{fixture_name}: {}", run.stderr);
        let text = scratch.text();
        let body = text.trim_start_matches('\u{feff}');
        let strict = roxmltree::Document::parse(body).expect("strictly well-formed");
        let read_back = strict
            .descendants()
            .find(|node| node.attribute("name") == Some("mid.instance.password"))
            .and_then(|node| node.attribute("value"));
        assert_eq!(read_back, Some(password), "{fixture_name}");
        assert!(
            text.contains("&#9;") && text.contains("&#10;"),
            "{fixture_name}"
        );
        assert!(!run.all_output().contains("a&b"), "{fixture_name}: leaked");
        assert!(
            !run.all_output().contains("&lt;c"),
            "{fixture_name}: leaked"
        );
    }
}

#[test]
fn bad_files_fail_with_file_line_and_column_and_stay_untouched() {
    let cases: [(&str, &[u8], &str); 4] = [
        (
            "malformed",
            b"<?xml version=\"1.0\"?>\n<parameters>\n  <parameter name=\"a\" value=\"1\">\n</parameters>\n",
            ":4:1: malformed XML",
        ),
        (
            "duplicate",
            b"<parameters>\n  <parameter name=\"url\" value=\"a\"/>\n  <parameter name=\"url\" value=\"b\"/>\n</parameters>\n",
            ":3:3: parameter `url` appears twice: on line 2",
        ),
        (
            "not a MID file",
            b"<?xml version=\"1.0\"?>\n<settings>\n  <setting name=\"a\"/>\n</settings>\n",
            ":2:1: the root element is <settings>, not <parameters>",
        ),
        (
            "entity trick",
            b"<!DOCTYPE parameters [<!ENTITY a \"aaaa\">]>\n<parameters><parameter name=\"x\" value=\"&a;\"/></parameters>\n",
            ":1:1: a DOCTYPE is not allowed",
        ),
    ];
    for (what, bytes, message) in cases {
        let scratch = Scratch::new("config.xml", bytes);
        let run = midfleet(
            [
                "edit",
                scratch.path.to_str().unwrap(),
                "--set",
                "mid.instance.username=svc",
            ],
            &[],
        );
        assert_eq!(run.code, 1, "{what}");
        let expected = format!("error: {}{message}", scratch.path.display());
        assert!(run.stderr.starts_with(&expected), "{what}: {}", run.stderr);
        assert!(run.stderr.contains("hint: "), "{what}");
        assert_eq!(run.stdout, "", "{what}");
        assert_eq!(scratch.bytes(), bytes, "{what}: file changed");
        assert_eq!(scratch.entries(), ["config.xml"], "{what}");
    }
}

#[test]
fn missing_file_and_missing_secret_fail_with_exit_1() {
    let scratch = Scratch::new("config.xml", &fixture("shipped.xml"));
    let run = midfleet(["edit", "/nonexistent/config.xml", "--unset", "x"], &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("error: /nonexistent/config.xml: cannot open"),
        "{}",
        run.stderr
    );

    let run = midfleet(rotate_arguments(&scratch, &[]), &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("env:MID_PASSWORD"), "{}", run.stderr);
    assert!(run.stderr.contains("is not set"), "{}", run.stderr);
    assert_eq!(scratch.bytes(), fixture("shipped.xml"));
}

#[test]
fn usage_errors_exit_3_before_reading_anything() {
    let scratch = Scratch::new("config.xml", &fixture("shipped.xml"));
    let path = scratch.path.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &["edit", path, "--set", "mid.instance.username"],
            "--set takes NAME=VALUE",
        ),
        (
            &[
                "edit",
                path,
                "--set-secret",
                "mid.instance.password=hunter2",
            ],
            "is not a secret reference",
        ),
        (
            &[
                "edit",
                path,
                "--set",
                "mid.instance.username=a",
                "--unset",
                "glide.glidesoap.username",
            ],
            "is asked for twice",
        ),
        (&["edit", path, "--set", "=x"], "cannot be empty"),
        (
            &["edit", path, "--set", "url=bad\u{1}value"],
            "cannot be written",
        ),
        (&["edit", path, "--frobnicate"], "unexpected argument"),
    ];
    for (arguments, message) in cases {
        let run = midfleet(arguments, &[]);
        assert_eq!(run.code, 3, "{arguments:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(message),
            "{arguments:?}: {}",
            run.stderr
        );
    }
    assert_eq!(
        midfleet(Vec::<&str>::new(), &[]).code,
        3,
        "no subcommand is bad usage"
    );
    assert_eq!(scratch.bytes(), fixture("shipped.xml"));
}

#[test]
fn help_and_version_exit_0() {
    let help = midfleet(["edit", "--help"], &[]);
    assert_eq!(help.code, 0);
    assert!(
        help.stdout.contains("--set-secret <NAME=REF>"),
        "{}",
        help.stdout
    );
    assert!(help.stdout.contains("Examples:"));
    assert_eq!(midfleet(["--version"], &[]).code, 0);
}

#[test]
fn a_literal_password_on_the_command_line_is_warned_about() {
    let scratch = Scratch::new("config.xml", &fixture("shipped.xml"));
    let run = midfleet(
        [
            "edit",
            scratch.path.to_str().unwrap(),
            "--set",
            "mid.instance.password=literal-pw",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("warning: --set gives the sensitive parameter"),
        "{}",
        run.stderr
    );
    assert!(!run.all_output().contains("literal-pw"));
}

#[test]
fn json_output_is_parseable_and_carries_no_secret() {
    let scratch = Scratch::new("config.xml", &fixture("glidesoap.xml"));
    let run = midfleet(
        rotate_arguments(&scratch, &["--output", "json", "--diff"]),
        &[("MID_PASSWORD", PASSWORD)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains("N3w"));
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(report["changed"], true);
    assert_eq!(report["written"], true);
    let changes = report["changes"].as_array().unwrap();
    let params: Vec<&str> = changes
        .iter()
        .map(|change| change["param"].as_str().unwrap())
        .collect();
    assert_eq!(
        params,
        [
            "glide.glidesoap.username",
            "glide.glidesoap.password",
            "keypairs.mid_id"
        ]
    );
    assert_eq!(changes[0]["before"], "svc_mid_legacy");
    assert_eq!(changes[0]["after"], "svc_mid_new");
    assert_eq!(changes[1]["sensitive"], true);
    assert!(changes[1]["after"].is_null());
    assert_eq!(changes[2]["action"], "remove");
    assert!(report["diff"]
        .as_str()
        .unwrap()
        .contains("(sensitive, changed)"));
}

#[test]
fn owner_group_and_mode_are_kept_and_symlinks_stay_links() {
    let scratch = Scratch::new("config.xml", &fixture("shipped.xml"));
    std::fs::set_permissions(&scratch.path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let running_as_root = effective_uid() == 0;
    if running_as_root {
        std::os::unix::fs::chown(&scratch.path, Some(4321), Some(4322)).unwrap();
    }
    let link = scratch.directory.path().join("link.xml");
    std::os::unix::fs::symlink(&scratch.path, &link).unwrap();
    let run = midfleet(
        ["edit", link.to_str().unwrap(), "--set", "threads.max=50"],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let metadata = std::fs::metadata(&scratch.path).unwrap();
    assert_eq!(metadata.mode() & 0o7777, 0o640);
    if running_as_root {
        assert_eq!((metadata.uid(), metadata.gid()), (4321, 4322));
    }
    assert!(scratch.text().contains("name=\"threads.max\" value=\"50\""));
    assert_eq!(scratch.entries(), ["config.xml", "link.xml"]);
}

/// The effective uid, read from /proc so the tests need no libc.
fn effective_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|uid| uid.parse().ok())
        .unwrap()
}

/// The password as `edit` writes it into the file.
const PASSWORD_ESCAPED: &str = "N3w&amp;&lt;Pass&gt;&quot;word'";

/// Waits (at most 20 s) until `ready` holds.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pause at the rename comes from a failpoint file beside the target
/// that only root can arm (`local_file::failpoint`): deterministic, scoped
/// to this test's directory (other runs on the machine are not slowed),
/// and nothing an unprivileged user or a production run can trigger.
#[test]
fn a_killed_edit_leaves_only_a_0600_temp_file_and_the_next_edit_removes_it() {
    assert_eq!(effective_uid(), 0, "arming the failpoint needs root");
    let original = fixture("shipped.xml");
    let scratch = Scratch::new("config.xml", &original);
    std::fs::set_permissions(&scratch.path, PermissionsExt::from_mode(0o644)).unwrap();
    let failpoint = scratch
        .directory
        .path()
        .join(".midfleet-failpoint-edit-rename");
    std::fs::write(&failpoint, "60").unwrap();
    std::fs::set_permissions(&failpoint, PermissionsExt::from_mode(0o644)).unwrap();

    let mut child = midfleet_command(
        rotate_arguments(&scratch, &[]),
        &[("MID_PASSWORD", PASSWORD)],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(
        line.contains("a test failpoint is set: this edit pauses 60 s before the rename"),
        "{line:?}"
    );
    let temporary_files = || {
        scratch
            .entries()
            .into_iter()
            .filter(|name| name.starts_with(".config.xml.") && name.ends_with(".midfleet-tmp"))
            .map(|name| scratch.directory.path().join(name))
            .collect::<Vec<_>>()
    };
    // Paused at the rename: the temp file holds the whole new file, secret
    // included, flushed, and only its owner can read it.
    wait_until("the temp file to be written", || {
        temporary_files().iter().any(|path| {
            std::fs::read_to_string(path).is_ok_and(|text| {
                text.contains(PASSWORD_ESCAPED) && text.ends_with("</parameters>\n")
            })
        })
    });
    let [temporary] = temporary_files().try_into().unwrap();
    assert_eq!(
        std::fs::metadata(&temporary).unwrap().mode() & 0o7777,
        0o600,
        "the temp file holding the secret is the owner's only until the rename"
    );
    assert_eq!(scratch.bytes(), original, "the original is untouched");
    assert!(child.try_wait().unwrap().is_none(), "still paused");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(temporary.exists(), "a killed run cannot clean up");
    assert_eq!(
        std::fs::metadata(&temporary).unwrap().mode() & 0o7777,
        0o600
    );
    std::fs::remove_file(&failpoint).unwrap();

    // Another name that is not midfleet's is never touched.
    let other = scratch
        .directory
        .path()
        .join(".config.xml.abcdef.midfleet-tmp.keep");
    std::fs::write(&other, "kept").unwrap();
    let run = midfleet(
        rotate_arguments(&scratch, &[]),
        &[("MID_PASSWORD", PASSWORD)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "warning: removed {}, left by an earlier edit that was killed",
            temporary.display()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(
        scratch.entries(),
        [".config.xml.abcdef.midfleet-tmp.keep", "config.xml"]
    );
    assert!(scratch.text().contains(PASSWORD_ESCAPED));
    assert!(scratch.text().contains("value=\"svc_mid_new\""));
    assert_eq!(
        std::fs::metadata(&scratch.path).unwrap().mode() & 0o7777,
        0o644
    );
}

/// A midfleet that holds a resolved secret (the first `command:`) while
/// it waits for the second, running as an unprivileged user: its core
/// limit is 0, and its own user cannot read its memory or environment.
#[test]
fn a_process_holding_a_secret_dumps_no_core_and_its_user_cannot_read_it() {
    assert_eq!(effective_uid(), 0, "running midfleet as nobody needs root");
    const NOBODY: u32 = 65534;
    let scratch = Scratch::new("config.xml", &fixture("shipped.xml"));
    let directory = scratch.directory.path();
    std::fs::set_permissions(directory, PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&scratch.path, PermissionsExt::from_mode(0o644)).unwrap();
    let signals = directory.join("signals");
    std::fs::create_dir(&signals).unwrap();
    std::fs::set_permissions(&signals, PermissionsExt::from_mode(0o777)).unwrap();
    let waiting = signals.join("waiting");
    let go = signals.join("go");
    let second = format!(
        "command:touch {waiting}; while [ ! -e {go} ]; do sleep 0.05; done; echo svc_mid_new",
        waiting = waiting.display(),
        go = go.display()
    );

    let mut child = midfleet_command(
        [
            "edit".to_string(),
            scratch.path.display().to_string(),
            "--set-secret".into(),
            "mid.instance.password=command:echo s3cret-held".into(),
            "--set-secret".into(),
            format!("mid.instance.username={second}"),
        ],
        &[],
    )
    .uid(NOBODY)
    .gid(NOBODY)
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    wait_until("midfleet to hold the first secret", || waiting.exists());
    let proc = std::path::PathBuf::from(format!("/proc/{}", child.id()));

    let status = std::fs::read_to_string(proc.join("status")).unwrap();
    assert!(
        status
            .lines()
            .any(|line| line.starts_with("Uid:") && line.contains(&NOBODY.to_string())),
        "{status}"
    );
    let limits = std::fs::read_to_string(proc.join("limits")).unwrap();
    let core = limits
        .lines()
        .find(|line| line.starts_with("Max core file size"))
        .unwrap();
    assert_eq!(
        core.split_whitespace().collect::<Vec<_>>()[4..6],
        ["0", "0"],
        "soft and hard core limits: {core}"
    );
    // Not dumpable: the kernel gives the process's /proc files to root...
    assert_eq!(std::fs::metadata(proc.join("environ")).unwrap().uid(), 0);
    assert_eq!(std::fs::metadata(proc.join("mem")).unwrap().uid(), 0);
    // ...and another process of the same user cannot read them.
    let read = std::process::Command::new("cat")
        .arg(proc.join("environ"))
        .uid(NOBODY)
        .gid(NOBODY)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!read.success(), "nobody read midfleet's environ");

    std::fs::write(&go, "").unwrap();
    // It then fails to write (nobody cannot create the temp file in a
    // root-owned directory); that it ends at all is what matters here.
    child.wait().unwrap();
    assert_eq!(scratch.entries(), ["config.xml", "signals"]);
}
