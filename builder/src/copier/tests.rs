//! `put` over temporary directories: destination rules, ownership, modes, excludes, escapes,
//! planted links, archives and URLs.
use super::*;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

struct Fx {
    _t: tempfile::TempDir,
    host: PathBuf,
    root: PathBuf,
    ctx: PathBuf,
}

fn fx() -> Fx {
    let t = tempfile::tempdir().unwrap();
    let host = t.path().to_path_buf();
    let root = host.join("rootfs");
    let ctx = host.join("ctx");
    fs::create_dir_all(&root).unwrap();
    fs::create_dir_all(&ctx).unwrap();
    Fx {
        _t: t,
        host,
        root,
        ctx,
    }
}

fn write(p: &Path, data: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

fn opts() -> PutOptions {
    PutOptions {
        workdir: "/".into(),
        ..PutOptions::default()
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Every path under `dir`, sorted, relative.
fn tree(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            e.unwrap()
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn destination_rules() {
    let f = fx();
    write(&f.ctx.join("a"), "A");
    write(&f.ctx.join("b"), "B");
    write(&f.ctx.join("d/x"), "X");
    write(&f.ctx.join("d/sub/y"), "Y");
    let src = SourceRoot::context(&f.ctx);
    let o = opts();
    // a file to a new name
    put(&f.root, &src, &s(&["a"]), "/new", &o).unwrap();
    assert_eq!(fs::read_to_string(f.root.join("new")).unwrap(), "A");
    // a trailing slash makes a directory
    put(&f.root, &src, &s(&["a"]), "/into/", &o).unwrap();
    assert_eq!(fs::read_to_string(f.root.join("into/a")).unwrap(), "A");
    // an existing directory without the slash: copied into it
    put(&f.root, &src, &s(&["b"]), "/into", &o).unwrap();
    assert_eq!(fs::read_to_string(f.root.join("into/b")).unwrap(), "B");
    // several sources: a directory is created
    put(&f.root, &src, &s(&["a", "b"]), "/multi", &o).unwrap();
    assert_eq!(tree(&f.root.join("multi")), ["a", "b"]);
    // several sources onto an existing file: refused
    let e = put(&f.root, &src, &s(&["a", "b"]), "/new", &o).unwrap_err();
    assert!(
        e.to_string()
            .contains("already exists but is not a directory"),
        "{e}"
    );
    // a file onto an existing file replaces it
    put(&f.root, &src, &s(&["b"]), "/new", &o).unwrap();
    assert_eq!(fs::read_to_string(f.root.join("new")).unwrap(), "B");
    // a directory: its contents
    put(&f.root, &src, &s(&["d"]), "/dd", &o).unwrap();
    assert_eq!(tree(&f.root.join("dd")), ["sub", "sub/y", "x"]);
    // relative destinations start at the working directory; none means the working directory
    let o2 = PutOptions {
        workdir: "/work".into(),
        ..opts()
    };
    put(&f.root, &src, &s(&["a"]), "rel", &o2).unwrap();
    put(&f.root, &src, &s(&["b"]), "", &o2).unwrap();
    assert_eq!(tree(&f.root.join("work")), ["b", "rel"]);
    // the context itself (absolute host path of the context, or "/" in it)
    put(&f.root, &src, &s(&[f.ctx.to_str().unwrap()]), "/whole", &o).unwrap();
    put(&f.root, &src, &s(&["/"]), "/whole2", &o).unwrap();
    assert_eq!(tree(&f.root.join("whole")), tree(&f.ctx));
    assert_eq!(tree(&f.root.join("whole2")), tree(&f.ctx));
    // ... also when the context was named through a symlink
    symlink(&f.ctx, f.host.join("ctx-link")).unwrap();
    let via_link = SourceRoot::context(&f.host.join("ctx-link"));
    put(
        &f.root,
        &via_link,
        &s(&[f.ctx.join("a").to_str().unwrap()]),
        "/vialink",
        &o,
    )
    .unwrap();
    assert_eq!(fs::read_to_string(f.root.join("vialink")).unwrap(), "A");
    // absolute sources name paths in the context
    put(&f.root, &src, &s(&["/d/x"]), "/abs/", &o).unwrap();
    assert_eq!(tree(&f.root.join("abs")), ["x"]);
    // missing sources
    let e = put(&f.root, &src, &s(&["nope"]), "/", &o).unwrap_err();
    assert!(e.to_string().contains("no such file or directory"), "{e}");
}

#[test]
fn globs() {
    let f = fx();
    for n in ["randomfile", "other-randomfile", "third-randomfile", "skip"] {
        write(&f.ctx.join(n), n);
    }
    write(&f.ctx.join("deep/er/x.go"), "go");
    write(&f.ctx.join("deep/y.go"), "go");
    let src = SourceRoot::context(&f.ctx);
    let o = opts();
    put(&f.root, &src, &s(&["*randomfile"]), "/etc", &o).unwrap();
    assert_eq!(
        tree(&f.root.join("etc")),
        ["other-randomfile", "randomfile", "third-randomfile"]
    );
    put(&f.root, &src, &s(&["[st]*"]), "/cls/", &o).unwrap();
    assert_eq!(tree(&f.root.join("cls")), ["skip", "third-randomfile"]);
    put(&f.root, &src, &s(&["**/*.go"]), "/go/", &o).unwrap();
    assert_eq!(tree(&f.root.join("go")), ["x.go", "y.go"]);
    put(&f.root, &src, &s(&["?kip"]), "/q/", &o).unwrap();
    assert_eq!(tree(&f.root.join("q")), ["skip"]);
    let e = put(&f.root, &src, &s(&["nothing-*"]), "/none/", &o).unwrap_err();
    assert!(e.to_string().contains("matched nothing"), "{e}");
    assert!(!f.root.join("none").exists());
    let o2 = PutOptions {
        allow_empty_wildcard: true,
        ..opts()
    };
    put(&f.root, &src, &s(&["nothing-*"]), "/none2/", &o2).unwrap();
    assert!(!f.root.join("none2").exists());
    // allow-empty-wildcard does not excuse a literal missing file
    assert!(put(&f.root, &src, &s(&["no-such-file"]), "/none3/", &o2)
        .unwrap_err()
        .to_string()
        .contains("no such file or directory"));
    let o3 = PutOptions {
        allow_wildcard: false,
        ..opts()
    };
    let e = put(&f.root, &src, &s(&["*randomfile"]), "/w/", &o3).unwrap_err();
    assert!(e.to_string().contains("wildcards are not allowed"), "{e}");
}

#[test]
fn owners_modes_times_and_hardlinks() {
    let f = fx();
    write(
        &f.root.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
    );
    write(
        &f.root.join("etc/group"),
        "root:x:0:\nnogroup:x:65534:\nstaff:x:50:\n",
    );
    write(&f.ctx.join("f"), "data");
    write(&f.ctx.join("d/g"), "g");
    fs::hard_link(f.ctx.join("d/g"), f.ctx.join("d/h")).unwrap();
    fs::set_permissions(f.ctx.join("f"), fs::Permissions::from_mode(0o640)).unwrap();
    filetime::set_file_mtime(
        f.ctx.join("f"),
        filetime::FileTime::from_unix_time(1572485025, 0),
    )
    .unwrap();
    filetime::set_file_mtime(
        f.ctx.join("d"),
        filetime::FileTime::from_unix_time(1_000_000, 0),
    )
    .unwrap();
    let src = SourceRoot::context(&f.ctx);
    // default: 0:0, modes and mtimes kept
    put(&f.root, &src, &s(&["f"]), "/plain", &opts()).unwrap();
    let m = fs::metadata(f.root.join("plain")).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.mode() & 0o7777, m.mtime()),
        (0, 0, 0o640, 1572485025)
    );
    // --chown by name, resolved in the rootfs; the implied destination directory gets it too
    let owner = passwd::resolve_chown(&f.root, "nobody:staff").unwrap();
    assert_eq!(owner, (65534, 50));
    let o = PutOptions {
        owner: Some(owner),
        dir_owner: owner,
        ..opts()
    };
    put(&f.root, &src, &s(&["d"]), "/sub", &o).unwrap();
    for p in ["sub", "sub/g", "sub/h"] {
        let m = fs::symlink_metadata(f.root.join(p)).unwrap();
        assert_eq!((m.uid(), m.gid()), (65534, 50), "{p}");
    }
    // hard links inside the copied tree stay hard links
    let (g, h) = (
        fs::metadata(f.root.join("sub/g")).unwrap(),
        fs::metadata(f.root.join("sub/h")).unwrap(),
    );
    assert_eq!(g.ino(), h.ino());
    // directories keep their mtime even after their contents were written
    put(&f.root, &src, &s(&["/"]), "/all", &opts()).unwrap();
    assert_eq!(
        fs::metadata(f.root.join("all/d")).unwrap().mtime(),
        1_000_000
    );
    // --chmod applies to files and directories; numeric --chown
    let o = PutOptions {
        chmod: Some(parse_chmod("660").unwrap()),
        owner: Some((1, 2)),
        ..opts()
    };
    put(&f.root, &src, &s(&["/"]), "/modes", &o).unwrap();
    for p in ["modes/f", "modes/d", "modes/d/g"] {
        let m = fs::metadata(f.root.join(p)).unwrap();
        assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o660, 1, 2), "{p}");
    }
    // the existing destination directory itself is not changed
    assert_eq!(
        fs::metadata(f.root.join("modes")).unwrap().mode() & 0o7777,
        0o755
    );
    // --timestamp
    let o = PutOptions {
        timestamp: Some(86400),
        ..opts()
    };
    put(&f.root, &src, &s(&["f"]), "/stamped", &o).unwrap();
    assert_eq!(fs::metadata(f.root.join("stamped")).unwrap().mtime(), 86400);
    assert!(parse_chmod("9").is_err() && parse_chmod("17777").is_err());
}

