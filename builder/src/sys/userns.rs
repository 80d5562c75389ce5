//! Rootless mode's start: a normal user's hod re-executes itself into a user namespace in
//! which it is root, with the user's /etc/subuid and /etc/subgid ranges mapped (buildah's
//! `pkg/unshare` `MaybeReexecUsingUserNamespace`), and a private mount namespace.
//!
//! ```text
//!  hod (UID 1000, host namespaces)                 hod again (/proc/self/exe, same argv)
//!  main: parse argv ─ Plan::for_this_process()
//!        spawn with _HOD_USERNS_FDS=r,w ─────────▶ reexec::dispatch → enter_child():
//!                                                    unshare(CLONE_NEWUSER)
//!        ◀──────────────────────── "userns\tready"   wait on the sync pipe
//!        newuidmap PID 0 1000 1 1 100000 65536
//!        newgidmap PID 0 1000 1 1 100000 65536
//!        (or a single-ID map, after ONE warning)
//!        "1" ────────────────────────────────────▶  setresgid/setresuid(0), setgroups([])
//!                                                    unshare(CLONE_NEWNS), / becomes rslave
//!                                                    close the report pipe, go on with main
//!        wait, forwarding signals; exit with        ... as root in the namespace, with
//!        the child's status                         _CONTAINERS_USERNS_CONFIGURED=done and
//!                                                   _CONTAINERS_ROOTLESS_UID/GID set
//! ```
//!
//! Everything that depends on "who is this for" asks [`identity`]: root, or a rootless user
//! (outside the namespace, or inside it where the effective UID reads 0). The environment
//! variables are those containers/storage and containers/image read, so buildah and podman
//! run from a `hod unshare` shell (and hod from a `buildah unshare` shell) agree.
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sched::CloneFlags;
use nix::unistd::{Gid, Pid, Uid};

use super::container::{REPORT_SETUP, REPORT_USERNS};
use super::process;
use crate::run::spec::IdMap;

/// Set (to `done`) in a process that runs in the rootless user namespace.
pub const CONFIGURED_ENV: &str = "_CONTAINERS_USERNS_CONFIGURED";
/// The rootless user's host UID, inside the namespace.
pub const ROOTLESS_UID_ENV: &str = "_CONTAINERS_ROOTLESS_UID";
/// The rootless user's host GID, inside the namespace.
pub const ROOTLESS_GID_ENV: &str = "_CONTAINERS_ROOTLESS_GID";
/// Report and sync pipe descriptors (`r,w`) of a child that must enter the namespace.
const CHILD_ENV: &str = "_HOD_USERNS_FDS";

/// Who hod acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// Root (on the host, or the root of a namespace hod did not set up, such as a pod's).
    Root,
    /// A normal user.
    Rootless {
        /// The user's host UID.
        uid: u32,
        /// The user's host GID.
        gid: u32,
        /// Running inside the rootless user namespace (as its root).
        in_userns: bool,
    },
}

impl Identity {
    /// Whether this is a normal user (in or outside the namespace).
    pub fn is_rootless(&self) -> bool {
        matches!(self, Identity::Rootless { .. })
    }

    /// The host UID hod acts for (0 for root).
    pub fn host_uid(&self) -> u32 {
        match self {
            Identity::Root => 0,
            Identity::Rootless { uid, .. } => *uid,
        }
    }
}

/// Who this process acts for: [`identity_from`] with the process's IDs and environment.
pub fn identity() -> Identity {
    identity_from(
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
        &|k| std::env::var(k).ok(),
    )
}

/// A normal user when the effective UID is not 0, or when it is 0 inside a rootless user
/// namespace (`_CONTAINERS_USERNS_CONFIGURED` and `_CONTAINERS_ROOTLESS_UID` set).
pub fn identity_from(euid: u32, egid: u32, env: &dyn Fn(&str) -> Option<String>) -> Identity {
    if euid != 0 {
        return Identity::Rootless {
            uid: euid,
            gid: egid,
            in_userns: false,
        };
    }
    let configured = env(CONFIGURED_ENV).is_some_and(|v| !v.is_empty());
    let uid = env(ROOTLESS_UID_ENV).and_then(|v| v.parse::<u32>().ok());
    match (configured, uid) {
        (true, Some(uid)) if uid != 0 => Identity::Rootless {
            uid,
            gid: env(ROOTLESS_GID_ENV)
                .and_then(|v| v.parse().ok())
                .unwrap_or(uid),
            in_userns: true,
        },
        _ => Identity::Root,
    }
}

