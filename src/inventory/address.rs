//! A host as written in an inventory file — `host:2222`, `[2001:db8::1]:2222`,
//! `2001:db8::1`, `mid-[01:20]:2222` — split into its name pattern and
//! port the way Ansible's `parse_address` (ansible/parsing/utils/addresses.py)
//! does for its ini and yaml inventory plugins.
//!
//! Owns: that split, and the host-identifier shapes it accepts (IPv4,
//! IPv6, host names, each possibly with `[x:y]` ranges). Must not: expand
//! ranges (`range.rs` does) or decide what the port means.

/// The name pattern and port of a host key: `(pattern, Some(port))` when
/// Ansible finds a port, else the key unchanged and `None` — exactly when
/// Ansible's `parse_address` fails, which its inventory plugins also take
/// to mean "the whole key is the name" (`fe80::1%eth0`, `under_:22`).
/// The port is the digits as written; Ansible makes it a number.
pub fn split_host_port(key: &str) -> (String, Option<String>) {
    parse_address(key).unwrap_or_else(|| (key.to_string(), None))
}

/// Ansible's `parse_address(text, allow_ranges=True)`: the host identifier
/// and port, or `None` where Ansible raises. Ansible's pattern splitting
/// uses it too: a pattern without `,` that parses as an address
/// (`2001:db8::1`, `web:22`) is one pattern, not split on `:`.
pub fn parse_address(key: &str) -> Option<(String, Option<String>)> {
    let mut address = key;
    let mut port = None;
    // As Ansible, the bracketed form first, then `host:port` on what it
    // left (`[a:1]:22` ends as host `a`, port 1).
    if let Some((host, digits)) = bracketed_host_port(address) {
        address = host;
        port = Some(digits);
    }
    if let Some((host, digits)) = host_port(address) {
        address = host;
        port = Some(digits);
    }
    (is_ipv4(address) || is_ipv6(address) || is_hostname(address))
        .then(|| (address.to_string(), port.map(str::to_string)))
}

/// `[anything]:digits`, the last `]:` splitting (Ansible's regex is greedy).
fn bracketed_host_port(address: &str) -> Option<(&str, &str)> {
    let inner = address.strip_prefix('[')?;
    let (host, digits) = inner.rsplit_once("]:")?;
    (!host.is_empty() && is_digits(digits)).then_some((host, digits))
}

/// `host:digits` where `host` has no `:`, `[` or `]` outside complete
/// `[…]` groups.
fn host_port(address: &str) -> Option<(&str, &str)> {
    let (host, digits) = address.rsplit_once(':')?;
    if !is_digits(digits) {
        return None;
    }
    let mut rest = host;
    while let Some(character) = rest.chars().next() {
        match character {
            '[' => {
                let close = rest.find(']')?;
                rest = &rest[close + 1..];
            }
            ':' | ']' => return None,
            _ => rest = &rest[character.len_utf8()..],
        }
    }
    Some((host, digits))
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit())
}

/// `[body]` at the start of `text` where `body` is a range of the given
/// shape: returns the length of the bracketed range.
fn range_at(text: &str, body_ok: impl Fn(&str) -> bool) -> Option<usize> {
    let inner = text.strip_prefix('[')?;
    let close = inner.find(']')?;
    body_ok(&inner[..close]).then_some(close + 2)
}

/// `begin:end` or `begin:end:step`, begin and end accepted by `part`, the
/// step digits.
fn range_body(body: &str, part: impl Fn(&str) -> bool) -> bool {
    let pieces: Vec<&str> = body.split(':').collect();
    match pieces.as_slice() {
        [begin, end] => part(begin) && part(end),
        [begin, end, step] => part(begin) && part(end) && is_digits(step),
        _ => false,
    }
}

fn numeric_range(body: &str) -> bool {
    range_body(body, is_digits)
}

fn hexadecimal_range(body: &str) -> bool {
    range_body(body, |part| {
        !part.is_empty() && part.chars().all(|c| c.is_ascii_hexdigit())
    })
}

fn alphanumeric_range(body: &str) -> bool {
    let one_letter = |part: &str| part.len() == 1 && part.chars().all(|c| c.is_ascii_alphabetic());
    range_body(body, one_letter) || numeric_range(body)
}

/// A whole component: `text` is exactly one range of the shape.
fn whole_range(text: &str, body_ok: impl Fn(&str) -> bool) -> bool {
    range_at(text, body_ok) == Some(text.len())
}

fn ipv4_component(part: &str) -> bool {
    if whole_range(part, numeric_range) {
        return true;
    }
    is_digits(part)
        && part.len() <= 3
        && (part.len() < 3 || part.parse::<u16>().is_ok_and(|value| value <= 255))
}

fn is_ipv4(address: &str) -> bool {
    let parts: Vec<&str> = address.split('.').collect();
    parts.len() == 4 && parts.iter().all(|part| ipv4_component(part))
}

