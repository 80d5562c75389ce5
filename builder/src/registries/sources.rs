//! buildah's `BUILD_REGISTRY_SOURCES` (set by OpenShift builds): registries a pull, push or
//! commit to `docker://` may not use (`blockedRegistries`), the only ones it may use
//! (`allowedRegistries`), and ones reached without TLS verification (`insecureRegistries`).
//!
//! ```text
//!  BUILD_REGISTRY_SOURCES='{"blockedRegistries": ["registry.example.com"]}'
//!    parse (pure) ─▶ RegistrySources ─▶ check(op, domain) ─▶ Ok | "… denied by policy: …"
//! ```
use serde::Deserialize;

use crate::error::{Error, Result};

/// The parsed variable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrySources {
    /// Registries reached without TLS verification.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Registries refused.
    #[serde(default)]
    pub blocked_registries: Vec<String>,
    /// If not empty, the only registries allowed.
    #[serde(default)]
    pub allowed_registries: Vec<String>,
}

/// What the registry is used for (it words the refusal as buildah does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceUse {
    /// `pull`, `from`: `registry "D" denied by policy: …`.
    Pull,
    /// `push`: `registry "D" denied by policy: …`.
    Push,
    /// `commit` to `docker://`: `commit to registry at "D" denied by policy: …`.
    Commit,
}

impl RegistrySources {
    /// Parse the variable's value (pure).
    pub fn parse(text: &str) -> Result<RegistrySources> {
        serde_json::from_str(text)
            .map_err(|e| Error::invalid(format!("parsing $BUILD_REGISTRY_SOURCES ({text:?}): {e}")))
    }

    /// From the environment; `None` when the variable is unset or empty.
    pub fn from_env() -> Result<Option<RegistrySources>> {
        match std::env::var("BUILD_REGISTRY_SOURCES") {
            Ok(v) if !v.trim().is_empty() => Ok(Some(RegistrySources::parse(&v)?)),
            _ => Ok(None),
        }
    }

    /// Refuse `domain` when blocked or not allowed.
    pub fn check(&self, what: SourceUse, domain: &str) -> Result<()> {
        let why = if self.blocked_registries.iter().any(|b| b == domain) {
            "it is in the blocked registries list"
        } else if !self.allowed_registries.is_empty()
            && !self.allowed_registries.iter().any(|a| a == domain)
        {
            "not in allowed registries list"
        } else {
            return Ok(());
        };
        Err(Error::invalid(match what {
            SourceUse::Commit => {
                format!("commit to registry at {domain:?} denied by policy: {why}")
            }
            SourceUse::Pull | SourceUse::Push => {
                format!("registry {domain:?} denied by policy: {why}")
            }
        }))
    }

    /// Whether `domain` is to be reached without TLS verification.
    pub fn is_insecure(&self, domain: &str) -> bool {
        self.insecure_registries.iter().any(|i| i == domain)
    }
}

/// Check `BUILD_REGISTRY_SOURCES` for a `docker://` reference on `domain`.
pub fn check_registry_sources(what: SourceUse, domain: &str) -> Result<()> {
    match RegistrySources::from_env()? {
        Some(s) => s.check(what, domain),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let blocked = RegistrySources::parse(r#"{"blockedRegistries": ["docker.io"]}"#).unwrap();
        let allowed = RegistrySources::parse(
            r#"{"allowedRegistries": ["ok.io"], "insecureRegistries": ["ok.io"]}"#,
        )
        .unwrap();
        let table: &[(&RegistrySources, SourceUse, &str, Option<&str>)] = &[
            (&blocked, SourceUse::Pull, "docker.io", Some("registry \"docker.io\" denied by policy: it is in the blocked registries list")),
            (&blocked, SourceUse::Pull, "quay.io", None),
            (&blocked, SourceUse::Commit, "docker.io", Some("commit to registry at \"docker.io\" denied by policy: it is in the blocked registries list")),
            (&allowed, SourceUse::Push, "x.io", Some("registry \"x.io\" denied by policy: not in allowed registries list")),
            (&allowed, SourceUse::Commit, "x.io", Some("commit to registry at \"x.io\" denied by policy: not in allowed registries list")),
            (&allowed, SourceUse::Push, "ok.io", None),
        ];
        for (s, what, domain, want) in table {
            match (s.check(*what, domain), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert_eq!(e.to_string(), *w),
                (got, _) => panic!("{domain}: {got:?}"),
            }
        }
        assert!(allowed.is_insecure("ok.io") && !blocked.is_insecure("docker.io"));
        assert!(RegistrySources::parse("{").is_err());
    }
}
