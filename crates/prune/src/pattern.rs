//! Layer exclusion patterns.
//!
//! A pattern names layers by their module path (the node name, e.g. `base_net.0.0`):
//! - with `*` wildcards it must match the whole name (`*headers*`, `extras.*.conv.0`);
//! - without, it matches that module and everything under it: `base_net.1` matches
//!   `base_net.1.conv.0` but not `base_net.10.conv.0`.

use crate::error::{PruneError, Result};

/// A compiled set of exclusion patterns.
#[derive(Clone, Debug, Default)]
pub struct Excludes {
    patterns: Vec<String>,
}

impl Excludes {
    /// Checks and stores `patterns`.
    pub fn new(patterns: &[String]) -> Result<Self> {
        for p in patterns {
            if p.trim().is_empty() {
                return Err(PruneError::Pattern {
                    pattern: p.clone(),
                    reason: "empty pattern".into(),
                });
            }
        }
        Ok(Self {
            patterns: patterns.iter().map(|p| p.trim().to_string()).collect(),
        })
    }

    /// Whether `name` is excluded.
    pub fn matches(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| pattern_matches(p, name))
    }
}

/// Whether `pattern` matches layer `name` (see the module docs).
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    if pattern.contains('*') {
        glob(pattern.as_bytes(), name.as_bytes())
    } else {
        name == pattern
            || (name.starts_with(pattern) && name.as_bytes().get(pattern.len()) == Some(&b'.'))
    }
}

/// `*` matches any run of characters (iterative, with backtracking to the last star).
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_stops_at_module_boundary() {
        assert!(pattern_matches("base_net.1", "base_net.1.conv.0"));
        assert!(pattern_matches("base_net.0.0", "base_net.0.0"));
        assert!(!pattern_matches("base_net.1", "base_net.10.conv.0"));
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(pattern_matches("*headers*", "classification_headers.0.3"));
        assert!(pattern_matches("extras.*.conv.0", "extras.2.conv.0"));
        assert!(!pattern_matches("extras.*.conv.0", "extras.2.conv.3"));
        assert!(pattern_matches("*", "anything"));
    }

    #[test]
    fn empty_pattern_is_refused() {
        assert!(Excludes::new(&[" ".into()]).is_err());
    }
}
