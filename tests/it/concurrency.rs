//! Issue 3: four parallel loops of from/copy/commit/rm on one root while
//! podman lists it leave a consistent store.

use crate::both_drivers;
use crate::common::{self, TestContext};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

both_drivers!(parallel_loops_leave_a_consistent_store);

const LOOPS: usize = 4;
const ROUNDS: usize = 4;

fn parallel_loops_leave_a_consistent_store(driver: &str) {
    if !common::require("parallel_loops", &["podman", "skopeo"]) {
        return;
    }
    let ctx = Arc::new(TestContext::new(driver));
    ctx.seed_busybox("busybox");
    let done = Arc::new(AtomicBool::new(false));

    // podman lists the store the whole time
    let lister = {
        let ctx = Arc::clone(&ctx);
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut n = 0;
            while !done.load(Ordering::SeqCst) {
                let r = ctx.podman(["images", "--format", "{{.ID}}"]);
                assert_eq!(
                    r.code,
                    Some(0),
                    "podman images failed during the loops:\n{}",
                    r.dump()
                );
                // podman's own listing races with removals ("determining
                // buildah container for container X: container not known"
                // when X went away between its two reads), so only other
                // failures count.
                let r = ctx.podman(["ps", "-a", "--external", "-q"]);
                assert!(
                    r.code == Some(0) || r.stderr.contains("container not known"),
                    "podman ps failed during the loops:\n{}",
                    r.dump()
                );
                n += 1;
            }
            n
        })
    };

    let workers: Vec<_> = (0..LOOPS)
        .map(|w| {
            let ctx = Arc::clone(&ctx);
            std::thread::spawn(move || {
                let src = ctx.path(&format!("src-{w}"));
                for r in 0..ROUNDS {
                    std::fs::write(&src, format!("worker {w} round {r}\n")).unwrap();
                    let ctr = ctx.ok(["from", "busybox"]);
                    ctx.ok(["copy", &ctr, src.to_str().unwrap(), "/payload"]);
                    ctx.ok(["commit", "-q", &ctr, &format!("localhost/par/w{w}:{r}")]);
                    ctx.ok(["rm", &ctr]);
                }
            })
        })
        .collect();
    let mut panics = Vec::new();
    for w in workers {
        if let Err(e) = w.join() {
            panics.push(e);
        }
    }
    done.store(true, Ordering::SeqCst);
    let listings = lister.join().expect("podman lister");
    assert!(
        panics.is_empty(),
        "{} worker(s) failed (see output above)",
        panics.len()
    );
    assert!(listings > 0);

    // every image is there, in hod's and podman's view, and usable
    let names = ctx.ok(["images", "--format", "{{.Name}}:{{.Tag}}"]);
    let r = ctx
        .podman(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .success();
    for w in 0..LOOPS {
        for round in 0..ROUNDS {
            let n = format!("localhost/par/w{w}:{round}");
            assert!(
                names.lines().any(|l| l == n),
                "hod images lacks {n}:\n{names}"
            );
            assert!(
                r.stdout.lines().any(|l| l == n),
                "podman images lacks {n}:\n{}",
                r.stdout
            );
        }
    }
    let ctr = ctx.ok(["from", "localhost/par/w3:3"]);
    let mnt = ctx.ok(["mount", &ctr]);
    assert_eq!(
        std::fs::read_to_string(format!("{mnt}/payload")).unwrap(),
        "worker 3 round 3\n"
    );
    ctx.ok(["umount", &ctr]);
    ctx.ok(["rm", &ctr]);
    assert_eq!(ctx.ok(["containers", "-q"]), "");
    common::assert_store_consistent(&ctx);
}
