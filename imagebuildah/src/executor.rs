//! One stage on one working container: every step is a `builder` primitive.
//!
//! ```text
//! FROM  ──> Builder::new_from (pull policy, platform, format)
//! RUN   ──> Builder::run     (SHELL + command, ARGs as env, --mount/--network/secrets)
//! COPY/ADD ─> Builder::copy  (context + ignore file, --from a stage's container or an image)
//! ENV LABEL CMD … ──> the config setters on the builder's ImageConfig
//! each step but the last ──> an empty-layer history entry; the last names the commit
//! ```
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use builder::commit::CommitOptions;
use builder::copy::{CopyKind, CopyOptions};
use builder::image::{HealthConfig, History};
use builder::options::{FromOptions, Platform};
use builder::run::{NetworkMode, RunOptions};
use builder::{Builder, Store};

use crate::error::{io_at, BuildError, Result};
use crate::instruction::{
    Command as CommandForm, CopySpec, Healthcheck, Instruction, MountKind, Run as RunStep,
    RunMount, RunNetwork, RunSecurity, Step,
};
use crate::options::{BuildContext, BuildOptions, SecretSource};
use crate::stage::{Plan, Stage};
use crate::BuildReporter;

mod layers;
pub(crate) use layers::push_cache;

/// What the stages before this one left for it.
#[derive(Debug)]
pub struct StageOutcome {
    /// The stage's working container.
    pub builder: Builder,
    /// The image committed from it, when one was (a later FROM uses it, or it is the target).
    pub image_id: Option<String>,
}

/// Everything a stage needs from the build.
pub struct StageContext<'a> {
    /// The store.
    pub store: &'a Store,
    /// The build's options.
    pub opts: &'a BuildOptions,
    /// Where step lines go.
    pub reporter: &'a dyn BuildReporter,
    /// The whole plan (for `--from=<stage>`).
    pub plan: &'a Plan,
    /// Global ARG values (declared before the first FROM, with build args applied).
    pub global_args: &'a BTreeMap<String, String>,
    /// The absolute context directory.
    pub context_dir: &'a Path,
    /// The ignore file in force, if any.
    pub ignore_file: Option<&'a Path>,
    /// `[i/n] ` for multi-stage builds.
    pub prefix: String,
    /// Earlier stages' results (by index; set once a stage is over).
    pub done: &'a [std::sync::OnceLock<StageOutcome>],
    /// A private directory for secrets and heredoc files of this build.
    pub scratch: &'a Path,
    /// The `--ssh` agents, by ID.
    pub ssh: &'a crate::ssh::Agents,
    /// Build args the build used (for the unused-args warning).
    pub used_args: &'a std::sync::Mutex<BTreeSet<String>>,
    /// Set when another stage failed (`--jobs`): the stage stops before its next step.
    pub stop: &'a std::sync::atomic::AtomicBool,
}

/// The platform args buildah predefines (`TARGETARCH`, …), valued for `platform`.
pub fn platform_args(platform: &Platform) -> BTreeMap<String, String> {
    let host_arch = builder::image::config::host_arch().to_string();
    let os = if platform.os.is_empty() {
        "linux".to_string()
    } else {
        platform.os.clone()
    };
    let arch = if platform.architecture.is_empty() {
        host_arch.clone()
    } else {
        platform.architecture.clone()
    };
    let mut m = BTreeMap::new();
    let plat = |os: &str, arch: &str, v: &str| {
        if v.is_empty() {
            format!("{os}/{arch}")
        } else {
            format!("{os}/{arch}/{v}")
        }
    };
    m.insert("TARGETOS".into(), os.clone());
    m.insert("TARGETARCH".into(), arch.clone());
    m.insert("TARGETVARIANT".into(), platform.variant.clone());
    m.insert("TARGETPLATFORM".into(), plat(&os, &arch, &platform.variant));
    m.insert("BUILDOS".into(), "linux".into());
    m.insert("BUILDARCH".into(), host_arch.clone());
    m.insert("BUILDVARIANT".into(), String::new());
    m.insert("BUILDPLATFORM".into(), plat("linux", &host_arch, ""));
    m
}

/// The stage being run.
pub struct StageExecutor<'a, 'c> {
    cx: &'c StageContext<'a>,
    stage: &'c Stage,
    /// The working container.
    pub builder: Builder,
    /// ARG values in scope.
    args: BTreeMap<String, String>,
    /// ARG names declared in this stage (sorted).
    declared: BTreeSet<String>,
    /// CMD set in this stage (ENTRYPOINT then keeps it).
    cmd_set: bool,
    /// The last step's history `created_by` (names the commit).
    pub last_created_by: String,
    /// How the stage's containers are made (again, after each cached step).
    from_opts: FromOptions,
    /// The base (as written, and found) of a detached `builder` whose container is not
    /// made yet (`--layers`, see `start`).
    pending: Option<(String, builder::from::BaseImage)>,
    /// `--cache-to`: the target's last step image and key, pushed after the build's COMMIT
    /// line (as buildah, whose last step is that commit).
    pub deferred_cache_push: Option<(String, String)>,
}

fn now() -> String {
    builder::fsutil::now_rfc3339()
}

