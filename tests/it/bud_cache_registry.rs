//! Issue 14 item 11: `bud --layers --cache-to/--cache-from` through a local registry
//! (`docker-registry` on 127.0.0.1, see `common::registry`): a build pushes every step's
//! image as `REPO:<cache key>`; the same build on an empty store pulls and reuses them all.
use std::fs;

use crate::common::registry::{Mode, TestRegistry};
use crate::common::{self, TestContext};

const CF: &str =
    "FROM busybox\nARG V=1\nENV E=1\nCOPY a.txt /a.txt\nRUN echo $V > /v\nCMD [\"sh\"]\n";

#[test]
fn cache_to_then_cache_from_on_an_empty_store_reuses_every_step() {
    if !common::require("bud --cache-to", &["skopeo", "docker-registry"]) || common::is_buildah() {
        return;
    }
    let Some(reg) = TestRegistry::start(Mode::Plain) else {
        return;
    };
    let repo = format!("{}/hod/cache", reg.host);
    let dir = reg.dir().join("ctx");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("Containerfile"), CF).unwrap();
    fs::write(dir.join("a.txt"), "one\n").unwrap();
    let ctx_dir = dir.display().to_string();
    let bud = |ctx: &TestContext, extra: &[&str]| -> String {
        let mut a = vec!["bud", "--layers", "--tls-verify=false", "-t", "cached"];
        a.extend_from_slice(extra);
        a.push(&ctx_dir);
        ctx.ok(a)
    };

    // Runner 1: builds everything and pushes each step.
    let one = TestContext::new("vfs");
    one.seed_busybox("busybox");
    let first = bud(&one, &["--cache-to", &repo]);
    assert_eq!(first.matches("--> Using cache").count(), 0, "{first}");
    // buildah's lines (bud.bats remote cache tests): one per pushed step, the last one
    // after the build's COMMIT line.
    assert_eq!(first.matches("--> Pushing cache ").count(), 5, "{first}");
    assert!(
        first.contains("COMMIT cached\n--> Pushing cache "),
        "{first}"
    );
    // A rebuild hits locally: each hit is reported, then pushed (buildah's order).
    let again = bud(&one, &["--cache-to", &repo]);
    let lines: Vec<&str> = again.lines().collect();
    let pushes: Vec<usize> = (1..lines.len())
        .filter(|&i| lines[i].starts_with("--> Pushing cache "))
        .collect();
    assert_eq!(pushes.len(), 5, "{again}");
    assert!(
        pushes
            .iter()
            .all(|&i| lines[i - 1].starts_with("--> Using cache ")),
        "{again}"
    );
    let tags = common::run_cmd({
        let mut c = std::process::Command::new("skopeo");
        c.args([
            "list-tags",
            "--tls-verify=false",
            &format!("docker://{repo}"),
        ]);
        c
    })
    .success();
    let tags: serde_json::Value = serde_json::from_str(&tags.stdout).unwrap();
    let tags = tags["Tags"].as_array().unwrap();
    assert_eq!(tags.len(), 5, "one tag per step: {tags:?}\n{}", reg.log());
    assert!(tags.iter().all(|t| t.as_str().unwrap().len() == 64
        && t.as_str().unwrap().chars().all(|c| c.is_ascii_hexdigit())));

    // Runner 2: an empty store (only the base): every step comes from the registry.
    let two = TestContext::new("vfs");
    two.seed_busybox("busybox");
    let second = bud(&two, &["--cache-from", &repo]);
    assert_eq!(second.matches("--> Using cache").count(), 5, "{second}");
    assert_eq!(
        second.matches("--> Cache pulled from remote ").count(),
        5,
        "{second}"
    );
    assert_eq!(first.lines().last(), second.lines().last(), "same image ID");
    let ctr = two.ok(["from", "cached"]);
    let mnt = std::path::PathBuf::from(two.ok(["mount", &ctr]));
    assert_eq!(fs::read_to_string(mnt.join("v")).unwrap(), "1\n");
    assert_eq!(fs::read_to_string(mnt.join("a.txt")).unwrap(), "one\n");
    two.ok(["umount", &ctr]);
    // Pulled steps are now local cache: a rebuild without --cache-from hits too.
    let third = bud(&two, &[]);
    assert_eq!(third.matches("--> Using cache").count(), 5, "{third}");

    // A changed source on runner 2: the steps before the COPY come from the cache, the
    // rest are built (and nothing from the registry matches them).
    fs::write(dir.join("a.txt"), "two\n").unwrap();
    let three = TestContext::new("vfs");
    three.seed_busybox("busybox");
    let fourth = bud(&three, &["--cache-from", &repo]);
    assert_eq!(fourth.matches("--> Using cache").count(), 2, "{fourth}");
}
