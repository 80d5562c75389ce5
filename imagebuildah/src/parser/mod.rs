//! Containerfile text → syntax tree, as BuildKit's `frontend/dockerfile/parser` reads it.
//!
//! ```text
//!  &str ──lines──▶ directives (# escape= / # syntax= / # check=, top of file only)
//!        │
//!        ├─ logical lines: continuations joined (escape char at end of line), comment
//!        │  lines and empty lines inside a continuation dropped, CRLF and a missing
//!        │  final newline accepted, a continuation may run into EOF
//!        │
//!        ├─ per logical line: KEYWORD [--flag[=value]]… args   ──▶ Node
//!        │  args are JSON (`["a","b"]`) for RUN CMD ENTRYPOINT SHELL COPY ADD VOLUME
//!        │  when they parse as a JSON string array, the shell-form text otherwise
//!        │
//!        └─ heredocs (`<<EOF`, `<<-EOF`, `<<"EOF"`, several per line) on RUN COPY ADD:
//!           the following lines up to each terminator become the node's Heredoc bodies
//! ```
//!
//! This layer knows no instruction semantics beyond which ones take JSON and heredocs;
//! [`crate::instruction`] turns each [`Node`] into a typed [`crate::instruction::Instruction`]
//! (unknown instructions and flags are refused there). Nothing here does I/O: the file
//! name is only used in messages.
mod error;
mod words;

use std::fmt;

pub use error::{ParseError, ParseErrorKind};
pub(crate) use words::{extract_flags, parse_words};

use crate::shell::{Lexer, NoEnv};

/// The default escape character.
pub const DEFAULT_ESCAPE: char = '\\';

/// A place in a Containerfile: the file name and the (1-based, inclusive) lines a node spans.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Location {
    /// The file name as given to the parser (used in messages only).
    pub file: String,
    /// First line of the instruction.
    pub start_line: usize,
    /// Last line, including continuation lines and heredoc bodies and terminators.
    pub end_line: usize,
}

impl Location {
    /// A location spanning `start..=end` in `file`.
    pub fn new(file: impl Into<String>, start_line: usize, end_line: usize) -> Self {
        Location {
            file: file.into(),
            start_line,
            end_line,
        }
    }
}

impl fmt::Display for Location {
    /// `file:line` (the first line).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.start_line)
    }
}

/// The parser directives found at the top of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// The escape character: `\` (default) or `` ` ``.
    pub escape: char,
    /// `# syntax=` (accepted and recorded; hod has no frontends to switch to).
    pub syntax: Option<String>,
    /// `# check=` (accepted and recorded).
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            escape: DEFAULT_ESCAPE,
            syntax: None,
            check: None,
        }
    }
}

/// A non-fatal remark of the parser (BuildKit warns about the same things).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where.
    pub location: Location,
    /// What, in lower case: "empty continuation line".
    pub message: String,
}

/// A parsed Containerfile: directives and one [`Node`] per instruction, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Containerfile {
    /// The file name given to [`parse`].
    pub file: String,
    /// The parser directives.
    pub directives: Directives,
    /// The instructions.
    pub nodes: Vec<Node>,
    /// Non-fatal remarks (empty continuation lines).
    pub warnings: Vec<Warning>,
}

/// One `--name[=value]` instruction flag, as written (quotes removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// The name without the leading `--`.
    pub name: String,
    /// The value after `=`, if there was an `=`.
    pub value: Option<String>,
}

/// An instruction's arguments after the flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeArgs {
    /// The exec (JSON array) form: only for RUN CMD ENTRYPOINT SHELL COPY ADD VOLUME
    /// (and HEALTHCHECK CMD, parsed later) and only when the text is a JSON array of strings.
    Json(Vec<String>),
    /// The shell form: the text after the flags, trimmed, with continuations joined.
    Shell(String),
}

impl NodeArgs {
    /// True for the JSON form.
    pub fn is_json(&self) -> bool {
        matches!(self, NodeArgs::Json(_))
    }
}