impl<'a, 'c> StageExecutor<'a, 'c> {
    /// Create the stage's working container from `base` (an image reference or ID).
    pub fn start(
        cx: &'c StageContext<'a>,
        stage: &'c Stage,
        base: &str,
        shown_base: &str,
        total_steps: usize,
    ) -> Result<StageExecutor<'a, 'c>> {
        let from_line = if shown_base == stage.base {
            stage.from.original.clone()
        } else {
            let mut s = format!("FROM {shown_base}");
            if let Some(n) = &stage.name {
                s.push_str(&format!(" AS {n}"));
            }
            s
        };
        cx.reporter
            .step(&format!("{}STEP 1/{total_steps}: {from_line}", cx.prefix));
        let mut fo = FromOptions::default();
        fo.pull_policy = cx.opts.pull_policy;
        fo.format = cx.opts.format;
        fo.isolation = cx.opts.run.isolation;
        fo.run_defaults = cx.opts.run_defaults.clone();
        fo.registry = cx.opts.registry.clone();
        fo.decryption = cx.opts.decryption.clone();
        fo.id_mappings = cx.opts.id_mappings.clone();
        fo.registry.platform = match &stage.platform {
            Some(p) => {
                let p = crate::shell::process_word(p, stage.from.escape, cx.global_args)
                    .map_err(|e| BuildError::from(stage.from.error(e.into())))?;
                Platform::parse(&p)?
            }
            None => cx.opts.registry.platform.clone(),
        };
        let found = builder::from::resolve_base(cx.store, base, &fo, cx.reporter)
            .map_err(|e| step_error(&from_line, e.into()))?;
        // --layers: when every step may be a cache hit, the container (on vfs a copy of
        // the whole base) is made only when a step misses or the stage's container is used.
        let lazy = cx.opts.layers
            && cx.opts.uses_layer_cache()
            && !stage.steps.is_empty()
            && found
                .as_ref()
                .is_some_and(|b| b.config.config.on_build.as_ref().is_none_or(Vec::is_empty));
        let (builder, pending) = if lazy {
            let b = Builder::detached_from_base(base, found.as_ref(), &fo)
                .map_err(|e| step_error(&from_line, e.into()))?;
            (b, found.map(|f| (base.to_string(), f)))
        } else {
            let b = Builder::new_from_base(cx.store, base, found.as_ref(), &fo)
                .map_err(|e| step_error(&from_line, e.into()))?;
            (b, None)
        };
        let mut builder = builder;
        // As buildah's commits: the build's --platform/--arch/--os name the image's platform
        // even when the base is another one's (`FROM --platform=$BUILDPLATFORM …`).
        let want = &cx.opts.registry.platform;
        if !want.architecture.is_empty() {
            builder.state.config.architecture = want.architecture.clone();
        }
        if !want.os.is_empty() {
            builder.state.config.os = want.os.clone();
        }
        let mut ex = StageExecutor {
            pending,
            from_opts: fo,
            cx,
            stage,
            builder,
            args: BTreeMap::new(),
            declared: BTreeSet::new(),
            cmd_set: false,
            last_created_by: String::new(),
            deferred_cache_push: None,
        };
        // The base image's ONBUILD triggers run first, parsed as Containerfile lines.
        let triggers = ex.builder.take_onbuild_triggers()?;
        for (i, t) in triggers.iter().enumerate() {
            let steps = crate::instruction::steps(&format!("ONBUILD trigger {}", i + 1), t)
                .map_err(|e| step_error(&from_line, e.into()))?;
            for step in &steps {
                ex.execute(step).map_err(|e| step_error(&from_line, e))?;
            }
        }
        Ok(ex)
    }

    /// Run every step, numbering them from 2 (FROM was 1).
    pub fn run_steps(&mut self, total_steps: usize) -> Result<()> {
        let n = self.stage.steps.len();
        for (k, step) in self.stage.steps.iter().enumerate() {
            self.check_stop()?;
            self.cx.reporter.step(&format!(
                "{}STEP {}/{total_steps}: {}",
                self.cx.prefix,
                k + 2,
                step.original
            ));
            let created_by = self
                .execute(step)
                .map_err(|e| step_error(&step.original, e))?;
            if k + 1 < n {
                self.builder.state.appended_history.push(History {
                    created: Some(now()),
                    created_by: Some(created_by),
                    empty_layer: true,
                    ..Default::default()
                });
            } else {
                self.last_created_by = created_by;
            }
        }
        self.builder.save()?;
        Ok(())
    }

