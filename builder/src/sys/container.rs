//! The embedded runtime's helper side: what runs in the re-exec'd process (see
//! [`crate::sys::reexec`]). It unshares the namespaces the spec asks for, becomes (through a
//! fork) PID 1 of the new PID namespace, sets up the rootfs mounts with every target resolved
//! inside the rootfs and every source opened before it is mounted, pivots (or chroots) into
//! it, masks paths, then forks the container process, which applies rlimits, seccomp, the
//! user, capabilities and `no_new_privs` and execs. PID 1 stays behind as a tiny init: it
//! forwards signals, reaps, and exits with the main process's status, which makes the kernel
//! kill whatever else is left in the namespace.
//!
//! Descriptors: 3 = report pipe to hod (lines `kind\tmessage`), 4 = sync pipe from hod
//! (one byte once the ID maps of a new user namespace are written).
use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::stat::{Mode as NixMode, SFlag};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Gid, Pid, Uid};
use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};
use serde::{Deserialize, Serialize};

use super::process::{self, Forwarder};
use super::{caps, seccomp};
use crate::rootfs::{fd_path, is_dir, is_symlink, resolve_in_root, Create};

/// How the helper isolates the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Namespaces as the spec lists them, fresh /proc, /dev, /sys, pivot_root.
    #[default]
    Oci,
    /// buildah's chroot isolation: mount and UTS namespaces only (plus a user namespace with
    /// an identity map when CAP_SYS_ADMIN is missing), host /dev, /proc, /sys bound in, chroot.
    Chroot,
    /// chroot(2) alone, for where neither a mount nor a user namespace can be created (a pod
    /// without CAP_SYS_ADMIN and without user namespaces): no namespace, no mount; hod puts
    /// the files the spec would bind into the rootfs itself (`run::bare`).
    Bare,
}

/// What hod hands the helper.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payload {
    /// The runtime spec.
    pub spec: Spec,
    /// Absolute host path of the rootfs.
    pub rootfs: PathBuf,
    /// Isolation mode.
    pub mode: Mode,
    /// chroot(2) instead of pivot_root(2).
    pub no_pivot: bool,
    /// The helper creates a user namespace and waits for hod to write its ID maps.
    pub new_userns: bool,
}

/// Report kinds on the pipe to hod.
pub const REPORT_SETUP: &str = "setup";
/// The command could not be executed.
pub const REPORT_EXEC: &str = "exec";
/// A user namespace was created; hod writes the maps and answers on the sync pipe.
pub const REPORT_USERNS: &str = "userns";

/// The fd numbers of the report and sync pipes in the helper.
pub const REPORT_FD: i32 = 3;
/// See [`REPORT_FD`].
pub const SYNC_FD: i32 = 4;

type R<T> = std::result::Result<T, String>;

fn ctx<T, E: std::fmt::Display>(
    r: std::result::Result<T, E>,
    what: impl FnOnce() -> String,
) -> R<T> {
    r.map_err(|e| format!("{}: {e}", what()))
}

fn send(fd: &impl AsFd, kind: &str, msg: &str) {
    let line = format!("{kind}\t{}\n", msg.replace('\n', " "));
    let _ = nix::unistd::write(fd, line.as_bytes());
}

/// Entry point of the `run` helper; returns the exit code.
pub fn helper_main() -> i32 {
    let (Some(report), sync) = (process::take_fd(REPORT_FD), process::take_fd(SYNC_FD)) else {
        return 125;
    };
    let _ = process::set_cloexec(REPORT_FD);
    let _ = process::set_cloexec(SYNC_FD);
    let payload = match load_payload() {
        Ok(p) => p,
        Err(e) => {
            send(&report, REPORT_SETUP, &e);
            return 125;
        }
    };
    match helper(&payload, &report, sync) {
        Ok(code) => code,
        Err(e) => {
            send(&report, REPORT_SETUP, &e);
            125
        }
    }
}

fn load_payload() -> R<Payload> {
    let path = std::env::var_os(super::reexec::PAYLOAD_ENV).ok_or("no payload given")?;
    let data = ctx(std::fs::read(&path), || {
        format!("reading {}", Path::new(&path).display())
    })?;
    ctx(serde_json::from_slice(&data), || {
        "parsing the runtime payload".to_string()
    })
}

fn ns_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Time => CloneFlags::empty(),
    }
}

/// The namespaces to create (flags) and those to join (`path` entries), from the spec.
fn ns_flags(spec: &Spec) -> R<(CloneFlags, Vec<(PathBuf, CloneFlags)>)> {
    let mut flags = CloneFlags::empty();
    let mut joins = Vec::new();
    let linux = spec.linux().as_ref();
    for ns in linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
    {
        match ns.path() {
            Some(p) if ns.typ() == LinuxNamespaceType::Mount => {
                return Err(format!(
                    "joining an existing mount namespace ({}) is not supported",
                    p.display()
                ))
            }
            Some(p) => joins.push((p.clone(), ns_flag(ns.typ()))),
            None => flags |= ns_flag(ns.typ()),
        }
    }
    Ok((flags, joins))
}

/// Whether the namespace at `path` is the one this process is in already (setns(2) refuses
/// to re-enter one's own user namespace).
fn is_current_ns(path: &Path, flag: CloneFlags) -> bool {
    let name = match flag {
        CloneFlags::CLONE_NEWUSER => "user",
        CloneFlags::CLONE_NEWNET => "net",
        CloneFlags::CLONE_NEWPID => "pid",
        CloneFlags::CLONE_NEWIPC => "ipc",
        CloneFlags::CLONE_NEWUTS => "uts",
        CloneFlags::CLONE_NEWCGROUP => "cgroup",
        _ => return false,
    };
    let id = |p: &Path| {
        std::fs::metadata(p).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        })
    };
    let mine = id(&Path::new("/proc/self/ns").join(name));
    mine.is_some() && id(path) == mine
}

/// setns(2) into the namespace at `path`.
fn join_ns(path: &Path, flag: CloneFlags) -> R<()> {
    if is_current_ns(path, flag) {
        return Ok(());
    }
    let f = ctx(std::fs::File::open(path), || {
        format!("opening namespace {}", path.display())
    })?;
    ctx(nix::sched::setns(f.as_fd(), flag), || {
        format!("joining namespace {}", path.display())
    })
}

