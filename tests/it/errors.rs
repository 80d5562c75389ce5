//! Issue 3, bad input: one `Error: …` line naming the object and exit 125;
//! copies that leave --contextdir are refused; a corrupt images.json is
//! reported with its path, never a panic.

use crate::common::{self, TestContext};

/// Each verb that takes an image or container, given one that does not exist.
#[test]
fn unknown_image_or_container_gives_one_error_naming_it() {
    if !common::require("unknown_image_or_container", &[]) {
        return;
    }
    let ctx = TestContext::new("vfs");
    let f = ctx.path("file");
    std::fs::write(&f, "x").unwrap();
    let f = f.to_str().unwrap().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["from", "--pull=never", "nosuchimage"], "nosuchimage"),
        (vec!["rmi", "nosuchimage"], "nosuchimage"),
        (vec!["tag", "nosuchimage", "newname"], "nosuchimage"),
        (
            vec!["push", "nosuchimage", "oci:/var/tmp/hod-never-written:x"],
            "nosuchimage",
        ),
        (
            vec!["inspect", "--type", "image", "nosuchimage"],
            "nosuchimage",
        ),
        (vec!["images", "nosuchimage"], "nosuchimage"),
        (vec!["rm", "nosuchctr"], "nosuchctr"),
        (vec!["mount", "nosuchctr"], "nosuchctr"),
        (vec!["umount", "nosuchctr"], "nosuchctr"),
        (vec!["commit", "nosuchctr", "img"], "nosuchctr"),
        (vec!["config", "--label", "a=b", "nosuchctr"], "nosuchctr"),
        (vec!["copy", "nosuchctr", &f, "/"], "nosuchctr"),
        (vec!["add", "nosuchctr", &f, "/"], "nosuchctr"),
        (vec!["rename", "nosuchctr", "other"], "nosuchctr"),
        (
            vec!["inspect", "--type", "container", "nosuchctr"],
            "nosuchctr",
        ),
        (vec!["run", "nosuchctr", "true"], "nosuchctr"),
    ];
    let mut failures = Vec::new();
    for (args, what) in &cases {
        let r = ctx.hod(args);
        common::assert_no_panic(&r);
        if let Err(e) = r.check_one_error_naming(what) {
            failures.push((args.join(" "), e));
        }
    }
    // What buildah 1.28.2 itself fails here (issue 3 asks for more):
    //  - `inspect --type container X`: "reading build container: container not known", no name;
    //  - `rmi X`: "Error: 1 error occurred:\n\t* X: image not known", two lines.
    if common::is_buildah() {
        failures.retain(|(f, e)| {
            let excused = f.starts_with("inspect --type container") || f.starts_with("rmi ");
            if excused {
                eprintln!(
                    "buildah 1.28.2 fails the issue's contract (excused for buildah only): {e}"
                );
            }
            !excused
        });
    }
    let msgs: Vec<String> = failures.iter().map(|(_, e)| e.clone()).collect();
    assert!(
        failures.is_empty(),
        "no single error naming the object:\n{}",
        msgs.join("\n")
    );
}