    /// Fail when another stage failed (`--jobs`): no further step starts.
    fn check_stop(&self) -> Result<()> {
        if self.cx.stop.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(BuildError::invalid(format!(
                "stage {}: stopped because another stage failed",
                self.stage.index
            )));
        }
        Ok(())
    }

    /// Replace the working container by one made from `image` (after a cached or a
    /// committed step in `--layers` mode).
    fn switch_to(&mut self, image: &str) -> Result<()> {
        let b = match self.pending.take() {
            // The stage's first container, from its base as FROM named it.
            Some((spec, base)) if base.record.id == image => {
                Builder::new_from_base(self.cx.store, &spec, Some(&base), &self.from_opts)?
            }
            _ => Builder::new_from(self.cx.store, image, &self.from_opts, self.cx.reporter)?,
        };
        let old = std::mem::replace(&mut self.builder, b);
        // --rm=false keeps every step's container, as buildah does.
        if self.cx.opts.remove_containers {
            old.delete(self.cx.store)?;
        }
        Ok(())
    }

    /// ARGs then ENV (ENV wins), as instructions see them.
    fn vars(&self) -> BTreeMap<String, String> {
        let mut v = self.args.clone();
        for e in self.builder.state.config.env() {
            if let Some((k, val)) = e.split_once('=') {
                v.insert(k.to_string(), val.to_string());
            }
        }
        v
    }

    fn shell(&self) -> Vec<String> {
        self.builder
            .state
            .config
            .config
            .shell
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    fn command(&self, c: &CommandForm) -> Vec<String> {
        match c {
            CommandForm::Exec(v) => v.clone(),
            CommandForm::Shell(s) => {
                let mut v = self.shell();
                // A bare RUN runs the shell without a command (`/bin/sh -c` fails with
                // status 2), as in buildah.
                if !s.is_empty() {
                    v.push(s.clone());
                }
                v
            }
        }
    }

    fn nop(step: &Step) -> String {
        format!("/bin/sh -c #(nop) {}", step.original)
    }

    /// Execute one step; returns its history `created_by`.
    fn execute(&mut self, step: &Step) -> Result<String> {
        let inst = step.expand(&self.vars())?;
        let c = &mut self.builder.state.config;
        match inst {
            Instruction::From(_) => Err(BuildError::invalid("FROM inside a stage")),
            Instruction::Arg(list) => {
                for d in list {
                    self.declare_arg(&d.name, d.default.as_deref());
                }
                // buildah records the names declared so far that have a value (given,
                // a default or a global ARG's): a build that leaves one unset misses the
                // cache from here on.
                let names: Vec<&str> = self
                    .declared
                    .iter()
                    .filter(|n| self.args.contains_key(n.as_str()))
                    .map(String::as_str)
                    .collect();
                Ok(format!("/bin/sh -c #(nop) ARG {}", names.join(" ")))
            }
            Instruction::Env(pairs) => {
                for kv in pairs {
                    c.set_env(&kv.key, &kv.value);
                }
                Ok(Self::nop(step))
            }
            Instruction::Label(pairs) => {
                for kv in pairs {
                    c.set_label(&kv.key, &kv.value);
                }
                Ok(Self::nop(step))
            }
            Instruction::Cmd(cmd) => {
                let cmd = self.command(&cmd);
                self.builder.state.config.set_cmd(Some(cmd));
                self.cmd_set = true;
                Ok(Self::nop(step))
            }
            Instruction::Entrypoint(ep) => {
                let ep = self.command(&ep);
                self.builder.state.config.set_entrypoint(Some(ep));
                if !self.cmd_set {
                    self.builder.state.config.set_cmd(None);
                }
                Ok(Self::nop(step))
            }
            Instruction::Expose(ports) => {
                for p in ports.iter().flat_map(|p| p.split_whitespace()) {
                    let p = if p.contains('/') {
                        p.to_string()
                    } else {
                        format!("{p}/tcp")
                    };
                    c.set_port(&p);
                }
                Ok(Self::nop(step))
            }
            Instruction::User(u) => {
                c.config.user = Some(u);
                Ok(Self::nop(step))
            }
            Instruction::Workdir(w) => {
                let cur = c
                    .config
                    .working_dir
                    .clone()
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| "/".into());
                let joined = if w.starts_with('/') {
                    w
                } else {
                    format!("{}/{w}", cur.trim_end_matches('/'))
                };
                let clean = builder::rootfs::clean_container_path(&joined);
                let clean = clean.to_string_lossy().into_owned();
                self.ensure_dir(&clean)?;
                self.builder.state.config.config.working_dir = Some(clean);
                Ok(Self::nop(step))
            }
            Instruction::Volume(vols) => {
                // buildah evaluates each path in the rootfs here, and fails the step when
                // it does not resolve (a symbolic link loop); a missing directory is made
                // before the next RUN, as buildah 1.28 leaves it out of the image when
                // another instruction follows. Without a container yet (`--layers` hits so
                // far) there is no rootfs to look in: the next RUN resolves it.
                let abs: Vec<&String> = vols.iter().filter(|v| v.starts_with('/')).collect();
                if !abs.is_empty() && !self.builder.is_detached() {
                    self.with_rootfs(|mnt, _| {
                        abs.iter().try_for_each(|v| check_volume_path(mnt, v))
                    })?;
                }
                for v in vols {
                    self.builder.state.config.add_volume(&v);
                }
                Ok(Self::nop(step))
            }
            Instruction::StopSignal(s) => {
                c.config.stop_signal = Some(s);
                Ok(Self::nop(step))
            }
            Instruction::Healthcheck(h) => {
                c.config.healthcheck = Some(health(&h));
                Ok(Self::nop(step))
            }
            Instruction::OnBuild(t) => {
                c.add_onbuild(&t.expression);
                Ok(Self::nop(step))
            }
            Instruction::Maintainer(m) => {
                c.author = Some(m);
                Ok(Self::nop(step))
            }
            Instruction::Shell(sh) => {
                c.config.shell = Some(sh);
                Ok(Self::nop(step))
            }
            Instruction::Run(r) => self.run(step, &r),
            Instruction::Copy(cs) => self.copy(&cs, false),
            Instruction::Add(cs) => self.copy(&cs, true),
        }
    }

    /// The value `ARG name[=default]` gives: `--build-arg`, else the default, else a global
    /// ARG's, else a predefined platform arg's.
    fn arg_value(&self, name: &str, default: Option<&str>) -> Option<String> {
        self.cx
            .opts
            .build_args
            .get(name)
            .cloned()
            .or_else(|| default.map(str::to_string))
            .or_else(|| self.cx.global_args.get(name).cloned())
            .or_else(|| {
                platform_args(&self.cx.opts.registry.platform)
                    .get(name)
                    .cloned()
            })
    }

    fn declare_arg(&mut self, name: &str, default: Option<&str>) {
        self.declared.insert(name.to_string());
        if self.cx.opts.build_args.contains_key(name) {
            if let Ok(mut u) = self.cx.used_args.lock() {
                u.insert(name.to_string());
            }
        }
        match self.arg_value(name, default) {
            Some(v) => {
                self.args.insert(name.to_string(), v);
            }
            None => {
                self.args.remove(name);
                self.cx.reporter.warn(&format!(
                    "missing {name:?} build argument. Try adding \"--build-arg {name}=<VALUE>\" to the command line"
                ));
            }
        }
    }

    /// Create `dir` in the rootfs (WORKDIR), resolved inside it.
    fn ensure_dir(&mut self, dir: &str) -> Result<()> {
        self.with_rootfs(|mnt, b| {
            let user = b.state.config.config.user.clone().unwrap_or_default();
            make_workdir(mnt, dir, &user, &b.state.id_mappings)
        })
    }

    /// Run `f` on the container's mounted rootfs; unmounted after, whatever `f` returned.
    fn with_rootfs<T>(&mut self, f: impl FnOnce(&Path, &Builder) -> Result<T>) -> Result<T> {
        let mnt = self.builder.mount(self.cx.store)?;
        let r = f(&mnt, &self.builder);
        let u = self.builder.unmount(self.cx.store);
        let v = r?;
        u?;
        Ok(v)
    }

    /// The build args a RUN records in history (`|N k=v … /bin/sh -c …`): the declared
    /// ARGs with a value that ENV does not override, sorted.
    fn run_args_key(&self) -> Vec<String> {
        let env = self.builder.state.config.env().to_vec();
        self.args
            .iter()
            .filter(|(k, _)| {
                !env.iter()
                    .any(|e| e.split_once('=').map(|p| p.0) == Some(k.as_str()))
            })
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    fn run(&mut self, step: &Step, r: &RunStep) -> Result<String> {
        // A RUN for another architecture is tried as buildah tries it (the kernel decides:
        // the image's binaries may run here); when it fails without an emulator for that
        // architecture, the error says so.
        let c = &self.builder.state.config;
        let emulation_hint = (!builder::run::can_run_arch(&c.architecture)).then(|| {
            let mut platform = format!("{}/{}", c.os, c.architecture);
            if let Some(v) = c.variant.as_deref().filter(|v| !v.is_empty()) {
                platform = format!("{platform}/{v}");
            }
            format!(
                "running a command for platform {platform} on this {} host needs emulation: no binfmt_misc handler for {} is registered (qemu-user-static provides them)",
                builder::image::config::host_arch(),
                c.architecture
            )
        });
        let cmd = match &r.command {
            CommandForm::Shell(s) if !r.heredocs.is_empty() => {
                let mut sh = self.shell();
                if s.trim_start().starts_with("<<") && s.split_whitespace().count() == 1 {
                    // `RUN <<EOF`: the heredoc is the script.
                    sh.push(r.heredocs[0].content.clone());
                } else {
                    // The shell sees the heredocs as written.
                    let mut full = s.clone();
                    for h in &r.heredocs {
                        full.push('\n');
                        full.push_str(&h.content);
                        if !h.content.ends_with('\n') {
                            full.push('\n');
                        }
                        full.push_str(&h.name);
                    }
                    sh.push(full);
                }
                sh
            }
            c => self.command(c),
        };
        let mut ro: RunOptions = self.cx.opts.run.clone();
        let env_names: BTreeSet<String> = self
            .builder
            .state
            .config
            .env()
            .iter()
            .filter_map(|e| e.split_once('=').map(|p| p.0.to_string()))
            .collect();
        for (k, v) in &self.args {
            if !env_names.contains(k) {
                ro.env.push(format!("{k}={v}"));
            }
        }
        // Proxy build args reach RUN without an ARG (and never the history).
        for k in crate::args::PROXY_ARGS {
            if let Some(v) = self.cx.opts.build_args.get(*k) {
                if !self.args.contains_key(*k) && !env_names.contains(*k) {
                    ro.env.push(format!("{k}={v}"));
                }
            }
        }
        ro.context_dir = Some(self.cx.context_dir.to_path_buf());
        // The host's network and `--security=insecure` are privileges a Containerfile cannot
        // grant itself: the command line must have asked for them (BuildKit's entitlements,
        // CVE-2024-23653, docs/security.md P31).
        let granted = &self.cx.opts.run_defaults;
        let cli_network =
            (ro.namespaces.network.clone()).or_else(|| granted.namespaces.network.clone());
        if r.network == Some(RunNetwork::Host) && cli_network != Some(NetworkMode::Host) {
            return Err(BuildError::invalid(
                "RUN --network=host needs the build to run with --network host",
            ));
        }
        if r.security == Some(RunSecurity::Insecure)
            && !(ro.security.cap_add.iter())
                .chain(granted.security.cap_add.iter())
                .any(|c| c.eq_ignore_ascii_case("ALL"))
        {
            return Err(BuildError::invalid(
                "RUN --security=insecure needs the build to run with --cap-add ALL",
            ));
        }
        match r.network {
            Some(RunNetwork::None) => ro.namespaces.network = Some(NetworkMode::None),
            Some(RunNetwork::Host) => ro.namespaces.network = Some(NetworkMode::Host),
            Some(RunNetwork::Default) | None => {}
        }
        if ro.terminal.is_none() {
            ro.terminal = Some(false);
        }
        let mut cleanup = Vec::new();
        let mut mounted_stages = Vec::new();
        // Agent relays live until the RUN is over (dropped at the end of this function).
        let mut forwarders = Vec::new();
        let mut auth_sock = None;
        for m in &r.mounts {
            if m.kind == MountKind::Ssh {
                let n = forwarders.len();
                if let Some((spec, target)) = self.ssh_mount(m, n, &mut forwarders, &mut cleanup)? {
                    auth_sock.get_or_insert(target);
                    ro.mounts.push(spec);
                }
                continue;
            }
            if m.kind == MountKind::Secret && m.env.is_some() {
                if let Some((k, v)) = self.secret_env(m)? {
                    ro.env.push(format!("{k}={v}"));
                }
                continue;
            }
            let spec = self.mount_spec(m, &mut cleanup, &mut mounted_stages)?;
            if let Some(spec) = spec {
                if m.kind != MountKind::Secret {
                    if let Some(t) = &m.target {
                        mount_point_chain(Path::new(t), &mut cleanup);
                    }
                }
                match spec.strip_prefix(VOLUME_PREFIX) {
                    Some(v) => ro.volumes.push(v.to_string()),
                    None => ro.mounts.push(spec),
                }
            }
        }
        if let Some(t) = auth_sock {
            ro.env.push(format!("SSH_AUTH_SOCK={t}"));
        }
        let mnt = self.builder.mount(self.cx.store)?;
        let before: Vec<(PathBuf, bool)> = cleanup
            .iter()
            .map(|p: &PathBuf| (p.clone(), exists_in(&mnt, p)))
            .collect();
        let result = self.builder.run(self.cx.store, &cmd, &ro);
        // Mount points made for secrets leave nothing behind.
        for (p, existed) in before.iter().rev() {
            if !existed {
                remove_in(&mnt, p);
            }
        }
        for mut b in mounted_stages {
            let _ = Builder::unmount(&mut b, self.cx.store);
            if b.state.other.contains_key(TEMPORARY) {
                let _ = b.delete(self.cx.store);
            }
        }
        let u = self.builder.unmount(self.cx.store);
        let status = match (result, emulation_hint) {
            (Ok(s), _) => s,
            (Err(e), Some(hint)) => return Err(BuildError::invalid(format!("{e} ({hint})"))),
            (Err(e), None) => return Err(e.into()),
        };
        u?;
        if status != 0 {
            return Err(BuildError::ExitStatus(status));
        }
        let rest = strip_keyword(&step.original);
        let args = self.run_args_key();
        Ok(if args.is_empty() {
            format!("/bin/sh -c {rest}")
        } else {
            format!("|{} {} /bin/sh -c {rest}", args.len(), args.join(" "))
        })
    }

    /// `RUN --mount=type=ssh`: a relay to the ID's agent, bound at the target (`None`: no
    /// such ID and not required). Returns the mount and the target.
    fn ssh_mount(
        &self,
        m: &RunMount,
        n: usize,
        forwarders: &mut Vec<crate::ssh::Forwarder>,
        cleanup: &mut Vec<PathBuf>,
    ) -> Result<Option<(String, String)>> {
        let id = m.id.clone().unwrap_or_else(|| "default".into());
        let Some(upstream) = self.cx.ssh.socket(&id) else {
            if m.required {
                // buildah's words.
                return Err(BuildError::invalid(format!(
                    "ssh required but no ssh with id {id} found"
                )));
            }
            return Ok(None);
        };
        let target = m
            .target
            .clone()
            .unwrap_or_else(|| format!("/run/buildkit/ssh_agent.{n}"));
        let sock = self
            .cx
            .scratch
            .join(format!("ssh-{}-{n}.sock", self.stage.index));
        forwarders.push(crate::ssh::Forwarder::start(
            upstream,
            &sock,
            (m.uid.unwrap_or(0), m.gid.unwrap_or(0)),
            m.mode.unwrap_or(0o600),
        )?);
        // The mount point (and the directories made for it) leave nothing behind.
        mount_point_chain(Path::new(&target), cleanup);
        Ok(Some((
            format!("type=bind,src={},target={target},ro", sock.display()),
            target,
        )))
    }

    fn secret_value(&self, m: &RunMount) -> Result<Option<(String, Vec<u8>)>> {
        let id =
            m.id.clone()
                .or_else(|| {
                    m.target
                        .as_deref()
                        .and_then(|t| Path::new(t).file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                })
                .ok_or_else(|| {
                    BuildError::invalid(format!("invalid mount {:?}: secret needs an id", m.spec))
                })?;
        let Some(secret) = self.cx.opts.secrets.iter().find(|s| s.id == id) else {
            if m.required {
                return Err(BuildError::invalid(format!(
                    "secret required but no secret with id {id:?} found"
                )));
            }
            return Ok(None);
        };
        let data = match &secret.source {
            SecretSource::File(p) => std::fs::read(p).map_err(io_at("reading secret", p))?,
            SecretSource::Env(v) => std::env::var(v)
                .map_err(|_| {
                    BuildError::invalid(format!(
                        "secret {id:?}: environment variable {v:?} is not set"
                    ))
                })?
                .into_bytes(),
            SecretSource::EnvOrFile(n) => match std::env::var(n) {
                Ok(v) => v.into_bytes(),
                Err(_) => std::fs::read(n).map_err(io_at("reading secret", n))?,
            },
        };
        Ok(Some((id, data)))
    }

    fn secret_env(&self, m: &RunMount) -> Result<Option<(String, String)>> {
        let Some((_, data)) = self.secret_value(m)? else {
            return Ok(None);
        };
        let name = m.env.clone().unwrap_or_default();
        Ok(Some((name, String::from_utf8_lossy(&data).into_owned())))
    }

    /// Turn a `RUN --mount` into what the run module takes (`None` = skip it).
    fn mount_spec(
        &mut self,
        m: &RunMount,
        cleanup: &mut Vec<PathBuf>,
        mounted: &mut Vec<Builder>,
    ) -> Result<Option<String>> {
        match m.from.as_deref() {
            // buildah's wording (its runStageMountPoints).
            Some("") => {
                return Err(BuildError::invalid(
                    "unable to resolve argument for `from=`: from points to an empty value",
                ))
            }
            // A cache whose contents are another stage's (or image's) tree below `source`:
            // mounted as a bind of it, resolved inside it; writes go to an overlay that is
            // discarded, never to the other stage.
            Some(_) if m.kind == MountKind::Cache => {
                let mut bind = m.clone();
                bind.kind = MountKind::Bind;
                return self.mount_spec(&bind, cleanup, mounted);
            }
            _ => {}
        }
        let extra = |out: &mut String| {
            for (k, v) in &m.options {
                match v {
                    Some(v) => out.push_str(&format!(",{k}={v}")),
                    None => out.push_str(&format!(",{k}")),
                }
            }
        };
        let target = m.target.clone();
        match m.kind {
            MountKind::Secret => {
                let Some((id, data)) = self.secret_value(m)? else {
                    return Ok(None);
                };
                // No target: /run/secrets/ID. A relative target is taken from / (buildah
                // hands it to the runtime as it is, which resolves it so).
                let target = match target {
                    Some(t) if t.starts_with('/') => t,
                    Some(t) => format!("/{t}"),
                    None => format!("/run/secrets/{id}"),
                };
                let file =
                    self.cx
                        .scratch
                        .join(format!("secret-{}-{}", self.stage.index, cleanup.len()));
                let _ = std::fs::remove_file(&file);
                write_private(&file, &data, m.mode.unwrap_or(0o400))?;
                if m.uid.is_some() || m.gid.is_some() {
                    let _ = std::os::unix::fs::chown(&file, m.uid, m.gid);
                }
                // The mount point (and the directories made for it) leave nothing behind.
                mount_point_chain(Path::new(&target), cleanup);
                Ok(Some(format!(
                    "type=bind,src={},target={target},ro",
                    file.display()
                )))
            }
            MountKind::Bind => {
                let root = match &m.from {
                    Some(f) => self.stage_root(f, mounted)?,
                    None => self.cx.context_dir.to_path_buf(),
                };
                let src = m.source.clone().unwrap_or_default();
                let clean = builder::rootfs::clean_container_path(&format!("/{src}"));
                let shown = root.join(clean.strip_prefix("/").unwrap_or(&clean));
                // Resolved inside the stage (or context): a `source` that is, or goes
                // through, a link to `/` must not bind the host's tree (CVE-2024-1753).
                let abs = builder::rootfs::Root::open(&root)
                    .and_then(|r| r.real_path(&clean))
                    .map_err(io_at("resolving mount source", &shown))?
                    .ok_or_else(|| {
                        // ENOENT: nothing by that name inside the stage or context.
                        io_at("resolving mount source", &shown)(std::io::Error::from_raw_os_error(
                            2,
                        ))
                    })?;
                let target = target.ok_or_else(|| {
                    BuildError::invalid(format!("invalid mount {:?}: no target", m.spec))
                })?;
                if !m.readonly {
                    // Writable: writes go to an overlay that is discarded after the run,
                    // never to the context or the other stage.
                    return Ok(Some(format!("{VOLUME_PREFIX}{}:{target}:O", abs.display())));
                }
                let mut out = format!("type=bind,src={},target={target}", abs.display());
                extra(&mut out);
                out.push_str(",ro");
                Ok(Some(out))
            }
            MountKind::Cache => {
                let target = target.ok_or_else(|| {
                    BuildError::invalid(format!("invalid mount {:?}: no target", m.spec))
                })?;
                let mut out = format!("type=cache,target={target}");
                let id = match &m.id {
                    Some(id) => cache_id(id),
                    // The run module's default: the destination's digest.
                    None => {
                        use sha2::Digest as _;
                        let clean = builder::rootfs::clean_container_path(&target);
                        hex::encode(sha2::Sha256::digest(clean.to_string_lossy().as_bytes()))
                    }
                };
                out.push_str(&format!(",id={id}"));
                // uid=, gid=, mode= apply when the cache is made (kept in the store).
                if m.uid.is_some() || m.gid.is_some() || m.mode.is_some() {
                    let dir = self.cx.store.root().join("hod-cache").join(&id);
                    if !dir.exists() {
                        std::fs::create_dir_all(&dir).map_err(io_at("creating", &dir))?;
                        std::os::unix::fs::chown(&dir, m.uid.or(Some(0)), m.gid.or(Some(0)))
                            .map_err(io_at("changing the owner of", &dir))?;
                        use std::os::unix::fs::PermissionsExt;
                        let mode = m.mode.unwrap_or(0o755);
                        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
                            .map_err(io_at("changing the mode of", &dir))?;
                    }
                }
                extra(&mut out);
                if m.readonly {
                    out.push_str(",ro");
                }
                Ok(Some(out))
            }
            MountKind::Tmpfs => {
                let target = target.ok_or_else(|| {
                    BuildError::invalid(format!("invalid mount {:?}: no target", m.spec))
                })?;
                let mut out = format!("type=tmpfs,target={target}");
                if let Some(sz) = m.size {
                    out.push_str(&format!(",tmpfs-size={sz}"));
                }
                extra(&mut out);
                Ok(Some(out))
            }
            // Handled by ssh_mount (it keeps a relay alive for the RUN).
            MountKind::Ssh => Ok(None),
        }
    }

    /// The root of `--from` (a stage's container, mounted; or an image, via a container).
    fn stage_root(&mut self, f: &str, mounted: &mut Vec<Builder>) -> Result<PathBuf> {
        if f.parse::<usize>().is_err() {
            match self.cx.opts.build_contexts.get(f) {
                Some(BuildContext::Dir(d)) => {
                    return std::path::absolute(d).map_err(io_at("resolving", d));
                }
                Some(BuildContext::Image(img)) => return self.image_root(img, mounted),
                None => {}
            }
        }
        if let Some(i) = self.cx.plan.stage_ref(f, self.stage.index) {
            let Some(o) = self.cx.done.get(i).and_then(|o| o.get()) else {
                return Err(BuildError::invalid(format!("stage {f:?} was not built")));
            };
            let mut b = o.builder.clone();
            let p = b.mount(self.cx.store)?;
            mounted.push(b);
            return Ok(p);
        }
        self.image_root(f, mounted)
    }

    /// An image's rootfs, through a working container removed after the run.
    fn image_root(&mut self, image: &str, mounted: &mut Vec<Builder>) -> Result<PathBuf> {
        let mut fo = FromOptions::default();
        fo.pull_policy = self.cx.opts.pull_policy;
        fo.registry = self.cx.opts.registry.clone();
        fo.decryption = self.cx.opts.decryption.clone();
        let mut b = Builder::new_from(self.cx.store, image, &fo, self.cx.reporter)?;
        b.state
            .other
            .insert(TEMPORARY.into(), serde_json::Value::Bool(true));
        let p = b.mount(self.cx.store)?;
        mounted.push(b);
        Ok(p)
    }

    fn copy(&mut self, c: &CopySpec, add: bool) -> Result<String> {
        let mut opts = CopyOptions::default();
        opts.kind = if add { CopyKind::Add } else { CopyKind::Copy };
        opts.chown = c.chown.clone();
        opts.chmod = c
            .chmod
            .as_deref()
            .map(builder::copier::Chmod::parse)
            .transpose()?;
        opts.excludes = c.exclude.clone();
        opts.parents = c.parents;
        opts.checksum = c.checksum.clone();
        let dest = c.dest.clone();
        // An empty source (an unset ARG) names the context itself, as in buildah.
        let mut sources: Vec<String> = c
            .sources
            .iter()
            .map(|s| {
                if s.is_empty() {
                    ".".to_string()
                } else {
                    s.clone()
                }
            })
            .collect();
        let heredoc_dir;
        if !c.heredocs.is_empty() {
            heredoc_dir = tempfile::tempdir_in(self.cx.scratch)
                .map_err(io_at("creating directory in", self.cx.scratch))?;
            for h in &c.heredocs {
                let p = heredoc_dir.path().join(&h.name);
                std::fs::write(&p, &h.content).map_err(io_at("writing", &p))?;
                sources.push(h.name.clone());
            }
            opts.context_dir = Some(heredoc_dir.path().to_path_buf());
        } else if let Some(f) = &c.from {
            // A build context named like the stage (by name, or by the index of a stage of
            // that name) wins over the stage.
            let by_index = f
                .parse::<usize>()
                .ok()
                .and_then(|i| self.cx.plan.stages.get(i))
                .and_then(|s| s.name.clone());
            let ctx_name = by_index.as_deref().unwrap_or(f);
            if let Some(bc) = self.cx.opts.build_contexts.get(ctx_name) {
                match bc {
                    BuildContext::Dir(d) => {
                        let d = std::path::absolute(d).map_err(io_at("resolving", d))?;
                        opts.context_dir = Some(d);
                    }
                    BuildContext::Image(img) => {
                        let mut fo = FromOptions::default();
                        fo.pull_policy = self.cx.opts.pull_policy;
                        fo.registry = self.cx.opts.registry.clone();
                        fo.decryption = self.cx.opts.decryption.clone();
                        let r = builder::from::resolve_image(
                            self.cx.store,
                            img,
                            &fo,
                            self.cx.reporter,
                        )?;
                        opts.from = Some(r.record.id);
                    }
                }
            } else if let Some(i) = self.cx.plan.stage_ref(f, self.stage.index) {
                let Some(o) = self.cx.done.get(i).and_then(|o| o.get()) else {
                    return Err(BuildError::invalid(format!("stage {f:?} was not built")));
                };
                opts.from = Some(o.builder.id().to_string());
            } else {
                // An image: make sure it is here (pulled as the policy says). The stage's own
                // name is not one (buildah's message).
                let own = self.stage.name.as_deref() == Some(f.to_ascii_lowercase().as_str());
                let mut fo = FromOptions::default();
                fo.pull_policy = self.cx.opts.pull_policy;
                fo.registry = self.cx.opts.registry.clone();
                fo.decryption = self.cx.opts.decryption.clone();
                let img = if own {
                    None
                } else {
                    builder::from::resolve_image(self.cx.store, f, &fo, self.cx.reporter).ok()
                };
                let img = img.ok_or_else(|| {
                    BuildError::invalid(format!(
                        "COPY --from={f}: no stage or image found with that name"
                    ))
                })?;
                opts.from = Some(img.record.id);
            }
        } else {
            // From the build context: buildah clears the setuid and setgid bits.
            opts.strip_setid = true;
            for s in &sources {
                if !add && s.contains("://") {
                    return Err(BuildError::invalid(format!(
                        "source can't be a URL for COPY: {s}"
                    )));
                }
                if !s.contains("://") && escapes(s) {
                    return Err(BuildError::invalid(format!(
                        "{s:?}: escaping context directory error: it is outside the build context {}",
                        self.cx.context_dir.display()
                    )));
                }
            }
            opts.context_dir = Some(self.cx.context_dir.to_path_buf());
            opts.ignore_file = self.cx.ignore_file.map(Path::to_path_buf);
        }
        let summary = self.builder.copy(self.cx.store, &sources, &dest, &opts)?;
        let kw = if add { "ADD" } else { "COPY" };
        let content = match &summary.digest {
            Some(d) if summary.content_type.is_empty() => d.clone(),
            Some(d) => format!("{}:{d}", summary.content_type),
            None => String::new(),
        };
        Ok(format!("/bin/sh -c #(nop) {kw} {content} in {dest} "))
    }
}

/// Whether a context-relative source climbs out of the context lexically (`../x`,
/// `a/../../x`); links pointing out are refused by the copier itself.
fn escapes(source: &str) -> bool {
    let mut depth: i64 = 0;
    for part in source.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// A cache id as a plain file name (the run module keeps caches under the store's root).
fn cache_id(id: &str) -> String {
    if id.is_empty() || id.contains('/') || id == "." || id == ".." {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(id.as_bytes()))
    } else {
        id.to_string()
    }
}

fn health(h: &Healthcheck) -> HealthConfig {
    let ns = |d: &Option<std::time::Duration>| d.map(|d| d.as_nanos() as i64);
    match h {
        Healthcheck::None => HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        },
        Healthcheck::Cmd(c) => HealthConfig {
            test: Some(match &c.command {
                CommandForm::Shell(s) => vec!["CMD-SHELL".into(), s.clone()],
                CommandForm::Exec(v) => std::iter::once("CMD".to_string())
                    .chain(v.iter().cloned())
                    .collect(),
            }),
            interval: ns(&c.interval),
            timeout: ns(&c.timeout),
            start_period: ns(&c.start_period),
            start_interval: ns(&c.start_interval),
            retries: c.retries.map(i64::from),
        },
    }
}

