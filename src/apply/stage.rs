//! What one exec sends to a host to run a transaction: a staging script
//! that writes the run's files into `.midfleet/runs/RUN/`, starts the
//! transaction detached (`setsid`), and follows its progress until it ends.
//!
//! File contents travel inside the staging script (on stdin) as arguments
//! of the shell's builtin `printf` — never on a command line of an external
//! process, never in an environment — and each file's length is checked
//! before anything runs.

use zeroize::Zeroizing;

use crate::transport::shell_quote;

/// Lists the transaction's parts once, in order, and assembles them at
/// build time: [`TRANSACTION_PARTS`] names them, [`TRANSACTION`] is their
/// bytes one after the other.
macro_rules! transaction_parts {
    ($($part:literal),+ $(,)?) => {
        /// The parts of the on-host transaction, in the order they run, each
        /// a file in `src/apply/transaction/` that owns one concern (its
        /// header says which, and what it must not do).
        pub const TRANSACTION_PARTS: &[&str] = &[$($part),+];

        /// The transaction itself (POSIX sh), as it goes to the host: the
        /// parts of `src/apply/transaction/` in order, nothing added
        /// between them. Staged as one file, `transaction.sh`.
        pub const TRANSACTION: &str =
            concat!($(include_str!(concat!("transaction/", $part))),+);
    };
}

// Top-level statements run in this order on the host: the prologue, the
// probes (`have_timeout`, `have_gnu_dd`, `diff_no_dereference`), the EXIT
// trap, the parameters, `open_folders`, `mid_sh_user`, the lease check,
// the dispatch. A function is defined before the first statement that
// calls it. Keep the order; a new part gets a number that places it.
transaction_parts!(
    "00-head.sh",
    "05-clock.sh",
    "10-journal.sh",
    "15-bounded.sh",
    "20-service.sh",
    "22-swap-proof.sh",
    "25-health.sh",
    "30-files.sh",
    "32-wrapper.sh",
    "35-backup.sh",
    "40-state.sh",
    "45-lock.sh",
    "50-conclude.sh",
    "55-folders.sh",
    "60-parameters.sh",
    "65-failpoints.sh",
    "70-actions.sh",
    "75-main.sh",
);

/// One file to stage.
pub struct StagedFile<'a> {
    pub name: &'static str,
    pub bytes: &'a [u8],
}

/// Encodes `bytes` as a single-quoted `printf` format that prints exactly
/// them: printable ASCII as is, `%` doubled, everything else (and `\` and
/// `'`) as a three-digit octal escape.
pub fn printf_format(bytes: &[u8]) -> String {
    let mut format = String::with_capacity(bytes.len() + bytes.len() / 8 + 2);
    format.push('\'');
    for &byte in bytes {
        match byte {
            b'%' => format.push_str("%%"),
            b'\\' | b'\'' => format.push_str(&format!("\\{byte:03o}")),
            b' '..=b'~' => format.push(byte as char),
            b'\n' => format.push('\n'),
            _ => format.push_str(&format!("\\{byte:03o}")),
        }
    }
    format.push('\'');
    format
}

