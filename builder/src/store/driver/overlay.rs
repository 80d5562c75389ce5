//! The overlay driver, laid out as containers/storage's `drivers/overlay` does.
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::{mountinfo, Driver};
use crate::error::{IoResultExt, Result};
use crate::store::paths::{mkdir_all, mkdir_mode, remove_all};
use crate::store::StoreError;

/// Length of the short link names in `l/` (`idLength`).
pub const LINK_ID_LEN: usize = 26;
/// Mount data must stay below this (the kernel copies one page).
const PAGE_SIZE: usize = 4096;
/// containers/storage's `maxDepth`.
const MAX_DEPTH: usize = 500;

/// A random 26-character base32 (RFC 4648, upper case) link name.
pub fn generate_link_id() -> String {
    use rand::RngCore;
    const ALPHA: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut b = [0u8; 17];
    rand::thread_rng().fill_bytes(&mut b);
    // base32 of 17 bytes, first 26 characters.
    let mut out = String::new();
    let mut acc: u64 = 0;
    let mut bits = 0;
    for byte in b {
        acc = (acc << 8) | u64::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHA[((acc >> bits) & 31) as usize] as char);
        }
    }
    out.truncate(LINK_ID_LEN);
    out
}

/// How overlay can work for a rootless user on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootlessOverlay {
    /// The kernel mounts overlay in a user namespace (Linux 5.11 and later), with `userxattr`.
    Native,
    /// Through a FUSE mount program (fuse-overlayfs, found in `$PATH`).
    MountProgram(PathBuf),
    /// Neither: rootless users get vfs unless they configure otherwise.
    Unavailable,
}

/// Whether the kernel release string (`uname -r`) is at least `major.minor`.
pub fn kernel_at_least(release: &str, major: u32, minor: u32) -> bool {
    let mut it = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (ma, mi) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (ma, mi) >= (major, minor)
}

/// What [`RootlessOverlay`] this host offers: the kernel's overlay from 5.11 on (the first
/// release that allows it in a user namespace), else fuse-overlayfs when installed.
pub fn rootless_overlay() -> RootlessOverlay {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    if kernel_at_least(&release, 5, 11) {
        return RootlessOverlay::Native;
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    match std::env::split_paths(&path)
        .map(|d| d.join("fuse-overlayfs"))
        .find(|p| p.is_file())
    {
        Some(p) => RootlessOverlay::MountProgram(p),
        None => RootlessOverlay::Unavailable,
    }
}

pub(super) fn init(d: &Driver) -> Result<()> {
    mkdir_all(&d.home, 0o700)?;
    super::mark_top_dir(&d.home);
    mkdir_all(&d.home.join("l"), 0o755)
}

pub(super) fn create(d: &Driver, id: &str, parent: Option<&str>) -> Result<()> {
    let linkdir = d.home.join("l");
    mkdir_all(&linkdir, 0o755)?;
    let dir = d.home.join(id);
    let (mut uid, mut gid, mut mode) = (0u32, 0u32, 0o555u32);
    if let Some(p) = parent {
        let pd = d.home.join(p).join("diff");
        let m = fs::metadata(&pd).at("inspecting parent layer", &pd)?;
        uid = m.uid();
        gid = m.gid();
        mode = m.mode() & 0o7777;
    }
    if fs::symlink_metadata(&dir).is_ok() {
        tracing::debug!(
            "layer directory {} already exists; removing it first",
            dir.display()
        );
        remove(d, id)?;
    }
    mkdir_mode(&dir, 0o700)?;
    let res = (|| {
        let diff = dir.join("diff");
        mkdir_mode(&diff, mode)?;
        chown(&diff, uid, gid)?;
        let lid = generate_link_id();
        std::os::unix::fs::symlink(format!("../{id}/diff"), linkdir.join(&lid))
            .at("creating link", linkdir.join(&lid))?;
        write_0644(&dir.join("link"), lid.as_bytes())?;
        mkdir_mode(&dir.join("work"), 0o700)?;
        mkdir_mode(&dir.join("merged"), 0o700)?;
        match parent {
            None => mkdir_mode(&dir.join("empty"), 0o700),
            Some(p) => {
                let lower = lower_for_child(d, p)?;
                write_0644(&dir.join("lower"), lower.as_bytes())
            }
        }
    })();
    if res.is_err() {
        let _ = remove(d, id);
    }
    res
}

fn write_0644(p: &Path, data: &[u8]) -> Result<()> {
    fs::write(p, data).at("writing", p)?;
    fs::set_permissions(p, fs::Permissions::from_mode(0o644)).at("setting mode of", p)
}

fn chown(p: &Path, uid: u32, gid: u32) -> Result<()> {
    let m = fs::symlink_metadata(p).at("inspecting", p)?;
    if m.uid() == uid && m.gid() == gid {
        return Ok(());
    }
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).at("changing owner of", p)
}

