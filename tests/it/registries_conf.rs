//! registries.conf, auth.json and policy.json through the CLI, against real `docker-registry`
//! instances on 127.0.0.1: a mirror is used (the primary location is a dead port), a blocked
//! registry is refused, a short name resolves through `unqualified-search-registries`,
//! credentials stored by `hod login` are used by push until `hod logout`, and a `reject`
//! policy refuses a pull.
use crate::common::registry::{free_port, Mode, TestRegistry, PASSWORD, USER};
use crate::common::{self, TestContext};

/// A registry holding `hod/img:1` (a small busybox image pushed by hod).
fn seeded(mode: Mode) -> Option<(TestRegistry, String)> {
    let reg = TestRegistry::start(mode)?;
    let ctx = TestContext::new("vfs");
    let ctr = ctx.scratch_busybox_container();
    ctx.ok(["commit", "-q", &ctr, "localhost/img:1"]);
    let mut args = vec!["push", "-q", "--tls-verify=false"];
    let creds = format!("{USER}:{PASSWORD}");
    if reg.mode == Mode::Basic {
        args.extend(["--creds", creds.as_str()]);
    }
    let dest = format!("docker://{}/hod/img:1", reg.host);
    args.extend(["localhost/img:1", dest.as_str()]);
    ctx.ok(args);
    let id = ctx.image_id("localhost/img:1");
    Some((reg, id))
}

fn write_conf(ctx: &TestContext, text: &str) {
    std::fs::write(ctx.path("registries.conf"), text).unwrap();
}

#[test]
fn mirror_blocked_and_short_names() {
    if !common::require("registries.conf", &["docker-registry"]) {
        return;
    }
    let Some((reg, id)) = seeded(Mode::Plain) else {
        return;
    };
    let dead = format!("127.0.0.1:{}", free_port());

    // A mirror: the primary location is a dead port, the mirror has the image. The image is
    // stored under the name the user gave.
    let ctx = TestContext::new("vfs");
    write_conf(
        &ctx,
        &format!(
            "[[registry]]\nprefix = \"mirrored.example/ns\"\nlocation = \"{dead}/nowhere\"\n\
             [[registry.mirror]]\nlocation = \"{}/hod\"\ninsecure = true\n",
            reg.host
        ),
    );
    ctx.ok(["pull", "-q", "mirrored.example/ns/img:1"]);
    assert_eq!(ctx.image_id("mirrored.example/ns/img:1"), id);

    // A digest-only mirror is not used for a tag: the dead primary is tried and named.
    write_conf(
        &ctx,
        &format!(
            "[[registry]]\nprefix = \"mirrored.example/ns\"\nlocation = \"{dead}/nowhere\"\n\
             [[registry.mirror]]\nlocation = \"{}/hod\"\ninsecure = true\npull-from-mirror = \"digest-only\"\n",
            reg.host
        ),
    );
    ctx.hod([
        "pull",
        "-q",
        "--retry",
        "0",
        "--policy",
        "always",
        "mirrored.example/ns/img:1",
    ])
    .one_error_naming(&dead);

    // A blocked registry is refused, naming it.
    write_conf(
        &ctx,
        &format!(
            "[[registry]]\nlocation = \"{}\"\nblocked = true\n",
            reg.host
        ),
    );
    let src = format!("{}/hod/img:1", reg.host);
    ctx.hod(["pull", "-q", "--tls-verify=false", &src])
        .one_error_naming(&format!("registry {} is blocked in", reg.host));

    // A short name resolves through unqualified-search-registries (insecure per the file).
    let fresh = TestContext::new("vfs");
    write_conf(
        &fresh,
        &format!(
            "unqualified-search-registries = [\"{0}\"]\nshort-name-mode = \"enforcing\"\n\
             [[registry]]\nlocation = \"{0}\"\ninsecure = true\n",
            reg.host
        ),
    );
    fresh.ok(["pull", "-q", "hod/img:1"]);
    assert_eq!(fresh.image_id(&src), id);
    // Enforcing mode with two candidates and no terminal is an error.
    write_conf(
        &fresh,
        &format!(
            "unqualified-search-registries = [\"{0}\", \"{dead}\"]\nshort-name-mode = \"enforcing\"\n",
            reg.host
        ),
    );
    fresh
        .hod(["pull", "-q", "hod/other:1"])
        .one_error_naming("short-name resolution enforced but cannot prompt without a TTY");
}

