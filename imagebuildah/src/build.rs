//! `build`: Containerfiles + context → an image, through the same primitives as the CLI.
//!
//! ```text
//! BuildOptions ─> per platform (--platform a,b / --all-platforms), then --manifest LIST
//!   ─> context dir, Containerfile(s) (-f, -f -, Containerfile/Dockerfile)
//!   ─> *.in: include::preprocess (cpp, or the built-in #include)
//!   ─> parser ─> plan::Plan ─> target + the stages it needs
//!   ─> schedule::run_stages (--jobs: a stage once the stages it uses are done)
//!   ─> per stage: executor (Builder::new_from, run, copy, config setters)
//!        a stage a later FROM uses ─> Builder::commit (unnamed, removed at the end)
//!   ─> target stage: --label/--env/--unsetenv, Builder::commit(first tag), other tags
//!   ─> --output: the target's rootfs to a directory or tar; --rm: containers removed
//! ```
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, OnceLock};

use builder::{Builder, Store};

use crate::error::{io_at, BuildError, Result};
use crate::executor::{commit_options, StageContext, StageExecutor, StageOutcome};
use crate::include;
use crate::options::{BuildContext, BuildOptions, BuildOutputSpec, ContainerfileSource};
use crate::stage::Plan;
use crate::BuildReporter;

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    /// The image ID (hex).
    pub image_id: String,
    /// The names it was given.
    pub names: Vec<String>,
    /// Every image built, in order, when the build ran once per platform (buildah prints
    /// each ID); `image_id` is the last. Empty for a single build.
    pub image_ids: Vec<String>,
}

/// Read, preprocess and parse the Containerfiles into a plan.
pub fn load_plan(
    opts: &BuildOptions,
    context: &Path,
    reporter: &dyn BuildReporter,
) -> Result<(Plan, Option<PathBuf>)> {
    let mut sources = opts.containerfiles.clone();
    // Files taken from the context are resolved inside it: a `Containerfile` or
    // `Containerfile.dockerignore` linking out of the context is absent, never read.
    let ctx_root = builder::rootfs::Root::open(context).ok();
    let in_context = |rel: &Path| -> Result<Option<PathBuf>> {
        match &ctx_root {
            Some(r) => r
                .real_path(rel)
                .map_err(io_at("resolving", context.join(rel))),
            None => Ok(None),
        }
    };
    if sources.is_empty() {
        let mut candidates: Vec<PathBuf> = Vec::new();
        for n in ["Containerfile", "Dockerfile"] {
            if let Some(p) = in_context(Path::new(n))? {
                candidates.push(p);
            }
        }
        if let Some(d) = candidates.iter().find(|p| p.is_dir()) {
            return Err(BuildError::invalid(format!(
                "{}: is not a file",
                d.display()
            )));
        }
        let found = candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
            BuildError::invalid(format!(
                "no Containerfile or Dockerfile specified or found in context directory, {}: no such file or directory",
                context.display()
            ))
        })?;
        sources.push(ContainerfileSource::Path(found));
    }
    let mut texts = Vec::new();
    let mut first_path = None;
    for s in &sources {
        let (name, path, data) = match s {
            ContainerfileSource::Path(p) => {
                let path = if p.exists() || p.is_absolute() {
                    p.clone()
                } else {
                    in_context(p)?.unwrap_or_else(|| context.join(p))
                };
                if path.is_dir() {
                    return Err(BuildError::invalid(format!(
                        "containerfile: {} cannot be path to a directory",
                        path.display()
                    )));
                }
                // Go's wording, as buildah's messages have it: "PATH: not a directory".
                let data = std::fs::read(&path).map_err(|e| {
                    BuildError::invalid(format!("{}: {}", path.display(), go_error(&e)))
                })?;
                (path.display().to_string(), Some(path), data)
            }
            ContainerfileSource::Contents { name, data } => (name.clone(), None, data.clone()),
        };
        if first_path.is_none() {
            first_path = path.clone();
        }
        let text = match &path {
            Some(p) if include::wants_preprocessing(p) => {
                let pre = include::preprocess(
                    p,
                    &data,
                    &include::PreprocessOptions {
                        context_dir: context.to_path_buf(),
                        cpp_flags: opts.cpp_flags.clone(),
                        env_flags: opts.cpp_env_flags.clone(),
                        builtin_only: opts.builtin_preprocessor,
                    },
                )?;
                for w in &pre.warnings {
                    reporter.warn(w);
                }
                pre.text
            }
            _ => String::from_utf8_lossy(&data).into_owned(),
        };
        if text.trim().is_empty() {
            return Err(BuildError::invalid(format!("no contents in {name:?}")));
        }
        texts.push((name, text));
    }
    let plan = crate::stage::from_files(&texts)?;
    // `<Containerfile>.containerignore` next to the (first) Containerfile wins over the
    // context's own ignore files; --ignorefile wins over both.
    let ignore = match (&opts.ignore_file, &first_path) {
        (Some(f), _) => Some(f.clone()),
        (None, Some(p)) => {
            // Next to a Containerfile in the context: looked up inside the context.
            let ctx_real = in_context(Path::new(""))?;
            let rel = ctx_real
                .as_ref()
                .and_then(|c| p.strip_prefix(c).ok())
                .map(Path::to_path_buf);
            let mut found = None;
            for ext in [".containerignore", ".dockerignore"] {
                let c = match &rel {
                    Some(rel) => {
                        let mut name = rel.as_os_str().to_owned();
                        name.push(ext);
                        in_context(Path::new(&name))?
                    }
                    None => {
                        let mut name = p.as_os_str().to_owned();
                        name.push(ext);
                        Some(PathBuf::from(name))
                    }
                };
                if let Some(c) = c.filter(|c| c.is_file()) {
                    found = Some(c);
                    break;
                }
            }
            found
        }
        _ => None,
    };
    Ok((plan, ignore))
}

