//! Layer encryption (`--encryption-key`, `--encrypt-layer`, `--decryption-key`) against
//! containers/ocicrypt as skopeo has it: what hod encrypts, skopeo decrypts to the same
//! tree; what skopeo encrypts, hod pulls with the key, refuses without it or with a wrong
//! one, storing nothing. Keys are made here with openssl.

use crate::common::registry::{Mode, TestRegistry};
use crate::common::{self, run_cmd, TestContext};
use std::path::Path;
use std::process::Command;

const ENC_SUFFIX: &str = "+encrypted";
const KEYS_JWE: &str = "org.opencontainers.image.enc.keys.jwe";
const PUBOPTS: &str = "org.opencontainers.image.enc.pubopts";

fn sh(script: &str) -> String {
    let mut c = Command::new("sh");
    c.arg("-c").arg(script);
    let r = run_cmd(c);
    assert_eq!(r.code, Some(0), "{script}: {}", r.dump());
    r.stdout.trim().to_string()
}

fn skopeo(args: &[&str]) -> common::Run {
    let mut c = Command::new("skopeo");
    c.args(args);
    run_cmd(c)
}

/// An RSA key pair (`NAME.pem`, `NAME.pub`) in `dir`.
fn rsa_pair(dir: &Path, name: &str) -> (String, String) {
    let pem = dir.join(format!("{name}.pem")).display().to_string();
    let public = dir.join(format!("{name}.pub")).display().to_string();
    sh(&format!(
        "openssl genrsa -out {pem} 2048 2>/dev/null && openssl rsa -in {pem} -pubout -out {public} 2>/dev/null"
    ));
    (pem, public)
}

/// A two-layer image `localhost/enc:1` (busybox, then `/etc/secret.txt` and a 9 MiB
/// `/big.bin`).
fn two_layer_image(ctx: &TestContext) {
    let ctr = ctx.scratch_busybox_container();
    ctx.ok(["commit", "-q", &ctr, "localhost/base:1"]);
    let ctr = ctx.ok(["from", "localhost/base:1"]);
    let f = ctx.path("secret.txt");
    std::fs::write(&f, "the secret\n").unwrap();
    ctx.ok(["copy", &ctr, f.to_str().unwrap(), "/etc/secret.txt"]);
    // 9 MiB of random bytes: the layer is big enough to be streamed to a registry while it
    // is compressed and encrypted (the pipeline's STREAM_MIN is 8 MiB).
    let big = ctx.path("big.bin");
    sh(&format!("head -c 9437184 /dev/urandom > {}", big.display()));
    ctx.ok(["copy", &ctr, big.to_str().unwrap(), "/big.bin"]);
    ctx.ok(["commit", "-q", &ctr, "localhost/enc:1"]);
}

/// The manifest of an `oci:` or `docker://` reference.
fn raw_manifest(r: &str) -> serde_json::Value {
    let out = skopeo(&["inspect", "--raw", "--tls-verify=false", r]).success();
    serde_json::from_str(&out.stdout).unwrap()
}

/// The sha256 of each layer of an `oci:` layout (image `tag`), uncompressed.
fn layout_diff_ids(layout: &Path, tag: &str) -> Vec<String> {
    let m = raw_manifest(&format!("oci:{}:{tag}", layout.display()));
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let d = l["digest"].as_str().unwrap().trim_start_matches("sha256:");
            let blob = layout.join("blobs/sha256").join(d);
            let hex = sh(&format!(
                "gzip -dc {} | sha256sum | cut -d' ' -f1",
                blob.display()
            ));
            format!("sha256:{hex}")
        })
        .collect()
}