/// The directories of the cgroup `path` (the spec's `cgroupsPath`) in each hierarchy this
/// process is in (cgroupfs layout, as runc's: a relative path is under this process's own
/// cgroup). cgroup v1 hierarchies are at `/sys/fs/cgroup/<controllers>`, v2 at
/// `/sys/fs/cgroup/unified` (hybrid) or `/sys/fs/cgroup`.
pub fn cgroup_dirs(path: &Path) -> io::Result<Vec<(PathBuf, PathBuf)>> {
    let base = Path::new("/sys/fs/cgroup");
    let mut out = Vec::new();
    for (ctrls, cur) in own_cgroups()? {
        let (ctrls, cur) = (ctrls.as_str(), cur.as_str());
        let mount = if ctrls.is_empty() {
            if base.join("unified/cgroup.procs").exists() {
                base.join("unified")
            } else {
                base.to_path_buf()
            }
        } else {
            base.join(ctrls.strip_prefix("name=").unwrap_or(ctrls))
        };
        if !mount.join("cgroup.procs").exists() {
            continue;
        }
        let start = mount.join(cur.trim_start_matches('/'));
        let target = if path.is_absolute() {
            mount.join(path.strip_prefix("/").unwrap_or(path))
        } else {
            start.join(path)
        };
        out.push((start, target));
    }
    Ok(out)
}

/// This process's cgroups, from `/proc/self/cgroup`: (controllers, empty for cgroup v2;
/// the cgroup's path in that hierarchy).
fn own_cgroups() -> io::Result<Vec<(String, String)>> {
    let own = std::fs::read_to_string("/proc/self/cgroup")?;
    Ok(own
        .lines()
        .map(|line| {
            let mut it = line.splitn(3, ':').skip(1);
            let ctrls = it.next().unwrap_or("").to_string();
            (ctrls, it.next().unwrap_or("/").to_string())
        })
        .collect())
}

/// Move this process into the cgroup `path` in every hierarchy (made as needed; a new
/// cpuset cgroup gets its parent's CPUs and memory nodes, as runc does).
fn join_cgroup(path: &Path) -> R<()> {
    for (start, target) in ctx(cgroup_dirs(path), || "reading /proc/self/cgroup".into())? {
        ctx(std::fs::create_dir_all(&target), || {
            format!("creating cgroup {}", target.display())
        })?;
        if target.join("cpuset.cpus").exists() {
            let mut levels: Vec<&Path> = target.ancestors().take_while(|a| *a != start).collect();
            levels.reverse();
            for dir in levels {
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let v = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
                    if v.trim().is_empty() {
                        if let Some(parent) = dir.parent() {
                            let pv = std::fs::read_to_string(parent.join(f)).unwrap_or_default();
                            let _ = std::fs::write(dir.join(f), pv.trim());
                        }
                    }
                }
            }
        }
        let procs = target.join("cgroup.procs");
        ctx(std::fs::write(&procs, "0"), || {
            format!("joining cgroup {}", target.display())
        })?;
    }
    Ok(())
}

fn helper(p: &Payload, report: &OwnedFd, sync: Option<OwnedFd>) -> R<i32> {
    // If hod dies, so does the container (the init below gets the same treatment).
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    if let Some(cg) = p
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
    {
        join_cgroup(cg)?;
    }
    let (mut flags, joins) = match p.mode {
        Mode::Oci => {
            let (f, j) = ns_flags(&p.spec)?;
            (f | CloneFlags::CLONE_NEWNS, j)
        }
        Mode::Chroot => (CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS, vec![]),
        Mode::Bare => (CloneFlags::empty(), vec![]),
    };
    // A joined user namespace first: the others are joined or created as its root.
    for (path, flag) in joins.iter().filter(|j| j.1 == CloneFlags::CLONE_NEWUSER) {
        join_ns(path, *flag)?;
    }
    if p.new_userns {
        flags |= CloneFlags::CLONE_NEWUSER;
    }
    if flags.contains(CloneFlags::CLONE_NEWUSER) {
        ctx(nix::sched::unshare(CloneFlags::CLONE_NEWUSER), || {
            "creating a user namespace".into()
        })?;
        send(report, REPORT_USERNS, "ready");
        let sync = sync.ok_or("no sync pipe for the user namespace")?;
        let mut b = [0u8; 1];
        let mut f = std::fs::File::from(sync);
        match f.read(&mut b) {
            Ok(1) if b[0] == b'1' => {}
            _ => return Err("hod did not set up the user namespace's ID maps".into()),
        }
        // EINVAL: root is not mapped (a run as another user where hod has one ID); the
        // helper keeps the namespace's capabilities as its creator all the same.
        for r in [
            nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)),
            nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)),
        ] {
            match r {
                Ok(()) | Err(nix::errno::Errno::EINVAL) => {}
                Err(e) => return Err(format!("becoming root in the user namespace: {e}")),
            }
        }
        flags.remove(CloneFlags::CLONE_NEWUSER);
    }
    for (path, flag) in joins.iter().filter(|j| j.1 != CloneFlags::CLONE_NEWUSER) {
        join_ns(path, *flag)?;
    }
    if !flags.is_empty() {
        ctx(nix::sched::unshare(flags), || {
            format!("creating namespaces ({flags:?})")
        })?;
    }
    let pid_ns = flags.contains(CloneFlags::CLONE_NEWPID);
    let (err_r, err_w) = ctx(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC), || {
        "creating a pipe".into()
    })?;
    match ctx(process::fork(), || "forking the container's init".into())? {
        ForkResult::Child => {
            drop(err_r);
            let code = match init(p, pid_ns, flags, &err_w) {
                Ok(code) => code,
                Err(e) => {
                    send(&err_w, REPORT_SETUP, &e);
                    125
                }
            };
            process::exit_now(code);
        }
        ForkResult::Parent { child } => {
            drop(err_w);
            let fwd = Forwarder::to(child).ok();
            let code = wait_for(child);
            drop(fwd);
            let mut msgs = String::new();
            let _ = std::fs::File::from(err_r).read_to_string(&mut msgs);
            let mut out = std::fs::File::from(ctx(report.try_clone(), || {
                "duplicating the report pipe".into()
            })?);
            let _ = out.write_all(msgs.as_bytes());
            Ok(code)
        }
    }
}

/// Wait for one child; its exit code, or 128+signal.
fn wait_for(pid: Pid) -> i32 {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 125,
        }
    }
}

