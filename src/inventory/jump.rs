//! `jump` chains (`[user@]host[:port][,…]`), the ProxyJump an operator put
//! in Ansible's `ansible_ssh_common_args`/`ansible_ssh_extra_args`, and the
//! shell-like word splitting both that and INI inventory lines use.
//!
//! Owns: parsing those strings, with a [`JumpError`] or [`WordsError`]
//! saying what is wrong. Must not: resolve a host, read `~/.ssh/config`
//! (`ssh_config.rs` does) or run a shell — words are split, never expanded.

use std::fmt;

use serde::Serialize;

/// Why a jump chain, or the ssh arguments that hold one, is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JumpError {
    #[error("an empty jump host")]
    Empty,
    #[error("`{hop}` is not [user@]host[:port]")]
    Hop { hop: String },
    /// `-o ProxyJump` or `-J` last, with nothing after it.
    #[error("`{option}` without a value")]
    NoValue { option: &'static str },
    #[error(transparent)]
    Words(#[from] WordsError),
    /// An ssh option that changes where or how midfleet connects, which it
    /// will not follow silently.
    #[error("`{option}` {reason}")]
    Refused {
        option: String,
        reason: &'static str,
    },
    /// A ProxyCommand that is not `ssh -W %h:%p … [user@]host`.
    #[error("ProxyCommand `{command}` is not `ssh -W %h:%p [-p PORT] [-l USER] [-i KEY] [user@]host`: midfleet reaches a host only through ssh jump hosts")]
    ProxyCommand { command: String },
    /// `-J` after another jump: ssh itself refuses it.
    #[error("`-J` after another ProxyJump/ProxyCommand, which ssh refuses")]
    SecondJ,
}

/// Why a line cannot be split into shell-like words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordsError {
    #[error("an unclosed `'`")]
    UnclosedSingleQuote,
    #[error("an unclosed `\"`")]
    UnclosedDoubleQuote,
    #[error("a trailing `\\`")]
    TrailingBackslash,
}

/// One hop of a `jump` chain: `[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JumpHop {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The key for this hop (`-i` in a `ProxyCommand ssh -W …`); `None`:
    /// the agent and `~/.ssh/config`'s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_file: Option<String>,
}

impl fmt::Display for JumpHop {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(formatter, "{user}@")?;
        }
        if self.host.contains(':') {
            write!(formatter, "[{}]", self.host)?;
        } else {
            formatter.write_str(&self.host)?;
        }
        if let Some(port) = self.port {
            write!(formatter, ":{port}")?;
        }
        Ok(())
    }
}

/// Parses `[user@]host[:port][,…]` (IPv6 hosts in brackets).
pub fn parse_jump(text: &str) -> Result<Vec<JumpHop>, JumpError> {
    if text.trim().is_empty() {
        return Err(JumpError::Empty);
    }
    text.split(',').map(|hop| parse_hop(hop.trim())).collect()
}

fn parse_hop(hop: &str) -> Result<JumpHop, JumpError> {
    let invalid = || JumpError::Hop {
        hop: hop.to_string(),
    };
    let (user, rest) = match hop.rsplit_once('@') {
        Some((user, rest)) => (Some(user.to_string()), rest),
        None => (None, hop),
    };
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or_else(invalid)?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err(invalid()),
        };
        (host, port)
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    let port = port
        .map(|port| {
            port.parse::<u16>()
                .ok()
                .filter(|port| *port > 0)
                .ok_or_else(invalid)
        })
        .transpose()?;
    let printable = |text: &str| {
        !text.is_empty()
            && !text.starts_with('-')
            && text.chars().all(|c| !c.is_whitespace() && !c.is_control())
    };
    if !printable(host) || user.as_deref().is_some_and(|user| !printable(user)) {
        return Err(invalid());
    }
    Ok(JumpHop {
        user,
        host: host.to_string(),
        port,
        identity_file: None,
    })
}