#[test]
fn symlinks_in_sources() {
    let f = fx();
    write(&f.ctx.join("file"), "content");
    symlink("./file", f.ctx.join("link")).unwrap();
    write(&f.ctx.join("src/file"), "child");
    symlink("./file", f.ctx.join("src/symlink")).unwrap();
    let src = SourceRoot::context(&f.ctx);
    // a symlink named directly is followed (it stays inside the context)
    put(&f.root, &src, &s(&["link"]), "/dest", &opts()).unwrap();
    let m = fs::symlink_metadata(f.root.join("dest")).unwrap();
    assert!(m.is_file());
    assert_eq!(fs::read_to_string(f.root.join("dest")).unwrap(), "content");
    // ... and named after the link when copied into a directory
    put(&f.root, &src, &s(&["link"]), "/dir/", &opts()).unwrap();
    assert_eq!(
        fs::read_to_string(f.root.join("dir/link")).unwrap(),
        "content"
    );
    // not followed with --no-follow-symlinks
    let o = PutOptions {
        follow_links: false,
        ..opts()
    };
    put(&f.root, &src, &s(&["link"]), "/nofollow", &o).unwrap();
    assert_eq!(
        fs::read_link(f.root.join("nofollow")).unwrap(),
        Path::new("./file")
    );
    // links inside a copied directory are copied as links
    put(&f.root, &src, &s(&["src"]), "/tree", &opts()).unwrap();
    assert_eq!(
        fs::read_link(f.root.join("tree/symlink")).unwrap(),
        Path::new("./file")
    );
}

