//! `copy` / `add`: copy host files, other containers' or images' files, archives (add) and
//! URLs (add) into the working container, every write resolved inside its rootfs.
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::builder::Builder;
use crate::copier::{self, ignore, passwd, PutOptions, PutSummary, SourceRoot};
use crate::error::{Error, IoResultExt, Result, ResultExt};
use crate::options::RegistryContext;
use crate::store::Store;

/// COPY or ADD semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CopyKind {
    /// Plain copy.
    #[default]
    Copy,
    /// Also extract local archives and fetch URLs.
    Add,
}

/// Options of `hod copy` / `hod add` (and of COPY/ADD in `bud`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CopyOptions {
    /// COPY or ADD.
    pub kind: CopyKind,
    /// `--chown user[:group]`, resolved in the container.
    pub chown: Option<String>,
    /// `--chmod` (octal or symbolic).
    pub chmod: Option<copier::Chmod>,
    /// `--from`: a container or image to copy from instead of the host.
    pub from: Option<String>,
    /// `--contextdir`: sources must stay inside it.
    pub context_dir: Option<std::path::PathBuf>,
    /// `--ignorefile`.
    pub ignore_file: Option<std::path::PathBuf>,
    /// Clear the setuid and setgid bits of what is copied (a Containerfile's COPY/ADD from
    /// the build context, as buildah's; not with `--chmod`).
    pub strip_setid: bool,
    /// `--exclude` patterns.
    pub excludes: Vec<String>,
    /// `--checksum` for URL sources (ADD).
    pub checksum: Option<String>,
    /// `--no-follow-symlinks` inverted: follow a symlink named directly as a source.
    pub follow_links: bool,
    /// `--allow-wildcard`.
    pub allow_wildcard: bool,
    /// `--allow-empty-wildcard`.
    pub allow_empty_wildcard: bool,
    /// `--timestamp` (Unix seconds) for everything copied.
    pub timestamp: Option<i64>,
    /// `--parents` (copy only): keep sources' leading directories.
    pub parents: bool,
    /// `--add-history`: record `COPY|ADD <type>:<digest>` as an empty-layer history entry
    /// of the next commit (buildah copy's text).
    pub add_history: bool,
    /// `--retry` for URL fetches.
    pub retries: u32,
    /// `--retry-delay`.
    pub retry_delay: Duration,
    /// Where relative host sources are looked up without a context directory (default:
    /// the process's current directory).
    pub cwd: Option<PathBuf>,
    /// Registry access (and platform) for a `--from` image that has to be pulled.
    pub registry: RegistryContext,
    /// `--decryption-key`: keys for an encrypted `--from` image.
    pub decryption: Option<std::sync::Arc<crate::image::encryption::DecryptionConfig>>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            kind: CopyKind::Copy,
            chown: None,
            chmod: None,
            from: None,
            context_dir: None,
            ignore_file: None,
            strip_setid: false,
            excludes: Vec::new(),
            checksum: None,
            follow_links: true,
            allow_wildcard: true,
            allow_empty_wildcard: false,
            timestamp: None,
            parents: false,
            add_history: false,
            retries: 3,
            retry_delay: Duration::from_secs(2),
            cwd: None,
            registry: RegistryContext::default(),
            decryption: None,
        }
    }
}

/// What a copy did (buildah prints `digest`, and records `content_type:digest` in history).
pub type CopySummary = PutSummary;

/// A mounted source for `--from`, released on drop.
enum FromRoot<'s> {
    Container {
        builder: Box<Builder>,
        store: &'s Store,
        unmount: bool,
        path: PathBuf,
    },
    Layer {
        store: &'s Store,
        layer: String,
        path: PathBuf,
    },
    Empty(tempfile::TempDir),
}

impl FromRoot<'_> {
    /// The ID maps the source's files are stored with (a container with maps).
    fn id_maps(&self) -> Option<crate::idmap::IdMappings> {
        match self {
            FromRoot::Container { builder, .. } if !builder.state.id_mappings.is_empty() => {
                Some(builder.state.id_mappings.clone())
            }
            _ => None,
        }
    }

    fn path(&self) -> &Path {
        match self {
            FromRoot::Container { path, .. } | FromRoot::Layer { path, .. } => path,
            FromRoot::Empty(t) => t.path(),
        }
    }
}

impl Drop for FromRoot<'_> {
    fn drop(&mut self) {
        match self {
            FromRoot::Container {
                builder,
                store,
                unmount: true,
                ..
            } => {
                if let Err(e) = builder.unmount(store) {
                    tracing::debug!("unmounting {}: {e}", builder.name());
                }
            }
            FromRoot::Layer { store, layer, .. } => {
                if let Err(e) = store.unmount_layer(layer, false) {
                    tracing::debug!("unmounting layer {layer}: {e}");
                }
            }
            _ => {}
        }
    }
}