/// What the ssh options of `ansible_ssh_args`, `ansible_ssh_common_args`
/// or `ansible_ssh_extra_args` mean to midfleet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshArguments {
    /// The first `-J`, `-o ProxyJump` or `-o ProxyCommand="ssh -W %h:%p …"`
    /// (ssh takes the first): `Some(empty)` for `none`.
    pub jump: Option<Vec<JumpHop>>,
    /// Options midfleet has no use for, ignored (each as written).
    pub ignored: Vec<String>,
}

/// `-o` options midfleet ignores: they tune a connection it makes its own
/// way (keep-alives, multiplexing, compression, authentication it does not
/// use) and never change where it connects or which keys it trusts.
const IGNORED_OPTIONS: [&str; 14] = [
    "serveraliveinterval",
    "serveralivecountmax",
    "tcpkeepalive",
    "controlmaster",
    "controlpersist",
    "controlpath",
    "compression",
    "forwardagent",
    "connectionattempts",
    "loglevel",
    "identitiesonly",
    "preferredauthentications",
    "passwordauthentication",
    "kbdinteractiveauthentication",
];

/// Single-letter flags midfleet ignores: quiet, compression, agent and X11
/// forwarding, tty allocation, verbosity.
const IGNORED_FLAGS: &str = "qCAaxXTtv";

fn is_ignored_flag(word: &str) -> bool {
    word.len() > 1
        && word.starts_with('-')
        && word[1..].chars().all(|flag| IGNORED_FLAGS.contains(flag))
}

/// Why an ssh option that changes where or how to connect is refused; the
/// hint names the inventory variable to use instead.
fn refusal(key: &str) -> Option<&'static str> {
    Some(match key {
        "port" => "sets the port behind Ansible's back: use `ansible_port`",
        "user" => "sets the login user behind Ansible's back: use `ansible_user`",
        "hostname" => "sets the address behind Ansible's back: use `ansible_host`",
        "identityfile" | "certificatefile" => {
            "sets the key behind Ansible's back: use `ansible_ssh_private_key_file`"
        }
        // Ignored with a warning (as ansible.cfg's host_key_checking):
        // midfleet checks host keys against known_hosts whatever they say,
        // so ignoring them never weakens anything, and refusing them would
        // block the most common line of Ansible inventories.
        _ if is_host_key_option(key) => return None,
        _ if IGNORED_OPTIONS.contains(&key) => return None,
        "connecttimeout" => return None,
        _ => "changes how ssh connects, which midfleet does not follow",
    })
}

/// `StrictHostKeyChecking`, `UserKnownHostsFile`, `GlobalKnownHostsFile`
/// (lower case): what they ask for, midfleet never does (it always checks
/// host keys against known_hosts).
pub fn is_host_key_option(key: &str) -> bool {
    matches!(
        key,
        "stricthostkeychecking" | "userknownhostsfile" | "globalknownhostsfile"
    )
}

