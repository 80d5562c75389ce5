//! The query layer over a real (vfs) store with a small family of images:
//!
//! ```text
//! busybox (L1) ─┬─ U1 (L2, no name) ── child (L3)
//!               └─ U2 (L1, config only, no name, label k=v)
//! ```
#![allow(clippy::field_reassign_with_default)]

use super::*;
use crate::image::Digest;
use crate::store::{BigData, DriverKind, PutLayerOptions, StoreOptions};

fn tar_of(name: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    b.append_data(&mut h, name, &b"x"[..]).unwrap();
    b.into_inner().unwrap()
}

struct Family {
    _dir: tempfile::TempDir,
    store: Store,
    base: String,
    u1: String,
    child: String,
    u2: String,
}

fn hist(created_by: &str, empty: bool) -> serde_json::Value {
    serde_json::json!({"created": "2024-01-01T00:00:00Z", "created_by": created_by, "empty_layer": empty})
}

fn image(
    store: &Store,
    name: Option<&str>,
    layer: &Layer,
    diff_ids: &[&Layer],
    history: Vec<serde_json::Value>,
    labels: serde_json::Value,
    created: &str,
) -> String {
    let cfg = serde_json::json!({
        "created": created,
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|l| l.diff_digest.as_ref().unwrap().to_string()).collect::<Vec<_>>()},
        "history": history,
    });
    let data = serde_json::to_vec(&cfg).unwrap();
    let id = Digest::of(&data).hex().to_string();
    let names: Vec<String> = name.into_iter().map(str::to_string).collect();
    store
        .create_image(
            &id,
            &names,
            Some(&layer.id),
            &[BigData {
                key: format!("sha256:{id}"),
                data,
            }],
            Some(created.to_string()),
        )
        .unwrap();
    id
}

fn family() -> Family {
    let dir = tempfile::tempdir().unwrap();
    let mut o = StoreOptions::default();
    o.root = dir.path().join("root");
    o.run_root = dir.path().join("run");
    o.driver = DriverKind::Vfs;
    let store = Store::open(&o).unwrap();
    let put = |parent: Option<&str>, name: &str| {
        store
            .put_layer(parent, &mut &tar_of(name)[..], &PutLayerOptions::default())
            .unwrap()
    };
    let l1 = put(None, "a");
    let l2 = put(Some(&l1.id), "b");
    let l3 = put(Some(&l2.id), "c");
    let h1 = hist("/bin/sh -c #(nop) ADD file:a in /", false);
    let h2 = hist("/bin/sh -c touch /b", false);
    let h3 = hist("/bin/sh -c touch /c", false);
    let h2e = hist("/bin/sh -c #(nop) LABEL k=v", true);
    let none = serde_json::Value::Null;
    let base = image(
        &store,
        Some("docker.io/library/busybox:latest"),
        &l1,
        &[&l1],
        vec![h1.clone()],
        none.clone(),
        "2024-01-01T00:00:00Z",
    );
    let u1 = image(
        &store,
        None,
        &l2,
        &[&l1, &l2],
        vec![h1.clone(), h2.clone()],
        none.clone(),
        "2024-01-02T00:00:00Z",
    );
    let child = image(
        &store,
        Some("localhost/child:latest"),
        &l3,
        &[&l1, &l2, &l3],
        vec![h1.clone(), h2, h3],
        none,
        "2024-01-03T00:00:00Z",
    );
    let u2 = image(
        &store,
        None,
        &l1,
        &[&l1],
        vec![h1, h2e],
        serde_json::json!({"k": "v"}),
        "2024-01-04T00:00:00Z",
    );
    Family {
        _dir: dir,
        store,
        base,
        u1,
        child,
        u2,
    }
}

