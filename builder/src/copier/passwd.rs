//! `--chown user[:group]` resolution for COPY/ADD; users and groups come from the rootfs
//! through [`crate::rootfs::passwd`].
use std::path::Path;

use crate::error::{Error, Result};
use crate::rootfs::passwd::{lookup_group, lookup_user};

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
    use crate::rootfs::passwd::tests::fake_root;

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
}