/// The staging script for run `run` under `mid_home`: writes `files`,
/// starts the transaction, then follows it (see [`FOLLOW`]).
///
/// It is sent as the shell's last input, enclosed in one `{ … }` group
/// (`Shell::finish`), which the shell reads whole before it runs any of
/// it: a script cut short (midfleet killed, or its connection lost, while
/// it was being sent) runs nothing, not even the first files' writes.
pub fn staging_script(
    mid_home: &str,
    config: &str,
    run: &str,
    files: &[StagedFile<'_>],
) -> Zeroizing<String> {
    let mut script = Zeroizing::new(String::new());
    script.push_str(&format!(
        "set -u\numask 077\nMID_HOME={}\nCONFIG={}\nRUN={}\n",
        shell_quote(mid_home),
        shell_quote(config),
        shell_quote(run)
    ));
    script.push_str(ENTER);
    script.push_str(STAGE_HEAD);
    let transaction = StagedFile {
        name: "transaction.sh",
        bytes: TRANSACTION.as_bytes(),
    };
    for file in files.iter().chain([&transaction]) {
        script.push_str(&format!(
            "printf {} > {} || fail write\n",
            printf_format(file.bytes),
            file.name
        ));
    }
    // Every file's length, with one `wc` for all: what it prints, words
    // joined by spaces, must be exactly this (a short write, a full disk).
    let names: Vec<&str> = files
        .iter()
        .chain([&transaction])
        .map(|file| file.name)
        .collect();
    let mut expected: Vec<String> = files
        .iter()
        .chain([&transaction])
        .map(|file| format!("{} {}", file.bytes.len(), file.name))
        .collect();
    let total: usize = files
        .iter()
        .chain([&transaction])
        .map(|file| file.bytes.len())
        .sum();
    expected.push(format!("{total} total"));
    script.push_str(&format!(
        "sizes=$(wc -c -- {}) || fail short-write\n\
         # shellcheck disable=SC2086\nset -- $sizes\n\
         [ \"$*\" = '{}' ] || fail short-write\n",
        names.join(" "),
        expected.join(" ")
    ));
    script.push_str(STAGE_LAUNCH);
    script.push_str(FOLLOW);
    script
}

/// A script that only follows run `run` (after a reconnect), printing its
/// progress from line `from`.
pub fn follow_script(mid_home: &str, run: &str, from: usize) -> String {
    format!(
        "set -u\nMID_HOME={}\nRUN={}\nn={from}\n{ENTER}[ -d \"runs/$RUN\" ] && [ ! -L \"runs/$RUN\" ] && cd \"runs/$RUN\" || {{ echo 'midfleet-stage gone'; exit 0; }}\n{FOLLOW}",
        shell_quote(mid_home),
        shell_quote(run)
    )
}

/// Enters `.midfleet` (made when missing): the working directory becomes
/// it, checked to be where mid_home says, this user's own and 0700.
///
/// mid_home is named as the inventory says (links above it are the
/// operator's); below it nothing is reached through a link. The MID's user
/// may own mid_home and rename or swap its entries at any moment, so
/// `.midfleet` is entered once, by one `cd` checked with `pwd -P`, and
/// from then on everything in it is named relative to the working
/// directory, which a rename elsewhere cannot move. Only the runner (root
/// with `become`) can then change anything in it.
const ENTER: &str = r#"entered=0
fail() {
    printf 'midfleet-stage failed %s\n' "$1"
    if [ "$entered" = 1 ]; then cd .. && rm -rf -- "$RUN" 2>/dev/null; fi
    exit 0
}
cd -P -- "$MID_HOME" 2>/dev/null || fail "mkdir $MID_HOME/.midfleet"
home_real=$(pwd -P)
if [ ! -e .midfleet ] && [ ! -L .midfleet ]; then
    mkdir -m 700 .midfleet 2>/dev/null || fail "mkdir $MID_HOME/.midfleet"
fi
[ -L .midfleet ] && fail "symlink $MID_HOME/.midfleet"
cd .midfleet 2>/dev/null || fail "mkdir $MID_HOME/.midfleet"
[ "$(pwd -P)" = "${home_real%/}/.midfleet" ] || fail "symlink $MID_HOME/.midfleet"
[ -O . ] || fail "owner $MID_HOME/.midfleet"
chmod 700 . || fail "chmod $MID_HOME/.midfleet"
"#;

/// Checks and creates the run folder inside `.midfleet` (see [`ENTER`]),
/// and makes it the working directory: every file below is named
/// relative to it.
const STAGE_HEAD: &str = r#"case "$(command -v printf)" in
    printf) ;;
    *) printf 'midfleet-stage failed no-builtin-printf\n'; exit 0 ;;
esac
for d in runs backups; do
    [ -L "$d" ] && fail "symlink $MID_HOME/.midfleet/$d"
    if [ ! -d "$d" ]; then mkdir -m 700 "$d" 2>/dev/null || fail "mkdir $MID_HOME/.midfleet/$d"; fi
    [ -O "$d" ] || fail "owner $MID_HOME/.midfleet/$d"
