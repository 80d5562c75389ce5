//! `bud`'s last commit takes over the files of a container it removes right after
//! (`Store::put_layer_adopting`): the new layer's files are moved, not written again, and
//! the image must be exactly what its tar says, on both drivers: whiteouts, hard links,
//! symlinks, the pushed blob's digest. Where the files differ from the tar (`--timestamp`)
//! or the container is kept (`--rm=false`), nothing is taken over.
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::common::{self, TestContext};

const TOOK_OVER: &str = "took over the files of container layer";

const CONTAINERFILE: &str = "FROM busybox\n\
    RUN rm /bin/ls && mkdir -p /d && echo hi > /d/f && ln /d/f /d/h && ln -s f /d/s\n\
    COPY . /data/\n";

fn setup(driver: &str) -> Option<(TestContext, PathBuf)> {
    let test = format!("bud_adopt::{driver}");
    if !common::is_root() {
        common::skipped(&test, "needs root");
        return None;
    }
    if !common::require(&test, &["skopeo"]) {
        return None;
    }
    let ctx = TestContext::new(driver);
    ctx.seed_busybox("busybox");
    let dir = ctx.path("ctx");
    fs::create_dir_all(dir.join("sub")).unwrap();
    for i in 0..50 {
        fs::write(dir.join(format!("sub/f{i}")), format!("file {i}\n")).unwrap();
    }
    fs::write(ctx.path("Containerfile"), CONTAINERFILE).unwrap();
    Some((ctx, dir))
}

fn bud(ctx: &TestContext, dir: &Path, extra: &[&str]) -> common::Run {
    let cf = ctx.path("Containerfile");
    let mut args = vec![
        "--log-level",
        "debug",
        "bud",
        "-q",
        "-f",
        cf.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-t", "img", dir.to_str().unwrap()]);
    ctx.hod(args).success()
}

/// The image's tree, as a container from it sees it.
fn check_image(ctx: &TestContext) {
    let c = ctx.ok(["from", "--quiet", "img"]);
    let mnt = PathBuf::from(ctx.ok(["mount", &c]));
    assert!(
        fs::symlink_metadata(mnt.join("bin/ls")).is_err(),
        "the RUN's whiteout of /bin/ls is lost"
    );
    assert!(mnt.join("bin/busybox").is_file());
    assert_eq!(fs::read_to_string(mnt.join("d/f")).unwrap(), "hi\n");
    assert_eq!(
        fs::metadata(mnt.join("d/f")).unwrap().ino(),
        fs::metadata(mnt.join("d/h")).unwrap().ino(),
        "hard link lost"
    );
    assert_eq!(fs::read_link(mnt.join("d/s")).unwrap(), Path::new("f"));
    for i in [0, 49] {
        assert_eq!(
            fs::read_to_string(mnt.join(format!("data/sub/f{i}"))).unwrap(),
            format!("file {i}\n")
        );
    }
    ctx.ok(["umount", &c]);
    ctx.ok(["rm", &c]);
    // Pushing rebuilds the layer from its tar-split, each file checked against its
    // recorded CRC-64, and the pipeline checks the digest against the config's diff ID.
    let out = ctx.path("out");
    ctx.ok(["push", "-q", "img", &format!("oci:{}:img", out.display())]);
    common::assert_store_consistent(ctx);
}

fn takes_over(driver: &str) {
    let Some((ctx, dir)) = setup(driver) else {
        return;
    };
    let r = bud(&ctx, &dir, &[]);
    assert!(r.stderr.contains(TOOK_OVER), "no take-over:\n{}", r.dump());
    assert_eq!(
        ctx.ok(["containers", "-a", "-q"]),
        "",
        "build container kept"
    );
    check_image(&ctx);
    // A rebuild of the same image in the same store (the layer exists): still right.
    ctx.ok(["rmi", "-f", "img"]);
    let r = bud(&ctx, &dir, &[]);
    assert!(r.stderr.contains(TOOK_OVER), "{}", r.dump());
    check_image(&ctx);
}

#[test]
fn last_commit_takes_over_the_container_files_overlay() {
    takes_over("overlay");
}

#[test]
fn last_commit_takes_over_the_container_files_vfs() {
    takes_over("vfs");
}

#[test]
fn kept_containers_and_rewritten_times_are_not_taken_over() {
    let Some((ctx, dir)) = setup("overlay") else {
        return;
    };
    let r = bud(&ctx, &dir, &["--rm=false"]);
    assert!(!r.stderr.contains(TOOK_OVER), "{}", r.dump());
    let c = ctx.ok(["containers", "-q"]);
    assert!(!c.is_empty(), "--rm=false keeps the container");
    let mnt = PathBuf::from(ctx.ok(["mount", c.lines().next().unwrap()]));
    assert_eq!(fs::read_to_string(mnt.join("d/f")).unwrap(), "hi\n");
    ctx.ok(["umount", "--all"]);
    ctx.ok(["rm", "--all"]);
    check_image(&ctx);
    ctx.ok(["rmi", "-f", "img"]);
    let r = bud(&ctx, &dir, &["--timestamp", "0"]);
    assert!(!r.stderr.contains(TOOK_OVER), "{}", r.dump());
    check_image(&ctx);
}
