//! Issue 14 item 11: the layer cache of `bud --layers`, `--no-cache`, `--cache-ttl` and
//! hod's `--explain-cache`. Each test builds in a fresh vfs store seeded with busybox; the
//! output is compared with buildah 1.28.2's (`$BUILDAH_REF`, default /usr/bin/buildah) on
//! the same Containerfile and the same changes, IDs masked.
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::common::{self, TestContext};

const CF: &str = "FROM busybox\nARG V=1\nENV E=1\nCOPY a.txt /a.txt\nRUN echo $V > /v\nCOPY app /app\nCMD [\"sh\"]\n";

struct Env {
    ctx: TestContext,
    dir: PathBuf,
}

fn env(bin: PathBuf) -> Env {
    let ctx = TestContext::with_bin("vfs", bin);
    ctx.seed_busybox("busybox");
    let dir = ctx.path("ctx");
    fs::create_dir_all(dir.join("app/src")).unwrap();
    fs::write(dir.join("Containerfile"), CF).unwrap();
    fs::write(dir.join("a.txt"), "one\n").unwrap();
    fs::write(dir.join("app/src/main.c"), "int main(){return 0;}\n").unwrap();
    fs::write(dir.join("app/README"), "readme\n").unwrap();
    fs::write(dir.join("app/build.log"), "log 1\n").unwrap();
    fs::write(dir.join(".containerignore"), "app/build.log\n").unwrap();
    Env { ctx, dir }
}

impl Env {
    fn bud(&self, extra: &[&str]) -> String {
        let mut a = vec!["bud", "--layers", "-t", "cached"];
        a.extend_from_slice(extra);
        let ctx = self.dir.display().to_string();
        a.push(&ctx);
        self.ctx.ok(a)
    }
    fn images(&self) -> usize {
        self.ctx.ok(["images", "-a", "-q"]).lines().count()
    }
}

fn hits(out: &str) -> usize {
    out.matches("--> Using cache ").count()
}

/// The step numbers that were cache hits.
fn hit_steps(out: &str) -> Vec<usize> {
    let mut cur = 0;
    let mut v = Vec::new();
    for l in out.lines() {
        if let Some(rest) = l.strip_prefix("STEP ") {
            cur = rest.split('/').next().unwrap().parse().unwrap();
        } else if l.starts_with("--> Using cache ") {
            v.push(cur);
        }
    }
    v
}