fn ipv6_component(part: &str) -> bool {
    whole_range(part, hexadecimal_range)
        || ((1..=4).contains(&part.len()) && part.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Splits on `:` outside `[…]` (a hexadecimal range holds `:` itself).
fn split_colons(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut depth) = (0, 0usize);
    for (offset, character) in text.char_indices() {
        match character {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => {
                parts.push(&text[start..offset]);
                start = offset + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Ansible's IPv6 shapes, each component possibly a hexadecimal range:
/// eight components, or `::` with at most six on either side and seven
/// in all, or one of its three IPv4-in-IPv6 forms.
fn is_ipv6(address: &str) -> bool {
    let lower = address.to_ascii_lowercase();
    let groups = |side: &str| -> Option<Vec<String>> {
        if side.is_empty() {
            return Some(Vec::new());
        }
        let parts = split_colons(side);
        parts
            .iter()
            .all(|part| ipv6_component(part))
            .then(|| parts.iter().map(|part| part.to_string()).collect())
    };
    // Ansible's dotted tail reuses the IPv6 component (1-4 hex digits).
    let dotted = |tail: &str| {
        let parts: Vec<&str> = tail.split('.').collect();
        parts.len() == 4 && parts.iter().all(|part| ipv6_component(part))
    };
    if let Some(tail) = lower.strip_prefix("::ffff:").or(lower.strip_prefix("::")) {
        if tail.contains('.') {
            return dotted(tail);
        }
    }
    if lower.contains('.') {
        let parts = split_colons(&lower);
        let Some((tail, head)) = parts.split_last() else {
            return false;
        };
        let zeros = |count: usize| head.len() == count && head.iter().all(|part| *part == "0");
        let five_ffff =
            head.len() == 6 && head[..5].iter().all(|part| *part == "0") && head[5] == "ffff";
        return dotted(tail) && (zeros(6) || five_ffff);
    }
    match split_double_colon(&lower) {
        Some((left, right)) => match (groups(left), groups(right)) {
            (Some(left), Some(right)) => {
                left.len() <= 6 && right.len() <= 6 && left.len() + right.len() <= 7
            }
            _ => false,
        },
        None => groups(&lower).is_some_and(|all| all.len() == 8),
    }
}

/// Splits at the one `::` outside ranges; `None` when there is none (or
/// more than one, which no shape allows: reported as `Some` of a side
/// holding an empty component, refused there).
fn split_double_colon(text: &str) -> Option<(&str, &str)> {
    let mut depth = 0usize;
    let bytes = text.as_bytes();
    for (offset, byte) in bytes.iter().enumerate() {
        match byte {
            b'[' => depth += 1,
            b']' => depth = depth.saturating_sub(1),
            b':' if depth == 0 && bytes.get(offset + 1) == Some(&b':') => {
                return Some((&text[..offset], &text[offset + 2..]));
            }
            _ => {}
        }
    }
    None
}

/// Ansible's host names: dot-separated labels of word characters, `_` and
/// `-` (and alphanumeric ranges), starting with a word character or range
/// and not ending with `_` or `-`.
fn is_hostname(address: &str) -> bool {
    address.split('.').all(is_label)
}

fn is_label(label: &str) -> bool {
    let word = |character: char| character.is_alphanumeric() || character == '_';
    let mut rest = label;
    let mut first = true;
    let mut last = None;
    while let Some(character) = rest.chars().next() {
        if character == '[' {
            let Some(length) = range_at(rest, alphanumeric_range) else {
                return false;
            };
            rest = &rest[length..];
            last = Some(']');
        } else {
            let allowed = word(character) || (!first && character == '-');
            if !allowed {
                return false;
            }
            rest = &rest[character.len_utf8()..];
            last = Some(character);
        }
        first = false;
    }
    matches!(last, Some(character) if character != '_' && character != '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each checked against `ansible-inventory --list` (ansible-core 2.19).
    #[test]
    fn host_keys_split_as_ansible_splits_them() {
        let cases: [(&str, &str, Option<&str>); 19] = [
            ("h1", "h1", None),
            ("h1:2222", "h1", Some("2222")),
            ("[2001:db8::1]:2224", "2001:db8::1", Some("2224")),
            ("2001:db8::2", "2001:db8::2", None),
            ("::1", "::1", None),
            ("fe80::1%eth0", "fe80::1%eth0", None),
            ("mid-[01:02]:2225", "mid-[01:02]", Some("2225")),
            ("[10.0.0.5]:2226", "10.0.0.5", Some("2226")),
            ("10.0.0.6:2227", "10.0.0.6", Some("2227")),
            (
                "weird_host.example.com:2228",
                "weird_host.example.com",
                Some("2228"),
            ),
            // A label may not end with `_`: not an address, so all of it
            // is the name.
            ("under_:2229", "under_:2229", None),
            (
                "db-[a:c].example.com:22",
                "db-[a:c].example.com",
                Some("22"),
            ),
            ("2001:db8::[1:3]", "2001:db8::[1:3]", None),
            ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8", None),
            ("::ffff:192.0.2.3", "::ffff:192.0.2.3", None),
            ("[::ffff:192.0.2.3]:22", "::ffff:192.0.2.3", Some("22")),
            ("[a:1]:22", "a", Some("1")),
            ("bad!host:22", "bad!host:22", None),
            ("10.0.0.300:22", "10.0.0.300", Some("22")),
        ];
        for (key, name, port) in cases {
            assert_eq!(
                split_host_port(key),
                (name.to_string(), port.map(str::to_string)),
                "{key}"
            );
        }
    }

    #[test]
    fn patterns_that_ansible_keeps_whole() {
        assert!(parse_address("2001:db8::1").is_some());
        assert!(parse_address("web:22").is_some());
        assert!(parse_address("emea:amer").is_none());
        assert!(parse_address("emea:!lab").is_none());
    }

    #[test]
    fn address_shapes() {
        assert!(is_ipv6("2001:db8::1"));
        assert!(is_ipv6("::"));
        assert!(is_ipv6("fe80::"));
        assert!(!is_ipv6("1:2:3:4:5:6:7:8:9"));
        assert!(!is_ipv6("1::2::3"));
        assert!(!is_ipv6("1:2:3:4:5:6:7::"));
        assert!(is_ipv4("10.0.[1:3].1"));
        assert!(!is_ipv4("10.0.0"));
        assert!(is_hostname("mid-emea-01"));
        assert!(is_hostname("münchen-01"));
        assert!(!is_hostname("-mid"));
        assert!(!is_hostname("mid-"));
        assert!(!is_hostname("a..b"));
    }
}
