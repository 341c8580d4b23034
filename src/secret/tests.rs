//! Tests of secret references and their resolution: parsing, the bounds
//! on files and commands, and that no message shows a value or its length.
//! They run real files, FIFOs, links and `sh` commands, so they live apart
//! from the code.

use super::file::current_euid;
use super::*;
use std::time::Instant;

#[test]
fn parses_each_kind_and_refuses_others() {
    let cases = [
        (
            "env:MID_PASSWORD",
            Some(SecretRef::Env("MID_PASSWORD".into())),
        ),
        (
            "file:/run/secret",
            Some(SecretRef::File("/run/secret".into())),
        ),
        (
            "command:pass show x",
            Some(SecretRef::Command("pass show x".into())),
        ),
        (
            "prompt:MID password",
            Some(SecretRef::Prompt("MID password".into())),
        ),
        ("env:", None),
        ("env:A=B", None),
        ("env:A.B", None),
        ("env:A/B", None),
        ("env:MID-PASSWORD", None),
        ("vault:x", None),
        ("hunter2", None),
    ];
    for (text, expected) in cases {
        assert_eq!(text.parse::<SecretRef>().ok(), expected, "{text}");
    }
}

#[test]
fn values_never_show_themselves() {
    let value = SecretValue::new("hunter2".into());
    assert_eq!(format!("{value} {value:?}"), "(sensitive) (sensitive)");
    assert_eq!(serde_json::to_string(&value).unwrap(), "null");
}

#[test]
fn resolves_file_and_command_without_one_trailing_newline() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("secret");
    std::fs::write(&path, "s3cret\n\n").unwrap();
    let mut resolver = SecretResolver::new();
    let value = resolver.resolve(&SecretRef::File(path)).unwrap();
    assert_eq!(value.expose(), "s3cret\n");
    let value = resolver
        .resolve(&SecretRef::Command("printf 'a b\\r\\n'".into()))
        .unwrap();
    assert_eq!(value.expose(), "a b");
}

#[test]
fn each_command_runs_once_per_run() {
    let directory = tempfile::tempdir().unwrap();
    let counter = directory.path().join("count");
    let command = format!("echo x >> {}; echo value", counter.display());
    let reference = SecretRef::Command(command);
    let mut resolver = SecretResolver::new();
    for _ in 0..3 {
        assert_eq!(resolver.resolve(&reference).unwrap().expose(), "value");
    }
    assert_eq!(std::fs::read_to_string(counter).unwrap(), "x\n");
}

#[test]
fn failures_name_the_reference_not_the_value() {
    let mut resolver = SecretResolver::new();
    let error = resolver
        .resolve(&SecretRef::Command("echo leaked-value; exit 3".into()))
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("command:echo leaked-value; exit 3"));
    assert!(message.contains("failed"));
    let error = resolver
        .resolve(&SecretRef::Env("MIDFLEET_TEST_SURELY_UNSET".into()))
        .unwrap_err();
    assert!(error.to_string().contains("is not set"), "{error}");
    let error = resolver
        .resolve(&SecretRef::Command("true".into()))
        .unwrap_err();
    assert!(error.to_string().contains("empty"), "{error}");
}

/// What a refusal says, checked to hold `expected` and nothing of the
/// value: neither `secret_bytes` nor a length.
fn refused(result: Result<SecretValue, SecretError>, expected: &str, secret_bytes: &str) -> String {
    let error = match result {
        Ok(_) => panic!("resolved, but should be refused with `{expected}`"),
        Err(error) => error,
    };
    let message = format!("{error} {}", error.hint().unwrap_or_default());
    assert!(message.contains(expected), "{message}");
    if !secret_bytes.is_empty() {
        assert!(!message.contains(secret_bytes), "leaks bytes: {message}");
    }
    for length in ["65536", "65537", "100000", "1048576", "104857600"] {
        assert!(!message.contains(length), "leaks a length: {message}");
    }
    message
}