/// `copy` of a path that leaves --contextdir through `..` or a symlink is
/// refused, and nothing from outside lands in the container.
#[test]
fn copy_escaping_contextdir_is_refused() {
    if !common::require("copy_escaping_contextdir", &[]) {
        return;
    }
    let ctx = TestContext::new("vfs");
    let cdir = ctx.path("ctx");
    std::fs::create_dir_all(cdir.join("sub")).unwrap();
    std::fs::write(ctx.path("outside"), "secret-outside\n").unwrap();
    std::fs::write(cdir.join("inside"), "inside\n").unwrap();
    std::os::unix::fs::symlink("../outside", cdir.join("rel-link")).unwrap();
    std::os::unix::fs::symlink(ctx.path("outside"), cdir.join("abs-link")).unwrap();
    std::os::unix::fs::symlink("..", cdir.join("sub/up")).unwrap();
    let ctr = ctx.ok(["from", "scratch"]);
    let c = cdir.to_str().unwrap();
    // the control: inside the context works
    ctx.ok([
        "copy",
        "--contextdir",
        c,
        &ctr,
        &format!("{c}/inside"),
        "/inside",
    ]);
    for src in [
        format!("{c}/../outside"),
        format!("{c}/sub/../../outside"),
        format!("{c}/rel-link"),
        format!("{c}/abs-link"),
        format!("{c}/sub/up/../outside"),
    ] {
        let r = ctx.hod(["copy", "--contextdir", c, &ctr, &src, "/escaped"]);
        common::assert_no_panic(&r);
        assert_eq!(
            r.code,
            Some(125),
            "copy of {src} was not refused:\n{}",
            r.dump()
        );
    }
    let mnt = ctx.ok(["mount", &ctr]);
    let r = common::run_cmd({
        let mut cmd = std::process::Command::new("grep");
        cmd.args(["-rl", "secret-outside", &mnt]);
        cmd
    });
    assert_eq!(
        r.out(),
        "",
        "content from outside the context reached the container"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{mnt}/inside")).unwrap(),
        "inside\n"
    );
}

/// A corrupt images.json gives an error naming the file, not a panic.
#[test]
fn corrupt_images_json_is_reported_with_its_path() {
    if !common::require("corrupt_images_json", &["skopeo"]) {
        return;
    }
    for driver in common::DRIVERS {
        let ctx = TestContext::new(driver);
        ctx.seed_busybox("busybox");
        let images_json = ctx.root.join(format!("{driver}-images/images.json"));
        assert!(images_json.is_file());
        std::fs::write(&images_json, "this is not JSON {[").unwrap();
        for args in [vec!["images"], vec!["from", "busybox"]] {
            let r = ctx.hod(&args);
            common::assert_no_panic(&r);
            if common::is_buildah() {
                // buildah 1.28.2 ignores an unparsable images.json (exit 0, no
                // images): it fails this item of issue 3.
                eprintln!(
                    "buildah 1.28.2 on a corrupt images.json: exit {:?} (excused)",
                    r.code
                );
                continue;
            }
            assert_eq!(r.code, Some(125), "{}", r.dump());
            assert!(
                r.stderr.contains(images_json.to_str().unwrap()),
                "the error does not name {}:\n{}",
                images_json.display(),
                r.dump()
            );
        }
    }
}

/// The error for an unknown flag or verb is one line, exit 125.
#[test]
fn unknown_flag_is_an_error() {
    let ctx = TestContext::new("vfs");
    let r = ctx.hod(["images", "--no-such-flag"]);
    common::assert_no_panic(&r);
    assert_eq!(r.code, Some(125), "{}", r.dump());
    assert!(r.stderr.contains("no-such-flag"), "{}", r.dump());
}

/// A command's options typed before its name are its own, as cobra hands them down
/// (bud.bats puts `--signature-policy` before `build`); an unknown one is still a one-line
/// error naming it.
#[test]
fn options_before_the_command_name_are_its_own() {
    let ctx = TestContext::new("vfs");
    let ctr = ctx.ok(["from", "-q", "scratch"]);
    let listed = ctx.ok([
        "--format",
        "{{.ContainerName}}",
        "containers",
        "--noheading",
    ]);
    assert_eq!(listed, ctr);
    assert_eq!(
        listed,
        ctx.ok(["containers", "--format", "{{.ContainerName}}"])
    );
    let r = ctx.hod(["--no-such-flag", "images"]);
    common::assert_no_panic(&r);
    assert_eq!(r.code, Some(125), "{}", r.dump());
    assert!(r.stderr.contains("no-such-flag"), "{}", r.dump());
}

/// `hod` with no subcommand prints the usage on stdout and exits 0, as buildah does.
#[test]
fn no_subcommand_prints_usage_and_succeeds() {
    let ctx = TestContext::new("vfs");
    let r = ctx.hod(std::iter::empty::<&str>());
    common::assert_no_panic(&r);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert!(r.stdout.contains("Usage:"), "{}", r.dump());
    assert!(r.stdout.contains("Commands:"), "{}", r.dump());
}
