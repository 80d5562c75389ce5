//! The `probe` helper: tries, in a fresh single-threaded process that then goes away, what
//! the environment allows (a pod may forbid user namespaces through seccomp, a kernel may
//! refuse overlay in a user namespace), so hod finds out without changing itself.
//! [`try_probe`] runs it; the exit status is the answer.
//!
//! | argument            | succeeds when                                                    |
//! |---------------------|------------------------------------------------------------------|
//! | `userns`            | `unshare(CLONE_NEWUSER)` works                                   |
//! | `overlay DIR OPTS`  | in a new mount namespace, an overlay mounted in a temporary dir   |
//! |                     | under DIR (with mount data OPTS) takes a file, a whiteout and an  |
//! |                     | opaque directory: what a RUN on the overlay driver does           |
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;

/// Runs the probe `args` (see the module docs); `true` when it succeeded.
pub fn try_probe(args: &[&std::ffi::OsStr]) -> bool {
    let mut cmd = super::reexec::command("probe");
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    match cmd.status() {
        Ok(st) => st.success(),
        Err(e) => {
            tracing::debug!("running the probe helper: {e}");
            false
        }
    }
}

/// Entry point; the exit code is the answer (0 = it works).
pub fn helper_main() -> i32 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let ok = match args.first().and_then(|a| a.to_str()) {
        Some("userns") => nix::sched::unshare(CloneFlags::CLONE_NEWUSER).is_ok(),
        Some("overlay") if args.len() == 3 => {
            overlay(Path::new(&args[1]), &args[2].to_string_lossy()).is_ok()
        }
        _ => false,
    };
    i32::from(!ok)
}

fn overlay(dir: &Path, extra: &str) -> std::io::Result<()> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNS)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )?;
    let tmp = tempfile::Builder::new()
        .prefix("probe-overlay-")
        .tempdir_in(dir)?;
    let t = tmp.path();
    for d in ["lower/d", "upper", "work", "merged"] {
        std::fs::create_dir_all(t.join(d))?;
    }
    std::fs::write(t.join("lower/d/f"), b"x")?;
    std::fs::write(t.join("lower/g"), b"x")?;
    let mut data = format!(
        "lowerdir={},upperdir={},workdir={}",
        t.join("lower").display(),
        t.join("upper").display(),
        t.join("work").display()
    );
    if !extra.is_empty() {
        data.push(',');
        data.push_str(extra);
    }
    let merged = t.join("merged");
    mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )?;
    let r = (|| {
        std::fs::write(merged.join("new"), b"x")?;
        std::fs::remove_file(merged.join("g"))?;
        std::fs::remove_dir_all(merged.join("d"))?;
        std::fs::create_dir(merged.join("d"))?;
        std::fs::write(merged.join("d/h"), b"x")
    })();
    let _ = umount2(&merged, MntFlags::MNT_DETACH);
    r
}
