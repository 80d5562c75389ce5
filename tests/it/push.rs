//! Issue 3: pushed images checked with independent tools.

use crate::both_drivers;
use crate::common::{self, TestContext, PODMAN_RUN_OPTS};
use std::process::Command;

both_drivers!(push_oci_validates_and_unpacks, diff_ids_match_skopeo);

fn push_oci_validates_and_unpacks(driver: &str) {
    if !common::require("push_oci_validates", &["oci-image-tool", "umoci"]) {
        return;
    }
    let ctx = TestContext::new(driver);
    let ctr = ctx.scratch_busybox_container();
    ctx.ok(["commit", "-q", &ctr, "localhost/pushme:1"]);
    let layout = ctx.path("layout");
    ctx.ok([
        "push",
        "localhost/pushme:1",
        &format!("oci:{}:tag", layout.display()),
    ]);
    // Debian's oci-image-tool has no imageLayout check; --type image validates
    // the layout's index, manifest, config and layers.
    let r = common::run_cmd({
        let mut c = Command::new("oci-image-tool");
        c.args(["validate", "--type", "image", "--ref", "name=tag"])
            .arg(&layout);
        c
    });
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert!(r.stdout.contains("Validation succeeded"), "{}", r.dump());
    let bundle = ctx.path("bundle");
    let r = common::run_cmd({
        let mut c = Command::new("umoci");
        c.args(["unpack", "--image", &format!("{}:tag", layout.display())])
            .arg(&bundle);
        c
    });
    assert_eq!(r.code, Some(0), "{}", r.dump());
    let same = std::fs::read(bundle.join("rootfs/bin/busybox")).unwrap()
        == std::fs::read("/bin/busybox").unwrap();
    assert!(same, "unpacked busybox differs");
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert!(spec["process"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "foo=bar"));
}

/// The uncompressed layer digests of `hod push` equal those of `skopeo copy
/// containers-storage:… oci:…` for the same image: the tar-split data is right.
fn diff_ids_match_skopeo(driver: &str) {
    if !common::require("diff_ids_match_skopeo", &["skopeo"]) {
        return;
    }
    let ctx = TestContext::new(driver);
    ctx.seed_busybox("busybox");
    let ctr = ctx.ok(["from", "busybox"]);
    let mnt = std::path::PathBuf::from(ctx.ok(["mount", &ctr]));
    // A change set with the interesting cases: whiteouts, an opaque-making
    // replacement, hard links, symlinks, a fifo, xattrs, odd modes.
    std::fs::remove_file(mnt.join("bin/vi")).unwrap();
    std::fs::create_dir_all(mnt.join("data/sub")).unwrap();
    std::fs::write(mnt.join("data/sub/file"), vec![7u8; 100_000]).unwrap();
    std::fs::hard_link(mnt.join("data/sub/file"), mnt.join("data/hardlink")).unwrap();
    std::os::unix::fs::symlink("sub/file", mnt.join("data/symlink")).unwrap();
    std::fs::remove_dir_all(mnt.join("home")).ok();
    std::fs::create_dir_all(mnt.join("home/new")).unwrap();
    let sh = |s: &str| {
        let r = common::run_cmd({
            let mut c = Command::new("sh");
            c.args(["-c", s]);
            c
        });
        assert_eq!(r.code, Some(0), "{}", r.dump());
    };
    sh(&format!(
        "mkfifo {0}/data/fifo && chmod 4755 {0}/data/sub/file",
        mnt.display()
    ));
    let _ = Command::new("setfattr")
        .args(["-n", "user.hod", "-v", "test"])
        .arg(mnt.join("data/sub/file"))
        .status();
    ctx.ok(["umount", &ctr]);
    ctx.ok(["commit", "-q", &ctr, "localhost/diffids:1"]);

    let by_hod = ctx.path("by-hod");
    let by_skopeo = ctx.path("by-skopeo");
    ctx.ok([
        "push",
        "localhost/diffids:1",
        &format!("oci:{}:1", by_hod.display()),
    ]);
    common::run_cmd({
        let mut c = Command::new("skopeo");
        c.args([
            "copy",
            "--quiet",
            &format!("containers-storage:{}localhost/diffids:1", ctx.store_spec()),
            &format!("oci:{}:1", by_skopeo.display()),
        ]);
        c
    })
    .success();
    let (_, hod_cfg) = common::oci_manifest_and_config(&by_hod, "1");
    let (_, sk_cfg) = common::oci_manifest_and_config(&by_skopeo, "1");
    let hod_ids = &hod_cfg["rootfs"]["diff_ids"];
    assert_eq!(hod_ids.as_array().map(|a| a.len()), Some(2), "{hod_cfg}");
    assert_eq!(hod_ids, &sk_cfg["rootfs"]["diff_ids"], "diff_ids differ");
}

/// oci: -> hod -> docker-archive: -> podman load round-trips.
#[test]
fn oci_to_docker_archive_to_podman_load() {
    if !common::require("oci_to_docker_archive", &["podman", "skopeo"]) {
        return;
    }
    let ctx = TestContext::new("vfs");
    let layout = common::busybox_layout();
    ctx.ok(["pull", &format!("oci:{}:latest", layout.display())]);
    let iid = ctx.ok(["images", "-q", "--no-trunc"]);
    let iid = iid
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let archive = ctx.path("archive.tar");
    ctx.ok([
        "push",
        &iid,
        &format!("docker-archive:{}:localhost/roundtrip:1", archive.display()),
    ]);

    let other = TestContext::new("vfs");
    let r = other
        .podman(["load", "-i", archive.to_str().unwrap()])
        .success();
    assert!(r.stdout.contains("localhost/roundtrip:1"), "{}", r.dump());
    let mut args = vec!["run", "--rm"];
    args.extend(PODMAN_RUN_OPTS);
    args.extend([
        "localhost/roundtrip:1",
        "/bin/busybox",
        "echo",
        "round-trip-ok",
    ]);
    let r = other.podman(&args).success();
    assert_eq!(r.out(), "round-trip-ok");
    let r = other
        .podman(["images", "-q", "--no-trunc", "localhost/roundtrip:1"])
        .success();
    assert_eq!(
        r.out().trim_start_matches("sha256:"),
        iid,
        "image ID changed on the way"
    );
}
