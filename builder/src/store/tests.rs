//! Store tests with temporary roots. The real tar applier (archive helper) is replaced by a
//! small test applier, so these do not depend on it.
#![allow(clippy::field_reassign_with_default, clippy::print_stdout)]

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::*;
use crate::archive::apply::{ApplySummary, WhiteoutFormat};
use crate::error::Error;
use crate::image::Sha256Writer;

fn opts(dir: &Path, driver: DriverKind) -> StoreOptions {
    let mut o = StoreOptions::default();
    o.root = dir.join("root");
    o.run_root = dir.join("run");
    o.driver = driver;
    o
}

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Unpack (test-only, trusted input) and record a fake tar-split; `gzip` chooses whether the
/// applier compresses its tar-split itself.
fn test_apply(
    tar: Vec<u8>,
    gzip: bool,
) -> impl FnMut(&Path, WhiteoutFormat, &mut dyn Write) -> Result<ApplySummary> {
    move |dir: &Path, _w: WhiteoutFormat, ts: &mut dyn Write| {
        let mut hw = Sha256Writer::new(std::io::sink());
        hw.write_all(&tar).unwrap();
        let (diff_digest, diff_size, _) = hw.finish();
        let mut a = tar::Archive::new(&tar[..]);
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let p = dir.join(e.path().unwrap());
            let m = e.header().mode().unwrap();
            if e.header().entry_type().is_dir() {
                fs::create_dir_all(&p).unwrap();
            } else {
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                fs::write(&p, data).unwrap();
            }
            fs::set_permissions(&p, fs::Permissions::from_mode(m)).unwrap();
        }
        let meta = tar_split_of(&tar);
        let line = &meta[..];
        if gzip {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(line).unwrap();
            ts.write_all(&enc.finish().unwrap()).unwrap();
        } else {
            ts.write_all(line).unwrap();
        }
        Ok(ApplySummary {
            diff_digest,
            diff_size,
            uids: vec![0],
            gids: vec![0],
        })
    }
}

/// Go's `hash/crc64` with the ISO table (tar-split's file checksums).
fn crc64_iso(data: &[u8]) -> [u8; 8] {
    let mut table = [0u64; 256];
    for (i, t) in table.iter_mut().enumerate() {
        let mut c = i as u64;
        for _ in 0..8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0xD800_0000_0000_0000
            } else {
                c >> 1
            };
        }
        *t = c;
    }
    let mut crc = !0u64;
    for b in data {
        crc = table[((crc as u8) ^ b) as usize] ^ (crc >> 8);
    }
    (!crc).to_be_bytes()
}

/// Real tar-split JSON lines for a tar stream (what vbatts/tar-split's disassembler writes).
fn tar_split_of(tar: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let mut out = String::new();
    let mut pos = 0usize;
    let mut off = 0usize;
    let mut a = tar::Archive::new(tar);
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let start = e.raw_file_position() as usize;
        let size = e.size() as usize;
        out += &format!(
            "{{\"type\":2,\"payload\":\"{}\",\"position\":{pos}}}\n",
            b64(&tar[off..start])
        );
        pos += 1;
        let name =
            serde_json::to_string(&String::from_utf8(e.path_bytes().to_vec()).unwrap()).unwrap();
        if size > 0 {
            let crc = b64(&crc64_iso(&tar[start..start + size]));
            out += &format!("{{\"type\":1,\"name\":{name},\"size\":{size},\"payload\":\"{crc}\",\"position\":{pos}}}\n");
        } else {
            out += &format!("{{\"type\":1,\"name\":{name},\"payload\":null,\"position\":{pos}}}\n");
        }
        pos += 1;
        off = start + size;
    }
    out += &format!(
        "{{\"type\":2,\"payload\":\"{}\",\"position\":{pos}}}\n",
        b64(&tar[off..])
    );
    out.into_bytes()
}

fn put(
    s: &Store,
    parent: Option<&str>,
    files: &[(&str, &[u8])],
    o: &PutLayerOptions,
) -> Result<Layer> {
    let mut f = test_apply(tar_of(files), true);
    s.put_layer_with(parent, o, &mut f)
}

fn gunzip(p: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(p).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

#[test]
fn open_creates_the_layout() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&opts(d.path(), DriverKind::Vfs)).unwrap();
    let r = d.path().join("root");
    let rr = d.path().join("run");
    for dir in ["vfs-layers", "vfs-images", "vfs-containers", "vfs/dir"] {
        assert!(r.join(dir).is_dir(), "{dir}");
        assert_eq!(mode(&r.join(dir)), 0o700, "{dir}");
    }
    assert_eq!(mode(&r), 0o700);
    for dir in ["vfs-layers", "vfs-containers", "vfs-locks"] {
        assert!(rr.join(dir).is_dir(), "{dir}");
    }
    for f in [
        "storage.lock",
        "userns.lock",
        "vfs-layers/layers.lock",
        "vfs-images/images.lock",
        "vfs-containers/containers.lock",
    ] {
        assert!(r.join(f).is_file(), "{f}");
    }
    assert!(rr.join("vfs-layers/mountpoints.lock").is_file());
    assert!(s.layers().unwrap().is_empty());
    assert!(s.images().unwrap().is_empty());
    assert!(s.containers().unwrap().is_empty());
}