/// A here-document attached to a RUN, COPY or ADD instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word with quotes removed (`EOF`; for COPY the file name).
    pub name: String,
    /// The body: every line up to the terminator, each followed by `\n`; with `<<-`,
    /// leading tabs already stripped from each line.
    pub content: String,
    /// True when the delimiter was unquoted: variables in the body are expanded
    /// (by the shell for RUN, by the builder for COPY/ADD).
    pub expand: bool,
    /// `<<-`: leading tabs were stripped from the body lines and the terminator.
    pub strip_tabs: bool,
    /// The file descriptor written before `<<` (`3<<EOF`), if any.
    pub fd: Option<u32>,
}

/// One instruction as written: the syntax tree node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The instruction keyword, upper-cased (`RUN`); as written for unknown ones, upper-cased too.
    pub keyword: String,
    /// The `--flags` between the keyword and the arguments, in order.
    pub flags: Vec<Flag>,
    /// The arguments.
    pub args: NodeArgs,
    /// Here-documents, in the order their `<<` appear.
    pub heredocs: Vec<Heredoc>,
    /// The logical line as written (continuations joined, comments dropped, trimmed),
    /// without heredoc bodies.
    pub original: String,
    /// Where it is.
    pub location: Location,
}

/// Instructions whose arguments may be in JSON form.
const JSON_KEYWORDS: &[&str] = &["RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"];
/// Instructions that take heredocs.
const HEREDOC_KEYWORDS: &[&str] = &["RUN", "COPY", "ADD"];

/// Parses a Containerfile into its syntax tree. `file` is used in messages only.
pub fn parse(file: &str, src: &str) -> Result<Containerfile, ParseError> {
    Parser::new(file, src).run()
}

/// Parses one logical line (no heredoc bodies) into a node: used for ONBUILD triggers.
pub fn parse_line(line: &str, location: Location, escape: char) -> Result<Node, ParseError> {
    node_from_line(line, location, escape)
}

struct Parser<'a> {
    file: &'a str,
    lines: Vec<&'a str>,
    /// Index of the next line to read (0-based); the line number is `pos` after reading.
    pos: usize,
    directives: Directives,
    directives_done: bool,
    seen_escape: bool,
    seen_syntax: bool,
    seen_check: bool,
    warnings: Vec<Warning>,
}

impl<'a> Parser<'a> {
    fn new(file: &'a str, src: &'a str) -> Self {
        let src = src.strip_prefix('\u{feff}').unwrap_or(src);
        // Lines keep their endings (heredoc bodies are copied as written); a final
        // newline ends the last line, it does not start another one.
        let lines = src.split_inclusive('\n').collect();
        Parser {
            file,
            lines,
            pos: 0,
            directives: Directives::default(),
            directives_done: false,
            seen_escape: false,
            seen_syntax: false,
            seen_check: false,
            warnings: Vec::new(),
        }
    }

    fn loc(&self, start: usize, end: usize) -> Location {
        Location::new(self.file, start, end)
    }

