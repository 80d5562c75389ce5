//! The `unshare` helper: a new mount namespace (and, for non-root users, a user namespace
//! whose ID maps hod writes with newuidmap/newgidmap), then exec the command.
use std::io::Read;
use std::os::unix::process::CommandExt;

use nix::mount::{mount, MsFlags};
use nix::sched::CloneFlags;
use nix::unistd::{Gid, Uid};

use super::container::{REPORT_FD, REPORT_SETUP, REPORT_USERNS, SYNC_FD};
use super::process;

/// Environment variable: "1" when the helper must create a user namespace.
pub const USERNS_ENV: &str = "_HOD_UNSHARE_USERNS";

fn report(fd: &std::os::fd::OwnedFd, kind: &str, msg: &str) {
    let _ = nix::unistd::write(fd, format!("{kind}\t{msg}\n").as_bytes());
}

/// Entry point; returns the exit code (only on failure: success execs).
pub fn helper_main() -> i32 {
    let Some(rep) = process::take_fd(REPORT_FD) else {
        return 125;
    };
    let sync = process::take_fd(SYNC_FD);
    let _ = process::set_cloexec(REPORT_FD);
    let _ = process::set_cloexec(SYNC_FD);
    let userns = std::env::var(USERNS_ENV).as_deref() == Ok("1");
    if userns {
        if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWUSER) {
            report(
                &rep,
                REPORT_SETUP,
                &format!("creating a user namespace: {e}"),
            );
            return 125;
        }
        report(&rep, REPORT_USERNS, "ready");
        let mut b = [0u8; 1];
        let ok = sync
            .map(|s| std::fs::File::from(s).read(&mut b).ok() == Some(1) && b[0] == b'1')
            .unwrap_or(false);
        if !ok {
            report(
                &rep,
                REPORT_SETUP,
                "hod did not set up the user namespace's ID maps",
            );
            return 125;
        }
        let _ = nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0));
        let _ = nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0));
    }
    if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWNS) {
        report(
            &rep,
            REPORT_SETUP,
            &format!("creating a mount namespace: {e}"),
        );
        return 125;
    }
    // Mounts made in here must not propagate back to the host.
    if let Err(e) = mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    ) {
        report(&rep, REPORT_SETUP, &format!("making / a slave mount: {e}"));
        return 125;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        report(&rep, REPORT_SETUP, "no command given");
        return 125;
    };
    let err = std::process::Command::new(cmd)
        .args(rest)
        .env_remove(super::reexec::HELPER_ENV)
        .env_remove(USERNS_ENV)
        .exec();
    report(
        &rep,
        super::container::REPORT_EXEC,
        &format!("{cmd}: {err}"),
    );
    if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}
