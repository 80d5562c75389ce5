//! `--user` / `USER` resolution through the rootfs's own `/etc/passwd` and `/etc/group`,
//! read inside the rootfs (symlinks resolved in it, regular files only, at most 1 MiB), never
//! through the host's NSS.
use std::path::Path;

use super::RunError;
use crate::rootfs::passwd::{self, PasswdEntry};
use crate::rootfs::Root;

/// The largest ID accepted (runc's limit: a non-negative int32).
pub const MAX_ID: u64 = i32::MAX as u64;

/// The user a command runs as.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedUser {
    /// UID.
    pub uid: u32,
    /// Primary GID.
    pub gid: u32,
    /// Supplementary GIDs.
    pub additional_gids: Vec<u32>,
    /// Home directory (from passwd, else `/`).
    pub home: String,
}

fn numeric(s: &str, what: &str) -> Result<Option<u32>, RunError> {
    if s.is_empty() {
        return Err(RunError::Invalid(format!(
            "empty {what} in user specification"
        )));
    }
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match s.parse::<i128>() {
        Ok(n) if (0..=MAX_ID as i128).contains(&n) => Ok(Some(n as u32)),
        _ => Err(RunError::Invalid(format!(
            "{what} {s:?} is out of range (0-{MAX_ID})"
        ))),
    }
}

/// Resolve `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`, …) against the passwd and
/// group file contents (`None` = the file does not exist or cannot be read).
pub fn resolve_with(
    spec: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ResolvedUser, RunError> {
    let users = passwd.map(passwd::parse_passwd).unwrap_or_default();
    let groups = group.map(passwd::parse_group).unwrap_or_default();
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = if u.is_empty() && g.is_none() { "0" } else { u };
    let entry = match numeric(u, "uid")? {
        Some(uid) => passwd::user_by_id(&users, uid)
            .cloned()
            .unwrap_or(PasswdEntry {
                name: String::new(),
                uid,
                gid: 0,
                home: "/".into(),
            }),
        None => passwd::user_by_name(&users, u).cloned().ok_or_else(|| {
            RunError::Invalid(format!(
                "determining run uid: unknown user error looking up user {u:?}"
            ))
        })?,
    };
    let gid = match g {
        None => entry.gid,
        Some(g) => match numeric(g, "gid")? {
            Some(gid) => gid,
            None => passwd::group_by_name(&groups, g)
                .map(|x| x.gid)
                .ok_or_else(|| {
                    RunError::Invalid(format!(
                        "determining run gid: unknown group error looking up group {g:?}"
                    ))
                })?,
        },
    };
    let mut additional = vec![];
    if !entry.name.is_empty() {
        additional = passwd::member_gids(&groups, &entry.name);
    }
    if additional.is_empty() || (g.is_none() && !additional.contains(&gid)) {
        additional.insert(0, gid);
    }
    let home = if entry.home.is_empty() {
        "/".to_string()
    } else {
        entry.home
    };
    Ok(ResolvedUser {
        uid: entry.uid,
        gid,
        additional_gids: additional,
        home,
    })
}

/// Resolve `spec` against the rootfs's `/etc/passwd` and `/etc/group`.
pub fn resolve(rootfs: &Path, spec: &str) -> Result<ResolvedUser, RunError> {
    let root = Root::open(rootfs).map_err(|e| RunError::Io {
        op: "opening".into(),
        path: rootfs.to_path_buf(),
        source: e,
    })?;
    let read = |p: &str| -> Option<String> {
        match passwd::read_db(&root, p) {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!("reading {p} in the rootfs: {e}");
                None
            }
        }
    };
    resolve_with(
        spec,
        read("/etc/passwd").as_deref(),
        read("/etc/group").as_deref(),
    )
}

