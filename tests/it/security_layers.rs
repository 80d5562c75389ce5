//! Issue 16, the security battery's first half (`docs/security.md`): layers and tar
//! (B01–B11), build contexts and sources (C12–C17) and `RUN --mount` (M18–M23).
//!
//! Every case builds its hostile input here: tar streams with headers written byte by byte
//! (never through the `tar` crate's builder, which would sanitise the names), OCI layouts
//! holding them, crafted build contexts. The real binary pulls, builds or copies them, and
//! the assertions are on sentinels outside the root ([`Host`]: canary bytes, modes,
//! owners, times, link counts, xattrs, absent files), on the exit status and the one
//! `Error:` line, and on the store staying consistent with no partial layer.
//!
//! Items already covered by the library's unit tests are listed in `docs/security.md`
//! next to these.
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest as _, Sha256};

use crate::common::registry::{Mode, TestRegistry};
use crate::common::{self, Run, TestContext};

// ---------------------------------------------------------------------------------------
// Raw tar headers.

/// One tar header, written field by field.
#[derive(Clone, Debug)]
struct H {
    name: Vec<u8>,
    typ: u8,
    link: Vec<u8>,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    dev: (u32, u32),
    /// The size field when it must differ from the data written.
    size: Option<u64>,
}

fn h(name: impl AsRef<[u8]>, typ: u8) -> H {
    H {
        name: name.as_ref().to_vec(),
        typ,
        link: Vec::new(),
        mode: if typ == b'5' { 0o755 } else { 0o644 },
        uid: 0,
        gid: 0,
        mtime: 1_600_000_000,
        dev: (0, 0),
        size: None,
    }
}
fn file(name: impl AsRef<[u8]>) -> H {
    h(name, b'0')
}
fn dir(name: impl AsRef<[u8]>) -> H {
    h(name, b'5')
}
fn sym(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> H {
    H {
        link: target.as_ref().to_vec(),
        mode: 0o777,
        ..h(name, b'2')
    }
}
fn hard(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> H {
    H {
        link: target.as_ref().to_vec(),
        ..h(name, b'1')
    }
}

fn octal(field: &mut [u8], v: u64) {
    let w = field.len() - 1;
    let s = format!("{v:0w$o}");
    assert!(s.len() <= w, "{v} does not fit a {w}-digit field");
    field[..w].copy_from_slice(s.as_bytes());
    field[w] = 0;
}

/// A PAX record `"%d %s=%s\n"` (the length counts itself).
fn pax_record(k: &[u8], v: &[u8]) -> Vec<u8> {
    let body = k.len() + v.len() + 3;
    let mut n = body + 1;
    while n != body + n.to_string().len() {
        n = body + n.to_string().len();
    }
    let mut r = format!("{n} ").into_bytes();
    r.extend_from_slice(k);
    r.push(b'=');
    r.extend_from_slice(v);
    r.push(b'\n');
    r
}

/// A tar stream assembled header by header.
#[derive(Default)]
struct Tar {
    out: Vec<u8>,
}

impl Tar {
    fn header(&mut self, h: &H, size: u64) {
        let mut b = [0u8; 512];
        assert!(h.name.len() <= 100 && h.link.len() <= 100, "{h:?}");
        b[..h.name.len()].copy_from_slice(&h.name);
        octal(&mut b[100..108], u64::from(h.mode));
        octal(&mut b[108..116], h.uid);
        octal(&mut b[116..124], h.gid);
        octal(&mut b[124..136], size);
        octal(&mut b[136..148], h.mtime);
        b[156] = h.typ;
        b[157..157 + h.link.len()].copy_from_slice(&h.link);
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        b[265..269].copy_from_slice(b"root");
        b[297..301].copy_from_slice(b"root");
        octal(&mut b[329..337], u64::from(h.dev.0));
        octal(&mut b[337..345], u64::from(h.dev.1));
        b[148..156].fill(b' ');
        let sum: u64 = b.iter().map(|x| u64::from(*x)).sum();
        b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        self.out.extend_from_slice(&b);
    }

    fn data(&mut self, d: &[u8]) {
        self.out.extend_from_slice(d);
        while !self.out.len().is_multiple_of(512) {
            self.out.push(0);
        }
    }

    /// An entry; the size field is the data's length unless `h.size` says otherwise.
    /// Names and link targets over 100 bytes go into a PAX header before it.
    fn entry(mut self, mut h: H, data: &[u8]) -> Tar {
        if h.name.len() > 100 || h.link.len() > 100 {
            let mut recs: Vec<(&[u8], &[u8])> = Vec::new();
            let (name, link) = (h.name.clone(), h.link.clone());
            if name.len() > 100 {
                recs.push((b"path", &name));
            }
            if link.len() > 100 {
                recs.push((b"linkpath", &link));
            }
            self = self.pax(&recs);
            h.name.truncate(100);
            h.link.truncate(100);
        }
        self.header(&h, h.size.unwrap_or(data.len() as u64));
        self.data(data);
        self
    }

    fn e(self, h: H) -> Tar {
        self.entry(h, b"")
    }

    /// A PAX extended header (`x`) for the next entry.
    fn pax(self, records: &[(&[u8], &[u8])]) -> Tar {
        let mut d = Vec::new();
        for (k, v) in records {
            d.extend(pax_record(k, v));
        }
        self.entry(h("PaxHeaders/x", b'x'), &d)
    }

    /// A GNU long name (`L`) for the next entry.
    fn long_name(self, name: &[u8]) -> Tar {
        let mut d = name.to_vec();
        d.push(0);
        self.entry(h("././@LongLink", b'L'), &d)
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.extend_from_slice(&[0u8; 1024]);
        self.out
    }
}

fn tar() -> Tar {
    Tar::default()
}

// ---------------------------------------------------------------------------------------
// Hostile images as OCI layouts.

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// One layer as stored in a layout.
struct Blob {
    bytes: Vec<u8>,
    media: &'static str,
    diff_id: String,
    /// The descriptor's size when it must lie.
    size: Option<i64>,
}

fn plain(tar: Vec<u8>) -> Blob {
    Blob {
        diff_id: format!("sha256:{}", sha256_hex(&tar)),
        bytes: tar,
        media: "application/vnd.oci.image.layer.v1.tar",
        size: None,
    }
}

fn gzipped(tar: Vec<u8>) -> Blob {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&tar).unwrap();
    Blob {
        diff_id: format!("sha256:{}", sha256_hex(&tar)),
        bytes: e.finish().unwrap(),
        media: "application/vnd.oci.image.layer.v1.tar+gzip",
        size: None,
    }
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn put_blob(layout: &Path, bytes: &[u8]) -> String {
    let hex = sha256_hex(bytes);
    let d = layout.join("blobs/sha256");
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join(&hex), bytes).unwrap();
    format!("sha256:{hex}")
}

/// Writes an OCI layout with `layers` under `layout` (tag `latest`) and returns the
/// `oci:` reference; `config` is the image config's `config` object.
fn oci_image(layout: &Path, layers: Vec<Blob>, config: serde_json::Value) -> String {
    let _ = fs::remove_dir_all(layout);
    fs::create_dir_all(layout).unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut history = Vec::new();
    for l in &layers {
        let digest = put_blob(layout, &l.bytes);
        descs.push(serde_json::json!({
            "mediaType": l.media,
            "digest": digest,
            "size": l.size.unwrap_or(l.bytes.len() as i64),
        }));
        diff_ids.push(l.diff_id.clone());
        history.push(serde_json::json!({"created_by": "security battery"}));
    }
    let cfg = serde_json::to_vec(&serde_json::json!({
        "architecture": arch(),
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }))
    .unwrap();
    let cfg_digest = put_blob(layout, &cfg);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": cfg_digest,
            "size": cfg.len(),
        },
        "layers": descs,
    }))
    .unwrap();
    let m_digest = put_blob(layout, &manifest);
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": m_digest,
                "size": manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": "latest"},
            }],
        }))
        .unwrap(),
    )
    .unwrap();
    format!("oci:{}:latest", layout.display())
}

