//! `hod login` / `hod logout` against a real `docker-registry` with htpasswd Basic auth on
//! 127.0.0.1 (and one with TLS from a test CA): buildah's messages and exit codes, the auth
//! file written 0600, `--get-login`, `--password-stdin`, `--cert-dir`, registries.conf's
//! `insecure`, and the password never shown. Validated against buildah with
//! `HOD_BIN=/usr/bin/buildah`.
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::registry::{Mode, TestRegistry, PASSWORD, USER};
use crate::common::{self, hod_bin, Run};

/// Run the binary with a private HOME and no inherited auth or registries settings.
fn hod(home: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut c = Command::new(hod_bin());
    c.args(args)
        .env("HOME", home)
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("DOCKER_CONFIG")
        .env_remove("CONTAINERS_REGISTRIES_CONF")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let cmdline = format!("{c:?}");
    let mut child = c.spawn().expect("spawning the binary");
    {
        let mut sin = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            sin.write_all(s.as_bytes()).unwrap();
        }
    }
    let o = child.wait_with_output().unwrap();
    let r = Run {
        cmdline,
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    crate::common::assert_no_panic(&r);
    assert!(
        !r.stdout.contains(PASSWORD) && !r.stderr.contains(PASSWORD),
        "the password was shown:\n{}",
        r.dump()
    );
    r
}

struct Setup {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    authfile: PathBuf,
    conf: PathBuf,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let authfile = tmp.path().join("auth/dir/auth.json");
    // An empty registries.conf and drop-in directory: the machine's settings don't leak in.
    let conf = tmp.path().join("registries.conf");
    std::fs::write(&conf, "").unwrap();
    Setup {
        home,
        authfile,
        conf,
        _tmp: tmp,
    }
}

#[test]
fn login_logout_basic_auth() {
    let Some(reg) = TestRegistry::start(Mode::Basic) else {
        return;
    };
    let s = setup();
    let host = reg.host.as_str();
    let af = s.authfile.to_str().unwrap();
    let conf = s.conf.to_str().unwrap();
    let base = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = vec![
            "--registries-conf".into(),
            conf.into(),
            "login".into(),
            "--authfile".into(),
            af.into(),
            "--tls-verify=false".into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |args: Vec<String>, stdin: Option<&str>| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        hod(&s.home, &a, stdin)
    };

    // A wrong password: buildah's error naming the registry, exit 125, nothing stored.
    let mut a = base(&["-u", USER, "-p", "wrong-password"]);
    a.push(host.into());
    run(a, None).one_error_naming(&format!(
        "logging into \"{host}\": invalid username/password"
    ));
    assert!(!s.authfile.exists());

    // Nobody logged in yet.
    let mut a = base(&["--get-login"]);
    a.push(host.into());
    run(a, None).one_error_naming(&format!("not logged into {host}"));

    // The right password.
    let mut a = base(&["-u", USER, "-p", PASSWORD]);
    a.push(host.into());
    let r = run(a, None).success();
    assert_eq!(r.out(), "Login Succeeded!", "{}", r.dump());
    let mode = std::fs::metadata(&s.authfile).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&s.authfile).unwrap()).unwrap();
    assert!(stored["auths"][host]["auth"].is_string(), "{stored}");

    // --get-login prints the user.
    let mut a = base(&["--get-login"]);
    a.push(host.into());
    assert_eq!(run(a, None).success().out(), USER);

    // --password-stdin (a trailing newline is not part of the password).
    let mut a = base(&["-u", USER, "--password-stdin"]);
    a.push(host.into());
    let r = run(a, Some(&format!("{PASSWORD}\n"))).success();
    assert_eq!(r.out(), "Login Succeeded!");

    // logout, twice.
    let lo = |extra: &[&str]| -> Run {
        let mut a = vec!["logout", "--authfile", af];
        a.extend_from_slice(extra);
        hod(&s.home, &a, None)
    };
    let r = lo(&[host]).success();
    assert_eq!(r.out(), format!("Removed login credentials for {host}"));
    lo(&[host]).one_error_naming(&format!("not logged into {host}"));
    let mut a = base(&["--get-login"]);
    a.push(host.into());
    run(a, None).one_error_naming(&format!("not logged into {host}"));
    let r = lo(&["--all"]).success();
    assert_eq!(r.out(), "Removed login credentials for all registries");
}

