//! Issue 3: one root shared by hod, podman and skopeo, for both drivers.

use crate::both_drivers;
use crate::common::{self, TestContext, PODMAN_RUN_OPTS};

both_drivers!(
    scratch_image_runs_under_podman,
    podman_and_skopeo_images_are_usable,
    store_files_are_in_containers_storage_format,
    rmi_of_an_image_in_use_names_the_container,
);

/// `rmi` of an image a working container (hod's or podman's) still uses
/// refuses and names the container; the image stays usable.
fn rmi_of_an_image_in_use_names_the_container(driver: &str) {
    if !common::require("rmi_in_use", &["skopeo", "podman"]) {
        return;
    }
    let ctx = TestContext::new(driver);
    ctx.seed_busybox("localhost/inuse:1");
    ctx.ok(["from", "--name", "holder", "localhost/inuse:1"]);
    let id = ctx.ok(["inspect", "--format", "{{.ContainerID}}", "holder"]);
    let r = ctx.hod(["rmi", "localhost/inuse:1"]);
    common::assert_no_panic(&r);
    assert_eq!(r.code, Some(125), "{}", r.dump());
    assert!(
        r.stderr.contains(&id) || r.stderr.contains("holder"),
        "rmi does not name the container {id} (holder):\n{}",
        r.dump()
    );
    assert!(ctx
        .ok(["images", "--format", "{{.Name}}"])
        .contains("localhost/inuse"));
    ctx.ok(["rm", "holder"]);
    // a podman container counts too
    let r = ctx.podman([
        "create",
        "--net",
        "none",
        "--name",
        "podman-holder",
        "localhost/inuse:1",
        "true",
    ]);
    let pid = r.success().out().to_string();
    let r = ctx.hod(["rmi", "localhost/inuse:1"]);
    assert_eq!(r.code, Some(125), "{}", r.dump());
    assert!(
        r.stderr.contains(&pid) || r.stderr.contains("podman-holder"),
        "rmi does not name podman's container:\n{}",
        r.dump()
    );
    ctx.podman(["rm", "podman-holder"]).success();
    ctx.ok(["rmi", "localhost/inuse:1"]);
    common::assert_store_consistent(&ctx);
}

/// The scratch example's image runs under podman on the same root, and
/// `skopeo inspect` shows what `hod config` set.
fn scratch_image_runs_under_podman(driver: &str) {
    if !common::require("scratch_image_runs_under_podman", &["podman", "skopeo"]) {
        return;
    }
    let ctx = TestContext::new(driver);
    let ctr = ctx.scratch_busybox_container();
    ctx.ok(["commit", "-q", &ctr, "localhost/scratch-bb:1"]);

    let mut args = vec!["run", "--rm"];
    args.extend(PODMAN_RUN_OPTS);
    args.extend(["localhost/scratch-bb:1", "/bin/busybox", "echo", "ok"]);
    // exactly the command; with the entrypoint /bin/busybox this runs
    // `busybox /bin/busybox echo ok`, which busybox treats as `echo ok`
    let r = ctx.podman(&args).success();
    assert_eq!(r.out(), "ok", "{}", r.dump());

    let r = common::run_cmd({
        let mut c = std::process::Command::new("skopeo");
        c.args([
            "inspect",
            &format!(
                "containers-storage:{}localhost/scratch-bb:1",
                ctx.store_spec()
            ),
        ]);
        c
    })
    .success();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("skopeo inspect JSON");
    assert_eq!(v["Labels"]["k"], "v", "{}", r.stdout);
    assert!(
        v["Env"].as_array().unwrap().iter().any(|e| e == "foo=bar"),
        "{}",
        r.stdout
    );
    let r = common::run_cmd({
        let mut c = std::process::Command::new("skopeo");
        c.args([
            "inspect",
            "--config",
            &format!(
                "containers-storage:{}localhost/scratch-bb:1",
                ctx.store_spec()
            ),
        ]);
        c
    })
    .success();
    let cfg: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        cfg["config"]["Entrypoint"],
        serde_json::json!(["/bin/busybox"])
    );
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
}