/// PID 1 of the container (or, without a PID namespace, a child subreaper).
fn init(p: &Payload, pid_ns: bool, flags: CloneFlags, err: &OwnedFd) -> R<i32> {
    // The init is hod's own binary with full capabilities: not dumpable, so a container
    // process cannot open /proc/1/exe or /proc/1/fd/* (CVE-2019-5736, security.md R24).
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    if !pid_ns {
        let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    }
    nix::sys::stat::umask(NixMode::empty());
    setup_rootfs(p, flags)?;
    if flags.contains(CloneFlags::CLONE_NEWUTS) {
        if let Some(h) = p.spec.hostname() {
            ctx(nix::unistd::sethostname(h), || {
                format!("setting the hostname to {h:?}")
            })?;
        }
    }
    if flags.contains(CloneFlags::CLONE_NEWNET) {
        if let Err(e) = process::loopback_up() {
            tracing::debug!("bringing lo up: {e}");
        }
    }
    // Only stdio and the error pipe cross into the container process.
    process::close_fds_from(3, &[err.as_raw_fd()]);
    let main = match ctx(process::fork(), || "forking the container process".into())? {
        ForkResult::Child => {
            let e = exec_process(&p.spec, p.mode);
            send(err, e.0, &e.1);
            process::exit_now(if e.0 == REPORT_EXEC { 1 } else { 125 });
        }
        ForkResult::Parent { child } => child,
    };
    let fwd = Forwarder::last_hop(main).ok();
    let mut status = 125;
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == main => {
                status = code;
                break;
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == main => {
                status = 128 + sig as i32;
                break;
            }
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    drop(fwd);
    if !pid_ns {
        kill_descendants();
    }
    Ok(status)
}

/// Without a PID namespace: kill everything that was reparented to us (we are a subreaper).
fn kill_descendants() {
    let me = std::process::id() as i32;
    for _ in 0..100 {
        let mut found = false;
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for e in dir.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                    continue;
                };
                let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                    continue;
                };
                let ppid = stat
                    .rsplit_once(')')
                    .and_then(|(_, r)| r.split_whitespace().nth(1)?.parse::<i32>().ok());
                if ppid == Some(me) {
                    found = true;
                    let _ = nix::sys::signal::kill(
                        Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        while let Ok(st) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            if st == WaitStatus::StillAlive {
                break;
            }
        }
        if !found {
            return;
        }
    }
}

fn bind_flags_from(opts: &[String]) -> (MsFlags, MsFlags, Vec<String>, bool) {
    // (flags, propagation, data, recursive)
    let mut flags = MsFlags::empty();
    let mut prop = MsFlags::empty();
    let mut data = Vec::new();
    let mut rec = false;
    for o in opts {
        match o.as_str() {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => flags.remove(MsFlags::MS_RDONLY),
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "suid" => flags.remove(MsFlags::MS_NOSUID),
            "nodev" => flags |= MsFlags::MS_NODEV,
            "dev" => flags.remove(MsFlags::MS_NODEV),
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "exec" => flags.remove(MsFlags::MS_NOEXEC),
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "nodiratime" => flags |= MsFlags::MS_NODIRATIME,
            "sync" => flags |= MsFlags::MS_SYNCHRONOUS,
            "bind" => {}
            "rbind" => rec = true,
            "private" => prop = MsFlags::MS_PRIVATE,
            "rprivate" => prop = MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            "shared" => prop = MsFlags::MS_SHARED,
            "rshared" => prop = MsFlags::MS_SHARED | MsFlags::MS_REC,
            "slave" => prop = MsFlags::MS_SLAVE,
            "rslave" => prop = MsFlags::MS_SLAVE | MsFlags::MS_REC,
            "z" | "Z" | "U" | "O" | "copy" | "nocopy" => {}
            other => data.push(other.to_string()),
        }
    }
    (flags, prop, data, rec)
}

/// Destinations whose symlinks are followed inside the rootfs (images often link
/// `/etc/resolv.conf` elsewhere); every other mount target must not be a symlink.
fn follows_links(dest: &Path) -> bool {
    matches!(
        dest.to_str(),
        Some("/etc/hosts" | "/etc/resolv.conf" | "/etc/hostname")
    )
}

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

fn setup_rootfs(p: &Payload, flags: CloneFlags) -> R<()> {
    if p.mode == Mode::Bare {
        return bare_chroot(&p.rootfs);
    }
    let prop = match p
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
        .as_deref()
    {
        Some("shared") | Some("rshared") => MsFlags::MS_SHARED,
        Some("slave") | Some("rslave") => MsFlags::MS_SLAVE,
        _ => MsFlags::MS_PRIVATE,
    };
    ctx(
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | prop,
            None::<&str>,
        ),
        || "making / private in the new mount namespace".into(),
    )?;
    let rootfs = &p.rootfs;
    let terminal = p.spec.process().as_ref().and_then(|pr| pr.terminal()) == Some(true);
    ctx(
        mount(
            Some(rootfs.as_path()),
            rootfs.as_path(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        ),
        || format!("bind-mounting the rootfs {}", rootfs.display()),
    )?;
    let root: OwnedFd = ctx(
        rustix::fs::open(
            rootfs,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ),
        || format!("opening the rootfs {}", rootfs.display()),
    )?;
    let cgroupns = flags.contains(CloneFlags::CLONE_NEWCGROUP);
    for m in p.spec.mounts().iter().flatten() {
        if m.typ().as_deref() == Some("cgroup") && !is_bind(m) && p.mode == Mode::Oci {
            mount_cgroup(&root, m, cgroupns)?;
        } else {
            mount_one(&root, m, p.mode, terminal)?;
        }
    }
    if p.mode == Mode::Oci {
        for d in p
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.devices().as_ref())
            .into_iter()
            .flatten()
        {
            make_device(&root, d)?;
        }
    }
    // Enter the rootfs.
    ctx(nix::unistd::fchdir(root.as_raw_fd()), || {
        "entering the rootfs".into()
    })?;
    if p.no_pivot || p.mode == Mode::Chroot {
        if p.mode == Mode::Oci {
            ctx(
                mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>),
                || "moving the rootfs to /".into(),
            )?;
        }
        ctx(nix::unistd::chroot("."), || "chroot into the rootfs".into())?;
    } else {
        ctx(nix::unistd::pivot_root(".", "."), || {
            "pivot_root into the rootfs".into()
        })?;
        // The old root is stacked under "."; make it rslave before detaching it, so the
        // detach never propagates to the host's mounts even when the spec asked for shared
        // root propagation (runc does the same in pivotRoot).
        ctx(
            mount(
                None::<&str>,
                ".",
                None::<&str>,
                MsFlags::MS_SLAVE | MsFlags::MS_REC,
                None::<&str>,
            ),
            || "making the old root rslave".into(),
        )?;
        ctx(umount2(".", MntFlags::MNT_DETACH), || {
            "detaching the old root".into()
        })?;
    }
    ctx(nix::unistd::chdir("/"), || "changing to /".into())?;
    drop(root);
    let newroot: OwnedFd = ctx(
        rustix::fs::open(
            "/",
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ),
        || "opening /".into(),
    )?;
    let linux = p.spec.linux().as_ref();
    // Masked paths first, then read-only ones; chroot isolation tolerates failures.
    type PathOp = fn(&OwnedFd, &Path) -> R<()>;
    let ops: [(Option<&Vec<String>>, PathOp); 2] = [
        (linux.and_then(|l| l.masked_paths().as_ref()), mask_path),
        (
            linux.and_then(|l| l.readonly_paths().as_ref()),
            readonly_path,
        ),
    ];
    for (paths, op) in ops {
        for path in paths.into_iter().flatten() {
            let r = op(&newroot, Path::new(path));
            if p.mode == Mode::Oci {
                r?;
            } else if let Err(e) = r {
                tracing::debug!("chroot isolation: {e}");
            }
        }
    }
    if p.spec
        .root()
        .as_ref()
        .is_some_and(|r| r.readonly() == Some(true))
    {
        ctx(
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            ),
            || "making / read-only".into(),
        )?;
    }
    Ok(())
}

