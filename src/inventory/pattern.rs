//! Host patterns read as Ansible's inventory manager reads them
//! (ansible-core 2.19, `lib/ansible/inventory/manager.py`): a pattern is
//! split on `,` (or, when it has none and is not one address such as
//! `fe80::1` or `10.0.0.[1:3]`, on `:` and blanks); each part is a group or
//! host name, a glob (`mid-emea-*`), a regex (`~mid-(emea|apac)-0[12]`,
//! matched from the start of names as Python's `re.match`), with an
//! optional subscript (`g[0]`, `g[-1]`, `g[0:2]` both ends included,
//! `g[1:]`); `&` intersects and `!` excludes, applied after every plain
//! part whatever their place. `--limit` also reads `@FILE`, one pattern per
//! line.
//!
//! Hosts come in Ansible's order: a group's hosts are its own, then its
//! children's, then theirs, level by level (`Inventory::hosts_of_group`);
//! parts add hosts in the order they are written.
//!
//! Where midfleet is stricter than Ansible: a plain name that matches no
//! group or host, a subscript past the end, and a regex that does not
//! compile are errors (Ansible warns, or fails only the play); a glob or
//! regex that matches nothing is a warning, as in Ansible.

use std::path::Path;
use std::sync::OnceLock;

use indexmap::IndexSet;
use regex::Regex;

use crate::diagnostic::{Diagnostic, Location, Origin};

use super::{Inventory, ALL, UNGROUPED};

/// The hosts a pattern selected, in Ansible's order, and the warnings it
/// raised (a glob that matched nothing…).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub hosts: Vec<String>,
    pub warnings: Vec<Diagnostic>,
}

/// One pattern of a split list, and where it was written.
struct Term {
    text: String,
    origin: Option<Origin>,
    /// A line of a `--limit @FILE`.
    from_file: bool,
}

impl Inventory {
    /// The hosts `pattern` (a play's `hosts:`) selects; `origin` is where
    /// the pattern was written (for messages). Unknown names are errors
    /// with a hint. `@FILE` is refused here: Ansible reads it only in
    /// `--limit` ([`Inventory::select_limit`]).
    pub fn select(
        &self,
        pattern: &str,
        origin: Option<&Origin>,
    ) -> Result<Selection, Vec<Diagnostic>> {
        let parts = split_pattern(pattern)
            .map_err(|error| vec![Diagnostic::error(origin.cloned(), error.to_string())])?;
        if let Some(file) = parts.iter().find(|part| part.starts_with('@')) {
            return Err(vec![Diagnostic::error(
                origin.cloned(),
                format!("`{file}`: a file of patterns is read only by --limit"),
            )
            .with_hint(format!(
                "give it as `--limit {file}` (Ansible too reads `@FILE` only in --limit)"
            ))]);
        }
        let terms = parts
            .into_iter()
            .map(|text| Term {
                text,
                origin: origin.cloned(),
                from_file: false,
            })
            .collect();
        self.evaluate(pattern, terms)
    }

    /// The hosts a `--limit` selects: a pattern whose `@FILE` parts are
    /// files of patterns, one per line (blank lines and `#` comments
    /// skipped), each line one pattern as Ansible reads it.
    pub fn select_limit(
        &self,
        limit: &str,
        origin: Option<&Origin>,
    ) -> Result<Selection, Vec<Diagnostic>> {
        let parts = split_pattern(limit)
            .map_err(|error| vec![Diagnostic::error(origin.cloned(), error.to_string())])?;
        let mut terms = Vec::new();
        for part in parts {
            match part.strip_prefix('@') {
                Some(file) => terms.extend(
                    read_pattern_file(Path::new(file), origin).map_err(|error| vec![error])?,
                ),
                None => terms.push(Term {
                    text: part,
                    origin: origin.cloned(),
                    from_file: false,
                }),
            }
        }
        self.evaluate(limit, terms)
    }