fn open_from<'s>(store: &'s Store, name: &str, opts: &CopyOptions) -> Result<FromRoot<'s>> {
    match Builder::open(store, name) {
        Ok(mut b) => {
            // One mount reference, given back when done (an earlier mount stays).
            let path = b
                .mount(store)
                .context_with(|| format!("mounting {name:?} container {:?}", b.name()))?;
            return Ok(FromRoot::Container {
                builder: Box::new(b),
                store,
                unmount: true,
                path,
            });
        }
        Err(Error::NotFound { .. }) => {}
        Err(e) => return Err(e.context(format!("reading build container {name:?}"))),
    }
    // A transport reference (`oci:DIR:TAG`, `docker://…`), or a name the store does not
    // have, is pulled first (as buildah's `--from`, with the missing policy), through the
    // one `transport::open_source`.
    let pull = || {
        let popts = crate::pull::PullOptions {
            policy: crate::pull::PullPolicy::Missing,
            registry: opts.registry.clone(),
            decryption: opts.decryption.clone(),
            ..Default::default()
        };
        crate::pull::pull(store, name, &popts, &crate::report::Quiet)
    };
    let local = if crate::from::is_transport_ref(name) {
        pull()?
    } else {
        match store.image(name) {
            Err(Error::NotFound { .. }) => pull().context_with(|| {
                format!("no container named {name:?}, error copying content from image {name:?}")
            })?,
            _ => name.to_string(),
        }
    };
    let img = store.image(&local).context_with(|| {
        format!("no container named {name:?}, error copying content from image {name:?}")
    })?;
    if img.layer.is_empty() {
        let t = tempfile::tempdir().at("creating", std::env::temp_dir())?;
        return Ok(FromRoot::Empty(t));
    }
    let path = store
        .mount_layer(&img.layer)
        .context_with(|| format!("mounting image {name:?}"))?;
    Ok(FromRoot::Layer {
        store,
        layer: img.layer,
        path,
    })
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    let cwd = std::env::current_dir().at("determining", "the current directory")?;
    Ok(cwd.join(p))
}

impl Builder {
    /// Copy `sources` to `dest` inside the container.
    pub fn copy(
        &mut self,
        store: &Store,
        sources: &[String],
        dest: &str,
        opts: &CopyOptions,
    ) -> Result<CopySummary> {
        if opts.ignore_file.is_some() && opts.context_dir.is_none() {
            return Err(Error::invalid(
                "--ignorefile option requires that you specify a context dir using --contextdir",
            ));
        }
        let from = match &opts.from {
            Some(f) => Some(open_from(store, f, opts)?),
            None => None,
        };
        // One mount reference for the copy, given back after it (an earlier mount stays).
        let mnt = self
            .mount(store)
            .context_with(|| format!("mounting container {:?}", self.name()))?;
        let source_maps = from.as_ref().and_then(|f| f.id_maps());
        let result = self.copy_into(
            &mnt,
            from.as_ref().map(|f| f.path()),
            source_maps,
            sources,
            dest,
            opts,
        );
        drop(from);
        if let Err(e) = self.unmount(store) {
            tracing::debug!("unmounting {}: {e}", self.name());
        }
        let summary =
            result.context_with(|| format!("adding content to container {:?}", self.name()))?;
        if opts.add_history {
            let verb = match opts.kind {
                CopyKind::Copy => "COPY",
                CopyKind::Add => "ADD",
            };
            let what = match (&summary.content_type, &summary.digest) {
                (t, Some(d)) if !t.is_empty() => format!("{t}:{d}"),
                (_, Some(d)) => d.clone(),
                (_, None) => String::new(),
            };
            self.add_history(format!("/bin/sh -c #(nop) {verb} {what}"))?;
        }
        Ok(summary)
    }

    fn copy_into(
        &self,
        mnt: &Path,
        from: Option<&Path>,
        source_maps: Option<crate::idmap::IdMappings>,
        sources: &[String],
        dest: &str,
        opts: &CopyOptions,
    ) -> Result<CopySummary> {
        let src = match (from, &opts.context_dir) {
            (Some(root), ctx) => {
                let dir = match ctx {
                    Some(c) => root.join(c.strip_prefix("/").unwrap_or(c)),
                    None => root.to_path_buf(),
                };
                SourceRoot::rootfs(&dir)
            }
            (None, Some(c)) => SourceRoot::context(&absolute(c)?),
            (None, None) => {
                let cwd = match &opts.cwd {
                    Some(c) => absolute(c)?,
                    None => std::env::current_dir().at("determining", "the current directory")?,
                };
                SourceRoot::host(&cwd)
            }
        };
        let mut excludes = Vec::new();
        let mut ignore_file = None;
        if opts.context_dir.is_some() {
            let (pats, file) = ignore::context_patterns(&src.dir, opts.ignore_file.as_deref())?;
            excludes = pats;
            ignore_file = file;
        }
        excludes.extend(opts.excludes.iter().cloned());
        let owner = match &opts.chown {
            Some(spec) => Some(
                passwd::resolve_chown(mnt, spec)
                    .context_with(|| format!("looking up UID/GID for {spec:?}"))?,
            ),
            None if from.is_some() => None,
            None => Some((0, 0)),
        };
        let popts = PutOptions {
            owner,
            dir_owner: owner.unwrap_or((0, 0)),
            chmod: opts.chmod.clone(),
            extract_archives: opts.kind == CopyKind::Add,
            excludes,
            ignore_file,
            follow_links: opts.follow_links,
            allow_wildcard: opts.allow_wildcard,
            allow_empty_wildcard: opts.allow_empty_wildcard,
            timestamp: opts.timestamp,
            workdir: self
                .state
                .config
                .config
                .working_dir
                .clone()
                .unwrap_or_default(),
            checksum: opts.checksum.clone(),
            parents: opts.parents,
            retries: opts.retries,
            retry_delay: opts.retry_delay,
            id_maps: (!self.state.id_mappings.is_empty()).then(|| self.state.id_mappings.clone()),
            source_id_maps: source_maps,
            strip_setid: opts.strip_setid,
        };
        copier::put(mnt, &src, sources, dest, &popts)
    }
}