fn config_diff_ids(ctx: &TestContext, image: &str) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(&ctx.ok(["inspect", "--type", "image", image])).unwrap();
    v["OCIv1"]["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

/// (a) hod push --encryption-key to a registry → every layer `…+encrypted` with ocicrypt's
/// annotations, OCI manifest → skopeo decrypts it into a tree equal to the original; a
/// wrong key is refused by skopeo too. `--encrypt-layer -1` encrypts only the top layer.
#[test]
fn hod_encrypts_skopeo_decrypts() {
    if !common::require(
        "hod_encrypts_skopeo_decrypts",
        &["docker-registry", "skopeo", "openssl", "gzip", "umoci"],
    ) {
        return;
    }
    let Some(reg) = TestRegistry::start(Mode::Plain) else {
        return;
    };
    let ctx = TestContext::new("vfs");
    let (pem, public) = rsa_pair(ctx.path("").as_path(), "k");
    let (other, _) = rsa_pair(ctx.path("").as_path(), "other");
    two_layer_image(&ctx);
    let want = config_diff_ids(&ctx, "localhost/enc:1");
    assert_eq!(want.len(), 2);

    let dest = format!("docker://{}/hod/enc:1", reg.host);
    ctx.ok([
        "push",
        "-q",
        "--tls-verify=false",
        "--format",
        "oci",
        "--encryption-key",
        &format!("jwe:{public}"),
        "localhost/enc:1",
        &dest,
    ]);
    let m = raw_manifest(&dest);
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    for l in m["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
            "{m}"
        );
        assert!(l["annotations"][KEYS_JWE].is_string(), "{m}");
        assert!(l["annotations"][PUBOPTS].is_string(), "{m}");
    }

    // skopeo (containers/ocicrypt) decrypts with the right key…
    let dec = ctx.path("dec");
    skopeo(&[
        "copy",
        "-q",
        "--src-tls-verify=false",
        "--decryption-key",
        &pem,
        &dest,
        &format!("oci:{}:x", dec.display()),
    ])
    .success();
    let dm = raw_manifest(&format!("oci:{}:x", dec.display()));
    for l in dm["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert!(l
            .get("annotations")
            .is_none_or(|a| a.get(KEYS_JWE).is_none()));
    }
    assert_eq!(layout_diff_ids(&dec, "x"), want);
    // …and the unpacked tree is the original's
    let bundle = ctx.path("bundle");
    let mut c = Command::new("umoci");
    c.args(["unpack", "--image", &format!("{}:x", dec.display())])
        .arg(&bundle);
    run_cmd(c).success();
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/etc/secret.txt")).unwrap(),
        "the secret\n"
    );
    assert_eq!(
        std::fs::read(bundle.join("rootfs/bin/busybox")).unwrap(),
        std::fs::read("/bin/busybox").unwrap()
    );
    assert!(
        std::fs::read(bundle.join("rootfs/big.bin")).unwrap()
            == std::fs::read(ctx.path("big.bin")).unwrap(),
        "the big (streamed) layer differs after decryption"
    );
    // skopeo refuses a wrong key
    let r = skopeo(&[
        "copy",
        "-q",
        "--src-tls-verify=false",
        "--decryption-key",
        &other,
        &dest,
        &format!("oci:{}:y", ctx.path("wrong").display()),
    ]);
    assert_ne!(r.code, Some(0), "{}", r.dump());
    assert!(r.stderr.contains("no suitable key"), "{}", r.dump());

    // --encrypt-layer -1: only the top layer
    let top = ctx.path("top");
    ctx.ok([
        "push",
        "-q",
        "--encryption-key",
        &format!("jwe:{public}"),
        "--encrypt-layer",
        "-1",
        "localhost/enc:1",
        &format!("oci:{}:t", top.display()),
    ]);
    let tm = raw_manifest(&format!("oci:{}:t", top.display()));
    let types: Vec<&str> = tm["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert!(!types[0].ends_with(ENC_SUFFIX), "{tm}");
    assert!(types[1].ends_with(ENC_SUFFIX), "{tm}");
    // an index out of range is containers/image's error (buildah 1.28's c/image ignored it)
    if common::is_buildah() {
        return;
    }
    ctx.hod([
        "push",
        "-q",
        "--encryption-key",
        &format!("jwe:{public}"),
        "--encrypt-layer",
        "2",
        "localhost/enc:1",
        &format!("oci:{}:t", ctx.path("range").display()),
    ])
    .one_error_naming("layer index 2 out of range (2 layers exist)");
}