/// The same layout as an `oci-archive:` tarball.
fn oci_archive(layout: &Path) -> String {
    let out = layout.with_extension("tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(layout)
        .arg("-cf")
        .arg(&out)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    format!("oci-archive:{}", out.display())
}

// ---------------------------------------------------------------------------------------
// Sentinels outside the root.

/// A host directory next to the store whose every byte, mode, owner, time, link count and
/// xattr is compared before and after; escaping writes aim at it.
struct Host {
    dir: PathBuf,
    before: BTreeMap<String, String>,
}

const CANARY: &[u8] = b"CANARY: host bytes";

impl Host {
    fn new(ctx: &TestContext) -> Host {
        let dir = ctx.path("host");
        fs::create_dir_all(dir.join("dir")).unwrap();
        fs::write(dir.join("canary"), CANARY).unwrap();
        fs::write(dir.join("victim"), b"victim").unwrap();
        fs::set_permissions(dir.join("canary"), fs::Permissions::from_mode(0o640)).unwrap();
        fs::set_permissions(dir.join("dir"), fs::Permissions::from_mode(0o750)).unwrap();
        for p in ["canary", "victim", "dir", ""] {
            let st = Command::new("touch")
                .args(["-h", "-d", "@1000000000"])
                .arg(dir.join(p))
                .status()
                .unwrap();
            assert!(st.success());
        }
        let before = snapshot(&dir);
        Host { dir, before }
    }

    /// `$HOST` as an absolute path string (what absolute links point at).
    fn abs(&self) -> String {
        self.dir.display().to_string()
    }

    /// `../../…/$HOST`: enough `..` to climb to `/` from any depth of the store.
    fn rel(&self) -> String {
        format!("{}{}", "../".repeat(24), self.abs().trim_start_matches('/'))
    }

    fn assert_intact(&self, what: &str) {
        let now = snapshot(&self.dir);
        assert!(
            now == self.before,
            "{what}: the host directory changed\nbefore: {:#?}\nafter: {now:#?}",
            self.before
        );
    }
}

fn snapshot(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, p: &Path, out: &mut BTreeMap<String, String>) {
        let md = fs::symlink_metadata(p).unwrap();
        let mut xattrs: Vec<String> = xattr::list(p)
            .map(|l| {
                l.map(|k| {
                    let v = xattr::get(p, &k).ok().flatten().unwrap_or_default();
                    format!("{}={}", k.to_string_lossy(), hex::encode(v))
                })
                .collect()
            })
            .unwrap_or_default();
        xattrs.sort();
        let content = if md.is_file() {
            sha256_hex(&fs::read(p).unwrap())
        } else if md.file_type().is_symlink() {
            fs::read_link(p).unwrap().display().to_string()
        } else {
            String::new()
        };
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        out.insert(
            rel,
            format!(
                "mode={:o} uid={} gid={} mtime={}.{} nlink={} size={} rdev={} {content} {xattrs:?}",
                md.mode(),
                md.uid(),
                md.gid(),
                md.mtime(),
                md.mtime_nsec(),
                if md.is_dir() { 0 } else { md.nlink() },
                if md.is_dir() { 0 } else { md.size() },
                md.rdev(),
            ),
        );
        if md.is_dir() {
            let mut names: Vec<_> = fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            names.sort();
            for n in names {
                walk(root, &n, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Paths below `dir` whose name starts with `prefix` (escaped writes are named so).
fn find_named(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with(prefix) {
                out.push(p.clone());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            }
        }
    }
    out
}

/// A name at the host's `/` that an escape through `-> /` would create; unique per test.
fn slash_name(test: &str) -> String {
    format!("hodsec-{test}-{}", std::process::id())
}

fn assert_not_at_slash(name: &str) {
    assert!(
        !Path::new("/").join(name).exists(),
        "/{name} was written on the host"
    );
}

// ---------------------------------------------------------------------------------------
// Running hod.

fn pull(ctx: &TestContext, src: &str) -> Run {
    let r = ctx.hod(["pull", "-q", src]);
    common::assert_no_panic(&r);
    r
}

/// A refused input: exit 125, one `Error:` line naming `what`, no image, the store
/// consistent (no incomplete layer, no layer directory without a record).
fn assert_rejected(ctx: &TestContext, r: Run, what: &str, case: &str) {
    if let Err(e) = r.check_one_error_naming(what) {
        panic!("case {case}: {e}");
    }
    assert_eq!(
        ctx.ok(["images", "-q"]),
        "",
        "case {case}: an image was stored"
    );
    common::assert_store_consistent(ctx);
}

fn assert_no_layers(ctx: &TestContext, case: &str) {
    let layers = ctx.root.join(format!("{}-layers/layers.json", ctx.driver));
    if let Ok(b) = fs::read(&layers) {
        if !b.is_empty() {
            let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
            assert!(
                v.as_array().is_none_or(|a| a.is_empty()),
                "case {case}: layers left: {v}"
            );
        }
    }
    let dir = match ctx.driver.as_str() {
        "vfs" => ctx.root.join("vfs/dir"),
        d => ctx.root.join(d),
    };
    if let Ok(rd) = fs::read_dir(&dir) {
        let left: Vec<_> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "l" && n != "tempdirs" && !n.starts_with('.'))
            .collect();
        assert!(
            left.is_empty(),
            "case {case}: layer directories left: {left:?}"
        );
    }
    // Nor any being deleted.
    let tempdirs = ctx.root.join(&ctx.driver).join("tempdirs");
    if let Ok(rd) = fs::read_dir(&tempdirs) {
        let left: Vec<_> = rd.flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "case {case}: left in tempdirs: {left:?}");
    }
}

/// Pull `src`, make a working container and return its mounted rootfs.
fn pull_and_mount(ctx: &TestContext, src: &str, case: &str) -> PathBuf {
    let r = pull(ctx, src);
    assert_eq!(r.code, Some(0), "case {case}:\n{}", r.dump());
    let id = r.out().lines().last().unwrap_or_default().to_string();
    let ctr = ctx.ok(["from", "-q", "--pull=never", &id]);
    PathBuf::from(ctx.ok(["mount", &ctr]))
}

/// Drops every image and container, so the next case starts empty.
fn reset(ctx: &TestContext) {
    ctx.ok(["rm", "-a"]);
    let ids = ctx.ok(["images", "-q"]);
    for id in ids.lines().filter(|l| !l.is_empty()) {
        ctx.ok(["rmi", "-f", id]);
    }
}

fn each_driver(test: &str, f: impl Fn(&TestContext)) {
    if !common::require(test, &[]) {
        return;
    }
    for d in common::DRIVERS {
        let ctx = TestContext::new(d);
        f(&ctx);
    }
}

/// The directories of `$HOST` as tar entries, so that links to it resolve inside the root
/// (`<root>$HOST`), plus an in-root look-alike of the canary.
fn mirror(mut t: Tar, host: &Host) -> Tar {
    let mut p = String::new();
    for c in host.abs().trim_start_matches('/').split('/') {
        p.push_str(c);
        p.push('/');
        t = t.e(dir(&p));
    }
    t.entry(file(format!("{p}canary")), b"in-root canary")
}

/// How a case must end.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    /// Exit 0 (every write stays inside the root).
    Contain,
    /// Exit 125 with one error line naming this.
    Reject(&'static str),
}

/// Pull each case's image (one layer per tar) on a fresh store state; check the outcome,
/// the host directory, `/` and that escaped names only appear inside the store.
fn run_cases(ctx: &TestContext, host: &Host, item: &str, cases: Vec<(&str, Vec<Vec<u8>>, Want)>) {
    let marker = "hodsec-";
    for (case, layers, want) in cases {
        let case = format!("{item}/{case} ({})", ctx.driver);
        let n_layers = layers.len();
        let src = oci_image(
            &ctx.path("img"),
            layers.into_iter().map(plain).collect(),
            serde_json::json!({}),
        );
        let r = pull(ctx, &src);
        match want {
            Want::Reject(what) => {
                assert_rejected(ctx, r, what, &case);
                if n_layers == 1 {
                    assert_no_layers(ctx, &case);
                }
            }
            Want::Contain => {
                assert_eq!(r.code, Some(0), "case {case}:\n{}", r.dump());
                common::assert_store_consistent(ctx);
            }
        }
        host.assert_intact(&case);
        for p in find_named(ctx.dir.path(), marker) {
            assert!(
                p.starts_with(&ctx.root),
                "case {case}: {} was written outside the store",
                p.display()
            );
        }
        assert_not_at_slash(&slash_name(item));
        reset(ctx);
    }
}

/// B01: names that leave the root lexically are refused and nothing is written.
#[test]
fn b01_lexical_escapes() {
    each_driver("b01_lexical_escapes", |ctx| {
        let host = Host::new(ctx);
        let one = |name: &[u8]| {
            vec![tar()
                .entry(file("hodsec-ok"), b"x")
                .entry(file(name), b"PWNED")
                .finish()]
        };
        let deep = format!("{}/hodsec-b01", host.rel());
        let bad = Want::Reject("invalid tar entry");
        let cases = vec![
            ("dotdot", one(b"../hodsec-b01"), bad),
            ("slash-dotdot", one(b"/../hodsec-b01"), bad),
            ("bare-dotdot", vec![tar().e(dir("..")).finish()], bad),
            ("inner-dotdot", one(b"a/../../hodsec-b01"), bad),
            ("dot-dotdot", one(b"./../hodsec-b01"), bad),
            ("deep", one(deep.as_bytes()), bad),
            (
                "nul-in-pax-path",
                vec![tar()
                    .pax(&[(b"path", b"hodsec-b01\0/../../x")])
                    .entry(file("placeholder"), b"x")
                    .finish()],
                bad,
            ),
            ("empty", one(b""), bad),
            (
                "pax-path-dotdot",
                vec![tar()
                    .pax(&[(b"path", b"../../hodsec-b01")])
                    .entry(file("placeholder"), b"x")
                    .finish()],
                bad,
            ),
            (
                "gnu-longname-dotdot",
                vec![tar()
                    .long_name(format!("{}/hodsec-b01", "../".repeat(40)).as_bytes())
                    .entry(file("placeholder"), b"x")
                    .finish()],
                bad,
            ),
        ];
        run_cases(ctx, &host, "b01", cases);
        // The same refusal through an oci-archive and a gzip-compressed layer.
        let src = oci_image(
            &ctx.path("img"),
            vec![gzipped(one(b"../hodsec-b01").remove(0))],
            serde_json::json!({}),
        );
        let archive = oci_archive(&ctx.path("img"));
        let docker = docker_archive(&ctx.path("docker.tar"), one(b"../hodsec-b01").remove(0));
        for s in [src, archive, docker] {
            let r = pull(ctx, &s);
            assert_rejected(ctx, r, "invalid tar entry", &s);
            assert_no_layers(ctx, &s);
        }
        host.assert_intact("b01 archives");
        // And from a registry on 127.0.0.1 (skopeo pushes the hostile layer as it is).
        if ctx.driver == "vfs" && common::have("skopeo") {
            let Some(reg) = TestRegistry::start(Mode::Plain) else {
                return;
            };
            let src = oci_image(
                &ctx.path("img"),
                vec![gzipped(one(b"../hodsec-b01").remove(0))],
                serde_json::json!({}),
            );
            let dest = format!("docker://{}/evil:b01", reg.host);
            common::run_cmd({
                let mut c = Command::new("skopeo");
                c.args(["copy", "--quiet", "--dest-tls-verify=false", &src, &dest]);
                c
            })
            .success();
            let r = ctx.hod(["pull", "-q", "--tls-verify=false", &dest]);
            assert_rejected(ctx, r, "invalid tar entry", &dest);
            assert_no_layers(ctx, &dest);
            host.assert_intact("b01 registry");
            eprintln!("b01: refused from {dest}");
        }
    });
}

/// A `docker-archive:` tarball holding one layer.
fn docker_archive(path: &Path, layer: Vec<u8>) -> String {
    let dir = path.with_extension("d");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let cfg = serde_json::to_vec(&serde_json::json!({
        "architecture": arch(),
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(&layer))]},
    }))
    .unwrap();
    let cfg_name = format!("{}.json", sha256_hex(&cfg));
    fs::write(dir.join(&cfg_name), &cfg).unwrap();
    fs::write(dir.join("layer.tar"), &layer).unwrap();
    fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec(&serde_json::json!([{
            "Config": cfg_name,
            "RepoTags": ["evil:latest"],
            "Layers": ["layer.tar"],
        }]))
        .unwrap(),
    )
    .unwrap();
    let st = Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .arg("-cf")
        .arg(path)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    format!("docker-archive:{}", path.display())
}

/// B02: writes through a planted absolute, relative or `/` link land inside the root; a
/// regular file replacing the link replaces the link itself.
#[test]
fn b02_write_through_planted_link() {
    each_driver("b02_write_through_planted_link", |ctx| {
        let host = Host::new(ctx);
        let at_slash = slash_name("b02");
        let links = |t: Tar| {
            t.e(sym("l_abs", host.abs()))
                .e(sym("l_rel", host.rel()))
                .e(sym("l_root", "/"))
        };
        let writes = |t: Tar| {
            t.entry(file("l_abs/hodsec-b02-abs"), b"PWNED")
                .entry(file("l_rel/hodsec-b02-rel"), b"PWNED")
                .entry(file("l_abs/canary"), b"PWNED")
                .entry(file(format!("l_root/{at_slash}")), b"PWNED")
        };
        let cases = vec![
            (
                "same-layer",
                vec![writes(links(mirror(tar(), &host))).finish()],
                Want::Contain,
            ),
            (
                "next-layer",
                vec![links(mirror(tar(), &host)).finish(), writes(tar()).finish()],
                Want::Contain,
            ),
            (
                // The link's target does not exist in the root: nothing to write into.
                "dangling",
                vec![tar()
                    .e(sym("l_abs", host.abs()))
                    .entry(file("l_abs/hodsec-b02-dangling"), b"PWNED")
                    .finish()],
                Want::Reject("l_abs"),
            ),
            (
                "file-replaces-link",
                vec![
                    tar()
                        .e(sym("canary", format!("{}/canary", host.abs())))
                        .finish(),
                    tar().entry(file("canary"), b"PWNED").finish(),
                ],
                Want::Contain,
            ),
        ];
        run_cases(ctx, &host, "b02", cases);
        // Where the writes went: inside the root, under the mirrored host path (vfs
        // follows the link in the layer below; overlay shadows it with a directory).
        let src = oci_image(
            &ctx.path("img"),
            vec![plain(writes(links(mirror(tar(), &host))).finish())],
            serde_json::json!({}),
        );
        let mnt = pull_and_mount(ctx, &src, "b02 check");
        let inside = mnt.join(host.abs().trim_start_matches('/'));
        assert_eq!(fs::read(inside.join("hodsec-b02-abs")).unwrap(), b"PWNED");
        assert_eq!(fs::read(inside.join("hodsec-b02-rel")).unwrap(), b"PWNED");
        assert_eq!(fs::read(inside.join("canary")).unwrap(), b"PWNED");
        assert_eq!(fs::read(mnt.join(&at_slash)).unwrap(), b"PWNED");
        host.assert_intact("b02 check");
        assert_not_at_slash(&at_slash);
        reset(ctx);
    });
}