/// [`Mode::Bare`]: into the rootfs with chroot(2) alone (its mounts were left out and its
/// files put in place by hod).
fn bare_chroot(rootfs: &Path) -> R<()> {
    let root: OwnedFd = ctx(
        rustix::fs::open(
            rootfs,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ),
        || format!("opening the rootfs {}", rootfs.display()),
    )?;
    ctx(nix::unistd::fchdir(root.as_raw_fd()), || {
        "entering the rootfs".into()
    })?;
    ctx(nix::unistd::chroot("."), || "chroot into the rootfs".into())?;
    ctx(nix::unistd::chdir("/"), || "changing to /".into())
}

/// The spec's `cgroup` mount, as runc makes it. cgroup v1: a tmpfs holding one directory
/// per hierarchy this process is in (controllers mounted together also get a symbolic link
/// per controller); v2 alone: the one hierarchy. With the host's cgroup namespace each is
/// this process's own cgroup bound from the host, so a RUN sees its own cgroup (its limits)
/// and none of the host's others; in a new cgroup namespace each is a fresh mount, which
/// shows the namespace's root. The spec's `ro` (the default) holds for all of it.
fn mount_cgroup(root: &OwnedFd, m: &Mount, cgroupns: bool) -> R<()> {
    let dest = m.destination();
    let opts: Vec<String> = m.options().clone().unwrap_or_default();
    let (flags, _, _, _) = bind_flags_from(&opts);
    let safe = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    let ro = flags & MsFlags::MS_RDONLY;
    let own = ctx(own_cgroups(), || "reading /proc/self/cgroup".into())?;
    // (hierarchy directory name, controllers as mount data, path of this process's cgroup)
    let mut v1: Vec<(String, String, String)> = Vec::new();
    let mut v2: Option<String> = None;
    for (ctrls, cur) in own {
        if ctrls.is_empty() {
            v2 = Some(cur);
        } else {
            let dir = ctrls.strip_prefix("name=").unwrap_or(&ctrls).to_string();
            let data = if ctrls.starts_with("name=") {
                format!("none,{ctrls}")
            } else {
                ctrls.clone()
            };
            v1.push((dir, data, cur));
        }
    }
    let host = Path::new("/sys/fs/cgroup");
    // One hierarchy at `sub`: a fresh mount in a new cgroup namespace, else this process's
    // cgroup bound from the host. `false` when the host has no such hierarchy mounted.
    let one = |sub: &Path, typ: &str, data: &str, host_dir: &Path| -> R<bool> {
        if !cgroupns && !host_dir.is_dir() {
            return Ok(false);
        }
        let tfd = target(root, sub, Create::Dir, false)?;
        let r = if cgroupns {
            mount(
                Some(typ),
                &fd_path(&tfd),
                Some(typ),
                safe | ro,
                (!data.is_empty()).then_some(data),
            )
        } else {
            mount(
                Some(host_dir),
                &fd_path(&tfd),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .and_then(|()| {
                let again =
                    target(root, sub, Create::No, false).map_err(|_| nix::errno::Errno::ENOENT)?;
                remount_bind(&fd_path(&again), safe | ro)
            })
        };
        match r {
            Ok(()) => Ok(true),
            // A user namespace that may not mount cgroups: go without, as before.
            Err(nix::errno::Errno::EPERM) => {
                tracing::debug!("skipping the cgroup mount on {}: EPERM", sub.display());
                Ok(false)
            }
            Err(e) => Err(format!("mounting {typ} on {}: {e}", sub.display())),
        }
    };
    if v1.is_empty() {
        let cur = v2.unwrap_or_else(|| "/".into());
        one(dest, "cgroup2", "", &host.join(cur.trim_start_matches('/')))?;
        return Ok(());
    }
    let tfd = target(root, dest, Create::Dir, false)?;
    ctx(
        mount(
            Some("tmpfs"),
            &fd_path(&tfd),
            Some("tmpfs"),
            safe,
            Some("mode=755"),
        ),
        || format!("mounting tmpfs on {}", dest.display()),
    )?;
    drop(tfd);
    for (dir, data, cur) in &v1 {
        let sub = dest.join(dir);
        let host_dir = host.join(dir).join(cur.trim_start_matches('/'));
        if one(&sub, "cgroup", data, &host_dir)? && dir.contains(',') {
            let parent = target(root, dest, Create::No, false)?;
            for c in dir.split(',') {
                let _ = rustix::fs::symlinkat(dir.as_str(), &parent, c);
            }
        }
    }
    if !ro.is_empty() {
        let tfd = target(root, dest, Create::No, false)?;
        ctx(
            mount(
                None::<&str>,
                &fd_path(&tfd),
                None::<&str>,
                MsFlags::MS_REMOUNT | safe | ro,
                Some("mode=755"),
            ),
            || format!("remounting {} read-only", dest.display()),
        )?;
    }
    Ok(())
}

fn mount_one(root: &OwnedFd, m: &Mount, mode: Mode, terminal: bool) -> R<()> {
    let dest = m.destination();
    let opts: Vec<String> = m.options().clone().unwrap_or_default();
    let (mut flags, prop, data, rec) = bind_flags_from(&opts);
    let typ = m.typ().clone().unwrap_or_else(|| "bind".to_string());
    let follow = follows_links(dest);
    // In chroot isolation the kernel filesystems come from the host.
    let (bind, source): (bool, Option<PathBuf>) = if is_bind(m) {
        (true, m.source().clone())
    } else if mode == Mode::Chroot {
        match (typ.as_str(), dest.to_str()) {
            ("proc", _) => (true, Some("/proc".into())),
            ("sysfs", _) => (true, Some("/sys".into())),
            // The host's /dev, read-only and without its submounts (the host's /dev/shm
            // and /dev/mqueue stay out), and its devpts for terminals, as buildah's chroot
            // isolation does: a RUN must not create or replace nodes in the host's /dev.
            ("tmpfs", Some("/dev")) => (true, Some("/dev".into())),
            ("devpts", Some("/dev/pts")) => (true, Some("/dev/pts".into())),
            (_, Some(d)) if d.starts_with("/dev/") => return Ok(()),
            ("cgroup" | "cgroup2" | "mqueue" | "devpts", _) => return Ok(()),
            _ => (false, m.source().clone()),
        }
    } else {
        (false, m.source().clone())
    };
    let host_dev = mode == Mode::Chroot && !is_bind(m) && dest.starts_with("/dev");
    let rec = rec || (mode == Mode::Chroot && bind && !is_bind(m) && !host_dev);
    if bind {
        let src =
            source.ok_or_else(|| format!("bind mount on {} has no source", dest.display()))?;
        // The source is opened first and mounted from its descriptor.
        let sfd: OwnedFd = ctx(
            rustix::fs::open(
                &src,
                rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            ),
            || format!("opening mount source {}", src.display()),
        )?;
        let create = if ctx(is_dir(&sfd), || format!("checking {}", src.display()))? {
            Create::Dir
        } else {
            Create::File
        };
        let tfd = target(root, dest, create, follow)?;
        let bind_src = |rec: bool| {
            mount(
                Some(&fd_path(&sfd)),
                &fd_path(&tfd),
                None::<&str>,
                MsFlags::MS_BIND
                    | if rec {
                        MsFlags::MS_REC
                    } else {
                        MsFlags::empty()
                    },
                None::<&str>,
            )
        };
        let r = match bind_src(rec) {
            // In a user namespace a mount with locked submounts (the host's /dev with its
            // /dev/shm) can only be bound with them; the host's IDs are unmapped there, so
            // the RUN cannot write in the host's /dev anyway.
            Err(nix::errno::Errno::EINVAL) if host_dev && !rec => bind_src(true),
            r => r,
        };
        ctx(r, || {
            format!("bind-mounting {} on {}", src.display(), dest.display())
        })?;
        drop(tfd);
        if mode == Mode::Chroot && !is_bind(m) {
            flags |= MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
            if dest != Path::new("/proc") && dest != Path::new("/dev/pts") {
                flags |= MsFlags::MS_RDONLY;
            }
            if host_dev {
                flags.remove(MsFlags::MS_NODEV);
                // The spec's tmpfs `strictatime` is not the host's /dev's to change (a
                // user namespace may not: EPERM).
                flags.remove(MsFlags::MS_STRICTATIME | MsFlags::MS_RELATIME | MsFlags::MS_NOATIME);
            }
        }
        let remount = flags
            & (MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC
                | MsFlags::MS_NOATIME
                | MsFlags::MS_RELATIME
                | MsFlags::MS_STRICTATIME);
        if !remount.is_empty() || !prop.is_empty() {
            let tfd = target(root, dest, Create::No, follow)?;
            if !remount.is_empty() {
                match remount_bind(&fd_path(&tfd), remount) {
                    Ok(()) => {}
                    // chroot isolation binds host mounts whose flags a user namespace may not
                    // change; a user's `ro` must still hold, so only host binds are lenient.
                    Err(e)
                        if mode == Mode::Chroot
                            && !is_bind(m)
                            && (dest != Path::new("/dev") || !host_root_mapped()) =>
                    {
                        tracing::debug!("chroot isolation: remounting {}: {e}", dest.display())
                    }
                    Err(e) => return Err(format!("remounting {}: {e}", dest.display())),
                }
            }
            set_propagation(&tfd, prop, dest)?;
        }
        if mode == Mode::Chroot && !is_bind(m) && dest == Path::new("/sys") {
            readonly_submounts(root, dest)?;
        }
        return Ok(());
    }
    let tfd = target(root, dest, Create::Dir, false)?;
    if !ctx(is_dir(&tfd), || format!("checking {}", dest.display()))? {
        return Err(format!(
            "mount target {} is not a directory",
            dest.display()
        ));
    }
    let src = source.unwrap_or_else(|| PathBuf::from(&typ));
    let data_s = data.join(",");
    let r = mount(
        Some(src.as_path()),
        &fd_path(&tfd),
        Some(typ.as_str()),
        flags,
        if data_s.is_empty() {
            None
        } else {
            Some(data_s.as_str())
        },
    );
    // In a user namespace where GID 5 (tty) is not mapped (a pod's or a rootless user's
    // namespace with one ID), devpts refuses `gid=5`: mount it without, as runc does.
    let r = match r {
        Err(nix::errno::Errno::EINVAL) if typ == "devpts" && data_s.contains("gid=") => {
            let kept: Vec<&str> = data
                .iter()
                .map(String::as_str)
                .filter(|o| !o.starts_with("gid="))
                .collect();
            mount(
                Some(src.as_path()),
                &fd_path(&tfd),
                Some(typ.as_str()),
                flags,
                Some(kept.join(",").as_str()),
            )
        }
        r => r,
    };
    match r {
        Ok(()) => {}
        Err(nix::errno::Errno::EPERM | nix::errno::Errno::EBUSY) if typ == "sysfs" => {
            // Without a new network namespace sysfs cannot be mounted: bind the host's.
            ctx(
                mount(
                    Some("/sys"),
                    &fd_path(&tfd),
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                ),
                || format!("bind-mounting /sys on {}", dest.display()),
            )?;
            let tfd2 = target(root, dest, Create::No, false)?;
            remount_bind(&fd_path(&tfd2), flags | MsFlags::MS_RDONLY)
                .map_err(|e| format!("remounting {}: {e}", dest.display()))?;
        }
        Err(nix::errno::Errno::EPERM) if typ == "mqueue" || typ.starts_with("cgroup") => {
            tracing::debug!("skipping {typ} on {}: EPERM", dest.display());
            return Ok(());
        }
        Err(e) => return Err(format!("mounting {typ} on {}: {e}", dest.display())),
    }
    if dest == Path::new("/dev") && typ == "tmpfs" {
        setup_dev(root)?;
        if terminal {
            // The pty slave on stdin becomes /dev/console, as runc does, so ttyname() finds
            // it in the container's /dev.
            // By path: the descriptor's mount belongs to hod's mount namespace, its path
            // names the copy in ours.
            let pts = ctx(std::fs::read_link("/proc/self/fd/0"), || {
                "finding the terminal".into()
            })?;
            let tfd = target(root, Path::new("/dev/console"), Create::File, false)?;
            ctx(
                mount(
                    Some(pts.as_path()),
                    &fd_path(&tfd),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                ),
                || "bind-mounting the terminal on /dev/console".into(),
            )?;
        }
    }
    if !prop.is_empty() {
        set_propagation(&target(root, dest, Create::No, false)?, prop, dest)?;
    }
    Ok(())
}

/// Remount a bind mount with `flags`; when the kernel refuses because some flags are locked
/// (a user namespace), retry keeping the flags the mount already has.
/// Apply mount propagation flags (`prop`, possibly empty) to the mount at `tfd`.
fn set_propagation(tfd: &OwnedFd, prop: MsFlags, dest: &Path) -> R<()> {
    if prop.is_empty() {
        return Ok(());
    }
    ctx(
        mount(
            None::<&str>,
            &fd_path(tfd),
            None::<&str>,
            prop,
            None::<&str>,
        ),
        || format!("setting propagation of {}", dest.display()),
    )
}

/// Whether the host's `/dev` is owned by an ID mapped here (the host's root in the initial
/// user namespace, or in one mapping host ID 0): then that `/dev`, bound under chroot
/// isolation, must be read-only, since its owner's rights would let a RUN write there.
/// Where its owner is unmapped (shown as the overflow ID) it is closed to the RUN whatever
/// the mount flags.
fn host_root_mapped() -> bool {
    let overflow = std::fs::read_to_string("/proc/sys/kernel/overflowuid")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(65534);
    match rustix::fs::stat("/dev") {
        Ok(st) => st.st_uid != overflow,
        Err(_) => true,
    }
}

fn remount_bind(path: &Path, flags: MsFlags) -> nix::Result<()> {
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    match mount(None::<&str>, path, None::<&str>, base | flags, None::<&str>) {
        Err(nix::errno::Errno::EPERM) => {
            let st = nix::sys::statvfs::statvfs(path)?;
            let f = st.flags();
            let mut keep = MsFlags::empty();
            use nix::sys::statvfs::FsFlags;
            for (s, m) in [
                (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
                (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
                (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
                (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
                (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
                (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
            ] {
                if f.contains(s) {
                    keep |= m;
                }
            }
            mount(
                None::<&str>,
                path,
                None::<&str>,
                base | flags | keep,
                None::<&str>,
            )
        }
        r => r,
    }
}

fn target(root: &OwnedFd, dest: &Path, create: Create, follow: bool) -> R<OwnedFd> {
    let fd = ctx(resolve_in_root(root, dest, create, follow), || {
        format!("resolving mount target {} in the rootfs", dest.display())
    })?;
    if !follow && ctx(is_symlink(&fd), || format!("checking {}", dest.display()))? {
        return Err(format!(
            "mount target {} is a symbolic link",
            dest.display()
        ));
    }
    Ok(fd)
}

fn setup_dev(root: &OwnedFd) -> R<()> {
    let dev = target(root, Path::new("/dev"), Create::No, false)?;
    let devdir: OwnedFd = ctx(
        rustix::fs::openat(
            &dev,
            ".",
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ),
        || "opening /dev".into(),
    )?;
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        let made = nix::sys::stat::mknodat(
            Some(devdir.as_raw_fd()),
            name,
            SFlag::S_IFCHR,
            NixMode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(major, minor),
        );
        if made.is_err() {
            // In a user namespace device nodes cannot be created: bind the host's.
            let host = PathBuf::from("/dev").join(name);
            let tfd = target(root, &Path::new("/dev").join(name), Create::File, false)?;
            ctx(
                mount(
                    Some(&host),
                    &fd_path(&tfd),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                ),
                || format!("bind-mounting {}", host.display()),
            )?;
        }
    }
    for (name, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        ctx(rustix::fs::symlinkat(to, &devdir, name), || {
            format!("creating /dev/{name}")
        })?;
    }
    Ok(())
}

fn make_device(root: &OwnedFd, d: &oci_spec::runtime::LinuxDevice) -> R<()> {
    use oci_spec::runtime::LinuxDeviceType;
    let path = d.path();
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .ok_or_else(|| format!("bad device path {}", path.display()))?;
    let pfd = target(root, parent, Create::Dir, false)?;
    let dir: OwnedFd = ctx(
        rustix::fs::openat(
            &pfd,
            ".",
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ),
        || format!("opening {}", parent.display()),
    )?;
    let kind = match d.typ() {
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        _ => SFlag::S_IFCHR,
    };
    let mode = NixMode::from_bits_truncate(d.file_mode().unwrap_or(0o666));
    let _ = nix::unistd::unlinkat(
        Some(dir.as_raw_fd()),
        name,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    );
    ctx(
        nix::sys::stat::mknodat(
            Some(dir.as_raw_fd()),
            name,
            kind,
            mode,
            nix::sys::stat::makedev(d.major() as u64, d.minor() as u64),
        ),
        || format!("creating device {}", path.display()),
    )?;
    let _ = nix::unistd::fchownat(
        Some(dir.as_raw_fd()),
        name,
        d.uid().map(Uid::from_raw),
        d.gid().map(Gid::from_raw),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    );
    Ok(())
}

fn mask_path(root: &OwnedFd, path: &Path) -> R<()> {
    let fd = match resolve_in_root(root, path, Create::No, false) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("resolving masked path {}: {e}", path.display())),
    };
    if ctx(is_symlink(&fd), || format!("checking {}", path.display()))? {
        return Ok(());
    }
    if ctx(is_dir(&fd), || format!("checking {}", path.display()))? {
        ctx(
            mount(
                Some("tmpfs"),
                &fd_path(&fd),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            ),
            || format!("masking {}", path.display()),
        )
    } else {
        ctx(
            mount(
                Some("/dev/null"),
                &fd_path(&fd),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            ),
            || format!("masking {}", path.display()),
        )
    }
}

fn readonly_path(root: &OwnedFd, path: &Path) -> R<()> {
    let fd = match resolve_in_root(root, path, Create::No, false) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("resolving read-only path {}: {e}", path.display())),
    };
    if ctx(is_symlink(&fd), || format!("checking {}", path.display()))? {
        return Ok(());
    }
    ctx(
        mount(
            Some(&fd_path(&fd)),
            &fd_path(&fd),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        ),
        || format!("bind-mounting {} read-only", path.display()),
    )?;
    drop(fd);
    let fd = resolve_in_root(root, path, Create::No, false)
        .map_err(|e| format!("resolving {}: {e}", path.display()))?;
    remount_bind(
        &fd_path(&fd),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
    )
    .map_err(|e| format!("remounting {} read-only: {e}", path.display()))?;
    readonly_submounts(root, path)
}

/// A remount changes only the top mount of a recursive bind: every mount below `dest` in the
/// rootfs (the host's cgroup hierarchies under a chroot isolation's `/sys`, `binfmt_misc`
/// under `/proc/sys`) is remounted read-only too, so a RUN cannot write the host's cgroups or
/// register an interpreter (security.md R27).
fn readonly_submounts(root: &OwnedFd, dest: &Path) -> R<()> {
    let rootfs = ctx(std::fs::read_link(fd_path(root)), || {
        "finding the rootfs's path".into()
    })?;
    let rel_dest = dest.strip_prefix("/").unwrap_or(dest);
    let top = rootfs.join(rel_dest);
    let info = ctx(std::fs::read_to_string("/proc/self/mountinfo"), || {
        "reading /proc/self/mountinfo".into()
    })?;
    let mut below: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|mp| PathBuf::from(unescape_mountinfo(mp)))
        .filter_map(|mp| {
            let rel = mp.strip_prefix(&top).ok()?;
            (!rel.as_os_str().is_empty()).then(|| Path::new("/").join(rel_dest).join(rel))
        })
        .collect();
    below.sort();
    below.dedup();
    for sub in below {
        let tfd = target(root, &sub, Create::No, false)?;
        remount_bind(
            &fd_path(&tfd),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        )
        .map_err(|e| format!("remounting {} read-only: {e}", sub.display()))?;
    }
    Ok(())
}

/// A mount point as /proc/self/mountinfo writes it (`\040` for a space, and so on).
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn rlimit_resource(name: &str) -> Option<nix::sys::resource::Resource> {
    use nix::sys::resource::Resource as Rs;
    Some(match name {
        "RLIMIT_CPU" => Rs::RLIMIT_CPU,
        "RLIMIT_FSIZE" => Rs::RLIMIT_FSIZE,
        "RLIMIT_DATA" => Rs::RLIMIT_DATA,
        "RLIMIT_STACK" => Rs::RLIMIT_STACK,
        "RLIMIT_CORE" => Rs::RLIMIT_CORE,
        "RLIMIT_RSS" => Rs::RLIMIT_RSS,
        "RLIMIT_NPROC" => Rs::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => Rs::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => Rs::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => Rs::RLIMIT_AS,
        "RLIMIT_LOCKS" => Rs::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => Rs::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => Rs::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => Rs::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => Rs::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => Rs::RLIMIT_RTTIME,
        _ => return None,
    })
}

fn caps_mask(set: &Option<oci_spec::runtime::Capabilities>) -> u64 {
    let mut m = 0u64;
    for c in set.iter().flatten() {
        if let Ok(serde_json::Value::String(name)) = serde_json::to_value(c) {
            if let Some(n) = caps::number(&name) {
                m |= 1u64 << n;
            }
        }
    }
    m
}

/// Everything between fork and exec for the container process. Returns only on failure,
/// with the report kind and the message.
fn exec_process(spec: &Spec, mode: Mode) -> (&'static str, String) {
    match prepare_exec(spec, mode) {
        Ok(e) => e,
        Err(e) => (REPORT_SETUP, e),
    }
}

fn prepare_exec(spec: &Spec, mode: Mode) -> R<(&'static str, String)> {
    let proc_ = spec.process().as_ref().ok_or("the spec has no process")?;
    if proc_.terminal() == Some(true) {
        ctx(nix::unistd::setsid(), || "creating a session".into())?;
        ctx(
            process::set_controlling_tty(std::io::stdin().as_fd()),
            || "setting the controlling terminal".into(),
        )?;
    }
    for rl in proc_.rlimits().iter().flatten() {
        let name = serde_json::to_value(rl.typ())
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let Some(res) = rlimit_resource(&name) else {
            return Err(format!("unknown rlimit {name}"));
        };
        ctx(
            nix::sys::resource::setrlimit(res, rl.soft(), rl.hard()),
            || format!("setting {name} to {}:{}", rl.soft(), rl.hard()),
        )?;
    }
    let pcaps = proc_.capabilities().as_ref();
    let bounding = pcaps.map(|c| caps_mask(c.bounding())).unwrap_or(0);
    let effective = pcaps.map(|c| caps_mask(c.effective())).unwrap_or(0);
    let permitted = pcaps.map(|c| caps_mask(c.permitted())).unwrap_or(0);
    let inheritable = pcaps.map(|c| caps_mask(c.inheritable())).unwrap_or(0);
    let ambient = pcaps.map(|c| caps_mask(c.ambient())).unwrap_or(0);
    // `--cap-add ALL` means every capability hod itself has (as podman/buildah expand it).
    let have = rustix::thread::capabilities(None)
        .map(|c| c.permitted.bits())
        .unwrap_or(u64::MAX);
    let (effective, permitted, inheritable, ambient) = (
        effective & have,
        permitted & have,
        inheritable & have,
        ambient & have,
    );
    let last = caps::last_cap();
    for n in 0..=last {
        if bounding & (1u64 << n) == 0 {
            match rustix::thread::remove_capability_from_bounding_set(rustix_cap(n)) {
                Ok(()) | Err(rustix::io::Errno::INVAL) => {}
                Err(e) if mode != Mode::Oci => {
                    tracing::debug!("dropping capability {n} from the bounding set: {e}")
                }
                Err(e) => {
                    return Err(format!(
                        "dropping capability {} from the bounding set: {e}",
                        caps::ALL.get(n as usize).unwrap_or(&"?")
                    ))
                }
            }
        }
    }
    let nnp = proc_.no_new_privileges() == Some(true);
    if let Some(profile) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        let filter = ctx(seccomp::compile(profile), || {
            "compiling the seccomp profile".into()
        })?;
        let prog = ctx(seccomp::program(profile, &filter), || {
            "generating the seccomp program".into()
        })?;
        if !nnp && !caps::have_effective("CAP_SYS_ADMIN") {
            tracing::debug!("no CAP_SYS_ADMIN and no no_new_privs: seccomp filter not installed");
        } else {
            if nnp {
                ctx(rustix::thread::set_no_new_privs(true), || {
                    "setting no_new_privs".into()
                })?;
            }
            ctx(seccomp::install(profile, &prog), || {
                "installing the seccomp filter".into()
            })?;
        }
    }
    let user = proc_.user();
    let uid = user.uid();
    let gid = user.gid();
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    match nix::unistd::setgroups(&groups) {
        Ok(()) => {}
        Err(e) if mode != Mode::Oci => tracing::debug!("setgroups: {e}"),
        // A user namespace whose maps were written without CAP_SETGID (`unshare
        // --map-root-user`, a rootless user without newgidmap) forbids setgroups(2): the
        // process keeps the groups it has, as runc does there.
        Err(nix::errno::Errno::EPERM) if setgroups_denied() => {
            tracing::debug!("setgroups is denied in this user namespace")
        }
        Err(e) => return Err(format!("setting supplementary groups: {e}")),
    }
    ctx(
        nix::unistd::setresgid(Gid::from_raw(gid), Gid::from_raw(gid), Gid::from_raw(gid)),
        || format!("setting gid {gid}"),
    )?;
    ctx(rustix::thread::set_keep_capabilities(true), || {
        "keeping capabilities".into()
    })?;
    ctx(
        nix::unistd::setresuid(Uid::from_raw(uid), Uid::from_raw(uid), Uid::from_raw(uid)),
        || format!("setting uid {uid}"),
    )?;
    ctx(rustix::thread::set_keep_capabilities(false), || {
        "resetting keep-capabilities".into()
    })?;
    let sets = rustix::thread::CapabilitySets {
        effective: rustix::thread::CapabilitySet::from_bits_retain(effective),
        permitted: rustix::thread::CapabilitySet::from_bits_retain(permitted),
        inheritable: rustix::thread::CapabilitySet::from_bits_retain(inheritable),
    };
    ctx(rustix::thread::set_capabilities(None, sets), || {
        "setting capabilities".into()
    })?;
    ctx(rustix::thread::clear_ambient_capability_set(), || {
        "clearing ambient capabilities".into()
    })?;
    for n in 0..=last {
        if ambient & (1u64 << n) != 0 {
            ctx(
                rustix::thread::configure_capability_in_ambient_set(rustix_cap(n), true),
                || format!("raising ambient capability {n}"),
            )?;
        }
    }
    if nnp {
        ctx(rustix::thread::set_no_new_privs(true), || {
            "setting no_new_privs".into()
        })?;
    }
    let cwd = proc_.cwd();
    ctx(nix::unistd::chdir(cwd.as_path()), || {
        format!("changing to working directory {}", cwd.display())
    })?;
    // The working directory must be inside the root: one reached through a leaked
    // descriptor or a host /proc entry reads as "(unreachable)" (CVE-2024-21626, runc's
    // check; security.md R25).
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => {}
        _ => {
            return Err(format!(
                "working directory {} is outside the container's root",
                cwd.display()
            ))
        }
    }
    nix::sys::stat::umask(NixMode::from_bits_truncate(0o022));
    process::reset_signals();
    let args: Vec<String> = proc_.args().clone().unwrap_or_default();
    let Some(arg0) = args.first() else {
        return Err("no command given".into());
    };
    let env: Vec<String> = proc_.env().clone().unwrap_or_default();
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let exe = match find_executable(arg0, path_var) {
        Ok(p) => p,
        Err(msg) => return Ok((REPORT_EXEC, msg)),
    };
    let c_exe =
        CString::new(exe.as_os_str().as_bytes()).map_err(|_| "NUL in the command".to_string())?;
    let c_args: Vec<CString> = args
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| "NUL in an argument")?;
    let c_env: Vec<CString> = env
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| "NUL in the environment")?;
    let e = nix::unistd::execve(&c_exe, &c_args, &c_env).unwrap_err();
    Ok((
        REPORT_EXEC,
        format!("{}: {}", exe.display(), io::Error::from(e)),
    ))
}

