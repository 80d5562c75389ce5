//! A small Go `text/template` evaluator over `serde_json::Value`, for `--format`.
//!
//! Supported: text, `{{.Field.Sub}}` (field names also match JSON keys case- and
//! punctuation-insensitively, so `.OCIv1.Config.Env` finds `config.Env` and `.History` entries'
//! `.CreatedBy` finds `created_by`), `{{.}}`, `{{$}}`, string/number/bool literals,
//! pipelines `a | f`, functions `json`, `index`, `len`, `join`, `upper`, `lower`, `title`,
//! `print`, `println`, `printf` (`%s %d %v %q` and widths), `truncate`, `eq`, `ne`, `not`,
//! `and`, `or`, `{{range}}…{{else}}…{{end}}`, `{{if}}…{{else if}}…{{else}}…{{end}}`,
//! `{{with}}…{{end}}`, range variables (`{{range $k, $v := .Map}}{{$k}}{{end}}`), trim markers `{{-` / `-}}` and `{{/* comments */}}`.
//!
//! Values print as Go's `fmt` prints them: slices `[a b]`, maps `map[k:v]`, missing map keys
//! `<no value>`.
//!
//! Why our own and not the `gotmpl` crate: the inspected objects are JSON values whose keys
//! are JSON names while users write Go field names, and Go's formatting of slices and maps has
//! to be matched exactly; both are a few lines in a evaluator we own and awkward through a
//! general one.
use std::fmt::Write as _;

use serde_json::Value;

/// A template error (parse or execution), buildah-style lower-case text.
#[derive(Debug)]
pub struct TemplateError(String);

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

fn err<T>(msg: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(msg.into()))
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    /// Declared variables (`$i, $e :=`), the pipeline, the body, the else body.
    Range(Vec<String>, Pipeline, Vec<Node>, Vec<Node>),
    If(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
}

/// `cmd | cmd | …`, each command a list of operands.
#[derive(Debug, Clone)]
struct Pipeline(Vec<Vec<Operand>>);

#[derive(Debug, Clone)]
enum Operand {
    /// `.A.B` (empty = `.`).
    Field(Vec<String>),
    /// `$` or `$.A.B`.
    Root(Vec<String>),
    /// `$name` or `$name.A.B`.
    Var(String, Vec<String>),
    Str(String),
    Num(f64),
    Bool(bool),
    Ident(String),
    Paren(Pipeline),
    /// `(pipeline).A.B`.
    Chain(Box<Operand>, Vec<String>),
}

/// Marks a `.A.B` chain glued to a closing parenthesis in the token stream.
const CHAIN: char = '\u{1}';

/// The value being evaluated: a JSON value, or "a missing map key".
#[derive(Debug, Clone)]
enum Val {
    V(Value),
    Missing,
}

impl Template {
    /// Parse a template.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let tokens = lex(src)?;
        let mut pos = 0;
        let (nodes, end) = parse_list(&tokens, &mut pos)?;
        if let Some(e) = end {
            return err(format!("template: unexpected {{{{{e}}}}}"));
        }
        Ok(Template { nodes })
    }

    /// Execute over `data`.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        let scope = Scope {
            root: data,
            vars: Vec::new(),
        };
        exec_list(&self.nodes, data, &scope, &mut out)?;
        Ok(out)
    }
}

// ---- lexing: text and actions ----

#[derive(Debug)]
enum Tok {
    Text(String),
    Action(String),
}

fn lex(src: &str) -> Result<Vec<Tok>, TemplateError> {
    let mut toks = Vec::new();
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        let mut text = rest[..start].to_string();
        let mut inner_start = start + 2;
        if rest[inner_start..].starts_with("- ")
            || rest[inner_start..].starts_with("-\t")
            || rest[inner_start..].starts_with("-\n")
        {
            text = text.trim_end().to_string();
            inner_start += 1;
        }
        let after = &rest[inner_start..];
        let close =
            find_close(after).ok_or_else(|| TemplateError("template: unclosed action".into()))?;
        let mut inner = &after[..close];
        let mut next = &after[close + 2..];
        if inner.ends_with(" -") || inner.ends_with("\t-") || inner.ends_with("\n-") {
            inner = &inner[..inner.len() - 1];
            next = next.trim_start();
        }
        if !text.is_empty() {
            toks.push(Tok::Text(text));
        }
        let trimmed = inner.trim();
        if !(trimmed.starts_with("/*") && trimmed.ends_with("*/")) {
            toks.push(Tok::Action(trimmed.to_string()));
        }
        rest = next;
    }
    if !rest.is_empty() {
        toks.push(Tok::Text(rest.to_string()));
    }
    Ok(toks)
}