    /// Ansible's `_evaluate_patterns`: the plain parts in order (a plain
    /// host name taken as is), then every `&` part, then every `!` part.
    fn evaluate(&self, pattern: &str, terms: Vec<Term>) -> Result<Selection, Vec<Diagnostic>> {
        let mut regular = Vec::new();
        let mut intersections = Vec::new();
        let mut exclusions = Vec::new();
        for term in terms {
            match term.text.chars().next() {
                None => {}
                Some('&') => intersections.push(term),
                Some('!') => exclusions.push(term),
                Some(_) => regular.push(term),
            }
        }
        // Only `&` or `!` parts: they apply to every host, as in Ansible.
        if regular.is_empty() {
            regular.push(Term {
                text: ALL.to_string(),
                origin: None,
                from_file: false,
            });
        }
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut hosts: IndexSet<String> = IndexSet::new();
        let mut matched = |term: &Term, body: &str| -> Option<Vec<String>> {
            match self.match_one(pattern, term, body) {
                Ok((names, found)) => {
                    warnings.extend(found);
                    Some(names)
                }
                Err(error) => {
                    errors.push(error);
                    None
                }
            }
        };
        for term in &regular {
            if self.hosts.contains_key(&term.text) {
                hosts.insert(term.text.clone());
            } else if let Some(names) = matched(term, &term.text) {
                hosts.extend(names);
            }
        }
        for term in &intersections {
            if let Some(names) = matched(term, &term.text[1..]) {
                let names: IndexSet<String> = names.into_iter().collect();
                hosts.retain(|host| names.contains(host));
            }
        }
        for term in &exclusions {
            if let Some(names) = matched(term, &term.text[1..]) {
                let names: IndexSet<String> = names.into_iter().collect();
                hosts.retain(|host| !names.contains(host));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Selection {
            hosts: hosts.into_iter().collect(),
            warnings,
        })
    }

    /// Ansible's `_match_one_pattern`: the hosts `body` (a part without its
    /// `&`/`!`) names, its subscript applied.
    fn match_one(
        &self,
        pattern: &str,
        term: &Term,
        body: &str,
    ) -> Result<(Vec<String>, Vec<Diagnostic>), Diagnostic> {
        let (raw, origin) = (term.text.as_str(), term.origin.as_ref());
        if body.is_empty() {
            return Err(Diagnostic::error(
                origin.cloned(),
                PatternError::EmptyTerm {
                    term: raw.to_string(),
                    pattern: pattern.to_string(),
                }
                .to_string(),
            ));
        }
        let mut warnings = Vec::new();
        let (expression, subscript) = split_subscript(body);
        if let Some(Subscript::Range { dash: true, .. }) = subscript {
            warnings.push(
                Diagnostic::warning(
                    origin.cloned(),
                    format!("`{body}`: Ansible has removed `[x-y]` subscripts (it warns, and reads them as `[x:y]`)"),
                )
                .with_hint("write `[x:y]` (both ends included); it is read as that"),
            );
        }
        let matcher = Matcher::new(expression).map_err(|error| {
            Diagnostic::error(
                origin.cloned(),
                format!(
                    "`{expression}` is not a regular expression midfleet reads: {}",
                    regex_error_summary(&error)
                ),
            )
            .with_hint(
                "`~` patterns use Rust's regex syntax, matched from the start of the name like \
                 Python's re.match; look-around and backreferences are not supported",
            )
        })?;
        let (hosts, group_matched) = self.enumerate_matches(expression, &matcher);
        if hosts.is_empty() && !group_matched {
            if matcher.is_plain() {
                return Err(self.unknown_name(expression, body, subscript.is_some(), term));
            }
            warnings.push(Diagnostic::warning(
                origin.cloned(),
                format!("pattern `{expression}` matches no group or host"),
            ));
            return Ok((Vec::new(), warnings));
        }
        let selected = match subscript {
            None => hosts,
            Some(subscript) => apply_subscript(hosts, subscript).map_err(|count| {
                Diagnostic::error(
                    origin.cloned(),
                    format!(
                        "`{body}` selects no host: `{expression}` has {count} host{}",
                        if count == 1 { "" } else { "s" }
                    ),
                )
                .with_hint(format!(
                    "a subscript counts from 0 (`{expression}[0]` is the first host, \
                     `{expression}[-1]` the last; `midfleet hosts -i INVENTORY '{expression}'` \
                     lists them in order); to match names by their characters, write a regex \
                     such as `~{body}`"
                ))
            })?,
        };
        if selected.is_empty() && subscript.is_some() {
            warnings.push(Diagnostic::warning(
                origin.cloned(),
                format!("`{body}` selects no host"),
            ));
        }
        Ok((selected, warnings))
    }

    /// Ansible's `_enumerate_matches`: every group the expression names
    /// (their hosts, in group order: `all`, `ungrouped`, then as defined),
    /// then the hosts it names when no group matched or it is a glob or
    /// regex (or holds a `.`). Also whether a group matched.
    fn enumerate_matches(&self, expression: &str, matcher: &Matcher) -> (Vec<String>, bool) {
        let mut results: IndexSet<String> = IndexSet::new();
        let mut group_matched = false;
        let special = [ALL, UNGROUPED];
        let group_names = special
            .into_iter()
            .filter(|name| self.groups.contains_key(*name))
            .chain(
                self.groups
                    .keys()
                    .map(String::as_str)
                    .filter(|name| !special.contains(name)),
            );
        for group in group_names {
            if matcher.matches(group) {
                group_matched = true;
                results.extend(self.hosts_of_group(group));
            }
        }
        let looks_special =
            expression.starts_with('~') || expression.contains(['.', '?', '*', '[']);
        if !group_matched || looks_special {
            for host in self.hosts.keys() {
                if matcher.matches(host) {
                    results.insert(host.clone());
                }
            }
        }
        (results.into_iter().collect(), group_matched)
    }

    fn unknown_name(&self, name: &str, body: &str, subscripted: bool, term: &Term) -> Diagnostic {
        let diagnostic = Diagnostic::error(
            term.origin.clone(),
            format!("no group or host is named `{name}`"),
        );
        if subscripted {
            return diagnostic.with_hint(format!(
                "`{body}` is a subscript of `{name}`, as in Ansible (`g[1]` is the second host \
                 of g); to match names by their characters, write a regex: `~{name}[...]`"
            ));
        }
        if term.from_file && (name.contains(':') || name.contains(',')) {
            return diagnostic.with_hint(
                "a --limit file holds one pattern per line, as in Ansible: put each name on \
                 its own line",
            );
        }
        if name.contains(':') {
            return diagnostic.with_hint(format!(
                "Ansible reads `{name}` as one address (`name:port`, or IPv6), not as several \
                 patterns; separate patterns with `,`"
            ));
        }
        match self.suggestion(name) {
            Some(hint) => diagnostic.with_hint(hint),
            None => diagnostic.with_hint(
                "`midfleet hosts -i INVENTORY` lists the hosts; groups are the inventory's keys",
            ),
        }
    }
}

/// The lines of a `--limit @FILE`, each one pattern.
fn read_pattern_file(file: &Path, origin: Option<&Origin>) -> Result<Vec<Term>, Diagnostic> {
    if file.is_dir() {
        return Err(Diagnostic::error(
            origin.cloned(),
            format!("--limit @{}: a directory, not a file", file.display()),
        ));
    }
    let text = crate::source_file::read(file).map_err(|error| {
        Diagnostic::error(
            origin.cloned(),
            format!(
                "cannot read pattern file {}: {}",
                file.display(),
                error.message
            ),
        )
    })?;
    let mut terms = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        terms.push(Term {
            from_file: true,
            text: line.to_string(),
            origin: Some(Origin::new(
                file,
                Location {
                    line: index + 1,
                    column: 1,
                },
            )),
        });
    }
    Ok(terms)
}

