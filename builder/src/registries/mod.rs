//! Where and how to reach a registry: registries.conf (v2 and `.d`), policy.json, auth files
//! and credential helpers, `certs.d`, resolved for one reference into the ordered list of
//! [`Endpoint`]s the `docker://` transport tries (mirrors first, then the primary location).
//!
//! ```text
//!  RegistryContext ──▶ resolve_endpoints(ctx, &NamedRef) ──▶ [Endpoint, …] ──▶ transport::registry
//!   (CLI flags)         registries.conf: prefix/location/mirrors/blocked/insecure
//!                       auth.json / creds / credential helpers, certs.d / --cert-dir
//! ```
use std::path::PathBuf;

use crate::options::Credentials;

/// One place to reach a repository, fully resolved: the `docker://` transport needs nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Endpoint {
    /// `host[:port]` to connect to (`docker.io` is already `registry-1.docker.io`).
    pub host: String,
    /// The repository path on that host (rewritten for a mirror or a `location` prefix).
    pub repository: String,
    /// Plain HTTP is allowed (and tried after HTTPS fails) and TLS is not verified.
    pub insecure: bool,
    /// Extra CA certificates (PEM files) to trust.
    pub ca_certs: Vec<PathBuf>,
    /// Client certificate and key (PEM files).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Credentials for this host, if any.
    pub credentials: Option<Credentials>,
    /// A mirror (pull only), not the primary location.
    pub is_mirror: bool,
}

impl Endpoint {
    /// An endpoint with no TLS material and no credentials.
    pub fn new(host: impl Into<String>, repository: impl Into<String>) -> Endpoint {
        Endpoint {
            host: host.into(),
            repository: repository.into(),
            insecure: false,
            ca_certs: Vec::new(),
            client_cert: None,
            credentials: None,
            is_mirror: false,
        }
    }
}