done
chmod 700 runs backups || fail "chmod $MID_HOME/.midfleet/runs"
# Earlier runs that ended or died: their staged files may hold a password
# (a transaction killed outright cannot clean up). Keep the newest 10
# (names sort by time). Shell builtins only, unless there is something to
# remove.
ended_run() {
    [ -d "$1" ] && [ "${1##*/}" != "$RUN" ] || return 1
    if [ ! -f "$1/result" ] && [ -f "$1/pid" ]; then
        old_pid=
        read -r old_pid <"$1/pid" 2>/dev/null
        case $old_pid in '' | *[!0-9]*) ;; *) ! kill -0 "$old_pid" 2>/dev/null || return 1 ;; esac
    fi
    return 0
}
excess=-10
for d in runs/*; do ended_run "$d" && excess=$((excess + 1)); done
for d in runs/*; do
    ended_run "$d" || continue
    if [ "$excess" -gt 0 ]; then
        rm -rf -- "$d"
        excess=$((excess - 1))
    elif [ -e "$d/new.xml" ] || [ -e "$d/original.xml" ] || [ -e "$d/current.xml" ] || [ -e "$d/config.new" ] ||
        [ -e "$d/wrapper-new.conf" ] || [ -e "$d/wrapper-original.conf" ] || [ -e "$d/current-wrapper.conf" ] || [ -e "$d/wrapper.new" ]; then
        rm -f -- "$d/new.xml" "$d/original.xml" "$d/current.xml" "$d/config.new" \
            "$d/wrapper-new.conf" "$d/wrapper-original.conf" "$d/current-wrapper.conf" "$d/wrapper.new"
    fi
done
# A temp file beside config.xml left by a transaction of an earlier
# midfleet (this one builds its files in the run folder), when no run
# holds the host: unlinked by name, never opened.
if [ ! -f lock ]; then
    set -- "${CONFIG%/*}"/.config.xml.midfleet.*
    if [ -e "$1" ] || [ -L "$1" ]; then rm -f -- "$@" 2>/dev/null; fi
fi
mkdir -m 700 "runs/$RUN" 2>/dev/null || fail "mkdir $MID_HOME/.midfleet/runs/$RUN"
cd "runs/$RUN" || fail "mkdir $MID_HOME/.midfleet/runs/$RUN"
entered=1
"#;

/// Starts the transaction detached: a dropped connection or a killed
/// midfleet changes nothing about how it ends. It is started by a subshell
/// that exits at once, so it is not this shell's child: when it ends, init
/// reaps it, and `kill -0` (here and in `tail --pid`) sees it gone — a
/// zombie child would look alive for as long as this shell waits. Its
/// `progress` is made (empty, never truncated) only once it was launched:
/// a run folder without it is one whose staging never finished.
const STAGE_LAUNCH: &str = r#"(
    if command -v setsid >/dev/null 2>&1; then
        setsid sh transaction.sh . </dev/null >out 2>&1 &
    else
        nohup sh transaction.sh . </dev/null >out 2>&1 &
    fi
    printf '%s\n' "$!" > "pid"
)
# The boot the pid belongs to: after a reboot, the number may be another
# process's, and the transaction is gone.
if read -r boot </proc/sys/kernel/random/boot_id 2>/dev/null; then
    printf '%s\n' "$boot" >"boot"
fi
: >>"progress"
printf 'midfleet-stage started\n'
n=0
"#;

/// Prints the run's progress lines from line `n` + 1 as they come, until
/// its last line (`end`); a heartbeat line every 5 s keeps the channel
/// (and any NAT) alive through a long health wait.
///
/// Where GNU `tail` follows (`--pid`), it does the waiting: the kernel
/// wakes it for each new line (inotify), and it ends with the transaction;
/// the shell only reads its lines through a FIFO. Otherwise, and for what
/// is left when `tail` ends without `end`, the shell polls: a poll is one
/// `sleep` (10 a second for the first 2 s, then 4; 1 a second where
/// `sleep` takes no fractions), the new lines read by the shell's own
/// `read` from the file, and time is counted in polls. A run folder whose
/// transaction never began (a connection lost while staging) is removed
/// after 60 s — it may hold the new password — and reported `gone`; a
/// transaction that died without its `end` is reported `dead`. Then the
/// transaction's own output goes to stderr (`-vv`).
const FOLLOW: &str = r#"pid=
if [ -f "pid" ]; then read -r pid <"pid" 2>/dev/null; fi
case $pid in *[!0-9]*) pid= ;; esac
# Started before the host's last boot: the transaction died with it, and
# its pid may be another process's now.
rebooted=0
if [ -f "boot" ] && read -r boot_then <"boot" 2>/dev/null \
    && read -r boot_now </proc/sys/kernel/random/boot_id 2>/dev/null \
    && [ "$boot_then" != "$boot_now" ]; then
    rebooted=1
fi
ended=0
if [ "$rebooted" = 0 ] && [ -n "$pid" ] && [ -f "progress" ] && tail --pid="$pid" -n 0 /dev/null 2>/dev/null; then
    [ ! -e ".follow" ] || rm -f ".follow"
    if mkfifo -m 600 ".follow" 2>/dev/null; then
        tail -n "+$((n + 1))" -f --pid="$pid" -s 0.2 -- "progress" >".follow" 2>/dev/null &
        (while sleep 5 >/dev/null 2>&1; do printf 'midfleet-stage waiting\n' || exit 0; done) &
        beating=$!
        exec 3<".follow"
        while IFS= read -r line <&3; do
            printf '%s\n' "$line"
            n=$((n + 1))
            case $line in *' end') ended=1; break ;; esac
        done
        exec 3<&-
        kill "$beating" 2>/dev/null
        rm -f ".follow"
    fi
fi
# follow_lines: prints the whole lines the progress file (fd 3) gained;
# 0 once the last one was `end`.
follow_lines() {
    while IFS= read -r line <&3; do
        line=$partial$line
        partial=
        printf '%s\n' "$line"
        n=$((n + 1))
        case $line in *' end') return 0 ;; esac
    done
    partial=$partial$line
    return 1
}
# open_progress: fd 3 on the progress file, past the n lines printed.
open_progress() {
    [ "$opened" = 0 ] && [ -f "progress" ] && [ -r "progress" ] || return 0
    exec 3<"progress"
    opened=1
    skip=$n
    while [ "$skip" -gt 0 ] && IFS= read -r line <&3; do skip=$((skip - 1)); done
}
if [ "$ended" = 0 ]; then
    if sleep 0.1 2>/dev/null; then fast=100 slow=250; else fast=1000 slow=1000; fi
    polls=0
    waited=0
    opened=0
    partial=
    line=
    while :; do
        if [ -z "$pid" ] && [ -f "pid" ]; then
            read -r pid <"pid" 2>/dev/null
            case $pid in *[!0-9]*) pid= ;; esac
        fi
        if [ "$polls" -lt 20 ]; then step=$fast; else step=$slow; fi
        if [ $((waited / 5000)) -ne $(((waited + step) / 5000)) ]; then
            printf 'midfleet-stage waiting\n'
        fi
        open_progress
        if [ "$opened" = 1 ]; then
            follow_lines && break
        elif [ -d "../$RUN" ] && [ "$waited" -ge 60000 ]; then
            rm -rf -- "../$RUN"
        fi
        if [ ! -d "../$RUN" ]; then
            printf 'midfleet-stage gone\n'
            break
        fi
        # A transaction that died without its `end` (killed, host trouble)
        # will never end: say so rather than wait forever.
        if [ "$rebooted" = 1 ] || { [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; }; then
            sleep 1
            open_progress
            if [ "$opened" = 1 ] && follow_lines; then break; fi
            printf 'midfleet-stage dead\n'
            break
        fi
        case $step in 100) sleep 0.1 ;; 250) sleep 0.25 ;; *) sleep 1 ;; esac
        polls=$((polls + 1))
        waited=$((waited + step))
    done
fi
# The transaction's own output (what its commands wrote on stderr), for
# `-vv`: on this script's stderr, at most 4 KiB, never through a link.
if [ -f "out" ] && [ ! -L "out" ]; then head -c 4096 -- "out" >&2 || :; fi
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transaction_is_its_numbered_parts_in_order_each_with_its_header() {
        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/src/apply/transaction");
        let mut on_disk: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".sh"))
            .collect();
        on_disk.sort();
        assert_eq!(TRANSACTION_PARTS, on_disk.as_slice());
        let mut assembled = String::new();
        for part in TRANSACTION_PARTS {
            let text = std::fs::read_to_string(format!("{folder}/{part}")).unwrap();
            // A part that did not end its last line would join it to the
            // next part's first.
            assert!(text.ends_with('\n'), "{part} ends with a newline");
            // Each part says what it owns and must not do.
            let header = format!("\n# ==== part {part}: ");
            assert!(
                format!("\n{text}").contains(&header),
                "{part} has its header"
            );
            assert!(text.contains("\n# Owns: ") && text.contains("\n# Must not: "));
            assembled.push_str(&text);
        }
        assert_eq!(TRANSACTION, assembled);
        // The test hook is fenced off from the transaction on both sides.
        let hook = TRANSACTION
            .find("# ==== part 65-failpoints.sh: TEST HOOK")
            .unwrap();
        let hook_end = TRANSACTION.find("# ==== end of the TEST HOOK").unwrap();
        let definition = TRANSACTION.find("\nfailpoint() {").unwrap();
        assert!(hook < definition && definition < hook_end);
    }

    /// Runs `call` with `args` as `$1`, `$2`… in `/bin/sh` after `part`
    /// (a transaction part, which only defines functions), with `PATH`.
    fn run_in_part(
        part: &str,
        call: &str,
        args: &[&std::ffi::OsStr],
        path: &str,
    ) -> std::process::Output {
        std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{part}\n{call}"))
            .arg("sh")
            .args(args)
            .env("PATH", path)
            .output()
            .unwrap()
    }

    /// `mounts_near_home` (55-folders.sh), under every awk this machine
    /// has as `awk` (mawk, gawk, busybox): `inside` for a mount below
    /// mid_home or FUSE at or above it, `clear` for a volume at mid_home
    /// and for siblings, whatever blank, tab, backslash or carriage return
    /// the path holds; `inside` for an empty mountinfo, nothing for one
    /// that cannot be read (the attack review of stop 28: a mount at
    /// mid_home, a failing awk, and busybox's split on `\r` each got
    /// past the check before).
    #[test]
    fn mounts_near_home_sees_a_mount_below_and_fuse_at_or_above_mid_home() {
        let part = include_str!("transaction/55-folders.sh");
        let scratch = tempfile::tempdir().unwrap();
        let mut awks = Vec::new();
        for candidate in [
            "/usr/bin/mawk",
            "/usr/bin/gawk",
            "/usr/bin/original-awk",
            "/bin/busybox",
        ] {
            if std::path::Path::new(candidate).exists() {
                let bin = scratch.path().join(format!("awk-{}", awks.len()));
                std::fs::create_dir(&bin).unwrap();
                std::os::unix::fs::symlink(candidate, bin.join("awk")).unwrap();
                awks.push((candidate, bin));
            }
        }
        assert!(!awks.is_empty(), "no awk to test with");
        let near_file = |bin: &std::path::Path, home: &str, file: &std::path::Path| {
            let output = run_in_part(
                part,
                "mounts_near_home \"$1\" \"$2\"",
                &[home.as_ref(), file.as_os_str()],
                &format!("{}:/usr/bin:/bin", bin.display()),
            );
            String::from_utf8(output.stdout).unwrap()
        };
        let near = |bin: &std::path::Path, home: &str, mountinfo: &str| {
            let file = scratch.path().join("mountinfo");
            std::fs::write(&file, mountinfo).unwrap();
            near_file(bin, home, &file)
        };
        let line = |point: &str, optional: &str, kind: &str| {
            format!("36 25 0:32 / {point} rw,relatime{optional} - {kind} src rw\n")
        };
        let base = format!(
            "{}{}",
            line("/", " shared:1", "ext4"),
            line("/proc", " shared:5 master:1", "proc")
        );
        // mid_home as given (ending with a slash), and as mountinfo writes it.
        let homes = [
            (
                "/opt/service now/mid/",
                "/opt/service\\040now/mid",
                "/opt/service\\040now",
            ),
            ("/opt/a\\b/mid/", "/opt/a\\134b/mid", "/opt/a\\134b"),
            ("/opt/a\tb/mid/", "/opt/a\\011b/mid", "/opt/a\\011b"),
            ("/opt/a\rb/mid/", "/opt/a\rb/mid", "/opt/a\rb"),
        ];
        for (awk, bin) in &awks {
            for (home, written, parent) in homes {
                let cases = [
                    (base.clone(), "clear"),
                    (format!("{base}{}", line(written, "", "ext4")), "clear"),
                    (
                        format!("{base}{}", line(written, " shared:7", "xfs")),
                        "clear",
                    ),
                    (
                        format!("{base}{}", line(written, "", "fuse.sshfs")),
                        "inside",
                    ),
                    (format!("{base}{}", line(parent, "", "fuse")), "inside"),
                    (format!("{base}{}", line("/", "", "fuseblk")), "inside"),
                    (
                        format!(
                            "{base}{}",
                            line(&format!("{written}/agent/work"), "", "tmpfs")
                        ),
                        "inside",
                    ),
                    (
                        format!(
                            "{base}{}",
                            line(&format!("{written}/x"), " master:3", "ext4")
                        ),
                        "inside",
                    ),
                    (
                        format!("{base}{}", line(&format!("{written}2"), "", "fuse")),
                        "clear",
                    ),
                    (
                        format!("{base}{}", line(&format!("{written}2/x"), "", "tmpfs")),
                        "clear",
                    ),
                    (String::new(), "inside"),
                ];
                for (mountinfo, expected) in cases {
                    assert_eq!(
                        near(bin, home, &mountinfo),
                        format!("{expected}\n"),
                        "{awk}, home {home:?}, mountinfo:\n{mountinfo}"
                    );
                }
            }
            assert_eq!(
                near_file(bin, "/opt/mid/", "/nonexistent/mountinfo".as_ref()),
                "",
                "{awk}: an unreadable mountinfo says nothing"
            );
        }
    }

    /// `rename_only` (35-backup.sh) moves a folder by one rename or not at
    /// all: across file systems (EXDEV, where `mv` copies) it fails and
    /// leaves both sides as they were; within one it keeps the folder's
    /// inode; with no rename-only tool on PATH it moves nothing (the attack
    /// review of stop 28: a keystore folder copied into agent/ by `mv`
    /// could be redirected through a swapped link).
    #[test]
    fn rename_only_renames_a_folder_or_leaves_it() {
        use std::os::unix::fs::MetadataExt;
        let part = include_str!("transaction/35-backup.sh");
        let rename_only = |from: &std::path::Path, to: &std::path::Path, path: &str| {
            run_in_part(
                part,
                "rename_only \"$1\" \"$2\"",
                &[from.as_os_str(), to.as_os_str()],
                path,
            )
            .status
            .success()
        };
        let system = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        let scratch = tempfile::tempdir().unwrap();
        let folder = |name: &str| {
            let path = scratch.path().join(name);
            std::fs::create_dir_all(path.join("sub")).unwrap();
            std::fs::write(path.join("sub/agent_keystore"), b"key").unwrap();
            path
        };
        // One file system: a rename, the same inode.
        let from = folder("keystore.new");
        let inode = std::fs::metadata(&from).unwrap().ino();
        let to = scratch.path().join("keystore");
        assert!(
            rename_only(&from, &to, system),
            "a rename-only tool on this machine"
        );
        assert!(!from.exists());
        assert_eq!(std::fs::metadata(&to).unwrap().ino(), inode);
        // No rename-only tool: nothing moves (mv alone, without
        // --no-copy, and a `rename` that is not util-linux's, which would
        // move it: Perl's File::Rename on Debian).
        let bin = scratch.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let mv = ["/usr/bin/mv", "/bin/mv"]
            .into_iter()
            .find(|path| std::path::Path::new(path).exists())
            .expect("mv");
        std::os::unix::fs::symlink(mv, bin.join("mv")).unwrap();
        std::fs::write(
            bin.join("rename"),
            format!(
                "#!/bin/sh\n[ \"$1\" = --version ] && {{ echo 'rename using File::Rename version 2.01'; exit 0; }}\nexec {mv} -T -- \"$2\" \"$3\"\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(
            bin.join("rename"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let mv_copies = !std::process::Command::new("mv")
            .args(["--no-copy", "--help"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success();
        if mv_copies {
            let other = scratch.path().join("elsewhere");
            assert!(!rename_only(&to, &other, bin.to_str().unwrap()));
            assert!(to.join("sub/agent_keystore").exists() && !other.exists());
        }
        // Across file systems, where mv would copy: refused, nothing copied.
        let mounted = scratch.path().join("mounted");
        std::fs::create_dir(&mounted).unwrap();
        let mount = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "midfleet-test"])
            .arg(&mounted)
            .status()
            .is_ok_and(|status| status.success());
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        assert!(mount || !root, "root could not mount a tmpfs");
        if mount {
            let across = mounted.join("keystore");
            let moved = rename_only(&to, &across, system);
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&mounted)
                .status();
            assert!(!moved, "a rename across file systems fails");
            assert!(to.join("sub/agent_keystore").exists(), "the folder stays");
        }
    }

    #[test]
    fn a_run_from_before_the_hosts_last_boot_is_dead_though_its_pid_lives() {
        if !std::path::Path::new("/proc/sys/kernel/random/boot_id").exists() {
            return;
        }
        let home = tempfile::tempdir().unwrap();
        let run = home.path().join(".midfleet/runs/R1");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("progress"), "1 lock\n2 stop\n").unwrap();
        // A live process now holds the number the transaction had.
        let mut other = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        std::fs::write(run.join("pid"), format!("{}\n", other.id())).unwrap();
        let follow = |boot: &str| {
            std::fs::write(run.join("boot"), boot).unwrap();
            let script = follow_script(home.path().to_str().unwrap(), "R1", 0);
            let output = std::process::Command::new("timeout")
                .args(["20", "sh", "-c", &script])
                .output()
                .unwrap();
            String::from_utf8_lossy(&output.stdout).into_owned()
        };
        let shown = follow("an-earlier-boot\n");
        other.kill().unwrap();
        other.wait().unwrap();
        assert_eq!(shown, "1 lock\n2 stop\nmidfleet-stage dead\n");
        // This boot's run whose process ended: dead too, by its pid.
        let this_boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
        assert_eq!(follow(&this_boot), "1 lock\n2 stop\nmidfleet-stage dead\n");
    }

    /// A staging script cut anywhere before its end, as `Shell::finish`
    /// sends it, runs nothing: no run folder, no file with the new
    /// password, no transaction.
    #[test]
    fn a_staging_script_cut_short_runs_nothing() {
        let home = tempfile::tempdir().unwrap();
        let mid_home = home.path().to_str().unwrap();
        let new_xml = b"<parameters><parameter name=\"mid.instance.password\" value=\"Cut-pw-1\"/></parameters>\n";
        let files = [StagedFile {
            name: "new.xml",
            bytes: new_xml,
        }];
        let script = crate::transport::last_input(
            staging_script(mid_home, "/nonexistent/config.xml", "R1", &files).as_bytes(),
        );
        let after_new_xml = find(&script, b"> new.xml").unwrap() + 40;
        for cut in [after_new_xml, script.len() / 2, script.len() - 3] {
            let mut shell = std::process::Command::new("sh")
                .arg("-s")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            use std::io::Write;
            let mut stdin = shell.stdin.take().unwrap();
            stdin.write_all(&script[..cut]).unwrap();
            drop(stdin);
            shell.wait().unwrap();
            assert!(
                !home.path().join(".midfleet").exists(),
                "cut at {cut} of {}: the script ran",
                script.len()
            );
        }
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack
            .windows(needle.len())
            .position(|window| window == needle)
    }

    #[test]
    fn printf_formats_print_exactly_the_bytes() {
        let samples: [&[u8]; 5] = [
            b"plain text\nwith lines\n",
            b"%s %d %% \\n \\ ' \" $(id) `id` ${HOME}",
            b"\x00\x01\x7f\xff\xfe\t\r\n",
            "ünïcødé €".as_bytes(),
            b"",
        ];
        for sample in samples {
            let script = format!("printf {}", printf_format(sample));
            let output = std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .output()
                .unwrap();
            assert_eq!(output.stdout, sample, "{script}");
            let dash = std::process::Command::new("dash")
                .arg("-c")
                .arg(&script)
                .output();
            if let Ok(output) = dash {
                assert_eq!(output.stdout, sample, "dash: {script}");
            }
        }
    }
}
