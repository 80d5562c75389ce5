//! `--layers`: every step ends in an intermediate image, reused by a later build whose
//! step has the same key (see `crate::cache`).
//!
//! ```text
//! per step:  key = parent image + the step as written + build args it uses + source digests
//!   FROM  ─> with a cache, the base is found but its container is not made yet (detached)
//!   hit  ─> "--> Using cache <id>"; the config comes from the cached image; the working
//!           container is left as it is (stale) until a step misses or the stage ends
//!   miss ─> (--explain-cache: what differed from the closest cached step)
//!           container made from the parent if stale ─> execute ─> commit (unnamed) with
//!           the key in the image's metadata ─> the next step starts from that image
//!   last step: committed the same way; the build names it (commit_final reuses it)
//!   --cache-from REPO: a local miss pulls docker://REPO:<key> (absent = a miss)
//!   --cache-to REPO:   a built or locally found step's image is pushed as REPO:<key>
//! ```
use std::collections::BTreeSet;

use builder::image::History;

use super::{commit_options, step_error, StageExecutor};
use crate::cache::{self, CacheEntry, SourceDigester};
use crate::digests::DigestCache;
use crate::error::{io_at, Result};
use crate::instruction::{Instruction, Step};
use crate::options::BuildContext;

/// The cached images the store holds: `(image ID, what it was made from)`; with a `ttl`,
/// only those created less than that long ago.
fn cached_entries(
    store: &builder::Store,
    ttl: Option<std::time::Duration>,
) -> Result<Vec<(String, CacheEntry)>> {
    let index = builder::images::ImageIndex::load(store)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Ok(index
        .images()
        .iter()
        .filter(|i| ttl.is_none_or(|t| now - index.created(&i.id) < t.as_secs() as i64))
        .filter_map(|i| CacheEntry::from_metadata(&i.metadata).map(|e| (i.id.clone(), e)))
        .collect())
}