#[test]
fn put_layer_records_everything() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&opts(d.path(), DriverKind::Vfs)).unwrap();
    let tar = tar_of(&[("a.txt", b"hello")]);
    let want = Digest::of(&tar);
    let mut o = PutLayerOptions::default();
    o.expected_diff_digest = Some(want.clone());
    let l = put(&s, None, &[("a.txt", b"hello")], &o).unwrap();
    assert_eq!(l.diff_digest, Some(want.clone()));
    assert_eq!(l.diff_size, Some(tar.len() as i64));
    assert_eq!(l.compressed_diff_digest, Some(want.clone()));
    assert!(!l.is_incomplete());
    assert_eq!(l.uid_set, vec![0]);
    let dir = d.path().join("root/vfs/dir").join(&l.id);
    assert_eq!(fs::read(dir.join("a.txt")).unwrap(), b"hello");
    assert_eq!(mode(&dir), 0o555);
    let ts = d
        .path()
        .join(format!("root/vfs-layers/{}.tar-split.gz", l.id));
    assert_eq!(mode(&ts), 0o600);
    assert_eq!(gunzip(&ts), tar_split_of(&tar));
    // The JSON as containers/storage writes it: field order, omitted empties, Go time.
    let raw = fs::read_to_string(d.path().join("root/vfs-layers/layers.json")).unwrap();
    let created = l.created.clone().unwrap();
    assert!(!created.contains("+00:00") && created.ends_with('Z'));
    let expect = format!(
        "[{{\"id\":\"{}\",\"created\":\"{created}\",\"compressed-diff-digest\":\"{want}\",\"compressed-size\":{n},\"diff-digest\":\"{want}\",\"diff-size\":{n},\"uidset\":[0],\"gidset\":[0]}}]",
        l.id,
        n = tar.len()
    );
    assert_eq!(raw, expect);
    assert_eq!(mode(&d.path().join("root/vfs-layers/layers.json")), 0o600);

    // A child starts as a copy of its parent; an uncompressed tar-split gets compressed.
    let mut f = test_apply(tar_of(&[("b.txt", b"x")]), false);
    let mut o2 = PutLayerOptions::default();
    o2.compressed = Some((Digest::of(b"blob"), 42, 2));
    let c = s.put_layer_with(Some(&l.id[..12]), &o2, &mut f).unwrap();
    assert_eq!(c.parent, l.id);
    assert_eq!(
        (
            c.compressed_diff_digest.clone(),
            c.compressed_size,
            c.compression
        ),
        (Some(Digest::of(b"blob")), Some(42), Some(2))
    );
    let cdir = d.path().join("root/vfs/dir").join(&c.id);
    assert_eq!(fs::read(cdir.join("a.txt")).unwrap(), b"hello");
    assert_eq!(fs::read(cdir.join("b.txt")).unwrap(), b"x");
    assert!(gunzip(
        &d.path()
            .join(format!("root/vfs-layers/{}.tar-split.gz", c.id))
    )
    .starts_with(b"{\"type\":2"));
    assert_eq!(s.layers().unwrap().len(), 2);
    assert_eq!(s.layers_by_diff_digest(&want).unwrap()[0].id, l.id);
    assert_eq!(
        s.layers_by_compressed_digest(&Digest::of(b"blob")).unwrap()[0].id,
        c.id
    );
    // Deleting the parent is refused; the child can go.
    assert!(matches!(
        s.delete_layer(&l.id),
        Err(Error::Store(StoreError::LayerInUse { .. }))
    ));
    s.delete_layer(&c.id).unwrap();
    assert!(!cdir.exists());
    assert!(matches!(
        s.layer(&c.id),
        Err(Error::NotFound { kind: "layer", .. })
    ));
}

#[test]
fn put_layer_failure_deletes_the_layer() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&opts(d.path(), DriverKind::Vfs)).unwrap();
    let mut o = PutLayerOptions::default();
    o.expected_diff_digest = Some(Digest::of(b"something else"));
    let e = put(&s, None, &[("a", b"1")], &o).unwrap_err();
    assert!(
        matches!(e, Error::Store(StoreError::DigestMismatch { .. })),
        "{e:?}"
    );
    assert!(s.layers().unwrap().is_empty());
    assert_eq!(
        fs::read_to_string(d.path().join("root/vfs-layers/layers.json")).unwrap(),
        "[]"
    );
    assert_eq!(
        fs::read_dir(d.path().join("root/vfs/dir")).unwrap().count(),
        0
    );
    let leftovers: Vec<_> = fs::read_dir(d.path().join("root/vfs-layers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().contains("tar-split"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Unknown parent, bad ID, duplicate ID.
    assert!(matches!(
        put(&s, Some("nope"), &[], &PutLayerOptions::default()),
        Err(Error::NotFound { kind: "layer", .. })
    ));
    let mut bad = PutLayerOptions::default();
    bad.id = Some("../x".into());
    assert!(put(&s, None, &[], &bad).is_err());
    let mut fixed = PutLayerOptions::default();
    fixed.id = Some("ab".repeat(32));
    put(&s, None, &[], &fixed).unwrap();
    assert!(matches!(
        put(&s, None, &[], &fixed),
        Err(Error::Store(StoreError::Duplicate { .. }))
    ));
}

#[test]
fn open_deletes_incomplete_layers() {
    let d = tempfile::tempdir().unwrap();
    let o = opts(d.path(), DriverKind::Vfs);
    let s = Store::open(&o).unwrap();
    let keep = s.create_rw_layer(None).unwrap();
    let id = "cd".repeat(32);
    let dir = d.path().join("root/vfs/dir").join(&id);
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("f"), "x").unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
    let ts = d.path().join(format!("root/vfs-layers/{id}.tar-split.gz"));
    fs::write(&ts, "x").unwrap();
    let stale = d.path().join("root/vfs-layers/.tmp-tar-split-XYZ");
    fs::write(&stale, "x").unwrap();
    let lj = d.path().join("root/vfs-layers/layers.json");
    let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&lj).unwrap()).unwrap();
    v.as_array_mut().unwrap().push(serde_json::json!({"id": id, "created": "2026-01-01T00:00:00Z", "flags": {"incomplete": true}}));
    fs::write(&lj, v.to_string()).unwrap();
    // Hidden from readers before the cleanup.
    assert_eq!(s.layers().unwrap().len(), 1);
    let before = fs::read(d.path().join("root/vfs-layers/layers.lock")).unwrap();
    let s2 = Store::open(&o).unwrap();
    let ids: Vec<String> = s2.layers().unwrap().into_iter().map(|l| l.id).collect();
    assert_eq!(ids, vec![keep.id]);
    assert!(!dir.exists());
    assert!(!ts.exists());
    assert!(!stale.exists());
    assert!(!fs::read_to_string(&lj).unwrap().contains(&id));
    // The writer recorded a new last-write token in layers.lock.
    assert_ne!(
        fs::read(d.path().join("root/vfs-layers/layers.lock")).unwrap(),
        before
    );
}