#[test]
fn context_escapes_refused() {
    let f = fx();
    let canary = f.host.join("canary");
    write(&canary, "CANARY");
    write(&f.ctx.join("ok"), "ok");
    symlink(&canary, f.ctx.join("leak")).unwrap();
    symlink("../canary", f.ctx.join("rel-leak")).unwrap();
    fs::create_dir_all(f.ctx.join("sub")).unwrap();
    symlink("../../..", f.ctx.join("sub/bar")).unwrap();
    symlink("/", f.ctx.join("slash")).unwrap();
    let src = SourceRoot::context(&f.ctx);
    for bad in [
        "../canary",
        "sub/../../canary",
        "leak",
        "rel-leak",
        "sub/bar/canary",
        "sub/bar",
        "slash",
    ] {
        match put(&f.root, &src, &s(&[bad]), "/x/", &opts()) {
            Err(Error::Copy(CopyError::Escapes { path, .. })) => assert_eq!(path, bad),
            other => panic!("{bad}: {other:?}"),
        }
    }
    // copying the whole context keeps the links as links: no canary bytes land anywhere
    put(&f.root, &src, &s(&["."]), "/all/", &opts()).unwrap();
    assert_eq!(fs::read_link(f.root.join("all/leak")).unwrap(), canary);
    assert!(fs::symlink_metadata(f.root.join("all/sub/bar"))
        .unwrap()
        .file_type()
        .is_symlink());
    for e in walkdir::WalkDir::new(&f.root) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            assert_ne!(
                fs::read(e.path()).unwrap(),
                b"CANARY",
                "{}",
                e.path().display()
            );
        }
    }
    // the same links from a rootfs source (--from) resolve inside that rootfs
    let other = f.host.join("other");
    write(&other.join("etc/secret"), "inside");
    write(&other.join(canary.strip_prefix("/").unwrap()), "re-rooted");
    symlink(&canary, other.join("leak")).unwrap();
    symlink("../../../../../../etc/secret", other.join("up")).unwrap();
    let from = SourceRoot::rootfs(&other);
    put(&f.root, &from, &s(&["leak", "/up"]), "/from/", &opts()).unwrap();
    assert_eq!(
        fs::read_to_string(f.root.join("from/leak")).unwrap(),
        "re-rooted"
    );
    assert_eq!(
        fs::read_to_string(f.root.join("from/up")).unwrap(),
        "inside"
    );
    assert_eq!(fs::read_to_string(&canary).unwrap(), "CANARY");
}