    /// The next line without its ending (all trailing `\r`/`\n`, as BuildKit trims).
    fn next_line(&mut self) -> Option<&'a str> {
        self.next_raw_line()
            .map(|l| l.trim_end_matches(['\r', '\n']))
    }

    /// The next line as written, ending included.
    fn next_raw_line(&mut self) -> Option<&'a str> {
        let l = self.lines.get(self.pos).copied();
        if l.is_some() {
            self.pos += 1;
        }
        l
    }

    fn run(mut self) -> Result<Containerfile, ParseError> {
        let mut nodes = Vec::new();
        while let Some(raw) = self.next_line() {
            let line_no = self.pos;
            let trimmed = raw.trim_start_matches(is_space);
            if !self.directives_done {
                self.directive(trimmed, line_no)?;
            }
            let first = if is_comment(raw) { "" } else { trimmed };
            let start_line = line_no;
            let (head, mut end_of_line) = trim_continuation(first, self.directives.escape);
            if end_of_line && head.trim_matches(is_space).is_empty() {
                continue;
            }
            let mut line = head.to_string();
            while !end_of_line {
                let Some(raw) = self.next_line() else { break };
                if is_comment(raw) {
                    continue;
                }
                if raw.trim_matches(is_space).is_empty() {
                    self.warnings.push(Warning {
                        location: self.loc(self.pos, self.pos),
                        message: "empty continuation line".into(),
                    });
                    continue;
                }
                let (cont, end) = trim_continuation(raw, self.directives.escape);
                line.push_str(cont);
                end_of_line = end;
            }
            // An instruction (or a continuation reaching EOF) ends the directives.
            self.directives_done = true;
            if line.trim_matches(is_space).is_empty() {
                continue;
            }
            let mut node = node_from_line(
                &line,
                self.loc(start_line, self.pos),
                self.directives.escape,
            )?;
            if can_contain_heredoc(&node) && line.contains("<<") {
                for mut doc in heredocs_from_line(&line) {
                    let mut terminated = false;
                    let mut body = String::new();
                    while let Some(raw) = self.next_raw_line() {
                        let trimmed = raw.trim_end_matches(['\r', '\n']);
                        let candidate = if doc.strip_tabs {
                            trimmed.trim_start_matches('\t')
                        } else {
                            trimmed
                        };
                        if candidate == doc.name {
                            terminated = true;
                            break;
                        }
                        body.push_str(raw);
                    }
                    if !terminated {
                        return Err(ParseError::new(
                            self.loc(start_line, self.pos),
                            node.original.clone(),
                            ParseErrorKind::UnterminatedHeredoc(doc.name),
                        ));
                    }
                    doc.content = if doc.strip_tabs { chomp(&body) } else { body };
                    node.heredocs.push(doc);
                }
                node.location.end_line = self.pos;
            }
            nodes.push(node);
        }
        if nodes.is_empty() {
            let line = self.lines.len().max(1);
            return Err(ParseError::new(
                self.loc(line, line),
                "",
                ParseErrorKind::Arguments("file with no instructions".into()),
            ));
        }
        Ok(Containerfile {
            file: self.file.to_string(),
            directives: self.directives,
            nodes,
            warnings: self.warnings,
        })
    }

    /// Looks at one top-of-file line for a directive; anything else ends the directives.
    fn directive(&mut self, line: &str, line_no: usize) -> Result<(), ParseError> {
        let Some((name, value)) = directive_of(line) else {
            self.directives_done = true;
            return Ok(());
        };
        let err = |msg: String| {
            Err(ParseError::new(
                Location::new(self.file, line_no, line_no),
                line.to_string(),
                ParseErrorKind::Directive(msg),
            ))
        };
        let seen = match name.as_str() {
            "escape" => &mut self.seen_escape,
            "syntax" => &mut self.seen_syntax,
            "check" => &mut self.seen_check,
            _ => {
                self.directives_done = true;
                return Ok(());
            }
        };
        if *seen {
            return err(format!("only one {name} parser directive can be used"));
        }
        *seen = true;
        match name.as_str() {
            "escape" => match value.as_str() {
                "\\" => self.directives.escape = '\\',
                "`" => self.directives.escape = '`',
                _ => return err(format!("invalid ESCAPE '{value}'. Must be ` or \\")),
            },
            "syntax" => self.directives.syntax = Some(value),
            _ => self.directives.check = Some(value),
        }
        Ok(())
    }
}

/// Go's `unicode.IsSpace` for the ASCII range plus the Unicode spaces char::is_whitespace knows.
fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// A comment line: `#` after optional leading whitespace.
fn is_comment(line: &str) -> bool {
    line.trim_start_matches(is_space).starts_with('#')
}

/// `# name = value` (BuildKit's `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`), name lower-cased.
fn directive_of(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?.trim_start_matches(is_space);
    let name_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let (name, rest) = rest.split_at(name_len);
    let value = rest
        .trim_start_matches(is_space)
        .strip_prefix('=')?
        .trim_matches(is_space);
    if value.is_empty() {
        return None;
    }
    Some((name.to_ascii_lowercase(), value.to_string()))
}