/// A container removal killed after its layer was flagged `incomplete` and before its
/// record went (the SIGKILL campaign of `bud` found it): the next open deletes the layer and
/// finishes the removal, so no container names a missing layer; other containers stay.
#[test]
fn open_finishes_a_container_removal_killed_half_way() {
    let d = tempfile::tempdir().unwrap();
    let o = opts(d.path(), DriverKind::Vfs);
    let s = Store::open(&o).unwrap();
    let doomed = s.create_container(&["doomed".into()], None, "").unwrap();
    let kept = s.create_container(&["kept".into()], None, "").unwrap();
    let userdata = s.container_dir(&doomed.id).unwrap();
    fs::write(userdata.join("state"), "x").unwrap();
    // What delete_container_impl has saved when the kill comes: the layer flagged.
    let lj = d.path().join("root/vfs-layers/layers.json");
    let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&lj).unwrap()).unwrap();
    for l in v.as_array_mut().unwrap() {
        if l["id"] == doomed.layer.as_str() {
            l["flags"] = serde_json::json!({"incomplete": true});
        }
    }
    fs::write(&lj, v.to_string()).unwrap();
    let s2 = Store::open(&o).unwrap();
    let left: Vec<String> = s2.containers().unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(left, vec![kept.id.clone()]);
    assert!(!userdata.exists());
    let layers: Vec<String> = s2.layers().unwrap().into_iter().map(|l| l.id).collect();
    assert_eq!(layers, vec![kept.layer]);
    assert!(!d.path().join("root/vfs/dir").join(&doomed.layer).exists());
}

/// The same removal killed one step later: the layer's record is already gone and the
/// container's is not (the SIGKILL campaign of `bud` found this window too). The next open
/// finishes the removal.
#[test]
fn open_finishes_a_container_removal_killed_after_its_layer_went() {
    let d = tempfile::tempdir().unwrap();
    let o = opts(d.path(), DriverKind::Vfs);
    let s = Store::open(&o).unwrap();
    let doomed = s.create_container(&["doomed".into()], None, "").unwrap();
    let kept = s.create_container(&["kept".into()], None, "").unwrap();
    let userdata = s.container_dir(&doomed.id).unwrap();
    let lj = d.path().join("root/vfs-layers/layers.json");
    let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&lj).unwrap()).unwrap();
    v.as_array_mut()
        .unwrap()
        .retain(|l| l["id"] != doomed.layer.as_str());
    fs::write(&lj, v.to_string()).unwrap();
    fs::remove_dir_all(d.path().join("root/vfs/dir").join(&doomed.layer)).unwrap();
    let s2 = Store::open(&o).unwrap();
    let left: Vec<String> = s2.containers().unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(left, vec![kept.id.clone()]);
    assert!(!userdata.exists());
}