/// An I/O error as Go prints it (`not a directory`, `no such file or directory`).
fn go_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s).to_string();
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => s,
    }
}

/// Build: once, or once per platform (`--platform a,b`, `--all-platforms`); with
/// `--manifest`, each image is then added to that manifest list (created if missing).
///
/// ```text
/// platforms: --all-platforms ─> those every base image's list has; else opts.platforms
///   one (or none) ─> build_once ─┐
///   several ─> build_once per platform (step lines prefixed `[os/arch] `) ─┤
/// --manifest LIST ─> manifest::load or manifest::create, then manifest::add each image
///                    with the platform it was built for
/// ```
/// The output is the last image built, as buildah's.
pub fn build(
    store: &Store,
    opts: &BuildOptions,
    reporter: &dyn BuildReporter,
) -> Result<BuildOutput> {
    // buildah's debug lines for these settings (scripts and its tests look for them).
    if opts.cache_ttl == Some(std::time::Duration::ZERO) {
        tracing::debug!(
            "Setting --no-cache=true since --cache-ttl was set to 0s which effectively means user wants to ignore cache"
        );
    }
    if let Some(delay) = opts.registry.retry.delay {
        tracing::debug!(
            "Setting MaxPullPushRetries to {} and PullPushRetryDelay to {}",
            opts.registry.retry.max_retries,
            crate::rusage::go_duration_ms(delay)
        );
    }
    if opts.log_rusage && !opts.quiet {
        let r = crate::rusage::RusageReporter::new(reporter, opts.rusage_logfile.as_deref())?;
        let out = build_platforms(store, opts, &r);
        r.log();
        return out;
    }
    build_platforms(store, opts, reporter)
}

/// [`build`] without the resource usage lines.
fn build_platforms(
    store: &Store,
    opts: &BuildOptions,
    reporter: &dyn BuildReporter,
) -> Result<BuildOutput> {
    let platforms = if opts.all_platforms {
        base_platforms(store, opts, reporter)?
    } else {
        opts.platforms.clone()
    };
    if platforms.len() <= 1 && opts.manifest.is_none() && opts.log_split.is_none() {
        let owned;
        let opts = match platforms.first() {
            Some(p) => {
                let mut o = opts.clone();
                o.registry.platform = p.clone();
                owned = o;
                &owned
            }
            None => opts,
        };
        return build_once(store, opts, reporter);
    }
    let platforms = if platforms.is_empty() {
        vec![opts.registry.platform.clone()]
    } else {
        platforms
    };
    let several = platforms.len() > 1;
    // The platforms are independent builds: --jobs runs that many at once, as buildah does.
    let results: Vec<OnceLock<BuildOutput>> = platforms.iter().map(|_| OnceLock::new()).collect();
    let build_platform = |i: usize| -> Result<()> {
        let p = &platforms[i];
        let mut o = opts.clone();
        o.registry.platform = p.clone();
        let file = match &opts.log_split {
            Some(base) => {
                let host = p.or_host();
                let mut name = base.clone().into_os_string();
                name.push(format!("_{}_{}", host.os, host.architecture));
                let path = PathBuf::from(name);
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io_at("opening log file", &path))?;
                Some(std::sync::Mutex::new(f))
            }
            None => None,
        };
        let prefixed = Prefixed {
            inner: reporter,
            prefix: if several {
                format!("[{}] ", p.or_host())
            } else {
                String::new()
            },
            file,
        };
        let out = build_once(store, &o, &prefixed)?;
        let _ = results[i].set(out);
        Ok(())
    };
    let n = platforms.len();
    let stop = AtomicBool::new(false);
    crate::schedule::run_stages(
        &vec![Vec::new(); n],
        &vec![true; n],
        opts.jobs,
        &stop,
        &build_platform,
    )
    .map_err(|f| {
        if several {
            BuildError::Platform {
                platform: platforms[f.stage].or_host().to_string(),
                source: Box::new(f.error),
            }
        } else {
            f.error
        }
    })?;
    // In --platform order, whichever finished first.
    let mut built: Vec<(builder::options::Platform, BuildOutput)> = platforms
        .iter()
        .zip(results)
        .filter_map(|(p, r)| r.into_inner().map(|o| (p.or_host(), o)))
        .collect();
    if let Some(list) = &opts.manifest {
        add_to_list(store, list, &built, opts, reporter)?;
    }
    let all: Vec<String> = built.iter().map(|(_, o)| o.image_id.clone()).collect();
    let mut last = built
        .pop()
        .map(|(_, o)| o)
        .ok_or_else(|| BuildError::invalid("no platform was built"))?;
    last.image_ids = all;
    Ok(last)
}

