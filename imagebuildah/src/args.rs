//! ARG scoping as buildah/BuildKit apply it.
//!
//! ```text
//!  --build-arg / --build-arg-file ─▶ BuildArgs (name → value)
//!  Args::global(build_args, predefined)   scope of the lines before the first FROM:
//!      ARG a=1   → a = build-arg a, else default "1" (the default expanded by the engine)
//!      platform args (TARGETPLATFORM …) are visible here without ARG
//!  Args::stage()                          a fresh scope per stage:
//!      ARG a     → inherits the global a's value (build-arg or global default)
//!      ARG TARGETARCH → the predefined value
//!  proxy args (HTTP_PROXY …) reach RUN's environment without ARG (run_env), but are not
//!  visible to expansion and stay out of the history unless declared.
//! ```
//!
//! `Args` is a [`Lookup`], so it feeds [`crate::instruction::Step::expand`] directly
//! (chain the stage's ENV in front with [`crate::shell::Chain`]).
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use crate::shell::Lookup;

/// The platform arguments every build predefines.
pub const PLATFORM_ARGS: &[&str] = &[
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
];

/// Proxy arguments usable with `--build-arg` without an ARG instruction.
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// `--build-arg` values (later ones win), as buildah collects them.
pub type BuildArgs = BTreeMap<String, String>;

/// Adds one `--build-arg` (`KEY=VALUE`, or `KEY` to take the value from `environ`; a
/// `KEY` not in `environ` removes an earlier value), as buildah's `readBuildArg`.
pub fn add_build_arg(args: &mut BuildArgs, arg: &str, environ: &dyn Lookup) {
    match arg.split_once('=') {
        Some((k, v)) => {
            args.insert(k.to_string(), v.to_string());
        }
        None => match environ.lookup(arg) {
            Some(v) => {
                args.insert(arg.to_string(), v);
            }
            None => {
                args.remove(arg);
            }
        },
    }
}

/// Adds the lines of a `--build-arg-file` (`KEY=VALUE` per line; empty lines and lines
/// starting with `#` skipped), as buildah's `readBuildArgFile`.
pub fn add_build_arg_file(args: &mut BuildArgs, content: &str, environ: &dyn Lookup) {
    for line in content.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        add_build_arg(args, line, environ);
    }
}

/// One ARG scope (the global one or a stage's), sharing the build's `--build-arg`
/// values and the record of which ones were consumed.
#[derive(Debug, Clone)]
pub struct Args {
    build_args: Arc<BuildArgs>,
    predefined: Arc<BTreeMap<String, String>>,
    /// The global scope's values (what `ARG x` without default inherits in a stage).
    globals: Arc<BTreeMap<String, Option<String>>>,
    /// Names declared in this scope and their effective values (None: declared, unset).
    declared: BTreeMap<String, Option<String>>,
    /// Order of declaration.
    order: Vec<String>,
    is_global: bool,
    consumed: Arc<Mutex<BTreeSet<String>>>,
}

impl Args {
    /// The global scope (before the first FROM). `predefined` holds the platform args'
    /// values (`TARGETARCH=amd64` …).
    pub fn global(build_args: BuildArgs, predefined: BTreeMap<String, String>) -> Args {
        Args {
            build_args: Arc::new(build_args),
            predefined: Arc::new(predefined),
            globals: Arc::new(BTreeMap::new()),
            declared: BTreeMap::new(),
            order: Vec::new(),
            is_global: true,
            consumed: Arc::new(Mutex::new(BTreeSet::new())),
        }
    }

    /// A fresh stage scope that inherits this (global) scope's values for `ARG name`.
    pub fn stage(&self) -> Args {
        let mut globals = (*self.globals).clone();
        globals.extend(self.declared.iter().map(|(k, v)| (k.clone(), v.clone())));
        Args {
            build_args: self.build_args.clone(),
            predefined: self.predefined.clone(),
            globals: Arc::new(globals),
            declared: BTreeMap::new(),
            order: Vec::new(),
            is_global: false,
            consumed: self.consumed.clone(),
        }
    }