fn mask_ids(s: &str) -> String {
    s.split(|c: char| c.is_whitespace())
        .map(|w| {
            if w.len() >= 11 && w.chars().all(|c| c.is_ascii_hexdigit()) {
                "<id>"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn buildah_ref() -> PathBuf {
    std::env::var_os("BUILDAH_REF")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/buildah"))
}

/// The sequence every test shares: build, rebuild, change one source, a build arg.
fn sequence(e: &Env) -> Vec<String> {
    let first = e.bud(&[]);
    let second = e.bud(&[]);
    fs::write(e.dir.join("app/src/main.c"), "int main(){return 1;}\n").unwrap();
    let third = e.bud(&[]);
    let fourth = e.bud(&["--build-arg", "V=2"]);
    vec![first, second, third, fourth]
}

#[test]
fn layers_output_matches_buildah() {
    if !common::require("layers_output_matches_buildah", &["skopeo"]) {
        return;
    }
    let reference = buildah_ref();
    if common::is_buildah() {
        // Validating the test against buildah itself: nothing to compare with (by design).
        return;
    }
    if !reference.exists() {
        common::skipped("layers_output_matches_buildah", "no reference buildah");
        return;
    }
    let ours = sequence(&env(common::hod_bin()));
    let theirs = sequence(&env(reference));
    for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(
            mask_ids(o),
            mask_ids(t),
            "build {} differs from buildah's:\n--- hod\n{o}\n--- buildah\n{t}",
            i + 1
        );
    }
}

#[test]
fn rebuild_hits_every_step_and_gives_the_same_image() {
    if !common::require("bud_cache", &["skopeo"]) {
        return;
    }
    let e = env(common::hod_bin());
    let first = e.bud(&[]);
    assert_eq!(hits(&first), 0, "{first}");
    let n = e.images();
    // busybox + one image per step (ARG ENV COPY RUN COPY CMD).
    assert_eq!(n, 7, "{}", e.ctx.ok(["images", "-a"]));
    let containers_json = e.ctx.root.join("vfs-containers/containers.json");
    let before = fs::metadata(&containers_json).map(|m| (m.ino(), m.mtime_nsec()));
    assert!(
        before.is_ok(),
        "{} after the first build",
        containers_json.display()
    );
    let t = std::time::Instant::now();
    let second = e.bud(&[]);
    let took = t.elapsed();
    if !common::is_buildah() {
        // All hits: the FROM's container (on vfs a copy of the base) is never made, so
        // the container list is not even rewritten (buildah makes and removes one).
        let after = fs::metadata(&containers_json).map(|m| (m.ino(), m.mtime_nsec()));
        assert_eq!(before.ok(), after.ok(), "containers.json was rewritten");
    }
    assert_eq!(hit_steps(&second), [2, 3, 4, 5, 6, 7], "{second}");
    assert_eq!(first.lines().last(), second.lines().last(), "same image ID");
    assert_eq!(e.images(), n, "a rebuild adds no image");
    assert_eq!(
        e.ctx.ok(["containers", "-a", "-q"]),
        "",
        "--rm removed them"
    );
    eprintln!("no-change --layers rebuild: {took:?}");
    // The final image has the tag and the content.
    let id = e.ctx.image_id("cached");
    assert_eq!(Some(id.as_str()), second.lines().last());
    let ctr = e.ctx.ok(["from", "cached"]);
    let mnt = PathBuf::from(e.ctx.ok(["mount", &ctr]));
    assert_eq!(fs::read_to_string(mnt.join("v")).unwrap(), "1\n");
    assert!(mnt.join("app/src/main.c").is_file());
    assert!(!mnt.join("app/build.log").exists(), ".containerignore");
    e.ctx.ok(["umount", &ctr]);
}

#[test]
fn a_changed_source_misses_from_its_copy_and_is_named() {
    if !common::require("bud_cache", &["skopeo"]) || common::is_buildah() {
        return;
    }
    let e = env(common::hod_bin());
    e.bud(&[]);
    // A file the ignore file excludes does not count.
    fs::write(e.dir.join("app/build.log"), "log 2\n").unwrap();
    let out = e.bud(&["--explain-cache"]);
    assert_eq!(hits(&out), 6, "{out}");
    assert!(!out.contains("Cache miss"), "{out}");
    // One source file changed: steps 2-5 hit, the COPY of app/ (6) and the rest miss.
    fs::write(e.dir.join("app/src/main.c"), "int main(){return 1;}\n").unwrap();
    let out = e.bud(&["--explain-cache"]);
    assert_eq!(hit_steps(&out), [2, 3, 4, 5], "{out}");
    let misses: Vec<&str> = out.lines().filter(|l| l.contains("Cache miss")).collect();
    assert_eq!(
        misses,
        [
            "--> Cache miss: COPY source app/src/main.c changed",
            "--> Cache miss: parent image changed (an earlier step was rebuilt)",
        ],
        "{out}"
    );
    // Back to the old content: the first build's images are hits again.
    fs::write(e.dir.join("app/src/main.c"), "int main(){return 0;}\n").unwrap();
    let out = e.bud(&["--explain-cache"]);
    assert_eq!(hits(&out), 6, "{out}");
    // A mode change is a change.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(e.dir.join("a.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    let out = e.bud(&["--explain-cache"]);
    assert_eq!(hit_steps(&out), [2, 3], "{out}");
    assert!(
        out.contains("--> Cache miss: COPY source a.txt changed"),
        "{out}"
    );
}

#[test]
fn a_changed_build_arg_misses_from_the_run_and_is_named() {
    if !common::require("bud_cache", &["skopeo"]) || common::is_buildah() {
        return;
    }
    let e = env(common::hod_bin());
    e.bud(&[]);
    let out = e.bud(&["--explain-cache", "--build-arg", "V=2"]);
    // ARG V=1 is recorded as `ARG V` (buildah's created_by): a hit; ENV and COPY too.
    assert_eq!(hit_steps(&out), [2, 3, 4], "{out}");
    assert!(
        out.contains("--> Cache miss: build arg V changed (\"1\" → \"2\")"),
        "{out}"
    );
    // The instruction text changed: named as such.
    fs::write(
        e.dir.join("Containerfile"),
        CF.replace("echo $V", "echo $V$V"),
    )
    .unwrap();
    let out = e.bud(&["--explain-cache"]);
    assert_eq!(hit_steps(&out), [2, 3, 4], "{out}");
    assert!(
        out.contains("--> Cache miss: instruction changed (cached: \"RUN echo $V > /v\")"),
        "{out}"
    );
}

#[test]
fn no_cache_and_cache_ttl() {
    if !common::require("bud_cache", &["skopeo"]) {
        return;
    }
    let e = env(common::hod_bin());
    e.bud(&[]);
    let n = e.images();
    // --no-cache rebuilds every step and still writes the intermediate images.
    let out = e.bud(&["--no-cache"]);
    assert_eq!(hits(&out), 0, "{out}");
    assert!(
        e.images() > n,
        "--no-cache with --layers writes intermediates"
    );
    // --cache-ttl=0 is --no-cache; a long TTL uses the cache.
    let out = e.bud(&["--cache-ttl=0"]);
    assert_eq!(hits(&out), 0, "{out}");
    let out = e.bud(&["--cache-ttl=1h"]);
    assert_eq!(hits(&out), 6, "{out}");
    // Images older than the TTL are not used.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let out = e.bud(&["--cache-ttl=1s"]);
    assert_eq!(hits(&out), 0, "{out}");
}

#[test]
fn buildah_layers_env_turns_the_cache_on() {
    if !common::require("bud_cache", &["skopeo"]) {
        return;
    }
    let e = env(common::hod_bin());
    let ctx = e.dir.display().to_string();
    let mut c = e.ctx.cmd(["bud", "-t", "envl", &ctx]);
    c.env("BUILDAH_LAYERS", "true");
    let r = common::run_cmd(c).success();
    assert_eq!(hits(&r.stdout), 0, "{}", r.dump());
    let mut c = e.ctx.cmd(["bud", "-t", "envl", &ctx]);
    c.env("BUILDAH_LAYERS", "true");
    let r = common::run_cmd(c).success();
    assert_eq!(hits(&r.stdout), 6, "{}", r.dump());
    // Without it, nothing is cached.
    let out = e.ctx.ok(["bud", "-t", "envl", &ctx]);
    assert_eq!(hits(&out), 0, "{out}");
}

/// The context's digests come from the stat-keyed cache on a rebuild: the debug log says
/// how many files were read.
#[test]
fn unchanged_context_is_not_read_again() {
    if !common::require("bud_cache", &["skopeo"]) || common::is_buildah() {
        return;
    }
    let e = env(common::hod_bin());
    let read_counts = |out: &str| -> Vec<(u64, u64)> {
        out.lines()
            .filter_map(|l| {
                let i = l.find("context digests: ")?;
                let w: Vec<&str> = l[i..].split_whitespace().collect();
                // context digests: N from the stat cache, M read
                Some((w[2].parse().ok()?, w[7].parse().ok()?))
            })
            .collect()
    };
    let bud = |e: &Env| {
        let ctx = e.dir.display().to_string();
        let r =
            common::run_cmd(
                e.ctx
                    .cmd(["--log-level=debug", "bud", "--layers", "-t", "s", &ctx]),
            )
            .success();
        read_counts(&r.stderr)
    };
    // a.txt, app/README, app/src/main.c (build.log is ignored).
    assert_eq!(bud(&e), [(0, 3)]);
    assert!(e.ctx.root.join("hod-cache/context-digests.json").is_file());
    assert_eq!(bud(&e), [(3, 0)]);
    fs::write(e.dir.join("app/README"), "readme 2\n").unwrap();
    assert_eq!(bud(&e), [(2, 1)]);
}

const MULTI: &str = "FROM busybox AS b\nRUN echo built > /out\nCOPY a.txt /a\nFROM busybox\nCOPY --from=b /out /out\nRUN cat /out\n";

/// Build, rebuild, then change a file only the first stage copies: the second stage's
/// `COPY --from=b /out` still hits (the copied file is the same), as in buildah.
fn multi_sequence(bin: PathBuf) -> Vec<String> {
    let e = env(bin);
    fs::write(e.dir.join("Containerfile"), MULTI).unwrap();
    let first = e.bud(&[]);
    let second = e.bud(&[]);
    fs::write(e.dir.join("a.txt"), "changed\n").unwrap();
    let third = e.bud(&[]);
    vec![first, second, third]
}

#[test]
fn multi_stage_copy_from_is_keyed_by_the_files_copied() {
    if !common::require("bud_cache", &["skopeo"]) {
        return;
    }
    let ours = multi_sequence(common::hod_bin());
    assert_eq!(hits(&ours[0]), 0, "{}", ours[0]);
    assert_eq!(hits(&ours[1]), 4, "{}", ours[1]);
    // Stage 1: RUN hits, COPY a.txt misses; stage 2: both steps hit.
    assert_eq!(hits(&ours[2]), 3, "{}", ours[2]);
    assert_eq!(
        ours[1].lines().last(),
        ours[2].lines().last(),
        "same final image"
    );
    let reference = buildah_ref();
    if reference.exists() && !common::is_buildah() {
        let theirs = multi_sequence(reference);
        for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(
                mask_ids(o),
                mask_ids(t),
                "build {} differs from buildah's:\n--- hod\n{o}\n--- buildah\n{t}",
                i + 1
            );
        }
    }
}

/// A new base image under the same name: the first step misses and the explanation says
/// the parent changed, naming both.
#[test]
fn a_new_base_image_is_explained_as_a_parent_change() {
    if !common::require("bud_cache", &["skopeo"]) || common::is_buildah() {
        return;
    }
    let e = env(common::hod_bin());
    e.bud(&[]);
    let old = e.ctx.image_id("busybox");
    let ctr = e.ctx.ok(["from", "busybox"]);
    e.ctx.ok(["config", "--label", "new=1", &ctr]);
    e.ctx
        .ok(["commit", "-q", &ctr, "docker.io/library/busybox:latest"]);
    let new = e.ctx.image_id("busybox");
    assert_ne!(old, new);
    let out = e.bud(&["--explain-cache"]);
    assert_eq!(hits(&out), 0, "{out}");
    let want = format!(
        "--> Cache miss: parent image changed (cached on {}, now {})",
        &old[..11],
        &new[..11]
    );
    assert!(out.contains(&want), "{want}\n{out}");
}

/// A rebuild that is all hits still gives --output the whole tree and applies --env on top
/// of the last cached step (the container is made from the cached image when one of them
/// needs it).
#[test]
fn all_hits_with_output_and_env() {
    if !common::require("bud_cache", &["skopeo"]) {
        return;
    }
    let e = env(common::hod_bin());
    e.bud(&[]);
    let out_dir = e.ctx.path("out");
    let spec = format!("type=local,dest={}", out_dir.display());
    let out = e.bud(&["--output", &spec]);
    assert_eq!(hits(&out), 6, "{out}");
    assert_eq!(fs::read_to_string(out_dir.join("v")).unwrap(), "1\n");
    assert!(out_dir.join("app/src/main.c").is_file());
    if common::is_buildah() {
        // buildah 1.28.2 returns the cached image as it is: --env is lost on an all-hits
        // rebuild. hod applies it (a new image on top of the last step's).
        return;
    }
    let out = e.bud(&["--env", "EXTRA=1"]);
    assert_eq!(hits(&out), 6, "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&e.ctx.ok(["inspect", "-t", "image", "cached"])).unwrap();
    let env = v["OCIv1"]["config"]["Env"].to_string();
    assert!(env.contains("EXTRA=1") && env.contains("E=1"), "{env}");
    let ctr = e.ctx.ok(["from", "cached"]);
    let mnt = PathBuf::from(e.ctx.ok(["mount", &ctr]));
    assert_eq!(fs::read_to_string(mnt.join("v")).unwrap(), "1\n");
    e.ctx.ok(["umount", &ctr]);
    // Only the container made here is left (--rm removed the build's).
    assert_eq!(e.ctx.ok(["containers", "-q"]).lines().count(), 1);
}

/// bud.bats "bud with --layers and --build-args": an ARG step is keyed by which of its
/// names have a value (buildah's `ARG user` history), not by the values, so a build that
/// leaves the arg unset misses from the ARG on, and one that changes it from the RUN on.
#[test]
fn an_arg_left_unset_misses_from_the_arg() {
    if !common::require("bud_cache", &["skopeo"]) {
        return;
    }
    let e = env(common::hod_bin());
    fs::write(
        e.dir.join("Containerfile"),
        "FROM busybox\nARG user\nRUN echo $user | base64\nRUN touch /tmp/hello\n",
    )
    .unwrap();
    e.bud(&["--build-arg", "user=0"]);
    let out = e.bud(&["--build-arg", "user=0"]);
    assert_eq!(hit_steps(&out), [2, 3, 4], "{out}");
    let out = e.bud(&["--build-arg", "user=1"]);
    assert_eq!(hit_steps(&out), [2], "{out}");
    let out = e.bud(&["--explain-cache"]);
    assert!(hit_steps(&out).is_empty(), "{out}");
    if !common::is_buildah() {
        assert!(out.contains("--> Cache miss: build arg user"), "{out}");
    }
    let out = e.bud(&[]);
    assert_eq!(hit_steps(&out), [2, 3, 4], "{out}");
}

/// bud.bats "bud cache add-copy-chown": ADD extracts a local archive with its entries' own
/// owners, so `--chown` changes nothing there and two builds differing only in it share the
/// cache (the same image); COPY of the same file with another owner is another image.
#[test]
fn add_chown_of_an_archive_changes_nothing() {
    if !common::require("bud_cache", &["skopeo", "tar"]) {
        return;
    }
    let e = env(common::hod_bin());
    let src = e.dir.join("tree");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), "x\n").unwrap();
    let st = std::process::Command::new("tar")
        .args(["--owner=7", "--group=8", "-czf"])
        .arg(e.dir.join("t.tar.gz"))
        .arg("-C")
        .arg(&src)
        .arg("f")
        .status()
        .unwrap();
    assert!(st.success());
    let build = |line: &str| {
        fs::write(
            e.dir.join("Containerfile"),
            format!("FROM busybox\n{line}\n"),
        )
        .unwrap();
        let iid = e.ctx.path("iid");
        e.bud(&["--iidfile", iid.to_str().unwrap()]);
        fs::read_to_string(iid).unwrap()
    };
    let one = build("ADD --chown=1:1 t.tar.gz /x/");
    let two = build("ADD --chown=2:2 t.tar.gz /x/");
    assert_eq!(one, two);
    let ctr = e.ctx.ok(["from", "--pull=never", one.trim()]);
    let mnt = PathBuf::from(e.ctx.ok(["mount", &ctr]));
    let m = fs::metadata(mnt.join("x/f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (7, 8));
    e.ctx.ok(["umount", &ctr]);
    let c1 = build("COPY --chown=1:1 t.tar.gz /x/");
    let c2 = build("COPY --chown=2:2 t.tar.gz /x/");
    assert_ne!(c1, c2);
}

/// bud.bats "bud with --rm flag": with --layers and --rm=false a rebuild that hits every
/// step still leaves one container per step, as buildah's does (it prepares each next step's
/// container from the cached image); with --rm (the default) none is left.
#[test]
fn rm_false_keeps_a_container_per_step_on_hits_too() {
    if !common::require("bud_cache", &["skopeo"]) {
        return;
    }
    let e = env(common::hod_bin());
    let first = e.bud(&[]);
    assert_eq!(e.ctx.ok(["containers", "-q"]), "", "{first}");
    let image = e.ctx.ok(["images", "-q", "cached"]);
    let out = e.bud(&["--rm=false"]);
    assert_eq!(hits(&out), 6, "{out}");
    // FROM + 6 steps: buildah 1.28.2 leaves 6 (the base's and one after each step but the
    // last), checked side by side by hand.
    assert_eq!(e.ctx.ok(["containers", "-q"]).lines().count(), 6);
    // The image is the cached one all the same.
    assert_eq!(e.ctx.ok(["images", "-q", "cached"]), image);
}
