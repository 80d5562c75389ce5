//! Shell-style path patterns as buildah and moby's patternmatcher read them: `*` and `?`
//! never match `/`, `[...]` classes (`^` or `!` negates, ranges), `\` escapes, and `**`
//! matches any number of path components (`**/` also matches none).

/// Whether `s` contains glob metacharacters (`*`, `?`, `[`).
pub fn has_wildcards(s: &str) -> bool {
    let mut esc = false;
    for c in s.chars() {
        if esc {
            esc = false;
            continue;
        }
        match c {
            '\\' => esc = true,
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    toks: Vec<Tok>,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    Any,         // ?
    Star,        // *
    DoubleStar,  // ** (anything, `/` included)
    DoubleSlash, // **/ (nothing, or anything ending in `/`)
    Class { neg: bool, items: Vec<(char, char)> },
}

/// A malformed pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("syntax error in pattern {0:?}")]
pub struct BadPattern(pub String);

impl Pattern {
    /// Compile `p`.
    pub fn new(p: &str) -> Result<Pattern, BadPattern> {
        let bad = || BadPattern(p.to_string());
        let cs: Vec<char> = p.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < cs.len() {
            match cs[i] {
                '*' => {
                    if cs.get(i + 1) == Some(&'*') {
                        i += 2;
                        while cs.get(i) == Some(&'*') {
                            i += 1;
                        }
                        if cs.get(i) == Some(&'/') {
                            toks.push(Tok::DoubleSlash);
                            i += 1;
                        } else {
                            toks.push(Tok::DoubleStar);
                        }
                        continue;
                    }
                    toks.push(Tok::Star);
                }
                '?' => toks.push(Tok::Any),
                '\\' => {
                    i += 1;
                    toks.push(Tok::Lit(*cs.get(i).ok_or_else(bad)?));
                }
                '[' => {
                    i += 1;
                    let mut neg = false;
                    if matches!(cs.get(i), Some('^') | Some('!')) {
                        neg = true;
                        i += 1;
                    }
                    let mut items = Vec::new();
                    let mut first = true;
                    loop {
                        let c = *cs.get(i).ok_or_else(bad)?;
                        if c == ']' && !first {
                            break;
                        }
                        first = false;
                        let lo = if c == '\\' {
                            i += 1;
                            *cs.get(i).ok_or_else(bad)?
                        } else {
                            c
                        };
                        i += 1;
                        if cs.get(i) == Some(&'-') && cs.get(i + 1).is_some_and(|c| *c != ']') {
                            i += 1;
                            let mut hi = cs[i];
                            if hi == '\\' {
                                i += 1;
                                hi = *cs.get(i).ok_or_else(bad)?;
                            }
                            i += 1;
                            if hi < lo {
                                return Err(bad());
                            }
                            items.push((lo, hi));
                        } else {
                            items.push((lo, lo));
                        }
                    }
                    toks.push(Tok::Class { neg, items });
                }
                c => toks.push(Tok::Lit(c)),
            }
            i += 1;
        }
        Ok(Pattern {
            toks,
            text: p.to_string(),
        })
    }

    /// The source text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the whole of `s` matches.
    pub fn matches(&self, s: &str) -> bool {
        let cs: Vec<char> = s.chars().collect();
        match_at(&self.toks, &cs)
    }
}

fn match_at(toks: &[Tok], s: &[char]) -> bool {
    let Some((t, rest)) = toks.split_first() else {
        return s.is_empty();
    };
    match t {
        Tok::Lit(c) => s.first() == Some(c) && match_at(rest, &s[1..]),
        Tok::Any => s.first().is_some_and(|c| *c != '/') && match_at(rest, &s[1..]),
        Tok::Class { neg, items } => match s.first() {
            Some(&c) if c != '/' => {
                let hit = items.iter().any(|(lo, hi)| *lo <= c && c <= *hi);
                hit != *neg && match_at(rest, &s[1..])
            }
            _ => false,
        },
        Tok::Star => {
            for n in 0..=s.len() {
                if match_at(rest, &s[n..]) {
                    return true;
                }
                if n < s.len() && s[n] == '/' {
                    return false;
                }
            }
            false
        }
        Tok::DoubleStar => (0..=s.len()).any(|n| match_at(rest, &s[n..])),
        Tok::DoubleSlash => {
            if match_at(rest, s) {
                return true;
            }
            (0..s.len()).any(|n| s[n] == '/' && match_at(rest, &s[n + 1..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&str, &str, bool)] = &[
            ("*.go", "a.go", true),
            ("*.go", "d/a.go", false),
            ("**/*.go", "a.go", true),
            ("**/*.go", "d/e/a.go", true),
            ("**", "a/b", true),
            ("a/**", "a/b/c", true),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("a/**/b", "a/x/y/c", false),
            ("?", "a", true),
            ("?", "/", false),
            ("[a-c]x", "bx", true),
            ("[^a-c]x", "bx", false),
            ("[!a-c]x", "dx", true),
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("*/*.c", "include/rootless.c", true),
            ("*/*.c", "rootless.c", false),
            ("**/output*", "x/y/output.log", true),
            ("file-*", "file-a", true),
            ("*randomfile", "other-randomfile", true),
            ("**.go", "a/b.go", true),
        ];
        for (p, s, want) in cases {
            assert_eq!(Pattern::new(p).unwrap().matches(s), *want, "{p} ~ {s}");
        }
        assert!(Pattern::new("[a").is_err());
        assert!(Pattern::new("a\\").is_err());
        assert!(has_wildcards("a/*"));
        assert!(!has_wildcards("a/\\*"));
        assert!(!has_wildcards("plain"));
    }
}
