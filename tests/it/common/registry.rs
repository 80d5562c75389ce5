//! A real CNCF distribution registry (`docker-registry serve`) for the tests, on 127.0.0.1
//! and a port picked free at run time, stopped (and its data removed) on drop. Modes:
//! plain HTTP, TLS with a self-signed CA (the CA is in `cert_dir`, for `--cert-dir`),
//! htpasswd Basic auth, and the Bearer token flow through `tests/registry/token_server.py`.
//! [`FaultyProxy`] puts `tests/registry/faulty_proxy.py` in front of one for fault tests.
//!
//! Shared by the CLI tests (`tests/it`) and the library's own tests (included by path from
//! `builder/src/transport/registry`), so it uses std and tempfile only.
#![allow(dead_code, clippy::print_stderr)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How the registry is protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Plain HTTP, no auth.
    Plain,
    /// HTTPS with a certificate signed by a test CA.
    Tls,
    /// HTTPS with a self-signed certificate (`openssl req -x509`, a CA used as the server's
    /// certificate, as buildah's tests make it), trusted through `cert_dir`.
    TlsSelfSigned,
    /// Plain HTTP with htpasswd (bcrypt) Basic auth.
    Basic,
    /// Plain HTTP with the Bearer token flow (`access_token` = answer in that field).
    Token {
        /// Return the token as `access_token` instead of `token`.
        access_token: bool,
    },
}

/// The test user and password of the Basic and Token modes.
pub const USER: &str = "hoduser";
/// Its password (the tests check it never appears in output).
pub const PASSWORD: &str = "s3cret-Pa55word";

/// A running registry.
pub struct TestRegistry {
    child: Child,
    token_server: Option<Child>,
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// A directory holding the CA certificate (`ca.crt`), for `--cert-dir` (TLS mode).
    pub cert_dir: PathBuf,
    /// The mode.
    pub mode: Mode,
}

/// A test that cannot run: a loud `SKIPPED` line, or a panic when `CI` is set (skips fail
/// in CI; this module is shared with the library's tests, hence its own copy).
pub fn skipped(test: &str, why: &str) {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{test} would be SKIPPED ({why}), and CI is set: skips fail in CI");
    }
    eprintln!("########## SKIPPED {test}: {why} ##########");
    log_skip(test, why);
}

/// Appends the skip to `$HOD_SKIP_LOG` when set (hack/test.sh counts them there: the test
/// harness hides a passing test's output).
pub fn log_skip(test: &str, why: &str) {
    use std::io::Write;
    if let Some(p) = std::env::var_os("HOD_SKIP_LOG").filter(|p| !p.is_empty()) {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
        {
            let _ = writeln!(f, "{test}: {why}");
        }
    }
}

