//! Issue 13: `docker://` against a real registry (`docker-registry` on 127.0.0.1, see
//! `common::registry`), checked with skopeo, podman and oci-image-tool.

use crate::common::registry::{FaultyProxy, Mode, TestRegistry, PASSWORD, USER};
use crate::common::{self, run_cmd, TestContext};
use std::path::PathBuf;
use std::process::Command;

/// `/etc/containers/certs.d/<host>/ca.crt` for the life of the value (what certs.d users do).
struct CertsD(PathBuf);

impl CertsD {
    fn install(reg: &TestRegistry) -> CertsD {
        let d = PathBuf::from("/etc/containers/certs.d").join(&reg.host);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(reg.cert_dir.join("ca.crt"), d.join("ca.crt")).unwrap();
        CertsD(d)
    }
}

impl Drop for CertsD {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn skopeo(args: &[&str]) -> common::Run {
    let mut c = Command::new("skopeo");
    c.args(args);
    run_cmd(c)
}

/// hod push → skopeo inspect/copy → oci-image-tool validate, podman pull; skopeo push of
/// busybox → hod pull → from → commit straight to docker:// → hod push back. TLS with the
/// CA found through certs.d, no flag needed.
#[test]
fn tls_round_trips_with_skopeo_and_podman() {
    if !common::require(
        "registry round trips",
        &[
            "skopeo",
            "podman",
            "oci-image-tool",
            "docker-registry",
            "openssl",
        ],
    ) {
        return;
    }
    let Some(reg) = TestRegistry::start(Mode::Tls) else {
        return;
    };
    let _certs = CertsD::install(&reg);
    let ctx = TestContext::new("vfs");
    let ctr = ctx.scratch_busybox_container();
    ctx.ok(["commit", "-q", &ctr, "localhost/pushme:1"]);
    let id = ctx.image_id("localhost/pushme:1");
    let dest = format!("docker://{}/hod/pushme:1", reg.host);
    let r = ctx.hod(["push", "localhost/pushme:1", &dest]).success();
    // buildah's plain progress lines when stderr is not a terminal
    for want in [
        "Getting image source signatures",
        "Copying blob sha256:",
        "Copying config sha256:",
        "Writing manifest to image destination",
    ] {
        assert!(r.stderr.contains(want), "{want}: {}", r.dump());
    }
    let r = skopeo(&["inspect", "--tls-verify=false", &dest]).success();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(v["Digest"].as_str().unwrap().starts_with("sha256:"), "{v}");
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &dest]).success();
    let m: serde_json::Value = serde_json::from_str(&raw.stdout).unwrap();
    assert_eq!(m["config"]["digest"], format!("sha256:{id}"), "{m}");
    let lay = ctx.path("copied");
    skopeo(&[
        "copy",
        "-q",
        "--insecure-policy",
        "--src-tls-verify=false",
        &dest,
        &format!("oci:{}:x", lay.display()),
    ])
    .success();
    let r = run_cmd({
        let mut c = Command::new("oci-image-tool");
        c.args(["validate", "--type", "image", "--ref", "name=x"])
            .arg(&lay);
        c
    });
    assert!(r.stdout.contains("Validation succeeded"), "{}", r.dump());
    let other = TestContext::new("vfs");
    other
        .podman(["pull", "-q", "--tls-verify=false", &dest])
        .success();
    let r = other.podman(["images", "--no-trunc", "--format", "{{.ID}}"]);
    assert!(r.stdout.contains(&id), "{}", r.dump());

    // skopeo pushes busybox; hod pulls, builds on it and pushes back
    let bb = format!("docker://{}/hod/busybox:1", reg.host);
    skopeo(&[
        "copy",
        "-q",
        "--insecure-policy",
        "--dest-tls-verify=false",
        &format!("oci:{}:latest", common::busybox_layout().display()),
        &bb,
    ])
    .success();
    let fresh = TestContext::new("vfs");
    let pulled = fresh.ok(["pull", "-q", &bb]);
    assert_eq!(pulled.len(), 64, "{pulled}");
    let ctr = fresh.ok(["from", &bb]);
    fresh.ok(["config", "--label", "rebuilt=yes", &ctr]);
    let back = format!("docker://{}/hod/busybox:2", reg.host);
    fresh.ok(["commit", "-q", &ctr, &back]);
    let r = skopeo(&["inspect", "--tls-verify=false", &back]).success();
    assert!(r.stdout.contains("\"rebuilt\": \"yes\""), "{}", r.dump());
    fresh.ok(["commit", "-q", &ctr, "localhost/rebuilt:1"]);
    let r = fresh
        .hod([
            "push",
            "localhost/rebuilt:1",
            &format!("docker://{}/hod/busybox:3", reg.host),
        ])
        .success();
    // pushed twice: the second time every blob is already there
    let again = fresh
        .hod([
            "push",
            "localhost/rebuilt:1",
            &format!("docker://{}/hod/busybox:3", reg.host),
        ])
        .success();
    assert_eq!(
        again.stderr.matches("skipped: already exists").count(),
        r.stderr.matches("Copying blob").count(),
        "{}",
        again.dump()
    );
}