/// B03: link chains, `..`-heavy relative links and links to prefix siblings of the store
/// (what a lexical `starts_with(root)` check lets through) stay inside.
#[test]
fn b03_link_chains_and_prefix_siblings() {
    each_driver("b03_link_chains_and_prefix_siblings", |ctx| {
        let host = Host::new(ctx);
        let sibling = PathBuf::from(format!("{}-sibling", ctx.root.display()));
        fs::create_dir_all(&sibling).unwrap();
        fs::write(sibling.join("canary"), CANARY).unwrap();
        let root_name = ctx.root.file_name().unwrap().to_string_lossy().into_owned();
        let cases = vec![
            (
                "chain",
                vec![mirror(tar(), &host)
                    .e(sym("a", "b"))
                    .e(sym("b", "c/d"))
                    .e(dir("c/"))
                    .e(sym("c/d", host.rel()))
                    .entry(file("a/hodsec-b03-chain"), b"PWNED")
                    .finish()],
                Want::Contain,
            ),
            (
                "dirsymlink-up",
                vec![tar()
                    .e(dir("x/"))
                    .e(sym("x/up", "../../../../.."))
                    .entry(file("x/up/hodsec-b03-up"), b"PWNED")
                    .finish()],
                Want::Contain,
            ),
            (
                "sibling-abs",
                vec![tar()
                    .e(sym("sib", sibling.display().to_string()))
                    .entry(file("sib/hodsec-b03-sib"), b"PWNED")
                    .entry(file("sib/canary"), b"PWNED")
                    .finish()],
                Want::Reject("sib"),
            ),
            (
                "sibling-rel",
                vec![tar()
                    .e(sym("sib", format!("../../../../{root_name}-sibling")))
                    .entry(file("sib/canary"), b"PWNED")
                    .finish()],
                Want::Reject("sib"),
            ),
            (
                // A directory replaced by a link in the next layer, written through in
                // the one after (one layer cannot name `d` twice: tar-split refuses it).
                "dir-swapped-for-link",
                vec![
                    mirror(tar(), &host)
                        .e(dir("d/"))
                        .entry(file("d/f"), b"x")
                        .finish(),
                    tar().e(sym("d", host.abs())).finish(),
                    tar()
                        .entry(file("d/hodsec-b03-swap"), b"PWNED")
                        .entry(file("d/canary"), b"PWNED")
                        .finish(),
                ],
                Want::Contain,
            ),
        ];
        run_cases(ctx, &host, "b03", cases);
        assert_eq!(fs::read(sibling.join("canary")).unwrap(), CANARY);
        assert_eq!(fs::read_dir(&sibling).unwrap().count(), 1);
        let _ = fs::remove_dir_all(&sibling);
    });
}

/// B04: hard links that leave the root, or to directories and symlinks, are refused; the
/// victim's link count is unchanged.
#[test]
fn b04_hardlink_escapes() {
    each_driver("b04_hardlink_escapes", |ctx| {
        let host = Host::new(ctx);
        let victim = format!("{}/victim", host.abs());
        let one = |t: Tar| vec![t.finish()];
        let cases = vec![
            (
                "dotdot",
                one(tar().e(hard("hodsec-h", "../victim"))),
                Want::Reject("invalid tar entry"),
            ),
            (
                "slash-dotdot",
                one(tar().e(hard("hodsec-h", "/../victim"))),
                Want::Reject("invalid tar entry"),
            ),
            (
                "deep-dotdot",
                one(tar().e(hard("hodsec-h", format!("{}/victim", host.rel())))),
                Want::Reject("invalid tar entry"),
            ),
            // Absolute: resolved in the root, where there is no such file.
            (
                "absolute-host-path",
                one(tar().e(hard("hodsec-h", &victim))),
                Want::Reject("resolving hard link target"),
            ),
            (
                "to-directory",
                one(tar().e(dir("d/")).e(hard("hodsec-h", "d"))),
                Want::Reject("hard link to a directory"),
            ),
            (
                "to-symlink",
                one(tar().e(sym("s", &victim)).e(hard("hodsec-h", "s"))),
                Want::Reject("hard link to a symbolic link"),
            ),
            (
                "through-symlinked-parent",
                one(tar()
                    .e(sym("s", host.abs()))
                    .e(hard("hodsec-h", "s/victim"))),
                Want::Reject("resolving hard link target"),
            ),
            (
                // moby TestUntarInvalidHardlink "loophole-victim".
                "loophole",
                one(tar()
                    .e(hard("loophole-victim", "../victim"))
                    .entry(file("loophole-victim/hodsec-x"), b"PWNED")),
                Want::Reject("invalid tar entry"),
            ),
            (
                // A link to a link in the root that itself points out.
                "loophole-symlink",
                one(tar()
                    .e(sym("symlink", &victim))
                    .e(hard("hodsec-h", "symlink"))
                    .entry(file("hodsec-h"), b"PWNED")),
                Want::Reject("hard link to a symbolic link"),
            ),
        ];
        run_cases(ctx, &host, "b04", cases);
        let md = fs::metadata(&victim).unwrap();
        assert_eq!(md.nlink(), 1);
    });
}

/// B05: the root itself (`.`, `./`, `/`) as a link or a file is refused.
#[test]
fn b05_root_replacement() {
    each_driver("b05_root_replacement", |ctx| {
        let host = Host::new(ctx);
        let want = Want::Reject("the root can only be a directory");
        let cases = vec![
            (
                "dot-symlink",
                vec![tar().e(sym(".", host.abs())).finish()],
                want,
            ),
            (
                "dotslash-symlink",
                vec![tar().e(sym("./", host.abs())).finish()],
                want,
            ),
            (
                "slash-symlink",
                vec![tar().e(sym("/", host.abs())).finish()],
                want,
            ),
            (
                "dot-file",
                vec![tar().entry(file("."), b"PWNED").finish()],
                want,
            ),
            (
                "slash-file",
                vec![tar().entry(file("/"), b"PWNED").finish()],
                want,
            ),
            (
                "dot-hardlink",
                vec![tar().entry(file("f"), b"x").e(hard(".", "f")).finish()],
                want,
            ),
            (
                "later-layer",
                vec![
                    tar().entry(file("f"), b"x").finish(),
                    tar().e(sym("./", host.abs())).finish(),
                ],
                want,
            ),
        ];
        run_cases(ctx, &host, "b05", cases);
    });
}

/// B06: no chmod, chown, utimes, setxattr or mkdir through links: the host directory's
/// modes, owners, times and xattrs stay as they were, and no directory appears there.
#[test]
fn b06_no_metadata_through_links() {
    each_driver("b06_no_metadata_through_links", |ctx| {
        let host = Host::new(ctx);
        let hostdir = format!("{}/dir", host.abs());
        let canary = format!("{}/canary", host.abs());
        let loud = |mut x: H| {
            x.mode = 0o7777;
            x.uid = 4242;
            x.gid = 4242;
            x.mtime = 5;
            x
        };
        let xattr: &[(&[u8], &[u8])] = &[(b"SCHILY.xattr.user.hodsec", b"1")];
        let cases = vec![
            (
                "dir-entry-over-link-next-layer",
                vec![
                    tar().e(sym("d", &hostdir)).e(sym("s", "..")).finish(),
                    tar()
                        .pax(xattr)
                        .e(loud(dir("d/")))
                        .e(loud(dir("s")))
                        .finish(),
                ],
                Want::Contain,
            ),
            (
                "file-through-dotdot-link",
                vec![tar()
                    .e(sym("s", "../../.."))
                    .entry(loud(file("s/hodsec-b06")), b"x")
                    .finish()],
                Want::Contain,
            ),
            (
                "mkdir-parents-through-link",
                vec![tar()
                    .e(sym("d", &hostdir))
                    .entry(file("d/hodsec-newdir/a/f"), b"x")
                    .finish()],
                Want::Reject("d/hodsec-newdir/a/f"),
            ),
            (
                "symlink-entry-metadata",
                vec![tar()
                    .e(loud(sym("c", &canary)))
                    .e(loud(sym("h", host.abs())))
                    .finish()],
                Want::Contain,
            ),
            (
                "hardlink-entry-metadata",
                vec![tar()
                    .e(sym("c", &canary))
                    .entry(file("f"), b"x")
                    .e(loud(hard("h", "f")))
                    .finish()],
                Want::Contain,
            ),
            (
                // The directory's deferred times must not land on what replaced it.
                "stale-dir-times",
                vec![
                    tar().e(loud(dir("x/"))).entry(file("x/f"), b"x").finish(),
                    tar().e(sym("x", &hostdir)).finish(),
                ],
                Want::Contain,
            ),
            (
                "whiteout-then-dir-through-link",
                vec![
                    tar().e(sym("d", &hostdir)).finish(),
                    tar().entry(file(".wh.d"), b"").e(loud(dir("d/"))).finish(),
                ],
                Want::Contain,
            ),
        ];
        run_cases(ctx, &host, "b06", cases);
        // Where the `d/` entry's metadata went: a directory inside the root.
        let src = oci_image(
            &ctx.path("img"),
            vec![
                plain(tar().e(sym("d", &hostdir)).finish()),
                plain(tar().pax(xattr).e(loud(dir("d/"))).finish()),
            ],
            serde_json::json!({}),
        );
        let mnt = pull_and_mount(ctx, &src, "b06 check");
        let md = fs::symlink_metadata(mnt.join("d")).unwrap();
        assert!(md.is_dir());
        assert_eq!(
            (md.mode() & 0o7777, md.uid(), md.mtime()),
            (0o7777, 4242, 5)
        );
        host.assert_intact("b06 check");
        reset(ctx);
    });
}

/// B07: whiteouts and opaque markers under symlinked parents, and under a directory a
/// later layer replaced by a link, delete only inside the root.
#[test]
fn b07_whiteouts_and_stale_dir_cache() {
    each_driver("b07_whiteouts_and_stale_dir_cache", |ctx| {
        let host = Host::new(ctx);
        let wh = |name: &str| file(name);
        let links = || {
            mirror(tar(), &host)
                .e(sym("l", host.abs()))
                .e(sym("r", host.rel()))
                .e(sym("up", "../../.."))
        };
        let cases = vec![
            (
                "whiteouts-under-links",
                vec![
                    links().finish(),
                    tar()
                        .entry(wh("l/.wh.canary"), b"")
                        .entry(wh("r/.wh.victim"), b"")
                        .entry(wh("up/.wh.var"), b"")
                        .finish(),
                ],
                Want::Contain,
            ),
            (
                "opaque-under-links",
                vec![
                    links().finish(),
                    tar()
                        .entry(wh("l/.wh..wh..opq"), b"")
                        .entry(wh("r/.wh..wh..opq"), b"")
                        .finish(),
                ],
                Want::Contain,
            ),
            (
                "dir-replaced-by-link",
                vec![
                    mirror(tar(), &host)
                        .e(dir("d/"))
                        .entry(file("d/f"), b"x")
                        .finish(),
                    tar().e(sym("d", host.abs())).finish(),
                    tar()
                        .entry(wh("d/.wh.canary"), b"")
                        .entry(wh("d/.wh..wh..opq"), b"")
                        .finish(),
                ],
                Want::Contain,
            ),
            (
                "same-layer",
                vec![links()
                    .entry(wh("l/.wh.canary"), b"")
                    .entry(wh("r/.wh..wh..opq"), b"")
                    .finish()],
                Want::Contain,
            ),
            (
                "whiteout-of-dotdot",
                vec![tar().entry(wh(".wh.."), b"").finish()],
                Want::Reject("invalid whiteout name"),
            ),
        ];
        run_cases(ctx, &host, "b07", cases);
        if ctx.driver == "vfs" {
            // The deletions happened, inside the root.
            let src = oci_image(
                &ctx.path("img"),
                vec![
                    plain(links().finish()),
                    plain(tar().entry(wh("l/.wh.canary"), b"").finish()),
                ],
                serde_json::json!({}),
            );
            let mnt = pull_and_mount(ctx, &src, "b07 check");
            let inside = mnt.join(host.abs().trim_start_matches('/'));
            assert!(inside.is_dir() && !inside.join("canary").exists());
            host.assert_intact("b07 check");
            reset(ctx);
        }
    });
}

