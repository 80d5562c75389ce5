//! Syntax-tree [`Node`]s → typed [`Instruction`]s, and per-instruction variable expansion.
//!
//! ```text
//!  Node { keyword, flags, args, heredocs }
//!    └─ Instruction::from_node ──▶ Instruction (flags checked against the instruction's
//!                                   own list; unknown keyword/flag → ParseError file:line)
//!         └─ Instruction::expand(escape, env) ──▶ Instruction with $VARs replaced in the
//!            parts the builder expands (BuildKit's list: ADD COPY ENV EXPOSE FROM LABEL
//!            STOPSIGNAL USER VOLUME WORKDIR ARG, plus RUN --mount values); RUN, CMD,
//!            ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER and ONBUILD are left alone
//!            (the shell or the child build expands them).
//! ```
//!
//! [`Step`] bundles an instruction with its location, text and escape character, which is
//! what the engine walks; [`steps`] parses a whole file into them.
mod flags;
mod mount;

use std::collections::BTreeSet;
use std::time::Duration;

pub use mount::{CacheSharing, MountKind, RunMount};

use crate::parser::{
    self, parse_json_array, parse_words, Containerfile, Heredoc, Location, Node, NodeArgs,
    ParseError, ParseErrorKind,
};
use crate::shell::{ExpandError, Lexer, Lookup, Recording};
use flags::Flags;

/// A command line in either form (RUN, CMD, ENTRYPOINT, HEALTHCHECK CMD).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Shell form: run through the stage's SHELL (`/bin/sh -c` by default).
    Shell(String),
    /// Exec (JSON) form: the argument vector, run directly.
    Exec(Vec<String>),
}

/// `KEY=value` of ENV and LABEL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The name (quotes removed after expansion).
    pub key: String,
    /// The value.
    pub value: String,
}

/// One name of an ARG instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// The argument's name.
    pub name: String,
    /// Its default (`ARG name=default`), if any.
    pub default: Option<String>,
}

/// `FROM [--platform=p] image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// The base: an image reference, an earlier stage's name, or `scratch`.
    pub image: String,
    /// The stage name after `AS`, lower-cased as BuildKit does (a name with `$` in it is
    /// kept as written until [`Instruction::expand`]).
    pub alias: Option<String>,
    /// `--platform`.
    pub platform: Option<String>,
}

/// RUN's `--network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunNetwork {
    /// The build's network setting.
    Default,
    /// No network.
    None,
    /// The host's network.
    Host,
}

/// RUN's `--security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunSecurity {
    /// The default confinement.
    Sandbox,
    /// Privileged.
    Insecure,
}

/// `RUN [--mount=…]… [--network=…] [--security=…] command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The command. With heredocs in shell form it is the line as written (`cat <<EOF`);
    /// the bodies are in `heredocs`. A bare `RUN` is `Shell("")`, which buildah runs as the
    /// SHELL with no command argument (`/bin/sh -c` → "-c requires an argument", status 2).
    pub command: Command,
    /// `--mount` specifications, parsed.
    pub mounts: Vec<RunMount>,
    /// `--network`.
    pub network: Option<RunNetwork>,
    /// `--security`.
    pub security: Option<RunSecurity>,
    /// Here-documents of the command line, in order.
    pub heredocs: Vec<Heredoc>,
}

/// How a RUN with heredocs runs (BuildKit's `dispatchRun`), from [`Run::heredoc_run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeredocRun {
    /// `RUN <<EOF` whose body starts with `#!`: write `content` to an executable file
    /// (mode 0755) named `name` outside the rootfs, mount it in, and run it, no shell.
    Executable {
        /// The heredoc's name (the file name).
        name: String,
        /// The script.
        content: String,
    },
    /// Run this text with the stage's SHELL (`/bin/sh -c <text>`): the body alone for
    /// `RUN <<EOF`, else the command line followed by each body and its terminator, so the
    /// shell reads the heredocs itself.
    Shell(String),
}

