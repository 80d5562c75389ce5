//! Issue 14: `hod bud` over many small Containerfiles. Each case builds in a fresh vfs store
//! and checks the image (config, history, files with owners and modes) through `inspect`
//! and a mount of a container made from it. Cases marked `compare` are built by the
//! reference buildah 1.28.2 (`$BUILDAH_REF`, default /usr/bin/buildah) too, side by side,
//! and must give the same config, history (content digests masked) and file tree.
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::{self, TestContext};

/// What a build left behind.
struct Built {
    run: common::Run,
    id: String,
    /// The OCIv1 config.
    config: Value,
    /// `created_by` of each history entry, digests masked, `(empty)` marked.
    history: Vec<String>,
    /// path → "type mode uid:gid size/target".
    tree: BTreeMap<String, String>,
    manifest_annotations: Value,
}

impl Built {
    fn cfg(&self, key: &str) -> &Value {
        &self.config["config"][key]
    }
    fn file(&self, path: &str) -> &str {
        self.tree
            .get(path)
            .unwrap_or_else(|| panic!("{path} not in image: {:#?}", self.tree.keys()))
    }
    fn has(&self, path: &str) -> bool {
        self.tree.contains_key(path)
    }
}

fn buildah_ref() -> PathBuf {
    std::env::var_os("BUILDAH_REF")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/buildah"))
}

