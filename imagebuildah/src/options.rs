//! [`BuildOptions`]: everything `hod bud` accepts, typed. The CLI fills it from flags and
//! the environment; library callers fill it directly.
use std::collections::BTreeMap;
use std::path::PathBuf;

use builder::archive::Compression;
use builder::builder::ImageFormat;
use builder::options::RegistryContext;
use builder::pull::PullPolicy;
use builder::run::{RunDefaults, RunOptions};

/// One Containerfile to build from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerfileSource {
    /// A file on the host (`-f path`; relative paths are taken from the current directory,
    /// then from the context directory).
    Path(PathBuf),
    /// Contents read already (`-f -` from stdin).
    Contents {
        /// A name for messages (`-`).
        name: String,
        /// The text.
        data: Vec<u8>,
    },
}

/// `--secret id=ID,src=PATH` or `id=ID,env=VAR`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    /// The ID a `RUN --mount=type=secret,id=ID` names.
    pub id: String,
    /// Where the value comes from.
    pub source: SecretSource,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("id", &self.id)
            .field("source", &self.source)
            .finish()
    }
}

/// Where a secret's value is read from (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A host file.
    File(PathBuf),
    /// An environment variable of hod's process.
    Env(String),
    /// `id=NAME` alone: the environment variable NAME if it is set, else the file NAME.
    EnvOrFile(String),
}

impl Secret {
    /// Parse `id=x,src=path`, `id=x,env=VAR`, `id=x,type=file|env,src=…`, or `id=x` (then
    /// src defaults to the env var / file named like the ID, as buildah does).
    pub fn parse(s: &str) -> Result<Secret, String> {
        let mut id = None;
        let mut src = None;
        let mut env = None;
        let mut typ = None;
        for kv in s.split(',') {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("invalid secret {s:?}: {kv:?} is not key=value"))?;
            match k {
                "id" => id = Some(v.to_string()),
                "src" | "source" => src = Some(v.to_string()),
                "env" => env = Some(v.to_string()),
                "type" => typ = Some(v.to_string()),
                _ => return Err(format!("invalid secret {s:?}: unknown option {k:?}")),
            }
        }
        let id = id.ok_or_else(|| format!("invalid secret {s:?}: no id"))?;
        let source = match (typ.as_deref(), src, env) {
            (_, _, Some(e)) => SecretSource::Env(e),
            (Some("env"), Some(s), None) => SecretSource::Env(s),
            (Some("env"), None, None) => SecretSource::Env(id.clone()),
            (None | Some("file"), Some(s), None) => SecretSource::File(PathBuf::from(s)),
            (Some("file"), None, None) => SecretSource::File(PathBuf::from(&id)),
            (None, None, None) => SecretSource::EnvOrFile(id.clone()),
            (Some(t), _, _) => return Err(format!("invalid secret {s:?}: unknown type {t:?}")),
        };
        Ok(Secret { id, source })
    }
}

/// `--build-context NAME=VALUE`: what `FROM NAME`, `COPY --from=NAME` and
/// `RUN --mount=from=NAME` use instead of a stage or image called NAME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildContext {
    /// A host directory (`NAME=path`).
    Dir(PathBuf),
    /// An image (`NAME=docker-image://ref`, `docker://ref`, `container-image://ref`).
    Image(String),
}

impl BuildContext {
    /// Parse `NAME=VALUE` into the name and the context.
    pub fn parse(s: &str) -> Result<(String, BuildContext), String> {
        let (name, value) = s
            .split_once('=')
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
            .ok_or_else(|| format!("invalid build context {s:?}: want NAME=VALUE"))?;
        for prefix in ["docker-image://", "container-image://", "docker://"] {
            if let Some(img) = value.strip_prefix(prefix) {
                return Ok((name.to_string(), BuildContext::Image(img.to_string())));
            }
        }
        if value.starts_with("http://") || value.starts_with("https://") {
            return Err(format!(
                "invalid build context {s:?}: URL contexts are not supported"
            ));
        }
        Ok((name.to_string(), BuildContext::Dir(PathBuf::from(value))))
    }
}

/// `--output type=local,dest=DIR` / `type=tar,dest=FILE` (or a bare path = local).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildOutputSpec {
    /// Write the final stage's filesystem to a directory.
    Local(PathBuf),
    /// Write it as a tar archive (`-` = stdout is refused by the library; the CLI maps it).
    Tar(PathBuf),
}