/// The `}}` closing an action, skipping quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i + 1 < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b[i + 1] == b'}' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

// ---- parsing ----

/// Parse nodes until `{{end}}` / `{{else…}}` (returned) or the end of input.
fn parse_list(toks: &[Tok], pos: &mut usize) -> Result<(Vec<Node>, Option<String>), TemplateError> {
    let mut nodes = Vec::new();
    while *pos < toks.len() {
        let tok = &toks[*pos];
        *pos += 1;
        match tok {
            Tok::Text(t) => nodes.push(Node::Text(t.clone())),
            Tok::Action(a) => {
                let (kw, rest) = split_keyword(a);
                match kw {
                    "end" => return Ok((nodes, Some("end".into()))),
                    "else" => return Ok((nodes, Some(a.clone()))),
                    "range" | "if" | "with" => nodes.push(parse_block(kw, rest, toks, pos)?),
                    _ => nodes.push(Node::Action(parse_pipeline(a)?)),
                }
            }
        }
    }
    Ok((nodes, None))
}

fn split_keyword(a: &str) -> (&str, &str) {
    let end = a.find(|c: char| c.is_whitespace()).unwrap_or(a.len());
    let kw = &a[..end];
    match kw {
        "end" | "else" | "range" | "if" | "with" => (kw, a[end..].trim()),
        _ => ("", a),
    }
}

fn parse_block(kw: &str, rest: &str, toks: &[Tok], pos: &mut usize) -> Result<Node, TemplateError> {
    let (decl, rest) = split_decl(rest);
    let pipe = parse_pipeline(rest)?;
    let (body, end) = parse_list(toks, pos)?;
    let mut else_body = Vec::new();
    match end.as_deref() {
        Some("end") => {}
        Some(e) if e.starts_with("else") => {
            let tail = e["else".len()..].trim();
            if let Some(cond) = tail.strip_prefix("if ") {
                // `else if` chains nest: the nested if consumes the shared {{end}}.
                else_body.push(parse_block("if", cond, toks, pos)?);
            } else {
                let (eb, end2) = parse_list(toks, pos)?;
                if end2.as_deref() != Some("end") {
                    return err(format!("template: missing {{{{end}}}} for {kw}"));
                }
                else_body = eb;
            }
        }
        _ => return err(format!("template: missing {{{{end}}}} for {kw}")),
    }
    Ok(match kw {
        "range" => Node::Range(decl, pipe, body, else_body),
        "if" => Node::If(pipe, body, else_body),
        _ => Node::With(pipe, body, else_body),
    })
}

/// Split a `$x :=` / `$i, $e :=` declaration off a block's pipeline: the variable names
/// (without `$`) and the rest.
fn split_decl(s: &str) -> (Vec<String>, &str) {
    match s.find(":=") {
        Some(i) if s[..i].trim_start().starts_with('$') => {
            let names = s[..i]
                .split(',')
                .map(|v| v.trim().trim_start_matches('$').to_string())
                .collect();
            (names, s[i + 2..].trim())
        }
        _ => (Vec::new(), s),
    }
}

fn parse_pipeline(src: &str) -> Result<Pipeline, TemplateError> {
    let words = tokenize_action(src)?;
    let mut cmds = vec![Vec::new()];
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        i += 1;
        if w == "|" {
            cmds.push(Vec::new());
            continue;
        }
        if let Some(chain) = w.strip_prefix(CHAIN) {
            let cmd = cmds.last_mut().expect("non-empty");
            let Some(prev) = cmd.pop() else {
                return err("template: unexpected field chain");
            };
            let path = chain
                .trim_start_matches('.')
                .split('.')
                .map(str::to_string)
                .collect();
            cmd.push(Operand::Chain(Box::new(prev), path));
            continue;
        }
        let op = if w == "(" {
            let mut depth = 1;
            let start = i;
            while i < words.len() && depth > 0 {
                if words[i] == "(" {
                    depth += 1;
                } else if words[i] == ")" {
                    depth -= 1;
                }
                i += 1;
            }
            if depth != 0 {
                return err("template: unclosed left paren");
            }
            Operand::Paren(parse_pipeline_words(&words[start..i - 1])?)
        } else {
            parse_operand(w)?
        };
        cmds.last_mut().expect("non-empty").push(op);
    }
    if cmds.iter().any(Vec::is_empty) {
        return err(format!("template: missing value in action {src:?}"));
    }
    Ok(Pipeline(cmds))
}