impl StageExecutor<'_, '_> {
    /// `--layers`: run the steps, each ending in an intermediate image, reusing cached
    /// ones. Returns the stage's last image.
    pub fn run_steps_cached(&mut self, total_steps: usize) -> Result<Option<String>> {
        let n = self.stage.steps.len();
        let base = self.builder.state.from_image_id.clone();
        let mut parent = if base.is_empty() {
            "scratch".to_string()
        } else {
            base
        };
        let store = self.cx.store;
        let mut entries = cached_entries(store, self.cx.opts.cache_ttl)?;
        // key → image (the parent is part of the key).
        let mut by_key: std::collections::HashMap<String, String> = entries
            .iter()
            .map(|(id, e)| (e.key(), id.clone()))
            .collect();
        let use_cache = self.cx.opts.uses_layer_cache();
        let mut digests = DigestCache::load(store.root());
        let (patterns, _) =
            builder::copier::ignore::context_patterns(self.cx.context_dir, self.cx.ignore_file)?;
        let ignore = builder::copier::ignore::Matcher::new(&patterns)?;
        let mut sd = SourceDigester {
            ignore,
            digests: &mut digests,
            follow_named: true,
        };
        // Images this build made (a step whose parent is one of them cannot hit).
        let mut made_here: BTreeSet<String> = BTreeSet::new();
        // The working container is not `parent` (the steps since it were cache hits).
        let mut stale = self.builder.is_detached();
        let mut last = None;
        // The target's last step is named by the build's COMMIT line; other stages print
        // `--> id` after every step.
        let is_target =
            self.cx.plan.target(self.cx.opts.target.as_deref()).ok() == Some(self.stage.index);
        for (k, step) in self.stage.steps.iter().enumerate() {
            self.check_stop()?;
            let is_last = k + 1 == n;
            let print_id = !is_last || !is_target;
            self.cx.reporter.step(&format!(
                "{}STEP {}/{total_steps}: {}",
                self.cx.prefix,
                k + 2,
                step.original
            ));
            let mut want = CacheEntry {
                parent: parent.clone(),
                ..Default::default()
            };
            self.key_parts(step, &mut want, &mut sd)
                .map_err(|e| step_error(&step.original, e))?;
            let key = want.key();
            if use_cache {
                let mut hit = by_key.get(&key).cloned();
                let local = hit.is_some();
                if hit.is_none() && !self.cx.opts.cache_from.is_empty() {
                    hit = self.pull_cache(&key, &want);
                    if let Some(id) = &hit {
                        by_key.insert(key.clone(), id.clone());
                        entries.push((id.clone(), want.clone()));
                    }
                }
                if let Some(id) = hit {
                    if is_copy_or_add(step) {
                        // The key holds the sources' digests, so a COPY/ADD hit is found
                        // before anything is copied (buildah's first-pass lookup).
                        tracing::debug!("Found a cache hit in the first iteration with id {id}");
                    }
                    // As buildah: the hit is reported first, then a local one is pushed.
                    self.cx.reporter.step(&format!("--> Using cache {id}"));
                    if local {
                        self.push_cache(&id, &key)
                            .map_err(|e| step_error(&step.original, e))?;
                    }
                    if print_id {
                        self.cx
                            .reporter
                            .step(&format!("--> {}", crate::build::short(&id)));
                    }
                    self.take_hit(step, &id)
                        .map_err(|e| step_error(&step.original, e))?;
                    // A hit makes no container, unless --rm=false keeps them as buildah
                    // does: the one FROM made, and one for each next step, made from the
                    // hit.
                    if !self.cx.opts.remove_containers && self.pending.is_some() {
                        self.switch_to(&parent)
                            .map_err(|e| step_error(&step.original, e))?;
                    }
                    if self.cx.opts.remove_containers || is_last {
                        stale = true;
                    } else {
                        self.switch_to(&id)
                            .map_err(|e| step_error(&step.original, e))?;
                        stale = false;
                    }
                    parent = id.clone();
                    last = Some(id);
                    continue;
                }
                if self.cx.opts.explain_cache {
                    for why in explain(&want, &entries, &made_here) {
                        self.cx.reporter.step(&format!("--> Cache miss: {why}"));
                    }
                }
            }
            if stale {
                self.switch_to(&parent)?;
                stale = false;
            }
            let created_by = self
                .execute(step)
                .map_err(|e| step_error(&step.original, e))?;
            self.builder.save()?;
            // As buildah: a step that changes only the config adds no layer.
            let mut co = commit_options(self.cx.opts, &created_by, false);
            co.empty_layer = !changes_files(step);
            let out = self
                .builder
                .commit(store, None, &co, &builder::report::Quiet)
                .map_err(|e| step_error(&step.original, e.into()))?;
            store.set_image_metadata(&out.image_id, &want.to_metadata())?;
            if print_id {
                self.push_cache(&out.image_id, &key)
                    .map_err(|e| step_error(&step.original, e))?;
            } else {
                self.deferred_cache_push = Some((out.image_id.clone(), key.clone()));
            }
            by_key.insert(key, out.image_id.clone());
            entries.push((out.image_id.clone(), want));
            made_here.insert(out.image_id.clone());
            if print_id {
                self.cx
                    .reporter
                    .step(&format!("--> {}", crate::build::short(&out.image_id)));
            }
            // The next step (or, after the last, the build: --output, COPY --from, the
            // final commit) starts from the step's image; with --rm=false every step's
            // container stays, as in buildah.
            if !(is_last && self.container_unused_after(is_target)) {
                self.switch_to(&out.image_id)?;
            }
            if is_last {
                self.last_created_by = created_by;
            }
            parent = out.image_id.clone();
            last = Some(out.image_id);
        }
        if stale && !self.container_unused_after(is_target) {
            // Later stages (COPY --from, --output) and the final commit use the container.
            self.switch_to(&parent)?;
            if let Some(h) = self.last_history(&parent) {
                self.last_created_by = h;
            }
        }
        if let Err(e) = sd.digests.save() {
            tracing::debug!("saving the context digest cache: {e}");
        }
        Ok(last)
    }