#[test]
fn planted_links_in_rootfs_stay_contained() {
    let f = fx();
    // host-side victims
    let victim_dir = f.host.join("victim");
    fs::create_dir_all(&victim_dir).unwrap();
    let victim_file = f.host.join("victim-file");
    write(&victim_file, "VICTIM");
    // the rootfs: /test -> /tmp, /rel -> ../../../.., /tmp exists; /etc/passwd -> host file
    fs::create_dir_all(f.root.join("tmp")).unwrap();
    symlink("/tmp", f.root.join("test")).unwrap();
    symlink(&victim_dir, f.root.join("abs")).unwrap();
    symlink("../../../../../../../..", f.root.join("rel")).unwrap();
    fs::create_dir_all(f.root.join("etc")).unwrap();
    symlink(&victim_file, f.root.join("etc/passwd")).unwrap();
    let name = format!("hod-copy-test-{}", std::process::id());
    write(&f.ctx.join(&name), "payload");
    write(&f.ctx.join("passwd"), "new passwd");
    write(&f.ctx.join("tree/x/y"), "deep");
    let src = SourceRoot::context(&f.ctx);
    let o = opts();
    put(&f.root, &src, &s(&[&name]), "/test", &o).unwrap();
    put(&f.root, &src, &s(&[&name]), "/test/", &o).unwrap();
    put(&f.root, &src, &s(&[&name]), "/abs/", &o).unwrap();
    put(&f.root, &src, &s(&["tree"]), "/rel/more/", &o).unwrap();
    put(&f.root, &src, &s(&["passwd"]), "/etc/passwd", &o).unwrap();
    assert_eq!(
        fs::read_to_string(f.root.join("tmp").join(&name)).unwrap(),
        "payload"
    );
    assert!(!Path::new("/tmp").join(&name).exists(), "host /tmp written");
    assert_eq!(
        fs::read_dir(&victim_dir).unwrap().count(),
        0,
        "host victim dir written"
    );
    assert!(f
        .root
        .join(victim_dir.strip_prefix("/").unwrap())
        .join(&name)
        .is_file());
    assert_eq!(fs::read_to_string(f.root.join("more/x/y")).unwrap(), "deep");
    // the planted link at the final name is replaced, not written through
    assert_eq!(fs::read_to_string(&victim_file).unwrap(), "VICTIM");
    assert!(fs::symlink_metadata(f.root.join("etc/passwd"))
        .unwrap()
        .is_file());
    assert_eq!(
        fs::read_to_string(f.root.join("etc/passwd")).unwrap(),
        "new passwd"
    );
    // a planted link where a copied tree has a directory: replaced by a directory
    symlink(&victim_dir, f.root.join("tmp/x")).unwrap();
    put(&f.root, &src, &s(&["tree"]), "/tmp", &o).unwrap();
    assert!(fs::symlink_metadata(f.root.join("tmp/x")).unwrap().is_dir());
    assert_eq!(fs::read_dir(&victim_dir).unwrap().count(), 0);
}