fn parse_pipeline_words(words: &[String]) -> Result<Pipeline, TemplateError> {
    // Re-join with a separator that tokenizes back to the same words.
    let mut src = String::new();
    for w in words {
        if let Some(chain) = w.strip_prefix(CHAIN) {
            // Glue the chain back to the parenthesis before it.
            src.pop();
            src.push_str(chain);
        } else {
            src.push_str(w);
        }
        src.push(' ');
    }
    parse_pipeline(&src)
}

fn tokenize_action(s: &str) -> Result<Vec<String>, TemplateError> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '|' || c == '(' || c == ')' {
            out.push(c.to_string());
            i += 1;
            if c == ')' && i < chars.len() && chars[i] == '.' {
                // `(pipeline).Field`: a field chain on the parenthesised value.
                let start = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !matches!(chars[i], '|' | '(' | ')')
                {
                    i += 1;
                }
                out.push(format!(
                    "{CHAIN}{}",
                    chars[start..i].iter().collect::<String>()
                ));
            }
        } else if c == '"' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            if i >= chars.len() {
                return err("template: unterminated quoted string");
            }
            i += 1;
            out.push(chars[start..i].iter().collect());
        } else if c == '`' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != '`' {
                i += 1;
            }
            if i >= chars.len() {
                return err("template: unterminated raw quoted string");
            }
            i += 1;
            out.push(chars[start..i].iter().collect());
        } else {
            let start = i;
            while i < chars.len()
                && !chars[i].is_whitespace()
                && !matches!(chars[i], '|' | '(' | ')')
            {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        }
    }
    Ok(out)
}

fn parse_operand(w: &str) -> Result<Operand, TemplateError> {
    if let Some(rest) = w.strip_prefix('.') {
        if rest.is_empty() {
            return Ok(Operand::Field(Vec::new()));
        }
        return Ok(Operand::Field(
            rest.split('.').map(str::to_string).collect(),
        ));
    }
    if let Some(rest) = w.strip_prefix('$') {
        let rest = rest.strip_prefix('.').unwrap_or(rest);
        if rest.is_empty() {
            return Ok(Operand::Root(Vec::new()));
        }
        if !w.starts_with("$.") {
            let mut parts = w[1..].split('.');
            let name = parts.next().unwrap_or_default().to_string();
            return Ok(Operand::Var(name, parts.map(str::to_string).collect()));
        }
        return Ok(Operand::Root(rest.split('.').map(str::to_string).collect()));
    }
    if w.starts_with('"') {
        return Ok(Operand::Str(unquote(&w[1..w.len() - 1])?));
    }
    if w.starts_with('`') {
        return Ok(Operand::Str(w[1..w.len() - 1].to_string()));
    }
    if w == "true" || w == "false" {
        return Ok(Operand::Bool(w == "true"));
    }
    if let Ok(n) = w.parse::<f64>() {
        return Ok(Operand::Num(n));
    }
    if w.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return Ok(Operand::Ident(w.to_string()));
    }
    err(format!("template: bad token {w:?}"))
}

fn unquote(s: &str) -> Result<String, TemplateError> {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('\'') => out.push('\''),
            Some('0') => out.push('\0'),
            other => {
                return err(format!(
                    "template: invalid escape \\{}",
                    other.map(String::from).unwrap_or_default()
                ))
            }
        }
    }
    Ok(out)
}

// ---- execution ----

/// The root data and the variables in scope.
#[derive(Debug, Clone)]
struct Scope<'a> {
    root: &'a Value,
    vars: Vec<(String, Value)>,
}

