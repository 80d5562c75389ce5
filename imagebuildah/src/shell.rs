//! Word expansion as BuildKit's `frontend/dockerfile/shell/lex.go` does it.
//!
//! ```text
//!  word ──▶ Lexer::process_word  ──▶ one string ("a b" stays one; quotes removed)
//!       └─▶ Lexer::process_words ──▶ words (split on blanks outside quotes; a $VAR's
//!                                    value is split too, a quoted one is not)
//! ```
//!
//! Supported: `$VAR`, `${VAR}`, `${VAR:-x}`, `${VAR-x}`, `${VAR:+x}`, `${VAR+x}`,
//! `${VAR:?msg}`, `${VAR?msg}`, `${VAR#p}`, `${VAR##p}`, `${VAR%p}`, `${VAR%%p}`,
//! `${VAR/p/r}`, `${VAR//p/r}` (patterns are shell globs: `*`, `?`, `[…]`), single quotes
//! (literal), double quotes (`$` expands, the escape character escapes `"`, `$` and
//! itself), and the escape character of the Containerfile (`\` or `` ` ``) outside quotes.
//! buildah 1.28.2 (imagebuilder) knows only `:-` and `:+`; the others are BuildKit's and a
//! superset. Shell special parameters (`$$`, `$@`, `$?`) are not variables and stay as
//! written, as in buildah (BuildKit expands them to nothing).
//! Nothing here does I/O: variables come from a [`Lookup`].
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Where expansion reads variables from.
pub trait Lookup {
    /// The value of `name`, or `None` when it is not set.
    fn lookup(&self, name: &str) -> Option<String>;
}

/// A lookup where nothing is set.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEnv;

impl Lookup for NoEnv {
    fn lookup(&self, _: &str) -> Option<String> {
        None
    }
}

impl<S: std::hash::BuildHasher> Lookup for HashMap<String, String, S> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Lookup for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// `KEY=value` pairs (an image config's `Env`); the last one of a name wins.
impl Lookup for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<String> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

impl Lookup for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.as_slice().lookup(name)
    }
}

impl<L: Lookup + ?Sized> Lookup for &L {
    fn lookup(&self, name: &str) -> Option<String> {
        (**self).lookup(name)
    }
}

/// A closure as a lookup.
#[derive(Debug, Clone, Copy)]
pub struct FnLookup<F>(pub F);

impl<F: Fn(&str) -> Option<String>> Lookup for FnLookup<F> {
    fn lookup(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }
}

/// Two lookups: the first one wins (e.g. the stage's ENV over its ARGs).
#[derive(Debug, Clone, Copy)]
pub struct Chain<A, B>(pub A, pub B);

impl<A: Lookup, B: Lookup> Lookup for Chain<A, B> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.0.lookup(name).or_else(|| self.1.lookup(name))
    }
}

/// A lookup that records every name asked for (set or not).
pub(crate) struct Recording<'a> {
    inner: &'a dyn Lookup,
    pub(crate) names: RefCell<BTreeSet<String>>,
}

impl<'a> Recording<'a> {
    pub(crate) fn new(inner: &'a dyn Lookup) -> Self {
        Recording {
            inner,
            names: RefCell::new(BTreeSet::new()),
        }
    }
}

impl Lookup for Recording<'_> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.names.borrow_mut().insert(name.to_string());
        self.inner.lookup(name)
    }
}

/// Why a word could not be expanded. Messages are BuildKit's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExpandError {
    /// `${VAR` without its `}`.
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    /// `${}`, `${:x}`, `${{x}`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// `${VAR!x}`, `${VAR:=x}` and the like (the payload is the modifier as written).
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${VAR/pattern}` without the `/replacement` part.
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// `${VAR?msg}` / `${VAR:?msg}` with VAR unset (or empty for `:?`).
    #[error("{name}: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The user's message or "is not allowed to be unset/empty".
        message: String,
    },
    /// An opening quote without its closing one; the payload names it ("single-quote").
    #[error("unexpected end of statement while looking for matching {0}")]
    Unterminated(&'static str),
    /// An expanded value is not valid where it is used (`--mount=mode=$M` with M=abc).
    #[error("{what}: {reason}")]
    Invalid {
        /// What holds the value: "--mount=type=cache,mode=$M".
        what: String,
        /// Why it is refused.
        reason: String,
    },
}

/// The word expander. `Lexer::new(escape)` is what instructions use; the flags reproduce
/// BuildKit's variants used for heredoc detection and COPY heredoc bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    /// The escape character (`\` or `` ` ``).
    pub escape: char,
    /// Keep quote characters in the output (they still group words).
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Leave references to unset variables as written (`$X`, `${X:-y}`).
    pub skip_unset: bool,
    /// Treat quotes as ordinary characters (BuildKit's `SkipProcessQuotes`, used for the
    /// bodies of COPY/ADD heredocs: `'$X'` expands there).
    pub skip_quotes: bool,
}