/// `security.capability` v2 for `cap_net_raw+ep` (what `setcap` writes on ping).
const CAP_NET_RAW_EP: &[u8] = &[
    0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// The B08 corpus: what real images hold and an over-strict fix would break.
fn corpus() -> Vec<u8> {
    let mut su = file("bin/su");
    su.mode = 0o4755;
    let mut sgid = dir("var/mail/");
    sgid.mode = 0o2775;
    sgid.gid = 8;
    let mut user = file("home/u/.profile");
    user.uid = 1000;
    user.gid = 1000;
    let mut null = h("dev/null", b'3');
    null.dev = (1, 3);
    null.mode = 0o666;
    let mut sticky = dir("tmp/");
    sticky.mode = 0o1777;
    let long = format!("usr/share/{}/file", "long-component-".repeat(8));
    tar()
        .e(dir("usr/"))
        .e(dir("usr/lib/"))
        .e(dir("bin/"))
        .e(dir("etc/"))
        .e(dir("dev/"))
        .e(dir("home/"))
        .e(dir("home/u/"))
        .e(sticky)
        .e(dir("var/"))
        .e(sgid)
        // Absolute symlinks traversed inside the root, as /lib -> /usr/lib.
        .e(sym("lib", "/usr/lib"))
        .entry(file("lib/libhod.so.1"), b"\x7fELF library")
        .entry(su, b"setuid binary")
        // An absolute hard link, and one through the absolute symlink.
        .e(H {
            mode: 0o4755,
            ..hard("bin/su-again", "/bin/su")
        })
        .e(hard("bin/lib-again", "/lib/libhod.so.1"))
        .pax(&[(b"SCHILY.xattr.security.capability", CAP_NET_RAW_EP)])
        .entry(file("bin/ping"), b"ping binary")
        // `..` overflow and self-loops are kept as links.
        .e(sym("etc/up", "../../../../../../../etc"))
        .e(sym("etc/loop", "loop"))
        .e(sym("etc/dangling", "/nonexistent/x"))
        // Implied parents.
        .entry(file("opt/a/b/implied"), b"implied parents")
        .entry(user, b"export PS1")
        .e(null)
        .e(h("dev/fifo", b'6'))
        .pax(&[(b"mtime", b"1600000000.123456789")])
        .entry(file("etc/nanos"), b"sub-second mtime")
        .entry(file(long.as_bytes()), b"long name")
        .finish()
}

/// B08: the corpus survives a pull byte for byte: the tree matches what containers/storage
/// (skopeo) extracts, and pushing it back gives the very same layer tar.
#[test]
fn b08_no_loss_corpus() {
    if !common::require("b08_no_loss_corpus", &["skopeo"]) {
        return;
    }
    b08_upgrade_layer();
    let layer = corpus();
    let diff = sha256_hex(&layer);
    for d in common::DRIVERS {
        let ctx = TestContext::new(d);
        let src = oci_image(
            &ctx.path("img"),
            vec![plain(layer.clone())],
            serde_json::json!({}),
        );
        let mnt = pull_and_mount(&ctx, &src, "b08");
        // The reference: containers/storage's extraction of the same layer.
        let reference = TestContext::new("vfs");
        let r = common::run_cmd({
            let mut c = Command::new("skopeo");
            c.args(["copy", "--quiet", &src])
                .arg(format!("containers-storage:{}b08", reference.store_spec()));
            c
        });
        assert_eq!(r.code, Some(0), "{}", r.dump());
        let theirs = snapshot(&reference.root.join("vfs/dir").join(&diff));
        let mut ours = snapshot(&mnt);
        // Implied parents and the root get the extraction time; containers/storage's too.
        let mut theirs = theirs;
        for t in [&mut ours, &mut theirs] {
            let long_dir = format!("usr/share/{}", "long-component-".repeat(8));
            for k in ["", "opt", "opt/a", "opt/a/b", "usr/share", &long_dir] {
                let v = t.get_mut(k).unwrap_or_else(|| panic!("{k:?} missing"));
                *v = v.split(" mtime=").next().unwrap().to_string();
            }
        }
        assert!(
            ours == theirs,
            "{d}: the corpus differs from containers/storage's extraction\nours: {ours:#?}\ntheirs: {theirs:#?}"
        );
        // Pushed back uncompressed: the identical tar.
        let out = ctx.path("out");
        ctx.ok([
            "push",
            "-q",
            "--disable-compression",
            &ctx.ok(["images", "-q"]),
            &format!("oci:{}:back", out.display()),
        ]);
        assert!(
            out.join("blobs/sha256").join(&diff).is_file(),
            "{d}: the pushed layer is not the pulled one byte for byte"
        );
        // The store keeps layers private (CVE-2021-41091).
        let layer_parent = match *d {
            "vfs" => ctx.root.join("vfs/dir"),
            _ => ctx.root.join("overlay"),
        };
        let mode = fs::metadata(&layer_parent).unwrap().mode() & 0o777;
        assert_eq!(
            mode & 0o077,
            0,
            "{d}: {} is {mode:o}",
            layer_parent.display()
        );
    }
}

/// The names, types and contents of a tree (no times or modes): the entry list.
fn entry_list(dir: &Path) -> BTreeMap<String, String> {
    snapshot(dir)
        .into_iter()
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| {
            let ty = v.split_whitespace().next().unwrap_or("").to_string();
            let content = v.split_whitespace().nth(8).unwrap_or("").to_string();
            (k, format!("{} {content}", &ty[..ty.len().min(7)]))
        })
        .collect()
}

/// B09: parser differentials. Each layer either yields exactly the entry list Go's
/// `archive/tar` yields (containers/storage through skopeo is the oracle), or is refused.
#[test]
fn b09_parser_differentials() {
    if !common::require("b09_parser_differentials", &["skopeo"]) {
        return;
    }
    // TARmageddon: the PAX size says 0, the header's size covers a smuggled inner entry.
    let inner = tar().entry(file("hodsec-smuggled"), b"SMUGGLED").out;
    let mut outer = file("hodsec-outer");
    outer.size = Some(inner.len() as u64);
    let tarmageddon = tar()
        .pax(&[(b"size", b"0")])
        .entry(outer.clone(), &inner)
        .finish();
    // The opposite: the PAX size is larger than the header's.
    let mut small = file("hodsec-outer");
    small.size = Some(0);
    let pax_larger = tar()
        .pax(&[(b"size", format!("{}", inner.len()).as_bytes())])
        .entry(small, &inner)
        .finish();
    let raw_pax = |data: &[u8]| {
        tar()
            .entry(h("PaxHeaders/x", b'x'), data)
            .entry(file("hodsec-after-bad-pax"), b"x")
            .finish()
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("tarmageddon", tarmageddon),
        ("pax-size-larger", pax_larger),
        (
            "x-then-L-then-file",
            tar()
                .pax(&[(b"path", b"hodsec-from-pax")])
                .long_name(b"hodsec-from-gnu")
                .entry(file("hodsec-from-header"), b"x")
                .finish(),
        ),
        (
            "L-then-x-then-file",
            tar()
                .long_name(b"hodsec-from-gnu")
                .pax(&[(b"path", b"hodsec-from-pax")])
                .entry(file("hodsec-from-header"), b"x")
                .finish(),
        ),
        (
            "two-pax-headers",
            tar()
                .pax(&[(b"path", b"hodsec-first")])
                .pax(&[(b"linkpath", b"x")])
                .entry(file("hodsec-from-header"), b"x")
                .finish(),
        ),
        ("pax-length-too-long", raw_pax(b"99 path=hodsec-x\n")),
        ("pax-length-not-a-number", raw_pax(b"1x path=hodsec-x\n")),
        ("pax-no-equals", raw_pax(b"15 pathhodsecx\n")),
        ("pax-size-negative", raw_pax(&pax_record(b"size", b"-1"))),
        (
            "pax-size-not-a-number",
            raw_pax(&pax_record(b"size", b"12abc")),
        ),
        (
            "pax-uid-huge",
            raw_pax(&pax_record(b"uid", b"99999999999999999999")),
        ),
        (
            "pax-path-empty",
            tar()
                .pax(&[(b"path", b"")])
                .entry(file("hodsec-from-header"), b"x")
                .finish(),
        ),
        (
            "gnu-longlink-dotdot",
            tar()
                .entry(file("f"), b"x")
                .entry(h("././@LongLink", b'K'), b"../../../victim\0")
                .e(hard("hodsec-h", "f"))
                .finish(),
        ),
    ];
    let mut report = Vec::new();
    for (case, layer) in cases {
        let diff = sha256_hex(&layer);
        let ctx = TestContext::new("vfs");
        let src = oci_image(&ctx.path("img"), vec![plain(layer)], serde_json::json!({}));
        let ours = pull(&ctx, &src);
        let reference = TestContext::new("vfs");
        let theirs = common::run_cmd({
            let mut c = Command::new("skopeo");
            c.args(["copy", "--quiet", &src])
                .arg(format!("containers-storage:{}b09", reference.store_spec()));
            c
        });
        match ours.code {
            Some(0) => {
                assert_eq!(
                    theirs.code,
                    Some(0),
                    "{case}: hod accepted a layer Go's archive/tar refuses\n{}",
                    theirs.dump()
                );
                let a = entry_list(&ctx.root.join("vfs/dir").join(&diff));
                let b = entry_list(&reference.root.join("vfs/dir").join(&diff));
                assert!(
                    a == b,
                    "{case}: entry lists differ\nhod: {a:#?}\ngo: {b:#?}"
                );
                report.push(format!("{case}: same entries as Go"));
            }
            _ => {
                let line = ours.stderr.trim().to_string();
                report.push(line);
                assert_rejected(&ctx, ours, "", case);
                assert_no_layers(&ctx, case);
                report.push(format!("{case}: rejected (Go: exit {:?})", theirs.code));
            }
        }
        assert!(
            find_named(ctx.dir.path(), "hodsec-")
                .iter()
                .all(|p| p.starts_with(&ctx.root)),
            "{case}: written outside the store"
        );
    }
    eprintln!("b09:\n  {}", report.join("\n  "));
}

/// Runs hod under `/usr/bin/time`: the result, the peak RSS in MiB and the wall time.
fn timed(ctx: &TestContext, args: &[&str]) -> (Run, u64, f64) {
    let out = ctx.path("time.out");
    let mut c = Command::new("/usr/bin/time");
    c.args(["-f", "%M %e", "-o"])
        .arg(&out)
        .arg(&ctx.bin)
        .args(ctx.global_args())
        .args(args);
    let r = common::run_cmd(c);
    let t = fs::read_to_string(&out).unwrap();
    let last = t.lines().last().unwrap_or_default().to_string();
    let mut it = last.split_whitespace();
    let kib: u64 = it.next().and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
    let secs: f64 = it.next().and_then(|v| v.parse().ok()).unwrap_or(f64::MAX);
    (r, kib / 1024, secs)
}

/// A hostile layer whose pull must fail fast and small: one error line, no layer left,
/// peak RSS under 256 MiB, an answer within 10 s.
fn assert_bounded_rejection(item: &str, case: &str, layers: Vec<Blob>, what: &str) -> String {
    let ctx = TestContext::new("vfs");
    let src = oci_image(&ctx.path("img"), layers, serde_json::json!({}));
    let (r, mib, secs) = timed(&ctx, &["pull", "-q", &src]);
    common::assert_no_panic(&r);
    let case = format!("{item}/{case}");
    assert_rejected(&ctx, r, what, &case);
    assert_no_layers(&ctx, &case);
    assert!(mib < 256, "{case}: peak RSS {mib} MiB");
    assert!(secs < 10.0, "{case}: took {secs} s");
    format!("{case}: rejected, peak RSS {mib} MiB, {secs:.2} s")
}