fn exec_list(
    nodes: &[Node],
    dot: &Value,
    sc: &Scope,
    out: &mut String,
) -> Result<(), TemplateError> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                let v = eval_pipeline(p, dot, sc)?;
                out.push_str(&go_string(&v));
            }
            Node::If(p, body, else_body) => {
                let v = eval_pipeline(p, dot, sc)?;
                exec_list(if truthy(&v) { body } else { else_body }, dot, sc, out)?;
            }
            Node::With(p, body, else_body) => {
                let v = eval_pipeline(p, dot, sc)?;
                match v {
                    Val::V(ref x) if truthy(&v) => exec_list(body, x, sc, out)?,
                    _ => exec_list(else_body, dot, sc, out)?,
                }
            }
            Node::Range(decl, p, body, else_body) => {
                let v = eval_pipeline(p, dot, sc)?;
                let items: Vec<(Value, Value)> = match v {
                    Val::V(Value::Array(a)) => a
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (Value::from(i), v))
                        .collect(),
                    Val::V(Value::Object(m)) => {
                        m.into_iter().map(|(k, v)| (Value::String(k), v)).collect()
                    }
                    Val::V(Value::Null) | Val::Missing => Vec::new(),
                    Val::V(Value::Number(n)) => {
                        let k = n.as_i64().unwrap_or(0).max(0);
                        (0..k).map(|i| (Value::from(i), Value::from(i))).collect()
                    }
                    Val::V(other) => {
                        return err(format!(
                            "template: range can't iterate over {}",
                            go_string(&Val::V(other))
                        ))
                    }
                };
                if items.is_empty() {
                    exec_list(else_body, dot, sc, out)?;
                }
                for (key, item) in &items {
                    let mut inner = sc.clone();
                    match decl.as_slice() {
                        [] => {}
                        [v] => inner.vars.push((v.clone(), item.clone())),
                        [k, v, ..] => {
                            inner.vars.push((k.clone(), key.clone()));
                            inner.vars.push((v.clone(), item.clone()));
                        }
                    }
                    exec_list(body, item, &inner, out)?;
                }
            }
        }
    }
    Ok(())
}

fn eval_pipeline(p: &Pipeline, dot: &Value, sc: &Scope) -> Result<Val, TemplateError> {
    let mut prev: Option<Val> = None;
    for cmd in &p.0 {
        prev = Some(eval_command(cmd, prev, dot, sc)?);
    }
    Ok(prev.unwrap_or(Val::Missing))
}

fn eval_command(
    cmd: &[Operand],
    piped: Option<Val>,
    dot: &Value,
    sc: &Scope,
) -> Result<Val, TemplateError> {
    match &cmd[0] {
        Operand::Ident(name) => {
            let mut args = Vec::new();
            for a in &cmd[1..] {
                args.push(eval_operand(a, dot, sc)?);
            }
            if let Some(p) = piped {
                args.push(p);
            }
            call(name, args)
        }
        first => {
            if cmd.len() > 1 || piped.is_some() {
                return err("template: can't give argument to non-function");
            }
            eval_operand(first, dot, sc)
        }
    }
}

fn eval_operand(op: &Operand, dot: &Value, sc: &Scope) -> Result<Val, TemplateError> {
    match op {
        Operand::Field(path) => Ok(lookup(dot, path)),
        Operand::Root(path) => Ok(lookup(sc.root, path)),
        Operand::Var(name, path) => match sc.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(lookup(v, path)),
            None => err(format!("template: undefined variable \"${name}\"")),
        },
        Operand::Str(s) => Ok(Val::V(Value::String(s.clone()))),
        Operand::Num(n) => Ok(Val::V(num_value(*n))),
        Operand::Bool(b) => Ok(Val::V(Value::Bool(*b))),
        Operand::Paren(p) => eval_pipeline(p, dot, sc),
        Operand::Chain(inner, path) => match eval_operand(inner, dot, sc)? {
            Val::V(v) => Ok(lookup(&v, path)),
            Val::Missing => Ok(Val::Missing),
        },
        Operand::Ident(name) => call(name, Vec::new()),
    }
}