/// Reads ssh options as Ansible passes them to ssh: jump hosts become a
/// chain, options in [`IGNORED_OPTIONS`]/[`IGNORED_FLAGS`] are ignored, and
/// anything else that changes where or how to connect (`-p`, `-l`, `-i`,
/// `-F`, `-o Port=…`, `-o StrictHostKeyChecking=no`, a ProxyCommand that is
/// not `ssh -W %h:%p …`, …) is refused.
pub fn parse_ssh_arguments(arguments: &str) -> Result<SshArguments, JumpError> {
    let words = split_shell_words(arguments)?;
    let mut parsed = SshArguments::default();
    let mut index = 0;
    while index < words.len() {
        let word = words[index].as_str();
        index += 1;
        let mut value_of = |inline: &str, option: &'static str| -> Result<String, JumpError> {
            if !inline.is_empty() {
                return Ok(inline.to_string());
            }
            let value = words
                .get(index)
                .cloned()
                .ok_or(JumpError::NoValue { option })?;
            index += 1;
            Ok(value)
        };
        if let Some(inline) = word.strip_prefix("-o") {
            let option = value_of(inline, "-o")?;
            let (key, value) = split_option(&option);
            // `-o ProxyJump host` is an error to ssh too: `-o` takes one word.
            let value = value
                .ok_or_else(|| JumpError::Refused {
                    option: format!("-o {key}"),
                    reason: "has no value: write `-o Key=value` as one word",
                })?
                .to_string();
            let lower = key.to_ascii_lowercase();
            match lower.as_str() {
                "proxyjump" | "proxycommand" => {
                    let hops = if value.eq_ignore_ascii_case("none") {
                        Vec::new()
                    } else if lower == "proxyjump" {
                        parse_jump(&value)?
                    } else {
                        let (hops, ignored) = parse_proxy_command(&value)?;
                        parsed.ignored.extend(ignored);
                        hops
                    };
                    if parsed.jump.is_none() {
                        parsed.jump = Some(hops);
                    } else {
                        parsed.ignored.push(format!("-o {key}={value}"));
                    }
                }
                // midfleet's own behaviour: nothing to say.
                "stricthostkeychecking" if value.eq_ignore_ascii_case("yes") => {}
                _ => match refusal(&lower) {
                    Some(reason) => {
                        return Err(JumpError::Refused {
                            option: format!("-o {key}={value}"),
                            reason,
                        })
                    }
                    None => parsed.ignored.push(format!("-o {key}={value}")),
                },
            }
        } else if let Some(inline) = word.strip_prefix("-J") {
            let value = value_of(inline, "-J")?;
            if parsed.jump.is_some() {
                return Err(JumpError::SecondJ);
            }
            parsed.jump = Some(parse_jump(&value)?);
        } else if is_ignored_flag(word) {
            parsed.ignored.push(word.to_string());
        } else {
            let reason = match word.get(..2) {
                Some("-p") => "sets the port behind Ansible's back: use `ansible_port`",
                Some("-l") => "sets the login user behind Ansible's back: use `ansible_user`",
                Some("-i") => "sets the key behind Ansible's back: use `ansible_ssh_private_key_file`",
                Some("-F") => "reads another ssh config file, which midfleet does not follow (it reads ~/.ssh/config)",
                _ if word.starts_with('-') => "changes how ssh connects, which midfleet does not follow",
                _ => "is not an ssh option",
            };
            return Err(JumpError::Refused {
                option: word.to_string(),
                reason,
            });
        }
    }
    Ok(parsed)
}

/// `Key=value`, `Key value` or `Key` (value in the next word).
fn split_option(option: &str) -> (&str, Option<&str>) {
    let option = option.trim();
    let split = option.find(|character: char| character == '=' || character.is_whitespace());
    match split {
        Some(at) => {
            let key = option[..at].trim_end();
            let value = option[at..]
                .trim_start()
                .strip_prefix('=')
                .unwrap_or(&option[at..])
                .trim();
            (key, Some(value))
        }
        None => (option, None),
    }
}