/// STEP and COMMIT lines with a platform prefix (a build for several platforms); as in
/// buildah, `--> id` and `Successfully tagged` lines have none.
/// One platform's output: its lines prefixed with the platform when several are built,
/// and written to the platform's own file with `--logsplit`.
struct Prefixed<'a> {
    inner: &'a dyn BuildReporter,
    prefix: String,
    file: Option<std::sync::Mutex<std::fs::File>>,
}

impl Prefixed<'_> {
    /// Write to the platform's file; `false` when it has none.
    fn to_file(&self, line: &str) -> bool {
        let Some(f) = &self.file else {
            return false;
        };
        if let Ok(mut f) = f.lock() {
            use std::io::Write;
            let _ = writeln!(f, "{line}");
        }
        true
    }
}

impl builder::report::Reporter for Prefixed<'_> {
    fn progress(&self, line: &str) {
        if !self.to_file(line) {
            self.inner.progress(line)
        }
    }
    fn warn(&self, line: &str) {
        if !self.to_file(line) {
            self.inner.warn(line)
        }
    }
}

impl BuildReporter for Prefixed<'_> {
    fn step(&self, line: &str) {
        let line = if self.prefix.is_empty()
            || line.starts_with("--> ")
            || line.starts_with("Successfully tagged ")
        {
            line.to_string()
        } else {
            format!("{}{line}", self.prefix)
        };
        if !self.to_file(&line) {
            self.inner.step(&line)
        }
    }
}

/// `--manifest LIST`: the list (made if missing) gets each image, annotated with the
/// platform it was built for.
fn add_to_list(
    store: &Store,
    list: &str,
    built: &[(builder::options::Platform, BuildOutput)],
    opts: &BuildOptions,
    reporter: &dyn BuildReporter,
) -> Result<()> {
    use builder::manifest;
    let full = builder::reference::normalize_local_name(list)?
        .with_default_tag()
        .to_string();
    let id = match manifest::load(store, &full) {
        Ok(l) => l.id,
        Err(builder::Error::NotFound { .. }) => {
            let mut co = manifest::CreateOptions::default();
            co.registry = opts.registry.clone();
            manifest::create(store, &full, &[], &co, reporter)?
        }
        Err(e) => return Err(e.into()),
    };
    for (p, out) in built {
        let mut ao = manifest::AddOptions::default();
        ao.registry = opts.registry.clone();
        ao.update.os = Some(p.os.clone());
        ao.update.arch = Some(p.architecture.clone());
        ao.update.variant = Some(p.variant.clone());
        manifest::add(store, &id, &out.image_id, &ao, reporter)?;
    }
    Ok(())
}

/// `--all-platforms`: the platforms every base image (not scratch, not a stage) is
/// available for, as its manifest list in the store says (a single image: its own
/// platform), in the first base's order.
fn base_platforms(
    store: &Store,
    opts: &BuildOptions,
    reporter: &dyn BuildReporter,
) -> Result<Vec<builder::options::Platform>> {
    let context = std::path::absolute(&opts.context_dir)
        .map_err(io_at("resolving context directory", &opts.context_dir))?;
    let (plan, _) = load_plan(opts, &context, reporter)?;
    let mut global: BTreeMap<String, String> = BTreeMap::new();
    for (name, default) in &plan.global_args {
        if let Some(v) = opts.build_args.get(name).or(default.as_ref()) {
            global.insert(name.clone(), v.clone());
        }
    }
    let mut common: Option<Vec<builder::options::Platform>> = None;
    for i in 0..plan.stages.len() {
        let mut base = plan.base_of(i, &global)?;
        if i == 0 {
            if let Some(f) = &opts.from {
                base = f.clone();
            }
        }
        // --build-context NAME=docker-image://… names the image FROM NAME builds on.
        if let Some(BuildContext::Image(img)) = opts.build_contexts.get(&base) {
            base = img.clone();
        } else if base == builder::from::SCRATCH || plan.stage_ref(&base, i).is_some() {
            continue;
        }
        let mut fo = builder::options::FromOptions::default();
        fo.pull_policy = opts.pull_policy;
        fo.registry = opts.registry.clone();
        let these = builder::manifest::platforms_of(store, &base, &fo, reporter)
            .map_err(|e| BuildError::invalid(format!("finding the platforms of {base}: {e}")))?;
        common = Some(match common {
            None => these,
            Some(c) => c.into_iter().filter(|p| these.contains(p)).collect(),
        });
    }
    match common {
        Some(c) if !c.is_empty() => Ok(c),
        Some(_) => Err(BuildError::invalid(
            "--all-platforms: the base images have no platform in common",
        )),
        None => Err(BuildError::invalid(
            "--all-platforms: no base image to take platforms from (only scratch or stages)",
        )),
    }
}