impl BuildOutputSpec {
    /// Parse buildah's `--output` value.
    pub fn parse(s: &str) -> Result<BuildOutputSpec, String> {
        if !s.contains('=') {
            return Ok(BuildOutputSpec::Local(PathBuf::from(s)));
        }
        let mut typ = None;
        let mut dest = None;
        for kv in s.split(',') {
            match kv.split_once('=') {
                Some(("type", v)) => typ = Some(v.to_string()),
                Some(("dest", v)) => dest = Some(PathBuf::from(v)),
                _ => return Err(format!("invalid output {s:?}: unknown option {kv:?}")),
            }
        }
        let dest = dest.ok_or_else(|| format!("invalid output {s:?}: no dest"))?;
        match typ.as_deref() {
            Some("local") => Ok(BuildOutputSpec::Local(dest)),
            Some("tar") => Ok(BuildOutputSpec::Tar(dest)),
            Some(t) => Err(format!("invalid output {s:?}: unsupported type {t:?}")),
            None => Err(format!("invalid output {s:?}: no type")),
        }
    }
}

/// Options of one build.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct BuildOptions {
    /// The context directory.
    pub context_dir: PathBuf,
    /// `-f` (several are concatenated); empty = `Containerfile`, else `Dockerfile`, in
    /// the context.
    pub containerfiles: Vec<ContainerfileSource>,
    /// `-t`: the names of the result (the first is the COMMIT name).
    pub tags: Vec<String>,
    /// `--build-arg` / `--build-arg-file` (the later wins).
    pub build_args: BTreeMap<String, String>,
    /// `--target`.
    pub target: Option<String>,
    /// `--skip-unused-stages` (default true): build only the stages the target needs.
    pub skip_unused_stages: bool,
    /// `--build-context NAME=VALUE`.
    pub build_contexts: BTreeMap<String, BuildContext>,
    /// `--from`: replaces the first stage's base image.
    pub from: Option<String>,
    /// `--layers`: commit each step and reuse earlier results.
    pub layers: bool,
    /// `--no-cache`: do not reuse earlier results.
    pub no_cache: bool,
    /// `--pull`.
    pub pull_policy: PullPolicy,
    /// `--format`; `None` = `BUILDAH_FORMAT`, else OCI.
    pub format: Option<ImageFormat>,
    /// `--squash`.
    pub squash: bool,
    /// `--timestamp`.
    pub timestamp: Option<i64>,
    /// `--log-rusage`: a resource usage line before each step after FROM and at the end
    /// (not with `quiet`).
    pub log_rusage: bool,
    /// `--rusage-logfile`: those lines go to this file instead of the build's output.
    pub rusage_logfile: Option<PathBuf>,
    /// `--logfile F --logsplit`: each platform's output goes to its own file,
    /// `F_<os>_<arch>` (made 0600 or truncated), instead of the build's output.
    pub log_split: Option<PathBuf>,
    /// `--label` (applied to the final image).
    pub labels: Vec<(String, String)>,
    /// `--annotation`.
    pub annotations: Vec<(String, String)>,
    /// `--env` (applied to the final image; `KEY` alone takes hod's environment).
    pub env: Vec<String>,
    /// `--unsetenv`.
    pub unset_env: Vec<String>,
    /// `--os-version`: the result's `os.version`.
    pub os_version: Option<String>,
    /// `--os-feature F` (add) or `F-` (remove).
    pub os_features: Vec<String>,
    /// `--secret`.
    pub secrets: Vec<Secret>,
    /// `--ssh`: agent sockets or keys for `RUN --mount=type=ssh`.
    pub ssh: Vec<crate::ssh::SshSource>,
    /// How every RUN runs (isolation, runtime and its flags); `RUN --network` and the
    /// mounts are added per step.
    pub run: RunOptions,
    /// Settings every stage's container starts from (namespaces, capabilities, security,
    /// resources, DNS, `-v`, devices), as `hod from` takes them.
    pub run_defaults: RunDefaults,
    /// ID maps every stage's container gets (`--userns-uid-map` …): its files are stored
    /// shifted and its RUNs get a user namespace; the images are committed unshifted.
    pub id_mappings: builder::idmap::IdMappings,
    /// Registry access, and the platform of base images and of the result (`--platform`).
    pub registry: RegistryContext,
    /// `--decryption-key`: keys for encrypted base images.
    pub decryption: Option<std::sync::Arc<builder::image::encryption::DecryptionConfig>>,
    /// `--encryption-key`/`--encrypt-layer`: encrypt the built image's layers.
    pub encryption: Option<std::sync::Arc<builder::image::encryption::EncryptionConfig>>,
    /// `--platform a,b`: build once for each (empty: once, for `registry.platform`).
    pub platforms: Vec<builder::options::Platform>,
    /// `--all-platforms`: build for every platform all the base images are available for.
    pub all_platforms: bool,
    /// `--manifest LIST`: add the image(s) to this manifest list, creating it if missing.
    pub manifest: Option<String>,
    /// `-q`: no step lines.
    pub quiet: bool,
    /// `--rm` (default true): remove the working containers after a successful build.
    pub remove_containers: bool,
    /// `--force-rm`: remove them after a failed one too.
    pub force_remove: bool,
    /// `--output`.
    pub output: Option<BuildOutputSpec>,
    /// `--jobs`: how many stages may be built at once (0: no limit; 1: one after another).
    pub jobs: usize,
    /// `--omit-history`.
    pub omit_history: bool,
    /// `--identity-label` (default true).
    pub identity_label: bool,
    /// `--compression-format` / `--disable-compression=false`.
    pub compression: Compression,
    /// `--cpp-flag`.
    pub cpp_flags: Vec<String>,
    /// `$BUILDAH_CPPFLAGS`, split into words.
    pub cpp_env_flags: Vec<String>,
    /// `--ignorefile`.
    pub ignore_file: Option<PathBuf>,
    /// Use the built-in `#include` preprocessor even when `cpp` is installed (tests).
    pub builtin_preprocessor: bool,
    /// `--explain-cache`: with `--layers`, say why each step missed.
    pub explain_cache: bool,
    /// `--cache-ttl`: only cached images created less than this long ago are used
    /// (`Some(0)` is `--no-cache`).
    pub cache_ttl: Option<std::time::Duration>,
    /// `--cache-from REPO`: registry repositories to look a missed step up in
    /// (`REPO:<cache key>`), with `--layers`.
    pub cache_from: Vec<String>,
    /// `--cache-to REPO`: registry repositories each step's image is pushed to, tagged with
    /// its cache key, with `--layers`.
    pub cache_to: Vec<String>,
}

