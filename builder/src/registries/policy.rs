//! The signature policy (containers-policy.json(5)): may this image be used at all?
//!
//! ```text
//!  --signature-policy | ~/.config/containers/policy.json | /etc/containers/policy.json
//!    Policy::parse (strict: unknown fields and types are errors, as containers/image)
//!    scopes(reference): docker  → host/ns/repo:tag, host/ns/repo, host/ns, host, *.domain…
//!                       oci/dir → /abs/dir:ref, /abs/dir, /abs, … (not "/")
//!    transports[transport][most specific scope] | transports[transport][""] | default
//!      insecureAcceptAnything → ok; reject → refused;
//!      signedBy / sigstoreSigned → refused: hod does not verify signatures
//! ```
//!
//! A missing policy file is an error, as in buildah.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, IoResultExt, Result};
use crate::options::RegistryContext;
use crate::reference::ImageReference;

use super::SysEnv;

/// One policy requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `insecureAcceptAnything`.
    InsecureAcceptAnything,
    /// `reject`.
    Reject,
    /// `signedBy` (GPG simple signing): not supported by hod.
    SignedBy,
    /// `sigstoreSigned`: not supported by hod.
    SigstoreSigned,
}

/// A parsed policy.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `default`.
    pub default: Vec<Requirement>,
    /// `transports.<transport>.<scope>`.
    pub transports: BTreeMap<String, BTreeMap<String, Vec<Requirement>>>,
    /// The file (for messages).
    pub path: PathBuf,
}

fn bad(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::invalid(format!(
        "invalid policy in {:?}: {msg}",
        path.display().to_string()
    ))
}

fn parse_requirements(v: &Value, path: &Path, scope: &str) -> Result<Vec<Requirement>> {
    let arr = v.as_array().ok_or_else(|| {
        bad(
            path,
            format!("policy requirements of {scope} are not an array"),
        )
    })?;
    if arr.is_empty() {
        return Err(bad(path, format!("No policy requirements in {scope}")));
    }
    arr.iter().map(|r| parse_requirement(r, path)).collect()
}

fn parse_requirement(v: &Value, path: &Path) -> Result<Requirement> {
    let obj = v
        .as_object()
        .ok_or_else(|| bad(path, "policy requirement is not an object"))?;
    let ty = obj
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(path, "policy requirement has no \"type\""))?;
    let simple = |r: Requirement| {
        if let Some(k) = obj.keys().find(|k| k.as_str() != "type") {
            return Err(bad(
                path,
                format!("Unknown key \"{k}\" in {ty} requirement"),
            ));
        }
        Ok(r)
    };
    match ty {
        "insecureAcceptAnything" => simple(Requirement::InsecureAcceptAnything),
        "reject" => simple(Requirement::Reject),
        "signedBy" => Ok(Requirement::SignedBy),
        "sigstoreSigned" => Ok(Requirement::SigstoreSigned),
        other => Err(bad(
            path,
            format!("Unknown policy requirement type \"{other}\""),
        )),
    }
}

impl Policy {
    /// Parse policy.json text (pure).
    pub fn parse(text: &str, path: &Path) -> Result<Policy> {
        let v: Value = serde_json::from_str(text).map_err(|e| bad(path, e))?;
        let obj = v
            .as_object()
            .ok_or_else(|| bad(path, "policy is not a JSON object"))?;
        if let Some(k) = obj
            .keys()
            .find(|k| k.as_str() != "default" && k.as_str() != "transports")
        {
            return Err(bad(path, format!("Unknown key \"{k}\"")));
        }
        let default = match obj.get("default") {
            None => return Err(bad(path, "Default policy is missing")),
            Some(d) => parse_requirements(d, path, "the default policy")?,
        };
        let mut transports = BTreeMap::new();
        if let Some(t) = obj.get("transports") {
            let t = t
                .as_object()
                .ok_or_else(|| bad(path, "\"transports\" is not an object"))?;
            for (name, scopes) in t {
                let scopes = scopes.as_object().ok_or_else(|| {
                    bad(
                        path,
                        format!("scopes of transport {name} are not an object"),
                    )
                })?;
                let mut m = BTreeMap::new();
                for (scope, reqs) in scopes {
                    m.insert(
                        scope.clone(),
                        parse_requirements(reqs, path, &format!("scope {scope:?} of {name}"))?,
                    );
                }
                transports.insert(name.clone(), m);
            }
        }
        Ok(Policy {
            default,
            transports,
            path: path.to_path_buf(),
        })
    }