/// The `lower` file content for a child of `parent`: `l/<parent link>` then the parent's lowers.
fn lower_for_child(d: &Driver, parent: &str) -> Result<String> {
    let pdir = d.home.join(parent);
    let link = fs::read_to_string(pdir.join("link")).at("reading", pdir.join("link"))?;
    let mut lower = format!("l/{}", link.trim());
    match fs::read_to_string(pdir.join("lower")) {
        Ok(pl) if !pl.is_empty() => {
            lower.push(':');
            lower.push_str(&pl);
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).at("reading", pdir.join("lower")),
    }
    Ok(lower)
}

pub(super) fn remove(d: &Driver, id: &str) -> Result<()> {
    unlink(d, id);
    remove_all(&d.home.join(id))
}

/// Remove the layer's `l/` link and unmount its `merged` if mounted: what removal does
/// before the directory goes.
pub(super) fn unlink(d: &Driver, id: &str) {
    let dir = d.home.join(id);
    if let Ok(lid) = fs::read_to_string(dir.join("link")) {
        let lid = lid.trim();
        if !lid.is_empty() && !lid.contains('/') && lid != "." && lid != ".." {
            let _ = fs::remove_file(d.home.join("l").join(lid));
        }
    }
    // Never recurse into a live mount.
    let merged = dir.join("merged");
    if mountinfo::is_mount_point(&merged) {
        let _ = umount2(&merged, MntFlags::MNT_DETACH);
    }
}

/// Make the driver home a private bind mount (c/storage `mount.MakePrivate(home)`), so our
/// mounts below it do not propagate, and podman finds it as it leaves it.
fn make_home_private(d: &Driver) -> Result<()> {
    if d.opts.skip_mount_home || d.opts.mount_program.is_some() && !nix::unistd::geteuid().is_root()
    {
        return Ok(());
    }
    if !mountinfo::is_mount_point(&d.home) {
        mount(
            Some(&d.home),
            &d.home,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(std::io::Error::from)
        .at("bind-mounting", &d.home)?;
    }
    mount(
        None::<&str>,
        &d.home,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(std::io::Error::from)
    .at("making mount private", &d.home)
}

/// Undo [`make_home_private`] (c/storage's driver `Cleanup`).
pub fn cleanup_home(d: &Driver) -> Result<()> {
    if mountinfo::is_mount_point(&d.home) {
        umount2(&d.home, MntFlags::MNT_DETACH)
            .map_err(std::io::Error::from)
            .at("unmounting", &d.home)?;
    }
    Ok(())
}

/// The absolute lower directories of layer `id`, parent first (`<home>/l/<link>` paths,
/// plus any `diffN` siblings), or its `empty` dir when it has none.
pub fn lower_dirs(d: &Driver, id: &str) -> Result<(Vec<PathBuf>, Vec<String>)> {
    let dir = d.home.join(id);
    let lowers = match fs::read_to_string(dir.join("lower")) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).at("reading", dir.join("lower")),
    };
    let split: Vec<&str> = lowers.split(':').filter(|s| !s.is_empty()).collect();
    if split.len() > MAX_DEPTH {
        return Err(StoreError::Unsupported(format!("layer {id}: max depth exceeded")).into());
    }
    let mut abs = Vec::new();
    let mut rel = Vec::new();
    for l in split {
        if l.split('/').any(|c| c == "..") || l.starts_with('/') {
            return Err(StoreError::Corrupt {
                path: dir.join("lower"),
                message: format!("invalid lower {l:?}"),
            }
            .into());
        }
        let p = d.home.join(l);
        fs::metadata(&p).at("inspecting lower layer", &p)?;
        abs.push(p.clone());
        rel.push(l.to_string());
        let mut n = 1;
        loop {
            let extra = PathBuf::from(format!("{}/../diff{n}", p.display()));
            if fs::metadata(&extra).is_err() {
                break;
            }
            rel.push(format!("{l}/../diff{n}"));
            abs.push(extra);
            n += 1;
        }
    }
    if abs.is_empty() {
        let empty = dir.join("empty");
        if !empty.is_dir() {
            mkdir_mode(&empty, 0o700)?;
        }
        rel.push(format!("{id}/empty"));
        abs.push(empty);
    }
    Ok((abs, rel))
}

