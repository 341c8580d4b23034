//! Host patterns as Ansible writes them: `all`, `*`, group and host names,
//! globs (`mid-emea-*`), `a:b` or `a,b` union, `a:&b` intersection, `a:!b`
//! exclusion, and `@file` (one pattern per line).

use std::path::Path;

use indexmap::IndexSet;

use crate::diagnostic::{Diagnostic, Origin};

use super::Inventory;

/// The hosts a pattern selected, in inventory order, and the warnings it
/// raised (a glob that matched nothing).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub hosts: Vec<String>,
    pub warnings: Vec<Diagnostic>,
}

enum Term {
    Union(String),
    Intersection(String),
    Exclusion(String),
}

impl Inventory {
    /// The hosts `pattern` selects; `origin` is where the pattern was
    /// written (for messages). Unknown names are errors with a hint.
    pub fn select(
        &self,
        pattern: &str,
        origin: Option<&Origin>,
    ) -> Result<Selection, Vec<Diagnostic>> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let terms = match split_terms(pattern) {
            Ok(terms) => terms,
            Err(error) => return Err(vec![Diagnostic::error(origin.cloned(), error.to_string())]),
        };
        let mut union: IndexSet<String> = IndexSet::new();
        let mut intersections = Vec::new();
        let mut exclusions = Vec::new();
        let mut has_union = false;
        for term in &terms {
            let (text, kind) = match term {
                Term::Union(text) => (text, 0),
                Term::Intersection(text) => (text, 1),
                Term::Exclusion(text) => (text, 2),
            };
            let matched = match self.match_term(text, origin) {
                Ok((matched, warning)) => {
                    warnings.extend(warning);
                    matched
                }
                Err(diagnostic) => {
                    errors.push(diagnostic);
                    continue;
                }
            };
            match kind {
                0 => {
                    has_union = true;
                    union.extend(matched);
                }
                1 => intersections.push(matched),
                _ => exclusions.push(matched),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        // Only `&` or `!` terms: they apply to every host, as in Ansible.
        if !has_union {
            union = self.hosts_of_group(super::ALL);
        }
        let hosts = self
            .host_entries()
            .map(|entry| entry.name.clone())
            .filter(|host| union.contains(host))
            .filter(|host| {
                intersections
                    .iter()
                    .all(|set: &IndexSet<String>| set.contains(host))
            })
            .filter(|host| {
                !exclusions
                    .iter()
                    .any(|set: &IndexSet<String>| set.contains(host))
            })
            .collect();
        Ok(Selection { hosts, warnings })
    }

    /// The hosts one term names: `all`/`*`, a group, a host, a glob over
    /// both, or `@file`.
    fn match_term(
        &self,
        term: &str,
        origin: Option<&Origin>,
    ) -> Result<(IndexSet<String>, Option<Diagnostic>), Diagnostic> {
        if let Some(file) = term.strip_prefix('@') {
            return self.match_file(Path::new(file), origin);
        }
        if term == "all" || term == "*" {
            return Ok((self.hosts_of_group(super::ALL), None));
        }
        if term == super::UNGROUPED {
            // Always a group, even when every host has another one.
            return Ok((self.hosts_of_group(term), None));
        }
        if term.starts_with('~') {
            return Err(Diagnostic::error(
                origin.cloned(),
                format!("`{term}`: regular-expression patterns are not supported"),
            )
            .with_hint("use a glob such as `mid-emea-*`, or list the names"));
        }
        if self.group(term).is_some() {
            return Ok((self.hosts_of_group(term), None));
        }
        if self.host_entry(term).is_some() {
            return Ok((IndexSet::from([term.to_string()]), None));
        }
        if is_glob(term) {
            let mut matched = IndexSet::new();
            for group in self.groups().filter(|group| glob_match(term, &group.name)) {
                matched.extend(self.hosts_of_group(&group.name));
            }
            for host in self
                .host_entries()
                .filter(|host| glob_match(term, &host.name))
            {
                matched.insert(host.name.clone());
            }
            let warning = matched.is_empty().then(|| {
                Diagnostic::warning(
                    origin.cloned(),
                    format!("pattern `{term}` matches no group or host"),
                )
            });
            return Ok((matched, warning));
        }
        let mut diagnostic = Diagnostic::error(
            origin.cloned(),
            format!("no group or host is named `{term}`"),
        );
        diagnostic = match self.suggestion(term) {
            Some(hint) => diagnostic.with_hint(hint),
            None => diagnostic.with_hint(
                "`midfleet hosts -i INVENTORY` lists the hosts; groups are the inventory's keys",
            ),
        };
        Err(diagnostic)
    }

    fn match_file(
        &self,
        file: &Path,
        origin: Option<&Origin>,
    ) -> Result<(IndexSet<String>, Option<Diagnostic>), Diagnostic> {
        let text = std::fs::read_to_string(file).map_err(|error| {
            Diagnostic::error(
                origin.cloned(),
                format!("cannot read pattern file {}: {error}", file.display()),
            )
        })?;
        let mut matched = IndexSet::new();
        let mut warning = None;
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line_origin = Origin::new(
                file,
                crate::diagnostic::Location {
                    line: index + 1,
                    column: 1,
                },
            );
            let selection = self
                .select(line, Some(&line_origin))
                .map_err(|mut errors| errors.remove(0))?;
            matched.extend(selection.hosts);
            warning = warning.or(selection.warnings.into_iter().next());
        }
        Ok((matched, warning))
    }
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

fn split_terms(pattern: &str) -> Result<Vec<Term>, PatternError> {
    let pattern = pattern.trim();
    if pattern.is_empty() {
        return Err(PatternError::Empty);
    }
    // Ansible splits on `,` when there is one, else on `:`.
    let separator = if pattern.contains(',') { ',' } else { ':' };
    let mut terms = Vec::new();
    for raw in pattern.split(separator) {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let term = if let Some(rest) = raw.strip_prefix('&') {
            Term::Intersection(rest.to_string())
        } else if let Some(rest) = raw.strip_prefix('!') {
            Term::Exclusion(rest.to_string())
        } else {
            Term::Union(raw.to_string())
        };
        if matches!(&term, Term::Intersection(text) | Term::Exclusion(text) if text.is_empty()) {
            return Err(PatternError::EmptyTerm {
                term: raw.to_string(),
                pattern: pattern.to_string(),
            });
        }
        terms.push(term);
    }
    if terms.is_empty() {
        return Err(PatternError::NamesNothing {
            pattern: pattern.to_string(),
        });
    }
    Ok(terms)
}

fn is_glob(term: &str) -> bool {
    term.contains(['*', '?', '['])
}

/// fnmatch: `*`, `?`, `[abc]`, `[a-z]`, `[!abc]`.
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
    let negated = matches!(pattern.get(index), Some('!') | Some('^'));
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
    use super::glob_match;

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
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(glob_match(pattern, text), expected, "{pattern} vs {text}");
        }
    }
}