/// Build once, for `opts.registry.platform`.
fn build_once(
    store: &Store,
    opts: &BuildOptions,
    reporter: &dyn BuildReporter,
) -> Result<BuildOutput> {
    // A URL or git repository is fetched to a temporary context first.
    let remote;
    let owned;
    let opts = match opts
        .context_dir
        .to_str()
        .filter(|s| crate::remote::is_remote(s))
    {
        Some(url) => {
            remote = crate::remote::fetch(url)?;
            let mut o = opts.clone();
            o.context_dir = remote.dir.clone();
            if o.containerfiles.is_empty() {
                if let Some(cf) = &remote.containerfile {
                    o.containerfiles.push(ContainerfileSource::Path(cf.clone()));
                } else if !["Containerfile", "Dockerfile"]
                    .iter()
                    .any(|n| remote.dir.join(n).is_file())
                {
                    // buildah's DiscoverContainerfile wording for a fetched context.
                    return Err(BuildError::invalid(format!(
                        "cannot find Containerfile or Dockerfile in context directory: stat {}: no such file or directory",
                        remote.dir.join("Dockerfile").display()
                    )));
                }
            } else {
                // -f paths are inside the fetched context.
                for c in o.containerfiles.iter_mut() {
                    if let ContainerfileSource::Path(p) = c {
                        if p.is_relative() {
                            *p = remote.dir.join(&*p);
                        }
                    }
                }
            }
            owned = o;
            &owned
        }
        None => opts,
    };
    let mut context = std::path::absolute(&opts.context_dir)
        .map_err(io_at("resolving context directory", &opts.context_dir))?;
    // A file as the context: its directory is the context and it the Containerfile.
    let file_owned;
    let opts = if context.is_file() && opts.containerfiles.is_empty() {
        let mut o = opts.clone();
        o.containerfiles
            .push(ContainerfileSource::Path(context.clone()));
        context = context.parent().map(Path::to_path_buf).unwrap_or_default();
        o.context_dir = context.clone();
        file_owned = o;
        &file_owned
    } else {
        opts
    };
    if !context.is_dir() {
        return Err(BuildError::invalid(format!(
            "context directory {}: no such file or directory",
            opts.context_dir.display()
        )));
    }
    let context = context
        .canonicalize()
        .map_err(io_at("resolving context directory", &context))?;
    let (mut plan, ignore_file) = load_plan(opts, &context, reporter)?;
    plan.build_context_names = opts.build_contexts.keys().cloned().collect();

    // Global ARGs: defaults, overridden by --build-arg.
    let mut global: BTreeMap<String, String> = BTreeMap::new();
    let mut used = BTreeSet::new();
    for (name, default) in &plan.global_args {
        let v = match opts.build_args.get(name) {
            Some(v) => {
                used.insert(name.clone());
                Some(v.clone())
            }
            None => match default {
                Some(d) => Some(
                    crate::shell::process_word(d, crate::parser::DEFAULT_ESCAPE, &global)
                        .map_err(|e| BuildError::invalid(format!("ARG {name}={d}: {e}")))?,
                ),
                None => None,
            },
        };
        if let Some(v) = v {
            global.insert(name.clone(), v);
        }
    }
    // Predefined platform args are usable in FROM lines without an ARG.
    for (k, v) in crate::executor::platform_args(&opts.registry.platform) {
        global.entry(k).or_insert(v);
    }
    let target = plan.target(opts.target.as_deref())?;
    // Bad tags fail before anything is built.
    for t in opts
        .tags
        .iter()
        .filter(|t| !builder::from::is_transport_ref(t))
    {
        builder::reference::normalize_local_name(t)
            .map_err(|e| BuildError::from(e).context_tag(t))?;
    }
    // --label becomes LABEL instructions at the end of the target stage, as in buildah.
    for (k, v) in &opts.labels {
        let line = format!("LABEL {k:?}={v:?}");
        let steps = crate::instruction::steps("--label", &line)?;
        plan.stages[target].steps.extend(steps);
    }
    let needed = if opts.skip_unused_stages {
        plan.needed(target, &global)
    } else {
        vec![true; plan.stages.len()]
    };
    // Stages a later FROM builds on get committed.
    let mut from_used = vec![false; plan.stages.len()];
    for (i, _) in needed
        .iter()
        .enumerate()
        .take(target + 1)
        .filter(|(_, n)| **n)
    {
        if let Ok(base) = plan.base_of(i, &global) {
            if let Some(d) = plan.stage_ref(&base, i) {
                from_used[d] = true;
            }
        }
    }
    // Secrets, heredocs, ssh agent sockets: in the system temp dir, locked while the build
    // runs, so that another hod's sweep of `hod-*` in $TMPDIR leaves it alone.
    let scratch = builder::scratch::ScratchDir::new_in(&std::env::temp_dir(), "build")?;
    // Declared after the scratch directory, so key agents stop before it is removed.
    let ssh_agents = crate::ssh::Agents::start(&opts.ssh, scratch.path())?;
    let used_args = std::sync::Mutex::new(used);
    let done: Vec<OnceLock<StageOutcome>> =
        (0..plan.stages.len()).map(|_| OnceLock::new()).collect();
    let intermediate_images = Mutex::new(Vec::new());
    let output = Mutex::new(None);
    let stop = AtomicBool::new(false);
    let multi = target > 0;
    let wanted: Vec<bool> = (0..plan.stages.len())
        .map(|i| i <= target && needed[i])
        .collect();
    let deps: Vec<Vec<usize>> = (0..plan.stages.len())
        .map(|i| stage_dependencies(&plan, i, &global, &wanted))
        .collect();
    let reaper = Reaper::new(&deps, &wanted, target, opts.remove_containers);
    // One stage: its working container, its image when a later stage or the build uses one.
    let build_stage = |i: usize| -> Result<()> {
        let stage = &plan.stages[i];
        let mut base = plan.base_of(i, &global)?;
        if i == 0 {
            if let Some(f) = &opts.from {
                base = f.clone();
            }
        }
        let mut shown = stage.base.clone();
        if let Some(BuildContext::Image(img)) = opts.build_contexts.get(&base) {
            // --build-context NAME=docker-image://… wins over a stage called NAME.
            base = img.clone();
            shown = base.clone();
        } else if let Some(d) = plan.stage_ref(&base, i) {
            base = done[d]
                .get()
                .and_then(|o| o.image_id.clone())
                .ok_or_else(|| BuildError::invalid(format!("stage {d} has no image")))?;
            shown = base.clone();
        } else if base != stage.base {
            shown = base.clone();
        }
        let prefix = if multi {
            format!("[{}/{}] ", i + 1, target + 1)
        } else {
            String::new()
        };
        let total = stage.steps.len() + 1;
        let cx = StageContext {
            store,
            opts,
            reporter,
            plan: &plan,
            global_args: &global,
            context_dir: &context,
            ignore_file: ignore_file.as_deref(),
            prefix: prefix.clone(),
            done: &done,
            scratch: scratch.path(),
            ssh: &ssh_agents,
            used_args: &used_args,
            stop: &stop,
        };
        let mut ex = StageExecutor::start(&cx, stage, &base, &shown, total)?;
        let mut cached = None;
        let run = if opts.layers {
            ex.run_steps_cached(total).map(|last| cached = last)
        } else {
            ex.run_steps(total)
        };
        if run.is_ok() {
            reaper.past_steps(i, &deps[i]);
        }
        let created_by = ex.last_created_by.clone();
        let deferred_push = ex.deferred_cache_push.take();
        let mut b = ex.builder;
        let image_id = run.and_then(|()| {
            if i == target {
                let out = commit_final(
                    store,
                    opts,
                    reporter,
                    &mut b,
                    stage.steps.is_empty(),
                    cached.as_deref(),
                    &created_by,
                    &prefix,
                    deferred_push.as_ref(),
                )?;
                let id = out.image_id.clone();
                *output.lock().unwrap_or_else(|e| e.into_inner()) = Some(out);
                Ok(Some(id))
            } else if let Some(id) = cached {
                Ok(Some(id))
            } else if opts.layers && stage.steps.is_empty() && !b.state.from_image_id.is_empty() {
                // A stage that is only a FROM is its base image (a stable cache key for
                // COPY --from of it).
                Ok(Some(b.state.from_image_id.clone()))
            } else if from_used[i] {
                let co = commit_options(opts, &created_by, false);
                let out = b.commit(store, None, &co, &builder::report::Quiet)?;
                reporter.step(&format!("--> {}", short(&out.image_id)));
                if !opts.layers {
                    intermediate_images
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(out.image_id.clone());
                }
                Ok(Some(out.image_id))
            } else {
                Ok(None)
            }
        });
        // The container is kept for COPY --from, --output and the cleanup, failed or not.
        let (ok, image_id) = match image_id {
            Ok(id) => (Ok(()), id),
            Err(e) => (Err(e), None),
        };
        let _ = done[i].set(StageOutcome {
            builder: b,
            image_id,
        });
        if ok.is_ok() {
            reaper.succeeded(i);
        }
        ok
    };
    let failure = std::thread::scope(|s| {
        let rx = reaper.start();
        s.spawn(|| {
            for d in rx {
                if let Some(o) = done[d].get() {
                    match o.builder.remove_container(store) {
                        Ok(()) => tracing::debug!(
                            "removed the container of stage {d}: no stage needs it any more"
                        ),
                        Err(e) => tracing::debug!("removing the container of stage {d}: {e}"),
                    }
                }
            }
        });
        let r = crate::schedule::run_stages(&deps, &wanted, opts.jobs, &stop, &build_stage);
        reaper.stop();
        r.err()
    });
    let result = failure
        .map_or(Ok(()), Err)
        .map_err(|f| {
            if opts.jobs == 1 {
                f.error
            } else {
                // Stages run side by side: say which one failed.
                let s = &plan.stages[f.stage];
                BuildError::Stage {
                    stage: s.name.clone().unwrap_or_else(|| s.index.to_string()),
                    source: Box::new(f.error),
                }
            }
        })
        .and_then(|()| {
            output
                .into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .ok_or_else(|| BuildError::invalid("no stage was built"))
        });
    let mut done: Vec<Option<StageOutcome>> = done.into_iter().map(OnceLock::into_inner).collect();
    let result = result.and_then(|output| {
        if let Some(spec) = &opts.output {
            if let Some(o) = done[target].as_mut() {
                export(store, &mut o.builder, spec)?;
            }
        }
        Ok(output)
    });
    let intermediate_images = intermediate_images
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    let ok = result.is_ok();
    if (ok && opts.remove_containers) || (!ok && opts.force_remove) {
        for (_, o) in done
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !reaper.reaped(*i))
        {
            let Some(o) = o else { continue };
            if let Err(e) = o.builder.delete(store) {
                tracing::debug!("removing a build container: {e}");
            }
        }
    }
    for id in intermediate_images {
        if let Err(e) = store.delete_image(&id) {
            tracing::debug!("removing intermediate image {id}: {e}");
        }
    }
    if ok {
        let used = used_args.lock().map(|u| u.clone()).unwrap_or_default();
        let unused: Vec<&String> = opts
            .build_args
            .keys()
            .filter(|k| !used.contains(*k) && !is_predefined(k))
            .collect();
        if !unused.is_empty() {
            let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            reporter.warn(&format!(
                "one or more build args were not consumed: [{}]",
                names.join(" ")
            ));
        }
    }
    result
}