impl Run {
    /// How to run this RUN's heredocs; `None` without heredocs or in exec form.
    pub fn heredoc_run(&self) -> Option<HeredocRun> {
        let Command::Shell(cmd) = &self.command else {
            return None;
        };
        let first = self.heredocs.first()?;
        if parser::parse_heredoc(cmd.trim()).is_some() {
            if first.content.starts_with("#!") {
                return Some(HeredocRun::Executable {
                    name: first.name.clone(),
                    content: first.content.clone(),
                });
            }
            return Some(HeredocRun::Shell(first.content.clone()));
        }
        let mut full = cmd.clone();
        for h in &self.heredocs {
            full.push('\n');
            full.push_str(&h.content);
            full.push_str(&h.name);
        }
        Some(HeredocRun::Shell(full))
    }
}

/// COPY and ADD (the fields an instruction does not take stay empty; the parser refuses
/// their flags on the other instruction).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopySpec {
    /// Source paths (ADD: also URLs and git repositories); heredoc sources are in `heredocs`.
    pub sources: Vec<String>,
    /// Destination.
    pub dest: String,
    /// `--from` (COPY only): a stage name, an image or a stage index.
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod` (octal or symbolic).
    pub chmod: Option<String>,
    /// `--link` (accepted; hod's layers are always independent of the destination).
    pub link: bool,
    /// `--parents` (COPY only): keep the source's parent directories.
    pub parents: bool,
    /// `--exclude` patterns (several allowed).
    pub exclude: Vec<String>,
    /// `--checksum` (ADD only): the expected digest of a URL source.
    pub checksum: Option<String>,
    /// `--keep-git-dir` (ADD only).
    pub keep_git_dir: bool,
    /// `--unpack[=bool]` (ADD only): `None` when not given (archives from the context are
    /// unpacked, remote ones are not).
    pub unpack: Option<bool>,
    /// Heredoc sources (`COPY <<a.txt /dest/`): each body becomes a file named `name`.
    pub heredocs: Vec<Heredoc>,
    /// True when the paths were written in JSON form.
    pub json: bool,
}

/// HEALTHCHECK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    /// `HEALTHCHECK [options] CMD …`.
    Cmd(HealthConfig),
}

/// The options of `HEALTHCHECK … CMD`. `None` means "inherit / runtime default".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    /// The test command (shell form → `CMD-SHELL`, exec form → `CMD`).
    pub command: Command,
    /// `--interval`.
    pub interval: Option<Duration>,
    /// `--timeout`.
    pub timeout: Option<Duration>,
    /// `--start-period`.
    pub start_period: Option<Duration>,
    /// `--start-interval`.
    pub start_interval: Option<Duration>,
    /// `--retries`.
    pub retries: Option<u32>,
}

/// `ONBUILD trigger`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnBuild {
    /// The trigger as written after `ONBUILD` (what goes into the image config).
    pub expression: String,
    /// The trigger, parsed (never FROM, MAINTAINER or ONBUILD).
    pub trigger: Box<Instruction>,
}

/// A typed Containerfile instruction.
///
/// Values are as written: ENV/LABEL/ARG values and COPY paths still hold their quotes and
/// `$VAR`s until [`Instruction::expand`] (or [`Step::expand`]) is applied, which the
/// engine always does before using an instruction, whether it contains `$` or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// FROM.
    From(From),
    /// RUN.
    Run(Run),
    /// COPY.
    Copy(CopySpec),
    /// ADD.
    Add(CopySpec),
    /// ENV: `ENV a=b c=d` or the legacy `ENV a b c` (one pair, value "b c").
    Env(Vec<KeyValue>),
    /// ARG, one or more names per line.
    Arg(Vec<ArgDecl>),
    /// LABEL pairs.
    Label(Vec<KeyValue>),
    /// EXPOSE ports (`80`, `53/udp`, ranges), as written.
    Expose(Vec<String>),
    /// USER `user[:group]`.
    User(String),
    /// WORKDIR path.
    Workdir(String),
    /// VOLUME paths (JSON or words).
    Volume(Vec<String>),
    /// STOPSIGNAL.
    StopSignal(String),
    /// HEALTHCHECK.
    Healthcheck(Healthcheck),
    /// ONBUILD.
    OnBuild(OnBuild),
    /// MAINTAINER (deprecated; sets the author).
    Maintainer(String),
    /// SHELL (JSON form only).
    Shell(Vec<String>),
    /// CMD.
    Cmd(Command),
    /// ENTRYPOINT.
    Entrypoint(Command),
}

/// An instruction with what the engine needs to report and re-expand it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The typed instruction (not yet expanded).
    pub instruction: Instruction,
    /// Where it is.
    pub location: Location,
    /// The instruction as written (continuations joined), for `STEP n/m: …` and the history.
    pub original: String,
    /// The file's escape character, needed by [`Step::expand`].
    pub escape: char,
}

/// Parses a Containerfile into typed steps: [`parser::parse`] then [`Instruction::from_node`].
pub fn steps(file: &str, src: &str) -> Result<Vec<Step>, ParseError> {
    parser::parse(file, src)?.steps()
}

impl Containerfile {
    /// The typed steps of this file, in order.
    pub fn steps(&self) -> Result<Vec<Step>, ParseError> {
        let escape = self.directives.escape;
        self.nodes
            .iter()
            .map(|n| {
                Ok(Step {
                    instruction: Instruction::from_node(n, escape)?,
                    location: n.location.clone(),
                    original: n.original.clone(),
                    escape,
                })
            })
            .collect()
    }
}

impl Step {
    /// The instruction with variables expanded from `env` (see [`Instruction::expand`]);
    /// errors carry this step's location.
    pub fn expand(&self, env: &dyn Lookup) -> Result<Instruction, ParseError> {
        self.instruction
            .expand(self.escape, env)
            .map_err(|e| self.error(e.into()))
    }

    /// [`Self::expand`], also returning the names of the variables the instruction
    /// referred to (set or not): what a layer cache keys on.
    pub fn expand_with_matches(
        &self,
        env: &dyn Lookup,
    ) -> Result<(Instruction, BTreeSet<String>), ParseError> {
        let rec = Recording::new(env);
        let out = self
            .instruction
            .expand(self.escape, &rec)
            .map_err(|e| self.error(e.into()))?;
        Ok((out, rec.names.into_inner()))
    }

    /// An error located at this step.
    pub fn error(&self, kind: ParseErrorKind) -> ParseError {
        ParseError::new(self.location.clone(), self.original.clone(), kind)
    }
}

/// Every keyword hod knows.
pub const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

impl Instruction {
    /// The keyword, upper case.
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::From(_) => "FROM",
            Instruction::Run(_) => "RUN",
            Instruction::Copy(_) => "COPY",
            Instruction::Add(_) => "ADD",
            Instruction::Env(_) => "ENV",
            Instruction::Arg(_) => "ARG",
            Instruction::Label(_) => "LABEL",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::User(_) => "USER",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::Volume(_) => "VOLUME",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::OnBuild(_) => "ONBUILD",
            Instruction::Maintainer(_) => "MAINTAINER",
            Instruction::Shell(_) => "SHELL",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
        }
    }

    /// Types a syntax-tree node. `escape` is the file's escape character.
    pub fn from_node(node: &Node, escape: char) -> Result<Instruction, ParseError> {
        let err = |kind| ParseError::new(node.location.clone(), node.original.clone(), kind);
        typed(node, escape).map_err(err)
    }

    /// This instruction with `$VAR`s replaced in the parts the builder expands, BuildKit's
    /// rules: FROM (image, `--platform`), COPY/ADD (paths, `--from`, `--chown`, `--chmod`,
    /// `--checksum`, `--exclude`, bodies of unquoted heredocs), ENV and LABEL (keys and
    /// values; quotes removed), ARG (defaults), EXPOSE, USER, WORKDIR, VOLUME, STOPSIGNAL,
    /// and RUN `--mount` values. RUN/CMD/ENTRYPOINT commands, SHELL, HEALTHCHECK,
    /// MAINTAINER and ONBUILD are returned unchanged.
    pub fn expand(&self, escape: char, env: &dyn Lookup) -> Result<Instruction, ExpandError> {
        let lx = Lexer::new(escape);
        let w = |s: &str| lx.process_word(s, env);
        let opt = |s: &Option<String>| s.as_deref().map(w).transpose();
        let all = |v: &[String]| v.iter().map(|s| w(s)).collect::<Result<Vec<_>, _>>();
        let pairs = |v: &[KeyValue]| {
            v.iter()
                .map(|kv| {
                    Ok(KeyValue {
                        key: w(&kv.key)?,
                        value: w(&kv.value)?,
                    })
                })
                .collect::<Result<Vec<_>, ExpandError>>()
        };
        Ok(match self {
            Instruction::From(f) => Instruction::From(From {
                image: w(&f.image)?,
                // `AS ${NAME}` (newer buildah expands it; a plain name is unchanged).
                alias: f
                    .alias
                    .as_deref()
                    .map(|a| w(a).map(|a| a.to_ascii_lowercase()))
                    .transpose()?,
                platform: opt(&f.platform)?,
            }),
            Instruction::Run(r) => {
                let mounts = r
                    .mounts
                    .iter()
                    .map(|m| RunMount::parse_expanded(&m.spec, &w))
                    .collect::<Result<Vec<_>, _>>()?;
                Instruction::Run(Run {
                    mounts,
                    ..r.clone()
                })
            }
            Instruction::Copy(c) => Instruction::Copy(expand_copy(c, escape, env)?),
            Instruction::Add(c) => Instruction::Add(expand_copy(c, escape, env)?),
            Instruction::Env(v) => Instruction::Env(pairs(v)?),
            Instruction::Label(v) => Instruction::Label(pairs(v)?),
            Instruction::Arg(v) => Instruction::Arg(
                v.iter()
                    .map(|a| {
                        Ok(ArgDecl {
                            name: a.name.clone(),
                            default: opt(&a.default)?,
                        })
                    })
                    .collect::<Result<_, ExpandError>>()?,
            ),
            Instruction::Expose(v) => {
                let mut ports = Vec::new();
                for p in v {
                    ports.extend(lx.process_words(p, env)?);
                }
                Instruction::Expose(ports)
            }
            Instruction::User(s) => Instruction::User(w(s)?),
            Instruction::Workdir(s) => Instruction::Workdir(w(s)?),
            Instruction::Volume(v) => Instruction::Volume(all(v)?),
            Instruction::StopSignal(s) => Instruction::StopSignal(w(s)?),
            other @ (Instruction::Healthcheck(_)
            | Instruction::OnBuild(_)
            | Instruction::Maintainer(_)
            | Instruction::Shell(_)
            | Instruction::Cmd(_)
            | Instruction::Entrypoint(_)) => other.clone(),
        })
    }
}

fn expand_copy(c: &CopySpec, escape: char, env: &dyn Lookup) -> Result<CopySpec, ExpandError> {
    let lx = Lexer::new(escape);
    let w = |s: &str| lx.process_word(s, env);
    let opt = |s: &Option<String>| s.as_deref().map(w).transpose();
    // Heredoc bodies: quotes are ordinary characters, `\` escapes whatever the file's
    // escape character (BuildKit's SkipProcessQuotes lexer).
    let body = Lexer {
        skip_quotes: true,
        ..Lexer::new('\\')
    };
    Ok(CopySpec {
        sources: c.sources.iter().map(|s| w(s)).collect::<Result<_, _>>()?,
        dest: w(&c.dest)?,
        from: opt(&c.from)?,
        chown: opt(&c.chown)?,
        chmod: opt(&c.chmod)?,
        checksum: opt(&c.checksum)?,
        exclude: c.exclude.iter().map(|s| w(s)).collect::<Result<_, _>>()?,
        heredocs: c
            .heredocs
            .iter()
            .map(|h| {
                let content = if h.expand {
                    body.process_word(&h.content, env)?
                } else {
                    h.content.clone()
                };
                Ok(Heredoc {
                    content,
                    ..h.clone()
                })
            })
            .collect::<Result<_, ExpandError>>()?,
        ..c.clone()
    })
}

fn shell_text(node: &Node) -> &str {
    match &node.args {
        NodeArgs::Shell(s) => s,
        NodeArgs::Json(_) => "",
    }
}

fn command_of(args: &NodeArgs) -> Command {
    match args {
        NodeArgs::Json(v) => Command::Exec(v.clone()),
        NodeArgs::Shell(s) => Command::Shell(s.clone()),
    }
}

/// Arguments as a list: JSON as is, shell form split on blanks.
fn list_of(args: &NodeArgs) -> Vec<String> {
    match args {
        NodeArgs::Json(v) => v.clone(),
        NodeArgs::Shell(s) => parser::split_list(s),
    }
}

fn args_err(msg: impl Into<String>) -> ParseErrorKind {
    ParseErrorKind::Arguments(msg.into())
}

fn exactly_one(node: &Node) -> Result<String, ParseErrorKind> {
    let s = shell_text(node);
    if s.is_empty() {
        return Err(args_err(format!(
            "{} requires exactly one argument",
            node.keyword
        )));
    }
    Ok(s.to_string())
}

/// ENV / LABEL pairs, both forms (BuildKit's `parseNameVal`).
fn name_vals(node: &Node, escape: char) -> Result<Vec<KeyValue>, ParseErrorKind> {
    let rest = shell_text(node);
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Err(args_err(format!(
            "{} requires at least one argument",
            node.keyword
        )));
    };
    if !first.contains('=') {
        // Legacy `KEY name value…`: the value is the rest of the line.
        let mut parts = rest.splitn(2, parser::is_list_blank);
        let key = parts.next().unwrap_or_default();
        let value = parts
            .next()
            .map(|v| v.trim_start_matches(parser::is_list_blank))
            .unwrap_or_default();
        if value.is_empty() {
            return Err(args_err(format!(
                "{} must have two arguments",
                node.keyword
            )));
        }
        return Ok(vec![KeyValue {
            key: key.to_string(),
            value: value.to_string(),
        }]);
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err(args_err(format!("{} names can not be blank", node.keyword))),
            Some((k, v)) => Ok(KeyValue {
                key: k.to_string(),
                value: v.to_string(),
            }),
            None => Err(args_err(format!(
                "syntax error - can't find = in {w:?}. Must be of the form: name=value"
            ))),
        })
        .collect()
}

fn typed(node: &Node, escape: char) -> Result<Instruction, ParseErrorKind> {
    let kw = node.keyword.as_str();
    if !KEYWORDS.contains(&kw) {
        // Named as written (`foo`, not `FOO`), as BuildKit does.
        let written = node
            .original
            .split(parser::is_list_blank)
            .next()
            .unwrap_or(kw);
        return Err(ParseErrorKind::UnknownInstruction(written.to_string()));
    }
    let mut flags = Flags::parse(kw, &node.flags)?;
    let ins = match kw {
        "FROM" => {
            let words = parser::split_list(shell_text(node));
            let alias = match words.as_slice() {
                [_] => None,
                // Any name buildah accepts (`platform-arm/v7`, `1st`, `${STAGE}`), lower-cased.
                // (a name holding `$` is lower-cased after expansion instead).
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(if name.contains('$') {
                    name.clone()
                } else {
                    name.to_ascii_lowercase()
                }),
                _ => return Err(args_err("FROM requires either one or three arguments")),
            };
            Instruction::From(From {
                image: words[0].to_string(),
                alias,
                platform: flags.string("platform"),
            })
        }
        "RUN" => {
            let mounts = flags
                .list("mount")
                .iter()
                .map(|spec| RunMount::parse(spec))
                .collect::<Result<Vec<_>, _>>()?;
            let network = match flags.string("network").as_deref() {
                None => None,
                Some("default") => Some(RunNetwork::Default),
                Some("none") => Some(RunNetwork::None),
                Some("host") => Some(RunNetwork::Host),
                Some(v) => {
                    return Err(ParseErrorKind::InvalidFlagValue {
                        flag: "network".into(),
                        value: v.into(),
                        reason: "expected default, none or host".into(),
                    })
                }
            };
            let security = match flags.string("security").as_deref() {
                None => None,
                Some("sandbox") => Some(RunSecurity::Sandbox),
                Some("insecure") => Some(RunSecurity::Insecure),
                Some(v) => {
                    return Err(ParseErrorKind::InvalidFlagValue {
                        flag: "security".into(),
                        value: v.into(),
                        reason: "expected sandbox or insecure".into(),
                    })
                }
            };
            Instruction::Run(Run {
                command: command_of(&node.args),
                mounts,
                network,
                security,
                heredocs: node.heredocs.clone(),
            })
        }
        "COPY" | "ADD" => {
            let mut words = list_of(&node.args);
            if words.len() < 2 {
                return Err(args_err(format!(
                    "{kw} requires at least two arguments, but only one was provided. \
                     Destination could not be determined"
                )));
            }
            let dest = words.pop().unwrap_or_default();
            if parser::parse_heredoc(&dest).is_some() {
                return Err(args_err(format!(
                    "{kw} cannot accept a heredoc as a destination"
                )));
            }
            let mut spec = CopySpec {
                dest,
                json: node.args.is_json(),
                ..CopySpec::default()
            };
            for w in words {
                // A `<<name` source is the heredoc of that name (BuildKit looks it up by name).
                let doc = parser::parse_heredoc(&w)
                    .and_then(|h| node.heredocs.iter().find(|d| d.name == h.name));
                match doc {
                    Some(d) => spec.heredocs.push(d.clone()),
                    None => spec.sources.push(w),
                }
            }
            spec.chown = flags.string("chown");
            spec.chmod = flags.string("chmod");
            spec.link = flags.bool("link")?;
            spec.exclude = flags.list("exclude");
            if kw == "COPY" {
                spec.from = flags.string("from");
                spec.parents = flags.bool("parents")?;
                Instruction::Copy(spec)
            } else {
                spec.checksum = flags.string("checksum");
                spec.keep_git_dir = flags.bool("keep-git-dir")?;
                spec.unpack = flags.opt_bool("unpack");
                Instruction::Add(spec)
            }
        }
        "ENV" => Instruction::Env(name_vals(node, escape)?),
        "LABEL" => Instruction::Label(name_vals(node, escape)?),
        "ARG" => {
            let words = parse_words(shell_text(node), escape);
            if words.is_empty() {
                return Err(args_err("ARG requires at least one argument"));
            }
            if words.iter().any(|w| w.starts_with('=')) {
                return Err(args_err("ARG names can not be blank"));
            }
            Instruction::Arg(
                words
                    .into_iter()
                    .map(|w| match w.split_once('=') {
                        Some((n, v)) => ArgDecl {
                            name: n.into(),
                            default: Some(v.into()),
                        },
                        None => ArgDecl {
                            name: w,
                            default: None,
                        },
                    })
                    .collect(),
            )
        }
        "EXPOSE" => {
            let ports = list_of(&node.args);
            if ports.is_empty() {
                return Err(args_err("EXPOSE requires at least one argument"));
            }
            Instruction::Expose(ports)
        }
        "USER" => Instruction::User(exactly_one(node)?),
        "WORKDIR" => Instruction::Workdir(exactly_one(node)?),
        "STOPSIGNAL" => Instruction::StopSignal(exactly_one(node)?),
        "MAINTAINER" => Instruction::Maintainer(exactly_one(node)?),
        "VOLUME" => {
            let v = list_of(&node.args);
            if v.is_empty() || v.iter().any(|s| s.trim().is_empty()) {
                return Err(args_err("VOLUME specified can not be an empty string"));
            }
            Instruction::Volume(v)
        }
        "SHELL" => match &node.args {
            NodeArgs::Json(v) if !v.is_empty() => Instruction::Shell(v.clone()),
            _ => return Err(args_err("SHELL requires the arguments to be in JSON form")),
        },
        "CMD" => Instruction::Cmd(command_of(&node.args)),
        "ENTRYPOINT" => Instruction::Entrypoint(command_of(&node.args)),
        "HEALTHCHECK" => Instruction::Healthcheck(healthcheck(node, &mut flags)?),
        "ONBUILD" => {
            let expr = shell_text(node);
            if expr.is_empty() {
                return Err(args_err("ONBUILD requires at least one argument"));
            }
            let mut inner =
                parser::parse_line(expr, node.location.clone(), escape).map_err(|e| *e.kind)?;
            inner.heredocs = node.heredocs.clone();
            match inner.keyword.as_str() {
                "ONBUILD" => {
                    return Err(args_err(
                        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                    ))
                }
                "FROM" | "MAINTAINER" => return Err(ParseErrorKind::OnBuildTrigger(inner.keyword)),
                _ => {}
            }
            Instruction::OnBuild(OnBuild {
                expression: expr.to_string(),
                trigger: Box::new(typed(&inner, escape)?),
            })
        }
        _ => return Err(ParseErrorKind::UnknownInstruction(kw.to_string())),
    };
    Ok(ins)
}

fn healthcheck(node: &Node, flags: &mut Flags) -> Result<Healthcheck, ParseErrorKind> {
    let rest = shell_text(node);
    if rest.is_empty() {
        return Err(args_err("HEALTHCHECK requires at least one argument"));
    }
    let (kind, cmd) = match rest.split_once(char::is_whitespace) {
        Some((k, c)) => (k, c.trim_start()),
        None => (rest, ""),
    };
    match kind.to_ascii_uppercase().as_str() {
        "NONE" => {
            if !cmd.is_empty() {
                return Err(args_err("HEALTHCHECK NONE takes no arguments"));
            }
            if !node.flags.is_empty() {
                return Err(args_err("HEALTHCHECK NONE takes no flags"));
            }
            Ok(Healthcheck::None)
        }
        "CMD" => {
            if cmd.is_empty() {
                return Err(args_err("Missing command after HEALTHCHECK CMD"));
            }
            let command = match parse_json_array(cmd) {
                Some(Ok(v)) => Command::Exec(v),
                Some(Err(())) => return Err(ParseErrorKind::JsonNotStringArray),
                None => Command::Shell(cmd.to_string()),
            };
            let dur = |flags: &mut Flags, name: &str| -> Result<Option<Duration>, ParseErrorKind> {
                let Some(v) = flags.string(name) else {
                    return Ok(None);
                };
                let d = parse_go_duration(&v).ok_or_else(|| ParseErrorKind::InvalidFlagValue {
                    flag: name.into(),
                    value: v.clone(),
                    reason: "not a duration".into(),
                })?;
                if !d.is_zero() && d < Duration::from_millis(1) {
                    return Err(ParseErrorKind::InvalidFlagValue {
                        flag: name.into(),
                        value: v,
                        reason: "cannot be less than 1ms".into(),
                    });
                }
                Ok(if d.is_zero() { None } else { Some(d) })
            };
            let interval = dur(flags, "interval")?;
            let timeout = dur(flags, "timeout")?;
            let start_period = dur(flags, "start-period")?;
            let start_interval = dur(flags, "start-interval")?;
            let retries = match flags.string("retries") {
                None => None,
                Some(v) => {
                    let n: i64 = v.parse().map_err(|_| ParseErrorKind::InvalidFlagValue {
                        flag: "retries".into(),
                        value: v.clone(),
                        reason: "not a number".into(),
                    })?;
                    if n < 0 {
                        return Err(args_err("--retries cannot be negative"));
                    }
                    let n = u32::try_from(n).map_err(|_| ParseErrorKind::InvalidFlagValue {
                        flag: "retries".into(),
                        value: v.clone(),
                        reason: "too large".into(),
                    })?;
                    (n > 0).then_some(n)
                }
            };
            Ok(Healthcheck::Cmd(HealthConfig {
                command,
                interval,
                timeout,
                start_period,
                start_interval,
                retries,
            }))
        }
        other => Err(args_err(format!(
            "unknown type {other:?} in HEALTHCHECK (try CMD)"
        ))),
    }
}

/// Go's `time.ParseDuration` (`1h2m3.5s`, `300ms`, `0`), non-negative only.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * scale;
    }
    if !total.is_finite() || total > 1e10 {
        return None;
    }
    Some(Duration::from_nanos((total * 1e9).round() as u64))
}

#[cfg(test)]
mod tests;