fn config_and_manifest() -> (String, Vec<BigData>, Digest) {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let cd = Digest::of(&config);
    let manifest = format!(r#"{{"schemaVersion":2,"config":{{"digest":"{cd}"}}}}"#).into_bytes();
    let md = Digest::of(&manifest);
    let bd = vec![
        BigData {
            key: cd.to_string(),
            data: config,
        },
        BigData {
            key: format!("manifest-{md}"),
            data: manifest.clone(),
        },
        BigData {
            key: "manifest".into(),
            data: manifest,
        },
    ];
    (cd.hex().to_string(), bd, md)
}

#[test]
fn images_and_containers() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&opts(d.path(), DriverKind::Vfs)).unwrap();
    let l = put(&s, None, &[("bin/x", b"y")], &PutLayerOptions::default()).unwrap();
    let (id, bd, md) = config_and_manifest();
    let img = s
        .create_image(
            &id,
            &["localhost/app:latest".into()],
            Some(&l.id),
            &bd,
            Some("2024-01-02T03:04:05.000000000Z".into()),
        )
        .unwrap();
    assert_eq!(img.digest, Some(md.clone()));
    assert_eq!(img.digests, vec![md.clone()]);
    assert_eq!(img.layer, l.id);
    assert_eq!(img.created.as_deref(), Some("2024-01-02T03:04:05Z"));
    assert_eq!(img.names_history, vec!["localhost/app:latest".to_string()]);
    let idir = d.path().join("root/vfs-images").join(&id);
    assert_eq!(fs::read(idir.join("manifest")).unwrap(), bd[2].data);
    assert!(idir.join(paths::big_data_base_name(&bd[0].key)).is_file());
    assert_eq!(mode(&idir.join("manifest")), 0o600);
    assert_eq!(mode(&idir), 0o700);
    assert_eq!(s.image_big_data("app", &bd[0].key).unwrap(), bd[0].data);
    assert!(matches!(
        s.image_big_data("app", "nope"),
        Err(Error::NotFound { .. })
    ));
    for name in [
        "app",
        "app:latest",
        "localhost/app",
        &id[..5],
        &format!("sha256:{id}"),
        &format!("app@{md}"),
    ] {
        assert_eq!(s.image(name).unwrap().id, id, "{name}");
    }
    assert!(s.images_by_digest(&md).unwrap().len() == 1);
    let raw = fs::read_to_string(d.path().join("root/vfs-images/images.json")).unwrap();
    assert!(raw.starts_with(&format!("[{{\"id\":\"{id}\",\"digest\":\"{md}\",\"names\":[\"localhost/app:latest\"],\"names-history\":[\"localhost/app:latest\"],\"layer\":\"{}\",\"big-data-names\":[", l.id)), "{raw}");
    assert!(!raw.contains("\"digests\""));

    // A second image takes the name.
    let other = "ef".repeat(32);
    s.create_image(
        &other,
        &["localhost/app:latest".into(), "localhost/other:1".into()],
        None,
        &[],
        None,
    )
    .unwrap();
    assert_eq!(s.image("app").unwrap().id, other);
    assert!(s.image(&id).unwrap().names.is_empty());
    s.set_image_names(&id, &["localhost/app:latest".into()])
        .unwrap();
    assert_eq!(s.image("app").unwrap().id, id);
    assert_eq!(
        s.image(&other).unwrap().names,
        vec!["localhost/other:1".to_string()]
    );
    s.add_image_names(&id, &["localhost/app:2".into()]).unwrap();
    assert_eq!(s.image("app:2").unwrap().id, id);
    s.set_image_metadata(&id, "{\"a\":\"<&>\"}").unwrap();
    assert!(
        fs::read_to_string(d.path().join("root/vfs-images/images.json"))
            .unwrap()
            .contains(r#""metadata":"{\"a\":\"\u003c\u0026\u003e\"}""#)
    );

    // Containers.
    let c = s
        .create_container(&["work".into()], Some("app"), "{\"k\":1}")
        .unwrap();
    assert_eq!(c.image, id);
    let cl = s.layer(&c.layer).unwrap();
    assert_eq!(cl.parent, l.id);
    assert_eq!(
        fs::read(d.path().join("root/vfs/dir").join(&c.layer).join("bin/x")).unwrap(),
        b"y"
    );
    assert!(matches!(
        s.create_container(&["work".into()], Some("app"), ""),
        Err(Error::NameInUse { .. })
    ));
    assert_eq!(
        s.layers().unwrap().len(),
        2,
        "a refused container leaves no layer"
    );
    for key in ["work", &c.id[..6], &c.layer, &c.id] {
        assert_eq!(s.container(key).unwrap().id, c.id, "{key}");
    }
    let craw = fs::read_to_string(d.path().join("root/vfs-containers/containers.json")).unwrap();
    assert!(craw.starts_with(&format!("[{{\"id\":\"{}\",\"names\":[\"work\"],\"image\":\"{id}\",\"layer\":\"{}\",\"metadata\":\"{{\\\"k\\\":1}}\",\"created\":", c.id, c.layer)), "{craw}");
    assert!(
        craw.ends_with(r#""flags":{"MountLabel":"","ProcessLabel":""}}]"#),
        "{craw}"
    );
    let scratch = s.create_container(&["scratch-c".into()], None, "").unwrap();
    assert!(
        fs::read_to_string(d.path().join("root/vfs-containers/containers.json"))
            .unwrap()
            .contains(&format!("\"image\":\"\",\"layer\":\"{}\"", scratch.layer))
    );
    let cd = s.container_dir("work").unwrap();
    assert_eq!(
        cd,
        d.path()
            .join("root/vfs-containers")
            .join(&c.id)
            .join("userdata")
    );
    assert_eq!(mode(&cd), 0o700);
    let rd = s.container_run_dir("work").unwrap();
    assert_eq!(
        rd,
        d.path()
            .join("run/vfs-containers")
            .join(&c.id)
            .join("userdata")
    );
    s.set_container_names(&c.id, &["renamed".into()]).unwrap();
    assert!(matches!(
        s.set_container_names(&c.id, &["scratch-c".into()]),
        Err(Error::NameInUse { .. })
    ));
    s.set_container_metadata("renamed", "m").unwrap();
    assert_eq!(s.container("renamed").unwrap().metadata, "m");

    // Image in use.
    match s.delete_image(&id) {
        Err(Error::ImageInUse { containers, .. }) => {
            assert_eq!(containers, vec!["renamed".to_string()])
        }
        other => panic!("{other:?}"),
    }
    // Mount counting (vfs: the directory).
    let p = s.mount_layer(&c.layer).unwrap();
    assert_eq!(p, d.path().join("root/vfs/dir").join(&c.layer));
    assert_eq!(s.mount_layer(&c.layer).unwrap(), p);
    assert_eq!(s.layer_mount_count(&c.layer).unwrap(), 2);
    let mj = fs::read_to_string(d.path().join("run/vfs-layers/mountpoints.json")).unwrap();
    assert_eq!(
        mj,
        format!(
            "[{{\"id\":\"{}\",\"path\":\"{}\",\"count\":2}}]",
            c.layer,
            p.display()
        )
    );
    assert!(s.unmount_layer(&c.layer, false).unwrap());
    assert_eq!(s.layer_mount_point(&c.layer).unwrap(), Some(p.clone()));
    assert!(!s.unmount_layer(&c.layer, false).unwrap());
    assert_eq!(s.layer_mount_point(&c.layer).unwrap(), None);
    assert_eq!(
        fs::read_to_string(d.path().join("run/vfs-layers/mountpoints.json")).unwrap(),
        "[]"
    );
    s.mount_layer(&c.layer).unwrap();
    s.mount_layer(&c.layer).unwrap();
    assert!(!s.unmount_layer(&c.layer, true).unwrap());
    s.mount_layer(&c.layer).unwrap();

    s.delete_container("renamed").unwrap();
    assert!(!d.path().join("root/vfs-containers").join(&c.id).exists());
    assert!(!d.path().join("run/vfs-containers").join(&c.id).exists());
    assert!(matches!(s.layer(&c.layer), Err(Error::NotFound { .. })));
    assert_eq!(
        fs::read_to_string(d.path().join("run/vfs-layers/mountpoints.json")).unwrap(),
        "[]"
    );
    let removed = s.delete_image(&id).unwrap();
    assert_eq!(removed, vec![l.id.clone()]);
    assert!(!idir.exists());
    assert!(!d.path().join("root/vfs/dir").join(&l.id).exists());
    assert!(matches!(
        s.image("app"),
        Err(Error::NotFound { kind: "image", .. })
    ));
    assert_eq!(s.images().unwrap().len(), 1);
}

#[test]
fn delete_image_keeps_shared_layers() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&opts(d.path(), DriverKind::Vfs)).unwrap();
    let base = put(&s, None, &[("a", b"1")], &PutLayerOptions::default()).unwrap();
    let top1 = put(
        &s,
        Some(&base.id),
        &[("b", b"2")],
        &PutLayerOptions::default(),
    )
    .unwrap();
    let top2 = put(
        &s,
        Some(&base.id),
        &[("c", b"3")],
        &PutLayerOptions::default(),
    )
    .unwrap();
    let (i1, i2) = ("11".repeat(32), "22".repeat(32));
    s.create_image(&i1, &[], Some(&top1.id), &[], None).unwrap();
    s.create_image(&i2, &[], Some(&top2.id), &[], None).unwrap();
    assert_eq!(s.delete_image(&i1).unwrap(), vec![top1.id.clone()]);
    assert!(s.layer(&base.id).is_ok());
    assert_eq!(
        s.delete_image(&i2).unwrap(),
        vec![top2.id.clone(), base.id.clone()]
    );
    assert!(s.layers().unwrap().is_empty());
}