/// The instruction text after its keyword (`RUN echo` → `echo`).
fn strip_keyword(original: &str) -> &str {
    let t = original.trim_start();
    match t.find(char::is_whitespace) {
        Some(i) => t[i..].trim_start(),
        None => "",
    }
}

/// Wrap a step's failure: `error building at STEP "RUN false": exit status 1`.
/// The step is named as imagebuilder's message names it: the keyword upper-cased
/// (`run true` → `RUN true`).
pub fn step_error(step: &str, e: BuildError) -> BuildError {
    let t = step.trim_start();
    let keyword = t.split(char::is_whitespace).next().unwrap_or("");
    let step = format!("{}{}", keyword.to_ascii_uppercase(), &t[keyword.len()..]);
    BuildError::Step {
        step,
        source: Box::new(e),
    }
}

/// Marks (in memory only) a container made just to mount an image for one RUN.
const TEMPORARY: &str = "hodTemporaryMount";

/// Marks a `mount_spec` result that is a `-v` volume (an overlay) rather than a `--mount`.
const VOLUME_PREFIX: &str = "volume:";

/// A VOLUME path resolves in the rootfs: it exists, or its first missing component can be
/// made; a symbolic link loop (or a file where a directory must be) is the step's error.
fn check_volume_path(rootfs: &Path, dir: &str) -> Result<()> {
    use builder::rootfs::{resolve_in_root, Create};
    let root = std::fs::File::open(rootfs).map_err(io_at("opening", rootfs))?;
    match resolve_in_root(&root, Path::new(dir), Create::No, true) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(io_at("evaluating volume path: open", dir)(e))
        }
        _ => Ok(()),
    }
}

