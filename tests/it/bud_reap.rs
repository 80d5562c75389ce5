//! `bud` deletes the container of a stage as soon as no stage needs it any more (it
//! succeeded, is not the target, and every stage using it is past its steps), in the
//! background while the build goes on; the deletion moves the layer's directory aside under
//! the store's locks and deletes the tree after (`driver::tempdirs`). What buildah keeps,
//! hod keeps: the target's container and those of stages a failed stage used (without
//! `--force-rm`), and every container with `--rm=false`.
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{self, TestContext};

const REMOVED: &str = "removed the container of stage";

const CONTAINERFILE: &str = "FROM busybox AS a\n\
    RUN echo a > /a\n\
    FROM busybox AS b\n\
    COPY --from=a /a /a\n\
    RUN cat /a > /b && echo b >> /b\n\
    FROM busybox\n\
    COPY --from=b /b /b\n\
    RUN test \"$(cat /b)\" = \"$(printf 'a\\nb')\"\n";

fn setup(test: &str, driver: &str, containerfile: &str) -> Option<(TestContext, PathBuf)> {
    if !common::is_root() {
        common::skipped(test, "needs root");
        return None;
    }
    if !common::require(test, &["skopeo"]) {
        return None;
    }
    let ctx = TestContext::new(driver);
    ctx.seed_busybox("busybox");
    let dir = ctx.path("ctx");
    fs::create_dir_all(&dir).unwrap();
    fs::write(ctx.path("Containerfile"), containerfile).unwrap();
    Some((ctx, dir))
}

fn bud(ctx: &TestContext, dir: &Path, extra: &[&str]) -> common::Run {
    let cf = ctx.path("Containerfile");
    let mut args = vec!["--log-level", "debug", "bud", "-f", cf.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-t", "img", dir.to_str().unwrap()]);
    ctx.hod(args)
}

fn containers(ctx: &TestContext) -> usize {
    ctx.ok(["containers", "-a", "-q"]).lines().count()
}

fn stages_removed(r: &common::Run) -> Vec<String> {
    r.stderr
        .lines()
        .filter_map(|l| l.split(REMOVED).nth(1))
        .map(|rest| rest.split(':').next().unwrap_or("").trim().to_string())
        .collect()
}

fn reaped(driver: &str) {
    let Some((ctx, dir)) = setup(&format!("bud_reap::{driver}"), driver, CONTAINERFILE) else {
        return;
    };
    let r = bud(&ctx, &dir, &[]).success();
    let mut removed = stages_removed(&r);
    removed.sort();
    assert_eq!(removed, ["0", "1"], "{}", r.dump());
    assert_eq!(containers(&ctx), 0, "{}", r.dump());
    common::assert_store_consistent(&ctx);
    let c = ctx.ok(["from", "--quiet", "img"]);
    let mnt = PathBuf::from(ctx.ok(["mount", &c]));
    assert_eq!(fs::read_to_string(mnt.join("b")).unwrap(), "a\nb\n");
    assert!(!mnt.join("a").exists());
    ctx.ok(["umount", &c]);
    ctx.ok(["rm", &c]);

    // The same build with two jobs: stages side by side, each removed once.
    ctx.ok(["rmi", "-f", "img"]);
    let r = bud(&ctx, &dir, &["--jobs", "2"]).success();
    assert_eq!(stages_removed(&r).len(), 2, "{}", r.dump());
    assert_eq!(containers(&ctx), 0, "{}", r.dump());
    common::assert_store_consistent(&ctx);
}

#[test]
fn finished_stages_are_removed_while_the_build_goes_on_vfs() {
    reaped("vfs");
}

#[test]
fn finished_stages_are_removed_while_the_build_goes_on_overlay() {
    reaped("overlay");
}

#[test]
fn a_failed_build_keeps_what_buildah_keeps() {
    let failing = CONTAINERFILE.replace("RUN test", "RUN false && test");
    let Some((ctx, dir)) = setup("bud_reap::failed", "vfs", &failing) else {
        return;
    };
    // Stage 0 is done with (stage 1, its only user, finished its steps); stage 1's user
    // failed, so it stays, with the failed target's container.
    let r = bud(&ctx, &dir, &[]).code_is(1);
    assert_eq!(stages_removed(&r), ["0"], "{}", r.dump());
    assert_eq!(containers(&ctx), 2, "{}", r.dump());
    common::assert_store_consistent(&ctx);
    ctx.ok(["rm", "--all"]);

    let r = bud(&ctx, &dir, &["--force-rm"]).code_is(1);
    assert_eq!(containers(&ctx), 0, "{}", r.dump());

    // --rm=false keeps every container, failed or not.
    let r = bud(&ctx, &dir, &["--rm=false"]).code_is(1);
    assert!(stages_removed(&r).is_empty(), "{}", r.dump());
    assert_eq!(containers(&ctx), 3, "{}", r.dump());
    ctx.ok(["rm", "--all"]);
    let r = bud(&ctx, &dir, &["--rm=false", "--force-rm=false"]).code_is(1);
    assert_eq!(containers(&ctx), 3, "{}", r.dump());
    common::assert_store_consistent(&ctx);
}

/// A removal killed after its layer directory was moved aside leaves the pair in
/// `tempdirs`; the next command of any kind deletes it, unless its owner still holds the
/// lock.
#[test]
fn what_a_killed_removal_left_is_deleted_by_the_next_command() {
    let Some((ctx, _)) = setup("bud_reap::killed", "vfs", CONTAINERFILE) else {
        return;
    };
    let root = ctx.root.join("vfs/tempdirs");
    fs::create_dir_all(root.join("temp-dir-0123/abc/sub")).unwrap();
    fs::write(root.join("temp-dir-0123/abc/sub/f"), b"x").unwrap();
    fs::write(root.join("lock-0123"), b"").unwrap();
    // A live owner: this process holds its lock.
    fs::create_dir_all(root.join("temp-dir-4567/def")).unwrap();
    let held = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(root.join("lock-4567"))
        .unwrap();
    // A classic POSIX lock, as containers/storage takes it: it conflicts with hod's OFD lock.
    rustix::fs::fcntl_lock(&held, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    ctx.ok(["images"]);
    let mut left: Vec<String> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["lock-4567", "temp-dir-4567"]);
    drop(held);
    ctx.ok(["containers"]);
    assert_eq!(fs::read_dir(&root).unwrap().count(), 0);
}