#[test]
fn corrupt_metadata_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&opts(d.path(), DriverKind::Vfs)).unwrap();
    fs::write(d.path().join("root/vfs-images/images.json"), "[{\"id\":").unwrap();
    match s.images() {
        Err(Error::Store(StoreError::Corrupt { path, .. })) => {
            assert!(path.ends_with("images.json"))
        }
        other => panic!("{other:?}"),
    }
    fs::write(d.path().join("root/vfs-containers/containers.json"), "{}").unwrap();
    assert!(matches!(
        s.containers(),
        Err(Error::Store(StoreError::Corrupt { .. }))
    ));
    fs::write(
        d.path().join("root/vfs-layers/layers.json"),
        "[{\"id\":\"x\",\"diff-digest\":\"md5:1\"}]",
    )
    .unwrap();
    assert!(matches!(
        s.layers(),
        Err(Error::Store(StoreError::Corrupt { .. }))
    ));
}

#[test]
fn unknown_fields_and_volatile_files_are_kept() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&opts(d.path(), DriverKind::Vfs)).unwrap();
    let lj = d.path().join("root/vfs-layers/layers.json");
    let a = "aa".repeat(32);
    let b = "bb".repeat(32);
    fs::create_dir(d.path().join("root/vfs/dir").join(&a)).unwrap();
    fs::write(&lj, format!("[{{\"id\":\"{a}\",\"created\":\"2026-01-01T00:00:00Z\",\"future-field\":{{\"x\":1}},\"names\":null}}]")).unwrap();
    fs::create_dir(d.path().join("root/vfs/dir").join(&b)).unwrap();
    fs::write(
        d.path().join("root/vfs-layers/volatile-layers.json"),
        format!("[{{\"id\":\"{b}\",\"parent\":\"{a}\"}}]"),
    )
    .unwrap();
    assert_eq!(s.layers().unwrap().len(), 2);
    let c = s.create_rw_layer(Some(&b)).unwrap();
    let stable = fs::read_to_string(&lj).unwrap();
    assert!(stable.contains("\"future-field\":{\"x\":1}"), "{stable}");
    assert!(stable.contains(&c.id));
    assert!(!stable.contains(&format!("\"id\":\"{b}\"")));
    let vol = fs::read_to_string(d.path().join("root/vfs-layers/volatile-layers.json")).unwrap();
    assert!(vol.contains(&b) && !vol.contains(&c.id));
}

#[test]
fn concurrent_writers_do_not_lose_updates() {
    let d = tempfile::tempdir().unwrap();
    let o = opts(d.path(), DriverKind::Vfs);
    Store::open(&o).unwrap();
    std::thread::scope(|sc| {
        for t in 0..4 {
            let o = o.clone();
            sc.spawn(move || {
                let s = Store::open(&o).unwrap();
                for i in 0..5 {
                    s.create_container(&[format!("c-{t}-{i}")], None, "")
                        .unwrap();
                    s.create_container_auto_name("auto-working-container", None, "")
                        .unwrap();
                    s.create_image(
                        &format!("{t}{i}").repeat(32),
                        &[format!("localhost/i{t}:{i}")],
                        None,
                        &[],
                        None,
                    )
                    .unwrap();
                }
            });
        }
    });
    let s = Store::open(&o).unwrap();
    let cs = s.containers().unwrap();
    assert_eq!(cs.len(), 40);
    let mut autos: Vec<String> = cs
        .iter()
        .flat_map(|c| c.names.clone())
        .filter(|n| n.starts_with("auto-"))
        .collect();
    autos.sort();
    let mut want: Vec<String> = (1..20)
        .map(|n| format!("auto-working-container-{n}"))
        .collect();
    want.push("auto-working-container".into());
    want.sort();
    assert_eq!(autos, want);
    assert_eq!(s.layers().unwrap().len(), 40);
    assert_eq!(s.images().unwrap().len(), 20);
}