/// The hops of `ssh -W %h:%p [-J …] [-p PORT] [-l USER] [-i KEY] [-o
/// Port=/User=/IdentityFile=…] [user@]host`, the one ProxyCommand midfleet
/// follows (as a jump host: the same tunnel `ssh -W` makes).
/// Also returns the host key options it holds (for the bastion), which
/// midfleet ignores, to be warned about.
fn parse_proxy_command(command: &str) -> Result<(Vec<JumpHop>, Vec<String>), JumpError> {
    let refused = || JumpError::ProxyCommand {
        command: command.to_string(),
    };
    let words = split_shell_words(command)?;
    let mut words = words.iter().map(String::as_str).peekable();
    if words.peek() == Some(&"exec") {
        words.next();
    }
    let program = words.next().ok_or_else(refused)?;
    if program.rsplit('/').next() != Some("ssh") {
        return Err(refused());
    }
    let (mut forward, mut port, mut user, mut identity_file) = (false, None, None, None);
    let mut before = Vec::new();
    let mut ignored = Vec::new();
    let mut destination = None;
    let mut rest: Vec<&str> = words.collect();
    rest.reverse();
    while let Some(word) = rest.pop() {
        let mut value_of = |inline: &str| -> Result<String, JumpError> {
            if !inline.is_empty() {
                return Ok(inline.to_string());
            }
            rest.pop().map(str::to_string).ok_or_else(refused)
        };
        if destination.is_some() {
            return Err(refused()); // a remote command after the host
        }
        if let Some(inline) = word.strip_prefix("-W") {
            let target = value_of(inline)?;
            if target != "%h:%p" && target != "[%h]:%p" {
                return Err(refused());
            }
            forward = true;
        } else if let Some(inline) = word.strip_prefix("-p") {
            let value = value_of(inline)?;
            let number = value.parse::<u16>().ok().filter(|port| *port > 0);
            port = port.or(Some(number.ok_or_else(refused)?));
        } else if let Some(inline) = word.strip_prefix("-l") {
            let value = value_of(inline)?;
            user = user.or(Some(value));
        } else if let Some(inline) = word.strip_prefix("-i") {
            let value = value_of(inline)?;
            identity_file = identity_file.or(Some(value));
        } else if let Some(inline) = word.strip_prefix("-J") {
            if !before.is_empty() {
                return Err(JumpError::SecondJ);
            }
            before = parse_jump(&value_of(inline)?)?;
        } else if let Some(inline) = word.strip_prefix("-o") {
            let option = value_of(inline)?;
            let (key, value) = split_option(&option);
            let value = match value {
                Some(value) => value.to_string(),
                None => value_of("")?,
            };
            match key.to_ascii_lowercase().as_str() {
                "port" => {
                    let number = value.parse::<u16>().ok().filter(|port| *port > 0);
                    port = port.or(Some(number.ok_or_else(refused)?));
                }
                "user" => user = user.or(Some(value)),
                "identityfile" => identity_file = identity_file.or(Some(value)),
                "proxyjump" | "proxycommand" => return Err(refused()),
                lower if is_host_key_option(lower) => {
                    ignored.push(format!("-o {key}={value}"));
                }
                lower => {
                    if let Some(reason) = refusal(lower) {
                        return Err(JumpError::Refused {
                            option: format!("-o {key}={value}"),
                            reason,
                        });
                    }
                }
            }
        } else if is_ignored_flag(word) {
            continue;
        } else if word.starts_with('-') {
            return Err(refused());
        } else {
            destination = Some(word);
        }
    }
    let destination = destination.ok_or_else(refused)?;
    if !forward {
        return Err(refused());
    }
    // ssh's destination is `[user@]host`, never `host:port`.
    let (at_user, host) = match destination.rsplit_once('@') {
        Some((user, host)) => (Some(user.to_string()), host),
        None => (None, destination),
    };
    if host.contains(':') && host.parse::<std::net::Ipv6Addr>().is_err() {
        return Err(refused());
    }
    let mut hop = parse_hop(&match host.contains(':') {
        true => format!("[{host}]"),
        false => host.to_string(),
    })
    .map_err(|_| refused())?;
    // `-l` wins over `user@`, as in ssh.
    hop.user = user.or(at_user);
    if hop.user.as_deref().is_some_and(|user| {
        user.is_empty() || user.starts_with('-') || user.contains(char::is_whitespace)
    }) {
        return Err(refused());
    }
    hop.port = port;
    hop.identity_file = identity_file;
    before.push(hop);
    Ok((before, ignored))
}

/// Splits like a POSIX shell would, for option strings (quotes and
/// backslashes; no expansion of any kind).
fn split_shell_words(text: &str) -> Result<Vec<String>, WordsError> {
    Ok(split_words(text)?
        .into_iter()
        .map(|word| word.text)
        .collect())
}

/// One word of a shell-like line.
pub(crate) struct Word {
    pub text: String,
    /// Whether any part of it was quoted.
    pub quoted: bool,
    /// Byte offset where it starts in the line.
    pub offset: usize,
}