/// A registry whose CA is not trusted: one clear error naming the registry, exit 125.
#[test]
fn untrusted_tls_is_one_clear_error() {
    if !common::require("untrusted tls", &["docker-registry", "openssl"]) {
        return;
    }
    let Some(reg) = TestRegistry::start(Mode::Tls) else {
        return;
    };
    let ctx = TestContext::new("vfs");
    ctx.hod(["pull", &format!("docker://{}/hod/none:1", reg.host)])
        .one_error_naming(&reg.host);
}

/// Plain HTTP with `--tls-verify=false`; zstd layers with `--compression-format zstd`.
#[test]
fn plain_http_and_zstd() {
    if !common::require("plain http", &["docker-registry", "skopeo"]) {
        return;
    }
    let Some(reg) = TestRegistry::start(Mode::Plain) else {
        return;
    };
    let ctx = TestContext::new("vfs");
    let ctr = ctx.scratch_busybox_container();
    ctx.ok(["commit", "-q", &ctr, "localhost/z:1"]);
    let dest = format!("docker://{}/hod/z:1", reg.host);
    ctx.ok([
        "push",
        "--tls-verify=false",
        "--compression-format",
        "zstd",
        "localhost/z:1",
        &dest,
    ]);
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &dest]).success();
    let m: serde_json::Value = serde_json::from_str(&raw.stdout).unwrap();
    assert_eq!(
        m["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd",
        "{m}"
    );
    let fresh = TestContext::new("vfs");
    fresh.ok(["pull", "-q", "--tls-verify=false", &dest]);
    assert_eq!(fresh.image_id(&dest[9..]), ctx.image_id("localhost/z:1"));
    // without --tls-verify=false, plain HTTP is refused
    fresh
        .hod(["pull", "--policy", "always", &dest])
        .one_error_naming(&reg.host);
    // --all-tags pulls every tag of the repository (tags/list)
    ctx.ok([
        "push",
        "--tls-verify=false",
        "localhost/z:1",
        &format!("docker://{}/hod/z:2", reg.host),
    ]);
    let all = TestContext::new("vfs");
    let r = all
        .hod([
            "pull",
            "--tls-verify=false",
            "--all-tags",
            &format!("{}/hod/z", reg.host),
        ])
        .success();
    for t in ["1", "2"] {
        assert!(
            r.stderr
                .contains(&format!("Trying to pull {}/hod/z:{t}...", reg.host)),
            "{}",
            r.dump()
        );
    }
    let tags = all.ok(["images", "--format", "{{.Tag}}"]);
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(tags, ["1", "2"]);
}

/// Basic and Bearer auth: a wrong password names the registry (exit 125); credentials never
/// appear in the output, even at `--log-level debug`.
#[test]
fn auth_errors_and_no_leaks() {
    if !common::require(
        "registry auth",
        &["docker-registry", "htpasswd", "python3", "openssl"],
    ) {
        return;
    }
    for mode in [
        Mode::Basic,
        Mode::Token {
            access_token: false,
        },
    ] {
        let Some(reg) = TestRegistry::start(mode.clone()) else {
            return;
        };
        let ctx = TestContext::new("vfs");
        let ctr = ctx.scratch_busybox_container();
        ctx.ok(["commit", "-q", &ctr, "localhost/a:1"]);
        let dest = format!("docker://{}/hod/a:1", reg.host);
        let creds = format!("{USER}:{PASSWORD}");
        let r = ctx
            .hod([
                "--log-level",
                "debug",
                "push",
                "--tls-verify=false",
                "--creds",
                &creds,
                "localhost/a:1",
                &dest,
            ])
            .success();
        let b64 = {
            use std::io::Write;
            let mut c = Command::new("base64");
            c.arg("-w0")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped());
            let mut ch = c.spawn().unwrap();
            ch.stdin
                .take()
                .unwrap()
                .write_all(creds.as_bytes())
                .unwrap();
            String::from_utf8(ch.wait_with_output().unwrap().stdout).unwrap()
        };
        for secret in [PASSWORD, b64.as_str(), "Bearer ", "Basic "] {
            assert!(
                !r.stderr.contains(secret) && !r.stdout.contains(secret),
                "{mode:?}: {secret} leaked:\n{}",
                r.dump()
            );
        }
        let fresh = TestContext::new("vfs");
        let r = fresh.hod([
            "--log-level",
            "debug",
            "pull",
            "--tls-verify=false",
            "--creds",
            &format!("{USER}:wrong-{PASSWORD}"),
            &dest,
        ]);
        assert_eq!(r.code, Some(125), "{}", r.dump());
        assert!(!r.stderr.contains(PASSWORD), "{}", r.dump());
        let err: Vec<&str> = r
            .stderr
            .lines()
            .filter(|l| l.starts_with("Error: "))
            .collect();
        assert_eq!(err.len(), 1, "{}", r.dump());
        assert!(err[0].contains(&reg.host), "{}", r.dump());
        fresh
            .hod(["pull", "--tls-verify=false", "--creds", &creds, &dest])
            .success();
    }
}

