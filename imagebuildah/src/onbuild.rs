//! ONBUILD triggers outside a Containerfile: `hod from` of an image whose config carries
//! triggers runs them as `buildah from` does (buildah's `cmd/buildah/from.go` `onBuild`:
//! each trigger is split on spaces, not parsed as a Containerfile line), then clears them.
//!
//! ```text
//! from(store, image, opts) ─ Builder::new_from ─ Builder::take_onbuild_triggers
//!      └─ run_from_triggers: STEP n: TRIGGER ─ copy / run / config setters
//! ```
//!
//! A Containerfile build does not come here: its engine takes the triggers with
//! [`Builder::take_onbuild_triggers`] and runs each through its own parser and executor,
//! as buildah's imagebuildah does.
use builder::copy::{CopyKind, CopyOptions};
use builder::options::FromOptions;
use builder::report::Reporter;
use builder::run::{RunError, RunOptions};
use builder::{Builder, Result, Store};

/// `hod from`: make the working container, then run the base image's ONBUILD triggers the
/// way `buildah from` does; a failing trigger removes the container again.
pub fn from(
    store: &Store,
    image: &str,
    opts: &FromOptions,
    reporter: &dyn Reporter,
) -> Result<Builder> {
    let mut b = Builder::new_from(store, image, opts, reporter)?;
    if b.onbuild_triggers().is_empty() {
        return Ok(b);
    }
    match run_from_triggers(&mut b, store, reporter) {
        Ok(()) => Ok(b),
        Err(e) => {
            let id = b.id().to_string();
            if let Err(de) = b.delete(store) {
                tracing::debug!("deleting container {id} after a failed ONBUILD trigger: {de}");
            }
            Err(e)
        }
    }
}

/// Take the container's ONBUILD triggers and run them as `buildah from` does: config
/// triggers (ENV, LABEL, CMD, …) set the config, COPY/ADD copy from the current directory,
/// RUN runs in the container; each is reported as `STEP n: TRIGGER`. Triggers that an
/// `ONBUILD ONBUILD …` adds stay for the image being built.
pub fn run_from_triggers(b: &mut Builder, store: &Store, reporter: &dyn Reporter) -> Result<()> {
    let triggers = b.take_onbuild_triggers()?;
    for (i, spec) in triggers.iter().enumerate() {
        reporter.progress(&format!("STEP {}: {spec}", i + 1));
        let mut words = spec.split(' ').map(str::to_string);
        let command = words.next().unwrap_or_default().to_ascii_uppercase();
        let args: Vec<String> = words.collect();
        let joined = args.join(" ");
        let first = args.first().cloned().unwrap_or_default();
        match command.as_str() {
            "ADD" | "COPY" => {
                let (srcs, dest) = match args.split_last() {
                    Some((d, s)) if !s.is_empty() => (s.to_vec(), d.clone()),
                    _ => (args.clone(), String::new()),
                };
                let mut opts = CopyOptions::default();
                if command == "ADD" {
                    opts.kind = CopyKind::Add;
                }
                b.copy(store, &srcs, &dest, &opts)?;
                continue;
            }
            "RUN" => {
                let status = b.run(store, &args, &RunOptions::default())?;
                if status != 0 {
                    return Err(RunError::ExitStatus(status).into());
                }
                continue;
            }
            _ => {}
        }
        let c = &mut b.state.config;
        match command.as_str() {
            "ANNOTATION" => match first.split_once('=') {
                Some((k, v)) => {
                    b.state.annotations.insert(k.to_string(), v.to_string());
                }
                None => {
                    b.state.annotations.remove(&first);
                }
            },
            "CMD" => c.set_cmd(Some(args.clone())),
            "ENV" => match first.split_once('=') {
                Some((k, v)) => c.set_env(k, v),
                None => c.unset_env(&first),
            },
            "ENTRYPOINT" => c.set_entrypoint(Some(args.clone())),
            "EXPOSE" => c.set_port(&joined),
            "HOSTNAME" => c.config.hostname = Some(joined),
            "LABEL" => match first.split_once('=') {
                Some((k, v)) => c.set_label(k, v),
                None => c.unset_label(&first),
            },
            "MAINTAINER" => c.author = Some(joined),
            "ONBUILD" => c.add_onbuild(&joined),
            "SHELL" => c.config.shell = Some(args.clone()),
            "STOPSIGNAL" => c.config.stop_signal = Some(joined),
            "USER" => c.config.user = Some(joined),
            "VOLUME" => c.add_volume(&joined),
            "WORKINGDIR" | "WORKDIR" => c.config.working_dir = Some(joined),
            _ => reporter.warn(&format!("unknown OnBuild command {spec:?}; ignored")),
        }
    }
    if !triggers.is_empty() {
        b.save()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use builder::builder::BuilderState;
    use builder::image::ImageConfig;

    #[derive(Default)]
    struct Lines(std::sync::Mutex<Vec<String>>);
    impl Reporter for Lines {
        fn progress(&self, line: &str) {
            self.0.lock().unwrap().push(line.to_string());
        }
        fn warn(&self, line: &str) {
            self.0.lock().unwrap().push(format!("WARN {line}"));
        }
    }

    #[test]
    fn config_triggers_as_buildah_from_runs_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = BuilderState {
            config: ImageConfig::scratch(),
            ..Default::default()
        };
        state.config.config.on_build = Some(vec![
            "ENV A=1".into(),
            "LABEL x=y".into(),
            "ONBUILD USER nobody".into(),
            "BOGUS z".into(),
            "WORKDIR /w".into(),
        ]);
        let mut b = Builder {
            state,
            record: Default::default(),
            dir: dir.path().to_path_buf(),
        };
        let mut opts = builder::store::StoreOptions::default();
        opts.root = dir.path().join("root");
        opts.run_root = dir.path().join("run");
        opts.driver = builder::store::DriverKind::Vfs;
        let store = Store::open(&opts).unwrap();
        let lines = Lines::default();
        run_from_triggers(&mut b, &store, &lines).unwrap();
        let c = &b.state.config;
        assert_eq!(c.env_value("A"), Some("1"));
        assert_eq!(c.config.labels.as_ref().unwrap()["x"], "y");
        assert_eq!(c.config.working_dir.as_deref(), Some("/w"));
        assert_eq!(c.config.on_build.as_deref().unwrap(), &["USER nobody"]);
        let got = lines.0.lock().unwrap().clone();
        assert_eq!(got[0], "STEP 1: ENV A=1");
        assert!(got
            .iter()
            .any(|l| l.starts_with("WARN unknown OnBuild command")));
        assert!(dir.path().join(builder::builder::STATE_FILE).exists());
    }
}
