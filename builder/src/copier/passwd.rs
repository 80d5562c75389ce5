//! User and group lookup in a rootfs's `/etc/passwd` and `/etc/group`, read inside the root
//! (links resolve inside it; FIFOs and devices count as absent; at most 1 MiB is read), and
//! never through NSS or any code of the image.
use std::path::Path;

use super::root::Root;
use crate::error::{Error, IoResultExt, Result};

/// Largest passwd or group file read.
pub const MAX_DB_FILE: u64 = 1 << 20;

/// A user found in the rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// User ID.
    pub uid: u32,
    /// Primary group ID.
    pub gid: u32,
    /// Home directory.
    pub home: String,
    /// Supplementary group IDs (from `/etc/group` membership), primary group excluded.
    pub groups: Vec<u32>,
}

fn read_db(root: &Path, file: &str) -> Result<String> {
    let r = Root::open(root).at("opening root directory", root)?;
    let data = r
        .read_file(Path::new(file), MAX_DB_FILE)
        .at("reading", r.display_path(Path::new(file)))?;
    Ok(String::from_utf8_lossy(&data.unwrap_or_default()).into_owned())
}

fn passwd_entries(db: &str) -> impl Iterator<Item = (String, u32, u32, String)> + '_ {
    db.lines().filter(|l| !l.starts_with('#')).filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 {
            return None;
        }
        Some((
            f[0].to_string(),
            f[2].trim().parse().ok()?,
            f[3].trim().parse().ok()?,
            f.get(5).unwrap_or(&"").to_string(),
        ))
    })
}

fn group_entries(db: &str) -> impl Iterator<Item = (String, u32, Vec<String>)> + '_ {
    db.lines().filter(|l| !l.starts_with('#')).filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 3 {
            return None;
        }
        let members = f
            .get(3)
            .map(|m| {
                m.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Some((f[0].to_string(), f[2].trim().parse().ok()?, members))
    })
}

fn with_groups(root: &Path, name: String, uid: u32, gid: u32, home: String) -> Result<User> {
    let gdb = read_db(root, "etc/group")?;
    let groups = group_entries(&gdb)
        .filter(|(_, g, m)| *g != gid && m.contains(&name))
        .map(|(_, g, _)| g)
        .collect();
    Ok(User {
        name,
        uid,
        gid,
        home,
        groups,
    })
}

/// Look a user up by name, or by UID when `name` is numeric and no user has that name.
pub fn lookup_user(root: &Path, name: &str) -> Result<Option<User>> {
    let db = read_db(root, "etc/passwd")?;
    let by_name = passwd_entries(&db).find(|e| e.0 == name);
    let found = match by_name {
        Some(e) => Some(e),
        None => match name.parse::<u32>() {
            Ok(uid) => passwd_entries(&db).find(|e| e.1 == uid),
            Err(_) => None,
        },
    };
    match found {
        Some((n, u, g, h)) => Ok(Some(with_groups(root, n, u, g, h)?)),
        None => Ok(None),
    }
}

/// Look a group up by name; its GID.
pub fn lookup_group(root: &Path, name: &str) -> Result<Option<u32>> {
    let db = read_db(root, "etc/group")?;
    let gid = group_entries(&db).find(|e| e.0 == name).map(|e| e.1);
    Ok(gid)
}

fn parse_id(s: &str) -> Option<u32> {
    // Reject signs, spaces and out-of-range values (P30: 4294967296, -1).
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok()
}

