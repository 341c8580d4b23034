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

/// The transaction itself (POSIX sh).
pub const TRANSACTION: &str = include_str!("transaction.sh");

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
    script.push_str(STAGE_HEAD);
    for file in files {
        script.push_str(&format!(
            "printf {} > \"$R/{}\" || fail write\n",
            printf_format(file.bytes),
            file.name
        ));
        script.push_str(&format!(
            "[ \"$(wc -c < \"$R/{}\" | tr -d ' ')\" -eq {} ] || fail short-write\n",
            file.name,
            file.bytes.len()
        ));
    }
    script.push_str(&format!(
        "printf {} > \"$R/transaction.sh\" || fail write\n",
        printf_format(TRANSACTION.as_bytes())
    ));
    script.push_str(STAGE_LAUNCH);
    script.push_str(FOLLOW);
    script
}

/// A script that only follows run `run` (after a reconnect), printing its
/// progress from line `from`.
pub fn follow_script(mid_home: &str, run: &str, from: usize) -> String {
    format!(
        "set -u\nMID_HOME={}\nRUN={}\nM=\"$MID_HOME/.midfleet\"\nR=\"$M/runs/$RUN\"\nn={from}\n[ -d \"$R\" ] || {{ echo 'midfleet-stage gone'; exit 0; }}\n{FOLLOW}",
        shell_quote(mid_home),
        shell_quote(run)
    )
}

/// Checks and creates the run folder. `.midfleet` must be a real directory
/// owned by the user running this (not a symlink someone planted).
const STAGE_HEAD: &str = r#"fail() { printf 'midfleet-stage failed %s\n' "$1"; rm -rf "$R" 2>/dev/null; exit 0; }
case "$(command -v printf)" in
    printf) ;;
    *) printf 'midfleet-stage failed no-builtin-printf\n'; exit 0 ;;
esac
M="$MID_HOME/.midfleet"
R="$M/runs/$RUN"
for d in "$M" "$M/runs" "$M/backups"; do
    if [ -L "$d" ]; then printf 'midfleet-stage failed symlink %s\n' "$d"; exit 0; fi
    if [ ! -d "$d" ]; then mkdir "$d" 2>/dev/null || { printf 'midfleet-stage failed mkdir %s\n' "$d"; exit 0; }; fi
    if [ ! -O "$d" ]; then printf 'midfleet-stage failed owner %s\n' "$d"; exit 0; fi
    chmod 700 "$d" || { printf 'midfleet-stage failed chmod %s\n' "$d"; exit 0; }
done
mkdir "$R" || { printf 'midfleet-stage failed mkdir %s\n' "$R"; exit 0; }
# Earlier runs that ended or died: their staged files may hold a password
# (a transaction killed outright cannot clean up). Keep the newest 10.
kept=0
for old in $(ls -1 "$M/runs" | sort -r); do
    [ "$old" = "$RUN" ] && continue
    d="$M/runs/$old"
    live=0
    if [ ! -f "$d/result" ] && [ -f "$d/pid" ] && kill -0 "$(cat "$d/pid")" 2>/dev/null; then live=1; fi
    [ "$live" = 1 ] && continue
    rm -f "$d/new.xml" "$d/original.xml"
    kept=$((kept + 1))
    [ "$kept" -gt 10 ] && rm -rf "$d"
done
# A temp file beside config.xml left by a killed transaction, when no run
# holds the host (a live run's temp file is its own).
if [ ! -f "$M/lock" ]; then
    rm -f "$(dirname "$CONFIG")"/.config.xml.midfleet.* 2>/dev/null
fi
"#;

/// Starts the transaction detached: a dropped connection or a killed
/// midfleet changes nothing about how it ends.
const STAGE_LAUNCH: &str = r#"if command -v setsid >/dev/null 2>&1; then
    setsid sh "$R/transaction.sh" "$R" </dev/null >"$R/out" 2>&1 &
else
    nohup sh "$R/transaction.sh" "$R" </dev/null >"$R/out" 2>&1 &
fi
printf '%s\n' "$!" > "$R/pid"
printf 'midfleet-stage started\n'
n=0
"#;

/// Prints the run's progress lines as they come, until its last line; a
/// heartbeat line every 5 s keeps the channel (and any NAT) alive through a
/// long health wait. A run folder whose transaction never began (a
/// connection lost while staging) is removed after 60 s — it may hold the
/// new password — and reported `gone`. Cheap on the host: a poll is one
/// `sleep` and one `wc` (plus a `sed` when lines came); time is counted in
/// polls (10 a second for the first 2 s, then 4; 1 a second where `sleep`
/// takes no fractions), not read with `date`.
const FOLLOW: &str = r#"if sleep 0.1 2>/dev/null; then fast=100 slow=250; else fast=1000 slow=1000; fi
polls=0
waited=0
pid=
while :; do
    if [ -z "$pid" ] && [ -f "$R/pid" ]; then pid=$(cat "$R/pid"); fi
    if [ "$polls" -lt 20 ]; then step=$fast; else step=$slow; fi
    if [ $((waited / 5000)) -ne $(((waited + step) / 5000)) ]; then
        printf 'midfleet-stage waiting\n'
    fi
    if [ -f "$R/progress" ]; then
        total=$(wc -l < "$R/progress")
        total=$((total + 0))
        if [ "$total" -gt "$n" ]; then
            # The last line printed, not the file's last line: `end` may
            # have been appended since `wc` counted.
            lines=$(sed -n "$((n + 1)),${total}p" "$R/progress")
            printf '%s\n' "$lines"
            n=$total
            case $lines in *' end') break ;; esac
        fi
    elif [ -d "$R" ] && [ "$waited" -ge 60000 ]; then
        rm -rf "$R"
    fi
    if [ ! -d "$R" ]; then
        printf 'midfleet-stage gone\n'
        break
    fi
    # A transaction that died without its `end` (killed, host trouble)
    # will never end: say so rather than wait forever.
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
        sleep 1
        if ! sed -n '$p' "$R/progress" 2>/dev/null | grep -q ' end$'; then
            printf 'midfleet-stage dead\n'
            break
        fi
    fi
    case $step in 100) sleep 0.1 ;; 250) sleep 0.25 ;; *) sleep 1 ;; esac
    polls=$((polls + 1))
    waited=$((waited + step))
done
"#;

#[cfg(test)]
mod tests {
    use super::*;

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