    /// Whether nothing reads the stage's container once its steps are done: the target
    /// stage, whose last step's image is the build's image (no --output, no build-wide
    /// config change). Then a no-change rebuild makes no container from the cached image
    /// (on vfs, a copy of the whole rootfs), and, as in buildah, --rm=false keeps none made
    /// after the last step.
    fn container_unused_after(&self, is_target: bool) -> bool {
        let o = self.cx.opts;
        is_target && o.output.is_none() && crate::build::final_is_last_step_image(o)
    }

    /// `--cache-from`: the first repository that has `REPO:<key>`, pulled; the image gets
    /// the key in its record so later builds find it locally. Failures are not errors (a
    /// miss), as in buildah.
    fn pull_cache(&self, key: &str, want: &CacheEntry) -> Option<String> {
        let store = self.cx.store;
        for repo in &self.cx.opts.cache_from {
            let src = cache_ref(repo, key);
            let mut po = builder::pull::PullOptions::default();
            po.policy = builder::pull::PullPolicy::Always;
            po.registry = self.cx.opts.registry.clone();
            match builder::pull::pull(store, &src, &po, &builder::report::Quiet) {
                Ok(id) => {
                    if let Err(e) = store.set_image_metadata(&id, &want.to_metadata()) {
                        tracing::debug!("recording the cache key of {id}: {e}");
                        continue;
                    }
                    tracing::debug!("pulled cache {src}: {id}");
                    if !self.cx.opts.quiet {
                        self.cx
                            .reporter
                            .step(&format!("--> Cache pulled from remote {src}"));
                    }
                    return Some(id);
                }
                Err(e) => tracing::debug!("pulling cache {src}: {e}"),
            }
        }
        None
    }

    /// `--cache-to`: push a step's image to every repository as `REPO:<key>`.
    fn push_cache(&self, id: &str, key: &str) -> Result<()> {
        push_cache(self.cx.store, self.cx.opts, self.cx.reporter, id, key)
    }

    /// The `created_by` of an image's last history entry.
    fn last_history(&self, image: &str) -> Option<String> {
        let rec = self.cx.store.image(image).ok()?;
        let base = builder::from::read_image(self.cx.store, rec, &self.from_opts.registry.platform)
            .ok()?;
        base.config
            .history
            .last()
            .and_then(|h| h.created_by.clone())
    }

    /// A cache hit: what the step does to the executor's own state (ARG scope, CMD seen)
    /// happens; the config becomes the cached image's.
    fn take_hit(&mut self, step: &Step, id: &str) -> Result<()> {
        if !matches!(
            step.instruction,
            Instruction::Run(_)
                | Instruction::Copy(_)
                | Instruction::Add(_)
                | Instruction::Workdir(_)
        ) {
            self.execute(step)?;
        }
        let rec = self.cx.store.image(id)?;
        let base =
            builder::from::read_image(self.cx.store, rec, &self.from_opts.registry.platform)?;
        self.builder.state.config = base.config;
        // Nothing of the stale container's own history is kept.
        self.builder.state.appended_history = Vec::<History>::new();
        Ok(())
    }