/// The earlier stages stage `i` waits for: those it names (FROM, COPY --from, RUN --mount
/// from=) that the build makes. A `--from` that only a stage's own ARGs can expand cannot
/// be resolved before the stage runs: such a stage waits for every earlier stage.
fn stage_dependencies(
    plan: &Plan,
    i: usize,
    global: &BTreeMap<String, String>,
    wanted: &[bool],
) -> Vec<usize> {
    // `--from=X` (COPY, ADD) and `from=X` (RUN --mount) values as written.
    let unresolved = plan.stages[i].steps.iter().any(|s| {
        let o = s.original.to_ascii_lowercase();
        o.match_indices("from=").any(|(at, _)| {
            o[at + 5..]
                .split(|c: char| c.is_whitespace() || c == ',')
                .next()
                .is_some_and(|v| v.contains('$'))
        })
    });
    if unresolved {
        return (0..i).filter(|d| wanted[*d]).collect();
    }
    let mut d = plan.dependencies(i, global);
    d.retain(|d| wanted[*d]);
    d.sort_unstable();
    d.dedup();
    d
}

fn is_predefined(k: &str) -> bool {
    k.to_ascii_lowercase().ends_with("_proxy")
        || crate::executor::platform_args(&Default::default()).contains_key(k)
}

/// The 11-character short ID buildah prints after `-->`.
pub fn short(id: &str) -> &str {
    &id[..id.len().min(11)]
}