impl BuildOptions {
    /// Whether `--layers` steps may be cache hits: neither `--no-cache` nor `--cache-ttl=0`.
    pub fn uses_layer_cache(&self) -> bool {
        !self.no_cache && self.cache_ttl != Some(Default::default())
    }

    /// Options with buildah's defaults (`--rm`, identity label, one job).
    pub fn new(context_dir: impl Into<PathBuf>) -> BuildOptions {
        BuildOptions {
            context_dir: context_dir.into(),
            remove_containers: true,
            identity_label: true,
            skip_unused_stages: true,
            jobs: 1,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets() {
        let s = Secret::parse("id=a,src=/x").unwrap();
        assert_eq!(s.source, SecretSource::File("/x".into()));
        let s = Secret::parse("id=a,env=V").unwrap();
        assert_eq!(s.source, SecretSource::Env("V".into()));
        let s = Secret::parse("id=a,type=env").unwrap();
        assert_eq!(s.source, SecretSource::Env("a".into()));
        assert!(Secret::parse("src=/x").is_err());
        assert!(Secret::parse("id=a,bogus=1").is_err());
    }

    #[test]
    fn build_contexts() {
        assert_eq!(
            BuildContext::parse("a=docker://source").unwrap(),
            ("a".into(), BuildContext::Image("source".into()))
        );
        assert_eq!(
            BuildContext::parse("b=../dir").unwrap(),
            ("b".into(), BuildContext::Dir("../dir".into()))
        );
        assert!(BuildContext::parse("c=https://x/y.tar").is_err());
        assert!(BuildContext::parse("=x").is_err());
    }

    #[test]
    fn outputs() {
        assert_eq!(
            BuildOutputSpec::parse("type=local,dest=/o").unwrap(),
            BuildOutputSpec::Local("/o".into())
        );
        assert_eq!(
            BuildOutputSpec::parse("type=tar,dest=/o.tar").unwrap(),
            BuildOutputSpec::Tar("/o.tar".into())
        );
        assert_eq!(
            BuildOutputSpec::parse("/d").unwrap(),
            BuildOutputSpec::Local("/d".into())
        );
        assert!(BuildOutputSpec::parse("type=registry,dest=x").is_err());
    }
}