/// The ranges of `/etc/subuid`-format text for user `name` (or numeric `id`, when given), in
/// file order; ranges of no IDs are left out.
pub fn parse_subid(text: &str, name: &str, id: Option<u32>) -> Vec<(u32, u32)> {
    let id = id.map(|i| i.to_string());
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split(':').collect();
            if f.len() != 3 || !(f[0] == name || Some(f[0]) == id.as_deref()) {
                return None;
            }
            let (start, count) = (f[1].parse::<u32>().ok()?, f[2].parse::<u32>().ok()?);
            (count > 0).then_some((start, count))
        })
        .collect()
}

/// The maps of a rootless user namespace: 0 → the user's own ID, then the subordinate
/// ranges consecutively from 1 (as buildah lays them out). Only the first entry when there
/// are no ranges.
pub fn rootless_map(own: u32, ranges: &[(u32, u32)]) -> Vec<IdMap> {
    let mut v = vec![IdMap {
        container_id: 0,
        host_id: own,
        size: 1,
    }];
    let mut next = 1u32;
    for &(start, count) in ranges {
        v.push(IdMap {
            container_id: next,
            host_id: start,
            size: count,
        });
        next = next.saturating_add(count);
    }
    v
}

/// Each ID range of this process's namespace (`/proc/self/uid_map` text) mapped to itself:
/// what a nested user namespace can have. The whole 32-bit range when the text has none.
pub fn identity_maps(proc_map: &str) -> Vec<IdMap> {
    let v: Vec<IdMap> = proc_map
        .lines()
        .filter_map(|l| {
            let f: Vec<u32> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (f.len() == 3 && f[2] > 0).then(|| IdMap {
                container_id: f[0],
                host_id: f[0],
                size: f[2],
            })
        })
        .collect();
    if v.is_empty() {
        return vec![IdMap {
            container_id: 0,
            host_id: 0,
            size: u32::MAX,
        }];
    }
    v
}

/// How the maps of the new namespace are written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Method {
    /// newuidmap/newgidmap with the subordinate ranges.
    NewIdMap,
    /// hod writes `0 UID 1` / `0 GID 1` itself (no helper or no ranges).
    Single,
}

/// The re-execution a rootless hod does at start (see the module docs).
#[derive(Debug)]
pub struct Plan {
    uid: u32,
    gid: u32,
    uids: Vec<IdMap>,
    gids: Vec<IdMap>,
    method: Method,
    warning: Option<String>,
}

fn find_in_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

const SINGLE_NOTE: &str =
    "hod runs in a user namespace that maps only your UID and GID (as root), \
     so every file it stores is root's whatever the layer says (see docs/tutorials/rootless.md)";

impl Plan {
    /// The plan for this process: `None` for root, and inside the rootless namespace.
    pub fn for_this_process() -> Option<Plan> {
        let Identity::Rootless {
            uid,
            gid,
            in_userns: false,
        } = identity()
        else {
            return None;
        };
        let name = nix::unistd::User::from_uid(Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| uid.to_string());
        let read = |f: &str| std::fs::read_to_string(f).unwrap_or_default();
        let subu = parse_subid(&read("/etc/subuid"), &name, Some(uid));
        let subg = parse_subid(&read("/etc/subgid"), &name, Some(gid));
        let tools = find_in_path("newuidmap").is_some() && find_in_path("newgidmap").is_some();
        let (method, warning) = if subu.is_empty() || subg.is_empty() {
            let which = match (subu.is_empty(), subg.is_empty()) {
                (true, true) => "/etc/subuid and /etc/subgid",
                (true, false) => "/etc/subuid",
                _ => "/etc/subgid",
            };
            (
                Method::Single,
                Some(format!(
                    "no subordinate ID ranges for user {name:?} in {which}: {SINGLE_NOTE}"
                )),
            )
        } else if !tools {
            (
                Method::Single,
                Some(format!(
                    "newuidmap/newgidmap not found (install the uidmap package): {SINGLE_NOTE}"
                )),
            )
        } else {
            (Method::NewIdMap, None)
        };
        let (uids, gids) = match method {
            Method::NewIdMap => (rootless_map(uid, &subu), rootless_map(gid, &subg)),
            Method::Single => (rootless_map(uid, &[]), rootless_map(gid, &[])),
        };
        Some(Plan {
            uid,
            gid,
            uids,
            gids,
            method,
            warning,
        })
    }