fn num_value(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn lookup(v: &Value, path: &[String]) -> Val {
    let mut cur = Val::V(v.clone());
    for (i, name) in path.iter().enumerate() {
        cur = match cur {
            Val::V(Value::Object(m)) => match m.get(name) {
                Some(Value::Null) => zero_for(name).map(Val::V).unwrap_or(Val::V(Value::Null)),
                Some(x) => Val::V(x.clone()),
                None => {
                    let want = normalize(name);
                    match m.iter().find(|(k, _)| normalize(k) == want) {
                        Some((_, x)) => Val::V(x.clone()),
                        None => zero_for(name).map(Val::V).unwrap_or(Val::Missing),
                    }
                }
            },
            Val::V(Value::Null) if i + 1 < path.len() || zero_for(name).is_some() => {
                zero_for(name).map(Val::V).unwrap_or(Val::Missing)
            }
            _ => return zero_for(name).map(Val::V).unwrap_or(Val::Missing),
        };
    }
    cur
}

/// Go prints an unset struct field as its type's zero value; JSON drops it. These are the
/// fields of the inspected structures whose type is known to be a slice or a map.
fn zero_for(field: &str) -> Option<Value> {
    const SLICES: &[&str] = &[
        "env",
        "cmd",
        "entrypoint",
        "shell",
        "onbuild",
        "osfeatures",
        "history",
        "diffids",
        "names",
        "digests",
        "capabilities",
        "groupadd",
        "devicespecs",
        "test",
    ];
    const MAPS: &[&str] = &[
        "labels",
        "exposedports",
        "volumes",
        "annotations",
        "imageannotations",
    ];
    let n = normalize(field);
    if SLICES.contains(&n.as_str()) {
        Some(Value::Array(Vec::new()))
    } else if MAPS.contains(&n.as_str()) {
        Some(Value::Object(serde_json::Map::new()))
    } else {
        None
    }
}

fn truthy(v: &Val) -> bool {
    match v {
        Val::Missing => false,
        Val::V(Value::Null) => false,
        Val::V(Value::Bool(b)) => *b,
        Val::V(Value::Number(n)) => n.as_f64().unwrap_or(0.0) != 0.0,
        Val::V(Value::String(s)) => !s.is_empty(),
        Val::V(Value::Array(a)) => !a.is_empty(),
        Val::V(Value::Object(m)) => !m.is_empty(),
    }
}

fn as_value(v: Val) -> Value {
    match v {
        Val::V(x) => x,
        Val::Missing => Value::Null,
    }
}

fn call(name: &str, args: Vec<Val>) -> Result<Val, TemplateError> {
    let want = |n: usize| -> Result<(), TemplateError> {
        if args.len() != n {
            return err(format!(
                "template: wrong number of args for {name}: want {n} got {}",
                args.len()
            ));
        }
        Ok(())
    };
    let s = |v: &Val| go_string(v);
    Ok(Val::V(match name {
        "json" => {
            want(1)?;
            Value::String(serde_json::to_string(&as_value(args[0].clone())).unwrap_or_default())
        }
        "len" => {
            want(1)?;
            Value::from(match &args[0] {
                Val::V(Value::Array(a)) => a.len(),
                Val::V(Value::Object(m)) => m.len(),
                Val::V(Value::String(x)) => x.len(),
                Val::V(Value::Null) | Val::Missing => 0,
                other => return err(format!("template: len of {}", s(other))),
            })
        }
        "index" => {
            if args.is_empty() {
                return err("template: wrong number of args for index");
            }
            let mut cur = args[0].clone();
            for k in &args[1..] {
                cur = match (cur, k) {
                    // Go's `index` yields the element type's zero value for a missing
                    // key; the maps inspected are string maps (labels, annotations).
                    (Val::V(Value::Object(m)), key) => Val::V(
                        m.get(&s(key))
                            .cloned()
                            .unwrap_or(Value::String(String::new())),
                    ),
                    (Val::V(Value::Array(a)), Val::V(Value::Number(n))) => {
                        match n.as_u64().and_then(|i| a.get(i as usize)) {
                            Some(x) => Val::V(x.clone()),
                            None => return err(format!("template: index out of range: {n}")),
                        }
                    }
                    (Val::V(Value::Null) | Val::Missing, _) => Val::V(Value::String(String::new())),
                    (other, _) => {
                        return err(format!(
                            "template: can't index item of type {}",
                            type_name(&other)
                        ))
                    }
                };
            }
            return Ok(cur);
        }
        "join" => {
            want(2)?;
            let sep = s(&args[1]);
            match &args[0] {
                Val::V(Value::Array(a)) => Value::String(
                    a.iter()
                        .map(|x| go_string(&Val::V(x.clone())))
                        .collect::<Vec<_>>()
                        .join(&sep),
                ),
                other => Value::String(s(other)),
            }
        }
        "upper" => {
            want(1)?;
            Value::String(s(&args[0]).to_uppercase())
        }
        "lower" => {
            want(1)?;
            Value::String(s(&args[0]).to_lowercase())
        }
        "title" => {
            want(1)?;
            Value::String(
                s(&args[0])
                    .split(' ')
                    .map(|w| {
                        let mut c = w.chars();
                        c.next()
                            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                            .unwrap_or_default()
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
            )
        }
        "truncate" => {
            want(2)?;
            let n = as_value(args[1].clone()).as_u64().unwrap_or(0) as usize;
            Value::String(s(&args[0]).chars().take(n).collect())
        }
        "print" => Value::String(go_sprint(&args)),
        "println" => Value::String(args.iter().map(s).collect::<Vec<_>>().join(" ") + "\n"),
        "printf" => {
            if args.is_empty() {
                return err("template: wrong number of args for printf");
            }
            Value::String(sprintf(&s(&args[0]), &args[1..]))
        }
        "not" => {
            want(1)?;
            Value::Bool(!truthy(&args[0]))
        }
        "and" => {
            return Ok(args
                .iter()
                .find(|a| !truthy(a))
                .or(args.last())
                .cloned()
                .unwrap_or(Val::Missing))
        }
        "or" => {
            return Ok(args
                .iter()
                .find(|a| truthy(a))
                .or(args.last())
                .cloned()
                .unwrap_or(Val::Missing))
        }
        "eq" => {
            if args.len() < 2 {
                return err("template: wrong number of args for eq");
            }
            let first = as_value(args[0].clone());
            Value::Bool(args[1..].iter().any(|a| as_value(a.clone()) == first))
        }
        "ne" => {
            want(2)?;
            Value::Bool(as_value(args[0].clone()) != as_value(args[1].clone()))
        }
        _ => return err(format!("template: function {name:?} not defined")),
    }))
}

fn type_name(v: &Val) -> &'static str {
    match v {
        Val::Missing | Val::V(Value::Null) => "nil",
        Val::V(Value::Bool(_)) => "bool",
        Val::V(Value::Number(_)) => "number",
        Val::V(Value::String(_)) => "string",
        Val::V(Value::Array(_)) => "slice",
        Val::V(Value::Object(_)) => "map",
    }
}

/// Go's `fmt.Sprint`: spaces only between operands when neither is a string.
fn go_sprint(args: &[Val]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        let is_str = matches!(a, Val::V(Value::String(_)));
        if i > 0 && !is_str && !matches!(args[i - 1], Val::V(Value::String(_))) {
            out.push(' ');
        }
        out.push_str(&go_string(a));
    }
    out
}

fn sprintf(fmt: &str, args: &[Val]) -> String {
    let mut out = String::new();
    let mut it = fmt.chars().peekable();
    let mut ai = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = it.peek() {
            if f == '-' || f.is_ascii_digit() || f == '.' {
                flags.push(f);
                it.next();
            } else {
                break;
            }
        }
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(ai) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        ai += 1;
        let text = match verb {
            'q' => match arg {
                Val::V(x) => go_quote(x),
                Val::Missing => serde_json::to_string(&go_string(arg)).unwrap_or_default(),
            },
            _ => go_string(arg),
        };
        let left = flags.starts_with('-');
        let spec = flags.trim_start_matches('-');
        let (width, prec) = match spec.split_once('.') {
            Some((w, p)) => (w.parse::<usize>().ok(), p.parse::<usize>().ok()),
            None => (spec.parse::<usize>().ok(), None),
        };
        let mut text: String = match prec {
            Some(p) if verb == 's' => text.chars().take(p).collect(),
            _ => text,
        };
        if let Some(w) = width {
            let n = text.chars().count();
            if n < w {
                let pad = " ".repeat(w - n);
                text = if left { text + &pad } else { pad + &text };
            }
        }
        out.push_str(&text);
    }
    out
}