/// Overlay mounts need root; without it the test is skipped (a failure in CI).
fn overlay_usable() -> bool {
    nix::unistd::geteuid().is_root()
        || crate::test_skip::skipped("overlay store test", "needs root to mount overlay")
}

#[test]
fn overlay_layout_and_mount() {
    if !overlay_usable() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&opts(d.path(), DriverKind::Overlay)).unwrap();
    let home = d.path().join("root/overlay");
    assert_eq!(mode(&home), 0o700);
    assert_eq!(mode(&home.join("l")), 0o755);
    let base = put(
        &s,
        None,
        &[("a.txt", b"lower")],
        &PutLayerOptions::default(),
    )
    .unwrap();
    let bdir = home.join(&base.id);
    assert_eq!(mode(&bdir), 0o700);
    assert_eq!(mode(&bdir.join("diff")), 0o555);
    assert!(bdir.join("empty").is_dir());
    assert!(!bdir.join("lower").exists());
    let link = fs::read_to_string(bdir.join("link")).unwrap();
    assert_eq!(link.len(), 26);
    assert_eq!(mode(&bdir.join("link")), 0o644);
    assert_eq!(
        fs::read_link(home.join("l").join(&link)).unwrap(),
        Path::new("..").join(&base.id).join("diff")
    );
    assert_eq!(fs::read(bdir.join("diff/a.txt")).unwrap(), b"lower");
    let mid = put(
        &s,
        Some(&base.id),
        &[("b.txt", b"mid")],
        &PutLayerOptions::default(),
    )
    .unwrap();
    let mlink = fs::read_to_string(home.join(&mid.id).join("link")).unwrap();
    assert_eq!(
        fs::read_to_string(home.join(&mid.id).join("lower")).unwrap(),
        format!("l/{link}")
    );
    let rw = s.create_rw_layer(Some(&mid.id)).unwrap();
    assert_eq!(
        fs::read_to_string(home.join(&rw.id).join("lower")).unwrap(),
        format!("l/{mlink}:l/{link}")
    );

    let m = s.mount_layer(&rw.id).unwrap();
    assert_eq!(m, home.join(&rw.id).join("merged"));
    assert!(
        driver::mountinfo::is_mount_point(&home),
        "home is a bind mount"
    );
    assert!(driver::mountinfo::is_mount_point(&m));
    assert_eq!(fs::read(m.join("a.txt")).unwrap(), b"lower");
    assert_eq!(fs::read(m.join("b.txt")).unwrap(), b"mid");
    fs::write(m.join("new.txt"), "up").unwrap();
    assert_eq!(
        fs::read(home.join(&rw.id).join("diff/new.txt")).unwrap(),
        b"up"
    );
    assert_eq!(s.mount_layer(&rw.id).unwrap(), m);
    assert_eq!(s.layer_mount_count(&rw.id).unwrap(), 2);
    assert!(s.unmount_layer(&rw.id, false).unwrap());
    assert!(driver::mountinfo::is_mount_point(&m));
    assert!(!s.unmount_layer(&rw.id, false).unwrap());
    assert!(!driver::mountinfo::is_mount_point(&m));

    // A layer without parents mounts over its `empty` dir.
    let scratch = s.create_rw_layer(None).unwrap();
    let sm = s.mount_layer(&scratch.id).unwrap();
    fs::write(sm.join("x"), "1").unwrap();
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        info.contains(&format!(
            "lowerdir={}",
            home.join(&scratch.id).join("empty").display()
        )),
        "{info}"
    );
    // Deleting a mounted layer unmounts it and removes its l/ link.
    let slink = fs::read_to_string(home.join(&scratch.id).join("link")).unwrap();
    s.delete_layer(&scratch.id).unwrap();
    assert!(!driver::mountinfo::is_mount_point(&sm));
    assert!(!home.join(&scratch.id).exists());
    assert!(fs::symlink_metadata(home.join("l").join(slink)).is_err());
    driver::overlay::cleanup_home(&s.driver).unwrap();
}

#[test]
fn overlay_long_lower_chain_uses_relative_mount() {
    if !overlay_usable() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&opts(d.path(), DriverKind::Overlay)).unwrap();
    let mut parent: Option<String> = None;
    // Enough layers that absolute lowerdirs exceed a page.
    for i in 0..70 {
        let name = format!("f{i}");
        let l = put(
            &s,
            parent.as_deref(),
            &[(name.as_str(), b"z")],
            &PutLayerOptions::default(),
        )
        .unwrap();
        parent = Some(l.id);
    }
    let rw = s.create_rw_layer(parent.as_deref()).unwrap();
    let m = s.mount_layer(&rw.id).unwrap();
    assert_eq!(fs::read(m.join("f0")).unwrap(), b"z");
    assert_eq!(fs::read(m.join("f69")).unwrap(), b"z");
    assert!(!s.unmount_layer(&rw.id, false).unwrap());
    driver::overlay::cleanup_home(&s.driver).unwrap();
}

