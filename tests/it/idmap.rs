//! ID-mapped containers (`--userns-uid-map`, `--userns-gid-map`, `--userns-uid-map-user`,
//! `--userns-gid-map-group`): files stored shifted to the host IDs of the maps, RUN in a
//! user namespace with them, commit mapping the owners back (namespaces.bats "idmapping",
//! "idmapping-and-squash", "invalid userns-uid-map userns-gid-map", "idmapping-syntax").
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::common::{self, TestContext};

fn owner(p: &Path) -> String {
    let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    format!("{}:{}", m.uid(), m.gid())
}

/// Layers of the store that carry ID maps (`uidmap` in layers.json).
fn mapped_layers(ctx: &TestContext) -> Vec<serde_json::Value> {
    let p = ctx.root.join(format!("{}-layers/layers.json", ctx.driver));
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|l| l.get("uidmap").is_some())
        .cloned()
        .collect()
}

fn mapped_container_round_trip(driver: &str) {
    let test = &format!("idmap::mapped_container_round_trip_{driver}");
    if !common::is_root() {
        common::skipped(test, "needs root");
        return;
    }
    if !common::require(test, &["skopeo"]) {
        return;
    }
    let ctx = TestContext::new(driver);
    ctx.seed_busybox("busybox");
    let ctr = ctx.ok([
        "--userns-uid-map",
        "0:30000:2000",
        "--userns-gid-map",
        "0:40000:2000",
        "from",
        "--quiet",
        "busybox",
    ]);
    // RUN gets a user namespace with the maps, and the image's files read as root's.
    let maps = ctx.ok([
        "run",
        &ctr,
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map",
    ]);
    let maps: Vec<String> = maps
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(maps, ["0 30000 2000", "0 40000 2000"]);
    let host_ns = fs::read_link("/proc/self/ns/user").unwrap();
    let ns = ctx.ok(["run", &ctr, "readlink", "/proc/self/ns/user"]);
    assert_ne!(ns, host_ns.to_string_lossy());
    assert_eq!(
        ctx.ok(["run", &ctr, "stat", "-c", "%u:%g", "/bin/sh"]),
        "0:0"
    );

    // copy: --chown and the default owner are container IDs, stored shifted; modes kept.
    let src = ctx.path("src");
    fs::create_dir_all(src.join("somedir")).unwrap();
    fs::write(src.join("somefile"), "x").unwrap();
    fs::write(src.join("somedir/other"), "y").unwrap();
    fs::set_permissions(
        src.join("somedir/other"),
        fs::Permissions::from_mode(0o4700),
    )
    .unwrap();
    ctx.ok([
        "copy",
        "--chown",
        "1:1",
        &ctr,
        src.join("somefile").to_str().unwrap(),
        "/",
    ]);
    ctx.ok([
        "copy",
        &ctr,
        src.join("somedir").to_str().unwrap(),
        "/somedir",
    ]);
    assert_eq!(
        ctx.ok(["run", &ctr, "stat", "-c", "%u:%g", "/somefile"]),
        "1:1"
    );
    assert_eq!(
        ctx.ok(["run", &ctr, "stat", "-c", "%u:%g %a", "/somedir/other"]),
        "0:0 4700"
    );
    let mnt = std::path::PathBuf::from(ctx.ok(["mount", &ctr]));
    assert_eq!(owner(&mnt.join("somefile")), "30001:40001");
    assert_eq!(owner(&mnt.join("somedir/other")), "30000:40000");
    assert_eq!(owner(&mnt.join("bin")), "30000:40000");
    assert_eq!(
        fs::metadata(mnt.join("somedir/other")).unwrap().mode() & 0o7777,
        0o4700
    );
    ctx.ok(["umount", &ctr]);

    // A second container with the same maps shares the image's mapped top layer.
    let layers_before = mapped_layers(&ctx).len();
    let ctr2 = ctx.ok([
        "--userns-uid-map",
        "0:30000:2000",
        "--userns-gid-map",
        "0:40000:2000",
        "from",
        "--quiet",
        "busybox",
    ]);
    assert_eq!(
        mapped_layers(&ctx).len(),
        layers_before + 1,
        "the second container should add its own layer only"
    );
    ctx.ok(["rm", &ctr2]);

    // commit maps the owners back: the image has the base's layers plus one, unshifted.
    ctx.ok(["commit", "-q", &ctr, "mapped"]);
    let base_layers = common::oci_manifest_and_config(&common::busybox_layout(), "latest").0
        ["layers"]
        .as_array()
        .unwrap()
        .len();
    let inspect: serde_json::Value =
        serde_json::from_str(&ctx.ok(["inspect", "--type", "image", "mapped"])).unwrap();
    assert_eq!(
        inspect["OCIv1"]["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .len(),
        base_layers + 1
    );
    let plain = ctx.ok(["from", "--quiet", "mapped"]);
    let mnt = std::path::PathBuf::from(ctx.ok(["mount", &plain]));
    assert_eq!(owner(&mnt.join("somefile")), "1:1");
    assert_eq!(owner(&mnt.join("somedir/other")), "0:0");
    assert_eq!(owner(&mnt.join("bin")), "0:0");
    ctx.ok(["umount", &plain]);

    // rmi of the base removes its mapped top layer with it.
    ctx.ok(["rm", "--all"]);
    ctx.ok(["rmi", "mapped", "busybox"]);
    assert!(
        mapped_layers(&ctx).is_empty(),
        "mapped layers left: {:?}",
        mapped_layers(&ctx)
    );
    common::assert_store_consistent(&ctx);
}

#[test]
fn mapped_container_round_trip_vfs() {
    mapped_container_round_trip("vfs");
}

#[test]
fn mapped_container_round_trip_overlay() {
    mapped_container_round_trip("overlay");
}

/// namespaces.bats "idmapping-and-squash": a squashed commit of a mapped scratch
/// container holds container IDs.
#[test]
fn mapped_scratch_squash() {
    let test = "idmap::mapped_scratch_squash";
    if !common::is_root() {
        common::skipped(test, "needs root");
        return;
    }
    let ctx = TestContext::new("vfs");
    let f = ctx.path("randomfile");
    fs::write(&f, "random").unwrap();
    let ctr = ctx.ok([
        "from",
        "--userns-uid-map",
        "0:32:16",
        "--userns-gid-map",
        "0:48:16",
        "scratch",
    ]);
    ctx.ok(["copy", &ctr, f.to_str().unwrap(), "/"]);
    ctx.ok([
        "copy",
        "--chown",
        "1:1",
        &ctr,
        f.to_str().unwrap(),
        "/randomfile2",
    ]);
    let mnt = std::path::PathBuf::from(ctx.ok(["mount", &ctr]));
    assert_eq!(owner(&mnt.join("randomfile")), "32:48");
    assert_eq!(owner(&mnt.join("randomfile2")), "33:49");
    ctx.ok(["commit", "-q", "--squash", "--rm", &ctr, "squashed"]);
    let c = ctx.ok(["from", "--quiet", "squashed"]);
    let mnt = std::path::PathBuf::from(ctx.ok(["mount", &c]));
    assert_eq!(owner(&mnt.join("randomfile")), "0:0");
    assert_eq!(owner(&mnt.join("randomfile2")), "1:1");
}

/// `bud` with maps: every stage's container is mapped, COPY and WORKDIR own through the
/// maps, and the image holds container IDs.
#[test]
fn bud_with_maps() {
    let test = "idmap::bud_with_maps";
    if !common::is_root() {
        common::skipped(test, "needs root");
        return;
    }
    if !common::require(test, &["skopeo"]) {
        return;
    }
    let ctx = TestContext::new("overlay");
    ctx.seed_busybox("busybox");
    let dir = ctx.path("ctx");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("somefile"), "x").unwrap();
    fs::write(
        dir.join("Containerfile"),
        "FROM busybox\n\
         RUN echo UidMapResult && cat /proc/self/uid_map\n\
         COPY --chown=1:1 somefile /\n\
         RUN echo StatSomefileResult && stat -c '%u:%g' /somefile\n\
         USER 2:3\n\
         WORKDIR /new-workdir\n\
         RUN echo StatNewWorkdir && stat -c '%u:%g' $PWD\n",
    )
    .unwrap();
    let r = ctx
        .hod([
            "--userns-uid-map",
            "0:50000:1000",
            "bud",
            "-t",
            "built",
            dir.to_str().unwrap(),
        ])
        .success();
    let out = r.out().to_string();
    let after = |marker: &str| {
        let lines: Vec<&str> = out.lines().collect();
        let i = lines
            .iter()
            .position(|l| *l == marker)
            .unwrap_or_else(|| panic!("{marker} not in {out}"));
        lines[i + 1]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(after("UidMapResult"), "0 50000 1000");
    assert_eq!(after("StatSomefileResult"), "1:1");
    assert_eq!(after("StatNewWorkdir"), "2:3");
    let c = ctx.ok(["from", "--quiet", "built"]);
    let mnt = std::path::PathBuf::from(ctx.ok(["mount", &c]));
    assert_eq!(owner(&mnt.join("somefile")), "1:1");
    assert_eq!(owner(&mnt.join("new-workdir")), "2:3");
}

/// Bad maps: buildah's messages, exit 125, nothing created.
#[test]
fn bad_maps_are_refused_in_buildahs_words() {
    let ctx = TestContext::new("vfs");
    let r = ctx
        .hod([
            "from",
            "--userns-uid-map",
            "16",
            "--userns-gid-map",
            "0:48:16",
            "scratch",
        ])
        .code_is(125);
    assert_eq!(
        r.stderr.trim(),
        r#"Error: initializing ID mappings: userns-uid-map setting is malformed expected ["uint32:uint32:uint32"]: ["16"]"#
    );
    let r = ctx
        .hod([
            "from",
            "--userns-uid-map",
            "0:32:16",
            "--userns-gid-map",
            "16",
            "scratch",
        ])
        .code_is(125);
    assert!(
        r.stderr.contains(
            r#"userns-gid-map setting is malformed expected ["uint32:uint32:uint32"]: ["16"]"#
        ),
        "{}",
        r.dump()
    );
    let r = ctx
        .hod([
            "bud",
            "--userns-uid-map",
            "a",
            "--userns-gid-map",
            "bogus",
            "/nonexistent",
        ])
        .code_is(125);
    assert!(
        r.stderr.contains(
            r#"userns-uid-map setting is malformed expected ["uint32:uint32:uint32"]: ["a"]"#
        ),
        "{}",
        r.dump()
    );
    let r = ctx
        .hod(["from", "--userns-gid-map=0:10000:65536", "scratch"])
        .code_is(125);
    assert!(
        r.stderr
            .contains("userns-gid-map can not be used without --userns-uid-map"),
        "{}",
        r.dump()
    );
    assert_eq!(ctx.ok(["containers", "-q"]), "");
}

/// namespaces.bats "user-and-network-namespace": a mapped container gets a network
/// namespace of its own by default, and `--net=host` keeps the host's, with the embedded
/// runtime and with runc (sysfs cannot be mounted there: /sys is the host's, bound).
#[test]
fn mapped_runs_and_the_network_namespace() {
    let test = "idmap::mapped_runs_and_the_network_namespace";
    if !common::is_root() {
        common::skipped(test, "needs root");
        return;
    }
    if !common::require(test, &["skopeo", "runc"]) {
        return;
    }
    let ctx = TestContext::new("vfs");
    ctx.seed_busybox("busybox");
    let ctr = ctx.ok([
        "--userns-uid-map",
        "0:20000:3000",
        "from",
        "--quiet",
        "busybox",
    ]);
    let host_net = fs::read_link("/proc/self/ns/net").unwrap();
    let host_net = host_net.to_string_lossy();
    for runtime in [&[][..], &["--runtime", "runc"][..]] {
        let mut args = vec!["run"];
        args.extend_from_slice(runtime);
        let run = |extra: &[&str]| {
            let mut a = args.clone();
            a.extend_from_slice(extra);
            a.push(&ctr);
            a.extend_from_slice(&["readlink", "/proc/self/ns/net"]);
            ctx.ok(a)
        };
        assert_ne!(
            run(&[]),
            host_net,
            "{runtime:?}: a private network by default"
        );
        assert_eq!(run(&["--net=host"]), host_net, "{runtime:?}: --net=host");
    }
}