/// Removes a trailing escape character (and blanks after it): returns the line and
/// whether the logical line ends here.
///
/// An escape preceded by another escape is not a continuation (BuildKit's
/// `([^\\])\\[ \t]*$|^\\[ \t]*$`).
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some(rest) if !rest.ends_with(escape) => (rest, false),
        _ => (line, true),
    }
}

/// Blanks that separate list arguments (Go's `[\t\v\f\r ]+` in BuildKit).
pub(crate) fn is_list_blank(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// Splits on runs of [`is_list_blank`], dropping empty words.
pub(crate) fn split_list(s: &str) -> Vec<String> {
    s.split(is_list_blank)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// `<<-`: leading tabs removed from every line of the body.
fn chomp(body: &str) -> String {
    body.split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

/// RUN, COPY and ADD in shell form, also as an ONBUILD trigger, take heredocs.
fn can_contain_heredoc(node: &Node) -> bool {
    let (keyword, json) = match (node.keyword.as_str(), &node.args) {
        ("ONBUILD", NodeArgs::Shell(rest)) => {
            let end = rest.find(is_list_blank).unwrap_or(rest.len());
            let kw = rest[..end].to_ascii_uppercase();
            let (args, _) = extract_flags(&rest[end..], DEFAULT_ESCAPE);
            let json = matches!(parse_json_array(args.trim()), Some(Ok(_)));
            (kw, json)
        }
        (kw, args) => (kw.to_string(), args.is_json()),
    };
    HEREDOC_KEYWORDS.contains(&keyword.as_str()) && !json
}

/// Splits a logical line into a node (keyword, flags, arguments).
fn node_from_line(line: &str, location: Location, escape: char) -> Result<Node, ParseError> {
    let trimmed = line.trim_matches(is_space);
    let (keyword, rest) = match trimmed.find(is_list_blank) {
        Some(i) => (&trimmed[..i], &trimmed[i..]),
        None => (trimmed, ""),
    };
    let keyword = keyword.to_ascii_uppercase();
    let (rest, flags) = extract_flags(rest, escape);
    let rest = rest.trim_matches(is_space);
    let flags = flags
        .into_iter()
        .map(|f| {
            let f = f.strip_prefix("--").unwrap_or(&f).to_string();
            match f.split_once('=') {
                Some((n, v)) => Flag {
                    name: n.to_string(),
                    value: Some(v.to_string()),
                },
                None => Flag {
                    name: f,
                    value: None,
                },
            }
        })
        .collect();
    let args = if JSON_KEYWORDS.contains(&keyword.as_str()) {
        match parse_json_array(rest) {
            Some(Ok(v)) => NodeArgs::Json(v),
            Some(Err(())) => {
                return Err(ParseError::new(
                    location,
                    trimmed,
                    ParseErrorKind::JsonNotStringArray,
                ))
            }
            None => NodeArgs::Shell(rest.to_string()),
        }
    } else {
        NodeArgs::Shell(rest.to_string())
    };
    Ok(Node {
        keyword,
        flags,
        args,
        heredocs: Vec::new(),
        original: trimmed.to_string(),
        location,
    })
}

/// `Some(Ok(list))` for a JSON array of strings, `Some(Err)` for a JSON array holding
/// anything else, `None` when the text is not a JSON array at all (→ shell form).
pub(crate) fn parse_json_array(s: &str) -> Option<Result<Vec<String>, ()>> {
    if !s.starts_with('[') {
        return None;
    }
    let v: Vec<serde_json::Value> = serde_json::from_str(s).ok()?;
    Some(
        v.into_iter()
            .map(|e| match e {
                serde_json::Value::String(s) => Ok(s),
                _ => Err(()),
            })
            .collect(),
    )
}

/// The heredocs a line opens, in order (BuildKit's `heredocsFromLine`).
fn heredocs_from_line(line: &str) -> Vec<Heredoc> {
    let lexer = Lexer {
        raw_quotes: true,
        raw_escapes: true,
        skip_unset: true,
        ..Lexer::new(DEFAULT_ESCAPE)
    };
    let Ok(words) = lexer.process_words(line, &NoEnv) else {
        return Vec::new();
    };
    words.iter().filter_map(|w| parse_heredoc(w)).collect()
}

/// `[n]<<[-]WORD` → a heredoc header (content empty), BuildKit's `ParseHeredoc`.
pub(crate) fn parse_heredoc(word: &str) -> Option<Heredoc> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let rest = word[digits..].strip_prefix("<<")?;
    let (strip_tabs, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches(is_space);
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let fd = if digits > 0 {
        word[..digits].parse().ok()
    } else {
        None
    };
    let cooked = Lexer {
        skip_unset: true,
        ..Lexer::new(DEFAULT_ESCAPE)
    };
    let words = cooked.process_words(rest, &NoEnv).ok()?;
    if words.len() != 1 {
        return None;
    }
    let raw = Lexer {
        raw_quotes: true,
        ..cooked
    };
    let raw_words = raw.process_words(rest, &NoEnv).ok()?;
    if raw_words.len() != 1 {
        return None;
    }
    let quotes = |s: &str| s.matches(['\'', '"']).count();
    let expand = quotes(&words[0]) == quotes(&raw_words[0]);
    Some(Heredoc {
        name: words[0].clone(),
        content: String::new(),
        expand,
        strip_tabs,
        fd,
    })
}

impl Containerfile {
    /// A stable, readable dump: one S-expression per node (used by the golden tests).
    pub fn dump(&self) -> String {
        let mut out = String::new();
        if self.directives != Directives::default() {
            let d = &self.directives;
            out.push_str(&format!(
                "(directives escape={} syntax={} check={})\n",
                quote(&d.escape.to_string()),
                d.syntax.as_deref().map_or("-".into(), quote),
                d.check.as_deref().map_or("-".into(), quote),
            ));
        }
        for n in &self.nodes {
            out.push_str(&n.dump());
            out.push('\n');
        }
        for w in &self.warnings {
            out.push_str(&format!(
                "(warning {} {})\n",
                w.location.start_line,
                quote(&w.message)
            ));
        }
        out
    }
}

impl Node {
    /// `L3-5 (run (flags "mount=type=cache,target=/x") (shell "make") (heredoc …))`.
    pub fn dump(&self) -> String {
        let mut s = format!(
            "L{}-{} ({}",
            self.location.start_line,
            self.location.end_line,
            self.keyword.to_ascii_lowercase()
        );
        if !self.flags.is_empty() {
            s.push_str(" (flags");
            for f in &self.flags {
                match &f.value {
                    Some(v) => s.push_str(&format!(" {}", quote(&format!("{}={v}", f.name)))),
                    None => s.push_str(&format!(" {}", quote(&f.name))),
                }
            }
            s.push(')');
        }
        match &self.args {
            NodeArgs::Json(v) => {
                s.push_str(" (json");
                for a in v {
                    s.push(' ');
                    s.push_str(&quote(a));
                }
                s.push(')');
            }
            NodeArgs::Shell(t) => s.push_str(&format!(" (shell {})", quote(t))),
        }
        for h in &self.heredocs {
            s.push_str(&format!(
                " (heredoc {} expand={} strip_tabs={} fd={} {})",
                quote(&h.name),
                h.expand,
                h.strip_tabs,
                h.fd.map_or("-".into(), |f| f.to_string()),
                quote(&h.content)
            ));
        }
        s.push(')');
        s
    }
}

/// Rust-escaped double-quoted string: one line whatever the content.
fn quote(s: &str) -> String {
    format!("{s:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Heredoc headers and bodies, one instruction per row (cases after BuildKit's
    /// `TestParseExtractsHeredoc`): (name, body, expand, strip_tabs, fd) per heredoc.
    #[test]
    fn heredoc_extraction() {
        type Doc = (&'static str, &'static str, bool, bool, Option<u32>);
        let src = "FROM alpine\nUSER <<INVALID\nRUN <<EMPTY\nEMPTY\nRUN 3<<EMPTY2\nEMPTY2\n\
RUN \"<<NOHEREDOC\"\nRUN <<INDENT\n\tfoo\n\tbar\nINDENT\nRUN <<-UNINDENT\n\tbaz\n\tquux\n\tUNINDENT\n\
RUN <<-'NOEXPAND'\n\tdon't expand $NAME\nNOEXPAND\nRUN <<COMMENT\n# internal comment\necho x # trailing\nCOMMENT\n\
RUN --mount=type=cache,target=/foo <<MOUNT\necho hello\nMOUNT\nCOPY <<X <<Y /dest\nY\nX\nX\nY\n\
RUN <<eo'f'\necho foo\neof\nRUN <<eo\\'f\necho foo\neo'f\nRUN <<'e'o\\'f\necho foo\neo'f\n\
RUN <<'one two'\necho bar\none two\nRUN <<$EOF\n$EOF\nRUN <<  EOF\nEOF\nRUN <<  EOF  > foo\nEOF\n";
        let want: Vec<Vec<Doc>> = vec![
            vec![],
            vec![],
            vec![("EMPTY", "", true, false, None)],
            vec![("EMPTY2", "", true, false, Some(3))],
            vec![],
            vec![("INDENT", "\tfoo\n\tbar\n", true, false, None)],
            vec![("UNINDENT", "baz\nquux\n", true, true, None)],
            vec![("NOEXPAND", "don't expand $NAME\n", false, true, None)],
            vec![(
                "COMMENT",
                "# internal comment\necho x # trailing\n",
                true,
                false,
                None,
            )],
            vec![("MOUNT", "echo hello\n", true, false, None)],
            vec![
                ("X", "Y\n", true, false, None),
                ("Y", "X\n", true, false, None),
            ],
            vec![("eof", "echo foo\n", false, false, None)],
            vec![("eo'f", "echo foo\n", true, false, None)],
            vec![("eo'f", "echo foo\n", false, false, None)],
            vec![("one two", "echo bar\n", false, false, None)],
            vec![("$EOF", "", true, false, None)],
            vec![("EOF", "", true, false, None)],
            vec![("EOF", "", true, false, None)],
        ];
        let file = parse("Containerfile", src).unwrap();
        assert_eq!(file.nodes.len(), want.len());
        for (node, want) in file.nodes.iter().zip(want) {
            let got: Vec<Doc> = node
                .heredocs
                .iter()
                .map(|h| {
                    let name: &'static str = Box::leak(h.name.clone().into_boxed_str());
                    let body: &'static str = Box::leak(h.content.clone().into_boxed_str());
                    (name, body, h.expand, h.strip_tabs, h.fd)
                })
                .collect();
            assert_eq!(got, want, "{}", node.original);
        }
    }

    #[test]
    fn continuation_rule() {
        for (line, want) in [
            ("a \\", ("a ", false)),
            ("a \\  \t", ("a ", false)),
            ("\\", ("", false)),
            ("a \\\\", ("a \\\\", true)),
            ("a", ("a", true)),
            ("a \\ b", ("a \\ b", true)),
        ] {
            assert_eq!(trim_continuation(line, '\\'), want, "{line:?}");
        }
        assert_eq!(trim_continuation("a `", '`'), ("a ", false));
        assert_eq!(trim_continuation("a \\", '`'), ("a \\", true));
    }

    #[test]
    fn directives() {
        assert_eq!(
            directive_of("# escape=`"),
            Some(("escape".into(), "`".into()))
        );
        assert_eq!(
            directive_of("#SYNTAX = docker/dockerfile:1 "),
            Some(("syntax".into(), "docker/dockerfile:1".into()))
        );
        assert_eq!(directive_of("# escape="), None);
        assert_eq!(directive_of("# 1escape=x"), None);
        assert_eq!(directive_of("# just a comment"), None);
    }
}