/// Format a value as Go's `fmt.Print` would.
fn go_string(v: &Val) -> String {
    match v {
        Val::Missing => "<no value>".to_string(),
        Val::V(x) => go_value(x, false),
    }
}

/// `%q` as Go applies it: strings quoted, slices and maps element by element
/// (`["a" "b"]`, `map["k":"v"]`).
fn go_quote(v: &Value) -> String {
    match v {
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_quote).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, x)| format!(
                    "{}:{}",
                    serde_json::to_string(k).unwrap_or_default(),
                    go_quote(x)
                ))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => go_value(other, true),
    }
}

/// The JSON fields of an image history entry (OCI `v1.History`, Docker's `V2S2History`).
const HISTORY_FIELDS: [&str; 5] = ["created", "created_by", "author", "comment", "empty_layer"];

/// Whether `m` is an image history entry: in buildah a Go struct, not a map.
fn is_history_entry(m: &serde_json::Map<String, Value>) -> bool {
    (m.contains_key("created") || m.contains_key("created_by"))
        && m.keys().all(|k| HISTORY_FIELDS.contains(&k.as_str()))
}

/// A history entry as Go's `fmt` prints the struct: `{Created CreatedBy Author Comment
/// EmptyLayer}`, the time as `time.Time.String()` (`1970-01-01 00:00:40 +0000 UTC`).
fn go_history_entry(m: &serde_json::Map<String, Value>) -> String {
    let text = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let created = match m.get("created").and_then(Value::as_str) {
        None => "<nil>".to_string(),
        Some(t) => go_time(t),
    };
    let empty = m
        .get("empty_layer")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    format!(
        "{{{created} {} {} {} {empty}}}",
        text("created_by"),
        text("author"),
        text("comment")
    )
}

