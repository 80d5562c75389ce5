//! Options of the primitives, gathered in one place. `FromOptions` lives here; the others are
//! defined next to their primitive and re-exported.
use crate::builder::ImageFormat;
pub use crate::commit::CommitOptions;
pub use crate::copy::{CopyKind, CopyOptions};
pub use crate::image::platform::Platform;
pub use crate::pull::{PullOptions, PullPolicy};
pub use crate::push::PushOptions;
pub use crate::run::{
    Dns, HostEntry, Isolation, NamespaceMode, Namespaces, NetworkMode, Resources, RunDefaults,
    RunOptions, SeccompProfile, Security,
};

/// Options of `hod from` (and of each `FROM` in `bud`).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct FromOptions {
    /// `--name`: the container's name; the default is `<image>-working-container`, made
    /// unique with `-1`, `-2`, ….
    pub name: Option<String>,
    /// `--suffix`: a generated name is `<image>-<suffix>` instead of
    /// `<image>-working-container` (buildah's hidden flag).
    pub suffix: Option<String>,
    /// `--pull`: when to fetch the image.
    pub pull_policy: PullPolicy,
    /// `--format`: the default format of images committed from the container; `None` =
    /// `BUILDAH_FORMAT`, else OCI.
    pub format: Option<ImageFormat>,
    /// `--isolation`; `None` = `BUILDAH_ISOLATION`, else OCI.
    pub isolation: Option<Isolation>,
    /// Settings for every later `run` (namespaces, security, resources, DNS, devices, …),
    /// kept in the builder state.
    pub run_defaults: RunDefaults,
    /// Registry access and the platform to pick from a manifest list (`--platform`,
    /// `--arch`, `--os`, `--variant` are `registry.platform`; on `scratch` they set the
    /// new config's OS and architecture).
    pub registry: RegistryContext,
    /// ID maps (`--userns-uid-map`, `--userns-gid-map`, `--userns-uid-map-user`,
    /// `--userns-gid-map-group`, resolved by [`crate::idmap::IdMappingRequest::resolve`]):
    /// the container's files are stored shifted and its runs get a user namespace.
    pub id_mappings: crate::idmap::IdMappings,
    /// `--decryption-key`: keys for an encrypted image.
    pub decryption: Option<std::sync::Arc<crate::image::encryption::DecryptionConfig>>,
}

/// `--creds USER[:PASS]`: registry credentials. `Debug` never shows the password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (or `<token>` for an identity token).
    pub username: String,
    /// The password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// registries.conf's `short-name-mode` (and `--short-name-mode`-style overrides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShortNameMode {
    /// Use the first unqualified-search registry that has the image; prompt on a TTY.
    #[default]
    Enforcing,
    /// Try every unqualified-search registry in order, never prompt.
    Permissive,
    /// Like permissive, but with no alias lookup.
    Disabled,
}

/// How often and how patiently registry operations are retried (`--retry`, `--retry-delay`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (buildah's default is 3).
    pub max_retries: u32,
    /// Fixed delay between attempts; `None` = exponential backoff from 2 s, as containers/common.
    pub delay: Option<std::time::Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            delay: None,
        }
    }
}

/// The one typed registry context (containers/image's `SystemContext`): everything a
/// transport needs to reach registries, filled from the CLI's registry flag group, the
/// environment and the config files, and carried by `FromOptions`, `PullOptions`,
/// `PushOptions`, `CommitOptions`, `CopyOptions` and `bud`. Empty fields mean "the
/// system's default" (registries.conf, auth.json, certs.d).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RegistryContext {
    /// `--authfile` (else `REGISTRY_AUTH_FILE`, else `${XDG_RUNTIME_DIR}/containers/auth.json`,
    /// then `~/.docker/config.json` for reading).
    pub auth_file: Option<std::path::PathBuf>,
    /// `--creds`: overrides the auth file for every registry of this operation.
    pub credentials: Option<Credentials>,
    /// `--cert-dir`: CA (`*.crt`) and client (`*.cert` + `*.key`) files, instead of `certs.d`.
    pub cert_dir: Option<std::path::PathBuf>,
    /// `--tls-verify`: `Some(false)` allows plain HTTP and unverified TLS; `None` = per
    /// registries.conf (`insecure = true`), else verify.
    pub tls_verify: Option<bool>,
    /// `--registries-conf` (else `CONTAINERS_REGISTRIES_CONF`, else `/etc/containers/registries.conf`).
    pub registries_conf: Option<std::path::PathBuf>,
    /// The drop-in directory (`/etc/containers/registries.conf.d` by default).
    pub registries_conf_dir: Option<std::path::PathBuf>,
    /// `--short-name-alias-conf`: where short-name aliases are recorded.
    pub short_name_alias_conf: Option<std::path::PathBuf>,
    /// Overrides registries.conf's `short-name-mode`.
    pub short_name_mode: Option<ShortNameMode>,
    /// `--signature-policy` (else `/etc/containers/policy.json`).
    pub signature_policy: Option<std::path::PathBuf>,
    /// `--retry`, `--retry-delay`.
    pub retry: RetryPolicy,
    /// `--platform`, `--arch`, `--os`, `--variant`: the instance to pick from a list.
    pub platform: Platform,
}