#[allow(clippy::too_many_arguments)]
fn commit_final(
    store: &Store,
    opts: &BuildOptions,
    reporter: &dyn BuildReporter,
    b: &mut Builder,
    no_steps: bool,
    cached: Option<&str>,
    created_by: &str,
    prefix: &str,
    deferred_push: Option<&(String, String)>,
) -> Result<BuildOutput> {
    let c = &mut b.state.config;
    for e in &opts.env {
        match e.split_once('=') {
            Some((k, v)) => c.set_env(k, v),
            None => {
                if let Ok(v) = std::env::var(e) {
                    c.set_env(e, &v)
                }
            }
        }
    }
    for k in &opts.unset_env {
        c.unset_env(k);
    }
    if let Some(v) = &opts.os_version {
        c.os_version = Some(v.clone()).filter(|v| !v.is_empty());
    }
    for f in &opts.os_features {
        match f.strip_suffix('-') {
            Some(name) => c.unset_os_feature(name),
            None => c.set_os_feature(f),
        }
    }
    b.save()?;
    // A first tag with a transport (`dir:PATH`, `oci:DIR`, `docker://…`) is where the image
    // is written, as buildah's output; the other tags name it in the local store.
    let transport_dest = opts
        .tags
        .first()
        .filter(|t| builder::from::is_transport_ref(t))
        .cloned();
    let names: Vec<String> = opts
        .tags
        .iter()
        .filter(|t| !builder::from::is_transport_ref(t))
        .map(|t| {
            builder::reference::normalize_local_name(t)
                .map(|n| n.to_string())
                .map_err(BuildError::from)
        })
        .collect::<Result<_>>()?;
    let first = opts.tags.first().map(String::as_str);
    reporter.step(format!("{prefix}COMMIT {}", first.unwrap_or("")).trim_end());
    // --cache-to: the last step's image goes out after the COMMIT line, as buildah's.
    if let Some((step_id, key)) = deferred_push {
        crate::executor::push_cache(store, opts, reporter, step_id, key)?;
    }
    // A stage that is only a FROM of an image is that image, as in buildah.
    let reuse = no_steps
        && !b.state.from_image_id.is_empty()
        && opts.env.is_empty()
        && opts.unset_env.is_empty()
        && opts.os_version.is_none()
        && opts.os_features.is_empty()
        && opts.annotations.is_empty()
        && !opts.squash;
    let plain = final_is_last_step_image(opts);
    let image_id = if reuse && transport_dest.is_none() {
        b.state.from_image_id.clone()
    } else if let Some(id) = cached.filter(|_| plain && transport_dest.is_none()) {
        // --layers: the last step's image is the result.
        id.to_string()
    } else {
        let mut co = commit_options(opts, created_by, true);
        // The target's container is removed after this commit and nothing reads it any
        // more (no --output): its files may become the image's new layer as they are.
        co.consume_container = opts.remove_containers && opts.output.is_none();
        let dest = transport_dest
            .as_deref()
            .or(names.first().map(String::as_str));
        let quiet = builder::report::Quiet;
        let rep: &dyn builder::report::Reporter = if opts.quiet { &quiet } else { reporter };
        let out = b.commit(store, dest, &co, rep)?;
        out.image_id
    };
    // buildah reports every name the image has once tagged, its new ones first (a
    // FROM-only build's image is the base image, so the base's names are listed too).
    let mut tagged = names.clone();
    if !names.is_empty() && transport_dest.is_none() {
        let img = store.image(&image_id)?;
        tagged.extend(img.names.iter().filter(|n| !names.contains(n)).cloned());
        if tagged != img.names {
            store.set_image_names(&image_id, &tagged)?;
        }
    }
    reporter.step(&format!("--> {}", short(&image_id)));
    for n in &tagged {
        reporter.step(&format!("Successfully tagged {n}"));
    }
    Ok(BuildOutput {
        image_id,
        names,
        image_ids: Vec::new(),
    })
}