#[test]
fn excludes() {
    let f = fx();
    let mytest = f.ctx.join("mytest");
    write(&mytest.join("mystuff"), "");
    write(&mytest.join("source.go"), "");
    write(&mytest.join("notmystuff/notmystuff"), "");
    write(&mytest.join(".ignore"), "*.go\n.ignore\nnotmystuff\n");
    // --contextdir + --ignorefile (patterns relative to the context)
    let src = SourceRoot::context(&mytest);
    let (pats, file) = ignore::context_patterns(&mytest, Some(&mytest.join(".ignore"))).unwrap();
    let o = PutOptions {
        excludes: pats,
        ignore_file: file,
        ..opts()
    };
    put(&f.root, &src, &s(&[mytest.to_str().unwrap()]), "/stuff", &o).unwrap();
    assert_eq!(tree(&f.root.join("stuff")), ["mystuff"]);
    // --exclude without a context: relative to the host root
    let host = SourceRoot::host(&f.host);
    let o = PutOptions {
        excludes: s(&["**/*.go", ".ignore", "**/notmystuff", "**/.ignore"]),
        ..opts()
    };
    put(
        &f.root,
        &host,
        &s(&[mytest.to_str().unwrap()]),
        "/stuff2",
        &o,
    )
    .unwrap();
    assert_eq!(tree(&f.root.join("stuff2")), ["mystuff"]);
    // ... and, for host sources, relative to the copied directory as well
    write(&f.ctx.join("ex/a"), "");
    write(&f.ctx.join("ex/b"), "");
    write(&f.ctx.join("ex/c.tmp"), "");
    write(&f.ctx.join("ex/sub/d.tmp"), "");
    let o = PutOptions {
        excludes: s(&["*.tmp", "b", "sub/*.tmp"]),
        ..opts()
    };
    put(
        &f.root,
        &host,
        &s(&[f.ctx.join("ex").to_str().unwrap()]),
        "/ex",
        &o,
    )
    .unwrap();
    assert_eq!(tree(&f.root.join("ex")), ["a", "sub"]);
    // not for a context directory: there patterns are relative to the context only
    let o = PutOptions {
        excludes: s(&["*.tmp"]),
        ..opts()
    };
    put(
        &f.root,
        &SourceRoot::context(&f.ctx),
        &s(&["ex"]),
        "/ex2",
        &o,
    )
    .unwrap();
    assert_eq!(
        tree(&f.root.join("ex2")),
        ["a", "b", "c.tmp", "sub", "sub/d.tmp"]
    );
    // exceptions re-include below an excluded directory
    let o = PutOptions {
        excludes: s(&["notmystuff", "!notmystuff/notmystuff", "*.go"]),
        ..opts()
    };
    put(&f.root, &src, &s(&["."]), "/stuff3", &o).unwrap();
    assert_eq!(
        tree(&f.root.join("stuff3")),
        [".ignore", "mystuff", "notmystuff", "notmystuff/notmystuff"]
    );
    // everything filtered out
    let o = PutOptions {
        excludes: s(&["*.go"]),
        ..opts()
    };
    let e = put(&f.root, &src, &s(&["source.go"]), "/none/", &o).unwrap_err();
    assert!(e.to_string().contains("filtered out"), "{e}");
}

fn tar_bytes() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8], kind: tar::EntryType, link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_uid(1234);
        h.set_gid(1234);
        h.set_mtime(1_500_000_000);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        b.append_data(&mut h, name, data).unwrap();
    };
    add("top/", b"", tar::EntryType::Directory, None);
    add("top/random1", b"r1", tar::EntryType::Regular, None);
    add("top/hl", b"", tar::EntryType::Link, Some("top/random1"));
    add("top/sl", b"", tar::EntryType::Symlink, Some("random1"));
    add("random2", b"r2", tar::EntryType::Regular, None);
    b.into_inner().unwrap()
}