/// A context directory with `files` (`path`, contents; a trailing `/` makes a directory;
/// `->target` makes a symlink).
fn context(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    let ctx = dir.join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    for (p, c) in files {
        let path = ctx.join(p);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        if p.ends_with('/') {
            fs::create_dir_all(&path).unwrap();
        } else if let Some(t) = c.strip_prefix("->") {
            std::os::unix::fs::symlink(t, &path).unwrap();
        } else {
            fs::write(&path, c).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    ctx
}

fn mask_digests(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(':') {
        let (head, tail) = rest.split_at(i + 1);
        out.push_str(head);
        let hex: String = tail.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        if hex.len() == 64 {
            out.push_str("<digest>");
            rest = &tail[64..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let md = fs::symlink_metadata(&p).unwrap();
        let rel = format!("/{}", p.strip_prefix(root).unwrap().display());
        let ft = md.file_type();
        let (kind, extra) = if ft.is_symlink() {
            ("l", fs::read_link(&p).unwrap().display().to_string())
        } else if ft.is_dir() {
            ("d", String::new())
        } else {
            ("f", md.len().to_string())
        };
        out.insert(
            rel,
            format!(
                "{kind} {:o} {}:{} {extra}",
                md.mode() & 0o7777,
                md.uid(),
                md.gid()
            ),
        );
        if ft.is_dir() {
            walk(root, &p, out);
        }
    }
}

/// Inspect `image` and walk its tree through a container mount.
fn examine(ctx: &TestContext, run: common::Run, image: &str) -> Built {
    let v: Value = serde_json::from_str(&ctx.ok(["inspect", "-t", "image", image])).unwrap();
    let config = v["OCIv1"].clone();
    let history = config["history"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|h| {
            let mut s = mask_digests(h["created_by"].as_str().unwrap_or(""));
            if h["empty_layer"].as_bool() == Some(true) {
                s.push_str(" (empty)");
            }
            s
        })
        .collect();
    // A name of our own: `from` prints ONBUILD triggers' output before it.
    let ctr = "examine-ctr";
    ctx.ok(["from", "--pull=never", "--name", ctr, image]);
    let mnt = PathBuf::from(ctx.ok(["mount", ctr]));
    let mut tree = BTreeMap::new();
    walk(&mnt, &mnt, &mut tree);
    ctx.ok(["umount", ctr]);
    ctx.ok(["rm", ctr]);
    let id = v["FromImageID"].as_str().unwrap_or_default().to_string();
    Built {
        run,
        id,
        config,
        history,
        tree,
        manifest_annotations: v["ImageAnnotations"].clone(),
    }
}

struct Env {
    ctx: TestContext,
    dir: tempfile::TempDir,
}

fn env_with(bin: PathBuf) -> Env {
    let ctx = TestContext::with_bin("vfs", bin);
    ctx.seed_busybox("busybox");
    let dir = tempfile::Builder::new()
        .prefix("hodbud.")
        .tempdir_in("/var/tmp")
        .unwrap();
    Env { ctx, dir }
}

/// Build `files` with `args` (the context is added last) in a fresh store; `Err` is the
/// failed run.
fn build_with(bin: PathBuf, files: &[(&str, &str)], args: &[&str]) -> Result<Built, common::Run> {
    let e = env_with(bin);
    let ctx_dir = context(e.dir.path(), files);
    let mut a: Vec<String> = vec!["bud".into(), "-t".into(), "localhost/case:latest".into()];
    a.extend(args.iter().map(|s| s.to_string()));
    a.push(ctx_dir.display().to_string());
    let mut cmd = e.ctx.cmd(&a);
    cmd.current_dir(&ctx_dir);
    let run = common::run_cmd(cmd);
    common::assert_no_panic(&run);
    if run.code != Some(0) {
        return Err(run);
    }
    let b = examine(&e.ctx, run, "localhost/case:latest");
    drop(e);
    Ok(b)
}

fn hod_build(files: &[(&str, &str)], args: &[&str]) -> Option<Built> {
    if !common::require("bud", &["skopeo"]) {
        return None;
    }
    match build_with(common::hod_bin(), files, args) {
        Ok(b) => Some(b),
        Err(r) => panic!("hod bud failed:\n{}", r.dump()),
    }
}

fn hod_fails(files: &[(&str, &str)], args: &[&str]) -> Option<common::Run> {
    if !common::require("bud", &["skopeo"]) {
        return None;
    }
    match build_with(common::hod_bin(), files, args) {
        Ok(_) => panic!("hod bud succeeded but should not have"),
        Err(r) => Some(r),
    }
}

/// The config fields both builders must agree on.
fn comparable_config(b: &Built) -> Value {
    let mut c = b.config["config"].clone();
    if let Some(l) = c.get_mut("Labels").and_then(Value::as_object_mut) {
        l.remove("io.buildah.version");
        if l.is_empty() {
            c.as_object_mut().unwrap().remove("Labels");
        }
    }
    serde_json::json!({
        "config": c,
        "os": b.config["os"],
        "architecture": b.config["architecture"],
        "layers": b.config["rootfs"]["diff_ids"].as_array().map(|a| a.len()),
    })
}

/// Build with hod and with buildah; the config, history and tree must match.
fn compare(files: &[(&str, &str)], args: &[&str]) -> Option<Built> {
    let hod = hod_build(files, args)?;
    if !buildah_ref().exists() {
        common::skipped("bud compare", "no reference buildah");
        return Some(hod);
    }
    let reference = match build_with(buildah_ref(), files, args) {
        Ok(b) => b,
        Err(r) => panic!("reference buildah failed:\n{}", r.dump()),
    };
    assert_eq!(
        comparable_config(&hod),
        comparable_config(&reference),
        "config differs from buildah's"
    );
    assert_eq!(
        hod.history, reference.history,
        "history differs from buildah's"
    );
    let diff: Vec<String> = hod
        .tree
        .iter()
        .filter(|(k, v)| reference.tree.get(*k) != Some(v))
        .map(|(k, v)| format!("hod {k}: {v} / buildah: {:?}", reference.tree.get(k)))
        .chain(
            reference
                .tree
                .keys()
                .filter(|k| !hod.tree.contains_key(*k))
                .map(|k| format!("only in buildah: {k}")),
        )
        .collect();
    assert!(diff.is_empty(), "trees differ:\n{}", diff.join("\n"));
    Some(hod)
}

fn content(dir: &Path, image_file: &str) -> String {
    fs::read_to_string(dir.join(image_file.trim_start_matches('/'))).unwrap()
}

/// Build, then read files of the image (through a mount) with `f`.
fn with_files(
    files: &[(&str, &str)],
    args: &[&str],
    f: impl FnOnce(&Path, &common::Run),
) -> Option<()> {
    if !common::require("bud", &["skopeo"]) {
        return None;
    }
    let e = env_with(common::hod_bin());
    let ctx_dir = context(e.dir.path(), files);
    let mut a: Vec<String> = vec!["bud".into(), "-t".into(), "case".into()];
    a.extend(args.iter().map(|s| s.to_string()));
    a.push(ctx_dir.display().to_string());
    let mut cmd = e.ctx.cmd(&a);
    cmd.current_dir(&ctx_dir);
    let run = common::run_cmd(cmd).success();
    let ctr = e.ctx.ok(["from", "case"]);
    let mnt = PathBuf::from(e.ctx.ok(["mount", &ctr]));
    f(&mnt, &run);
    e.ctx.ok(["umount", &ctr]);
    Some(())
}

const CF: &str = "Containerfile";

// ---------------------------------------------------------------- metadata

#[test]
fn metadata_instructions_match_buildah() {
    let Some(b) = compare(
        &[
            (
                CF,
                "FROM busybox\nENV A=1 B=\"two words\"\nENV C=$A-${B}\nLABEL l1=v1 \"l 2\"=x\nWORKDIR /w\nUSER 1:2\nEXPOSE 80 53/udp\nVOLUME /data [\"/v2\"]\nSTOPSIGNAL SIGTERM\nMAINTAINER someone\nCMD [\"sh\"]\n",
            ),
        ],
        &[],
    ) else {
        return;
    };
    assert_eq!(b.cfg("Env")[3], "C=1-two words");
    assert_eq!(b.cfg("User"), "1:2");
    assert_eq!(b.cfg("WorkingDir"), "/w");
    assert!(b.cfg("ExposedPorts").get("53/udp").is_some());
    assert!(b.file("/w").starts_with("d 755 0:0"));
    assert_eq!(b.config["author"], "someone");
    assert!(b.history.last().unwrap().contains("CMD [\"sh\"]"));
    assert!(b.history[1].ends_with("(empty)"), "{:?}", b.history);
}

#[test]
fn entrypoint_resets_inherited_cmd() {
    let Some(b) = compare(&[(CF, "FROM busybox\nENTRYPOINT [\"/bin/echo\"]\n")], &[]) else {
        return;
    };
    assert_eq!(b.cfg("Entrypoint")[0], "/bin/echo");
    assert!(b.cfg("Cmd").is_null(), "{:?}", b.cfg("Cmd"));
}

#[test]
fn cmd_shell_form_uses_the_shell() {
    let Some(b) = compare(
        &[(CF, "FROM busybox\nCMD echo hi\nENTRYPOINT echo x\n")],
        &[],
    ) else {
        return;
    };
    assert_eq!(
        b.cfg("Cmd"),
        &serde_json::json!(["/bin/sh", "-c", "echo hi"])
    );
}

#[test]
fn docker_format_keeps_healthcheck_onbuild_shell() {
    let Some(b) = compare(
        &[(
            CF,
            "FROM busybox\nSHELL [\"/bin/sh\", \"-xc\"]\nHEALTHCHECK --interval=5s --retries=2 CMD true\nONBUILD RUN echo hi\nRUN echo x > /x\n",
        )],
        &["--format", "docker"],
    ) else {
        return;
    };
    assert!(b
        .history
        .iter()
        .any(|h| h.contains("-xc") || h.contains("echo x")));
}

#[test]
fn labels_env_annotations_from_flags() {
    let Some(b) = compare(
        &[(CF, "FROM busybox\nENV KEEP=1 DROP=2\n")],
        &[
            "--label",
            "a=b",
            "--env",
            "E=f",
            "--unsetenv",
            "DROP",
            "--annotation",
            "ann=v",
        ],
    ) else {
        return;
    };
    assert_eq!(b.cfg("Labels")["a"], "b");
    let env = b.cfg("Env").to_string();
    assert!(
        env.contains("E=f") && env.contains("KEEP=1") && !env.contains("DROP"),
        "{env}"
    );
    assert_eq!(b.manifest_annotations["ann"], "v");
}

#[test]
fn onbuild_triggers_run_when_used_as_base() {
    if !common::require("bud", &["skopeo"]) {
        return;
    }
    let e = env_with(common::hod_bin());
    let c1 = context(
        &e.dir.path().join("1"),
        &[(CF, "FROM busybox\nONBUILD RUN echo triggered > /trig\n")],
    );
    e.ctx.ok([
        "bud",
        "--format",
        "docker",
        "-t",
        "parent",
        &c1.display().to_string(),
    ]);
    let c2 = context(
        &e.dir.path().join("2"),
        &[(CF, "FROM parent\nRUN cat /trig\n")],
    );
    let out = e.ctx.ok(["bud", "-t", "child", &c2.display().to_string()]);
    assert!(out.contains("triggered"), "{out}");
    let v: Value = serde_json::from_str(&e.ctx.ok(["inspect", "-t", "image", "child"])).unwrap();
    assert!(
        v["Docker"]["config"]["OnBuild"].is_null(),
        "triggers are consumed"
    );
}

// ---------------------------------------------------------------- RUN

#[test]
fn run_shell_and_exec_forms_match_buildah() {
    let Some(b) = compare(
        &[(
            CF,
            "FROM busybox\nRUN echo hi > /hi && mkdir -p /d/e && chmod 0750 /d\nRUN [\"/bin/sh\", \"-c\", \"echo exec > /x; chown 1:1 /x\"]\n",
        )],
        &[],
    ) else {
        return;
    };
    assert!(b.file("/hi").starts_with("f 644 0:0 3"));
    assert!(b.file("/x").starts_with("f 644 1:1"));
    assert!(b.file("/d").starts_with("d 750"));
    assert_eq!(
        b.history[1],
        "/bin/sh -c echo hi > /hi && mkdir -p /d/e && chmod 0750 /d (empty)"
    );
}

#[test]
fn failing_run_names_the_step_and_passes_its_status() {
    let Some(r) = hod_fails(&[(CF, "FROM busybox\nRUN exit 3\n")], &[]) else {
        return;
    };
    assert_eq!(r.code, Some(3), "{}", r.dump());
    assert!(
        r.stderr
            .contains("error building at STEP \"RUN exit 3\": exit status 3"),
        "{}",
        r.dump()
    );
}

#[test]
fn run_heredoc_script() {
    with_files(
        &[(CF, "FROM busybox\nRUN <<EOF\necho one > /one\necho two > /two\nEOF\nRUN cat <<EOT > /three\nthree\nEOT\n")],
        &[],
        |m, _| {
            assert_eq!(content(m, "/one"), "one\n");
            assert_eq!(content(m, "/two"), "two\n");
            assert_eq!(content(m, "/three"), "three\n");
        },
    );
}

#[test]
fn run_sees_build_args_and_history_records_them() {
    let Some(b) = compare(
        &[(CF, "FROM busybox\nARG X=dflt\nARG Y\nRUN echo $X-$Y > /x\n")],
        &["--build-arg", "Y=given"],
    ) else {
        return;
    };
    assert!(
        b.file("/x").ends_with(" 11"),
        "dflt-given\\n: {}",
        b.file("/x")
    );
    assert_eq!(b.history[1], "/bin/sh -c #(nop) ARG X (empty)");
    assert_eq!(b.history[2], "/bin/sh -c #(nop) ARG X Y (empty)");
    assert_eq!(
        b.history.last().unwrap(),
        "|2 X=dflt Y=given /bin/sh -c echo $X-$Y > /x"
    );
}

#[test]
fn build_arg_file() {
    with_files(
        &[
            (CF, "FROM busybox\nARG A\nARG B\nRUN echo $A$B > /ab\n"),
            ("args", "A=1\n# c\nB=2\n"),
        ],
        &["--build-arg-file", "args"],
        |m, _| assert_eq!(content(m, "/ab"), "12\n"),
    );
}

#[test]
fn run_mount_bind_from_context_and_stage() {
    let Some(b) = compare(
        &[
            (
                CF,
                "FROM busybox AS s\nRUN echo staged > /s\nFROM busybox\nRUN --mount=type=bind,source=a.txt,target=/a cat /a > /copied\nRUN --mount=type=bind,from=s,source=/s,target=/m cat /m > /from-stage\n",
            ),
            ("a.txt", "ctx\n"),
        ],
        &[],
    ) else {
        return;
    };
    assert!(b.file("/copied").ends_with(" 4"));
    assert!(b.file("/from-stage").ends_with(" 7"));
    assert!(
        !b.has("/a") || b.file("/a").starts_with("f"),
        "{:?}",
        b.tree.get("/a")
    );
}

#[test]
fn run_mount_tmpfs_leaves_nothing() {
    let Some(b) = hod_build(
        &[(
            CF,
            "FROM busybox\nRUN --mount=type=tmpfs,target=/t touch /t/x && echo ok > /ok\n",
        )],
        &[],
    ) else {
        return;
    };
    assert!(b.has("/ok"));
    assert!(!b.has("/t/x"));
}

#[test]
fn run_mount_cache_persists_across_builds() {
    if !common::require("bud", &["skopeo"]) {
        return;
    }
    let e = env_with(common::hod_bin());
    let c = context(
        e.dir.path(),
        &[(
            CF,
            "FROM busybox\nRUN --mount=type=cache,id=c1,target=/cache sh -c 'echo x >> /cache/log; wc -l < /cache/log > /count'\n",
        )],
    );
    let c = c.display().to_string();
    e.ctx.ok(["bud", "-t", "one", &c]);
    e.ctx.ok(["bud", "--no-cache", "-t", "two", &c]);
    let ctr = e.ctx.ok(["from", "two"]);
    let mnt = PathBuf::from(e.ctx.ok(["mount", &ctr]));
    assert_eq!(content(&mnt, "/count").trim(), "2");
    assert!(
        !mnt.join("cache/log").exists(),
        "the cache is not in the image"
    );
    e.ctx.ok(["umount", &ctr]);
}

#[test]
fn secrets_are_visible_to_run_and_never_stored() {
    if !common::require("bud", &["skopeo"]) {
        return;
    }
    let e = env_with(common::hod_bin());
    let c = context(
        e.dir.path(),
        &[(
            CF,
            "FROM busybox\nRUN --mount=type=secret,id=s md5sum < /run/secrets/s > /ok\nRUN --mount=type=secret,id=e,env=SEC sh -c 'echo -n \"$SEC\" | md5sum > /ok2'\n",
        )],
    );
    let secret = e.dir.path().join("secret.txt");
    fs::write(&secret, "sekrit-7f3a").unwrap();
    let mut cmd = e.ctx.cmd([
        "bud",
        "-t",
        "sec",
        "--secret",
        &format!("id=s,src={}", secret.display()),
        "--secret",
        "id=e,env=HOD_TEST_SECRET",
        &c.display().to_string(),
    ]);
    cmd.env("HOD_TEST_SECRET", "sekrit-env-9b1c");
    common::run_cmd(cmd).success();
    let b = examine(&e.ctx, common::run_cmd(Command::new("true")), "sec");
    let ctr = e.ctx.ok(["from", "sec"]);
    let mnt = PathBuf::from(e.ctx.ok(["mount", &ctr]));
    let md5 = |s: &str| {
        let mut c = Command::new("sh");
        c.args(["-c", &format!("printf %s '{s}' | md5sum")]);
        common::run_cmd(c).out().to_string()
    };
    assert_eq!(content(&mnt, "/ok").trim(), md5("sekrit-7f3a"));
    assert_eq!(content(&mnt, "/ok2").trim(), md5("sekrit-env-9b1c"));
    e.ctx.ok(["umount", &ctr]);
    assert!(
        !b.has("/run/secrets/s") && !b.has("/run/secrets"),
        "{:?}",
        b.tree
            .keys()
            .filter(|k| k.starts_with("/run"))
            .collect::<Vec<_>>()
    );
    let all = serde_json::to_string(&b.config).unwrap();
    assert!(!all.contains("sekrit"), "secret in config/history");
    // No layer holds it either.
    let r = common::run_cmd({
        let mut c = Command::new("grep");
        c.args(["-r", "-l", "sekrit"]).arg(&e.ctx.root);
        c
    });
    assert_ne!(r.code, Some(0), "secret found in the store: {}", r.stdout);
}

#[test]
fn run_network_none() {
    with_files(
        &[(
            CF,
            "FROM busybox\nRUN --network=none sh -c 'ls /sys/class/net > /nets'\n",
        )],
        &[],
        |m, _| assert_eq!(content(m, "/nets").trim(), "lo"),
    );
}

#[test]
fn build_wide_volume() {
    if !common::require("bud", &["skopeo"]) {
        return;
    }
    let e = env_with(common::hod_bin());
    let c = context(
        e.dir.path(),
        &[(CF, "FROM busybox\nRUN cat /vol/f > /got\n")],
    );
    let vol = e.dir.path().join("vol");
    fs::create_dir_all(&vol).unwrap();
    fs::write(vol.join("f"), "from volume").unwrap();
    e.ctx.ok([
        "bud",
        "-t",
        "v",
        "-v",
        &format!("{}:/vol:ro", vol.display()),
        &c.display().to_string(),
    ]);
    let ctr = e.ctx.ok(["from", "v"]);
    let mnt = PathBuf::from(e.ctx.ok(["mount", &ctr]));
    assert_eq!(content(&mnt, "/got"), "from volume");
    e.ctx.ok(["umount", &ctr]);
}

// ---------------------------------------------------------------- COPY / ADD

#[test]
fn copy_chown_chmod_dirs_match_buildah() {
    let Some(b) = compare(
        &[
            (
                CF,
                "FROM busybox\nCOPY --chown=1:2 --chmod=0640 a.txt /dst/a.txt\nCOPY dir /dir\nCOPY dir/sub/b.txt rel/\nWORKDIR /w\nCOPY a.txt .\n",
            ),
            ("a.txt", "aaa"),
            ("dir/sub/b.txt", "bbbb"),
            ("dir/c", "c"),
        ],
        &[],
    ) else {
        return;
    };
    assert_eq!(b.file("/dst/a.txt"), "f 640 1:2 3");
    assert_eq!(b.file("/dir/sub/b.txt"), "f 644 0:0 4");
    assert!(b.has("/rel/b.txt"));
    assert!(b.has("/w/a.txt"));
}

/// Symbolic `--chmod` (BuildKit's extension; buildah 1.28.2 takes octal only) changes each
/// item's own mode: `X` gives execute to directories and to files that had some.
#[test]
fn copy_symbolic_chmod_per_item() {
    if common::is_buildah() {
        common::skipped("symbolic --chmod", "buildah 1.28.2 takes octal modes only");
        return;
    }
    let Some(b) = hod_build(
        &[
            (
                CF,
                "FROM busybox AS s\nCOPY --chmod=0700 tool /src/tool\nCOPY plain /src/plain\n\
                 COPY plain /src/sub/\nRUN chmod 0700 /src /src/sub\n\
                 FROM busybox\nCOPY --from=s --chmod=a=rX,u+w /src /out\n\
                 COPY --chmod=go-r,u+x plain /p\nADD --chmod=g=u,o= arch.tar /a/\n",
            ),
            ("tool", "#!/bin/sh\n"),
            ("plain", "p"),
            ("arch.tar", ""),
        ],
        &[],
    ) else {
        return;
    };
    assert_eq!(b.file("/out/tool"), "f 755 0:0 10");
    assert_eq!(b.file("/out/plain"), "f 644 0:0 1");
    assert_eq!(b.file("/out/sub"), "d 755 0:0 ");
    assert_eq!(b.file("/out/sub/plain"), "f 644 0:0 1");
    assert_eq!(b.file("/p"), "f 700 0:0 1");
    assert_eq!(b.file("/a/arch.tar"), "f 660 0:0 0");
    // A mode that is neither octal nor symbolic is refused, naming it.
    let Some(r) = hod_fails(
        &[
            (CF, "FROM busybox\nCOPY --chmod=u+q plain /p\n"),
            ("plain", "p"),
        ],
        &[],
    ) else {
        return;
    };
    assert_eq!(r.code, Some(125), "{}", r.dump());
    assert!(r.stderr.contains("\"u+q\""), "{}", r.dump());
}

#[test]
fn containerignore_and_dockerignore() {
    let Some(b) = compare(
        &[
            (CF, "FROM busybox\nCOPY . /ctx\n"),
            (".containerignore", "*.log\n!keep.log\nsecret/\n"),
            ("a.log", "x"),
            ("keep.log", "x"),
            ("secret/k", "x"),
            ("ok.txt", "x"),
        ],
        &[],
    ) else {
        return;
    };
    assert!(!b.has("/ctx/a.log") && !b.has("/ctx/secret/k"));
    assert!(b.has("/ctx/keep.log") && b.has("/ctx/ok.txt"));
    let Some(b) = compare(
        &[
            (CF, "FROM busybox\nCOPY . /ctx\n"),
            (".dockerignore", "a.txt\n"),
            ("a.txt", "x"),
            ("b.txt", "x"),
        ],
        &[],
    ) else {
        return;
    };
    assert!(!b.has("/ctx/a.txt") && b.has("/ctx/b.txt"));
}

#[test]
fn ignorefile_flag_and_containerfile_specific_ignore() {
    let Some(b) = compare(
        &[
            (CF, "FROM busybox\nCOPY . /ctx\n"),
            ("other.ignore", "b.txt\n"),
            (".containerignore", "a.txt\n"),
            ("a.txt", "x"),
            ("b.txt", "x"),
        ],
        &["--ignorefile", "other.ignore"],
    ) else {
        return;
    };
    assert!(b.has("/ctx/a.txt") && !b.has("/ctx/b.txt"));
    let Some(b) = hod_build(
        &[
            ("build/App.containerfile", "FROM busybox\nCOPY . /ctx\n"),
            ("build/App.containerfile.containerignore", "c.txt\n"),
            (".containerignore", "a.txt\n"),
            ("a.txt", "x"),
            ("c.txt", "x"),
        ],
        &["-f", "build/App.containerfile"],
    ) else {
        return;
    };
    assert!(b.has("/ctx/a.txt") && !b.has("/ctx/c.txt"));
}

#[test]
fn copy_outside_context_is_refused() {
    let Some(r) = hod_fails(&[(CF, "FROM busybox\nCOPY ../outside /o\n")], &[]) else {
        return;
    };
    assert_ne!(r.code, Some(0));
    assert!(r.stderr.contains("COPY ../outside /o"), "{}", r.dump());
    let Some(r) = hod_fails(
        &[
            (CF, "FROM busybox\nCOPY link/passwd /p\n"),
            ("link", "->/etc"),
        ],
        &[],
    ) else {
        return;
    };
    assert!(r.stderr.contains("link/passwd"), "{}", r.dump());
}

#[test]
fn add_extracts_local_tar_and_copy_does_not() {
    if !common::require("bud", &["skopeo", "tar"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("t/inner")).unwrap();
    fs::write(d.path().join("t/inner/f"), "in tar").unwrap();
    let tarball = d.path().join("a.tar");
    let r = common::run_cmd({
        let mut c = Command::new("tar");
        c.arg("-C")
            .arg(d.path().join("t"))
            .arg("-cf")
            .arg(&tarball)
            .arg("inner");
        c
    });
    assert_eq!(r.code, Some(0));
    let data = fs::read(&tarball).unwrap();
    // The context gets the tar through a file we write ourselves.
    let e = env_with(common::hod_bin());
    let c = context(
        e.dir.path(),
        &[(CF, "FROM busybox\nADD a.tar /x/\nCOPY a.tar /y/\n")],
    );
    fs::write(c.join("a.tar"), data).unwrap();
    e.ctx.ok(["bud", "-t", "t", &c.display().to_string()]);
    let b = examine(&e.ctx, common::run_cmd(Command::new("true")), "t");
    assert!(b.has("/x/inner/f"), "ADD extracts");
    assert!(b.has("/y/a.tar"), "COPY does not");
}

#[test]
fn copy_heredoc() {
    with_files(
        &[(CF, "FROM busybox\nARG N=world\nCOPY <<EOF /hello\nhello $N\nEOF\nCOPY <<'EOF' /raw\nraw $N\nEOF\n")],
        &[],
        |m, _| {
            assert_eq!(content(m, "/hello"), "hello world\n");
            assert_eq!(content(m, "/raw"), "raw $N\n");
        },
    );
}

#[test]
fn copy_exclude_and_parents() {
    with_files(
        &[
            (
                CF,
                "FROM busybox\nCOPY --exclude=**/*.log d/ /d/\nCOPY --parents p/q/r.txt /par/\n",
            ),
            ("d/a.txt", "a"),
            ("d/b.log", "b"),
            ("p/q/r.txt", "r"),
        ],
        &[],
        |m, _| {
            assert!(m.join("d/a.txt").exists() && !m.join("d/b.log").exists());
            assert!(m.join("par/p/q/r.txt").exists());
        },
    );
}

// ---------------------------------------------------------------- stages

#[test]
fn copy_from_stage_name_index_and_image() {
    let Some(b) = compare(
        &[(
            CF,
            "FROM busybox AS one\nRUN echo 1 > /one\nFROM busybox\nRUN echo 2 > /two\nFROM busybox\nCOPY --from=one /one /one\nCOPY --from=1 /two /two\nCOPY --from=busybox /bin/busybox /bb\n",
        )],
        &[],
    ) else {
        return;
    };
    assert!(b.has("/one") && b.has("/two") && b.has("/bb"));
    assert!(b.run.stdout.contains("[3/3] COMMIT"), "{}", b.run.stdout);
}

#[test]
fn from_an_earlier_stage() {
    let Some(b) = compare(
        &[(
            CF,
            "FROM busybox AS base\nENV FROM_BASE=1\nRUN touch /base\nFROM base\nRUN touch /child\n",
        )],
        &[],
    ) else {
        return;
    };
    assert!(b.has("/base") && b.has("/child"));
    assert!(b.cfg("Env").to_string().contains("FROM_BASE=1"));
}

#[test]
fn target_builds_only_what_it_needs() {
    let Some(b) = compare(
        &[(
            CF,
            "FROM busybox AS broken\nRUN exit 1\nFROM busybox AS dep\nRUN touch /dep\nFROM dep AS wanted\nRUN touch /wanted\nFROM busybox\nRUN exit 1\n",
        )],
        &["--target", "wanted"],
    ) else {
        return;
    };
    assert!(b.has("/dep") && b.has("/wanted"));
}

#[test]
fn unknown_target_lists_the_stages() {
    let Some(r) = hod_fails(
        &[(CF, "FROM busybox AS a\nFROM busybox AS b\n")],
        &["--target", "nope"],
    ) else {
        return;
    };
    assert_eq!(r.code, Some(125));
    assert!(
        r.stderr.contains("nope") && r.stderr.contains("a, b"),
        "{}",
        r.dump()
    );
}

#[test]
fn global_args_in_from() {
    let Some(_) = compare(
        &[(
            CF,
            "ARG BASE=busybox\nARG TAG\nFROM $BASE\nARG BASE\nRUN echo $BASE > /base\n",
        )],
        &[],
    ) else {
        return;
    };
    let Some(r) = hod_fails(&[(CF, "ARG BASE\nFROM $BASE\n")], &[]) else {
        return;
    };
    assert!(
        r.stderr.contains("BASE") && r.stderr.contains("Containerfile:2"),
        "{}",
        r.dump()
    );
}

#[test]
fn from_flag_replaces_the_first_base() {
    let Some(b) = compare(
        &[(CF, "FROM nosuchimage\nRUN touch /x\n")],
        &["--from", "busybox"],
    ) else {
        return;
    };
    assert!(b.has("/x"));
}

#[test]
fn from_platform_is_accepted() {
    let arch = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    };
    let Some(b) = hod_build(
        &[(
            CF,
            &format!("FROM --platform=linux/{arch} busybox\nRUN touch /x\n"),
        )],
        &[],
    ) else {
        return;
    };
    assert_eq!(b.config["architecture"], arch);
}

// ---------------------------------------------------------------- files and inputs

#[test]
fn dockerfile_is_the_fallback_name() {
    let Some(b) = compare(
        &[("Dockerfile", "FROM busybox\nLABEL from=dockerfile\n")],
        &[],
    ) else {
        return;
    };
    assert_eq!(b.cfg("Labels")["from"], "dockerfile");
}

#[test]
fn several_files_continue_each_other() {
    let Some(b) = compare(
        &[("one", "FROM busybox\nENV ONE=1\n"), ("two", "ENV TWO=2\n")],
        &["-f", "one", "-f", "two"],
    ) else {
        return;
    };
    let env = b.cfg("Env").to_string();
    assert!(env.contains("ONE=1") && env.contains("TWO=2"));
}

#[test]
fn containerfile_from_stdin() {
    if !common::require("bud", &["skopeo"]) {
        return;
    }
    let e = env_with(common::hod_bin());
    let c = context(e.dir.path(), &[("x", "")]);
    let mut cmd = e
        .ctx
        .cmd(["bud", "-f", "-", "-t", "s", &c.display().to_string()]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"FROM busybox\nLABEL stdin=yes\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&e.ctx.ok(["inspect", "-t", "image", "s"])).unwrap();
    assert_eq!(v["OCIv1"]["config"]["Labels"]["stdin"], "yes");
}

const INC_MAIN: &str =
    "FROM busybox\n# a comment\n#include \"./Containerfile.install\"\nRUN echo a \\\n  b > /ab\n";
const INC_PART: &str = "RUN echo included > /inc\n# comment in include\n";

#[test]
fn containerfile_in_with_include_matches_buildah() {
    if !common::have("cpp") {
        common::skipped("containerfile_in", "no cpp");
        return;
    }
    let Some(b) = compare(
        &[
            ("Containerfile.in", INC_MAIN),
            ("Containerfile.install", INC_PART),
        ],
        &["-f", "Containerfile.in"],
    ) else {
        return;
    };
    assert!(b.has("/inc") && b.has("/ab"));
}

#[test]
fn containerfile_in_without_cpp_gives_the_same_image() {
    if !common::require("bud", &["skopeo", "cpp"]) {
        return;
    }
    let files = [
        ("Containerfile.in", INC_MAIN),
        ("Containerfile.install", INC_PART),
    ];
    let mut ids = Vec::new();
    for path in [std::env::var("PATH").unwrap(), "/nonexistent".to_string()] {
        let e = env_with(common::hod_bin());
        let c = context(e.dir.path(), &files);
        let mut cmd = e.ctx.cmd([
            "bud",
            "--timestamp",
            "0",
            "-f",
            "Containerfile.in",
            "-t",
            "inc",
            &c.display().to_string(),
        ]);
        cmd.env("PATH", &path).current_dir(&c);
        let r = common::run_cmd(cmd).success();
        let b = examine(&e.ctx, r, "inc");
        ids.push((b.id.clone(), b.tree.clone(), b.history.clone()));
    }
    assert_eq!(ids[0].2, ids[1].2, "same history with and without cpp");
    assert_eq!(ids[0].1, ids[1].1, "same tree with and without cpp");
    assert_eq!(ids[0].0, ids[1].0, "same image with and without cpp");
}

#[test]
fn parse_error_names_file_and_line_and_builds_nothing() {
    if !common::require("bud", &["skopeo"]) {
        return;
    }
    let e = env_with(common::hod_bin());
    let c = context(e.dir.path(), &[(CF, "FROM busybox\nRUN true\nBOGUS x\n")]);
    let before = e.ctx.ok(["images", "-q"]);
    let r = e.ctx.hod(["bud", "-t", "bad", &c.display().to_string()]);
    assert_eq!(r.code, Some(125));
    assert!(r.stderr.contains("Containerfile:3"), "{}", r.dump());
    assert!(!r.stdout.contains("STEP"), "nothing ran: {}", r.stdout);
    assert_eq!(e.ctx.ok(["images", "-q"]), before);
    assert_eq!(e.ctx.ok(["containers", "-q"]), "");
}

// ---------------------------------------------------------------- output and flags

#[test]
fn output_lines_match_buildah() {
    let files = [(CF, "FROM busybox\nENV A=1\nRUN echo from-run\n")];
    let Some(b) = hod_build(&files, &["-t", "other"]) else {
        return;
    };
    let lines: Vec<&str> = b.run.stdout.lines().collect();
    assert_eq!(
        &lines[..4],
        [
            "STEP 1/3: FROM busybox",
            "STEP 2/3: ENV A=1",
            "STEP 3/3: RUN echo from-run",
            "from-run"
        ]
    );
    assert_eq!(lines[4], "COMMIT localhost/case:latest");
    assert!(
        lines[5].starts_with("--> ") && lines[5].len() == 15,
        "{}",
        lines[5]
    );
    assert_eq!(lines[6], "Successfully tagged localhost/case:latest");
    assert_eq!(lines[7], "Successfully tagged localhost/other:latest");
    assert_eq!(lines[8], b.id);
    if buildah_ref().exists() {
        let r = build_with(buildah_ref(), &files, &["-t", "other"])
            .unwrap_or_else(|r| panic!("{}", r.dump()));
        // Same lines, IDs aside.
        let shape = |out: &str| -> Vec<String> {
            out.lines()
                .map(|l| match l.split_once(' ') {
                    Some(("-->", _)) => "--> ID".to_string(),
                    _ if l.len() == 64 && l.bytes().all(|c| c.is_ascii_hexdigit()) => "ID".into(),
                    _ => l.to_string(),
                })
                .collect()
        };
        assert_eq!(shape(&b.run.stdout), shape(&r.run.stdout));
    }
}

#[test]
fn quiet_prints_only_the_id_and_iidfile() {
    if !common::require("bud", &["skopeo"]) {
        return;
    }
    let e = env_with(common::hod_bin());
    let c = context(
        e.dir.path(),
        &[(CF, "FROM busybox\nENV A=1\nRUN echo run-output\n")],
    );
    let out = e.ctx.ok(["bud", "-q", "-t", "q", &c.display().to_string()]);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert_eq!(out, e.ctx.image_id("q"));
    let iid = e.dir.path().join("iid");
    let out = e.ctx.ok([
        "build",
        "--iidfile",
        &iid.display().to_string(),
        "-t",
        "q2",
        &c.display().to_string(),
    ]);
    assert!(
        !out.contains(&e.ctx.image_id("q2")) || out.lines().last() != Some(&e.ctx.image_id("q2"))
    );
    assert_eq!(
        fs::read_to_string(&iid).unwrap(),
        format!("sha256:{}", e.ctx.image_id("q2"))
    );
    e.ctx.ok([
        "build-using-dockerfile",
        "-q",
        "-t",
        "q3",
        &c.display().to_string(),
    ]);
}

#[test]
fn timestamp_zero_twice_gives_the_same_image() {
    if !common::require("bud", &["skopeo"]) {
        return;
    }
    let files = [
        (CF, "FROM busybox\nCOPY a /a\nRUN echo x > /x\nENV E=1\n"),
        ("a", "a"),
    ];
    let mut ids = Vec::new();
    for _ in 0..2 {
        let Some(b) = hod_build(&files, &["--timestamp", "0"]) else {
            return;
        };
        assert_eq!(b.config["created"], "1970-01-01T00:00:00Z");
        ids.push(b.id);
    }
    assert_eq!(ids[0], ids[1]);
}

#[test]
fn squash_and_omit_history() {
    let Some(b) = compare(
        &[(CF, "FROM busybox\nRUN touch /a\nRUN touch /b\n")],
        &["--squash"],
    ) else {
        return;
    };
    assert_eq!(b.config["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
    let Some(b) = compare(&[(CF, "FROM busybox\nRUN touch /a\n")], &["--omit-history"]) else {
        return;
    };
    assert!(b.history.is_empty(), "{:?}", b.history);
}

#[test]
fn output_to_local_dir_and_tar() {
    if !common::require("bud", &["skopeo"]) {
        return;
    }
    let e = env_with(common::hod_bin());
    let c = context(
        e.dir.path(),
        &[(CF, "FROM busybox\nRUN echo out > /out.txt\n")],
    );
    let dest = e.dir.path().join("outdir");
    e.ctx.ok([
        "bud",
        "--output",
        &format!("type=local,dest={}", dest.display()),
        &c.display().to_string(),
    ]);
    assert_eq!(fs::read_to_string(dest.join("out.txt")).unwrap(), "out\n");
    assert!(dest.join("bin/busybox").exists());
    let tar = e.dir.path().join("out.tar");
    e.ctx.ok([
        "bud",
        "-o",
        &format!("type=tar,dest={}", tar.display()),
        &c.display().to_string(),
    ]);
    let r = common::run_cmd({
        let mut c = Command::new("tar");
        c.arg("-tf").arg(&tar);
        c
    });
    assert!(
        r.stdout
            .lines()
            .any(|l| l.trim_start_matches("./") == "out.txt"),
        "{}",
        r.stdout
    );
    // `-o -`: the tar on stdout, the build's lines and RUN output on stderr.
    let r = e
        .ctx
        .cmd(["bud", "-o", "-", &c.display().to_string()])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let piped = e.dir.path().join("piped.tar");
    fs::write(&piped, &r.stdout).unwrap();
    let t = common::run_cmd({
        let mut c = Command::new("tar");
        c.arg("-tf").arg(&piped);
        c
    });
    assert!(
        t.stdout
            .lines()
            .any(|l| l.trim_start_matches("./") == "out.txt"),
        "{}",
        t.dump()
    );
    assert!(String::from_utf8_lossy(&r.stderr).contains("STEP 2/2"));
}

#[test]
fn rm_false_keeps_containers_and_default_removes_them() {
    if !common::require("bud", &["skopeo"]) {
        return;
    }
    let e = env_with(common::hod_bin());
    let c = context(e.dir.path(), &[(CF, "FROM busybox\nRUN true\n")]);
    e.ctx.ok(["bud", &c.display().to_string()]);
    assert_eq!(e.ctx.ok(["containers", "-q"]), "");
    e.ctx.ok(["bud", "--rm=false", &c.display().to_string()]);
    assert_eq!(e.ctx.ok(["containers", "-q"]).lines().count(), 1);
}

#[test]
fn logfile_gets_the_output() {
    if !common::require("bud", &["skopeo"]) {
        return;
    }
    let e = env_with(common::hod_bin());
    let c = context(e.dir.path(), &[(CF, "FROM busybox\nENV A=1\n")]);
    let log = e.dir.path().join("log");
    let out = e.ctx.ok([
        "bud",
        "--logfile",
        &log.display().to_string(),
        &c.display().to_string(),
    ]);
    assert_eq!(out, "");
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("STEP 2/2: ENV A=1"), "{text}");
}

#[test]
fn killed_during_run_leaves_no_tagged_image_and_next_build_works() {
    if !common::require("bud", &["skopeo"]) {
        return;
    }
    let e = env_with(common::hod_bin());
    let c = context(
        e.dir.path(),
        &[(CF, "FROM busybox\nRUN touch /started; sleep 30\n")],
    );
    let mut child = e
        .ctx
        .cmd(["bud", "-t", "killed", &c.display().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the RUN to start.
    let mut out = child.stdout.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    use std::io::Read;
    while !seen.contains("STEP 2/2") {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "build ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    // The RUN's process group may outlive hod for a moment.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        e.ctx.hod(["inspect", "-t", "image", "killed"]).code != Some(0),
        "no tagged image"
    );
    let c2 = context(
        &e.dir.path().join("2"),
        &[(CF, "FROM busybox\nRUN touch /fine\n")],
    );
    e.ctx.ok(["bud", "-t", "killed", &c2.display().to_string()]);
    e.ctx.ok(["inspect", "-t", "image", "killed"]);
}

#[test]
fn killed_during_commit_leaves_no_tagged_image_and_next_build_works() {
    if !common::require("bud", &["skopeo"]) {
        return;
    }
    let e = env_with(common::hod_bin());
    // 64 MiB of random bytes: the final commit is still writing its layer when killed.
    let c = context(
        e.dir.path(),
        &[(
            CF,
            "FROM busybox\nRUN head -c 67108864 /dev/urandom > /big\n",
        )],
    );
    // The commit's layer tar goes to this TMPDIR; the kill waits for it to grow.
    let tmp = tempfile::tempdir().unwrap();
    let mut child = e
        .ctx
        .cmd(["bud", "-t", "killed-commit", &c.display().to_string()])
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Bytes in the commit's scratch directories (`hod-scratch-commit-*/layer.tar`).
    let written = |dir: &Path| -> u64 {
        fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|d| {
                d.file_name()
                    .to_string_lossy()
                    .starts_with("hod-scratch-commit-")
            })
            .flat_map(|d| fs::read_dir(d.path()).into_iter().flatten().flatten())
            .filter_map(|f| f.metadata().ok())
            .map(|m| m.len())
            .sum()
    };
    let mut killed_midway = false;
    while child.try_wait().unwrap().is_none() {
        if written(tmp.path()) > 1 << 20 {
            child.kill().unwrap();
            use std::os::unix::process::ExitStatusExt;
            killed_midway = child.wait().unwrap().signal() == Some(9);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(
        killed_midway,
        "the build ended before its commit wrote 1 MiB"
    );
    assert!(
        e.ctx.hod(["inspect", "-t", "image", "killed-commit"]).code != Some(0),
        "no tagged image"
    );
    common::assert_store_consistent(&e.ctx);
    let c2 = context(
        &e.dir.path().join("2"),
        &[(CF, "FROM busybox\nRUN touch /fine\n")],
    );
    e.ctx
        .ok(["bud", "-t", "killed-commit", &c2.display().to_string()]);
    e.ctx.ok(["inspect", "-t", "image", "killed-commit"]);
    common::assert_store_consistent(&e.ctx);
}

// ---------------------------------------------------------------- --layers

#[test]
fn layers_cache_hits_misses_and_explains() {
    if !common::require("bud", &["skopeo"]) {
        return;
    }
    let e = env_with(common::hod_bin());
    let c = context(
        e.dir.path(),
        &[
            (
                CF,
                "FROM busybox\nARG V=1\nENV E=1\nCOPY a.txt /a.txt\nRUN echo $V > /v\nCOPY b.txt /b.txt\nCMD [\"sh\"]\n",
            ),
            ("a.txt", "one"),
            ("b.txt", "b"),
        ],
    );
    let cs = c.display().to_string();
    let first = e.ctx.ok(["bud", "--layers", "-t", "lay", &cs]);
    assert!(!first.contains("Using cache"), "{first}");
    // Nothing changed: every step is a hit, same image.
    let second = e.ctx.ok(["bud", "--layers", "-t", "lay", &cs]);
    // Every step is an image, as in buildah (config-only steps add no layer).
    assert_eq!(second.matches("--> Using cache").count(), 6, "{second}");
    assert_eq!(first.lines().last(), second.lines().last());
    // One source changed: misses from that COPY on, and --explain-cache names the file.
    fs::write(c.join("a.txt"), "two").unwrap();
    let third = e
        .ctx
        .ok(["bud", "--layers", "--explain-cache", "-t", "lay", &cs]);
    assert_eq!(
        third.matches("--> Using cache").count(),
        2,
        "ARG, ENV: {third}"
    );
    assert!(
        third.contains("Cache miss: COPY source a.txt changed"),
        "{third}"
    );
    // A build arg the RUN uses: the COPY before it hits, the RUN misses and says why.
    fs::write(c.join("a.txt"), "one").unwrap();
    let fourth = e.ctx.ok([
        "bud",
        "--layers",
        "--explain-cache",
        "--build-arg",
        "V=2",
        "-t",
        "lay",
        &cs,
    ]);
    assert_eq!(fourth.matches("--> Using cache").count(), 3, "{fourth}");
    assert!(fourth.contains("build arg V changed"), "{fourth}");
    // --no-cache builds everything again.
    let fifth = e
        .ctx
        .ok(["bud", "--layers", "--no-cache", "-t", "lay", &cs]);
    assert!(!fifth.contains("Using cache"), "{fifth}");
    let b = examine(&e.ctx, common::run_cmd(Command::new("true")), "lay");
    assert!(b.has("/a.txt") && b.has("/v") && b.has("/b.txt"));
    assert_eq!(e.ctx.ok(["containers", "-q"]), "");
}

/// Serve `body` over HTTP on 127.0.0.1 (a free port) to each connection, until dropped.
fn serve(body: &'static [u8]) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    l.set_nonblocking(false).unwrap();
    let h = std::thread::spawn(move || {
        // Serve a few requests (retries, HEAD), then stop.
        for conn in l.incoming().take(4) {
            let Ok(mut c) = conn else { break };
            // Read the whole request head before answering.
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let buf = req;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = c.write_all(head.as_bytes());
            if !String::from_utf8_lossy(&buf).starts_with("HEAD") {
                let _ = c.write_all(body);
            }
        }
    });
    (format!("http://{addr}/file.txt"), h)
}

#[test]
fn add_url_with_checksum() {
    if !common::require("bud", &["skopeo"]) {
        return;
    }
    const BODY: &[u8] = b"served over http\n";
    let digest = {
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "printf 'served over http\\n' | sha256sum | cut -d' ' -f1",
        ]);
        common::run_cmd(c).out().to_string()
    };
    let e = env_with(common::hod_bin());
    let (url, _server) = serve(BODY);
    let c = context(e.dir.path(), &[("x", "")]);
    fs::write(
        c.join(CF),
        format!("FROM busybox\nADD --checksum=sha256:{digest} {url} /got.txt\n"),
    )
    .unwrap();
    e.ctx.ok(["bud", "-t", "url", &c.display().to_string()]);
    let ctr = e.ctx.ok(["from", "url"]);
    let mnt = PathBuf::from(e.ctx.ok(["mount", &ctr]));
    assert_eq!(content(&mnt, "/got.txt"), "served over http\n");
    e.ctx.ok(["umount", &ctr]);
    // A wrong checksum fails the step.
    let (url, _server) = serve(BODY);
    fs::write(
        c.join(CF),
        format!(
            "FROM busybox\nADD --checksum=sha256:{} {url} /got.txt\n",
            "0".repeat(64)
        ),
    )
    .unwrap();
    let r = e.ctx.hod(["bud", "-t", "url2", &c.display().to_string()]);
    assert_eq!(r.code, Some(125), "{}", r.dump());
    assert!(
        r.stderr.contains("error building at STEP \"ADD"),
        "{}",
        r.dump()
    );
}

#[test]
fn oci_format_and_relative_workdir_match_buildah() {
    let Some(b) = compare(
        &[(
            CF,
            "FROM busybox\nWORKDIR /a\nWORKDIR b/c\nHEALTHCHECK --interval=10s CMD true\nSTOPSIGNAL SIGKILL\nRUN pwd > /pwd\n",
        )],
        &[],
    ) else {
        return;
    };
    assert_eq!(b.cfg("WorkingDir"), "/a/b/c");
    assert!(b.file("/a/b/c").starts_with("d 755"));
    assert!(b.file("/pwd").ends_with(" 7"));
}

#[test]
fn writable_bind_mount_never_changes_the_context() {
    if !common::require("bud", &["skopeo"]) {
        return;
    }
    let e = env_with(common::hod_bin());
    let c = context(
        e.dir.path(),
        &[
            (CF, "FROM busybox\nRUN --mount=type=bind,target=/src,rw sh -c 'echo changed > /src/a.txt; cat /src/a.txt > /seen'\n"),
            ("a.txt", "original\n"),
        ],
    );
    e.ctx.ok(["bud", "-t", "rw", &c.display().to_string()]);
    assert_eq!(fs::read_to_string(c.join("a.txt")).unwrap(), "original\n");
    let ctr = e.ctx.ok(["from", "rw"]);
    let mnt = PathBuf::from(e.ctx.ok(["mount", &ctr]));
    assert_eq!(content(&mnt, "/seen"), "changed\n");
    assert!(
        !mnt.join("src").exists(),
        "the mount point is not left in the image"
    );
    e.ctx.ok(["umount", &ctr]);
}

#[test]
fn build_contexts_and_skip_unused_stages() {
    if !common::require("bud", &["skopeo"]) {
        return;
    }
    let e = env_with(common::hod_bin());
    let c1 = context(
        &e.dir.path().join("1"),
        &[(CF, "FROM busybox\nRUN echo from-image > /hello\n")],
    );
    e.ctx.ok(["bud", "-t", "source", &c1.display().to_string()]);
    let extra = e.dir.path().join("extra");
    fs::create_dir_all(&extra).unwrap();
    fs::write(extra.join("e.txt"), "from dir\n").unwrap();
    let c2 = context(
        &e.dir.path().join("2"),
        &[(
            CF,
            "FROM busybox AS some-stage\nRUN echo from-stage > /hello\nFROM busybox AS unused\nRUN touch /unused-ran\nFROM busybox\nCOPY --from=some-stage /hello /hello\nCOPY --from=dir e.txt /e.txt\nRUN --mount=type=bind,from=some-stage,source=/hello,target=/m cat /m > /mounted\nCOPY --from=0 /hello /by-index\n",
        )],
    );
    let out = e.ctx.ok([
        "bud",
        "--build-context",
        "some-stage=docker-image://source",
        "--build-context",
        &format!("dir={}", extra.display()),
        "-t",
        "ctxs",
        &c2.display().to_string(),
    ]);
    assert!(
        !out.contains("touch /unused-ran"),
        "unused stage skipped: {out}"
    );
    let ctr = e.ctx.ok(["from", "ctxs"]);
    let mnt = PathBuf::from(e.ctx.ok(["mount", &ctr]));
    assert_eq!(content(&mnt, "/hello"), "from-image\n");
    assert_eq!(content(&mnt, "/mounted"), "from-image\n");
    // A stage index whose stage has a build context of its name takes the context too.
    assert_eq!(content(&mnt, "/by-index"), "from-image\n");
    assert_eq!(content(&mnt, "/e.txt"), "from dir\n");
    e.ctx.ok(["umount", &ctr]);
    e.ctx.ok(["rm", &ctr]);
    let out = e.ctx.ok([
        "bud",
        "--skip-unused-stages=false",
        "--build-context",
        &format!("dir={}", extra.display()),
        &c2.display().to_string(),
    ]);
    assert!(
        out.contains("touch /unused-ran"),
        "every stage built: {out}"
    );
    assert_eq!(e.ctx.ok(["containers", "-q"]), "");
}

#[test]
fn layers_keep_args_on_hits_and_containers_with_rm_false() {
    if !common::require("bud", &["skopeo"]) {
        return;
    }
    let e = env_with(common::hod_bin());
    let c = context(
        e.dir.path(),
        &[(
            CF,
            "FROM busybox\nARG user\nRUN echo $user > /u\nRUN touch /tmp/hello\n",
        )],
    );
    let cs = c.display().to_string();
    e.ctx
        .ok(["bud", "--layers", "--build-arg", "user=0", "-t", "a", &cs]);
    // Base + 3 step images (ARG adds no layer but is an image), as buildah.
    assert_eq!(e.ctx.ok(["images", "-a", "-q"]).lines().count(), 4);
    // All cached: the ARG's value still reaches the build (history names it).
    let out = e
        .ctx
        .ok(["bud", "--layers", "--build-arg", "user=0", "-t", "a", &cs]);
    assert_eq!(out.matches("Using cache").count(), 3, "{out}");
    let v: Value = serde_json::from_str(&e.ctx.ok(["inspect", "-t", "image", "a"])).unwrap();
    let hist = v["OCIv1"]["history"].to_string();
    assert!(
        hist.contains("|1 user=0 /bin/sh -c echo $user > /u"),
        "{hist}"
    );
    // A new value: the RUNs after the ARG run again.
    e.ctx
        .ok(["bud", "--layers", "--build-arg", "user=1", "-t", "b", &cs]);
    assert_eq!(e.ctx.ok(["images", "-a", "-q"]).lines().count(), 6);
    e.ctx.ok([
        "bud",
        "--layers",
        "--rm=false",
        "--no-cache",
        "-t",
        "c",
        &cs,
    ]);
    // FROM's and one after each step but the last: buildah 1.28.2 leaves 3 here (checked
    // side by side), hod left one more from after the last step.
    assert_eq!(
        e.ctx.ok(["containers", "-q"]).lines().count(),
        3,
        "FROM's and one after each step but the last"
    );
}

#[test]
fn remote_contexts_over_http() {
    if !common::require("bud", &["skopeo", "tar"]) {
        return;
    }
    let e = env_with(common::hod_bin());
    // A tar of a context with its Containerfile.
    let c = context(
        e.dir.path(),
        &[
            (CF, "FROM busybox\nCOPY f.txt /f.txt\n"),
            ("f.txt", "in the tar\n"),
        ],
    );
    let tarball = e.dir.path().join("context.tar");
    let r = common::run_cmd({
        let mut t = Command::new("tar");
        t.arg("-C").arg(&c).arg("-cf").arg(&tarball).arg(".");
        t
    });
    assert_eq!(r.code, Some(0));
    let body: &'static [u8] = Box::leak(fs::read(&tarball).unwrap().into_boxed_slice());
    let (url, _server) = serve(body);
    e.ctx.ok(["bud", "-t", "fromtar", &url]);
    let ctr = e.ctx.ok(["from", "fromtar"]);
    let mnt = PathBuf::from(e.ctx.ok(["mount", &ctr]));
    assert_eq!(content(&mnt, "/f.txt"), "in the tar\n");
    e.ctx.ok(["umount", &ctr]);
    // A URL of a Containerfile: built with an empty context.
    let (url, _server) = serve(b"FROM busybox\nLABEL from=url\n");
    e.ctx.ok(["bud", "-t", "fromurl", &url]);
    let v: Value = serde_json::from_str(&e.ctx.ok(["inspect", "-t", "image", "fromurl"])).unwrap();
    assert_eq!(v["OCIv1"]["config"]["Labels"]["from"], "url");
}

#[test]
fn bare_run_fails_as_the_shell_does() {
    let Some(r) = hod_fails(&[(CF, "FROM busybox\nENTRYPOINT [\"echo\"]\nRUN\n")], &[]) else {
        return;
    };
    assert_eq!(r.code, Some(2), "{}", r.dump());
}

#[test]
fn context_from_stdin_tar_and_a_file_as_context() {
    if !common::require("bud", &["skopeo", "tar"]) {
        return;
    }
    let e = env_with(common::hod_bin());
    let c = context(
        e.dir.path(),
        &[
            (CF, "FROM busybox\nCOPY f.txt /f.txt\n"),
            ("f.txt", "via stdin\n"),
        ],
    );
    let tar = common::run_cmd({
        let mut t = Command::new("tar");
        t.arg("-C")
            .arg(&c)
            .arg("-cf")
            .arg(e.dir.path().join("c.tar"))
            .arg(".");
        t
    });
    assert_eq!(tar.code, Some(0));
    let out = e
        .ctx
        .cmd(["bud", "-q", "-t", "stdin", "-"])
        .stdin(fs::File::open(e.dir.path().join("c.tar")).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ctr = e.ctx.ok(["from", "stdin"]);
    let mnt = PathBuf::from(e.ctx.ok(["mount", &ctr]));
    assert_eq!(content(&mnt, "/f.txt"), "via stdin\n");
    e.ctx.ok(["umount", &ctr]);
    // A Containerfile as the context argument: its directory is the context.
    e.ctx
        .ok(["bud", "-q", "-t", "file", &c.join(CF).display().to_string()]);
    // An empty one is refused, naming it.
    let empty = e.dir.path().join("Empty");
    fs::write(&empty, "").unwrap();
    let r = e.ctx.hod(["bud", &empty.display().to_string()]);
    assert!(r.stderr.contains("no contents in"), "{}", r.dump());
}

#[test]
fn secret_by_id_alone_and_relative_target() {
    if !common::require("bud", &["skopeo"]) {
        return;
    }
    let e = env_with(common::hod_bin());
    let c = context(
        e.dir.path(),
        &[(CF, "FROM busybox\nRUN --mount=type=secret,id=HODSEC,target=rel md5sum < /rel > /sum\nRUN test ! -e /rel\n")],
    );
    // `id=HODSEC` alone: the environment variable of that name wins over a file.
    let out = e
        .ctx
        .cmd([
            "bud",
            "-q",
            "--secret",
            "id=HODSEC",
            "-t",
            "s",
            &c.display().to_string(),
        ])
        .env("HODSEC", "from-env-7")
        .current_dir(e.dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ctr = e.ctx.ok(["from", "s"]);
    let mnt = PathBuf::from(e.ctx.ok(["mount", &ctr]));
    let want = common::run_cmd({
        let mut c = Command::new("sh");
        c.args(["-c", "printf %s from-env-7 | md5sum"]);
        c
    });
    assert_eq!(content(&mnt, "/sum").trim(), want.out());
    e.ctx.ok(["umount", &ctr]);
    let r = e.ctx.hod(["bud", "/tmp", "extra"]);
    assert!(
        r.stderr.contains("accepts at most 1 arg(s), received 2"),
        "{}",
        r.dump()
    );
}

#[test]
fn workdir_is_owned_by_the_user_as_in_buildah() {
    let Some(b) = compare(&[(CF, "FROM busybox\nUSER 1:2\nWORKDIR /home/x/y\n")], &[]) else {
        return;
    };
    assert!(
        b.file("/home/x").starts_with("d 755 1:2"),
        "{}",
        b.file("/home/x")
    );
    assert!(b.file("/home/x/y").starts_with("d 755 1:2"));
    assert!(b.file("/home").starts_with("d 755 0:0"));
}

#[test]
fn cache_mount_owner_and_bad_tag_message() {
    if !common::require("bud", &["skopeo"]) {
        return;
    }
    let e = env_with(common::hod_bin());
    let c = context(
        e.dir.path(),
        &[(CF, "FROM busybox\nUSER 1000:1000\nRUN --mount=type=cache,target=/cache,id=owned,uid=1000,gid=1000 touch /cache/new-file\n")],
    );
    e.ctx.ok(["bud", "-q", &c.display().to_string()]);
    let r = e.ctx.hod(["bud", "-t", "TEST1", &c.display().to_string()]);
    assert!(
        r.stderr
            .contains("tag TEST1: invalid reference format: repository name must be lowercase"),
        "{}",
        r.dump()
    );
}

#[test]
fn os_version_and_features() {
    let Some(b) = compare(
        &[(CF, "FROM busybox\nENV A=1\n")],
        &[
            "--os-version=1.0",
            "--os-feature",
            "removed",
            "--os-feature",
            "removed-",
            "--os-feature",
            "win32k",
        ],
    ) else {
        return;
    };
    assert_eq!(b.config["os.version"], "1.0");
    assert_eq!(b.config["os.features"], serde_json::json!(["win32k"]));
}

#[test]
fn layers_copy_from_a_from_only_stage_is_cached() {
    if !common::require("bud", &["skopeo"]) {
        return;
    }
    let e = env_with(common::hod_bin());
    let c = context(
        e.dir.path(),
        &[(
            CF,
            "FROM busybox AS build\n\nFROM scratch\nCOPY --from=build /bin/busybox /b\n",
        )],
    );
    let cs = c.display().to_string();
    let one = e.ctx.ok(["bud", "-q", "--layers", &cs]);
    let two = e.ctx.ok(["bud", "-q", "--layers", &cs]);
    assert_eq!(one, two);
}

// ---------------------------------------------------------------- RUN --mount=type=ssh

/// An ssh-agent the test starts on a private socket (killed when dropped).
struct TestAgent {
    child: std::process::Child,
    sock: PathBuf,
}

impl TestAgent {
    fn start(dir: &Path, keys: &[&Path]) -> TestAgent {
        let sock = dir.join("test-agent.sock");
        let child = Command::new("ssh-agent")
            .args(["-D", "-a"])
            .arg(&sock)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let agent = TestAgent { child, sock };
        for _ in 0..500 {
            if std::os::unix::net::UnixStream::connect(&agent.sock).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let mut add = Command::new("ssh-add");
        add.args(keys).env("SSH_AUTH_SOCK", &agent.sock);
        common::run_cmd(add).success();
        agent
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new ed25519 key in `dir` and its SHA256 fingerprint.
fn ssh_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let mut c = Command::new("ssh-keygen");
    c.args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key);
    common::run_cmd(c).success();
    let mut c = Command::new("ssh-keygen");
    c.arg("-l").arg("-f").arg(&key);
    let fp = common::run_cmd(c)
        .success()
        .out()
        .split(' ')
        .nth(1)
        .unwrap()
        .to_string();
    (key, fp)
}

/// How to run the host's ssh-add inside a RUN that binds the host's /usr at /hostusr (the
/// busybox base has no ssh client): its dynamic loader, with the host's library path.
fn host_ssh_add_in_hostusr() -> String {
    let mut c = Command::new("ldd");
    c.arg("/usr/bin/ssh-add");
    let out = common::run_cmd(c).success().stdout;
    let in_usr = |p: &str| -> String {
        let real = fs::canonicalize(p).unwrap();
        let rel = real
            .strip_prefix("/usr")
            .unwrap_or_else(|_| panic!("{} is not under /usr", real.display()));
        format!("/hostusr/{}", rel.display())
    };
    let mut loader = None;
    let mut dirs = Vec::new();
    for l in out.lines() {
        let l = l.trim();
        let path = match l.split_once("=>") {
            Some((_, p)) => p.trim().split(' ').next().unwrap_or(""),
            None => l.split(' ').next().unwrap_or(""),
        };
        if !path.starts_with('/') {
            continue;
        }
        if l.contains("=>") {
            let d = in_usr(Path::new(path).parent().unwrap().to_str().unwrap());
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        } else {
            loader = Some(in_usr(path));
        }
    }
    format!(
        "{} --library-path {} /hostusr/bin/ssh-add",
        loader.expect("no dynamic loader in ldd's output"),
        dirs.join(":")
    )
}

/// `--ssh default` (`$SSH_AUTH_SOCK`), `--ssh ID=KEY` (an agent hod starts) and
/// `--ssh ID=SOCKET` reach the RUN at the default targets (`ssh_agent.N` per mount) and at
/// a given one with its owner and mode, `SSH_AUTH_SOCK` naming the first; ssh-add lists
/// the right key through each; the sockets and mount points never reach the image.
#[test]
fn run_mount_ssh_forwards_agents() {
    if !common::require(
        "bud ssh",
        &["skopeo", "ssh-agent", "ssh-add", "ssh-keygen", "ldd"],
    ) {
        return;
    }
    let e = env_with(common::hod_bin());
    let (k1, fp1) = ssh_key(e.dir.path(), "k1");
    let (k2, fp2) = ssh_key(e.dir.path(), "k2");
    let agent = TestAgent::start(e.dir.path(), &[&k2]);
    let ssh_add = host_ssh_add_in_hostusr();
    let usr = "--mount=type=bind,from=hostusr,target=/hostusr";
    let cf = format!(
        "FROM busybox\n\
         RUN --mount=type=ssh {usr} \
         [ \"$SSH_AUTH_SOCK\" = /run/buildkit/ssh_agent.0 ] && test -S \"$SSH_AUTH_SOCK\" && \
         {ssh_add} -l > /default.txt\n\
         RUN --mount=type=ssh,id=keys,target=/tmp/agent,mode=0660,uid=7,gid=8 {usr} \
         [ \"$SSH_AUTH_SOCK\" = /tmp/agent ] && ls -ln /tmp/agent > /ls.txt && \
         {ssh_add} -l > /keys.txt\n\
         RUN --mount=type=ssh,id=sock --mount=type=ssh,id=keys {usr} \
         {ssh_add} -l > /first.txt && \
         SSH_AUTH_SOCK=/run/buildkit/ssh_agent.1 {ssh_add} -l > /second.txt\n\
         RUN --mount=type=ssh,id=absent echo \"${{SSH_AUTH_SOCK:-unset}}\" > /absent.txt\n"
    );
    let c = context(e.dir.path(), &[(CF, &cf)]);
    let mut cmd = e.ctx.cmd([
        "bud".to_string(),
        "-t".into(),
        "sshimg".into(),
        "--build-context".into(),
        "hostusr=/usr".into(),
        "--ssh".into(),
        "default".into(),
        "--ssh".into(),
        format!("keys={}", k1.display()),
        "--ssh".into(),
        format!("sock={}", agent.sock.display()),
        c.display().to_string(),
    ]);
    cmd.env("SSH_AUTH_SOCK", &agent.sock);
    common::run_cmd(cmd).success();
    drop(agent);
    let b = examine(&e.ctx, common::run_cmd(Command::new("true")), "sshimg");
    let ctr = e.ctx.ok(["from", "sshimg"]);
    let mnt = PathBuf::from(e.ctx.ok(["mount", &ctr]));
    for (file, has, lacks) in [
        ("/default.txt", &fp2, &fp1),
        ("/keys.txt", &fp1, &fp2),
        ("/first.txt", &fp2, &fp1),
        ("/second.txt", &fp1, &fp2),
    ] {
        let listed = content(&mnt, file);
        assert!(
            listed.contains(has) && !listed.contains(lacks),
            "{file}: {listed}"
        );
    }
    let ls = content(&mnt, "/ls.txt");
    assert!(
        ls.starts_with("srw-rw----") && ls.contains(" 7 ") && ls.contains(" 8 "),
        "{ls}"
    );
    assert_eq!(content(&mnt, "/absent.txt"), "unset\n");
    e.ctx.ok(["umount", &ctr]);
    // buildah 1.28.2 leaves the empty /run/buildkit mount point directory behind; hod
    // removes what it made for the mount.
    let leaked: Vec<&String> = b
        .tree
        .keys()
        .filter(|k| !(common::is_buildah() && k.as_str() == "/run/buildkit"))
        .filter(|k| {
            k.starts_with("/run/") || k.starts_with("/hostusr") || k.as_str() == "/tmp/agent"
        })
        .collect();
    assert!(leaked.is_empty(), "left in the image: {leaked:?}");
}

/// A required ssh mount without a matching `--ssh` fails the build, naming the ID.
#[test]
fn run_mount_ssh_required_without_ssh_fails() {
    let Some(r) = hod_fails(
        &[(
            CF,
            "FROM busybox\nRUN --mount=type=ssh,id=git,required=true true\n",
        )],
        &[],
    ) else {
        return;
    };
    assert_eq!(r.code, Some(125), "{}", r.dump());
    assert!(
        r.stderr
            .contains("ssh required but no ssh with id git found"),
        "{}",
        r.dump()
    );
}

// ---------------------------------------------------------------- reproducibility

/// `--timestamp 0` builds of one context give one image ID, in two stores, and the same ID
/// as the primitives a script would call for the same Containerfile: bud is those library
/// calls. Each step but the last is an `--add-history` entry; the last one names the
/// commit (`config --created-by`). COPY comes last because bud's COPY history names the
/// destination (`… in /a.txt `, buildah's bud text) and `copy --add-history` does not
/// (buildah's copy text).
#[test]
fn timestamp_zero_builds_are_reproducible_and_equal_the_primitives() {
    if !common::require("bud", &["skopeo"]) {
        return;
    }
    let files: &[(&str, &str)] = &[
        (
            CF,
            "FROM busybox\nENV X=1 Y=two\nLABEL l=v\nWORKDIR /w\nRUN touch f\n\
             USER 1:1\nEXPOSE 8080/tcp\nCMD [\"sh\"]\nCOPY --chmod=0640 a.txt /a.txt\n",
        ),
        ("a.txt", "aaa"),
    ];
    let bud = |e: &Env| -> String {
        let c = context(e.dir.path(), files);
        let out = e.ctx.ok([
            "bud",
            "-q",
            "--timestamp",
            "0",
            "-t",
            "bud",
            &c.display().to_string(),
        ]);
        out.lines().last().unwrap().to_string()
    };
    let e1 = env_with(common::hod_bin());
    let e2 = env_with(common::hod_bin());
    let one = bud(&e1);
    let two = bud(&e2);
    assert_eq!(one, two, "two --timestamp 0 builds differ");
    if common::is_buildah() {
        // buildah 1.28.2 dates `--add-history` entries by the clock, not by --timestamp:
        // no script of its primitives gives a reproducible image.
        return;
    }

    let ctx = &e1.ctx;
    let c = ctx.ok(["from", "-q", "busybox"]);
    ctx.ok([
        "config",
        "--add-history",
        "--env",
        "X=1",
        "--env",
        "Y=two",
        &c,
    ]);
    ctx.ok(["config", "--add-history", "--label", "l=v", &c]);
    ctx.ok(["config", "--add-history", "--workingdir", "/w", &c]);
    ctx.ok(["run", "--add-history", &c, "--", "touch", "f"]);
    ctx.ok(["config", "--add-history", "--user", "1:1", &c]);
    // `config --port` keeps the port as given (buildah's too); EXPOSE 8080 means 8080/tcp.
    ctx.ok(["config", "--add-history", "--port", "8080/tcp", &c]);
    ctx.ok(["config", "--add-history", "--cmd", "[\"sh\"]", &c]);
    let a = e1.dir.path().join("ctx/a.txt");
    let digest = ctx.ok([
        "copy",
        "--chmod",
        "0640",
        &c,
        &a.display().to_string(),
        "/a.txt",
    ]);
    let created_by = format!("/bin/sh -c #(nop) COPY file:{digest} in /a.txt ");
    ctx.ok(["config", "--created-by", &created_by, &c]);
    let prim = ctx.ok(["commit", "-q", "--timestamp", "0", &c, "prim"]);
    if prim != one {
        let show = |i: &str| ctx.ok(["inspect", "-t", "image", i]);
        panic!(
            "bud and the primitives differ:\n--- bud\n{}\n--- primitives\n{}",
            show("bud"),
            show("prim")
        );
    }
    // The history the primitives recorded is bud's, entry for entry.
    let b = examine(ctx, common::run_cmd(Command::new("true")), "prim");
    assert_eq!(
        b.history[1..],
        [
            "/bin/sh -c #(nop) ENV X=1 Y=two (empty)",
            "/bin/sh -c #(nop) LABEL l=v (empty)",
            "/bin/sh -c #(nop) WORKDIR /w (empty)",
            "/bin/sh -c touch f (empty)",
            "/bin/sh -c #(nop) USER 1:1 (empty)",
            "/bin/sh -c #(nop) EXPOSE 8080/tcp (empty)",
            "/bin/sh -c #(nop) CMD [\"sh\"] (empty)",
            "/bin/sh -c #(nop) COPY file:<digest> in /a.txt ",
        ]
    );
}

// ---------------------------------------------------------------- --jobs

/// Two stages that do not use each other, and a last stage that takes from both.
const TWO_INDEPENDENT: &str = "FROM busybox AS left
RUN seq 1 500 > /left && mkdir /l && cp /left /l/copy
FROM busybox AS right
RUN seq 501 900 > /right && echo right > /r
FROM busybox
COPY --from=left /left /l /from-left/
COPY --from=right /right /r /from-right/
";

#[test]
fn jobs_builds_independent_stages_with_the_same_result() {
    let files = [(CF, TWO_INDEPENDENT)];
    let Some(two) = hod_build(&files, &["--jobs", "2", "--timestamp", "0"]) else {
        return;
    };
    for p in [
        "/from-left/left",
        "/from-left/copy",
        "/from-right/right",
        "/from-right/r",
    ] {
        assert!(two.has(p), "{p} missing: {:#?}", two.tree.keys());
    }
    // Every step's lines are whole lines of the step that printed them.
    for line in two.run.stdout.lines().filter(|l| l.contains("STEP")) {
        assert!(line.starts_with('['), "{line:?} in\n{}", two.run.stdout);
    }
    let one = hod_build(&files, &["--jobs", "1", "--timestamp", "0"]).unwrap();
    assert!(!two.id.is_empty());
    assert_eq!(two.id, one.id, "--jobs 2 and --jobs 1 differ");
    assert_eq!(two.tree, one.tree);
    // 0 is "no limit", as in buildah.
    let all = hod_build(&files, &["--jobs", "0", "--timestamp", "0"]).unwrap();
    assert_eq!(all.id, one.id);
}

#[test]
fn jobs_runs_independent_stages_at_the_same_time() {
    // Each stage announces itself in a shared cache mount and waits for the other: this only
    // finishes when both run at once (a sequential build fails after 20 s).
    let wait = |me: &str, other: &str| {
        format!(
            "RUN --mount=type=cache,id=rendezvous,target=/c touch /c/{me} && i=0; \
             while [ ! -e /c/{other} ] && [ $i -lt 200 ]; do i=$((i+1)); usleep 100000; done; \
             test -e /c/{other} && echo met > /{me}\n"
        )
    };
    let cf = format!(
        "FROM busybox AS a\n{}FROM busybox AS b\n{}FROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
        wait("a", "b"),
        wait("b", "a")
    );
    let Some(b) = hod_build(&[(CF, &cf)], &["--jobs", "2"]) else {
        return;
    };
    assert!(b.has("/a") && b.has("/b"));
}

#[test]
fn jobs_failing_stage_is_named_and_stops_the_build() {
    let Some(r) = hod_fails(
        &[(
            CF,
            "FROM busybox AS good\nRUN touch /ok\nFROM busybox AS bad\nRUN exit 4\nFROM busybox\nCOPY --from=good /ok /ok\nCOPY --from=bad /etc/passwd /p\nRUN touch /never\n",
        )],
        &["--jobs", "2"],
    ) else {
        return;
    };
    assert_eq!(r.code, Some(4), "{}", r.dump());
    assert!(
        r.stderr
            .contains("building stage bad: error building at STEP \"RUN exit 4\": exit status 4"),
        "{}",
        r.dump()
    );
    assert!(!r.stdout.contains("[3/3]"), "{}", r.dump());
}

crate::both_drivers!(jobs_with_layers_leaves_a_consistent_store);

/// Four stages at once, with --layers (every step committed, cache lookups side by side):
/// the store stays consistent, no container is left, and a rebuild takes every step from
/// the cache and gives the same image.
fn jobs_with_layers_leaves_a_consistent_store(driver: &str) {
    if !common::require("bud --jobs", &["skopeo"]) {
        return;
    }
    let ctx = TestContext::new(driver);
    ctx.seed_busybox("busybox");
    let dir = tempfile::Builder::new()
        .prefix("hodjobs.")
        .tempdir_in("/var/tmp")
        .unwrap();
    let mut cf = String::new();
    let mut files = vec![];
    for s in ["s1", "s2", "s3", "s4"] {
        cf.push_str(&format!(
            "FROM busybox AS {s}\nCOPY {s}.txt /in/\nRUN mkdir /out && sed s/x/y/ /in/{s}.txt > /out/{s}\n"
        ));
        files.push((format!("{s}.txt"), format!("x {s}\n")));
    }
    cf.push_str("FROM busybox\n");
    for s in ["s1", "s2", "s3", "s4"] {
        cf.push_str(&format!("COPY --from={s} /out/{s} /{s}\n"));
    }
    let mut all: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    all.push((CF, &cf));
    let c = context(dir.path(), &all).display().to_string();
    let build = || {
        ctx.hod([
            "bud",
            "--layers",
            "--jobs",
            "0",
            "--timestamp",
            "0",
            "-t",
            "j",
            &c,
        ])
        .success()
    };
    let first = build();
    common::assert_store_consistent(&ctx);
    assert_eq!(ctx.ok(["containers", "-q"]), "", "containers left");
    let ctr = ctx.ok(["from", "j"]);
    let mnt = PathBuf::from(ctx.ok(["mount", &ctr]));
    for s in ["s1", "s2", "s3", "s4"] {
        assert_eq!(content(&mnt, s), format!("y {s}\n"), "{}", first.dump());
    }
    ctx.ok(["umount", &ctr]);
    ctx.ok(["rm", &ctr]);
    let again = build();
    let steps = again
        .stdout
        .lines()
        .filter(|l| l.contains("STEP ") && !l.contains(": FROM "))
        .count();
    assert_eq!(steps, 12);
    assert_eq!(
        again.stdout.matches("Using cache").count(),
        steps,
        "every step but the FROMs hits:\n{}",
        again.stdout
    );
    assert_eq!(
        again.stdout.lines().last(),
        first.stdout.lines().last(),
        "same image"
    );
    common::assert_store_consistent(&ctx);
}

// ---------------------------------------------------------------- --manifest, --platform a,b

/// `localhost/base`: a list of busybox's files twice, one config saying amd64 (label
/// base=amd64), one arm64 (base=arm64).
fn two_platform_base(ctx: &TestContext) {
    for arch in ["amd64", "arm64"] {
        let c = ctx.ok(["from", "--pull=never", "busybox"]);
        ctx.ok([
            "config",
            "--arch",
            arch,
            "--label",
            &format!("base={arch}"),
            &c,
        ]);
        ctx.ok(["commit", "-q", &c, &format!("localhost/base-{arch}")]);
        ctx.ok(["rm", &c]);
    }
    ctx.ok(["manifest", "create", "localhost/base"]);
    for arch in ["arm64", "amd64"] {
        ctx.ok([
            "manifest",
            "add",
            "localhost/base",
            &format!("localhost/base-{arch}"),
        ]);
    }
}

/// The instances of list `name`: (os/arch, config of the instance's image as `from
/// --platform` of the list gives it).
fn list_instances(ctx: &TestContext, name: &str) -> Vec<(String, Value)> {
    let v: Value = serde_json::from_str(&ctx.ok(["manifest", "inspect", name])).unwrap();
    let mut out = Vec::new();
    for m in v["manifests"].as_array().cloned().unwrap_or_default() {
        let p = format!(
            "{}/{}",
            m["platform"]["os"].as_str().unwrap_or(""),
            m["platform"]["architecture"].as_str().unwrap_or("")
        );
        let c = ctx.ok(["from", "--pull=never", "--platform", &p, name]);
        let i: Value = serde_json::from_str(&ctx.ok(["inspect", "-t", "container", &c])).unwrap();
        let mnt = PathBuf::from(ctx.ok(["mount", &c]));
        let mut config = i["OCIv1"].clone();
        config["hello"] = Value::from(fs::read_to_string(mnt.join("hello")).unwrap_or_default());
        ctx.ok(["umount", &c]);
        ctx.ok(["rm", &c]);
        out.push((p, config));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn manifest_gets_one_image_per_platform() {
    if !common::require("bud", &["skopeo"]) {
        return;
    }
    let e = env_with(common::hod_bin());
    let ctx = &e.ctx;
    two_platform_base(ctx);
    let dir = context(
        e.dir.path(),
        &[
            (
                CF,
                "FROM localhost/base\nCOPY hello /hello\nENV BUILT=yes\n",
            ),
            ("hello", "hi\n"),
        ],
    );
    let dir = dir.display().to_string();
    let run = ctx
        .hod([
            "bud",
            "--pull=never",
            "--platform",
            "linux/amd64,linux/arm64",
            "--manifest",
            "m",
            &dir,
        ])
        .success();
    // Each platform's lines say which platform they are for.
    assert!(
        run.stdout
            .contains("[linux/arm64] STEP 2/3: COPY hello /hello"),
        "{}",
        run.dump()
    );
    // As buildah's: `--> id` unprefixed, then each platform's image ID.
    assert!(!run.stdout.contains("] --> "), "{}", run.dump());
    let ids: Vec<&str> = run.stdout.lines().rev().take(2).collect();
    assert!(
        ids.iter()
            .all(|l| l.len() == 64 && l.chars().all(|c| c.is_ascii_hexdigit()))
            && ids[0] != ids[1],
        "{}",
        run.dump()
    );
    let inst = list_instances(ctx, "localhost/m:latest");
    assert_eq!(inst.len(), 2, "{inst:#?}");
    for ((p, c), arch) in inst.iter().zip(["amd64", "arm64"]) {
        assert_eq!(p, &format!("linux/{arch}"));
        assert_eq!(c["architecture"], arch, "{p}: {c:#}");
        // FROM took the base's instance of the same platform.
        assert_eq!(c["config"]["Labels"]["base"], arch, "{p}: {c:#}");
        assert_eq!(c["hello"], "hi\n");
        assert!(c["config"]["Env"].to_string().contains("BUILT=yes"));
    }
    // --all-platforms: the platforms the base list has (with --jobs 2, built side by side).
    ctx.ok([
        "bud",
        "--pull=never",
        "--jobs",
        "2",
        "--all-platforms",
        "--manifest",
        "m2",
        &dir,
    ]);
    let again = list_instances(ctx, "localhost/m2:latest");
    let platforms: Vec<&str> = again.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    assert_eq!(again[1].1["architecture"], "arm64");
    // A single-platform local image of another platform is no base for it (buildah pulls,
    // and fails).
    let single = context(
        &e.dir.path().join("single"),
        &[(CF, "FROM localhost/base-amd64\nENV X=1\n")],
    );
    let r = ctx
        .hod([
            "bud",
            "--platform",
            "linux/arm64",
            &single.display().to_string(),
        ])
        .code_is(125);
    assert!(
        r.stderr.contains(
            "image platform (linux/amd64) does not match the expected platform (linux/arm64)"
        ),
        "{}",
        r.dump()
    );
    // A RUN for arm64 is tried as buildah tries it: the kernel decides, and this "arm64"
    // image holds the host's binaries, so it runs (bud_flags::foreign_binary_run_names_the_
    // missing_emulator covers a binary that cannot).
    let dir = context(
        &e.dir.path().join("run"),
        &[(CF, "FROM localhost/base\nRUN true\n")],
    );
    ctx.hod([
        "bud",
        "--pull=never",
        "--platform",
        "linux/arm64",
        "--manifest",
        "m3",
        &dir.display().to_string(),
    ])
    .success();
}

#[test]
fn all_platforms_asks_the_registry_for_the_base_list() {
    use crate::common::registry::{Mode, TestRegistry};
    if !common::require("bud --all-platforms", &["skopeo", "docker-registry"])
        || common::is_buildah()
    {
        return;
    }
    let Some(reg) = TestRegistry::start(Mode::Plain) else {
        return;
    };
    let base = format!("{}/hod/base:latest", reg.host);
    let one = env_with(common::hod_bin());
    two_platform_base(&one.ctx);
    one.ctx.ok([
        "manifest",
        "push",
        "--all",
        "--tls-verify=false",
        "localhost/base",
        &format!("docker://{base}"),
    ]);
    // A store without the base: its list is only in the registry.
    let two = env_with(common::hod_bin());
    let dir = context(
        two.dir.path(),
        &[
            (CF, &format!("FROM {base}\nCOPY hello /hello\n")),
            ("hello", "hi\n"),
        ],
    );
    two.ctx.ok([
        "bud",
        "--tls-verify=false",
        "--all-platforms",
        "--manifest",
        "m",
        &dir.display().to_string(),
    ]);
    let inst = list_instances(&two.ctx, "localhost/m:latest");
    let got: Vec<(&str, &Value, &Value)> = inst
        .iter()
        .map(|(p, c)| {
            (
                p.as_str(),
                &c["architecture"],
                &c["config"]["Labels"]["base"],
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("linux/amd64", &Value::from("amd64"), &Value::from("amd64")),
            ("linux/arm64", &Value::from("arm64"), &Value::from("arm64")),
        ],
        "{}",
        reg.log()
    );
    // bud.bats "bud-multiple-platform for --all-platform with additional-build-context":
    // FROM a name that --build-context maps to the base asks for the base's list.
    let dir = context(
        two.dir.path(),
        &[(CF, "FROM alias\nCOPY hello /hello\n"), ("hello", "hi\n")],
    );
    two.ctx.ok([
        "bud",
        "--tls-verify=false",
        "--all-platforms",
        "--build-context",
        &format!("alias=docker://{base}"),
        "--manifest",
        "m2",
        &dir.display().to_string(),
    ]);
    let inst = list_instances(&two.ctx, "localhost/m2:latest");
    let got: Vec<&str> = inst.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(got, ["linux/amd64", "linux/arm64"], "{}", reg.log());
}