/// A gzip layer from `tar`, with a made-up diff ID (the real one is never reached).
fn gz_blob(bytes: Vec<u8>) -> Blob {
    Blob {
        bytes,
        media: "application/vnd.oci.image.layer.v1.tar+gzip",
        diff_id: format!("sha256:{}", sha256_hex(b"never reached")),
        size: None,
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// B10: oversized PAX records, GNU long names and sparse maps (both formats) are refused
/// with bounded memory.
#[test]
fn b10_header_limits() {
    if !common::require("b10_header_limits", &[]) {
        return;
    }
    let mut report = Vec::new();
    let big = vec![b'a'; 100 << 20];
    let pax100 = tar()
        .pax(&[(b"SCHILY.xattr.user.big", &big)])
        .entry(file("f"), b"x")
        .finish();
    report.push(assert_bounded_rejection(
        "b10",
        "100MiB-pax-record",
        vec![gz_blob(gzip(&pax100))],
        "too large",
    ));
    // The same record in an archive ADD extracts, and in a stdin build context.
    let ctx = TestContext::new("vfs");
    let archive = ctx.path("big-pax.tar.gz");
    fs::write(&archive, gzip(&pax100)).unwrap();
    drop(pax100);
    let ctr = ctx.ok(["from", "-q", "scratch"]);
    let (r, mib, secs) = timed(&ctx, &["add", &ctr, archive.to_str().unwrap(), "/"]);
    r.one_error_naming("too large");
    assert!(mib < 256 && secs < 10.0, "add: {mib} MiB, {secs} s");
    report.push(format!(
        "b10/add-100MiB-pax-record: rejected, peak RSS {mib} MiB, {secs:.2} s"
    ));
    let mut long = vec![b'n'; 10 << 20];
    long.push(0);
    let gnu10 = tar()
        .entry(h("././@LongLink", b'L'), &long)
        .entry(file("f"), b"x")
        .finish();
    report.push(assert_bounded_rejection(
        "b10",
        "10MiB-gnu-long-name",
        vec![gz_blob(gzip(&gnu10))],
        "too large",
    ));
    drop(gnu10);
    // Old GNU sparse: a 'S' header with 200,000 extension blocks of 21 entries (~100 MiB).
    let mut t = Vec::new();
    let mut b = [0u8; 512];
    b[..8].copy_from_slice(b"sparse-f");
    octal(&mut b[100..108], 0o644);
    octal(&mut b[108..116], 0);
    octal(&mut b[116..124], 0);
    octal(&mut b[124..136], 0);
    octal(&mut b[136..148], 0);
    b[156] = b'S';
    b[257..265].copy_from_slice(b"ustar  \0");
    b[482] = 1; // isextended
    octal(&mut b[483..495], 1 << 32);
    b[148..156].fill(b' ');
    let sum: u64 = b.iter().map(|x| u64::from(*x)).sum();
    b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    t.extend_from_slice(&b);
    let mut ext = [0u8; 512];
    for i in 0..21 {
        octal(&mut ext[i * 24..i * 24 + 12], (i as u64) << 20);
        octal(&mut ext[i * 24 + 12..i * 24 + 24], 1);
    }
    ext[504] = 1;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&t).unwrap();
    for _ in 0..200_000 {
        e.write_all(&ext).unwrap();
    }
    e.write_all(&[0u8; 1024]).unwrap();
    report.push(assert_bounded_rejection(
        "b10",
        "gnu-sparse-map",
        vec![gz_blob(e.finish().unwrap())],
        "",
    ));
    // PAX sparse 0.1 with a 100 MiB map, and 1.0 whose map would be in the data.
    let mut map = b"0,1".repeat(1 << 24);
    map.truncate(100 << 20);
    let pax_sparse = tar()
        .pax(&[
            (b"GNU.sparse.numblocks", b"33554432"),
            (b"GNU.sparse.map", &map),
        ])
        .entry(file("f"), b"x")
        .finish();
    report.push(assert_bounded_rejection(
        "b10",
        "pax-sparse-0.1-map",
        vec![gz_blob(gzip(&pax_sparse))],
        "",
    ));
    drop(pax_sparse);
    let mut data = b"99999999999999\n".to_vec();
    data.resize(1 << 20, b'9');
    let pax_sparse1 = tar()
        .pax(&[
            (b"GNU.sparse.major", b"1"),
            (b"GNU.sparse.minor", b"0"),
            (b"GNU.sparse.name", b"f"),
            (b"GNU.sparse.realsize", b"1099511627776"),
        ])
        .entry(file("GNUSparseFile.0/f"), &data)
        .finish();
    report.push(assert_bounded_rejection(
        "b10",
        "pax-sparse-1.0",
        vec![gz_blob(gzip(&pax_sparse1))],
        "sparse",
    ));
    eprintln!("{}", report.join("\n"));
}

/// A zstd frame of `n` × 128 KiB zeros, written as RLE blocks (4 bytes each).
fn zstd_zeros(n: usize) -> Vec<u8> {
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd];
    out.push(0x00); // frame header: no size, no checksum, not single-segment
    out.push(7 << 3); // window 128 KiB
    for i in 0..n {
        let last = u32::from(i + 1 == n);
        let hdr = last | (1 << 1) | ((128u32 << 10) << 3);
        out.extend_from_slice(&hdr.to_le_bytes()[..3]);
        out.push(0);
    }
    out
}

/// B11: decompression bombs and broken streams: error within 10 s, under 256 MiB, no
/// partial layer.
#[test]
fn b11_bombs_and_broken_streams() {
    if !common::require("b11_bombs_and_broken_streams", &[]) {
        return;
    }
    let mut report = Vec::new();
    // 10 GiB of zeros: 160 gzip members of 64 MiB each (~10 MB), and one zstd frame.
    let member = gzip(&vec![0u8; 64 << 20]);
    let bomb = member.repeat(160);
    drop(member);
    report.push(assert_bounded_rejection(
        "b11",
        "gzip-10GiB-zeros",
        vec![gz_blob(bomb)],
        "",
    ));
    let zbomb = zstd_zeros(80 * 1024);
    report.push(assert_bounded_rejection(
        "b11",
        "zstd-10GiB-zeros",
        vec![Blob {
            bytes: zbomb,
            media: "application/vnd.oci.image.layer.v1.tar+zstd",
            diff_id: format!("sha256:{}", sha256_hex(b"never reached")),
            size: None,
        }],
        "after the end of the archive",
    ));
    // The same bomb behind a valid entry.
    let mut valid = tar().entry(file("f"), b"x").finish();
    valid.resize(valid.len() + (64 << 20), 0);
    let member = gzip(&valid);
    let mut bomb = member.clone();
    bomb.extend(gzip(&vec![0u8; 64 << 20]).repeat(159));
    report.push(assert_bounded_rejection(
        "b11",
        "gzip-bomb-after-entry",
        vec![gz_blob(bomb)],
        "",
    ));

    let good = tar()
        .entry(file("f"), &[7u8; 3000])
        .entry(file("g"), b"x")
        .finish();
    let mut longer = plain(good.clone());
    longer.size = Some(good.len() as i64 - 512);
    report.push(assert_bounded_rejection(
        "b11",
        "blob-longer-than-descriptor",
        vec![longer],
        "",
    ));
    let mut shorter = plain(good.clone());
    shorter.size = Some(good.len() as i64 + 512);
    report.push(assert_bounded_rejection(
        "b11",
        "blob-shorter-than-descriptor",
        vec![shorter],
        "",
    ));
    let mut wrong_diff = plain(good.clone());
    wrong_diff.diff_id = format!("sha256:{}", sha256_hex(b"other"));
    report.push(assert_bounded_rejection(
        "b11",
        "diff-id-mismatch",
        vec![wrong_diff],
        "",
    ));
    for cut in [100, 512, 1500, 3600] {
        let mut t = plain(good[..cut].to_vec());
        t.diff_id = format!("sha256:{}", sha256_hex(&good));
        report.push(assert_bounded_rejection(
            "b11",
            &format!("truncated-at-{cut}"),
            vec![t],
            "",
        ));
    }
    let z = gzip(&good);
    report.push(assert_bounded_rejection(
        "b11",
        "truncated-gzip",
        vec![gz_blob(z[..z.len() / 2].to_vec())],
        "",
    ));
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    report.push(assert_bounded_rejection(
        "b11",
        "garbage",
        vec![plain(garbage)],
        "",
    ));
    eprintln!("{}", report.join("\n"));
}

// ---------------------------------------------------------------------------------------
// Contexts and sources.

