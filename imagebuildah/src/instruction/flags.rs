//! Instruction flags: which instruction takes which `--flag`, checked as BuildKit's BFlags.
use std::collections::BTreeMap;

use crate::parser::{Flag, ParseErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagKind {
    /// `--name` or `--name=true|false`.
    Bool,
    /// `--name=value`, at most once.
    String,
    /// `--name=value`, repeatable.
    List,
}

/// The flags each instruction accepts.
fn spec(keyword: &str) -> &'static [(&'static str, FlagKind)] {
    use FlagKind::*;
    match keyword {
        "FROM" => &[("platform", String)],
        "RUN" => &[("mount", List), ("network", String), ("security", String)],
        "COPY" => &[
            ("from", String),
            ("chown", String),
            ("chmod", String),
            ("link", Bool),
            ("parents", Bool),
            ("exclude", List),
        ],
        "ADD" => &[
            ("chown", String),
            ("chmod", String),
            ("link", Bool),
            ("exclude", List),
            ("checksum", String),
            ("keep-git-dir", Bool),
            ("unpack", Bool),
        ],
        "HEALTHCHECK" => &[
            ("interval", String),
            ("timeout", String),
            ("start-period", String),
            ("start-interval", String),
            ("retries", String),
        ],
        _ => &[],
    }
}

/// The parsed flags of one instruction.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: BTreeMap<&'static str, Vec<Option<String>>>,
}

impl Flags {
    pub(crate) fn parse(keyword: &str, flags: &[Flag]) -> Result<Flags, ParseErrorKind> {
        let spec = spec(keyword);
        let mut out = Flags::default();
        for f in flags {
            let Some(&(name, kind)) = spec.iter().find(|(n, _)| *n == f.name) else {
                return Err(ParseErrorKind::UnknownFlag {
                    instruction: keyword.to_string(),
                    flag: f.name.clone(),
                });
            };
            let slot = out.values.entry(name).or_default();
            match kind {
                FlagKind::Bool => {
                    if let Some(v) = &f.value {
                        if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                            return Err(ParseErrorKind::InvalidFlagValue {
                                flag: name.into(),
                                value: v.clone(),
                                reason: "expecting boolean value".into(),
                            });
                        }
                    }
                }
                FlagKind::String | FlagKind::List => {
                    if f.value.is_none() {
                        return Err(ParseErrorKind::MissingFlagValue {
                            instruction: keyword.to_string(),
                            flag: name.into(),
                        });
                    }
                    if kind == FlagKind::String && !slot.is_empty() {
                        return Err(ParseErrorKind::DuplicateFlag(name.into()));
                    }
                }
            }
            slot.push(f.value.clone());
        }
        Ok(out)
    }

    /// A single-valued flag.
    pub(crate) fn string(&mut self, name: &str) -> Option<String> {
        self.values
            .get(name)
            .and_then(|v| v.last().cloned().flatten())
    }

    /// A repeatable flag, in order.
    pub(crate) fn list(&mut self, name: &str) -> Vec<String> {
        self.values
            .get(name)
            .map(|v| v.iter().flatten().cloned().collect())
            .unwrap_or_default()
    }

    /// A boolean flag that may be absent: `None` when not given.
    pub(crate) fn opt_bool(&mut self, name: &str) -> Option<bool> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(|v| match v {
                None => true,
                Some(v) => v.eq_ignore_ascii_case("true"),
            })
    }

    /// A boolean flag: present without value or `=true` (last one wins).
    pub(crate) fn bool(&mut self, name: &str) -> Result<bool, ParseErrorKind> {
        Ok(match self.values.get(name).and_then(|v| v.last()) {
            None => false,
            Some(None) => true,
            Some(Some(v)) => v.eq_ignore_ascii_case("true"),
        })
    }
}
