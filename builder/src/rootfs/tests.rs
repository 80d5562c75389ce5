use super::*;
use std::os::unix::fs::symlink;

fn host_path(fd: &OwnedFd) -> PathBuf {
    std::fs::read_link(fd_path(fd)).unwrap()
}

/// The in-root path an fd stands for (`/` = the root).
fn rel(root: &Path, fd: &OwnedFd) -> PathBuf {
    let p = host_path(fd);
    p.strip_prefix(root.canonicalize().unwrap())
        .map(|p| PathBuf::from("/").join(p))
        .unwrap_or(p)
}

#[test]
fn absolute_and_relative_links_stay_inside() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    symlink("/tmp", root.join("test")).unwrap();
    symlink("../../../../../..", root.join("a/b/up")).unwrap();
    symlink("/", root.join("slash")).unwrap();
    let r = Root::open(&root).unwrap();
    let canon = root.canonicalize().unwrap();
    for (p, want) in [
        ("/test", "tmp"),
        ("test", "tmp"),
        ("/a/b/up", ""),
        ("/a/b/up/tmp", "tmp"),
        ("../../..", ""),
        ("/slash/tmp", "tmp"),
        ("/slash", ""),
    ] {
        let fd = r.lookup(Path::new(p), true).unwrap().unwrap();
        assert_eq!(
            host_path(&fd),
            canon.join(want).components().collect::<PathBuf>(),
            "{p}"
        );
    }
    // the walk (fallback) gives the same answers
    for (p, want) in [("/test", "tmp"), ("/a/b/up/tmp", "tmp"), ("slash", "")] {
        let fd = walk(r.fd(), &strip_root(Path::new(p)), true, Create::No).unwrap();
        assert_eq!(
            host_path(&fd),
            canon.join(want).components().collect::<PathBuf>(),
            "{p}"
        );
    }
}

#[test]
fn mkdir_all_through_planted_link_is_contained() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let outside = t.path().join("outside");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    symlink(&outside, root.join("evil")).unwrap();
    symlink("../../../..", root.join("dots")).unwrap();
    let r = Root::open(&root).unwrap();
    r.mkdir_all(
        Path::new("/evil/x/y"),
        NewDir {
            mode: 0o755,
            owner: None,
        },
    )
    .unwrap();
    r.mkdir_all(
        Path::new("dots/z"),
        NewDir {
            mode: 0o755,
            owner: None,
        },
    )
    .unwrap();
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing created outside"
    );
    // the absolute target was re-rooted: <root>/<outside path>/x/y
    assert!(root
        .join(outside.strip_prefix("/").unwrap())
        .join("x/y")
        .is_dir());
    assert!(root.join("z").is_dir());
}

#[test]
fn link_loops_fail() {
    let t = tempfile::tempdir().unwrap();
    symlink("b", t.path().join("a")).unwrap();
    symlink("a", t.path().join("b")).unwrap();
    let r = Root::open(t.path()).unwrap();
    assert!(r.lookup(Path::new("a/x"), true).is_err());
    assert!(walk(r.fd(), Path::new("a/x"), true, Create::No).is_err());
}

#[test]
fn symlinks_stay_inside() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    std::fs::create_dir_all(r.join("a/b")).unwrap();
    symlink("/", r.join("a/up")).unwrap();
    symlink("../../../../..", r.join("a/dots")).unwrap();
    symlink("/a/b", r.join("abs")).unwrap();
    symlink("loop2", r.join("loop1")).unwrap();
    symlink("loop1", r.join("loop2")).unwrap();
    let root = std::fs::File::open(r).unwrap();
    let cases: &[(&str, &str)] = &[
        ("/a/b", "/a/b"),
        ("a/up/a/b", "/a/b"),
        ("/a/dots/a", "/a"),
        ("/../../a/b/..", "/a"),
        ("/abs", "/a/b"),
        ("/", "/"),
    ];
    for (input, want) in cases {
        let fd = resolve_in_root(&root, Path::new(input), Create::No, true).unwrap();
        assert_eq!(rel(r, &fd), PathBuf::from(want), "{input}");
        // the walk (what openat2's absence falls back to) agrees
        let fd = walk(root.as_fd(), Path::new(input), true, Create::No).unwrap();
        assert_eq!(rel(r, &fd), PathBuf::from(want), "walk {input}");
    }
    let e = resolve_in_root(&root, Path::new("/loop1"), Create::No, true).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
    let e = walk(root.as_fd(), Path::new("/loop1"), true, Create::No).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
    let fd = resolve_in_root(&root, Path::new("/abs"), Create::No, false).unwrap();
    assert!(is_symlink(&fd).unwrap());
    let fd = walk(root.as_fd(), Path::new("/abs"), false, Create::No).unwrap();
    assert!(is_symlink(&fd).unwrap());
}

#[test]
fn create_through_escaping_link_stays_inside() {
    let t = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let r = t.path();
    symlink(outside.path(), r.join("esc")).unwrap();
    let root = std::fs::File::open(r).unwrap();
    let fd = resolve_in_root(&root, Path::new("/esc/new/dir"), Create::Dir, true).unwrap();
    assert!(is_dir(&fd).unwrap());
    // The link's absolute target was re-rooted: the directory exists under the root.
    let inside = r
        .join(outside.path().strip_prefix("/").unwrap())
        .join("new/dir");
    assert!(inside.is_dir(), "{}", inside.display());
    assert!(!outside.path().join("new").exists());
    let fd = resolve_in_root(&root, Path::new("/f/file"), Create::File, true).unwrap();
    assert!(!is_dir(&fd).unwrap());
    assert!(r.join("f/file").is_file());
}