fn compressed(kind: &str, raw: &[u8]) -> Vec<u8> {
    match kind {
        "tar" => raw.to_vec(),
        "gz" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(raw).unwrap();
            e.finish().unwrap()
        }
        "bz2" => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            e.write_all(raw).unwrap();
            e.finish().unwrap()
        }
        "xz" => {
            let mut e = xz2::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(raw).unwrap();
            e.finish().unwrap()
        }
        "zst" => zstd::encode_all(raw, 1).unwrap(),
        _ => unreachable!(),
    }
}

/// A symbolic --chmod changes each item's own mode; `X` tells directories from files.
#[test]
fn symbolic_chmod_per_item() {
    let f = fx();
    let src = SourceRoot::context(&f.ctx);
    write(&f.ctx.join("t/plain"), "p");
    write(&f.ctx.join("t/exec"), "e");
    write(&f.ctx.join("t/sub/deep"), "d");
    let set = |p: &str, m: u32| {
        fs::set_permissions(f.ctx.join(p), fs::Permissions::from_mode(m)).unwrap()
    };
    set("t/plain", 0o640);
    set("t/exec", 0o700);
    set("t/sub/deep", 0o604);
    set("t/sub", 0o700);
    let o = PutOptions {
        chmod: Some(parse_chmod("a=rX,u+w").unwrap()),
        ..opts()
    };
    put(&f.root, &src, &s(&["t"]), "/x", &o).unwrap();
    let mode = |p: &str| fs::symlink_metadata(f.root.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(
        [
            mode("x/plain"),
            mode("x/exec"),
            mode("x/sub"),
            mode("x/sub/deep")
        ],
        [0o644, 0o755, 0o755, 0o644]
    );
    // go-r keeps what else each item had
    let o = PutOptions {
        chmod: Some(parse_chmod("go-r").unwrap()),
        ..opts()
    };
    put(&f.root, &src, &s(&["t/plain", "t/exec"]), "/y/", &o).unwrap();
    assert_eq!([mode("y/plain"), mode("y/exec")], [0o600, 0o700]);
    // archives extracted by ADD: not applied, each entry keeps its mode (buildah's copier
    // passes archive entries through untouched)
    fs::write(f.ctx.join("a.tar"), tar_bytes()).unwrap();
    let o = PutOptions {
        chmod: Some(parse_chmod("a+X,go-r").unwrap()),
        extract_archives: true,
        ..opts()
    };
    put(&f.root, &src, &s(&["a.tar"]), "/z", &o).unwrap();
    assert_eq!([mode("z/random2"), mode("z/top")], [0o644, 0o755]);
}

#[test]
fn add_extracts_archives() {
    let f = fx();
    let raw = tar_bytes();
    let src = SourceRoot::context(&f.ctx);
    for kind in ["tar", "gz", "bz2", "xz", "zst"] {
        let name = format!("archive.{kind}");
        fs::write(f.ctx.join(&name), compressed(kind, &raw)).unwrap();
        let dest = format!("/{kind}");
        let o = PutOptions {
            extract_archives: true,
            ..opts()
        };
        put(&f.root, &src, &s(&[&name]), &dest, &o).unwrap();
        let d = f.root.join(kind);
        assert_eq!(
            tree(&d),
            ["random2", "top", "top/hl", "top/random1", "top/sl"],
            "{kind}"
        );
        assert_eq!(fs::read_to_string(d.join("top/random1")).unwrap(), "r1");
        assert_eq!(
            fs::metadata(d.join("top/hl")).unwrap().ino(),
            fs::metadata(d.join("top/random1")).unwrap().ino()
        );
        assert_eq!(
            fs::read_link(d.join("top/sl")).unwrap(),
            Path::new("random1")
        );
        let m = fs::metadata(d.join("random2")).unwrap();
        assert_eq!(
            (m.uid(), m.mtime()),
            (1234, 1_500_000_000),
            "the archive's owner and mtime kept (`--chown` does not apply, as in buildah)"
        );
        // COPY does not extract
        put(
            &f.root,
            &src,
            &s(&[&name]),
            &format!("/copy-{kind}"),
            &opts(),
        )
        .unwrap();
        assert!(f.root.join(format!("copy-{kind}")).is_file());
    }
    // a file that only looks like an archive by name is copied as it is
    fs::write(f.ctx.join("fake.tar.gz"), "not really").unwrap();
    let o = PutOptions {
        extract_archives: true,
        ..opts()
    };
    put(&f.root, &src, &s(&["fake.tar.gz"]), "/fake/", &o).unwrap();
    assert_eq!(
        fs::read_to_string(f.root.join("fake/fake.tar.gz")).unwrap(),
        "not really"
    );
}

#[test]
fn add_archive_escapes() {
    let f = fx();
    let victim = f.host.join("victim");
    fs::create_dir_all(&victim).unwrap();
    let src = SourceRoot::context(&f.ctx);
    let o = PutOptions {
        extract_archives: true,
        ..opts()
    };
    // `..` in an entry name: refused, nothing outside
    let mut raw = Vec::new();
    {
        let mut b = tar::Builder::new(&mut raw);
        let mut h = tar::Header::new_old();
        h.set_size(1);
        h.set_mode(0o644);
        h.as_old_mut().name[..14].copy_from_slice(b"../../victim/x");
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        b.finish().unwrap();
    }
    fs::write(f.ctx.join("dots.tar"), &raw).unwrap();
    assert!(put(&f.root, &src, &s(&["dots.tar"]), "/a/", &o).is_err());
    // a link to the host victim, then an entry through it: stays in the rootfs
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_link_name(&victim).unwrap();
    b.append_data(&mut h, "l", &b""[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    b.append_data(&mut h, "l/pwn", &b"pwn"[..]).unwrap();
    fs::write(f.ctx.join("links.tar"), b.into_inner().unwrap()).unwrap();
    put(&f.root, &src, &s(&["links.tar"]), "/b/", &o).unwrap();
    assert_eq!(fs::read_dir(&victim).unwrap().count(), 0);
    assert!(f
        .root
        .join(victim.strip_prefix("/").unwrap())
        .join("pwn")
        .is_file());
}

#[test]
fn urls_and_checksums() {
    use super::url::tests::{ok_response, serve};
    let f = fx();
    let body = b"remote content\n";
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body))
    );
    let lm = "Last-Modified: Thu, 31 Oct 2019 01:23:45 GMT\r\n";
    let (port, h) = serve(vec![
        ok_response(body, lm),
        ok_response(body, lm),
        ok_response(body, ""),
    ]);
    let src = SourceRoot::context(&f.ctx);
    let u = format!("http://127.0.0.1:{port}/dir/remote.txt");
    // into a directory, named from the URL path; 0600, 0:0, Last-Modified as mtime
    put(&f.root, &src, &s(&[&u]), "/dl/", &opts()).unwrap();
    let m = fs::metadata(f.root.join("dl/remote.txt")).unwrap();
    assert_eq!(
        (m.mode() & 0o7777, m.uid(), m.mtime()),
        (0o600, 0, 1572485025)
    );
    assert_eq!(fs::read(f.root.join("dl/remote.txt")).unwrap(), body);
    // to a file name, with the right checksum
    let o = PutOptions {
        checksum: Some(digest.clone()),
        chmod: Some(Chmod::Octal(0o644)),
        ..opts()
    };
    put(&f.root, &src, &s(&[&u]), "/named", &o).unwrap();
    assert_eq!(
        fs::metadata(f.root.join("named")).unwrap().mode() & 0o7777,
        0o644
    );
    // a wrong checksum: refused, nothing written
    let zero = format!("sha256:{}", "0".repeat(64));
    let o = PutOptions {
        checksum: Some(zero.clone()),
        ..opts()
    };
    let e = put(&f.root, &src, &s(&[&u]), "/bad/", &o).unwrap_err();
    assert!(
        format!("{e}").contains(&format!(
            "unexpected response digest for {u:?}: {digest}, want {zero}"
        )),
        "{e}"
    );
    assert!(!f.root.join("bad").exists());
    // no file name in the URL path
    let e = put(
        &f.root,
        &src,
        &s(&[&format!("http://127.0.0.1:{port}/")]),
        "/dl/",
        &opts(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("file name"), "{e}");
    // --checksum with a local source
    write(&f.ctx.join("local"), "x");
    let o = PutOptions {
        checksum: Some(digest),
        ..opts()
    };
    let e = put(&f.root, &src, &s(&["local"]), "/", &o).unwrap_err();
    assert!(e
        .to_string()
        .contains("checksum flag is not supported for local sources"));
    drop(h);
}

#[test]
fn parents() {
    let f = fx();
    let mytest = f.ctx.join("mytest");
    for p in ["x/a.txt", "y/a.txt", "y/b.txt"] {
        write(&mytest.join(p), p);
    }
    let host = SourceRoot::host(&f.host);
    let m = mytest.to_str().unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("/./*/a.txt", &["x", "x/a.txt", "y", "y/a.txt"]),
        ("/./y/*", &["y", "y/a.txt", "y/b.txt"]),
        ("/./*/b.txt", &["y", "y/b.txt"]),
        ("/./*", &["x", "x/a.txt", "y", "y/a.txt", "y/b.txt"]),
    ];
    for (i, (pat, want)) in cases.iter().enumerate() {
        let o = PutOptions {
            parents: true,
            ..opts()
        };
        let dest = format!("/p{i}/");
        put(&f.root, &host, &s(&[&format!("{m}{pat}")]), &dest, &o).unwrap();
        assert_eq!(tree(&f.root.join(format!("p{i}"))), *want, "{pat}");
    }
    // without a pivot, the path below the context is kept
    let o = PutOptions {
        parents: true,
        ..opts()
    };
    put(
        &f.root,
        &SourceRoot::context(&mytest),
        &s(&["y/a.txt"]),
        "/q/",
        &o,
    )
    .unwrap();
    assert_eq!(tree(&f.root.join("q")), ["y", "y/a.txt"]);
}

