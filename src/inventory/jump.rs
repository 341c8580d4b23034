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
    })
}

/// The ProxyJump an operator put in `ansible_ssh_common_args` or
/// `ansible_ssh_extra_args` (`-o ProxyJump=…`, `-oProxyJump=…`,
/// `-o ProxyJump …`, `-J …`); other options are not midfleet's business.
pub fn proxy_jump_from_ssh_arguments(arguments: &str) -> Result<Option<String>, JumpError> {
    let words = split_shell_words(arguments)?;
    let mut jump = None;
    let mut index = 0;
    while index < words.len() {
        let word = &words[index];
        let option = if word == "-o" {
            index += 1;
            words.get(index).cloned()
        } else {
            word.strip_prefix("-o")
                .filter(|rest| !rest.is_empty())
                .map(str::to_string)
        };
        if let Some(option) = option {
            let (key, value) = match option.split_once('=') {
                Some((key, value)) => (key.trim().to_string(), Some(value.trim().to_string())),
                None => {
                    let mut parts = option.splitn(2, char::is_whitespace);
                    let key = parts.next().unwrap_or_default().to_string();
                    let inline = parts.next().map(|value| value.trim().to_string());
                    let value = match inline {
                        Some(value) if !value.is_empty() => Some(value),
                        _ if key.eq_ignore_ascii_case("proxyjump") => {
                            index += 1;
                            words.get(index).cloned()
                        }
                        _ => None,
                    };
                    (key, value)
                }
            };
            if key.eq_ignore_ascii_case("proxyjump") {
                jump = Some(value.ok_or(JumpError::NoValue {
                    option: "-o ProxyJump",
                })?);
            }
        } else if word == "-J" {
            index += 1;
            jump = Some(
                words
                    .get(index)
                    .cloned()
                    .ok_or(JumpError::NoValue { option: "-J" })?,
            );
        } else if let Some(value) = word.strip_prefix("-J").filter(|value| !value.is_empty()) {
            jump = Some(value.to_string());
        }
        index += 1;
    }
    if let Some(jump) = &jump {
        parse_jump(jump)?;
    }
    Ok(jump)
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
                    port: Some(2222)
                },
                JumpHop {
                    user: None,
                    host: "jump2".into(),
                    port: None
                },
            ]
        );
        assert_eq!(parse_jump("[::1]:22").unwrap()[0].host, "::1");
        for bad in ["", "a b", "host:0", "host:x", "-oProxyCommand=x"] {
            assert!(parse_jump(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn proxy_jump_from_ansible_ssh_arguments() {
        let cases = [
            ("-o ProxyJump=ops@bastion", Some("ops@bastion")),
            (
                "-o StrictHostKeyChecking=no -oProxyJump=b1,b2",
                Some("b1,b2"),
            ),
            ("-o 'ProxyJump ops@b'", Some("ops@b")),
            ("-o ProxyJump ops@b", Some("ops@b")),
            ("-J ops@bastion:2222", Some("ops@bastion:2222")),
            ("-Jbastion", Some("bastion")),
            ("-o ServerAliveInterval=30", None),
            ("", None),
        ];
        for (arguments, expected) in cases {
            assert_eq!(
                proxy_jump_from_ssh_arguments(arguments).unwrap().as_deref(),
                expected,
                "{arguments}"
            );
        }
        assert!(proxy_jump_from_ssh_arguments("-o 'ProxyJump=x").is_err());
    }
}