    /// The one warning line to show before the re-execution (single-ID fallback), if any.
    pub fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }

    /// Run hod again in the namespace, with the same arguments, and wait for it: its exit
    /// status (128+N for a signal). Signals hod receives are forwarded to it.
    pub fn run(self) -> crate::error::Result<i32> {
        // "entering the rootless user namespace: creating a user namespace: EPERM: …"
        let setup = |m: String| {
            crate::error::Error::invalid(format!("entering the rootless user namespace: {m}"))
        };
        let pipe = || {
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| setup(format!("creating a pipe: {}", std::io::Error::from(e))))
        };
        let (rep_r, rep_w) = pipe()?;
        let (sync_r, sync_w) = pipe()?;
        let mut args = std::env::args_os();
        let arg0 = args.next().unwrap_or_else(|| "hod".into());
        let mut cmd = std::process::Command::new("/proc/self/exe");
        cmd.arg0(arg0)
            .args(args)
            .env(
                CHILD_ENV,
                format!("{},{}", rep_w.as_raw_fd(), sync_r.as_raw_fd()),
            )
            .env(CONFIGURED_ENV, "done")
            .env(ROOTLESS_UID_ENV, self.uid.to_string())
            .env(ROOTLESS_GID_ENV, self.gid.to_string());
        let (rw, sr) = (rep_w.as_raw_fd(), sync_r.as_raw_fd());
        process::inherit_fds(&mut cmd, vec![(rep_w, rw), (sync_r, sr)]);
        let mut child = cmd.spawn().map_err(|e| {
            setup(format!(
                "re-executing hod in a user namespace (/proc/self/exe): {e}"
            ))
        })?;
        drop(cmd);
        let pid = Pid::from_raw(child.id() as i32);
        let fwd = process::Forwarder::to(pid).ok();
        let mut sync_w = Some(File::from(sync_w));
        let mut failure = None;
        for line in BufReader::new(File::from(rep_r)).lines() {
            let Ok(line) = line else { break };
            let (kind, msg) = line.split_once('\t').unwrap_or((REPORT_SETUP, &line));
            if kind == REPORT_USERNS {
                let r = self.write_maps(pid);
                if let Some(mut w) = sync_w.take() {
                    let _ = w.write_all(if r.is_ok() { b"1" } else { b"0" });
                }
                if let Err(e) = r {
                    failure = Some(e);
                }
            } else {
                failure = failure.or(Some(msg.to_string()));
            }
        }
        drop(sync_w);
        let status = child
            .wait()
            .map_err(|e| setup(format!("waiting for hod in the user namespace: {e}")))?;
        drop(fwd);
        if let Some(msg) = failure {
            return Err(setup(msg));
        }
        use std::os::unix::process::ExitStatusExt;
        Ok(status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
    }

    fn write_maps(&self, pid: Pid) -> std::result::Result<(), String> {
        if self.method == Method::NewIdMap {
            // Not root: the same newuidmap/newgidmap calls as the embedded runtime's.
            return crate::run::embedded::write_id_maps(pid, &self.uids, &self.gids).map_err(|e| {
                let e = match e {
                    crate::run::RunError::Setup(m) => m,
                    other => other.to_string(),
                };
                format!("{e} (check the ranges in /etc/subuid and /etc/subgid)")
            });
        }
        let proc = Path::new("/proc").join(pid.to_string());
        let write = |f: &str, data: String| {
            std::fs::write(proc.join(f), data)
                .map_err(|e| format!("writing {}: {e}", proc.join(f).display()))
        };
        write("uid_map", format!("0 {} 1\n", self.uid))?;
        write("setgroups", "deny".into())?;
        write("gid_map", format!("0 {} 1\n", self.gid))
    }
}

fn report(fd: &OwnedFd, kind: &str, msg: &str) {
    let _ = nix::unistd::write(
        fd,
        format!("{kind}\t{}\n", msg.replace('\n', " ")).as_bytes(),
    );
}