/// Whether, with `--layers`, the build's image is the last step's image as it is (no
/// build-wide change to the config, history or layers at the end).
pub fn final_is_last_step_image(opts: &BuildOptions) -> bool {
    opts.env.is_empty()
        && opts.unset_env.is_empty()
        && opts.os_version.is_none()
        && opts.os_features.is_empty()
        && opts.annotations.is_empty()
        && !opts.squash
        && !opts.omit_history
}

/// `--output`: the target's filesystem to a directory or a tar file.
fn export(store: &Store, b: &mut Builder, spec: &BuildOutputSpec) -> Result<()> {
    use builder::archive::diff::{write_changes, ChangeSource, DiffOptions};
    let mnt = b.mount(store)?;
    let mut tar_bytes = Vec::new();
    let r = write_changes(
        ChangeSource::Compare {
            layer: &mnt,
            parent: None,
        },
        &DiffOptions::default(),
        &mut tar_bytes,
    );
    let u = b.unmount(store);
    r?;
    u?;
    match spec {
        BuildOutputSpec::Tar(p) => {
            std::fs::write(p, &tar_bytes).map_err(io_at("writing", p))?;
        }
        BuildOutputSpec::Local(dir) => {
            // The image's tree is untrusted and the destination may hold links already: it is
            // written with the layer extractor, every path resolved inside `dir` through
            // descriptors (never `tar::Archive::unpack`, docs/security.md X35).
            use builder::archive::apply::{apply_layer, ApplyOptions, WhiteoutFormat};
            std::fs::create_dir_all(dir).map_err(io_at("creating", dir))?;
            let mut opts = ApplyOptions::new(WhiteoutFormat::Delete);
            opts.ignore_chown_errors = !rustix::process::geteuid().is_root();
            apply_layer(dir, &mut &tar_bytes[..], opts)?;
        }
    }
    Ok(())
}