/// Interop check, run by hand: writes a busybox image `localhost/hodbox:latest` and a
/// container `hod-working` into the store at `$HOD_INTEROP_ROOT` (`root/`, `run/` below it)
/// with driver `$HOD_INTEROP_DRIVER`, for podman/buildah to read.
#[test]
#[ignore]
fn interop_write() {
    let base = std::path::PathBuf::from(std::env::var("HOD_INTEROP_ROOT").unwrap());
    let driver =
        DriverKind::parse(&std::env::var("HOD_INTEROP_DRIVER").unwrap_or_else(|_| "vfs".into()))
            .unwrap();
    let s = Store::open(&opts(&base, driver)).unwrap();
    let bb = fs::read("/bin/busybox").unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    b.append_data(&mut h, "bin/", &[][..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(bb.len() as u64);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    b.append_data(&mut h, "bin/busybox", &bb[..]).unwrap();
    let tar = b.into_inner().unwrap();
    let mut f = test_apply(tar, true);
    let l = s
        .put_layer_with(None, &PutLayerOptions::default(), &mut f)
        .unwrap();
    let dd = l.diff_digest.clone().unwrap();
    let config = format!(
        r#"{{"created":"2026-12-01T00:00:00Z","architecture":"amd64","os":"linux","config":{{"Cmd":["/bin/busybox","sh"]}},"rootfs":{{"type":"layers","diff_ids":["{dd}"]}},"history":[{{"created":"2026-12-01T00:00:00Z","created_by":"hod interop"}}]}}"#
    )
    .into_bytes();
    let cd = Digest::of(&config);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{dd}","size":{}}}]}}"#,
        config.len(),
        l.diff_size.unwrap()
    )
    .into_bytes();
    let md = Digest::of(&manifest);
    let bd = vec![
        BigData {
            key: cd.to_string(),
            data: config,
        },
        BigData {
            key: format!("manifest-{md}"),
            data: manifest.clone(),
        },
        BigData {
            key: "manifest".into(),
            data: manifest,
        },
    ];
    let img = s
        .create_image(
            cd.hex(),
            &["localhost/hodbox:latest".into()],
            Some(&l.id),
            &bd,
            Some("2026-12-01T00:00:00Z".into()),
        )
        .unwrap();
    let c = s
        .create_container(&["hod-working".into()], Some("hodbox"), "")
        .unwrap();
    let m = s.mount_layer(&c.layer).unwrap();
    fs::write(m.join("hod-was-here"), "yes\n").unwrap();
    s.unmount_layer(&c.layer, false).unwrap();
    println!(
        "image {} layer {} container {} container-layer {}",
        img.id, l.id, c.id, c.layer
    );
}

/// Interop check, run by hand: reads a store podman/buildah wrote at `$HOD_INTEROP_ROOT`,
/// finds `$HOD_INTEROP_IMAGE`, mounts a new container of it and reads `$HOD_INTEROP_FILE`.
#[test]
#[ignore]
fn interop_read() {
    let base = std::path::PathBuf::from(std::env::var("HOD_INTEROP_ROOT").unwrap());
    let driver =
        DriverKind::parse(&std::env::var("HOD_INTEROP_DRIVER").unwrap_or_else(|_| "vfs".into()))
            .unwrap();
    let s = Store::open(&opts(&base, driver)).unwrap();
    let img = s
        .image(&std::env::var("HOD_INTEROP_IMAGE").unwrap())
        .unwrap();
    println!(
        "image {} names {:?} digests {:?}",
        img.id, img.names, img.digests
    );
    for c in s.containers().unwrap() {
        println!(
            "container {} {:?} image {} layer {}",
            c.id, c.names, c.image, c.layer
        );
    }
    let c = s.create_container(&[], Some(&img.id), "").unwrap();
    let m = s.mount_layer(&c.layer).unwrap();
    let file = std::env::var("HOD_INTEROP_FILE").unwrap();
    println!(
        "{file}: {} bytes",
        fs::metadata(m.join(&file)).unwrap().len()
    );
    s.unmount_layer(&c.layer, false).unwrap();
    s.delete_container(&c.id).unwrap();
}

#[test]
fn crc64_matches_go() {
    assert_eq!(
        u64::from_be_bytes(crc64_iso(b"123456789")),
        0xb909_56c7_75a4_1001
    );
}

/// Interop check, run by hand: `$HOD_INTEROP_OP` = `mount` or `unmount` the layer of
/// container `$HOD_INTEROP_CONTAINER` in the store at `$HOD_INTEROP_ROOT`; prints the result.
#[test]
#[ignore]
fn interop_mount() {
    let base = std::path::PathBuf::from(std::env::var("HOD_INTEROP_ROOT").unwrap());
    let driver =
        DriverKind::parse(&std::env::var("HOD_INTEROP_DRIVER").unwrap_or_else(|_| "vfs".into()))
            .unwrap();
    let s = Store::open(&opts(&base, driver)).unwrap();
    let c = s
        .container(&std::env::var("HOD_INTEROP_CONTAINER").unwrap())
        .unwrap();
    match std::env::var("HOD_INTEROP_OP").unwrap().as_str() {
        "mount" => println!("mounted at {}", s.mount_layer(&c.layer).unwrap().display()),
        _ => println!(
            "still mounted: {}",
            s.unmount_layer(&c.layer, false).unwrap()
        ),
    }
    println!("count {}", s.layer_mount_count(&c.layer).unwrap());
}

fn tar_names(tar: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

/// With the real applier: the layer diff of a pulled layer is byte-identical (tar-split), and
/// a container layer's diff holds what was written into it.
fn real_put_and_diff(driver: DriverKind) {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&opts(d.path(), driver)).unwrap();
    let tar = tar_of(&[("etc/hostname", b"box\n"), ("a.txt", b"hello")]);
    let mut o = PutLayerOptions::default();
    o.expected_diff_digest = Some(Digest::of(&tar));
    let l = s.put_layer(None, &mut &tar[..], &o).unwrap();
    assert_eq!(l.diff_size, Some(tar.len() as i64));
    assert_eq!(l.uid_set, vec![0]);
    let ts = s.paths.tar_split(&l.id);
    assert!(
        gunzip(&ts).starts_with(b"{"),
        "tar-split is gzip of JSON lines"
    );
    let mut out = Vec::new();
    s.layer_diff(&l.id, &mut out).unwrap();
    assert!(out == tar, "reassembled layer differs from the tar put");
    // Streaming one layer's diff into put_layer of the same store does not deadlock.
    let (mut rd, mut wr) = std::io::pipe().unwrap();
    let copy = std::thread::scope(|sc| {
        let h = sc.spawn(|| {
            let r = s.layer_diff(&l.id, &mut wr);
            drop(wr);
            r
        });
        let c = s
            .put_layer(None, &mut rd, &PutLayerOptions::default())
            .unwrap();
        h.join().unwrap().unwrap();
        c
    });
    assert_eq!(copy.diff_digest, l.diff_digest);
    s.delete_layer(&copy.id).unwrap();

    let c = s.create_container(&["w".into()], None, "").unwrap();
    assert!(matches!(
        s.put_layer(Some(&c.layer), &mut &tar[..], &PutLayerOptions::default()),
        Err(Error::Store(StoreError::LayerInUse { .. }))
    ));
    s.delete_container(&c.id).unwrap();
    let img = "ab".repeat(32);
    s.create_image(&img, &["localhost/x:latest".into()], Some(&l.id), &[], None)
        .unwrap();
    let c = s.create_container(&["w".into()], Some("x"), "").unwrap();
    let m = s.mount_layer(&c.layer).unwrap();
    fs::write(m.join("new.txt"), "n").unwrap();
    fs::remove_file(m.join("a.txt")).unwrap();
    let mut out = Vec::new();
    s.layer_diff(&c.layer, &mut out).unwrap();
    let names = tar_names(&out);
    assert!(names.iter().any(|n| n == "new.txt"), "{names:?}");
    assert!(names.iter().any(|n| n == ".wh.a.txt"), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("hostname")), "{names:?}");
    // A bad digest fails and leaves nothing behind.
    let mut bad = PutLayerOptions::default();
    bad.expected_diff_digest = Some(Digest::of(b"x"));
    assert!(s.put_layer(Some(&l.id), &mut &tar[..], &bad).is_err());
    assert_eq!(s.layers().unwrap().len(), 2);
    s.unmount_layer(&c.layer, true).unwrap();
    s.delete_container(&c.id).unwrap();
    assert_eq!(s.delete_image(&img).unwrap(), vec![l.id.clone()]);
    if driver == DriverKind::Overlay {
        driver::overlay::cleanup_home(&s.driver).unwrap();
    }
}

