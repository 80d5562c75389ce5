//! hod's side of the embedded runtime: write the payload, spawn the re-exec'd helper with the
//! report and sync pipes at fds 3 and 4, write user-namespace ID maps when it asks, forward
//! signals, relay a terminal, and turn the helper's reports into errors.
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;

use nix::unistd::Pid;

use super::spec::IdMap;
use super::{io_err, ExecOptions, Isolation, RunError};
use crate::environment::ChrootSetup;
use crate::sys::container::{
    Mode, Payload, REPORT_EXEC, REPORT_FD, REPORT_SETUP, REPORT_USERNS, SYNC_FD,
};
use crate::sys::process::{self, Forwarder};
use crate::sys::reexec;

/// What the helper reported besides its exit status.
#[derive(Debug, Default)]
pub struct Reports {
    /// Runtime setup failures.
    pub setup: Vec<String>,
    /// Exec failures (the command could not be run).
    pub exec: Vec<String>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), RunError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| RunError::Setup(format!("creating a pipe: {}", std::io::Error::from(e))))
}

/// Write `/proc/PID/{uid,gid}_map`: directly when hod is root, else with newuidmap/newgidmap.
pub fn write_id_maps(pid: Pid, uids: &[IdMap], gids: &[IdMap]) -> Result<(), RunError> {
    let fmt = |m: &[IdMap]| {
        m.iter()
            .map(|x| format!("{} {} {}\n", x.container_id, x.host_id, x.size))
            .collect::<String>()
    };
    if nix::unistd::geteuid().is_root() {
        for (file, maps) in [("uid_map", uids), ("gid_map", gids)] {
            let p = Path::new("/proc").join(pid.to_string()).join(file);
            std::fs::write(&p, fmt(maps)).map_err(|e| io_err("writing", &p, e))?;
        }
        return Ok(());
    }
    for (tool, maps) in [("newuidmap", uids), ("newgidmap", gids)] {
        let mut cmd = std::process::Command::new(tool);
        cmd.arg(pid.to_string());
        for m in maps {
            cmd.args([
                m.container_id.to_string(),
                m.host_id.to_string(),
                m.size.to_string(),
            ]);
        }
        let out = cmd
            .output()
            .map_err(|e| io_err("running", Path::new(tool), e))?;
        if !out.status.success() {
            return Err(RunError::Setup(format!(
                "{tool} {pid}: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    Ok(())
}

/// Terminal relay: hod's stdin/stdout ↔ the pty master, raw mode while it runs (also for
/// an external runtime, see `oci::run`).
pub(super) struct Tty {
    master: OwnedFd,
    saved: Option<nix::sys::termios::Termios>,
}

impl Tty {
    pub(super) fn open() -> Result<(Tty, OwnedFd), RunError> {
        let ws = process::get_winsize(std::io::stdin().as_fd()).ok();
        let pty = nix::pty::openpty(None, None)
            .map_err(|e| RunError::Setup(format!("allocating a pty: {e}")))?;
        if let Some(ws) = ws {
            let _ = process::set_winsize(pty.slave.as_fd(), &ws);
        }
        let mut saved = None;
        if let Ok(t) = nix::sys::termios::tcgetattr(std::io::stdin()) {
            let mut raw = t.clone();
            nix::sys::termios::cfmakeraw(&mut raw);
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                &raw,
            );
            saved = Some(t);
        }
        Ok((
            Tty {
                master: pty.master,
                saved,
            },
            pty.slave,
        ))
    }

    pub(super) fn relay(&self, out: Option<File>) -> Result<std::thread::JoinHandle<()>, RunError> {
        let mut to_master = File::from(
            self.master
                .try_clone()
                .map_err(|e| RunError::Setup(format!("dup: {e}")))?,
        );
        let mut from_master = File::from(
            self.master
                .try_clone()
                .map_err(|e| RunError::Setup(format!("dup: {e}")))?,
        );
        // stdin → master: detached; it ends with hod.
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut stdin = std::io::stdin();
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || to_master.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        Ok(std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut out: Box<dyn Write + Send> = match out {
                Some(f) => Box::new(f),
                None => Box::new(std::io::stdout()),
            };
            // EIO once the last slave descriptor is closed.
            while let Ok(n) = from_master.read(&mut buf) {
                if n == 0 || out.write_all(&buf[..n]).is_err() {
                    break;
                }
                let _ = out.flush();
            }
        }))
    }
}

impl Drop for Tty {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}

/// Run the spec with the embedded runtime; the command's exit status and the reports.
pub fn run(
    spec: &oci_spec::runtime::Spec,
    rootfs: &Path,
    opts: &ExecOptions,
) -> Result<(i32, Reports), RunError> {
    let env = crate::environment::Environment::get();
    let mode = match (opts.isolation, env.chroot_setup()) {
        (Isolation::Chroot, ChrootSetup::Bare) => Mode::Bare,
        (Isolation::Chroot, _) => Mode::Chroot,
        _ => Mode::Oci,
    };
    let has_userns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter().any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::User && n.path().is_none()
            })
        });
    // chroot isolation without CAP_SYS_ADMIN: a user namespace with an identity map gives the
    // mount namespace and bind mounts (buildah's chroot falls back the same way).
    let chroot_userns = mode == Mode::Chroot && env.chroot_setup() == ChrootSetup::UserNamespace;
    if mode == Mode::Bare && !crate::sys::caps::have_effective("CAP_SYS_CHROOT") {
        return Err(RunError::Setup(
            "isolation chroot needs CAP_SYS_CHROOT where no namespace can be created (CRI-O's \
             default capabilities lack it: add SYS_CHROOT to the pod's capabilities)"
                .into(),
        ));
    }
    if mode == Mode::Oci && !has_userns && !env.sys_admin {
        return Err(RunError::Setup(
            "isolation oci needs CAP_SYS_ADMIN, which this process does not have (a pod \
             without it?): use --isolation chroot or BUILDAH_ISOLATION=chroot"
                .into(),
        ));
    }
    let new_userns = has_userns || chroot_userns;
    let maps: (Vec<IdMap>, Vec<IdMap>) = if has_userns {
        let l = spec.linux().as_ref();
        let conv = |m: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| -> Vec<IdMap> {
            m.into_iter()
                .flatten()
                .map(|x| IdMap {
                    container_id: x.container_id(),
                    host_id: x.host_id(),
                    size: x.size(),
                })
                .collect()
        };
        (
            conv(l.and_then(|l| l.uid_mappings().as_ref())),
            conv(l.and_then(|l| l.gid_mappings().as_ref())),
        )
    } else {
        // Identity over the IDs hod's own namespace has (all of them on a host; a pod's
        // 65536 in a pod with user namespaces).
        env.identity_maps()
    };

    let payload = Payload {
        spec: spec.clone(),
        rootfs: rootfs.to_path_buf(),
        mode,
        no_pivot: opts.no_pivot,
        new_userns,
    };
    let ppath = opts.bundle_dir.join("hod-payload.json");
    let data = serde_json::to_vec(&payload)
        .map_err(|e| RunError::Setup(format!("encoding the payload: {e}")))?;
    crate::fsutil::atomic_write(&ppath, &data, 0o600)
        .map_err(|e| RunError::Setup(format!("{e:#}")))?;

    let (rep_r, rep_w) = pipe()?;
    let (sync_r, sync_w) = pipe()?;
    let mut cmd = reexec::command("run");
    cmd.env_clear()
        .env(reexec::HELPER_ENV, "run")
        .env(reexec::PAYLOAD_ENV, &ppath);
    if let Ok(v) = std::env::var("RUST_LOG") {
        cmd.env("RUST_LOG", v);
    }
    let tty = if opts.terminal {
        let (tty, slave) = Tty::open()?;
        let s2 = slave
            .try_clone()
            .map_err(|e| RunError::Setup(format!("dup: {e}")))?;
        let s3 = slave
            .try_clone()
            .map_err(|e| RunError::Setup(format!("dup: {e}")))?;
        cmd.stdin(Stdio::from(slave))
            .stdout(Stdio::from(s2))
            .stderr(Stdio::from(s3));
        Some(tty)
    } else {
        if opts.null_stdin {
            cmd.stdin(Stdio::null());
        }
        None
    };
    for (target, is_out) in [(&opts.stdout, true), (&opts.stderr, false)] {
        if let (Some(path), false) = (target, opts.terminal) {
            let f = super::open_output(path).map_err(|e| io_err("opening", path, e))?;
            if is_out {
                cmd.stdout(Stdio::from(f));
            } else {
                cmd.stderr(Stdio::from(f));
            }
        }
    }
    process::inherit_fds(&mut cmd, vec![(rep_w, REPORT_FD), (sync_r, SYNC_FD)]);
    let mut child = cmd.spawn().map_err(|e| {
        io_err(
            "starting the runtime helper",
            Path::new("/proc/self/exe"),
            e,
        )
    })?;
    // Our copies of the helper's ends (and the pty slave) go away with the Command.
    drop(cmd);
    let pid = Pid::from_raw(child.id() as i32);
    let fwd = Forwarder::to(pid).ok();
    let stop = process::StopWatch::new(move || process::send_kill_request(pid)).ok();
    let relay = match &tty {
        Some(t) => {
            let out = match &opts.stdout {
                Some(p) => Some(super::open_output(p).map_err(|e| io_err("opening", p, e))?),
                None => None,
            };
            process::resize_on_winch(Some(t.master.as_fd()));
            Some(t.relay(out)?)
        }
        None => None,
    };
    let mut reports = Reports::default();
    let mut sync_w = Some(File::from(sync_w));
    let mut maps_error = None;
    for line in BufReader::new(File::from(rep_r)).lines() {
        let Ok(line) = line else { break };
        let (kind, msg) = line.split_once('\t').unwrap_or(("setup", line.as_str()));
        match kind {
            REPORT_USERNS => {
                let r = write_id_maps(pid, &maps.0, &maps.1);
                let ok = r.is_ok();
                if let Err(e) = r {
                    maps_error = Some(e);
                }
                if let Some(mut w) = sync_w.take() {
                    let _ = w.write_all(if ok { b"1" } else { b"0" });
                }
            }
            REPORT_EXEC => reports.exec.push(msg.to_string()),
            REPORT_SETUP => reports.setup.push(msg.to_string()),
            _ => reports.setup.push(line.clone()),
        }
    }
    drop(sync_w);
    let status = child
        .wait()
        .map_err(|e| io_err("waiting for", Path::new("the runtime helper"), e))?;
    drop(stop);
    drop(fwd);
    process::resize_on_winch(None);
    if let Some(h) = relay {
        let _ = h.join();
    }
    drop(tty);
    // The run's own cgroups (the leaves; `--cgroup-parent` itself stays, as with runc).
    if let Some(cg) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
    {
        for (_, dir) in crate::sys::container::cgroup_dirs(cg).unwrap_or_default() {
            if let Err(e) = std::fs::remove_dir(&dir) {
                tracing::debug!("removing cgroup {}: {e}", dir.display());
            }
        }
    }
    let _ = std::fs::remove_file(&ppath);
    if let Some(e) = maps_error {
        return Err(e);
    }
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok((code, reports))
}
