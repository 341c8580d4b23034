//! Ansible host ranges: `mid-[01:20]`, `db-[a:f]`, `web[0:10:2]`, and
//! several ranges in one name.

/// Hosts one range may expand to; more is a typo, not a fleet.
const MAX_EXPANSION: usize = 100_000;

/// Why a host pattern with a range cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("`{pattern}`: `[` without a closing `]`")]
    Unclosed { pattern: String },
    /// The range inside the brackets of `pattern`.
    #[error("`{pattern}`: {reason}")]
    Range { pattern: String, reason: BadRange },
    #[error("`{pattern}` expands to more than {MAX_EXPANSION} hosts")]
    TooMany { pattern: String },
}

/// What is wrong with one `[start:end(:step)]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadRange {
    #[error("step `{0}` is not a positive number")]
    Step(String),
    #[error("`[{0}]` is not a range like [01:20] or [a:f]")]
    Shape(String),
    #[error("`{0}` is too large")]
    TooLarge(String),
    #[error("the range starts after it ends ({start} > {end})")]
    Backwards { start: String, end: String },
    #[error("the range has more than {MAX_EXPANSION} items")]
    TooMany,
    #[error("`[{0}]` is not an increasing range of letters")]
    Letters(String),
    #[error("`[{0}]` mixes numbers and letters or is not a range")]
    Mixed(String),
}

/// The names `pattern` expands to, in order; the name itself when it has no
/// `[`.
pub fn expand(pattern: &str) -> Result<Vec<String>, RangeError> {
    let Some(open) = pattern.find('[') else {
        return Ok(vec![pattern.to_string()]);
    };
    let close = pattern[open..]
        .find(']')
        .map(|offset| open + offset)
        .ok_or_else(|| RangeError::Unclosed {
            pattern: pattern.to_string(),
        })?;
    let (head, range, tail) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    let items = expand_range(range).map_err(|reason| RangeError::Range {
        pattern: pattern.to_string(),
        reason,
    })?;
    let tails = expand(tail)?;
    if items.len().saturating_mul(tails.len()) > MAX_EXPANSION {
        return Err(RangeError::TooMany {
            pattern: pattern.to_string(),
        });
    }
    let mut names = Vec::with_capacity(items.len() * tails.len());
    for item in &items {
        for tail in &tails {
            names.push(format!("{head}{item}{tail}"));
        }
    }
    Ok(names)
}

fn expand_range(range: &str) -> Result<Vec<String>, BadRange> {
    let parts: Vec<&str> = range.split(':').collect();
    let (start, end, step) = match parts.as_slice() {
        [start, end] => (*start, *end, 1),
        [start, end, step] => (
            *start,
            *end,
            step.parse::<usize>()
                .ok()
                .filter(|step| *step > 0)
                .ok_or_else(|| BadRange::Step(step.to_string()))?,
        ),
        _ => return Err(BadRange::Shape(range.to_string())),
    };
    let is_number = |text: &str| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    let is_letter =
        |text: &str| text.len() == 1 && text.bytes().all(|byte| byte.is_ascii_alphabetic());
    if is_number(start) && is_number(end) {
        let first: u64 = start
            .parse()
            .map_err(|_| BadRange::TooLarge(start.to_string()))?;
        let last: u64 = end
            .parse()
            .map_err(|_| BadRange::TooLarge(end.to_string()))?;
        if first > last {
            return Err(BadRange::Backwards {
                start: start.to_string(),
                end: end.to_string(),
            });
        }
        if (last - first) / step as u64 >= MAX_EXPANSION as u64 {
            return Err(BadRange::TooMany);
        }
        // A zero-padded start sets the width, as in Ansible.
        let width = if start.len() > 1 && start.starts_with('0') {
            start.len()
        } else {
            0
        };
        Ok((first..=last)
            .step_by(step)
            .map(|number| format!("{number:0width$}"))
            .collect())
    } else if is_letter(start) && is_letter(end) {
        let (first, last) = (start.as_bytes()[0], end.as_bytes()[0]);
        if first > last || first.is_ascii_lowercase() != last.is_ascii_lowercase() {
            return Err(BadRange::Letters(range.to_string()));
        }
        Ok((first..=last)
            .step_by(step)
            .map(|letter| char::from(letter).to_string())
            .collect())
    } else {
        Err(BadRange::Mixed(range.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_like_ansible() {
        let cases: [(&str, &[&str]); 6] = [
            ("mid-01", &["mid-01"]),
            ("mid-[01:03]", &["mid-01", "mid-02", "mid-03"]),
            ("mid-[8:10]", &["mid-8", "mid-9", "mid-10"]),
            (
                "db-[a:c].example.com",
                &["db-a.example.com", "db-b.example.com", "db-c.example.com"],
            ),
            ("w[0:6:3]", &["w0", "w3", "w6"]),
            ("r[1:2]-[a:b]", &["r1-a", "r1-b", "r2-a", "r2-b"]),
        ];
        for (pattern, expected) in cases {
            assert_eq!(expand(pattern).unwrap(), expected, "{pattern}");
        }
    }

    #[test]
    fn refuses_bad_ranges() {
        for pattern in [
            "mid-[03:01]",
            "mid-[1:a]",
            "mid-[01:03",
            "mid-[1]",
            "x[1:5:0]",
            "x[a:Z]",
            "x[0:999999999]",
        ] {
            assert!(expand(pattern).is_err(), "{pattern}");
        }
    }
}