#[test]
fn env_names_hold_only_letters_digits_and_underscores() {
    for text in ["env:A.B", "env:../A", "env:A=B", "env:A B", "env:Ä"] {
        let error = text.parse::<SecretRef>().unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("`{text}`: an environment variable name may hold only letters, digits and `_`")
        );
        assert!(error.hint().unwrap().contains("[A-Za-z0-9_]"));
    }
    assert!("env:mid_PASSWORD_01".parse::<SecretRef>().is_ok());
}

#[test]
fn a_device_is_refused_without_reading_it() {
    let mut resolver = SecretResolver::new();
    refused(
        resolver.resolve(&SecretRef::File("/dev/zero".into())),
        "/dev/zero is a device, not a regular file",
        "",
    );
    refused(
        resolver.resolve(&SecretRef::File("/tmp".into())),
        "/tmp is a directory, not a regular file",
        "",
    );
}

#[test]
fn a_fifo_is_refused_at_once() {
    let directory = tempfile::tempdir().unwrap();
    let fifo = directory.path().join("fifo");
    let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    let started = Instant::now();
    let message = refused(
        SecretResolver::new().resolve(&SecretRef::File(fifo.clone())),
        "is a FIFO, not a regular file",
        "",
    );
    assert!(started.elapsed() < Duration::from_secs(2), "{message}");
    assert!(message.contains(&fifo.display().to_string()), "{message}");
}

#[test]
fn a_file_over_64_kib_is_refused_without_its_length() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("big");
    std::fs::write(&path, "k".repeat(100_000)).unwrap();
    refused(
        SecretResolver::new().resolve(&SecretRef::File(path.clone())),
        "is larger than 64 KiB",
        "kkkk",
    );
    // Exactly 64 KiB is still a value.
    std::fs::write(&path, "k".repeat(MAX_SECRET_BYTES)).unwrap();
    let value = SecretResolver::new()
        .resolve(&SecretRef::File(path))
        .unwrap();
    assert_eq!(value.expose().len(), MAX_SECRET_BYTES);
}

#[test]
fn a_file_others_can_read_or_another_user_owns_is_used_with_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("secret");
    std::fs::write(&path, "w4rned-value\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut resolver = SecretResolver::new();
    resolver.resolve(&SecretRef::File(path.clone())).unwrap();
    assert_eq!(resolver.take_warnings(), Vec::new());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut resolver = SecretResolver::new();
    let value = resolver.resolve(&SecretRef::File(path.clone())).unwrap();
    assert_eq!(value.expose(), "w4rned-value");
    let warnings = resolver.take_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let shown = format!("{} {}", warnings[0], warnings[0].hint);
    assert!(
        shown.contains("is readable by group or others (mode 0666)"),
        "{shown}"
    );
    assert!(shown.contains("chmod 600"), "{shown}");
    assert!(!shown.contains("w4rned"), "{shown}");
    if current_euid() == 0 {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        let mut resolver = SecretResolver::new();
        resolver.resolve(&SecretRef::File(path)).unwrap();
        let warnings = resolver.take_warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0]
                .message
                .contains("is owned by uid 65534, neither root nor this user (uid 0)"),
            "{}",
            warnings[0]
        );
    }
}

#[test]
fn a_link_is_followed_only_when_it_and_its_target_are_trusted() {
    let directory = tempfile::tempdir().unwrap();
    let target = directory.path().join("target");
    std::fs::write(&target, "l1nked-value").unwrap();
    let link = directory.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let value = SecretResolver::new()
        .resolve(&SecretRef::File(link.clone()))
        .unwrap();
    assert_eq!(value.expose(), "l1nked-value");
    if current_euid() != 0 {
        return; // the rest needs chown
    }
    std::os::unix::fs::lchown(&link, Some(65534), None).unwrap();
    refused(
        SecretResolver::new().resolve(&SecretRef::File(link.clone())),
        "is a symbolic link owned by uid 65534, neither root nor this user (uid 0)",
        "l1nked",
    );
    std::os::unix::fs::lchown(&link, Some(0), None).unwrap();
    std::os::unix::fs::chown(&target, Some(65534), None).unwrap();
    refused(
        SecretResolver::new().resolve(&SecretRef::File(link)),
        "is a symbolic link to a file owned by uid 65534",
        "l1nked",
    );
}