/// Deletes, while the build goes on, the container of each stage the build no longer needs:
/// the stage succeeded, is not the target, and every stage that uses it (COPY --from,
/// RUN --mount from=, or any stage whose references are only known when it runs) is past its
/// steps. A later FROM of it uses its image, not its container. On `bud` with `--rm` (the
/// default), as buildah removes the containers of the stages that succeeded; the final
/// container and any that fail keep the rules of the end of the build.
struct Reaper {
    enabled: bool,
    target: usize,
    /// For each stage, the wanted stages that use it.
    users: Vec<Vec<usize>>,
    past_steps: Vec<std::sync::atomic::AtomicBool>,
    succeeded: Vec<std::sync::atomic::AtomicBool>,
    reaped: Vec<std::sync::atomic::AtomicBool>,
    tx: Mutex<Option<std::sync::mpsc::Sender<usize>>>,
}

impl Reaper {
    fn new(deps: &[Vec<usize>], wanted: &[bool], target: usize, enabled: bool) -> Reaper {
        let n = deps.len();
        let flags = || (0..n).map(|_| AtomicBool::new(false)).collect::<Vec<_>>();
        Reaper {
            enabled,
            target,
            users: (0..n)
                .map(|d| {
                    (0..n)
                        .filter(|&j| j != d && wanted[j] && deps[j].contains(&d))
                        .collect()
                })
                .collect(),
            past_steps: flags(),
            succeeded: flags(),
            reaped: flags(),
            tx: Mutex::new(None),
        }
    }

    /// The channel the deleting thread reads until [`Reaper::stop`].
    fn start(&self) -> std::sync::mpsc::Receiver<usize> {
        let (tx, rx) = std::sync::mpsc::channel();
        *self.tx.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        rx
    }

    fn stop(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Stage `i` ran all its steps: the stages it used may be done with.
    fn past_steps(&self, i: usize, used: &[usize]) {
        self.past_steps[i].store(true, std::sync::atomic::Ordering::SeqCst);
        for &d in used {
            self.offer(d);
        }
    }

    /// Stage `i` is built (and committed when it had to be).
    fn succeeded(&self, i: usize) {
        self.succeeded[i].store(true, std::sync::atomic::Ordering::SeqCst);
        self.offer(i);
    }

    fn reaped(&self, i: usize) -> bool {
        self.reaped[i].load(std::sync::atomic::Ordering::SeqCst)
    }

    fn offer(&self, d: usize) {
        use std::sync::atomic::Ordering::SeqCst;
        if !self.enabled
            || d == self.target
            || !self.succeeded[d].load(SeqCst)
            || !self.users[d]
                .iter()
                .all(|&j| self.past_steps[j].load(SeqCst))
            || self.reaped[d].swap(true, SeqCst)
        {
            return;
        }
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        if tx.as_ref().is_none_or(|tx| tx.send(d).is_err()) {
            // No deleting thread: the end of the build deletes it.
            self.reaped[d].store(false, SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_dependencies_follow_from_copy_and_mounts() {
        let file = "FROM busybox AS a
FROM busybox AS b
RUN --mount=type=bind,from=a,target=/a true
FROM a AS c
COPY --from=b /x /x
COPY f$Z /f
FROM busybox AS d
ARG S=a
COPY --from=$S /x /x
";
        let plan = crate::stage::from_files(&[("C".into(), file.into())]).unwrap();
        let g = BTreeMap::new();
        let all = [true; 4];
        assert!(stage_dependencies(&plan, 0, &g, &all).is_empty());
        assert_eq!(stage_dependencies(&plan, 1, &g, &all), [0]);
        // A `$` outside a --from is no reason to wait.
        assert_eq!(stage_dependencies(&plan, 2, &g, &all), [0, 1]);
        // A --from only the stage's own ARG expands: every earlier stage the build makes.
        assert_eq!(
            stage_dependencies(&plan, 3, &g, &[true, false, true, true]),
            [0, 2]
        );
    }
}