/// The last line of a regex error ("unclosed group"), without its
/// `error: ` and the pattern drawing before it.
fn regex_error_summary(error: &regex::Error) -> String {
    let text = error.to_string();
    let last = text.lines().last().unwrap_or_default().trim();
    last.strip_prefix("error: ").unwrap_or(last).to_string()
}

/// A host pattern that names nothing.
#[derive(Debug, thiserror::Error)]
enum PatternError {
    #[error("an empty host pattern")]
    Empty,
    #[error("`{term}` in pattern `{pattern}` names nothing")]
    EmptyTerm { term: String, pattern: String },
    #[error("pattern `{pattern}` names nothing")]
    NamesNothing { pattern: String },
}

/// Ansible's `split_host_pattern`, with midfleet's checks for a pattern
/// that names nothing.
fn split_pattern(pattern: &str) -> Result<Vec<String>, PatternError> {
    if pattern.trim().is_empty() {
        return Err(PatternError::Empty);
    }
    let parts = split_host_pattern(pattern);
    if parts.is_empty() {
        return Err(PatternError::NamesNothing {
            pattern: pattern.trim().to_string(),
        });
    }
    Ok(parts)
}

/// Ansible's `split_host_pattern`: on `,` when there is one; else the
/// whole pattern when it reads as one address (so `fe80::1`, `[::1]:22`
/// and `10.0.0.[1:3]` stay whole); else the runs of characters other than
/// blanks, `:`, `[` and `]`, with whole `[…]` groups kept (`web:g[0:2]` is
/// `web` and `g[0:2]`). Parts are trimmed; empty ones dropped.
pub fn split_host_pattern(pattern: &str) -> Vec<String> {
    let parts: Vec<String> = if pattern.contains(',') {
        pattern.split(',').map(str::to_string).collect()
    } else if parses_as_address(pattern) {
        vec![pattern.to_string()]
    } else {
        colon_separated(pattern)
    };
    parts
        .iter()
        .map(|part| part.trim())
        .filter(|part| !part.is_empty())
        .map(str::to_string)
        .collect()
}

