//! `/proc/self/mountinfo` queries.
use std::path::{Path, PathBuf};

/// Decode the octal escapes (`\040`) the kernel uses in mountinfo paths.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points listed in a mountinfo text.
pub fn mount_points(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .collect()
}

/// Whether `path` (canonicalised) is a mount point in this mount namespace.
pub fn is_mount_point(path: &Path) -> bool {
    let Ok(canon) = path.canonicalize() else {
        return false;
    };
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    mount_points(&text).contains(&canon)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        let text = "42 27 254:0 /tmp/o /tmp/exp/o/root/overlay rw,relatime - ext4 /dev/vda rw\n\
                    45 42 0:39 / /tmp/a\\040b/merged rw - overlay overlay rw,lowerdir=x\n";
        assert_eq!(
            mount_points(text),
            vec![
                PathBuf::from("/tmp/exp/o/root/overlay"),
                PathBuf::from("/tmp/a b/merged")
            ]
        );
        assert_eq!(unescape("a\\134b"), "a\\b");
        assert_eq!(unescape("trail\\04"), "trail\\04");
        assert!(is_mount_point(Path::new("/proc")));
        assert!(!is_mount_point(Path::new("/proc/self")));
    }
}
