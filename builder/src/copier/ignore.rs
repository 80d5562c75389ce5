//! `.containerignore` / `.dockerignore` and `--exclude` matching with moby patternmatcher
//! semantics: patterns are cleaned paths relative to the context, `!` makes an exception,
//! the last matching pattern wins, and a pattern also matches everything under a directory
//! it matches (`src` excludes `src/a/b`).
use std::path::{Path, PathBuf};

use super::pattern::{BadPattern, Pattern};
use crate::error::{Error, IoResultExt, Result};
use crate::rootfs::Root;

/// Largest ignore file read from a context.
const MAX_IGNORE_FILE: u64 = 1 << 20;

#[derive(Debug, Clone)]
struct Rule {
    pat: Pattern,
    exception: bool,
    ncomp: usize,
}

/// A compiled list of exclude patterns.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    rules: Vec<Rule>,
}

/// Lexically clean a slash path like Go's `filepath.Clean`.
pub(crate) fn clean(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !abs {
                    out.push("..");
                }
            }
            c => out.push(c),
        }
    }
    let j = out.join("/");
    match (abs, j.is_empty()) {
        (true, _) => format!("/{j}"),
        (false, true) => ".".to_string(),
        (false, false) => j,
    }
}

impl Matcher {
    /// Compile `patterns` (blank ones are skipped).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Matcher> {
        let mut rules = Vec::new();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let (exception, body) = match p.strip_prefix('!') {
                Some(b) => (true, b.trim()),
                None => (false, p),
            };
            if body.is_empty() {
                return Err(Error::invalid(format!("illegal exclusion pattern: {p:?}")));
            }
            let mut body = clean(body);
            if body.len() > 1 && body.starts_with('/') {
                body = body.trim_start_matches('/').to_string();
            }
            let pat = Pattern::new(&body).map_err(|BadPattern(p)| {
                Error::invalid(format!("syntax error in pattern {p:?}"))
            })?;
            let ncomp = body.split('/').count();
            rules.push(Rule {
                pat,
                exception,
                ncomp,
            });
        }
        Ok(Matcher { rules })
    }

    /// Whether there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether any pattern is an exception (`!pattern`).
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|r| r.exception)
    }

    /// Whether `rel` (a slash path relative to the context) is excluded.
    pub fn excluded(&self, rel: &str) -> bool {
        let rel = clean(rel.trim_start_matches('/'));
        if rel == "." {
            return false;
        }
        let parent: Vec<&str> = match rel.rfind('/') {
            Some(i) => rel[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for r in &self.rules {
            if r.exception != matched {
                continue;
            }
            let mut hit = r.pat.matches(&rel);
            if !hit && !parent.is_empty() && r.ncomp <= parent.len() {
                hit = r.pat.matches(&parent[..r.ncomp].join("/"));
            }
            if hit {
                matched = !r.exception;
            }
        }
        matched
    }

    /// Whether an excluded directory `rel` must still be descended into because an
    /// exception could re-include something under it.
    ///
    /// buildah's copier descends only when an exception's text (plus `/`) starts with the
    /// directory's path, taken literally: `!dir/keep` keeps `dir` open, but `!*/keep` does
    /// not, so an excluded directory is dropped whole unless an exception names it.
    pub fn may_include_under(&self, rel: &str) -> bool {
        let path = clean(rel.trim_matches('/'));
        self.rules.iter().filter(|r| r.exception).any(|r| {
            let spec = format!("{}/", r.pat.as_str().trim_matches('/'));
            spec.starts_with(&path)
        })
    }
}

/// Parse an ignore file: one pattern a line, `#` comments, blank lines skipped.
pub fn parse_ignore_file(data: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(data)
        .lines()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The patterns of a context: `ignore_file` if given (a path the user chose), else the
/// context's `.containerignore`, else its `.dockerignore`. The context's own files are read
/// inside the context (a link pointing out of it resolves inside it, so outside files are
/// never read) and capped at 1 MiB. Returns the patterns and the file they came from.
pub fn context_patterns(
    context: &Path,
    ignore_file: Option<&Path>,
) -> Result<(Vec<String>, Option<PathBuf>)> {
    if let Some(f) = ignore_file {
        let data = std::fs::read(f).at("reading ignore file", f)?;
        return Ok((parse_ignore_file(&data), Some(f.to_path_buf())));
    }
    let root = Root::open(context).at("opening context directory", context)?;
    for name in [".containerignore", ".dockerignore"] {
        let p = context.join(name);
        if let Some(data) = root
            .read_file(Path::new(name), MAX_IGNORE_FILE)
            .at("reading", &p)?
        {
            return Ok((parse_ignore_file(&data), Some(p)));
        }
    }
    Ok((Vec::new(), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moby_cases() {
        // (patterns, path, excluded) — after moby patternmatcher's TestMatches and buildah's docs.
        let cases: &[(&[&str], &str, bool)] = &[
            (&["*.go"], "a.go", true),
            (&["*.go"], "d/a.go", false),
            (&["**/*.go"], "d/a.go", true),
            (&["src"], "src", true),
            (&["src"], "src/a/b", true),
            (&["src"], "xsrc", false),
            (&["/src"], "src/a", true),
            (&["./src/"], "src/a", true),
            (&["*/*.c"], "include/rootless.c", true),
            (&["*/*.c"], "rootless.c", false),
            (&["**/output*"], "output", true),
            (&["**/output*"], "a/b/output.txt", true),
            (&["*.doc", "!Help.doc"], "Help.doc", false),
            (&["*.doc", "!Help.doc"], "other.doc", true),
            (&["*.doc", "!Help.doc", "Help*"], "Help.doc", true),
            (&["dir", "!dir/keep"], "dir/keep", false),
            (&["dir", "!dir/keep"], "dir/drop", true),
            (&["dir/*", "!dir/keep"], "dir/keep/x", false),
            (&["**"], "anything/at/all", true),
            (&["**", "!*.md"], "README.md", false),
            (&["a/**/b"], "a/b", true),
            (&["a/**/b"], "a/x/y/b", true),
            // moby's parent check compares as many components as the pattern has: the
            // walk never gets here anyway, as it skips the excluded `a/x/y/b`
            (&["a/**/b"], "a/x/y/b/c", false),
            (&["#notacomment"], "#notacomment", true),
            (&["  spaced  "], "spaced", true),
            (&["a?c"], "abc", true),
            (&["a?c"], "a/c", false),
            (&["[a-c]*"], "bob", true),
            (&["docs/../secret"], "secret", true),
            (&[], "x", false),
        ];
        for (pats, path, want) in cases {
            let m = Matcher::new(pats).unwrap();
            assert_eq!(m.excluded(path), *want, "{pats:?} vs {path}");
        }
        assert!(Matcher::new(&["!"]).is_err());
        assert!(Matcher::new(&["[z"]).is_err());
        let m = Matcher::new(&["dir", "!dir/keep"]).unwrap();
        assert!(m.may_include_under("dir"));
        assert!(!m.may_include_under("other"));
        assert!(!Matcher::new(&["dir"]).unwrap().may_include_under("dir"));
        // buildah's tests/bud/dockerignore: a wildcard exception does not reopen an
        // excluded directory; only one that spells the directory out does.
        let m = Matcher::new(&["*", "test*", "!test2*", "subdir", "!*/sub1*"]).unwrap();
        assert!(m.excluded("subdir"));
        assert!(!m.may_include_under("subdir"));
        assert!(!m.excluded("test2.txt"));
        let m = Matcher::new(&["a", "!a/b/c"]).unwrap();
        assert!(m.may_include_under("a") && m.may_include_under("a/b"));
        assert!(!m.may_include_under("a/x"));
    }

    #[test]
    fn ignore_file_parsing_and_context() {
        assert_eq!(
            parse_ignore_file(b"# c\n*.go\n\n  .ignore \n!keep\n"),
            vec!["*.go", ".ignore", "!keep"]
        );
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        std::fs::create_dir(&ctx).unwrap();
        // .containerignore wins over .dockerignore
        std::fs::write(ctx.join(".dockerignore"), "b\n").unwrap();
        std::fs::write(ctx.join(".containerignore"), "a\n").unwrap();
        let (p, f) = context_patterns(&ctx, None).unwrap();
        assert_eq!(p, vec!["a"]);
        assert_eq!(f.unwrap(), ctx.join(".containerignore"));
        // a link out of the context is never read
        let secret = t.path().join("secret");
        std::fs::write(&secret, "SECRET\n").unwrap();
        std::fs::remove_file(ctx.join(".containerignore")).unwrap();
        std::fs::remove_file(ctx.join(".dockerignore")).unwrap();
        std::os::unix::fs::symlink(&secret, ctx.join(".containerignore")).unwrap();
        std::os::unix::fs::symlink("../secret", ctx.join(".dockerignore")).unwrap();
        let (p, f) = context_patterns(&ctx, None).unwrap();
        assert!(p.is_empty() && f.is_none(), "{p:?}");
    }

    #[test]
    fn clean_table() {
        for (i, o) in [
            ("a/../b", "b"),
            ("/../x", "/x"),
            ("./a/", "a"),
            ("..", ".."),
            ("", "."),
            ("a//b/.", "a/b"),
        ] {
            assert_eq!(clean(i), o);
        }
    }
}