/// `re.findall` of one or more (a character other than whitespace, `:`,
/// `[`, `]`, or a whole bracketed `[…]`): characters outside any run are
/// dropped, as in Ansible.
fn colon_separated(pattern: &str) -> Vec<String> {
    let characters: Vec<char> = pattern.chars().collect();
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut index = 0;
    while index < characters.len() {
        let character = characters[index];
        if character == '[' {
            if let Some(close) = characters[index + 1..].iter().position(|c| *c == ']') {
                let end = index + 1 + close;
                current.extend(&characters[index..=end]);
                index = end + 1;
                continue;
            }
        }
        if character.is_whitespace() || ":[]".contains(character) {
            if !current.is_empty() {
                parts.push(std::mem::take(&mut current));
            }
        } else {
            current.push(character);
        }
        index += 1;
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

/// Whether Ansible's `parse_address(pattern, allow_ranges=True)` accepts
/// `pattern`: an optional port (`[host]:port` or `host:port`), then an IPv4
/// or IPv6 address or a host name, each possibly with `[x:y]` ranges.
fn parses_as_address(pattern: &str) -> bool {
    static PATTERNS: OnceLock<[Regex; 5]> = OnceLock::new();
    let [bracketed_port, port, ipv4, ipv6, hostname] = PATTERNS.get_or_init(address_patterns);
    let mut address = pattern;
    if let Some(captures) = bracketed_port.captures(address) {
        address = captures.get(1).map_or("", |found| found.as_str());
    }
    if let Some(captures) = port.captures(address) {
        address = captures.get(1).map_or("", |found| found.as_str());
    }
    !address.is_empty()
        && (ipv4.is_match(address) || ipv6.is_match(address) || hostname.is_match(address))
}

/// The address grammar Ansible's `parse_address` accepts (written from
/// its description: RFC 4291 IPv6 forms, dotted IPv4, DNS-like names with
/// `_`, each part possibly an `[x:y(:z)]` range).
fn address_patterns() -> [Regex; 5] {
    let numeric_range = r"\[[0-9]+:[0-9]+(?::[0-9]+)?\]";
    let hex_range = r"\[[0-9a-fA-F]+:[0-9a-fA-F]+(?::[0-9]+)?\]";
    let alphanumeric_range = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]";
    let v4 = format!(r"(?:[01]?[0-9]{{1,2}}|2[0-4][0-9]|25[0-5]|{numeric_range})");
    let h = format!(r"(?:[0-9a-fA-F]{{1,4}}|{hex_range})");
    let dotted = format!(r"(?:{v4}\.){{3}}{v4}");
    let ipv6_forms = [
        format!(r"(?:{h}:){{7}}{h}"),
        format!(r"(?:{h}:){{1,6}}:"),
        format!(r"(?:{h}:)(?::{h}){{1,6}}"),
        format!(r"(?:{h}:){{2}}(?::{h}){{1,5}}"),
        format!(r"(?:{h}:){{3}}(?::{h}){{1,4}}"),
        format!(r"(?:{h}:){{4}}(?::{h}){{1,3}}"),
        format!(r"(?:{h}:){{5}}(?::{h}){{1,2}}"),
        format!(r"(?:{h}:){{6}}(?::{h})"),
        format!(r":(?::{h}){{1,6}}"),
        format!(r"{h}?::"),
        format!(r"(?:0:){{6}}{dotted}"),
        format!(r"::(?:[fF]{{4}}:)?{dotted}"),
        format!(r"(?:0:){{5}}[fF]{{4}}:{dotted}"),
    ];
    // A label starts with a word character or a range, goes on with word
    // characters, `-` or ranges, and does not end with `_` or `-`.
    let label = format!(
        r"(?:(?:\w|{alphanumeric_range})(?:[\w-]|{alphanumeric_range})*)?(?:[^\W_]|{alphanumeric_range})"
    );
    let compile = |expression: String| {
        Regex::new(&expression).unwrap_or_else(|error| panic!("address pattern: {error}"))
    };
    [
        compile(r"^\[(.+)\]:([0-9]+)$".to_string()),
        compile(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$".to_string()),
        compile(format!(r"^{dotted}$")),
        compile(format!(r"^(?:{})$", ipv6_forms.join("|"))),
        compile(format!(r"^(?i:{label}(?:\.{label})*)$")),
    ]
}

/// A subscript after a pattern: `[i]` (negative counts from the end) or
/// `[start:end]` with both ends included (`[start:]` to the last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subscript {
    Index(i64),
    /// `end` is `None` for `[start:]`; `dash` for the old `[x-y]`.
    Range {
        start: i64,
        end: Option<i64>,
        dash: bool,
    },
}

/// Ansible's `_split_subscript`: `web[0]` is `web` and index 0; a regex
/// keeps its brackets. `g[:3]` and `g[-1:]` are not subscripts (they stay
/// globs), as in Ansible.
fn split_subscript(pattern: &str) -> (&str, Option<Subscript>) {
    static SUBSCRIPT: OnceLock<Regex> = OnceLock::new();
    if pattern.starts_with('~') {
        return (pattern, None);
    }
    let subscript = SUBSCRIPT.get_or_init(|| {
        Regex::new(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$")
            .unwrap_or_else(|error| panic!("subscript pattern: {error}"))
    });
    let Some(captures) = subscript.captures(pattern) else {
        return (pattern, None);
    };
    let number = |index: usize| {
        captures.get(index).map(|found| {
            // Out of range either way; saturate rather than fail.
            found
                .as_str()
                .parse::<i64>()
                .unwrap_or(if found.as_str().starts_with('-') {
                    i64::MIN
                } else {
                    i64::MAX
                })
        })
    };
    let expression = captures.get(1).map_or(pattern, |found| found.as_str());
    let parsed = match number(2) {
        Some(index) => Subscript::Index(index),
        None => Subscript::Range {
            start: number(3).unwrap_or(0),
            end: captures
                .get(5)
                .filter(|found| !found.as_str().is_empty())
                .and(number(5)),
            dash: captures.get(4).is_some_and(|found| found.as_str() == "-"),
        },
    };
    (expression, Some(parsed))
}

/// Ansible's `_apply_subscript`; `Err` holds how many hosts there were
/// when an index is out of range (a range past the end is empty, no error).
fn apply_subscript(hosts: Vec<String>, subscript: Subscript) -> Result<Vec<String>, usize> {
    let count = hosts.len();
    if count == 0 {
        return Ok(hosts);
    }
    let length = i64::try_from(count).unwrap_or(i64::MAX);
    let index = match subscript {
        Subscript::Index(index) => index,
        // `[x:0]` is `[x]` in Ansible (a zero end reads as no end).
        Subscript::Range {
            start,
            end: Some(0),
            ..
        } => start,
        Subscript::Range { start, end, .. } => {
            let last = end.unwrap_or(length - 1);
            let stop = last.saturating_add(1).min(length);
            let start = start.min(length);
            if start >= stop {
                return Ok(Vec::new());
            }
            let (start, stop) = (start as usize, stop as usize);
            return Ok(hosts[start..stop].to_vec());
        }
    };
    let position = if index < 0 {
        length.checked_add(index)
    } else {
        Some(index)
    };
    match position {
        Some(position) if (0..length).contains(&position) => {
            Ok(vec![hosts[position as usize].clone()])
        }
        _ => Err(count),
    }
}

/// How one part matches names: a glob (Python's fnmatch, case-sensitive)
/// or, after `~`, a regex matched from the start of the name.
enum Matcher {
    Glob(String),
    Regex(Regex),
}

impl Matcher {
    fn new(expression: &str) -> Result<Matcher, regex::Error> {
        match expression.strip_prefix('~') {
            Some(regex) => Regex::new(regex).map(Matcher::Regex),
            None => Ok(Matcher::Glob(expression.to_string())),
        }
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Matcher::Glob(glob) => glob_match(glob, name),
            // Python's re.match: a match that starts at the name's start.
            // The leftmost match starts there when any does.
            Matcher::Regex(regex) => regex.find(name).is_some_and(|found| found.start() == 0),
        }
    }

    /// A plain name: neither a regex nor a glob.
    fn is_plain(&self) -> bool {
        matches!(self, Matcher::Glob(glob) if !is_glob(glob))
    }
}

fn is_glob(term: &str) -> bool {
    term.contains(['*', '?', '['])
}

/// Python's fnmatch: `*`, `?`, `[abc]`, `[a-z]`, `[!abc]`; an unclosed `[`
/// is itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Iterative matching with backtracking on the last `*`.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                '*' => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                '?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                '[' => {
                    if let Some((matches, next)) = class_match(&pattern, p, text[t]) {
                        if matches {
                            p = next;
                            t += 1;
                            continue;
                        }
                    } else if text[t] == '[' {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
                literal if literal == text[t] => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((star_p, star_t)) => {
                p = star_p + 1;
                t = star_t + 1;
                star = Some((star_p, star_t + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|character| *character == '*')
}

/// Whether `character` matches the class at `pattern[start]` (`[`), and
/// where the class ends; `None` when the class is not closed.
fn class_match(pattern: &[char], start: usize, character: char) -> Option<(bool, usize)> {
    let mut index = start + 1;
    // Python's fnmatch negates with `!` only (`[^a]` matches `^` or `a`).
    let negated = pattern.get(index) == Some(&'!');
    if negated {
        index += 1;
    }
    let mut matched = false;
    let mut first = true;
    while index < pattern.len() {
        let current = pattern[index];
        if current == ']' && !first {
            return Some((matched != negated, index + 1));
        }
        if pattern.get(index + 1) == Some(&'-')
            && pattern.get(index + 2).is_some_and(|end| *end != ']')
        {
            let end = pattern[index + 2];
            matched |= (current..=end).contains(&character);
            index += 3;
        } else {
            matched |= current == character;
            index += 1;
        }
        first = false;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{apply_subscript, glob_match, split_host_pattern, split_subscript, Subscript};

    /// What Ansible's `split_host_pattern` returns (ansible-core 2.19.14,
    /// observed in its Python).
    #[test]
    fn patterns_split_as_ansible_splits_them() {
        let cases: [(&str, &[&str]); 17] = [
            ("a,b[1], c[2:3] , d", &["a", "b[1]", "c[2:3]", "d"]),
            ("web:db", &["web", "db"]),
            ("web:g[0:2]:!x", &["web", "g[0:2]", "!x"]),
            ("web db", &["web", "db"]),
            ("a:b,c", &["a:b", "c"]),
            // One address: kept whole.
            ("fe80::1", &["fe80::1"]),
            ("::", &["::"]),
            ("::ffff:10.0.0.1", &["::ffff:10.0.0.1"]),
            ("[::1]:22", &["[::1]:22"]),
            ("web:80", &["web:80"]),
            ("10.0.0.[1:3]", &["10.0.0.[1:3]"]),
            ("g[0:2]", &["g[0:2]"]),
            // Not one address: split on `:`.
            ("fe80::1:web", &["fe80", "1", "web"]),
            ("~web.*:db", &["~web.*", "db"]),
            ("a]b", &["a", "b"]),
            (":::", &[]),
            ("  ,  ", &[]),
        ];
        for (pattern, expected) in cases {
            assert_eq!(split_host_pattern(pattern), expected, "{pattern:?}");
        }
    }

    #[test]
    fn subscripts_split_and_apply_as_in_ansible() {
        let cases = [
            ("g[0]", "g", Some(Subscript::Index(0))),
            ("g[-1]", "g", Some(Subscript::Index(-1))),
            (
                "g[0:2]",
                "g",
                Some(Subscript::Range {
                    start: 0,
                    end: Some(2),
                    dash: false,
                }),
            ),
            (
                "g[1:]",
                "g",
                Some(Subscript::Range {
                    start: 1,
                    end: None,
                    dash: false,
                }),
            ),
            (
                "g[1-2]",
                "g",
                Some(Subscript::Range {
                    start: 1,
                    end: Some(2),
                    dash: true,
                }),
            ),
            ("mongo[12]", "mongo", Some(Subscript::Index(12))),
            ("a[1][2]", "a[1]", Some(Subscript::Index(2))),
            ("g[:3]", "g[:3]", None),
            ("g[-1:]", "g[-1:]", None),
            ("~g[0]", "~g[0]", None),
            ("g[a]", "g[a]", None),
        ];
        for (pattern, expression, subscript) in cases {
            assert_eq!(
                split_subscript(pattern),
                (expression, subscript),
                "{pattern}"
            );
        }
        let hosts: Vec<String> = ["a", "b", "c"]
            .iter()
            .map(|name| name.to_string())
            .collect();
        let apply = |subscript| apply_subscript(hosts.clone(), subscript);
        let range = |start, end| Subscript::Range {
            start,
            end,
            dash: false,
        };
        assert_eq!(apply(Subscript::Index(0)), Ok(vec!["a".to_string()]));
        assert_eq!(apply(Subscript::Index(-1)), Ok(vec!["c".to_string()]));
        assert_eq!(apply(Subscript::Index(-3)), Ok(vec!["a".to_string()]));
        assert_eq!(apply(Subscript::Index(3)), Err(3));
        assert_eq!(apply(Subscript::Index(-4)), Err(3));
        assert_eq!(apply(Subscript::Index(i64::MIN)), Err(3));
        assert_eq!(
            apply(range(0, Some(1))),
            Ok(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(
            apply(range(1, None)),
            Ok(vec!["b".to_string(), "c".to_string()])
        );
        assert_eq!(apply(range(1, Some(0))), Ok(vec!["b".to_string()]));
        assert_eq!(apply(range(5, Some(9))), Ok(Vec::new()));
        assert_eq!(apply(range(2, Some(1))), Ok(Vec::new()));
        assert_eq!(
            apply(range(0, Some(i64::MAX))).map(|hosts| hosts.len()),
            Ok(3)
        );
        assert_eq!(
            apply_subscript(Vec::new(), Subscript::Index(4)),
            Ok(Vec::new())
        );
    }

    #[test]
    fn globs() {
        let cases = [
            ("mid-*", "mid-emea-01", true),
            ("mid-*-01", "mid-emea-01", true),
            ("mid-*-01", "mid-emea-02", false),
            ("mid-0?", "mid-07", true),
            ("mid-[0-4]1", "mid-31", true),
            ("mid-[!0-4]1", "mid-31", false),
            ("*", "", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("[^w]*", "web1", true),
            ("[^w]*", "db1", false),
            ("[^w]*", "^x", true),
            ("web[", "web[", true),
            ("[]a]x", "]x", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(glob_match(pattern, text), expected, "{pattern} vs {text}");
        }
    }
}