/// Whether `/proc/self/setgroups` says `deny`.
fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

fn rustix_cap(n: u32) -> rustix::thread::CapabilitySet {
    rustix::thread::CapabilitySet::from_bits_retain(1u64 << n)
}

/// Find `cmd` the way runc does: a name with a `/` is used as is, otherwise each `PATH`
/// entry is tried (inside the container, after the pivot).
fn find_executable(cmd: &str, path: &str) -> std::result::Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    if cmd.contains('/') {
        return match std::fs::metadata(cmd) {
            Ok(m) if m.is_dir() => Err(format!("{cmd}: is a directory")),
            Ok(_) => Ok(PathBuf::from(cmd)),
            Err(e) => Err(format!("{cmd}: {e}")),
        };
    }
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(cmd);
        if let Ok(m) = std::fs::metadata(&cand) {
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(cand);
            }
        }
    }
    Err(format!("{cmd}: executable file not found in $PATH"))
}

#[cfg(test)]
mod tests {
    use super::unescape_mountinfo;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/sys/fs/cgroup"), "/sys/fs/cgroup");
        assert_eq!(
            unescape_mountinfo("/a\\040b\\011c\\012d\\134e"),
            "/a b\tc\nd\\e"
        );
        // Not an escape: a backslash without three octal digits stays.
        assert_eq!(unescape_mountinfo("/a\\08x\\"), "/a\\08x\\");
    }
}