    /// Handles `ARG name[=default]`; `default` must already be expanded (expand the
    /// instruction with this scope first). Returns the effective value.
    pub fn declare(&mut self, name: &str, default: Option<String>) -> Option<String> {
        let value = if let Some(v) = self.build_args.get(name) {
            self.consumed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.to_string());
            Some(v.clone())
        } else if default.is_some() {
            default
        } else if let Some(v) = self.globals.get(name) {
            v.clone()
        } else {
            self.predefined.get(name).cloned()
        };
        if !self.declared.contains_key(name) {
            self.order.push(name.to_string());
        }
        self.declared.insert(name.to_string(), value.clone());
        value
    }

    /// The value `name` expands to in this scope (declared args; platform args in the
    /// global scope without declaration).
    pub fn value(&self, name: &str) -> Option<String> {
        match self.declared.get(name) {
            Some(v) => v.clone(),
            None if self.is_global => self.predefined.get(name).cloned(),
            None => None,
        }
    }

    /// True when `name` was declared in this scope.
    pub fn is_declared(&self, name: &str) -> bool {
        self.declared.contains_key(name)
    }

    /// The declared args with a value, in declaration order: the part of RUN's
    /// environment (and of the layer-cache key) that comes from ARG.
    pub fn declared(&self) -> Vec<(String, String)> {
        self.order
            .iter()
            .filter_map(|n| {
                self.declared
                    .get(n)
                    .cloned()
                    .flatten()
                    .map(|v| (n.clone(), v))
            })
            .collect()
    }

    /// RUN's ARG-derived environment: [`Self::declared`] plus proxy args given with
    /// `--build-arg` (never recorded in the history).
    pub fn run_env(&self) -> Vec<(String, String)> {
        let mut env = self.declared();
        for p in PROXY_ARGS {
            if let (false, Some(v)) = (self.is_declared(p), self.build_args.get(*p)) {
                self.consumed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(p.to_string());
                env.push((p.to_string(), v.clone()));
            }
        }
        env
    }

    /// `--build-arg` names no ARG of the build consumed (buildah warns
    /// "one or more build args were not consumed"); proxy args never count.
    pub fn unconsumed(&self) -> Vec<String> {
        let consumed = self.consumed.lock().unwrap_or_else(|e| e.into_inner());
        self.build_args
            .keys()
            .filter(|k| !consumed.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
            .cloned()
            .collect()
    }
}

impl Lookup for Args {
    fn lookup(&self, name: &str) -> Option<String> {
        self.value(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::NoEnv;

    fn build_args(pairs: &[(&str, &str)]) -> BuildArgs {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn scopes() {
        let pre = build_args(&[("TARGETARCH", "amd64")]);
        let mut g = Args::global(build_args(&[("A", "cli"), ("UNUSED", "x")]), pre);
        assert_eq!(g.value("TARGETARCH").as_deref(), Some("amd64"));
        assert_eq!(g.declare("A", Some("def".into())).as_deref(), Some("cli"));
        assert_eq!(g.declare("B", Some("gdef".into())).as_deref(), Some("gdef"));
        let mut s = g.stage();
        assert_eq!(s.value("A"), None, "global args are not visible in a stage");
        assert_eq!(s.value("TARGETARCH"), None);
        assert_eq!(s.declare("B", None).as_deref(), Some("gdef"));
        assert_eq!(s.declare("TARGETARCH", None).as_deref(), Some("amd64"));
        assert_eq!(s.declare("C", None), None);
        assert!(s.is_declared("C"));
        assert_eq!(
            s.declared(),
            vec![
                ("B".into(), "gdef".into()),
                ("TARGETARCH".into(), "amd64".into())
            ]
        );
        assert_eq!(g.unconsumed(), vec!["UNUSED".to_string()]);
    }

    #[test]
    fn proxy_args_reach_run_only() {
        let g = Args::global(build_args(&[("HTTP_PROXY", "http://p")]), BTreeMap::new());
        let s = g.stage();
        assert_eq!(s.value("HTTP_PROXY"), None);
        assert_eq!(s.run_env(), vec![("HTTP_PROXY".into(), "http://p".into())]);
        assert!(g.unconsumed().is_empty());
    }

    #[test]
    fn build_arg_parsing() {
        let env = build_args(&[("FROM_ENV", "e")]);
        let mut a = BuildArgs::new();
        add_build_arg(&mut a, "X=1=2", &NoEnv);
        add_build_arg(&mut a, "FROM_ENV", &env);
        add_build_arg_file(&mut a, "# c\n\nY=y\r\nX\n", &NoEnv);
        assert_eq!(a, build_args(&[("FROM_ENV", "e"), ("Y", "y")]));
    }
}