/// (b) skopeo --encryption-key → hod pull --decryption-key → from/mount shows the files;
/// (c) without a key: exit 125, a clear error, nothing stored; (d) a wrong key: refused in
/// ocicrypt's words, nothing stored; `copy --from` an encrypted image takes the key too.
#[test]
fn skopeo_encrypts_hod_decrypts() {
    if !common::require(
        "skopeo_encrypts_hod_decrypts",
        &["skopeo", "openssl", "umoci"],
    ) {
        return;
    }
    let ctx = TestContext::new("vfs");
    let (pem, public) = rsa_pair(ctx.path("").as_path(), "k");
    let (other, _) = rsa_pair(ctx.path("").as_path(), "other");
    two_layer_image(&ctx);
    let plain = ctx.path("plain");
    ctx.ok([
        "push",
        "-q",
        "localhost/enc:1",
        &format!("oci:{}:p", plain.display()),
    ]);
    let enc = ctx.path("enc");
    let enc_ref = format!("oci:{}:e", enc.display());
    skopeo(&[
        "copy",
        "-q",
        "--encryption-key",
        &format!("jwe:{public}"),
        &format!("oci:{}:p", plain.display()),
        &enc_ref,
    ])
    .success();
    let m = raw_manifest(&enc_ref);
    assert!(m["layers"][0]["mediaType"]
        .as_str()
        .unwrap()
        .ends_with(ENC_SUFFIX));

    // A fresh store for the pulls.
    let fresh = TestContext::new("vfs");
    let stored = |c: &TestContext| c.ok(["images", "-a", "-q"]);
    // (c) no key
    let r = fresh.hod(["pull", "-q", &enc_ref]).code_is(125);
    assert!(
        r.stderr
            .contains("is encrypted and no decryption key was given")
            && r.stderr.contains("does not match config's DiffID"),
        "{}",
        r.dump()
    );
    let r = fresh.hod(["from", "-q", &enc_ref]).code_is(125);
    assert!(
        r.stderr.contains("does not match config's DiffID"),
        "{}",
        r.dump()
    );
    assert_eq!(stored(&fresh), "", "nothing may be stored");
    // (d) a wrong key
    let r = fresh
        .hod(["pull", "-q", "--decryption-key", &other, &enc_ref])
        .code_is(125);
    assert!(
        r.stderr.contains("decrypting layer sha256:")
            && r.stderr.contains(
                "no suitable key unwrapper found or none of the private keys could be used for decryption"
            )
            && r.stderr.contains("- JWE: No suitable private key found for decryption"),
        "{}",
        r.dump()
    );
    assert_eq!(stored(&fresh), "", "nothing may be stored");
    // a public key where a private one belongs is named
    fresh
        .hod(["pull", "-q", "--decryption-key", &public, &enc_ref])
        .one_error_naming(&public);
    // (b) the right key: same image ID (the config is not encrypted), files readable
    let id = fresh.ok(["pull", "-q", "--decryption-key", &pem, &enc_ref]);
    assert_eq!(id, ctx.image_id("localhost/enc:1"));
    assert_eq!(
        config_diff_ids(&fresh, &id),
        config_diff_ids(&ctx, "localhost/enc:1")
    );
    let ctr = fresh.ok(["from", "-q", "--decryption-key", &pem, &enc_ref]);
    let mnt = fresh.ok(["mount", &ctr]);
    assert_eq!(
        std::fs::read_to_string(Path::new(&mnt).join("etc/secret.txt")).unwrap(),
        "the secret\n"
    );
    fresh.ok(["umount", &ctr]);
    // copy --from an encrypted image pulls it with the key (another fresh store)
    let third = TestContext::new("vfs");
    let ctr3 = third.ok(["from", "scratch"]);
    let r = third
        .hod([
            "copy",
            "--from",
            &enc_ref,
            &ctr3,
            "/etc/secret.txt",
            "/s.txt",
        ])
        .code_is(125);
    assert!(
        r.stderr.contains("does not match config's DiffID"),
        "{}",
        r.dump()
    );
    third.ok([
        "copy",
        "--decryption-key",
        &pem,
        "--from",
        &enc_ref,
        &ctr3,
        "/etc/secret.txt",
        "/s.txt",
    ]);
    let mnt3 = third.ok(["mount", &ctr3]);
    assert_eq!(
        std::fs::read_to_string(Path::new(&mnt3).join("s.txt")).unwrap(),
        "the secret\n"
    );
    third.ok(["umount", &ctr3]);
    // a decrypted copy is plain again: hod pushes it without the enc annotations
    let back = fresh.path("back");
    fresh.ok(["push", "-q", &id, &format!("oci:{}:b", back.display())]);
    let bm = raw_manifest(&format!("oci:{}:b", back.display()));
    for l in bm["layers"].as_array().unwrap() {
        assert!(!l["mediaType"].as_str().unwrap().ends_with(ENC_SUFFIX));
        assert!(l
            .get("annotations")
            .is_none_or(|a| a.get(KEYS_JWE).is_none()));
    }
}

/// Protocols other than jwe get an error naming them; encryption never goes into the local
/// store, nor into the docker format.
#[test]
fn unsupported_protocols_and_destinations() {
    if !common::require(
        "unsupported_protocols_and_destinations",
        &["openssl", "skopeo"],
    ) {
        return;
    }
    let ctx = TestContext::new("vfs");
    let (_, public) = rsa_pair(ctx.path("").as_path(), "k");
    let ctr = ctx.scratch_busybox_container();
    ctx.ok(["commit", "-q", &ctr, "localhost/x:1"]);
    let dest = format!("oci:{}:x", ctx.path("lay").display());
    for p in ["pgp", "pkcs7", "pkcs11"] {
        ctx.hod([
            "push",
            "-q",
            "--encryption-key",
            &format!("{p}:{public}"),
            "localhost/x:1",
            &dest,
        ])
        .one_error_naming(&format!("{p:?}"));
    }
    ctx.hod([
        "push",
        "-q",
        "--format",
        "docker",
        "--encryption-key",
        &format!("jwe:{public}"),
        "localhost/x:1",
        &dest,
    ])
    .one_error_naming("format docker");
    ctx.hod([
        "commit",
        "-q",
        "--encryption-key",
        &format!("jwe:{public}"),
        &ctr,
        "localhost/y:1",
    ])
    .one_error_naming("local storage");
    // commit straight to oci: encrypts
    ctx.ok([
        "commit",
        "-q",
        "--encryption-key",
        &format!("jwe:{public}"),
        &ctr,
        &format!("oci:{}:c", ctx.path("committed").display()),
    ]);
    let m = raw_manifest(&format!("oci:{}:c", ctx.path("committed").display()));
    assert!(m["layers"][0]["mediaType"]
        .as_str()
        .unwrap()
        .ends_with(ENC_SUFFIX));
}