    /// The requirements for `transport` and `scopes` (most specific first).
    pub fn requirements_for(&self, transport: &str, scopes: &[String]) -> &[Requirement] {
        if let Some(t) = self.transports.get(transport) {
            for s in scopes {
                if let Some(r) = t.get(s) {
                    return r;
                }
            }
            if let Some(r) = t.get("") {
                return r;
            }
        }
        &self.default
    }

    /// Evaluate for an image shown to the user as `shown`.
    pub fn evaluate(&self, transport: &str, scopes: &[String], shown: &str) -> Result<()> {
        for r in self.requirements_for(transport, scopes) {
            match r {
                Requirement::InsecureAcceptAnything => {}
                Requirement::Reject => {
                    return Err(Error::invalid(format!(
                        "Source image rejected: Running image {shown} is rejected by policy."
                    )))
                }
                Requirement::SignedBy | Requirement::SigstoreSigned => {
                    let ty = if *r == Requirement::SignedBy {
                        "signedBy"
                    } else {
                        "sigstoreSigned"
                    };
                    return Err(Error::invalid(format!(
                        "Source image rejected: {shown} requires signature verification ({ty} in {}), which hod does not support",
                        self.path.display()
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The docker transport's scopes: identity, repository, namespaces, host, `*.` domains.
pub fn docker_scopes(named: &crate::reference::NamedRef) -> Vec<String> {
    let mut v = Vec::new();
    if named.tag.is_some() || named.digest.is_some() {
        v.push(named.to_string());
    }
    let name = named.repository();
    let mut n = name.as_str();
    loop {
        v.push(n.to_string());
        match n.rfind('/') {
            Some(i) => n = &n[..i],
            None => break,
        }
    }
    let mut d = named.domain.as_str();
    while let Some(i) = d.find('.') {
        d = &d[i + 1..];
        v.push(format!("*.{d}"));
    }
    v
}

fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(p) {
        return c;
    }
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// Path transports' scopes: `dir:ref`, `dir`, and its parents except `/`.
fn path_scopes(path: &Path, reference: Option<&str>) -> Vec<String> {
    let abs = absolute(path);
    let mut v = Vec::new();
    if let Some(r) = reference {
        v.push(format!("{}:{r}", abs.display()));
    }
    let mut cur = Some(abs.as_path());
    while let Some(p) = cur {
        if p.parent().is_none() {
            break;
        }
        v.push(p.display().to_string());
        cur = p.parent();
    }
    v
}

/// Policy scopes of a reference, most specific first (empty: only the transport default).
pub fn scopes(reference: &ImageReference) -> Vec<String> {
    match reference {
        ImageReference::Docker(n) => docker_scopes(n),
        ImageReference::Oci { path, reference }
        | ImageReference::OciArchive { path, reference } => path_scopes(path, reference.as_deref()),
        ImageReference::Dir { path } => path_scopes(path, None),
        _ => Vec::new(),
    }
}

/// The policy file to read.
pub fn policy_path(ctx: &RegistryContext, env: &SysEnv) -> PathBuf {
    if let Some(p) = &ctx.signature_policy {
        return p.clone();
    }
    let user = env.home.join(".config/containers/policy.json");
    if user.exists() {
        return user;
    }
    env.system_path("etc/containers/policy.json")
}

/// Load the policy (a missing file is an error, as in buildah).
pub fn load(ctx: &RegistryContext, env: &SysEnv) -> Result<Policy> {
    let path = policy_path(ctx, env);
    let text = std::fs::read_to_string(&path).at("reading signature policy", &path)?;
    Policy::parse(&text, &path)
}

/// May `reference` (of transport `transport_name`, e.g. `docker`) be used as an image source?
pub fn check_policy(
    ctx: &RegistryContext,
    transport_name: &str,
    reference: &ImageReference,
) -> Result<()> {
    check_policy_in(ctx, &SysEnv::from_process(), transport_name, reference)
}

/// [`check_policy`] with an explicit environment.
pub fn check_policy_in(
    ctx: &RegistryContext,
    env: &SysEnv,
    transport_name: &str,
    reference: &ImageReference,
) -> Result<()> {
    let policy = load(ctx, env)?;
    policy.evaluate(transport_name, &scopes(reference), &reference.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{
        "default": [{"type": "reject"}],
        "transports": {
            "docker": {
                "": [{"type": "reject"}],
                "docker.io/library/busybox": [{"type": "insecureAcceptAnything"}],
                "docker.io/library/busybox:bad": [{"type": "reject"}],
                "quay.io/open": [{"type": "insecureAcceptAnything"}],
                "localhost:5000": [{"type": "insecureAcceptAnything"}],
                "*.example.com": [{"type": "insecureAcceptAnything"}],
                "quay.io/signed": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k.gpg"}],
                "quay.io/cosign": [{"type": "sigstoreSigned", "keyPath": "/k.pub"}]
            },
            "oci": {"": [{"type": "insecureAcceptAnything"}]}
        }
    }"#;

    #[test]
    fn scope_table() {
        let p = Policy::parse(POLICY, Path::new("/p.json")).unwrap();
        let table: &[(&str, Result<(), &str>)] = &[
            ("docker://busybox", Ok(())),
            ("docker://busybox:bad", Err("rejected by policy")),
            ("docker://alpine", Err("rejected by policy")),
            ("docker://quay.io/open/x/y:1", Ok(())),
            ("docker://quay.io/openness/x", Err("rejected by policy")),
            ("docker://localhost:5000/a/b@sha256:0000000000000000000000000000000000000000000000000000000000000000", Ok(())),
            ("docker://a.b.example.com/x", Ok(())),
            ("docker://example.com/x", Err("rejected by policy")),
            ("docker://quay.io/signed/x", Err("signedBy in /p.json")),
            ("docker://quay.io/cosign/x", Err("sigstoreSigned")),
            ("oci:/tmp/x:tag", Ok(())),
            ("dir:/tmp/x", Err("rejected by policy")),
        ];
        for (r, want) in table {
            let reference = ImageReference::parse(r).unwrap();
            let got = p.evaluate(reference.transport(), &scopes(&reference), r);
            match want {
                Ok(()) => assert!(got.is_ok(), "{r}: {got:?}"),
                Err(w) => {
                    let e = got.unwrap_err().to_string();
                    assert!(e.contains(w) && e.contains(r), "{r}: {e}");
                }
            }
        }
    }

    #[test]
    fn scopes_of_references() {
        let r = ImageReference::parse("docker://a.b.io:5000/ns/repo:1").unwrap();
        assert_eq!(
            scopes(&r),
            vec![
                "a.b.io:5000/ns/repo:1",
                "a.b.io:5000/ns/repo",
                "a.b.io:5000/ns",
                "a.b.io:5000",
                "*.b.io:5000",
                "*.io:5000"
            ]
        );
        let r = ImageReference::parse("oci:/nonexistent-hod/a/b:t").unwrap();
        assert_eq!(
            scopes(&r),
            vec![
                "/nonexistent-hod/a/b:t",
                "/nonexistent-hod/a/b",
                "/nonexistent-hod/a",
                "/nonexistent-hod"
            ]
        );
    }

    #[test]
    fn invalid_policies() {
        let table: &[(&str, &str)] = &[
            ("{}", "Default policy is missing"),
            ("{\"default\": []}", "No policy requirements"),
            ("{\"default\": [{\"type\": \"trustMe\"}]}", "Unknown policy requirement type \"trustMe\""),
            ("{\"default\": [{\"type\": \"reject\", \"x\": 1}]}", "Unknown key \"x\""),
            ("{\"default\": [{\"type\": \"reject\"}], \"extra\": 1}", "Unknown key \"extra\""),
            ("{\"default\": [{\"type\": \"reject\"}], \"transports\": {\"docker\": {\"x\": []}}}", "No policy requirements"),
            ("not json", ""),
        ];
        for (text, want) in table {
            let e = Policy::parse(text, Path::new("/etc/p.json"))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("invalid policy in \"/etc/p.json\": "), "{e}");
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn file_lookup_and_missing_file() {
        let t = tempfile::tempdir().unwrap();
        let env = SysEnv {
            home: t.path().join("home"),
            root: t.path().to_path_buf(),
            ..SysEnv::default()
        };
        let ctx = RegistryContext::default();
        let busybox = ImageReference::parse("docker://busybox").unwrap();
        let e = check_policy_in(&ctx, &env, "docker", &busybox)
            .unwrap_err()
            .to_string();
        assert!(e.contains("etc/containers/policy.json"), "{e}");
        std::fs::create_dir_all(t.path().join("etc/containers")).unwrap();
        std::fs::write(
            t.path().join("etc/containers/policy.json"),
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .unwrap();
        check_policy_in(&ctx, &env, "docker", &busybox).unwrap();
        std::fs::create_dir_all(t.path().join("home/.config/containers")).unwrap();
        std::fs::write(
            t.path().join("home/.config/containers/policy.json"),
            r#"{"default":[{"type":"reject"}]}"#,
        )
        .unwrap();
        assert!(check_policy_in(&ctx, &env, "docker", &busybox).is_err());
        let mut ctx = ctx;
        ctx.signature_policy = Some(t.path().join("etc/containers/policy.json"));
        check_policy_in(&ctx, &env, "docker", &busybox).unwrap();
    }
}