impl Lexer {
    /// A lexer with the given escape character, quotes and escapes removed, unset → empty.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
            skip_quotes: false,
        }
    }

    /// Expands `word` into one string (blanks kept, quotes removed).
    pub fn process_word(&self, word: &str, env: &dyn Lookup) -> Result<String, ExpandError> {
        Ok(self.run(word, env)?.0)
    }

    /// Expands `word` and splits it into words (blanks outside quotes separate words).
    pub fn process_words(&self, word: &str, env: &dyn Lookup) -> Result<Vec<String>, ExpandError> {
        Ok(self.run(word, env)?.1)
    }

    /// [`Self::process_word`], also returning every variable name the word refers to
    /// (set or not): what a layer cache keys on.
    pub fn process_word_with_matches(
        &self,
        word: &str,
        env: &dyn Lookup,
    ) -> Result<(String, BTreeSet<String>), ExpandError> {
        let rec = Recording::new(env);
        let out = self.run(word, &rec)?.0;
        Ok((out, rec.names.into_inner()))
    }

    fn run(&self, word: &str, env: &dyn Lookup) -> Result<(String, Vec<String>), ExpandError> {
        let mut sw = ShellWord {
            lx: *self,
            chars: word.chars().collect(),
            pos: 0,
            env,
        };
        let (s, words, _) = sw.process_stop_on_any(&[], self.raw_escapes)?;
        Ok((s, words))
    }
}

/// Expands one word with the default options of [`Lexer::new`].
pub fn process_word(word: &str, escape: char, env: &dyn Lookup) -> Result<String, ExpandError> {
    Lexer::new(escape).process_word(word, env)
}

/// Splits and expands with the default options of [`Lexer::new`].
pub fn process_words(
    word: &str,
    escape: char,
    env: &dyn Lookup,
) -> Result<Vec<String>, ExpandError> {
    Lexer::new(escape).process_words(word, env)
}