#[test]
fn login_uses_registries_conf_and_cert_dir() {
    let Some(reg) = TestRegistry::start(Mode::Basic) else {
        return;
    };
    let s = setup();
    let host = reg.host.clone();
    let af = s.authfile.to_str().unwrap();
    // Plain HTTP without --tls-verify=false fails (HTTPS is required) …
    let r = hod(
        &s.home,
        &[
            "--registries-conf",
            s.conf.to_str().unwrap(),
            "login",
            "--authfile",
            af,
            "-u",
            USER,
            "-p",
            PASSWORD,
            &host,
        ],
        None,
    );
    r.one_error_naming(&host);
    assert!(!s.authfile.exists());
    // … unless registries.conf marks the registry insecure.
    std::fs::write(
        &s.conf,
        format!("[[registry]]\nlocation = \"{host}\"\ninsecure = true\n"),
    )
    .unwrap();
    let r = hod(
        &s.home,
        &[
            "--registries-conf",
            s.conf.to_str().unwrap(),
            "login",
            "--authfile",
            af,
            "-u",
            USER,
            "-p",
            PASSWORD,
            &host,
        ],
        None,
    )
    .success();
    assert_eq!(r.out(), "Login Succeeded!");
    // A blocked registry is refused before any credential is sent.
    std::fs::write(
        &s.conf,
        format!("[[registry]]\nlocation = \"{host}\"\nblocked = true\n"),
    )
    .unwrap();
    if !crate::common::is_buildah() {
        // buildah 1.28.2's login does not consult `blocked`.
        hod(
            &s.home,
            &[
                "--registries-conf",
                s.conf.to_str().unwrap(),
                "login",
                "--authfile",
                af,
                "-u",
                USER,
                "-p",
                PASSWORD,
                &host,
            ],
            None,
        )
        .one_error_naming(&format!("registry {host} is blocked"));
    }

    // TLS with a test CA: trusted only through --cert-dir.
    let Some(tls) = TestRegistry::start(Mode::Tls) else {
        return;
    };
    std::fs::write(&s.conf, "").unwrap();
    let login = |cert_dir: Option<&Path>| {
        let mut a: Vec<String> = vec![
            "--registries-conf".into(),
            s.conf.to_str().unwrap().into(),
            "login".into(),
            "--authfile".into(),
            af.into(),
            "-u".into(),
            "any".into(),
            "-p".into(),
            "any".into(),
        ];
        if let Some(d) = cert_dir {
            a.push("--cert-dir".into());
            a.push(d.to_str().unwrap().into());
        }
        a.push(tls.host.clone());
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        hod(&s.home, &a, None)
    };
    login(None).one_error_naming(&tls.host);
    let r = login(Some(&tls.cert_dir)).success();
    assert_eq!(r.out(), "Login Succeeded!");
}

/// A registry serving a self-signed certificate that is its own CA (`openssl req -x509`, as
/// buildah's tests and many private registries make it), with htpasswd auth. Killed on drop.
struct SelfSigned {
    child: std::process::Child,
    dir: tempfile::TempDir,
    host: String,
}

impl SelfSigned {
    fn start() -> Option<SelfSigned> {
        if !common::require(
            "self-signed registry",
            &["docker-registry", "openssl", "htpasswd"],
        ) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ok = Command::new("openssl")
            .args(["req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-keyout"])
            .arg(d.join("localhost.key"))
            .args([
                "-x509",
                "-days",
                "2",
                "-addext",
                "subjectAltName = DNS:localhost",
                "-out",
            ])
            .arg(d.join("localhost.crt"))
            .args(["-subj", "/CN=localhost"])
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success());
        std::fs::create_dir(d.join("certs")).unwrap();
        std::fs::copy(d.join("localhost.crt"), d.join("certs/localhost.crt")).unwrap();
        let pw = Command::new("htpasswd")
            .args(["-Bbn", USER, PASSWORD])
            .output()
            .unwrap();
        std::fs::write(d.join("htpasswd"), pw.stdout).unwrap();
        let port = crate::common::registry::free_port();
        std::fs::write(
            d.join("config.yml"),
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {0}/data\n\
                 http:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {0}/localhost.crt\n    key: {0}/localhost.key\n\
                 auth:\n  htpasswd:\n    realm: t\n    path: {0}/htpasswd\n",
                d.display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "docker-registry did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(SelfSigned {
            child,
            dir,
            host: format!("localhost:{port}"),
        })
    }
}

impl Drop for SelfSigned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// buildah trusts a self-signed server certificate found as a CA in `--cert-dir` (Go accepts
/// a root used as the leaf); so must hod, or no registry of buildah's own tests is reachable.
#[test]
fn login_trusts_a_self_signed_certificate_in_cert_dir() {
    let Some(reg) = SelfSigned::start() else {
        return;
    };
    let s = setup();
    let certs = reg.dir.path().join("certs");
    let login = |cert_dir: Option<&Path>, password: &str| {
        let mut a = vec![
            "--registries-conf".to_string(),
            s.conf.display().to_string(),
            "login".into(),
            "--authfile".into(),
            s.authfile.display().to_string(),
            "-u".into(),
            USER.into(),
            "-p".into(),
            password.into(),
        ];
        if let Some(d) = cert_dir {
            a.push(format!("--cert-dir={}", d.display()));
        }
        a.push(reg.host.clone());
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        hod(&s.home, &a, None)
    };
    // Not trusted without the certificate (in Go's words, as buildah's tests expect) …
    login(None, PASSWORD)
        .one_error_naming(&reg.host)
        .one_error_naming("x509: certificate signed by unknown authority");
    // … trusted with it: a wrong password is the registry's answer, the right one logs in.
    login(Some(&certs), "wrong").one_error_naming(&format!(
        "logging into \"{}\": invalid username/password",
        reg.host
    ));
    let r = login(Some(&certs), PASSWORD).success();
    assert_eq!(r.out(), "Login Succeeded!");
}
