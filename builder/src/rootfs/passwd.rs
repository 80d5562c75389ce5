//! User and group lookup in a rootfs's `/etc/passwd` and `/etc/group`, read inside the root
//! (links resolve inside it; FIFOs, devices and directories count as absent; at most 1 MiB
//! is read, a larger file is an error), and never through NSS or any code of the image.
//! The one reader behind copier's `--chown` and run's `--user`.
use std::io;
use std::path::Path;

use super::Root;
use crate::error::{IoResultExt, Result};

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

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    /// Login name.
    pub name: String,
    /// User ID.
    pub uid: u32,
    /// Primary group ID.
    pub gid: u32,
    /// Home directory (empty when the line has none).
    pub home: String,
}

/// One line of `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    /// Group name.
    pub name: String,
    /// Group ID.
    pub gid: u32,
    /// Member login names.
    pub members: Vec<String>,
}

/// The entries of a passwd file; comments and malformed lines are skipped.
pub fn parse_passwd(db: &str) -> Vec<PasswdEntry> {
    db.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].trim().parse().ok()?,
                gid: f[3].trim().parse().ok()?,
                home: f.get(5).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

/// The entries of a group file; comments and malformed lines are skipped.
pub fn parse_group(db: &str) -> Vec<GroupEntry> {
    db.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
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
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].trim().parse().ok()?,
                members,
            })
        })
        .collect()
}

/// The first user named `name`.
pub fn user_by_name<'a>(users: &'a [PasswdEntry], name: &str) -> Option<&'a PasswdEntry> {
    users.iter().find(|u| u.name == name)
}

/// The first user with UID `uid`.
pub fn user_by_id(users: &[PasswdEntry], uid: u32) -> Option<&PasswdEntry> {
    users.iter().find(|u| u.uid == uid)
}

/// The first group named `name`.
pub fn group_by_name<'a>(groups: &'a [GroupEntry], name: &str) -> Option<&'a GroupEntry> {
    groups.iter().find(|g| g.name == name)
}

/// The GIDs of the groups that list `user` as a member, in file order, each once.
pub fn member_gids(groups: &[GroupEntry], user: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for g in groups {
        if g.members.iter().any(|m| m == user) && !out.contains(&g.gid) {
            out.push(g.gid);
        }
    }
    out
}

/// Read `file` (`etc/passwd`, `etc/group`) inside `root`, lossily as UTF-8. `Ok(None)` when
/// there is no such regular file; one larger than [`MAX_DB_FILE`] is an error.
pub fn read_db(root: &Root, file: &str) -> io::Result<Option<String>> {
    Ok(root
        .read_file(Path::new(file), MAX_DB_FILE)?
        .map(|d| String::from_utf8_lossy(&d).into_owned()))
}

/// [`read_db`] from a root given by path, with errors carrying the path; absent = empty.
fn read_at(root: &Path, file: &str) -> Result<String> {
    let r = Root::open(root).at("opening root directory", root)?;
    let data = read_db(&r, file).at("reading", r.display_path(Path::new(file)))?;
    Ok(data.unwrap_or_default())
}

/// Look a user up by name, or by UID when `name` is numeric and no user has that name.
pub fn lookup_user(root: &Path, name: &str) -> Result<Option<User>> {
    let users = parse_passwd(&read_at(root, "etc/passwd")?);
    let found = user_by_name(&users, name).or_else(|| match name.parse::<u32>() {
        Ok(uid) => user_by_id(&users, uid),
        Err(_) => None,
    });
    let Some(u) = found else {
        return Ok(None);
    };
    let groups = parse_group(&read_at(root, "etc/group")?);
    Ok(Some(User {
        name: u.name.clone(),
        uid: u.uid,
        gid: u.gid,
        home: u.home.clone(),
        groups: member_gids(&groups, &u.name)
            .into_iter()
            .filter(|g| *g != u.gid)
            .collect(),
    }))
}

/// Look a group up by name; its GID.
pub fn lookup_group(root: &Path, name: &str) -> Result<Option<u32>> {
    let groups = parse_group(&read_at(root, "etc/group")?);
    Ok(group_by_name(&groups, name).map(|g| g.gid))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn fake_root() -> tempfile::TempDir {
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
    fn parsing() {
        let users =
            parse_passwd("# c\na:x:1:2:gecos:/h:/bin/sh\nb:x: 3 :4\nbad:x:y:1\nshort:x:5\n");
        assert_eq!(
            users
                .iter()
                .map(|u| (u.name.as_str(), u.uid, u.gid, u.home.as_str()))
                .collect::<Vec<_>>(),
            [("a", 1, 2, "/h"), ("b", 3, 4, "")]
        );
        assert_eq!(user_by_id(&users, 3).unwrap().name, "b");
        assert!(user_by_name(&users, "bad").is_none());
        let groups = parse_group("g:x:7:a, b,,\nh:x:8\ndup:x:7:a\nbad:x:z:a\n#c:x:9:a\n");
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].members, ["a", "b"]);
        assert_eq!(group_by_name(&groups, "h").unwrap().gid, 8);
        assert_eq!(member_gids(&groups, "a"), [7]);
        assert_eq!(member_gids(&groups, "b"), [7]);
        assert!(member_gids(&groups, "c").is_empty());
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