fn join_paths(v: &[PathBuf]) -> String {
    v.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// The mount data the driver adds to `lowerdir=…,upperdir=…,workdir=…` when it mounts a
/// layer; `environment`'s overlay probe mounts its test overlay with the same, so that what
/// it finds holds for the driver's mounts.
/// In a rootless user namespace that includes `userxattr` (the kernel keeps overlay's
/// metadata in user.overlay.* xattrs there; [`super::DriverOptions::userxattr`]).
pub fn extra_mount_data(o: &super::DriverOptions) -> Vec<String> {
    parse_mount_options(&o.overlay_mount_options(super::DriverKind::Overlay)).1
}

/// Split mount options into flags and data, like c/storage's `mount.ParseOptions`.
fn parse_mount_options(opts: &[String]) -> (MsFlags, Vec<String>) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in opts {
        let f = match o.as_str() {
            "ro" => MsFlags::MS_RDONLY,
            "nodev" => MsFlags::MS_NODEV,
            "nosuid" => MsFlags::MS_NOSUID,
            "noexec" => MsFlags::MS_NOEXEC,
            "sync" => MsFlags::MS_SYNCHRONOUS,
            "dirsync" => MsFlags::MS_DIRSYNC,
            "noatime" => MsFlags::MS_NOATIME,
            "nodiratime" => MsFlags::MS_NODIRATIME,
            "relatime" => MsFlags::MS_RELATIME,
            "strictatime" => MsFlags::MS_STRICTATIME,
            "rw" | "defaults" | "dev" | "suid" | "exec" | "async" => MsFlags::empty(),
            _ => {
                data.push(o.clone());
                continue;
            }
        };
        flags |= f;
    }
    (flags, data)
}