/// A registry that drops blobs mid-transfer or answers 500 is retried (`--retry`), then
/// fails with one clear error; a corrupt blob is refused and nothing is stored.
#[test]
fn faults_retry_then_fail_and_store_nothing() {
    if !common::require("registry faults", &["docker-registry", "python3"]) {
        return;
    }
    let Some(reg) = TestRegistry::start(Mode::Plain) else {
        return;
    };
    let ctx = TestContext::new("vfs");
    let ctr = ctx.scratch_busybox_container();
    ctx.ok(["commit", "-q", &ctr, "localhost/f:1"]);
    ctx.ok([
        "push",
        "--tls-verify=false",
        "localhost/f:1",
        &format!("docker://{}/hod/f:1", reg.host),
    ]);
    let fresh = TestContext::new("vfs");
    let before = fresh.ok(["images", "-q"]);
    let pull = |proxy: &FaultyProxy| {
        fresh.hod([
            "pull",
            "-q",
            "--tls-verify=false",
            "--retry",
            "2",
            "--retry-delay",
            "1s",
            &format!("docker://{}/hod/f:1", proxy.host),
        ])
    };
    let p = FaultyProxy::start(&reg.host, "500").unwrap();
    let r = pull(&p).one_error_naming(&p.host);
    assert!(
        r.stderr.contains("giving up after 3 attempts"),
        "{}",
        r.dump()
    );
    let p = FaultyProxy::start(&reg.host, "drop-blob").unwrap();
    let r = pull(&p).one_error_naming(&p.host);
    assert!(
        r.stderr.contains("giving up after 3 attempts"),
        "{}",
        r.dump()
    );
    let p = FaultyProxy::start(&reg.host, "corrupt-blob").unwrap();
    pull(&p).one_error_naming("sha256:");
    let p = FaultyProxy::start(&reg.host, "big-manifest").unwrap();
    pull(&p).one_error_naming("larger than the limit");
    let p = FaultyProxy::start(&reg.host, "unknown-mt").unwrap();
    pull(&p).one_error_naming("application/vnd.hod.unknown+json");
    assert_eq!(fresh.ok(["images", "-q"]), before, "nothing was stored");
    // a dropped connection is resumed, and the pull succeeds
    let p = FaultyProxy::start(&reg.host, "drop-blob-once").unwrap();
    pull(&p).success();
    assert_eq!(
        fresh.image_id(&format!("{}/hod/f:1", p.host)),
        ctx.image_id("localhost/f:1")
    );
}

/// A big layer goes to the registry while it is being compressed (one PATCH with a chunked
/// body); when the registry refuses that stream, the staged blob is sent the usual way and
/// the push still succeeds. Either way the pulled image is the pushed one.
#[test]
fn big_layers_stream_and_fall_back_when_refused() {
    if !common::require("streamed uploads", &["docker-registry", "python3"]) {
        return;
    }
    let Some(reg) = TestRegistry::start(Mode::Plain) else {
        return;
    };
    let ctx = TestContext::new("vfs");
    let ctr = ctx.scratch_busybox_container();
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("big");
    // 12 MiB: half random (stored by the compressor), half text.
    let mut data = vec![0u8; 6 << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = (x >> 32) as u8;
    }
    let mut i = 0u64;
    while data.len() < 12 << 20 {
        data.extend_from_slice(format!("line {i}\n").as_bytes());
        i += 1;
    }
    std::fs::write(&big, &data).unwrap();
    ctx.ok(["copy", &ctr, &big.display().to_string(), "/big"]);
    ctx.ok(["commit", "-q", &ctr, "localhost/big:1"]);
    let id = ctx.image_id("localhost/big:1");
    for (mode, repo) in [("pass", "streamed"), ("reject-stream", "fallback")] {
        let p = FaultyProxy::start(&reg.host, mode).unwrap();
        let dest = format!("docker://{}/hod/{repo}:1", p.host);
        ctx.ok(["push", "--tls-verify=false", "localhost/big:1", &dest]);
        let reqs = p.requests();
        let streamed: Vec<&String> = reqs
            .iter()
            .filter(|r| r.starts_with("PATCH ") && r.ends_with(" chunked"))
            .collect();
        assert_eq!(streamed.len(), 1, "one streamed upload ({mode}): {reqs:#?}");
        // With "reject-stream" the PATCH got a 500: the image being complete in the
        // registry (the manifest PUT, then the pull) shows the fallback upload happened.
        let fresh = TestContext::new("vfs");
        fresh.ok(["pull", "-q", "--tls-verify=false", &dest]);
        assert_eq!(fresh.image_id(&dest["docker://".len()..]), id, "{mode}");
        // (straight to the registry: the proxy keeps only one of skopeo's Accept headers)
        let direct = format!("docker://{}/hod/{repo}:1", reg.host);
        let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &direct]);
        assert!(raw.stdout.contains("tar+gzip"), "{}", raw.dump());
    }
}