#[test]
fn no_metadata_or_writes_through_links() {
    // B06: chmod/chown/utimes/mkdir through `d -> outside` and `s -> ..` stay in the root.
    let f = fx();
    let outside = f.host.join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o751)).unwrap();
    filetime::set_file_mtime(&outside, filetime::FileTime::from_unix_time(12345, 0)).unwrap();
    let before = fs::metadata(&outside).unwrap();
    symlink(&outside, f.root.join("d")).unwrap();
    symlink("..", f.root.join("s")).unwrap();
    symlink(&outside, f.root.join("e")).unwrap();
    for p in ["d/file", "s/x/file", "e/f/file", "e/g"] {
        write(&f.ctx.join(p), p);
    }
    fs::set_permissions(f.ctx.join("d"), fs::Permissions::from_mode(0o700)).unwrap();
    let src = SourceRoot::context(&f.ctx);
    // `e` itself is excluded but `e/f` is re-included: `e` is only an implied parent
    let o = PutOptions {
        excludes: s(&["e", "!e/f"]),
        chmod: None,
        owner: Some((7, 7)),
        ..opts()
    };
    put(&f.root, &src, &s(&["."]), "/", &o).unwrap();
    let after = fs::metadata(&outside).unwrap();
    assert_eq!(
        (after.mode(), after.uid(), after.gid(), after.mtime()),
        (before.mode(), before.uid(), before.gid(), 12345)
    );
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing created outside"
    );
    assert!(
        fs::symlink_metadata(f.root.join("d")).unwrap().is_dir(),
        "the link was replaced"
    );
    assert_eq!(
        fs::metadata(f.root.join("d")).unwrap().mode() & 0o7777,
        0o700
    );
    assert!(fs::symlink_metadata(f.root.join("s")).unwrap().is_dir());
    assert_eq!(
        fs::read_to_string(f.root.join("s/x/file")).unwrap(),
        "s/x/file"
    );
    // the implied parent followed the planted link, re-rooted inside the rootfs
    let rerooted = f.root.join(outside.strip_prefix("/").unwrap());
    assert_eq!(
        fs::read_to_string(rerooted.join("f/file")).unwrap(),
        "e/f/file"
    );
    assert!(!rerooted.join("g").exists(), "excluded");
}