#[test]
fn real_put_and_diff_vfs() {
    real_put_and_diff(DriverKind::Vfs);
}

#[test]
fn real_put_and_diff_overlay() {
    if overlay_usable() {
        real_put_and_diff(DriverKind::Overlay);
    }
}

/// Interop check, run by hand, several at once next to podman: creates, mounts, unmounts and
/// deletes containers of `localhost/hodbox` in the store at `$HOD_INTEROP_ROOT`, keeping
/// every other one (named `hod-<pid>-<i>`).
#[test]
#[ignore]
fn interop_churn() {
    let base = std::path::PathBuf::from(std::env::var("HOD_INTEROP_ROOT").unwrap());
    let driver =
        DriverKind::parse(&std::env::var("HOD_INTEROP_DRIVER").unwrap_or_else(|_| "vfs".into()))
            .unwrap();
    let s = Store::open(&opts(&base, driver)).unwrap();
    let pid = std::process::id();
    for i in 0..10 {
        let c = s
            .create_container(&[format!("hod-{pid}-{i}")], Some("localhost/hodbox"), "")
            .unwrap();
        let m = s.mount_layer(&c.layer).unwrap();
        fs::write(m.join("x"), "y").unwrap();
        s.unmount_layer(&c.layer, false).unwrap();
        if i % 2 == 1 {
            s.delete_container(&c.id).unwrap();
        }
    }
    println!("churn {pid} done");
}

/// Interop check, run by hand: delete container `$HOD_INTEROP_CONTAINER` (if set) and then
/// image `$HOD_INTEROP_IMAGE` (if set) from the store at `$HOD_INTEROP_ROOT`.
#[test]
#[ignore]
fn interop_delete() {
    let base = std::path::PathBuf::from(std::env::var("HOD_INTEROP_ROOT").unwrap());
    let driver =
        DriverKind::parse(&std::env::var("HOD_INTEROP_DRIVER").unwrap_or_else(|_| "vfs".into()))
            .unwrap();
    let s = Store::open(&opts(&base, driver)).unwrap();
    if let Ok(c) = std::env::var("HOD_INTEROP_CONTAINER") {
        s.delete_container(&c).unwrap();
    }
    if let Ok(i) = std::env::var("HOD_INTEROP_IMAGE") {
        match s.delete_image(&i) {
            Ok(layers) => println!("deleted image, layers {layers:?}"),
            Err(e) => println!("delete image: {e}"),
        }
    }
}

/// Interop check, run by hand: `put_layer` reading a tar from stdin into the store at
/// `$HOD_INTEROP_ROOT` (kill it mid-stream to leave an incomplete layer behind).
#[test]
#[ignore]
fn interop_put_stdin() {
    let base = std::path::PathBuf::from(std::env::var("HOD_INTEROP_ROOT").unwrap());
    let driver =
        DriverKind::parse(&std::env::var("HOD_INTEROP_DRIVER").unwrap_or_else(|_| "vfs".into()))
            .unwrap();
    let s = Store::open(&opts(&base, driver)).unwrap();
    let l = s
        .put_layer(None, &mut std::io::stdin(), &PutLayerOptions::default())
        .unwrap();
    println!("layer {}", l.id);
}