/// Like [`split_shell_words`], also telling whether each word was quoted
/// and where it starts.
pub(crate) fn split_words(text: &str) -> Result<Vec<Word>, WordsError> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut start = 0;
    let mut characters = text.char_indices();
    while let Some((offset, character)) = characters.next() {
        if !in_word && !character.is_whitespace() {
            start = offset;
        }
        match character {
            '\'' => {
                in_word = true;
                quoted = true;
                loop {
                    match characters.next() {
                        Some((_, '\'')) => break,
                        Some((_, inner)) => current.push(inner),
                        None => return Err(WordsError::UnclosedSingleQuote),
                    }
                }
            }
            '"' => {
                in_word = true;
                quoted = true;
                loop {
                    match characters.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match characters.next() {
                            Some((_, escaped)) => current.push(escaped),
                            None => return Err(WordsError::TrailingBackslash),
                        },
                        Some((_, inner)) => current.push(inner),
                        None => return Err(WordsError::UnclosedDoubleQuote),
                    }
                }
            }
            '\\' => {
                in_word = true;
                current.push(characters.next().ok_or(WordsError::TrailingBackslash)?.1);
            }
            space if space.is_whitespace() => {
                if in_word {
                    words.push(Word {
                        text: std::mem::take(&mut current),
                        quoted,
                        offset: start,
                    });
                    in_word = false;
                    quoted = false;
                }
            }
            other => {
                in_word = true;
                current.push(other);
            }
        }
    }
    if in_word {
        words.push(Word {
            text: current,
            quoted,
            offset: start,
        });
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_chains() {
        assert_eq!(
            parse_jump("ops@bastion:2222,jump2").unwrap(),
            [
                JumpHop {
                    user: Some("ops".into()),
                    host: "bastion".into(),
                    port: Some(2222),
                    identity_file: None,
                },
                JumpHop {
                    user: None,
                    host: "jump2".into(),
                    port: None,
                    identity_file: None,
                },
            ]
        );
        assert_eq!(parse_jump("[::1]:22").unwrap()[0].host, "::1");
        for bad in ["", "a b", "host:0", "host:x", "-oProxyCommand=x"] {
            assert!(parse_jump(bad).is_err(), "{bad}");
        }
    }

    fn hop_of(user: Option<&str>, host: &str, port: Option<u16>, key: Option<&str>) -> JumpHop {
        JumpHop {
            user: user.map(str::to_string),
            host: host.into(),
            port,
            identity_file: key.map(str::to_string),
        }
    }

    #[test]
    fn jumps_from_ansible_ssh_arguments() {
        let ops_bastion = vec![hop_of(Some("ops"), "bastion", None, None)];
        let cases = [
            ("-o ProxyJump=ops@bastion", Some(ops_bastion.clone())),
            ("-oProxyJump=ops@bastion", Some(ops_bastion.clone())),
            ("-o 'ProxyJump ops@bastion'", Some(ops_bastion.clone())),
            ("-o 'ProxyJump = ops@bastion'", Some(ops_bastion.clone())),
            ("-J ops@bastion", Some(ops_bastion.clone())),
            ("-Jops@bastion", Some(ops_bastion.clone())),
            (
                "-o ProxyJump=b1,ops@b2:2222",
                Some(vec![
                    hop_of(None, "b1", None, None),
                    hop_of(Some("ops"), "b2", Some(2222), None),
                ]),
            ),
            (
                r#"-o ProxyCommand="ssh -W %h:%p -q ops@bastion""#,
                Some(ops_bastion.clone()),
            ),
            (
                "-o 'ProxyCommand=/usr/bin/ssh -q -W [%h]:%p ops@bastion'",
                Some(ops_bastion.clone()),
            ),
            (
                r#"-o ProxyCommand="ssh -W %h:%p -p 2222 -i ~/.ssh/bastion ops@bastion""#,
                Some(vec![hop_of(
                    Some("ops"),
                    "bastion",
                    Some(2222),
                    Some("~/.ssh/bastion"),
                )]),
            ),
            (
                r#"-o ProxyCommand="ssh -l admin -o Port=2200 -W %h:%p ops@bastion""#,
                Some(vec![hop_of(Some("admin"), "bastion", Some(2200), None)]),
            ),
            (
                r#"-o ProxyCommand="ssh -J outer -W %h:%p inner""#,
                Some(vec![
                    hop_of(None, "outer", None, None),
                    hop_of(None, "inner", None, None),
                ]),
            ),
            ("-o ProxyCommand=none", Some(Vec::new())),
            // ssh takes the first jump it is given.
            (
                "-o ProxyJump=ops@bastion -o ProxyJump=other",
                Some(ops_bastion.clone()),
            ),
            ("-o ServerAliveInterval=30 -C -q", None),
            ("", None),
        ];
        for (arguments, expected) in cases {
            assert_eq!(
                parse_ssh_arguments(arguments)
                    .unwrap_or_else(|error| panic!("{arguments}: {error}"))
                    .jump,
                expected,
                "{arguments}"
            );
        }
        assert_eq!(
            parse_ssh_arguments("-o ServerAliveInterval=30 -C -o ControlPersist=60s")
                .unwrap()
                .ignored,
            ["-o ServerAliveInterval=30", "-C", "-o ControlPersist=60s"]
        );
        assert_eq!(
            parse_ssh_arguments("-o ProxyJump=a -o ProxyJump=b")
                .unwrap()
                .ignored,
            ["-o ProxyJump=b"]
        );
    }

    #[test]
    fn ssh_arguments_that_change_the_connection_are_refused() {
        for (arguments, says) in [
            ("-p 2222", "ansible_port"),
            ("-l root", "ansible_user"),
            ("-i ~/.ssh/key", "ansible_ssh_private_key_file"),
            ("-o Port=2222", "ansible_port"),
            ("-o User=root", "ansible_user"),
            ("-o HostName=10.0.0.1", "ansible_host"),
            ("-o IdentityFile=~/.ssh/k", "ansible_ssh_private_key_file"),
            ("-F ./ssh_config", "ssh config"),
            ("-o LocalForward=8080:x:80", "does not follow"),
            ("-L 8080:x:80", "does not follow"),
            ("bastion", "not an ssh option"),
            ("-o ProxyCommand=\"nc -X 5 -x proxy:1080 %h %p\"", "ssh -W"),
            (
                "-o ProxyCommand=\"connect-proxy -H proxy:3128 %h %p\"",
                "ssh -W",
            ),
            ("-o ProxyCommand=\"ssh -q ops@bastion nc %h %p\"", "ssh -W"),
            ("-o ProxyCommand=\"ssh -W %h:22 ops@bastion\"", "ssh -W"),
            ("-o ProxyCommand=\"ssh -W %h:%p bastion:2222\"", "ssh -W"),
            ("-o ProxyJump=a -J b", "ssh refuses"),
            ("-o", "without a value"),
            ("-J", "without a value"),
            ("-o ProxyJump ops@bastion", "has no value"),
            ("-o 'ProxyJump=x", "unclosed"),
        ] {
            let error = parse_ssh_arguments(arguments)
                .expect_err(arguments)
                .to_string();
            assert!(error.contains(says), "{arguments}: {error}");
        }
        assert!(parse_ssh_arguments("-o StrictHostKeyChecking=yes").is_ok());
    }

    #[test]
    fn host_key_options_are_ignored_also_for_the_bastion() {
        // kubespray's terraform inventories: the options that turn host key
        // checking off, also inside the ProxyCommand. midfleet checks host
        // keys anyway: they are ignored (and warned about), never followed.
        let parsed = parse_ssh_arguments(
            "-o StrictHostKeyChecking=no -o ProxyCommand='ssh -o UserKnownHostsFile=/dev/null \
             -o StrictHostKeyChecking=no -W %h:%p -q ubuntu@203.0.113.5' -o GlobalKnownHostsFile=/x",
        )
        .unwrap();
        assert_eq!(
            parsed.jump,
            Some(vec![hop_of(Some("ubuntu"), "203.0.113.5", None, None)])
        );
        assert_eq!(
            parsed.ignored,
            [
                "-o StrictHostKeyChecking=no",
                "-o UserKnownHostsFile=/dev/null",
                "-o StrictHostKeyChecking=no",
                "-o GlobalKnownHostsFile=/x",
            ]
        );
        for value in ["no", "accept-new", "off"] {
            let option = format!("-o StrictHostKeyChecking={value}");
            assert_eq!(parse_ssh_arguments(&option).unwrap().ignored, [option]);
        }
    }
}