/// Resolve a `--chown user[:group]` spec inside `root` the way buildah's copy does: numeric
/// parts are used as they are (a lone numeric user is also the group), names are looked up
/// in the rootfs, and a user without a group gets its primary group.
pub fn resolve_chown(root: &Path, spec: &str) -> Result<(u32, u32)> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let group = group.filter(|g| !g.is_empty());
    if user.is_empty() && group.is_none() {
        return Err(Error::invalid(format!("can't find uid for user {spec}")));
    }
    let numeric = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b'+')
    };
    let bad_id = |s: &str| Error::invalid(format!("invalid ID {s:?} in {spec:?}"));
    let (uid, user_gid) = if user.is_empty() {
        (0, 0)
    } else if numeric(user) {
        let uid = parse_id(user).ok_or_else(|| bad_id(user))?;
        (uid, uid)
    } else {
        let u = lookup_user(root, user)?.ok_or_else(|| {
            Error::invalid(format!(
                "user {user:?} not found in the container's /etc/passwd"
            ))
        })?;
        (u.uid, u.gid)
    };
    let gid = match group {
        None => user_gid,
        Some(g) if numeric(g) => parse_id(g).ok_or_else(|| bad_id(g))?,
        Some(g) => lookup_group(root, g)?.ok_or_else(|| {
            Error::invalid(format!(
                "group {g:?} not found in the container's /etc/group"
            ))
        })?,
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_root() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        std::fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nbin:x:1:1:bin:/bin:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n1000:x:2000:2000::/home/n:/bin/sh\nbroken line\n",
        )
        .unwrap();
        std::fs::write(
            t.path().join("etc/group"),
            "root:x:0:\nbin:x:1:root,bin\nwheel:x:10:bin\nnogroup:x:65534:\n",
        )
        .unwrap();
        t
    }

    #[test]
    fn chown_specs() {
        let t = fake_root();
        let r = t.path();
        let ok: &[(&str, (u32, u32))] = &[
            ("1:1", (1, 1)),
            ("123", (123, 123)),
            ("root:1", (0, 1)),
            ("nobody", (65534, 65534)),
            ("nobody:root", (65534, 0)),
            ("bin:wheel", (1, 10)),
            ("5:wheel", (5, 10)),
            (":7", (0, 7)),
            ("1000", (1000, 1000)),
        ];
        for (spec, want) in ok {
            assert_eq!(resolve_chown(r, spec).unwrap(), *want, "{spec}");
        }
        for bad in ["", ":", "ghost", "root:ghost", "4294967296", "-1", "1:-1"] {
            assert!(resolve_chown(r, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lookup_and_groups() {
        let t = fake_root();
        let u = lookup_user(t.path(), "bin").unwrap().unwrap();
        assert_eq!(
            (u.uid, u.gid, u.home.as_str(), u.groups.clone()),
            (1, 1, "/bin", vec![10])
        );
        // a user literally named "1000" is found by name first (P30)
        assert_eq!(lookup_user(t.path(), "1000").unwrap().unwrap().uid, 2000);
        assert_eq!(
            lookup_user(t.path(), "65534").unwrap().unwrap().name,
            "nobody"
        );
        assert_eq!(lookup_user(t.path(), "ghost").unwrap(), None);
        assert_eq!(lookup_group(t.path(), "wheel").unwrap(), Some(10));
    }

    #[test]
    fn hostile_databases() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        // links to the host's files resolve inside the root: to themselves (a loop: an
        // error, not the host's file), or to files the root does not have (absent)
        std::os::unix::fs::symlink(
            "../../../../../../../../etc/passwd",
            root.join("etc/passwd"),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/group", root.join("etc/group")).unwrap();
        assert!(lookup_user(&root, "root").is_err());
        assert!(lookup_group(&root, "root").is_err());
        std::fs::remove_file(root.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink(
            "../../../../../../../../etc/shadow",
            root.join("etc/passwd"),
        )
        .unwrap();
        std::fs::remove_file(root.join("etc/group")).unwrap();
        std::os::unix::fs::symlink("/etc/gshadow", root.join("etc/group")).unwrap();
        assert_eq!(lookup_user(&root, "root").unwrap(), None);
        assert_eq!(lookup_group(&root, "root").unwrap(), None);
        // a FIFO does not hang and counts as absent
        std::fs::remove_file(root.join("etc/passwd")).unwrap();
        nix::unistd::mkfifo(
            &root.join("etc/passwd"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        assert_eq!(lookup_user(&root, "root").unwrap(), None);
        // a link to /dev/zero resolves inside the root, where there is none
        std::fs::remove_file(root.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", root.join("etc/passwd")).unwrap();
        assert_eq!(lookup_user(&root, "root").unwrap(), None);
        // an oversized file is refused
        std::fs::remove_file(root.join("etc/passwd")).unwrap();
        let f = std::fs::File::create(root.join("etc/passwd")).unwrap();
        f.set_len(2 * MAX_DB_FILE).unwrap();
        assert!(lookup_user(&root, "root").is_err());
    }
}
