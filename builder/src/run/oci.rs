//! `--runtime PATH`: hand the same spec to an external OCI runtime (runc) through a bundle.
use std::path::Path;
use std::process::{Command, Stdio};

use super::{ExecOptions, RunError};

/// `--runtime-flag log-format=json` → `--log-format=json`; `debug` → `--debug`.
pub fn runtime_flag(f: &str) -> String {
    if f.starts_with('-') {
        f.to_string()
    } else {
        format!("--{f}")
    }
}

/// Write `config.json` into the bundle directory and run `RUNTIME [flags] run --bundle DIR ID`.
pub fn run(
    runtime: &Path,
    spec: &oci_spec::runtime::Spec,
    rootfs: &Path,
    opts: &ExecOptions,
) -> Result<i32, RunError> {
    let mut spec = spec.clone();
    let mut root = spec.root().clone().unwrap_or_default();
    root.set_path(rootfs.to_path_buf());
    spec.set_root(Some(root));
    // With a terminal, runc (in the foreground) makes the container's pty and relays it to
    // its own stdio, which must be a terminal: hod's pty slave, whose master hod relays to
    // its stdio (so it works when hod's own stdio is not a terminal, as buildah's does).
    if let Some(p) = spec.process_mut() {
        p.set_terminal(Some(opts.terminal));
    }
    let tty = if opts.terminal {
        Some(super::embedded::Tty::open()?)
    } else {
        None
    };
    let config = opts.bundle_dir.join("config.json");
    let data = serde_json::to_vec_pretty(&spec)
        .map_err(|e| RunError::Setup(format!("encoding config.json: {e}")))?;
    crate::fsutil::atomic_write(&config, &data, 0o600)
        .map_err(|e| RunError::Setup(format!("{e:#}")))?;
    let state = opts.bundle_dir.join("runtime-state");
    // The runtime with its global options: for `run`, and for `kill` on a stop request.
    let runtime_cmd = || {
        let mut c = Command::new(runtime);
        c.arg("--root").arg(&state);
        for f in &opts.runtime_flags {
            c.arg(runtime_flag(f));
        }
        c
    };
    let mut cmd = runtime_cmd();
    let id = format!(
        "hod-{}-{}",
        &opts.container_id.chars().take(12).collect::<String>(),
        &crate::fsutil::random_id()[..8]
    );
    cmd.arg("run")
        .arg("--bundle")
        .arg(&opts.bundle_dir)
        .arg(&id);
    cmd.stdin(if opts.null_stdin {
        Stdio::null()
    } else {
        Stdio::inherit()
    })
    .stdout(Stdio::inherit())
    .stderr(Stdio::inherit());
    if let Some((_, slave)) = &tty {
        let dup = || {
            slave
                .try_clone()
                .map_err(|e| RunError::Setup(format!("dup: {e}")))
        };
        cmd.stdin(Stdio::from(dup()?))
            .stdout(Stdio::from(dup()?))
            .stderr(Stdio::from(dup()?));
    }
    for (target, is_out) in [(&opts.stdout, true), (&opts.stderr, false)] {
        if let (Some(path), None) = (target, &tty) {
            let f = super::open_output(path).map_err(|e| RunError::Io {
                op: "creating".into(),
                path: path.clone(),
                source: e,
            })?;
            if is_out {
                cmd.stdout(Stdio::from(f));
            } else {
                cmd.stderr(Stdio::from(f));
            }
        }
    }
    let mut child = cmd.spawn().map_err(|e| RunError::Io {
        op: "running the OCI runtime".into(),
        path: runtime.to_path_buf(),
        source: e,
    })?;
    // Our copies of the pty slave go, so the relay sees the end when the container's do.
    drop(cmd);
    let (tty, relay) = match tty {
        Some((t, slave)) => {
            drop(slave);
            let out = match &opts.stdout {
                Some(p) => Some(super::open_output(p).map_err(|e| RunError::Io {
                    op: "creating".into(),
                    path: p.clone(),
                    source: e,
                })?),
                None => None,
            };
            let h = t.relay(out)?;
            (Some(t), Some(h))
        }
        None => (None, None),
    };
    let fwd =
        crate::sys::process::Forwarder::to(nix::unistd::Pid::from_raw(child.id() as i32)).ok();
    // What buildah does on a stop request (`<runtime> kill <id> SIGKILL`), after the grace
    // the forwarded signal had: the container's PID 1 ignores the signals it has no
    // handler for.
    let stop = {
        let mut kill = runtime_cmd();
        kill.arg("kill")
            .arg(&id)
            .arg("KILL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        crate::sys::process::StopWatch::new(move || {
            if let Err(e) = kill.status() {
                tracing::debug!("killing the container after a stop request: {e}");
            }
        })
        .ok()
    };
    let status = child.wait().map_err(|e| RunError::Io {
        op: "waiting for".into(),
        path: runtime.to_path_buf(),
        source: e,
    })?;
    drop(stop);
    drop(fwd);
    if let Some(h) = relay {
        let _ = h.join();
    }
    drop(tty);
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn flags() {
        assert_eq!(super::runtime_flag("log-format=json"), "--log-format=json");
        assert_eq!(super::runtime_flag("debug"), "--debug");
        assert_eq!(super::runtime_flag("--systemd-cgroup"), "--systemd-cgroup");
    }
}