#[test]
fn stored_credentials_and_policy() {
    if !common::require("registry auth", &["docker-registry", "htpasswd"]) {
        return;
    }
    let Some((reg, _id)) = seeded(Mode::Basic) else {
        return;
    };
    let ctx = TestContext::new("vfs");
    let ctr = ctx.scratch_busybox_container();
    ctx.ok(["commit", "-q", &ctr, "localhost/mine:1"]);
    let authfile = ctx.path("auth.json");
    // buildah requires a given --authfile to exist.
    std::fs::write(&authfile, "{}").unwrap();
    let af = authfile.to_str().unwrap();
    let dest = format!("docker://{}/hod/mine:1", reg.host);
    let push = |ctx: &TestContext| {
        ctx.hod([
            "push",
            "-q",
            "--retry",
            "0",
            "--tls-verify=false",
            "--authfile",
            af,
            "localhost/mine:1",
            &dest,
        ])
    };
    // Without credentials the registry refuses, and the error names it.
    push(&ctx).one_error_naming(&reg.host);
    // After login, the stored credentials are used.
    let r = ctx
        .hod([
            "login",
            "--tls-verify=false",
            "--authfile",
            af,
            "-u",
            USER,
            "-p",
            PASSWORD,
            &reg.host,
        ])
        .success();
    assert_eq!(r.out(), "Login Succeeded!");
    push(&ctx).success();
    // After logout, they are gone again.
    ctx.ok(["logout", "--authfile", af, &reg.host]);
    push(&ctx).one_error_naming(&reg.host);

    // A policy that rejects the registry refuses the pull; the default one lets it through.
    let policy = ctx.path("policy.json");
    std::fs::write(
        &policy,
        format!(
            r#"{{"default":[{{"type":"insecureAcceptAnything"}}],"transports":{{"docker":{{"{}/hod":[{{"type":"reject"}}]}}}}}}"#,
            reg.host
        ),
    )
    .unwrap();
    let creds = format!("{USER}:{PASSWORD}");
    let pull = |policy: &str| {
        ctx.hod([
            "pull",
            "-q",
            "--policy",
            "always",
            "--tls-verify=false",
            "--creds",
            &creds,
            "--signature-policy",
            policy,
            &dest,
        ])
    };
    pull(policy.to_str().unwrap()).one_error_naming("rejected by policy");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    pull(policy.to_str().unwrap()).success();
}

/// buildah's `BUILD_REGISTRY_SOURCES` and `--authfile` checks come before any network use (the
/// registries named here do not exist).
#[test]
fn registry_sources_and_authfile_checks() {
    let ctx = TestContext::new("vfs");
    let ctr = ctx.scratch_busybox_container();
    let run = |sources: &str, args: &[&str]| {
        let mut c = ctx.cmd(args);
        c.env("BUILD_REGISTRY_SOURCES", sources);
        common::run_cmd(c)
    };
    let blocked = r#"{"blockedRegistries": ["registry.example.com"]}"#;
    let allowed = r#"{"allowedRegistries": ["some-other-registry.example.com"]}"#;
    run(blocked, &["pull", "-q", "registry.example.com/a/b:1"]).one_error_naming(
        "registry \"registry.example.com\" denied by policy: it is in the blocked registries list",
    );
    run(allowed, &["pull", "-q", "registry.example.com/a/b:1"]).one_error_naming(
        "registry \"registry.example.com\" denied by policy: not in allowed registries list",
    );
    run(blocked, &["commit", "-q", &ctr, "docker://registry.example.com/busierbox"])
        .one_error_naming(
            "commit to registry at \"registry.example.com\" denied by policy: it is in the blocked registries list",
        );
    ctx.ok(["commit", "-q", &ctr, "localhost/src:1"]);
    run(
        allowed,
        &[
            "push",
            "-q",
            "localhost/src:1",
            "docker://registry.example.com/x:1",
        ],
    )
    .one_error_naming(
        "registry \"registry.example.com\" denied by policy: not in allowed registries list",
    );
    // A given --authfile must exist, even for a local destination.
    let missing = ctx.path("no-such-auth.json");
    let m = missing.to_str().unwrap();
    let dir = format!("dir:{}", ctx.path("out").display());
    ctx.hod(["push", "--authfile", m, "localhost/src:1", &dir])
        .one_error_naming(&format!(
            "checking authfile: stat {m}: no such file or directory"
        ));
    ctx.hod(["pull", "--authfile", m, "localhost/src:1"])
        .one_error_naming(&format!(
            "checking authfile: stat {m}: no such file or directory"
        ));
    // An image ID that is not in the store is not looked for in registries.
    let id = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    ctx.hod(["from", id])
        .one_error_naming(&format!("{id}: image not known"));
}
