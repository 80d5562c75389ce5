//! Issue 16 item 8 (second half): SIGKILL at random moments of `commit`, `pull`, `push` and
//! `bud`, 20 trials of each kind on each driver, and after every kill:
//!
//! - the store is consistent: `images`, `containers` and `inspect` of every image succeed,
//!   every image's layers exist with no layer left `incomplete`, every layer directory has a
//!   record ([`common::assert_store_consistent`]), and podman lists the store (every 5th
//!   trial and at the end);
//! - no half image is visible: the operation's image (by name, or by ID for `pull`) is
//!   absent or whole (its payload file has the right sha256), and a push destination (an
//!   `oci:` layout or a registry tag) is absent or whole (every blob it references is there
//!   with the right digest);
//! - the same command run again succeeds and gives a whole image.
//!
//! ```text
//!  setup: a store with busybox and an 8 MiB random payload (a working container or image)
//!  D = the shortest of three uncut runs (bud: also when its RUN and its commit start)
//!  20 x { spawn hod in its own process group; sleep U[0, D) (seeded); SIGKILL hod;
//!         wait for its process group to end; check; re-run (D = its duration);
//!         check the result is whole; reset }
//! ```
//!
//! `bud` draws the even trials' delays within its RUN step and the odd ones within its
//! commit. pull and push run through an `oci:` layout and through a `docker-registry` on
//! 127.0.0.1 (a port picked free); each push trial goes to a new repository, so its blobs
//! are uploaded again.
//!
//! The delays and the payload come from a seed printed at the start (`HOD_KILL_SEED=N`
//! replays the same draws; a delay is a fraction of the duration measured at run time);
//! every assertion names the campaign, seed, trial and delay. Payloads are big
//! enough that most kills land mid-transfer and small enough that all twelve campaigns stay
//! within a few minutes of CI time.

use crate::common::registry::{Mode, TestRegistry};
use crate::common::{self, TestContext};
use sha2::{Digest as _, Sha256};
use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TRIALS: usize = 20;
/// Bytes of random payload in the image each campaign moves.
const PAYLOAD: usize = 8 << 20;

crate::both_drivers!(
    sigkill_commit,
    sigkill_pull_oci,
    sigkill_pull_registry,
    sigkill_push_oci,
    sigkill_push_registry,
    sigkill_bud,
);

/// splitmix64: a small seeded generator, so a failing campaign replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = hi.saturating_sub(lo).as_micros().max(1) as u64;
        lo + Duration::from_micros(self.next() % span)
    }
}

fn sha256_file(p: &Path) -> Option<String> {
    let data = std::fs::read(p).ok()?;
    Some(hex::encode(Sha256::digest(&data)))
}

/// What a kill trial ended as.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Killed,
    /// It finished before the kill came (exit code).
    Finished(Option<i32>),
}

/// One campaign: a store, a TMPDIR for hod's scratch files, the seeded delays and a log.
struct Campaign {
    name: String,
    seed: u64,
    rng: Rng,
    ctx: TestContext,
    tmp: tempfile::TempDir,
    /// The sha256 of the payload every whole image carries at `/payload`.
    payload_sha: String,
    /// The payload file (in `tmp`).
    payload: PathBuf,
    kills: usize,
    finished: usize,
}