/// The child's side: when this process was started by [`Plan::run`], enter the namespace
/// (see the module docs) and return; otherwise do nothing. On failure the parent is told
/// and this process exits. Must run before any thread exists ([`super::reexec::dispatch`]).
pub fn enter_child() {
    let Some(fds) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    // Single-threaded here: nothing else reads the environment concurrently.
    std::env::remove_var(CHILD_ENV);
    let parse = |s: Option<&str>| s.and_then(|s| s.parse::<RawFd>().ok());
    let fds = fds.to_string_lossy().into_owned();
    let mut it = fds.split(',');
    let (Some(r), Some(s)) = (parse(it.next()), parse(it.next())) else {
        process::exit_now(125);
    };
    let (Some(rep), Some(sync)) = (process::take_fd(r), process::take_fd(s)) else {
        process::exit_now(125);
    };
    let _ = process::set_cloexec(r);
    let _ = process::set_cloexec(s);
    if let Err(msg) = enter(&rep, sync) {
        report(&rep, REPORT_SETUP, &msg);
        process::exit_now(125);
    }
    // Dropping `rep` closes it: the parent sees EOF and waits for this process.
}

/// Create the user namespace, wait for the parent's maps, become its root, then a private
/// mount namespace.
pub fn enter(rep: &OwnedFd, sync: OwnedFd) -> std::result::Result<(), String> {
    nix::sched::unshare(CloneFlags::CLONE_NEWUSER)
        .map_err(|e| format!("creating a user namespace: {e}"))?;
    report(rep, REPORT_USERNS, "ready");
    let mut b = [0u8; 1];
    if File::from(sync).read(&mut b).ok() != Some(1) || b[0] != b'1' {
        return Err("hod did not set up the user namespace's ID maps".into());
    }
    nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
        .map_err(|e| format!("becoming group 0 in the user namespace: {e}"))?;
    nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
        .map_err(|e| format!("becoming root in the user namespace: {e}"))?;
    // Not allowed after a single-ID map (setgroups is denied there); harmless to skip.
    let _ = nix::unistd::setgroups(&[]);
    nix::sched::unshare(CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("creating a mount namespace: {e}"))?;
    // Mounts made in here must not propagate back to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|e| format!("making / a slave mount: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities() {
        let none = |_: &str| None;
        assert_eq!(identity_from(0, 0, &none), Identity::Root);
        assert_eq!(
            identity_from(1000, 100, &none),
            Identity::Rootless {
                uid: 1000,
                gid: 100,
                in_userns: false
            }
        );
        let inside = |k: &str| match k {
            CONFIGURED_ENV => Some("done".to_string()),
            ROOTLESS_UID_ENV => Some("1000".to_string()),
            ROOTLESS_GID_ENV => Some("100".to_string()),
            _ => None,
        };
        assert_eq!(
            identity_from(0, 0, &inside),
            Identity::Rootless {
                uid: 1000,
                gid: 100,
                in_userns: true
            }
        );
        // Root's `hod unshare` sets only the marker: still root.
        let root_unshare = |k: &str| (k == CONFIGURED_ENV).then(|| "done".to_string());
        assert_eq!(identity_from(0, 0, &root_unshare), Identity::Root);
    }

    #[test]
    fn subid_ranges_and_maps() {
        let text = "alice:100000:65536\nbob:165536:65536\n1000:300000:10\nbad line\nalice:x:1\n";
        assert_eq!(
            parse_subid(text, "alice", Some(1000)),
            vec![(100000, 65536), (300000, 10)]
        );
        assert!(parse_subid(text, "carol", Some(1002)).is_empty());
        let m = rootless_map(1000, &parse_subid(text, "alice", Some(1000)));
        assert_eq!(
            m.iter()
                .map(|m| (m.container_id, m.host_id, m.size))
                .collect::<Vec<_>>(),
            vec![(0, 1000, 1), (1, 100000, 65536), (65537, 300000, 10)]
        );
        assert_eq!(rootless_map(7, &[]).len(), 1);
        let id =
            identity_maps("         0       1001          1\n         1     100000      65536\n");
        assert_eq!(
            id.iter()
                .map(|m| (m.container_id, m.host_id, m.size))
                .collect::<Vec<_>>(),
            vec![(0, 0, 1), (1, 1, 65536)]
        );
        assert_eq!(identity_maps("")[0].size, u32::MAX);
        assert_eq!(identity_maps("0 0 4294967295\n")[0].size, u32::MAX);
    }
}