/// An RFC 3339 time as Go's `time.Time.String()` (fraction trimmed, `UTC` for a zero offset).
fn go_time(t: &str) -> String {
    let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) else {
        return t.to_string();
    };
    let mut s = d.format("%Y-%m-%d %H:%M:%S").to_string();
    let nanos = d.timestamp_subsec_nanos();
    if nanos > 0 {
        s.push_str(format!(".{nanos:09}").trim_end_matches('0'));
    }
    let off = d.format("%z").to_string();
    let zone = if d.offset().local_minus_utc() == 0 {
        "UTC".to_string()
    } else {
        off.clone()
    };
    format!("{s} {off} {zone}")
}

fn go_value(v: &Value, nested: bool) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                if f.abs() >= 1e21 || (f != 0.0 && f.abs() < 1e-4) {
                    format!("{f:e}")
                } else {
                    f.to_string()
                }
            }
        }
        Value::String(s) => s.clone(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter()
                .map(|x| go_value(x, true))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Value::Object(m) if m.is_empty() && nested => "{}".to_string(),
        Value::Object(m) if is_history_entry(m) => go_history_entry(m),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, x)| format!("{k}:{}", go_value(x, true)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn history_entries_print_as_go_structs() {
        let v = serde_json::json!([{
            "created": "1970-01-01T00:00:40Z",
            "created_by": "/bin/sh -c touch /tmpfile",
            "empty_layer": true
        }, {"created": "2023-11-14T22:13:20.5+01:00", "comment": "c"}]);
        let t = Template::parse("{{.}}").unwrap();
        assert_eq!(
            t.render(&v).unwrap(),
            "[{1970-01-01 00:00:40 +0000 UTC /bin/sh -c touch /tmpfile   true} \
             {2023-11-14 22:13:20.5 +0100 +0100   c false}]"
        );
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn printf_q_quotes_elements() {
        let v = json!({"l": ["RUN a", "RUN b"], "m": {"io.x": "1", "t": "label"}, "s": "x"});
        assert_eq!(render(r#"{{printf "%q" .l}}"#, &v), r#"["RUN a" "RUN b"]"#);
        assert_eq!(
            render(r#"{{printf "%q" .m}}"#, &v),
            r#"map["io.x":"1" "t":"label"]"#
        );
        assert_eq!(render(r#"{{printf "%q" .s}}"#, &v), r#""x""#);
    }

    fn render(t: &str, v: &Value) -> String {
        Template::parse(t)
            .unwrap_or_else(|e| panic!("{t}: {e}"))
            .render(v)
            .unwrap_or_else(|e| panic!("{t}: {e}"))
    }

    #[test]
    fn table() {
        let v = json!({
            "FromImage": "docker.io/library/busybox:latest",
            "Container": "busybox-working-container",
            "OCIv1": {"architecture": "amd64", "os.version": "10", "config": {"Env": ["A=1", "B=2"], "Labels": {"x": "1", "a": "b"}, "ExposedPorts": {"80/tcp": {}}, "Cmd": null},
                      "history": [{"created_by": "one"}, {"created_by": "two", "empty_layer": true}]},
            "Num": 3, "Float": 1.5, "Flag": true, "Empty": "",
            "ImageAnnotations": {"org.opencontainers.image.base.digest": "sha256:x"}
        });
        let cases = [
            ("{{.FromImage}}", "docker.io/library/busybox:latest"),
            ("{{ .Container }}\n", "busybox-working-container\n"),
            ("{{.OCIv1.Config.Env}}", "[A=1 B=2]"),
            ("{{.OCIv1.Config.Labels}}", "map[a:b x:1]"),
            ("{{.OCIv1.Config.ExposedPorts}}", "map[80/tcp:{}]"),
            ("{{.OCIv1.Config.Entrypoint}}", "[]"),
            ("{{.OCIv1.Config.Cmd}}", "[]"),
            ("{{.OCIv1.Config.Volumes}}", "map[]"),
            ("{{.OCIv1.Architecture}}", "amd64"),
            ("{{.OCIv1.OSVersion}}", "10"),
            ("{{.Nope}}", "<no value>"),
            ("{{json .OCIv1.Config.Env}}", r#"["A=1","B=2"]"#),
            ("{{.OCIv1.Config.Env | json}}", r#"["A=1","B=2"]"#),
            (r#"{{index .OCIv1.Config.Labels "x"}}"#, "1"),
            (r#"{{index .ImageAnnotations "org.opencontainers.image.base.digest"}}"#, "sha256:x"),
            (r#"{{index .OCIv1.Config.Labels "zz"}}"#, ""),
            (r#"{{index .Nope "zz"}}"#, ""),
            ("{{.OCIv1.Config.Labels.zz}}", "<no value>"),
            ("{{index .OCIv1.Config.Env 1}}", "B=2"),
            ("{{range .OCIv1.Config.Env}}{{.}};{{end}}", "A=1;B=2;"),
            ("{{range .OCIv1.History}}{{.CreatedBy}} {{.EmptyLayer}},{{end}}", "one <no value>,two true,"),
            ("{{range .Missing}}x{{else}}none{{end}}", "none"),
            (r#"{{.Num}}{{"\t"}}{{.Float}}"#, "3\t1.5"),
            ("{{if .Flag}}yes{{else}}no{{end}}", "yes"),
            ("{{if .Empty}}yes{{else if .Num}}num{{else}}no{{end}}", "num"),
            ("{{with .OCIv1}}{{.Architecture}}{{end}}", "amd64"),
            ("{{len .OCIv1.Config.Env}}", "2"),
            (r#"{{join .OCIv1.Config.Env ","}}"#, "A=1,B=2"),
            ("{{upper .Container}}", "BUSYBOX-WORKING-CONTAINER"),
            (r#"{{printf "%-5s|%d" "ab" .Num}}"#, "ab   |3"),
            ("a {{- \" b \" -}} c", "a b c"),
            ("{{/* note */}}x", "x"),
            ("{{$.Num}}", "3"),
            ("{{range $e := .OCIv1.Config.Env}}{{.}}{{end}}", "A=1B=2"),
            (r#"{{eq .Num 3}} {{ne .Container "x"}} {{not .Flag}}"#, "true true false"),
            ("{{(index .OCIv1.History 1).CreatedBy}}", "two"),
            ("{{range $k, $v := .OCIv1.Config.Labels}}{{$k}}={{$v}};{{end}}", "a=b;x=1;"),
            ("{{range $i, $e := .OCIv1.Config.Env}}{{$i}}:{{$e}} {{end}}", "0:A=1 1:B=2 "),
            ("{{range $h := .OCIv1.History}}{{$h.CreatedBy}}{{end}}", "onetwo"),
            ("{{ (index .OCIv1.History 0).CreatedBy | upper }}", "ONE"),
            ("{{.}}", "map[Container:busybox-working-container Empty: Flag:true Float:1.5 FromImage:docker.io/library/busybox:latest ImageAnnotations:map[org.opencontainers.image.base.digest:sha256:x] Num:3 OCIv1:map[architecture:amd64 config:map[Cmd:<nil> Env:[A=1 B=2] ExposedPorts:map[80/tcp:{}] Labels:map[a:b x:1]] history:[{<nil> one   false} {<nil> two   true}] os.version:10]]"),
        ];
        for (t, want) in cases {
            assert_eq!(render(t, &v), want, "template {t}");
        }
    }

    #[test]
    fn errors() {
        for bad in [
            "{{.A",
            "{{range .A}}x",
            "{{nofunc .A}}",
            "{{if}}{{end}}",
            "{{\"unterminated}}",
            "{{$nope}}",
        ] {
            let r = Template::parse(bad).and_then(|t| t.render(&json!({"A": 1})));
            assert!(r.is_err(), "{bad} should fail");
        }
    }
}