impl Campaign {
    fn new(kind: &str, driver: &str) -> Campaign {
        let seed = match std::env::var("HOD_KILL_SEED") {
            Ok(s) if !s.is_empty() => s.parse().expect("HOD_KILL_SEED is a number"),
            _ => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64,
        };
        let name = format!("kills {kind} on {driver}");
        eprintln!("{name}: seed {seed} (replay with HOD_KILL_SEED={seed})");
        let ctx = TestContext::new(driver);
        ctx.seed_busybox("busybox");
        let tmp = tempfile::Builder::new()
            .prefix("hodkill.")
            .tempdir_in("/var/tmp")
            .unwrap();
        let payload = tmp.path().join("payload");
        let mut rng = Rng(seed);
        let mut data = vec![0u8; PAYLOAD];
        for chunk in data.chunks_mut(8) {
            let v = rng.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        std::fs::write(&payload, &data).unwrap();
        let payload_sha = hex::encode(Sha256::digest(&data));
        Campaign {
            name,
            seed,
            rng: Rng(seed ^ 0x5EED),
            ctx,
            tmp,
            payload_sha,
            payload,
            kills: 0,
            finished: 0,
        }
    }

    fn tag(&self, trial: usize, delay: Duration) -> String {
        format!(
            "{} (seed {}, trial {trial}, kill after {delay:?})",
            self.name, self.seed
        )
    }

    fn cmd(&self, args: &[String]) -> Command {
        let mut c = self.ctx.cmd(args);
        c.env("TMPDIR", self.tmp.path()).stdin(Stdio::null());
        c
    }

    /// Runs `args` to completion; asserts success; returns how long it took.
    fn run_ok(&self, args: &[String], what: &str) -> Duration {
        self.run_out(args, what).0
    }

    /// [`Self::run_ok`], also returning the trimmed stdout.
    fn run_out(&self, args: &[String], what: &str) -> (Duration, String) {
        let t = Instant::now();
        let r = common::run_cmd(self.cmd(args));
        common::assert_no_panic(&r);
        assert_eq!(r.code, Some(0), "{}: {what}:\n{}", self.name, r.dump());
        (t.elapsed(), r.out().to_string())
    }

    /// A container from `image`, a working container with the payload at `/payload`.
    fn payload_container(&self) -> String {
        let ctr = self.ctx.ok(["from", "-q", "busybox"]);
        self.ctx
            .ok(["copy", &ctr, self.payload.to_str().unwrap(), "/payload"]);
        ctr
    }

    /// An image named `name` with the payload (built once, by commit).
    fn payload_image(&self, name: &str) {
        let ctr = self.payload_container();
        self.ctx.ok(["commit", "-q", &ctr, name]);
        self.ctx.ok(["rm", &ctr]);
    }

    /// Spawns `args` in its own process group, SIGKILLs hod after `delay` unless it ended,
    /// then waits for the rest of its process group (a RUN's processes) to go away.
    fn kill_after(&mut self, args: &[String], delay: Duration, trial: usize) -> Outcome {
        let mut c = self.cmd(args);
        c.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = c.spawn().expect("spawning hod");
        let pgid = child.id();
        let deadline = Instant::now() + delay;
        let mut outcome = None;
        while Instant::now() < deadline {
            if let Some(st) = child.try_wait().unwrap() {
                outcome = Some(Outcome::Finished(st.code()));
                break;
            }
            std::thread::sleep(Duration::from_micros(500).min(deadline - Instant::now()));
        }
        let outcome = match outcome {
            Some(o) => o,
            None => {
                child.kill().expect("SIGKILL");
                let st = child.wait().unwrap();
                match st.signal() {
                    Some(9) => Outcome::Killed,
                    _ => Outcome::Finished(st.code()),
                }
            }
        };
        let stderr = read_stderr(&mut child);
        assert!(
            !stderr.contains("panicked at"),
            "{}: hod panicked:\n{stderr}",
            self.tag(trial, delay)
        );
        if let Outcome::Finished(code) = outcome {
            assert_eq!(
                code,
                Some(0),
                "{}: the uncut run failed:\n{stderr}",
                self.tag(trial, delay)
            );
        }
        wait_group_gone(pgid);
        eprintln!("{}: {outcome:?}", self.tag(trial, delay));
        match outcome {
            Outcome::Killed => self.kills += 1,
            Outcome::Finished(_) => self.finished += 1,
        }
        outcome
    }

    /// The store after a kill: listings work, every image inspects, the metadata is
    /// consistent, and podman agrees (when `podman_too`).
    fn check_store(&self, why: &str, podman_too: bool) {
        let r = self.ctx.hod(["images", "-a", "-q", "--no-trunc"]);
        common::assert_no_panic(&r);
        assert_eq!(r.code, Some(0), "{why}: images:\n{}", r.dump());
        let ids: Vec<String> = r.stdout.split_whitespace().map(str::to_string).collect();
        let r = self.ctx.hod(["containers", "-q"]);
        assert_eq!(r.code, Some(0), "{why}: containers:\n{}", r.dump());
        for id in &ids {
            let r = self.ctx.hod(["inspect", "-t", "image", id]);
            common::assert_no_panic(&r);
            assert_eq!(r.code, Some(0), "{why}: inspect {id}:\n{}", r.dump());
        }
        common::assert_store_consistent(&self.ctx);
        self.assert_layers_present(why);
        if podman_too && common::have("podman") {
            let r = self.ctx.podman(["images", "-a", "-q"]);
            assert_eq!(r.code, Some(0), "{why}: podman images:\n{}", r.dump());
        }
    }

    /// Every recorded layer has its directory, and every image's whole layer chain is
    /// recorded and complete.
    fn assert_layers_present(&self, why: &str) {
        let d = &self.ctx.driver;
        let read = |rel: String| -> serde_json::Value {
            match std::fs::read(self.ctx.root.join(rel)) {
                Ok(b) if !b.is_empty() => serde_json::from_slice(&b).unwrap(),
                _ => serde_json::json!([]),
            }
        };
        let layers = read(format!("{d}-layers/layers.json"));
        let images = read(format!("{d}-images/images.json"));
        let by_id: std::collections::HashMap<&str, &serde_json::Value> = layers
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["id"].as_str().unwrap(), l))
            .collect();
        for id in by_id.keys() {
            let dir = match d.as_str() {
                "vfs" => self.ctx.root.join("vfs/dir").join(id),
                _ => self.ctx.root.join("overlay").join(id).join("diff"),
            };
            assert!(
                dir.is_dir(),
                "{why}: layer {id} has no directory {}",
                dir.display()
            );
        }
        for img in images.as_array().unwrap() {
            let mut next = img["layer"].as_str();
            while let Some(l) = next {
                let rec = by_id
                    .get(l)
                    .unwrap_or_else(|| panic!("{why}: image {} lacks layer {l}", img["id"]));
                assert_ne!(
                    rec["flags"]["incomplete"].as_bool(),
                    Some(true),
                    "{why}: image {} has an incomplete layer {l}",
                    img["id"]
                );
                next = rec["parent"].as_str();
            }
        }
    }

    /// Whether `image` (a name or ID) exists in the store.
    fn exists(&self, image: &str) -> bool {
        let r = self.ctx.hod(["inspect", "-t", "image", image]);
        common::assert_no_panic(&r);
        r.code == Some(0)
    }

    /// `image` is whole: a container from it has the payload, byte for byte.
    fn assert_whole(&self, image: &str, why: &str, files: &[&str]) {
        let ctr = self.ctx.ok(["from", "-q", "--pull=never", image]);
        let mnt = PathBuf::from(self.ctx.ok(["mount", &ctr]));
        for f in files {
            let got = sha256_file(&mnt.join(f));
            assert_eq!(
                got.as_deref(),
                Some(self.payload_sha.as_str()),
                "{why}: image {image} is visible but its {f} is not the payload"
            );
        }
        self.ctx.ok(["umount", &ctr]);
        self.ctx.ok(["rm", &ctr]);
    }

    /// After the campaign: enough of the trials were real kills.
    fn finish(&self) {
        if common::have("podman") {
            let r = self.ctx.podman(["images", "-a"]);
            assert_eq!(
                r.code,
                Some(0),
                "{}: podman images:\n{}",
                self.name,
                r.dump()
            );
        }
        eprintln!(
            "{}: {} killed, {} finished before the kill",
            self.name, self.kills, self.finished
        );
        assert!(
            self.kills >= TRIALS / 4,
            "{} (seed {}): only {} of {TRIALS} trials were killed before finishing",
            self.name,
            self.seed,
            self.kills
        );
    }
}