#[derive(Default)]
struct Words {
    words: Vec<String>,
    word: String,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }
    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct ShellWord<'a> {
    lx: Lexer,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Lookup,
}

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn get(&self, name: &str) -> Option<String> {
        self.env.lookup(name)
    }

    /// Reads up to one of `stops` (consumed; returned as the third value) or EOF when
    /// `stops` is empty.
    fn process_stop_on_any(
        &mut self,
        stops: &[char],
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>, Option<char>), ExpandError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if stops.contains(&ch) {
                self.next();
                return Ok((result, words.finish(), Some(ch)));
            }
            match ch {
                '\'' if !self.lx.skip_quotes => {
                    let s = self.single_quote()?;
                    result.push_str(&s);
                    words.add_raw_string(&s);
                }
                '"' if !self.lx.skip_quotes => {
                    let s = self.double_quote()?;
                    result.push_str(&s);
                    words.add_raw_string(&s);
                }
                '$' => {
                    let s = self.dollar()?;
                    result.push_str(&s);
                    words.add_string(&s);
                }
                '<' => {
                    // `<<  EOF` stays one word (BuildKit's processPossibleHeredoc).
                    self.next();
                    let mut s = String::from("<");
                    if self.peek() == Some('<') {
                        self.next();
                        s.push('<');
                        while let Some(c) = self.peek().filter(|c| matches!(c, ' ' | '\t' | '\r')) {
                            self.next();
                            s.push(c);
                        }
                    }
                    result.push_str(&s);
                    words.add_raw_string(&s);
                }
                _ => {
                    let mut ch = ch;
                    self.next();
                    if ch == self.lx.escape {
                        if raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        match self.next() {
                            None => break,
                            Some(c) => ch = c,
                        }
                        words.add_raw_char(ch);
                    } else {
                        words.add_char(ch);
                    }
                    result.push(ch);
                }
            }
        }
        if !stops.is_empty() {
            return Err(ExpandError::MissingBrace);
        }
        Ok((result, words.finish(), None))
    }

    fn single_quote(&mut self) -> Result<String, ExpandError> {
        let mut out = String::new();
        let q = self.next();
        if self.lx.raw_quotes {
            out.extend(q);
        }
        loop {
            match self.next() {
                None => return Err(ExpandError::Unterminated("single-quote")),
                Some('\'') => {
                    if self.lx.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, ExpandError> {
        let mut out = String::new();
        let q = self.next();
        if self.lx.raw_quotes {
            out.extend(q);
        }
        loop {
            match self.peek() {
                None => return Err(ExpandError::Unterminated("double-quote")),
                Some('"') => {
                    self.next();
                    if self.lx.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    out.push_str(&v);
                }
                Some(c) => {
                    self.next();
                    if c == self.lx.escape {
                        match self.peek() {
                            None => {
                                if self.lx.raw_escapes {
                                    out.push(c);
                                }
                                continue;
                            }
                            Some(n) if n == '"' || n == '$' || n == self.lx.escape => {
                                if self.lx.raw_escapes {
                                    out.push(c);
                                }
                                self.next();
                                out.push(n);
                            }
                            Some(_) => out.push(c),
                        }
                    } else {
                        out.push(c);
                    }
                }
            }
        }
    }

    /// Reads a `}`-terminated word inside `${…}`; EOF becomes "missing '}'".
    fn until_brace(&mut self, raw_escapes: bool) -> Result<String, ExpandError> {
        match self.process_stop_on_any(&['}'], raw_escapes) {
            Ok((s, _, _)) => Ok(s),
            Err(_) if self.peek().is_none() => Err(ExpandError::MissingBrace),
            Err(e) => Err(e),
        }
    }

    fn dollar(&mut self) -> Result<String, ExpandError> {
        self.next(); // '$'
        if self.peek() != Some('{') {
            let name = self.process_name(false);
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get(&name) {
                Some(v) => v,
                None if self.lx.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next(); // '{'
        match self.peek() {
            None => return Err(ExpandError::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandError::BadSubstitution),
            _ => {}
        }
        let name = self.process_name(true);
        let Some(mut ch) = self.next() else {
            return Err(ExpandError::MissingBrace);
        };
        let skip = self.lx.skip_unset;
        let mut chs = ch.to_string();
        let mut null_is_unset = false;
        if ch == '}' {
            return Ok(match self.get(&name) {
                Some(v) => v,
                None if skip => format!("${{{name}}}"),
                None => String::new(),
            });
        }
        if ch == ':' {
            null_is_unset = true;
            let Some(m) = self.next() else {
                return Err(ExpandError::MissingBrace);
            };
            ch = m;
            chs.push(m);
        }
        match ch {
            '+' | '-' | '?' | '#' | '%' => {
                let trim = ch == '#' || ch == '%';
                if null_is_unset && trim {
                    return Err(ExpandError::UnsupportedModifier(chs));
                }
                let mut word = self.until_brace(trim)?;
                let value = self.get(&name);
                let Some(value) = value else {
                    if skip {
                        return Ok(format!("${{{name}{chs}{word}}}"));
                    }
                    return match ch {
                        '-' => Ok(word),
                        '?' => Err(ExpandError::Required {
                            name,
                            message: if word.is_empty() {
                                "is not allowed to be unset".into()
                            } else {
                                word
                            },
                        }),
                        '#' | '%' => Ok(String::new()),
                        _ => Ok(String::new()),
                    };
                };
                let null = null_is_unset && value.is_empty();
                match ch {
                    '-' => Ok(if null { word } else { value }),
                    '+' => Ok(if null { String::new() } else { word }),
                    '?' if null => Err(ExpandError::Required {
                        name,
                        message: if word.is_empty() {
                            "is not allowed to be empty".into()
                        } else {
                            word
                        },
                    }),
                    '?' => Ok(value),
                    _ => {
                        let longest = word.starts_with(ch);
                        if longest {
                            word.remove(0);
                        }
                        Ok(trim_match(
                            &value,
                            &Pattern::new(&word, self.lx.escape),
                            ch == '#',
                            longest,
                        ))
                    }
                }
            }
            '/' if !null_is_unset => {
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let pattern = match self.process_stop_on_any(&['/'], true) {
                    Ok((p, _, _)) => p,
                    Err(_) if self.peek().is_none() => return Err(ExpandError::MissingSlash),
                    Err(e) => return Err(e),
                };
                let replacement = self.until_brace(false)?;
                let Some(value) = self.get(&name) else {
                    if skip {
                        let sep = if all { "//" } else { "/" };
                        return Ok(format!("${{{name}{sep}{pattern}/{replacement}}}"));
                    }
                    return Ok(String::new());
                };
                let v: Vec<char> = value.chars().collect();
                Ok(replace(
                    &v,
                    &Pattern::new(&pattern, self.lx.escape),
                    &replacement,
                    all,
                ))
            }
            _ => Err(ExpandError::UnsupportedModifier(chs)),
        }
    }

    /// A variable name (letters, digits, `_`; or all digits). Inside `${…}` a shell special
    /// parameter (`@ * # ? - $ ! 0`) is a name too, which is never set (BuildKit); a bare
    /// `$@` stays as written (buildah).
    fn process_name(&mut self, special: bool) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if special && name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!') {
                self.next();
                return ch.to_string();
            }
            if !(ch.is_alphanumeric() || ch == '_') {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }
}

/// `${VAR#p}` (`prefix`) or `${VAR%p}`: the shortest (or `longest`) match removed.
fn trim_match(value: &str, pat: &Pattern, prefix: bool, longest: bool) -> String {
    let v: Vec<char> = value.chars().collect();
    let n = v.len();
    let cut = if prefix {
        let mut cuts: Box<dyn Iterator<Item = usize>> = if longest {
            Box::new((0..=n).rev())
        } else {
            Box::new(0..=n)
        };
        cuts.find(|&i| pat.matches(&v[..i]))
            .map(|i| v[i..].iter().collect())
    } else {
        let mut cuts: Box<dyn Iterator<Item = usize>> = if longest {
            Box::new(0..=n)
        } else {
            Box::new((0..=n).rev())
        };
        cuts.find(|&i| pat.matches(&v[i..]))
            .map(|i| v[..i].iter().collect())
    };
    cut.unwrap_or_else(|| value.to_string())
}

/// `${VAR/p/r}`: the leftmost, longest match of `p` (all of them with `//`) replaced.
fn replace(v: &[char], pat: &Pattern, replacement: &str, all: bool) -> String {
    if pat.is_empty() {
        return v.iter().collect();
    }
    let mut out = String::new();
    let mut i = 0;
    let mut replaced = false;
    while i <= v.len() {
        let found = if replaced && !all {
            None
        } else {
            (i..=v.len()).rev().find(|&e| pat.matches(&v[i..e]))
        };
        match found {
            Some(e) => {
                out.push_str(replacement);
                replaced = true;
                if e == i {
                    if let Some(c) = v.get(i) {
                        out.push(*c);
                    }
                    i += 1;
                } else {
                    i = e;
                }
            }
            None => {
                if let Some(c) = v.get(i) {
                    out.push(*c);
                }
                i += 1;
            }
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    Star,
    One,
    Class {
        negate: bool,
        items: Vec<(char, char)>,
    },
}

/// A shell glob (`*`, `?`, `[…]`, escape → literal), matched against whole strings.
#[derive(Debug, Clone)]
struct Pattern(Vec<Tok>);

impl Pattern {
    fn new(p: &str, escape: char) -> Self {
        let c: Vec<char> = p.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < c.len() {
            match c[i] {
                e if e == escape && i + 1 < c.len() => {
                    toks.push(Tok::Lit(c[i + 1]));
                    i += 2;
                    continue;
                }
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::One),
                '[' => {
                    if let Some((tok, next)) = Self::class(&c, i) {
                        toks.push(tok);
                        i = next;
                        continue;
                    }
                    toks.push(Tok::Lit('['));
                }
                ch => toks.push(Tok::Lit(ch)),
            }
            i += 1;
        }
        Pattern(toks)
    }

    /// Parses `[…]` starting at `c[start] == '['`; `None` when it is not closed.
    fn class(c: &[char], start: usize) -> Option<(Tok, usize)> {
        let mut i = start + 1;
        let negate = matches!(c.get(i), Some('!' | '^'));
        if negate {
            i += 1;
        }
        let mut items = Vec::new();
        let first = i;
        while i < c.len() {
            if c[i] == ']' && i > first {
                return Some((Tok::Class { negate, items }, i + 1));
            }
            let lo = c[i];
            if c.get(i + 1) == Some(&'-') && c.get(i + 2).is_some_and(|&h| h != ']') {
                items.push((lo, c[i + 2]));
                i += 3;
            } else {
                items.push((lo, lo));
                i += 1;
            }
        }
        None
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whole-string match, dynamic programming (no backtracking blow-up on `*a*a*a`).
    fn matches(&self, s: &[char]) -> bool {
        let mut dp = vec![false; s.len() + 1];
        dp[0] = true;
        for t in &self.0 {
            let mut next = vec![false; s.len() + 1];
            match t {
                Tok::Star => {
                    let mut any = false;
                    for j in 0..=s.len() {
                        any |= dp[j];
                        next[j] = any;
                    }
                }
                _ => {
                    for j in 1..=s.len() {
                        next[j] = dp[j - 1] && t.matches_char(s[j - 1]);
                    }
                }
            }
            dp = next;
        }
        dp[s.len()]
    }
}

impl Tok {
    fn matches_char(&self, c: char) -> bool {
        match self {
            Tok::Lit(l) => *l == c,
            Tok::One => true,
            Tok::Class { negate, items } => {
                items.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negate
            }
            Tok::Star => true,
        }
    }
}

#[cfg(test)]
mod tests;