#[test]
fn read_limits_and_rejects_fifos() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    std::fs::write(r.join("big"), vec![b'x'; 100]).unwrap();
    nix::unistd::mkfifo(
        &r.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let root = Root::open(r).unwrap();
    assert_eq!(
        root.read_file(Path::new("/big"), 100)
            .unwrap()
            .unwrap()
            .len(),
        100
    );
    // more than the cap is refused, not cut short
    assert!(root.read_file(Path::new("/big"), 10).is_err());
    assert!(root.read_file(Path::new("/missing"), 10).unwrap().is_none());
    // a FIFO is never opened for reading (it would block): it counts as absent
    assert!(root.read_file(Path::new("/fifo"), 10).unwrap().is_none());
}

/// The openat2-less path of [`open_in_root`] answers as openat2 does.
#[test]
fn open_fallback_matches_openat2() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    std::fs::create_dir_all(r.join("d/e")).unwrap();
    std::fs::write(r.join("d/f"), "data").unwrap();
    symlink("/d/f", r.join("lf")).unwrap();
    symlink("../../d", r.join("d/e/ld")).unwrap();
    let root = Root::open(r).unwrap();
    let ro = OFlags::RDONLY;
    let nf = OFlags::NOFOLLOW;
    let dir = OFlags::DIRECTORY;
    let path = OFlags::PATH;
    // (path, flags, expected: Ok(in-root path) or Err(errno))
    let cases: &[(&str, OFlags, std::result::Result<&str, i32>)] = &[
        ("", ro | dir, Ok("/")),
        ("d/f", ro | nf, Ok("/d/f")),
        ("lf", ro, Ok("/d/f")),
        ("lf", ro | nf, Err(libc::ELOOP)),
        ("lf", path | nf, Ok("/lf")),
        ("d/e/ld", ro | dir, Ok("/d")),
        ("d/e/ld", ro | dir | nf, Err(libc::ENOTDIR)),
        ("d/e/ld", path | dir | nf, Err(libc::ENOTDIR)),
        ("d/f", ro | dir, Err(libc::ENOTDIR)),
        ("d/e/ld/f", path | nf, Ok("/d/f")),
        ("missing", ro, Err(libc::ENOENT)),
    ];
    for (p, flags, want) in cases {
        let got2 = root.open_at(p.as_bytes(), *flags, Mode::empty());
        // the fallback, forced
        let got_walk = open_by_walk(root.fd(), &strip_root(Path::new(p)), *flags);
        for (how, got) in [("openat2", got2), ("walk", got_walk)] {
            match (got, want) {
                (Ok(fd), Ok(w)) => assert_eq!(rel(r, &fd), PathBuf::from(w), "{how} {p}"),
                (Err(e), Err(w)) => assert_eq!(e.raw_os_error(), Some(*w), "{how} {p}"),
                (got, _) => panic!("{how} {p}: got {got:?}, want {want:?}"),
            }
        }
    }
}

#[test]
fn clean_paths() {
    for (i, o) in [("a/b", "/a/b"), ("/../x/./y/..", "/x"), ("", "/")] {
        assert_eq!(clean_container_path(i), PathBuf::from(o));
    }
}

#[test]
fn symlink_escape_finds_climbs_above_the_root() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    std::fs::create_dir_all(r.join("d/e")).unwrap();
    std::os::unix::fs::symlink("/../../../../host", r.join("escape")).unwrap();
    std::os::unix::fs::symlink("../../..", r.join("d/up")).unwrap();
    std::os::unix::fs::symlink("/d/e", r.join("abs")).unwrap();
    std::os::unix::fs::symlink("e/../..", r.join("d/toroot")).unwrap();
    let root = std::fs::File::open(r).unwrap();
    let check = |p: &str| symlink_escape(&root, Path::new(p)).unwrap();
    assert_eq!(check("/escape/x"), Some(PathBuf::from("/escape")));
    assert_eq!(check("/d/up/x"), Some(PathBuf::from("/d/up")));
    // absolute links restart at the root; climbing to the root itself is no escape
    assert_eq!(check("/abs/x"), None);
    assert_eq!(check("/d/toroot/d"), None);
    // `..` written by the caller is clamped, not an escape through a link
    assert_eq!(check("/../../d/e"), None);
    // missing components end the check
    assert_eq!(check("/missing/escape"), None);
}

#[test]
fn real_path_resolves_inside() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    std::fs::create_dir_all(root.join("usr/lib")).unwrap();
    symlink("/", root.join("rootdir")).unwrap();
    symlink("/usr", root.join("abs")).unwrap();
    symlink("../../../../..", root.join("up")).unwrap();
    symlink(t.path(), root.join("host")).unwrap();
    let r = Root::open(&root).unwrap();
    let real = std::fs::canonicalize(&root).unwrap();
    assert_eq!(
        r.real_path(Path::new("/rootdir")).unwrap(),
        Some(real.clone())
    );
    assert_eq!(r.real_path(Path::new("up")).unwrap(), Some(real.clone()));
    assert_eq!(
        r.real_path(Path::new("abs/lib")).unwrap(),
        Some(real.join("usr/lib"))
    );
    // The host directory the link names does not exist inside the root.
    assert_eq!(r.real_path(Path::new("host/root")).unwrap(), None);
}