fn ids(v: Vec<&ImageRecord>) -> Vec<String> {
    let mut out: Vec<String> = v.into_iter().map(|i| i.id.clone()).collect();
    out.sort();
    out
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn parents_children_and_kinds() {
    let f = family();
    let ix = ImageIndex::load(&f.store).unwrap();
    assert_eq!(ix.parent(&f.u1).map(|i| i.id.clone()), Some(f.base.clone()));
    assert_eq!(
        ix.parent(&f.child).map(|i| i.id.clone()),
        Some(f.u1.clone())
    );
    assert_eq!(
        ix.parent(&f.u2).map(|i| i.id.clone()),
        Some(f.base.clone()),
        "same top layer, longer history"
    );
    assert_eq!(ix.parent(&f.base), None);
    assert_eq!(
        ids(ix.children(&f.base)),
        sorted(vec![f.u1.clone(), f.u2.clone()])
    );
    assert_eq!(ids(ix.children(&f.u1)), vec![f.child.clone()]);
    assert!(ix.children(&f.child).is_empty());
    assert_eq!(ids(ix.children_of_scratch()), vec![f.base.clone()]);
    assert_eq!(ix.by_id(&f.u1).map(|i| i.names.len()), Some(0));
    assert!(ix.is_intermediate(&f.u1) && !ix.is_dangling(&f.u1));
    assert!(ix.is_dangling(&f.u2) && !ix.is_intermediate(&f.u2));
    assert!(!ix.is_dangling(&f.base) && !ix.is_intermediate(&f.child));
    assert_eq!(ix.layer_chain(&f.child).len(), 3);
    assert!(ix.size(&f.child) > ix.size(&f.base));
    // Lookups for the layer cache.
    assert_eq!(ids(ix.by_label("k", Some("v"))), vec![f.u2.clone()]);
    assert!(ix.by_label("k", Some("w")).is_empty());
    assert_eq!(
        ids(ix.by_created_by("/bin/sh -c touch /c")),
        vec![f.child.clone()]
    );
    assert_eq!(
        ix.last_created_by(&f.u1).as_deref(),
        Some("/bin/sh -c touch /b")
    );
    assert_eq!(ix.get("child").unwrap().id, f.child);
    assert_eq!(ix.get("busybox").unwrap().id, f.base);
    assert_eq!(ix.created(&f.u1), 1_704_153_600);
}

#[test]
fn filters_as_buildah_images() {
    let f = family();
    let ix = ImageIndex::load(&f.store).unwrap();
    let list = |filters: &[&str], all: bool| -> Vec<String> {
        let fs: Vec<ImageFilter> = filters
            .iter()
            .map(|s| ImageFilter::parse(s).unwrap())
            .collect();
        ids(ix.list(&fs, all).unwrap())
    };
    // Checked against buildah 1.28 on the same family.
    assert_eq!(
        list(&[], false),
        sorted(vec![f.base.clone(), f.child.clone(), f.u2.clone()])
    );
    assert_eq!(list(&[], true).len(), 4);
    assert_eq!(list(&["dangling=true"], true), vec![f.u2.clone()]);
    assert_eq!(list(&["dangling!=true"], true).len(), 3);
    assert_eq!(list(&["intermediate=true"], true), vec![f.u1.clone()]);
    assert_eq!(list(&["label=k"], true), vec![f.u2.clone()]);
    assert_eq!(list(&["label=k=v"], true), vec![f.u2.clone()]);
    assert_eq!(list(&["label!=k"], true).len(), 3);
    assert_eq!(list(&["reference=busy*"], true), vec![f.base.clone()]);
    assert_eq!(list(&["reference=*child*"], true), vec![f.child.clone()]);
    assert_eq!(list(&[&format!("id={}", f.u1)], true), vec![f.u1.clone()]);
    assert!(
        list(&[&format!("id={}", &f.u1[..12])], true).is_empty(),
        "id= is the full ID"
    );
    assert_eq!(
        list(&["before=child"], true),
        sorted(vec![f.base.clone(), f.u1.clone()])
    );
    assert_eq!(list(&["since=child"], true), vec![f.u2.clone()]);
    assert!(ImageFilter::parse("since").is_err());
    assert!(ImageFilter::parse("flavor=x").is_err());
    assert!(ImageFilter::parse("dangling=maybe").is_err());
    let missing = ImageFilter::parse("before=nosuch").unwrap();
    assert!(ix.matches(&ix.images()[0], &missing).is_err());
}

#[test]
fn rmi_untags_removes_and_follows_dangling_parents() {
    let f = family();
    let o = |images: &[&str], all: bool, prune: bool| RemoveOptions {
        images: images.iter().map(|s| s.to_string()).collect(),
        all,
        prune,
        force: false,
    };
    // Prune: only the dangling one.
    let r = remove_images(&f.store, &o(&[], false, true)).unwrap();
    assert_eq!(r.removed, vec![f.u2.clone()]);
    assert!(r.errors.is_empty());
    // An extra name goes first; then the image, and its parent left dangling with it.
    f.store
        .add_image_names(&f.child, &["localhost/other:1".to_string()])
        .unwrap();
    let r = remove_images(&f.store, &o(&["other:1"], false, false)).unwrap();
    assert_eq!(r.untagged, vec!["localhost/other:1".to_string()]);
    assert!(r.removed.is_empty());
    let r = remove_images(&f.store, &o(&["child"], false, false)).unwrap();
    assert_eq!(r.untagged, vec!["localhost/child:latest".to_string()]);
    assert_eq!(r.removed, vec![f.child.clone(), f.u1.clone()]);
    let left: Vec<String> = f
        .store
        .images()
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(left, vec![f.base.clone()]);
    // Unknown names are per-image errors; usage errors are errors.
    let r = remove_images(&f.store, &o(&["nosuch"], false, false)).unwrap();
    assert_eq!(r.errors.len(), 1);
    assert!(remove_images(&f.store, &o(&[], false, false)).is_err());
    assert!(remove_images(&f.store, &o(&["x"], true, false)).is_err());
    let r = remove_images(&f.store, &o(&[], true, false)).unwrap();
    assert_eq!(r.removed, vec![f.base.clone()]);
}

/// `bud --layers` leaves one unnamed image per step; config-only steps (ENV, EXPOSE, …)
/// share their layer with the step before. Removing the built image takes the whole chain
/// of dangling intermediates with it, not only the first (buildah's rmi.bats "rmi with
/// cached images").
#[test]
fn rmi_follows_a_chain_of_config_only_intermediates() {
    let f = family();
    let l1 = f.store.image(&f.base).unwrap().layer;
    let l1 = f.store.layer(&l1).unwrap();
    let put = f
        .store
        .put_layer(
            Some(&l1.id),
            &mut &tar_of("t")[..],
            &PutLayerOptions::default(),
        )
        .unwrap();
    let h1 = hist("/bin/sh -c #(nop) ADD file:a in /", false);
    let s1 = hist("/bin/sh -c #(nop) EXPOSE 8080", true);
    let s2 = hist("/bin/sh -c #(nop) ARG X", true);
    let s3 = hist("/bin/sh -c touch /t", false);
    let none = serde_json::Value::Null;
    let i1 = image(
        &f.store,
        None,
        &l1,
        &[&l1],
        vec![h1.clone(), s1.clone()],
        none.clone(),
        "2024-02-01T00:00:00Z",
    );
    let i2 = image(
        &f.store,
        None,
        &l1,
        &[&l1],
        vec![h1.clone(), s1.clone(), s2.clone()],
        none.clone(),
        "2024-02-02T00:00:00Z",
    );
    let top = image(
        &f.store,
        Some("localhost/top:latest"),
        &put,
        &[&l1, &put],
        vec![h1, s1, s2, s3],
        none,
        "2024-02-03T00:00:00Z",
    );
    let index = ImageIndex::load(&f.store).unwrap();
    assert_eq!(
        index.parent(&top).map(|p| p.id.clone()),
        Some(i2.clone()),
        "the nearest ancestor"
    );
    drop(index);
    let r = remove_images(
        &f.store,
        &RemoveOptions {
            images: vec!["top".into()],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.removed, vec![top, i2, i1]);
    assert!(f.store.image(&f.base).is_ok(), "the named base stays");
}