/// Whether a command exists.
pub fn have_tool(t: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {t} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// The directory of the helper scripts.
pub fn scripts_dir() -> PathBuf {
    let m = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for d in [m.join("tests/registry"), m.join("../tests/registry")] {
        if d.join("token_server.py").exists() {
            return d;
        }
    }
    panic!("tests/registry not found from {}", m.display());
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("{what} exited early: {st}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on 127.0.0.1:{port}");
}

fn wait_file(p: &Path, child: &mut Child, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(s) = std::fs::read_to_string(p) {
            if !s.is_empty() {
                return s.trim().to_string();
            }
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("{what} exited early: {st}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not start");
}

fn sh(cmd: &str, dir: &Path) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.crt`, `ca.key`) and a certificate for 127.0.0.1 signed by it
/// (`server.crt`, `server.key`) in `dir`.
pub fn make_certs(dir: &Path) {
    sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
         -keyout ca.key -out ca.crt -days 2 -subj /CN=hod-test-ca 2>/dev/null && \
         openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
         -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null && \
         printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nbasicConstraints=CA:FALSE\\n' > ext && \
         openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
         -out server.crt -days 2 -extfile ext 2>/dev/null",
        dir,
    );
}

impl TestRegistry {
    /// Start a registry; `None` (with a SKIPPED line) when a needed tool is missing.
    pub fn start(mode: Mode) -> Option<TestRegistry> {
        let mut tools = vec!["docker-registry"];
        match mode {
            Mode::Tls | Mode::TlsSelfSigned => tools.push("openssl"),
            Mode::Basic => tools.push("htpasswd"),
            Mode::Token { .. } => tools.extend(["openssl", "python3"]),
            Mode::Plain => {}
        }
        for t in tools {
            if !have_tool(t) {
                skipped(
                    "registry test",
                    &format!("{t} is not installed (hack/test.sh installs it)"),
                );
                return None;
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("hod-registry-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let cert_dir = d.join("certs");
        std::fs::create_dir_all(&cert_dir).unwrap();
        let mut http = format!("http:\n  addr: {host}\n  secret: hod-test-secret\n");
        let mut auth = String::new();
        let mut token_server = None;
        match &mode {
            Mode::Plain => {}
            Mode::Tls => {
                make_certs(d);
                std::fs::copy(d.join("ca.crt"), cert_dir.join("ca.crt")).unwrap();
                http.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    d.join("server.crt").display(),
                    d.join("server.key").display()
                ));
            }
            Mode::TlsSelfSigned => {
                sh(
                    "openssl req -newkey rsa:2048 -nodes -sha256 -keyout server.key -x509 -days 2 \
                     -out server.crt -subj /CN=localhost \
                     -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null",
                    d,
                );
                std::fs::copy(d.join("server.crt"), cert_dir.join("domain.crt")).unwrap();
                http.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    d.join("server.crt").display(),
                    d.join("server.key").display()
                ));
            }
            Mode::Basic => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", USER, PASSWORD])
                    .output()
                    .unwrap();
                assert!(out.status.success());
                std::fs::write(d.join("htpasswd"), &out.stdout).unwrap();
                auth = format!(
                    "auth:\n  htpasswd:\n    realm: hod-test\n    path: {}\n",
                    d.join("htpasswd").display()
                );
            }
            Mode::Token { access_token } => {
                sh(
                    "openssl req -x509 -newkey rsa:2048 -nodes -keyout token.key -out token.crt \
                     -days 2 -subj /CN=hod-test-token-issuer 2>/dev/null",
                    d,
                );
                let portfile = d.join("token.port");
                let mut c = Command::new("python3");
                c.arg(scripts_dir().join("token_server.py"))
                    .arg(&portfile)
                    .arg(d.join("token.key"))
                    .arg(d.join("token.crt"))
                    .args([USER, PASSWORD]);
                if *access_token {
                    c.arg("access_token");
                }
                let mut child = c.stdin(Stdio::null()).spawn().unwrap();
                let tport = wait_file(&portfile, &mut child, "token server");
                auth = format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{tport}/token\n    service: hod-test-registry\n    issuer: hod-test-issuer\n    rootcertbundle: {}\n",
                    d.join("token.crt").display()
                );
                token_server = Some(child);
            }
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n{http}{auth}",
            d.join("data").display()
        );
        std::fs::write(d.join("config.yml"), config).unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("registry.log")).unwrap())
            .spawn()
            .unwrap();
        wait_port(port, &mut child, "docker-registry");
        Some(TestRegistry {
            child,
            token_server,
            dir,
            host,
            cert_dir,
            mode,
        })
    }

    /// Tokens the token server issued so far.
    pub fn tokens_issued(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("token.port.count"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// The registry's log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The temporary directory (for tests' own files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(c) = &mut self.token_server {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `tests/registry/faulty_proxy.py MODE` in front of a plain-HTTP registry.
pub struct FaultyProxy {
    child: Child,
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub host: String,
}

impl FaultyProxy {
    /// Start one; `None` when python3 is missing.
    pub fn start(upstream: &str, mode: &str) -> Option<FaultyProxy> {
        if !have_tool("python3") {
            skipped("fault test", "python3 is not installed");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("hod-proxy-")
            .tempdir()
            .unwrap();
        let portfile = dir.path().join("port");
        let mut child = Command::new("python3")
            .arg(scripts_dir().join("faulty_proxy.py"))
            .arg(&portfile)
            .arg(upstream)
            .arg(mode)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let port = wait_file(&portfile, &mut child, "faulty proxy");
        Some(FaultyProxy {
            child,
            dir,
            host: format!("127.0.0.1:{port}"),
        })
    }

    /// The requests the proxy saw (`METHOD PATH` lines).
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("port.count"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