    /// Whether an ADD source names one regular file of the context that ADD extracts.
    fn is_local_archive(&self, source: &str) -> bool {
        if source.contains("://") || source.contains(['*', '?', '[']) {
            return false;
        }
        let clean = builder::rootfs::clean_container_path(&format!("/{source}"));
        let p = self
            .cx
            .context_dir
            .join(clean.strip_prefix("/").unwrap_or(&clean));
        std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file())
            && builder::copier::archive::is_archive(&p)
    }

    /// Add what `step` contributes to a cache key: its text, the build args it uses and
    /// its sources' content.
    fn key_parts(
        &self,
        step: &Step,
        e: &mut CacheEntry,
        sd: &mut SourceDigester<'_>,
    ) -> Result<()> {
        e.steps.push(step.original.clone());
        let vars = self.vars();
        let (inst, names) = step.expand_with_matches(&vars)?;
        // An ARG that ENV overrides is not in the key: the step sees the ENV value, which
        // the parent image already carries (buildah's cache hits across such ARGs).
        let env = self.builder.state.config.env().to_vec();
        let overridden = |k: &str| {
            env.iter()
                .any(|e| e.split_once('=').map(|p| p.0) == Some(k))
        };
        for n in names {
            if let Some(v) = self.args.get(&n).filter(|_| !overridden(&n)) {
                e.args.insert(n, v.clone());
            }
        }
        let is_add = matches!(inst, Instruction::Add(_));
        match inst {
            Instruction::Arg(list) => {
                // buildah's ARG history names the declared args that have a value, so a
                // build that leaves one unset (or sets one that was not) misses here; the
                // value itself only counts where a step uses it.
                for d in list {
                    if self.arg_value(&d.name, d.default.as_deref()).is_some() {
                        e.args
                            .entry(d.name.clone())
                            .or_insert_with(|| "(set)".into());
                    }
                }
            }
            Instruction::Run(_) => {
                // A RUN sees every ARG in scope (buildah records them: `|N k=v … cmd`).
                for (k, v) in &self.args {
                    if !overridden(k) {
                        e.args.insert(k.clone(), v.clone());
                    }
                }
            }
            Instruction::Copy(c) | Instruction::Add(c) if c.heredocs.is_empty() => match &c.from {
                Some(f) => self.copy_from_sources(f, &c.sources, e)?,
                None => {
                    for s in &c.sources {
                        if s.contains("://") {
                            e.sources
                                .insert(s.clone(), c.checksum.clone().unwrap_or_default());
                        } else {
                            e.sources
                                .extend(cache::source_digests(self.cx.context_dir, s, sd)?);
                        }
                    }
                    // ADD of local archives only: their entries keep their own owners and
                    // modes (buildah's copier passes them through), so `--chown`/`--chmod`
                    // change nothing and are not in the key (bud.bats "bud cache
                    // add-copy-chown").
                    if is_add
                        && !c.sources.is_empty()
                        && c.sources.iter().all(|s| self.is_local_archive(s))
                    {
                        if let Some(last) = e.steps.last_mut() {
                            *last = last
                                .split_whitespace()
                                .filter(|w| {
                                    !w.starts_with("--chown=") && !w.starts_with("--chmod=")
                                })
                                .collect::<Vec<_>>()
                                .join(" ");
                        }
                    }
                }
            },
            _ => {}
        }
        Ok(())
    }
}