/// Resolve a `--group-add` value (a GID, or a group name in `group_content`).
pub fn resolve_group_with(group: &str, group_content: Option<&str>) -> Result<u32, RunError> {
    if let Some(gid) = numeric(group, "gid")? {
        return Ok(gid);
    }
    let groups = group_content.map(passwd::parse_group).unwrap_or_default();
    passwd::group_by_name(&groups, group)
        .map(|x| x.gid)
        .ok_or_else(|| {
            RunError::Invalid(format!(
                "looking up supplemental group {group:?}: no such group in the container's /etc/group"
            ))
        })
}

/// Resolve a `--group-add` value against the rootfs's `/etc/group`.
pub fn resolve_group(rootfs: &Path, group: &str) -> Result<u32, RunError> {
    let root = Root::open(rootfs).map_err(|e| RunError::Io {
        op: "opening".into(),
        path: rootfs.to_path_buf(),
        source: e,
    })?;
    let content = passwd::read_db(&root, "/etc/group").unwrap_or_else(|e| {
        tracing::debug!("reading /etc/group in the rootfs: {e}");
        None
    });
    resolve_group_with(group, content.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\nu1:x:1000:1000::/home/u1:/bin/sh\n1000:x:1001:1001::/home/n:/bin/sh\nnohome:x:7:7::\n";
    const GROUP: &str =
        "root:x:0:\nnogroup:x:65534:\ng1:x:1000:u1\ng2:x:2000:u1,other\ng3:x:3000:\n";

    fn r(spec: &str) -> Result<ResolvedUser, RunError> {
        resolve_with(spec, Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn table() {
        let ok: &[(&str, u32, u32, &[u32], &str)] = &[
            ("", 0, 0, &[0], "/root"),
            ("root", 0, 0, &[0], "/root"),
            ("0", 0, 0, &[0], "/root"),
            ("u1", 1000, 1000, &[1000, 2000], "/home/u1"),
            ("1000", 1000, 1000, &[1000, 2000], "/home/u1"),
            ("u1:g3", 1000, 3000, &[1000, 2000], "/home/u1"),
            ("u1:3000", 1000, 3000, &[1000, 2000], "/home/u1"),
            ("nobody", 65534, 65534, &[65534], "/nonexistent"),
            ("4242", 4242, 0, &[0], "/"),
            ("4242:4243", 4242, 4243, &[4243], "/"),
            ("nohome", 7, 7, &[7], "/"),
            ("2147483647", 2147483647, 0, &[0], "/"),
        ];
        for (spec, uid, gid, add, home) in ok {
            let u = r(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!(
                (u.uid, u.gid, u.additional_gids.as_slice(), u.home.as_str()),
                (*uid, *gid, *add, *home),
                "{spec}"
            );
        }
        for spec in [
            "noexist",
            "u1:nogrp",
            "4294967296",
            "2147483648",
            "-1",
            "u1:-1",
            "0:",
            ":",
        ] {
            assert!(r(spec).is_err(), "{spec} should be rejected");
        }
        // buildah's wording (its bats checks "unknown user error").
        assert_eq!(
            r("noexist").unwrap_err().to_string(),
            "determining run uid: unknown user error looking up user \"noexist\""
        );
        assert_eq!(
            r("0:nosuchgroup").unwrap_err().to_string(),
            "determining run gid: unknown group error looking up group \"nosuchgroup\""
        );
    }

    #[test]
    fn supplementary_groups() {
        assert_eq!(resolve_group_with("g2", Some(GROUP)).unwrap(), 2000);
        assert_eq!(resolve_group_with("4242", Some(GROUP)).unwrap(), 4242);
        assert!(resolve_group_with("nogrp", Some(GROUP)).is_err());
        assert!(resolve_group_with("g1", None).is_err());
    }

    #[test]
    fn missing_files() {
        let u = resolve_with("0", None, None).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/"));
        assert!(resolve_with("root", None, None).is_err());
    }

    #[test]
    fn passwd_link_to_host_is_not_followed_outside() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("etc")).unwrap();
        // The classic: the image's passwd points at the host's.
        std::os::unix::fs::symlink("/etc/passwd", t.path().join("etc/passwd")).unwrap();
        assert!(resolve(t.path(), "root")
            .unwrap_err()
            .to_string()
            .contains("unknown user"));
    }
}
