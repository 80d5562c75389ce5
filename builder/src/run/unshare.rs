//! `hod unshare`: run a command in the user and mount namespace a rootless user gets (as
//! root: just a new mount namespace), through the `unshare` re-exec helper.
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use nix::unistd::Pid;

use super::embedded::write_id_maps;
use super::RunError;
use crate::error::{Error, Result};
use crate::sys::container::{REPORT_EXEC, REPORT_FD, REPORT_SETUP, REPORT_USERNS, SYNC_FD};
use crate::sys::{process, reexec, unshare::USERNS_ENV};

/// Run `command` (argv) with extra environment `env`; returns its exit status.
pub fn unshare(command: &[String], env: &[(String, String)]) -> Result<i32> {
    let pipe = || {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| RunError::Setup(format!("creating a pipe: {}", std::io::Error::from(e))))
    };
    let (rep_r, rep_w) = pipe()?;
    let (sync_r, sync_w) = pipe()?;
    let rootless = !nix::unistd::geteuid().is_root();
    let mut cmd = reexec::command("unshare");
    cmd.args(command);
    cmd.env(USERNS_ENV, if rootless { "1" } else { "0" });
    cmd.env("_CONTAINERS_USERNS_CONFIGURED", "done");
    if rootless {
        cmd.env(
            "_CONTAINERS_ROOTLESS_UID",
            nix::unistd::geteuid().to_string(),
        );
        cmd.env(
            "_CONTAINERS_ROOTLESS_GID",
            nix::unistd::getegid().to_string(),
        );
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    process::inherit_fds(&mut cmd, vec![(rep_w, REPORT_FD), (sync_r, SYNC_FD)]);
    let mut child = cmd.spawn().map_err(|e| RunError::Io {
        op: "starting the unshare helper".into(),
        path: "/proc/self/exe".into(),
        source: e,
    })?;
    drop(cmd);
    let pid = Pid::from_raw(child.id() as i32);
    let fwd = process::Forwarder::to(pid).ok();
    let mut sync_w = Some(File::from(sync_w));
    let mut setup = None;
    let mut exec = None;
    for line in BufReader::new(File::from(rep_r)).lines() {
        let Ok(line) = line else { break };
        let (kind, msg) = line
            .split_once('\t')
            .unwrap_or((REPORT_SETUP, line.as_str()));
        match kind {
            REPORT_USERNS => {
                let (u, g) = super::default_rootless_maps();
                let r = write_id_maps(pid, &u, &g);
                if let Some(mut w) = sync_w.take() {
                    let _ = w.write_all(if r.is_ok() { b"1" } else { b"0" });
                }
                if let Err(e) = r {
                    setup = Some(format!("{:#}", Error::from(e)));
                }
            }
            REPORT_EXEC => exec = Some(msg.to_string()),
            _ => setup = setup.or(Some(msg.to_string())),
        }
    }
    drop(sync_w);
    let status = child.wait().map_err(|e| RunError::Io {
        op: "waiting for".into(),
        path: Path::new("the unshare helper").into(),
        source: e,
    })?;
    drop(fwd);
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    if let Some(msg) = setup {
        return Err(RunError::Setup(msg).into());
    }
    if let Some(msg) = exec {
        return Err(Error::from(RunError::ExitStatus(code)).context(format!("running {msg}")));
    }
    Ok(code)
}