/// Create `dir` in the rootfs (resolved inside it); the directories made are owned by
/// `user` (the USER in force), as buildah does, stored through the container's ID maps.
fn make_workdir(
    rootfs: &Path,
    dir: &str,
    user: &str,
    maps: &builder::idmap::IdMappings,
) -> Result<()> {
    use builder::rootfs::{resolve_in_root, Create};
    let root = std::fs::File::open(rootfs).map_err(io_at("opening", rootfs))?;
    let mut missing = Vec::new();
    let mut p = PathBuf::from(dir);
    loop {
        if resolve_in_root(&root, &p, Create::No, true).is_ok() {
            break;
        }
        missing.push(p.clone());
        match p.parent() {
            Some(parent) if parent != Path::new("/") && !parent.as_os_str().is_empty() => {
                p = parent.to_path_buf()
            }
            _ => break,
        }
    }
    resolve_in_root(&root, Path::new(dir), Create::Dir, true)
        .map_err(io_at("creating working directory", dir))?;
    if (user.is_empty() && maps.is_empty()) || missing.is_empty() {
        return Ok(());
    }
    let (uid, gid) = if user.is_empty() {
        (0, 0)
    } else {
        let o = builder::run::user::resolve(rootfs, user).map_err(builder::Error::from)?;
        (o.uid, o.gid)
    };
    let (uid, gid) = maps.to_host(uid, gid);
    for m in missing {
        let fd = resolve_in_root(&root, &m, Create::No, true).map_err(io_at("opening", &m))?;
        // An O_PATH descriptor: chown it through AT_EMPTY_PATH.
        rustix::fs::chownat(
            &fd,
            "",
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            rustix::fs::AtFlags::EMPTY_PATH | rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| io_at("changing the owner of", &m)(e.into()))?;
    }
    Ok(())
}