fn read_stderr(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut s);
    }
    s
}

/// Waits until no process of group `pgid` is left (a killed hod's RUN may outlive it for
/// a moment); after 10 s they are killed too, and that is a failure.
fn wait_group_gone(pgid: u32) {
    let alive = || {
        Command::new("kill")
            .args(["-0", "--", &format!("-{pgid}")])
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    let t = Instant::now();
    while alive() {
        if t.elapsed() > Duration::from_secs(10) {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .status();
            panic!("processes of the killed hod (group {pgid}) still run after 10 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The shortest of three uncut runs (`run` runs one and undoes it). The first trial's delay
/// is drawn below it; each later one below the duration of the previous trial's re-run (an
/// uncut run too), so the delays follow the machine's speed (fsync and page-cache writeback
/// make one operation vary several-fold on a busy machine).
fn uncut(mut run: impl FnMut() -> Duration) -> Duration {
    (0..3).map(|_| run()).min().unwrap()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn required(test: &str, tools: &[&str]) -> bool {
    common::require(test, tools)
}

// ---------------------------------------------------------------- commit

/// `commit` of a working container holding the payload, killed at random moments.
fn sigkill_commit(driver: &str) {
    if !required("sigkill_commit", &["skopeo"]) {
        return;
    }
    let mut c = Campaign::new("commit", driver);
    let ctr = c.payload_container();
    let target = "localhost/kill-commit:latest";
    let args = s(&["commit", "-q", &ctr, target]);
    let mut duration = uncut(|| {
        let d = c.run_ok(&args, "the uncut commit");
        c.ctx.ok(["rmi", target]);
        d
    });
    eprintln!("{}: an uncut commit takes {duration:?}", c.name);
    for trial in 0..TRIALS {
        let delay = c.rng.between(Duration::ZERO, duration);
        let why = c.tag(trial, delay);
        c.kill_after(&args, delay, trial);
        c.check_store(&why, trial % 5 == 0);
        if c.exists(target) {
            c.assert_whole(target, &why, &["payload"]);
        }
        // the next trial's delays follow the machine's current speed
        duration = c.run_ok(&args, &format!("{why}: commit again"));
        c.assert_whole(target, &why, &["payload"]);
        c.ctx.ok(["rmi", target]);
    }
    c.check_store(&c.name, true);
    c.finish();
}

// ---------------------------------------------------------------- pull

/// Pulls `source` (an image with the payload, ID `id`) with kills at random moments.
fn pull_campaign(c: &mut Campaign, source: &str, extra: &[&str]) {
    let mut args = s(&["pull", "-q"]);
    args.extend(s(extra));
    args.push(source.to_string());
    // `pull -q` prints the image's ID
    let mut id = String::new();
    let mut duration = uncut(|| {
        let (d, out) = c.run_out(&args, "the uncut pull");
        id = out.trim_start_matches("sha256:").to_string();
        c.ctx.ok(["rmi", "-f", &id]);
        d
    });
    assert_eq!(id.len(), 64, "{}: the pulled image's ID: {id:?}", c.name);
    eprintln!("{}: an uncut pull takes {duration:?}", c.name);
    for trial in 0..TRIALS {
        let delay = c.rng.between(Duration::ZERO, duration);
        let why = c.tag(trial, delay);
        c.kill_after(&args, delay, trial);
        c.check_store(&why, trial % 5 == 0);
        if c.exists(&id) {
            c.assert_whole(&id, &why, &["payload"]);
        }
        // the next trial's delays follow the machine's current speed
        duration = c.run_ok(&args, &format!("{why}: pull again"));
        c.assert_whole(&id, &why, &["payload"]);
        c.ctx.ok(["rmi", "-f", &id]);
    }
    c.check_store(&c.name, true);
    c.finish();
}

fn sigkill_pull_oci(driver: &str) {
    if !required("sigkill_pull_oci", &["skopeo"]) {
        return;
    }
    let mut c = Campaign::new("pull oci:", driver);
    c.payload_image("localhost/kill-src:latest");
    let layout = c.tmp.path().join("src");
    let src = format!("oci:{}:latest", layout.display());
    c.ctx.ok(["push", "-q", "localhost/kill-src:latest", &src]);
    c.ctx.ok(["rmi", "localhost/kill-src:latest"]);
    pull_campaign(&mut c, &src, &[]);
}

fn sigkill_pull_registry(driver: &str) {
    if !required("sigkill_pull_registry", &["skopeo", "docker-registry"]) {
        return;
    }
    let Some(reg) = TestRegistry::start(Mode::Plain) else {
        return;
    };
    let mut c = Campaign::new("pull docker://", driver);
    c.payload_image("localhost/kill-src:latest");
    let src = format!("docker://{}/kill/src:latest", reg.host);
    c.ctx.ok([
        "push",
        "-q",
        "--tls-verify=false",
        "localhost/kill-src:latest",
        &src,
    ]);
    c.ctx.ok(["rmi", "localhost/kill-src:latest"]);
    pull_campaign(&mut c, &src, &["--tls-verify=false"]);
    drop(reg);
}

// ---------------------------------------------------------------- push

/// Checks an OCI layout: `None` if it has no image yet (no index.json or no manifest in
/// it); `Some(())` if every blob the index references (manifests, configs, layers) is there
/// with the right digest; a panic naming the half-written blob otherwise.
fn check_layout(dir: &Path, why: &str) -> Option<()> {
    let index = std::fs::read(dir.join("index.json")).ok()?;
    let index: serde_json::Value = serde_json::from_slice(&index)
        .unwrap_or_else(|e| panic!("{why}: index.json of {} is not JSON: {e}", dir.display()));
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    if manifests.is_empty() {
        return None;
    }
    let blob = |digest: &str| -> Vec<u8> {
        let hexd = digest.strip_prefix("sha256:").unwrap();
        let p = dir.join("blobs/sha256").join(hexd);
        let data = std::fs::read(&p).unwrap_or_else(|e| {
            panic!("{why}: the layout names {digest}, but {}: {e}", p.display())
        });
        assert_eq!(
            hex::encode(Sha256::digest(&data)),
            hexd,
            "{why}: blob {digest} in the layout is incomplete"
        );
        data
    };
    for m in manifests {
        let man: serde_json::Value =
            serde_json::from_slice(&blob(m["digest"].as_str().unwrap())).unwrap();
        blob(man["config"]["digest"].as_str().unwrap());
        for l in man["layers"].as_array().unwrap() {
            blob(l["digest"].as_str().unwrap());
        }
    }
    Some(())
}

fn sigkill_push_oci(driver: &str) {
    if !required("sigkill_push_oci", &["skopeo"]) {
        return;
    }
    let mut c = Campaign::new("push oci:", driver);
    let image = "localhost/kill-push:latest";
    c.payload_image(image);
    let mut duration = uncut(|| {
        let dir = c.tmp.path().join("push-uncut");
        let d = c.run_ok(&s(&["push", "-q", image, &c_dest(&dir)]), "the uncut push");
        std::fs::remove_dir_all(&dir).unwrap();
        d
    });
    eprintln!("{}: an uncut push takes {duration:?}", c.name);
    for trial in 0..TRIALS {
        let dir = c.tmp.path().join(format!("push-{trial}"));
        let args = s(&["push", "-q", image, &c_dest(&dir)]);
        let delay = c.rng.between(Duration::ZERO, duration);
        let why = c.tag(trial, delay);
        c.kill_after(&args, delay, trial);
        c.check_store(&why, trial % 5 == 0);
        check_layout(&dir, &why);
        // the next trial's delays follow the machine's current speed
        duration = c.run_ok(&args, &format!("{why}: push again"));
        check_layout(&dir, &why)
            .unwrap_or_else(|| panic!("{why}: the push again left no image in the layout"));
        // the image pushed is the payload image: skopeo agrees the layout is readable
        let r = common::run_cmd({
            let mut k = Command::new("skopeo");
            k.args(["inspect", &c_dest(&dir)]);
            k
        });
        assert_eq!(r.code, Some(0), "{why}: skopeo inspect:\n{}", r.dump());
        std::fs::remove_dir_all(&dir).unwrap();
    }
    c.check_store(&c.name, true);
    c.finish();
}

fn c_dest(dir: &Path) -> String {
    format!("oci:{}:latest", dir.display())
}

/// The registry's answer for a manifest, and for each blob it names.
fn registry_image_whole(host: &str, repo: &str, why: &str) -> Option<()> {
    let r = common::run_cmd({
        let mut k = Command::new("skopeo");
        k.args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{host}/{repo}:latest"),
        ]);
        k
    });
    if r.code != Some(0) {
        assert!(
            r.stderr.contains("manifest unknown") || r.stderr.contains("name unknown"),
            "{why}: skopeo inspect failed for another reason than an absent image:\n{}",
            r.dump()
        );
        return None;
    }
    let man: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let mut digests = vec![man["config"]["digest"].as_str().unwrap().to_string()];
    for l in man["layers"].as_array().unwrap() {
        digests.push(l["digest"].as_str().unwrap().to_string());
    }
    for d in digests {
        // GET, not HEAD: the registry hands out what it stored; verify the digest.
        let out = Command::new("curl")
            .args(["-sf", &format!("http://{host}/v2/{repo}/blobs/{d}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{why}: the tag exists but blob {d} does not"
        );
        assert_eq!(
            format!("sha256:{}", hex::encode(Sha256::digest(&out.stdout))),
            d,
            "{why}: blob {d} is incomplete"
        );
    }
    Some(())
}

fn sigkill_push_registry(driver: &str) {
    if !required(
        "sigkill_push_registry",
        &["skopeo", "docker-registry", "curl"],
    ) {
        return;
    }
    let Some(reg) = TestRegistry::start(Mode::Plain) else {
        return;
    };
    let mut c = Campaign::new("push docker://", driver);
    let image = "localhost/kill-push:latest";
    c.payload_image(image);
    let push = |repo: &str| {
        s(&[
            "push",
            "-q",
            "--tls-verify=false",
            image,
            &format!("docker://{}/{repo}:latest", reg.host),
        ])
    };
    let mut n = 0;
    let mut duration = uncut(|| {
        n += 1;
        c.run_ok(&push(&format!("kill/uncut{n}")), "the uncut push")
    });
    eprintln!("{}: an uncut push takes {duration:?}", c.name);
    for trial in 0..TRIALS {
        // A new repository each trial: the blobs are uploaded again, not found.
        let repo = format!("kill/p{trial}");
        let args = push(&repo);
        let delay = c.rng.between(Duration::ZERO, duration);
        let why = c.tag(trial, delay);
        c.kill_after(&args, delay, trial);
        c.check_store(&why, trial % 5 == 0);
        registry_image_whole(&reg.host, &repo, &why);
        // the next trial's delays follow the machine's current speed
        duration = c.run_ok(&args, &format!("{why}: push again"));
        registry_image_whole(&reg.host, &repo, &why)
            .unwrap_or_else(|| panic!("{why}: the push again left no image"));
    }
    c.check_store(&c.name, true);
    c.finish();
    drop(reg);
}

// ---------------------------------------------------------------- bud

/// `bud` of `COPY payload` + a RUN that copies it (and takes a moment), killed at random
/// moments: half the trials during the RUN step, half during the final commit (the
/// phases are timed on an uncut build from its `STEP` and `COMMIT` lines).
fn sigkill_bud(driver: &str) {
    if !required("sigkill_bud", &["skopeo"]) {
        return;
    }
    let mut c = Campaign::new("bud", driver);
    let ctxdir = c.tmp.path().join("context");
    std::fs::create_dir_all(&ctxdir).unwrap();
    std::fs::rename(&c.payload, ctxdir.join("payload")).unwrap();
    c.payload = ctxdir.join("payload");
    std::fs::write(
        ctxdir.join("Containerfile"),
        "FROM busybox\nCOPY payload /payload\nRUN cat /payload > /copy && sleep 0.1\n",
    )
    .unwrap();
    let target = "localhost/kill-bud:latest";
    let args = s(&["bud", "-t", target, ctxdir.to_str().unwrap()]);

    // Three uncut builds, with the time each phase starts; the fastest sets the delays.
    let (mut duration, mut run_at, mut commit_at) = (0..3)
        .map(|_| {
            let t = timed_build(&c, &args);
            c.ctx.ok(["rmi", target]);
            t
        })
        .min()
        .unwrap();
    eprintln!(
        "{}: an uncut build takes {duration:?}: RUN from {run_at:?}, COMMIT from {commit_at:?}",
        c.name
    );
    for trial in 0..TRIALS {
        let delay = if trial % 2 == 0 {
            c.rng.between(run_at, commit_at)
        } else {
            c.rng.between(commit_at, duration)
        };
        let why = c.tag(trial, delay);
        c.kill_after(&args, delay, trial);
        c.check_store(&why, trial % 5 == 0);
        if c.exists(target) {
            c.assert_whole(target, &why, &["payload", "copy"]);
        }
        // the killed build's working container is removable
        c.ctx.ok(["rm", "-a"]);
        // build again; the next trial's phases are timed on this build
        (duration, run_at, commit_at) = timed_build(&c, &args);
        c.assert_whole(target, &why, &["payload", "copy"]);
        c.ctx.ok(["rmi", target]);
    }
    c.check_store(&c.name, true);
    c.finish();
}

/// One build of `args` to completion: its duration and when its RUN step and its commit
/// started (its `STEP 3/3` and `COMMIT` lines).
fn timed_build(c: &Campaign, args: &[String]) -> (Duration, Duration, Duration) {
    let t0 = Instant::now();
    let mut child = c
        .cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (mut run_at, mut commit_at) = (None, None);
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.starts_with("STEP 3/3") {
            run_at = Some(t0.elapsed());
        } else if line.starts_with("COMMIT") {
            commit_at = Some(t0.elapsed());
        }
    }
    assert!(
        child.wait().unwrap().success(),
        "{}: an uncut build failed",
        c.name
    );
    let duration = t0.elapsed();
    (
        duration,
        run_at.expect("no `STEP 3/3` line"),
        commit_at.expect("no `COMMIT` line"),
    )
}