#[test]
fn a_scoped_file_cannot_leave_its_folder_through_a_link() {
    let directory = tempfile::tempdir().unwrap();
    let secrets = directory.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("emea01"), "1nside-value").unwrap();
    std::fs::write(directory.path().join("outside"), "0utside-value").unwrap();
    std::os::unix::fs::symlink(directory.path().join("outside"), secrets.join("escape")).unwrap();
    let scope = FileScope::new(&secrets);
    let mut resolver = SecretResolver::new();
    let value = resolver
        .resolve_in(&SecretRef::File(secrets.join("emea01")), Some(&scope))
        .unwrap();
    assert_eq!(value.expose(), "1nside-value");
    let message = refused(
        resolver.resolve_in(&SecretRef::File(secrets.join("escape")), Some(&scope)),
        "leaves",
        "0utside",
    );
    assert!(message.contains("outside"), "{message}");
    // Unscoped (written out by the operator), the link is theirs.
    let value = resolver
        .resolve(&SecretRef::File(secrets.join("escape")))
        .unwrap();
    assert_eq!(value.expose(), "0utside-value");
}

#[test]
fn a_command_that_does_not_end_is_killed_with_its_group() {
    let directory = tempfile::tempdir().unwrap();
    let pid_file = directory.path().join("pid");
    let command = format!(
        "echo $$ > {}; sleep 1000; printf 'la%s' te",
        pid_file.display()
    );
    let started = Instant::now();
    let mut resolver = SecretResolver::with_command_timeout(Duration::from_secs(1));
    refused(
        resolver.resolve(&SecretRef::Command(command)),
        "the command did not finish within 1 s and was killed",
        "late",
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let group: libc::pid_t = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The `sleep` sh started is gone too (reaped by init soon after).
    let gone = (0..200).any(|_| {
        // SAFETY: signal 0 only checks that the group exists.
        let alive = unsafe { libc::kill(-group, 0) } == 0;
        if alive {
            std::thread::sleep(Duration::from_millis(10));
        }
        !alive
    });
    assert!(gone, "process group {group} still runs");
}

#[test]
fn a_command_that_closes_stdout_but_goes_on_is_killed_too() {
    let started = Instant::now();
    refused(
        SecretResolver::with_command_timeout(Duration::from_secs(1)).resolve(&SecretRef::Command(
            "printf 'v%s' 4lue; exec >&-; sleep 1000".into(),
        )),
        "did not finish within 1 s",
        "v4lue",
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// The process's peak resident memory, in KiB.
fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_command_printing_100_mb_is_cut_off_in_bounded_memory() {
    let before = peak_kib();
    let started = Instant::now();
    refused(
        SecretResolver::new().resolve(&SecretRef::Command(
            "head -c 100M /dev/zero | tr '\\0' q".into(),
        )),
        "the command's output is larger than 64 KiB; it was killed",
        "qqqq",
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let grown = peak_kib().saturating_sub(before);
    assert!(grown < 16 * 1024, "peak memory grew by {grown} KiB");
}

/// A program named without a `/` (`--vault-password-file pass`) is the
/// file of that name in the working directory, as Ansible runs it, never
/// a program of that name found on PATH.
#[test]
fn a_program_named_without_a_slash_is_the_local_file_not_one_on_path() {
    use std::os::unix::fs::PermissionsExt as _;
    let name = format!("midfleet-test-program-{}", std::process::id());
    let local = std::env::current_dir().unwrap().join(&name);
    std::fs::write(&local, "#!/bin/sh\necho from-the-local-file\n").unwrap();
    std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o700)).unwrap();
    let output = run_bounded_program(Path::new(&name), &[]);
    std::fs::remove_file(&local).unwrap();
    let output = output
        .map_err(|refusal| refusal.reason().to_string())
        .unwrap();
    assert_eq!(output.as_slice(), b"from-the-local-file\n");
}