/// `target` and its parents (outermost first), for removing the mount points a run made.
fn mount_point_chain(target: &Path, out: &mut Vec<PathBuf>) {
    let mut chain = vec![target.to_path_buf()];
    let mut p = target.to_path_buf();
    while let Some(parent) = p.parent() {
        // The run itself keeps /run (as buildah's runtime does).
        if parent == Path::new("/") || parent == Path::new("/run") || parent.as_os_str().is_empty()
        {
            break;
        }
        chain.push(parent.to_path_buf());
        p = parent.to_path_buf();
    }
    chain.reverse();
    out.extend(chain);
}

fn write_private(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io_at("creating", path))?;
    f.write_all(data).map_err(io_at("writing", path))
}

fn exists_in(rootfs: &Path, p: &Path) -> bool {
    let Ok(root) = std::fs::File::open(rootfs) else {
        return true;
    };
    builder::rootfs::resolve_in_root(&root, p, builder::rootfs::Create::No, false).is_ok()
}

/// Remove a placeholder a run made (an empty file or an empty directory), inside the rootfs.
fn remove_in(rootfs: &Path, p: &Path) {
    let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
        return;
    };
    let Ok(root) = std::fs::File::open(rootfs) else {
        return;
    };
    let Ok(dir) =
        builder::rootfs::resolve_in_root(&root, parent, builder::rootfs::Create::No, true)
    else {
        return;
    };
    if rustix::fs::unlinkat(&dir, name, rustix::fs::AtFlags::empty()).is_err() {
        let _ = rustix::fs::unlinkat(&dir, name, rustix::fs::AtFlags::REMOVEDIR);
    }
}

/// Commit options for a stage's image.
pub fn commit_options(opts: &BuildOptions, created_by: &str, last: bool) -> CommitOptions {
    let mut co = CommitOptions::default();
    co.format = opts.format;
    co.compression = opts.compression;
    co.timestamp = opts.timestamp;
    co.registry = opts.registry.clone();
    co.encryption = opts.encryption.clone();
    co.identity_label = opts.identity_label;
    co.created_by = Some(created_by.to_string()).filter(|s| !s.is_empty());
    if last {
        co.squash = opts.squash;
        co.omit_history = opts.omit_history;
        co.annotations = opts.annotations.clone();
    }
    co
}