/// Mount layer `id` at `<home>/<id>/merged` (read-write: upper = `diff`, work = `work`).
pub(super) fn get(d: &Driver, id: &str) -> Result<PathBuf> {
    let dir = d.home.join(id);
    fs::metadata(&dir).at("inspecting layer", &dir)?;
    let merged = dir.join("merged");
    if !merged.is_dir() {
        mkdir_mode(&merged, 0o700)?;
    }
    if mountinfo::is_mount_point(&merged) {
        return Ok(merged);
    }
    make_home_private(d)?;
    let (abs, rel) = lower_dirs(d, id)?;
    let diff = dir.join("diff");
    let work = dir.join("work");
    if !diff.is_dir() {
        mkdir_mode(&diff, 0o555)?;
    }
    if !work.is_dir() {
        mkdir_mode(&work, 0o700)?;
    }
    // overlay refuses a second mount of a volatile upper while this marker exists.
    let _ = remove_all(&work.join("work/incompat/volatile"));
    let (flags, _) = parse_mount_options(&d.opts.mount_options);
    let extra = extra_mount_data(&d.opts);
    let suffix = if extra.is_empty() {
        String::new()
    } else {
        format!(",{}", extra.join(","))
    };
    let data = format!(
        "lowerdir={},upperdir={},workdir={}{suffix}",
        join_paths(&abs),
        diff.display(),
        work.display()
    );
    if let Some(prog) = &d.opts.mount_program {
        let out = std::process::Command::new(prog)
            .arg("-o")
            .arg(&data)
            .arg(&merged)
            .current_dir(&d.home)
            .output()
            .at("running mount program", prog)?;
        if !out.status.success() {
            return Err(StoreError::Unsupported(format!(
                "using mount program {prog}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
            .into());
        }
        return Ok(merged);
    }
    if data.len() < PAGE_SIZE {
        mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            flags,
            Some(data.as_str()),
        )
        .map_err(std::io::Error::from)
        .map_err(|e| rootless_hint(d, e))
        .at(
            &format!("creating overlay mount (mount_data={data:?}) at"),
            &merged,
        )?;
        return Ok(merged);
    }
    // Too long: use paths relative to the home, from a thread with its own cwd.
    let rdata = format!(
        "lowerdir={},upperdir={id}/diff,workdir={id}/work{suffix}",
        rel.join(":")
    );
    if rdata.len() >= PAGE_SIZE {
        return Err(StoreError::Unsupported(format!(
            "layer {id}: overlay mount options too long ({} bytes)",
            rdata.len()
        ))
        .into());
    }
    let home = d.home.clone();
    let target = format!("{id}/merged");
    let r = std::thread::scope(|s| {
        s.spawn(|| -> std::io::Result<()> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)?;
            std::env::set_current_dir(&home)?;
            mount(
                Some("overlay"),
                target.as_str(),
                Some("overlay"),
                flags,
                Some(rdata.as_str()),
            )?;
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("mount thread panicked")))
    });
    r.map_err(|e| rootless_hint(d, e)).at(
        &format!("creating overlay mount (mount_data={rdata:?}) at"),
        &merged,
    )?;
    Ok(merged)
}

/// A rootless mount the kernel refuses: say what to do instead.
fn rootless_hint(d: &Driver, e: std::io::Error) -> std::io::Error {
    if !d.userxattr || !matches!(e.raw_os_error(), Some(libc::EPERM | libc::EINVAL)) {
        return e;
    }
    std::io::Error::new(
        e.kind(),
        format!(
            "{e} (this kernel does not mount overlay in a user namespace: install fuse-overlayfs \
             and set mount_program = \"/usr/bin/fuse-overlayfs\" under [storage.options.overlay] \
             in ~/.config/containers/storage.conf, or use --storage-driver vfs)"
        ),
    )
}

/// Unmount `<home>/<id>/merged` (lazily, as c/storage does); not mounted is fine.
pub(super) fn put(d: &Driver, id: &str) -> Result<()> {
    let merged = d.home.join(id).join("merged");
    if d.opts.mount_program.is_some() {
        for prog in ["fusermount3", "fusermount"] {
            if let Ok(st) = std::process::Command::new(prog)
                .arg("-u")
                .arg(&merged)
                .status()
            {
                if st.success() {
                    return Ok(());
                }
            }
        }
    }
    match umount2(&merged, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(std::io::Error::from(e)).at("unmounting", &merged),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_ids() {
        let a = generate_link_id();
        assert_eq!(a.len(), LINK_ID_LEN);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        assert_ne!(a, generate_link_id());
    }

    #[test]
    fn kernel_versions() {
        assert!(kernel_at_least("6.18.44-fc-v1272", 5, 11));
        assert!(kernel_at_least("5.11.0", 5, 11));
        assert!(!kernel_at_least("5.10.200-generic", 5, 11));
        assert!(!kernel_at_least("4.19.0", 5, 11));
        assert!(!kernel_at_least("", 5, 11));
    }

    #[test]
    fn mount_option_split() {
        let (f, d) = parse_mount_options(&["nodev".into(), "metacopy=on".into(), "rw".into()]);
        assert_eq!(f, MsFlags::MS_NODEV);
        assert_eq!(d, vec!["metacopy=on".to_string()]);
    }
}