/// A small HTTP/1.1 file server on 127.0.0.1 (a free port), for remote contexts, git's
/// dumb protocol and ADD URLs; `extra` answers chosen paths with extra header lines.
struct Http {
    addr: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

type Route = (String, String, Vec<u8>);

impl Http {
    fn start(root: PathBuf, extra: Vec<Route>) -> Http {
        use std::io::{BufRead, BufReader};
        use std::sync::atomic::Ordering;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let st = stop.clone();
        let handle = std::thread::spawn(move || {
            for s in l.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut s) = s else { continue };
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut hl = String::new();
                    if r.read_line(&mut hl).is_err() || hl.trim().is_empty() {
                        break;
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let path = path.split('?').next().unwrap_or("").to_string();
                let (status, headers, body) = match extra.iter().find(|(p, _, _)| *p == path) {
                    Some((_, h, b)) => ("200 OK", h.clone(), b.clone()),
                    None => match fs::read(root.join(path.trim_start_matches('/'))) {
                        Ok(b) => ("200 OK", String::new(), b),
                        Err(_) => ("404 Not Found", String::new(), b"not found".to_vec()),
                    },
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
                    body.len()
                );
                let _ = s.write_all(&body);
            }
        });
        Http {
            addr,
            stop,
            handle: Some(handle),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(&self.addr);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Runs hod with `stdin` as its standard input.
fn hod_stdin(ctx: &TestContext, args: &[&str], stdin: &[u8]) -> Run {
    let f = ctx.path("stdin.bin");
    fs::write(&f, stdin).unwrap();
    let mut c = ctx.cmd(args);
    let cmdline = format!("{c:?} < stdin");
    let o = c.stdin(fs::File::open(&f).unwrap()).output().unwrap();
    let r = Run {
        cmdline,
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    common::assert_no_panic(&r);
    r
}

/// Pushes `image` uncompressed to an OCI layout and returns every blob's bytes.
fn pushed_blobs(ctx: &TestContext, image: &str) -> Vec<Vec<u8>> {
    let out = ctx.path("pushed");
    let _ = fs::remove_dir_all(&out);
    ctx.ok([
        "push",
        "-q",
        "--disable-compression",
        image,
        &format!("oci:{}:x", out.display()),
    ]);
    fs::read_dir(out.join("blobs/sha256"))
        .unwrap()
        .map(|e| fs::read(e.unwrap().path()).unwrap())
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A working container of `image` mounted (vfs: a plain directory).
fn mount_image(ctx: &TestContext, image: &str) -> PathBuf {
    let ctr = ctx.ok(["from", "-q", "--pull=never", image]);
    PathBuf::from(ctx.ok(["mount", &ctr]))
}

/// C12: symlinks in the context pointing out of it are copied as links or refused; no
/// canary byte reaches any layer.
#[test]
fn c12_context_symlinks() {
    if !common::require("c12_context_symlinks", &[]) {
        return;
    }
    let ctx = TestContext::new("vfs");
    let host = Host::new(&ctx);
    let c = ctx.path("context");
    fs::create_dir_all(c.join("sub")).unwrap();
    fs::create_dir_all(c.join("dir")).unwrap();
    fs::write(c.join("keep"), b"ok").unwrap();
    fs::write(c.join("dir/f"), b"ok").unwrap();
    let canary = format!("{}/canary", host.abs());
    std::os::unix::fs::symlink(&canary, c.join("leak")).unwrap();
    std::os::unix::fs::symlink(format!("{}/canary", host.rel()), c.join("leakrel")).unwrap();
    std::os::unix::fs::symlink("../../..", c.join("sub/bar")).unwrap();
    std::os::unix::fs::symlink("/", c.join("rootlink")).unwrap();
    std::os::unix::fs::symlink(&canary, c.join("dir/inner")).unwrap();
    std::os::unix::fs::symlink(host.abs(), c.join("dir/hostdir")).unwrap();
    let cases: &[(&str, &str)] = &[
        ("copy-dot", "COPY . /all/"),
        ("copy-leak", "COPY leak /leak"),
        ("copy-leakrel", "COPY leakrel /leakrel"),
        ("add-dir", "ADD dir/ /dir/"),
        ("copy-dotdot-link", "COPY sub/bar/ /bar/"),
        (
            "copy-through-root-link",
            &format!("COPY rootlink{canary} /c"),
        ),
        ("copy-through-dir-link", "COPY dir/hostdir/canary /c"),
        ("copy-glob", "COPY lea* /g/"),
        ("add-leak", "ADD leak /leak"),
    ];
    let cf = ctx.path("Containerfile");
    let mut report = Vec::new();
    for (i, (case, line)) in cases.iter().enumerate() {
        fs::write(&cf, format!("FROM scratch\n{line}\n")).unwrap();
        let tag = format!("c12-{i}");
        let r = ctx.hod([
            "bud",
            "-q",
            "-t",
            &tag,
            "-f",
            cf.to_str().unwrap(),
            c.to_str().unwrap(),
        ]);
        common::assert_no_panic(&r);
        if r.code == Some(0) {
            for b in pushed_blobs(&ctx, &tag) {
                assert!(
                    !contains(&b, CANARY),
                    "{case}: host canary bytes in a layer"
                );
            }
            report.push(format!("{case}: built, no canary byte in any layer"));
        } else {
            r.check_one_error_naming("")
                .unwrap_or_else(|e| panic!("{case}: {e}"));
            report.push(format!("{case}: {}", r.stderr.trim()));
        }
        host.assert_intact(case);
    }
    // Links are kept as links.
    let mnt = mount_image(&ctx, "c12-0");
    assert_eq!(
        fs::read_link(mnt.join("all/leak")).unwrap(),
        PathBuf::from(&canary)
    );
    assert_eq!(
        fs::read_link(mnt.join("all/dir/inner")).unwrap(),
        PathBuf::from(&canary)
    );
    eprintln!("c12:\n  {}", report.join("\n  "));
}

/// C13: a Containerfile, `.containerignore`, `.dockerignore` or `<file>.dockerignore` that
/// links out of the context is absent: never read.
#[test]
fn c13_symlinked_build_files() {
    if !common::require("c13_symlinked_build_files", &[]) {
        return;
    }
    let ctx = TestContext::new("vfs");
    let host = Host::new(&ctx);
    // Host files an escaping link would read: a Containerfile that labels the image, and
    // an ignore file that drops `keep` from the context.
    let evil_cf = ctx.path("evil-containerfile");
    fs::write(&evil_cf, "FROM scratch\nLABEL leaked=yes\n").unwrap();
    let evil_ignore = ctx.path("evil-ignore");
    fs::write(&evil_ignore, "keep\n").unwrap();
    let rel = |p: &Path| {
        format!(
            "{}{}",
            "../".repeat(24),
            p.display().to_string().trim_start_matches('/')
        )
    };
    let new_context = |name: &str| {
        let c = ctx.path(name);
        fs::create_dir_all(&c).unwrap();
        fs::write(c.join("keep"), b"ok").unwrap();
        c
    };
    for (case, link, target) in [
        (
            "containerfile-abs",
            "Containerfile",
            evil_cf.display().to_string(),
        ),
        ("containerfile-rel", "Containerfile", rel(&evil_cf)),
        (
            "dockerfile-abs",
            "Dockerfile",
            evil_cf.display().to_string(),
        ),
    ] {
        let c = new_context(case);
        std::os::unix::fs::symlink(&target, c.join(link)).unwrap();
        let r = ctx.hod(["bud", "-q", "-t", case, c.to_str().unwrap()]);
        common::assert_no_panic(&r);
        r.one_error_naming("no Containerfile or Dockerfile");
        assert_eq!(ctx.ok(["images", "-q"]), "", "{case}");
    }
    for (case, link) in [
        ("containerignore", ".containerignore"),
        ("dockerignore", ".dockerignore"),
        ("per-file-dockerignore", "Containerfile.dockerignore"),
        ("per-file-containerignore", "Containerfile.containerignore"),
    ] {
        for (how, target) in [
            ("abs", evil_ignore.display().to_string()),
            ("rel", rel(&evil_ignore)),
        ] {
            let c = new_context(&format!("{case}-{how}"));
            fs::write(c.join("Containerfile"), "FROM scratch\nCOPY . /all/\n").unwrap();
            std::os::unix::fs::symlink(&target, c.join(link)).unwrap();
            let tag = format!("{case}-{how}");
            let r = ctx.hod(["bud", "-q", "-t", &tag, c.to_str().unwrap()]);
            common::assert_no_panic(&r);
            assert_eq!(r.code, Some(0), "{tag}:\n{}", r.dump());
            let mnt = mount_image(&ctx, &tag);
            assert!(
                mnt.join("all/keep").is_file(),
                "{tag}: the host ignore file was read through {link}"
            );
        }
    }
    // A Containerfile linked inside the context still works.
    let c = new_context("inside");
    fs::create_dir_all(c.join("build")).unwrap();
    fs::write(
        c.join("build/Containerfile"),
        "FROM scratch\nCOPY keep /keep\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("build/Containerfile", c.join("Containerfile")).unwrap();
    ctx.ok(["bud", "-q", "-t", "inside", c.to_str().unwrap()]);
    host.assert_intact("c13");
}

/// C14: stdin and http contexts are extracted entry by entry inside a fresh directory:
/// `../` entries are refused, a Containerfile linking out is absent, links stay inside.
#[test]
fn c14_remote_and_stdin_contexts() {
    if !common::require("c14_remote_and_stdin_contexts", &[]) {
        return;
    }
    let ctx = TestContext::new("vfs");
    let host = Host::new(&ctx);
    let evil_cf = ctx.path("evil-containerfile");
    fs::write(&evil_cf, "FROM scratch\nLABEL leaked=yes\n").unwrap();
    let cf = |t: Tar| t.entry(file("Dockerfile"), b"FROM scratch\nCOPY . /c/\n");
    let mut garbage_after = tar()
        .e(sym("Dockerfile", evil_cf.display().to_string()))
        .finish();
    garbage_after.extend_from_slice(&[0x5a; 3000]);
    let cases: Vec<(&str, Vec<u8>, Want)> = vec![
        (
            "dockerfile-link-and-garbage",
            garbage_after,
            Want::Reject("no Containerfile or Dockerfile"),
        ),
        (
            "dotdot-entry",
            cf(tar()).entry(file("../hodsec-c14"), b"PWNED").finish(),
            Want::Reject("leaves the destination"),
        ),
        (
            "deep-dotdot-entry",
            cf(tar())
                .entry(file(format!("{}/hodsec-c14", host.rel())), b"PWNED")
                .finish(),
            Want::Reject("leaves the destination"),
        ),
        (
            "write-through-link",
            cf(tar())
                .e(sym("l", host.abs()))
                .entry(file("l/hodsec-c14"), b"PWNED")
                .entry(file("l/canary"), b"PWNED")
                .finish(),
            Want::Contain,
        ),
        (
            "write-through-dotdot-link",
            cf(tar())
                .e(sym("up", "../../../../../.."))
                .entry(file("up/hodsec-c14"), b"PWNED")
                .finish(),
            Want::Contain,
        ),
    ];
    let served = ctx.path("served");
    fs::create_dir_all(&served).unwrap();
    let http = Http::start(served.clone(), Vec::new());
    for (case, t, want) in cases {
        fs::write(served.join("ctx.tar"), &t).unwrap();
        let url = http.url("/ctx.tar");
        for how in ["stdin", "http"] {
            let r = match how {
                "stdin" => hod_stdin(&ctx, &["bud", "-q", "-t", "c14", "-"], &t),
                _ => ctx.hod(["bud", "-q", "-t", "c14", &url]),
            };
            let case = format!("{case} ({how})");
            common::assert_no_panic(&r);
            match want {
                Want::Reject(what) => {
                    r.one_error_naming(what);
                    assert_eq!(ctx.ok(["images", "-q"]), "", "{case}");
                }
                Want::Contain => {
                    assert_eq!(r.code, Some(0), "{case}:\n{}", r.dump());
                    let mnt = mount_image(&ctx, "c14");
                    let found = find_named(&mnt.join("c"), "hodsec-c14");
                    assert_eq!(found.len(), 1, "{case}: {found:?}");
                    reset(&ctx);
                }
            }
            host.assert_intact(&case);
            for p in find_named(ctx.dir.path(), "hodsec-") {
                assert!(p.starts_with(&ctx.root), "{case}: {} written", p.display());
            }
            assert!(
                find_named(Path::new("/tmp"), "hodsec-c14").is_empty(),
                "{case}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// RUN --mount.

/// A store holding busybox, a host sentinel and a build context directory.
fn run_fixture(test: &str) -> Option<(TestContext, Host, PathBuf)> {
    if !common::require(test, &["skopeo"]) {
        return None;
    }
    let ctx = TestContext::new("vfs");
    ctx.seed_busybox("busybox");
    let host = Host::new(&ctx);
    let c = ctx.path("context");
    fs::create_dir_all(&c).unwrap();
    fs::write(c.join("keep"), b"context file").unwrap();
    Some((ctx, host, c))
}

fn bud(ctx: &TestContext, context: &Path, tag: &str, containerfile: &str) -> Run {
    let cf = ctx.path(&format!("{tag}.Containerfile"));
    fs::write(&cf, containerfile).unwrap();
    let r = ctx.hod([
        "bud",
        "-q",
        "-t",
        tag,
        "-f",
        cf.to_str().unwrap(),
        context.to_str().unwrap(),
    ]);
    common::assert_no_panic(&r);
    r
}

/// Every file of `image` as (path, bytes), read from a mounted working container.
fn image_file(ctx: &TestContext, image: &str, path: &str) -> Vec<u8> {
    let mnt = mount_image(ctx, image);
    fs::read(mnt.join(path.trim_start_matches('/'))).unwrap_or_default()
}

/// M18: `RUN --mount=type=bind,from=STAGE,source=LINK` where LINK points at `/` (buildah's
/// CVE-2024-1753 case) or at a host directory binds the stage's own tree, never the host's.
#[test]
fn m18_bind_from_stage_via_symlink() {
    let Some((ctx, host, c)) = run_fixture("m18_bind_from_stage_via_symlink") else {
        return;
    };
    let breakout = slash_name("m18");
    std::os::unix::fs::symlink(host.abs(), c.join("hostdir")).unwrap();
    std::os::unix::fs::symlink(format!("{}/canary", host.abs()), c.join("leak")).unwrap();
    let h = host.abs();
    let base = format!(
        "FROM busybox AS base\nRUN ln -s / /rootdir && ln -s {h} /hostdir && ln -s {h}/canary /leak\nFROM busybox\n"
    );
    let cases = [
        format!("--mount=type=bind,from=base,source=/rootdir,destination=/rootdir,rw ls /rootdir{h} > /out 2>&1; touch /rootdir/{breakout}; true"),
        format!("--mount=type=bind,from=base,source=/rootdir,destination=/r cat /r{h}/canary > /out 2>&1; true"),
        "--mount=type=bind,from=base,source=/hostdir,destination=/h cat /h/canary > /out 2>&1; true".to_string(),
        "--mount=type=bind,from=base,source=/leak,destination=/l cat /l > /out 2>&1; true".to_string(),
        "--mount=type=bind,from=base,source=/hostdir/canary,destination=/l cat /l > /out 2>&1; true".to_string(),
        "--mount=type=bind,source=hostdir,destination=/h cat /h/canary > /out 2>&1; true".to_string(),
        "--mount=type=bind,source=leak,destination=/l cat /l > /out 2>&1; true".to_string(),
        "--mount=type=bind,source=hostdir/canary,destination=/l cat /l > /out 2>&1; true".to_string(),
    ];
    for (i, case) in cases.iter().enumerate() {
        let tag = format!("m18-{i}");
        let r = bud(&ctx, &c, &tag, &format!("{base}RUN {case}\n"));
        eprintln!("m18 {case}: exit {:?} {}", r.code, r.stderr.trim());
        // Refusing a source that resolves to nothing in the stage is as good as binding
        // what it resolves to there.
        if r.code == Some(0) {
            let got = image_file(&ctx, &tag, "out");
            assert!(
                !contains(&got, CANARY) && !contains(&got, b"victim"),
                "{case}: host content reached the build: {}",
                String::from_utf8_lossy(&got)
            );
        } else {
            r.check_one_error_naming("resolving mount source")
                .unwrap_or_else(|e| panic!("{case}: {e}"));
        }
        assert_not_at_slash(&breakout);
        host.assert_intact(case);
    }
    assert_not_at_slash(&breakout);
    host.assert_intact("m18");
    // The stage's own tree is what /rootdir binds.
    let r = bud(
        &ctx,
        &c,
        "m18-ok",
        "FROM busybox AS base\nRUN ln -s / /rootdir && echo stage > /marker\nFROM busybox\n\
         RUN --mount=type=bind,from=base,source=/rootdir,target=/r cat /r/marker > /got\n",
    );
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert_eq!(image_file(&ctx, "m18-ok", "got"), b"stage\n");
}

/// M19: cache ids and sources that climb, and links planted in a cache, stay in the
/// store's cache directory.
#[test]
fn m19_cache_id_and_source_traversal() {
    let Some((ctx, host, c)) = run_fixture("m19_cache_id_and_source_traversal") else {
        return;
    };
    let h = host.abs();
    let cf = format!(
        "FROM busybox\n\
         RUN --mount=type=cache,id=../../..,target=/c touch /c/hodsec-m19-id\n\
         RUN --mount=type=cache,id=/../../x,target=/c touch /c/hodsec-m19-abs-id\n\
         RUN --mount=type=cache,id=sel,source=../,target=/c touch /c/hodsec-m19-src; ln -sfn {h} /c/sel; ln -sfn / /c/root\n\
         RUN --mount=type=cache,id=sel,source=sel,target=/s touch /s/hodsec-m19-via-link 2>/dev/null; cat /s/canary > /leak.txt 2>&1; true\n\
         RUN --mount=type=cache,id=sel,target=/s touch /s/root/hodsec-m19-root; true\n"
    );
    let r = bud(&ctx, &c, "m19", &cf);
    eprintln!("m19: exit {:?} {}", r.code, r.stderr.trim());
    if r.code == Some(0) {
        let got = image_file(&ctx, "m19", "leak.txt");
        assert!(!contains(&got, CANARY), "{}", String::from_utf8_lossy(&got));
    } else {
        r.check_one_error_naming("").unwrap();
    }
    let cache = ctx.root.join("hod-cache");
    for p in find_named(ctx.dir.path(), "hodsec-m19") {
        assert!(
            p.starts_with(&cache) || p.starts_with(&ctx.root),
            "{} written",
            p.display()
        );
    }
    assert!(find_named(Path::new("/var/tmp"), "hodsec-m19")
        .iter()
        .all(|p| p.starts_with(&ctx.root)));
    host.assert_intact("m19");
}

/// M20: propagation values, unknown keys and kernel-filesystem targets are refused before
/// anything runs, as is a target that is a link in the image.
#[test]
fn m20_mount_option_validation() {
    let Some((ctx, host, c)) = run_fixture("m20_mount_option_validation") else {
        return;
    };
    let mark = "true";
    let cases = [
        "type=bind,source=.,target=/x,bind-propagation=suid",
        "type=bind,source=.,target=/x,bind-propagation=z",
        "type=bind,source=.,target=/x,bogus=1",
        "type=bind,source=.,target=/proc",
        "type=bind,source=.,target=/proc/sys",
        "type=bind,source=.,target=/dev",
        "type=bind,source=.,target=/sys",
        "type=tmpfs,target=/sys/..",
        "type=cache,target=/proc/self",
        "type=bind,source=.,target=/procx/../proc",
        "type=tmpfs,target=/linked",
        "type=bind,source=.,target=/linked/sub",
    ];
    for m in cases {
        let cf = format!("FROM busybox\nRUN ln -s /proc /linked\nRUN --mount={m} {mark}\n");
        let r = bud(&ctx, &c, "m20", &cf);
        r.check_one_error_naming("mount")
            .unwrap_or_else(|e| panic!("--mount={m}: {e}"));
        assert!(
            !r.stderr.contains("exit status"),
            "--mount={m}: the RUN ran: {}",
            r.stderr
        );
        eprintln!("m20 --mount={m}: {}", r.stderr.trim());
    }
    // The control: a valid mount runs.
    let r = bud(
        &ctx,
        &c,
        "m20-ok",
        "FROM busybox
RUN ln -s /proc /linked
RUN --mount=type=bind,source=.,target=/x cat /x/keep > /got
",
    );
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert_eq!(image_file(&ctx, "m20-ok", "got"), b"context file");
    host.assert_intact("m20");
}

/// M22: writes into a bind-mounted context are discarded; the mount-point stubs a RUN
/// gets are removed inside the root even when the RUN swapped their parent for a link.
#[test]
fn m22_stubs_cleanup_and_discarded_writes() {
    let Some((ctx, host, c)) = run_fixture("m22_stubs_cleanup_and_discarded_writes") else {
        return;
    };
    let context_before = snapshot(&c);
    // A host tree shaped like the stubs, that a cleanup following the link would remove.
    let victim = ctx.path("victim");
    fs::create_dir_all(victim.join("b/c")).unwrap();
    let victim_before = snapshot(&victim);
    let v = victim.display();
    let cf = format!(
        "FROM busybox\n\
         RUN --mount=type=bind,target=/ctx,rw echo PWNED > /ctx/keep; touch /ctx/hodsec-m22; rm -f /ctx/keep2\n\
         RUN --mount=type=bind,target=/ctx,source=.,rw mkdir /ctx/hodsec-m22-dir\n\
         RUN --mount=type=tmpfs,target=/a/b/c mv /a /a.old && ln -s {v} /a\n\
         RUN --mount=type=tmpfs,target=/d/b/c mv /d /d.old && ln -s ../../../../../../../../..{v} /d\n"
    );
    let r = bud(&ctx, &c, "m22", &cf);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert!(snapshot(&c) == context_before, "the context changed");
    assert!(
        snapshot(&victim) == victim_before,
        "the victim tree changed"
    );
    assert!(find_named(ctx.dir.path(), "hodsec-m22")
        .iter()
        .all(|p| p.starts_with(&ctx.root)));
    host.assert_intact("m22");
}

/// M23: an image's VOLUME paths and its /etc/hosts, /etc/resolv.conf links resolve in the
/// root: the host's files are never read or written.
#[test]
fn m23_image_driven_mounts() {
    let Some((ctx, host, c)) = run_fixture("m23_image_driven_mounts") else {
        return;
    };
    let hosts_before = fs::read("/etc/hosts").unwrap();
    let resolv_before = fs::read("/etc/resolv.conf").ok();
    let canary = format!("{}/canary", host.abs());
    let vol_up = format!(
        "/../../{}/hodsec-m23-vol",
        host.abs().trim_start_matches('/')
    );
    type Plant<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Plant, Vec<&str>)> = vec![
        (
            "hosts-to-canary",
            Box::new(|m: &Path| {
                let _ = fs::remove_file(m.join("etc/hosts"));
                std::os::unix::fs::symlink(&canary, m.join("etc/hosts")).unwrap();
            }),
            vec![],
        ),
        (
            "resolv-dotdot",
            Box::new(|m: &Path| {
                let _ = fs::remove_file(m.join("etc/resolv.conf"));
                std::os::unix::fs::symlink(
                    "../../../../../../etc/resolv.conf",
                    m.join("etc/resolv.conf"),
                )
                .unwrap();
            }),
            vec![],
        ),
        (
            "hosts-dotdot",
            Box::new(|m: &Path| {
                let _ = fs::remove_file(m.join("etc/hosts"));
                std::os::unix::fs::symlink("../../../../../../etc/hosts", m.join("etc/hosts"))
                    .unwrap();
            }),
            vec![],
        ),
        (
            "volume-dotdot",
            Box::new(|_: &Path| {}),
            vec![vol_up.as_str()],
        ),
        (
            "volume-through-links",
            Box::new(|m: &Path| {
                std::os::unix::fs::symlink("/", m.join("x")).unwrap();
                std::os::unix::fs::symlink(host.abs(), m.join("hostlink")).unwrap();
            }),
            vec!["/x/hodsec-m23-x", "/hostlink/hodsec-m23-link"],
        ),
    ];
    for (case, plant, volumes) in cases {
        let ctr = ctx.ok(["from", "-q", "busybox"]);
        let mnt = PathBuf::from(ctx.ok(["mount", &ctr]));
        plant(&mnt);
        ctx.ok(["umount", &ctr]);
        for v in volumes {
            ctx.ok(["config", "--volume", v, &ctr]);
        }
        ctx.ok(["commit", "-q", &ctr, "m23-base"]);
        let r = bud(
            &ctx,
            &c,
            "m23",
            "FROM m23-base\nRUN cat /etc/hosts /etc/resolv.conf > /seen.txt 2>&1; true\n",
        );
        eprintln!("m23 {case}: exit {:?} {}", r.code, r.stderr.trim());
        if r.code == Some(0) {
            let seen = image_file(&ctx, "m23", "seen.txt");
            assert!(
                !contains(&seen, CANARY),
                "{case}: {}",
                String::from_utf8_lossy(&seen)
            );
        } else {
            r.check_one_error_naming("")
                .unwrap_or_else(|e| panic!("{case}: {e}"));
        }
        host.assert_intact(case);
        assert_not_at_slash("hodsec-m23-x");
        for p in find_named(ctx.dir.path(), "hodsec-m23") {
            assert!(p.starts_with(&ctx.root), "{case}: {} created", p.display());
        }
        reset(&ctx);
        ctx.seed_busybox("busybox");
    }
    assert_eq!(fs::read("/etc/hosts").unwrap(), hosts_before);
    assert_eq!(fs::read("/etc/resolv.conf").ok(), resolv_before);
    assert_not_at_slash("hodsec-m23-x");
    host.assert_intact("m23");
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// C15: git contexts: a subdirectory that links out of the clone, option-like refs,
/// `file://` submodules and the host's git configuration (a hook) are all refused or
/// ignored; nothing of the host reaches the build.
#[test]
fn c15_git_sources() {
    if !common::require("c15_git_sources", &["git"]) {
        return;
    }
    let ctx = TestContext::new("vfs");
    let host = Host::new(&ctx);
    // A host directory that would make a fine context: its Containerfile copies a secret.
    let hostctx = ctx.path("hostctx");
    fs::create_dir_all(&hostctx).unwrap();
    fs::write(
        hostctx.join("Containerfile"),
        "FROM scratch\nCOPY . /stolen/\n",
    )
    .unwrap();
    fs::write(hostctx.join("secret"), CANARY).unwrap();
    // A repository a file:// submodule would pull in.
    let secret_repo = ctx.path("secret-repo");
    fs::create_dir_all(&secret_repo).unwrap();
    git(&secret_repo, &["init", "-q", "-b", "main"]);
    fs::write(secret_repo.join("secret-sm"), CANARY).unwrap();
    git(&secret_repo, &["add", "."]);
    git(&secret_repo, &["commit", "-q", "-m", "s"]);
    // The hostile repository.
    let src = ctx.path("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    fs::write(src.join("Containerfile"), "FROM scratch\nCOPY . /ctx/\n").unwrap();
    fs::write(
        src.join("sub/Containerfile"),
        "FROM scratch\nCOPY . /ctx/\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(&hostctx, src.join("hostlink")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../..", src.join("up")).unwrap();
    git(&src, &["add", "."]);
    git(&src, &["commit", "-q", "-m", "base"]);
    git(&src, &["tag", "v1"]);
    let served = ctx.path("served");
    fs::create_dir_all(&served).unwrap();
    git(
        &served,
        &["clone", "-q", "--bare", src.to_str().unwrap(), "repo.git"],
    );
    git(&served.join("repo.git"), &["update-server-info"]);
    git(
        &src,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            &format!("file://{}", secret_repo.display()),
            "sm",
        ],
    );
    git(&src, &["commit", "-q", "-m", "submodule"]);
    git(
        &served,
        &["clone", "-q", "--bare", src.to_str().unwrap(), "sub.git"],
    );
    git(&served.join("sub.git"), &["update-server-info"]);
    let http = Http::start(served, Vec::new());
    // The host's git configuration: a hook that would run at checkout.
    let home = ctx.path("home");
    let hooks = ctx.path("hooks");
    fs::create_dir_all(&home).unwrap();
    fs::create_dir_all(&hooks).unwrap();
    let sentinel = ctx.path("hodsec-c15-hook-ran");
    fs::write(
        hooks.join("post-checkout"),
        format!("#!/bin/sh\ntouch {}\n", sentinel.display()),
    )
    .unwrap();
    fs::set_permissions(
        hooks.join("post-checkout"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs::write(
        home.join(".gitconfig"),
        format!(
            "[core]\n\thooksPath = {}\n[protocol \"file\"]\n\tallow = always\n",
            hooks.display()
        ),
    )
    .unwrap();
    let url = http.url("/repo.git");
    let cases: Vec<(&str, String, Option<&str>)> = vec![
        (
            "subdir-links-out",
            format!("{url}#main:hostlink"),
            Some("is not a directory"),
        ),
        (
            "subdir-through-link",
            format!("{url}#main:hostlink/."),
            Some("is not a directory"),
        ),
        (
            "option-like-ref",
            format!("{url}#--orphan=x"),
            Some("invalid git reference"),
        ),
        (
            "option-like-ref-upload-pack",
            format!("{url}#-uhodsec"),
            Some("invalid git reference"),
        ),
        ("subdir-dotdot", format!("{url}#v1:../../.."), None),
        ("subdir-up-link", format!("{url}#main:up"), None),
        ("plain", url.clone(), None),
        ("file-submodule", http.url("/sub.git"), None),
    ];
    for (case, spec, want) in cases {
        let mut c = ctx.cmd(["bud", "-q", "-t", "c15", &spec]);
        c.env("HOME", &home);
        let r = common::run_cmd(c);
        common::assert_no_panic(&r);
        eprintln!("c15 {case}: exit {:?} {}", r.code, r.stderr.trim());
        match want {
            Some(what) => {
                r.one_error_naming(what);
            }
            None if r.code == Some(0) => {
                for b in pushed_blobs(&ctx, "c15") {
                    assert!(
                        !contains(&b, CANARY),
                        "{case}: host or submodule bytes in a layer"
                    );
                }
                reset(&ctx);
            }
            None => {
                r.check_one_error_naming("")
                    .unwrap_or_else(|e| panic!("{case}: {e}"));
            }
        }
        assert!(!sentinel.exists(), "{case}: the host's git hook ran");
        host.assert_intact(case);
    }
}

/// C16: ADD of a URL names the file from the URL path only (never Content-Disposition),
/// refuses names that are empty, `..`, or hold `/` or control characters, and writes
/// through the root (a planted destination link resolves inside it).
#[test]
fn c16_add_url_names() {
    if !common::require("c16_add_url_names", &[]) {
        return;
    }
    let ctx = TestContext::new("vfs");
    let host = Host::new(&ctx);
    let served = ctx.path("served");
    fs::create_dir_all(served.join("dl")).unwrap();
    fs::write(served.join("dl/plain.txt"), b"payload").unwrap();
    let cd = "Content-Disposition: attachment; filename=\"../../../../hodsec-c16-cd\"\r\n";
    let http = Http::start(
        served,
        vec![
            ("/dl/cd.txt".into(), cd.into(), b"payload".to_vec()),
            (
                "/dl/..%2F..%2Fhodsec-c16-enc".into(),
                String::new(),
                b"payload".to_vec(),
            ),
            ("/dl/hodsec%0Anl".into(), String::new(), b"payload".to_vec()),
            ("/dl/..".into(), String::new(), b"payload".to_vec()),
        ],
    );
    let c = ctx.path("context");
    fs::create_dir_all(&c).unwrap();
    // A base image whose /dst links to the host directory.
    let base = oci_image(
        &ctx.path("base"),
        vec![plain(
            tar()
                .e(sym("dst", host.abs()))
                .e(sym("up", "../../../.."))
                .finish(),
        )],
        serde_json::json!({}),
    );
    let base_id = pull(&ctx, &base).success().out().to_string();
    ctx.ok(["tag", &base_id, "c16-base"]);
    let cases: Vec<(&str, String, Option<&str>)> = vec![
        (
            "content-disposition",
            format!("ADD {} /", http.url("/dl/cd.txt")),
            None,
        ),
        (
            "encoded-dotdot",
            format!("ADD {} /", http.url("/dl/..%2F..%2Fhodsec-c16-enc")),
            Some("cannot derive a file name"),
        ),
        (
            "control-char",
            format!("ADD {} /", http.url("/dl/hodsec%0Anl")),
            Some("cannot derive a file name"),
        ),
        (
            "dotdot-segment",
            format!("ADD {} /", http.url("/dl/..")),
            Some("cannot derive a file name"),
        ),
        (
            "through-planted-link",
            format!("ADD {} /dst/", http.url("/dl/plain.txt")),
            None,
        ),
        (
            "through-dotdot-link",
            format!("ADD {} /up/hodsec-c16-up", http.url("/dl/plain.txt")),
            None,
        ),
    ];
    for (case, line, want) in cases {
        let r = bud(&ctx, &c, "c16", &format!("FROM c16-base\n{line}\n"));
        eprintln!("c16 {case}: exit {:?} {}", r.code, r.stderr.trim());
        match want {
            Some(what) => {
                r.one_error_naming(what);
            }
            None => {
                assert_eq!(r.code, Some(0), "{case}: {}", r.dump());
                let mnt = mount_image(&ctx, "c16");
                let names: Vec<_> = find_named(&mnt, "")
                    .into_iter()
                    .filter(|p| p.is_file())
                    .collect();
                assert!(!names.is_empty(), "{case}: nothing added");
            }
        }
        host.assert_intact(case);
        for p in find_named(ctx.dir.path(), "hodsec-c16") {
            assert!(p.starts_with(&ctx.root), "{case}: {} written", p.display());
        }
    }
    // Named from the URL, not from the header.
    let mnt = mount_image(&ctx, "c16");
    assert!(find_named(&mnt, "hodsec-c16-cd").is_empty());
}

/// C17: ADD of archives onto links an earlier step planted (moby TestBuildAddBadLinks,
/// TestBuildSymlinkBreakout): every write lands in the rootfs.
#[test]
fn c17_add_archive_onto_planted_links() {
    if !common::require("c17_add_archive_onto_planted_links", &[]) {
        return;
    }
    let ctx = TestContext::new("vfs");
    let host = Host::new(&ctx);
    let c = ctx.path("context");
    fs::create_dir_all(&c).unwrap();
    fs::write(c.join("foo.txt"), b"PWNED").unwrap();
    fs::write(
        c.join("links.tar"),
        tar()
            .e(sym("symlink", host.abs()))
            .e(sym("rel", host.rel()))
            .e(sym("up", "../../../../.."))
            .e(dir("d/"))
            .finish(),
    )
    .unwrap();
    fs::write(
        c.join("inject.tar"),
        tar()
            .entry(file("symlink/hodsec-c17-inject"), b"PWNED")
            .entry(file("rel/canary"), b"PWNED")
            .entry(file("up/hodsec-c17-up"), b"PWNED")
            .finish(),
    )
    .unwrap();
    fs::write(
        c.join("swap.tar"),
        tar()
            .e(sym("d", host.abs()))
            .entry(file("d/hodsec-c17-swap"), b"PWNED")
            .finish(),
    )
    .unwrap();
    fs::write(
        c.join("dotdot.tar"),
        tar()
            .entry(file("../../hodsec-c17-dotdot"), b"PWNED")
            .finish(),
    )
    .unwrap();
    let r = bud(
        &ctx,
        &c,
        "c17",
        "FROM scratch\nADD links.tar /\nADD foo.txt /symlink/\nADD foo.txt /rel/foo2.txt\n\
         ADD inject.tar /\nADD swap.tar /\nCOPY foo.txt /up/hodsec-c17-copy\n",
    );
    assert_eq!(r.code, Some(0), "{}", r.dump());
    let mnt = mount_image(&ctx, "c17");
    let inside = mnt.join(host.abs().trim_start_matches('/'));
    assert_eq!(fs::read(inside.join("foo.txt")).unwrap(), b"PWNED");
    assert_eq!(
        fs::read(inside.join("hodsec-c17-inject")).unwrap(),
        b"PWNED"
    );
    let r = bud(&ctx, &c, "c17-dotdot", "FROM scratch\nADD dotdot.tar /x/\n");
    r.one_error_naming("leaves the destination");
    // The same through `hod add` into a working container.
    let ctr = ctx.ok(["from", "-q", "scratch"]);
    ctx.ok(["add", &ctr, c.join("links.tar").to_str().unwrap(), "/"]);
    ctx.ok(["add", &ctr, c.join("inject.tar").to_str().unwrap(), "/"]);
    ctx.ok([
        "copy",
        &ctr,
        c.join("foo.txt").to_str().unwrap(),
        "/symlink/",
    ]);
    host.assert_intact("c17");
    for p in find_named(ctx.dir.path(), "hodsec-c17") {
        assert!(p.starts_with(&ctx.root), "{} written", p.display());
    }
    assert!(find_named(Path::new("/var/tmp"), "hodsec-c17")
        .iter()
        .all(|p| p.starts_with(&ctx.root)));
}

/// B08's second layer, as an upgrade writes it: whiteouts, an opaque directory, a setuid
/// file replaced, writes through the lower layer's absolute `/lib` link, a link replaced by
/// a directory. The vfs tree of the top layer must equal containers/storage's, and both
/// layers must push back as the same blobs.
fn b08_upgrade_layer() {
    let mut su = file("bin/su");
    su.mode = 0o4755;
    su.mtime = 1_700_000_000;
    let upgrade = tar()
        .entry(file("etc/.wh.nanos"), b"")
        .entry(file("home/u/.wh..wh..opq"), b"")
        .entry(file("home/u/new"), b"new profile")
        .entry(su, b"setuid binary, v2")
        .entry(file("lib/libhod.so.2"), b"\x7fELF library v2")
        .e(hard("bin/lib2-again", "/lib/libhod.so.2"))
        .e(dir("etc/up/"))
        .entry(file("etc/up/x"), b"was a link")
        .finish();
    let base = corpus();
    let (d1, d2) = (sha256_hex(&base), sha256_hex(&upgrade));
    // containers/image's layer ID on a parent: sha256("<parent ID>+<diff ID hex>").
    let top = sha256_hex(format!("{d1}+{d2}").as_bytes());
    let ctx = TestContext::new("vfs");
    let src = oci_image(
        &ctx.path("img"),
        vec![plain(base), plain(upgrade)],
        serde_json::json!({}),
    );
    let id = pull(&ctx, &src).success().out().to_string();
    let reference = TestContext::new("vfs");
    common::run_cmd({
        let mut c = Command::new("skopeo");
        c.args(["copy", "--quiet", &src])
            .arg(format!("containers-storage:{}b08", reference.store_spec()));
        c
    })
    .success();
    let mut ours = snapshot(&ctx.root.join("vfs/dir").join(&top));
    let mut theirs = snapshot(&reference.root.join("vfs/dir").join(&top));
    let long_dir = format!("usr/share/{}", "long-component-".repeat(8));
    // Directories this layer writes into without an entry of their own get the time of
    // the extraction, in both.
    for t in [&mut ours, &mut theirs] {
        for k in [
            "",
            "opt",
            "opt/a",
            "opt/a/b",
            "usr/share",
            &long_dir,
            "bin",
            "etc",
            "home/u",
            "usr/lib",
        ] {
            let v = t.get_mut(k).unwrap_or_else(|| panic!("{k:?} missing"));
            *v = v.split(" mtime=").next().unwrap().to_string();
        }
    }
    assert!(
        ours == theirs,
        "the upgraded tree differs from containers/storage's\nours: {ours:#?}\ntheirs: {theirs:#?}"
    );
    assert!(!ours.contains_key("etc/nanos") && ours.contains_key("home/u/new"));
    let out = ctx.path("out");
    ctx.ok([
        "push",
        "-q",
        "--disable-compression",
        &id,
        &format!("oci:{}:back", out.display()),
    ]);
    for d in [d1, d2] {
        assert!(
            out.join("blobs/sha256").join(&d).is_file(),
            "layer {d} changed on the way back"
        );
    }
}