impl StageExecutor<'_, '_> {
    /// The key part of `COPY --from=f`: a build-context directory's or an earlier stage's
    /// files are digested (as buildah does: a stage rebuilt with the same files still
    /// hits); an image is its ID.
    fn copy_from_sources(&self, f: &str, sources: &[String], e: &mut CacheEntry) -> Result<()> {
        let numeric = f.parse::<usize>().is_ok();
        let mut put = |root: &std::path::Path, follow: bool| -> Result<()> {
            let mut mem = DigestCache::in_memory();
            let mut sd = SourceDigester {
                ignore: builder::copier::ignore::Matcher::new::<&str>(&[])?,
                digests: &mut mem,
                follow_named: follow,
            };
            for s in sources {
                for (p, d) in cache::source_digests(root, s, &mut sd)? {
                    e.sources.insert(format!("--from={f} {p}"), d);
                }
            }
            Ok(())
        };
        match (self.cx.opts.build_contexts.get(f), numeric) {
            (Some(BuildContext::Dir(d)), false) => {
                let d = std::path::absolute(d).map_err(io_at("resolving", d))?;
                return put(&d, true);
            }
            (Some(BuildContext::Image(img)), false) => {
                let id = self.cx.store.image(img).map(|r| r.id).unwrap_or_default();
                e.sources.insert(format!("--from={f}"), id);
                return Ok(());
            }
            _ => {}
        }
        if let Some(i) = self.cx.plan.stage_ref(f, self.stage.index) {
            let Some(o) = self.cx.done.get(i).and_then(|o| o.get()) else {
                return Ok(());
            };
            let mut b = o.builder.clone();
            let mnt = b.mount(self.cx.store)?;
            let r = put(&mnt, false);
            let u = b.unmount(self.cx.store);
            r?;
            u?;
            return Ok(());
        }
        let id = self.cx.store.image(f).map(|r| r.id).unwrap_or_default();
        e.sources.insert(format!("--from={f}"), id);
        Ok(())
    }
}

/// `docker://REPO:<key>` (a `docker://` prefix on REPO is allowed).
fn cache_ref(repo: &str, key: &str) -> String {
    format!("docker://{}:{key}", repo.trim_start_matches("docker://"))
}

/// Whether a step changes the filesystem (its image gets a layer).
fn changes_files(step: &Step) -> bool {
    matches!(
        step.instruction,
        Instruction::Run(_) | Instruction::Copy(_) | Instruction::Add(_) | Instruction::Workdir(_)
    )
}

/// Why `want` missed, from the closest cached step: one on the same parent (what differs
/// in the instruction, build args or sources), else the same instruction on another parent.
fn explain(
    want: &CacheEntry,
    entries: &[(String, CacheEntry)],
    made_here: &BTreeSet<String>,
) -> Vec<String> {
    let same_parent = entries
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e.parent == want.parent);
    // The closest: the same instruction first, then the fewest differences.
    let best = same_parent
        .map(|e| {
            let why = want.explain(e);
            ((e.steps != want.steps, why.len()), why)
        })
        .min_by(|a, b| a.0.cmp(&b.0));
    if let Some((_, why)) = best {
        return why;
    }
    if made_here.contains(&want.parent) {
        return vec!["parent image changed (an earlier step was rebuilt)".into()];
    }
    let same_step = entries
        .iter()
        .map(|(_, e)| e)
        .rfind(|e| e.steps == want.steps);
    match same_step {
        Some(e) => vec![format!(
            "parent image changed (cached on {}, now {})",
            crate::build::short(&e.parent),
            crate::build::short(&want.parent)
        )],
        None => vec!["no cached image of this step".into()],
    }
}

/// Whether `step` is a COPY or ADD (by its keyword).
fn is_copy_or_add(step: &Step) -> bool {
    let k = step.original.split_whitespace().next().unwrap_or("");
    k.eq_ignore_ascii_case("COPY") || k.eq_ignore_ascii_case("ADD")
}

/// `--cache-to`: push `id` to every repository as `REPO:<key>`, after buildah's
/// `--> Pushing cache REPO:KEY` line.
pub(crate) fn push_cache(
    store: &builder::Store,
    opts: &crate::options::BuildOptions,
    reporter: &dyn crate::BuildReporter,
    id: &str,
    key: &str,
) -> Result<()> {
    for repo in &opts.cache_to {
        let dest = cache_ref(repo, key);
        if !opts.quiet {
            reporter.step(&format!("--> Pushing cache {dest}"));
        }
        let mut po = builder::push::PushOptions::default();
        po.registry = opts.registry.clone();
        po.format = opts.format;
        builder::push::push(store, id, &dest, &po, &builder::report::Quiet).map_err(|e| {
            crate::error::BuildError::invalid(format!("failed pushing cache to {dest:?}: {e}"))
        })?;
    }
    Ok(())
}