/// An image podman or skopeo put in the root is listed by `hod images` and
/// usable by `hod from`; an image hod committed is listed by `podman images`.
fn podman_and_skopeo_images_are_usable(driver: &str) {
    if !common::require("podman_and_skopeo_images_are_usable", &["podman", "skopeo"]) {
        return;
    }
    let ctx = TestContext::new(driver);
    ctx.seed_busybox("localhost/by-skopeo:1");
    ctx.podman(["tag", "localhost/by-skopeo:1", "localhost/by-podman:2"])
        .success();

    let listed = ctx.ok(["images", "--format", "{{.Name}}:{{.Tag}}"]);
    assert!(listed.contains("localhost/by-skopeo:1"), "{listed}");
    assert!(listed.contains("localhost/by-podman:2"), "{listed}");

    let ctr = ctx.ok(["from", "--pull=never", "localhost/by-podman:2"]);
    let mnt = ctx.ok(["mount", &ctr]);
    assert!(
        std::path::Path::new(&mnt).join("bin/busybox").is_file(),
        "busybox missing in {mnt}"
    );
    std::fs::write(std::path::Path::new(&mnt).join("from-hod"), "hi\n").unwrap();
    ctx.ok(["umount", &ctr]);
    ctx.ok(["commit", "-q", &ctr, "localhost/by-hod:3"]);

    let r = ctx
        .podman(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .success();
    assert!(r.stdout.contains("localhost/by-hod:3"), "{}", r.dump());
    let mut args = vec!["run", "--rm"];
    args.extend(PODMAN_RUN_OPTS);
    args.extend(["localhost/by-hod:3", "/bin/busybox", "cat", "/from-hod"]);
    let r = ctx.podman(&args).success();
    assert_eq!(r.out(), "hi");
    // podman sees hod's working container as an external container
    let r = ctx
        .podman(["ps", "-a", "--external", "--format", "{{.ID}}"])
        .success();
    assert!(
        !r.out().is_empty(),
        "podman does not see the working container:\n{}",
        r.dump()
    );
    common::assert_store_consistent(&ctx);
}

/// The on-disk files containers/storage expects.
fn store_files_are_in_containers_storage_format(driver: &str) {
    if !common::require("store_files", &["skopeo"]) {
        return;
    }
    let ctx = TestContext::new(driver);
    ctx.seed_busybox("busybox");
    let ctr = ctx.ok(["from", "busybox"]);
    let src = ctx.path("f");
    std::fs::write(&src, "x").unwrap();
    ctx.ok(["copy", &ctr, src.to_str().unwrap(), "/f"]);
    let iid = ctx.ok(["commit", "-q", &ctr, "img"]);
    let iid = iid.trim_start_matches("sha256:");
    let d = driver;
    for f in [
        format!("{d}-layers/layers.json"),
        format!("{d}-layers/layers.lock"),
        format!("{d}-images/images.json"),
        format!("{d}-images/images.lock"),
        format!("{d}-containers/containers.json"),
        format!("{d}-containers/containers.lock"),
        "storage.lock".to_string(),
    ] {
        assert!(ctx.root.join(&f).exists(), "missing {f}");
    }
    let images: serde_json::Value = serde_json::from_slice(
        &std::fs::read(ctx.root.join(format!("{d}-images/images.json"))).unwrap(),
    )
    .unwrap();
    let img = images
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == iid)
        .unwrap_or_else(|| panic!("image {iid} not in images.json: {images}"));
    let top = img["layer"].as_str().expect("image has a top layer");
    assert!(
        ctx.root
            .join(format!("{d}-layers/{top}.tar-split.gz"))
            .is_file(),
        "no tar-split for the committed layer {top}"
    );
    let big = ctx.root.join(format!("{d}-images/{iid}"));
    assert!(big.join("manifest").is_file(), "no manifest big-data file");
    let bd = img["big-data-names"].as_array().expect("big-data-names");
    assert!(
        bd.iter()
            .any(|n| n.as_str().is_some_and(|n| n.starts_with("sha256:"))),
        "{img}"
    );
    if driver == "overlay" {
        let layer = ctx.root.join("overlay").join(top);
        assert!(layer.join("diff").is_dir(), "no diff/ for {top}");
        let link = std::fs::read_to_string(layer.join("link")).expect("overlay link file");
        assert!(
            ctx.root.join("overlay/l").join(link.trim()).exists(),
            "overlay/l/{} missing",
            link.trim()
        );
        assert!(
            layer.join("lower").is_file(),
            "no lower file for a layer with a parent"
        );
    } else {
        assert!(ctx.root.join("vfs/dir").join(top).is_dir());
    }
    common::assert_store_consistent(&ctx);
}
